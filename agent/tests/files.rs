//! Uploads and the control requests: reload, rotate identity, exit, reboot, shutdown.

// Helpers outside #[test] functions may unwrap and index too: a failing test stops there.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{Agent, Received, list, new_key};
use otto_proto::{
    Control, Credentials, HeartbeatRequest, Message, ScriptTimeout, UploadDigest, UploadFile,
    UploadStream,
};
use otto_server::client::{ActionReport, ClientError, Connection, Outcome, StreamSpec, UploadSpec};
use sha2::{Digest, Sha256};

fn upload_message(action: u64, path: &str, data_len: u64, sha256: [u8; 32]) -> Message<'_> {
    Message::UploadFile(UploadFile {
        action,
        path,
        owner: Credentials::Inherit,
        mode: 0o640,
        sha256,
        len: data_len,
    })
}

/// Uploads `data` to `path` (mode 0640) with checksum `sha256` through the server's client.
async fn upload(
    conn: &Connection,
    action: u64,
    path: &str,
    data: &[u8],
    sha256: [u8; 32],
) -> ActionReport {
    let spec = UploadSpec {
        path: path.into(),
        owner: Credentials::Inherit,
        mode: 0o640,
        sha256,
        len: data.len() as u64,
    };
    conn.upload(&spec, action, data, |_| {}).await.unwrap()
}

