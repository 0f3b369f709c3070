//! Serving the API's connections: each accepted connection in a task of its own, through TLS
//! when asked, then HTTP/2 (as TLS's ALPN chose) or HTTP/1.1 by hyper, until the daemon stops.
//!
//! No client can hold more than its share, nor keep others out: at most
//! [`ConnectionLimits::connections`] connections are open at once, and at most
//! [`ConnectionLimits::per_source`] from one source (an IPv4 address, or an IPv6 /64). A
//! connection that finds no room takes the place of a *stalled* one — in its TLS handshake,
//! waiting for a request's head, or idle between requests, never one whose request is being
//! answered — from its own source if that source is at its limit, else from the source that
//! holds the most; only when none is stalled is the newcomer closed. So silent sockets, however
//! many and from however few addresses, cannot lock other clients out (the agent's admission,
//! `agent/src/admission.rs`, does the same for SSH). [`Admissions`] is that choice, without IO.
//!
//! A client must finish its TLS handshake, and each request's head, within
//! [`ConnectionLimits::header_timeout`] (so a connection kept open without a request is closed
//! then too). A connection the server ends while the client may still be sending (an answer
//! given before the request's body was read, such as a 413) is closed lingering: the server
//! stops writing, then reads and drops what still comes for a while ([`LINGER`],
//! [`LINGER_QUIET`]), so that the client's kernel never gets a reset for data it sent, which
//! would discard the answer before the client has read it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use crate::ops::Cancellation;
use axum::Router;
use axum::body::Body;
use hyper::body::{Bytes, Frame, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use otto_proto::Source;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tower_service::Service;

/// What the API's connections may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most connections open at once.
    pub connections: usize,
    /// Most connections open at once from one source (an IPv4 address, or an IPv6 /64).
    pub per_source: usize,
    /// Time a client has for its TLS handshake, and for each request's head from the moment
    /// the server waits for it.
    pub header_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            connections: 1024,
            per_source: 64,
            header_timeout: Duration::from_secs(30),
        }
    }
}

/// The longest a connection is read and drained after the server has ended it.
pub const LINGER: Duration = Duration::from_secs(30);

/// How long a lingering connection may stay silent before it is closed.
pub const LINGER_QUIET: Duration = Duration::from_secs(2);

/// An open connection.
#[derive(Debug)]
struct Entry {
    source: Source,
    /// Requests being answered (the answer's body not sent yet): it is stalled at 0.
    requests: usize,
    /// When it last became stalled, on the table's clock: the oldest goes first.
    since: u64,
}

/// The open connections: which of them a newcomer displaces, or whether it is turned away.
#[derive(Debug)]
struct Admissions {
    limits: ConnectionLimits,
    entries: HashMap<u64, Entry>,
    /// How many each source holds.
    held: HashMap<Source, usize>,
    /// A counter for ids and for ordering: never goes back, never repeats.
    clock: u64,
}

impl Admissions {
    /// No connections yet.
    fn new(limits: ConnectionLimits) -> Admissions {
        Admissions {
            limits,
            entries: HashMap::new(),
            held: HashMap::new(),
            clock: 0,
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn held(&self, source: Source) -> usize {
        self.held.get(&source).copied().unwrap_or(0)
    }

    /// Admits a connection from `ip`: its id, and the id of the connection it displaces (already
    /// forgotten: the caller closes it); None if there is no room, every connection that could
    /// make room being busy.
    fn admit(&mut self, ip: IpAddr) -> Option<(u64, Option<u64>)> {
        let source = Source::of(ip);
        let displaced = if self.held(source) >= self.limits.per_source {
            Some(self.stalled(|e| e.source == source)?)
        } else if self.entries.len() >= self.limits.connections {
            Some(self.stalled(|_| true)?)
        } else {
            None
        };
        if let Some(id) = displaced {
            self.remove(id);
        }
        let id = self.tick();
        self.entries.insert(
            id,
            Entry {
                source,
                requests: 0,
                since: id,
            },
        );
        *self.held.entry(source).or_default() += 1;
        Some((id, displaced))
    }

    /// Among the stalled connections `eligible` lets through, those of the source holding the
    /// most: the one stalled longest.
    fn stalled(&self, eligible: impl Fn(&Entry) -> bool) -> Option<u64> {
        self.entries
            .iter()
            .filter(|(_, e)| e.requests == 0 && eligible(e))
            .max_by_key(|(_, e)| (self.held(e.source), std::cmp::Reverse(e.since)))
            .map(|(id, _)| *id)
    }

    /// `id` is answering a request.
    fn busy(&mut self, id: u64) {
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.requests += 1;
        }
    }

    /// `id` has sent an answer (or dropped it).
    fn answered(&mut self, id: u64) {
        let now = self.tick();
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.requests = entry.requests.saturating_sub(1);
            if entry.requests == 0 {
                entry.since = now;
            }
        }
    }

