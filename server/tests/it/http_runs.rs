//! Runs through the HTTP API of `serve`, on real local agents: started in the background,
//! followed live as Server-Sent Events (late, twice at once, or dropped mid-stream), cancelled,
//! and kept in the history; running needs the run level the script (or a command) needs.
//!
//! A script that must still be running when the test looks waits for a file the test makes
//! (no timing): `echo first; until [ -e GO ]; do sleep 0.05; done; echo second`.

use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::Server;
use crate::http::{Daemon, key_of};
use crate::users::add_user;

/// A launch's Server-Sent Events, read as they come.
pub struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    /// Follows launch `id`.
    pub async fn follow(daemon: &Daemon, key: &str, id: u64) -> Events {
        let path = format!("/api/v1/launches/{id}/events");
        let response = daemon
            .request(Method::GET, &path, Some(key))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let kind = response.headers()["content-type"].to_str().unwrap();
        assert!(kind.starts_with("text/event-stream"), "{kind}");
        Events {
            response,
            buffer: String::new(),
        }
    }

    /// The next event's JSON data (its SSE name checked against its `type`), or None at the
    /// end of the stream.
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(n) = line.strip_prefix("event: ") {
                        name = Some(n.to_string());
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        data.push_str(d);
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                let event: Value = serde_json::from_str(&data).unwrap();
                assert_eq!(name.as_deref(), event["type"].as_str(), "{event}");
                return Some(event);
            }
            let chunk = tokio::time::timeout(crate::harness::BOUND, self.response.chunk())
                .await
                .expect("no event within the bound")
                .unwrap()?;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Every event up to the end of the stream.
    pub async fn rest(mut self) -> Vec<Value> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            events.push(event);
        }
        events
    }

    /// The events until `done` holds for those read so far.
    pub(crate) async fn until(&mut self, mut done: impl FnMut(&[Value]) -> bool) -> Vec<Value> {
        let mut events = Vec::new();
        while !done(&events) {
            let Some(event) = self.next().await else {
                panic!("the stream ended after {events:?}");
            };
            events.push(event);
        }
        events
    }
}

/// The output lines of `host` among `events`.
pub(crate) fn lines<'a>(events: &'a [Value], host: &str) -> Vec<&'a str> {
    events
        .iter()
        .filter(|e| e["type"] == "output" && e["host"] == host)
        .map(|e| e["text"].as_str().unwrap())
        .collect()
}

/// A command that prints `first`, waits for the file `go`, then prints `second`.
pub(crate) fn gated(go: &Path) -> String {
    format!(
        "echo $OTTO_HOST_NAME first; until [ -e {} ]; do sleep 0.05; done; echo $OTTO_HOST_NAME second",
        go.display()
    )
}

