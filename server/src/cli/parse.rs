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

/// `30s`, `5m`, `2h`, `7d`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, ""), |i| text.split_at(i));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}`: expected a number and a unit, e.g. 30s, 5m, 2h, 7d"))?;
    let unit = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => return Err(format!("`{text}`: unknown unit `{other}` (s, m, h or d)")),
    };
    Ok(Duration::from_secs(n.saturating_mul(unit)))
}
