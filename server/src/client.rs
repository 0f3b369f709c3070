//! The server's side of the Otto protocol: one SSH connection to one agent, authenticated with
//! that host's own server key, the agent's host key checked against the pinned one. Each
//! operation opens its own channel (subsystem `otto`), so many run at once on one connection.
//!
//! Every wait on the agent has a deadline ([`Limits`]): the connection, opening a channel, each
//! answer, progress while data is sent, and a run (its own timeout plus a grace period, and a
//! bound on silence). A missed deadline is an error that names the wait
//! ([`ClientError::missed_deadline`]); the channel is then abandoned.

pub mod frames;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use otto_proto::{
    ActionId, CancelAction, Control, Credentials, EnvironmentBuilder, FetchFile, FileInfo,
    FrameWriter, HeartbeatRequest, MAX_BODY_LEN, Message, RotateIdentityRequest, RunScript,
    ScriptTimeout, StatFile, Stream, UpdateAgent, UploadDigest, UploadFile, UploadStream,
};
use russh::keys::Algorithm;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf, Preferred, cipher, client};
use russh::{compression, kex, mac};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::model::Facts;
use crate::sanitize::{self, MESSAGE_MAX};
use frames::{FrameError, Frames, Reply};

/// How long the server waits for an agent once connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Opening a channel, and each answer to a request (heartbeat, ReadyForData, a control,
    /// rotation or cancel result).
    pub answer: Duration,
    /// Sending data: the agent must accept more (open its window) within this, or the transfer
    /// has stalled; also the wait for an upload's result once all was sent (the agent checks
    /// and syncs the file).
    pub stall: Duration,
    /// Added to a run's own timeout before the server stops waiting for its result.
    pub grace: Duration,
    /// The longest a run may go without output or a keepalive (the agent sends one after 10 s
    /// of silence), whatever its timeout.
    pub silence: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            answer: Duration::from_secs(10),
            stall: Duration::from_secs(35),
            grace: Duration::from_secs(10),
            silence: Duration::from_secs(35),
        }
    }
}

/// How the agent's host key is checked.
#[derive(Debug, Clone)]
pub enum AgentKeyCheck {
    /// It must be this key.
    Pinned(PublicKey),
    /// Any key is accepted and reported (the administrator asked to pin on first contact).
    PinOnFirstContact,
}

/// Where and how to reach one agent.
#[derive(Debug, Clone)]
pub struct Dial {
    /// Host name or address.
    pub address: String,
    /// SSH port of the agent.
    pub port: u16,
    /// This host's server key.
    pub server_key: Arc<PrivateKey>,
    /// The agent key check.
    pub agent_key: AgentKeyCheck,
    /// Limit for TCP connect, handshake and authentication together.
    pub timeout: Duration,
    /// The limits of every later wait on this agent.
    pub limits: Limits,
}

/// What went wrong talking to an agent.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The connection could not be made in time.
    #[error("no connection within {} (TCP, SSH handshake, authentication)", secs(.0))]
    Timeout(Duration),
    /// The agent did not answer a request in time.
    #[error("no answer to the {what} within {}", secs(.within))]
    NoAnswer {
        /// The request.
        what: &'static str,
        /// The limit.
        within: Duration,
    },
    /// Sending stalled: the agent accepted no more data within the limit.
    #[error("{what} stalled: no progress for {} after {}", secs(.within), bytes(*.sent))]
    Stalled {
        /// What was being sent.
        what: &'static str,
        /// Bytes of it sent before.
        sent: u64,
        /// The limit.
        within: Duration,
    },
    /// A run outlived its own timeout plus the grace period without a result.
    #[error("no result of the run within its timeout of {} plus {} grace", secs(.timeout), secs(.grace))]
    RunOverdue {
        /// The run's timeout.
        timeout: Duration,
        /// The grace period.
        grace: Duration,
    },
    /// A run went silent: no output, keepalive or result within the limit.
    #[error("the run went silent: nothing from the agent for {}", secs(.within))]
    RunSilent {
        /// The limit.
        within: Duration,
    },
    /// The agent's bytes are not a valid frame stream.
    #[error("protocol: {0}")]
    Frames(#[from] FrameError),
    /// The agent presented another key than the pinned one.
    #[error("the agent presented key {} instead of the pinned one", crate::keys::fingerprint(.presented))]
    AgentKeyMismatch {
        /// The key it presented (boxed: it is large, and errors travel often).
        presented: Box<PublicKey>,
    },
    /// The agent presented (or answered a rotation with) a key no one should accept.
    #[error("the agent's key is refused: {0}")]
    UnusableAgentKey(otto_proto::ed25519::KeyEncodingError),
    /// The agent does not trust this server key.
    #[error("the agent refused this server's key")]
    AuthRejected,
    /// The agent closed the connection before the SSH handshake: it drops addresses outside its
    /// `allow_from` at once, and cuts connections over its limits.
    #[error(
        "the agent closed the connection before the SSH handshake; usually its allow_from does \
         not include this server's address, or it has too many connections from this address"
    )]
    ClosedBeforeHandshake,
    /// SSH failed.
    #[error("ssh: {0}")]
    Ssh(#[from] russh::Error),
    /// The agent broke the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The agent answered with GeneralFailure (its message made safe to show, see [`sanitize`]).
    #[error("the agent reported: {0}")]
    AgentFailure(String),
    /// The channel closed before the final answer.
    #[error("the agent closed the channel before answering")]
    ChannelClosed,
    /// A request too large for one frame (e.g. a huge environment).
    #[error("request too large: {0}")]
    TooLarge(String),
    /// Reading the local data to send failed.
    #[error("reading local data: {0}")]
    Io(#[from] std::io::Error),
    /// A connection the agent made by calling home has had all the channels it may carry;
    /// the server cannot dial a new one: it is closed, and the agent calls again.
    #[error("the agent's call-home connection is used up; it calls again shortly")]
    CallHomeUsedUp,
    /// The agent refused to stat or send a file (e.g. "no such file: /etc/x"), its words made
    /// safe to show.
    #[error("{0}")]
    FileRefused(String),
    /// A fetched file arrived other than announced: it changed while the agent read it.
    #[error("{path} changed while read ({detail}); nothing was kept")]
    ChangedWhileRead {
        /// The file on the agent.
        path: String,
        /// What differed.
        detail: String,
    },
    /// Writing a fetched file where it goes failed.
    #[error("writing the fetched file: {0}")]
    Write(std::io::Error),
    /// The server the agent called home to did not relay a channel to it.
    #[error("through server {server}, which its agent called: {reason}")]
    Relay {
        /// That server's name.
        server: String,
        /// Why, as it said or as the connection to it failed.
        reason: String,
    },
}

impl ClientError {
    /// Whether the agent refused a request's frame for its protocol version: it is older than
    /// the request (it answers `GeneralFailure` and closes the channel, nothing done).
    pub fn older_protocol(&self) -> bool {
        matches!(self, ClientError::AgentFailure(why) if why.contains("unsupported protocol version"))
    }

    /// Whether a deadline was missed: the agent (or the way to it) stopped answering, so its
    /// connection should not be reused.
    pub fn missed_deadline(&self) -> bool {
        matches!(
            self,
            ClientError::Timeout(_)
                | ClientError::NoAnswer { .. }
                | ClientError::Stalled { .. }
                | ClientError::RunOverdue { .. }
                | ClientError::RunSilent { .. }
        )
    }

    /// Whether the agent answered, authenticated this server, and refused a channel for lack
    /// of resources (after the one retry on a new connection): it is reachable but serves as
    /// many channels at once as it may.
    pub fn busy(&self) -> bool {
        matches!(
            self,
            ClientError::Ssh(russh::Error::ChannelOpenFailure(
                russh::ChannelOpenFailure::ResourceShortage
            ))
        )
    }
}

/// Whether `e` says the peer closed the connection (not that it refused it, was unreachable,
/// or broke the protocol).
fn closed_by_peer(e: &russh::Error) -> bool {
    use std::io::ErrorKind;
    match e {
        russh::Error::Disconnect | russh::Error::HUP => true,
        russh::Error::IO(e) => matches!(
            e.kind(),
            ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::UnexpectedEof
                | ErrorKind::BrokenPipe
        ),
        _ => false,
    }
}

/// A duration for people: `10 s`, `2.5 s`.
fn secs(d: &Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// A size for people: `812 bytes`, `12.0 MiB`.
fn bytes(n: u64) -> String {
    const KIB: f64 = 1024.0;
    match n as f64 {
        b if b < KIB => format!("{n} bytes"),
        b if b < KIB * KIB => format!("{:.1} KiB", b / KIB),
        b => format!("{:.1} MiB", b / (KIB * KIB)),
    }
}

/// An agent's answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatAnswer {
    /// The agent's version.
    pub agent_version: String,
    /// The facts it reported about its host.
    pub facts: Facts,
    /// Request to answer.
    pub round_trip: Duration,
}

/// A script for an agent to run (a stored script's text, or a command).
#[derive(Debug, Clone)]
pub struct ScriptRequest {
    /// Its name, for the agent's log.
    pub name: String,
    /// What runs it (`/bin/sh`, or a script's own interpreter).
    pub interpreter: String,
    /// Its text.
    pub body: Vec<u8>,
    /// Its environment, beside the agent's `PATH`.
    pub env: Vec<(String, String)>,
    /// Who it runs as.
    pub run_as: Credentials,
    /// Where it runs (the agent's default when none).
    pub working_dir: Option<String>,
    /// When the agent kills it.
    pub timeout: ScriptTimeout,
}

/// Something a running script produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptEvent {
    /// Output bytes from one stream.
    Output { stream: Stream, data: Vec<u8> },
    /// The script is silent but alive.
    Keepalive,
}

