//! The server's side of the Otto protocol: one SSH connection to one agent, authenticated with
//! that host's own server key, the agent's host key checked against the pinned one. Each
//! operation opens its own channel (subsystem `otto`), so many run at once on one connection.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use otto_proto::{
    ActionId, ActionRef, CancelAction, Credentials, EnvironmentBuilder, HEADER_LEN,
    HeartbeatRequest, MAX_BODY_LEN, Message, RotateIdentityRequest, RotateIdentityResponse,
    RunScript, ScriptTimeout, Stream, UploadFile,
};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, Preferred, cipher, client, compression, kex, mac};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use crate::sanitize::{self, FIELD_MAX, MESSAGE_MAX};
use crate::store::Facts;

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
}

/// What went wrong talking to an agent.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The connection could not be made in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The agent presented another key than the pinned one.
    #[error("the agent presented key {} instead of the pinned one", crate::keys::fingerprint(.presented))]
    AgentKeyMismatch {
        /// The key it presented (boxed: it is large, and errors travel often).
        presented: Box<PublicKey>,
    },
    /// The agent does not trust this server key.
    #[error("the agent refused this server's key")]
    AuthRejected,
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
}

/// An agent's answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    /// The agent's version.
    pub agent_version: String,
    /// The facts it reported about its host.
    pub facts: Facts,
    /// Request to answer.
    pub round_trip: Duration,
}

/// A script to run.
#[derive(Debug, Clone)]
pub struct Script {
    pub name: String,
    pub interpreter: String,
    pub body: Vec<u8>,
    pub env: Vec<(String, String)>,
    pub run_as: Credentials,
    pub working_dir: Option<String>,
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

/// The control requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Reload,
    Exit,
    Reboot,
    Shutdown,
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

/// The Otto algorithm set: curve25519-sha256, chacha20-poly1305, ssh-ed25519.
fn preferred() -> Preferred {
    Preferred {
        kex: (&[
            kex::CURVE25519,
            kex::EXTENSION_SUPPORT_AS_CLIENT,
            kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT,
        ][..])
            .into(),
        key: (&[russh::keys::Algorithm::Ed25519][..]).into(),
        cipher: (&[cipher::CHACHA20_POLY1305][..]).into(),
        mac: (&[mac::HMAC_SHA256_ETM][..]).into(),
        compression: (&[compression::NONE][..]).into(),
        host_key_certificates: (&[][..]).into(),
    }
}

/// Checks the agent's host key during the handshake and remembers what it presented.
struct Verifier {
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
        Ok(match &self.check {
            AgentKeyCheck::Pinned(pinned) => pinned.key_data() == key.key_data(),
            AgentKeyCheck::PinOnFirstContact => true,
        })
    }
}

/// One authenticated SSH connection to an agent.
#[derive(Clone)]
pub struct Connection {
    handle: Arc<client::Handle<Verifier>>,
    agent_key: PublicKey,
}

