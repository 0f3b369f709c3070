//! Ctrl-C (SIGINT) or SIGTERM during `run` or `upload`: the runs are cancelled on every host
//! and recorded so (the uploads stopped), and the command exits 130.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::deadlines::upload_under_way;
use crate::harness::{BOUND, Server, read_until, results, text};
use crate::http::{Daemon, key_of};
use crate::users::add_user;

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_during_a_run_cancels_it_on_every_host() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _a = server.agent("r1", dir.path(), &["g"], "").await;
    let _b = server.agent("r2", dir.path(), &["g"], "").await;

    // A sleep this test alone starts: its argument is the marker `pgrep -f` looks for.
    let sleep = format!("sleep 100.0{}", std::process::id());
    let command = format!("echo up; {sleep}");
    let mut run = server
        .command(&["run", "--group", "g", "--command", &command])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = read_until(&mut run, |lines| {
        lines.iter().filter(|l| l.ends_with("| up")).count() == 2
    });
    assert_eq!(
        lines.iter().filter(|l| l.ends_with("| up")).count(),
        2,
        "{lines:?}"
    );
    let running = |marker: &str| {
        Command::new("pgrep")
            .args(["-f", marker])
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(running(&sleep));

    // A hang guard far below the sleep's 100 s, not a speed assertion.
    let (status, stderr) = crate::harness::interrupt(run).await;
    assert_eq!(status.code(), Some(130), "{status:?}: {stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");

    let runs = server.runs();
    assert_eq!(runs.len(), 2, "{runs:#?}");
    for r in &runs {
        assert_eq!(r["outcome"], "cancelled", "{r:#}");
    }
    assert!(!running(&sleep), "the sleep still runs on an agent");

    let events = server.json(&["events", "--limit", "200"]);
    let cancelled: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "run-cancelled")
        .collect();
    let mut hosts: Vec<&str> = cancelled
        .iter()
        .map(|e| e["host"].as_str().unwrap())
        .collect();
    hosts.sort_unstable();
    assert_eq!(hosts, ["r1", "r2"], "{events:#}");
    for e in cancelled {
        assert!(e["actor"].as_str().unwrap().starts_with("cli:"), "{e:#}");
        assert!(e["detail"].as_str().unwrap().contains(&command), "{e:#}");
    }
}

/// A second interrupt ends the command at once, even while a host does not answer the cancel
/// (its agent stopped with SIGSTOP, deadlines far beyond the test's bound): the run stays
/// unfinished, as the message says.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_ctrl_c_exits_at_once() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let agent = server.agent("r1", dir.path(), &[], "").await;
    let sleep = format!("sleep 100.1{}", std::process::id());
    let command = format!("echo up; {sleep}");
    let mut run = server
        .command(&[
            "--answer-timeout",
            "10m",
            "--stall-timeout",
            "10m",
            "run",
            "--host",
            "r1",
            "--command",
            &command,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    read_until(&mut run, |lines| lines.iter().any(|l| l.ends_with("| up")));
    let agent_pid = agent.pid().unwrap() as i32;
    // SAFETY: kill(2) on our own children's pids.
    assert_eq!(unsafe { libc::kill(agent_pid, libc::SIGSTOP) }, 0);
    let pid = run.id() as i32;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let mut stderr = BufReader::new(run.stderr.take().unwrap());
    let mut said = String::new();
    while !said.contains("interrupted: cancelling") {
        assert!(stderr.read_line(&mut said).unwrap() > 0, "{said}");
    }
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let (status, said) = tokio::time::timeout(
        BOUND,
        tokio::task::spawn_blocking(move || {
            let status = run.wait().unwrap();
            stderr.read_to_string(&mut said).unwrap();
            (status, said)
        }),
    )
    .await
    .expect("the run did not end after a second SIGINT")
    .unwrap();
    assert_eq!(unsafe { libc::kill(agent_pid, libc::SIGCONT) }, 0);
    assert_eq!(status.code(), Some(130), "{status:?}: {said}");
    assert!(
        said.contains("interrupted again: exiting now; runs on the hosts may stay unfinished"),
        "{said}"
    );
    let runs = server.runs();
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert!(runs[0]["finished"].is_null(), "{runs:#?}");
    // Clean up: the run may still go on on the agent.
    let _ = server.output(&["cancel", &runs[0]["id"].to_string()]);
}

/// Ctrl-C during `upload` stops it (here while the agent is stopped, so the upload cannot end
/// by itself), locally and through a running serve (which cancels it there): exit 130, the
/// host's result says so, the command says how many hosts had the file, and it is not there.
#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_during_an_upload_stops_it() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let agent = server.agent("r1", dir.path(), &[], "").await;
    add_user(&server, "ann", &["--run-level", "read-write"]);
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, key_of(&server, "ann")).unwrap();
    let daemon = Daemon::start(&server, &[]);
    let cert = server.data().join("http.crt");
    let through = [
        "--server",
        daemon.base(),
        "--ca-cert",
        cert.to_str().unwrap(),
        "--api-key-file",
        key_file.to_str().unwrap(),
    ];
    for (extra, target) in [(&[][..], "up/big"), (&through[..], "there/big")] {
        let target = dir.path().join(target);
        let upload = upload_under_way(&server, &agent, &target, extra).await;
        let agent_pid = agent.pid().unwrap() as i32;
        // SAFETY: kill(2) on our own children's pids.
        assert_eq!(unsafe { libc::kill(agent_pid, libc::SIGSTOP) }, 0);
        let pid = upload.id().unwrap() as i32;
        assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
        let out = tokio::time::timeout(BOUND, upload.wait_with_output())
            .await
            .expect("the upload did not end after SIGINT")
            .unwrap();
        assert_eq!(unsafe { libc::kill(agent_pid, libc::SIGCONT) }, 0);
        assert_eq!(out.status.code(), Some(130), "{extra:?}: {}", text(&out));
        let done = results(&out.stdout);
        assert_eq!(done[0]["success"], false, "{done:#}");
        assert!(
            done[0]["detail"]
                .as_str()
                .unwrap()
                .starts_with("cancelled before the agent confirmed it"),
            "{done:#}"
        );
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            said.contains("the upload was stopped; 0 of 1 hosts had it already"),
            "{extra:?}: {said}"
        );
        assert!(!target.exists());
    }
}
