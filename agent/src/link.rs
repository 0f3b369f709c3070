//! One Otto channel as a sequence of frames: reads decoded requests and additional data from
//! the SSH channel, writes encoded answers to it. A peer that stalls in the middle of a frame
//! or of its data, or sends what the codec refuses, ends the channel with an error.

use std::time::Duration;

use bytes::Bytes;
use otto_proto::{
    Control, Credentials, FrameReader, FrameWriter, Item, MAX_BODY_LEN, Message, ScriptTimeout,
};
use russh::server::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};

/// A request from the server, owned (the frame it came in is gone once it is read).
#[derive(Debug)]
pub enum Request {
    /// HeartbeatRequest.
    Heartbeat { nonce: u64 },
    /// RotateIdentityRequest.
    RotateIdentity { server_public_key: [u8; 32] },
    /// RunScript; the script follows as data.
    RunScript(Script),
    /// UploadFile or UploadStream; the file follows as data (and, for a stream, its digest).
    Upload(Upload),
    /// UpdateAgent; the new binary follows as data.
    Update(otto_proto::UpdateAgent),
    /// StatFile.
    Stat { action: u64, path: String },
    /// FetchFile.
    Fetch {
        action: u64,
        path: String,
        max_len: u64,
    },
    /// CancelAction.
    Cancel { action: u64, target: u64 },
    /// ReloadConfig, ExitAgent, Reboot, Shutdown.
    Control { action: u64, kind: Control },
}

/// A RunScript request.
#[derive(Debug)]
pub struct Script {
    pub action: u64,
    pub name: String,
    pub interpreter: String,
    pub run_as: Credentials,
    pub working_dir: Option<String>,
    pub env: Vec<(String, String)>,
    pub timeout: ScriptTimeout,
    pub len: u64,
}

/// An UploadFile request, or an UploadStream (whose SHA-256, `None` here, follows the data).
#[derive(Debug)]
pub struct Upload {
    pub action: u64,
    pub path: String,
    pub owner: Credentials,
    pub mode: u32,
    pub sha256: Option<[u8; 32]>,
    pub len: u64,
}

impl Request {
    fn from_message(message: Message<'_>) -> Result<Request, LinkError> {
        Ok(match message {
            Message::HeartbeatRequest(m) => Request::Heartbeat { nonce: m.nonce },
            Message::RotateIdentityRequest(m) => Request::RotateIdentity {
                server_public_key: m.server_public_key,
            },
            Message::RunScript(m) => Request::RunScript(Script {
                action: m.action,
                name: m.name.into(),
                interpreter: m.interpreter.into(),
                run_as: m.run_as,
                working_dir: m.working_dir.map(String::from),
                env: m
                    .env
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                timeout: m.timeout,
                len: m.script_len,
            }),
            Message::UploadFile(m) => Request::Upload(Upload {
                action: m.action,
                path: m.path.into(),
                owner: m.owner,
                mode: m.mode,
                sha256: Some(m.sha256),
                len: m.len,
            }),
            Message::UploadStream(m) => Request::Upload(Upload {
                action: m.action,
                path: m.path.into(),
                owner: m.owner,
                mode: m.mode,
                sha256: None,
                len: m.len,
            }),
            Message::UpdateAgent(m) => Request::Update(m),
            Message::StatFile(m) => Request::Stat {
                action: m.action,
                path: m.path.into(),
            },
            Message::FetchFile(m) => Request::Fetch {
                action: m.action,
                path: m.path.into(),
                max_len: m.max_len,
            },
            Message::CancelAction(m) => Request::Cancel {
                action: m.action,
                target: m.target,
            },
            other => match Control::of(&other) {
                Some((kind, action)) => Request::Control { action, kind },
                None => return Err(LinkError::Unexpected(other.message_type().name())),
            },
        })
    }
}

/// What came in.
#[derive(Debug)]
pub enum Incoming {
    /// A request frame.
    Request(Request),
    /// A chunk of the last request's additional data.
    Data(Bytes),
    /// UploadDigest: the SHA-256 of the streamed upload `action`, after its data.
    Digest { action: u64, sha256: [u8; 32] },
    /// The server ended the channel between frames.
    End,
}