impl Connection {
    /// Dials, checks the agent's key, authenticates.
    pub async fn connect(dial: &Dial) -> Result<Connection, ClientError> {
        let presented = Arc::new(Mutex::new(None));
        let verifier = Verifier {
            check: dial.agent_key.clone(),
            presented: presented.clone(),
        };
        let config = Arc::new(client::Config {
            preferred: preferred(),
            nodelay: true,
            keepalive_interval: Some(Duration::from_secs(60)),
            inactivity_timeout: None,
            ..Default::default()
        });
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
                Some(presented) => Err(ClientError::AgentKeyMismatch {
                    presented: Box::new(presented),
                }),
                None => Err(ClientError::Ssh(russh::Error::UnknownKey)),
            },
            Ok(Err(e)) => Err(e.into()),
            Ok(Ok((_, false))) => Err(ClientError::AuthRejected),
            Ok(Ok((handle, true))) => {
                let agent_key =
                    seen().ok_or(ClientError::Protocol("no host key was presented".into()))?;
                Ok(Connection {
                    handle: Arc::new(handle),
                    agent_key,
                })
            }
        }
    }

    /// The host key the agent presented.
    pub fn agent_key(&self) -> &PublicKey {
        &self.agent_key
    }

    /// Whether the connection has gone.
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    async fn channel(&self) -> Result<Channel, ClientError> {
        let mut channel = self.handle.channel_open_session().await?;
        channel.request_subsystem(true, "otto").await?;
        loop {
            match channel.wait().await {
                Some(ChannelMsg::Success) => {
                    return Ok(Channel {
                        channel,
                        pending: Vec::new(),
                    });
                }
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
    }

    /// Asks for the agent's version and facts.
    pub async fn heartbeat(&self) -> Result<Heartbeat, ClientError> {
        let started = Instant::now();
        let nonce = new_action_id();
        let mut ch = self.channel().await?;
        ch.send(&Message::HeartbeatRequest(HeartbeatRequest {
            server_version: env!("CARGO_PKG_VERSION"),
            nonce,
        }))
        .await?;
        ch.next(|message| match message {
            Message::HeartbeatResponse(r) if r.nonce == nonce => Ok(Some(Heartbeat {
                agent_version: sanitize::field(r.agent_version, FIELD_MAX),
                facts: Facts::from(&r.facts),
                round_trip: started.elapsed(),
            })),
            other => Err(unexpected(&other)),
        })
        .await
    }

    /// Runs a script; output and keepalives go to `events` as they arrive.
    pub async fn run_script(
        &self,
        script: &Script,
        action: ActionId,
        events: mpsc::Sender<ScriptEvent>,
    ) -> Result<ActionReport, ClientError> {
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
        let mut ch = self.channel().await?;
        ch.send(&request).await?;
        if let Some(report) = ch.ready_or_result(action).await? {
            return Ok(report);
        }
        ch.channel.data(&script.body[..]).await?;
        loop {
            let event = ch
                .next(|message| match message {
                    Message::ActionOutput(o) if o.action == action => {
                        Ok(Some(Err(ScriptEvent::Output {
                            stream: o.stream,
                            data: o.data.to_vec(),
                        })))
                    }
                    Message::Keepalive(k) if k.action == action => {
                        Ok(Some(Err(ScriptEvent::Keepalive)))
                    }
                    Message::ActionResult(r) if r.action == action => Ok(Some(Ok(report(&r)))),
                    other => Err(unexpected(&other)),
                })
                .await?;
            match event {
                Ok(report) => return Ok(report),
                // A caller that stopped listening does not stop the script.
                Err(event) => {
                    let _ = events.send(event).await;
                }
            }
        }
    }

    /// Uploads `spec.len` bytes from `source`, calling `progress` with the bytes sent so far.
    pub async fn upload(
        &self,
        spec: &UploadSpec,
        action: ActionId,
        mut source: impl AsyncRead + Unpin,
        mut progress: impl FnMut(u64),
    ) -> Result<ActionReport, ClientError> {
        let mut ch = self.channel().await?;
        ch.send(&Message::UploadFile(UploadFile {
            action,
            path: &spec.path,
            owner: spec.owner,
            mode: spec.mode,
            sha256: spec.sha256,
            len: spec.len,
        }))
        .await?;
        if let Some(report) = ch.ready_or_result(action).await? {
            return Ok(report);
        }
        let mut buf = vec![0u8; 32 * 1024];
        let mut sent = 0u64;
        while sent < spec.len {
            let want = usize::try_from(spec.len - sent)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            let n = source.read(&mut buf[..want]).await?;
            if n == 0 {
                // The agent sees a short upload, removes its temporary file and keeps the old one.
                return Err(ClientError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("the source ended after {sent} of {} bytes", spec.len),
                )));
            }
            ch.channel.data(&buf[..n]).await?; // waits for the agent's window: backpressure
            sent += n as u64;
            progress(sent);
        }
        ch.result(action).await
    }

    /// Cancels a running action; false if the agent had no such action running.
    pub async fn cancel(&self, target: ActionId) -> Result<bool, ClientError> {
        let action = new_action_id();
        let mut ch = self.channel().await?;
        ch.send(&Message::CancelAction(CancelAction { action, target }))
            .await?;
        Ok(ch.result(action).await?.outcome == Outcome::Completed)
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
        ch.next(|message| match message {
            Message::RotateIdentityResponse(RotateIdentityResponse::Rotated {
                agent_public_key,
            }) => Ok(Some(PublicKey::from(
                russh::keys::ssh_key::public::Ed25519PublicKey(agent_public_key),
            ))),
            Message::RotateIdentityResponse(RotateIdentityResponse::Failed { error }) => Err(
                ClientError::AgentFailure(sanitize::field(error, MESSAGE_MAX)),
            ),
            other => Err(unexpected(&other)),
        })
        .await
    }

    /// Sends a control request and waits for its answer.
    pub async fn control(&self, request: Control) -> Result<ActionReport, ClientError> {
        let action = new_action_id();
        let r = ActionRef { action };
        let message = match request {
            Control::Reload => Message::ReloadConfig(r),
            Control::Exit => Message::ExitAgent(r),
            Control::Reboot => Message::Reboot(r),
            Control::Shutdown => Message::Shutdown(r),
        };
        let mut ch = self.channel().await?;
        ch.send(&message).await?;
        ch.result(action).await
    }
}

