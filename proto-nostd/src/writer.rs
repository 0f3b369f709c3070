//! Writing frames for a transport that takes owned chunks (an SSH channel takes `Bytes`): the
//! one way both sides send. A frame is encoded into a scratch buffer and copied into an arena
//! shared by the frames still in flight, so each holds only its own bytes however long the
//! transport keeps it, and the arena's memory is reused, not allocated per frame, once the
//! transport has let go of what was in it.
//!
//! Both start small and grow only as far as the frames written need: a channel that carries
//! a heartbeat and its answer (a server holds thousands at once) takes a few hundred bytes,
//! not the largest frame's size twice.

use alloc::vec::Vec;

use bytes::{Bytes, BytesMut};

use crate::MAX_BODY_LEN;
use crate::encoder::encode;
use crate::error::Error;
use crate::header::HEADER_LEN;
use crate::message::Message;

/// The largest frame: the scratch buffer never grows past it, and the arena's blocks are at
/// most this size (or one piece of additional data).
const BLOCK: usize = HEADER_LEN + MAX_BODY_LEN;

/// The scratch buffer's and the arena's first size, each multiplied by [`GROWTH`] when a frame
/// does not fit, up to [`BLOCK`].
const FIRST: usize = 256;

/// How much larger each next size is.
const GROWTH: usize = 4;

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
    /// The size of the arena's next block: the largest that was needed so far.
    block: usize,
}

impl Default for FrameWriter {
    fn default() -> Self {
        FrameWriter::new()
    }
}

impl FrameWriter {
    /// A writer, holding no memory until its first frame.
    pub fn new() -> FrameWriter {
        FrameWriter {
            scratch: Vec::new(),
            arena: BytesMut::new(),
            block: FIRST,
        }
    }

    /// `message` as one frame.
    pub fn frame(&mut self, message: &Message<'_>) -> Result<Bytes, Error> {
        let n = loop {
            match encode(message, &mut self.scratch) {
                Err(Error::BufferTooSmall) if self.scratch.len() < BLOCK => {
                    let len = (self.scratch.len() * GROWTH).clamp(FIRST, BLOCK);
                    self.scratch.resize(len, 0);
                }
                written => break written?,
            }
        };
        let FrameWriter {
            scratch,
            arena,
            block,
        } = self;
        Ok(take(arena, block, scratch.get(..n).unwrap_or_default()))
    }
}

/// `bytes` copied into `arena` and split off it. Only when the arena's block cannot hold them
/// does it take another: the same block again if every piece of it has been let go, else a new
/// one of `block` bytes, first made larger (up to [`BLOCK`]) if `bytes` would not fit it.
fn take(arena: &mut BytesMut, block: &mut usize, bytes: &[u8]) -> Bytes {
    if arena.capacity() < bytes.len() {
        while *block < bytes.len().min(BLOCK) {
            *block = block.saturating_mul(GROWTH);
        }
        *block = (*block).min(BLOCK);
        arena.reserve((*block).max(bytes.len()));
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
    use alloc::vec;

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
        let blocks = 1 + starts.windows(2).filter(|w| w[1] - w[0] > FIRST).count();
        assert!(
            blocks <= bytes / FIRST + 2,
            "{blocks} blocks for {bytes} bytes"
        );
    }

    #[test]
    fn small_frames_take_small_buffers_and_the_largest_still_fits() {
        let mut out = FrameWriter::new();
        drop(out.frame(&keepalive(0)).unwrap());
        assert!(out.scratch.len() <= FIRST, "scratch {}", out.scratch.len());
        assert!(
            out.arena.capacity() < FIRST,
            "arena {}",
            out.arena.capacity()
        );
        // The largest frame: as much output as fits a body (its other fields take a few bytes).
        let data = vec![b'x'; MAX_BODY_LEN];
        let output = |len: usize| {
            Message::ActionOutput(crate::message::ActionOutput {
                action: 1,
                stream: crate::message::Stream::Stdout,
                data: data.get(..len).unwrap(),
            })
        };
        assert_eq!(
            out.frame(&output(MAX_BODY_LEN)).unwrap_err(),
            Error::BufferTooSmall,
            "more than a body holds is refused, not grown for"
        );
        let largest = (0..MAX_BODY_LEN)
            .rev()
            .find_map(|len| out.frame(&output(len)).ok())
            .unwrap();
        assert!(largest.len() > BLOCK - 8, "{} of {BLOCK}", largest.len());
        assert_eq!(
            decode_frame(&largest, MAX_BODY_LEN).unwrap().1,
            largest.len()
        );
        assert_eq!(out.scratch.len(), BLOCK);
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
