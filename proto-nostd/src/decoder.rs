//! The incremental frame decoder.
//!
//! Bytes go in as they arrive, split anywhere; complete frames and chunks of additional data come
//! out. A body is copied into the decoder's fixed buffer only when it arrives in pieces; when a
//! whole frame is in the input, the message borrows straight from the input. Additional data is
//! never copied: each chunk is a slice of the input.

use crate::error::Error;
use crate::header::{HEADER_LEN, Header};
use crate::message::{Message, MessageType};

/// Something the decoder recognised in its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item<'a> {
    /// A complete frame.
    Frame(Message<'a>),
    /// A chunk of the additional data of the last frame.
    Data {
        /// The bytes, a slice of the input.
        chunk: &'a [u8],
        /// How many bytes of additional data are still to come after this chunk.
        remaining: u64,
    },
}

/// The result of one [`Decoder::decode`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// How many bytes of the input were used; the caller passes the rest to the next call.
    pub consumed: usize,
    /// What those bytes completed, if anything.
    pub item: Option<Item<'a>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Collecting the header; `filled` bytes of it are in `header`.
    Header { filled: usize },
    /// Collecting a body of `len` bytes into `body`.
    Body {
        message_type: MessageType,
        len: usize,
    },
    /// Passing through additional data.
    Data { remaining: u64 },
    /// An error was returned; nothing more until [`Decoder::reset`].
    Failed,
}

/// An incremental decoder whose largest accepted body is `MAX_BODY` bytes.
///
/// Call [`decode`](Decoder::decode) with whatever bytes arrived; it uses some of them and may
/// return an [`Item`]. Call it again with the unused rest until the input is used up. Any error is
/// final for the stream: answer with a `GeneralFailure` and close the channel.
#[derive(Debug, Clone)]
pub struct Decoder<const MAX_BODY: usize> {
    header: [u8; HEADER_LEN],
    body: heapless::Vec<u8, MAX_BODY>,
    state: State,
}

impl<const MAX_BODY: usize> Default for Decoder<MAX_BODY> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const MAX_BODY: usize> Decoder<MAX_BODY> {
    /// A decoder waiting for the first header.
    pub const fn new() -> Self {
        Decoder {
            header: [0; HEADER_LEN],
            body: heapless::Vec::new(),
            state: State::Header { filled: 0 },
        }
    }

    /// Forgets everything, including a previous error, and waits for a header again.
    pub fn reset(&mut self) {
        self.body.clear();
        self.state = State::Header { filled: 0 };
    }

    /// Whether the decoder stands between frames with nothing half-received: the place where a
    /// peer may end the stream cleanly.
    pub fn is_idle(&self) -> bool {
        self.state == State::Header { filled: 0 }
    }

    /// Bytes of additional data still expected after the last frame (0 between frames).
    pub fn data_remaining(&self) -> u64 {
        match self.state {
            State::Data { remaining } => remaining,
            _ => 0,
        }
    }

    /// Decodes from `input`. Unless it returns an error, it either returns an item or uses the
    /// whole input (so it uses at least one byte of a non-empty input).
    pub fn decode<'a>(&'a mut self, input: &'a [u8]) -> Result<Decoded<'a>, Error> {
        // Every error path below passes through `self.failed`, so an error is final.
        match self.state {
            State::Failed => Err(Error::Desynchronized),
            State::Data { remaining } => {
                let take = usize::try_from(remaining).map_or(input.len(), |r| r.min(input.len()));
                let (chunk, _) = input.split_at_checked(take).unwrap_or((input, &[]));
                let remaining = remaining - chunk.len() as u64;
                self.state = if remaining == 0 {
                    State::Header { filled: 0 }
                } else {
                    State::Data { remaining }
                };
                let item = (!chunk.is_empty()).then_some(Item::Data { chunk, remaining });
                Ok(Decoded {
                    consumed: chunk.len(),
                    item,
                })
            }
            State::Header { filled: 0 } if input.len() >= HEADER_LEN => {
                // A whole header is in the input: if the whole body is too, decode in place.
                let (header, rest) = split_header(input);
                let (message_type, len) = self.check(&header).map_err(|e| self.failed(e))?;
                match rest.get(..len) {
                    Some(body) => {
                        let message =
                            Message::decode_body(message_type, body).map_err(|e| self.failed(e))?;
                        self.state = after(&message);
                        Ok(Decoded {
                            consumed: HEADER_LEN + len,
                            item: Some(Item::Frame(message)),
                        })
                    }
                    None => {
                        self.start_body(message_type, len);
                        let (taken, item) = self.fill_body(rest)?;
                        Ok(Decoded {
                            consumed: HEADER_LEN + taken,
                            item,
                        })
                    }
                }
            }
            State::Header { filled } => {
                let unfilled = self.header.get_mut(filled..).unwrap_or_default();
                let take = unfilled.len().min(input.len());
                let (head, rest) = input.split_at_checked(take).unwrap_or((input, &[]));
                unfilled
                    .get_mut(..take)
                    .unwrap_or_default()
                    .copy_from_slice(head);
                let filled = filled + take;
                if filled < HEADER_LEN {
                    self.state = State::Header { filled };
                    return Ok(Decoded {
                        consumed: take,
                        item: None,
                    });
                }
                let (message_type, len) = self.check(&self.header).map_err(|e| self.failed(e))?;
                self.start_body(message_type, len);
                let (taken, item) = self.fill_body(rest)?;
                Ok(Decoded {
                    consumed: take + taken,
                    item,
                })
            }
            State::Body { .. } => {
                let (consumed, item) = self.fill_body(input)?;
                Ok(Decoded { consumed, item })
            }
        }
    }

