//! The HTTP API, served by `serve`: JSON resources under `/api/v1`, over HTTPS (or plain HTTP
//! when asked for), each route a few lines over the service layer ([`crate::ops`]).
//!
//! - One module per resource (`hosts`, `groups`, `scripts`, `environment`, `uploads`, `users`,
//!   `session`, `events`, `apikeys`, `runs`, `control`, `summary`, `servers`, `options`), its
//!   handlers annotated for the OpenAPI document (`openapi`); a new route is a handler there
//!   and a line in `api_routes`, which serves it and documents it from the same annotation.
//! - `auth`: every route but sign-in takes an `Auth` (401 without a working API key or
//!   session), and a handler gets the operations only by naming the permission it needs in
//!   its type (`Auth<need::Hosts>`: 403 without it, before the request is read).
//! - `spool`: bodies too large for memory (attachments, uploads), streamed to a temporary file.
//! - `error`: every failure answers `{"error": {"kind", "message"}}` with the status of the
//!   operation's error kind; bodies, queries and paths that do not parse are 4xx the same way.
//! - `tls`: the certificate (given, or self-signed and kept in the data directory);
//!   `listen`: the connections, each in its own task, capped in number (in all and per
//!   source, a newcomer displacing a stalled one) and in the time a client may take to say
//!   what it wants.
//! - `web`: the web UI's files (`/`, `/ui/…`), built into the binary.
//! - `relay`: `/relay/v1/…`, a channel to an agent that called home here, for another server
//!   of the fleet (not part of the API).

mod apikeys;
mod auth;
mod control;
mod enrollment;
mod environment;
mod error;
mod events;
mod fetches;
mod groups;
mod hosts;
mod listen;
mod metrics;
mod openapi;
mod options;
mod relay;
mod runs;
mod schedules;
mod scripts;
mod servers;
mod session;
mod spool;
mod summary;
mod tls;
mod updates;
mod uploads;
mod users;
mod web;
mod webhooks;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::fleet::Fleet;
use crate::ops::{HttpConnections, HttpSecurity, Launches, ServeSettings};
use error::ApiError;

pub use listen::ConnectionLimits;
pub use tls::{CERT_FILE, KEY_FILE, TlsError};
pub use web::CSP;

/// The largest request body a JSON route takes.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Where and how the API is served.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// The address and port to listen on.
    pub listen: SocketAddr,
    /// HTTPS or plain HTTP.
    pub tls: Tls,
    /// What its connections may take.
    pub limits: ConnectionLimits,
    /// Where the other servers on the database reach it, to use the agents that called home
    /// here ([`crate::relay`]); default: derived from `listen`.
    pub relay_address: Option<String>,
}

/// How connections are secured.
#[derive(Debug, Clone)]
pub enum Tls {
    /// HTTPS with a self-signed certificate kept in the data directory ([`CERT_FILE`],
    /// [`KEY_FILE`]), made on first start.
    SelfSigned,
    /// HTTPS with this certificate (chain) and key, PEM files.
    Given {
        /// The certificate, then any intermediates.
        cert: PathBuf,
        /// Its private key.
        key: PathBuf,
    },
    /// Plain HTTP: only where something else secures the connection.
    Plain,
}

/// Why the API cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The address cannot be listened on.
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    /// The certificate.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// The state every handler shares.
#[derive(Clone)]
pub struct ApiState {
    fleet: Arc<Fleet>,
    /// Recent failed sign-ins.
    limiter: Arc<session::Limiter>,
    /// The runs started through the API, followed live.
    launches: Launches,
    /// What `serve` runs with, for the options it shows.
    settings: Arc<ServeSettings>,
}

/// The API's routes over `fleet`, for a `serve` started with `settings`.
pub fn router(fleet: Arc<Fleet>, settings: ServeSettings) -> Router {
    routes(ApiState {
        fleet,
        limiter: Arc::default(),
        launches: Launches::default(),
        settings: Arc::new(settings),
    })
}