/// A file to upload.
#[derive(Debug, Clone)]
pub struct UploadSpec {
    pub path: String,
    pub owner: Credentials,
    pub mode: u32,
    pub sha256: [u8; 32],
    pub len: u64,
}

/// A file to upload whose SHA-256 follows its bytes (protocol 9): an [`UploadSpec`] without
/// the checksum, which the sender need not know before the first byte.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    pub path: String,
    pub owner: Credentials,
    pub mode: u32,
    pub len: u64,
}

/// A file fetched from an agent: what the agent announced, and what arrived matched it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchedFile {
    /// Its length in bytes.
    pub len: u64,
    /// Its permission bits on the agent's host.
    pub mode: u32,
    /// Its SHA-256.
    pub sha256: [u8; 32],
}

/// How an action ended, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Exited(i32),
    Signaled(i32),
    TimedOut,
    Cancelled,
    Completed,
    Failed(String),
}

impl Outcome {
    /// A script that exited 0 or a completed request.
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Exited(0) | Outcome::Completed)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Exited(code) => write!(f, "exit {code}"),
            Outcome::Signaled(signal) => write!(f, "killed by signal {signal}"),
            Outcome::TimedOut => f.write_str("timed out"),
            Outcome::Cancelled => f.write_str("cancelled"),
            Outcome::Completed => f.write_str("done"),
            Outcome::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

/// The final answer to an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionReport {
    pub outcome: Outcome,
    pub elapsed: Duration,
    pub stdout_len: u64,
    pub stderr_len: u64,
}

/// A new action id: random, so ids from several servers or restarts do not collide in practice.
pub fn new_action_id() -> ActionId {
    let mut bytes = [0u8; 8];
    // Without OS randomness, fall back to the clock: still unique enough on one server.
    if getrandom::fill(&mut bytes).is_err() {
        return std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
    }
    u64::from_le_bytes(bytes)
}

/// The Otto SSH profile ([`otto_proto::profile`]) as the server, the SSH client, offers it.
/// russh has constants, not names: looking the names up at run time would cost the agent 3 KiB,
/// so these are russh's constants for the profile's names, in its order, which a test checks.
pub fn preferred() -> Preferred {
    Preferred {
        kex: (&[
            kex::CURVE25519,
            kex::EXTENSION_SUPPORT_AS_CLIENT,
            kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT,
        ][..])
            .into(),
        key: (&[Algorithm::Ed25519][..]).into(),
        cipher: (&[cipher::CHACHA20_POLY1305][..]).into(),
        // chacha20-poly1305 authenticates by itself; a MAC is still negotiated, never used.
        mac: (&[mac::HMAC_SHA256_ETM][..]).into(),
        compression: (&[compression::NONE][..]).into(),
        host_key_certificates: (&[][..]).into(),
    }
}

/// Checks the agent's host key during the handshake and remembers what it presented.
pub struct Verifier {
    check: AgentKeyCheck,
    presented: Arc<Mutex<Option<PublicKey>>>,
}

impl client::Handler for Verifier {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return Ok(false);
        };
        *self.presented.lock().unwrap_or_else(|e| e.into_inner()) = Some(key.clone());
        if crate::keys::usable(key).is_err() {
            return Ok(false);
        }
        Ok(match &self.check {
            AgentKeyCheck::Pinned(pinned) => pinned.key_data() == key.key_data(),
            AgentKeyCheck::PinOnFirstContact => true,
        })
    }
}

/// The SSH client's settings, for dialled and call-home connections alike.
fn ssh_config() -> Arc<client::Config> {
    Arc::new(client::Config {
        preferred: preferred(),
        nodelay: true,
        keepalive_interval: Some(Duration::from_secs(60)),
        inactivity_timeout: None,
        ..Default::default()
    })
}

