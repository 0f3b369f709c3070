//! The call-home listener: agents the server cannot dial (behind NAT) connect to it, and the
//! server runs its SSH client over the accepted socket, exactly as over a dialled one. Who is
//! on the other end is known only after the SSH key exchange (the agent's host key): the host
//! whose pinned agent key it is. The server then authenticates with that host's server key
//! and hands the connection to the fleet ([`Fleet::called_home`]), where every operation finds
//! it. A key pinned to no host goes to [`unknown`], which offers it enrollment.
//!
//! Until a connection is handed over it is bounded: in number, from one source (an IPv6 /64
//! counts as one) and in all ([`Admission`]), and in time (key exchange and authentication
//! together within the handshake limit). A socket over a limit is closed at once, unread.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use otto_proto::Source;
use tokio::net::{TcpListener, TcpStream};

use crate::client::{self, Call, Connection};
use crate::fleet::Fleet;
use crate::ops::Ops;
use crate::serve::enroll;

/// The bounds on call-home connections not handed over yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    /// Unauthenticated connections at once, from all sources.
    pub unauthenticated: usize,
    /// Unauthenticated connections at once from one source (an IPv4 address, an IPv6 /64).
    pub per_source: usize,
    /// The time from the TCP accept to the end of authentication.
    pub handshake: Duration,
}

impl Default for CallLimits {
    fn default() -> Self {
        CallLimits {
            unauthenticated: 1024,
            per_source: 16,
            handshake: Duration::from_secs(15),
        }
    }
}

/// The count of unauthenticated connections, in all and by source (pure).
#[derive(Debug)]
pub struct Admission {
    limits: CallLimits,
    total: usize,
    by_source: HashMap<Source, usize>,
}

impl Admission {
    /// No connection yet.
    pub fn new(limits: CallLimits) -> Admission {
        Admission {
            limits,
            total: 0,
            by_source: HashMap::new(),
        }
    }

    /// Counts a connection from `source` in, if that stays within the limits.
    pub fn admit(&mut self, source: Source) -> bool {
        let from_source = self.by_source.get(&source).copied().unwrap_or(0);
        if self.total >= self.limits.unauthenticated || from_source >= self.limits.per_source {
            return false;
        }
        self.total += 1;
        self.by_source.insert(source, from_source + 1);
        true
    }

    /// Counts a connection from `source` out.
    pub fn release(&mut self, source: Source) {
        self.total = self.total.saturating_sub(1);
        if let Some(n) = self.by_source.get_mut(&source) {
            *n -= 1;
            if *n == 0 {
                self.by_source.remove(&source);
            }
        }
    }
}

