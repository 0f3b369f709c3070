//! The incremental decoder's handling of hostile and awkward input.

// Helpers outside #[test] functions may unwrap and index too: a failing test stops there.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::frame;
use otto_proto::{
    ActionOutput, ActionRef, Decoder, Error, HEADER_LEN, Header, HeartbeatRequest, Item, Message,
    MessageType, OLDEST_VERSION, PROTOCOL_VERSION, StatFile, Stream, UploadFile,
};

const CAP: usize = 64;

fn header(version: u32, message_type: u32, body_len: u32) -> [u8; HEADER_LEN] {
    Header {
        version,
        message_type,
        body_len,
    }
    .emit()
}

#[test]
fn an_oversized_length_is_refused_as_soon_as_the_header_arrives() {
    let mut decoder = Decoder::<CAP>::new();
    let h = header(
        PROTOCOL_VERSION,
        MessageType::ActionOutput as u32,
        CAP as u32 + 1,
    );
    // Eleven header bytes: still waiting.
    for byte in &h[..HEADER_LEN - 1] {
        assert_eq!(
            decoder.decode(std::slice::from_ref(byte)).unwrap().item,
            None
        );
    }
    // The twelfth byte completes the header: refused before any body byte is offered.
    assert_eq!(
        decoder.decode(&h[HEADER_LEN - 1..]),
        Err(Error::BodyTooLong {
            declared: CAP as u32 + 1,
            max: CAP
        })
    );
    // The largest declared length too, when the header arrives whole with more bytes behind it.
    let mut decoder = Decoder::<CAP>::new();
    let mut input = header(PROTOCOL_VERSION, 13, u32::MAX).to_vec();
    input.extend_from_slice(&[0; 100]);
    assert_eq!(
        decoder.decode(&input),
        Err(Error::BodyTooLong {
            declared: u32::MAX,
            max: CAP
        })
    );
}

#[test]
fn a_body_of_exactly_the_capacity_is_accepted() {
    let data = [7u8; CAP - 3]; // action, stream and length take one byte each
    let message = Message::ActionOutput(ActionOutput {
        action: 1,
        stream: Stream::Stdout,
        data: &data,
    });
    let bytes = frame(&message);
    assert_eq!(
        bytes.len(),
        HEADER_LEN + CAP,
        "sample sized to the capacity"
    );
    let mut decoder = Decoder::<CAP>::new();
    let mut got = None;
    for piece in bytes.chunks(5) {
        let mut input = piece;
        while !input.is_empty() {
            let decoded = decoder.decode(input).unwrap();
            if let Some(Item::Frame(m)) = decoded.item {
                got = Some(frame(&m));
            }
            input = &input[decoded.consumed..];
        }
    }
    assert_eq!(got, Some(bytes));
}

#[test]
fn other_protocol_versions_are_refused_with_their_own_error() {
    for version in [0, 5, 6, 10, u32::MAX] {
        let mut decoder = Decoder::<CAP>::new();
        assert_eq!(
            decoder.decode(&header(version, 1, 1)),
            Err(Error::UnsupportedVersion { found: version })
        );
    }
}

#[test]
fn each_frame_carries_the_version_of_its_message_and_both_versions_are_read() {
    // A heartbeat goes as version 7, which an agent of version 7 reads; a stat as version 8.
    let heartbeat = frame(&Message::HeartbeatRequest(HeartbeatRequest {
        server_version: "1.0",
        nonce: 1,
    }));
    assert_eq!(&heartbeat[..4], &OLDEST_VERSION.to_be_bytes());
    let stat = frame(&Message::StatFile(StatFile {
        action: 1,
        path: "/etc/x",
    }));
    assert_eq!(&stat[..4], &8u32.to_be_bytes());
    for bytes in [&heartbeat, &stat] {
        let (message, used) = otto_proto::decode_frame(bytes, CAP).unwrap();
        assert_eq!((frame(&message), used), (bytes.clone(), bytes.len()));
    }
    // An old message in a frame of version 8 is read too (a later version may carry it).
    let mut decoder = Decoder::<CAP>::new();
    assert!(decoder.decode(&header(PROTOCOL_VERSION, 1, 1)).is_ok());
    // A message of version 8 in a frame of version 7 is no message of that version, nor one of
    // version 9 in a frame of version 8.
    for ty in [19, 20, 21, 22, 23, 24] {
        let mut decoder = Decoder::<CAP>::new();
        assert_eq!(
            decoder.decode(&header(OLDEST_VERSION, ty, 1)),
            Err(Error::UnknownMessageType(ty))
        );
    }
    for ty in [23, 24] {
        let mut decoder = Decoder::<CAP>::new();
        assert_eq!(
            decoder.decode(&header(8, ty, 1)),
            Err(Error::UnknownMessageType(ty))
        );
    }
}

