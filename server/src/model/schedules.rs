//! Schedules: a job (a stored script or a command, on hosts and groups, with the rollout of
//! `run`) started by `serve` at the times a cron pattern names, in a time zone.
//!
//! The pattern is croner's: five fields (minute, hour, day of month, month, day of week), an
//! optional leading sixth for seconds, or `@yearly`, `@monthly`, `@weekly`, `@daily`,
//! `@hourly`. Its times are wall-clock times in the schedule's zone (IANA, bundled in the
//! binary; UTC by default). Over a change of the clock: a fixed time in the hour skipped runs
//! right after the gap, a fixed time in the hour repeated runs once (its first), and a
//! pattern with `*` or a step in its time fields runs at the matching times that exist.

use std::cmp::Ordering;

use croner::parser::{CronParser, Seconds, Year};
use croner::{CivilDateTime, CronDateTime, Resolution, Weekday};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};

/// The time zone a schedule has when none is given.
pub const DEFAULT_ZONE: &str = "UTC";

/// Why a schedule's timing is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimingError {
    /// The cron pattern does not parse.
    #[error("cron pattern `{pattern}`: {reason}")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// Why, in croner's words.
        reason: String,
    },
    /// No time zone of that name.
    #[error("no time zone named `{0}` (an IANA name such as `Europe/Berlin`, or `UTC`)")]
    Zone(String),
}

/// When a schedule is due: its cron pattern in its time zone.
#[derive(Debug, Clone)]
pub struct Timing {
    cron: croner::Cron,
    zone: TimeZone,
}

