//! `otto-server serve`: the daemon. Heartbeats every enabled host on an interval over the
//! fleet's kept-alive connections (re-dialled with backoff when lost), and rotates each host's
//! keys when they are older than the rotation period.
//!
//! Hosts are independent: each tick starts a task for every host whose previous one has ended,
//! and every wait in such a task has a deadline, so a slow or silent host only skips its own
//! ticks and never delays the others. When the shutdown future completes, the daemon aborts the
//! work in flight, logs which hosts it cut short, and returns.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::{Id, JoinSet};

use crate::actions;
use crate::fleet::Fleet;
use crate::store::{Host, StoreError, now_ms};

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
    let mut tick = tokio::time::interval(options.heartbeat_interval.max(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut work = JoinSet::new();
    // The host each task in flight works for, and those hosts.
    let mut tasks: HashMap<Id, String> = HashMap::new();
    let mut busy: HashSet<String> = HashSet::new();
    tracing::info!(
        data_dir = %fleet.data_dir().display(),
        interval = ?options.heartbeat_interval,
        rotate_every = ?options.rotate_every,
        "serving"
    );
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tick.tick() => {
                let hosts = match fleet.store().hosts() {
                    Ok(hosts) => hosts,
                    Err(e) => {
                        tracing::error!("cannot read the hosts: {e}");
                        continue;
                    }
                };
                for host in hosts.into_iter().filter(|h| h.enabled) {
                    if busy.contains(&host.name) {
                        tracing::debug!(host = %host.name, "still busy; skipping this tick");
                        continue;
                    }
                    busy.insert(host.name.clone());
                    let name = host.name.clone();
                    let task = work.spawn(tend(fleet.clone(), host, options.rotate_every));
                    tasks.insert(task.id(), name);
                }
            }
            Some(done) = work.join_next_with_id(), if !work.is_empty() => {
                let id = match done {
                    Ok((id, ())) => id,
                    Err(e) => {
                        tracing::error!("a host's task failed: {e}");
                        e.id()
                    }
                };
                if let Some(host) = tasks.remove(&id) {
                    busy.remove(&host);
                }
            }
        }
    }
    let mut cut: Vec<&String> = busy.iter().collect();
    cut.sort();
    for host in cut {
        tracing::warn!(host = %host, "stopping: cut short the heartbeat or key rotation in flight for {host}");
    }
    work.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// One host's turn: a heartbeat, then a key rotation if one is due.
async fn tend(fleet: Arc<Fleet>, host: Host, rotate_every: Option<Duration>) {
    let name = host.name.clone();
    let reachable = actions::ping(&fleet, vec![host])
        .await
        .into_iter()
        .any(|p| match p.error {
            // Reached, though the answer could not be stored.
            Some(e) if p.reachable => {
                tracing::error!(host = %name, "cannot record the heartbeat: {e}");
                true
            }
            Some(e) => {
                tracing::warn!(host = %name, "unreachable: {e}");
                false
            }
            None => {
                tracing::debug!(host = %name, "heartbeat answered");
                p.reachable
            }
        });
    let Some(every) = rotate_every.filter(|_| reachable) else {
        return;
    };
    let due_before = now_ms() - i64::try_from(every.as_millis()).unwrap_or(i64::MAX);
    let host = match fleet.store().host(&name) {
        Ok(host) if host.trust.last_rotation.is_none_or(|at| at <= due_before) => host,
        Ok(_) => return,
        Err(e) => {
            tracing::error!(host = %name, "cannot read the host: {e}");
            return;
        }
    };
    for done in actions::rotate(&fleet, vec![host]).await {
        if done.success {
            tracing::info!(host = %done.host, "keys rotated: {}", done.detail);
        } else {
            tracing::error!(host = %done.host, "key rotation failed: {}", done.detail);
        }
    }
}
