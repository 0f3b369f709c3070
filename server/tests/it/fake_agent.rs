//! A misbehaving agent: a real russh SSH server on 127.0.0.1 that authenticates exactly one
//! server key, grants the `otto` subsystem, and then answers badly in one chosen way.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use otto_proto::{
    ActionRef, FrameReader, HEADER_LEN, HeartbeatResponse, HostFacts, Item, MAX_BODY_LEN, Message,
    RotateIdentityResponse, encode,
};
use russh::keys::{PrivateKey, PublicKey};
use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelMsg};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How the fake agent misbehaves once a channel is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Reads every request and never answers.
    Silent,
    /// Answers every request with a frame that declares a 16 KiB body and then sends that body
    /// one byte per second.
    Trickle,
    /// Answers a RunScript with ReadyForData, reads the script, then sends only a Keepalive
    /// every second, forever. A heartbeat gets no answer.
    KeepalivesOnly,
    /// Answers a heartbeat; anything else (a key rotation) gets no answer.
    HeartbeatsOnly,
    /// Answers a heartbeat as [`Behaviour::HeartbeatsOnly`], reporting this board.
    Reports(Board),
    /// Answers a key rotation with this new agent key (without changing its own); anything
    /// else gets no answer.
    RotatesTo([u8; 32]),
    /// Speaks an older protocol (7 or 8) as an agent of that version does: answers a heartbeat
    /// (and, of 8, a stat: nothing there) and takes an `UploadFile` (checking its checksum), and
    /// refuses a frame of a newer version (of 7: a stat, a fetch; of both: a streamed upload)
    /// with `GeneralFailure`, closing the channel.
    Protocol(u32),
}

/// What a fake agent reports of its board in a heartbeat's facts (the rest is fixed: an
/// x86_64 `Fake 1` with Linux 6.1, up 1 s, no load, 512 of 1024 KiB memory free).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Board {
    /// The board's model.
    pub model: &'static str,
    /// Whether its CPU runs big-endian.
    pub big_endian: bool,
    /// Size of its writable flash in KiB.
    pub flash_total_kib: u64,
    /// Free space on it in KiB.
    pub flash_free_kib: u64,
}

/// A running fake agent; stops when dropped.
pub struct FakeAgent {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its host key (to pin on the server).
    pub key: PublicKey,
    task: JoinHandle<()>,
}

impl Drop for FakeAgent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeAgent {
    /// Listens on a free loopback port, trusting only `server_key`.
    pub async fn start(server_key: PublicKey, behaviour: Behaviour) -> FakeAgent {
        let host_key: PrivateKey = otto_server::keys::generate().unwrap();
        let key = host_key.public_key().clone();
        let config = Arc::new(russh::server::Config {
            keys: vec![host_key],
            auth_rejection_time: Duration::from_millis(10),
            inactivity_timeout: None,
            ..Default::default()
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            // Every connection's task ends with the test: they are children of this runtime.
            while let Ok((stream, _)) = listener.accept().await {
                let handler = Conn {
                    trusted: server_key.clone(),
                    behaviour,
                    pending: HashMap::new(),
                };
                let config = config.clone();
                tokio::spawn(async move {
                    if let Ok(running) = russh::server::run_stream(config, stream, handler).await {
                        let _ = running.await;
                    }
                });
            }
        });
        FakeAgent { port, key, task }
    }
}

struct Conn {
    trusted: PublicKey,
    behaviour: Behaviour,
    pending: HashMap<ChannelId, Channel<Msg>>,
}

impl Conn {
    fn check(&self, key: &PublicKey) -> Auth {
        if key.key_data() == self.trusted.key_data() {
            Auth::Accept
        } else {
            Auth::reject()
        }
    }
}

impl russh::server::Handler for Conn {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(self.check(offer.public_key))
    }

    async fn auth_publickey(
        &mut self,
        _user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(self.check(key.public_key))
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        self.pending.insert(channel.id(), channel);
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        id: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        match self.pending.remove(&id) {
            Some(channel) if name == "otto" => {
                session.channel_success(id)?;
                match self.behaviour {
                    Behaviour::Protocol(version) => tokio::spawn(old_protocol(channel, version)),
                    behaviour => tokio::spawn(misbehave(channel, behaviour)),
                };
                Ok(())
            }
            _ => session.channel_failure(id),
        }
    }
}

/// A heartbeat's answer, reporting `board`.
fn heartbeat_answer(nonce: u64, board: Board) -> Message<'static> {
    Message::HeartbeatResponse(HeartbeatResponse {
        agent_version: "fake",
        nonce,
        facts: HostFacts {
            hostname: "fake",
            kernel_name: "Linux",
            kernel_version: "6.1",
            arch: "x86_64",
            distribution_name: "Fake",
            distribution_version: "1",
            uptime_secs: 1,
            load_centi: [0; 3],
            mem_total_kib: 1024,
            mem_available_kib: 512,
            model: board.model,
            big_endian: board.big_endian,
            flash_total_kib: board.flash_total_kib,
            flash_free_kib: board.flash_free_kib,
        },
    })
}