/// A connection an agent made by calling home, after the SSH key exchange: the agent has
/// proved it holds `agent_key`, and no one has authenticated yet.
pub struct Call {
    /// The SSH session (russh's client side).
    pub handle: client::Handle<Verifier>,
    /// The key the agent presented (and proved it holds).
    pub agent_key: PublicKey,
}

/// Runs the SSH key exchange over `stream`, a connection an agent made by calling home,
/// within `timeout`: any usable agent key is accepted here, and the caller decides from it
/// whom the agent is (and refuses it if no one) before authenticating.
pub async fn answer_call<S>(stream: S, timeout: Duration) -> Result<Call, ClientError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let presented = Arc::new(Mutex::new(None));
    let verifier = Verifier {
        check: AgentKeyCheck::PinOnFirstContact,
        presented: presented.clone(),
    };
    let handle = match tokio::time::timeout(
        timeout,
        client::connect_stream(ssh_config(), stream, verifier),
    )
    .await
    {
        Err(_) => return Err(ClientError::Timeout(timeout)),
        Ok(result) => result?,
    };
    let agent_key = presented
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .ok_or(ClientError::Protocol("no host key was presented".into()))?;
    Ok(Call { handle, agent_key })
}

/// Dials, checks the agent's key, authenticates; returns the session and the key the agent
/// presented.
async fn handshake(dial: &Dial) -> Result<(client::Handle<Verifier>, PublicKey), ClientError> {
    let presented = Arc::new(Mutex::new(None));
    let verifier = Verifier {
        check: dial.agent_key.clone(),
        presented: presented.clone(),
    };
    let config = ssh_config();
    let attempt = async {
        let mut handle =
            client::connect(config, (dial.address.as_str(), dial.port), verifier).await?;
        let auth = handle
            .authenticate_publickey(
                "otto",
                PrivateKeyWithHashAlg::new(dial.server_key.clone(), None),
            )
            .await?;
        Ok::<_, russh::Error>((handle, auth.success()))
    };
    let seen = || presented.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match tokio::time::timeout(dial.timeout, attempt).await {
        Err(_) => Err(ClientError::Timeout(dial.timeout)),
        Ok(Err(russh::Error::UnknownKey)) => match seen() {
            Some(presented) => Err(match crate::keys::usable(&presented) {
                Err(e) => ClientError::UnusableAgentKey(e),
                Ok(()) => ClientError::AgentKeyMismatch {
                    presented: Box::new(presented),
                },
            }),
            None => Err(ClientError::Ssh(russh::Error::UnknownKey)),
        },
        // The handshake had not reached the agent's key.
        Ok(Err(e)) if closed_by_peer(&e) && seen().is_none() => {
            Err(ClientError::ClosedBeforeHandshake)
        }
        Ok(Err(e)) => Err(e.into()),
        Ok(Ok((_, false))) => Err(ClientError::AuthRejected),
        Ok(Ok((handle, true))) => {
            let agent_key =
                seen().ok_or(ClientError::Protocol("no host key was presented".into()))?;
            Ok((handle, agent_key))
        }
    }
}

/// An authenticated SSH session with an agent.
type Handle = Arc<client::Handle<Verifier>>;

/// One authenticated SSH connection to an agent, as its users see it: underneath, a new SSH
/// connection takes over before the agent's limit of channels per connection
/// ([`otto_proto::MAX_CHANNELS_PER_CONNECTION`]) is reached, and the old one ends once its
/// channels have (russh keeps a connection while a channel of it is open).
#[derive(Clone)]
pub struct Connection {
    route: Route,
    agent_key: PublicKey,
    limits: Limits,
}

/// How a [`Connection`]'s channels reach the agent.
#[derive(Clone)]
enum Route {
    /// On an SSH connection of this process.
    Ssh(Arc<Shared>),
    /// Through another server, on its connection (the agent called home to it).
    Relay(Arc<dyn Relay>),
}

/// A way to an agent through another server, the one its agent called home to: each
/// [`Relay::open`] is a new otto channel there, relayed as a byte stream.
#[async_trait::async_trait]
pub trait Relay: Send + Sync {
    /// A new otto channel on the agent (the other server has opened it), as a byte stream.
    async fn open(&self) -> Result<Box<dyn RelayIo>, ClientError>;
}

/// A relayed channel's byte stream.
pub trait RelayIo: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> RelayIo for T {}

/// What the clones of a [`Connection`] share.
struct Shared {
    /// How to dial the agent again: as at first, its key now pinned; None for a connection
    /// the agent made by calling home (it cannot be dialled).
    dial: Option<Dial>,
    /// The agent's address, for the logs.
    address: String,
    /// The SSH connection new channels go on.
    current: Mutex<Current>,
    /// Held while a new SSH connection is dialled: one caller dials, the others wait for it.
    renewing: tokio::sync::Mutex<()>,
}

/// The SSH connection new channels of a [`Connection`] go on.
struct Current {
    handle: Handle,
    /// Channels asked for on it.
    opened: usize,
    /// Whether the agent has accepted a channel on it, or it was not dialled because of a
    /// refusal. A refusal on one that was and has had none means the agent as a whole is
    /// busy: another connection would not help (and the agent, past its number of
    /// connections, would cut the oldest, runs and all).
    proven: bool,
}

/// An otto channel on an agent, opened for another server ([`Connection::open_for_relay`]).
pub struct OpenChannel {
    read: ChannelReadHalf,
    write: ChannelWriteHalf<client::Msg>,
}

impl OpenChannel {
    /// Relays the channel to and from `stream` until either side ends it; the bytes are the
    /// protocol's frames, which the other server reads and checks.
    pub async fn relay<S: AsyncRead + AsyncWrite + Unpin>(self, stream: S) {
        let OpenChannel { mut read, write } = self;
        let (mut from, mut to) = tokio::io::split(stream);
        let mut buffer = vec![0; DATA_CHUNK];
        loop {
            tokio::select! {
                n = from.read(&mut buffer) => match n {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if write.data(buffer.get(..n).unwrap_or_default()).await.is_err() {
                            break;
                        }
                    }
                },
                message = read.wait() => match message {
                    Some(ChannelMsg::Data { data }) => {
                        if to.write_all(&data).await.is_err() || to.flush().await.is_err() {
                            break;
                        }
                    }
                    Some(ChannelMsg::Eof | ChannelMsg::Close) | None => break,
                    Some(_) => {}
                },
            }
        }
        let _ = write.close().await;
        let _ = to.shutdown().await;
    }
}

/// The SSH connection new channels of `shared` go on.
fn current(shared: &Shared) -> std::sync::MutexGuard<'_, Current> {
    shared.current.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether a channel refused on `handle` may be asked for on a new connection.
fn may_renew(shared: &Shared, handle: &Handle) -> bool {
    let current = current(shared);
    current.proven || !Arc::ptr_eq(&current.handle, handle)
}