    /// Forgets `id` (closed, or displaced).
    fn remove(&mut self, id: u64) {
        let Some(entry) = self.entries.remove(&id) else {
            return;
        };
        if let Some(held) = self.held.get_mut(&entry.source) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                self.held.remove(&entry.source);
            }
        }
    }
}

/// The admissions, and how to close each connection (its task), shared by the accept loop and
/// the connections' tasks.
struct Table {
    admissions: Admissions,
    tasks: HashMap<u64, AbortHandle>,
}

type Shared = Arc<Mutex<Table>>;

fn lock(table: &Shared) -> std::sync::MutexGuard<'_, Table> {
    table.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A connection's place in the table, given up when its task ends or is aborted.
struct Place {
    table: Shared,
    id: u64,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut table = lock(&self.table);
        table.admissions.remove(self.id);
        table.tasks.remove(&self.id);
    }
}

/// A request being answered: its connection is busy until this is dropped, with the answer's
/// body once it is sent.
struct Busy {
    table: Shared,
    id: u64,
}

impl Busy {
    fn new(table: &Shared, id: u64) -> Busy {
        lock(table).admissions.busy(id);
        Busy {
            table: table.clone(),
            id,
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        lock(&self.table).admissions.answered(self.id);
    }
}

/// An answer's body that keeps its connection busy while it is being sent.
struct Tracked {
    body: Body,
    _busy: Busy,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

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
    // Each connection's task holds a clone of `running`; once told to stop, they end their
    // connections gracefully, and the last one to end closes `ended`.
    let stopping = Cancellation::new();
    let (running, mut ended) = tokio::sync::mpsc::channel::<()>(1);
    let table: Shared = Arc::new(Mutex::new(Table {
        admissions: Admissions::new(limits),
        tasks: HashMap::new(),
    }));
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
        let admitted = {
            let mut table = lock(&table);
            let admitted = table.admissions.admit(peer.ip());
            if let Some((_, Some(displaced))) = admitted
                && let Some(task) = table.tasks.remove(&displaced)
            {
                task.abort();
            }
            admitted
        };
        let Some((id, displaced)) = admitted else {
            tracing::debug!(%peer, "HTTP: too many connections, all busy; this one closed");
            continue;
        };
        if displaced.is_some() {
            tracing::debug!(%peer, "HTTP: too many connections; a stalled one closed for this one");
        }
        let place = Place {
            table: table.clone(),
            id,
        };
        // The router with the client's address for its handlers (`ConnectInfo`), its
        // connection busy from each request's head to the end of its answer.
        let router = match services.call(peer).await {
            Ok(service) => TowerToHyperService::new(service),
            Err(never) => match never {},
        };
        let requests = table.clone();
        let service = hyper::service::service_fn(move |request| {
            let busy = Busy::new(&requests, id);
            let answer = hyper::service::Service::call(&router, request);
            async move {
                let response = answer.await?;
                Ok::<_, Infallible>(response.map(|body| Tracked { body, _busy: busy }))
            }
        });
        let (stopping, running) = (stopping.clone(), running.clone());
        let tls = tls.clone();
        let task = tokio::spawn(async move {
            let _place = place;
            let _running = running;
            let stream = Lingering::new(stream);
            // HTTP/2 where TLS's ALPN chose it, else HTTP/1.1.
            let (stream, h2): (Box<dyn Stream>, bool) = match tls {
                None => (Box::new(stream), false),
                Some(tls) => {
                    match tokio::time::timeout(limits.header_timeout, tls.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                            (Box::new(stream), h2)
                        }
                        Ok(Err(e)) => {
                            return tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        }
                        Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            };
            // Served until it ends, or (then gracefully) until the daemon stops.
            macro_rules! until_stopped {
                ($connection:expr) => {{
                    let connection = $connection;
                    tokio::pin!(connection);
                    tokio::select! {
                        ended = connection.as_mut() => ended,
                        () = stopping.cancelled() => {
                            connection.as_mut().graceful_shutdown();
                            connection.await
                        }
                    }
                }};
            }
            let ended = if h2 {
                until_stopped!(
                    hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .timer(TokioTimer::new())
                        .serve_connection(TokioIo::new(stream), service)
                )
            } else {
                until_stopped!(
                    hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(limits.header_timeout)
                        .serve_connection(TokioIo::new(stream), service)
                        // For the relay of a channel to an agent that called home here
                        // (`relay`, over HTTP/1.1).
                        .with_upgrades()
                )
            };
            if let Err(e) = ended {
                tracing::debug!(%peer, error = %e, "HTTP connection ended");
            }
        });
        let mut table = lock(&table);
        // Unless it has ended already (and given up its place).
        if table.admissions.entries.contains_key(&id) {
            table.tasks.insert(id, task.abort_handle());
        }
    }
    drop(tcp);
    stopping.cancel();
    drop(running);
    let _ = ended.recv().await;
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpSocket, TcpStream};

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
        let fleet = Arc::new(
            Fleet::open(dir.path(), FleetOptions::default())
                .await
                .unwrap(),
        );
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

