//! Times, durations and sizes in words, as people read them.

use crate::model::instant;

/// A time in ms since the epoch as RFC 3339 in UTC, to the second: `2026-11-18T11:06:40Z`.
pub fn utc(ms: i64) -> String {
    instant(ms).strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A time in ms since the epoch as long before `now` as people say it: `just now`,
/// `3 min ago`, `2 h ago`, `yesterday`, `5 d ago`; from 30 days on its date (`2026-10-01`), and
/// one more than a minute after `now` (a clock set wrong) as [`utc`].
pub fn ago(ms: i64, now: jiff::Timestamp) -> String {
    const MINUTE: i64 = 60;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;
    let then = instant(ms);
    let s = now.duration_since(then).as_secs();
    if s < -MINUTE {
        utc(ms)
    } else if s < MINUTE {
        "just now".into()
    } else if s < HOUR {
        format!("{} min ago", s / MINUTE)
    } else if s < DAY {
        format!("{} h ago", s / HOUR)
    } else if s < 2 * DAY {
        "yesterday".into()
    } else if s < 30 * DAY {
        format!("{} d ago", s / DAY)
    } else {
        then.strftime("%Y-%m-%d").to_string()
    }
}

/// Milliseconds in words: `12 ms`, `3.4 s`, `2 min 5 s`, `2 h 05 min`.
pub fn millis(ms: u64) -> String {
    match ms {
        0..1000 => format!("{ms} ms"),
        1000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {} s", ms / 60_000, ms % 60_000 / 1000),
        _ => format!("{} h {:02} min", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}

/// KiB in words.
pub fn kib(kib: u64) -> String {
    match kib {
        k if k >= 1024 * 1024 => format!("{:.1} GiB", k as f64 / (1024.0 * 1024.0)),
        k if k >= 1024 => format!("{:.0} MiB", k as f64 / 1024.0),
        k => format!("{k} KiB"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_795_000_000_123), "2026-11-18T11:06:40Z");
        assert_eq!(utc(i64::MIN), "-9999-01-02T01:59:59Z");
        let parsed: jiff::Timestamp = utc(1_795_000_000_123).parse().unwrap();
        assert_eq!(parsed.as_millisecond(), 1_795_000_000_000);
    }

    #[test]
    fn times_read_as_how_long_ago() {
        let now_ms = 1_795_000_000_000;
        let now = instant(now_ms);
        let before = |secs: i64| ago(now_ms - secs * 1000, now);
        assert_eq!(before(0), "just now");
        assert_eq!(before(59), "just now");
        assert_eq!(before(-59), "just now");
        assert_eq!(before(60), "1 min ago");
        assert_eq!(before(3 * 60 + 59), "3 min ago");
        assert_eq!(before(3599), "59 min ago");
        assert_eq!(before(3600), "1 h ago");
        assert_eq!(before(2 * 3600 + 1800), "2 h ago");
        assert_eq!(before(86_399), "23 h ago");
        assert_eq!(before(86_400), "yesterday");
        assert_eq!(before(2 * 86_400 - 1), "yesterday");
        assert_eq!(before(2 * 86_400), "2 d ago");
        assert_eq!(before(5 * 86_400 + 3600), "5 d ago");
        assert_eq!(before(30 * 86_400 - 1), "29 d ago");
        assert_eq!(before(30 * 86_400), "2026-10-19");
        assert_eq!(before(-61), "2026-11-18T11:07:41Z");
        // A corrupt time is shown, not a panic.
        assert_eq!(ago(i64::MIN, now), "-9999-01-02");
    }

    #[test]
    fn durations_read_humanly() {
        assert_eq!(millis(12), "12 ms");
        assert_eq!(millis(1_234), "1.2 s");
        assert_eq!(millis(192_000), "3 min 12 s");
        assert_eq!(millis(7_500_000), "2 h 05 min");
        assert_eq!(millis(u64::MAX), "5124095576030 h 25 min");
    }
}
