//! The agent updating itself (`UpdateAgent`): the checks before anything is replaced, the swap,
//! the trial with its watchdog, and the way back. Each test runs a copy of the agent binary in
//! its own directory, since an update replaces it. The tests that need the agent to restart
//! itself (an `exec` of the new binary) skip themselves under an emulator (`OTTO_AGENT_RUNNER`):
//! without binfmt_misc, the host cannot run the target's binary directly.

// Helpers outside #[test] functions may unwrap and index too: a failing test stops there.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Agent, PATIENCE, dial, list};
use otto_proto::{AGENT_VERSION_TAG, Message, UpdateAgent};
use otto_server::client::{ActionReport, Outcome};
use sha2::{Digest, Sha256};

/// "Another build" of the agent: `binary` with its version bytes (after the tag, to the NUL)
/// rewritten to another version of the same length; returns it and that version.
fn other_build(binary: &[u8]) -> (Vec<u8>, String) {
    let tag = AGENT_VERSION_TAG.as_bytes();
    let starts: Vec<usize> = binary
        .windows(tag.len())
        .enumerate()
        .filter(|(_, w)| *w == tag)
        .map(|(i, _)| i + tag.len())
        .collect();
    assert_eq!(starts.len(), 1, "the version tag is in the binary once");
    let start = starts[0];
    let len = binary[start..].iter().position(|&b| b == 0).unwrap();
    let version = std::str::from_utf8(&binary[start..start + len]).unwrap();
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    let last = if version.ends_with('9') { "8" } else { "9" };
    let other = format!("{}{last}", &version[..len - 1]);
    let mut copy = binary.to_vec();
    copy[start..start + len].copy_from_slice(other.as_bytes());
    (copy, other)
}

/// Sends `data` as the agent's new binary through the server's client.
async fn update(agent: &Agent, data: &[u8], sha256: [u8; 32], confirm_secs: u32) -> ActionReport {
    let request = UpdateAgent {
        action: 7,
        sha256,
        len: data.len() as u64,
        confirm_secs,
    };
    let conn = agent.client().await;
    conn.update_agent(&request, data, |_| {}).await.unwrap()
}