impl Connection {
    /// Dials, checks the agent's key, authenticates.
    pub async fn connect(dial: &Dial) -> Result<Connection, ClientError> {
        let (handle, agent_key) = handshake(dial).await?;
        let dial = Dial {
            agent_key: AgentKeyCheck::Pinned(agent_key.clone()),
            ..dial.clone()
        };
        Ok(Connection {
            limits: dial.limits,
            route: Route::Ssh(Arc::new(Shared {
                address: dial.address.clone(),
                dial: Some(dial),
                current: Mutex::new(Current {
                    handle: Arc::new(handle),
                    opened: 0,
                    proven: true,
                }),
                renewing: tokio::sync::Mutex::new(()),
            })),
            agent_key,
        })
    }

    /// A connection to the agent whose key is `agent_key` (pinned, and checked by the other
    /// server) whose channels go through `relay`.
    pub fn relayed(relay: Arc<dyn Relay>, agent_key: PublicKey, limits: Limits) -> Connection {
        Connection {
            route: Route::Relay(relay),
            agent_key,
            limits,
        }
    }

    /// Authenticates with `server_key` on a connection the agent made by calling home
    /// (`call`, from `peer`), within `timeout`; `limits` for every later wait.
    pub async fn called(
        call: Call,
        peer: std::net::SocketAddr,
        server_key: Arc<PrivateKey>,
        timeout: Duration,
        limits: Limits,
    ) -> Result<Connection, ClientError> {
        let Call {
            mut handle,
            agent_key,
        } = call;
        let auth =
            handle.authenticate_publickey("otto", PrivateKeyWithHashAlg::new(server_key, None));
        match tokio::time::timeout(timeout, auth).await {
            Err(_) => return Err(ClientError::Timeout(timeout)),
            Ok(result) => {
                if !result?.success() {
                    return Err(ClientError::AuthRejected);
                }
            }
        }
        Ok(Connection {
            limits,
            route: Route::Ssh(Arc::new(Shared {
                dial: None,
                address: peer.to_string(),
                current: Mutex::new(Current {
                    handle: Arc::new(handle),
                    opened: 0,
                    proven: true,
                }),
                renewing: tokio::sync::Mutex::new(()),
            })),
            agent_key,
        })
    }

    /// Closes the SSH connection new channels would go on (channels open on it end with it);
    /// nothing for a relayed one.
    pub async fn close(&self) {
        let Route::Ssh(shared) = &self.route else {
            return;
        };
        let handle = current(shared).handle.clone();
        let _ = handle
            .disconnect(russh::Disconnect::ByApplication, "replaced", "")
            .await;
    }

    /// Whether the agent made this connection by calling home (here or, relayed, to another
    /// server).
    pub fn called_home(&self) -> bool {
        match &self.route {
            Route::Ssh(shared) => shared.dial.is_none(),
            Route::Relay(_) => true,
        }
    }

    /// The host key the agent presented.
    pub fn agent_key(&self) -> &PublicKey {
        &self.agent_key
    }

    /// Whether the connection has gone (a relayed one is asked for each channel).
    pub fn is_closed(&self) -> bool {
        match &self.route {
            Route::Ssh(shared) => current(shared).handle.is_closed(),
            Route::Relay(_) => false,
        }
    }

