//! Agents of protocols 7 and 8 under a server of protocol 9: each frame carries the version of
//! its message, so the heartbeat and uploads go on as before (the fleet can still update
//! itself): an upload goes with its checksum first (no `UploadStream`), to an agent of 7
//! without comparing; only a fetch fails on 7, saying why.

use crate::fake_agent::Behaviour;
use crate::harness::{Server, text};

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_of_protocol_7_answers_heartbeats_takes_uploads_and_refuses_only_a_fetch() {
    let server = Server::new();
    let _old = server.fake("f7", Behaviour::Protocol(7)).await;
    let (out, _) = server.bounded(&["ping", "-H", "f7"]).await;
    assert!(out.status.success(), "{}", text(&out));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("motd");
    std::fs::write(&file, "hello\n").unwrap();
    let upload = [
        "upload",
        file.to_str().unwrap(),
        "--path",
        "/tmp/motd",
        "-H",
        "f7",
    ];
    let (out, _) = server.bounded(&upload).await;
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("1 changed, 0 unchanged, 0 failed"), "{said}");

    let into = dir.path().join("fetched");
    let fetch = [
        "fetch",
        "/etc/hostname",
        "-H",
        "f7",
        "--into",
        into.to_str().unwrap(),
    ];
    let (out, _) = server.bounded(&fetch).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("older than fetch (protocol 8): update it"),
        "{said}"
    );
    assert!(!into.join("f7").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_of_protocol_8_takes_an_upload_with_its_checksum_first() {
    let server = Server::new();
    let _old = server.fake("f8", Behaviour::Protocol(8)).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("firmware.bin");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&file, &data).unwrap();
    let upload = [
        "upload",
        file.to_str().unwrap(),
        "--path",
        "/tmp/firmware.bin",
        "-H",
        "f8",
    ];
    // The fake agent checks the bytes against the checksum the `UploadFile` named.
    let (out, _) = server.bounded(&upload).await;
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("1 changed, 0 unchanged, 0 failed"), "{said}");
    assert!(said.contains("3000000 bytes, sha256 verified"), "{said}");
}
