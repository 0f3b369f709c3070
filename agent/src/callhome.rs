//! Calling home: for an agent the server cannot reach (behind NAT), the agent keeps one TCP
//! connection open *to* the server (`call_home = ADDR[:PORT]`) and serves SSH on it exactly as
//! on a connection it accepted: the server is still the SSH client and must still authenticate
//! with the trusted server key. When the connection ends or cannot be made, it tries again after
//! an exponential backoff with jitter.
//!
//! The address and the backoff are pure (`CallHome::parse`, [`Backoff`]); [`keep`] does the IO.

use std::fmt;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::log::{debug, info, warning};
use crate::server::Shared;
use crate::state::Agent;

/// Where the agent calls home: a name or an address, and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallHome {
    /// A host name or an IP address (without brackets).
    pub host: String,
    /// The server's call-home port.
    pub port: u16,
}

/// A `call_home` value that is not `ADDR[:PORT]`.
#[derive(Debug, PartialEq, Eq)]
pub struct AddressError(pub String);

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a host or address with an optional :port",
            self.0
        )
    }
}

impl CallHome {
    /// Parses `host`, `host:port`, an IPv4 or IPv6 address, `[v6]` or `[v6]:port`; the port
    /// defaults to [`otto_proto::CALL_HOME_PORT`].
    pub fn parse(text: &str) -> Result<CallHome, AddressError> {
        let bad = || AddressError(text.into());
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(bad)?;
            match after {
                "" => (host, None),
                _ => (host, Some(after.strip_prefix(':').ok_or_else(bad)?)),
            }
        } else if text.matches(':').count() > 1 {
            // A bare IPv6 address: no port.
            (text, None)
        } else {
            match text.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (text, None),
            }
        };
        let port = match port {
            None => otto_proto::CALL_HOME_PORT,
            Some(port) => port.parse().ok().filter(|&p| p != 0).ok_or_else(bad)?,
        };
        let plausible = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_');
        if host.is_empty() || !host.chars().all(plausible) {
            return Err(bad());
        }
        if host.contains(':') && host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad());
        }
        Ok(CallHome {
            host: host.into(),
            port,
        })
    }
}

impl fmt::Display for CallHome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The first wait before calling again.
pub const FIRST_WAIT: Duration = Duration::from_secs(1);
/// The longest wait before calling again.
pub const LONGEST_WAIT: Duration = Duration::from_secs(60);
/// A connection that lasted this long was a good one: the next wait starts from the first.
const GOOD_CONNECTION: Duration = Duration::from_secs(30);
/// How long a TCP connect (and the name lookup) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Exponential backoff with jitter: each wait is drawn between half and all of a bound that
/// doubles from [`FIRST_WAIT`] up to [`LONGEST_WAIT`], so that agents cut off at once do not
/// all call back at the same instant.
#[derive(Debug, Clone)]
pub struct Backoff {
    bound: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff { bound: FIRST_WAIT }
    }
}

impl Backoff {
    /// The next wait, from a random number; doubles the bound for the one after.
    pub fn next(&mut self, random: u64) -> Duration {
        let bound = self.bound.as_millis() as u64;
        let half = bound / 2;
        let wait = half + random % (bound - half + 1);
        self.bound = (self.bound * 2).min(LONGEST_WAIT);
        Duration::from_millis(wait)
    }

    /// Starts again from the first wait (after a good connection).
    pub fn reset(&mut self) {
        self.bound = FIRST_WAIT;
    }
}

/// Keeps calling home for as long as the agent runs: connects, serves SSH on the connection
/// until it ends, waits, and again. Reads `call_home` afresh each time, so a reload takes effect
/// at the next call; with no `call_home`, checks again every [`LONGEST_WAIT`].
///
/// `from` is the address to call from: always None on a device (the system chooses); the fleet
/// simulator gives each of its agents a loopback address of its own, as devices have each their
/// own address.
pub async fn keep(agent: Arc<Agent>, shared: Arc<Shared>, from: Option<std::net::IpAddr>) {
    let mut backoff = Backoff::default();
    loop {
        let target = agent.config().call_home.clone();
        if let Some(target) = target {
            let began = tokio::time::Instant::now();
            match connect(&target, from).await {
                Ok((stream, peer)) => {
                    info!("{target}: called home ({peer})");
                    crate::server::serve_connection(agent.clone(), shared.clone(), stream, peer)
                        .await;
                    info!("{target}: call-home connection ended");
                }
                Err(e) => debug!("{target}: cannot call home: {e}"),
            }
            if began.elapsed() >= GOOD_CONNECTION {
                backoff.reset();
            }
            let wait = backoff.next(random());
            debug!("calling home again in {} ms", wait.as_millis());
            tokio::time::sleep(wait).await;
        } else {
            backoff.reset();
            tokio::time::sleep(LONGEST_WAIT).await;
        }
    }
}

