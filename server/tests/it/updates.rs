//! `update-agents` end to end: the real `otto-server` binary (in process and through `serve`)
//! and real `otto-agent` processes on loopback, with a folder of agent binaries whose x86_64
//! binary is this build's agent with its version text rewritten (same length), so that the
//! agents see a new version; each agent runs from its own copy (a hard link), which the update
//! replaces as on a device.

use std::path::Path;
use std::time::Instant;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use otto_server::demo::LocalAgent;

use crate::harness::{BOUND, Server, agent_bin, text};
use crate::http::{Daemon, key_of};
use crate::http_runs::Events;
use crate::users::add_user;

const X86: &str = "x86_64-unknown-linux-musl";
const TAG: &[u8] = otto_proto::AGENT_VERSION_TAG.as_bytes();

/// `bytes` with the version after the tag replaced by another of the same length (each digit
/// one more, 9 going to 0), and that version; a binary without a tag gets one appended (an
/// agent of before protocol 7's tag: it still runs, trailing bytes and all).
fn with_new_version(mut bytes: Vec<u8>) -> (Vec<u8>, String) {
    let Some(at) = bytes.windows(TAG.len()).position(|w| w == TAG) else {
        let version = "1.2.1".to_owned();
        bytes.extend_from_slice(TAG);
        bytes.extend_from_slice(version.as_bytes());
        bytes.push(0);
        return (bytes, version);
    };
    let start = at + TAG.len();
    let len = bytes[start..].iter().position(|b| *b == 0).unwrap();
    for b in &mut bytes[start..start + len] {
        if b.is_ascii_digit() {
            *b = b'0' + (*b - b'0' + 1) % 10;
        }
    }
    let version = String::from_utf8(bytes[start..start + len].to_vec()).unwrap();
    (bytes, version)
}

/// A folder of agent binaries with this build's agent, its version rewritten, for x86_64;
/// and that version.
pub fn catalogue() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, version) = with_new_version(std::fs::read(agent_bin()).unwrap());
    std::fs::write(dir.path().join(format!("otto-agent-{X86}")), bytes).unwrap();
    (dir, version)
}

/// Adds host `name` with a real agent in `dir/name` that runs its own binary there (a hard
/// link to this build's agent): an update replaces that file only, as on a device; and that
/// listens on the same port once restarted.
pub async fn own_agent(server: &Server, name: &str, dir: &Path) -> LocalAgent {
    let home = dir.join(name);
    std::fs::create_dir_all(&home).unwrap();
    let binary = home.join("otto-agent");
    if std::fs::hard_link(agent_bin(), &binary).is_err() {
        std::fs::copy(agent_bin(), &binary).unwrap();
    }
    let server_key = server.add(name, &[]).await;
    let agent = LocalAgent::start(&binary, &home, &server_key, "")
        .await
        .unwrap();
    // The port it was given, kept: the agent it restarts into listens where the host points.
    let conf = home.join("agent.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    let kept = format!("listen = 127.0.0.1:{}", agent.port);
    std::fs::write(&conf, text.replace("listen = 127.0.0.1:0", &kept)).unwrap();
    server.point(name, agent.port, &agent.agent_key).await;
    agent
}

/// `n` hosts `hNN` with real agents in `dir` ([`own_agent`]), pinged (their facts known).
async fn agents(server: &Server, dir: &Path, n: usize) -> Vec<LocalAgent> {
    let mut agents = Vec::new();
    for i in 0..n {
        agents.push(own_agent(server, &format!("h{i:02}"), dir).await);
    }
    let pings = server.bounded_json(&["ping", "--all"]).await;
    assert!(
        pings
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["reachable"] == true),
        "{pings}"
    );
    agents
}

