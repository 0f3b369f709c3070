//! The fleet on PostgreSQL (`--database`): servers on different data directories sharing one
//! database share the hosts, their keys (given the same key-encryption key, `secrets.key`),
//! the variables and the history; `serve` keeps its hosts' heartbeats there; an unreachable
//! database is a clear error. Each test has a database of its own on one private cluster
//! (`otto_server::store::postgres::local`) for the whole test process.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use otto_server::store::postgres::local::LocalCluster;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::callhome::{calling_agent, drive, free_port};
use crate::harness::{BOUND, Server, all_succeeded, text, tool_missing};
use crate::http::{Daemon, key_of};
use crate::http_runs::{Events, cancelled_on_r1, gated, lines, start};
use crate::remote::{client, finish};
use crate::users::add_user;

/// A new database on the process's cluster; None when PostgreSQL is missing (the test skips,
/// or fails under `OTTO_REQUIRE_TOOLS`).
pub(crate) async fn database() -> Option<String> {
    static CLUSTER: OnceLock<Result<LocalCluster, String>> = OnceLock::new();
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let cluster = match CLUSTER.get_or_init(|| LocalCluster::start().map_err(|e| e.to_string())) {
        Ok(cluster) => cluster,
        Err(e) => {
            tool_missing(&format!("PostgreSQL ({e})"), "install Debian's postgresql");
            return None;
        }
    };
    let name = format!("it{}", NEXT.fetch_add(1, Ordering::Relaxed));
    Some(cluster.create_database(&name).await.unwrap())
}

/// Another server on the database at `url`, with its own data directory and the
/// key-encryption key of `from`, copied as an administrator copies it between servers.
fn sharing(url: &str, from: &Server) -> Server {
    let to = Server::on_postgres(url);
    std::fs::create_dir_all(to.data()).unwrap();
    let key = from.data().join("secrets.key");
    let copy = to.data().join("secrets.key");
    std::fs::copy(&key, &copy).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&copy).unwrap().permissions())
            & 0o777,
        0o600
    );
    to
}

