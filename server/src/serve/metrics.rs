//! The metrics' job: every [`EVERY`] (and at the start), the fleet's reachable hosts are
//! sampled and old hours merged into days ([`Ops::keep_metrics`]).

use std::future::Future;
use std::time::Duration;

use crate::ops::Ops;

/// How often the fleet is sampled.
pub const EVERY: Duration = Duration::from_secs(60);

/// Keeps the metrics, as `ops` (the server's own), until `stopped` completes.
pub async fn run(ops: Ops, stopped: impl Future<Output = ()>) {
    tokio::pin!(stopped);
    loop {
        if let Err(e) = ops.keep_metrics().await {
            tracing::warn!("metrics: {e}");
        }
        tokio::select! {
            () = &mut stopped => return,
            () = tokio::time::sleep(EVERY) => {}
        }
    }
}
