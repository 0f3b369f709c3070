//! Messages shared by the codec's tests: one of every type, with values that exercise the
//! encoding (empty and non-ASCII text, large and negative numbers, every enum variant somewhere).
// Each test file uses its own part of this module.
#![allow(dead_code)]

use otto_proto::{
    ActionOutput, ActionRef, ActionResult, CancelAction, Credentials, Decoder, EnrollRequest,
    EnrollResponse, Environment, FetchFile, FileHeader, FileInfo, FileStat, FrameReader,
    GeneralFailure, HeartbeatRequest, HeartbeatResponse, HostFacts, Item, Message, Outcome,
    RotateIdentityRequest, RotateIdentityResponse, RunScript, ScriptTimeout, StatFile, Stream,
    UpdateAgent, UploadDigest, UploadFile, UploadStream,
};

/// One message of every type, named for its golden vector file.
pub fn samples() -> Vec<(&'static str, Message<'static>)> {
    vec![
        (
            "general_failure",
            Message::GeneralFailure(GeneralFailure {
                message: "frame: malformed RunScript body",
            }),
        ),
        ("keepalive", Message::Keepalive(ActionRef { action: 300 })),
        (
            "heartbeat_request",
            Message::HeartbeatRequest(HeartbeatRequest {
                server_version: "0.1.0",
                nonce: u64::MAX,
            }),
        ),
        (
            "heartbeat_response",
            Message::HeartbeatResponse(HeartbeatResponse {
                agent_version: "0.1.0",
                nonce: 0x0102_0304_0506_0708,
                facts: HostFacts {
                    hostname: "gw-lab-01",
                    kernel_name: "Linux",
                    kernel_version: "5.15.167",
                    arch: "mips",
                    distribution_name: "OpenWrt",
                    distribution_version: "23.05.5",
                    uptime_secs: 86_400,
                    load_centi: [12, 8, 500],
                    mem_total_kib: 124_000,
                    mem_available_kib: 0,
                    model: "TP-Link Archer C7 v5",
                    big_endian: true,
                    flash_total_kib: 7_680,
                    flash_free_kib: 5_120,
                },
            }),
        ),
        (
            "rotate_identity_request",
            Message::RotateIdentityRequest(RotateIdentityRequest {
                server_public_key: [0x11; 32],
            }),
        ),
        (
            "rotate_identity_response",
            Message::RotateIdentityResponse(RotateIdentityResponse::Rotated {
                agent_public_key: [0xfe; 32],
            }),
        ),
        (
            "run_script",
            Message::RunScript(RunScript {
                action: 1,
                name: "uptime",
                interpreter: "/bin/sh",
                run_as: Credentials::Ids {
                    uid: 1000,
                    gid: 100,
                },
                working_dir: Some("/tmp"),
                env: Environment::new("OTTO_HOST_ADDRESS=10.0.0.1\0GREETING=grüß dich\0").unwrap(),
                timeout: ScriptTimeout::Seconds(30),
                script_len: 7,
            }),
        ),
        (
            "reload_config",
            Message::ReloadConfig(ActionRef { action: 2 }),
        ),
        (
            "upload_file",
            Message::UploadFile(UploadFile {
                action: 3,
                path: "/etc/config/network",
                owner: Credentials::Inherit,
                mode: 0o644,
                sha256: [0xab; 32],
                len: 1 << 20,
            }),
        ),
        (
            "update_agent",
            Message::UpdateAgent(UpdateAgent {
                action: 7,
                sha256: [0xcd; 32],
                len: 957_624,
                confirm_secs: 120,
            }),
        ),
        ("exit_agent", Message::ExitAgent(ActionRef { action: 4 })),
        ("reboot", Message::Reboot(ActionRef { action: 5 })),
        ("shutdown", Message::Shutdown(ActionRef { action: 6 })),
        (
            "cancel_action",
            Message::CancelAction(CancelAction {
                action: 7,
                target: 1,
            }),
        ),
        (
            "action_output",
            Message::ActionOutput(ActionOutput {
                action: 1,
                stream: Stream::Stderr,
                data: b"warn: \x00\xff\n",
            }),
        ),
        (
            "action_result",
            Message::ActionResult(ActionResult {
                action: 1,
                outcome: Outcome::Exited { code: -1 },
                elapsed_ms: 1234,
                stdout_len: 10 << 20,
                stderr_len: 0,
            }),
        ),
        (
            "ready_for_data",
            Message::ReadyForData(ActionRef { action: 1 }),
        ),
        (
            "enroll_request",
            Message::EnrollRequest(EnrollRequest {
                token: "otto-tok-3q2+",
                name: Some("gw-lab-01"),
                port: 12444,
                call_home: true,
                facts: HostFacts {
                    hostname: "OpenWrt",
                    kernel_name: "Linux",
                    kernel_version: "6.6.73",
                    arch: "mips",
                    distribution_name: "OpenWrt",
                    distribution_version: "24.10.0",
                    uptime_secs: 61,
                    load_centi: [3, 1, 0],
                    mem_total_kib: 59_224,
                    mem_available_kib: 31_000,
                    model: "TP-Link Archer C7 v5",
                    big_endian: true,
                    flash_total_kib: 7_680,
                    flash_free_kib: 6_000,
                },
            }),
        ),
        (
            "enroll_response",
            Message::EnrollResponse(EnrollResponse::Accepted {
                host: "gw-lab-01",
                server_public_key: [0x22; 32],
                pending: true,
            }),
        ),
        (
            "stat_file",
            Message::StatFile(StatFile {
                action: 8,
                path: "/etc/config/network",
            }),
        ),
        (
            "file_stat",
            Message::FileStat(FileStat {
                action: 8,
                stat: Some(FileInfo {
                    sha256: [0x5a; 32],
                    mode: 0o644,
                    len: 1_318,
                    uid: 0,
                    gid: 1000,
                }),
            }),
        ),
        (
            "fetch_file",
            Message::FetchFile(FetchFile {
                action: 9,
                path: "/etc/dropbear/authorized_keys",
                max_len: 64 << 20,
            }),
        ),
        (
            "file_header",
            Message::FileHeader(FileHeader {
                action: 9,
                len: 402,
                mode: 0o600,
                sha256: [0x3c; 32],
            }),
        ),
        (
            "upload_stream",
            Message::UploadStream(UploadStream {
                action: 10,
                path: "/etc/config/firewall",
                owner: Credentials::Ids { uid: 0, gid: 65534 },
                mode: 0o640,
                len: 1 << 33,
            }),
        ),
        (
            "upload_digest",
            Message::UploadDigest(UploadDigest {
                action: 10,
                sha256: [0xd4; 32],
            }),
        ),
    ]
}