#[test]
fn unknown_message_types_are_refused() {
    for ty in [25, 26, 255, u32::MAX] {
        let mut decoder = Decoder::<CAP>::new();
        assert_eq!(
            decoder.decode(&header(PROTOCOL_VERSION, ty, 0)),
            Err(Error::UnknownMessageType(ty))
        );
    }
}

#[test]
fn malformed_and_overlong_bodies_are_refused() {
    // Keepalive's body is one varint; an empty one is malformed.
    let mut decoder = Decoder::<CAP>::new();
    assert_eq!(
        decoder.decode(&header(PROTOCOL_VERSION, MessageType::Keepalive as u32, 0)),
        Err(Error::MalformedBody(MessageType::Keepalive))
    );
    // A string whose declared length runs past the body.
    let mut bytes = header(PROTOCOL_VERSION, MessageType::GeneralFailure as u32, 2).to_vec();
    bytes.extend_from_slice(&[5, b'x']);
    assert_eq!(
        Decoder::<CAP>::new().decode(&bytes),
        Err(Error::MalformedBody(MessageType::GeneralFailure))
    );
    // Text that is not UTF-8.
    let mut bytes = header(PROTOCOL_VERSION, MessageType::GeneralFailure as u32, 2).to_vec();
    bytes.extend_from_slice(&[1, 0xff]);
    assert_eq!(
        Decoder::<CAP>::new().decode(&bytes),
        Err(Error::MalformedBody(MessageType::GeneralFailure))
    );
    // A valid Keepalive with a byte left over inside the body.
    let mut bytes = header(PROTOCOL_VERSION, MessageType::Keepalive as u32, 2).to_vec();
    bytes.extend_from_slice(&[1, 0]);
    assert_eq!(
        Decoder::<CAP>::new().decode(&bytes),
        Err(Error::TrailingBytes(MessageType::Keepalive))
    );
    // A malformed environment block inside a RunScript is a malformed body.
    let good = frame(&common::samples()[6].1);
    let mut bad = good.clone();
    let nul = bad.iter().rposition(|&b| b == 0).unwrap(); // the environment's last terminator
    bad[nul] = b'!';
    assert_eq!(
        Decoder::<{ otto_proto::MAX_BODY_LEN }>::new().decode(&bad),
        Err(Error::MalformedBody(MessageType::RunScript))
    );
}

#[test]
fn after_an_error_only_desynchronized_until_reset() {
    let mut decoder = Decoder::<CAP>::new();
    assert!(decoder.decode(&header(10, 1, 1)).is_err());
    let keepalive = frame(&Message::Keepalive(ActionRef { action: 1 }));
    assert_eq!(decoder.decode(&keepalive), Err(Error::Desynchronized));
    assert_eq!(decoder.decode(&[]), Err(Error::Desynchronized));
    assert!(!decoder.is_idle());
    decoder.reset();
    assert!(decoder.is_idle());
    assert_eq!(
        decoder.decode(&keepalive).unwrap().item,
        Some(Item::Frame(Message::Keepalive(ActionRef { action: 1 })))
    );
}

