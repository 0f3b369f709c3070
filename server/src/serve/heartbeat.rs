//! The heartbeat job: asks each host for its version and facts, which the store records with
//! whether it answered.

use std::time::Duration;

use super::scheduler::{Periodic, Work};
use crate::model::Host;
use crate::ops::Ops;

/// A heartbeat of every host, every `every`.
pub struct HeartbeatJob {
    /// Time between two heartbeats of a host.
    pub every: Duration,
}

impl Periodic for HeartbeatJob {
    fn name(&self) -> &'static str {
        "heartbeat"
    }

    fn period(&self) -> Duration {
        self.every
    }

    fn due(&self, _host: &Host, _now: i64) -> bool {
        true
    }

    fn run<'a>(&'a self, ops: &'a Ops, host: Host) -> Work<'a> {
        Box::pin(async move {
            let name = host.name.clone();
            let p = ops.ping_one(host).await;
            match p.error {
                Some(e) if p.busy => tracing::info!(host = %name, "reachable, busy: {e}"),
                // Reached, though the answer could not be stored.
                Some(e) if p.reachable => {
                    tracing::error!(host = %name, "cannot record the heartbeat: {e}")
                }
                Some(e) => tracing::warn!(host = %name, "unreachable: {e}"),
                None => tracing::debug!(host = %name, "heartbeat answered"),
            }
            Ok(())
        })
    }

    fn cut_short(&self, _host: &str) -> String {
        "serve stopped: cut short the heartbeat in flight".into()
    }
}