/// Every route of the API, each with its documentation: `routes!` reads the path and the
/// methods from each handler's `#[utoipa::path]` and both registers the handler there and adds
/// its operation to the OpenAPI document. Only these are the API's routes ([`routes`] adds
/// nothing under `/api`), so a route cannot be served undocumented nor documented and not
/// served. Each `routes!` names the handlers of one path: given several, utoipa-axum would
/// serve each handler on every one of them (`each_route_group_is_one_path` holds this).
fn api_routes() -> Vec<UtoipaMethodRouter<ApiState>> {
    vec![
        routes!(hosts::list, hosts::add),
        routes!(hosts::selection),
        routes!(hosts::show, hosts::change, hosts::remove),
        routes!(hosts::enable),
        routes!(hosts::disable),
        routes!(hosts::trust),
        routes!(hosts::approve),
        routes!(hosts::deny),
        routes!(hosts::server_key),
        routes!(environment::host),
        routes!(hosts::import).layer(DefaultBodyLimit::max(hosts::INVENTORY_LIMIT)),
        routes!(events::list),
        routes!(events::changes),
        routes!(apikeys::list, apikeys::create),
        routes!(apikeys::revoke),
        routes!(groups::list, groups::add, groups::remove_named),
        routes!(groups::remove),
        routes!(groups::add_host, groups::remove_host),
        routes!(groups::add_script, groups::remove_script),
        routes!(scripts::list, scripts::add),
        routes!(scripts::show, scripts::replace, scripts::remove),
        routes!(scripts::attach, scripts::detach),
        routes!(environment::list),
        routes!(environment::set, environment::unset),
        routes!(uploads::upload),
        routes!(users::list, users::add),
        routes!(users::disable),
        routes!(users::enable),
        routes!(users::set_permissions),
        routes!(users::set_password),
        routes!(session::change_password),
        routes!(session::show, session::sign_in, session::sign_out),
        routes!(runs::list, runs::start),
        routes!(runs::dry_run),
        routes!(runs::show),
        routes!(runs::cancel),
        routes!(runs::events),
        routes!(runs::cancel_launch),
        routes!(runs::launches),
        routes!(runs::launch),
        routes!(runs::relaunch),
        routes!(webhooks::list, webhooks::add),
        routes!(webhooks::remove),
        routes!(webhooks::deliveries),
        routes!(metrics::fleet),
        routes!(metrics::host),
        routes!(control::control),
        routes!(fetches::fetch),
        routes!(fetches::copy),
        routes!(fetches::dry_run),
        routes!(fetches::dry_run_upload),
        routes!(control::dry_run),
        routes!(control::ping),
        routes!(summary::show),
        routes!(summary::check),
        routes!(servers::list),
        routes!(options::show),
        routes!(openapi::document),
        routes!(schedules::list, schedules::add),
        routes!(schedules::show, schedules::change, schedules::remove),
        routes!(enrollment::tokens, enrollment::add_token),
        routes!(enrollment::revoke_token),
        routes!(enrollment::rules, enrollment::add_rule),
        routes!(enrollment::remove_rule),
        routes!(enrollment::fingerprint),
        routes!(enrollment::pending),
        routes!(enrollment::approve),
        routes!(enrollment::deny),
        routes!(updates::start),
        routes!(updates::agents),
    ]
}

/// The API's routes over `api`, the web UI's, and the API's document (for `openapi.json`).
fn routes(api: ApiState) -> Router {
    let (router, document) = api_routes()
        .into_iter()
        .fold(openapi::base(), OpenApiRouter::routes)
        .split_for_parts();
    router
        .route("/", get(web::index))
        .route("/ui/{*path}", get(web::file))
        .route(crate::relay::ROUTE, get(relay::serve))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "this route does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(Extension(Arc::new(openapi::complete(document))))
        .with_state(api)
}

/// The API, listening and ready to serve.
pub struct Bound {
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
    limits: ConnectionLimits,
    fleet: Arc<Fleet>,
    settings: ServeSettings,
}

