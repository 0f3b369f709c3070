//! Host patterns and rolling execution, end to end: the real `otto-server` binary and real
//! `otto-agent` processes on loopback, with a real SQLite file.

use std::process::Stdio;

use serde_json::Value;

use otto_server::demo::LocalAgent;

use crate::harness::{Server, text};

/// The hosts a `--json` result array names, in order.
fn hosts(results: &Value) -> Vec<String> {
    let array = results.as_array().unwrap();
    array
        .iter()
        .map(|r| r["host"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn hosts_are_named_by_globs_lists_groups_and_exclusions() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _a1 = server.agent("ap-1", dir.path(), &["aps"], "").await;
    let _a2 = server.agent("ap-2", dir.path(), &["aps"], "").await;
    let _c = server.agent("core", dir.path(), &[], "").await;

    let ping = |args: &[&str]| {
        let mut all = vec!["ping"];
        all.extend_from_slice(args);
        hosts(&server.json(&all))
    };
    assert_eq!(ping(&["-H", "ap-*"]), ["ap-1", "ap-2"]);
    assert_eq!(ping(&["-H", "ap-?,core"]), ["ap-1", "ap-2", "core"]);
    assert_eq!(
        ping(&["-H", "[ac]*", "--exclude", "ap-2"]),
        ["ap-1", "core"]
    );
    assert_eq!(ping(&["--all", "--exclude", "ap-*"]), ["core"]);
    assert_eq!(ping(&["--all", "--exclude-group", "aps"]), ["core"]);
    assert_eq!(
        ping(&["--exclude", "ap-*"]),
        ["core"],
        "ping's default is all"
    );
    assert_eq!(
        ping(&["-g", "aps", "-H", "core", "--exclude", "ap-1"]),
        ["ap-2", "core"]
    );
    let run = server.results(&["run", "-H", "ap-*", "--command", "true"]);
    assert_eq!(hosts(&run), ["ap-1", "ap-2"]);

    let none = server.output(&["run", "-H", "zz-*", "--command", "true"]);
    assert_eq!(none.status.code(), Some(4), "{}", text(&none));
    assert!(text(&none).contains("zz-*"), "{}", text(&none));
    let missing = server.output(&["reload", "-H", "ap-1,nope"]);
    assert_eq!(missing.status.code(), Some(4), "{}", text(&missing));
    assert!(text(&missing).contains("nope"), "{}", text(&missing));
    let bad = server.output(&["reload", "-H", "ap/1"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    let unclosed = server.output(&["reload", "-H", "ap-[12"]);
    assert_eq!(unclosed.status.code(), Some(2), "{}", text(&unclosed));
}

/// Runs `args` with a command that appends `start HOST` and `end HOST` around a sleep to
/// `log`; returns the lines of `log`.
fn logged_run(server: &Server, log: &std::path::Path, args: &[&str]) -> Vec<String> {
    let command = format!(
        "echo start $OTTO_HOST_NAME >> {0}; sleep 1; echo end $OTTO_HOST_NAME >> {0}",
        log.display()
    );
    let mut all = vec!["run", "--all", "--command", &command];
    all.extend_from_slice(args);
    server.ok(&all);
    let lines = std::fs::read_to_string(log).unwrap();
    std::fs::remove_file(log).unwrap();
    lines.lines().map(str::to_string).collect()
}

/// Whether every host's `start` is followed by its own `end` before another starts.
fn one_at_a_time(lines: &[String]) -> bool {
    lines.len().is_multiple_of(2)
        && lines.chunks(2).all(|pair| {
            let host = pair[0].strip_prefix("start ");
            host.is_some() && pair[1].strip_prefix("end ") == host
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_one_and_dial_limit_one_run_one_host_at_a_time() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _agents = [
        server.agent("r1", dir.path(), &[], "").await,
        server.agent("r2", dir.path(), &[], "").await,
        server.agent("r3", dir.path(), &[], "").await,
    ];
    let log = dir.path().join("log");

    let lines = logged_run(&server, &log, &["--batch", "1"]);
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert!(one_at_a_time(&lines), "the runs overlapped: {lines:?}");
    let lines = logged_run(&server, &log, &["--dial-limit", "1"]);
    assert!(one_at_a_time(&lines), "the runs overlapped: {lines:?}");
    // Without a limit they all run at once: every start comes before any end.
    let lines = logged_run(&server, &log, &[]);
    assert!(
        lines[..3].iter().all(|l| l.starts_with("start")),
        "{lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn max_failures_zero_stops_after_the_first_failing_batch() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _agents = [
        server.agent("r1", dir.path(), &[], "").await,
        server.agent("r2", dir.path(), &[], "").await,
        server.agent("r3", dir.path(), &[], "").await,
    ];
    let out = server.output(&[
        "run",
        "--all",
        "--batch",
        "1",
        "--max-failures",
        "0",
        "--command",
        "test $OTTO_HOST_NAME != r1",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let results = crate::harness::results(&out.stdout);
    assert_eq!(hosts(&results), ["r1", "r2", "r3"]);
    assert_eq!(results[0]["success"], false);
    for skipped in &results.as_array().unwrap()[1..] {
        assert_eq!(skipped["success"], false, "{skipped}");
        assert!(skipped["run"].is_null(), "{skipped}");
        let outcome = skipped["outcome"].as_str().unwrap();
        assert!(outcome.starts_with("skipped"), "{skipped}");
    }
    assert_eq!(server.runs().len(), 1, "only r1 ran");
    // Each host skipped has its `done` line, as each host run has.
    let done: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["type"] == "done")
        .map(|e| {
            let field = |name: &str| e[name].as_str().unwrap().to_string();
            (field("host"), field("status"))
        })
        .collect();
    let want = [("r1", "failed"), ("r2", "skipped"), ("r3", "skipped")];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(h, s)| (h.to_string(), s.to_string()))
        .collect();
    assert_eq!(done, want, "{}", text(&out));
    let summary = String::from_utf8_lossy(&out.stdout);
    let summary: Value = serde_json::from_str(summary.lines().last().unwrap()).unwrap();
    assert_eq!(
        (&summary["failed"], &summary["skipped"]),
        (&1.into(), &2.into())
    );

    // Without JSON, the table and the exit message say skipped, not failed; the exit code is
    // that of hosts that failed.
    let out = server.output(&[
        "run",
        "--all",
        "--batch",
        "1",
        "--max-failures",
        "0",
        "--command",
        "test $OTTO_HOST_NAME != r1",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1 of 3 hosts failed, 2 skipped"),
        "{}",
        text(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let r3 = stdout.lines().find(|l| l.starts_with("r3 ")).unwrap();
    assert!(r3.contains(" skipped "), "{stdout}");
    assert!(
        stdout.contains("0 of 3 hosts succeeded, 2 skipped"),
        "{stdout}"
    );

    // A percentage: 50% of 3 hosts is 1 host per batch; one failure in three is within 40%.
    let out = server.output(&[
        "run",
        "--all",
        "--batch",
        "50%",
        "--max-failures",
        "40%",
        "--command",
        "test $OTTO_HOST_NAME != r1",
        "--json",
    ]);
    let results = crate::harness::results(&out.stdout);
    let ok: Vec<bool> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["success"] == true)
        .collect();
    assert_eq!(ok, [false, true, true], "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn reboot_of_several_hosts_needs_yes_off_a_terminal() {
    let (server, dir) = (Server::new(), tempfile::tempdir().unwrap());
    let _agents = harmless_pair(&server, dir.path()).await;
    let refused = server
        .command(&["reboot", "--all"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(text(&refused).contains("--yes"), "{}", text(&refused));
    let events = server.json(&["events"]);
    assert!(
        !events.to_string().contains("control-sent"),
        "nothing was sent: {events}"
    );
    let one = server
        .command(&["reboot", "-H", "r1"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        one.status.success(),
        "one host needs no --yes: {}",
        text(&one)
    );
    let both = server
        .command(&["reboot", "--all", "--yes", "--batch", "1"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(both.status.success(), "{}", text(&both));
}

/// `otto-server ARGS` on a terminal (`script`'s pseudo-terminal) given the keystrokes `typed`;
/// returns its exit code and what the terminal showed.
fn on_a_terminal(server: &Server, args: &str, typed: &[u8]) -> (Option<i32>, String) {
    use std::io::{Read, Write};
    let line = format!(
        "{} --data-dir {} {args}",
        env!("CARGO_BIN_EXE_otto-server"),
        server.data().display()
    );
    let mut child = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Kept open until the command ends: `script` may stop at the end of its input.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(typed).unwrap();
    let mut shown = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut shown)
        .unwrap();
    let status = child.wait().unwrap();
    drop(stdin);
    (status.code(), shown)
}

#[tokio::test(flavor = "multi_thread")]
async fn reboot_of_several_hosts_asks_on_a_terminal() {
    let (server, dir) = (Server::new(), tempfile::tempdir().unwrap());
    let _agents = harmless_pair(&server, dir.path()).await;
    let (code, shown) = on_a_terminal(&server, "shutdown --all", b"n\n");
    assert_eq!(code, Some(2), "{shown}");
    assert!(
        shown.contains("shut down the hosts named (all)? [y/N]"),
        "{shown}"
    );
    let events = server.json(&["events"]);
    assert!(!events.to_string().contains("control-sent"), "{events}");

    let (code, shown) = on_a_terminal(&server, "reboot --all", b"y\n");
    assert_eq!(code, Some(0), "{shown}");
    assert!(
        shown.contains("reboot the hosts named (all)? [y/N]"),
        "{shown}"
    );
    let events = server.json(&["events"]);
    assert_eq!(
        events.to_string().matches("control-sent").count(),
        2,
        "{events}"
    );
}

/// Agents r1 and r2 whose reboot and shutdown commands are `true`: never the real ones,
/// whatever the server does.
async fn harmless_pair(server: &Server, dir: &std::path::Path) -> [LocalAgent; 2] {
    let config = "reboot_command = true\nshutdown_command = true\n";
    [
        server.agent("r1", dir, &[], config).await,
        server.agent("r2", dir, &[], config).await,
    ]
}