/// Why a channel stopped.
#[derive(Debug)]
pub enum LinkError {
    /// The codec refused the input.
    Protocol(otto_proto::Error),
    /// A frame the agent does not accept from a server.
    Unexpected(&'static str),
    /// The peer sent nothing for the idle timeout in the middle of a frame or its data.
    Stalled,
    /// The peer closed the channel in the middle of a frame or its data.
    Truncated,
    /// The channel can no longer be written to.
    Closed,
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::Protocol(e) => write!(f, "{e}"),
            LinkError::Unexpected(name) => write!(f, "unexpected {name} message from the server"),
            LinkError::Stalled => {
                f.write_str("the server stopped sending in the middle of a request")
            }
            LinkError::Truncated => f.write_str("the channel closed in the middle of a request"),
            LinkError::Closed => f.write_str("the channel is closed"),
        }
    }
}

/// The reading half of an Otto channel.
pub struct Reader {
    rx: ChannelReadHalf,
    frames: FrameReader<MAX_BODY_LEN>,
    /// The chunk that arrived last, read by `frames` until it is used up.
    pending: Bytes,
    idle: Duration,
}

impl Reader {
    /// Reads frames from `rx`; the peer may pause for at most `idle` inside a request.
    pub fn new(rx: ChannelReadHalf, idle: Duration) -> Reader {
        Reader {
            rx,
            frames: FrameReader::new(),
            pending: Bytes::new(),
            idle,
        }
    }

    /// How long the peer may pause inside a request.
    pub fn idle(&self) -> Duration {
        self.idle
    }

    /// The next request or data chunk. Waits at most `wait` (between frames) or the idle timeout
    /// (inside one) for input.
    pub async fn next(&mut self, wait: Duration) -> Result<Incoming, LinkError> {
        loop {
            match self
                .frames
                .next(&self.pending)
                .map_err(LinkError::Protocol)?
            {
                Some(Item::Frame(Message::UploadDigest(d))) => {
                    return Ok(Incoming::Digest {
                        action: d.action,
                        sha256: d.sha256,
                    });
                }
                Some(Item::Frame(message)) => {
                    return Ok(Incoming::Request(Request::from_message(message)?));
                }
                Some(Item::Data { chunk, .. }) => {
                    return Ok(Incoming::Data(self.pending.slice_ref(chunk)));
                }
                None => {}
            }
            let limit = if self.frames.is_idle() {
                wait
            } else {
                self.idle
            };
            match tokio::time::timeout(limit, self.rx.wait()).await {
                Err(_) => return Err(LinkError::Stalled),
                Ok(Some(ChannelMsg::Data { data })) => self.pending = data,
                Ok(Some(ChannelMsg::Eof | ChannelMsg::Close) | None) => {
                    return if self.frames.is_idle() {
                        Ok(Incoming::End)
                    } else {
                        Err(LinkError::Truncated)
                    };
                }
                Ok(Some(_)) => {}
            }
        }
    }
}

/// The writing half of an Otto channel.
/// Frames go out through a [`FrameWriter`]: each holds only its own bytes while russh has it,
/// and no allocation is made per frame.
pub struct Writer {
    tx: ChannelWriteHalf<Msg>,
    out: FrameWriter,
    /// Set once a write failed or timed out: later writes are skipped.
    closed: bool,
    idle: Duration,
}

impl Writer {
    /// Writes to `tx`; a write that waits longer than `idle` for the peer's window fails.
    pub fn new(tx: ChannelWriteHalf<Msg>, idle: Duration) -> Writer {
        Writer {
            tx,
            out: FrameWriter::new(),
            closed: false,
            idle,
        }
    }

    /// Sends one frame, waiting for the peer's window (backpressure).
    pub async fn send(&mut self, message: &Message<'_>) -> Result<(), LinkError> {
        if self.closed {
            return Err(LinkError::Closed);
        }
        let frame = self.out.frame(message).map_err(LinkError::Protocol)?;
        match tokio::time::timeout(self.idle, self.tx.data_bytes(frame)).await {
            Ok(Ok(())) => Ok(()),
            _ => {
                self.closed = true;
                Err(LinkError::Closed)
            }
        }
    }

    /// Sends a chunk of additional data (after a frame that announced it), waiting for the
    /// peer's window.
    pub async fn send_data(&mut self, data: Bytes) -> Result<(), LinkError> {
        if self.closed {
            return Err(LinkError::Closed);
        }
        match tokio::time::timeout(self.idle, self.tx.data_bytes(data)).await {
            Ok(Ok(())) => Ok(()),
            _ => {
                self.closed = true;
                Err(LinkError::Closed)
            }
        }
    }

    /// Whether writes still reach the peer.
    pub fn is_open(&self) -> bool {
        !self.closed
    }

    /// Ends the channel: EOF, then close.
    pub async fn close(&mut self) {
        let _ = self.tx.eof().await;
        let _ = self.tx.close().await;
        self.closed = true;
    }
}
