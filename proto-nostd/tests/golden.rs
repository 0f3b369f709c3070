//! Golden vectors: one file per message type in `tests/vectors/`, holding the whole frame in hex.
//! Each message must encode to exactly those bytes and those bytes must decode to exactly that
//! message, so the wire format cannot drift silently.
//!
//! To regenerate the files after a deliberate change of the wire format (which also needs a new
//! PROTOCOL_VERSION): `OTTO_BLESS=1 cargo test -p otto-proto --test golden`, then review the diff.

// Helpers outside #[test] functions may unwrap and index too: a failing test stops there.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use otto_proto::{Decoder, HEADER_LEN, Item, MAX_BODY_LEN, MessageType, encode};
use std::path::PathBuf;

fn vector_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(format!("{name}.hex"))
}

/// Parses a vector file: hex digits with any white space, `#` to the end of a line is a comment.
fn parse_hex(text: &str) -> Vec<u8> {
    let digits: String = text
        .lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .flat_map(|line| line.chars().filter(|c| !c.is_whitespace()))
        .collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn render(name: &str, frame: &[u8], message: &otto_proto::Message<'_>) -> String {
    let (header, body) = frame.split_at(HEADER_LEN);
    let mut out = format!("# {name}: {message:?}\n# header: version, type, body length\n");
    out += &format!(
        "{} {} {}\n# body\n",
        hex(&header[0..4]),
        hex(&header[4..8]),
        hex(&header[8..12])
    );
    for line in body.chunks(32) {
        out += &hex(line);
        out.push('\n');
    }
    out
}

#[test]
fn every_message_type_has_a_vector() {
    let samples = common::samples();
    for ty in MessageType::ALL {
        assert!(
            samples.iter().any(|(_, m)| m.message_type() == ty),
            "no sample of {}",
            ty.name()
        );
    }
}

#[test]
fn messages_encode_to_their_vectors_and_vectors_decode_to_their_messages() {
    let bless = std::env::var_os("OTTO_BLESS").is_some();
    for (name, message) in common::samples() {
        // Encode over a marker pattern so a byte the encoder forgot to write would show.
        let mut buf = [0xa5u8; HEADER_LEN + 512];
        let n = encode(&message, &mut buf).unwrap();
        let encoded = &buf[..n];
        let path = vector_path(name);
        if bless {
            std::fs::write(&path, render(name, encoded, &message)).unwrap();
        }
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (OTTO_BLESS=1 creates it)", path.display()));
        let golden = parse_hex(&text);
        assert_eq!(
            hex(encoded),
            hex(&golden),
            "{name}: encoding differs from {}",
            path.display()
        );
        assert!(
            buf[n..].iter().all(|&b| b == 0xa5),
            "{name}: encoder wrote past the frame"
        );

        let mut decoder = Decoder::<MAX_BODY_LEN>::new();
        let decoded = decoder.decode(&golden).unwrap();
        assert_eq!(decoded.consumed, golden.len(), "{name}");
        assert_eq!(decoded.item, Some(Item::Frame(message.clone())), "{name}");
        assert_eq!(decoder.data_remaining(), message.data_len(), "{name}");
    }
}
