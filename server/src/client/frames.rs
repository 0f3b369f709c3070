//! The agent's answers as a sequence of owned [`Reply`] values: bytes from the channel go in
//! as they arrive, split anywhere, and are read with the protocol's [`FrameReader`] (each byte
//! looked at once, no re-parsing). Pure: no IO, no clock.
//!
//! Memory is bounded whatever the input: the reader's fixed body buffer (16 KiB) plus the bytes
//! pushed and not yet decoded, which is at most one chunk when the caller pushes only after
//! [`Frames::next_reply`] answered `Ok(None)`.

use otto_proto::{
    ActionId, FileInfo, FrameReader, Item, MAX_BODY_LEN, Message, RotateIdentityResponse, Stream,
};

use super::{ActionReport, report};
use crate::model::{self, Facts};
use crate::sanitize::{self, FIELD_MAX, MESSAGE_MAX};

/// One message from the agent, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// HeartbeatResponse.
    Heartbeat {
        /// The nonce of the request it answers.
        nonce: u64,
        /// The agent's version.
        agent_version: String,
        /// Its host's facts.
        facts: Facts,
    },
    /// RotateIdentityResponse: the agent's new public key.
    Rotated {
        /// Raw Ed25519 public key.
        agent_public_key: [u8; 32],
    },
    /// RotateIdentityResponse: why the agent could not rotate.
    RotateFailed {
        /// Why.
        error: String,
    },
    /// ReadyForData: the agent waits for an action's additional data.
    Ready {
        /// The action.
        action: ActionId,
    },
    /// ActionOutput: a chunk of a script's output.
    Output {
        /// The action.
        action: ActionId,
        /// Which stream.
        stream: Stream,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Keepalive: a silent script is still running.
    Keepalive {
        /// The action.
        action: ActionId,
    },
    /// ActionResult: how an action ended.
    Result {
        /// The action.
        action: ActionId,
        /// The outcome and counters.
        report: ActionReport,
    },
    /// GeneralFailure.
    Failure {
        /// What the agent said.
        message: String,
    },
    /// FileStat: what is at the path of a `StatFile`.
    Stat {
        /// The action.
        action: ActionId,
        /// The file; `None` when nothing is there.
        stat: Option<FileInfo>,
    },
    /// FileHeader: the file a `FetchFile` asked for; its bytes follow as [`Reply::Data`].
    FileHeader {
        /// The action.
        action: ActionId,
        /// Its length: the bytes that follow.
        len: u64,
        /// Its permission bits.
        mode: u32,
        /// The SHA-256 the agent found.
        sha256: [u8; 32],
    },
    /// A chunk of the additional data that follows a `FileHeader`.
    Data(Vec<u8>),
}

impl Reply {
    /// The protocol's name of the message it came in.
    pub fn name(&self) -> &'static str {
        match self {
            Reply::Heartbeat { .. } => "HeartbeatResponse",
            Reply::Rotated { .. } | Reply::RotateFailed { .. } => "RotateIdentityResponse",
            Reply::Ready { .. } => "ReadyForData",
            Reply::Output { .. } => "ActionOutput",
            Reply::Keepalive { .. } => "Keepalive",
            Reply::Result { .. } => "ActionResult",
            Reply::Failure { .. } => "GeneralFailure",
            Reply::Stat { .. } => "FileStat",
            Reply::FileHeader { .. } => "FileHeader",
            Reply::Data(_) => "additional data",
        }
    }
}

