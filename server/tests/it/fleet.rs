//! The fleet end to end: the real `otto-server` binary with a real SQLite file in a temporary
//! data directory, driving several real `otto-agent` processes on loopback at once.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use otto_server::client::{AgentKeyCheck, ClientError, Connection, Dial, Limits};
use otto_server::demo::LocalAgent;
use otto_server::keys;
use serde_json::Value;

use crate::harness::{BOUND, Server, agent_bin, read_until, text};

/// A data directory of an older version keeps each host's server key in a file: opening it
/// moves the key into the store (sealed), removes the file, and the host is reached with it.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_key_file_of_an_older_data_directory_is_moved_into_the_store() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _agent = server.agent("r1", dir.path(), &[], "").await;
    // As an older version left it: the key in keys/r1.key (0600), none in the store.
    let key = server.server_key("r1").await;
    rusqlite::Connection::open(server.data().join("otto.db"))
        .unwrap()
        .execute("DELETE FROM server_keys", [])
        .unwrap();
    let file = server.data().join("keys/r1.key");
    keys::save(&file, &key).unwrap();

    let (out, _) = server.bounded(&["ping", "--host", "r1"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(!file.exists(), "the file is removed once moved");
    assert!(!server.data().join("keys").exists());
    assert_eq!(server.server_keys(), ["r1/current"]);
    assert_eq!(server.server_key("r1").await.public_key(), key.public_key());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("count=1") || log.is_empty(), "{log}");
    // Sealed: the key's text is nowhere in the database.
    let db = std::fs::read(server.data().join("otto.db")).unwrap();
    let text = keys::to_text(&key).unwrap();
    let line = text.lines().nth(1).unwrap().as_bytes();
    assert!(!db.windows(line.len()).any(|w| w == line));
    // And again, now from the store.
    server.ok(&["ping", "--host", "r1"]);
}

