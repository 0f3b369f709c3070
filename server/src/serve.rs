//! `otto-server serve`: the daemon. Heartbeats every host on an interval over the fleet's
//! kept-alive connections (re-dialled with backoff when lost), rotates each host's keys when
//! they are older than the rotation period, and on SIGTERM or SIGINT stops scheduling and
//! finishes the round in flight before it returns.

use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;

use crate::actions;
use crate::fleet::Fleet;
use crate::store::{StoreError, now_ms};

/// The daemon's schedule.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Time between two heartbeat rounds.
    pub heartbeat_interval: Duration,
    /// Rotate keys older than this; None: never.
    pub rotate_every: Option<Duration>,
}

/// Why the daemon stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Signal handlers could not be installed.
    #[error("cannot handle signals: {0}")]
    Signals(std::io::Error),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Runs until SIGTERM or SIGINT.
pub async fn serve(fleet: Arc<Fleet>, options: ServeOptions) -> Result<(), ServeError> {
    let mut term = signal(SignalKind::terminate()).map_err(ServeError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServeError::Signals)?;
    let mut tick = tokio::time::interval(options.heartbeat_interval.max(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rounds = JoinSet::new();
    tracing::info!(
        data_dir = %fleet.data_dir().display(),
        interval = ?options.heartbeat_interval,
        rotate_every = ?options.rotate_every,
        "serving"
    );
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = tick.tick() => {
                if rounds.is_empty() {
                    rounds.spawn(round(fleet.clone(), options.rotate_every));
                } else {
                    tracing::warn!("the previous round is still running; skipping this one");
                }
            }
            Some(done) = rounds.join_next(), if !rounds.is_empty() => {
                if let Ok(Err(e)) = done {
                    tracing::error!("round failed: {e}");
                }
            }
        }
    }
    if !rounds.is_empty() {
        tracing::info!("stopping: finishing the round in flight");
    }
    while let Some(done) = rounds.join_next().await {
        if let Ok(Err(e)) = done {
            tracing::error!("round failed: {e}");
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// One round: heartbeat every enabled host, then rotate the keys that are due.
async fn round(fleet: Arc<Fleet>, rotate_every: Option<Duration>) -> Result<(), StoreError> {
    let hosts: Vec<_> = fleet
        .store()
        .hosts()?
        .into_iter()
        .filter(|h| h.enabled)
        .collect();
    let total = hosts.len();
    let pings = actions::ping(&fleet, hosts).await;
    let reachable: Vec<String> = pings
        .iter()
        .filter(|p| p.reachable)
        .map(|p| p.host.clone())
        .collect();
    for p in pings.iter().filter(|p| !p.reachable) {
        tracing::warn!(host = %p.host, "unreachable: {}", p.error.as_deref().unwrap_or("?"));
    }
    tracing::info!("heartbeat: {} of {total} hosts reachable", reachable.len());
    let Some(every) = rotate_every else {
        return Ok(());
    };
    let due_before = now_ms() - i64::try_from(every.as_millis()).unwrap_or(i64::MAX);
    let due: Vec<_> = {
        let store = fleet.store();
        reachable
            .iter()
            .filter_map(|name| store.host(name).ok())
            .filter(|h| h.trust.last_rotation.is_none_or(|at| at <= due_before))
            .collect()
    };
    if due.is_empty() {
        return Ok(());
    }
    for done in actions::rotate(&fleet, due).await {
        if done.success {
            tracing::info!(host = %done.host, "keys rotated: {}", done.detail);
        } else {
            tracing::error!(host = %done.host, "key rotation failed: {}", done.detail);
        }
    }
    Ok(())
}
