//! Nothing of the agent's outlives a crash: an upload or a script cut off by SIGKILL leaves no
//! temporary file behind, neither at once nor after the agent has started again.

// Helpers outside #[test] functions may unwrap and index too: a failing test stops there.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Agent, PATIENCE, list, open_files_under};
use otto_proto::{Credentials, Message, ScriptTimeout, UploadFile};
use otto_server::client::ScriptEvent;
use sha2::{Digest, Sha256};

/// Waits until the agent holds a file under `dir` open with at least `bytes` in it.
async fn wait_for_open_file(agent: &Agent, dir: &Path, bytes: u64) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        if open_files_under(agent.pid(), dir)
            .iter()
            .any(|(_, size)| *size >= bytes)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "the agent never held a file of {bytes} bytes under {}: {:?}",
        dir.display(),
        open_files_under(agent.pid(), dir)
    );
}

#[tokio::test]
async fn an_upload_cut_off_by_sigkill_leaves_nothing_behind() {
    let mut agent = Agent::start("");
    let temp_dir = agent.dir.path().join("tmp");
    let dir = agent.dir.path().join("target");
    std::fs::create_dir(&dir).unwrap();
    let target = dir.join("firmware.bin");
    std::fs::write(&target, "old").unwrap();
    let data = vec![7u8; 8 << 20];
    let sha: [u8; 32] = Sha256::digest(&data).into();
    // Part of the data, then the agent dies: on the wire.
    let conn = agent.raw().await;
    let mut ch = conn.channel().await;
    ch.send(&Message::UploadFile(UploadFile {
        action: 1,
        path: target.to_str().unwrap(),
        owner: Credentials::Inherit,
        mode: 0o644,
        sha256: sha,
        len: data.len() as u64,
    }))
    .await;
    assert!(matches!(
        ch.frame().await.message(),
        Message::ReadyForData(_)
    ));
    ch.send_raw(&data[..1 << 20]).await;
    // The agent is writing the file when it dies.
    wait_for_open_file(&agent, &dir, 256 << 10).await;
    agent.kill();
    assert_eq!(list(&dir), ["firmware.bin"]);
    assert_eq!(list(&temp_dir), Vec::<String>::new());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
    drop(ch);
    drop(conn);

    agent.restart();
    agent.client().await;
    assert_eq!(list(&dir), ["firmware.bin"]);
    assert_eq!(list(&temp_dir), Vec::<String>::new());
}

#[tokio::test]
async fn a_script_killed_with_the_agent_leaves_nothing_behind() {
    let mut agent = Agent::start("");
    let temp_dir = agent.dir.path().join("tmp");
    let conn = agent.client().await;
    // The script prints its process group (its own pid) so that the test can end it.
    let (tx, mut events) = tokio::sync::mpsc::channel(16);
    let script = common::script("echo $$; exec sleep 60\n", &[], ScriptTimeout::Unlimited);
    let running = {
        let conn = conn.clone();
        tokio::spawn(async move { conn.run_script(&script, 1, tx).await })
    };
    let event = events.recv().await;
    let Some(ScriptEvent::Output { data, .. }) = event else {
        panic!("{event:?}")
    };
    let pgid: i32 = std::str::from_utf8(&data).unwrap().trim().parse().unwrap();
    agent.kill();
    let leftovers = list(&temp_dir);
    agent.restart();
    let after_restart = list(&temp_dir);
    // SAFETY: killpg on the script's own process group, which the test started.
    unsafe { libc::killpg(pgid, libc::SIGKILL) };
    assert_eq!(leftovers, Vec::<String>::new());
    assert_eq!(after_restart, Vec::<String>::new());
    assert!(
        running.await.unwrap().is_err(),
        "the run ended with its agent"
    );
}

#[tokio::test]
async fn named_temporary_files_of_a_killed_agent_are_removed_at_the_next_start() {
    // What an agent killed on a file system without anonymous files (no O_TMPFILE) leaves: a
    // named script file in temp_dir, a named upload beside its target with its record, and a
    // named rewrite of the configuration. Made by hand here, with the id of a process that is
    // gone.
    let mut agent = Agent::start("");
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let temp_dir = agent.dir.path().join("tmp");
    let dir = agent.dir.path().join("target");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("firmware.bin"), "old").unwrap();
    let upload = dir.join(format!(".firmware.bin.{pid}.0.tmp"));
    let records = agent.dir.path().join("agent.conf.uploads");
    std::fs::create_dir(&records).unwrap();
    std::os::unix::fs::symlink(&upload, records.join(format!("{pid}.0"))).unwrap();
    for file in [
        upload.clone(),
        temp_dir.join(format!(".otto-script.{pid}.0.tmp")),
        agent.dir.path().join(format!(".agent.conf.{pid}.3.tmp")),
    ] {
        std::fs::write(file, "partial").unwrap();
    }
    // Files that are not ours stay.
    std::fs::write(temp_dir.join("keep.tmp"), "x").unwrap();

    agent.restart();
    agent.client().await;
    assert_eq!(list(&dir), ["firmware.bin"]);
    assert_eq!(list(&records), Vec::<String>::new());
    assert_eq!(list(&temp_dir), ["keep.tmp"]);
    assert!(
        !list(agent.dir.path()).iter().any(|n| n.ends_with(".tmp")),
        "{:?}",
        list(agent.dir.path())
    );
}
