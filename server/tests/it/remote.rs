//! The command line as a client of a running `serve` (`--server URL`): a run on real agents
//! through the daemon's kept connections, from a client whose own data directory stays
//! untouched; the key from `OTTO_API_KEY` or a file; each way it can fail, with its exit code.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::harness::{BOUND, Server, read_until, results, text};
use crate::http::{Daemon, key_of};
use crate::users::add_user;

/// `otto-server --server URL --ca-cert CERT ARGS…` on an empty data directory of its own
/// (`elsewhere`), with `key` as `OTTO_API_KEY` (none: unset).
pub fn client(
    elsewhere: &Path,
    server: &Server,
    url: &str,
    key: Option<&str>,
    args: &[&str],
) -> Command {
    let cert = server.data().join("http.crt");
    let mut cmd = Server::at(elsewhere).command(&["--server", url, "--ca-cert"]);
    cmd.arg(&cert).args(args).stdin(Stdio::null());
    match key {
        Some(key) => cmd.env("OTTO_API_KEY", key),
        None => cmd.env_remove("OTTO_API_KEY"),
    };
    cmd.env_remove("OTTO_API_KEY_FILE")
        .env_remove("OTTO_CA_CERT");
    cmd
}

/// Runs `cmd` to its end within the harness's bound (a hang guard, not a timing).
pub async fn finish(mut cmd: Command) -> Output {
    let run = tokio::task::spawn_blocking(move || cmd.output().unwrap());
    tokio::time::timeout(BOUND, run).await.unwrap().unwrap()
}