fn unexpected(message: &Message<'_>) -> ClientError {
    match message {
        Message::GeneralFailure(f) => {
            ClientError::AgentFailure(sanitize::field(f.message, MESSAGE_MAX))
        }
        other => ClientError::Protocol(format!(
            "unexpected {} from the agent",
            other.message_type().name()
        )),
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

/// One Otto channel: frames out, frames in.
struct Channel {
    channel: russh::Channel<client::Msg>,
    pending: Vec<u8>,
}

impl Channel {
    async fn send(&mut self, message: &Message<'_>) -> Result<(), ClientError> {
        let mut buf = vec![0u8; HEADER_LEN + MAX_BODY_LEN];
        let n = otto_proto::encode(message, &mut buf).map_err(|_| {
            ClientError::TooLarge(format!(
                "{} exceeds {MAX_BODY_LEN} bytes",
                message.message_type().name()
            ))
        })?;
        self.channel.data(&buf[..n]).await?;
        Ok(())
    }

    /// Reads the next frame and hands it to `take`, which turns it into a value or an error.
    async fn next<T>(
        &mut self,
        mut take: impl FnMut(Message<'_>) -> Result<Option<T>, ClientError>,
    ) -> Result<T, ClientError> {
        loop {
            match otto_proto::decode_frame(&self.pending, MAX_BODY_LEN) {
                Ok((message, len)) => {
                    let value = take(message)?;
                    self.pending.drain(..len);
                    if let Some(value) = value {
                        return Ok(value);
                    }
                }
                Err(otto_proto::Error::Incomplete) => match self.channel.wait().await {
                    Some(ChannelMsg::Data { data }) => self.pending.extend_from_slice(&data),
                    Some(ChannelMsg::Eof | ChannelMsg::Close) | None => {
                        return Err(ClientError::ChannelClosed);
                    }
                    Some(_) => {}
                },
                Err(e) => return Err(ClientError::Protocol(e.to_string())),
            }
        }
    }

    /// Waits for ReadyForData (None) or an early ActionResult (the request was refused).
    async fn ready_or_result(
        &mut self,
        action: ActionId,
    ) -> Result<Option<ActionReport>, ClientError> {
        self.next(|message| match message {
            Message::ReadyForData(r) if r.action == action => Ok(Some(None)),
            Message::ActionResult(r) if r.action == action => Ok(Some(Some(report(&r)))),
            other => Err(unexpected(&other)),
        })
        .await
    }

    async fn result(&mut self, action: ActionId) -> Result<ActionReport, ClientError> {
        self.next(|message| match message {
            Message::ActionResult(r) if r.action == action => Ok(Some(report(&r))),
            other => Err(unexpected(&other)),
        })
        .await
    }
}
