//! Progress on a terminal (a pseudo-terminal from util-linux's `script`): one bar per host
//! during an upload (locally and through `serve`), and a live count of the hosts done, failed
//! and running during a run; none of it when the output is piped. The real binary and two real
//! agents.

use std::process::Stdio;

use tokio::io::AsyncReadExt;

use crate::harness::{BOUND, Server, text};
use crate::http::{Daemon, key_of};
use crate::users::add_user;

/// `script` running `otto-server ARGS` on a pseudo-terminal, its stdout (what the terminal
/// shows) piped.
fn on_a_terminal(server: &Server, args: &[&str]) -> tokio::process::Child {
    let mut line = format!(
        "'{}' --data-dir '{}'",
        env!("CARGO_BIN_EXE_otto-server"),
        server.data().display()
    );
    for arg in args {
        line.push_str(&format!(" '{arg}'"));
    }
    tokio::process::Command::new("script")
        .args(["--quiet", "--return", "--command", &line, "/dev/null"])
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .env("OTTO_CONFIG", "/dev/null")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// What a terminal shows, as lines: escape sequences (colours, cursor moves, clearing) taken
/// out, and a carriage return ending a line as a newline does (a bar is redrawn in place).
fn shown_lines(raw: &str) -> Vec<String> {
    let mut plain = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: `ESC [` parameters, then one final byte in @..~.
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            plain.push(if c == '\r' { '\n' } else { c });
        }
    }
    plain
        .lines()
        .map(|l| l.trim_end().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Reads `child`'s stdout until what it showed satisfies `enough` (or it ends); returns what
/// it showed so far.
async fn read_until(
    child: &mut tokio::process::Child,
    enough: impl Fn(&[String]) -> bool,
) -> String {
    let stdout = child.stdout.as_mut().unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(BOUND, stdout.read(&mut buf))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "waited in vain; shown: {:?}",
                    shown_lines(&String::from_utf8_lossy(&raw))
                )
            })
            .unwrap();
        raw.extend_from_slice(&buf[..n]);
        if n == 0 || enough(&shown_lines(&String::from_utf8_lossy(&raw))) {
            return String::from_utf8_lossy(&raw).into_owned();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_draws_one_bar_per_host_on_a_terminal_and_none_when_piped() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _a = server.agent("r1", dir.path(), &[], "").await;
    let _b = server.agent("router-2", dir.path(), &[], "").await;
    let local = dir.path().join("blob");
    std::fs::write(&local, vec![7u8; 1 << 20]).unwrap();
    let target = dir.path().join("uploaded");
    let upload = [
        "upload",
        local.to_str().unwrap(),
        "--path",
        target.to_str().unwrap(),
        "--all",
        // Sent each time (the hosts share the file: without it, all but the first would find
        // it there).
        "--force",
    ];
    // Locally, and through a running serve (its API's events bring each host's progress).
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
    let remote: Vec<&str> = through.iter().chain(&upload).copied().collect();
    for args in [&upload[..], &remote] {
        let mut shown_upload = on_a_terminal(&server, args);
        let shown = read_until(&mut shown_upload, |_| false).await;
        let status = tokio::time::timeout(BOUND, shown_upload.wait())
            .await
            .unwrap()
            .unwrap();
        let lines = shown_lines(&shown);
        assert!(status.success(), "{args:?}: {lines:#?}");
        // Each host's bar is left with its name, its own bytes (not the sum) and how it ended.
        // (A bar's line is padded to the terminal's width: it may run on into the next.)
        let plain = lines.join("\n");
        for host in ["r1      ", "router-2"] {
            let bar = format!("{host} {} 1.00 MiB/1.00 MiB ok", "█".repeat(30));
            assert!(plain.contains(&bar), "{args:?}: no {bar:?} in {lines:#?}");
        }
        // No bar counts both hosts' bytes: no total of 2 MiB (a speed such as "12.00 MiB/s"
        // may well show).
        assert!(!shown.contains("/2.00 MiB"), "{args:?}: {lines:#?}");

        // Piped, nothing is drawn: the table alone.
        let piped = server.output(args);
        assert!(piped.status.success(), "{args:?}: {}", text(&piped));
        assert!(piped.stderr.is_empty(), "{args:?}: {}", text(&piped));
        assert!(!text(&piped).contains("MiB"), "{args:?}: {}", text(&piped));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_counts_the_hosts_done_failed_and_running_on_a_terminal() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _a = server.agent("r1", dir.path(), &[], "").await;
    let _b = server.agent("r2", dir.path(), &[], "").await;
    // r1 fails at once; r2 runs until the test has seen the count, then succeeds.
    let flag = dir.path().join("flag");
    let command = format!(
        "test $OTTO_HOST_NAME = r2 || exit 1; while [ ! -e {} ]; do sleep 0.1; done",
        flag.display()
    );
    let mut run = on_a_terminal(&server, &["run", "--all", "--command", &command]);
    let counting = |lines: &[String]| {
        lines
            .iter()
            .any(|l| l.ends_with("0 done, 1 failed, 1 running"))
    };
    let before = read_until(&mut run, counting).await;
    assert!(
        counting(&shown_lines(&before)),
        "{:#?}",
        shown_lines(&before)
    );
    std::fs::write(&flag, b"").unwrap();
    let after = read_until(&mut run, |_| false).await;
    let status = tokio::time::timeout(BOUND, run.wait())
        .await
        .unwrap()
        .unwrap();
    let lines = shown_lines(&after);
    // The command fails (r1 did); the summary comes after the count, which is gone by then.
    assert_eq!(status.code(), Some(1), "{lines:#?}");
    let summary = lines
        .iter()
        .position(|l| l == "1 of 2 hosts succeeded")
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert!(
        lines[summary..].iter().all(|l| !l.contains("running")),
        "{lines:#?}"
    );

    // Piped, or with JSON, there is no count (the flag is there: r2 ends at once).
    let piped = server.output(&["run", "--all", "--command", &command]);
    assert_eq!(piped.status.code(), Some(1), "{}", text(&piped));
    assert!(!text(&piped).contains("running"), "{}", text(&piped));
    let mut json = on_a_terminal(&server, &["run", "--all", "--command", &command, "--json"]);
    let shown = read_until(&mut json, |_| false).await;
    assert!(!shown.contains("running"), "{shown}");
}
