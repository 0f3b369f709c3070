//! `otto-server serve`: the daemon. It runs a set of periodic jobs on every enabled host, on
//! one scheduler: heartbeats over the fleet's kept-alive connections (re-dialled with
//! backoff when lost) and, if asked, key rotation of hosts whose keys are older than the
//! rotation period.
//!
//! A job is a module with a type implementing `scheduler::Periodic`; adding one is one line in
//! [`serve`]. The schedules (`schedules.rs`) are a task of their own beside them. Beside them, when asked, it serves the HTTP API ([`crate::http`]) over the same
//! fleet, so API requests use the connections the daemon keeps.

pub mod callhome;
pub mod enroll;
mod heartbeat;
mod memory;
mod metrics;
pub mod ownership;
mod rotation;
mod scheduler;
mod schedules;
mod webhooks;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::fleet::Fleet;
use crate::http::{self, HttpError, HttpOptions};
use crate::ops::{Actor, Launches, Ops, ServeSettings};
use crate::store::StoreError;

use scheduler::Periodic;

/// The daemon's schedule.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Time between two heartbeats of a host.
    pub heartbeat_interval: Duration,
    /// Rotate keys older than this; None: never.
    pub rotate_every: Option<Duration>,
    /// Where to serve the HTTP API; None: nowhere.
    pub http: Option<HttpOptions>,
    /// The configuration file read, if any (the API shows it with the options).
    pub config_file: Option<std::path::PathBuf>,
    /// Where to listen for agents that call home; None: nowhere.
    pub call_home: Option<std::net::SocketAddr>,
}

/// Time requests in flight have to finish once the daemon is told to stop.
const HTTP_GRACE: Duration = Duration::from_secs(5);

/// Why the daemon stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The HTTP API cannot be served.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The call-home listener cannot be opened on the address (given).
    #[error("cannot listen for call-home agents on {0}: {1}")]
    CallHome(std::net::SocketAddr, std::io::Error),
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
    let mut jobs: Vec<Arc<dyn Periodic>> = vec![Arc::new(heartbeat::HeartbeatJob {
        every: options.heartbeat_interval,
    })];
    if let Some(every) = options.rotate_every {
        jobs.push(Arc::new(rotation::Rotation {
            every,
            check_every: options.heartbeat_interval,
        }));
    }
    // Listening (and the certificate) first: a daemon that cannot serve says so at once.
    // The call-home listener before the API's: once the API says it listens, so does it.
    let calls = match options.call_home {
        Some(listen) => {
            let listener = callhome::bind(listen)
                .await
                .map_err(|e| ServeError::CallHome(listen, e))?;
            tracing::info!(listen = %listener.local_addr().unwrap_or(listen), "listening for call-home agents");
            Some(listener)
        }
        None => None,
    };
    let api = match &options.http {
        Some(http) => {
            let settings = ServeSettings {
                config_file: options.config_file.clone(),
                heartbeat_interval: options.heartbeat_interval,
                rotate_every: options.rotate_every,
                ..ServeSettings::default()
            };
            Some(http::bind(fleet.clone(), http, settings).await?)
        }
        None => None,
    };
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut stopping = stopping.clone();
        async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        }
    };
    // The launches of the API and of the schedules, followed alike.
    let launches = Launches::default();
    let api = api.map(|api| tokio::spawn(api.run(launches.clone(), stopped())));
    let calls = calls.map(|listener| {
        let limits = callhome::CallLimits::default();
        let ops = Ops::new(fleet.clone(), Actor::Server);
        tokio::spawn(callhome::run(
            ops,
            fleet.clone(),
            listener,
            limits,
            stopped(),
        ))
    });
    let signal = async {
        shutdown.await;
        let _ = stop.send(true);
    };
    let ownership = Arc::new(ownership::Ownership::default());
    let (gained, gains) = tokio::sync::mpsc::unbounded_channel();
    let claims = ownership::run(fleet.clone(), ownership.clone(), gained, stopped());
    let ops = Ops::new(fleet, Actor::Server);
    tokio::join!(
        scheduler::run(ops.clone(), jobs, ownership, gains, stopped()),
        webhooks::run(ops.clone(), stopped()),
        metrics::run(ops.clone(), stopped()),
        schedules::run(ops, launches, stopped()),
        claims,
        signal
    );
    if let Some(mut api) = api
        && tokio::time::timeout(HTTP_GRACE, &mut api).await.is_err()
    {
        tracing::info!("HTTP requests still in flight after {HTTP_GRACE:?}: cut short");
        api.abort();
    }
    if let Some(calls) = calls {
        let _ = calls.await;
    }
    tracing::info!("stopped");
    Ok(())
}
