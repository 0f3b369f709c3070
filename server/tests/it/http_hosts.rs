//! The HTTP API's host routes beyond listing, adding and removing: a host changed, disabled and
//! enabled, its agent's key given by hand, a pending key (a real agent presenting a key that is
//! not the pinned one) shown with its fingerprint, denied and approved, its server key read,
//! and an inventory imported (its plan first): each change the CLI's too, naming its user.

use otto_server::keys;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::Server;
use crate::http::{Daemon, key_of};
use crate::users::add_user;

/// This module's routes for `http::routes`: method, path, a body, and the permission needed.
pub fn routes() -> Vec<(Method, &'static str, Value, Option<&'static str>)> {
    let null = Value::Null;
    vec![
        (
            Method::PATCH,
            "/api/v1/hosts/r1",
            json!({"port": 2222}),
            Some("hosts"),
        ),
        (
            Method::POST,
            "/api/v1/hosts/r1/enable",
            null.clone(),
            Some("hosts"),
        ),
        (
            Method::POST,
            "/api/v1/hosts/r1/disable",
            null.clone(),
            Some("hosts"),
        ),
        (
            Method::POST,
            "/api/v1/hosts/r1/trust",
            json!({"key": "ssh-ed25519 AAAA"}),
            Some("hosts"),
        ),
        (
            Method::POST,
            "/api/v1/hosts/r1/approve",
            null.clone(),
            Some("hosts"),
        ),
        (
            Method::POST,
            "/api/v1/hosts/r1/deny",
            null.clone(),
            Some("hosts"),
        ),
        (Method::GET, "/api/v1/hosts/r1/key", null, None),
        (
            Method::POST,
            "/api/v1/imports",
            json!({"format": "csv", "text": "name,address\nr7,192.0.2.7\n", "dry_run": true}),
            Some("hosts"),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn hosts_are_changed_trusted_denied_approved_and_imported_naming_the_user() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let agent = server.agent("r1", dir.path(), &[], "").await;
    // Pin some other key: the real agent's key is then presented and held as pending.
    let other = keys::to_openssh(keys::generate().unwrap().public_key());
    server.ok(&["host", "trust", "r1", &other]);
    add_user(&server, "hank", &["--permission", "hosts,audit"]);
    let hank = key_of(&server, "hank");
    let daemon = Daemon::start(&server, &[]);
    let call = |method: Method, path: &str, body: Value| {
        let (daemon, hank) = (&daemon, hank.as_str());
        let path = path.to_string();
        async move { daemon.call(method, &path, Some(hank), &body).await }
    };

    // Refused with the wrong key: the presented one is pending, shown with its fingerprint.
    let (status, pinged) = call(Method::POST, "/api/v1/ping", json!({"hosts": ["r1"]})).await;
    assert_eq!(status, StatusCode::OK, "{pinged}");
    assert_eq!(pinged[0]["reachable"], false, "{pinged}");
    let presented = keys::fingerprint(&agent.agent_key);
    let (status, shown) = call(Method::GET, "/api/v1/hosts/r1", Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["pending_fingerprint"], presented.as_str(), "{shown}");
    let (_, listed) = call(Method::GET, "/api/v1/hosts?state=pending", Value::Null).await;
    assert_eq!(
        listed["hosts"][0]["pending_fingerprint"],
        presented.as_str()
    );

    // Denied: dropped, the pinned key kept, the host still refused.
    let (status, denied) = call(Method::POST, "/api/v1/hosts/r1/deny", Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{denied}");
    assert_eq!(denied["fingerprint"], presented.as_str());
    let host = server.json(&["host", "show", "r1"]);
    assert_eq!(host["trust"]["pending_key"], Value::Null, "{host}");
    assert_eq!(host["trust"]["agent_key"], other.as_str(), "{host}");
    let (status, again) = call(Method::POST, "/api/v1/hosts/r1/deny", Value::Null).await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");

    // Presented again, then approved: reachable.
    call(Method::POST, "/api/v1/ping", json!({"hosts": ["r1"]})).await;
    let (status, approved) = call(Method::POST, "/api/v1/hosts/r1/approve", Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(approved["fingerprint"], presented.as_str());
    let (_, pinged) = call(Method::POST, "/api/v1/ping", json!({"hosts": ["r1"]})).await;
    assert_eq!(pinged[0]["reachable"], true, "{pinged}");
    let (_, shown) = call(Method::GET, "/api/v1/hosts/r1", Value::Null).await;
    assert_eq!(shown["pending_fingerprint"], Value::Null, "{shown}");

    // A key given by hand; a key that is none is refused.
    let given = keys::generate().unwrap();
    let body = json!({"key": keys::to_openssh(given.public_key())});
    let (status, trusted) = call(Method::POST, "/api/v1/hosts/r1/trust", body).await;
    assert_eq!(status, StatusCode::OK, "{trusted}");
    assert_eq!(
        trusted["fingerprint"],
        keys::fingerprint(given.public_key()).as_str()
    );
    let bad = json!({"key": "ssh-ed25519 nonsense"});
    let (status, _) = call(Method::POST, "/api/v1/hosts/r1/trust", bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Moved, disabled, enabled; a host that does not exist is 404, an unknown field 422.
    let (status, moved) = call(Method::PATCH, "/api/v1/hosts/r1", json!({"port": 2222})).await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(
        (&moved["address"], &moved["port"]),
        (&json!("127.0.0.1"), &json!(2222))
    );
    let (status, _) = call(Method::POST, "/api/v1/hosts/r1/disable", Value::Null).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(server.json(&["host", "show", "r1"])["enabled"], false);
    let (status, _) = call(Method::POST, "/api/v1/hosts/r1/enable", Value::Null).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(server.json(&["host", "show", "r1"])["enabled"], true);
    let (status, _) = call(Method::POST, "/api/v1/hosts/r9/enable", Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(Method::PATCH, "/api/v1/hosts/r1", json!({"colour": 1})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // The server key, as `host key` prints it.
    let (status, key) = call(Method::GET, "/api/v1/hosts/r1/key", Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{key}");
    assert_eq!(
        key["server_key"],
        server.json(&["host", "key", "r1"])["server_key"]
    );

    // An import: the plan alone, then applied; a bad inventory changes nothing.
    let csv = "name,address,port,groups\nr7,192.0.2.7,12444,lab\nr1,127.0.0.1,2222,\n";
    let body = |dry_run: bool| json!({"format": "csv", "text": csv, "dry_run": dry_run});
    let (status, plan) = call(Method::POST, "/api/v1/imports", body(true)).await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    let changes: Vec<(&str, &str)> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["host"].as_str().unwrap(), s["change"].as_str().unwrap()))
        .collect();
    assert_eq!(changes, [("r7", "add"), ("r1", "unchanged")], "{plan}");
    assert_eq!(plan["applied"], false);
    assert_eq!(server.json(&["host", "list"]).as_array().unwrap().len(), 1);
    let (status, done) = call(Method::POST, "/api/v1/imports", body(false)).await;
    assert_eq!((status, &done["applied"]), (StatusCode::OK, &json!(true)));
    assert_eq!(
        server.json(&["host", "show", "r7"])["groups"],
        json!(["lab"])
    );
    let bad = json!({"format": "csv", "text": "name,address\n-r8,192.0.2.8\n"});
    let (status, _) = call(Method::POST, "/api/v1/imports", bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // An inventory larger than other JSON bodies may be (64 KiB) is taken.
    let mut large = String::from("name,address\n");
    for i in 0..4000 {
        large.push_str(&format!("big{i},10.0.{}.{}\n", i / 250, i % 250 + 1));
    }
    assert!(large.len() > 64 * 1024);
    let body = json!({"format": "csv", "text": large, "dry_run": true});
    let (status, plan) = call(Method::POST, "/api/v1/imports", body).await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert_eq!(plan["steps"].as_array().unwrap().len(), 4000);
    let bad = json!({"format": "toml", "text": ""});
    let (status, _) = call(Method::POST, "/api/v1/imports", bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Each change names hank.
    let events = server.json(&["events", "--limit", "500"]);
    let by_hank: Vec<(&str, &str)> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["actor"]
                .as_str()
                .is_some_and(|a| a.starts_with("user:hank "))
        })
        .map(|e| (e["kind"].as_str().unwrap(), e["detail"].as_str().unwrap()))
        .collect();
    for (kind, detail) in [
        (
            "trust-changed",
            format!("pending agent key {presented} denied"),
        ),
        (
            "trust-changed",
            format!("pending agent key {presented} approved"),
        ),
        ("host-changed", "address 127.0.0.1:2222".to_string()),
        ("host-changed", "disabled".into()),
        ("host-changed", "enabled".into()),
        ("host-added", "192.0.2.7:12444, no agent key yet".into()),
    ] {
        assert!(
            by_hank.contains(&(kind, detail.as_str())),
            "{kind} {detail} in {by_hank:#?}"
        );
    }
}

/// Regression: `DELETE /api/v1/hosts/{name}` removed a host with its variables without being
/// told to, where the CLI asks and the group and script routes need `force`.
#[tokio::test(flavor = "multi_thread")]
async fn a_host_with_variables_is_removed_only_with_force() {
    let server = Server::new();
    server.ok(&["host", "add", "r1", "192.0.2.1"]);
    server.ok(&["host", "add", "r2", "192.0.2.2"]);
    server.ok(&["env", "set", "MODE", "fast", "--host", "r1"]);
    server.ok(&["env", "set", "TOKEN", "x", "--secret", "--host", "r1"]);
    add_user(&server, "hank", &["--permission", "hosts"]);
    let hank = key_of(&server, "hank");
    let daemon = Daemon::start(&server, &[]);
    let delete = async |path: &str| {
        daemon
            .call(Method::DELETE, path, Some(&hank), &Value::Null)
            .await
    };

    // Refused, naming its variables (secrets marked) as data and in words; nothing removed.
    let (status, answer) = delete("/api/v1/hosts/r1").await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(
        answer["error"]["detail"],
        json!({"code": "has-variables", "scope": "host", "owner": "r1", "variables": [
            {"name": "MODE", "secret": false}, {"name": "TOKEN", "secret": true},
        ]}),
        "{answer}"
    );
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("MODE, TOKEN (secret)") && message.contains("force=true"),
        "{answer}"
    );
    assert_eq!(server.json(&["host", "list"]).as_array().unwrap().len(), 2);
    assert!(server.ok(&["env", "list", "--host", "r1"]).contains("MODE"));

    // Forced: gone with its variables. A host without variables needs no force.
    let (status, answer) = delete("/api/v1/hosts/r1?force=true").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
    let (status, answer) = delete("/api/v1/hosts/r2").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
    assert_eq!(server.json(&["host", "list"]), json!([]));
    assert_eq!(server.json(&["env", "list"]), json!([]));
}

/// Issue 21: an agent that is not trusted yet (no key pinned, or another key presented) is
/// told by the API as a fact with a `code`, and in the host's status, without the command
/// line's commands, which the command line adds itself.
#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_agent_is_told_by_the_api_as_a_fact_and_by_the_cli_with_its_command() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let agent = server.agent("r1", dir.path(), &[], "").await;
    let other = keys::to_openssh(keys::generate().unwrap().public_key());
    server.ok(&["host", "trust", "r1", &other]);
    let port = agent.port.to_string();
    server.ok(&["host", "add", "r2", "127.0.0.1", "--port", &port, "--force"]);
    add_user(&server, "hank", &["--permission", "hosts,audit"]);
    let hank = key_of(&server, "hank");
    let daemon = Daemon::start(&server, &[]);
    let presented = keys::fingerprint(&agent.agent_key);

    let (status, pinged) = daemon
        .call(
            Method::POST,
            "/api/v1/ping",
            Some(&hank),
            &json!({"hosts": ["r1", "r2"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{pinged}");
    assert!(!pinged.to_string().contains("otto-server"), "{pinged}");
    assert_eq!(
        pinged[0]["untrusted"],
        json!({"code": "key-pending", "host": "r1", "fingerprint": presented}),
        "{pinged}"
    );
    assert_eq!(
        pinged[1]["untrusted"],
        json!({"code": "no-agent-key", "host": "r2"}),
        "{pinged}"
    );
    for name in ["r1", "r2"] {
        let (_, shown) = daemon
            .call(
                Method::GET,
                &format!("/api/v1/hosts/{name}"),
                Some(&hank),
                &Value::Null,
            )
            .await;
        assert!(shown["status"]["last_error"].is_string(), "{shown}");
        assert!(!shown.to_string().contains("otto-server"), "{shown}");
    }
    let (_, events) = daemon
        .call(Method::GET, "/api/v1/events", Some(&hank), &Value::Null)
        .await;
    assert!(events.to_string().contains("key-pending"), "{events}");
    assert!(!events.to_string().contains("otto-server"), "{events}");

    // The command line names its commands, locally and through the API.
    let local = server.output(&["ping", "--host", "r1", "--host", "r2"]);
    let elsewhere = tempfile::tempdir().unwrap();
    let args = ["ping", "--host", "r1", "--host", "r2"];
    let remote =
        crate::remote::client(elsewhere.path(), &server, daemon.base(), Some(&hank), &args);
    let remote = crate::remote::finish(remote).await;
    for out in [local, remote] {
        let said = crate::harness::text(&out);
        assert!(said.contains("`otto-server host approve r1`"), "{said}");
        assert!(said.contains("`otto-server host trust r2 "), "{said}");
    }

    // So do an action's results: the API's as a fact, the command line's with its command,
    // locally and through the API.
    let (status, done) = daemon
        .call(
            Method::POST,
            "/api/v1/control",
            Some(&hank),
            &json!({"action": "reload", "hosts": ["r1", "r2"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(!done.to_string().contains("otto-server"), "{done}");
    assert_eq!(done[0]["untrusted"]["code"], "key-pending", "{done}");
    assert_eq!(done[1]["untrusted"]["code"], "no-agent-key", "{done}");
    let args = ["reload", "--host", "r1", "--host", "r2"];
    let local = server.output(&args);
    let remote =
        crate::remote::client(elsewhere.path(), &server, daemon.base(), Some(&hank), &args);
    let remote = crate::remote::finish(remote).await;
    for out in [local, remote] {
        assert_eq!(out.status.code(), Some(3), "{}", crate::harness::text(&out));
        let said = crate::harness::text(&out);
        assert!(said.contains("`otto-server host approve r1`"), "{said}");
        assert!(said.contains("`otto-server host trust r2 "), "{said}");
    }
}