#[test]
fn additional_data_comes_out_as_slices_of_the_input() {
    let upload = Message::UploadFile(UploadFile {
        action: 3,
        path: "/x",
        owner: otto_proto::Credentials::Inherit,
        mode: 0o600,
        sha256: [0; 32],
        len: 10,
    });
    let mut stream = frame(&upload);
    let frame_len = stream.len();
    stream.extend_from_slice(b"0123456789");
    stream.extend_from_slice(&frame(&Message::Keepalive(ActionRef { action: 3 })));

    let mut decoder = Decoder::<{ otto_proto::MAX_BODY_LEN }>::new();
    assert!(decoder.is_idle());
    let first = decoder.decode(&stream[..frame_len + 4]).unwrap();
    assert_eq!(first.consumed, frame_len);
    assert_eq!(first.item, Some(Item::Frame(upload)));
    assert_eq!(decoder.data_remaining(), 10);
    assert!(!decoder.is_idle());

    let input = &stream[frame_len..frame_len + 4];
    let chunk = decoder.decode(input).unwrap();
    assert_eq!(chunk.consumed, 4);
    match chunk.item {
        Some(Item::Data { chunk, remaining }) => {
            assert_eq!(chunk, b"0123");
            assert_eq!(
                chunk.as_ptr(),
                input.as_ptr(),
                "data is passed through, not copied"
            );
            assert_eq!(remaining, 6);
        }
        other => panic!("expected data, got {other:?}"),
    }
    // The rest of the data and the next frame in one input: only the data is consumed.
    let input = &stream[frame_len + 4..];
    let chunk = decoder.decode(input).unwrap();
    assert_eq!(chunk.consumed, 6);
    assert_eq!(
        chunk.item,
        Some(Item::Data {
            chunk: b"456789",
            remaining: 0
        })
    );
    assert!(decoder.is_idle());
    let next = decoder.decode(&input[6..]).unwrap();
    assert_eq!(
        next.item,
        Some(Item::Frame(Message::Keepalive(ActionRef { action: 3 })))
    );
}

#[test]
fn a_whole_frame_borrows_from_the_input_and_a_split_one_still_decodes() {
    let message = Message::ActionOutput(ActionOutput {
        action: 5,
        stream: Stream::Stdout,
        data: b"borrowed bytes",
    });
    let bytes = frame(&message);
    let mut decoder = Decoder::<CAP>::new();
    match decoder.decode(&bytes).unwrap().item {
        Some(Item::Frame(Message::ActionOutput(out))) => {
            assert_eq!(out.data, b"borrowed bytes");
            assert!(
                bytes.as_ptr_range().contains(&out.data.as_ptr()),
                "borrows from the input"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    let (head, tail) = bytes.split_at(HEADER_LEN + 3);
    assert_eq!(decoder.decode(head).unwrap().item, None);
    let decoded = decoder.decode(tail).unwrap();
    assert_eq!(decoded.item, Some(Item::Frame(message)));
    assert_eq!(decoded.consumed, tail.len());
}

#[test]
fn empty_input_consumes_nothing() {
    let mut decoder = Decoder::<CAP>::new();
    let decoded = decoder.decode(&[]).unwrap();
    assert_eq!((decoded.consumed, decoded.item), (0, None));
    assert!(decoder.is_idle());
}

#[test]
fn decode_frame_decodes_one_whole_frame_and_reports_incomplete_input() {
    let message = Message::ActionOutput(ActionOutput {
        action: 9,
        stream: Stream::Stderr,
        data: b"abc",
    });
    let mut bytes = frame(&message);
    let len = bytes.len();
    bytes.extend_from_slice(b"trailing data");
    assert_eq!(otto_proto::decode_frame(&bytes, CAP), Ok((message, len)));
    for cut in 0..len {
        assert_eq!(
            otto_proto::decode_frame(&bytes[..cut], CAP),
            Err(Error::Incomplete),
            "{cut}"
        );
    }
    assert_eq!(
        otto_proto::decode_frame(&header(PROTOCOL_VERSION, 13, 100), 64),
        Err(Error::BodyTooLong {
            declared: 100,
            max: 64
        })
    );
    assert_eq!(
        otto_proto::decode_frame(&header(1, 13, 0), 64),
        Err(Error::UnsupportedVersion { found: 1 })
    );
}
