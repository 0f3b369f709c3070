//! Every message type, and every variant of its enums, survives encode → decode → encode,
//! whole and split one byte at a time.

// Helpers outside #[test] functions may unwrap and index too: a failing test stops there.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Decoded, decode_pieces, frame};
use otto_proto::{Decoder, Item, MAX_BODY_LEN, Message};

fn all() -> Vec<Message<'static>> {
    common::samples()
        .into_iter()
        .map(|(_, m)| m)
        .chain(common::more_samples())
        .collect()
}

#[test]
fn whole_frames_round_trip() {
    for message in all() {
        let bytes = frame(&message);
        let mut decoder = Decoder::<MAX_BODY_LEN>::new();
        let decoded = decoder.decode(&bytes).unwrap();
        assert_eq!(decoded.consumed, bytes.len());
        assert_eq!(decoded.item, Some(Item::Frame(message.clone())));
    }
}

#[test]
fn frames_split_into_single_bytes_round_trip() {
    for message in all() {
        let bytes = frame(&message);
        let (out, error) = decode_pieces(bytes.chunks(1));
        assert_eq!(error, None, "{message:?}");
        assert_eq!(out, vec![Decoded::Frame(bytes.clone())], "{message:?}");
    }
}

#[test]
fn encode_to_vec_appends_and_leaves_the_vec_alone_on_error() {
    let message = &common::samples()[3].1;
    let bytes = frame(message);
    let mut vec = heapless::Vec::<u8, 512>::new();
    vec.extend_from_slice(b"xy").unwrap();
    otto_proto::encode_to_vec(message, &mut vec).unwrap();
    assert_eq!(&vec[..2], b"xy");
    assert_eq!(&vec[2..], &bytes[..]);

    let mut small = heapless::Vec::<u8, 40>::new();
    small.extend_from_slice(b"keep").unwrap();
    assert_eq!(
        otto_proto::encode_to_vec(message, &mut small),
        Err(otto_proto::Error::BufferTooSmall)
    );
    assert_eq!(&small[..], b"keep");
}

#[test]
fn every_too_small_buffer_is_reported() {
    for message in all() {
        let len = frame(&message).len();
        for size in 0..len {
            let mut buf = vec![0u8; size];
            assert_eq!(
                otto_proto::encode(&message, &mut buf),
                Err(otto_proto::Error::BufferTooSmall),
                "{size}"
            );
        }
    }
}
