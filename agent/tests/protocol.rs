//! The agent as an SSH server and protocol peer: heartbeats, who may connect, what channels it
//! accepts, and how it treats malformed and hostile input.

// Helpers outside #[test] functions may unwrap and index too: a failing test stops there.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Agent, Received, connect_offering, new_key};
use otto_proto::{
    GeneralFailure, HEADER_LEN, Header, HeartbeatRequest, Message, MessageType, PROTOCOL_VERSION,
    UploadDigest, profile,
};
use otto_server::client::preferred;
use russh::{Preferred, cipher, kex};

#[tokio::test]
async fn heartbeat_echoes_the_nonce_and_reports_facts() {
    // On the wire: the nonces chosen here, and the channel closed after the answer.
    let agent = Agent::start("");
    let conn = agent.raw().await;
    for nonce in [1u64, u64::MAX] {
        let mut ch = conn.channel().await;
        ch.send(&Message::HeartbeatRequest(HeartbeatRequest {
            server_version: "test",
            nonce,
        }))
        .await;
        let frame = ch.frame().await;
        let Message::HeartbeatResponse(hb) = frame.message() else {
            panic!("{frame:?}")
        };
        assert_eq!(hb.nonce, nonce);
        assert_eq!(hb.agent_version, env!("CARGO_PKG_VERSION"));
        assert_eq!(hb.facts.kernel_name, "Linux");
        assert!(
            hb.facts.arch.starts_with(std::env::consts::ARCH),
            "{}",
            hb.facts.arch
        );
        assert!(!hb.facts.hostname.is_empty());
        assert!(hb.facts.mem_total_kib > 0 && hb.facts.mem_available_kib <= hb.facts.mem_total_kib);
        assert!(
            matches!(ch.recv().await, Received::Closed),
            "the agent closes the channel after answering"
        );
    }
}

/// The server's client offers the profile as `otto_proto::profile` names it; the agent negotiates
/// it, and nothing else: a key exchange or cipher outside it, offered alone, gets no connection.
#[tokio::test]
async fn the_agent_speaks_only_the_otto_ssh_profile() {
    fn strs<N: AsRef<str>>(names: &[N]) -> Vec<&str> {
        names.iter().map(AsRef::as_ref).collect()
    }
    let offered = preferred();
    assert_eq!(strs(&offered.kex), profile::CLIENT_KEX);
    let keys: Vec<&str> = offered.key.iter().map(|k| k.as_str()).collect();
    assert_eq!(keys, [profile::HOST_KEY]);
    assert_eq!(strs(&offered.cipher), [profile::CIPHER]);
    assert_eq!(strs(&offered.mac), [profile::MAC]);
    assert_eq!(strs(&offered.compression), [profile::COMPRESSION]);
    assert!(offered.host_key_certificates.is_empty());

    let agent = Agent::start("");
    let outside = [
        (
            "ecdh-sha2-nistp256",
            Preferred {
                kex: (&[kex::ECDH_SHA2_NISTP256, kex::EXTENSION_SUPPORT_AS_CLIENT][..]).into(),
                ..preferred()
            },
        ),
        (
            "aes256-gcm",
            Preferred {
                cipher: (&[cipher::AES_256_GCM][..]).into(),
                ..preferred()
            },
        ),
    ];
    for (what, offer) in outside {
        let refused =
            connect_offering(agent.addr, &agent.agent_key, &agent.server_key, offer).await;
        assert!(refused.is_err(), "{what} was accepted");
    }
    agent.client().await;
}

#[tokio::test]
async fn a_wrong_client_key_is_refused() {
    let agent = Agent::start("");
    let err = agent
        .client_with(&new_key())
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("refused") || err.contains("auth"), "{err}");
    // The right key still works afterwards.
    agent.client().await;
    assert!(agent.logged("refused key").await, "{:?}", agent.log());
}

#[tokio::test]
async fn an_address_outside_allow_from_is_dropped_before_the_handshake() {
    let agent = Agent::start("allow_from = 10.0.0.0/8, fd00::/8");
    // A plain TCP connection gets no SSH banner: the agent closes it at once.
    let mut stream = tokio::net::TcpStream::connect(agent.addr).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(
        common::PATIENCE,
        tokio::io::AsyncReadExt::read(&mut stream, &mut buf),
    )
    .await
    .expect("closed promptly")
    .unwrap_or(0);
    assert_eq!(n, 0, "got {:?}", String::from_utf8_lossy(&buf[..n]));
    assert!(agent.client_with(&agent.server_key).await.is_err());
    assert!(agent.logged("not in allow_from").await, "{:?}", agent.log());
}

