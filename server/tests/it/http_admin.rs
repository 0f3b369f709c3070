//! What an administrator reads through the API beside the fleet: the server's options as the
//! running `serve` uses them (`GET /api/v1/options`), and the event log filtered by kind and
//! user and read a page at a time (`GET /api/v1/events`).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::Server;
use crate::http::{Daemon, key_of};
use crate::users::add_user;

#[tokio::test(flavor = "multi_thread")]
async fn the_options_are_those_serve_runs_with_for_the_permission_options() {
    let server = Server::new();
    add_user(&server, "ops", &["--permission", "options"]);
    add_user(&server, "hoster", &["--permission", "hosts"]);
    let (ops, hoster) = (key_of(&server, "ops"), key_of(&server, "hoster"));
    let mut daemon = Daemon::start(&server, &["--rotate-every", "0"]);
    let (status, options) = daemon
        .call(Method::GET, "/api/v1/options", Some(&ops), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK, "{options}");
    let data = server.data();
    assert_eq!(
        options,
        json!({
            // The harness gives every command an empty configuration file.
            "config_file": "/dev/null",
            "data_dir": data.display().to_string(),
            "http_listen": daemon.base().strip_prefix("https://").unwrap(),
            "http_scheme": "https",
            "tls_certificate": data.join("http.crt").display().to_string(),
            "tls_fingerprint": daemon.fingerprint.clone().unwrap(),
            "heartbeat_interval_secs": 3600,
            "rotate_every_secs": null,
            "dial_timeout_secs": 15,
            "dial_limit": 64,
            "answer_timeout_secs": 10,
            "stall_timeout_secs": 35,
            "http_connections": 1024,
            "http_connections_per_source": 64,
        })
    );
    let (status, refused) = daemon
        .call(Method::GET, "/api/v1/options", Some(&hoster), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert!(daemon.terminate());

    // Plain HTTP: no certificate to show; the rotation and the connection limits as set.
    let daemon = Daemon::start(
        &server,
        &[
            "--http-plain",
            "--rotate-every",
            "2d",
            "--http-connections",
            "100",
            "--http-connections-per-source",
            "7",
        ],
    );
    let (_, options) = daemon
        .call(Method::GET, "/api/v1/options", Some(&ops), &Value::Null)
        .await;
    assert_eq!(options["http_scheme"], "http");
    assert_eq!(options["tls_certificate"], Value::Null);
    assert_eq!(options["tls_fingerprint"], Value::Null);
    assert_eq!(options["rotate_every_secs"], 172_800);
    assert_eq!(options["http_connections"], 100);
    assert_eq!(options["http_connections_per_source"], 7);
}

#[tokio::test(flavor = "multi_thread")]
async fn events_are_filtered_by_kind_and_user_and_read_a_page_at_a_time() {
    let server = Server::new();
    add_user(&server, "auditor", &["--permission", "audit"]);
    add_user(&server, "al", &["--permission", "groups"]);
    add_user(&server, "alice", &["--permission", "groups"]);
    let auditor = key_of(&server, "auditor");
    let daemon = Daemon::start(&server, &["--http-plain"]);
    for (user, group) in [("al", "g1"), ("alice", "g2"), ("al", "g3")] {
        let key = key_of(&server, user);
        let (status, body) = daemon
            .call(
                Method::POST,
                "/api/v1/groups",
                Some(&key),
                &json!({ "name": group }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let events = |query: &'static str| {
        let (daemon, auditor) = (&daemon, &auditor);
        async move {
            let path = format!("/api/v1/events?{query}");
            let (status, body) = daemon
                .call(Method::GET, &path, Some(auditor), &Value::Null)
                .await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            body.as_array().unwrap().clone()
        }
    };
    let details = |events: &[Value]| -> Vec<String> {
        events
            .iter()
            .map(|e| e["detail"].as_str().unwrap().to_string())
            .collect()
    };
    // Al's, not Alice's, though her name begins with his.
    let al = events("user=al&kind=group-changed").await;
    assert_eq!(al.len(), 2, "{al:#?}");
    assert!(details(&al)[0].contains("g1") && details(&al)[1].contains("g3"));
    assert!(
        al.iter()
            .all(|e| e["actor"].as_str().unwrap().starts_with("user:al (API key"))
    );
    // Pages: the newest, then the one before its first event.
    let newest = events("kind=group-changed&limit=2").await;
    assert!(details(&newest)[0].contains("g2") && details(&newest)[1].contains("g3"));
    let before = newest[0]["id"].as_i64().unwrap();
    let path = format!("/api/v1/events?kind=group-changed&limit=2&before={before}");
    let (_, older) = daemon
        .call(Method::GET, &path, Some(&auditor), &Value::Null)
        .await;
    let older = older.as_array().unwrap();
    assert_eq!(older.len(), 1, "{older:#?}");
    assert!(details(older)[0].contains("g1"));
    assert!(events("kind=host-added").await.is_empty());
}
