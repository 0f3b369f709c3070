//! The frame reader: the decoder's loop over chunks, as both agent and server use it.

// Helpers outside #[test] functions may unwrap and index too: a failing test stops there.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Decoded, frame, read_pieces};
use otto_proto::{
    ActionOutput, ActionRef, Credentials, Error, FrameReader, Item, MAX_BODY_LEN, Message, Stream,
    UploadFile,
};

fn upload(len: u64) -> Message<'static> {
    Message::UploadFile(UploadFile {
        action: 2,
        path: "/etc/x",
        owner: Credentials::Inherit,
        mode: 0o600,
        sha256: [3; 32],
        len,
    })
}

/// A keepalive, an upload with 10 bytes of data, an output frame: the stream, what it holds,
/// and where each frame with its data ends.
fn sample() -> (Vec<u8>, Vec<Decoded>, Vec<usize>) {
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    let mut ends = vec![0];
    for (message, data) in [
        (Message::Keepalive(ActionRef { action: 1 }), &b""[..]),
        (upload(10), b"0123456789"),
        (
            Message::ActionOutput(ActionOutput {
                action: 1,
                stream: Stream::Stdout,
                data: &[7; 300],
            }),
            b"",
        ),
    ] {
        let f = frame(&message);
        stream.extend_from_slice(&f);
        expected.push(Decoded::Frame(f));
        if !data.is_empty() {
            stream.extend_from_slice(data);
            expected.push(Decoded::Data(data.to_vec()));
        }
        ends.push(stream.len());
    }
    (stream, expected, ends)
}

#[test]
fn a_stream_cut_anywhere_reads_whole_and_only_a_cut_between_frames_is_idle() {
    let (stream, expected, ends) = sample();
    for cut in 0..=stream.len() {
        for second_cut in [cut, (cut + 13).min(stream.len())] {
            let pieces = [
                &stream[..cut],
                &stream[cut..second_cut],
                &stream[second_cut..],
            ];
            let (out, error, idle) = read_pieces(pieces);
            assert_eq!(error, None, "cut at {cut}, {second_cut}");
            assert_eq!(out, expected, "cut at {cut}, {second_cut}");
            assert!(idle, "the whole stream ends between frames");
        }
        // Truncated there: idle exactly when the cut falls where a frame or its data ends.
        let mut reader = FrameReader::<MAX_BODY_LEN>::new();
        while reader.next(&stream[..cut]).unwrap().is_some() {}
        assert_eq!(reader.is_idle(), ends.contains(&cut), "truncated at {cut}");
    }
}

#[test]
fn a_chunk_yields_its_items_one_at_a_time_data_as_slices_of_it() {
    let (stream, _, _) = sample();
    let keepalive_len = frame(&Message::Keepalive(ActionRef { action: 1 })).len();
    let upload_len = frame(&upload(10)).len();
    let mut reader = FrameReader::<MAX_BODY_LEN>::new();
    assert_eq!(
        reader.next(&stream).unwrap(),
        Some(Item::Frame(Message::Keepalive(ActionRef { action: 1 })))
    );
    assert_eq!(reader.used(), keepalive_len);
    assert_eq!(reader.next(&stream).unwrap(), Some(Item::Frame(upload(10))));
    assert!(!reader.is_idle(), "data is due");
    match reader.next(&stream).unwrap() {
        Some(Item::Data { chunk, remaining }) => {
            assert_eq!((chunk, remaining), (&b"0123456789"[..], 0));
            let at = keepalive_len + upload_len;
            assert_eq!(chunk.as_ptr(), stream[at..].as_ptr(), "not copied");
        }
        other => panic!("expected data, got {other:?}"),
    }
    assert!(reader.is_idle());
    assert!(matches!(
        reader.next(&stream),
        Ok(Some(Item::Frame(Message::ActionOutput(_))))
    ));
    assert_eq!(reader.next(&stream), Ok(None), "used up");
    assert_eq!(reader.used(), 0);
    assert!(reader.is_idle());
    // An empty chunk is used up at once.
    assert_eq!(reader.next(&[]), Ok(None));
}

#[test]
fn data_split_across_chunks_counts_down_what_remains() {
    let mut stream = frame(&upload(10));
    stream.extend_from_slice(b"0123456789");
    let (head, tail) = stream.split_at(stream.len() - 6);
    let mut reader = FrameReader::<MAX_BODY_LEN>::new();
    assert_eq!(reader.next(head).unwrap(), Some(Item::Frame(upload(10))));
    assert_eq!(
        reader.next(head).unwrap(),
        Some(Item::Data {
            chunk: b"0123",
            remaining: 6
        })
    );
    assert_eq!(reader.next(head), Ok(None));
    assert!(!reader.is_idle(), "truncated inside the data");
    assert_eq!(
        reader.next(tail).unwrap(),
        Some(Item::Data {
            chunk: b"456789",
            remaining: 0
        })
    );
    assert_eq!(reader.next(tail), Ok(None));
    assert!(reader.is_idle());
}

#[test]
fn an_error_is_final_and_the_reader_is_never_idle_after_it() {
    let keepalive = frame(&Message::Keepalive(ActionRef { action: 1 }));
    let mut garbage = keepalive.clone();
    garbage[3] = 5; // protocol version 5
    let mut stream = keepalive.clone();
    stream.extend_from_slice(&garbage);
    let mut reader = FrameReader::<MAX_BODY_LEN>::new();
    assert!(matches!(reader.next(&stream), Ok(Some(Item::Frame(_)))));
    assert_eq!(
        reader.next(&stream),
        Err(Error::UnsupportedVersion { found: 5 })
    );
    assert_eq!(reader.next(&stream), Err(Error::Desynchronized));
    assert_eq!(reader.next(&keepalive), Err(Error::Desynchronized));
    assert!(!reader.is_idle());

    // Split anywhere, the same error, after the same frames.
    for cut in 0..=stream.len() {
        let (out, error, _) = read_pieces([&stream[..cut], &stream[cut..]]);
        assert_eq!(out, vec![Decoded::Frame(keepalive.clone())], "cut at {cut}");
        assert_eq!(error, Some(Error::UnsupportedVersion { found: 5 }));
    }
}
