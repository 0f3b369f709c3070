//! Shared by the tests that drive agents under QEMU: `qemu.rs` (user-mode emulation) and
//! `qemu_system.rs` (a whole emulated device).

use std::path::{Path, PathBuf};

use otto_proto::{ActionId, Credentials, ScriptTimeout, Stream};
use otto_server::client::{
    ActionReport, ClientError, Connection, Outcome, ScriptEvent, ScriptRequest, UploadSpec,
    new_action_id,
};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The workspace's root directory.
pub fn workspace() -> PathBuf {
    let server = Path::new(env!("CARGO_MANIFEST_DIR"));
    server.parent().unwrap_or(server).to_path_buf()
}

/// A program's path, looked up in `PATH`.
pub fn find_in_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// A `/bin/sh` script with no limit on its run time.
fn shell(body: String) -> ScriptRequest {
    ScriptRequest {
        name: "e2e".into(),
        interpreter: "/bin/sh".into(),
        body: body.into_bytes(),
        env: Vec::new(),
        run_as: Credentials::Inherit,
        working_dir: None,
        timeout: ScriptTimeout::Unlimited,
    }
}

/// Starts a `/bin/sh` script as action `action`: its report when it ends, and its events as
/// they arrive.
pub fn start(
    conn: &Connection,
    body: String,
    action: ActionId,
) -> (
    JoinHandle<Result<ActionReport, ClientError>>,
    mpsc::Receiver<ScriptEvent>,
) {
    let (tx, events) = mpsc::channel(16);
    let conn = conn.clone();
    let script = shell(body);
    let run = tokio::spawn(async move { conn.run_script(&script, action, tx).await });
    (run, events)
}

/// Waits for the next output event, skipping keepalives.
pub async fn next_output(events: &mut mpsc::Receiver<ScriptEvent>) -> (Stream, Vec<u8>) {
    loop {
        match events.recv().await {
            Some(ScriptEvent::Output { stream, data }) => return (stream, data),
            Some(ScriptEvent::Keepalive) => {}
            None => panic!("the script ended before its next output"),
        }
    }
}

/// Uploads 1 MiB of varied bytes to `path` on the agent (mode 0640), which must report it
/// complete with a matching checksum; returns the bytes' SHA-256 for the test's own check.
pub async fn upload_1mib(conn: &Connection, path: &str) -> [u8; 32] {
    let content: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let sha256: [u8; 32] = Sha256::digest(&content).into();
    let spec = UploadSpec {
        path: path.into(),
        owner: Credentials::Inherit,
        mode: 0o640,
        sha256,
        len: content.len() as u64,
    };
    let report = conn
        .upload(&spec, new_action_id(), &content[..], |_| {})
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Completed);
    sha256
}