    /// A connection to `address` from the loopback address `from`.
    async fn connect_from(from: &str, address: SocketAddr) -> TcpStream {
        let socket = TcpSocket::new_v4().unwrap();
        socket
            .bind(SocketAddr::new(from.parse().unwrap(), 0))
            .unwrap();
        socket.connect(address).await.unwrap()
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

    /// Whether the server has closed `stream` without a word (waiting up to [`BOUND`]).
    async fn closed_silently(stream: &mut TcpStream) -> bool {
        exchange(stream, "", false).await.is_empty()
    }

    /// Whether `stream` is still open: nothing to read from it for a moment.
    async fn still_open(stream: &mut TcpStream) -> bool {
        let mut buf = [0u8; 64];
        let wait = Duration::from_millis(300);
        tokio::time::timeout(wait, stream.read(&mut buf))
            .await
            .is_err()
    }

    /// A sign-in's body.
    const SIGN_IN: &str = r#"{"name":"nobody","password":"12345678"}"#;

    /// A connection that is busy: a sign-in whose body the handler is waiting for (its
    /// `100 Continue` says the handler has asked for the body); None if it was closed.
    async fn busy(address: SocketAddr) -> Option<TcpStream> {
        let mut stream = TcpStream::connect(address).await.unwrap();
        let head = format!(
            "POST /api/v1/session HTTP/1.1\r\nHost: otto\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\
             Expect: 100-continue\r\n\r\n",
            SIGN_IN.len()
        );
        let answer = exchange(&mut stream, &head, true).await;
        answer.starts_with("HTTP/1.1 100").then_some(stream)
    }

    const GET: &str = "GET /api/v1/hosts HTTP/1.1\r\nHost: otto\r\n\r\n";

    fn limits(connections: usize, per_source: usize) -> ConnectionLimits {
        ConnectionLimits {
            connections,
            per_source,
            header_timeout: Duration::from_secs(3600),
        }
    }

    #[test]
    fn a_newcomer_displaces_the_longest_stalled_of_its_source_or_of_the_biggest_holder() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let mut a = Admissions::new(limits(4, 2));
        let (one, _) = a.admit(ip("10.0.0.1")).unwrap();
        let (two, _) = a.admit(ip("10.0.0.1")).unwrap();
        // At its own limit: its longest stalled goes, though the pool has room.
        let (three, displaced) = a.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(displaced, Some(one));
        // Busy ones are never displaced; with none stalled, the newcomer is turned away.
        a.busy(two);
        a.busy(three);
        assert_eq!(a.admit(ip("10.0.0.1")), None);
        // Once answered, it is stalled from then on.
        a.answered(two);
        let (five, displaced) = a.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(displaced, Some(two));
        let (other, _) = a.admit(ip("10.0.0.2")).unwrap();
        let (four, displaced) = a.admit(ip("10.0.0.3")).unwrap();
        assert_eq!((displaced, a.entries.len()), (None, 4));
        // A full pool: the biggest holder's longest stalled goes.
        assert_eq!(a.admit(ip("10.0.0.4")).unwrap().1, Some(five));
        // Every source holds one: the longest stalled of any (three is busy).
        assert_eq!(a.admit(ip("10.0.0.5")).unwrap().1, Some(other));
        a.remove(four);
        assert_eq!(a.admit(ip("10.0.0.6")).unwrap().1, None, "room again");
        // IPv6 counts by /64, and IPv4-mapped as IPv4.
        assert_eq!(
            Source::of(ip("2001:db8:1:2:aaaa::1")),
            Source::of(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            Source::of(ip("2001:db8:1:2::1")),
            Source::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            Source::of(ip("::ffff:10.0.0.1")),
            Source::of(ip("10.0.0.1"))
        );
    }

    #[tokio::test]
    async fn silent_connections_from_one_source_cannot_keep_another_out() {
        let (_dir, address, _key) = start(limits(6, 3)).await;
        // More silent connections from 127.0.0.2 than the whole pool holds.
        let mut silent = Vec::new();
        for _ in 0..10 {
            silent.push(connect_from("127.0.0.2", address).await);
        }
        // Another source is answered at once.
        let mut other = connect_from("127.0.0.1", address).await;
        let answer = tokio::time::timeout(Duration::from_secs(5), exchange(&mut other, GET, true))
            .await
            .expect("not answered at once");
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
        // The silent source keeps its newest three; each older one was closed without a word
        // as a newer one came.
        let (older, newest) = silent.split_at_mut(7);
        for stream in older {
            assert!(closed_silently(stream).await);
        }
        for stream in newest {
            assert!(still_open(stream).await);
        }
        // Which still works: they may ask.
        let answer = exchange(&mut silent[9], GET, true).await;
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    }

    #[tokio::test]
    async fn connections_beyond_the_cap_displace_stalled_ones_and_are_closed_when_all_are_busy() {
        let (_dir, address, _key) = start(limits(2, 64)).await;
        let mut first = busy(address).await.unwrap();
        let mut silent = TcpStream::connect(address).await.unwrap();
        // The pool is full: a third takes the silent one's place, not the busy one's.
        let mut third = TcpStream::connect(address).await.unwrap();
        let answer = exchange(&mut third, GET, true).await;
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
        assert!(closed_silently(&mut silent).await);
        // Kept alive after its answer, the third is stalled: a busy one takes its place.
        let mut second = busy(address).await.unwrap();
        assert!(closed_silently(&mut third).await);
        // Both busy: a fourth is closed unanswered.
        let mut fourth = TcpStream::connect(address).await.unwrap();
        assert_eq!(exchange(&mut fourth, GET, false).await, "");
        // The first, answered, is stalled again: the next takes its place.
        let answer = exchange(&mut first, SIGN_IN, true).await;
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
        let mut fifth = TcpStream::connect(address).await.unwrap();
        let answer = exchange(&mut fifth, GET, true).await;
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
        assert!(closed_silently(&mut first).await);
        assert!(still_open(&mut second).await);
    }

    #[tokio::test]
    async fn a_request_head_not_finished_in_time_ends_the_connection() {
        let limits = ConnectionLimits {
            header_timeout: Duration::from_millis(200),
            ..ConnectionLimits::default()
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
