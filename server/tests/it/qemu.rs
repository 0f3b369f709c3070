//! End to end on the router architectures: the host's server library drives the cross-built
//! agents in `dist/` (made by `ci/build-agents.sh`), each running under its QEMU user-mode
//! emulator on loopback. Per architecture: the heartbeat reports the emulated machine, a script's
//! output streams back while it runs, an upload arrives with a matching checksum, a cancel kills
//! the script and its child, and a key rotation takes effect. Each test prints the emulated
//! agent's peak RSS (VmHWM, QEMU's own memory included); the x86_64 build, run natively on an
//! x86_64 machine, gives the reference without an emulator.
//!
//! Without the binaries or the emulators the tests are skipped with a message on stderr; under
//! `OTTO_REQUIRE_TOOLS=1` (ci/cross-check.sh) a missing one is a failure instead
//! ([`tool_missing`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use emulated::{find_in_path, next_output, workspace};
use otto_proto::Stream;
use otto_server::client::{ClientError, Connection, Outcome, new_action_id};
use otto_server::demo::LocalAgent;
use otto_server::keys;
use sha2::{Digest, Sha256};

use crate::emulated;
use crate::harness::tool_missing;

#[tokio::test]
async fn mips_big_endian() {
    end_to_end("mips-unknown-linux-musl", "qemu-mips-static", "mips").await;
}

/// The same checks on the static x86_64 build, run natively on an x86_64 machine: the reference
/// for the peak memory the emulated runs print.
#[tokio::test]
async fn x86_64_native() {
    if std::env::consts::ARCH != "x86_64" {
        let _ = writeln!(std::io::stderr(), "SKIPPED: not an x86_64 machine");
        return;
    }
    end_to_end("x86_64-unknown-linux-musl", "", "x86_64").await;
}

#[tokio::test]
async fn mips_little_endian() {
    end_to_end("mipsel-unknown-linux-musl", "qemu-mipsel-static", "mips").await;
}

#[tokio::test]
async fn armv7() {
    end_to_end(
        "armv7-unknown-linux-musleabihf",
        "qemu-arm-static",
        "armv7l",
    )
    .await;
}

#[tokio::test]
async fn aarch64() {
    end_to_end(
        "aarch64-unknown-linux-musl",
        "qemu-aarch64-static",
        "aarch64",
    )
    .await;
}

/// Where `ci/build-agents.sh` leaves the agent for `target`.
fn dist_binary(target: &str) -> PathBuf {
    workspace()
        .join("dist")
        .join(format!("otto-agent-{target}"))
}

/// A shell wrapper that runs the agent under its emulator (`None`: natively), so `LocalAgent` can
/// start it like a native binary; `exec` keeps the process id (the emulator's) the one
/// `LocalAgent` reports.
fn emulated_agent(dir: &Path, qemu: Option<&Path>, agent: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let wrapper = dir.join("otto-agent");
    let runner = qemu
        .map(|q| format!("'{}' ", q.display()))
        .unwrap_or_default();
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nexec {runner}'{}' \"$@\"\n", agent.display()),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    wrapper
}

/// Whether a process is running (a zombie counts as gone).
fn alive(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty() && !stat.contains(") Z ")
}