/// A rotation left unanswered keeps the new server key as the host's next one; an agent that
/// took it (and accepts only it) is reached with it, and it becomes the current key.
#[tokio::test(flavor = "multi_thread")]
async fn the_next_key_of_an_unanswered_rotation_is_taken_into_use_when_only_it_works() {
    use otto_server::fleet::{Fleet, FleetOptions};
    use otto_server::store::KeySlot;

    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    server.add("r1", &[]).await;
    let next = keys::generate().unwrap();
    {
        let fleet = Fleet::open(server.data(), FleetOptions::default())
            .await
            .unwrap();
        fleet
            .store()
            .put_server_key("r1", KeySlot::Next, &keys::to_text(&next).unwrap())
            .await
            .unwrap();
    }
    // The agent trusts the next key only.
    let agent = LocalAgent::start(&agent_bin(), &dir.path().join("r1"), next.public_key(), "")
        .await
        .unwrap();
    server.point("r1", agent.port, &agent.agent_key).await;

    let (out, _) = server.bounded(&["ping", "--host", "r1"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(server.server_keys(), ["r1/current"]);
    assert_eq!(
        server.server_key("r1").await.public_key(),
        next.public_key()
    );
    let events = server.ok(&["events", "--host", "r1"]);
    assert!(
        events.contains("of an unanswered rotation taken into use"),
        "{events}"
    );
    server.ok(&["ping", "--host", "r1"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_run_with_one_agent_killed_midway() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let a1 = server.agent("r1", dir.path(), &["lab"], "").await;
    let mut a2 = server.agent("r2", dir.path(), &["lab"], "").await;
    let a3 = server.agent("r3", dir.path(), &["lab"], "").await;

    let mut run = server
        .command(&[
            "run",
            "--group",
            "lab",
            "--command",
            "echo started; sleep 2; echo finished",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let seen = read_until(&mut run, |lines| {
        lines.iter().filter(|l| l.ends_with("| started")).count() == 3
    });
    assert_eq!(seen.len(), 3, "{seen:?}");
    a2.stop().await;
    let status = run.wait().unwrap();
    assert_eq!(status.code(), Some(1), "one host failed, so the run fails");

    let runs = server.runs();
    assert_eq!(runs.len(), 3, "{runs:#?}");
    for run in &runs {
        let host = run["host"].as_str().unwrap();
        if host == "r2" {
            assert_eq!(run["success"], false);
            assert!(
                run["outcome"].as_str().unwrap().contains("connection lost"),
                "{run}"
            );
            assert_eq!(run["stdout"], "started\n", "what arrived before is kept");
        } else {
            assert_eq!(run["success"], true, "{run}");
            assert_eq!(run["exit_code"], 0);
            assert_eq!(run["stdout"], "started\nfinished\n");
        }
    }
    drop((a1, a3));
}

#[tokio::test(flavor = "multi_thread")]
async fn live_output_is_prefixed_and_the_summary_says_who_failed() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _a = server.agent("alpha", dir.path(), &[], "").await;
    let _b = server.agent("b", dir.path(), &[], "").await;
    let out = server.output(&[
        "run",
        "--all",
        "--command",
        "echo out-$OTTO_HOST_NAME; echo err-$OTTO_HOST_NAME >&2; test $OTTO_HOST_NAME = alpha",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(stdout.contains("alpha | out-alpha"), "{stdout}");
    assert!(stdout.contains("alpha ! err-alpha"), "{stdout}");
    assert!(stdout.contains("b     | out-b"), "{stdout}");
    let summary: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("host "))
        .collect();
    assert!(
        summary
            .iter()
            .any(|l| l.starts_with("alpha") && l.contains(" ok ")),
        "{stdout}"
    );
    assert!(
        summary
            .iter()
            .any(|l| l.starts_with("b ") && l.contains("FAILED") && l.contains("exit 1")),
        "{stdout}"
    );
    assert!(stdout.contains("1 of 2 hosts succeeded"), "{stdout}");

    // The same run as JSON lines: the summary last, one result per host.
    let out = server.output(&["run", "--all", "--command", "true", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let results = crate::harness::results(&out.stdout);
    assert_eq!(results.as_array().unwrap().len(), 2);
    assert!(crate::harness::all_succeeded(&results), "{results:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_agent_key_is_refused_and_becomes_pending() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let agent = server.agent("r1", dir.path(), &[], "").await;
    // Pin some other key: the real agent's key is now "wrong".
    let other = keys::generate().unwrap();
    server.ok(&["host", "trust", "r1", &keys::to_openssh(other.public_key())]);

    let out = server.output(&["ping", "--host", "r1"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("pending"), "{}", text(&out));
    let host = server.json(&["host", "show", "r1"]);
    assert_eq!(
        host["trust"]["pending_key"],
        keys::to_openssh(&agent.agent_key),
        "{host:#}"
    );
    assert_eq!(
        host["trust"]["agent_key"],
        keys::to_openssh(other.public_key())
    );
    // Nothing ran on it.
    let out = server.output(&["run", "--host", "r1", "--command", "touch /tmp/never"]);
    assert_eq!(out.status.code(), Some(3));
    let events = server.json(&["events", "--host", "r1"]);
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "key-pending"),
        "{events:#}"
    );

    // Denied: the key is dropped, the pinned one kept; the agent is refused again.
    let denied = server.ok(&["host", "deny", "r1"]);
    let presented = keys::fingerprint(&agent.agent_key);
    assert_eq!(
        denied,
        format!("r1: pending agent key {presented} denied\n")
    );
    let trust = &server.json(&["host", "show", "r1"])["trust"];
    assert_eq!(trust["pending_key"], Value::Null, "{trust:#}");
    assert_eq!(trust["agent_key"], keys::to_openssh(other.public_key()));
    assert_eq!(
        server.output(&["host", "deny", "r1"]).status.code(),
        Some(5)
    );
    let out = server.output(&["ping", "--host", "r1"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));

    server.ok(&["host", "approve", "r1"]);
    let pings = server.json(&["ping", "--host", "r1"]);
    assert_eq!(pings[0]["reachable"], true, "{pings:#}");
    assert_eq!(
        server.json(&["host", "show", "r1"])["trust"]["pending_key"],
        Value::Null
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_key_is_pinned_on_first_contact_only_when_asked() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let added = server.json(&["host", "add", "r1", "127.0.0.1", "--pin-on-first-contact"]);
    let server_key = keys::parse_public(added["server_key"].as_str().unwrap()).unwrap();
    let agent = LocalAgent::start(&agent_bin(), dir.path(), &server_key, "")
        .await
        .unwrap();
    server.ok(&["host", "set", "r1", "--port", &agent.port.to_string()]);
    server.ok(&["ping"]);
    assert_eq!(
        server.json(&["host", "show", "r1"])["trust"]["agent_key"],
        keys::to_openssh(&agent.agent_key)
    );
    // The server pinned it by itself (no actor); the operator added the host.
    let events = server.json(&["events", "--host", "r1"]);
    let events = events.as_array().unwrap();
    assert!(
        events.iter().any(|e| e["kind"] == "trust-changed"
            && e["detail"]
                .as_str()
                .unwrap()
                .ends_with("pinned on first contact")
            && e.get("actor").is_none()),
        "{events:#?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "host-added" && e["actor"].as_str().unwrap().starts_with("cli:")),
        "{events:#?}"
    );

    // The same agent as r1's, added again by hand: forced, as it shares r1's address and port.
    server.ok(&[
        "host",
        "add",
        "r2",
        "127.0.0.1",
        "--port",
        &agent.port.to_string(),
        "--force",
    ]);
    let out = server.output(&["ping", "--host", "r2"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out).contains("has no agent key"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn state_and_history_survive_a_killed_server() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _agent = server.agent("r1", dir.path(), &[], "").await;
    server.ok(&["run", "--host", "r1", "--command", "echo first"]);

    // Kill the server with SIGKILL in the middle of a run.
    let mut run = server
        .command(&["run", "--host", "r1", "--command", "echo begun; sleep 30"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    read_until(&mut run, |lines| lines.iter().any(|l| l.ends_with("begun")));
    run.kill().unwrap();
    run.wait().unwrap();

    // A new server process finds everything: hosts, trust, heartbeat state, both runs.
    let runs = server.runs();
    assert_eq!(runs.len(), 2, "{runs:#?}");
    assert_eq!(runs[0]["stdout"], "first\n");
    assert_eq!(runs[0]["success"], true);
    // Its server process is gone, so it is shown (and kept) as interrupted, not unfinished.
    assert_eq!(runs[1]["finished"], Value::Null, "{runs:#?}");
    assert_eq!(runs[1]["outcome"], "interrupted", "{runs:#?}");
    assert_eq!(runs[1]["success"], false, "{runs:#?}");
    let detail = server.ok(&["history", "--run", &runs[1]["id"].to_string()]);
    assert!(detail.contains("outcome   interrupted"), "{detail}");
    let table = server.ok(&["history"]);
    assert!(table.contains("interrupted"), "{table}");
    let host = server.json(&["host", "show", "r1"]);
    assert!(host["trust"]["agent_key"].is_string());
    server.ok(&["run", "--host", "r1", "--command", "true"]);
    assert_eq!(server.runs().len(), 3);
    let db = rusqlite::Connection::open(server.data().join("otto.db")).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn environment_follows_the_precedence() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _r1 = server.agent("r1", dir.path(), &["a", "b"], "").await;
    let _r2 = server.agent("r2", dir.path(), &["a"], "").await;
    server.ok(&[
        "script",
        "add",
        "show",
        "--body",
        "echo \"V1=$V1 V2=$V2 V3=$V3 V4=$V4 V5=$V5 PORT=$OTTO_HOST_PORT\"",
    ]);
    for (name, value, scope) in [
        ("V1", "global", vec![]),
        ("V2", "global", vec![]),
        ("V2", "script", vec!["--script", "show"]),
        ("V3", "script", vec!["--script", "show"]),
        ("V3", "group-a", vec!["--group", "a"]),
        ("V4", "group-a", vec!["--group", "a"]),
        ("V4", "group-b", vec!["--group", "b"]),
        ("V5", "group-b", vec!["--group", "b"]),
        ("V5", "host", vec!["--host", "r1"]),
        ("OTTO_HOST_PORT", "overridden", vec![]),
    ] {
        let mut args = vec!["env", "set", name, value];
        args.extend(scope);
        server.ok(&args);
    }
    let out = server.ok(&["run", "show", "--all"]);
    assert!(
        out.contains("r1 | V1=global V2=script V3=group-a V4=group-b V5=host PORT=overridden"),
        "{out}"
    );
    assert!(
        out.contains("r2 | V1=global V2=script V3=group-a V4=group-a V5= PORT=overridden"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn attachments_go_before_and_after_the_script() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _agent = server.agent("r1", dir.path(), &[], "").await;
    let device = dir.path().join("device");
    let before = device.join("etc/app.conf");
    let after = device.join("etc/app.done");
    let local = dir.path().join("local");
    std::fs::create_dir_all(&local).unwrap();
    std::fs::write(local.join("conf"), b"setting=1\n").unwrap();
    std::fs::write(local.join("done"), b"deployed\n").unwrap();
    server.ok(&[
        "script",
        "add",
        "deploy",
        "--body",
        &format!(
            "cat {b}; test -e {a} && echo 'after-file too early'; exit 0",
            b = before.display(),
            a = after.display()
        ),
    ]);
    let path = |p: &PathBuf| p.to_string_lossy().into_owned();
    server.ok(&[
        "attachment",
        "add",
        "deploy",
        &path(&local.join("conf")),
        "--path",
        &path(&before),
        "--mode",
        "600",
    ]);
    server.ok(&[
        "attachment",
        "add",
        "deploy",
        &path(&local.join("done")),
        "--path",
        &path(&after),
        "--phase",
        "after",
    ]);
    let listed = server.json(&["attachment", "list", "deploy"]);
    assert_eq!(listed.as_array().unwrap().len(), 2);

    let out = server.ok(&["run", "deploy", "--host", "r1"]);
    assert!(out.contains("r1 | setting=1"), "{out}");
    assert!(!out.contains("too early"), "{out}");
    assert_eq!(std::fs::read(&after).unwrap(), b"deployed\n");
    assert_eq!(
        std::fs::metadata(&before).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // An after-run action runs after a successful script. The attachment the host has as it
    // is (checksum, mode) is not sent again (its file is not replaced); the one changed on the
    // host is.
    let inode = |p: &PathBuf| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    let (before_inode, after_inode) = (inode(&before), inode(&after));
    std::fs::write(&after, b"changed on the host\n").unwrap();
    server.ok(&[
        "script",
        "add",
        "deploy",
        "--replace",
        "--body",
        "true",
        "--after",
        "reload",
    ]);
    server.ok(&["run", "deploy", "--host", "r1"]);
    let last = server.runs().pop().unwrap();
    assert_eq!(last["outcome"], "exit 0, then reload", "{last}");
    assert_eq!(inode(&before), before_inode, "unchanged: not sent");
    assert_ne!(inode(&after), after_inode, "changed on the host: sent");
    assert_eq!(std::fs::read(&after).unwrap(), b"deployed\n");

    // A failing script does not get its after-attachments.
    std::fs::remove_file(&after).unwrap();
    server.ok(&["script", "add", "deploy", "--replace", "--body", "exit 3"]);
    let out = server.output(&["run", "deploy", "--host", "r1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!after.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_never_appear_in_output_or_logs() {
    const SECRET: &str = "pa55-w0rd-XYZZY";
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _agent = server.agent("r1", dir.path(), &[], "").await;
    server.set_secret("API_TOKEN", "r1", SECRET);

    let out = server.output(&[
        "-vv",
        "run",
        "--host",
        "r1",
        "--command",
        "echo token=$API_TOKEN; echo $API_TOKEN >&2; test ${#API_TOKEN} -eq 15",
    ]);
    let all = text(&out);
    assert!(out.status.success(), "the agent got the real value: {all}");
    assert!(all.contains("token=********"), "{all}");
    let mut shown = all;
    for args in [
        vec!["env", "list"],
        vec!["env", "list", "--json"],
        vec!["history", "--json"],
        vec!["history", "--run", "1"],
        vec!["events", "--json"],
        vec!["host", "show", "r1", "--json"],
    ] {
        shown.push_str(&text(&server.output(&args)));
    }
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("API_TOKEN"));
}

#[tokio::test(flavor = "multi_thread")]
async fn control_upload_rotation_and_cancel_from_the_command_line() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _a = server.agent("r1", dir.path(), &["g"], "").await;
    let _b = server.agent("r2", dir.path(), &["g"], "").await;

    let local = dir.path().join("blob");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
    std::fs::write(&local, &data).unwrap();
    let target = dir.path().join("uploaded/blob");
    let done = server.results(&[
        "upload",
        &local.to_string_lossy(),
        "--path",
        &target.to_string_lossy(),
        "--mode",
        "640",
        "--group",
        "g",
        // r1 and r2 share this machine, so the first done would leave the other unchanged
        // (nothing sent, nothing logged): sent to both.
        "--force",
    ]);
    assert!(
        done.as_array()
            .unwrap()
            .iter()
            .all(|d| d["success"] == true),
        "{done:#}"
    );
    assert_eq!(std::fs::read(&target).unwrap(), data);

    assert!(server.json(&["reload", "--all"])[0]["success"] == true);

    let before = server.json(&["host", "show", "r1"])["trust"]["agent_key"].clone();
    let old_key = server.server_key("r1").await;
    let rotated = server.json(&["rotate-keys", "--all"]);
    assert!(
        rotated
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["success"] == true),
        "{rotated:#}"
    );
    let r1 = server.json(&["host", "show", "r1"]);
    assert_ne!(r1["trust"]["agent_key"], before);
    // The rotation logged in with the new key, so the agent refuses the old one at once.
    let old_login = Connection::connect(&Dial {
        address: r1["address"].as_str().unwrap().into(),
        port: r1["port"].as_u64().unwrap() as u16,
        server_key: Arc::new(old_key),
        agent_key: AgentKeyCheck::PinOnFirstContact,
        timeout: Duration::from_secs(20),
        limits: Limits::default(),
    })
    .await;
    assert!(
        matches!(old_login, Err(ClientError::AuthRejected)),
        "{:?}",
        old_login.err()
    );
    let pings = server.json(&["ping"]);
    assert!(
        pings
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["reachable"] == true),
        "{pings:#}"
    );

    // Cancel a run started by another server process.
    let mut run = server
        .command(&["run", "--host", "r2", "--command", "echo up; sleep 100"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    read_until(&mut run, |lines| lines.iter().any(|l| l.ends_with("up")));
    let id = server.runs().last().unwrap()["id"].to_string();
    let started = Instant::now();
    server.ok(&["cancel", &id]);
    // Cancelled, not failed: exit 130, as for an interrupt.
    assert_eq!(run.wait().unwrap().code(), Some(130));
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(server.runs().last().unwrap()["outcome"], "cancelled");

    // Each change is in the event log, naming who asked.
    let events = server.json(&["events", "--limit", "200"]);
    let by_cli = |kind: &str| -> Vec<String> {
        events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == kind)
            .inspect(|e| assert!(e["actor"].as_str().unwrap().starts_with("cli:"), "{e:#}"))
            .map(|e| {
                format!(
                    "{} {}",
                    e["host"].as_str().unwrap(),
                    e["detail"].as_str().unwrap()
                )
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    let blob = target.to_string_lossy();
    assert_eq!(
        by_cli("uploaded"),
        [
            format!("r1 {blob}, 300000 bytes"),
            format!("r2 {blob}, 300000 bytes")
        ]
    );
    assert_eq!(by_cli("control-sent").len(), 2, "{events:#}");
    assert!(
        by_cli("control-sent")[0].starts_with("r1 reload: "),
        "{events:#}"
    );
    assert_eq!(
        by_cli("run-cancelled"),
        [format!(
            "r2 run {id}: command: echo up; sleep 100 (action {})",
            server.runs().last().unwrap()["action"].as_str().unwrap()
        )]
    );
    assert_eq!(by_cli("run-started").len(), 1, "{events:#}");
    // `rotate-keys --all` above rotated both hosts' keys.
    let rotated = by_cli("key-rotated");
    assert_eq!(rotated.len(), 2, "{events:#}");
    assert!(
        rotated[0].starts_with("r1 server key SHA256:"),
        "{rotated:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_heartbeats_rotates_and_stops_on_sigterm() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _a = server.agent("r1", dir.path(), &[], "").await;
    let before = server.json(&["host", "show", "r1"])["trust"]["agent_key"].clone();
    std::thread::sleep(Duration::from_millis(1100));
    let mut serve = server
        .command(&[
            "serve",
            "--heartbeat-interval",
            "1s",
            "--rotate-every",
            "1s",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(serve.stderr.take().unwrap());
    let mut rotated = false;
    for line in stderr.lines() {
        let line = line.unwrap();
        if line.contains("keys rotated") {
            rotated = true;
            break;
        }
        assert!(!line.contains("ERROR"), "{line}");
    }
    assert!(rotated);
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(serve.id() as i32, libc::SIGTERM) }, 0);
    let status = serve.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let host = server.json(&["host", "show", "r1"]);
    assert_eq!(host["status"]["reachable"], true, "{host:#}");
    assert_ne!(host["trust"]["agent_key"], before);
    let events = server.json(&["events"]);
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"reachability") && kinds.contains(&"key-rotated"),
        "{kinds:?}"
    );
    // The daemon's rotation is the server's own doing.
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "key-rotated")
            .all(|e| e["actor"] == "server"),
        "{events:#}"
    );
    server.ok(&["ping"]);
}

/// An agent whose `allow_from` leaves this server out closes the connection before the SSH
/// handshake: the operator is told so, and what usually causes it.
#[tokio::test(flavor = "multi_thread")]
async fn an_agent_that_refuses_this_address_is_explained() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _agent = server
        .agent("r1", dir.path(), &[], "allow_from = 10.0.0.0/8")
        .await;

    let (out, _) = server.bounded(&["ping", "--host", "r1", "--json"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let pings: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pings[0]["reachable"], false, "{pings:#}");
    let error = pings[0]["error"].as_str().unwrap();
    assert!(
        error.contains("closed the connection before the SSH handshake")
            && error.contains("allow_from"),
        "{error}"
    );
    let (out, _) = server.bounded(&["ping", "--host", "r1"]).await;
    assert!(text(&out).contains("allow_from"), "{}", text(&out));
}

/// Any number of processes may start at once on a new data directory: the first to take the
/// database's write lock creates the schema, the others wait for it and find it made (they
/// used to apply the migrations again: `duplicate column name: actor`).
#[tokio::test(flavor = "multi_thread")]
async fn eight_processes_at_once_on_a_new_data_directory_all_succeed() {
    let top = tempfile::tempdir().unwrap();
    let server = Server::at(&top.path().join("data"));
    // All eight started before any is waited for.
    let adds: Vec<_> = (1..=8)
        .map(|i| {
            let (name, address) = (format!("r{i}"), format!("192.0.2.{i}"));
            let child = server
                .async_command(&["host", "add", &name, &address])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (name, child)
        })
        .collect();
    for (name, child) in adds {
        let out = tokio::time::timeout(BOUND, child.wait_with_output())
            .await
            .expect("host add within the bound")
            .unwrap();
        assert!(out.status.success(), "host add {name}: {}", text(&out));
    }
    let hosts = server.json(&["host", "list"]);
    assert_eq!(hosts.as_array().unwrap().len(), 8, "{hosts:#}");
}

/// The agent accepts 512 channels on one connection over its life. A kept connection is
/// renewed before that, so a fleet under steady use (here `serve`'s heartbeats every second,
/// and pings and runs on the same fleet, more than twice the limit) never sees a channel
/// refused: no heartbeat finds the host unreachable, no run fails.
#[tokio::test(flavor = "multi_thread")]
async fn kept_connections_are_renewed_before_the_agents_channel_limit() {
    use otto_server::fleet::{Fleet, FleetOptions};
    use otto_server::ops::{Actor, Job, Ops, RunSink, Targets};
    use otto_server::serve::{ServeOptions, serve};
    use std::sync::atomic::{AtomicUsize, Ordering};

    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _agent = server.agent("r1", dir.path(), &[], "").await;
    let fleet = Arc::new(
        Fleet::open(server.data(), FleetOptions::default())
            .await
            .unwrap(),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = ServeOptions {
        heartbeat_interval: Duration::from_secs(1),
        rotate_every: None,
        http: None,
        config_file: None,
        call_home: None,
    };
    let daemon = tokio::spawn(serve(fleet.clone(), options, async {
        let _ = stopped.await;
    }));

    // Four callers at once, each a ping after another and every eighth time a run, until more
    // than twice the limit of channels have been opened over at least three heartbeats.
    const CHANNELS: usize = 2 * otto_proto::MAX_CHANNELS_PER_CONNECTION + 100;
    let opened = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let ops = Ops::new(fleet.clone(), Actor::Server);
            let opened = opened.clone();
            tokio::spawn(async move {
                let mut i = 0;
                while opened.load(Ordering::Relaxed) < CHANNELS
                    || started.elapsed() < Duration::from_secs(3)
                {
                    i += 1;
                    if i % 8 == 0 {
                        let job = Job::Command {
                            command: "true".into(),
                            timeout_secs: Some(30),
                        };
                        let sink: RunSink = Arc::new(|_| {});
                        let results = ops
                            .run(&Targets::hosts(["r1"]), &job, 1024, sink)
                            .await
                            .unwrap();
                        assert!(results[0].success, "run {i}: {results:?}");
                    } else {
                        let pings = ops.ping(&Targets::hosts(["r1"])).await.unwrap();
                        assert!(pings[0].reachable, "ping {i}: {pings:?}");
                    }
                    opened.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for caller in callers {
        tokio::time::timeout(BOUND, caller)
            .await
            .expect("the callers end within the bound")
            .unwrap();
    }
    stop.send(()).unwrap();
    tokio::time::timeout(BOUND, daemon)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    let ops = Ops::new(fleet.clone(), Actor::Server);
    let events = ops.events(Some("r1"), None, 1000).await.unwrap();
    let unreachable: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "reachability" && e.detail.starts_with("unreachable"))
        .collect();
    assert!(unreachable.is_empty(), "{unreachable:#?}");
    let host = fleet.store().host("r1").await.unwrap();
    assert_eq!(host.status.reachable, Some(true), "{host:?}");
}

/// The server accepts no Ed25519 key that is not canonical (32 × 0xFF: y ≥ p), whether an
/// administrator gives it (`host trust`, as `host approve` and imports read keys the same way)
/// or an agent answers a key rotation with it: the pinned key stays.
#[tokio::test(flavor = "multi_thread")]
async fn a_non_canonical_agent_key_is_refused_from_the_operator_and_from_a_rotation() {
    use russh::keys::ssh_key::public::Ed25519PublicKey;

    const NOT_CANONICAL: [u8; 32] = [0xff; 32];
    let server = Server::new();
    let _fake = server
        .fake("r1", crate::fake_agent::Behaviour::RotatesTo(NOT_CANONICAL))
        .await;
    let pinned = server.json(&["host", "show", "r1"])["trust"]["agent_key"].clone();
    let key_text = keys::to_openssh(&russh::keys::PublicKey::from(Ed25519PublicKey(
        NOT_CANONICAL,
    )));

    let (out, _) = server.bounded(&["host", "trust", "r1", &key_text]).await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("not a valid Ed25519 public key (not a canonical encoding)"),
        "{}",
        text(&out)
    );

    let (out, _) = server.bounded(&["rotate-keys", "--host", "r1"]).await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("the agent's key is refused: not a valid Ed25519 public key"),
        "{}",
        text(&out)
    );
    let host = server.json(&["host", "show", "r1"]);
    assert_eq!(host["trust"]["agent_key"], pinned, "{host:#}");
}

/// The runs of [`hold_every_channel`], each ending with its outcome.
pub type Holding = Vec<tokio::task::JoinHandle<Result<otto_server::client::Outcome, ClientError>>>;

/// Holds all the channels `agent` (host `name` of `server`) serves at once, 32, with runs of
/// `sleep secs` on another connection with the host's own server key; returns once all run.
pub async fn hold_every_channel(
    server: &Server,
    name: &str,
    agent: &LocalAgent,
    secs: u64,
) -> Holding {
    let key = Arc::new(server.server_key(name).await);
    let conn = Connection::connect(&agent.dial(key)).await.unwrap();
    let started = tempfile::tempdir().unwrap();
    let runs: Holding = (0..32)
        .map(|i| {
            let conn = conn.clone();
            let script = otto_server::client::ScriptRequest {
                name: "hold".into(),
                interpreter: "/bin/sh".into(),
                body: format!("touch {}/{i}; sleep {secs}\n", started.path().display())
                    .into_bytes(),
                env: Vec::new(),
                run_as: otto_proto::Credentials::Inherit,
                working_dir: None,
                timeout: otto_proto::ScriptTimeout::Seconds(60),
            };
            tokio::spawn(async move {
                let (tx, mut rx) = tokio::sync::mpsc::channel(8);
                let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
                let report = conn
                    .run_script(&script, otto_server::client::new_action_id(), tx)
                    .await;
                drain.await.unwrap();
                report.map(|r| r.outcome)
            })
        })
        .collect();
    let deadline = Instant::now() + BOUND;
    while std::fs::read_dir(started.path()).unwrap().count() < 32 {
        assert!(Instant::now() < deadline, "the runs never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    runs
}

/// Issue 21: an agent serving all the channels it may at once (32: here held by runs of
/// another server connection) refuses the heartbeat's channel: it answered and authenticated,
/// so it is recorded and reported as reachable but busy, never as unreachable.
#[tokio::test(flavor = "multi_thread")]
async fn a_heartbeat_to_an_agent_with_every_channel_busy_finds_it_reachable_and_busy() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let agent = server.agent("r1", dir.path(), &[], "").await;
    server.ok(&["ping", "--host", "r1"]);
    let runs = hold_every_channel(&server, "r1", &agent, 10).await;

    let (out, _) = server.bounded(&["ping", "--host", "r1"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("busy"), "{}", text(&out));
    let status = &server.json(&["host", "show", "r1"])["status"];
    assert_eq!(status["reachable"], true, "{status:#}");
    assert_eq!(status["busy"], true, "{status:#}");
    assert!(
        status["last_error"]
            .as_str()
            .unwrap()
            .contains("ResourceShortage"),
        "{status:#}"
    );
    let pings = server.bounded_json(&["ping", "--host", "r1"]).await;
    assert_eq!(
        (&pings[0]["reachable"], &pings[0]["busy"]),
        (&Value::Bool(true), &Value::Bool(true)),
        "{pings:#}"
    );
    assert!(text(&server.output(&["host", "list"])).contains("busy"));
    let events = server.json(&["events", "--limit", "100"]);
    assert!(
        !events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["detail"].as_str().unwrap().starts_with("unreachable")),
        "{events:#}"
    );

    // The runs end well; the next heartbeat finds it reachable and no longer busy.
    for run in runs {
        assert_eq!(
            run.await.unwrap().unwrap(),
            otto_server::client::Outcome::Exited(0)
        );
    }
    let pings = server.bounded_json(&["ping", "--host", "r1"]).await;
    assert_eq!(pings[0]["busy"], false, "{pings:#}");
    assert_eq!(
        server.json(&["host", "show", "r1"])["status"]["busy"],
        false
    );
}
