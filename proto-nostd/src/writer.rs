//! Writing frames for a transport that takes owned chunks (an SSH channel takes `Bytes`): the
//! one way both sides send. A frame is encoded into a scratch buffer and copied into an arena
//! shared by the frames still in flight, so each holds only its own bytes however long the
//! transport keeps it, and the arena's memory is reused, not allocated per frame, once the
//! transport has let go of what was in it.

use alloc::vec;
use alloc::vec::Vec;

use bytes::{Bytes, BytesMut};

use crate::MAX_BODY_LEN;
use crate::encoder::encode;
use crate::error::Error;
use crate::header::HEADER_LEN;
use crate::message::Message;

/// The arena grows a block of this size at a time: the largest frame fits one.
const BLOCK: usize = HEADER_LEN + MAX_BODY_LEN;

/// Frames and additional data as `Bytes`, out of one reused arena.
///
/// ```
/// use otto_proto::{ActionRef, FrameWriter, Message, decode_frame, MAX_BODY_LEN};
///
/// let mut out = FrameWriter::new();
/// let frame = out.frame(&Message::Keepalive(ActionRef { action: 7 })).unwrap();
/// let (message, used) = decode_frame(&frame, MAX_BODY_LEN).unwrap();
/// assert_eq!((message, used), (Message::Keepalive(ActionRef { action: 7 }), frame.len()));
/// ```
#[derive(Debug)]
pub struct FrameWriter {
    scratch: Vec<u8>,
    arena: BytesMut,
}

impl Default for FrameWriter {
    fn default() -> Self {
        FrameWriter::new()
    }
}

impl FrameWriter {
    /// A writer; its scratch buffer holds the largest frame.
    pub fn new() -> FrameWriter {
        FrameWriter {
            scratch: vec![0; BLOCK],
            arena: BytesMut::new(),
        }
    }

    /// `message` as one frame.
    pub fn frame(&mut self, message: &Message<'_>) -> Result<Bytes, Error> {
        let n = encode(message, &mut self.scratch)?;
        let FrameWriter { scratch, arena } = self;
        Ok(take(arena, scratch.get(..n).unwrap_or_default()))
    }
}

/// `bytes` copied into `arena` and split off it. Only when the arena's block cannot hold them
/// does it take another: the same block again if every piece of it has been let go, else a
/// new one.
fn take(arena: &mut BytesMut, bytes: &[u8]) -> Bytes {
    if arena.capacity() < bytes.len() {
        arena.reserve(BLOCK.max(bytes.len()));
    }
    arena.extend_from_slice(bytes);
    arena.split().freeze()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::decode_frame;
    use crate::message::ActionRef;

    fn keepalive(action: u64) -> Message<'static> {
        Message::Keepalive(ActionRef { action })
    }

    #[test]
    fn frames_in_flight_share_blocks_and_each_holds_its_own_bytes() {
        let mut out = FrameWriter::new();
        let frames: Vec<Bytes> = (0..1000)
            .map(|i| out.frame(&keepalive(i)).unwrap())
            .collect();
        for (i, frame) in frames.iter().enumerate() {
            let (message, used) = decode_frame(frame, MAX_BODY_LEN).unwrap();
            assert_eq!((message, used), (keepalive(i as u64), frame.len()));
        }
        // A thousand small frames held at once live in a few blocks, not one block each.
        let bytes: usize = frames.iter().map(Bytes::len).sum();
        let mut starts: Vec<usize> = frames.iter().map(|f| f.as_ptr() as usize).collect();
        starts.sort_unstable();
        let blocks = 1 + starts.windows(2).filter(|w| w[1] - w[0] > BLOCK).count();
        assert!(
            blocks <= bytes / BLOCK + 2,
            "{blocks} blocks for {bytes} bytes"
        );
    }

    #[test]
    fn a_block_is_reused_once_its_frames_are_let_go() {
        let mut out = FrameWriter::new();
        let first = out.frame(&keepalive(0)).unwrap();
        let at = first.as_ptr();
        drop(first);
        // Fill the rest of the block with frames that are let go at once.
        let mut action = 1;
        while out.arena.capacity() >= first_len() {
            drop(out.frame(&keepalive(action)).unwrap());
            action += 1;
        }
        // The block is full and nothing of it is held: the next frame starts it again.
        let again = out.frame(&keepalive(action)).unwrap();
        assert_eq!(again.as_ptr(), at);
        assert_eq!(
            decode_frame(&again, MAX_BODY_LEN).unwrap().0,
            keepalive(action)
        );
    }

    #[test]
    fn a_block_still_held_is_left_alone() {
        let mut out = FrameWriter::new();
        let held = out.frame(&keepalive(0)).unwrap();
        let at = held.as_ptr();
        let mut action = 1;
        while out.arena.capacity() >= first_len() {
            drop(out.frame(&keepalive(action)).unwrap());
            action += 1;
        }
        // One frame of the block is still in flight: the next goes to another block, and the
        // one in flight is intact.
        let next = out.frame(&keepalive(action)).unwrap();
        assert_ne!(next.as_ptr(), at);
        assert_eq!(decode_frame(&held, MAX_BODY_LEN).unwrap().0, keepalive(0));
    }

    /// The length of a keepalive frame (the same for every action id below 128).
    fn first_len() -> usize {
        encode(&keepalive(0), &mut [0; 64]).unwrap()
    }
}
