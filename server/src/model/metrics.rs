//! Metrics kept for charts, downsampled: by the hour for [`HOURLY_DAYS`] days, then by the day
//! for [`KEPT_DAYS`] days, so that a year of a large fleet stays small (a row per host and
//! day, and one per day for the fleet).

use serde::{Deserialize, Serialize};

use super::{from_utc, utc};

/// An hour, in ms.
pub const HOUR_MS: i64 = 3_600_000;

/// A day, in ms.
pub const DAY_MS: i64 = 86_400_000;

/// Days kept by the hour; older ones are merged into days.
pub const HOURLY_DAYS: i64 = 8;

/// Days kept at all.
pub const KEPT_DAYS: i64 = 400;

/// The fleet over one hour or day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FleetPoint {
    /// Its start (RFC 3339 in JSON).
    #[serde(serialize_with = "utc", deserialize_with = "from_utc")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    /// Its length in seconds: 3600 or 86400.
    pub span_secs: u32,
    /// Enabled hosts (the most seen).
    pub hosts: u32,
    /// Reachable hosts: the fewest seen (None: not sampled then).
    pub reachable_min: Option<u32>,
    /// Reachable hosts: the most seen.
    pub reachable_max: Option<u32>,
    /// Runs that ended then and succeeded.
    pub succeeded: u32,
    /// Runs that ended then and failed (not by a cancel).
    pub failed: u32,
    /// Runs that ended then, cancelled.
    pub cancelled: u32,
}

/// One host's heartbeats over one hour or day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HostPoint {
    /// Its start (RFC 3339 in JSON).
    #[serde(serialize_with = "utc", deserialize_with = "from_utc")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    /// Its length in seconds: 3600 or 86400.
    pub span_secs: u32,
    /// Heartbeats answered.
    pub heartbeats: u32,
    /// Their round trip, on average, in ms.
    pub round_trip_ms: f64,
    /// Their longest round trip, in ms.
    pub round_trip_max_ms: f64,
    /// The 1-minute load average, on average.
    pub load: f64,
    /// The least free flash seen, in KiB (None: unknown).
    pub flash_free_kib: Option<u64>,
}