/// Serves one channel as an agent of protocol `version`: a request in a frame of a newer
/// version is answered with `GeneralFailure` (in a frame of `version`) and the channel closed; a
/// heartbeat is answered, a stat (from version 8) finds nothing; an upload is read whole, its
/// bytes hashed and thrown away, and reported completed when their checksum is the one named.
async fn old_protocol(channel: Channel<Msg>, version: u32) {
    let (mut read, write) = channel.split();
    let mut reader = FrameReader::<MAX_BODY_LEN>::new();
    let mut buf = vec![0u8; HEADER_LEN + MAX_BODY_LEN];
    let mut first = true;
    let mut upload = None;
    while let Some(msg) = read.wait().await {
        let ChannelMsg::Data { data } = msg else {
            continue;
        };
        let framed = data
            .get(..4)
            .map(|v| u32::from_be_bytes(v.try_into().unwrap()));
        if std::mem::take(&mut first) && framed.is_none_or(|v| v > version) {
            let message = format!(
                "unsupported protocol version {} (this side speaks {version})",
                framed.unwrap_or(0)
            );
            let refusal = Message::GeneralFailure(otto_proto::GeneralFailure { message: &message });
            let n = encode(&refusal, &mut buf).unwrap();
            buf[..4].copy_from_slice(&version.to_be_bytes());
            let _ = write.data(&buf[..n]).await;
            let _ = write.eof().await;
            return;
        }
        while let Some(item) = reader.next(&data).unwrap() {
            let answer = match item {
                Item::Frame(Message::HeartbeatRequest(h)) => {
                    heartbeat_answer(h.nonce, Board::default())
                }
                Item::Frame(Message::StatFile(s)) => Message::FileStat(otto_proto::FileStat {
                    action: s.action,
                    stat: None,
                }),
                Item::Frame(Message::UploadFile(u)) => {
                    upload = Some((u.action, u.sha256, Sha256::new()));
                    Message::ReadyForData(ActionRef { action: u.action })
                }
                Item::Data { chunk, remaining } => {
                    let Some((action, sha256, hasher)) = &mut upload else {
                        return;
                    };
                    hasher.update(chunk);
                    if remaining > 0 {
                        continue;
                    }
                    let received: [u8; 32] = hasher.clone().finalize().into();
                    let outcome = if received == *sha256 {
                        otto_proto::Outcome::Completed
                    } else {
                        otto_proto::Outcome::Failed {
                            error: "checksum mismatch",
                        }
                    };
                    Message::ActionResult(otto_proto::ActionResult {
                        action: *action,
                        outcome,
                        elapsed_ms: 1,
                        stdout_len: 0,
                        stderr_len: 0,
                    })
                }
                _ => continue,
            };
            let n = encode(&answer, &mut buf).unwrap();
            if write.data(&buf[..n]).await.is_err() {
                return;
            }
        }
    }
}

/// Serves one channel the bad way.
async fn misbehave(channel: Channel<Msg>, behaviour: Behaviour) {
    let (mut read, write) = channel.split();
    let mut reader = FrameReader::<MAX_BODY_LEN>::new();
    let mut buf = vec![0u8; HEADER_LEN + MAX_BODY_LEN];
    // The first request (and for a run, its script) decides what happens.
    let mut action = None;
    let mut heartbeat = None;
    'read: while let Some(msg) = read.wait().await {
        let ChannelMsg::Data { data } = msg else {
            continue;
        };
        while let Some(item) = reader.next(&data).unwrap() {
            match item {
                Item::Frame(Message::RunScript(r)) => action = Some((r.action, true)),
                Item::Frame(Message::UploadFile(u)) => action = Some((u.action, true)),
                Item::Frame(Message::HeartbeatRequest(h)) => {
                    heartbeat = Some(h.nonce);
                    break 'read;
                }
                Item::Frame(_) | Item::Data { remaining: 0, .. } => break 'read,
                Item::Data { .. } => {}
            }
            if let Some((id, true)) = action {
                action = Some((id, false));
                if behaviour == Behaviour::KeepalivesOnly {
                    let n = encode(&Message::ReadyForData(ActionRef { action: id }), &mut buf);
                    write.data(&buf[..n.unwrap()]).await.unwrap();
                } else {
                    break 'read;
                }
            }
        }
    }
    match behaviour {
        Behaviour::Silent => {}
        Behaviour::HeartbeatsOnly | Behaviour::Reports(_) => {
            let board = match behaviour {
                Behaviour::Reports(board) => board,
                _ => Board::default(),
            };
            if let Some(nonce) = heartbeat {
                let n = encode(&heartbeat_answer(nonce, board), &mut buf).unwrap();
                let _ = write.data(&buf[..n]).await;
            }
        }
        Behaviour::RotatesTo(agent_public_key) => {
            let answer = Message::RotateIdentityResponse(RotateIdentityResponse::Rotated {
                agent_public_key,
            });
            let n = encode(&answer, &mut buf).unwrap();
            let _ = write.data(&buf[..n]).await;
        }
        Behaviour::Trickle => {
            // This version, HeartbeatResponse, a 16 KiB body: then one byte a second.
            let header = otto_proto::Header {
                version: otto_proto::PROTOCOL_VERSION,
                message_type: otto_proto::MessageType::HeartbeatResponse as u32,
                body_len: 16 * 1024,
            }
            .emit();
            for byte in header.into_iter().chain(std::iter::repeat(1)) {
                if write.data(&[byte][..]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        Behaviour::Protocol(_) => {}
        Behaviour::KeepalivesOnly => {
            if let Some((action, _)) = action {
                let n = encode(&Message::Keepalive(ActionRef { action }), &mut buf).unwrap();
                while write.data(&buf[..n]).await.is_ok() {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
    // Keep the channel open, reading and ignoring, until the server goes away.
    while read.wait().await.is_some() {}
}