/// Why the agent's byte stream cannot be read further. Final: the channel must be dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The codec refused the input.
    #[error("{0}")]
    Codec(#[from] otto_proto::Error),
    /// A message only a server sends came from the agent.
    #[error("unexpected {0} from the agent")]
    Unexpected(&'static str),
}

/// Decodes the agent's side of one channel.
#[derive(Debug)]
pub struct Frames {
    // Boxed: its 16 KiB body buffer would otherwise live inside every future that owns a channel.
    reader: Box<FrameReader<MAX_BODY_LEN>>,
    /// The bytes pushed since the reader last used up what it had; it has read `reader.used()`.
    pending: Vec<u8>,
    /// The error returned, answered again to every later call: the bytes after a refused
    /// frame could otherwise be read as new frames.
    failed: Option<FrameError>,
}

impl Default for Frames {
    fn default() -> Self {
        Self::new()
    }
}

impl Frames {
    /// A reader waiting for the first frame.
    pub fn new() -> Frames {
        Frames {
            reader: Box::new(FrameReader::new()),
            pending: Vec::new(),
            failed: None,
        }
    }

    /// Adds bytes that arrived from the agent; none once an error was returned.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.failed.is_none() {
            self.pending.extend_from_slice(chunk);
        }
    }

    /// The next complete message, `Ok(None)` when more bytes are needed. An error is final:
    /// every later call returns it again.
    pub fn next_reply(&mut self) -> Result<Option<Reply>, FrameError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let next = self.decode_next();
        if let Err(error) = &next {
            self.failed = Some(error.clone());
            self.pending = Vec::new();
        }
        next
    }

    fn decode_next(&mut self) -> Result<Option<Reply>, FrameError> {
        match self.reader.next(&self.pending)? {
            None => {
                self.pending.clear();
                Ok(None)
            }
            Some(Item::Frame(message)) => Ok(Some(reply(message)?)),
            // Only a FileHeader (all other messages with data are refused above) announces it.
            Some(Item::Data { chunk, .. }) => Ok(Some(Reply::Data(chunk.to_vec()))),
        }
    }

    /// Bytes pushed and not yet decoded: all the memory the reader holds besides its fixed
    /// buffer. At most the last chunk when the caller pushes only after `Ok(None)`.
    pub fn buffered(&self) -> usize {
        self.pending.len().saturating_sub(self.reader.used())
    }

    /// Whether the stream stands between frames, nothing half-received (never after an error).
    pub fn is_idle(&self) -> bool {
        self.failed.is_none() && self.reader.is_idle() && self.buffered() == 0
    }
}