/// Listens as `options` say, with the certificate ready (made if it is the self-signed one and
/// missing); logs the address and the certificate's fingerprint. `settings` are serve's, which
/// the API shows with where it listens and its certificate.
pub async fn bind(
    fleet: Arc<Fleet>,
    options: &HttpOptions,
    mut settings: ServeSettings,
) -> Result<Bound, HttpError> {
    let tcp = TcpListener::bind(options.listen)
        .await
        .map_err(|e| HttpError::Listen(options.listen, e))?;
    let local = tcp
        .local_addr()
        .map_err(|e| HttpError::Listen(options.listen, e))?;
    settings.http_listen = Some(local);
    settings.http_connections = Some(HttpConnections {
        total: options.limits.connections,
        per_source: options.limits.per_source,
    });
    let given = match &options.tls {
        Tls::Plain => {
            tracing::info!(address = %local, "HTTP API listening (plain HTTP)");
            settings.http_security = HttpSecurity::Plain;
            return Ok(Bound {
                tcp,
                tls: None,
                limits: options.limits,
                fleet,
                settings,
            });
        }
        Tls::SelfSigned => None,
        Tls::Given { cert, key } => Some((cert.as_path(), key.as_path())),
    };
    let (config, fingerprint) = tls::server_config(given, fleet.data_dir(), local)?;
    let certificate = match given {
        Some((cert, _)) => cert.to_path_buf(),
        None => fleet.data_dir().join(CERT_FILE),
    };
    advertise_relay(&fleet, options, local, &certificate).await;
    tracing::info!(address = %local, %fingerprint, "HTTPS API listening");
    settings.http_security = HttpSecurity::Tls {
        certificate,
        fingerprint,
    };
    Ok(Bound {
        tcp,
        tls: Some(TlsAcceptor::from(config)),
        limits: options.limits,
        fleet,
        settings,
    })
}

/// With several servers on one database, says where this one relays channels to the agents
/// that called home here ([`crate::relay`]): `options.relay_address`, else the address it
/// listens on (`local`), else this machine's name when that is any address; and the
/// certificate it answers with (the PEM file `certificate`). Logged, not fatal, when it fails:
/// only those agents are then out of the others' reach.
async fn advertise_relay(
    fleet: &Fleet,
    options: &HttpOptions,
    local: SocketAddr,
    certificate: &std::path::Path,
) {
    if fleet.store().lease_id().is_none() {
        return;
    }
    let address = options.relay_address.clone().unwrap_or_else(|| {
        if local.ip().is_unspecified() {
            let machine = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "localhost".into());
            format!("{machine}:{}", local.port())
        } else {
            local.to_string()
        }
    });
    let advertised = match std::fs::read_to_string(certificate) {
        Ok(pem) => fleet
            .store()
            .advertise_relay(&address, &pem)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(format!("{}: {e}", certificate.display())),
    };
    match advertised {
        Ok(()) => tracing::info!(%address, "relaying to the agents that call home here"),
        Err(e) => tracing::warn!(
            %address,
            "the other servers cannot reach the agents that call home here: {e}"
        ),
    }
}

impl Bound {
    /// Serves until `shutdown` completes, then lets requests in flight finish (those
    /// following a run live end at once; the run goes on). `launches` are the runs started
    /// in the background (through the API, or by a schedule).
    pub async fn run(self, launches: Launches, shutdown: impl Future<Output = ()>) {
        let app = routes(ApiState {
            fleet: self.fleet,
            limiter: Arc::default(),
            launches: launches.clone(),
            settings: Arc::new(self.settings),
        });
        let shutdown = async move {
            shutdown.await;
            launches.close();
        };
        listen::serve(self.tcp, self.tls, app, self.limits, shutdown).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `routes!` of handlers of two paths would serve each handler on both paths, on one of
    /// them undocumented.
    #[test]
    fn each_route_group_is_one_path() {
        for (_, paths, _) in api_routes() {
            let paths: Vec<&String> = paths.paths.keys().collect();
            assert_eq!(paths.len(), 1, "{paths:?}");
        }
    }
}
