//! The commands on hosts (`ping`, `run`, `cancel`, `upload`, `update-agents`, the control
//! commands, `history`, `events`) both ways: two identical fleets, each with a real agent (`r1`,
//! in group `lab`), a host whose agent is down (`gone`) and a stored script; one driven on its
//! data directory, the other through a real `serve` (`--server`), row by row, comparing what
//! each prints and how it exits. Times, durations, ids of actions and the actor (a login, or an
//! API user) are masked.

use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use otto_server::demo::LocalAgent;

use super::{Both, Masks, row};
use crate::harness::{Server, text};

/// The table's masks: output compared masked, and the error said through `serve` as locally.
struct Runs;

impl Masks for Runs {
    fn stdout(args: &[&str], out: &[u8]) -> Value {
        Value::Array(masked(args, out))
    }

    /// The error says what it says locally.
    fn stderr(args: &[&str], here: &[u8], there: &[u8]) {
        let said = timeless(&String::from_utf8_lossy(here));
        let there_said = timeless(&String::from_utf8_lossy(there));
        assert_eq!(said, there_said, "{args:?}: locally, then through serve");
    }
}

/// A fleet's real agent and its directory, kept while the fleet is used.
type Agent = (LocalAgent, tempfile::TempDir);

/// Two alike fleets of `r1` (a real agent, in `lab`), `gone` (no agent where it points) and the
/// script `hello`; and their agents.
async fn fleets() -> (Both, [Agent; 2]) {
    let (local, remote) = (Server::new(), Server::new());
    let agents = [fleet(&local).await, fleet(&remote).await];
    (Both::new(local, remote), agents)
}

/// Makes the fleet on `server`; returns its agent.
async fn fleet(server: &Server) -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let agent = server.agent("r1", dir.path(), &["lab"], "").await;
    let key = server.add("gone", &[]).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    // Any agent key: nothing listens there.
    server.point("gone", port, &key).await;
    server.ok(&[
        "script",
        "add",
        "hello",
        "--body",
        "echo hello from $OTTO_HOST_NAME",
    ]);
    (agent, dir)
}

/// What `out` printed, with what differs between two fleets or two moments masked: in JSON
/// (each line, for `run`'s), times, durations, action ids, actors, facts; in text, nothing.
fn masked(args: &[&str], out: &[u8]) -> Vec<Value> {
    let text = String::from_utf8_lossy(out);
    if !args.contains(&"--json") {
        // Words, durations masked (a table's columns are as wide as their widest value).
        let line = |l: &str| {
            let mut words: Vec<&str> = l.split_whitespace().collect();
            for i in 1..words.len() {
                let number = words[i - 1].chars().all(|c| c.is_ascii_digit() || c == '.');
                if number && ["ms", "s", "min", "h"].contains(&words[i]) {
                    words[i - 1] = "*";
                }
            }
            json!(words.join(" "))
        };
        return text.lines().map(line).collect();
    }
    if let Ok(mut whole) = serde_json::from_str::<Value>(&text) {
        mask(&mut whole);
        // A list of runs is by id, and hosts worked on at once get theirs in the order they
        // start: compared as a set.
        if let Value::Array(items) = &mut whole {
            items.sort_by_key(|item| item.to_string());
        }
        return vec![whole];
    }
    let mut lines: Vec<Value> = text
        .lines()
        .map(|line| {
            let mut value: Value = serde_json::from_str(line).unwrap_or(json!(line));
            mask(&mut value);
            value
        })
        .collect();
    // Hosts end in the order they end: each host's events in order, the start first, the
    // summary last.
    let rank = |v: &Value| match v["type"].as_str() {
        Some("started") => 0,
        Some("summary") => 2,
        _ => 1,
    };
    lines.sort_by_key(|v| (rank(v), v["host"].as_str().unwrap_or_default().to_owned()));
    lines
}

/// `text` without its parts that tell a moment: `(action 0123…)` and, where `serve` holds a
/// host's last failure, `(next try in 1s)`; and the run's id an event's detail opens with
/// (`run 12: …`), which hosts worked on at once get in the order they start.
fn timeless(text: &str) -> String {
    let mut text = text.to_owned();
    for opening in [" (action ", " (next try in "] {
        while let Some(start) = text.find(opening) {
            let end = text[start..]
                .find(')')
                .map_or(text.len(), |e| start + e + 1);
            text.replace_range(start..end, "");
        }
    }
    let run = text
        .strip_prefix("run ")
        .and_then(|rest| rest.split_once(": "));
    if let Some((id, rest)) = run
        && !id.is_empty()
        && id.chars().all(|c| c.is_ascii_digit())
    {
        text = format!("run *: {rest}");
    }
    text
}