fn reply(message: Message<'_>) -> Result<Reply, FrameError> {
    Ok(match message {
        Message::HeartbeatResponse(r) => Reply::Heartbeat {
            nonce: r.nonce,
            agent_version: sanitize::field(r.agent_version, FIELD_MAX),
            facts: model::safe_facts(&r.facts),
        },
        Message::RotateIdentityResponse(RotateIdentityResponse::Rotated { agent_public_key }) => {
            Reply::Rotated { agent_public_key }
        }
        Message::RotateIdentityResponse(RotateIdentityResponse::Failed { error }) => {
            Reply::RotateFailed {
                error: sanitize::field(error, MESSAGE_MAX),
            }
        }
        Message::ReadyForData(r) => Reply::Ready { action: r.action },
        Message::ActionOutput(o) => Reply::Output {
            action: o.action,
            stream: o.stream,
            data: o.data.to_vec(),
        },
        Message::Keepalive(k) => Reply::Keepalive { action: k.action },
        Message::ActionResult(r) => Reply::Result {
            action: r.action,
            report: report(&r),
        },
        Message::GeneralFailure(f) => Reply::Failure {
            message: sanitize::field(f.message, MESSAGE_MAX),
        },
        Message::FileStat(f) => Reply::Stat {
            action: f.action,
            stat: f.stat,
        },
        Message::FileHeader(h) => Reply::FileHeader {
            action: h.action,
            len: h.len,
            mode: h.mode,
            sha256: h.sha256,
        },
        other => return Err(FrameError::Unexpected(other.message_type().name())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use otto_proto::{ActionOutput, ActionRef, HEADER_LEN, HeartbeatRequest, encode};

    fn wire(messages: &[Message<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; HEADER_LEN + MAX_BODY_LEN];
        for m in messages {
            let n = encode(m, &mut buf).unwrap();
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    fn read_all(frames: &mut Frames) -> Vec<Reply> {
        let mut out = Vec::new();
        while let Some(reply) = frames.next_reply().unwrap() {
            out.push(reply);
        }
        out
    }

    #[test]
    fn frames_split_anywhere_come_out_whole_and_in_order() {
        let bytes = wire(&[
            Message::Keepalive(ActionRef { action: 1 }),
            Message::ActionOutput(ActionOutput {
                action: 1,
                stream: Stream::Stderr,
                data: &[7; 9000],
            }),
            Message::ReadyForData(ActionRef { action: 2 }),
        ]);
        let whole = read_all(&mut {
            let mut f = Frames::new();
            f.push(&bytes);
            f
        });
        assert_eq!(whole.len(), 3);
        for size in [1, 5, 12, 13, 4096] {
            let mut frames = Frames::new();
            let mut got = Vec::new();
            for chunk in bytes.chunks(size) {
                frames.push(chunk);
                got.extend(read_all(&mut frames));
            }
            assert_eq!(got, whole, "chunks of {size}");
            assert!(frames.is_idle());
        }
        assert_eq!(
            whole[1],
            Reply::Output {
                action: 1,
                stream: Stream::Stderr,
                data: vec![7; 9000]
            }
        );
    }

    #[test]
    fn a_half_frame_is_not_idle_and_a_server_message_is_refused() {
        let bytes = wire(&[Message::Keepalive(ActionRef { action: 1 })]);
        let mut frames = Frames::new();
        frames.push(&bytes[..bytes.len() - 1]);
        assert_eq!(frames.next_reply(), Ok(None));
        assert!(!frames.is_idle());

        let mut frames = Frames::new();
        frames.push(&wire(&[Message::HeartbeatRequest(HeartbeatRequest {
            server_version: "x",
            nonce: 1,
        })]));
        assert_eq!(
            frames.next_reply(),
            Err(FrameError::Unexpected("HeartbeatRequest"))
        );
    }

    #[test]
    fn a_file_header_is_followed_by_its_data_and_then_frames_again() {
        let header = otto_proto::FileHeader {
            action: 4,
            len: 5,
            mode: 0o600,
            sha256: [1; 32],
        };
        let mut bytes = wire(&[Message::FileHeader(header)]);
        bytes.extend_from_slice(b"hello");
        bytes.extend(wire(&[Message::Keepalive(ActionRef { action: 4 })]));
        let mut frames = Frames::new();
        let mut got = Vec::new();
        for chunk in bytes.chunks(3) {
            frames.push(chunk);
            got.extend(read_all(&mut frames));
        }
        let data: Vec<u8> = got
            .iter()
            .filter_map(|r| match r {
                Reply::Data(d) => Some(d.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(data, b"hello");
        assert_eq!(
            got.first(),
            Some(&Reply::FileHeader {
                action: 4,
                len: 5,
                mode: 0o600,
                sha256: [1; 32]
            })
        );
        assert_eq!(got.last(), Some(&Reply::Keepalive { action: 4 }));
        assert!(frames.is_idle());
    }

    #[test]
    fn garbage_and_oversized_frames_are_typed_errors_and_stay_errors() {
        let mut frames = Frames::new();
        // This version, type Keepalive, body length 1 MiB: refused from the header alone.
        let mut header = otto_proto::PROTOCOL_VERSION.to_be_bytes().to_vec();
        header.extend_from_slice(&[0, 0, 0, 1, 0, 0x10, 0, 0]);
        frames.push(&header);
        assert!(matches!(
            frames.next_reply(),
            Err(FrameError::Codec(otto_proto::Error::BodyTooLong { .. }))
        ));
        frames.push(&wire(&[Message::Keepalive(ActionRef { action: 1 })]));
        assert!(frames.next_reply().is_err(), "an error is final");
    }

    #[test]
    fn a_refused_message_stays_refused_even_when_its_tail_is_a_valid_frame() {
        // An UploadFile (server-only) whose last 13 bytes (the end of its checksum and its
        // length, 0) are themselves a whole Keepalive frame for action 0.
        let keepalive = wire(&[Message::Keepalive(ActionRef { action: 0 })]);
        assert_eq!(keepalive.len(), 13);
        let mut sha256 = [9u8; 32];
        sha256[20..].copy_from_slice(&keepalive[..12]);
        let upload = wire(&[Message::UploadFile(otto_proto::UploadFile {
            action: 1,
            path: "/x",
            owner: otto_proto::Credentials::Inherit,
            mode: 0o644,
            sha256,
            len: 0,
        })]);
        let (head, tail) = upload.split_at(upload.len() - 13);
        assert_eq!(tail, keepalive);
        let mut frames = Frames::new();
        frames.push(head);
        assert_eq!(frames.next_reply(), Ok(None));
        frames.push(tail);
        let refused = Err(FrameError::Unexpected("UploadFile"));
        assert_eq!(frames.next_reply(), refused);
        assert_eq!(frames.next_reply(), refused, "an error is final");
        frames.push(&keepalive);
        assert_eq!(frames.next_reply(), refused, "an error is final");
        assert_eq!(frames.buffered(), 0, "nothing is kept after an error");
    }
}
