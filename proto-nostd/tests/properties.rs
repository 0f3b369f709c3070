//! Property tests: arbitrary messages round-trip; encoded streams split anywhere decode to exactly
//! what was sent; arbitrary bytes never panic and, after the first error, only `Desynchronized`
//! follows. `PROPTEST_CASES` sets the number of cases (fewer under QEMU).

// Helpers outside #[test] functions may unwrap and index too: a failing test stops there.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Decoded, decode_pieces, frame, read_pieces};
use otto_proto::{
    ActionOutput, ActionRef, ActionResult, CancelAction, Credentials, Decoder, EnrollRequest,
    EnrollResponse, Environment, EnvironmentBuilder, Error, FetchFile, FileHeader, FileInfo,
    FileStat, GeneralFailure, HeartbeatRequest, HeartbeatResponse, HostFacts, Item, MAX_BODY_LEN,
    Message, Outcome, RotateIdentityRequest, RotateIdentityResponse, RunScript, ScriptTimeout,
    StatFile, Stream, UpdateAgent, UploadDigest, UploadFile, UploadStream,
};
use proptest::prelude::*;

/// The owned values an arbitrary message is built from (messages borrow their text).
#[derive(Debug, Clone)]
struct Seed {
    kind: u8,
    ids: [u64; 4],
    small: [u32; 4],
    texts: [String; 6],
    bytes: Vec<u8>,
    key: [u8; 32],
    env: Vec<(String, String)>,
    data_len: u64,
}

fn seed() -> impl Strategy<Value = Seed> {
    let text = || "\\PC{0,24}";
    (
        0u8..25,
        any::<[u64; 4]>(),
        any::<[u32; 4]>(),
        [text(), text(), text(), text(), text(), text()],
        proptest::collection::vec(any::<u8>(), 0..300),
        any::<[u8; 32]>(),
        proptest::collection::vec(("[A-Za-z_][A-Za-z0-9_]{0,8}", "[^\0]{0,16}"), 0..6),
        0u64..300,
    )
        .prop_map(
            |(kind, ids, small, texts, bytes, key, env, data_len)| Seed {
                kind,
                ids,
                small,
                texts,
                bytes,
                key,
                env,
                data_len,
            },
        )
}