/// Each host's result of an `update-agents --json`, by host.
fn by_host(results: &Value) -> std::collections::BTreeMap<String, Value> {
    results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["host"].as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

/// The hosts of the events of `kind`.
fn event_hosts(server: &Server, kind: &str) -> Vec<String> {
    let events = server.json(&["events", "--kind", kind, "--limit", "1000"]);
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["host"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_agents_in_batches_of_ten_stop_after_the_broken_host() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let mut agents = agents(&server, dir.path(), 50).await;
    // h03, in the first batch, is broken: its agent is gone.
    agents[3].stop().await;
    let (binaries, _version) = catalogue();
    let binaries = binaries.path().to_str().unwrap();
    // Fifty agents on a busy machine of few cores: each dial is given time, and the whole a
    // bound of its own (a hang guard, not a timing).
    let update = server
        .async_command(&[
            "update-agents",
            "--all",
            "--batch",
            "10",
            "--max-failures",
            "0",
            "--agents",
            binaries,
            "--confirm-within",
            "20s",
            "--dial-timeout",
            "60s",
            "--json",
        ])
        .output();
    let out = tokio::time::timeout(BOUND * 5, update)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let results = by_host(&crate::harness::results(&out.stdout));
    assert_eq!(results.len(), 50);
    let broken = &results["h03"];
    assert_eq!(broken["status"], "failed", "{broken}");
    assert_eq!(broken["unreached"], true, "{broken}");
    // The first batch's other hosts were each sent the binary: confirmed once agents take
    // updates (an event each), refused by agents that do not.
    let confirmed = event_hosts(&server, "update-confirmed");
    for i in (0..10).filter(|i| *i != 3) {
        let host = format!("h{i:02}");
        let result = &results[&host];
        assert_ne!(result["status"], "skipped", "{result}");
        if result["status"] == "ok" {
            assert!(confirmed.contains(&host), "{host}: {result}");
        }
    }
    // The rest were not started: skipped, saying why, and no event of theirs.
    for i in 10..50 {
        let host = format!("h{i:02}");
        let result = &results[&host];
        assert_eq!(result["status"], "skipped", "{result}");
        assert!(
            result["detail"].as_str().unwrap().contains("had failed"),
            "{result}"
        );
        assert!(!confirmed.contains(&host));
    }
    assert!(
        event_hosts(&server, "update-sent")
            .iter()
            .all(|h| h.as_str() < "h10")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_update_is_confirmed_by_a_heartbeat_with_the_new_version() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _agents = agents(&server, dir.path(), 2).await;
    let (binaries, version) = catalogue();
    let binaries = binaries.path().to_str().unwrap();
    let update = [
        "update-agents",
        "--all",
        "--agents",
        binaries,
        "--confirm-within",
        "20s",
    ];
    let results = server.bounded_results(&update).await;
    for result in results.as_array().unwrap() {
        assert_eq!(result["status"], "ok", "{result}");
        let detail = result["detail"].as_str().unwrap();
        assert!(detail.starts_with("confirmed") && detail.contains(&version));
    }
    let mut confirmed = event_hosts(&server, "update-confirmed");
    confirmed.sort();
    assert_eq!(confirmed, ["h00", "h01"]);
    let hosts = server.json(&["host", "list"]);
    for host in hosts.as_array().unwrap() {
        assert_eq!(host["status"]["agent_version"], version.as_str(), "{host}");
    }
    // Again: nothing to do; --force sends it all the same.
    let again = server.bounded_results(&update).await;
    assert!(
        again[0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("up to date")
    );
    let mut forced = update.to_vec();
    forced.push("--force");
    let forced = server.bounded_results(&forced).await;
    assert!(
        forced[0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("confirmed")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_binary_that_does_not_come_up_is_rolled_back_by_the_device() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _agents = agents(&server, dir.path(), 1).await;
    // An x86_64 executable that exits at once, with a version: it never answers.
    let binaries = tempfile::tempdir().unwrap();
    let (broken, _) = with_new_version(std::fs::read("/bin/false").unwrap());
    std::fs::write(binaries.path().join(format!("otto-agent-{X86}")), broken).unwrap();
    let (out, _) = server
        .bounded(&[
            "update-agents",
            "-H",
            "h00",
            "--agents",
            binaries.path().to_str().unwrap(),
            "--confirm-within",
            "10s",
            "--json",
        ])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let results = crate::harness::results(&out.stdout);
    let detail = results[0]["detail"].as_str().unwrap();
    assert!(detail.starts_with("rolled back"), "{detail}");
    assert_eq!(event_hosts(&server, "update-rolled-back"), ["h00"]);
    let ping = server.bounded_json(&["ping", "-H", "h00"]).await;
    assert_eq!(
        ping[0]["agent_version"],
        env!("CARGO_PKG_VERSION"),
        "{ping}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_binaries_the_server_says_how_to_build_them() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _agent = server.agent("r1", dir.path(), &[], "").await;
    let _silent = server.add("silent", &[]).await;
    let empty = tempfile::tempdir().unwrap();
    let empty = empty.path().to_str().unwrap();
    // Never heard from: skipped, saying to ping it first.
    let (out, _) = server
        .bounded(&[
            "update-agents",
            "-H",
            "r1,silent",
            "--agents",
            empty,
            "--json",
        ])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let results = by_host(&crate::harness::results(&out.stdout));
    for host in ["r1", "silent"] {
        assert_eq!(results[host]["status"], "skipped", "{}", results[host]);
        let detail = results[host]["detail"].as_str().unwrap();
        assert!(detail.contains("ping it first"), "{detail}");
    }
    server.bounded_json(&["ping", "-H", "r1"]).await;
    let (out, _) = server
        .bounded(&["update-agents", "-H", "r1", "--agents", empty, "--json"])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let results = crate::harness::results(&out.stdout);
    let detail = results[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("ci/build-agents.sh {X86}"))
            && detail.contains(empty)
            && detail.contains("bundled-agents"),
        "{detail}"
    );
    assert!(event_hosts(&server, "update-sent").is_empty());
    // A trial of no time, or of more than an hour, is refused before anything starts.
    for within in ["0s", "9s", "2h", "10.5s"] {
        let out = server.output(&["update-agents", "--all", "--confirm-within", within]);
        assert_eq!(out.status.code(), Some(2), "{within}: {}", text(&out));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_starts_updates_for_those_allowed_and_lists_the_binaries() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _agents = agents(&server, dir.path(), 2).await;
    let (binaries, version) = catalogue();
    add_user(&server, "root", &["--admin"]);
    add_user(&server, "rita", &[]);
    add_user(&server, "hank", &["--permission", "hosts"]);
    let (root, rita, hank) = (
        key_of(&server, "root"),
        key_of(&server, "rita"),
        key_of(&server, "hank"),
    );
    let daemon = Daemon::start(&server, &["--agents", binaries.path().to_str().unwrap()]);

    // The catalogue: the x86_64 binary with its version; the other targets missing, saying
    // how to build them.
    let (status, agents) = daemon
        .call(Method::GET, "/api/v1/agents", Some(&rita), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK, "{agents}");
    assert_eq!(agents["newest"], version.as_str(), "{agents}");
    assert_eq!(agents["binaries"][0]["target"], X86);
    assert_eq!(agents["binaries"][0]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(agents["missing"].as_array().unwrap().len(), 4, "{agents}");
    assert!(
        agents["missing"][0]
            .as_str()
            .unwrap()
            .contains("ci/build-agents.sh")
    );

    // Hosts whose agent is older are behind, in the API and in `host list` (through serve,
    // whose binaries they are).
    let (status, page) = daemon
        .call(Method::GET, "/api/v1/hosts", Some(&rita), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    for entry in page["hosts"].as_array().unwrap() {
        assert_eq!(entry["behind"], true, "{entry}");
        assert_eq!(entry["newest_agent"], version.as_str(), "{entry}");
    }
    let (status, detail) = daemon
        .call(Method::GET, "/api/v1/hosts/h00", Some(&rita), &Value::Null)
        .await;
    assert_eq!((status, &detail["behind"]), (StatusCode::OK, &json!(true)));
    let elsewhere = tempfile::tempdir().unwrap();
    for (args, said) in [
        (&["host", "list"][..], format!("(behind {version})")),
        (
            &["host", "show", "h00"][..],
            format!("(behind {version}: update-agents)"),
        ),
    ] {
        let list =
            crate::remote::client(elsewhere.path(), &server, daemon.base(), Some(&rita), args);
        let out = tokio::task::spawn_blocking(move || {
            let mut list = list;
            list.output().unwrap()
        })
        .await
        .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        assert!(text(&out).contains(&said), "{}", text(&out));
    }

    // Without `hosts`, or without the run level read-write: refused, nothing sent.
    for (key, needs) in [(&rita, "hosts"), (&hank, "read-write")] {
        let (status, answer) = daemon
            .call(
                Method::POST,
                "/api/v1/updates",
                Some(key),
                &json!({"all": true}),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains(needs));
    }
    let (status, answer) = daemon
        .call(
            Method::POST,
            "/api/v1/updates",
            Some(&root),
            &json!({"all": true, "confirm_secs": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(event_hosts(&server, "update-sent").is_empty());

    // Root's: a launch whose events are an upload's, each host ending one way or another.
    let started = Instant::now();
    let (status, launched) = daemon
        .call(
            Method::POST,
            "/api/v1/updates",
            Some(&root),
            &json!({"all": true, "batch": 1, "confirm_secs": 20}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{launched}");
    assert_eq!(launched["job"], "update-agents");
    let id = launched["launch"].as_u64().unwrap();
    let events = Events::follow(&daemon, &root, id).await.rest().await;
    assert!(started.elapsed() < BOUND);
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"started"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"upload-summary"), "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "uploaded").count(), 2);
    let summary = events.last().unwrap();
    assert_eq!(summary["results"].as_array().unwrap().len(), 2, "{summary}");
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_is_refused_with_a_server() {
    let server = Server::new();
    add_user(&server, "root", &["--admin"]);
    let key = key_of(&server, "root");
    let daemon = Daemon::start(&server, &[]);
    let elsewhere = tempfile::tempdir().unwrap();
    let cmd = crate::remote::client(
        elsewhere.path(),
        &server,
        daemon.base(),
        Some(&key),
        &["update-agents", "--all", "--agents", "/tmp"],
    );
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = cmd;
        cmd.output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--agents"), "{}", text(&out));
}

/// `ci/update-bench.sh [N]`: the time to update N local agents (default 100), printed.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a figure, run by ci/update-bench.sh"]
async fn update_bench() {
    let n: usize = std::env::var("OTTO_UPDATE_BENCH_N")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _agents = agents(&server, dir.path(), n).await;
    let (binaries, _) = catalogue();
    let size = std::fs::metadata(binaries.path().join(format!("otto-agent-{X86}")))
        .unwrap()
        .len();
    let started = Instant::now();
    let out = server
        .async_command(&[
            "update-agents",
            "--all",
            "--agents",
            binaries.path().to_str().unwrap(),
            "--dial-timeout",
            "60s",
            "--json",
        ])
        .output()
        .await
        .unwrap();
    let took = started.elapsed();
    let results = crate::harness::results(&out.stdout);
    let ok = results
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "ok")
        .count();
    println!(
        "updated {ok} of {n} local agents ({size} bytes each) in {:.1} s",
        took.as_secs_f64()
    );
}