/// The error of a failed outcome.
fn failure(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Failed(error) => error,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_upload_lands_with_its_mode_and_checksum() {
    let agent = Agent::start("");
    let conn = agent.client().await;
    let target = agent.dir.path().join("new/dir/file.bin");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let sha: [u8; 32] = Sha256::digest(&data).into();
    let report = upload(&conn, 1, target.to_str().unwrap(), &data, sha).await;
    assert_eq!(report.outcome, Outcome::Completed);
    assert_landed(&target, &data);
}

/// `target` holds `data` with mode 0640, alone in its directory (no temporary file left).
fn assert_landed(target: &std::path::Path, data: &[u8]) {
    assert_eq!(std::fs::read(target).unwrap(), data);
    assert_eq!(
        std::fs::metadata(target).unwrap().permissions().mode() & 0o777,
        0o640
    );
    assert_eq!(
        list(target.parent().unwrap()),
        [target.file_name().unwrap().to_str().unwrap()]
    );
}

#[tokio::test]
async fn a_bad_checksum_leaves_the_old_file_and_no_temp_file() {
    let agent = Agent::start("");
    let conn = agent.client().await;
    let target = agent.dir.path().join("config");
    std::fs::write(&target, "old").unwrap();
    let report = upload(&conn, 2, target.to_str().unwrap(), b"new", [0; 32]).await;
    let error = failure(&report.outcome);
    assert!(error.contains("checksum mismatch"), "{error}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
    assert_no_temporary_file(&agent);
}

/// Uploads `data` to `path` (mode 0640) as an `UploadStream`, its checksum `sha256` after it.
async fn upload_streamed(
    conn: &Connection,
    path: &str,
    data: &[u8],
    sha256: std::io::Result<[u8; 32]>,
) -> Result<ActionReport, ClientError> {
    let spec = StreamSpec {
        path: path.into(),
        owner: Credentials::Inherit,
        mode: 0o640,
        len: data.len() as u64,
    };
    conn.upload_streamed(&spec, 4, data, async { sha256 }, |_| {})
        .await
}

/// A directory of its own in the agent's, holding the file `name` with the text "old": the
/// directory and the file.
fn old_file(agent: &Agent, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = agent.dir.path().join("target");
    std::fs::create_dir(&dir).unwrap();
    let target = dir.join(name);
    std::fs::write(&target, "old").unwrap();
    (dir, target)
}

/// No named temporary file of an upload is left in the agent's directory.
fn assert_no_temporary_file(agent: &Agent) {
    let left: Vec<String> = list(agent.dir.path())
        .into_iter()
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// The temporary files the agent has open in `dir`, once it has closed them (or after 10 s).
async fn open_files_settled(agent: &Agent, dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    for _ in 0..200 {
        if common::open_files_under(agent.pid(), dir).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    common::open_files_under(agent.pid(), dir)
        .into_iter()
        .map(|(path, _)| path)
        .collect()
}

#[tokio::test]
async fn a_streamed_upload_lands_with_its_checksum_after_the_data_and_a_wrong_one_changes_nothing()
{
    let agent = Agent::start("");
    let conn = agent.client().await;
    let target = agent.dir.path().join("streamed/file.bin");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 13 % 251) as u8).collect();
    let sha: [u8; 32] = Sha256::digest(&data).into();
    let path = target.to_str().unwrap();
    let report = upload_streamed(&conn, path, &data, Ok(sha)).await.unwrap();
    assert_eq!(report.outcome, Outcome::Completed);
    assert_landed(&target, &data);

    let other = vec![1u8; 1000];
    let report = upload_streamed(&conn, path, &other, Ok(sha)).await.unwrap();
    let error = failure(&report.outcome);
    assert!(error.contains("checksum mismatch"), "{error}");
    assert_landed(&target, &data);
}

#[tokio::test]
async fn a_streamed_upload_whose_checksum_cannot_be_given_leaves_the_old_file() {
    // The server could not work out the checksum (its file changed): it sends none and drops
    // the channel; the agent keeps nothing and serves on.
    let agent = Agent::start("");
    let conn = agent.client().await;
    let (dir, target) = old_file(&agent, "motd");
    let changed = std::io::Error::other("the file changed while it was sent");
    let sent = upload_streamed(&conn, target.to_str().unwrap(), b"new text", Err(changed)).await;
    assert!(
        matches!(&sent, Err(ClientError::Io(e)) if e.to_string().contains("changed")),
        "{sent:?}"
    );
    assert!(open_files_settled(&agent, &dir).await.is_empty());
    assert_eq!(list(&dir), ["motd"]);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
    conn.heartbeat().await.unwrap();
}

#[tokio::test]
async fn a_streamed_upload_followed_by_anything_but_its_digest_fails() {
    let agent = Agent::start("");
    let conn = agent.raw().await;
    let target = agent.dir.path().join("config");
    std::fs::write(&target, "old").unwrap();
    let data = b"new config";
    let sha: [u8; 32] = Sha256::digest(data).into();
    let heartbeat = Message::HeartbeatRequest(HeartbeatRequest {
        server_version: "test",
        nonce: 1,
    });
    let digest_of_another = Message::UploadDigest(UploadDigest {
        action: 99,
        sha256: sha,
    });
    for after in [heartbeat, digest_of_another] {
        let mut ch = conn.channel().await;
        ch.send(&Message::UploadStream(UploadStream {
            action: 5,
            path: target.to_str().unwrap(),
            owner: Credentials::Inherit,
            mode: 0o600,
            len: data.len() as u64,
        }))
        .await;
        assert!(matches!(
            ch.frame().await.message(),
            Message::ReadyForData(_)
        ));
        ch.send_raw(data).await;
        ch.send(&after).await;
        let answer = ch.frame().await;
        let Message::ActionResult(result) = answer.message() else {
            panic!("no result")
        };
        assert_eq!(result.action, 5);
        assert!(
            format!("{:?}", result.outcome).contains("the file's checksum did not follow its data"),
            "{:?}",
            result.outcome
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
    }
    assert_no_temporary_file(&agent);
}

#[tokio::test]
async fn an_upload_cut_off_midway_leaves_the_old_file_and_no_temp_file() {
    let agent = Agent::start("");
    let conn = agent.raw().await;
    let (dir, target) = old_file(&agent, "firmware.bin");
    let data = vec![7u8; 200_000];
    let sha: [u8; 32] = Sha256::digest(&data).into();
    // Half a request's data, then gone: on the wire.
    let mut ch = conn.channel().await;
    ch.send(&upload_message(
        3,
        target.to_str().unwrap(),
        data.len() as u64,
        sha,
    ))
    .await;
    assert!(matches!(
        ch.frame().await.message(),
        Message::ReadyForData(_)
    ));
    ch.send_raw(&data[..100_000]).await;
    // Wait until the agent has written part of the data, then vanish.
    let writing = || {
        common::open_files_under(agent.pid(), &dir)
            .iter()
            .any(|(_, size)| *size > 0)
    };
    for _ in 0..100 {
        if writing() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(writing(), "a temporary file in the target's directory");
    drop(ch);
    drop(conn);
    assert!(open_files_settled(&agent, &dir).await.is_empty());
    assert_eq!(list(&dir), ["firmware.bin"]);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
}

#[tokio::test]
async fn uploads_to_relative_paths_or_directories_are_refused_before_the_data() {
    let agent = Agent::start("");
    let conn = agent.client().await;
    for path in [
        "relative/file",
        "/tmp/../etc/passwd",
        agent.dir.path().to_str().unwrap(),
    ] {
        // A source with no data at all: had the agent asked for the data, the client would
        // have failed reading it.
        let spec = UploadSpec {
            path: path.into(),
            owner: Credentials::Inherit,
            mode: 0o640,
            sha256: [0; 32],
            len: 1,
        };
        let report = conn.upload(&spec, 4, &b""[..], |_| {}).await;
        assert!(
            matches!(&report, Ok(r) if matches!(r.outcome, Outcome::Failed(_))),
            "{path}: {report:?}"
        );
    }
}

#[tokio::test]
async fn reload_applies_a_good_config_and_refuses_a_broken_one() {
    let agent = Agent::start("path = /bin");
    let conn = agent.client().await;
    let text = std::fs::read_to_string(&agent.config_path).unwrap();
    std::fs::write(
        &agent.config_path,
        text.replace("path = /bin", "path = /usr/bin:/bin"),
    )
    .unwrap();
    let report = conn.control(Control::Reload).await.unwrap();
    assert_eq!(report.outcome, Outcome::Completed);
    let run = common::run(
        &conn,
        2,
        &common::script("echo $PATH\n", &[], ScriptTimeout::AgentDefault),
    )
    .await;
    assert_eq!(run.stdout, b"/usr/bin:/bin\n");

    std::fs::write(&agent.config_path, format!("{text}\nbogus = 1\n")).unwrap();
    let report = conn.control(Control::Reload).await.unwrap();
    let error = failure(&report.outcome);
    assert!(
        error.contains("unknown setting `bogus`") && error.contains("line"),
        "{error}"
    );
}

/// SIGHUP does what the Reload request does: a good configuration is put in force, a broken
/// one is refused and the old one kept; the agent runs on. SIGTERM still stops it with 0.
#[tokio::test]
async fn sighup_reloads_the_config_and_sigterm_stops_the_agent() {
    let mut agent = Agent::start("path = /bin");
    let conn = agent.client().await;
    let text = std::fs::read_to_string(&agent.config_path).unwrap();
    std::fs::write(
        &agent.config_path,
        text.replace("path = /bin", "path = /usr/bin:/bin"),
    )
    .unwrap();
    agent.signal(libc::SIGHUP);
    assert!(
        agent.logged("configuration reloaded").await,
        "{:?}",
        agent.log()
    );
    let echo_path = common::script("echo $PATH\n", &[], ScriptTimeout::AgentDefault);
    assert_eq!(
        common::run(&conn, 2, &echo_path).await.stdout,
        b"/usr/bin:/bin\n"
    );

    std::fs::write(&agent.config_path, format!("{text}\nbogus = 1\n")).unwrap();
    agent.signal(libc::SIGHUP);
    assert!(agent.logged("reload refused").await, "{:?}", agent.log());
    assert!(agent.alive(), "{:?}", agent.log());
    assert_eq!(
        common::run(&conn, 3, &echo_path).await.stdout,
        b"/usr/bin:/bin\n"
    );
    // New connections are served too.
    agent.client().await.heartbeat().await.unwrap();

    agent.signal(libc::SIGTERM);
    assert_eq!(agent.wait_exit(), Some(0), "{:?}", agent.log());
}

#[test]
fn sigint_stops_the_agent_with_0() {
    let mut agent = Agent::start("");
    agent.signal(libc::SIGINT);
    assert_eq!(agent.wait_exit(), Some(0), "{:?}", agent.log());
}

#[tokio::test]
async fn rotation_switches_both_keys_and_the_old_server_key_stops_working() {
    let agent = Agent::start("");
    let conn = agent.client().await;
    let new_server = new_key();
    let new_agent_key = conn.rotate_identity(new_server.public_key()).await.unwrap();
    assert_ne!(new_agent_key.key_data(), agent.agent_key.key_data());
    // The connection it was asked on keeps working.
    conn.heartbeat().await.unwrap();
    // New connections: the new server key works with the new host key; once it has, the old
    // server key is refused.
    assert!(
        common::dial(agent.addr, &agent.agent_key, &new_server)
            .await
            .is_err(),
        "old host key still served"
    );
    common::dial(agent.addr, &new_agent_key, &new_server)
        .await
        .unwrap();
    assert!(
        common::dial(agent.addr, &new_agent_key, &agent.server_key)
            .await
            .is_err()
    );
    // Both are on disk: `pubkey` prints the new agent key, the config trusts the new server key.
    let (_, out, _) =
        common::agent_cli(&["--config", agent.config_path.to_str().unwrap(), "pubkey"]);
    assert_eq!(
        russh::keys::PublicKey::from_openssh(out.trim())
            .unwrap()
            .key_data(),
        new_agent_key.key_data()
    );
    let config = std::fs::read_to_string(&agent.config_path).unwrap();
    assert!(config.contains(&new_server.public_key().to_openssh().unwrap()));
}

#[tokio::test]
async fn exit_answers_then_exits_for_a_restart() {
    // On the wire: the agent closes the channel after its answer.
    let mut agent = Agent::start("");
    let conn = agent.raw().await;
    let mut ch = conn.channel().await;
    ch.send(&Message::ExitAgent(otto_proto::ActionRef { action: 9 }))
        .await;
    let result = ch.frame().await;
    assert!(
        matches!(result.message(), Message::ActionResult(r) if r.outcome == otto_proto::Outcome::Completed),
        "{result:?}"
    );
    assert!(matches!(ch.recv().await, Received::Closed));
    assert_eq!(agent.wait_exit(), Some(75));
}

#[tokio::test]
async fn reboot_and_shutdown_run_their_configured_commands() {
    let marker = tempfile::tempdir().unwrap();
    let reboot = marker.path().join("rebooted");
    let shutdown = marker.path().join("shut-down");
    let agent = Agent::start(&format!(
        "reboot_command = /usr/bin/touch {}\nshutdown_command = /usr/bin/touch {}",
        reboot.display(),
        shutdown.display()
    ));
    let conn = agent.client().await;
    for (request, file) in [(Control::Reboot, &reboot), (Control::Shutdown, &shutdown)] {
        let report = conn.control(request).await.unwrap();
        assert_eq!(report.outcome, Outcome::Completed);
        for _ in 0..100 {
            if file.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(file.exists(), "{} not run", file.display());
    }
}

#[test]
fn the_agent_refuses_a_key_file_others_can_read_and_a_config_without_server_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.conf");
    let key = dir.path().join("agent.key");
    std::fs::write(&config, format!("key = {}\n", key.display())).unwrap();
    let c = config.to_str().unwrap();
    let (status, _, err) = common::agent_cli(&["--config", c, "run"]);
    assert_eq!(status.code(), Some(78));
    assert!(err.contains("no server key is trusted"), "{err}");

    let (status, out, _) = common::agent_cli(&["--config", c, "pubkey"]);
    assert!(status.success() && out.starts_with("ssh-ed25519 "));
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let server = new_key().public_key().to_openssh().unwrap();
    assert!(
        common::agent_cli(&["--config", c, "trust", &server])
            .0
            .success()
    );
    let (status, _, err) = common::agent_cli(&["--config", c, "run"]);
    assert_eq!(status.code(), Some(78));
    assert!(err.contains("mode 644"), "{err}");

    let (status, _, _) = common::agent_cli(&["--config", c, "trust", "ssh-rsa AAAA"]);
    assert_eq!(status.code(), Some(64));

    std::fs::write(&config, "listen = 1.2.3\n").unwrap();
    let (status, _, err) = common::agent_cli(&["--config", c, "run"]);
    assert_eq!(status.code(), Some(78));
    assert!(err.contains("line 1"), "{err}");
}

#[test]
fn the_agent_exits_with_1_naming_the_address_when_its_port_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.conf");
    let server = new_key().public_key().to_openssh().unwrap();
    std::fs::write(
        &config,
        format!(
            "listen = {address}\nkey = {}\nserver_key = {server}\n",
            dir.path().join("agent.key").display()
        ),
    )
    .unwrap();
    let mut agent = common::agent_command()
        .args(["--config", config.to_str().unwrap(), "run"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: an agent that listened after all is killed, and the test fails.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = agent.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            agent.kill().unwrap();
            agent.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut agent.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{err}");
    assert!(
        err.contains(&format!("cannot listen on {address}: ")),
        "{err}"
    );
    drop(taken);
}