/// Builds the message a seed describes; `env_buf` holds its environment block.
fn message<'a>(s: &'a Seed, env_buf: &'a mut [u8]) -> Message<'a> {
    let [a, b, c, d] = s.ids;
    let [w, x, y, z] = s.small;
    let t = &s.texts;
    let creds = if w.is_multiple_of(2) {
        Credentials::Inherit
    } else {
        Credentials::Ids { uid: x, gid: y }
    };
    let mut builder = EnvironmentBuilder::new(env_buf);
    for (name, value) in &s.env {
        builder.push(name, value).unwrap();
    }
    let env: Environment<'a> = builder.finish();
    match s.kind {
        0 => Message::GeneralFailure(GeneralFailure { message: &t[0] }),
        1 => Message::Keepalive(ActionRef { action: a }),
        2 => Message::HeartbeatRequest(HeartbeatRequest {
            server_version: &t[0],
            nonce: b,
        }),
        3 => Message::HeartbeatResponse(HeartbeatResponse {
            agent_version: &t[0],
            nonce: a,
            facts: HostFacts {
                hostname: &t[1],
                kernel_name: &t[2],
                kernel_version: &t[3],
                arch: &t[4],
                distribution_name: &t[5],
                distribution_version: &t[0],
                uptime_secs: b,
                load_centi: [w, x, y],
                mem_total_kib: c,
                mem_available_kib: d,
                model: &t[3],
                big_endian: z.is_multiple_of(2),
                flash_total_kib: b,
                flash_free_kib: a,
            },
        }),
        4 => Message::RotateIdentityRequest(RotateIdentityRequest {
            server_public_key: s.key,
        }),
        5 if w.is_multiple_of(2) => {
            Message::RotateIdentityResponse(RotateIdentityResponse::Rotated {
                agent_public_key: s.key,
            })
        }
        5 => Message::RotateIdentityResponse(RotateIdentityResponse::Failed { error: &t[1] }),
        6 => Message::RunScript(RunScript {
            action: a,
            name: &t[0],
            interpreter: &t[1],
            run_as: creds,
            working_dir: x.is_multiple_of(2).then_some(t[2].as_str()),
            env,
            timeout: match y % 3 {
                0 => ScriptTimeout::AgentDefault,
                1 => ScriptTimeout::Unlimited,
                _ => ScriptTimeout::Seconds(z),
            },
            script_len: s.data_len,
        }),
        7 => Message::ReloadConfig(ActionRef { action: a }),
        8 => Message::UploadFile(UploadFile {
            action: a,
            path: &t[0],
            owner: creds,
            mode: z,
            sha256: s.key,
            len: s.data_len,
        }),
        9 => Message::ExitAgent(ActionRef { action: a }),
        10 => Message::Reboot(ActionRef { action: a }),
        11 => Message::Shutdown(ActionRef { action: a }),
        12 => Message::CancelAction(CancelAction {
            action: a,
            target: b,
        }),
        13 => Message::ActionOutput(ActionOutput {
            action: a,
            stream: if w.is_multiple_of(2) {
                Stream::Stdout
            } else {
                Stream::Stderr
            },
            data: &s.bytes,
        }),
        14 => Message::ActionResult(ActionResult {
            action: a,
            outcome: match w % 6 {
                0 => Outcome::Exited { code: x as i32 },
                1 => Outcome::Signaled { signal: y as i32 },
                2 => Outcome::TimedOut,
                3 => Outcome::Cancelled,
                4 => Outcome::Completed,
                _ => Outcome::Failed { error: &t[3] },
            },
            elapsed_ms: b,
            stdout_len: c,
            stderr_len: d,
        }),
        15 => Message::ReadyForData(ActionRef { action: a }),
        16 => Message::EnrollRequest(EnrollRequest {
            token: &t[0],
            name: x.is_multiple_of(2).then_some(t[1].as_str()),
            port: z as u16,
            call_home: y.is_multiple_of(2),
            facts: HostFacts {
                hostname: &t[2],
                kernel_name: &t[3],
                kernel_version: &t[4],
                arch: &t[5],
                distribution_name: &t[0],
                distribution_version: &t[1],
                uptime_secs: a,
                load_centi: [w, x, y],
                mem_total_kib: b,
                mem_available_kib: c,
                model: &t[2],
                big_endian: w.is_multiple_of(3),
                flash_total_kib: d,
                flash_free_kib: a,
            },
        }),
        17 => Message::UpdateAgent(UpdateAgent {
            action: a,
            sha256: s.key,
            len: s.data_len,
            confirm_secs: w,
        }),
        18 => Message::StatFile(StatFile {
            action: a,
            path: &t[0],
        }),
        19 => Message::FileStat(FileStat {
            action: a,
            stat: w.is_multiple_of(2).then_some(FileInfo {
                sha256: s.key,
                mode: x,
                len: b,
                uid: y,
                gid: z,
            }),
        }),
        20 => Message::FetchFile(FetchFile {
            action: a,
            path: &t[1],
            max_len: b,
        }),
        21 => Message::FileHeader(FileHeader {
            action: a,
            len: s.data_len,
            mode: w,
            sha256: s.key,
        }),
        22 => Message::UploadStream(UploadStream {
            action: a,
            path: &t[2],
            owner: creds,
            mode: w,
            len: s.data_len,
        }),
        23 => Message::UploadDigest(UploadDigest {
            action: a,
            sha256: s.key,
        }),
        _ if w.is_multiple_of(2) => Message::EnrollResponse(EnrollResponse::Accepted {
            host: &t[0],
            server_public_key: s.key,
            pending: x.is_multiple_of(2),
        }),
        _ => Message::EnrollResponse(EnrollResponse::Refused { reason: &t[1] }),
    }
}

