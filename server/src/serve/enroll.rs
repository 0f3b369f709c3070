//! The enrollment session: the server's side of an agent joining by itself
//! (`proto-nostd/README.md`, "Enrollment"). Over an SSH connection the agent made (the listener
//! runs the SSH client on the accepted socket and has learnt the agent's host key), the server
//! authenticates with its enrollment key, opens one channel with the subsystem `otto-enroll`,
//! reads the agent's one `EnrollRequest` (at most [`MAX_BODY_LEN`] bytes, within
//! [`SESSION_TIME`] for the whole session), has [`Ops::enroll`] decide (which records the
//! enrollment, accepted or refused), answers, and closes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use otto_proto::{
    ENROLL_SUBSYSTEM, EnrollRequest, EnrollResponse, FrameReader, FrameWriter, Item, MAX_BODY_LEN,
    Message,
};
use russh::keys::{PrivateKeyWithHashAlg, PublicKey};
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf, Disconnect, client};

use crate::keys;
use crate::model::safe_facts;
use crate::ops::{Enrolled, Enrollment, ErrorKind, Ops, OpsError};
use crate::sanitize::{self, FIELD_MAX, MESSAGE_MAX};

/// The longest an enrollment session may take, from authentication to the answer.
pub const SESSION_TIME: Duration = Duration::from_secs(30);

/// How a session that ran to its end came out.
#[derive(Debug)]
pub enum EnrollOutcome {
    /// Enrolled (and the agent told so).
    Enrolled(Enrolled),
    /// [`Ops::enroll`] refused it (and the agent was told why).
    Refused(OpsError),
    /// The agent's request could not be read (what was wrong; the agent was told).
    Malformed(String),
}

/// Why an enrollment session did not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    /// The enrollment key cannot be had.
    #[error("the enrollment key: {0}")]
    Key(OpsError),
    /// The agent refused the enrollment key: it was told another server's fingerprint.
    #[error("the agent refused this server's enrollment key (it pins another fingerprint)")]
    KeyRefused,
    /// The agent refused the `otto-enroll` subsystem.
    #[error("the agent refused the otto-enroll subsystem")]
    SubsystemRefused,
    /// The agent closed the channel before its request was whole.
    #[error("the agent closed the enrollment channel before its request")]
    Closed,
    /// The session took longer than [`SESSION_TIME`].
    #[error("no enrollment within {} s", SESSION_TIME.as_secs())]
    Timeout,
    /// The answer cannot be encoded.
    #[error("protocol: {0}")]
    Protocol(otto_proto::Error),
    /// SSH failed.
    #[error("ssh: {0}")]
    Ssh(#[from] russh::Error),
}

/// Runs the enrollment session of the agent at `peer`, whose host key is `agent_key`, over
/// `handle` (a connection the SSH handshake has been made on, not yet authenticated); the
/// connection is closed when it returns.
pub async fn enroll_session<H: client::Handler>(
    ops: &Ops,
    mut handle: client::Handle<H>,
    agent_key: &PublicKey,
    peer: SocketAddr,
) -> Result<EnrollOutcome, EnrollError> {
    let outcome = tokio::time::timeout(SESSION_TIME, session(ops, &mut handle, agent_key, peer))
        .await
        .unwrap_or(Err(EnrollError::Timeout));
    let _ = handle.disconnect(Disconnect::ByApplication, "", "").await;
    match &outcome {
        Ok(EnrollOutcome::Enrolled(e)) => tracing::info!(%peer, host = %e.host, "enrolled"),
        Ok(EnrollOutcome::Refused(e)) => tracing::info!(%peer, "enrollment refused: {e}"),
        Ok(EnrollOutcome::Malformed(e)) => tracing::info!(%peer, "enrollment refused: {e}"),
        Err(e) => tracing::info!(%peer, "enrollment failed: {e}"),
    }
    outcome
}