/// Variants the samples do not cover, for round-trip tests.
pub fn more_samples() -> Vec<Message<'static>> {
    let result = |outcome| {
        Message::ActionResult(ActionResult {
            action: u64::MAX,
            outcome,
            elapsed_ms: 0,
            stdout_len: 0,
            stderr_len: 0,
        })
    };
    vec![
        result(Outcome::Signaled { signal: 9 }),
        result(Outcome::TimedOut),
        result(Outcome::Cancelled),
        result(Outcome::Completed),
        result(Outcome::Failed {
            error: "checksum mismatch",
        }),
        result(Outcome::Exited { code: i32::MIN }),
        Message::RotateIdentityResponse(RotateIdentityResponse::Failed { error: "" }),
        Message::EnrollResponse(EnrollResponse::Refused {
            reason: "the token has expired",
        }),
        Message::EnrollRequest(EnrollRequest {
            token: "",
            name: None,
            port: 0,
            call_home: false,
            facts: HostFacts {
                hostname: "",
                kernel_name: "",
                kernel_version: "",
                arch: "",
                distribution_name: "",
                distribution_version: "",
                uptime_secs: u64::MAX,
                load_centi: [u32::MAX; 3],
                mem_total_kib: 0,
                mem_available_kib: u64::MAX,
                model: "",
                big_endian: false,
                flash_total_kib: u64::MAX,
                flash_free_kib: 0,
            },
        }),
        Message::ActionOutput(ActionOutput {
            action: 0,
            stream: Stream::Stdout,
            data: b"",
        }),
        Message::GeneralFailure(GeneralFailure { message: "" }),
        Message::FileStat(FileStat {
            action: 0,
            stat: None,
        }),
        Message::FileStat(FileStat {
            action: u64::MAX,
            stat: Some(FileInfo {
                sha256: [0; 32],
                mode: u32::MAX,
                len: u64::MAX,
                uid: u32::MAX,
                gid: u32::MAX,
            }),
        }),
        Message::FetchFile(FetchFile {
            action: 0,
            path: "",
            max_len: 0,
        }),
        Message::FileHeader(FileHeader {
            action: 1,
            len: 0,
            mode: 0,
            sha256: [0xff; 32],
        }),
        Message::RunScript(RunScript {
            action: 0,
            name: "",
            interpreter: "",
            run_as: Credentials::Inherit,
            working_dir: None,
            env: Environment::default(),
            timeout: ScriptTimeout::AgentDefault,
            script_len: 0,
        }),
        Message::RunScript(RunScript {
            action: 9,
            name: "n",
            interpreter: "/usr/bin/python3",
            run_as: Credentials::Ids {
                uid: u32::MAX,
                gid: 0,
            },
            working_dir: Some(""),
            env: Environment::new("A=\0").unwrap(),
            timeout: ScriptTimeout::Unlimited,
            script_len: u64::MAX,
        }),
    ]
}

