//! Reading frames from a stream of chunks: the one loop around the [`Decoder`] that both sides
//! use. The caller keeps the chunk that arrived last; the reader keeps the decoder and how much
//! of that chunk it has used, and yields the chunk's items one at a time.

use crate::decoder::{Decoded, Decoder, Item};
use crate::error::Error;

/// An incremental frame reader over chunks of input, whose largest accepted body is `MAX_BODY`
/// bytes.
///
/// Pass the same chunk to [`next`](FrameReader::next) until it answers `Ok(None)`: the chunk is
/// used up, and the next call takes a new one. Any error is final for the stream.
///
/// ```
/// use otto_proto::{encode, ActionRef, FrameReader, Item, Message};
///
/// let mut wire = [0u8; 64];
/// let n = encode(&Message::Keepalive(ActionRef { action: 7 }), &mut wire).unwrap();
///
/// let mut reader = FrameReader::<1024>::new();
/// let (first, second) = wire[..n].split_at(5);
/// assert_eq!(reader.next(first), Ok(None)); // the first chunk is used up
/// assert!(!reader.is_idle()); // in the middle of a frame
/// let item = reader.next(second).unwrap();
/// assert_eq!(item, Some(Item::Frame(Message::Keepalive(ActionRef { action: 7 }))));
/// assert_eq!(reader.next(second), Ok(None));
/// assert!(reader.is_idle());
/// ```
#[derive(Debug, Clone, Default)]
pub struct FrameReader<const MAX_BODY: usize> {
    decoder: Decoder<MAX_BODY>,
    /// Bytes of the current chunk already used.
    used: usize,
}

impl<const MAX_BODY: usize> FrameReader<MAX_BODY> {
    /// A reader waiting for the first frame.
    pub const fn new() -> Self {
        FrameReader {
            decoder: Decoder::new(),
            used: 0,
        }
    }

    /// The next item from `chunk`, which must be the chunk of the previous call until that call
    /// answered `Ok(None)`. `Ok(None)`: `chunk` is used up (a frame may be half-received; see
    /// [`is_idle`](FrameReader::is_idle)); pass the next chunk. Data items are slices of `chunk`.
    pub fn next<'a>(&'a mut self, chunk: &'a [u8]) -> Result<Option<Item<'a>>, Error> {
        // Even with nothing left, ask the decoder: after an error it answers with one again.
        let input = chunk.get(self.used..).unwrap_or_default();
        // The decoder yields an item or uses the whole input: one call is enough.
        let Decoded { consumed, item } = self.decoder.decode(input)?;
        self.used = match item {
            Some(_) => self.used + consumed,
            None => 0,
        };
        Ok(item)
    }

    /// Bytes of the current chunk already used (0 once it is used up).
    pub fn used(&self) -> usize {
        self.used
    }

    /// Whether the stream stands between frames, nothing half-received: the place where a peer
    /// may end it cleanly. Never after an error. Bytes of the current chunk not yet read are the
    /// caller's to check.
    pub fn is_idle(&self) -> bool {
        self.decoder.is_idle()
    }
}