/// A connection counted in the admission until it is handed over or closed.
struct Admitted {
    admission: Arc<Mutex<Admission>>,
    source: Source,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        lock(&self.admission).release(self.source);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Opens the call-home listener on `listen`.
pub async fn bind(listen: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(listen).await
}

/// Accepts call-home connections on `listener` until `stopped` completes; `ops` acts for the
/// server on connections no host is known for.
pub async fn run(
    ops: Ops,
    fleet: Arc<Fleet>,
    listener: TcpListener,
    limits: CallLimits,
    stopped: impl Future<Output = ()>,
) {
    let admission = Arc::new(Mutex::new(Admission::new(limits)));
    let unknown_seen = Arc::new(Mutex::new(Quiet::default()));
    tokio::pin!(stopped);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!("call-home accept: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        let source = Source::of(peer.ip());
        if !lock(&admission).admit(source) {
            tracing::debug!(%peer, "call-home connection refused: too many unauthenticated");
            continue;
        }
        let admitted = Admitted {
            admission: admission.clone(),
            source,
        };
        let (ops, fleet, unknown_seen) = (ops.clone(), fleet.clone(), unknown_seen.clone());
        tokio::spawn(async move {
            let answer = answer(&ops, &fleet, stream, peer, &unknown_seen);
            match tokio::time::timeout(limits.handshake, answer).await {
                Err(_) => tracing::debug!(%peer, "call-home handshake not done in time: dropped"),
                Ok(Err(e)) => tracing::debug!(%peer, "call-home connection dropped: {e}"),
                Ok(Ok(())) => {}
            }
            drop(admitted);
        });
    }
}

/// Runs the handshake on one accepted socket and hands the connection to the fleet.
async fn answer(
    ops: &Ops,
    fleet: &Fleet,
    stream: TcpStream,
    peer: SocketAddr,
    unknown_seen: &Mutex<Quiet>,
) -> Result<(), String> {
    let _ = stream.set_nodelay(true);
    let timeout = fleet.options().dial_timeout;
    let call = client::answer_call(stream, timeout)
        .await
        .map_err(|e| e.to_string())?;
    let host = fleet
        .host_by_agent_key(&call.agent_key)
        .await
        .map_err(|e| e.to_string())?;
    let Some(host) = host else {
        unknown(ops, call, peer, unknown_seen).await;
        return Ok(());
    };
    if !host.enabled {
        return Err(format!("{} is disabled", host.name));
    }
    let server_key = Arc::new(
        fleet
            .host_key(&host.name)
            .await
            .map_err(|e| e.to_string())?,
    );
    let conn = Connection::called(call, peer, server_key, timeout, fleet.options().limits)
        .await
        .map_err(|e| format!("{}: {e}", host.name))?;
    tracing::info!(host = %host.name, %peer, "called home");
    fleet
        .called_home(&host, conn)
        .await
        .map_err(|e| e.to_string())
}

/// An agent whose key is pinned to no host (new, or changed: a pending key is not trusted) is
/// offered enrollment: the server logs in with its enrollment key, which only an agent running
/// `otto-agent enroll` with that key's fingerprint accepts ([`enroll::enroll_session`]); any
/// other agent refuses it and is never served. Within the handshake's time, as an
/// unauthenticated socket. A refusal is logged at most once a minute per source.
async fn unknown(ops: &Ops, call: Call, peer: SocketAddr, seen: &Mutex<Quiet>) {
    let agent_key = call.agent_key.clone();
    let outcome = enroll::enroll_session(ops, call.handle, &agent_key, peer).await;
    if let Err(enroll::EnrollError::KeyRefused) = outcome
        && lock(seen).speak(Source::of(peer.ip()), Instant::now())
    {
        tracing::warn!(
            %peer,
            key = %crate::keys::fingerprint(&agent_key),
            "call-home agent with a key no host has pinned, not enrolling: dropped"
        );
    }
}

/// Which sources were logged when, so that one source cannot flood the log (pure).
#[derive(Debug, Default)]
struct Quiet {
    last: HashMap<Source, Instant>,
}

/// The sources remembered at most; past it, the memory starts afresh.
const QUIET_SOURCES: usize = 4096;
/// The time between two log lines about one source.
const QUIET_FOR: Duration = Duration::from_secs(60);

impl Quiet {
    /// Whether a line about `source` may be logged `now` (and remembers it if so).
    fn speak(&mut self, source: Source, now: Instant) -> bool {
        if self
            .last
            .get(&source)
            .is_some_and(|&at| now.saturating_duration_since(at) < QUIET_FOR)
        {
            return false;
        }
        if self.last.len() >= QUIET_SOURCES {
            self.last.clear();
        }
        self.last.insert(source, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(ip: &str) -> Source {
        Source::of(ip.parse().unwrap())
    }

    #[test]
    fn admission_bounds_each_source_and_the_total() {
        let limits = CallLimits {
            unauthenticated: 3,
            per_source: 2,
            handshake: Duration::from_secs(1),
        };
        let mut a = Admission::new(limits);
        assert!(a.admit(source("192.0.2.1")));
        assert!(a.admit(source("192.0.2.1")));
        // A third from the same source is past its limit; an IPv6 /64 is one source.
        assert!(!a.admit(source("192.0.2.1")));
        assert!(a.admit(source("2001:db8::1")));
        assert!(!a.admit(source("2001:db8::2")));
        assert!(!a.admit(source("192.0.2.9")), "the total is full");
        a.release(source("192.0.2.1"));
        assert!(a.admit(source("192.0.2.9")));
        assert!(!a.admit(source("192.0.2.1")), "the total is full again");
        a.release(source("2001:db8::1"));
        a.release(source("192.0.2.9"));
        assert!(a.admit(source("192.0.2.1")));
        assert_eq!(a.by_source.len(), 1);
    }

    #[test]
    fn one_source_is_logged_at_most_once_a_minute() {
        let mut quiet = Quiet::default();
        let now = Instant::now();
        assert!(quiet.speak(source("192.0.2.1"), now));
        assert!(!quiet.speak(source("192.0.2.1"), now + Duration::from_secs(59)));
        assert!(quiet.speak(source("192.0.2.2"), now));
        assert!(quiet.speak(source("192.0.2.1"), now + QUIET_FOR));
    }
}
