//! Fuzzes the decoder: the first byte picks how the rest is split into pieces; every decoded
//! frame must re-encode, and decoding that encoding must give the same message (postcard accepts
//! over-long varints, so the bytes themselves may differ), data must be passed through
//! unchanged, every call on non-empty input must make progress (yielding an item or using it all),
//! and after an error only `Desynchronized` may follow. The same pieces through a `FrameReader`
//! must yield the same items and the same first error. `cargo fuzz run decoder` from
//! `proto-nostd/`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use otto_proto::{Decoder, Error, FrameReader, HEADER_LEN, Item, MAX_BODY_LEN, encode};

/// An item, owned: a frame as its canonical encoding, or a chunk of data.
#[derive(Debug, PartialEq)]
enum Owned {
    Frame(Vec<u8>),
    Data(Vec<u8>),
}

fn owned(item: Item<'_>) -> Owned {
    match item {
        Item::Frame(message) => {
            let mut out = vec![0u8; HEADER_LEN + MAX_BODY_LEN];
            let n = encode(&message, &mut out).expect("a decoded frame re-encodes");
            out.truncate(n);
            Owned::Frame(out)
        }
        Item::Data { chunk, .. } => Owned::Data(chunk.to_vec()),
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&split, bytes)) = input.split_first() else {
        return;
    };
    let piece_len = usize::from(split % 64) + 1;
    let mut decoder = Decoder::<MAX_BODY_LEN>::new();
    let mut frame_bytes: Vec<u8> = Vec::new(); // bytes of the frame being assembled
    let mut failed = false;
    let mut items = Vec::new();
    let mut first_error = None;
    for piece in bytes.chunks(piece_len) {
        let mut rest = piece;
        while !rest.is_empty() {
            let was_data = decoder.data_remaining() > 0;
            match decoder.decode(rest) {
                Ok(decoded) => {
                    assert!(!failed, "success after an error");
                    assert!(
                        decoded.consumed > 0 && decoded.consumed <= rest.len(),
                        "no progress"
                    );
                    let used = &rest[..decoded.consumed];
                    if decoded.item.is_none() {
                        assert_eq!(
                            decoded.consumed,
                            rest.len(),
                            "neither an item nor all input"
                        );
                    }
                    items.extend(decoded.item.clone().map(owned));
                    match decoded.item {
                        Some(Item::Frame(message)) => {
                            frame_bytes.extend_from_slice(used);
                            let mut out = vec![0u8; HEADER_LEN + MAX_BODY_LEN];
                            let n = encode(&message, &mut out).expect("a decoded frame re-encodes");
                            assert!(
                                n <= frame_bytes.len(),
                                "re-encoding is longer than the input"
                            );
                            let mut again = Decoder::<MAX_BODY_LEN>::new();
                            let decoded = again.decode(&out[..n]).expect("re-encoding decodes");
                            assert_eq!(decoded.consumed, n);
                            assert_eq!(
                                decoded.item,
                                Some(Item::Frame(message)),
                                "round trip differs"
                            );
                            frame_bytes.clear();
                        }
                        Some(Item::Data { chunk, .. }) => {
                            assert!(was_data);
                            assert_eq!(chunk, used, "data altered");
                        }
                        None => frame_bytes.extend_from_slice(used),
                    }
                    rest = &rest[decoded.consumed..];
                }
                Err(error) => {
                    if failed {
                        assert_eq!(error, Error::Desynchronized);
                    }
                    first_error.get_or_insert(error);
                    failed = true;
                    break;
                }
            }
        }
    }

    let mut reader = FrameReader::<MAX_BODY_LEN>::new();
    let mut read = Vec::new();
    let mut read_error = None;
    'pieces: for piece in bytes.chunks(piece_len) {
        loop {
            match reader.next(piece) {
                Ok(Some(item)) => read.push(owned(item)),
                Ok(None) => break,
                Err(error) => {
                    read_error = Some(error);
                    break 'pieces;
                }
            }
        }
        assert_eq!(
            reader.used(),
            0,
            "a piece is used up once the reader says so"
        );
    }
    assert_eq!(read, items, "the reader yields what the decoder does");
    assert_eq!(
        read_error, first_error,
        "the reader fails as the decoder does"
    );
});