    /// Whether `other` is this very connection (not merely one to the same agent).
    pub fn same(&self, other: &Connection) -> bool {
        match (&self.route, &other.route) {
            (Route::Ssh(a), Route::Ssh(b)) => Arc::ptr_eq(a, b),
            (Route::Relay(a), Route::Relay(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// The SSH connection for one more channel, counted: a new one once the agent would
    /// accept no more on the current one.
    async fn handle(&self, shared: &Shared) -> Result<Handle, ClientError> {
        let worn = {
            let mut current = current(shared);
            if current.opened < otto_proto::MAX_CHANNELS_PER_CONNECTION {
                current.opened += 1;
                return Ok(current.handle.clone());
            }
            current.handle.clone()
        };
        self.renew(shared, &worn, true).await
    }

    /// Dials a new SSH connection to replace `old` (unless another caller has just done so)
    /// and counts one channel on it; `proven`: see [`Current::proven`].
    async fn renew(
        &self,
        shared: &Shared,
        old: &Handle,
        proven: bool,
    ) -> Result<Handle, ClientError> {
        let _one = shared.renewing.lock().await;
        {
            let mut current = current(shared);
            if !Arc::ptr_eq(&current.handle, old) && !current.handle.is_closed() {
                current.opened += 1;
                return Ok(current.handle.clone());
            }
        }
        let Some(dial) = &shared.dial else {
            // Closing it makes the agent call again (on a new SSH connection).
            let _ = old
                .disconnect(russh::Disconnect::ByApplication, "used up", "")
                .await;
            return Err(ClientError::CallHomeUsedUp);
        };
        let (handle, _) = handshake(dial).await?;
        let handle = Arc::new(handle);
        let new = Current {
            handle: handle.clone(),
            opened: 1,
            proven,
        };
        let opened = std::mem::replace(&mut *current(shared), new).opened;
        tracing::debug!(
            address = %shared.address,
            "new connection after {opened} channels on the last one"
        );
        Ok(handle)
    }

    /// Opens a channel with the otto subsystem, within the answer limit. A channel the agent
    /// refuses (its limits of channels per connection and at once), or one the connection
    /// went away under (the agent closes a connection idle after many channels), has carried
    /// no request yet: it is asked for again, once, on a new connection (not if the agent
    /// has accepted no channel on a connection dialled after a refusal: see
    /// [`Current::proven`]).
    ///
    /// A relayed connection asks the other server for a channel each time, within the answer
    /// limit.
    async fn channel(&self) -> Result<Channel, ClientError> {
        let shared = match &self.route {
            Route::Ssh(shared) => shared,
            Route::Relay(relay) => {
                let within = self.limits.answer;
                let stream = tokio::time::timeout(within, relay.open())
                    .await
                    .map_err(|_| ClientError::NoAnswer {
                        what: "request for an otto channel through another server",
                        within,
                    })??;
                let (read, write) = tokio::io::split(stream);
                return Ok(Channel::new(
                    ChannelRead::Relayed(read, vec![0; DATA_CHUNK]),
                    ChannelWrite::Relayed(write),
                    self.limits,
                ));
            }
        };
        let handle = self.handle(shared).await?;
        let channel = match self.open(&handle).await {
            Err(ClientError::Ssh(e))
                if (matches!(e, russh::Error::ChannelOpenFailure(_))
                    || closed_by_peer(&e)
                    || handle.is_closed())
                    && may_renew(shared, &handle) =>
            {
                let address = &shared.address;
                tracing::debug!(%address, "channel refused ({e}); asked again on a new connection");
                let handle = self.renew(shared, &handle, false).await?;
                (self.open(&handle).await, handle)
            }
            opened => (opened, handle),
        };
        if let (Ok(_), handle) = &channel {
            let mut current = current(shared);
            if Arc::ptr_eq(&current.handle, handle) {
                current.proven = true;
            }
        }
        channel.0
    }

    /// A new otto channel on the agent, for another server to use through this one (the agent
    /// called home here): see [`OpenChannel::relay`].
    pub async fn open_for_relay(&self) -> Result<OpenChannel, ClientError> {
        let Channel { read, write, .. } = self.channel().await?;
        match (read, write) {
            (ChannelRead::Ssh(read), ChannelWrite::Ssh(write)) => Ok(OpenChannel { read, write }),
            _ => Err(ClientError::Protocol(
                "a relayed channel is not relayed again".into(),
            )),
        }
    }

    /// Opens a channel on `handle` and asks for the otto subsystem, within the answer limit.
    async fn open(&self, handle: &Handle) -> Result<Channel, ClientError> {
        let open = async {
            let channel = handle.channel_open_session().await?;
            channel.request_subsystem(true, "otto").await?;
            let (mut read, write) = channel.split();
            loop {
                match read.wait().await {
                    Some(ChannelMsg::Success) => return Ok((read, write)),
                    Some(ChannelMsg::Failure) => {
                        return Err(ClientError::Protocol(
                            "the agent refused the otto subsystem".into(),
                        ));
                    }
                    Some(ChannelMsg::Eof | ChannelMsg::Close) | None => {
                        return Err(ClientError::ChannelClosed);
                    }
                    Some(_) => {}
                }
            }
        };
        let (read, write) = tokio::time::timeout(self.limits.answer, open)
            .await
            .map_err(|_| ClientError::NoAnswer {
                what: "request for an otto channel",
                within: self.limits.answer,
            })??;
        Ok(Channel::new(
            ChannelRead::Ssh(read),
            ChannelWrite::Ssh(write),
            self.limits,
        ))
    }

    /// Asks for the agent's version and facts.
    pub async fn heartbeat(&self) -> Result<HeartbeatAnswer, ClientError> {
        let started = Instant::now();
        let nonce = new_action_id();
        let mut ch = self.channel().await?;
        ch.send(&Message::HeartbeatRequest(HeartbeatRequest {
            server_version: env!("CARGO_PKG_VERSION"),
            nonce,
        }))
        .await?;
        match ch.answer("heartbeat").await? {
            Reply::Heartbeat {
                nonce: n,
                agent_version,
                facts,
            } if n == nonce => Ok(HeartbeatAnswer {
                agent_version,
                facts,
                round_trip: started.elapsed(),
            }),
            other => Err(unexpected(&other)),
        }
    }

    /// Runs a script; output and keepalives go to `events` as they arrive. Waits for the result
    /// at most the script's own timeout plus the grace period, and fails as soon as the agent
    /// has been silent (no output, no keepalive) for the silence limit.
    pub async fn run_script(
        &self,
        script: &ScriptRequest,
        action: ActionId,
        events: mpsc::Sender<ScriptEvent>,
    ) -> Result<ActionReport, ClientError> {
        self.run_script_until(script, action, events, std::future::pending())
            .await
    }

    /// [`Connection::run_script`], cancelled once `stop` completes: before the agent is ready
    /// for the script, by leaving (it never gets the whole script, so never starts it), with
    /// the outcome [`Outcome::Cancelled`]; after, by asking the agent to cancel the action (it
    /// registered the action before saying it was ready, so the cancel finds it, even before
    /// the script starts), and the run goes on to the agent's answer.
    pub async fn run_script_until(
        &self,
        script: &ScriptRequest,
        action: ActionId,
        events: mpsc::Sender<ScriptEvent>,
        stop: impl Future<Output = ()>,
    ) -> Result<ActionReport, ClientError> {
        let started = Instant::now();
        let mut env_buf = vec![0u8; MAX_BODY_LEN];
        let mut builder = EnvironmentBuilder::new(&mut env_buf);
        for (name, value) in &script.env {
            builder
                .push(name, value)
                .map_err(|e| ClientError::TooLarge(format!("environment variable {name}: {e}")))?;
        }
        let request = Message::RunScript(RunScript {
            action,
            name: &script.name,
            interpreter: &script.interpreter,
            run_as: script.run_as,
            working_dir: script.working_dir.as_deref(),
            env: builder.finish(),
            timeout: script.timeout,
            script_len: script.body.len() as u64,
        });
        tokio::pin!(stop);
        let ready = async {
            let mut ch = self.channel().await?;
            ch.send(&request).await?;
            let ready = ch.ready_or_result(action, "run request").await?;
            Ok::<_, ClientError>((ch, ready))
        };
        let mut ch = tokio::select! {
            ready = ready => match ready? {
                (_, Some(report)) => return Ok(report),
                (ch, None) => ch,
            },
            () = &mut stop => {
                return Ok(ActionReport {
                    outcome: Outcome::Cancelled,
                    elapsed: started.elapsed(),
                    stdout_len: 0,
                    stderr_len: 0,
                });
            }
        };
        let run = self.follow_script(&mut ch, script, action, events);
        let cancel = async {
            stop.await;
            self.cancel(action).await
        };
        tokio::pin!(run, cancel);
        let mut asked = false;
        loop {
            tokio::select! {
                report = &mut run => return report,
                cancelled = &mut cancel, if !asked => {
                    asked = true;
                    match cancelled {
                        Ok(true) => tracing::debug!("action {action:016x}: cancel sent"),
                        Ok(false) => tracing::debug!("action {action:016x}: ended before the cancel"),
                        // The run's own channel tells how the connection fares.
                        Err(e) => tracing::warn!("action {action:016x}: cannot cancel: {e}"),
                    }
                }
            }
        }
    }

    /// Sends the script to an agent ready for it, then streams its output to `events` until
    /// the result (see [`Connection::run_script`]).
    async fn follow_script(
        &self,
        ch: &mut Channel,
        script: &ScriptRequest,
        action: ActionId,
        events: mpsc::Sender<ScriptEvent>,
    ) -> Result<ActionReport, ClientError> {
        let body = &script.body[..];
        if let Some(report) = ch
            .send_data(
                "sending the script",
                action,
                body,
                body.len() as u64,
                |_| {},
            )
            .await?
        {
            return Ok(report);
        }
        let limits = self.limits;
        let overdue = match script.timeout {
            ScriptTimeout::Seconds(s) => {
                let timeout = Duration::from_secs(s.into());
                Some((Instant::now() + timeout + limits.grace, timeout))
            }
            ScriptTimeout::AgentDefault | ScriptTimeout::Unlimited => None,
        };
        let mut heard = Instant::now();
        loop {
            let silent_at = heard + limits.silence;
            let until = overdue.map_or(silent_at, |(at, _)| at.min(silent_at));
            let event = match ch.reply(until).await? {
                None => {
                    return Err(match overdue {
                        Some((at, timeout)) if at <= silent_at => ClientError::RunOverdue {
                            timeout,
                            grace: limits.grace,
                        },
                        _ => ClientError::RunSilent {
                            within: limits.silence,
                        },
                    });
                }
                Some(Reply::Result { action: a, report }) if a == action => return Ok(report),
                Some(Reply::Output {
                    action: a,
                    stream,
                    data,
                }) if a == action => ScriptEvent::Output { stream, data },
                Some(Reply::Keepalive { action: a }) if a == action => ScriptEvent::Keepalive,
                Some(other) => return Err(unexpected(&other)),
            };
            heard = Instant::now();
            // A caller that stopped listening does not stop the script.
            let _ = events.send(event).await;
        }
    }

    /// Uploads `spec.len` bytes from `source`, calling `progress` with the bytes sent so far.
    /// The agent must accept more data within the stall limit, and answer within the answer
    /// limit once it has everything.
    pub async fn upload(
        &self,
        spec: &UploadSpec,
        action: ActionId,
        source: impl AsyncRead + Unpin,
        progress: impl FnMut(u64),
    ) -> Result<ActionReport, ClientError> {
        let request = Message::UploadFile(UploadFile {
            action,
            path: &spec.path,
            owner: spec.owner,
            mode: spec.mode,
            sha256: spec.sha256,
            len: spec.len,
        });
        self.send_upload(&request, action, source, progress, async { Ok(None) })
            .await
    }

    /// Uploads `spec.len` bytes from `source` as [`upload`](Self::upload) does, then the SHA-256
    /// that `digest` gives once they are sent (an `UploadStream`, protocol 9): the first byte
    /// goes before the checksum is known. When `digest` fails (the file changed while it was
    /// read) the channel is dropped without it and the agent keeps nothing. An agent older than
    /// protocol 9 refuses the request before any data: [`ClientError::older_protocol`].
    pub async fn upload_streamed(
        &self,
        spec: &StreamSpec,
        action: ActionId,
        source: impl AsyncRead + Unpin,
        digest: impl Future<Output = std::io::Result<[u8; 32]>>,
        progress: impl FnMut(u64),
    ) -> Result<ActionReport, ClientError> {
        let request = Message::UploadStream(UploadStream {
            action,
            path: &spec.path,
            owner: spec.owner,
            mode: spec.mode,
            len: spec.len,
        });
        let digest = async { digest.await.map(Some) };
        self.send_upload(&request, action, source, progress, digest)
            .await
    }

    /// Sends the upload `request` of `action` on a channel of its own, its data from `source`,
    /// then the `UploadDigest` when `digest` gives one, and waits for the agent's result.
    async fn send_upload(
        &self,
        request: &Message<'_>,
        action: ActionId,
        source: impl AsyncRead + Unpin,
        progress: impl FnMut(u64),
        digest: impl Future<Output = std::io::Result<Option<[u8; 32]>>>,
    ) -> Result<ActionReport, ClientError> {
        let mut ch = self.channel().await?;
        ch.send(request).await?;
        if let Some(report) = ch.ready_or_result(action, "upload request").await? {
            return Ok(report);
        }
        if let Some(report) = ch
            .send_data("upload", action, source, request.data_len(), progress)
            .await?
        {
            return Ok(report);
        }
        if let Some(sha256) = digest.await? {
            ch.send(&Message::UploadDigest(UploadDigest { action, sha256 }))
                .await?;
        }
        // Checking and syncing a large file on slow flash takes time: the stall limit, not the
        // (shorter) answer limit.
        let within = self.limits.stall.max(self.limits.answer);
        ch.result(action, "completed upload", within).await
    }

    /// What is at `path` on the agent's host: the regular file's checksum, mode, length and
    /// owner, or `None` when nothing is there. A path that is not absolute, not a regular file
    /// or not readable is [`ClientError::FileRefused`], with the agent's reason.
    pub async fn stat_file(&self, path: &str) -> Result<Option<FileInfo>, ClientError> {
        let action = new_action_id();
        let mut ch = self.channel().await?;
        ch.send(&Message::StatFile(StatFile { action, path }))
            .await?;
        // The agent reads the whole file for its checksum: as long as checking an upload.
        let within = self.limits.stall.max(self.limits.answer);
        match ch.answer_within("stat request", within).await? {
            Reply::Stat { action: a, stat } if a == action => Ok(stat),
            Reply::Result { action: a, report } if a == action => Err(refused(report)),
            other => Err(unexpected(&other)),
        }
    }

    /// Fetches the file at `path` from the agent's host into `into`, calling `progress` with the
    /// bytes received so far; refused by the agent (with its reason) when it is missing, not a
    /// regular file, or longer than `max_len`. The agent must send more within the stall limit.
    /// What arrived is checked against the length and SHA-256 the agent announced: a file that
    /// changed while the agent read it is [`ClientError::ChangedWhileRead`], and `into` then
    /// holds bytes the caller must throw away.
    pub async fn fetch_file(
        &self,
        path: &str,
        max_len: u64,
        mut into: impl AsyncWrite + Unpin,
        mut progress: impl FnMut(u64),
    ) -> Result<FetchedFile, ClientError> {
        let action = new_action_id();
        let mut ch = self.channel().await?;
        ch.send(&Message::FetchFile(FetchFile {
            action,
            path,
            max_len,
        }))
        .await?;
        let stall = self.limits.stall.max(self.limits.answer);
        let fetched = match ch.answer_within("fetch request", stall).await? {
            Reply::FileHeader {
                action: a,
                len,
                mode,
                sha256,
            } if a == action => FetchedFile { len, mode, sha256 },
            Reply::Result { action: a, report } if a == action => return Err(refused(report)),
            other => return Err(unexpected(&other)),
        };
        if fetched.len > max_len {
            return Err(ClientError::Protocol(format!(
                "the agent announced {} bytes of {path}, over the limit of {max_len}",
                fetched.len
            )));
        }
        let mut hasher = Sha256::new();
        let mut received = 0u64;
        while received < fetched.len {
            let chunk = match ch.reply(Instant::now() + stall).await {
                Ok(Some(Reply::Data(chunk))) => chunk,
                Ok(Some(other)) => return Err(unexpected(&other)),
                Ok(None) => {
                    return Err(ClientError::Stalled {
                        what: "fetch",
                        sent: received,
                        within: stall,
                    });
                }
                // The agent ends the channel when the file ended sooner than announced.
                Err(ClientError::ChannelClosed) => {
                    return Err(ClientError::ChangedWhileRead {
                        path: path.into(),
                        detail: format!(
                            "the agent stopped after {received} of {} bytes",
                            fetched.len
                        ),
                    });
                }
                Err(e) => return Err(e),
            };
            received += chunk.len() as u64;
            hasher.update(&chunk);
            into.write_all(&chunk).await.map_err(ClientError::Write)?;
            progress(received);
        }
        into.flush().await.map_err(ClientError::Write)?;
        let sha256: [u8; 32] = hasher.finalize().into();
        if sha256 != fetched.sha256 {
            return Err(ClientError::ChangedWhileRead {
                path: path.into(),
                detail: "its SHA-256 is not the one announced".into(),
            });
        }
        let report = ch
            .result(action, "end of the fetch", self.limits.answer)
            .await?;
        match report.outcome {
            Outcome::Completed => Ok(fetched),
            _ => Err(refused(report)),
        }
    }

    /// Sends the agent a new binary of itself (`UpdateAgent`): `update.len` bytes from `source`,
    /// calling `progress` with the bytes sent so far. A `Completed` report means the agent
    /// checked the binary and put it in place, and is restarting into it on trial (it has
    /// `update.confirm_secs` to answer a heartbeat, or the device goes back to the old binary);
    /// the connection ends soon after.
    pub async fn update_agent(
        &self,
        update: &UpdateAgent,
        source: impl AsyncRead + Unpin,
        progress: impl FnMut(u64),
    ) -> Result<ActionReport, ClientError> {
        let action = update.action;
        let mut ch = self.channel().await?;
        ch.send(&Message::UpdateAgent(*update)).await?;
        if let Some(report) = ch.ready_or_result(action, "update request").await? {
            return Ok(report);
        }
        if let Some(report) = ch
            .send_data("update", action, source, update.len, progress)
            .await?
        {
            return Ok(report);
        }
        // Checking and syncing a binary on slow flash takes time, as for an upload.
        let within = self.limits.stall.max(self.limits.answer);
        ch.result(action, "update", within).await
    }

    /// Cancels a running action; false if the agent had no such action running.
    pub async fn cancel(&self, target: ActionId) -> Result<bool, ClientError> {
        let action = new_action_id();
        let mut ch = self.channel().await?;
        ch.send(&Message::CancelAction(CancelAction { action, target }))
            .await?;
        let report = ch
            .result(action, "cancel request", self.limits.answer)
            .await?;
        Ok(report.outcome == Outcome::Completed)
    }

    /// Gives the agent a new server key to trust; returns the agent's new key.
    pub async fn rotate_identity(
        &self,
        new_server_key: &PublicKey,
    ) -> Result<PublicKey, ClientError> {
        let raw = new_server_key
            .key_data()
            .ed25519()
            .map(|k| k.0)
            .ok_or(ClientError::Protocol("not an Ed25519 key".into()))?;
        let mut ch = self.channel().await?;
        ch.send(&Message::RotateIdentityRequest(RotateIdentityRequest {
            server_public_key: raw,
        }))
        .await?;
        match ch.answer("key rotation request").await? {
            Reply::Rotated { agent_public_key } => {
                otto_proto::ed25519::check_public_key(&agent_public_key)
                    .map_err(ClientError::UnusableAgentKey)?;
                Ok(PublicKey::from(
                    russh::keys::ssh_key::public::Ed25519PublicKey(agent_public_key),
                ))
            }
            Reply::RotateFailed { error } => Err(ClientError::AgentFailure(error)),
            other => Err(unexpected(&other)),
        }
    }

    /// Sends a control request and waits for its answer.
    pub async fn control(&self, request: Control) -> Result<ActionReport, ClientError> {
        let action = new_action_id();
        let what = match request {
            Control::Reload => "reload request",
            Control::Exit => "exit request",
            Control::Reboot => "reboot request",
            Control::Shutdown => "shutdown request",
        };
        let mut ch = self.channel().await?;
        ch.send(&request.message(action)).await?;
        ch.result(action, what, self.limits.answer).await
    }
}

fn unexpected(reply: &Reply) -> ClientError {
    match reply {
        Reply::Failure { message } => ClientError::AgentFailure(message.clone()),
        other => ClientError::Protocol(format!("unexpected {} from the agent", other.name())),
    }
}

/// A file request the agent answered with an ActionResult instead of the file or its stat.
fn refused(report: ActionReport) -> ClientError {
    match report.outcome {
        Outcome::Failed(why) => ClientError::FileRefused(why),
        other => ClientError::Protocol(format!("the agent answered {other} instead of a file")),
    }
}

fn report(r: &otto_proto::ActionResult<'_>) -> ActionReport {
    use otto_proto::Outcome as O;
    ActionReport {
        outcome: match r.outcome {
            O::Exited { code } => Outcome::Exited(code),
            O::Signaled { signal } => Outcome::Signaled(signal),
            O::TimedOut => Outcome::TimedOut,
            O::Cancelled => Outcome::Cancelled,
            O::Completed => Outcome::Completed,
            O::Failed { error } => Outcome::Failed(sanitize::field(error, MESSAGE_MAX)),
        },
        elapsed: Duration::from_millis(r.elapsed_ms),
        stdout_len: r.stdout_len,
        stderr_len: r.stderr_len,
    }
}

/// Bytes of additional data sent per write; the agent's window must open for each in time.
const DATA_CHUNK: usize = 32 * 1024;

/// One Otto channel: frames out through a [`FrameWriter`] (each holds only its own bytes while
/// russh has it; no allocation per frame), additional data through one buffer per transfer
/// (none for a channel that sends no data: a heartbeat's), replies in through [`Frames`].
struct Channel {
    read: ChannelRead,
    write: ChannelWrite,
    frames: Frames,
    out: FrameWriter,
    limits: Limits,
}

/// Where a channel's bytes come from: an SSH channel, or another server relaying one.
enum ChannelRead {
    Ssh(ChannelReadHalf),
    /// With a buffer to read into.
    Relayed(tokio::io::ReadHalf<Box<dyn RelayIo>>, Vec<u8>),
}

impl ChannelRead {
    /// Adds the next bytes the agent sent to `frames`; false once the channel has ended.
    /// Cancel-safe: nothing read is lost if the wait is dropped.
    async fn read_into(&mut self, frames: &mut Frames) -> bool {
        match self {
            ChannelRead::Ssh(read) => loop {
                match read.wait().await {
                    Some(ChannelMsg::Data { data }) => {
                        frames.push(&data);
                        return true;
                    }
                    Some(ChannelMsg::Eof | ChannelMsg::Close) | None => return false,
                    Some(_) => {}
                }
            },
            ChannelRead::Relayed(read, buffer) => match read.read(buffer).await {
                Ok(0) | Err(_) => false,
                Ok(n) => {
                    frames.push(buffer.get(..n).unwrap_or_default());
                    true
                }
            },
        }
    }
}

/// Where a channel's bytes go.
enum ChannelWrite {
    Ssh(ChannelWriteHalf<client::Msg>),
    Relayed(tokio::io::WriteHalf<Box<dyn RelayIo>>),
}

impl ChannelWrite {
    /// Sends `bytes` (through russh's stream writer, which cuts them to the agent's window
    /// and packet size).
    async fn send(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        match self {
            ChannelWrite::Ssh(write) => Ok(write.data(bytes).await?),
            ChannelWrite::Relayed(write) => {
                write.write_all(bytes).await?;
                Ok(write.flush().await?)
            }
        }
    }
}

impl Channel {
    fn new(read: ChannelRead, write: ChannelWrite, limits: Limits) -> Channel {
        Channel {
            read,
            write,
            frames: Frames::new(),
            out: FrameWriter::new(),
            limits,
        }
    }

    /// Sends one frame; the agent must take it within the stall limit.
    async fn send(&mut self, message: &Message<'_>) -> Result<(), ClientError> {
        let name = message.message_type().name();
        let frame = self
            .out
            .frame(message)
            .map_err(|_| ClientError::TooLarge(format!("{name} exceeds {MAX_BODY_LEN} bytes")))?;
        tokio::time::timeout(self.limits.stall, self.write.send(&frame))
            .await
            .map_err(|_| ClientError::Stalled {
                what: "sending the request",
                sent: 0,
                within: self.limits.stall,
            })??;
        Ok(())
    }

    /// Sends `len` bytes of additional data from `source` for `action`. Each chunk must be taken
    /// within the stall limit; meanwhile the channel is watched, so an agent that goes away or
    /// ends the action early is noticed at once. Returns the agent's early result, if any.
    async fn send_data(
        &mut self,
        what: &'static str,
        action: ActionId,
        mut source: impl AsyncRead + Unpin,
        len: u64,
        mut progress: impl FnMut(u64),
    ) -> Result<Option<ActionReport>, ClientError> {
        let stall = self.limits.stall;
        let mut chunk = vec![0; usize::try_from(len).unwrap_or(usize::MAX).min(DATA_CHUNK)];
        let mut sent = 0u64;
        while sent < len {
            let want = usize::try_from(len - sent)
                .unwrap_or(usize::MAX)
                .min(DATA_CHUNK);
            let n = source
                .read(chunk.get_mut(..want).unwrap_or_default())
                .await?;
            if n == 0 {
                // The agent sees a short transfer, removes its temporary file, keeps the old one.
                return Err(ClientError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("the source ended after {sent} of {len} bytes"),
                )));
            }
            // Through russh's stream writer, which cuts it to the agent's window and packet size:
            // handed over as one 32 KiB piece, the agent's peak memory on a slow device grew by
            // about 650 kB (`it qemu_system::`).
            let write = self.write.send(chunk.get(..n).unwrap_or_default());
            let deadline = tokio::time::sleep(stall);
            tokio::pin!(write, deadline);
            loop {
                tokio::select! {
                    written = &mut write => {
                        written?;
                        break;
                    }
                    _ = &mut deadline => {
                        return Err(ClientError::Stalled { what, sent, within: stall });
                    }
                    more = self.read.read_into(&mut self.frames) => {
                        if !more {
                            return Err(ClientError::ChannelClosed);
                        }
                        match self.frames.next_reply()? {
                            None => {}
                            Some(Reply::Result { action: a, report }) if a == action => {
                                return Ok(Some(report));
                            }
                            Some(other) => return Err(unexpected(&other)),
                        }
                    }
                }
            }
            sent += n as u64;
            progress(sent);
        }
        Ok(None)
    }

    /// The next reply, or None once `deadline` has passed without one.
    async fn reply(&mut self, deadline: Instant) -> Result<Option<Reply>, ClientError> {
        loop {
            if let Some(reply) = self.frames.next_reply()? {
                return Ok(Some(reply));
            }
            let more = self.read.read_into(&mut self.frames);
            match tokio::time::timeout_at(deadline.into(), more).await {
                Err(_) => return Ok(None),
                Ok(true) => {}
                Ok(false) => return Err(ClientError::ChannelClosed),
            }
        }
    }

    /// The answer to the `what` just sent, within the answer limit.
    async fn answer(&mut self, what: &'static str) -> Result<Reply, ClientError> {
        self.answer_within(what, self.limits.answer).await
    }

    /// The answer to the `what` just sent, within `within`.
    async fn answer_within(
        &mut self,
        what: &'static str,
        within: Duration,
    ) -> Result<Reply, ClientError> {
        self.reply(Instant::now() + within)
            .await?
            .ok_or(ClientError::NoAnswer { what, within })
    }

    /// Waits for ReadyForData (None) or an early ActionResult (the request was refused).
    async fn ready_or_result(
        &mut self,
        action: ActionId,
        what: &'static str,
    ) -> Result<Option<ActionReport>, ClientError> {
        match self.answer(what).await? {
            Reply::Ready { action: a } if a == action => Ok(None),
            Reply::Result { action: a, report } if a == action => Ok(Some(report)),
            other => Err(unexpected(&other)),
        }
    }

    /// The ActionResult of `action`, within `within`.
    async fn result(
        &mut self,
        action: ActionId,
        what: &'static str,
        within: Duration,
    ) -> Result<ActionReport, ClientError> {
        match self.answer_within(what, within).await? {
            Reply::Result { action: a, report } if a == action => Ok(report),
            other => Err(unexpected(&other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each held connection has three queues of russh's `client::Msg`, and tokio gives each a
    /// block of 32 at once and a second once 32 have passed: the vendored russh boxes each
    /// message (`vendor/README.md`): at 136 bytes a message, the queues took 13 KB per
    /// connection, and 4.4 KB more once a few heartbeats had passed through.
    #[test]
    fn russh_client_messages_are_a_pointer() {
        let size = std::mem::size_of::<russh::client::Msg>();
        assert_eq!(
            size,
            std::mem::size_of::<usize>(),
            "russh::client::Msg is {size} bytes"
        );
    }

    /// russh's constants are the profile's names, in its order.
    #[test]
    fn preferred_offers_exactly_the_profile() {
        use otto_proto::profile;

        fn strs<N: AsRef<str>>(names: &[N]) -> Vec<&str> {
            names.iter().map(AsRef::as_ref).collect()
        }
        let p = preferred();
        assert_eq!(strs(&p.kex), profile::CLIENT_KEX);
        let keys: Vec<&str> = p.key.iter().map(Algorithm::as_str).collect();
        assert_eq!(keys, [profile::HOST_KEY]);
        assert_eq!(strs(&p.cipher), [profile::CIPHER]);
        assert_eq!(strs(&p.mac), [profile::MAC]);
        assert_eq!(strs(&p.compression), [profile::COMPRESSION]);
        assert!(p.host_key_certificates.is_empty());
    }
}