impl Timing {
    /// `pattern` in zone `zone` (an IANA name), checked.
    pub fn parse(pattern: &str, zone: &str) -> Result<Timing, TimingError> {
        let zone = TimeZone::get(zone).map_err(|_| TimingError::Zone(zone.to_owned()))?;
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(pattern.trim())
            .map_err(|e| TimingError::Pattern {
                pattern: pattern.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Timing { cron, zone })
    }

    /// The first time the pattern names strictly after `after` (ms since the epoch), in ms;
    /// None if there is none (a date that never comes, such as February 30).
    pub fn next_after(&self, after: i64) -> Option<i64> {
        let start = Timestamp::from_millisecond(after).ok()?;
        let start = Zoned(start.to_zoned_datetime(self.zone.clone()));
        let next = self.cron.find_next_occurrence(&start, false).ok()?;
        Some(next.0.timestamp().as_millisecond())
    }

    /// The next `n` times after `after` (ms), each in ms.
    pub fn next_times(&self, after: i64, n: usize) -> Vec<i64> {
        let mut times = Vec::with_capacity(n);
        let mut from = after;
        while times.len() < n {
            match self.next_after(from) {
                Some(t) => {
                    times.push(t);
                    from = t;
                }
                None => break,
            }
        }
        times
    }

    /// The time `ms` as a wall-clock time in the schedule's zone, RFC 3339 with its offset
    /// and zone (`2026-03-29T03:00:00+02:00[Europe/Berlin]`).
    pub fn local(&self, ms: i64) -> String {
        super::instant(ms)
            .to_zoned_datetime(self.zone.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z[%Q]")
            .to_string()
    }
}

/// A time in a zone, as croner searches over it (croner's own jiff support is for another
/// major version of jiff than the project's).
#[derive(Debug, Clone)]
struct Zoned(jiff::ZonedDateTime);

/// croner's civil time as jiff's; None outside jiff's years.
fn to_jiff(civil: CivilDateTime) -> Option<jiff::civil::DateTime> {
    let part = |n: u32| i8::try_from(n).ok();
    jiff::civil::DateTime::new(
        i16::try_from(civil.year()).ok()?,
        part(civil.month())?,
        part(civil.day())?,
        part(civil.hour())?,
        part(civil.minute())?,
        part(civil.second())?,
        0,
    )
    .ok()
}

impl CronDateTime for Zoned {
    fn to_civil(&self) -> CivilDateTime {
        let d = self.0.datetime();
        // jiff holds every part in its range: croner's unchecked constructors take them.
        let part = |n: i8| u32::try_from(n).unwrap_or(0);
        CivilDateTime::new(
            croner::CivilDate::from_parts_unchecked(
                i32::from(d.year()),
                part(d.month()),
                part(d.day()),
            ),
            croner::CivilTime::from_parts_unchecked(
                part(d.hour()),
                part(d.minute()),
                part(d.second()),
            ),
        )
    }

    fn civil_weekday(&self) -> Weekday {
        let days = self.0.weekday().to_sunday_zero_offset();
        Weekday::from_days_from_sunday(u32::try_from(days).unwrap_or(0))
    }

    fn resolve_civil(
        &self,
        civil: CivilDateTime,
    ) -> Result<Resolution<Self>, croner::errors::CronError> {
        use croner::errors::CronError;
        let datetime = to_jiff(civil).ok_or(CronError::InvalidDate)?;
        let ambiguous = self.0.time_zone().to_ambiguous_zoned_datetime(datetime);
        Ok(match ambiguous.offset() {
            AmbiguousOffset::Unambiguous { .. } => Resolution::Single(Zoned(
                ambiguous
                    .unambiguous()
                    .map_err(|_| CronError::InvalidTime)?,
            )),
            AmbiguousOffset::Fold { .. } => {
                let earlier = ambiguous
                    .clone()
                    .earlier()
                    .map_err(|_| CronError::InvalidTime)?;
                let later = ambiguous.later().map_err(|_| CronError::InvalidTime)?;
                Resolution::Ambiguous(Zoned(earlier), Zoned(later))
            }
            AmbiguousOffset::Gap { .. } => Resolution::Gap,
        })
    }

    fn checked_add_seconds(&self, seconds: i64) -> Option<Self> {
        self.0
            .checked_add(SignedDuration::from_secs(seconds))
            .ok()
            .map(Zoned)
    }

    fn cmp_instant(&self, other: &Self) -> Ordering {
        self.0.timestamp().cmp(&other.0.timestamp())
    }
}

/// A schedule as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Its id, never reused.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Its cron pattern.
    pub cron: String,
    /// Its time zone (an IANA name).
    pub time_zone: String,
    /// Whether `serve` starts it.
    pub enabled: bool,
    /// What it runs where, as the body of `POST /api/v1/runs` (`ops::NewRun`) in JSON.
    pub run: String,
    /// The next time it is due (ms since the epoch), claimed by the server that starts it;
    /// None while disabled.
    pub next_due: Option<i64>,
    /// When it was added (ms).
    pub created: i64,
}

/// A schedule to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSchedule {
    /// Its name.
    pub name: String,
    /// Its cron pattern.
    pub cron: String,
    /// Its time zone.
    pub time_zone: String,
    /// Whether `serve` starts it.
    pub enabled: bool,
    /// What it runs where (`ops::NewRun` in JSON).
    pub run: String,
    /// Its first due time (ms); None while disabled.
    pub next_due: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` (RFC 3339 with an offset) in ms.
    fn ms(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_millisecond()
    }

    fn utc(ms: i64) -> String {
        super::super::instant(ms).to_string()
    }

    fn next(pattern: &str, zone: &str, after: &str, n: usize) -> Vec<String> {
        let timing = Timing::parse(pattern, zone).unwrap();
        timing
            .next_times(ms(after), n)
            .into_iter()
            .map(|t| timing.local(t))
            .collect()
    }

    #[test]
    fn five_fields_and_an_optional_sixth_for_seconds() {
        assert_eq!(
            next("*/15 * * * *", "UTC", "2026-01-01T00:07:00Z", 2),
            [
                "2026-01-01T00:15:00+00:00[UTC]",
                "2026-01-01T00:30:00+00:00[UTC]"
            ]
        );
        assert_eq!(
            next("*/5 * * * * *", "UTC", "2026-01-01T00:00:01Z", 2),
            [
                "2026-01-01T00:00:05+00:00[UTC]",
                "2026-01-01T00:00:10+00:00[UTC]"
            ]
        );
        // Strictly after: a time on the pattern is not its own next time.
        assert_eq!(
            next("0 * * * *", "UTC", "2026-01-01T01:00:00Z", 1),
            ["2026-01-01T02:00:00+00:00[UTC]"]
        );
    }

    #[test]
    fn daily_and_hourly_nicknames() {
        assert_eq!(
            next("@daily", "UTC", "2026-05-04T13:00:00Z", 2),
            [
                "2026-05-05T00:00:00+00:00[UTC]",
                "2026-05-06T00:00:00+00:00[UTC]"
            ]
        );
        assert_eq!(
            next("@hourly", "UTC", "2026-05-04T13:00:00Z", 1),
            ["2026-05-04T14:00:00+00:00[UTC]"]
        );
        assert_eq!(
            next("@weekly", "UTC", "2026-05-04T13:00:00Z", 1),
            ["2026-05-10T00:00:00+00:00[UTC]"]
        );
    }

    #[test]
    fn times_are_wall_clock_times_of_the_zone() {
        let timing = Timing::parse("30 9 * * *", "Asia/Kolkata").unwrap();
        let t = timing.next_after(ms("2026-06-01T00:00:00Z")).unwrap();
        assert_eq!(utc(t), "2026-06-01T04:00:00Z");
        let timing = Timing::parse("0 9 * * 1", "America/New_York").unwrap();
        let t = timing.next_after(ms("2026-06-01T00:00:00Z")).unwrap();
        assert_eq!(utc(t), "2026-06-01T13:00:00Z"); // a Monday, EDT
    }

    #[test]
    fn spring_forward_runs_a_skipped_fixed_time_after_the_gap() {
        // Berlin, 29 March 2026: 02:00 becomes 03:00; 02:30 never happens that day.
        assert_eq!(
            next("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", 3),
            [
                "2026-03-29T03:00:00+02:00[Europe/Berlin]",
                "2026-03-30T02:30:00+02:00[Europe/Berlin]",
                "2026-03-31T02:30:00+02:00[Europe/Berlin]",
            ]
        );
        // An hourly pattern skips the hour that does not exist.
        assert_eq!(
            next("0 * * * *", "Europe/Berlin", "2026-03-29T00:30:00Z", 2),
            [
                "2026-03-29T03:00:00+02:00[Europe/Berlin]",
                "2026-03-29T04:00:00+02:00[Europe/Berlin]",
            ]
        );
    }

    #[test]
    fn fall_back_runs_a_repeated_fixed_time_once() {
        // Berlin, 25 October 2026: 03:00 becomes 02:00; 02:30 happens twice.
        let times = next("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", 2);
        assert_eq!(
            times,
            [
                "2026-10-25T02:30:00+02:00[Europe/Berlin]",
                "2026-10-26T02:30:00+01:00[Europe/Berlin]",
            ]
        );
        // Every half hour runs in both passes of the repeated hour, in real time.
        let timing = Timing::parse("*/30 * * * *", "Europe/Berlin").unwrap();
        let times: Vec<String> = timing
            .next_times(ms("2026-10-25T00:00:00+02:00"), 6)
            .into_iter()
            .map(utc)
            .collect();
        assert_eq!(
            times,
            [
                "2026-10-24T22:30:00Z",
                "2026-10-24T23:00:00Z",
                "2026-10-24T23:30:00Z",
                "2026-10-25T00:00:00Z",
                "2026-10-25T00:30:00Z",
                "2026-10-25T01:00:00Z",
            ]
        );
    }

    #[test]
    fn a_leap_day_comes_every_four_years() {
        assert_eq!(
            next("0 12 29 2 *", "UTC", "2026-01-01T00:00:00Z", 2),
            [
                "2028-02-29T12:00:00+00:00[UTC]",
                "2032-02-29T12:00:00+00:00[UTC]"
            ]
        );
        // The last day of February, leap year or not.
        assert_eq!(
            next("0 0 L 2 *", "UTC", "2027-01-01T00:00:00Z", 2),
            [
                "2027-02-28T00:00:00+00:00[UTC]",
                "2028-02-29T00:00:00+00:00[UTC]"
            ]
        );
    }

    #[test]
    fn bad_patterns_and_zones_are_refused() {
        for bad in [
            "",
            "* * *",
            "61 * * * *",
            "* * * * * * *",
            "@sometimes",
            "0 25 * * *",
        ] {
            assert!(
                matches!(Timing::parse(bad, "UTC"), Err(TimingError::Pattern { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(
            Timing::parse("* * * * *", "Mars/Olympus").unwrap_err(),
            TimingError::Zone("Mars/Olympus".into())
        );
    }

    #[test]
    fn a_date_that_never_comes_has_no_next_time() {
        let timing = Timing::parse("0 0 30 2 *", "UTC").unwrap();
        assert_eq!(timing.next_after(ms("2026-01-01T00:00:00Z")), None);
    }
}