fn sha(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// The error of a failed outcome.
fn failure(report: &ActionReport) -> &str {
    match &report.outcome {
        Outcome::Failed(error) => error,
        other => panic!("{other:?}"),
    }
}

/// The `n`th address (from 0) the agent and the agents it restarted into listened on.
async fn listening(agent: &Agent, n: usize) -> SocketAddr {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        if let Some(addr) = agent.listened().get(n) {
            return *addr;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no agent listened a {}th time: {:?}", n + 1, agent.log());
}

/// The address an agent listened on after the agent logged `text`.
async fn listening_after(agent: &Agent, text: &str) -> SocketAddr {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        let log = agent.log();
        let after = log.iter().skip_while(|l| !l.contains(text)).skip(1);
        let addr = after
            .filter_map(|l| {
                l.split("listening on ")
                    .nth(1)?
                    .split(',')
                    .next()?
                    .parse()
                    .ok()
            })
            .next();
        if let Some(addr) = addr {
            return addr;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no agent listened after `{text}`: {:?}", agent.log());
}

/// The version the agent listening on `addr` reports in a heartbeat.
async fn version_at(agent: &Agent, addr: SocketAddr) -> String {
    let conn = dial(addr, &agent.agent_key, &agent.server_key)
        .await
        .unwrap();
    conn.heartbeat().await.unwrap().agent_version
}

/// `P.previous` and `P.trial` of the binary `exe`.
fn beside(exe: &Path) -> (PathBuf, PathBuf) {
    let with = |suffix: &str| PathBuf::from(format!("{}{suffix}", exe.display()));
    (with(".previous"), with(".trial"))
}

/// Whether the test must skip itself (it needs the agent to exec a new binary); says why.
fn needs_exec() -> bool {
    if common::emulated() {
        eprintln!(
            "skipped: the agent's restart execs a binary for the target, which needs binfmt_misc under an emulator"
        );
    }
    common::emulated()
}

/// Whether `agent`'s process (the one the test started) runs `exe`.
fn runs(agent: &mut Agent, exe: &Path) -> bool {
    agent.alive() && std::fs::read_link(format!("/proc/{}/exe", agent.pid())).unwrap() == exe
}

#[tokio::test]
async fn an_update_restarts_into_the_new_binary_under_the_same_pid() {
    if needs_exec() {
        return;
    }
    let mut agent = Agent::start_copy("");
    let exe = agent.exe.clone().unwrap();
    let (previous, trial) = beside(&exe);
    let old = std::fs::read(&exe).unwrap();
    let (new, version) = other_build(&old);
    let report = update(&agent, &new, sha(&new), 30).await;
    assert_eq!(report.outcome, Outcome::Completed, "{:?}", agent.log());
    // On trial: the new binary is in place, the old one kept, the trial file there until the
    // new agent has answered a heartbeat.
    let on_trial = listening(&agent, 1).await;
    assert_eq!(std::fs::read(&exe).unwrap(), new);
    assert_eq!(std::fs::read(&previous).unwrap(), old);
    assert_eq!(std::fs::read_to_string(&trial).unwrap(), "30\n");
    // An agent on trial takes no update of its own.
    let trial_conn = dial(on_trial, &agent.agent_key, &agent.server_key)
        .await
        .unwrap();
    let request = UpdateAgent {
        action: 8,
        sha256: sha(&old),
        len: old.len() as u64,
        confirm_secs: 30,
    };
    let report = trial_conn
        .update_agent(&request, &b""[..], |_| {})
        .await
        .unwrap();
    assert_eq!(
        failure(&report),
        "another update is in progress or on trial"
    );
    assert!(trial.exists(), "an update request confirms nothing");
    assert_eq!(version_at(&agent, on_trial).await, version);
    // Confirmed: the watchdog execs the new binary; it serves under the PID the test started.
    let addr = listening(&agent, 2).await;
    assert_eq!(version_at(&agent, addr).await, version);
    assert!(!trial.exists());
    assert_eq!(std::fs::read(&previous).unwrap(), old);
    assert!(runs(&mut agent, &exe));
    assert_eq!(
        list(exe.parent().unwrap()),
        ["otto-agent", "otto-agent.previous"]
    );
    for step in [
        "swapped in",
        "trial started",
        "update confirmed",
        "confirmed; restarting",
    ] {
        assert!(agent.logged(step).await, "{step}: {:?}", agent.log());
    }
}

/// Updates `agent` (a copy) to `new`, with 10 s to confirm, and checks that it comes back on the
/// old binary by itself, its log saying `why`.
async fn rolls_back(new: &[u8], why: &str) {
    let mut agent = Agent::start_copy("");
    let exe = agent.exe.clone().unwrap();
    let (previous, trial) = beside(&exe);
    let old = std::fs::read(&exe).unwrap();
    let report = update(&agent, new, sha(new), 10).await;
    assert_eq!(report.outcome, Outcome::Completed, "{:?}", agent.log());
    let addr = listening_after(&agent, "rolled back to the previous agent binary").await;
    assert_eq!(version_at(&agent, addr).await, env!("CARGO_PKG_VERSION"));
    assert_eq!(std::fs::read(&exe).unwrap(), old);
    assert!(!trial.exists() && !previous.exists());
    assert!(runs(&mut agent, &exe));
    assert!(agent.logged(why).await, "{why}: {:?}", agent.log());
}

#[tokio::test]
async fn a_broken_binary_is_rolled_back_by_the_device_itself() {
    if needs_exec() {
        return;
    }
    // A valid ELF header for this machine, then garbage.
    let old = std::fs::read(env!("CARGO_BIN_EXE_otto-agent")).unwrap();
    let mut broken = old[..64].to_vec();
    broken.extend((0..100_000u32).map(|i| (i * 31 % 251) as u8));
    rolls_back(&broken, "rolling back the update: the new agent").await;
}

#[tokio::test]
async fn a_new_binary_that_exits_is_rolled_back() {
    if needs_exec() {
        return;
    }
    // An executable for this machine that exits 1 whatever its arguments.
    let exits = std::fs::read("/bin/false").unwrap();
    rolls_back(&exits, "the new agent exited with code 1").await;
}

#[tokio::test]
async fn a_new_agent_not_confirmed_in_time_is_rolled_back() {
    if needs_exec() {
        return;
    }
    // It runs and listens, but no server asks it for a heartbeat within its 10 s.
    let old = std::fs::read(env!("CARGO_BIN_EXE_otto-agent")).unwrap();
    let (new, _) = other_build(&old);
    rolls_back(&new, "the new agent was not confirmed within 10 s").await;
}

#[tokio::test]
async fn a_start_after_a_cut_short_trial_rolls_back() {
    if needs_exec() {
        return;
    }
    let mut agent = Agent::start_copy("");
    let exe = agent.exe.clone().unwrap();
    let (previous, trial) = beside(&exe);
    // As a power cut in a trial leaves it: the new binary in place, the previous one beside it,
    // the trial file. Here the "previous" one is another build, to tell them apart.
    agent.kill();
    let (other, version) = other_build(&std::fs::read(&exe).unwrap());
    std::fs::write(&previous, &other).unwrap();
    std::fs::set_permissions(&previous, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(&trial, "60\n").unwrap();
    agent.restart();
    assert_eq!(version_at(&agent, agent.addr).await, version);
    assert_eq!(std::fs::read(&exe).unwrap(), other);
    assert!(!trial.exists() && !previous.exists());
    assert!(runs(&mut agent, &exe));
    assert!(agent.logged("trial was cut short").await);
}

/// Asserts that nothing was replaced: the copy is the only file beside itself, unchanged, and
/// the agent answers with its version.
async fn nothing_replaced(agent: &Agent, old: &[u8]) {
    let exe = agent.exe.clone().unwrap();
    assert_eq!(list(exe.parent().unwrap()), ["otto-agent"]);
    assert!(std::fs::read(&exe).unwrap() == old);
    let version = agent
        .client()
        .await
        .heartbeat()
        .await
        .unwrap()
        .agent_version;
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn binaries_for_another_machine_are_refused_with_both_named() {
    let agent = Agent::start_copy("");
    let old = std::fs::read(agent.exe.as_ref().unwrap()).unwrap();
    let big_endian = old[5] == 2;
    let half = |v: u16| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    // Another machine: mips, or x86_64 for a mips agent.
    let e_machine = [old[18], old[19]];
    let own = if big_endian {
        u16::from_be_bytes(e_machine)
    } else {
        u16::from_le_bytes(e_machine)
    };
    let (machine, name) = if own == 8 {
        (62, "x86_64")
    } else {
        (8, "mips")
    };
    let mut other = old[..4096].to_vec();
    other[18..20].copy_from_slice(&half(machine));
    let report = update(&agent, &other, sha(&other), 30).await;
    let error = failure(&report);
    assert!(error.starts_with("an ELF for "), "{error}");
    assert!(
        error.contains(&format!(" is needed; this is for {name} (")),
        "{error}"
    );
    // The other byte order.
    let mut flipped = old[..4096].to_vec();
    flipped[5] = 3 - flipped[5];
    let report = update(&agent, &flipped, sha(&flipped), 30).await;
    let error = failure(&report);
    let order = if big_endian { "little" } else { "big" };
    let bits = if old[4] == 2 { 64 } else { 32 };
    assert!(error.contains("; this is for "), "{error}");
    assert!(
        error.ends_with(&format!("({order}-endian, {bits}-bit)")),
        "{error}"
    );
    // No ELF at all.
    let script = b"#!/bin/sh\nexit 0\n";
    let report = update(&agent, script, sha(script), 30).await;
    assert!(
        failure(&report).starts_with("not an ELF executable"),
        "{report:?}"
    );
    nothing_replaced(&agent, &old).await;
    assert!(agent.logged("update refused: an ELF for").await);
}

#[tokio::test]
async fn a_wrong_checksum_is_refused() {
    let agent = Agent::start_copy("");
    let old = std::fs::read(agent.exe.as_ref().unwrap()).unwrap();
    let data = &old[..200_000];
    let report = update(&agent, data, [0; 32], 30).await;
    assert!(
        failure(&report).starts_with(&format!("checksum mismatch: expected {}", "00".repeat(32))),
        "{report:?}"
    );
    nothing_replaced(&agent, &old).await;
}

#[tokio::test]
async fn impossible_requests_are_refused_before_the_data() {
    let agent = Agent::start_copy("");
    let old = std::fs::read(agent.exe.as_ref().unwrap()).unwrap();
    let conn = agent.client().await;
    for (len, confirm_secs, error) in [
        (
            64 << 20 | 1,
            30,
            "an agent binary of 67108865 bytes: it must be 1 to 67108864 bytes",
        ),
        (
            0,
            30,
            "an agent binary of 0 bytes: it must be 1 to 67108864 bytes",
        ),
        (
            1000,
            9,
            "9 s to confirm the new agent: it must be 10 to 3600 s",
        ),
        (
            1000,
            3601,
            "3601 s to confirm the new agent: it must be 10 to 3600 s",
        ),
    ] {
        let request = UpdateAgent {
            action: 3,
            sha256: [0; 32],
            len,
            confirm_secs,
        };
        // No data is sent: the client stops at the answer that comes instead of ReadyForData.
        let report = conn.update_agent(&request, &b""[..], |_| {}).await.unwrap();
        assert_eq!(failure(&report), error);
    }
    nothing_replaced(&agent, &old).await;
}

/// Unmounts a file system (lazily) when dropped.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test]
async fn an_update_larger_than_the_free_space_is_refused_before_the_data() {
    // The copy on a file system with about 1 MiB free.
    let size = std::fs::metadata(env!("CARGO_BIN_EXE_otto-agent"))
        .unwrap()
        .len()
        + (1 << 20);
    let mounted = std::cell::Cell::new(false);
    let agent = Agent::start_copy_with("", |bin| {
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(bin)
            .status();
        mounted.set(status.is_ok_and(|s| s.success()));
    });
    if !mounted.get() {
        eprintln!("skipped: mounting a tmpfs needs root (CAP_SYS_ADMIN)");
        return;
    }
    let exe = agent.exe.clone().unwrap();
    let _unmount = Mounted(exe.parent().unwrap().to_path_buf());
    let old = std::fs::read(&exe).unwrap();
    let request = UpdateAgent {
        action: 4,
        sha256: [0; 32],
        len: 8 << 20,
        confirm_secs: 30,
    };
    let conn = agent.client().await;
    let report = conn.update_agent(&request, &b""[..], |_| {}).await.unwrap();
    let error = failure(&report);
    let prefix = format!("not enough room in {}: ", exe.parent().unwrap().display());
    assert!(error.starts_with(&prefix), "{error}");
    assert!(error.ends_with(" KiB free, 8192 KiB needed"), "{error}");
    nothing_replaced(&agent, &old).await;
}

#[tokio::test]
async fn an_interrupted_transfer_leaves_the_old_binary_and_no_temporary_file() {
    let agent = Agent::start_copy("");
    let exe = agent.exe.clone().unwrap();
    let bin = exe.parent().unwrap().to_path_buf();
    let old = std::fs::read(&exe).unwrap();
    // Its first 4 MiB stand for the new binary (never sent whole): a debug build under QEMU is
    // larger than the agent takes.
    let new = other_build(&old).0[..4 << 20].to_vec();
    let conn = agent.raw().await;
    let mut ch = conn.channel().await;
    ch.send(&Message::UpdateAgent(UpdateAgent {
        action: 5,
        sha256: sha(&new),
        len: new.len() as u64,
        confirm_secs: 30,
    }))
    .await;
    assert!(matches!(
        ch.frame().await.message(),
        Message::ReadyForData(_)
    ));
    ch.send_raw(&new[..1_000_000]).await;
    // Wait until the agent has written part of the data, then vanish.
    let writing = || {
        common::open_files_under(agent.pid(), &bin)
            .iter()
            .any(|(_, size)| *size > 0)
    };
    for _ in 0..100 {
        if writing() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(writing(), "a temporary file beside the binary");
    // One update at a time.
    let report = update(&agent, b"x", sha(b"x"), 30).await;
    assert_eq!(
        failure(&report),
        "another update is in progress or on trial"
    );
    drop(ch);
    drop(conn);
    for _ in 0..200 {
        if common::open_files_under(agent.pid(), &bin).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(common::open_files_under(agent.pid(), &bin).is_empty());
    nothing_replaced(&agent, &old).await;
    // And the next update is not refused as "another update in progress".
    let report = update(&agent, b"x", [0; 32], 30).await;
    assert!(
        failure(&report).starts_with("checksum mismatch"),
        "{report:?}"
    );
}

#[tokio::test]
async fn a_cancelled_transfer_leaves_the_old_binary_and_no_temporary_file() {
    let agent = Agent::start_copy("");
    let exe = agent.exe.clone().unwrap();
    let old = std::fs::read(&exe).unwrap();
    // As above: 4 MiB stand for the new binary, never sent whole.
    let new = other_build(&old).0[..4 << 20].to_vec();
    let conn = agent.raw().await;
    let mut ch = conn.channel().await;
    ch.send(&Message::UpdateAgent(UpdateAgent {
        action: 6,
        sha256: sha(&new),
        len: new.len() as u64,
        confirm_secs: 30,
    }))
    .await;
    assert!(matches!(
        ch.frame().await.message(),
        Message::ReadyForData(_)
    ));
    ch.send_raw(&new[..500_000]).await;
    assert!(agent.client().await.cancel(6).await.unwrap());
    let frame = ch.frame().await;
    let Message::ActionResult(result) = frame.message() else {
        panic!("{frame:?}")
    };
    assert_eq!(result.outcome, otto_proto::Outcome::Cancelled);
    drop(ch);
    drop(conn);
    assert!(agent.logged("update cancelled; nothing replaced").await);
    nothing_replaced(&agent, &old).await;
}