/// Follows launch `id` through `daemon` until r1's first line, cancels it there (refused with
/// `refused`'s key, below the run level it needs; done with `key`'s) and returns its summary,
/// which says r1's run was cancelled.
pub(crate) async fn cancelled_on_r1(daemon: &Daemon, id: u64, refused: &str, key: &str) -> Value {
    let mut events = Events::follow(daemon, key, id).await;
    events.until(|e| !lines(e, "r1").is_empty()).await;
    let cancel = format!("/api/v1/launches/{id}/cancel");
    let (status, _) = daemon
        .call(Method::POST, &cancel, Some(refused), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, answer) = daemon
        .call(Method::POST, &cancel, Some(key), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
    let rest = events.rest().await;
    let summary = rest.last().unwrap().clone();
    assert_eq!(summary["type"], "summary", "{rest:?}");
    assert_eq!(summary["results"][0]["outcome"], "cancelled", "{summary}");
    summary
}

/// Starts `body` as a launch; returns its answer.
pub(crate) async fn start(daemon: &Daemon, key: &str, body: Value) -> Value {
    let (status, answer) = daemon
        .call(Method::POST, "/api/v1/runs", Some(key), &body)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    answer
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_through_the_api_is_followed_live_and_late_and_kept_in_the_history() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _a = server.agent("r1", dir.path(), &[], "").await;
    let _b = server.agent("r2", dir.path(), &[], "").await;
    add_user(&server, "ann", &["--run-level", "read-write"]);
    add_user(&server, "rita", &["--run-level", "read-only"]);
    let ann = key_of(&server, "ann");
    let rita = key_of(&server, "rita");
    let daemon = Daemon::start(&server, &[]);

    // Below read-write, nothing runs.
    let go = dir.path().join("go");
    let body = json!({"command": gated(&go), "all": true});
    let (status, answer) = daemon
        .call(Method::POST, "/api/v1/runs", Some(&rita), &body)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    // Bad targets and jobs are refused at once.
    for (bad, expected) in [
        (json!({"command": "true"}), StatusCode::BAD_REQUEST),
        (
            json!({"script": "nope", "all": true}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"command": "true", "hosts": ["r9"]}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"command": "true", "all": true, "colour": "red"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (status, answer) = daemon
            .call(Method::POST, "/api/v1/runs", Some(&ann), &bad)
            .await;
        assert_eq!(status, expected, "{bad}: {answer}");
    }
    assert!(server.runs().is_empty());

    let started = start(&daemon, &ann, body).await;
    assert_eq!(started["hosts"], json!(["r1", "r2"]), "{started}");
    let id = started["launch"].as_u64().unwrap();

    // Live: each host's first line arrives while the script still waits for the file.
    let mut live = Events::follow(&daemon, &ann, id).await;
    let early = live
        .until(|e| !lines(e, "r1").is_empty() && !lines(e, "r2").is_empty())
        .await;
    assert_eq!(early[0]["type"], "started", "{early:?}");
    assert_eq!(early[0]["launch"], id);
    assert!(early.iter().all(|e| e["type"] != "done"), "{early:?}");
    std::fs::write(&go, "").unwrap();
    let mut events = early;
    events.extend(live.rest().await);
    for host in ["r1", "r2"] {
        assert_eq!(
            lines(&events, host),
            [format!("{host} first"), format!("{host} second")]
        );
    }
    let summary = events.last().unwrap();
    assert_eq!(summary["type"], "summary", "{events:?}");
    assert_eq!(
        (&summary["succeeded"], &summary["failed"]),
        (&json!(2), &json!(0))
    );
    let done: Vec<&Value> = events.iter().filter(|e| e["type"] == "done").collect();
    assert_eq!(done.len(), 2, "{events:?}");

    // A late follower first gets everything that was produced, in the same order.
    let late = Events::follow(&daemon, &rita, id).await.rest().await;
    assert_eq!(late, events);

    // Each host's run is in the history with its output, named by its `done`.
    let run = done[0]["run"].as_i64().unwrap();
    let path = format!("/api/v1/runs/{run}");
    let (status, kept) = daemon
        .call(Method::GET, &path, Some(&rita), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK, "{kept}");
    let host = done[0]["host"].as_str().unwrap();
    assert_eq!(kept["stdout"], format!("{host} first\n{host} second\n"));
    assert_eq!(kept["success"], true);
    let (status, listed) = daemon
        .call(
            Method::GET,
            "/api/v1/runs?host=r2",
            Some(&rita),
            &Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["host"], "r2");
    // Page by page, newest first: the page before starts below the first id of this one.
    let page = |query: String| {
        let path = format!("/api/v1/runs?{query}");
        let request = daemon.request(Method::GET, &path, Some(&rita));
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let newest = page("limit=1".into()).await;
    let newest_id = newest[0]["id"].as_i64().unwrap();
    assert_eq!(newest[0]["stdout"], "", "the list leaves the output out");
    let before = page(format!("limit=1&before={newest_id}")).await;
    assert_eq!(before.as_array().unwrap().len(), 1, "{before}");
    assert!(before[0]["id"].as_i64().unwrap() < newest_id);
    let none = page(format!("before={}", before[0]["id"])).await;
    assert_eq!(none, json!([]));
    // The CLI's history is the same.
    assert_eq!(server.runs().len(), 2);

    // A finished run cannot be cancelled; an unknown one is not found.
    let (status, answer) = daemon
        .call(
            Method::POST,
            &format!("{path}/cancel"),
            Some(&ann),
            &Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["success"], false, "{answer}");
    let (status, _) = daemon
        .call(
            Method::POST,
            "/api/v1/launches/99/cancel",
            Some(&ann),
            &Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The run was recorded as ann's, from the client's address.
    let events = server.json(&["events"]);
    let started = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "run-started")
        .unwrap();
    let actor = started["actor"].as_str().unwrap();
    assert!(actor.starts_with("user:ann (API key"), "{actor}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_runs_at_once_and_a_client_gone_mid_stream_leaves_its_run_going() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _a = server.agent("r1", dir.path(), &[], "").await;
    add_user(&server, "ann", &["--admin"]);
    let ann = key_of(&server, "ann");
    let daemon = Daemon::start(&server, &[]);

    let (go1, go2) = (dir.path().join("go1"), dir.path().join("go2"));
    let one = start(
        &daemon,
        &ann,
        json!({"command": gated(&go1), "hosts": ["r1"]}),
    )
    .await;
    let two = start(
        &daemon,
        &ann,
        json!({"command": gated(&go2), "hosts": ["r*"]}),
    )
    .await;
    let (one, two) = (
        one["launch"].as_u64().unwrap(),
        two["launch"].as_u64().unwrap(),
    );
    assert_ne!(one, two);
    let mut first = Events::follow(&daemon, &ann, one).await;
    let mut second = Events::follow(&daemon, &ann, two).await;
    for events in [&mut first, &mut second] {
        events.until(|e| !lines(e, "r1").is_empty()).await;
    }
    // The first launch's client goes away in the middle of its run.
    drop(first);
    std::fs::write(&go1, "").unwrap();
    std::fs::write(&go2, "").unwrap();
    let rest = second.rest().await;
    assert_eq!(lines(&rest, "r1"), ["r1 second"]);
    assert_eq!(rest.last().unwrap()["succeeded"], 1, "{rest:?}");

    // The first run went on to its end, its output kept: a new follower reads all of it.
    let again = Events::follow(&daemon, &ann, one).await.rest().await;
    assert_eq!(lines(&again, "r1"), ["r1 first", "r1 second"]);
    assert_eq!(again.last().unwrap()["succeeded"], 1, "{again:?}");
    let runs = server.runs();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs.iter().all(|r| r["success"] == true), "{runs:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_launch_cancelled_through_the_api_stops_its_script() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _a = server.agent("r1", dir.path(), &[], "").await;
    add_user(&server, "ann", &["--run-level", "read-write"]);
    add_user(&server, "rita", &["--run-level", "read-only"]);
    let (ann, rita) = (key_of(&server, "ann"), key_of(&server, "rita"));
    let daemon = Daemon::start(&server, &[]);

    // An empty command is refused, with why (issue 21: it ran `command: ` on every host).
    for command in ["", " \n "] {
        let body = json!({"command": command, "all": true});
        let (status, answer) = daemon
            .call(Method::POST, "/api/v1/runs", Some(&ann), &body)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains("the command is empty"), "{answer}");
    }
    assert!(server.runs().is_empty());

    let never = dir.path().join("never");
    let started = start(
        &daemon,
        &ann,
        json!({"command": gated(&never), "all": true}),
    )
    .await;
    let id = started["launch"].as_u64().unwrap();
    let summary = cancelled_on_r1(&daemon, id, &rita, &ann).await;
    let cancel = format!("/api/v1/launches/{id}/cancel");
    // Cancelled is its own outcome, not a failure (issue 21): in the summary, the history and
    // the fleet's summary.
    assert_eq!(summary["results"][0]["status"], "cancelled", "{summary}");
    let counts = ["succeeded", "failed", "cancelled", "skipped"].map(|k| &summary[k]);
    assert_eq!(counts, [0, 0, 1, 0], "{summary}");
    let runs = server.runs();
    assert_eq!(runs[0]["outcome"], "cancelled", "{runs:?}");
    assert_eq!(runs[0]["cancelled"], true, "{runs:?}");
    let (status, fleet) = daemon
        .call(Method::GET, "/api/v1/summary", Some(&ann), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK, "{fleet}");
    assert_eq!(fleet["recent_failures"], json!([]), "{fleet}");
    let (status, answer) = daemon
        .call(Method::POST, &cancel, Some(&ann), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    // The cancel is recorded as ann's.
    let events = server.json(&["events"]);
    let cancelled = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["detail"] == format!("launch {id}"))
        .unwrap();
    assert_eq!(cancelled["kind"], "run-cancelled");
    assert!(
        cancelled["actor"].as_str().unwrap().starts_with("user:ann"),
        "{cancelled}"
    );

    // SIGTERM stops serve cleanly even while a client follows a run that goes on.
    let started = start(
        &daemon,
        &ann,
        json!({"command": gated(&never), "all": true}),
    )
    .await;
    let mut events = Events::follow(&daemon, &ann, started["launch"].as_u64().unwrap()).await;
    events.until(|e| !lines(e, "r1").is_empty()).await;
    let mut daemon = daemon;
    assert!(daemon.terminate());
    // Its stream was ended, not cut.
    let rest = events.rest().await;
    assert!(rest.iter().all(|e| e["type"] != "summary"), "{rest:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn heartbeats_control_and_the_summary_through_the_api() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _a = server.agent("r1", dir.path(), &[], "").await;
    server.ok(&["host", "add", "off", "192.0.2.1"]);
    server.ok(&["host", "disable", "off"]);
    add_user(&server, "ann", &["--run-level", "read-write"]);
    add_user(&server, "hal", &["--permission", "hosts"]);
    let (ann, hal) = (key_of(&server, "ann"), key_of(&server, "hal"));
    let daemon = Daemon::start(&server, &[]);

    // A heartbeat (any user): every enabled host when none is named; the answer is kept.
    let (status, pings) = daemon
        .call(Method::POST, "/api/v1/ping", Some(&ann), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{pings}");
    assert_eq!(pings.as_array().unwrap().len(), 1, "{pings}");
    assert_eq!(
        (&pings[0]["host"], &pings[0]["reachable"]),
        (&json!("r1"), &json!(true))
    );
    assert!(pings[0]["agent_version"].is_string(), "{pings}");
    assert!(pings[0]["facts"].is_object(), "{pings}");
    let (status, answer) = daemon
        .call(
            Method::POST,
            "/api/v1/ping",
            Some(&ann),
            &json!({"action": "reload"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");

    // A failing run, then the summary.
    let started = start(&daemon, &ann, json!({"command": "exit 3", "hosts": ["r1"]})).await;
    let id = started["launch"].as_u64().unwrap();
    let events = Events::follow(&daemon, &ann, id).await.rest().await;
    assert_eq!(events.last().unwrap()["failed"], 1, "{events:?}");
    let (status, summary) = daemon
        .call(Method::GET, "/api/v1/summary", Some(&ann), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(
        (
            &summary["hosts"],
            &summary["reachable"],
            &summary["disabled"]
        ),
        (&json!(2), &json!(1), &json!(1)),
        "{summary}"
    );
    assert_eq!(summary["recent_failures"][0]["exit_code"], 3, "{summary}");
    // The heartbeat's round trip is kept: the host's, and the slowest on the summary. serve's
    // own first round of heartbeats may have come after the ping above: the last is taken now.
    let (_, pings) = daemon
        .call(Method::POST, "/api/v1/ping", Some(&ann), &json!({}))
        .await;
    let round_trip = pings[0]["round_trip_ms"].as_f64().unwrap();
    let (_, host) = daemon
        .call(Method::GET, "/api/v1/hosts/r1", Some(&ann), &Value::Null)
        .await;
    assert_eq!(host["status"]["round_trip_ms"], round_trip, "{host}");
    let shown = server.json(&["host", "show", "r1"]);
    assert_eq!(shown["status"]["round_trip_ms"], round_trip, "{shown}");
    let printed = server.ok(&["host", "show", "r1"]);
    assert!(
        printed.contains(&format!("round trip     {round_trip:.1} ms")),
        "{printed}"
    );
    let (_, summary) = daemon
        .call(Method::GET, "/api/v1/summary", Some(&ann), &Value::Null)
        .await;
    let slowest = summary["slowest_heartbeats"].as_array().unwrap();
    assert_eq!(slowest.len(), 1, "only the reachable host: {summary}");
    assert_eq!(
        (&slowest[0]["host"], &slowest[0]["round_trip_ms"]),
        (&json!("r1"), &json!(round_trip))
    );
    assert_eq!(slowest[0]["at"], host["status"]["last_seen"], "{summary}");

    // Control needs the permission `hosts`; it is recorded naming the user.
    let reload = json!({"action": "reload", "hosts": ["r1"]});
    let (status, _) = daemon
        .call(Method::POST, "/api/v1/control", Some(&ann), &reload)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, done) = daemon
        .call(Method::POST, "/api/v1/control", Some(&hal), &reload)
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(
        (&done[0]["host"], &done[0]["success"]),
        (&json!("r1"), &json!(true)),
        "{done}"
    );
    let events = server.json(&["events"]);
    let sent = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "control-sent")
        .unwrap();
    assert!(
        sent["actor"]
            .as_str()
            .unwrap()
            .starts_with("user:hal (API key"),
        "{sent}"
    );
    let (status, answer) = daemon
        .call(
            Method::POST,
            "/api/v1/control",
            Some(&hal),
            &json!({"all": true}),
        )
        .await;
    // No action: the body is not of its schema.
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_script_runs_for_users_at_its_run_level_through_the_cli_and_the_api() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _a = server.agent("r1", dir.path(), &[], "").await;
    server.ok(&[
        "script",
        "add",
        "look",
        "--body",
        "echo looked",
        "--run-level",
        "read-only",
    ]);
    server.ok(&["script", "add", "change", "--body", "echo changed"]);
    // A script is read-only or read-write; read-write unless it says.
    let refused = server.output(&[
        "script",
        "add",
        "x",
        "--body",
        "true",
        "--run-level",
        "none",
    ]);
    assert_eq!(refused.status.code(), Some(2));
    let listed = server.json(&["script", "list"]);
    let levels: Vec<(&str, &str)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["run_level"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(levels, [("change", "read-write"), ("look", "read-only")]);
    assert!(server.ok(&["script", "list"]).contains("read-only"));
    add_user(&server, "ann", &["--run-level", "read-write"]);
    add_user(&server, "rita", &["--run-level", "read-only"]);
    add_user(&server, "nobody", &["--permission", "scripts"]);
    let (ann, rita, nobody) = (
        key_of(&server, "ann"),
        key_of(&server, "rita"),
        key_of(&server, "nobody"),
    );
    let daemon = Daemon::start(&server, &[]);

    // The API's scripts carry their level: shown, made and replaced with it.
    let (status, look) = daemon
        .call(
            Method::GET,
            "/api/v1/scripts/look",
            Some(&rita),
            &Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{look}");
    assert_eq!(look["run_level"], "read-only");
    let new = json!({"name": "peek", "body": "echo peeked", "run_level": "read-only"});
    let (status, answer) = daemon
        .call(Method::POST, "/api/v1/scripts", Some(&nobody), &new)
        .await;
    assert!(status.is_success(), "{answer}");
    let bad = json!({"name": "odd", "body": "true", "run_level": "none"});
    let (status, answer) = daemon
        .call(Method::POST, "/api/v1/scripts", Some(&nobody), &bad)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    // Replaced without naming its level, it keeps it; named, it changes.
    for (replaced, level) in [
        (json!({"name": "peek", "body": "echo peeked"}), "read-only"),
        (
            json!({"body": "echo peeked", "run_level": "read-write"}),
            "read-write",
        ),
    ] {
        let (status, answer) = daemon
            .call(
                Method::PUT,
                "/api/v1/scripts/peek",
                Some(&nobody),
                &replaced,
            )
            .await;
        assert!(status.is_success(), "{answer}");
        let (_, peek) = daemon
            .call(
                Method::GET,
                "/api/v1/scripts/peek",
                Some(&rita),
                &Value::Null,
            )
            .await;
        assert_eq!(peek["run_level"], level, "{peek}");
    }

    // read-only runs read-only scripts, and nothing else; the 403 says what is needed.
    let started = start(&daemon, &rita, json!({"script": "look", "all": true})).await;
    let events = Events::follow(&daemon, &rita, started["launch"].as_u64().unwrap())
        .await
        .rest()
        .await;
    assert_eq!(lines(&events, "r1"), ["looked"]);
    for (body, message) in [
        (
            json!({"script": "change", "all": true}),
            "script change needs the run level `read-write`; yours is `read-only`",
        ),
        (
            json!({"command": "true", "all": true}),
            "a command needs the run level `read-write`",
        ),
    ] {
        let (status, answer) = daemon
            .call(Method::POST, "/api/v1/runs", Some(&rita), &body)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
        let said = answer["error"]["message"].as_str().unwrap();
        assert!(said.contains(message), "{said}");
    }
    // none runs nothing, read-only scripts neither (refused before the body is read).
    let (status, answer) = daemon
        .call(
            Method::POST,
            "/api/v1/runs",
            Some(&nobody),
            &json!({"script": "look", "all": true}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let said = answer["error"]["message"].as_str().unwrap();
    assert!(said.contains("needs the run level `read-only`"), "{said}");
    // read-write runs anything.
    let started = start(&daemon, &ann, json!({"script": "change", "all": true})).await;
    let events = Events::follow(&daemon, &ann, started["launch"].as_u64().unwrap())
        .await
        .rest()
        .await;
    assert_eq!(lines(&events, "r1"), ["changed"]);
    // Two runs in the history: the refused ones never started.
    assert_eq!(server.runs().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_launch_is_told_again_after_serve_restarts_and_its_id_is_never_reused() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _a = server.agent("r1", dir.path(), &[], "").await;
    let _b = server.agent("r2", dir.path(), &[], "").await;
    add_user(&server, "ann", &["--run-level", "read-write"]);
    let ann = key_of(&server, "ann");
    let mut daemon = Daemon::start(&server, &[]);
    let body =
        json!({"command": "echo $OTTO_HOST_NAME out; echo $OTTO_HOST_NAME err >&2", "all": true});
    let first = start(&daemon, &ann, body.clone()).await["launch"]
        .as_u64()
        .unwrap();
    let live = Events::follow(&daemon, &ann, first).await.rest().await;
    assert_eq!(live.last().unwrap()["type"], "summary", "{live:?}");
    assert!(daemon.terminate());

    let daemon = Daemon::start(&server, &[]);
    let again = Events::follow(&daemon, &ann, first).await.rest().await;
    // Told from the store: its start, each host's kept output and end, the summary.
    assert_eq!(again.first(), live.first(), "{again:?}");
    assert_eq!(again.last(), live.last(), "{again:?}");
    for host in ["r1", "r2"] {
        let kept: Vec<&Value> = again.iter().filter(|e| e["host"] == host).collect();
        let kinds: Vec<(&str, &str)> = kept
            .iter()
            .map(|e| {
                (
                    e["type"].as_str().unwrap(),
                    e["text"].as_str().unwrap_or(""),
                )
            })
            .collect();
        let (out, err) = (format!("{host} out"), format!("{host} err"));
        assert_eq!(
            kinds,
            [
                ("output", out.as_str()),
                ("output", err.as_str()),
                ("done", "")
            ]
        );
    }
    // A finished launch cannot be cancelled; an unknown one is not found.
    let cancel = format!("/api/v1/launches/{first}/cancel");
    let (status, answer) = daemon
        .call(Method::POST, &cancel, Some(&ann), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    let path = format!("/api/v1/launches/{}/events", first + 100);
    let (status, _) = daemon
        .call(Method::GET, &path, Some(&ann), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The restarted serve numbers its launches after the first one's.
    let second = start(&daemon, &ann, body).await["launch"].as_u64().unwrap();
    assert!(second > first, "{second} after {first}");
    let events = Events::follow(&daemon, &ann, second).await.rest().await;
    assert_eq!(events.last().unwrap()["succeeded"], 2, "{events:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_launch_rolls_out_by_percentages_as_the_clis_flags_do() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let mut agents = Vec::new();
    for name in ["r1", "r2", "r3", "r4"] {
        agents.push(server.agent(name, dir.path(), &[], "").await);
    }
    add_user(&server, "ann", &["--run-level", "read-write"]);
    let ann = key_of(&server, "ann");
    let daemon = Daemon::start(&server, &[]);

    // A quarter of the hosts at a time, none of them allowed to fail: r1 fails, so the
    // other batches never start.
    let body = json!({"command": "false", "all": true, "batch": "25%", "max_failures": "0%"});
    let id = start(&daemon, &ann, body).await["launch"].as_u64().unwrap();
    let events = Events::follow(&daemon, &ann, id).await.rest().await;
    let summary = events.last().unwrap();
    let statuses: Vec<(&str, &str)> = summary["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["host"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("r1", "failed"),
            ("r2", "skipped"),
            ("r3", "skipped"),
            ("r4", "skipped")
        ],
        "{summary}"
    );
    assert_eq!(server.runs().len(), 1);

    // Half of them at a time, up to half failing: every batch runs.
    let body = json!({"command": "false", "all": true, "batch": "50%", "max_failures": "50%"});
    let id = start(&daemon, &ann, body).await["launch"].as_u64().unwrap();
    let events = Events::follow(&daemon, &ann, id).await.rest().await;
    // Two failures of four are not more than half: the second batch starts, and then four are.
    assert_eq!(events.last().unwrap()["failed"], 4, "{events:?}");
    assert_eq!(server.runs().len(), 5);

    // A share that is none, or not one, is refused with what is wrong.
    for bad in [
        json!({"command": "true", "all": true, "batch": "0%"}),
        json!({"command": "true", "all": true, "batch": "150%"}),
        json!({"command": "true", "all": true, "max_failures": "some"}),
    ] {
        let (status, answer) = daemon
            .call(Method::POST, "/api/v1/runs", Some(&ann), &bad)
            .await;
        assert!(status.is_client_error(), "{bad}: {status} {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("batch") || message.contains('%'),
            "{bad}: {message}"
        );
    }
    assert_eq!(server.runs().len(), 5);
}

/// A run that names no hosts is refused in the API's words (its fields, never the command
/// line's flags), with what it left out as data for a client to phrase in its own.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_naming_no_hosts_is_refused_in_the_apis_words_with_its_detail() {
    let server = Server::new();
    server.ok(&["host", "add", "r1", "192.0.2.1"]);
    server.ok(&["script", "add", "lonely", "--body", "true"]);
    add_user(&server, "root", &["--admin"]);
    let key = key_of(&server, "root");
    let daemon = Daemon::start(&server, &["--http-plain"]);
    for (body, script) in [
        (json!({"command": "true"}), Value::Null),
        (json!({"script": "lonely"}), json!("lonely")),
    ] {
        let (status, answer) = daemon
            .call(Method::POST, "/api/v1/runs", Some(&key), &body)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        let error = &answer["error"];
        assert_eq!(
            error["detail"],
            json!({"code": "no-hosts", "script": script})
        );
        let message = error["message"].as_str().unwrap();
        assert!(
            message.starts_with("name the hosts: `hosts`, `groups` or `all`")
                && !message.contains("--"),
            "{message}"
        );
    }
    // Other errors have no detail.
    let (status, answer) = daemon
        .call(
            Method::POST,
            "/api/v1/runs",
            Some(&key),
            &json!({"script": "nope", "all": true}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["error"].get("detail"), None, "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_launch_is_a_job_in_the_history_and_is_started_again_whole_or_on_its_failed_hosts() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _a = server.agent("r1", dir.path(), &[], "").await;
    let _b = server.agent("r2", dir.path(), &[], "").await;
    let _c = server.agent("r3", dir.path(), &[], "").await;
    add_user(&server, "ann", &["--run-level", "read-write"]);
    add_user(&server, "vic", &[]);
    let (ann, vic) = (key_of(&server, "ann"), key_of(&server, "vic"));
    let daemon = Daemon::start(&server, &[]);
    // r2 fails until the flag is there.
    let flag = dir.path().join("flag");
    let command = format!("[ $OTTO_HOST_NAME != r2 ] || [ -e {} ]", flag.display());
    let started = start(&daemon, &ann, json!({"command": command, "all": true})).await;
    let id = started["launch"].as_u64().unwrap();
    Events::follow(&daemon, &ann, id).await.rest().await;

    // Listed as a job, with who, what, which hosts and how its runs ended; its runs under it.
    let (status, listed) = daemon
        .call(Method::GET, "/api/v1/launches", Some(&vic), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let job = &listed[0];
    assert_eq!(job["id"], id, "{listed}");
    assert!(
        job["actor"].as_str().unwrap().starts_with("user:ann"),
        "{job}"
    );
    assert_eq!(job["job"], format!("command: {command}"), "{job}");
    assert_eq!(job["hosts"], json!(["r1", "r2", "r3"]), "{job}");
    assert_eq!(
        job["runs"],
        json!({"succeeded": 2, "failed": 1, "cancelled": 0, "running": 0}),
        "{job}"
    );
    assert!(
        job["finished"].is_string() && job["relaunchable"] == true,
        "{job}"
    );
    let path = format!("/api/v1/runs?launch={id}");
    let (_, runs) = daemon
        .call(Method::GET, &path, Some(&vic), &Value::Null)
        .await;
    let mut hosts: Vec<_> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["host"].as_str().unwrap())
        .collect();
    hosts.sort_unstable();
    assert_eq!(hosts, ["r1", "r2", "r3"], "{runs}");
    assert!(
        runs.as_array().unwrap().iter().all(|r| r["launch"] == id),
        "{runs}"
    );
    let (status, shown) = daemon
        .call(
            Method::GET,
            &format!("/api/v1/launches/{id}"),
            Some(&vic),
            &Value::Null,
        )
        .await;
    assert_eq!((status, &shown), (StatusCode::OK, job));
    let (status, _) = daemon
        .call(
            Method::GET,
            "/api/v1/launches?outcome=failed",
            Some(&vic),
            &Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Again on its failed host only: refused without the run level its command needs.
    let relaunch = format!("/api/v1/launches/{id}/relaunch");
    let failed_only = json!({"failed_only": true});
    let (status, answer) = daemon
        .call(Method::POST, &relaunch, Some(&vic), &failed_only)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    std::fs::write(&flag, "").unwrap();
    let (status, again) = daemon
        .call(Method::POST, &relaunch, Some(&ann), &failed_only)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["hosts"], json!(["r2"]), "{again}");
    let second = again["launch"].as_u64().unwrap();
    let events = Events::follow(&daemon, &ann, second).await.rest().await;
    assert_eq!(events.last().unwrap()["succeeded"], 1, "{events:?}");
    // Where every host succeeded, none is left to run again; all of it runs again.
    let path = format!("/api/v1/launches/{second}/relaunch");
    let (status, answer) = daemon
        .call(Method::POST, &path, Some(&ann), &failed_only)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    let (status, whole) = daemon
        .call(Method::POST, &relaunch, Some(&ann), &json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{whole}");
    assert_eq!(whole["hosts"], json!(["r1", "r2", "r3"]), "{whole}");
    let third = whole["launch"].as_u64().unwrap();
    let events = Events::follow(&daemon, &ann, third).await.rest().await;
    assert_eq!(events.last().unwrap()["succeeded"], 3, "{events:?}");
    let (status, _) = daemon
        .call(
            Method::POST,
            "/api/v1/launches/999999/relaunch",
            Some(&ann),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The command line, through serve and in process: the launches listed, one started again
    // and followed; a run in process is a launch of its own, listed and started again too.
    std::fs::remove_file(&flag).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let through = |args: &[&str]| {
        crate::remote::client(elsewhere.path(), &server, daemon.base(), Some(&ann), args)
    };
    let out = crate::remote::finish(through(&["--json", "history", "--launches"])).await;
    assert!(out.status.success(), "{}", crate::harness::text(&out));
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [id, second, third], "{listed:?}");
    let out = crate::remote::finish(through(&["relaunch", &id.to_string(), "--failed"])).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "r2 fails again: {}",
        crate::harness::text(&out)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("r2"));
    server.ok(&["run", "--command", "true", "--host", "r1", "--host", "r3"]);
    let mine = &server.json(&["history", "--launches", "--limit", "1"])[0];
    assert!(
        mine["actor"].as_str().unwrap().starts_with("cli:"),
        "{mine}"
    );
    assert_eq!(mine["hosts"], json!(["r1", "r3"]), "{mine}");
    assert_eq!(mine["runs"]["succeeded"], 2, "{mine}");
    let theirs = mine["id"].as_u64().unwrap().to_string();
    let results = server.results(&["relaunch", &theirs]);
    assert!(crate::harness::all_succeeded(&results), "{results}");
    let runs = server.json(&["history", "--launch", &theirs]);
    let launches: Vec<_> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["launch"])
        .collect();
    assert_eq!(launches, [&mine["id"], &mine["id"]], "{runs}");
}
