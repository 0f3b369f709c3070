//! The key rotation job: gives a host new keys (server and agent) once its keys are older than
//! the rotation period, if the host answered its last heartbeat.

use std::time::Duration;

use super::scheduler::{JobError, Periodic, Work};
use crate::model::Host;
use crate::ops::{Ops, Targets};

/// Rotation of keys older than `every`, looked for every `check_every`.
pub struct Rotation {
    /// The keys' longest life.
    pub every: Duration,
    /// How often hosts are looked at.
    pub check_every: Duration,
}

/// Whether keys last rotated at `last_rotation` (never: None) are due at `now` for a rotation
/// every `every` (times in ms since the epoch).
fn rotation_due(last_rotation: Option<i64>, every: Duration, now: i64) -> bool {
    let due_before = now.saturating_sub(i64::try_from(every.as_millis()).unwrap_or(i64::MAX));
    last_rotation.is_none_or(|at| at <= due_before)
}

impl Periodic for Rotation {
    fn name(&self) -> &'static str {
        "key rotation"
    }

    fn period(&self) -> Duration {
        self.check_every
    }

    fn due(&self, host: &Host, now: i64) -> bool {
        host.status.reachable == Some(true)
            && rotation_due(host.trust.last_rotation, self.every, now)
    }

    fn run<'a>(&'a self, ops: &'a Ops, host: Host) -> Work<'a> {
        Box::pin(async move {
            let mut failed = None;
            let rotated = ops
                .rotate(&Targets::hosts([host.name]))
                .await
                .map_err(|e| JobError::Failed(format!("key rotation failed: {e}")))?;
            for done in rotated {
                if done.success {
                    tracing::info!(host = %done.host, "keys rotated: {}", done.detail);
                } else {
                    failed = Some(JobError::Failed(format!(
                        "key rotation failed: {}",
                        done.detail
                    )));
                }
            }
            failed.map_or(Ok(()), Err)
        })
    }

    fn cut_short(&self, host: &str) -> String {
        format!(
            "serve stopped: cut short the key rotation in flight of {host} (the agent may have \
             rotated; the new server key is kept beside the old in the store, and taken into \
             use at the next connection if the agent accepts only it)"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    #[test]
    fn keys_are_due_once_older_than_the_period() {
        let week = Duration::from_secs(7 * 86_400);
        let now = 100 * DAY;
        assert!(rotation_due(None, week, now), "never rotated");
        assert!(!rotation_due(Some(now - 6 * DAY), week, now));
        assert!(rotation_due(Some(now - 7 * DAY), week, now));
        assert!(rotation_due(Some(now - 30 * DAY), week, now));
        // A period too long for the clock is never due again, and never overflows.
        assert!(!rotation_due(Some(now), Duration::MAX, now));
        assert!(rotation_due(None, Duration::MAX, now));
    }
}
