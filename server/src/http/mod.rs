//! The HTTP API, served by `serve`: JSON resources under `/api/v1`, over HTTPS (or plain HTTP
//! when asked for), each route a few lines over the service layer ([`crate::ops`]).
//!
//! - One module per resource (`hosts`, `groups`, `scripts`, `environment`, `uploads`, `users`,
//!   `session`, `events`, `apikeys`, `runs`, `control`, `summary`, `options`), its handlers annotated for
//!   the OpenAPI document (`openapi`); a new route is a handler there, a line in [`router`] and
//!   one in the document's list.
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

mod apikeys;
mod auth;
mod control;
mod environment;
mod error;
mod events;
mod groups;
mod hosts;
mod listen;
mod openapi;
mod options;
mod runs;
mod scripts;
mod session;
mod spool;
mod summary;
mod tls;
mod uploads;
mod users;
mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::fleet::Fleet;
use crate::ops::{HttpConnections, HttpSecurity, Launches, ServeSettings};
use error::ApiError;

pub use listen::ConnectionLimits;
pub use tls::{CERT_FILE, KEY_FILE, TlsError};
pub use web::{ASSETS, Asset, CSP};

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
pub struct Api {
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
    routes(Api {
        fleet,
        limiter: Arc::default(),
        launches: Launches::default(),
        settings: Arc::new(settings),
    })
}

/// The API's routes over `api`.
fn routes(api: Api) -> Router {
    Router::new()
        .route("/api/v1/hosts", get(hosts::list).post(hosts::add))
        .route(
            "/api/v1/hosts/{name}",
            get(hosts::show).patch(hosts::change).delete(hosts::remove),
        )
        .route("/api/v1/hosts/{name}/enable", post(hosts::enable))
        .route("/api/v1/hosts/{name}/disable", post(hosts::disable))
        .route("/api/v1/hosts/{name}/trust", post(hosts::trust))
        .route("/api/v1/hosts/{name}/approve", post(hosts::approve))
        .route("/api/v1/hosts/{name}/deny", post(hosts::deny))
        .route("/api/v1/hosts/{name}/key", get(hosts::server_key))
        .route("/api/v1/hosts/{name}/env", get(environment::host))
        .route(
            "/api/v1/imports",
            post(hosts::import).layer(DefaultBodyLimit::max(hosts::INVENTORY_LIMIT)),
        )
        .route("/api/v1/events", get(events::list))
        .route("/api/v1/apikeys", get(apikeys::list).post(apikeys::create))
        .route("/api/v1/apikeys/{id}", delete(apikeys::revoke))
        .route(
            "/api/v1/groups",
            get(groups::list)
                .post(groups::add)
                .delete(groups::remove_named),
        )
        .route("/api/v1/groups/{name}", delete(groups::remove))
        .route(
            "/api/v1/groups/{name}/hosts/{host}",
            put(groups::add_host).delete(groups::remove_host),
        )
        .route(
            "/api/v1/groups/{name}/scripts/{script}",
            put(groups::add_script).delete(groups::remove_script),
        )
        .route("/api/v1/scripts", get(scripts::list).post(scripts::add))
        .route(
            "/api/v1/scripts/{name}",
            get(scripts::show)
                .put(scripts::replace)
                .delete(scripts::remove),
        )
        .route(
            "/api/v1/scripts/{name}/attachments",
            put(scripts::attach).delete(scripts::detach),
        )
        .route("/api/v1/env", get(environment::list))
        .route(
            "/api/v1/env/{name}",
            put(environment::set).delete(environment::unset),
        )
        .route("/api/v1/uploads", post(uploads::upload))
        .route("/api/v1/users", get(users::list).post(users::add))
        .route("/api/v1/users/{name}/disable", post(users::disable))
        .route("/api/v1/users/{name}/enable", post(users::enable))
        .route(
            "/api/v1/users/{name}/permissions",
            put(users::set_permissions),
        )
        .route("/api/v1/users/{name}/password", put(users::set_password))
        .route("/api/v1/users/me/password", post(session::change_password))
        .route(
            "/api/v1/session",
            get(session::show)
                .post(session::sign_in)
                .delete(session::sign_out),
        )
        .route("/api/v1/runs", get(runs::list).post(runs::start))
        .route("/api/v1/runs/{id}", get(runs::show))
        .route("/api/v1/runs/{id}/cancel", post(runs::cancel))
        .route("/api/v1/launches/{id}/events", get(runs::events))
        .route("/api/v1/launches/{id}/cancel", post(runs::cancel_launch))
        .route("/api/v1/control", post(control::control))
        .route("/api/v1/ping", post(control::ping))
        .route("/api/v1/summary", get(summary::show))
        .route("/api/v1/check", get(summary::check))
        .route("/api/v1/options", get(options::show))
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/", get(web::index))
        .route("/ui/{*path}", get(web::file))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "this route does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
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
    tracing::info!(address = %local, %fingerprint, "HTTPS API listening");
    let certificate = match given {
        Some((cert, _)) => cert.to_path_buf(),
        None => fleet.data_dir().join(CERT_FILE),
    };
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

impl Bound {
    /// Serves until `shutdown` completes, then lets requests in flight finish (those
    /// following a run live end at once; the run goes on).
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let launches = Launches::default();
        let app = routes(Api {
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
