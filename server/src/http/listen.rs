//! Serving the API's connections: each accepted connection in a task of its own, through TLS
//! when asked, then HTTP/1.1 by hyper, until the daemon stops.
//!
//! No client can hold more than its share: at most [`ConnectionLimits::connections`]
//! connections are open at once (one more is closed as it comes), and a client must finish its
//! TLS handshake, and each request's head, within [`ConnectionLimits::header_timeout`] (so a
//! connection kept open without a request is closed then too).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower_service::Service;

/// What the API's connections may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most connections open at once.
    pub connections: usize,
    /// Time a client has for its TLS handshake, and for each request's head from the moment
    /// the server waits for it.
    pub header_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            connections: 1024,
            header_timeout: Duration::from_secs(30),
        }
    }
}

/// A connection's stream, plain or TLS.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Serves `app` on the connections of `tcp` (through `tls` if given) until `shutdown`
/// completes, then waits for the requests in flight.
pub async fn serve(
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.connections));
    let mut services = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = tcp.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, most likely: give the open ones time to close.
                    tracing::warn!(error = %e, "HTTP: cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "HTTP: too many connections; this one closed");
            continue;
        };
        // The router with the client's address for its handlers (`ConnectInfo`).
        let service = match services.call(peer).await {
            Ok(service) => TowerToHyperService::new(service),
            Err(never) => match never {},
        };
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let stream: Box<dyn Stream> = match tls {
                None => Box::new(stream),
                Some(tls) => {
                    match tokio::time::timeout(limits.header_timeout, tls.accept(stream)).await {
                        Ok(Ok(stream)) => Box::new(stream),
                        Ok(Err(e)) => {
                            return tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        }
                        Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            };
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(%peer, error = %e, "HTTP connection ended");
            }
        });
    }
    drop(tcp);
    graceful.shutdown().await;
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;
    use crate::fleet::{Fleet, FleetOptions};

    /// Bounds each wait below: it only turns a hang into a failure.
    const BOUND: Duration = Duration::from_secs(60);

    /// The API on a loopback port with `limits`, plain HTTP, over a new fleet.
    async fn start(limits: ConnectionLimits) -> (tempfile::TempDir, SocketAddr) {
        let dir = tempfile::tempdir().unwrap();
        let fleet = Arc::new(Fleet::open(dir.path(), FleetOptions::default()).unwrap());
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = tcp.local_addr().unwrap();
        let app = super::super::router(fleet, crate::ops::ServeSettings::default());
        tokio::spawn(serve(tcp, None, app, limits, std::future::pending()));
        (dir, address)
    }

    /// Sends `request` on `stream`; returns all it reads until the server closes it (within
    /// [`BOUND`]), or what it read until a full answer's head when `head_only`.
    async fn exchange(stream: &mut TcpStream, request: &str, head_only: bool) -> String {
        // A connection the server has closed may refuse the request: then nothing is read.
        let _ = stream.write_all(request.as_bytes()).await;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = tokio::time::timeout(BOUND, stream.read(&mut buf))
                .await
                .expect("the server neither answered nor closed")
                .unwrap_or(0);
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            if head_only && got.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        String::from_utf8_lossy(&got).into_owned()
    }

    const GET: &str = "GET /api/v1/hosts HTTP/1.1\r\nHost: otto\r\n\r\n";

    #[tokio::test]
    async fn connections_beyond_the_cap_are_closed_unanswered_until_one_ends() {
        let limits = ConnectionLimits {
            connections: 2,
            header_timeout: Duration::from_secs(3600),
        };
        let (_dir, address) = start(limits).await;
        let _silent = TcpStream::connect(address).await.unwrap();
        let mut second = TcpStream::connect(address).await.unwrap();
        let answer = exchange(&mut second, GET, true).await;
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
        // Two are open (the second kept alive): a third is closed without an answer.
        let mut third = TcpStream::connect(address).await.unwrap();
        assert_eq!(exchange(&mut third, GET, false).await, "");
        // Once one ends, a new connection is served again (as soon as the server has seen the
        // end: until then it is refused like the third).
        drop(second);
        loop {
            let mut next = TcpStream::connect(address).await.unwrap();
            let answer = exchange(&mut next, GET, true).await;
            if !answer.is_empty() {
                assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
                break;
            }
        }
    }

    #[tokio::test]
    async fn a_request_head_not_finished_in_time_ends_the_connection() {
        let limits = ConnectionLimits {
            connections: 16,
            header_timeout: Duration::from_millis(200),
        };
        let (_dir, address) = start(limits).await;
        let mut slow = TcpStream::connect(address).await.unwrap();
        // Half a head, then nothing: closed (with at most a 408), not held open.
        let answer = exchange(&mut slow, "GET /api/v1/hosts HTTP/1.1\r\n", false).await;
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer}"
        );
        // A silent connection likewise.
        let mut silent = TcpStream::connect(address).await.unwrap();
        assert!(!exchange(&mut silent, "", false).await.contains("200"));
    }
}