async fn session<H: client::Handler>(
    ops: &Ops,
    handle: &mut client::Handle<H>,
    agent_key: &PublicKey,
    peer: SocketAddr,
) -> Result<EnrollOutcome, EnrollError> {
    let key = ops.enrollment_key().map_err(EnrollError::Key)?;
    let auth = handle
        .authenticate_publickey("otto", PrivateKeyWithHashAlg::new(Arc::new(key), None))
        .await?;
    if !auth.success() {
        return Err(EnrollError::KeyRefused);
    }
    let channel = handle.channel_open_session().await?;
    channel.request_subsystem(true, ENROLL_SUBSYSTEM).await?;
    let (mut read, mut write) = channel.split();
    loop {
        match read.wait().await {
            Some(ChannelMsg::Success) => break,
            Some(ChannelMsg::Failure) => return Err(EnrollError::SubsystemRefused),
            Some(ChannelMsg::Eof | ChannelMsg::Close) | None => return Err(EnrollError::Closed),
            Some(_) => {}
        }
    }
    let enrollment = match read_request(&mut read, agent_key, peer).await? {
        Ok(enrollment) => enrollment,
        Err(malformed) => {
            answer(&mut write, EnrollResponse::Refused { reason: &malformed }).await?;
            return Ok(EnrollOutcome::Malformed(malformed));
        }
    };
    match ops.enroll(enrollment).await {
        Ok(enrolled) => {
            // Ops made the key: it is an Ed25519 key in OpenSSH text.
            let server_public_key = keys::parse_public(&enrolled.server_key)
                .ok()
                .and_then(|k| k.key_data().ed25519().map(|k| k.0))
                .ok_or(EnrollError::Key(OpsError::Internal(
                    "the host's server key is not Ed25519".into(),
                )))?;
            let accepted = EnrollResponse::Accepted {
                host: &enrolled.host,
                server_public_key,
                pending: enrolled.pending,
            };
            answer(&mut write, accepted).await?;
            Ok(EnrollOutcome::Enrolled(enrolled))
        }
        Err(refused) => {
            let reason = match refused.kind() {
                // The server's own trouble: the agent learns nothing of its files.
                ErrorKind::Internal | ErrorKind::DataDir | ErrorKind::Unavailable => {
                    "the server cannot enroll agents now; try again later".to_string()
                }
                _ => sanitize::field(&refused.to_string(), MESSAGE_MAX),
            };
            answer(&mut write, EnrollResponse::Refused { reason: &reason }).await?;
            Ok(EnrollOutcome::Refused(refused))
        }
    }
}

/// Reads the agent's request: the enrollment it asks for, or what is wrong with it (the
/// agent is told, in these words). Stops at the first frame: a request is one frame of at
/// most [`MAX_BODY_LEN`] bytes, and what is pushed and not read is at most one chunk.
async fn read_request(
    read: &mut ChannelReadHalf,
    agent_key: &PublicKey,
    peer: SocketAddr,
) -> Result<Result<Enrollment, String>, EnrollError> {
    let mut frames = Box::new(FrameReader::<MAX_BODY_LEN>::new());
    let mut pending: Vec<u8> = Vec::new();
    loop {
        match frames.next(&pending) {
            Err(e) => return Ok(Err(format!("malformed enrollment request: {e}"))),
            Ok(Some(Item::Frame(Message::EnrollRequest(request)))) => {
                return Ok(Ok(enrollment(&request, agent_key, peer)));
            }
            Ok(Some(Item::Frame(other))) => {
                return Ok(Err(format!(
                    "expected an EnrollRequest, not {}",
                    other.message_type().name()
                )));
            }
            Ok(Some(Item::Data { .. })) => {
                return Ok(Err("expected an EnrollRequest, not data".into()));
            }
            Ok(None) => pending.clear(),
        }
        match read.wait().await {
            Some(ChannelMsg::Data { data }) => pending.extend_from_slice(&data),
            Some(ChannelMsg::Eof | ChannelMsg::Close) | None => return Err(EnrollError::Closed),
            Some(_) => {}
        }
    }
}

/// What `Ops::enroll` is asked, from the agent's request: its text made safe, the name it
/// asks for or else its host name, the properties rules match.
fn enrollment(request: &EnrollRequest<'_>, agent_key: &PublicKey, peer: SocketAddr) -> Enrollment {
    let facts = safe_facts(&request.facts);
    let model = facts.model.clone();
    let name = match request.name {
        Some(name) => sanitize::field(name, FIELD_MAX),
        None => facts.hostname.clone(),
    };
    let properties = BTreeMap::from([
        ("hostname".to_string(), facts.hostname),
        ("kernel".to_string(), facts.kernel_name),
        ("kernel_version".to_string(), facts.kernel_version),
        ("arch".to_string(), facts.arch),
        ("distribution".to_string(), facts.distribution_name),
        (
            "distribution_version".to_string(),
            facts.distribution_version,
        ),
        ("model".to_string(), model),
        (
            "endian".to_string(),
            if facts.big_endian { "big" } else { "little" }.to_string(),
        ),
        ("call_home".to_string(), request.call_home.to_string()),
    ]);
    Enrollment {
        token: request.token.to_string(),
        agent_key: keys::to_openssh(agent_key),
        name,
        address: peer.ip().to_canonical().to_string(),
        port: request.port,
        properties,
    }
}

/// Sends the answer and closes the channel.
async fn answer(
    write: &mut ChannelWriteHalf<client::Msg>,
    response: EnrollResponse<'_>,
) -> Result<(), EnrollError> {
    let frame = FrameWriter::new()
        .frame(&Message::EnrollResponse(response))
        .map_err(EnrollError::Protocol)?;
    write.data_bytes(frame).await?;
    let _ = write.eof().await;
    let _ = write.close().await;
    Ok(())
}
