//! `/api/v1/enrollment`: tokens, rules and the fingerprint for users with the permission
//! `enrollment` (403 without it), and the pending keys of several hosts approved or denied at
//! once with `hosts`.

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
            Method::GET,
            "/api/v1/enrollment/tokens",
            null.clone(),
            Some("enrollment"),
        ),
        (
            Method::POST,
            "/api/v1/enrollment/tokens",
            json!({}),
            Some("enrollment"),
        ),
        (
            Method::DELETE,
            "/api/v1/enrollment/tokens/999",
            null.clone(),
            Some("enrollment"),
        ),
        (
            Method::GET,
            "/api/v1/enrollment/rules",
            null.clone(),
            Some("enrollment"),
        ),
        (
            Method::POST,
            "/api/v1/enrollment/rules",
            json!({"trust": false}),
            Some("enrollment"),
        ),
        (
            Method::DELETE,
            "/api/v1/enrollment/rules/999",
            null.clone(),
            Some("enrollment"),
        ),
        (
            Method::GET,
            "/api/v1/enrollment/fingerprint",
            null,
            Some("enrollment"),
        ),
        (Method::GET, "/api/v1/enrollment/pending", Value::Null, None),
        (
            Method::POST,
            "/api/v1/enrollment/pending/approve",
            json!({"hosts": ["r1"]}),
            Some("hosts"),
        ),
        (
            Method::POST,
            "/api/v1/enrollment/pending/deny",
            json!({"hosts": ["r1"]}),
            Some("hosts"),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_rules_and_pending_keys_through_the_api_for_those_allowed() {
    let server = Server::new();
    server.ok(&["host", "add", "r1", "192.0.2.1"]);
    add_user(&server, "erin", &["--permission", "enrollment"]);
    add_user(&server, "hank", &["--permission", "hosts"]);
    let (erin, hank) = (key_of(&server, "erin"), key_of(&server, "hank"));
    let daemon = Daemon::start(&server, &[]);

    // A token: its secret and agent command once, then listed without them.
    let body =
        json!({"uses": 2, "groups": ["lab"], "note": "lab", "call_home": "otto.example:12445"});
    let (status, made) = daemon
        .call(
            Method::POST,
            "/api/v1/enrollment/tokens",
            Some(&erin),
            &body,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let secret = made["secret"].as_str().unwrap();
    assert!(secret.starts_with("otto-enroll-"), "{made}");
    let fingerprint = made["fingerprint"].as_str().unwrap();
    assert_eq!(
        made["command"],
        format!(
            "otto-agent enroll --server otto.example:12445 --fingerprint {fingerprint} --token {secret}"
        )
    );
    let (_, listed) = daemon
        .call(
            Method::GET,
            "/api/v1/enrollment/tokens",
            Some(&erin),
            &Value::Null,
        )
        .await;
    assert_eq!(listed[0]["uses"], 2);
    assert_eq!(listed[0]["used"], 0);
    assert_eq!(listed[0]["groups"], json!(["lab"]));
    assert!(!listed.to_string().contains(secret));
    let (_, shown) = daemon
        .call(
            Method::GET,
            "/api/v1/enrollment/fingerprint",
            Some(&erin),
            &Value::Null,
        )
        .await;
    assert_eq!(shown["fingerprint"], fingerprint);
    // Past its limits: refused with the reason.
    for body in [
        json!({"uses": 0}),
        json!({"uses": 100001}),
        json!({"expires_in_secs": 31622401}),
    ] {
        let (status, answer) = daemon
            .call(
                Method::POST,
                "/api/v1/enrollment/tokens",
                Some(&erin),
                &body,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
    }
    // Revoked once; again is a conflict; one that does not exist is 404.
    let (status, revoked) = daemon
        .call(
            Method::DELETE,
            "/api/v1/enrollment/tokens/1",
            Some(&erin),
            &Value::Null,
        )
        .await;
    assert_eq!(
        (status, revoked["revoked"].clone()),
        (StatusCode::OK, json!(true))
    );
    let (status, _) = daemon
        .call(
            Method::DELETE,
            "/api/v1/enrollment/tokens/1",
            Some(&erin),
            &Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Rules: added in place, listed in order, a bad regex refused, removed.
    let add = |body: Value| {
        let (daemon, erin) = (&daemon, erin.clone());
        async move {
            daemon
                .call(Method::POST, "/api/v1/enrollment/rules", Some(&erin), &body)
                .await
        }
    };
    let (status, rules) = add(json!({"clauses": [{"property": "arch", "regex": "^mips"}], "groups": ["mips"], "trust": true})).await;
    assert_eq!(status, StatusCode::CREATED, "{rules}");
    let (_, rules) = add(json!({"clauses": [], "trust": false, "position": 1})).await;
    let order: Vec<(i64, i64)> = rules
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_i64().unwrap(), r["position"].as_i64().unwrap()))
        .collect();
    assert_eq!(order, [(2, 1), (1, 2)]);
    let (status, answer) =
        add(json!({"clauses": [{"property": "arch", "regex": "("}], "trust": true})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a regular expression")
    );
    let (status, removed) = daemon
        .call(
            Method::DELETE,
            "/api/v1/enrollment/rules/2",
            Some(&erin),
            &Value::Null,
        )
        .await;
    assert_eq!((status, removed["id"].clone()), (StatusCode::OK, json!(2)));

    // Pending keys, several at once, with `hosts` only: r1 has none, so each says why.
    let pending = json!({"hosts": ["r1", "nope"]});
    let (status, _) = daemon
        .call(
            Method::POST,
            "/api/v1/enrollment/pending/approve",
            Some(&erin),
            &pending,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, decided) = daemon
        .call(
            Method::POST,
            "/api/v1/enrollment/pending/approve",
            Some(&hank),
            &pending,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    assert_eq!(decided[0]["error"], "r1 has no pending key");
    assert_eq!(decided[1]["error"], "no host named `nope`");
    let too_many: Vec<String> = (0..1001).map(|i| format!("h{i}")).collect();
    let (status, _) = daemon
        .call(
            Method::POST,
            "/api/v1/enrollment/pending/deny",
            Some(&hank),
            &json!({"hosts": too_many}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = daemon
        .call(
            Method::POST,
            "/api/v1/enrollment/pending/deny",
            Some(&hank),
            &json!({"hosts": []}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A user with `hosts` but not `enrollment` sees no token.
    let (status, _) = daemon
        .call(
            Method::GET,
            "/api/v1/enrollment/tokens",
            Some(&hank),
            &Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Every change is in the event log, with who made it.
    let events = server.json(&["events", "--kind", "enrollment-changed"]);
    let details: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(details.len(), 5, "{details:?}");
    assert!(
        details[0].starts_with("enrollment token 1 made"),
        "{details:?}"
    );
    assert!(
        events[0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("user:erin "),
        "{events}"
    );
}
