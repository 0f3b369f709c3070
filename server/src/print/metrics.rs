//! The fleet and a host over time.

use super::Printer;
use crate::model::{FleetPoint, HostPoint};

/// An optional count, or `-`.
fn maybe(n: Option<u32>) -> String {
    n.map_or("-".into(), |n| n.to_string())
}

impl Printer {
    /// The fleet's hours and days, one row each.
    pub fn fleet_metrics(&self, points: &[FleetPoint]) {
        self.list(
            points,
            &[
                "from",
                "span",
                "hosts",
                "reachable",
                "succeeded",
                "failed",
                "cancelled",
            ],
            |p| {
                let reachable = match (p.reachable_min, p.reachable_max) {
                    (Some(low), Some(high)) if low != high => format!("{low}-{high}"),
                    (low, _) => maybe(low),
                };
                vec![
                    self.time(p.at),
                    if p.span_secs >= 86_400 { "day" } else { "hour" }.into(),
                    p.hosts.to_string(),
                    reachable,
                    p.succeeded.to_string(),
                    p.failed.to_string(),
                    p.cancelled.to_string(),
                ]
            },
        );
    }

    /// A host's hours and days, one row each.
    pub fn host_metrics(&self, points: &[HostPoint]) {
        self.list(
            points,
            &[
                "from",
                "span",
                "heartbeats",
                "round trip",
                "longest",
                "load",
                "flash free",
            ],
            |p| {
                vec![
                    self.time(p.at),
                    if p.span_secs >= 86_400 { "day" } else { "hour" }.into(),
                    p.heartbeats.to_string(),
                    format!("{:.1} ms", p.round_trip_ms),
                    format!("{:.1} ms", p.round_trip_max_ms),
                    format!("{:.2}", p.load),
                    p.flash_free_kib.map_or("-".into(), super::units::kib),
                ]
            },
        );
    }
}
