//! Dry runs (`--dry-run`): what a run or a control action would do on real agents, in
//! process, through `serve` and from the API, leaving no trace on the agents (no file, the
//! process still there) and none in the history or the event log.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{Server, text};
use crate::http::{Daemon, key_of};
use crate::remote::{client, finish};
use crate::users::add_user;

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_says_what_would_be_done_and_leaves_no_trace() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _a = server.agent("r1", dir.path(), &["lab"], "").await;
    let _b = server.agent("r2", dir.path(), &["lab"], "").await;
    let touched = dir.path().join("touched");
    let command = format!("touch {}-$OTTO_HOST_NAME", touched.display());
    // Reached once, so that serve's heartbeats below change nothing.
    let (out, _) = server.bounded(&["ping"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let events = server
        .json(&["events", "--limit", "1000"])
        .as_array()
        .unwrap()
        .len();

    let (out, _) = server
        .bounded(&["run", "-g", "lab", "--dry-run", "--command", &command])
        .await;
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!("would do command: {command} (SHA-256 ")),
        "{said}"
    );
    assert!(said.contains("on 2 hosts: r1, r2"), "{said}");
    assert!(said.ends_with("dry run: nothing was done\n"), "{said}");
    let plan = server.json(&["run", "-g", "lab", "--dry-run", "-c", "true"]);
    assert_eq!(plan["hosts"], json!(["r1", "r2"]), "{plan}");
    // Control actions, reboot and shutdown without asking (nothing is done).
    let exit = server.ok(&["exit-agent", "--all", "--dry-run"]);
    assert!(
        exit.starts_with("would do exit on 2 hosts: r1, r2\n"),
        "{exit}"
    );
    let reboot = server.output(&["reboot", "-g", "lab", "--dry-run"]);
    assert!(reboot.status.success(), "{}", text(&reboot));

    // An upload and a fetch: each host is asked what it has (each agent runs in its own
    // folder, /proc/self/cwd to it), nothing is sent or copied. r1 has the file already.
    let file = dir.path().join("motd");
    std::fs::write(&file, "hello\n").unwrap();
    std::fs::write(dir.path().join("r1").join("motd"), "hello\n").unwrap();
    let upload = [
        "upload",
        file.to_str().unwrap(),
        "--path",
        "/proc/self/cwd/motd",
        "-g",
        "lab",
        "--dry-run",
    ];
    let said = server.ok(&upload);
    assert!(
        said.contains("  r1: unchanged (nothing would be sent); has 6 bytes"),
        "{said}"
    );
    assert!(
        said.contains("  r2: would change; has no such file"),
        "{said}"
    );
    assert!(!dir.path().join("r2").join("motd").exists());
    let into = dir.path().join("fetched");
    let fetch = [
        "fetch",
        "/proc/self/cwd/motd",
        "-g",
        "lab",
        "--into",
        into.to_str().unwrap(),
        "--dry-run",
    ];
    let said = server.ok(&fetch);
    assert!(
        said.starts_with("would do fetch /proc/self/cwd/motd on 2 hosts"),
        "{said}"
    );
    assert!(said.contains("  r1: has 6 bytes, SHA-256 "), "{said}");
    assert!(said.contains("  r2: has no such file"), "{said}");
    assert!(!into.exists());

    // Through serve, and from the API.
    add_user(
        &server,
        "ann",
        &["--run-level", "read-write", "--permission", "hosts"],
    );
    let ann = key_of(&server, "ann");
    let daemon = Daemon::start(&server, &[]);
    let elsewhere = tempfile::tempdir().unwrap();
    let args = ["run", "-H", "r*", "--dry-run", "--command", &command];
    let out = finish(client(
        elsewhere.path(),
        &server,
        daemon.base(),
        Some(&ann),
        &args,
    ))
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("on 2 hosts: r1, r2"));
    let out = finish(client(
        elsewhere.path(),
        &server,
        daemon.base(),
        Some(&ann),
        &upload,
    ))
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("  r2: would change; has no such file"),
        "{said}"
    );
    let body = json!({"command": command, "hosts": ["r1"]});
    let (status, plan) = daemon
        .call(Method::POST, "/api/v1/dry-run/runs", Some(&ann), &body)
        .await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert_eq!(plan["hosts"], json!(["r1"]));
    let body = json!({"action": "shutdown", "groups": ["lab"]});
    let (status, plan) = daemon
        .call(Method::POST, "/api/v1/dry-run/control", Some(&ann), &body)
        .await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert_eq!(plan["what"], "shutdown");
    drop(daemon);

    // No trace: no file on the agents' side, both agents still there, no run, no launch, no
    // event.
    for host in ["r1", "r2"] {
        assert!(!dir.path().join(format!("touched-{host}")).exists());
    }
    assert!(server.runs().is_empty());
    let launches = server.json(&["history", "--launches"]);
    assert_eq!(launches, json!([]), "{launches}");
    // Only ann's creation and her key's are new.
    let new: Vec<_> = server
        .json(&["events", "--limit", "1000"])
        .as_array()
        .unwrap()[events..]
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        new.iter()
            .all(|k| k.starts_with("user") || k.starts_with("api-key")),
        "{new:?}"
    );
    let (out, _) = server.bounded(&["ping", "-g", "lab"]).await;
    assert!(
        out.status.success(),
        "the agents are still running: {}",
        text(&out)
    );
}
