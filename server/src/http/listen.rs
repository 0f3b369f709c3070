//! Serving the API's connections: each accepted connection in a task of its own, through TLS
//! when asked, then HTTP/1.1 by hyper, until the daemon stops.
//!
//! No client can hold more than its share: at most [`ConnectionLimits::connections`]
//! connections are open at once (one more is closed as it comes), and a client must finish its
//! TLS handshake, and each request's head, within [`ConnectionLimits::header_timeout`] (so a
//! connection kept open without a request is closed then too).
//!
//! A connection the server ends while the client may still be sending (an answer given before
//! the request's body was read, such as a 413) is closed lingering: the server stops writing,
//! then reads and drops what still comes for a while ([`LINGER`], [`LINGER_QUIET`]), so that
//! the client's kernel never gets a reset for data it sent, which would discard the answer
//! before the client has read it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
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

/// The longest a connection is read and drained after the server has ended it.
pub const LINGER: Duration = Duration::from_secs(30);

/// How long a lingering connection may stay silent before it is closed.
pub const LINGER_QUIET: Duration = Duration::from_secs(2);

/// A connection's TCP stream, closed lingering: its shutdown stops writing, then reads and
/// drops what the client still sends until it closes its side, goes quiet for
/// [`LINGER_QUIET`], or [`LINGER`] has passed.
struct Lingering {
    tcp: TcpStream,
    state: Linger,
}

enum Linger {
    Open,
    Draining {
        until: Pin<Box<Sleep>>,
        quiet: Pin<Box<Sleep>>,
    },
    Closed,
}

impl Lingering {
    fn new(tcp: TcpStream) -> Lingering {
        Lingering {
            tcp,
            state: Linger::Open,
        }
    }
}

impl AsyncRead for Lingering {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Linger::Open = this.state {
            ready!(Pin::new(&mut this.tcp).poll_shutdown(cx))?;
            this.state = Linger::Draining {
                until: Box::pin(tokio::time::sleep(LINGER)),
                quiet: Box::pin(tokio::time::sleep(LINGER_QUIET)),
            };
        }
        if let Linger::Draining { until, quiet } = &mut this.state {
            let mut scrap = [0u8; 8192];
            loop {
                if until.as_mut().poll(cx).is_ready() || quiet.as_mut().poll(cx).is_ready() {
                    break;
                }
                let mut read = ReadBuf::new(&mut scrap);
                match Pin::new(&mut this.tcp).poll_read(cx, &mut read) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(())) if read.filled().is_empty() => break,
                    Poll::Ready(Ok(())) => quiet.as_mut().reset(Instant::now() + LINGER_QUIET),
                    Poll::Ready(Err(_)) => break,
                }
            }
            this.state = Linger::Closed;
        }
        Poll::Ready(Ok(()))
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
            let stream = Lingering::new(stream);
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
    use crate::model::Permissions;
    use crate::ops::{Actor, AddUser, CreateApiKey, Ops};

    /// Bounds each wait below: it only turns a hang into a failure.
    const BOUND: Duration = Duration::from_secs(60);

    /// The API on a loopback port with `limits`, plain HTTP, over a new fleet; with an admin's
    /// API key.
    async fn start(limits: ConnectionLimits) -> (tempfile::TempDir, SocketAddr, String) {
        let dir = tempfile::tempdir().unwrap();
        let fleet = Arc::new(Fleet::open(dir.path(), FleetOptions::default()).unwrap());
        let ops = Ops::new(fleet.clone(), Actor::local_user());
        let admin = AddUser {
            name: "admin".into(),
            password: "correct horse battery".into(),
            permissions: Permissions::admin(),
        };
        ops.add_user(admin).await.unwrap();
        let key = ops
            .create_api_key(CreateApiKey {
                user: Some("admin".into()),
                ..CreateApiKey::default()
            })
            .await
            .unwrap()
            .secret;
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = tcp.local_addr().unwrap();
        let app = super::super::router(fleet, crate::ops::ServeSettings::default());
        tokio::spawn(serve(tcp, None, app, limits, std::future::pending()));
        (dir, address, key)
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
        let (_dir, address, _key) = start(limits).await;
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
        let (_dir, address, _key) = start(limits).await;
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

    /// Writes `head`, then `body` in full as `chunked` or not, then reads the answer's head.
    async fn send_whole(address: SocketAddr, head: &str, body: &[u8], chunked: bool) -> String {
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        if chunked {
            for piece in body.chunks(64 * 1024) {
                let size = format!("{:x}\r\n", piece.len());
                stream.write_all(size.as_bytes()).await.unwrap();
                stream.write_all(piece).await.unwrap();
                stream.write_all(b"\r\n").await.unwrap();
            }
            stream.write_all(b"0\r\n\r\n").await.unwrap();
        } else {
            stream.write_all(body).await.unwrap();
        }
        exchange(&mut stream, "", true).await
    }

    #[tokio::test]
    async fn a_413_is_read_by_a_client_that_sends_its_whole_body_first() {
        let (_dir, address, key) = start(ConnectionLimits::default()).await;
        let json =
            "POST /api/v1/session HTTP/1.1\r\nHost: otto\r\nContent-Type: application/json\r\n";
        let attach = format!(
            "PUT /api/v1/scripts/s/attachments?path=/x HTTP/1.1\r\nHost: otto\r\n\
             Authorization: Bearer {key}\r\n"
        );
        let upload = format!(
            "POST /api/v1/uploads?path=/x&all=true HTTP/1.1\r\nHost: otto\r\n\
             Authorization: Bearer {key}\r\n"
        );
        let small = vec![b' '; 100 * 1024];
        let large = vec![b' '; 10 * 1024 * 1024];
        for n in 0..20 {
            // 100 KB for a JSON route, saying so.
            let head = format!("{json}Content-Length: {}\r\n\r\n", small.len());
            let answer = send_whole(address, &head, &small, false).await;
            assert!(answer.starts_with("HTTP/1.1 413"), "try {n}: {answer:?}");
            // 10 MB without saying so.
            let head = format!("{json}Transfer-Encoding: chunked\r\n\r\n");
            let answer = send_whole(address, &head, &large, true).await;
            assert!(answer.starts_with("HTTP/1.1 413"), "try {n}: {answer:?}");
            // Spooled routes, saying more than their limit, then sending 10 MB of it.
            for (route, limit) in [(&attach, 64 << 20), (&upload, 1 << 30)] {
                let head = format!("{route}Content-Length: {}\r\n\r\n", limit + 1);
                let answer = send_whole(address, &head, &large, false).await;
                assert!(answer.starts_with("HTTP/1.1 413"), "try {n}: {answer:?}");
            }
        }
    }
}