/// What a decoder produced, owned, so whole streams can be compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A frame, re-encoded to its canonical bytes.
    Frame(Vec<u8>),
    /// Additional data bytes (chunks joined).
    Data(Vec<u8>),
}

/// Encodes a message into a fresh buffer.
pub fn frame(message: &Message<'_>) -> Vec<u8> {
    let mut buf = vec![0xa5; otto_proto::HEADER_LEN + otto_proto::MAX_BODY_LEN];
    let n = otto_proto::encode(message, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// Feeds `pieces` to a decoder and returns what came out, data chunks joined, and the first
/// error, if any.
pub fn decode_pieces<'p>(
    pieces: impl IntoIterator<Item = &'p [u8]>,
) -> (Vec<Decoded>, Option<otto_proto::Error>) {
    let mut decoder = Decoder::<{ otto_proto::MAX_BODY_LEN }>::new();
    let mut out = Vec::new();
    for piece in pieces {
        let mut input = piece;
        while !input.is_empty() {
            let decoded = match decoder.decode(input) {
                Ok(d) => d,
                Err(e) => return (out, Some(e)),
            };
            assert!(
                decoded.consumed > 0 && decoded.consumed <= input.len(),
                "progress on non-empty input"
            );
            match decoded.item {
                Some(Item::Frame(message)) => out.push(Decoded::Frame(frame(&message))),
                Some(Item::Data { chunk, .. }) => match out.last_mut() {
                    Some(Decoded::Data(bytes)) => bytes.extend_from_slice(chunk),
                    _ => out.push(Decoded::Data(chunk.to_vec())),
                },
                None => {}
            }
            input = &input[decoded.consumed..];
        }
    }
    (out, None)
}

/// Feeds `pieces` to a [`FrameReader`] and returns what came out, as [`decode_pieces`] does, and
/// whether the reader ended idle (between frames).
pub fn read_pieces<'p>(
    pieces: impl IntoIterator<Item = &'p [u8]>,
) -> (Vec<Decoded>, Option<otto_proto::Error>, bool) {
    let mut reader = FrameReader::<{ otto_proto::MAX_BODY_LEN }>::new();
    let mut out = Vec::new();
    for piece in pieces {
        loop {
            match reader.next(piece) {
                Ok(None) => break,
                Ok(Some(Item::Frame(message))) => out.push(Decoded::Frame(frame(&message))),
                Ok(Some(Item::Data { chunk, .. })) => {
                    assert!(
                        piece.as_ptr_range().contains(&chunk.as_ptr()),
                        "data is a slice of the chunk"
                    );
                    match out.last_mut() {
                        Some(Decoded::Data(bytes)) => bytes.extend_from_slice(chunk),
                        _ => out.push(Decoded::Data(chunk.to_vec())),
                    }
                }
                Err(e) => return (out, Some(e), false),
            }
        }
        assert_eq!(
            reader.used(),
            0,
            "a chunk is used up once the reader says so"
        );
    }
    let idle = reader.is_idle();
    (out, None, idle)
}
