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

/// Flash space, finer than [`kib`]: `512 KiB`, `5.0 MiB`, `1.2 GiB` (a router's writable flash
/// is a few MiB, where a tenth counts).
pub fn space(kib: u64) -> String {
    match kib {
        k if k >= 1024 * 1024 => format!("{:.1} GiB", k as f64 / (1024.0 * 1024.0)),
        k if k >= 1024 => format!("{:.1} MiB", k as f64 / 1024.0),
        k => format!("{k} KiB"),
    }
}

/// The share of `total` that `free` is, in whole percent (rounded); none when `total` is 0 (the
/// agent could not tell).
pub fn percent(free: u64, total: u64) -> Option<u64> {
    let (free, total) = (u128::from(free), u128::from(total));
    (total > 0).then(|| u64::try_from((free * 100 + total / 2) / total).unwrap_or(u64::MAX))
}

/// Whether flash with `free` of `total` KiB free is running out: under 10 % or under 1 MiB
/// free (not when its size is unknown: `total` 0).
pub fn flash_low(free: u64, total: u64) -> bool {
    total > 0 && (free < 1024 || u128::from(free) * 10 < u128::from(total))
}

/// Free flash in full: `5.0 MiB of 7.5 MiB free (67%)`, opened by `LOW: ` when
/// [`flash_low`]; `-` when its size is unknown.
pub fn flash(free: u64, total: u64) -> String {
    match percent(free, total) {
        Some(p) => format!(
            "{}{} of {} free ({p}%)",
            if flash_low(free, total) { "LOW: " } else { "" },
            space(free),
            space(total)
        ),
        None => "-".into(),
    }
}

/// Free flash in a table's cell: `5.0 MiB (67%)`, opened by `LOW ` when [`flash_low`]; `-` when
/// its size is unknown.
pub fn flash_short(free: u64, total: u64) -> String {
    match percent(free, total) {
        Some(p) => format!(
            "{}{} ({p}%)",
            if flash_low(free, total) { "LOW " } else { "" },
            space(free)
        ),
        None => "-".into(),
    }
}

/// Seconds since boot as people say it, its `parts` largest units from the first that is not
/// zero, zero ones left out: with 3, `3d 4h 5m`; with 2, `3d 4h`, `4h 5m`, `5m`; under a
/// minute `45s`.
pub fn uptime(secs: u64, parts: usize) -> String {
    let units = [
        (secs / 86_400, "d"),
        (secs % 86_400 / 3600, "h"),
        (secs % 3600 / 60, "m"),
    ];
    let Some(first) = units.iter().position(|&(n, _)| n > 0) else {
        return format!("{secs}s");
    };
    let shown: Vec<String> = units
        .iter()
        .skip(first)
        .take(parts.max(1))
        .filter(|&&(n, _)| n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    shown.join(" ")
}

/// Load averages (times 100, as the agent reports them) as `0.15`: `load_centi` / 100 with
/// two decimals.
pub fn load(load_centi: u32) -> String {
    format!("{}.{:02}", load_centi / 100, load_centi % 100)
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

    #[test]
    fn uptimes_read_as_days_hours_and_minutes() {
        let up = |d: u64, h: u64, m: u64, s: u64| d * 86_400 + h * 3600 + m * 60 + s;
        assert_eq!(uptime(up(3, 4, 5, 6), 3), "3d 4h 5m");
        assert_eq!(uptime(up(3, 4, 5, 6), 2), "3d 4h");
        assert_eq!(uptime(up(0, 4, 5, 6), 2), "4h 5m");
        assert_eq!(uptime(up(0, 0, 5, 6), 2), "5m");
        // Zero units are left out, and do not count past the largest.
        assert_eq!(uptime(up(3, 0, 5, 0), 3), "3d 5m");
        assert_eq!(uptime(up(3, 0, 5, 0), 2), "3d");
        assert_eq!(uptime(45, 2), "45s");
        assert_eq!(uptime(0, 3), "0s");
        assert_eq!(uptime(up(1, 0, 0, 0), 0), "1d");
        assert_eq!(uptime(u64::MAX, 3), "213503982334601d 7h");
    }

    #[test]
    fn flash_reads_as_free_of_total_and_low_is_said() {
        assert_eq!(flash(5 * 1024, 7680), "5.0 MiB of 7.5 MiB free (67%)");
        assert_eq!(flash_short(5 * 1024, 7680), "5.0 MiB (67%)");
        // Under 10 % free: low, in words.
        assert_eq!(
            flash(100 * 1024, 2 * 1024 * 1024),
            "LOW: 100.0 MiB of 2.0 GiB free (5%)"
        );
        assert_eq!(
            flash_short(100 * 1024, 2 * 1024 * 1024),
            "LOW 100.0 MiB (5%)"
        );
        // Under 1 MiB free: low, whatever the share.
        assert_eq!(flash(1023, 1500), "LOW: 1023 KiB of 1.5 MiB free (68%)");
        assert!(!flash_low(1024, 1500));
        // The edge of 10 %: 10 % is not low, just under it is.
        assert!(!flash_low(10_240, 102_400));
        assert!(flash_low(10_239, 102_400));
        // Unknown size (an older row, or an agent that could not tell): nothing to say.
        assert_eq!(flash(0, 0), "-");
        assert_eq!(flash_short(0, 0), "-");
        assert!(!flash_low(0, 0));
        assert_eq!(percent(u64::MAX, u64::MAX), Some(100));
        assert_eq!(percent(u64::MAX, 1), Some(u64::MAX));
    }

    #[test]
    fn loads_have_two_decimals() {
        assert_eq!(load(15), "0.15");
        assert_eq!(load(1203), "12.03");
        assert_eq!(load(u32::MAX), "42949672.95");
    }
}
