//! The server never waits on an agent without a deadline: the real `otto-server` binary with a
//! real SQLite file, against real agents and fake ones (real SSH servers on loopback) that
//! accept a channel and then answer nothing, trickle, or only send keepalives.
//!
//! Every command runs under an outer bound far above its deadlines, so code that waits forever
//! fails here instead of hanging the test suite.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use std::sync::Arc;

use otto_server::client::Limits;
use otto_server::demo::LocalAgent;
use otto_server::fleet::{Fleet, FleetOptions};
use otto_server::keys;
use otto_server::model::NewHost;
use otto_server::ops::{Actor, Ops, Targets};
use serde_json::Value;
use tokio::process::Child;

use crate::fake_agent::{Behaviour, FakeAgent};
use crate::harness::{BOUND, Server, results, text};

/// The entry of `host` in a JSON list of per-host results.
fn entry<'a>(list: &'a Value, host: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|e| e["host"] == host)
        .unwrap_or_else(|| panic!("no {host} in {list:#}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn ping_fails_silent_and_trickling_agents_and_still_reaches_the_healthy_one() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _ok = server.agent("ok", dir.path(), &[], "").await;
    let _silent = server.fake("silent", Behaviour::Silent).await;
    let _trickle = server.fake("trickle", Behaviour::Trickle).await;

    let (out, took) = server.bounded(&["ping", "--json"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let pings: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(entry(&pings, "ok")["reachable"], true, "{pings:#}");
    for bad in ["silent", "trickle"] {
        let p = entry(&pings, bad);
        assert_eq!(p["reachable"], false, "{pings:#}");
        let error = p["error"].as_str().unwrap();
        assert!(
            error.contains("no answer to the heartbeat within 10 s"),
            "{error}"
        );
    }
    // The deadline is the answer limit, not the outer bound: generous, but far below a hang.
    assert!(took < Duration::from_secs(40), "{took:?}");
    let host = server.bounded_json(&["host", "show", "silent"]).await;
    assert_eq!(host["status"]["reachable"], false, "{host:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_ends_at_its_timeout_plus_grace_when_the_agent_only_sends_keepalives() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _ok = server.agent("ok", dir.path(), &[], "").await;
    let _keep = server.fake("keep", Behaviour::KeepalivesOnly).await;
    let _silent = server.fake("silent", Behaviour::Silent).await;

    let (out, took) = server
        .bounded(&[
            "run",
            "--host",
            "ok",
            "--host",
            "keep",
            "--host",
            "silent",
            "--command",
            "echo hi",
            "--timeout",
            "5",
            "--json",
        ])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let runs = results(&out.stdout);
    assert_eq!(entry(&runs, "ok")["success"], true, "{runs:#}");
    let outcome = |host| entry(&runs, host)["outcome"].as_str().unwrap().to_string();
    assert!(
        outcome("keep").contains("no result of the run within its timeout of 5 s plus 10 s grace"),
        "{runs:#}"
    );
    assert!(
        outcome("silent").contains("no answer to the run request within 10 s"),
        "{runs:#}"
    );
    assert!(took < Duration::from_secs(45), "{took:?}");
    // The history says the same, and the runs are finished.
    let history = server.bounded_json(&["history"]).await;
    let keep = entry(&history, "keep");
    assert_eq!(keep["success"], false);
    assert!(keep["finished"].is_string(), "{keep:#}");
}

/// `last_seen` of `host`, from the store through the CLI.
async fn last_seen(server: &Server, host: &str) -> Option<String> {
    server.bounded_json(&["host", "show", host]).await["status"]["last_seen"]
        .as_str()
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_heartbeats_healthy_hosts_past_a_silent_one_and_stops_on_sigterm() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _ok = server.agent("ok", dir.path(), &[], "").await;
    let _silent = server.fake("silent", Behaviour::Silent).await;
    let log = dir.path().join("serve.log");
    let mut serve: Child = server
        .async_command(&["serve", "--heartbeat-interval", "1s", "--rotate-every", "0"])
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();

    // The healthy host is heartbeaten every second even though the silent one never answers
    // (and holds each of its heartbeats for the whole 10 s answer limit).
    let mut seen = Vec::new();
    let started = Instant::now();
    while seen.len() < 5 && started.elapsed() < Duration::from_secs(30) {
        if let Some(at) = last_seen(&server, "ok").await
            && seen.last() != Some(&at)
        {
            seen.push(at);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        seen.len() >= 5,
        "the healthy host's heartbeats stalled: {seen:?}\n{}",
        std::fs::read_to_string(&log).unwrap()
    );
    // Let the silent host's heartbeat miss its deadline once, and start another that is cut
    // short below.
    let mut failed = false;
    while !failed && started.elapsed() < Duration::from_secs(40) {
        let silent = server.bounded_json(&["host", "show", "silent"]).await;
        failed = silent["status"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("no answer to the heartbeat within 10 s"));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(failed, "{}", std::fs::read_to_string(&log).unwrap());
    // The next tick (1 s) starts its next heartbeat, which then waits up to 10 s.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let log = stop_serve(&mut serve, &log).await;
    assert!(
        log.lines()
            .any(|l| l.contains("cut short") && l.contains("silent")),
        "{log}"
    );
    // The store records what was cut short, for `events` and whoever reads the history later.
    let cut = cut_short(&server, "silent").await;
    assert_eq!(cut.len(), 1, "{cut:?}\n{log}");
    assert!(cut[0].contains("heartbeat"), "{cut:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_records_a_key_rotation_it_cut_short() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _fake = server.fake("r1", Behaviour::HeartbeatsOnly).await;
    let log = dir.path().join("serve.log");
    let mut serve: Child = server
        .async_command(&[
            "serve",
            "--heartbeat-interval",
            "1s",
            "--rotate-every",
            "1s",
        ])
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // The rotation keeps the new server key beside the old (in the store's `next` slot) before
    // it asks the agent, which never answers: wait for the key, then give the request time to
    // go out.
    let both = ["r1/current", "r1/next"];
    let started = Instant::now();
    while server.server_keys() != both && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        server.server_keys(),
        both,
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;

    let log = stop_serve(&mut serve, &log).await;
    let cut = cut_short(&server, "r1").await;
    assert_eq!(cut.len(), 1, "{cut:?}\n{log}");
    assert!(cut[0].contains("key rotation"), "{cut:?}");
    assert_eq!(
        server.server_keys(),
        both,
        "the new key is kept, as the event says"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_fails_promptly_when_the_agent_is_killed_midway() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let mut agent = server.agent("r1", dir.path(), &[], "").await;
    let target = dir.path().join("up/big");
    // Kill the agent once some of the file has arrived.
    let upload = upload_under_way(&server, &agent, &target, &[]).await;
    agent.stop().await;
    let killed = Instant::now();

    let out = tokio::time::timeout(Duration::from_secs(30), upload.wait_with_output())
        .await
        .expect("the upload did not end within 30 s of the agent's death")
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let done = results(&out.stdout);
    assert_eq!(entry(&done, "r1")["success"], false, "{done:#}");
    // Noticed from the channel closing, not from the (35 s) stall limit.
    assert!(killed.elapsed() < Duration::from_secs(20), "{done:#}");
    assert!(!target.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missed_deadline_drops_the_kept_connection() {
    let dir = tempfile::tempdir().unwrap();
    let options = FleetOptions {
        limits: Limits {
            answer: Duration::from_secs(1),
            ..Limits::default()
        },
        ..FleetOptions::default()
    };
    let fleet = Arc::new(Fleet::open(dir.path(), options).await.unwrap());
    let server_key = fleet.create_host_key("silent").await.unwrap();
    let fake = FakeAgent::start(server_key, Behaviour::Silent).await;
    fleet
        .store()
        .add_host(&NewHost {
            name: "silent".into(),
            address: "127.0.0.1".into(),
            port: fake.port,
            agent_key: Some(keys::to_openssh(&fake.key)),
            pin_on_first_contact: false,
        })
        .await
        .unwrap();
    let host = fleet.store().host("silent").await.unwrap();
    let first = fleet.connect(&host).await.unwrap();
    assert!(fleet.connect(&host).await.unwrap().same(&first), "kept");

    let ops = Ops::new(fleet.clone(), Actor::Server);
    let pings = tokio::time::timeout(BOUND, ops.ping(&Targets::hosts(["silent"])))
        .await
        .expect("the heartbeat has a deadline")
        .unwrap();
    let error = pings[0].error.as_deref().unwrap();
    assert!(
        error.contains("no answer to the heartbeat within 1 s"),
        "{error}"
    );
    let next = fleet.connect(&host).await.unwrap();
    assert!(
        !next.same(&first),
        "dialled again after the missed deadline"
    );
}

/// Sends `signal` to `agent`'s process.
fn signal(agent: &LocalAgent, signal: i32) {
    let pid = agent.pid().unwrap() as i32;
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_agent_stalls_an_upload_and_silences_a_run() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let agent = server.agent("r1", dir.path(), &[], "").await;
    let target = dir.path().join("up/big");
    // Stop (SIGSTOP) the agent once some of the file has arrived: its window never opens again.
    let upload = upload_under_way(&server, &agent, &target, &["--stall-timeout", "3"]).await;
    signal(&agent, libc::SIGSTOP);
    let out = tokio::time::timeout(Duration::from_secs(30), upload.wait_with_output())
        .await
        .expect("the upload did not end within 30 s of the agent's stop")
        .unwrap();
    signal(&agent, libc::SIGCONT);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let done = results(&out.stdout);
    let detail = entry(&done, "r1")["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("upload stalled: no progress for 3 s after ") && detail.ends_with("MiB"),
        "{detail}"
    );

    // A run without a timeout: the agent stops while its script sleeps, so no keepalive comes.
    let marker = dir.path().join("started");
    let command = format!("touch {}; sleep 100", marker.display());
    let run = server
        .async_command(&[
            "run",
            "--host",
            "r1",
            "--command",
            &command,
            "--timeout",
            "0",
            "--stall-timeout",
            "3",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !marker.exists() {
        assert!(started.elapsed() < BOUND, "the run never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    signal(&agent, libc::SIGSTOP);
    let out = tokio::time::timeout(Duration::from_secs(30), run.wait_with_output())
        .await
        .expect("the run did not end within 30 s of the agent's stop")
        .unwrap();
    signal(&agent, libc::SIGCONT);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let runs = results(&out.stdout);
    let outcome = entry(&runs, "r1")["outcome"].as_str().unwrap();
    assert!(
        outcome.contains("the run went silent: nothing from the agent for 3 s"),
        "{outcome}"
    );
}

/// Starts uploading 64 MiB to `target` on host r1 (with `extra` arguments) and returns once
/// more than 1 MiB of it has arrived at `agent`.
pub async fn upload_under_way(
    server: &Server,
    agent: &LocalAgent,
    target: &Path,
    extra: &[&str],
) -> Child {
    let local = target.with_file_name("source");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    // Written 1 MiB at a time: the tests share this process, and one measures the peak memory
    // of a server process it starts (which includes what this process holds at the time).
    let mut file = std::fs::File::create(&local).unwrap();
    for start in (0..64u32 << 20).step_by(1 << 20) {
        let chunk: Vec<u8> = (start..start + (1 << 20))
            .map(|i| (i % 251) as u8)
            .collect();
        file.write_all(&chunk).unwrap();
    }
    drop(file);
    let (local, target) = (local.to_string_lossy(), target.to_string_lossy());
    let mut args = vec![
        "upload", &local, "--path", &target, "--host", "r1", "--json",
    ];
    args.extend_from_slice(extra);
    let upload = server
        .async_command(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !receiving(agent, Path::new(&*target).parent().unwrap()) {
        assert!(started.elapsed() < BOUND, "the upload never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    upload
}

/// Whether the agent holds a file of more than 1 MiB open in `dir`: an upload under way (the
/// agent writes it without a name, so only its open descriptors show it).
fn receiving(agent: &LocalAgent, dir: &Path) -> bool {
    let Some(fds) = agent
        .pid()
        .and_then(|pid| std::fs::read_dir(format!("/proc/{pid}/fd")).ok())
    else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|target| target.starts_with(dir))
            && std::fs::metadata(fd.path()).is_ok_and(|m| m.len() > 1 << 20)
    })
}

/// Sends SIGTERM to `serve`, which must exit successfully within 10 s; returns its log.
async fn stop_serve(serve: &mut Child, log: &Path) -> String {
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(
        unsafe { libc::kill(serve.id().unwrap() as i32, libc::SIGTERM) },
        0
    );
    let status = tokio::time::timeout(Duration::from_secs(10), serve.wait())
        .await
        .expect("serve did not stop within 10 s of SIGTERM")
        .unwrap();
    let log = std::fs::read_to_string(log).unwrap();
    assert!(status.success(), "{status:?}\n{log}");
    log
}

/// The details of the `cut-short` events recorded for `host`, each the server's own doing.
async fn cut_short(server: &Server, host: &str) -> Vec<String> {
    let events = server.bounded_json(&["events", "--host", host]).await;
    events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "cut-short")
        .map(|e| {
            assert_eq!(e["actor"], "server", "{e}");
            e["detail"].as_str().unwrap().to_string()
        })
        .collect()
}