    /// Validates a header against this decoder's capacity.
    fn check(&self, header: &[u8; HEADER_LEN]) -> Result<(MessageType, usize), Error> {
        check_header(&Header::parse(header), MAX_BODY)
    }

    /// Records that an error was returned, so that every later call reports it.
    fn failed(&mut self, error: Error) -> Error {
        self.state = State::Failed;
        error
    }

    fn start_body(&mut self, message_type: MessageType, len: usize) {
        self.body.clear();
        self.state = State::Body { message_type, len };
    }

    /// Adds as much of `input` to the body as it lacks, returning how much that was; decodes the
    /// message once the body is complete.
    fn fill_body<'a>(&'a mut self, input: &[u8]) -> Result<(usize, Option<Item<'a>>), Error> {
        let State::Body { message_type, len } = self.state else {
            return Ok((0, None));
        };
        let take = len.saturating_sub(self.body.len()).min(input.len());
        let (part, _) = input.split_at_checked(take).unwrap_or((input, &[]));
        if self.body.extend_from_slice(part).is_err() {
            // Cannot happen: `len` was checked against the capacity with the header.
            return Err(self.failed(Error::BodyTooLong {
                declared: len as u32,
                max: MAX_BODY,
            }));
        }
        if self.body.len() < len {
            return Ok((take, None));
        }
        let message = match Message::decode_body(message_type, &self.body) {
            Ok(message) => message,
            Err(e) => {
                // `self.body` is still borrowed here, so set the field rather than call `failed`.
                self.state = State::Failed;
                return Err(e);
            }
        };
        self.state = after(&message);
        Ok((take, Some(Item::Frame(message))))
    }
}

/// Validates a header: version first (one this side speaks), then type (one of that version),
/// then length against `max_body`.
fn check_header(header: &Header, max_body: usize) -> Result<(MessageType, usize), Error> {
    if !(crate::OLDEST_VERSION..=crate::PROTOCOL_VERSION).contains(&header.version) {
        return Err(Error::UnsupportedVersion {
            found: header.version,
        });
    }
    let message_type = MessageType::from_u32(header.message_type)
        .filter(|t| t.since() <= header.version)
        .ok_or(Error::UnknownMessageType(header.message_type))?;
    match usize::try_from(header.body_len) {
        Ok(len) if len <= max_body => Ok((message_type, len)),
        _ => Err(Error::BodyTooLong {
            declared: header.body_len,
            max: max_body,
        }),
    }
}

/// Decodes the one whole frame at the start of `input`, without a [`Decoder`]: the message
/// borrows from `input` alone. Returns the message and the frame's length (the caller handles any
/// additional data that follows); [`Error::Incomplete`] if `input` ends before the frame does.
pub fn decode_frame(input: &[u8], max_body: usize) -> Result<(Message<'_>, usize), Error> {
    let (header, rest) = input
        .split_at_checked(HEADER_LEN)
        .ok_or(Error::Incomplete)?;
    let (header, _) = split_header(header);
    let (message_type, len) = check_header(&Header::parse(&header), max_body)?;
    let body = rest.get(..len).ok_or(Error::Incomplete)?;
    Ok((Message::decode_body(message_type, body)?, HEADER_LEN + len))
}

/// The state that follows a decoded message.
fn after(message: &Message<'_>) -> State {
    match message.data_len() {
        0 => State::Header { filled: 0 },
        remaining => State::Data { remaining },
    }
}

fn split_header(input: &[u8]) -> ([u8; HEADER_LEN], &[u8]) {
    let mut header = [0; HEADER_LEN];
    let (head, rest) = input.split_at_checked(HEADER_LEN).unwrap_or((input, &[]));
    header.iter_mut().zip(head).for_each(|(h, b)| *h = *b);
    (header, rest)
}
