//! Parsers of argument values: ids, paths on hosts, modes, durations.

use std::time::Duration;

use crate::model::Ids;

pub fn parse_ids(text: &str) -> Result<Ids, String> {
    let (uid, gid) = text.split_once(':').ok_or("expected UID:GID, e.g. 0:0")?;
    Ok(Ids {
        uid: uid.parse().map_err(|e| format!("uid {uid}: {e}"))?,
        gid: gid.parse().map_err(|e| format!("gid {gid}: {e}"))?,
    })
}

pub fn parse_absolute(text: &str) -> Result<String, String> {
    if text.starts_with('/') {
        Ok(text.to_string())
    } else {
        Err(format!("{text}: the path on the hosts must be absolute"))
    }
}

pub fn parse_mode(text: &str) -> Result<u32, String> {
    let mode = u32::from_str_radix(text.trim_start_matches("0o"), 8)
        .map_err(|e| format!("mode {text}: {e} (octal, e.g. 644)"))?;
    if mode > 0o7777 {
        return Err(format!("mode {text} is more than 7777"));
    }
    Ok(mode)
}

/// A duration as people write it: `90s`, `5m`, `1h30m`, `7d` (humantime's units), or plain
/// seconds (`30`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map(Duration::from_secs)
            .map_err(|e| e.to_string());
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("{e} (e.g. 90s, 5m, 1h30m, 7d, or plain seconds)"))
}

/// A moment, in ms since the epoch: an RFC 3339 time (`2026-12-01T08:00:00Z`), or a while
/// before now ([`parse_duration`]: `90m`, `2d`).
pub fn time_or_ago(text: &str) -> Result<i64, String> {
    if let Ok(time) = text.parse::<jiff::Timestamp>() {
        return Ok(time.as_millisecond());
    }
    let ago = parse_duration(text)
        .map_err(|e| format!("neither an RFC 3339 time nor a while ago: {e}"))?;
    let ago = i64::try_from(ago.as_millis()).map_err(|_| "too long ago".to_string())?;
    Ok(jiff::Timestamp::now().as_millisecond().saturating_sub(ago))
}

/// [`parse_duration`] for a wait or an interval, where zero has no meaning.
pub fn parse_nonzero_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(duration)
}

/// A script's timeout ([`parse_duration`]) in the whole seconds the agent counts; 0 means none.
pub fn parse_timeout_secs(text: &str) -> Result<u32, String> {
    let duration = parse_duration(text)?;
    if duration.subsec_nanos() != 0 {
        return Err("a script's timeout is whole seconds".into());
    }
    u32::try_from(duration.as_secs()).map_err(|_| format!("more than {} seconds", u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_human_or_plain_seconds() {
        let secs = Duration::from_secs;
        for (text, expected) in [
            ("30", secs(30)),
            ("0", secs(0)),
            ("90s", secs(90)),
            ("5m", secs(300)),
            ("1h30m", secs(5400)),
            ("1h 30m", secs(5400)),
            ("1.5h", secs(5400)),
            ("7d", secs(7 * 86_400)),
            ("250ms", Duration::from_millis(250)),
        ] {
            assert_eq!(parse_duration(text), Ok(expected), "{text}");
        }
        for text in ["", "soon", "5 parsecs", "-5s", "99999999999999999999"] {
            assert!(parse_duration(text).is_err(), "{text}");
        }
        assert!(parse_duration("soon").unwrap_err().contains("1h30m"));
    }

    #[test]
    fn zero_is_refused_where_it_has_no_meaning() {
        assert_eq!(parse_nonzero_duration("2m"), Ok(Duration::from_secs(120)));
        for zero in ["0", "0s", "0m"] {
            let err = parse_nonzero_duration(zero).unwrap_err();
            assert!(err.contains("must be more than zero"), "{err}");
        }
    }

    #[test]
    fn script_timeouts_are_whole_seconds_that_fit_the_protocol() {
        assert_eq!(parse_timeout_secs("0"), Ok(0));
        assert_eq!(parse_timeout_secs("1h30m"), Ok(5400));
        assert!(
            parse_timeout_secs("1500ms")
                .unwrap_err()
                .contains("whole seconds")
        );
        assert!(
            parse_timeout_secs("200years")
                .unwrap_err()
                .contains("more than")
        );
    }
}
