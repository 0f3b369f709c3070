//! `GET /api/v1/changes`: the fleet's changes as Server-Sent Events, for anyone signed in, read
//! from the event log (so a client that reconnects with `Last-Event-ID` catches up), without
//! who signed in or what happened to users.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::harness::{BOUND, Server};
use crate::http::{Daemon, key_of};
use crate::users::add_user;

/// The changes of `daemon`, read as they come.
struct Changes {
    response: reqwest::Response,
    buffer: String,
}

impl Changes {
    /// Follows the changes with `key`, from `last` on (a reconnect) or from now.
    async fn follow(daemon: &Daemon, key: &str, last: Option<i64>) -> Changes {
        let mut request = daemon.request(Method::GET, "/api/v1/changes", Some(key));
        if let Some(last) = last {
            request = request.header("last-event-id", last.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let kind = response.headers()["content-type"].to_str().unwrap();
        assert!(kind.starts_with("text/event-stream"), "{kind}");
        Changes {
            response,
            buffer: String::new(),
        }
    }

    /// The next change: its SSE id and its data.
    async fn next(&mut self) -> (i64, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(str::to_owned)
                };
                let Some(data) = field("data: ") else {
                    continue; // a keep-alive comment
                };
                assert_eq!(field("event: ").as_deref(), Some("change"), "{block}");
                let id = field("id: ").unwrap().parse().unwrap();
                let change: Value = serde_json::from_str(&data).unwrap();
                assert_eq!(change["id"], id, "{block}");
                return (id, change);
            }
            let chunk = tokio::time::timeout(BOUND, self.response.chunk())
                .await
                .expect("no change within the bound")
                .unwrap()
                .expect("the stream ended");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_are_told_live_to_any_user_and_again_after_a_reconnect() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let mut agent = server.agent("r1", dir.path(), &[], "").await;
    add_user(&server, "rita", &["--run-level", "read-only"]);
    let rita = key_of(&server, "rita");
    let daemon = Daemon::start(&server, &["--heartbeat-interval", "1s", "--http-plain"]);

    // A user with no permission at all follows them; the first heartbeat says r1 is
    // reachable.
    let mut changes = Changes::follow(&daemon, &rita, Some(0)).await;
    let (first, _) = changes.next().await;
    loop {
        let (_, change) = changes.next().await;
        if change["kind"] == "reachability" {
            assert_eq!(change["host"], "r1", "{change}");
            break;
        }
    }

    // The agent stops: heartbeats tell r1 unreachable, live.
    agent.stop().await;
    let (gone, change) = changes.next().await;
    assert_eq!(
        (change["kind"].as_str(), change["host"].as_str()),
        (Some("reachability"), Some("r1")),
        "{change}"
    );
    // Who signs in and what happens to users are not told: the next change is the host's.
    add_user(&server, "ursula", &[]);
    server.ok(&["host", "add", "r2", "192.0.2.2"]);
    let (_, change) = changes.next().await;
    assert_eq!(
        (change["kind"].as_str(), change["host"].as_str()),
        (Some("host-added"), Some("r2")),
        "{change}"
    );
    drop(changes);

    // A client that reconnects names the last change it had, and catches up from there.
    let mut again = Changes::follow(&daemon, &rita, Some(first)).await;
    let (next, _) = again.next().await;
    assert!(next > first, "{next} after {first}");
    let mut seen = vec![next];
    while *seen.last().unwrap() < gone {
        seen.push(again.next().await.0);
    }
    assert!(seen.contains(&gone), "{seen:?}");

    // A Last-Event-ID that is not an entry's id is refused; without a key, nothing.
    let (status, answer) = Daemon::send(
        daemon
            .request(Method::GET, "/api/v1/changes", Some(&rita))
            .header("last-event-id", "yesterday"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (status, _) = Daemon::send(daemon.request(Method::GET, "/api/v1/changes", None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// The lines of `child`'s standard output as they come, read on a thread of their own.
fn lines_of(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stdout = child.stdout.take().unwrap();
    let (tell, told) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tell.send(line).is_err() {
                return;
            }
        }
    });
    told
}

/// The next change `lines` brings (a JSON line), within the harness's bound.
fn next_change(lines: &std::sync::mpsc::Receiver<String>) -> Value {
    let line = lines
        .recv_timeout(BOUND)
        .expect("no change within the bound");
    serde_json::from_str(&line).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_command_line_follows_the_changes_in_process_and_through_serve() {
    let server = Server::new();
    add_user(&server, "vic", &[]);
    let vic = key_of(&server, "vic");
    let daemon = Daemon::start(&server, &[]);
    let elsewhere = tempfile::tempdir().unwrap();
    let mut local = server
        .command(&["--json", "changes"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut remote = crate::remote::client(
        elsewhere.path(),
        &server,
        daemon.base(),
        Some(&vic),
        &["--json", "changes"],
    )
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let (here, there) = (lines_of(&mut local), lines_of(&mut remote));
    // Both follow from now on: give them time to be following before the change is made.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    server.ok(&["host", "add", "r9", "127.0.0.1"]);
    for lines in [&here, &there] {
        let change = next_change(lines);
        assert_eq!(
            (&change["kind"], &change["host"]),
            (&Value::from("host-added"), &Value::from("r9")),
            "{change}"
        );
        assert!(change["id"].as_i64().unwrap() > 0, "{change}");
    }
    // A user's change is not told; the next host's is.
    add_user(&server, "ann", &[]);
    server.ok(&["host", "disable", "r9"]);
    for lines in [&here, &there] {
        assert_eq!(next_change(lines)["kind"], "host-changed");
    }
    for mut child in [local, remote] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