#[tokio::test]
async fn only_the_otto_subsystem_is_served() {
    let agent = Agent::start("");
    let conn = agent.raw().await;
    assert!(conn.channel_for("sftp").await.is_err());
    let channel = conn.handle.channel_open_session().await.unwrap();
    channel.exec(true, "id").await.unwrap();
    let mut channel = channel;
    let mut refused = false;
    while let Ok(Some(msg)) = tokio::time::timeout(common::PATIENCE, channel.wait()).await {
        match msg {
            russh::ChannelMsg::Failure => {
                refused = true;
                break;
            }
            russh::ChannelMsg::Data { .. } | russh::ChannelMsg::Success => {
                panic!("exec was served")
            }
            _ => {}
        }
    }
    assert!(refused);
    assert!(
        conn.handle
            .channel_open_direct_tcpip("127.0.0.1", 22, "127.0.0.1", 1)
            .await
            .is_err()
    );
    // The connection still serves Otto channels.
    conn.channel().await;
}

async fn expect_general_failure(agent: &Agent, bytes: &[u8], contains: &str) {
    let conn = agent.raw().await;
    let mut ch = conn.channel().await;
    ch.send_raw(bytes).await;
    let frames = ch.until_closed().await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    let Message::GeneralFailure(GeneralFailure { message }) = frames[0].message() else {
        panic!("{frames:?}")
    };
    assert!(message.contains(contains), "{message}");
}

#[tokio::test]
async fn bad_frames_get_general_failure_and_the_agent_serves_on() {
    let agent = Agent::start("");
    let header = |version, ty, len| {
        Header {
            version,
            message_type: ty,
            body_len: len,
        }
        .emit()
    };
    expect_general_failure(&agent, &header(5, 2, 0), "unsupported protocol version 5").await;
    expect_general_failure(
        &agent,
        &header(PROTOCOL_VERSION, 99, 0),
        "unknown message type 99",
    )
    .await;
    let mut malformed = header(PROTOCOL_VERSION, MessageType::HeartbeatRequest as u32, 3).to_vec();
    malformed.extend_from_slice(&[9, b'x', b'y']);
    expect_general_failure(&agent, &malformed, "malformed HeartbeatRequest").await;
    // A message only an agent sends.
    let mut keepalive = header(PROTOCOL_VERSION, MessageType::Keepalive as u32, 1).to_vec();
    keepalive.push(1);
    expect_general_failure(&agent, &keepalive, "unexpected Keepalive").await;
    // A streamed upload's checksum with no upload before it.
    let mut digest = [0u8; 64];
    let digest_message = Message::UploadDigest(UploadDigest {
        action: 1,
        sha256: [0; 32],
    });
    let n = otto_proto::encode(&digest_message, &mut digest).unwrap();
    expect_general_failure(&agent, &digest[..n], "unexpected UploadDigest").await;

    // And after all that, a heartbeat still works on a new connection (the client checks that
    // the answer echoes its nonce).
    agent.client().await.heartbeat().await.unwrap();
}

#[tokio::test]
async fn an_oversized_frame_is_refused_without_the_agent_growing() {
    let agent = Agent::start("");
    let conn = agent.raw().await;
    let refuse_oversized = async || {
        let mut ch = conn.channel().await;
        let header = Header {
            version: PROTOCOL_VERSION,
            message_type: MessageType::RunScript as u32,
            body_len: u32::MAX,
        }
        .emit();
        ch.send_raw(&header[..HEADER_LEN]).await;
        let frames = ch.until_closed().await;
        let Message::GeneralFailure(f) = frames[0].message() else {
            panic!("{frames:?}")
        };
        assert!(f.message.contains("exceeds the limit"), "{}", f.message);
    };
    // Warm up (a heartbeat and one refusal: under a QEMU user-mode emulator, VmRSS is the
    // emulator's, which grows as it first translates the code of a path), then measure.
    let mut ch = conn.channel().await;
    ch.send(&Message::HeartbeatRequest(HeartbeatRequest {
        server_version: "t",
        nonce: 1,
    }))
    .await;
    ch.frame().await;
    refuse_oversized().await;
    let before = agent.memory_kib("VmRSS");
    for _ in 0..5 {
        refuse_oversized().await;
    }
    let after = agent.memory_kib("VmRSS");
    assert!(
        after < before + 1024,
        "resident memory grew from {before} to {after} KiB"
    );
}

#[tokio::test]
async fn a_peer_that_stops_mid_frame_is_dropped_after_the_idle_timeout() {
    let agent = Agent::start(""); // idle_timeout = 2 in the test configuration
    let conn = agent.raw().await;
    let mut ch = conn.channel().await;
    let mut buf = [0u8; 64];
    let n = otto_proto::encode(
        &Message::HeartbeatRequest(HeartbeatRequest {
            server_version: "t",
            nonce: 1,
        }),
        &mut buf,
    )
    .unwrap();
    ch.send_raw(&buf[..n - 1]).await;
    let frames = ch.until_closed().await;
    let Message::GeneralFailure(f) = frames[0].message() else {
        panic!("{frames:?}")
    };
    assert!(f.message.contains("stopped sending"), "{}", f.message);
}