/// `value` with its volatile fields (by key) starred and its strings made [`timeless`].
fn mask(value: &mut Value) {
    // A run's id too: hosts worked on at once get theirs in the order they start.
    const VOLATILE: [&str; 11] = [
        "id",
        "run",
        "elapsed_ms",
        "round_trip_ms",
        "facts",
        "action",
        "started",
        "finished",
        "at",
        "actor",
        "agent_version",
    ];
    match value {
        Value::String(text) => *text = timeless(text),
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if VOLATILE.contains(&key.as_str()) && !v.is_null() {
                    *v = json!("*");
                } else {
                    mask(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_commands_on_hosts_print_and_exit_alike_locally_and_through_serve() {
    let (both, _agents) = fleets().await;
    // (arguments, exit code): success, some hosts failed (1), usage (2), none reached (3),
    // not found (4).
    let table: &[(&[&str], i32)] = &[
        (&["--json", "ping", "-H", "r1"], 0),
        (&["--json", "ping", "-H", "gone"], 3),
        (&["--json", "ping", "-H", "r1,gone"], 1),
        (&["run", "-H", "r1", "-c", "echo one; echo two"], 0),
        (
            &["--json", "run", "-H", "r1", "-c", "echo one; echo two"],
            0,
        ),
        (&["--json", "run", "hello", "--group", "lab"], 0),
        (&["--json", "run", "-H", "r1", "-c", "exit 3"], 1),
        (&["--json", "run", "-H", "r1,gone", "-c", "true"], 1),
        (&["--json", "run", "-H", "gone", "-c", "true"], 3),
        (
            &["--json", "run", "-H", "r1", "-c", "true", "--batch", "0"],
            2,
        ),
        (&["--json", "run", "-H", "r1", "-c", "   "], 2),
        (&["--json", "run", "-H", "nosuch", "-c", "true"], 4),
        (&["--json", "run", "nosuch", "-H", "r1"], 4),
        (
            &[
                "--json",
                "run",
                "-g",
                "lab*",
                "--exclude",
                "r1",
                "-c",
                "true",
            ],
            2,
        ),
        (&["--json", "reload", "-H", "gone"], 3),
        (&["--json", "reload", "-H", "nosuch"], 4),
        (&["--json", "reboot", "-g", "lab"], 2),
        (&["--json", "cancel", "999"], 4),
        (&["--json", "history", "--limit", "3"], 0),
        (&["--json", "history", "--run", "1"], 0),
        (&["--json", "history", "--run", "999"], 4),
        // Found by script, outcome, time and user (nobody here: none).
        (&["--json", "history", "--script", "hello"], 0),
        (
            &["--json", "history", "--outcome", "failed", "--host", "r1"],
            0,
        ),
        (
            &["--json", "history", "--command", "exit 3", "--since", "1h"],
            0,
        ),
        (&["--json", "history", "--until", "2000-01-01T00:00:00Z"], 0),
        (&["--json", "history", "--user", "nobody"], 0),
        (&["--json", "history", "--since", "last tuesday"], 2),
        (
            &["--json", "events", "--kind", "run-started", "--limit", "4"],
            0,
        ),
    ];
    for (args, code) in table {
        both.check::<Runs>(&row(args, *code)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_print_and_exit_alike_locally_and_through_serve() {
    let (both, _agents) = fleets().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blob");
    std::fs::write(&file, vec![7u8; 300 << 10]).unwrap();
    let (file, target) = (file.to_str().unwrap(), dir.path().join("up"));
    let target = target.to_str().unwrap();
    let missing = dir.path().join("missing");
    // Forced: each row runs twice (locally, then through the server), and the second would
    // otherwise find the file as the first left it (the last row shows that, both ways alike).
    let upload = |rest: &[&'static str]| {
        let mut args = vec!["upload", file, "--path", target, "--force"];
        args.extend_from_slice(rest);
        args
    };
    // (arguments, exit code): success, some hosts failed (1), none reached (3), not found (4);
    // in batches of one, stopping at the first failure (`gone` first: the rest skipped).
    let mut table: Vec<(Vec<&str>, i32)> = vec![
        (upload(&["-H", "r1"]), 0),
        (upload(&["-H", "r1", "--mode", "600", "--json"]), 0),
        (upload(&["-H", "r1,gone", "--json"]), 1),
        (upload(&["-g", "lab", "--all", "--json"]), 1),
        (upload(&["-H", "gone", "--json"]), 3),
        (upload(&["-H", "nosuch", "--json"]), 4),
        (
            upload(&["--all", "--batch", "1", "--max-failures", "0", "--json"]),
            1,
        ),
    ];
    let missing = [
        "upload",
        missing.to_str().unwrap(),
        "--path",
        target,
        "-H",
        "r1",
    ];
    table.push((missing.to_vec(), 4));
    let relative = ["upload", file, "--path", "relative", "-H", "r1"];
    table.push((relative.to_vec(), 2));
    // Unforced, the file as the rows left it (mode 644): unchanged, nothing sent.
    let unchanged = ["upload", file, "--path", target, "-H", "r1"];
    table.push((unchanged.to_vec(), 0));
    for (args, code) in &table {
        both.check::<Runs>(&row(args, *code)).await;
    }
    assert_eq!(std::fs::read(target).unwrap().len(), 300 << 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn updates_of_agents_print_and_exit_alike_locally_and_through_serve() {
    let (both, _agents) = fleets().await;
    // (arguments, exit code): r1 heard from (`serve` pings its hosts as it starts), its binary
    // is missing from both catalogues (none: the same `dist/` that is not there) and it fails
    // saying how to build it (1); not found (4), a bad trial or batch (2).
    let table: &[(&[&str], i32)] = &[
        (&["--json", "ping", "-H", "r1"], 0),
        (&["--json", "update-agents", "-H", "r1"], 1),
        (&["update-agents", "-g", "lab"], 1),
        (&["--json", "update-agents", "-H", "nosuch"], 4),
        (&["--json", "update-agents", "--all", "--batch", "0"], 2),
        (
            &["--json", "update-agents", "--all", "--confirm-within", "0s"],
            2,
        ),
    ];
    for (args, code) in table {
        both.check::<Runs>(&row(args, *code)).await;
    }
    // Who may not change hosts may not update them.
    let refused = both
        .there(&both.rita, &["update-agents", "-H", "r1"], None)
        .await;
    assert_eq!(refused.status.code(), Some(8), "{}", text(&refused));
    assert!(text(&refused).contains("hosts"), "{}", text(&refused));
}

#[tokio::test(flavor = "multi_thread")]
async fn output_files_are_written_both_ways() {
    let (both, _agents) = fleets().await;
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let run = |dir: &Path| {
        let dir = dir.to_str().unwrap().to_owned();
        move || {
            vec![
                "run".to_owned(),
                "-H".into(),
                "r1".into(),
                "-c".into(),
                "printf 'a\\nb'; echo err >&2".into(),
                "--output-dir".into(),
                dir.clone(),
            ]
        }
    };
    for (through, dir) in [(false, dirs.0.path()), (true, dirs.1.path())] {
        let args = run(dir)();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = if through {
            both.there(&both.root, &args, None).await
        } else {
            both.here(&args, None).await
        };
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(std::fs::read(dir.join("r1.stdout")).unwrap(), b"a\nb");
        assert_eq!(std::fs::read(dir.join("r1.stderr")).unwrap(), b"err\n");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_of_no_host_is_refused_with_one_message_by_the_cli_and_the_api() {
    let (both, _agents) = fleets().await;
    let (daemon, key) = (&both.daemon, &both.root);
    let body = json!({"command": "true", "hosts": ["r1"], "batch": 0});
    let (status, refused) = daemon
        .call(Method::POST, "/api/v1/runs", Some(key), &body)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("has no host"), "{message}");
    let control = json!({"action": "reload", "hosts": ["r1"], "batch": "0%"});
    let (status, refused) = daemon
        .call(Method::POST, "/api/v1/control", Some(key), &control)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("has no host")
    );
    // The command line says the same, both ways (clap refuses it as it parses, by ops' rule).
    for args in [
        &["run", "-H", "r1", "-c", "true", "--batch", "0"][..],
        &[
            "upload",
            "/etc/hostname",
            "--path",
            "/tmp/x",
            "-H",
            "r1",
            "--batch",
            "0",
        ],
    ] {
        let here = both.remote.bounded(args).await.0;
        assert_eq!(here.status.code(), Some(2), "{}", text(&here));
        assert!(text(&here).contains(message), "{}", text(&here));
    }
    let there = both
        .there(
            key,
            &["run", "-H", "r1", "-c", "true", "--batch", "0"],
            None,
        )
        .await;
    assert!(text(&there).contains(message), "{}", text(&there));
}