/// Runs the checks on `dist/otto-agent-TARGET` under `emulator` ("": natively); the heartbeat
/// must report `arch`.
async fn end_to_end(target: &str, emulator: &str, arch: &str) {
    let agent_path = dist_binary(target);
    if !agent_path.is_file() {
        return tool_missing(
            &format!("no {}", agent_path.display()),
            "build it with ci/build-agents.sh",
        );
    }
    let qemu = if emulator.is_empty() {
        None
    } else {
        let Some(qemu) = find_in_path(emulator) else {
            return tool_missing(
                &format!("no {emulator} in PATH"),
                "ci/install-toolchain.sh installs it (Debian: qemu-user-static)",
            );
        };
        Some(qemu)
    };
    let dir = tempfile::tempdir().unwrap();
    let wrapper = emulated_agent(dir.path(), qemu.as_deref(), &agent_path);
    let device = dir.path().join("device");
    std::fs::create_dir(&device).unwrap();
    let server_key = Arc::new(keys::generate().unwrap());
    let mut agent = LocalAgent::start(&wrapper, &device, server_key.public_key(), "")
        .await
        .unwrap();
    let pid = agent.pid().unwrap();
    let conn = Connection::connect(&agent.dial(server_key.clone()))
        .await
        .unwrap();

    // The heartbeat reports the emulated machine.
    let beat = conn.heartbeat().await.unwrap();
    assert_eq!(
        (beat.facts.arch.as_str(), beat.facts.kernel_name.as_str()),
        (arch, "Linux")
    );
    assert_eq!(beat.agent_version, env!("CARGO_PKG_VERSION"));

    // Output streams back while the script runs: its second line waits for a file the test only
    // makes after it has received the first.
    let go = dir.path().join("go");
    let (run, mut events) = emulated::start(
        &conn,
        format!(
            "echo one; while [ ! -e '{go}' ]; do sleep 0.05; done; echo two >&2; exit 3\n",
            go = go.display()
        ),
        new_action_id(),
    );
    assert_eq!(
        next_output(&mut events).await,
        (Stream::Stdout, b"one\n".to_vec())
    );
    std::fs::write(&go, b"").unwrap();
    assert_eq!(
        next_output(&mut events).await,
        (Stream::Stderr, b"two\n".to_vec())
    );
    let report = run.await.unwrap().unwrap();
    assert_eq!(
        (report.outcome, report.stdout_len, report.stderr_len),
        (Outcome::Exited(3), 4, 4)
    );

    // An upload of 1 MiB arrives whole, its checksum checked by the agent and here.
    let target_file = dir.path().join("uploaded.bin");
    let sha256 = emulated::upload_1mib(&conn, &target_file.to_string_lossy()).await;
    let on_disk = std::fs::read(&target_file).unwrap();
    assert_eq!(<[u8; 32]>::from(Sha256::digest(&on_disk)), sha256);

    // A cancel kills the script and its child.
    let child_pid = dir.path().join("child.pid");
    let action = new_action_id();
    let (run, mut events) = emulated::start(
        &conn,
        format!(
            "sleep 600 & echo $! > '{p}'; echo ready; wait\n",
            p = child_pid.display()
        ),
        action,
    );
    assert_eq!(next_output(&mut events).await.1, b"ready\n");
    let child: i32 = std::fs::read_to_string(&child_pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(child));
    assert!(
        conn.cancel(action).await.unwrap(),
        "the agent had no such action"
    );
    assert_eq!(run.await.unwrap().unwrap().outcome, Outcome::Cancelled);
    for _ in 0..100 {
        if !alive(child) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        !alive(child),
        "the script's child {child} survived the cancel"
    );

    // Key rotation: once the new server key has connected the old one is refused; the agent
    // presents a new key of its own.
    let new_server_key = Arc::new(keys::generate().unwrap());
    let new_agent_key = conn
        .rotate_identity(new_server_key.public_key())
        .await
        .unwrap();
    assert_ne!(new_agent_key.key_data(), agent.agent_key.key_data());
    agent.agent_key = new_agent_key;
    let rotated = Connection::connect(&agent.dial(new_server_key))
        .await
        .unwrap();
    assert_eq!(rotated.heartbeat().await.unwrap().facts.arch, arch);
    assert!(matches!(
        Connection::connect(&agent.dial(server_key)).await,
        Err(ClientError::AuthRejected)
    ));

    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .unwrap_or("VmHWM: unknown");
    if emulator.is_empty() {
        println!("{target} natively: peak RSS {hwm}");
    } else {
        println!("{target} under {emulator}: peak RSS {hwm} (QEMU's own memory included)");
    }
    agent.stop().await;
}
