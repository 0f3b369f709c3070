//! `otto-server serve`: the daemon. Heartbeats every enabled host on an interval over the
//! fleet's kept-alive connections (re-dialled with backoff when lost), and rotates each host's
//! keys when they are older than the rotation period.
//!
//! Hosts are independent: each tick starts a task for every host whose previous one has ended,
//! and every wait in such a task has a deadline, so a slow or silent host only skips its own
//! ticks and never delays the others. When the shutdown future completes, the daemon aborts the
//! work in flight, records for each host it cut short what that was (a `cut-short` event), and
//! returns.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::{Id, JoinSet};

use crate::actions;
use crate::fleet::Fleet;
use crate::model::{EventKind, Host, now_ms};
use crate::store::StoreError;

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
    // The host each task in flight works for with whether it is rotating keys, and those hosts.
    let mut tasks: HashMap<Id, (String, Arc<AtomicBool>)> = HashMap::new();
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
                let hosts = match fleet.store().hosts().await {
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
                    let rotating = Arc::new(AtomicBool::new(false));
                    let task = work.spawn(tend(
                        fleet.clone(),
                        host,
                        options.rotate_every,
                        rotating.clone(),
                    ));
                    tasks.insert(task.id(), (name, rotating));
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
                if let Some((host, _)) = tasks.remove(&id) {
                    busy.remove(&host);
                }
            }
        }
    }
    // Abort what is in flight and learn which tasks the abort really cut short (a task may
    // have ended on its own meanwhile).
    work.abort_all();
    let mut cut = Vec::new();
    while let Some(done) = work.join_next().await {
        match done {
            Ok(()) => {}
            Err(e) if e.is_cancelled() => {
                if let Some((host, rotating)) = tasks.remove(&e.id()) {
                    cut.push((host, rotating.load(Ordering::Relaxed)));
                }
            }
            Err(e) => tracing::error!("a host's task failed: {e}"),
        }
    }
    cut.sort();
    for (host, rotating) in cut {
        let detail = cut_short(&host, rotating);
        tracing::warn!(host = %host, "{detail}");
        if let Err(e) = fleet
            .store()
            .log(Some(&host), EventKind::CutShort, &detail)
            .await
        {
            tracing::error!(host = %host, "cannot record what was cut short: {e}");
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// In words, what stopping the daemon cut short for a host.
fn cut_short(host: &str, rotating: bool) -> String {
    if rotating {
        format!(
            "serve stopped: cut short the key rotation in flight (the agent may have rotated; \
             a new server key may be kept beside the old as keys/{host}.key.next)"
        )
    } else {
        "serve stopped: cut short the heartbeat in flight".into()
    }
}

/// One host's turn: a heartbeat, then a key rotation if one is due (`rotating` is set then).
async fn tend(
    fleet: Arc<Fleet>,
    host: Host,
    rotate_every: Option<Duration>,
    rotating: Arc<AtomicBool>,
) {
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
    let host = match fleet.store().host(&name).await {
        Ok(host) if host.trust.last_rotation.is_none_or(|at| at <= due_before) => host,
        Ok(_) => return,
        Err(e) => {
            tracing::error!(host = %name, "cannot read the host: {e}");
            return;
        }
    };
    rotating.store(true, Ordering::Relaxed);
    for done in actions::rotate(&fleet, vec![host]).await {
        if done.success {
            tracing::info!(host = %done.host, "keys rotated: {}", done.detail);
        } else {
            tracing::error!(host = %done.host, "key rotation failed: {}", done.detail);
        }
    }
}