proptest! {
    #[test]
    fn arbitrary_messages_round_trip(s in seed()) {
        let mut env_buf = [0u8; 1024];
        let m = message(&s, &mut env_buf);
        let bytes = frame(&m);
        let mut decoder = Decoder::<MAX_BODY_LEN>::new();
        let decoded = decoder.decode(&bytes).unwrap();
        prop_assert_eq!(decoded.consumed, bytes.len());
        prop_assert_eq!(decoded.item, Some(Item::Frame(m.clone())));
        prop_assert_eq!(decoder.data_remaining(), m.data_len());
    }

    #[test]
    fn streams_split_anywhere_decode_to_exactly_what_was_sent(
        seeds in proptest::collection::vec(seed(), 1..6),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
        bytewise in any::<bool>(),
    ) {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for (i, s) in seeds.iter().enumerate() {
            let mut env_buf = [0u8; 1024];
            let m = message(s, &mut env_buf);
            let f = frame(&m);
            stream.extend_from_slice(&f);
            expected.push(Decoded::Frame(f));
            if m.data_len() > 0 {
                let data: Vec<u8> = (0..m.data_len()).map(|j| (i as u64 * 31 + j) as u8).collect();
                stream.extend_from_slice(&data);
                expected.push(Decoded::Data(data));
            }
        }
        let pieces: Vec<&[u8]> = if bytewise {
            stream.chunks(1).collect()
        } else {
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
            points.extend([0, stream.len()]);
            points.sort_unstable();
            points.windows(2).map(|w| &stream[w[0]..w[1]]).collect()
        };
        let (out, error) = decode_pieces(pieces.iter().copied());
        prop_assert_eq!(error, None);
        prop_assert_eq!(&out, &expected);
        // The frame reader, over the same pieces, yields the same and ends between frames.
        let (read, error, idle) = read_pieces(pieces.iter().copied());
        prop_assert_eq!(error, None);
        prop_assert_eq!(read, expected);
        prop_assert!(idle);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_errors_are_final(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        chunk in 1usize..40,
        plausible_header in any::<bool>(),
    ) {
        let mut bytes = bytes;
        if plausible_header && bytes.len() >= 12 {
            // Give the garbage a real version and a small length now and then, so bodies get parsed.
            bytes[..4].copy_from_slice(&otto_proto::PROTOCOL_VERSION.to_be_bytes());
            let (ty, len) = (u32::from(bytes[4] % 25), u32::from(bytes[8] % 64));
            bytes[4..8].copy_from_slice(&ty.to_be_bytes());
            bytes[8..12].copy_from_slice(&len.to_be_bytes());
        }
        let mut decoder = Decoder::<256>::new();
        let mut failed = false;
        for piece in bytes.chunks(chunk) {
            let mut input = piece;
            while !input.is_empty() {
                match decoder.decode(input) {
                    Ok(d) => {
                        prop_assert!(!failed, "a success after an error");
                        prop_assert!(d.consumed > 0 && d.consumed <= input.len());
                        if d.item.is_none() {
                            prop_assert_eq!(d.consumed, input.len(), "an item or the whole input");
                        }
                        input = &input[d.consumed..];
                    }
                    Err(e) => {
                        if failed { prop_assert_eq!(e, Error::Desynchronized); }
                        failed = true;
                        break;
                    }
                }
            }
        }
    }

    #[test]
    fn a_valid_stream_then_garbage_yields_the_valid_frames_first(
        seeds in proptest::collection::vec(seed(), 1..4),
        garbage in proptest::collection::vec(any::<u8>(), 1..64),
    ) {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for s in seeds.iter() {
            let mut env_buf = [0u8; 1024];
            let m = message(s, &mut env_buf);
            if m.data_len() > 0 { continue; } // data would swallow the garbage
            let f = frame(&m);
            stream.extend_from_slice(&f);
            expected.push(Decoded::Frame(f));
        }
        stream.extend_from_slice(&garbage);
        let (out, _) = decode_pieces(stream.chunks(7));
        prop_assert!(out.len() >= expected.len());
        prop_assert_eq!(&out[..expected.len()], &expected[..]);
    }
}
