//! Output for scripts: `run --json` and `upload --json` as JSON lines, one event per line,
//! with the real binary and two real agents.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use serde_json::Value;

use crate::fake_agent::Behaviour;
use crate::harness::{BOUND, Server, read_until, text};

/// Each line of `stdout` as JSON (every line must parse).
fn events(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn run_json_is_a_stream_of_events_with_the_output_in_order_and_the_summary_last() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _a = server.agent("r1", dir.path(), &[], "").await;
    let _b = server.agent("r2", dir.path(), &[], "").await;
    let out = server.output(&[
        "run",
        "--all",
        "--command",
        "for i in 1 2 3; do echo $OTTO_HOST_NAME-$i; done; echo oops >&2; test $OTTO_HOST_NAME = r1",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let events = events(&out.stdout);
    let first = &events[0];
    assert_eq!(first["type"], "started", "{events:?}");
    assert_eq!(first["hosts"], serde_json::json!(["r1", "r2"]));
    assert!(first["job"].as_str().unwrap().contains("echo"), "{first}");
    let last = events.last().unwrap();
    assert_eq!(last["type"], "summary", "{events:?}");
    assert_eq!(last["succeeded"], 1);
    assert_eq!(last["failed"], 1);
    assert_eq!(last["results"].as_array().unwrap().len(), 2);
    for host in ["r1", "r2"] {
        let of_host = |kind: &str| -> Vec<&Value> {
            events
                .iter()
                .filter(|e| e["type"] == kind && e["host"] == host)
                .collect()
        };
        let lines: Vec<&str> = of_host("output")
            .iter()
            .filter(|e| e["stream"] == "stdout")
            .map(|e| e["text"].as_str().unwrap())
            .collect();
        let expected: Vec<String> = (1..=3).map(|i| format!("{host}-{i}")).collect();
        assert_eq!(lines, expected, "{events:?}");
        let errors: Vec<&str> = of_host("output")
            .iter()
            .filter(|e| e["stream"] == "stderr")
            .map(|e| e["text"].as_str().unwrap())
            .collect();
        assert_eq!(errors, ["oops"], "{events:?}");
        let done = of_host("done");
        assert_eq!(done.len(), 1, "{events:?}");
        assert_eq!(done[0]["success"], host == "r1");
        // The host's end comes after its output.
        let at = |e: &Value| events.iter().position(|x| x == e).unwrap();
        assert!(of_host("output").iter().all(|e| at(e) < at(done[0])));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_json_is_a_stream_of_events_with_the_summary_last() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _a = server.agent("r1", dir.path(), &[], "").await;
    let _b = server.agent("r2", dir.path(), &[], "").await;
    let local = dir.path().join("blob");
    std::fs::write(&local, b"payload").unwrap();
    let target = dir.path().join("uploaded");
    let out = server.output(&[
        "upload",
        local.to_str().unwrap(),
        "--path",
        target.to_str().unwrap(),
        "--all",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let events = events(&out.stdout);
    assert_eq!(events[0]["type"], "started", "{events:?}");
    assert_eq!(events[0]["hosts"], serde_json::json!(["r1", "r2"]));
    assert_eq!(events[0]["bytes"], 7);
    let done: Vec<&Value> = events.iter().filter(|e| e["type"] == "done").collect();
    assert_eq!(done.len(), 2, "{events:?}");
    assert!(done.iter().all(|d| d["success"] == true), "{events:?}");
    let last = events.last().unwrap();
    assert_eq!(last["type"], "summary", "{events:?}");
    assert_eq!(last["succeeded"], 2);
    assert_eq!(last["failed"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn output_dir_holds_each_hosts_bytes_as_sent_and_no_temporary_file() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _a = server.agent("r1", dir.path(), &[], "").await;
    let _b = server.agent("r2", dir.path(), &[], "").await;
    let out_dir = dir.path().join("out/run1");
    // A line longer than 64 KiB, bytes that are not UTF-8, a control character, and a last
    // line without a newline; on standard error a line only for r2.
    let command = "head -c 70000 /dev/zero | tr '\\0' x; printf '\\n\\377\\376 \\033[31m\\nend'; \
                   test $OTTO_HOST_NAME = r2 && printf 'err\\n' >&2; true";
    let out = server.output(&[
        "run",
        "--all",
        "--command",
        command,
        "--output-dir",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let mut expected = vec![b'x'; 70_000];
    expected.extend_from_slice(b"\n\xff\xfe \x1b[31m\nend");
    for host in ["r1", "r2"] {
        let stdout = std::fs::read(out_dir.join(format!("{host}.stdout"))).unwrap();
        assert!(stdout == expected, "{host}: {} bytes", stdout.len());
        let stderr = std::fs::read(out_dir.join(format!("{host}.stderr"))).unwrap();
        let want: &[u8] = if host == "r2" { b"err\n" } else { b"" };
        assert_eq!(stderr, want, "{host}");
        let mode = std::fs::metadata(out_dir.join(format!("{host}.stdout")))
            .unwrap()
            .permissions()
            .mode();
        // Raw output may carry a secret: only its owner may read it.
        assert_eq!(mode & 0o777, 0o600, "{host}");
    }
    let mut names: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["r1.stderr", "r1.stdout", "r2.stderr", "r2.stdout"]);
}

/// Each host's `done` line comes as the host ends, not with the others at the end: a host whose
/// agent never answers (`a0`, first in the hosts' order) holds the upload, and `r1`'s line is
/// already out.
#[tokio::test(flavor = "multi_thread")]
async fn upload_json_says_each_host_done_as_it_ends() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _silent = server.fake("a0", Behaviour::Silent).await;
    let _r1 = server.agent("r1", dir.path(), &[], "").await;
    let local = dir.path().join("blob");
    std::fs::write(&local, b"payload").unwrap();
    let target = dir.path().join("uploaded");
    let mut upload = server
        .command(&[
            "upload",
            local.to_str().unwrap(),
            "--path",
            target.to_str().unwrap(),
            "--all",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = tokio::time::timeout(
        BOUND,
        tokio::task::spawn_blocking(move || {
            let lines = read_until(&mut upload, |lines| {
                lines.iter().any(|l| l.contains(r#""type":"done""#))
            });
            // The silent host would hold it for its answer timeout: no need to wait.
            upload.kill().unwrap();
            upload.wait().unwrap();
            lines
        }),
    )
    .await
    .expect("no done line")
    .unwrap();
    let events = events(lines.join("\n").as_bytes());
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["started", "done"], "{events:?}");
    assert_eq!(events[0]["hosts"], serde_json::json!(["a0", "r1"]));
    assert_eq!(events[1]["host"], "r1", "{events:?}");
    assert_eq!(events[1]["success"], true, "{events:?}");
    assert_eq!(events[1]["status"], "ok", "{events:?}");
}