/// Whether `dir` is still empty.
pub fn empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_with_server_runs_through_the_daemons_connections_and_names_the_user() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _a = server.agent("r1", dir.path(), &["lab"], "").await;
    let _b = server.agent("r2", dir.path(), &["lab"], "").await;
    add_user(
        &server,
        "ann",
        &["--run-level", "read-write", "--permission", "audit"],
    );
    let ann = key_of(&server, "ann");
    let daemon = Daemon::start(&server, &[]);
    // The daemon dials both agents and keeps the connections.
    let (status, pinged) = daemon
        .call(
            Method::POST,
            "/api/v1/ping",
            Some(&ann),
            &serde_json::json!({"all": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{pinged}");

    // The client's own data directory holds nothing: no keys, no hosts, no database.
    let elsewhere = tempfile::tempdir().unwrap();
    let url = daemon.base();
    let run = [
        "run",
        "--group",
        "lab",
        "--command",
        "echo $OTTO_HOST_NAME says hi; echo oops >&2",
    ];
    let out = finish(client(elsewhere.path(), &server, url, Some(&ann), &run)).await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    for line in [
        "r1 | r1 says hi",
        "r2 | r2 says hi",
        "r1 ! oops",
        "r2 ! oops",
    ] {
        assert!(stdout.lines().any(|l| l == line), "{line:?} in:\n{stdout}");
    }
    assert!(stdout.contains("2 of 2 hosts succeeded"), "{stdout}");
    assert!(
        empty(elsewhere.path()),
        "the client opened its data directory"
    );

    // With --json, the JSON lines of a local run; a failing host exits 1, as locally.
    let mut json = vec!["--json"];
    json.extend(["run", "-H", "r*", "--command", "test $OTTO_HOST_NAME = r1"]);
    let out = finish(client(elsewhere.path(), &server, url, Some(&ann), &json)).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let results = results(&out.stdout);
    let success: Vec<(&str, bool)> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["host"].as_str().unwrap(), r["success"].as_bool().unwrap()))
        .collect();
    assert_eq!(success, [("r1", true), ("r2", false)], "{results}");

    // The runs are the daemon's, recorded naming the API user.
    let events = server.json(&["events", "--limit", "500"]);
    let started: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "run-started")
        .collect();
    assert_eq!(started.len(), 4, "{events}");
    for event in started {
        let actor = event["actor"].as_str().unwrap();
        assert!(actor.starts_with("user:ann (API key "), "{event}");
    }
    assert!(empty(elsewhere.path()));

    // Rollouts by percentage, as locally: r1 fails in the first half, so r2 is skipped.
    let mut rolled = vec!["--json", "run", "-H", "r*", "--batch", "50%"];
    rolled.extend([
        "--max-failures",
        "0%",
        "--command",
        "test $OTTO_HOST_NAME = r2",
    ]);
    let out = finish(client(elsewhere.path(), &server, url, Some(&ann), &rolled)).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let rolled = super::harness::results(&out.stdout);
    let status: Vec<(&str, &str)> = rolled
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["host"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(status, [("r1", "failed"), ("r2", "skipped")], "{rolled}");

    // The listings through the daemon are the local ones, as JSON.
    let remote = |args: &[&str]| {
        let mut json = vec!["--json"];
        json.extend(args);
        let out = client(elsewhere.path(), &server, url, Some(&ann), &json)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    for args in [
        &["host", "list"][..],
        &["host", "show", "r2"],
        &["group", "list"],
        &["script", "list"],
        &["events", "--limit", "500"],
        &["events", "--host", "r1"],
        &["history", "--run", "1"],
    ] {
        assert_eq!(remote(args), server.json(args), "{args:?}");
    }
    // The history's list has each run's kept output, as locally.
    let history = ["history", "--host", "r2", "--limit", "1"];
    let local = server.json(&history);
    assert_eq!(remote(&history), local);
    assert_eq!(local.as_array().unwrap().len(), 1);
    // A heartbeat from the daemon.
    let pinged = remote(&["ping", "-H", "r1,r2"]);
    let reached: Vec<(&str, bool)> = pinged
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["host"].as_str().unwrap(),
                p["reachable"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(reached, [("r1", true), ("r2", true)], "{pinged}");
    assert!(empty(elsewhere.path()));
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_cancels_a_run_started_through_the_server() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _a = server.agent("r1", dir.path(), &[], "").await;
    add_user(&server, "ann", &["--run-level", "read-write"]);
    let ann = key_of(&server, "ann");
    let daemon = Daemon::start(&server, &[]);
    let elsewhere = tempfile::tempdir().unwrap();
    // A sleep this test alone starts, far longer than the test's bound.
    let command = format!("echo up; sleep 100.1{}", std::process::id());
    let args = ["run", "--host", "r1", "--command", &command];
    let mut run = client(elsewhere.path(), &server, daemon.base(), Some(&ann), &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = read_until(&mut run, |lines| lines.iter().any(|l| l == "r1 | up"));
    assert!(lines.iter().any(|l| l == "r1 | up"), "{lines:?}");
    let (status, stderr) = crate::harness::interrupt(run).await;
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("cancelled on 1 of 1 hosts"), "{stderr}");
    let runs = server.runs();
    assert!(
        runs[0]["outcome"]
            .as_str()
            .unwrap()
            .starts_with("cancelled"),
        "{runs:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_way_of_failing_through_the_server_says_why_with_its_exit_code() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _a = server.agent("r1", dir.path(), &[], "").await;
    add_user(&server, "ann", &["--run-level", "read-write"]);
    add_user(&server, "rita", &["--run-level", "read-only"]);
    let (ann, rita) = (key_of(&server, "ann"), key_of(&server, "rita"));
    let daemon = Daemon::start(&server, &[]);
    let elsewhere = tempfile::tempdir().unwrap();
    let (e, url) = (elsewhere.path(), daemon.base());
    let run = ["run", "-H", "r1", "--command", "true"];

    let check = |out: Output, code: i32, says: &str| {
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "{stderr}");
        assert!(stderr.contains(says), "{says:?} in {stderr}");
    };
    // No key at all.
    check(
        finish(client(e, &server, url, None, &run)).await,
        2,
        "OTTO_API_KEY",
    );
    // A key that cannot be one is refused before anything is sent.
    let out = finish(client(e, &server, url, Some("otto_a b"), &run)).await;
    check(out, 2, "is not one");
    // A key the server does not know: its message.
    let out = finish(client(e, &server, url, Some("otto_nonsense"), &run)).await;
    check(out, 8, "unknown API key");
    // A user below the run level read-write: the server's words, as a local refusal's.
    check(
        finish(client(e, &server, url, Some(&rita), &run)).await,
        8,
        "a command needs the run level `read-write`; yours is `read-only`",
    );
    // A host that does not exist.
    let nohost = ["run", "-H", "r9", "--command", "true"];
    check(
        finish(client(e, &server, url, Some(&ann), &nohost)).await,
        4,
        "r9",
    );
    // A command that cannot work through serve says why, and does not fall back to the local
    // data directory.
    let deploy = ["host", "deploy", "r9", "root@192.0.2.9"];
    let out = finish(client(e, &server, url, Some(&ann), &deploy)).await;
    check(out, 2, "`host deploy` does not work through --server");
    // The key from a file instead of the environment.
    let file = e.join("key");
    std::fs::write(&file, format!("{ann}\n")).unwrap();
    let mut from_file = client(e, &server, url, None, &run);
    from_file.arg("--api-key-file").arg(&file);
    let out = finish(from_file).await;
    assert!(out.status.success(), "{}", text(&out));
    std::fs::remove_file(&file).unwrap();
    // serve's self-signed certificate is not trusted without --ca-cert.
    let mut untrusted = Server::at(e).command(&["--server", url]);
    untrusted
        .args(run)
        .env("OTTO_API_KEY", &ann)
        .env_remove("OTTO_CA_CERT");
    let out = finish(untrusted).await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(stderr.contains("UnknownIssuer"), "{stderr}");
    check(out, 3, "--ca-cert <serve's data directory>/http.crt");
    // An environment variable set to nothing is unset: the data directory, not a server.
    for vars in [
        &["OTTO_SERVER"][..],
        &["OTTO_SERVER", "OTTO_CA_CERT", "OTTO_API_KEY_FILE"],
    ] {
        let local = tempfile::tempdir().unwrap();
        let mut empty_env = Server::at(local.path()).command(&["host", "list"]);
        for var in vars {
            empty_env.env(var, "");
        }
        let out = finish(empty_env).await;
        assert!(out.status.success(), "{vars:?}: {}", text(&out));
        assert!(local.path().join("otto.db").exists());
    }
    // Plain HTTP to another machine is refused before anything is sent.
    let mut plain = Server::at(e).command(&["--server", "http://192.0.2.1:8080"]);
    plain.args(run).env("OTTO_API_KEY", &ann);
    check(finish(plain).await, 2, "plain http only to this machine");
    // Nothing listening: unreachable.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = format!("https://{}", closed.local_addr().unwrap());
    drop(closed);
    check(
        finish(client(e, &server, &gone, Some(&ann), &run)).await,
        3,
        "cannot reach",
    );
    assert!(empty(e));
}

#[tokio::test(flavor = "multi_thread")]
async fn hosts_added_and_removed_through_the_server_name_the_user() {
    let server = Server::new();
    add_user(&server, "hal", &["--permission", "hosts"]);
    add_user(&server, "rita", &[]);
    let (hal, rita) = (key_of(&server, "hal"), key_of(&server, "rita"));
    let daemon = Daemon::start(&server, &[]);
    let elsewhere = tempfile::tempdir().unwrap();
    let (e, url) = (elsewhere.path(), daemon.base());

    let add = [
        "host",
        "add",
        "r5",
        "127.0.0.1",
        "--port",
        "1",
        "-g",
        "edge",
    ];
    let out = finish(client(e, &server, url, Some(&rita), &add)).await;
    assert_eq!(out.status.code(), Some(8), "{}", text(&out));
    let out = finish(client(e, &server, url, Some(&hal), &add)).await;
    assert!(out.status.success(), "{}", text(&out));
    // The server key to give the agent, as a local `host add` prints it.
    let key = server.ok(&["host", "key", "r5"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(key.trim()),
        "{}",
        text(&out)
    );
    let hosts = server.json(&["host", "list"]);
    assert_eq!(hosts[0]["name"], "r5", "{hosts}");
    assert_eq!(hosts[0]["groups"], serde_json::json!(["edge"]));

    // A host with variables goes only with --force, as locally.
    server.ok(&["env", "set", "V", "1", "--host", "r5"]);
    let remove = ["host", "remove", "r5"];
    let out = finish(client(e, &server, url, Some(&hal), &remove)).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("give --force"), "{}", text(&out));
    assert_eq!(server.json(&["host", "list"]).as_array().unwrap().len(), 1);
    let remove = ["host", "remove", "r5", "--force"];
    let out = finish(client(e, &server, url, Some(&hal), &remove)).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(server.json(&["host", "list"]), serde_json::json!([]));

    let events = server.json(&["events"]);
    let by_hal: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["actor"]
                .as_str()
                .is_some_and(|a| a.starts_with("user:hal "))
        })
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(by_hal.contains(&"host-added"), "{events}");
    assert!(by_hal.contains(&"host-removed"), "{events}");
    assert!(empty(e));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hosts_failure_names_the_host_once_locally_and_through_the_server() {
    // Issue 21: `ap2: ap2: ssh: Connection refused`: the error named its host, the printer did
    // too, and a host backing off wrapped its last error, name and all.
    let server = Server::new();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port().to_string();
    drop(closed);
    let add = ["host", "add", "ap2", "127.0.0.1", "--port", &port];
    server.ok(&[&add[..], &["--pin-on-first-contact"]].concat());
    add_user(&server, "ann", &["--permission", "hosts"]);
    let ann = key_of(&server, "ann");
    let once = |out: &Output| {
        let shown = String::from_utf8_lossy(&out.stdout).into_owned();
        let lines: Vec<&str> = shown.lines().filter(|l| l.contains("ap2")).collect();
        assert!(!lines.is_empty(), "{}", text(out));
        for line in lines {
            assert_eq!(line.matches("ap2").count(), 1, "{line}");
        }
    };
    once(&server.output(&["reload", "-H", "ap2"]));
    once(&server.output(&["ping", "-H", "ap2"]));
    let daemon = Daemon::start(&server, &[]);
    let elsewhere = tempfile::tempdir().unwrap();
    let (e, url) = (elsewhere.path(), daemon.base());
    // The second try finds the host backing off; neither reached it: exit 3, as locally.
    for _ in 0..2 {
        let out = finish(client(
            e,
            &server,
            url,
            Some(&ann),
            &["reload", "-H", "ap2"],
        ))
        .await;
        assert_eq!(out.status.code(), Some(3), "{}", text(&out));
        once(&out);
    }
    let out = finish(client(e, &server, url, Some(&ann), &["ping", "-H", "ap2"])).await;
    once(&out);
}
