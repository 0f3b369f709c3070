//! Times, durations and sizes in words, as people read them.

/// A time in ms since the epoch as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn utc(ms: i64) -> String {
    crate::model::instant(ms)
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// An optional time, or `-`.
pub fn utc_or_dash(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".into(), utc)
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
    fn times_are_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(utc(1_795_000_000_123), "2026-11-18 11:06:40");
        assert_eq!(utc(i64::MIN), "-9999-01-02 01:59:59");
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