#[tokio::test(flavor = "multi_thread")]
async fn servers_on_one_database_share_hosts_keys_variables_and_history() {
    let Some(url) = database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let a = Server::on_postgres(&url);
    let _r1 = a.agent("r1", dir.path(), &["lab"], "").await;
    let _r2 = a.agent("r2", dir.path(), &["lab"], "").await;
    a.ok(&[
        "env",
        "set",
        "GREETING",
        "hello-from-postgres",
        "--group",
        "lab",
    ]);
    a.set_secret("TOKEN", "r1", "s3cr3t-value");

    // Another server, another data directory, the same database and key-encryption key.
    let b = sharing(&url, &a);
    let results = b
        .bounded_results(&["run", "--group", "lab", "--command", "echo \"$GREETING\""])
        .await;
    assert_eq!(results.as_array().unwrap().len(), 2, "{results:#}");
    assert!(all_succeeded(&results), "{results:#}");
    let secret = b.output(&[
        "run",
        "--host",
        "r1",
        "--command",
        "test \"$TOKEN\" = s3cr3t-value",
    ]);
    assert!(secret.status.success(), "{}", text(&secret));

    // One history: what b ran, a lists, with its output.
    let runs = a.runs();
    assert_eq!(runs.len(), 3, "{runs:#?}");
    assert_eq!(runs[0]["stdout"], "hello-from-postgres\n", "{runs:#?}");

    // A server without the key-encryption key can read the fleet but not use its keys.
    let c = Server::on_postgres(&url);
    let listed = c.json(&["host", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed:#}");
    let refused = c.output(&["run", "--host", "r1", "--command", "true"]);
    assert!(!refused.status.success());
    assert!(text(&refused).contains("secrets.key"), "{}", text(&refused));
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_keeps_its_hosts_heartbeats_in_the_database() {
    let Some(url) = database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let a = Server::on_postgres(&url);
    let _r1 = a.agent("r1", dir.path(), &[], "").await;
    let mut serve = a
        .async_command(&["serve", "--heartbeat-interval", "1s"])
        .spawn()
        .unwrap();
    // Another process reads what serve recorded.
    let b = sharing(&url, &a);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let shown = b.json(&["host", "show", "r1"]);
        if shown["status"]["reachable"] == true && !shown["status"]["last_seen"].is_null() {
            assert!(shown["status"]["agent_version"].is_string(), "{shown:#}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no heartbeat recorded: {shown:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    serve.kill().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_database_is_named_without_its_password_and_the_exit_is_not_zero() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Server::on_postgres(&format!("postgres://otto:hunter2@127.0.0.1:{port}/otto"));
    let out = server.output(&["host", "list"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(6), "{said}");
    assert!(
        said.contains(&format!("postgres://otto:***@127.0.0.1:{port}/otto")),
        "{said}"
    );
    assert!(!said.contains("hunter2"), "{said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_sqlite_fleet_copied_into_postgres_is_driven_from_there() {
    let Some(url) = database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let old = Server::new();
    let _r1 = old.agent("r1", dir.path(), &["lab"], "").await;
    old.ok(&["run", "--host", "r1", "--command", "echo before"]);
    old.set_secret("TOKEN", "r1", "s3cr3t-value");
    let data = old.data().to_str().unwrap();

    let copy = ["database", "copy", "--from", data, "--database", &url];
    let copied = old.json(&copy);
    assert_eq!(copied["tables"]["hosts"], 1, "{copied:#}");
    assert_eq!(copied["tables"]["runs"], 1, "{copied:#}");
    assert_eq!(copied["tables"]["env"], 1, "{copied:#}");
    assert_eq!(copied["sealed_secrets"], 1, "{copied:#}");
    assert!(
        !copied["to"].as_str().unwrap().contains("otto-local"),
        "{copied:#}"
    );

    // A server on PostgreSQL with the data directory's key drives the same agent.
    let new = sharing(&url, &old);
    let out = new.output(&[
        "run",
        "--host",
        "r1",
        "--command",
        "test \"$TOKEN\" = s3cr3t-value && echo after",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let runs = new.runs();
    let said: Vec<&str> = runs.iter().map(|r| r["stdout"].as_str().unwrap()).collect();
    assert_eq!(said, ["before\n", "after\n"], "{runs:#?}");

    // Once copied, never again over it.
    let again = old.output(&copy);
    assert_eq!(again.status.code(), Some(6), "{}", text(&again));
    assert!(text(&again).contains("not empty"), "{}", text(&again));
}

/// How long after a server dies its hosts are looked after again, at most: its lease runs out
/// (15 s), a survivor's next claim (every 5 s) takes them and heartbeats them at once. The
/// README states it.
const TAKEOVER: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_servers_hosts_are_taken_over_its_run_interrupted_and_schedules_fire_once() {
    let Some(url) = database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let admin = Server::on_postgres(&url);
    let mut agents = Vec::new();
    for i in 0..6 {
        agents.push(admin.agent(&format!("r{i}"), dir.path(), &[], "").await);
    }
    add_user(&admin, "root", &["--admin"]);
    let key = key_of(&admin, "root");
    admin.ok(&[
        "schedule",
        "add",
        "tick",
        "--cron",
        "*/2 * * * * *",
        "--command",
        "echo tick",
        "-H",
        "r0",
    ]);
    let servers: Vec<Server> = (0..3).map(|_| sharing(&url, &admin)).collect();
    let daemons: Vec<Daemon> = servers
        .iter()
        .map(|s| Daemon::start(s, &["--heartbeat-interval", "1s"]))
        .collect();

    // Every host heartbeats, each from one of the servers.
    let seen_after = |since: i64| {
        let hosts = admin.json(&["host", "list"]);
        hosts
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| {
                h["status"]["last_seen"]
                    .as_str()
                    .is_some_and(|t| ms(t) > since)
            })
            .count()
    };
    wait_for(BOUND, || seen_after(0) == 6).await;

    // A run in flight through the first server, on a host it may or may not own.
    let (status, answer) = daemons[0]
        .call(
            Method::POST,
            "/api/v1/runs",
            Some(&key),
            &json!({"command": "sleep 100", "hosts": ["r1"]}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    wait_for(BOUND, || {
        admin
            .runs()
            .iter()
            .any(|r| r["what"] == "command: sleep 100")
    })
    .await;

    // Followed from another server while it runs.
    let launch = answer["launch"].as_u64().unwrap();
    let mut follower = Events::follow(&daemons[1], &key, launch).await;
    // Its start relayed (a server killed before it relays anything leaves its followers only
    // the error below).
    let begun = follower.until(|e| !e.is_empty()).await;
    assert_eq!(begun[0]["type"], "started", "{begun:?}");

    // SIGKILL the first server: nothing of it runs on.
    // SAFETY: a signal to our own child, still unreaped.
    unsafe { libc::kill(daemons[0].pid() as i32, libc::SIGKILL) };
    let killed = jiff::Timestamp::now().as_millisecond();
    let started = Instant::now();
    wait_for(TAKEOVER + Duration::from_secs(15), || {
        seen_after(killed + 500) == 6
    })
    .await;
    let took = started.elapsed();
    eprintln!("every host heartbeated again {took:?} after the kill");
    assert!(
        took <= TAKEOVER,
        "hosts looked after again only after {took:?}"
    );

    // Its run is interrupted, not left running.
    wait_for(BOUND, || {
        admin.runs().iter().any(|r| {
            r["what"] == "command: sleep 100"
                && r["outcome"] == "interrupted"
                && r["success"] == false
        })
    })
    .await;

    // Its follower on another server is told it did not end.
    let told = follower.rest().await;
    let last = told.last().unwrap();
    assert_eq!(last["type"], "error", "{told:?}");
    assert!(
        last["message"].as_str().unwrap().contains("did not end"),
        "{last}"
    );

    // The schedule went on, each of its times started once across the servers.
    let ticks: Vec<i64> = admin
        .runs()
        .iter()
        .filter(|r| r["what"] == "command: echo tick")
        .map(|r| ms(r["started"].as_str().unwrap()))
        .collect();
    assert!(
        ticks.iter().filter(|&&t| t > killed).count() >= 2,
        "{ticks:?}"
    );
    // A run starts at or after its time: on a busy machine it has been seen 1.2 s late, so two
    // runs of different times can start less than a second apart. Each run's time is the even
    // second at or before its start (for a run less than the 2 s between times late), and two
    // runs of one time share it.
    let mut times: Vec<i64> = ticks.iter().map(|t| t - t.rem_euclid(2000)).collect();
    times.sort_unstable();
    for pair in times.windows(2) {
        assert!(pair[0] < pair[1], "a time started twice: {ticks:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_launch_is_followed_live_and_cancelled_from_another_server() {
    let Some(url) = database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let admin = Server::on_postgres(&url);
    let _r1 = admin.agent("r1", dir.path(), &[], "").await;
    let _r2 = admin.agent("r2", dir.path(), &[], "").await;
    add_user(&admin, "ann", &["--run-level", "read-write"]);
    add_user(&admin, "rita", &["--run-level", "read-only"]);
    let (ann, rita) = (key_of(&admin, "ann"), key_of(&admin, "rita"));
    let servers: Vec<Server> = (0..2).map(|_| sharing(&url, &admin)).collect();
    let daemons: Vec<Daemon> = servers.iter().map(|s| Daemon::start(s, &[])).collect();

    // Started on the first server, followed on the second: each host's first line comes
    // while the launch waits for the file.
    let go = dir.path().join("go");
    let started = start(
        &daemons[0],
        &ann,
        json!({"command": gated(&go), "all": true}),
    )
    .await;
    let id = started["launch"].as_u64().unwrap();
    let mut events = Events::follow(&daemons[1], &ann, id).await;
    let early = events
        .until(|e| lines(e, "r1").len() == 1 && lines(e, "r2").len() == 1)
        .await;
    assert_eq!(early[0]["type"], "started", "{early:?}");
    assert_eq!(early[0]["launch"], id, "{early:?}");
    assert!(early.iter().all(|e| e["type"] != "summary"), "{early:?}");
    std::fs::write(&go, "").unwrap();
    let rest = events.rest().await;
    assert_eq!(lines(&rest, "r1"), ["r1 second"], "{rest:?}");
    assert_eq!(lines(&rest, "r2"), ["r2 second"], "{rest:?}");
    let summary = rest.last().unwrap();
    assert_eq!(summary["type"], "summary", "{rest:?}");
    assert_eq!(summary["succeeded"], 2, "{summary}");
    // Each host's end came before the summary, with its run of the shared history.
    let ends = rest.iter().filter(|e| e["type"] == "done").count();
    assert_eq!(ends, 2, "{rest:?}");

    // Cancelled from the second server: by who may run it, not below its run level.
    let never = dir.path().join("never");
    let started = start(
        &daemons[0],
        &ann,
        json!({"command": gated(&never), "hosts": ["r1"]}),
    )
    .await;
    let id = started["launch"].as_u64().unwrap();
    let summary = cancelled_on_r1(&daemons[1], id, &rita, &ann).await;
    assert_eq!(summary["cancelled"], 1, "{summary}");
    let cancel = format!("/api/v1/launches/{id}/cancel");
    // Ended: another cancel is a conflict on either server.
    for daemon in &daemons {
        let (status, answer) = daemon
            .call(Method::POST, &cancel, Some(&ann), &Value::Null)
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_that_called_one_server_is_driven_through_another() {
    let Some(url) = database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let admin = Server::on_postgres(&url);
    std::fs::create_dir_all(admin.data()).unwrap();
    add_user(
        &admin,
        "ann",
        &["--run-level", "read-write", "--permission", "hosts"],
    );
    let ann = key_of(&admin, "ann");
    // The agent calls the first server; the second has no call-home listener at all, and the
    // host's address is a port nothing listens on.
    let port = free_port();
    let _agent = calling_agent(&admin, dir.path(), "r1", port).await;
    let servers: Vec<Server> = (0..2).map(|_| sharing(&url, &admin)).collect();
    let listen = format!("127.0.0.1:{port}");
    let called = Daemon::start(&servers[0], &["--call-home-listen", &listen]);
    let other = Daemon::start(&servers[1], &[]);

    // Everything, through the server it did not call: heartbeat, a streamed run and an
    // upload with --server, a launch cancelled, a control request and a key rotation.
    drive(&servers[1], &other, &ann, dir.path()).await;
    // And a command on this machine, on the database, with no server of its own.
    let out = admin.output(&["run", "-H", "r1", "--command", "echo relayed"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("r1 | relayed"), "{}", text(&out));

    // Only the fleet's servers are relayed to: a token sealed with the fleet's key, for
    // that host, is needed; a host that did not call is not found.
    for (token, host, expected) in [
        (None, "r1", StatusCode::FORBIDDEN),
        (Some("00ff"), "r1", StatusCode::FORBIDDEN),
        (Some("good"), "nope", StatusCode::FORBIDDEN),
    ] {
        let mut request = called
            .request(Method::GET, &format!("/relay/v1/hosts/{host}"), None)
            .header("connection", "upgrade")
            .header("upgrade", "otto-relay");
        if let Some(token) = token {
            let token = if token == "good" {
                let keyring =
                    otto_server::store::secrets::Keyring::new(admin.data().join("secrets.key"));
                otto_server::relay::token(&keyring, "r1").unwrap()
            } else {
                token.to_owned()
            };
            request = request.header("otto-relay-token", token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), expected, "{host} {token:?}");
    }
    let keyring = otto_server::store::secrets::Keyring::new(admin.data().join("secrets.key"));
    let token = otto_server::relay::token(&keyring, "r2").unwrap();
    let response = called
        .request(Method::GET, "/relay/v1/hosts/r2", None)
        .header("connection", "upgrade")
        .header("upgrade", "otto-relay")
        .header("otto-relay-token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

/// Milliseconds since the epoch of an RFC 3339 time.
fn ms(rfc3339: &str) -> i64 {
    rfc3339.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

/// Waits until `done`, checking every 200 ms, for at most `bound`.
async fn wait_for(bound: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + bound;
    while !done() {
        assert!(Instant::now() < deadline, "not done within {bound:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn servers_lists_the_serving_process_with_its_hosts_everywhere() {
    let Some(url) = database().await else {
        return;
    };
    let a = Server::on_postgres(&url);
    a.ok(&["host", "add", "r1", "192.0.2.1"]);
    a.ok(&["host", "add", "r2", "192.0.2.2"]);
    add_user(&a, "reader", &[]);
    let reader = key_of(&a, "reader");
    // Before any serve: no server shares the fleet (the command's own process serves nothing).
    assert_eq!(a.json(&["servers"]), json!([]));
    let daemon = Daemon::start(&a, &[]);
    let name_end = format!(":{}", daemon.pid());

    // In process: the serve, once it has claimed both hosts; not this process.
    let mut listed = Value::Null;
    wait_for(BOUND, || {
        listed = a.json(&["servers"]);
        listed[0]["hosts"] == 2
    })
    .await;
    let servers = listed.as_array().unwrap();
    assert_eq!(servers.len(), 1, "{listed:#}");
    let serve = &servers[0];
    assert!(
        serve["name"].as_str().unwrap().ends_with(&name_end),
        "{listed:#}"
    );
    assert_eq!(serve["live"], true, "{listed:#}");
    assert_eq!(serve["this"], false, "{listed:#}");
    assert!(ms(serve["expires"].as_str().unwrap()) > ms(serve["started"].as_str().unwrap()));
    let id = serve["id"].as_str().unwrap().to_string();
    let table = a.ok(&["servers"]);
    assert!(table.contains("live until"), "{table}");
    assert!(table.contains(&id) && table.contains(&name_end), "{table}");

    // The API, for a user with no permission: the same server, and it is the one answering.
    let (status, answer) = daemon
        .call(Method::GET, "/api/v1/servers", Some(&reader), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer[0]["id"], id.as_str(), "{answer:#}");
    assert_eq!(answer[0]["hosts"], 2, "{answer:#}");
    assert_eq!(answer[0]["this"], true, "{answer:#}");

    // Through --server: the same, from a client with no data directory of its own.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = finish(client(
        elsewhere.path(),
        &a,
        daemon.base(),
        Some(&reader),
        &["--json", "servers"],
    ))
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let remote: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(remote[0]["id"], id.as_str(), "{remote:#}");
    assert_eq!(remote[0]["hosts"], 2, "{remote:#}");
    assert_eq!(remote[0]["this"], true, "{remote:#}");
    let out = finish(client(
        elsewhere.path(),
        &a,
        daemon.base(),
        Some(&reader),
        &["servers"],
    ))
    .await;
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    assert!(table.contains(&format!("{name_end} (this)")), "{table}");
    assert!(table.contains("live until"), "{table}");
}

#[test]
fn on_sqlite_servers_says_there_is_one() {
    let server = Server::new();
    assert_eq!(server.json(&["servers"]), json!([]));
    let said = server.ok(&["servers"]);
    assert!(said.starts_with("one server (SQLite)"), "{said}");
}
