//! The fleet at a glance: how many hosts are reachable, unreachable, waiting for a key's
//! approval, the runs that failed lately (not those cancelled) and the slowest heartbeats.

use serde::Serialize;

use super::{Ops, Result};
use crate::model::{Host, Run};

/// Runs looked at for the recent failures.
const RECENT_RUNS: u32 = 100;
/// Most failures listed.
const MAX_FAILURES: usize = 10;
/// Most slow heartbeats listed.
const MAX_SLOWEST: usize = 5;

/// A reachable host's last heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SlowHeartbeat {
    /// The host.
    pub host: String,
    /// Its round trip (ms), connection set-up excluded.
    pub round_trip_ms: f64,
    /// When it was answered (ms since the epoch; RFC 3339 in JSON).
    #[serde(serialize_with = "crate::model::utc")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub at: Option<i64>,
}

/// The fleet at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Summary {
    /// Every host.
    pub hosts: usize,
    /// Enabled, and their last heartbeat was answered.
    pub reachable: usize,
    /// Enabled, and their last heartbeat failed.
    pub unreachable: usize,
    /// Enabled, and never tried yet.
    pub unknown: usize,
    /// Their agent presented a key that waits for approval.
    pub pending: usize,
    /// Left out of every action.
    pub disabled: usize,
    /// The newest failed runs among the last 100 (at most 10, newest first), without their
    /// output; a cancelled run did not fail.
    pub recent_failures: Vec<Run>,
    /// The enabled, reachable hosts whose last heartbeat took longest (at most 5, slowest
    /// first).
    pub slowest_heartbeats: Vec<SlowHeartbeat>,
}

impl Summary {
    /// The summary of `hosts` and `runs` (oldest first).
    fn of(hosts: &[Host], runs: Vec<Run>) -> Summary {
        let mut slowest: Vec<SlowHeartbeat> = hosts
            .iter()
            .filter(|h| h.enabled && h.status.reachable == Some(true))
            .filter_map(|h| {
                Some(SlowHeartbeat {
                    host: h.name.clone(),
                    round_trip_ms: h.status.round_trip_ms?,
                    at: h.status.last_seen,
                })
            })
            .collect();
        slowest.sort_by(|a, b| b.round_trip_ms.total_cmp(&a.round_trip_ms));
        slowest.truncate(MAX_SLOWEST);
        let enabled = |reachable: Option<bool>| {
            hosts
                .iter()
                .filter(|h| h.enabled && h.status.reachable == reachable)
                .count()
        };
        Summary {
            hosts: hosts.len(),
            reachable: enabled(Some(true)),
            unreachable: enabled(Some(false)),
            unknown: enabled(None),
            pending: hosts
                .iter()
                .filter(|h| h.trust.pending_key.is_some())
                .count(),
            disabled: hosts.iter().filter(|h| !h.enabled).count(),
            recent_failures: runs
                .into_iter()
                .rev()
                .filter(|r| r.success == Some(false) && !r.cancelled)
                .take(MAX_FAILURES)
                .map(|r| Run {
                    stdout: Vec::new(),
                    stderr: Vec::new(),
                    ..r
                })
                .collect(),
            slowest_heartbeats: slowest,
        }
    }
}

impl Ops {
    /// The fleet at a glance, as the store has it (no host is contacted).
    pub async fn summary(&self) -> Result<Summary> {
        let store = self.fleet.store();
        let hosts = store.hosts().await?;
        let runs = store.runs(None, RECENT_RUNS).await?;
        Ok(Summary::of(&hosts, runs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: i64, success: Option<bool>) -> Run {
        Run {
            id,
            host: "a".into(),
            what: "command: true".into(),
            action: "00".into(),
            started: 0,
            finished: success.map(|_| 1),
            success,
            actor: None,
            launch: None,
            cancelled: false,
            outcome: None,
            exit_code: None,
            elapsed_ms: None,
            stdout: b"out".to_vec(),
            stderr: Vec::new(),
            truncated: false,
        }
    }

    #[test]
    fn hosts_are_counted_by_state_and_failures_listed_newest_first() {
        let mut hosts: Vec<Host> = ["a", "b", "c", "d"]
            .iter()
            .map(|n| Host::example(n, "192.0.2.1", 12444, &[]))
            .collect();
        hosts[0].status.reachable = Some(true);
        hosts[0].status.round_trip_ms = Some(3.0);
        hosts[1].status.reachable = Some(false);
        hosts[1].status.round_trip_ms = Some(9.0);
        hosts[2].enabled = false;
        hosts[2].status.reachable = Some(true);
        hosts[2].status.round_trip_ms = Some(8.0);
        hosts[3].trust.pending_key = Some("ssh-ed25519 AAAA".into());
        let mut runs: Vec<Run> = (1..=13).map(|id| run(id, Some(false))).collect();
        runs.push(run(14, Some(true)));
        runs.push(run(15, None));
        // Cancelled runs are no failures (issue 21: the dashboard listed them so).
        runs.push(Run {
            cancelled: true,
            ..run(16, Some(false))
        });
        let summary = Summary::of(&hosts, runs);
        let counts = (
            summary.hosts,
            summary.reachable,
            summary.unreachable,
            summary.unknown,
            summary.pending,
            summary.disabled,
        );
        assert_eq!(counts, (4, 1, 1, 1, 1, 1));
        let ids: Vec<i64> = summary.recent_failures.iter().map(|r| r.id).collect();
        assert_eq!(ids, (4..=13).rev().collect::<Vec<_>>());
        assert!(summary.recent_failures.iter().all(|r| r.stdout.is_empty()));
        // Only the enabled, reachable hosts' heartbeats.
        let slowest: Vec<_> = summary
            .slowest_heartbeats
            .iter()
            .map(|h| (h.host.as_str(), h.round_trip_ms))
            .collect();
        assert_eq!(slowest, [("a", 3.0)]);
    }

    #[test]
    fn the_slowest_heartbeats_come_first_and_only_five() {
        let hosts: Vec<Host> = (1..=7)
            .map(|i| {
                let mut h = Host::example(&format!("h{i}"), "192.0.2.1", 12444, &[]);
                h.status.reachable = Some(true);
                h.status.round_trip_ms = Some(f64::from(i % 4) + f64::from(i) / 10.0);
                h
            })
            .collect();
        let summary = Summary::of(&hosts, Vec::new());
        let names: Vec<_> = summary
            .slowest_heartbeats
            .iter()
            .map(|h| h.host.as_str())
            .collect();
        assert_eq!(names, ["h7", "h3", "h6", "h2", "h5"]);
    }
}
