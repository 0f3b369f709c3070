//! What can go wrong while encoding or decoding a frame.

use core::fmt;

use crate::message::MessageType;

/// An encoding or decoding error. Every decoding error leaves the byte stream out of step, so the
/// [`Decoder`](crate::Decoder) that returned it answers [`Error::Desynchronized`] until it is reset;
/// the receiver should answer with a `GeneralFailure` and close the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The frame's protocol version is outside
    /// [`OLDEST_VERSION`](crate::OLDEST_VERSION)`..=`[`PROTOCOL_VERSION`](crate::PROTOCOL_VERSION).
    UnsupportedVersion {
        /// The version the frame declared.
        found: u32,
    },
    /// The frame's message type is not one its version defines.
    UnknownMessageType(u32),
    /// The frame declared a body longer than the receiver's buffer.
    BodyTooLong {
        /// The length the header declared.
        declared: u32,
        /// The most this receiver accepts.
        max: usize,
    },
    /// The body is not a valid encoding of its message type.
    MalformedBody(MessageType),
    /// The body decoded, but bytes were left over inside it.
    TrailingBytes(MessageType),
    /// An environment block or variable is malformed (empty name, `=` in a name, a NUL byte).
    InvalidEnvironment,
    /// The input ends before the frame does (from [`decode_frame`](crate::decode_frame)).
    Incomplete,
    /// The output buffer is too small for the frame being encoded.
    BufferTooSmall,
    /// An earlier call returned an error; the decoder must be reset before further use.
    Desynchronized,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnsupportedVersion { found } => write!(
                f,
                "unsupported protocol version {found} (this side speaks {} to {})",
                crate::OLDEST_VERSION,
                crate::PROTOCOL_VERSION
            ),
            Error::UnknownMessageType(t) => write!(f, "unknown message type {t}"),
            Error::BodyTooLong { declared, max } => {
                write!(
                    f,
                    "declared body length {declared} exceeds the limit of {max} bytes"
                )
            }
            Error::MalformedBody(t) => write!(f, "malformed {} body", t.name()),
            Error::TrailingBytes(t) => write!(f, "trailing bytes after a {} body", t.name()),
            Error::InvalidEnvironment => f.write_str("malformed environment variable"),
            Error::Incomplete => f.write_str("the input ends inside a frame"),
            Error::BufferTooSmall => f.write_str("output buffer too small for the frame"),
            Error::Desynchronized => f.write_str("decoder used after an error without a reset"),
        }
    }
}

impl core::error::Error for Error {}
