//! The fleet at a glance: how many hosts are reachable, unreachable, waiting for a key's
//! approval, and the runs that failed lately.

use serde::Serialize;

use super::{Ops, Result};
use crate::model::{Host, Run};

/// Runs looked at for the recent failures.
const RECENT_RUNS: u32 = 100;
/// Most failures listed.
const MAX_FAILURES: usize = 10;

/// The fleet at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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
    /// output.
    pub recent_failures: Vec<Run>,
}

impl Summary {
    /// The summary of `hosts` and `runs` (oldest first).
    fn of(hosts: &[Host], runs: Vec<Run>) -> Summary {
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
                .filter(|r| r.success == Some(false))
                .take(MAX_FAILURES)
                .map(|r| Run {
                    stdout: Vec::new(),
                    stderr: Vec::new(),
                    ..r
                })
                .collect(),
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
        hosts[1].status.reachable = Some(false);
        hosts[2].enabled = false;
        hosts[2].status.reachable = Some(true);
        hosts[3].trust.pending_key = Some("ssh-ed25519 AAAA".into());
        let mut runs: Vec<Run> = (1..=13).map(|id| run(id, Some(false))).collect();
        runs.push(run(14, Some(true)));
        runs.push(run(15, None));
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
    }
}
