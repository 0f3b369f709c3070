//! Writing frames into caller-provided memory.

use crate::error::Error;
use crate::header::{HEADER_LEN, Header};
use crate::message::Message;

/// Writes `message` as a complete frame (header and body, the header carrying the version that
/// brought the message: [`MessageType::since`](crate::MessageType::since)) at the start of `out`
/// and returns the frame's length. Additional data, if the message declares any, is the caller's to send after it.
pub fn encode(message: &Message<'_>, out: &mut [u8]) -> Result<usize, Error> {
    let (header, body) = out
        .split_at_mut_checked(HEADER_LEN)
        .ok_or(Error::BufferTooSmall)?;
    let body_len = message.encode_body(body)?;
    let message_type = message.message_type();
    let header_bytes = Header {
        version: message_type.since(),
        message_type: message_type as u32,
        body_len: u32::try_from(body_len).map_err(|_| Error::BufferTooSmall)?,
    }
    .emit();
    header.copy_from_slice(&header_bytes);
    Ok(HEADER_LEN + body_len)
}

/// Appends `message` as a complete frame to `out`. On error `out` is left as it was.
pub fn encode_to_vec<const N: usize>(
    message: &Message<'_>,
    out: &mut heapless::Vec<u8, N>,
) -> Result<(), Error> {
    let start = out.len();
    // Cannot fail: resizing to the capacity always fits.
    out.resize(N, 0).map_err(|_| Error::BufferTooSmall)?;
    let written = encode(message, out.get_mut(start..).unwrap_or_default());
    out.truncate(start + *written.as_ref().unwrap_or(&0));
    written.map(|_| ())
}
