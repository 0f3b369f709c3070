//! The fleet on PostgreSQL (`--database`): servers on different data directories sharing one
//! database share the hosts, their keys (given the same key-encryption key, `secrets.key`),
//! the variables and the history; `serve` keeps its hosts' heartbeats there; an unreachable
//! database is a clear error. Each test has a database of its own on one private cluster
//! (`otto_server::store::postgres::local`) for the whole test process.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use otto_server::store::postgres::local::LocalCluster;

use crate::harness::{Server, all_succeeded, text, tool_missing};

/// A new database on the process's cluster; None when PostgreSQL is missing (the test skips,
/// or fails under `OTTO_REQUIRE_TOOLS`).
async fn database() -> Option<String> {
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

/// Gives `to` the key-encryption key of `from`, as an administrator copies it between servers.
fn share_key(from: &Server, to: &Server) {
    let key = from.data().join("secrets.key");
    let copy = to.data().join("secrets.key");
    std::fs::copy(&key, &copy).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&copy).unwrap().permissions())
            & 0o777,
        0o600
    );
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
    let b = Server::on_postgres(&url);
    std::fs::create_dir_all(b.data()).unwrap();
    share_key(&a, &b);
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
    let b = Server::on_postgres(&url);
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

    let copy = ["database", "copy", "--from", data, "--database", &url, "--json"];
    let copied = old.json(&copy);
    assert_eq!(copied["tables"]["hosts"], 1, "{copied:#}");
    assert_eq!(copied["tables"]["runs"], 1, "{copied:#}");
    assert_eq!(copied["tables"]["env"], 1, "{copied:#}");
    assert_eq!(copied["sealed_secrets"], 1, "{copied:#}");
    assert!(!copied["to"].as_str().unwrap().contains("otto-local"), "{copied:#}");

    // A server on PostgreSQL with the data directory's key drives the same agent.
    let new = Server::on_postgres(&url);
    std::fs::create_dir_all(new.data()).unwrap();
    share_key(&old, &new);
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
