//! `otto-server serve`: the daemon. It runs a set of periodic jobs on every enabled host, on
//! one scheduler: heartbeats over the fleet's kept-alive connections (re-dialled with
//! backoff when lost) and, if asked, key rotation of hosts whose keys are older than the
//! rotation period.
//!
//! A job is a module with a type implementing `scheduler::Job`; adding one is one line in
//! [`serve`].

mod heartbeat;
mod rotation;
mod scheduler;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::fleet::Fleet;
use crate::store::StoreError;

use scheduler::Job;

/// The daemon's schedule.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Time between two heartbeats of a host.
    pub heartbeat_interval: Duration,
    /// Rotate keys older than this; None: never.
    pub rotate_every: Option<Duration>,
}

/// Why the daemon stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Runs until `shutdown` completes.
pub async fn serve(
    fleet: Arc<Fleet>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    tracing::info!(
        data_dir = %fleet.data_dir().display(),
        interval = ?options.heartbeat_interval,
        rotate_every = ?options.rotate_every,
        "serving"
    );
    // In the order they work on a host when due together: the heartbeat first, so that a
    // rotation sees whether the host has just answered.
    let mut jobs: Vec<Arc<dyn Job>> = vec![Arc::new(heartbeat::Heartbeat {
        every: options.heartbeat_interval,
    })];
    if let Some(every) = options.rotate_every {
        jobs.push(Arc::new(rotation::Rotation {
            every,
            check_every: options.heartbeat_interval,
        }));
    }
    scheduler::run(fleet, jobs, shutdown).await;
    tracing::info!("stopped");
    Ok(())
}
