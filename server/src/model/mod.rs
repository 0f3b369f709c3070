//! The fleet's domain types: hosts and their trust, groups, scripts, attachments, environment
//! variables, runs and events. The store keeps them, the fleet and the operations work on them,
//! the command line prints them (their serde form is its JSON output, where every time is
//! RFC 3339 in UTC: [`utc`]).

mod enrollment;
mod events;
mod hosts;
mod metrics;
mod runs;
mod schedules;
mod scripts;
mod servers;
mod users;
mod webhooks;

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;

pub use enrollment::*;
pub use events::*;
pub use hosts::*;
pub use metrics::*;
pub use runs::*;
pub use schedules::*;
pub use scripts::*;
pub use servers::*;
pub use users::*;
pub use webhooks::*;

/// Milliseconds since the Unix epoch, the unit of every time in the store.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The instant `ms` milliseconds after the Unix epoch, brought within the years -9999 to 9999
/// that a calendar date can show (only a corrupt database holds a time outside them).
pub fn instant(ms: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    })
}

/// A time of the store (ms since the epoch), or one that may be missing.
pub trait Millis {
    /// The time in ms since the epoch, if there is one.
    fn millis(&self) -> Option<i64>;
}

impl Millis for i64 {
    fn millis(&self) -> Option<i64> {
        Some(*self)
    }
}

impl Millis for Option<i64> {
    fn millis(&self) -> Option<i64> {
        *self
    }
}

/// Serializes a time of the store as RFC 3339 in UTC to the millisecond
/// (`2026-11-25T20:08:42.123Z`), and a missing one as null: the form of every time in the JSON
/// output.
pub fn utc<T: Millis, S: serde::Serializer>(t: &T, s: S) -> std::result::Result<S::Ok, S::Error> {
    match t.millis() {
        Some(ms) => s.collect_str(&format_args!("{:.3}", instant(ms))),
        None => s.serialize_none(),
    }
}

/// Reads a time as [`utc`] writes it (RFC 3339), or null: the API's answers read back by the
/// command line (`--server`).
pub fn from_utc<'de, T: FromMillis, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<T, D::Error> {
    let text: Option<String> = Deserialize::deserialize(d)?;
    let ms = text
        .map(|t| {
            t.parse::<jiff::Timestamp>()
                .map(|t| t.as_millisecond())
                .map_err(serde::de::Error::custom)
        })
        .transpose()?;
    T::from_millis(ms).ok_or_else(|| serde::de::Error::custom("a time is missing"))
}

/// A time of the store made from one that may be missing: [`from_utc`]'s result.
pub trait FromMillis: Sized {
    /// The time, if `ms` is one this type can hold.
    fn from_millis(ms: Option<i64>) -> Option<Self>;
}

impl FromMillis for i64 {
    fn from_millis(ms: Option<i64>) -> Option<i64> {
        ms
    }
}

impl FromMillis for Option<i64> {
    fn from_millis(ms: Option<i64>) -> Option<Option<i64>> {
        Some(ms)
    }
}

/// Reads text as [`lossy_text`] writes it, as its bytes.
fn text_bytes<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<u8>, D::Error> {
    String::deserialize(d).map(String::into_bytes)
}

/// Writes bytes as text, invalid UTF-8 replaced (U+FFFD).
fn lossy_text<S: serde::Serializer>(bytes: &[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(bytes))
}
