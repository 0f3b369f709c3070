//! The server's options as a running `serve` uses them, for users with the permission
//! `options`: its own (heartbeats, rotation, where the HTTP API listens and its certificate)
//! and the fleet's (data directory, dial and answer limits). Nothing secret is among them.
//! Read-only: `server.toml` and serve's flags set them, read when `serve` starts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

use crate::model::Permission;

use super::{Ops, Result};

/// What `serve` was started with, beside the fleet's options.
#[derive(Debug, Clone, Default)]
pub struct ServeSettings {
    /// The configuration file it read, if any.
    pub config_file: Option<PathBuf>,
    /// Time between two heartbeats of a host.
    pub heartbeat_interval: Duration,
    /// Key rotation period; None: no rotation.
    pub rotate_every: Option<Duration>,
    /// Where the HTTP API listens.
    pub http_listen: Option<SocketAddr>,
    /// How its connections are secured.
    pub http_security: HttpSecurity,
    /// Most connections to the HTTP API at once, and from one source (an IPv4 address, or an
    /// IPv6 /64).
    pub http_connections: Option<HttpConnections>,
}

/// How many connections the HTTP API takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpConnections {
    /// At once.
    pub total: usize,
    /// At once from one source.
    pub per_source: usize,
}

/// How the HTTP API's connections are secured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum HttpSecurity {
    /// HTTPS with this certificate file, whose SHA-256 fingerprint is this.
    Tls {
        /// The certificate file (given, or the self-signed one in the data directory).
        certificate: PathBuf,
        /// Its SHA-256 fingerprint, `AB:CD:…`.
        fingerprint: String,
    },
    /// Plain HTTP.
    #[default]
    Plain,
}

/// The options of the running server, as the options page shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ServerOptions {
    /// The configuration file `serve` read when it started (none: flags and defaults only).
    pub config_file: Option<String>,
    /// The data directory: database, keys, certificate.
    pub data_dir: String,
    /// Where the HTTP API listens.
    pub http_listen: Option<String>,
    /// `https` or `http` (plain, only behind a TLS proxy).
    pub http_scheme: &'static str,
    /// The HTTPS certificate file.
    pub tls_certificate: Option<String>,
    /// Its SHA-256 fingerprint, `AB:CD:…`, for clients to pin.
    pub tls_fingerprint: Option<String>,
    /// Seconds between two heartbeats of a host.
    pub heartbeat_interval_secs: u64,
    /// Seconds between two key rotations of a host; none: no rotation.
    pub rotate_every_secs: Option<u64>,
    /// Seconds a dial (connect, handshake, authentication) may take.
    pub dial_timeout_secs: u64,
    /// Dials in progress at once, and hosts one operation works on at once.
    pub dial_limit: usize,
    /// Seconds an agent has to answer a request.
    pub answer_timeout_secs: u64,
    /// Seconds an upload or a run may go without progress or a sign of life.
    pub stall_timeout_secs: u64,
    /// Most connections to the HTTP API at once (`--http-connections`).
    pub http_connections: Option<usize>,
    /// Most of them from one source, an IPv4 address or an IPv6 /64
    /// (`--http-connections-per-source`).
    pub http_connections_per_source: Option<usize>,
}

impl Ops {
    /// The options of the server running as `serve` says: needs the permission `options`.
    pub fn server_options(&self, serve: &ServeSettings) -> Result<ServerOptions> {
        self.require(Permission::Options)?;
        let fleet = self.fleet.options();
        let path = |p: &std::path::Path| p.display().to_string();
        let (scheme, certificate, fingerprint) = match &serve.http_security {
            HttpSecurity::Tls {
                certificate,
                fingerprint,
            } => ("https", Some(path(certificate)), Some(fingerprint.clone())),
            HttpSecurity::Plain => ("http", None, None),
        };
        Ok(ServerOptions {
            config_file: serve.config_file.as_deref().map(path),
            data_dir: path(self.fleet.data_dir()),
            http_listen: serve.http_listen.map(|a| a.to_string()),
            http_scheme: scheme,
            tls_certificate: certificate,
            tls_fingerprint: fingerprint,
            heartbeat_interval_secs: serve.heartbeat_interval.as_secs(),
            rotate_every_secs: serve.rotate_every.map(|d| d.as_secs()),
            dial_timeout_secs: fleet.dial_timeout.as_secs(),
            dial_limit: self.fleet.dial_limit(),
            answer_timeout_secs: fleet.limits.answer.as_secs(),
            stall_timeout_secs: fleet.limits.stall.as_secs(),
            http_connections: serve.http_connections.map(|c| c.total),
            http_connections_per_source: serve.http_connections.map(|c| c.per_source),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Permissions, RunLevel};
    use crate::ops::ErrorKind;
    use crate::ops::testing::fixture;

    #[tokio::test]
    async fn the_options_are_the_fleets_and_serves_and_need_the_permission() {
        let (dir, ops) = fixture().await;
        let serve = ServeSettings {
            config_file: Some("/etc/otto/server.toml".into()),
            heartbeat_interval: Duration::from_secs(300),
            rotate_every: None,
            http_listen: Some("127.0.0.1:8443".parse().unwrap()),
            http_security: HttpSecurity::Tls {
                certificate: "/c.pem".into(),
                fingerprint: "AB:CD".into(),
            },
            http_connections: Some(HttpConnections {
                total: 1024,
                per_source: 64,
            }),
        };
        let options = ops.server_options(&serve).unwrap();
        assert_eq!(options.data_dir, dir.path().display().to_string());
        assert_eq!(
            options.config_file.as_deref(),
            Some("/etc/otto/server.toml")
        );
        assert_eq!(options.http_scheme, "https");
        assert_eq!(options.tls_fingerprint.as_deref(), Some("AB:CD"));
        assert_eq!(options.heartbeat_interval_secs, 300);
        assert_eq!(options.rotate_every_secs, None);
        assert_eq!(options.dial_timeout_secs, 15);
        assert_eq!(options.answer_timeout_secs, 10);
        assert_eq!(
            (
                options.http_connections,
                options.http_connections_per_source
            ),
            (Some(1024), Some(64))
        );

        let reader = ops.clone().limited_to(Permissions {
            admin: false,
            run: RunLevel::ReadOnly,
            modify: [Permission::Hosts].into_iter().collect(),
        });
        let refused = reader.server_options(&serve).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Forbidden);
    }
}