/// Connects to `target` (the first address its name resolves to that answers) with TCP
/// keepalive on, so that a NAT mapping that vanished is noticed. A name is resolved by the C
/// library, blocking the agent's one thread while it does (an address is not looked up): tokio's
/// asynchronous lookup would cost about 40 KB more on MIPS for its pool of blocking threads.
async fn connect(
    target: &CallHome,
    from: Option<std::net::IpAddr>,
) -> io::Result<(TcpStream, std::net::SocketAddr)> {
    let attempt = async {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the name has no address");
        let addresses =
            std::net::ToSocketAddrs::to_socket_addrs(&(target.host.as_str(), target.port))?;
        for address in addresses {
            let stream = match from {
                #[cfg(feature = "sim")]
                Some(from) => connect_from(from, address).await,
                _ => TcpStream::connect(address).await,
            };
            match stream {
                Ok(stream) => return Ok((stream, address)),
                Err(e) => last = e,
            }
        }
        Err(last)
    };
    let (stream, peer) = tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    if let Err(e) = keepalive(&stream) {
        warning!("{target}: TCP keepalive: {e}");
    }
    Ok((stream, peer))
}

/// A connection to `address` from the address `from` (the simulator's agents).
#[cfg(feature = "sim")]
async fn connect_from(
    from: std::net::IpAddr,
    address: std::net::SocketAddr,
) -> io::Result<TcpStream> {
    let socket = match address {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.bind(std::net::SocketAddr::new(from, 0))?;
    socket.connect(address).await
}

/// TCP keepalive: probes after 60 s of silence, every 15 s, given up after 4 unanswered.
fn keepalive(stream: &TcpStream) -> io::Result<()> {
    let fd = stream.as_raw_fd();
    for (level, name, value) in [
        (libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1),
        (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, 60),
        (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, 15),
        (libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 4),
    ] {
        let value: libc::c_int = value;
        // SAFETY: `fd` is the open socket `stream` owns; the option value is a live c_int of
        // the size given.
        let done = unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&raw const value).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if done != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A random number for the jitter (0 if the system has none to give: then no jitter).
fn random() -> u64 {
    let mut bytes = [0u8; 8];
    match getrandom::fill(&mut bytes) {
        Ok(()) => u64::from_ne_bytes(bytes),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> (String, u16) {
        let c = CallHome::parse(text).unwrap();
        (c.host, c.port)
    }

    #[test]
    fn parses_names_addresses_and_ports() {
        let port = otto_proto::CALL_HOME_PORT;
        assert_eq!(
            parsed("otto.example.net"),
            ("otto.example.net".into(), port)
        );
        assert_eq!(
            parsed("otto.example.net:2000"),
            ("otto.example.net".into(), 2000)
        );
        assert_eq!(parsed("192.0.2.1"), ("192.0.2.1".into(), port));
        assert_eq!(parsed("192.0.2.1:9"), ("192.0.2.1".into(), 9));
        assert_eq!(parsed("2001:db8::1"), ("2001:db8::1".into(), port));
        assert_eq!(parsed("[2001:db8::1]"), ("2001:db8::1".into(), port));
        assert_eq!(parsed("[2001:db8::1]:7"), ("2001:db8::1".into(), 7));
        assert_eq!(
            CallHome::parse("[2001:db8::1]:7").unwrap().to_string(),
            "[2001:db8::1]:7"
        );
        assert_eq!(CallHome::parse("h:1").unwrap().to_string(), "h:1");
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        for bad in [
            "",
            ":1",
            "host:",
            "host:0",
            "host:65536",
            "host:x",
            "a b",
            "[::1",
            "[::1]x",
            "[::1]:",
            "1:2:zz",
            "host/path",
        ] {
            assert_eq!(
                CallHome::parse(bad),
                Err(AddressError(bad.into())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_longest_wait_with_jitter_within_bounds() {
        let mut b = Backoff::default();
        // The smallest and largest random draws give half and all of the bound.
        assert_eq!(b.clone().next(0), Duration::from_millis(500));
        assert_eq!(b.next(500), Duration::from_millis(1000));
        assert_eq!(b.next(0), Duration::from_millis(1000));
        assert_eq!(b.next(0), Duration::from_millis(2000));
        for _ in 0..20 {
            assert!(b.next(u64::MAX) <= LONGEST_WAIT);
        }
        // At the longest, the waits are drawn from its second half.
        assert_eq!(b.next(0), LONGEST_WAIT / 2);
        assert_eq!(b.next(30_000), LONGEST_WAIT);
        b.reset();
        assert!(b.next(u64::MAX) <= FIRST_WAIT);
    }
}
