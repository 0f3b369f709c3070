//! One name rule for hosts, groups, scripts, users and variables, and hosts' addresses and
//! ports checked, alike through the CLI and the HTTP API; names an older database holds that
//! break the rule reported by `check` (CLI and API) and still removable; name lists taken the
//! same way by every command that takes several names, locally and through `--server`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Server, text};
use crate::http::{Daemon, key_of};
use crate::remote::{client, finish};
use crate::users::{add_user, with_input};

/// The names the issue saw accepted, and a few more: each breaks the rule of every kind.
fn bad_names() -> Vec<String> {
    [
        "",
        "..",
        "a/b",
        "../../x",
        "a\0b",
        "a\r\nb",
        "a\nb",
        "a\u{1b}[31mb",
        "a\u{202e}b",
        "-a",
        ".a",
        "a b",
    ]
    .into_iter()
    .map(String::from)
    .chain(["x".repeat(300), "x".repeat(64)])
    .collect()
}

/// The error message of an API answer.
fn message(answer: &Value) -> &str {
    answer["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn names_that_break_the_rule_are_refused_through_the_api_and_nothing_is_made() {
    let server = Server::new();
    add_user(&server, "root", &["--admin"]);
    let key = key_of(&server, "root");
    let daemon = Daemon::start(&server, &["--http-plain"]);
    for name in bad_names() {
        let shown = format!("{name:?}");
        let bodies = [
            ("/api/v1/groups", json!({"name": name}), "group"),
            (
                "/api/v1/scripts",
                json!({"name": name, "body": "true"}),
                "script",
            ),
            (
                "/api/v1/hosts",
                json!({"name": name, "address": "192.0.2.1"}),
                "host",
            ),
            (
                "/api/v1/users",
                json!({"name": name, "password": "long enough"}),
                "user",
            ),
        ];
        for (path, body, noun) in bodies {
            let (status, answer) = daemon.call(Method::POST, path, Some(&key), &body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {shown}: {answer}");
            let said = message(&answer);
            assert!(
                said.contains(&format!("not a valid {noun} name")),
                "{path} {shown}: {said}"
            );
            assert!(!said.chars().any(char::is_control), "{said:?}");
        }
        // A host's group, made with the host: refused before the host is made.
        let body = json!({"name": "r1", "address": "192.0.2.1", "groups": [name]});
        let (status, answer) = daemon
            .call(Method::POST, "/api/v1/hosts", Some(&key), &body)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{shown}: {answer}");
    }
    // Variables: an environment variable's name, whatever the scope.
    for name in ["1A", "A.B", "a-b", "A%20B", "%C3%A9"] {
        let path = format!("/api/v1/env/{name}");
        let (status, answer) = daemon
            .call(Method::PUT, &path, Some(&key), &json!({"value": "v"}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {answer}");
        assert!(
            message(&answer).contains("not a valid variable name"),
            "{answer}"
        );
    }
    let (status, _) = daemon
        .call(
            Method::PUT,
            "/api/v1/env/GOOD_1",
            Some(&key),
            &json!({"value": "v"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    for list in [["group", "list"], ["script", "list"], ["host", "list"]] {
        assert_eq!(server.json(&list), json!([]), "{list:?}");
    }
    assert_eq!(server.json(&["user", "list"]).as_array().unwrap().len(), 1);
    assert!(server.server_keys().is_empty());
}

#[test]
fn names_that_break_the_rule_are_refused_by_the_cli_with_exit_2() {
    let server = Server::new();
    for name in bad_names().into_iter().filter(|n| !n.contains('\0')) {
        let shown = format!("{name:?}");
        let group = format!("--group={name}");
        for args in [
            vec!["group", "add", "--", &name],
            vec!["script", "add", "--body", "true", "--", &name],
            vec!["host", "add", "--", &name, "192.0.2.1"],
            vec!["host", "add", "r1", "192.0.2.1", &group],
            vec!["env", "set", "--", &name, "v"],
        ] {
            let out = server.output(&args);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{args:?} {shown}: {}",
                text(&out)
            );
            let said = String::from_utf8_lossy(&out.stderr);
            assert!(said.contains("is not a valid"), "{args:?}: {said}");
        }
        let out = with_input(&server, &["user", "add", "--", &name], "long enough\n");
        assert_eq!(out.status.code(), Some(2), "user {shown}: {}", text(&out));
    }
    for list in [
        ["group", "list"],
        ["script", "list"],
        ["host", "list"],
        ["env", "list"],
    ] {
        assert_eq!(server.json(&list), json!([]), "{list:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn addresses_ports_and_names_in_other_letter_case_are_checked_and_a_shared_place_needs_force()
{
    let server = Server::new();
    // The CLI.
    for (address, port) in [
        ("", "12444"),
        ("a b\u{1b}[31m;rm -rf /", "12444"),
        ("r.lab", "0"),
    ] {
        let out = server.output(&["host", "add", "r1", address, "--port", port]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{address:?}:{port}: {}",
            text(&out)
        );
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!said.contains('\u{1b}'), "{said:?}");
    }
    server.ok(&["host", "add", "r1", "Router.lab", "-g", "Lab"]);
    let out = server.output(&["host", "add", "r2", "router.LAB.", "-g", "Lab"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("`r1` is already at router.LAB.:12444"),
        "{}",
        text(&out)
    );
    server.ok(&["host", "add", "r2", "router.LAB.", "--force"]);
    server.ok(&["host", "add", "r3", "2001:db8::1"]);
    let out = server.output(&["host", "add", "r4", "2001:db8:0::1"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    let out = server.output(&["host", "set", "r3", "--address", "router.lab"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    server.ok(&["host", "set", "r3", "--address", "router.lab", "--force"]);
    let out = server.output(&["host", "set", "r3", "--port", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    for args in [
        vec!["host", "add", "R1", "192.0.2.9"],
        vec!["group", "add", "lab"],
        vec!["host", "add", "r9", "192.0.2.9", "-g", "LAB"],
    ] {
        let out = server.output(&args);
        assert_eq!(out.status.code(), Some(5), "{args:?}: {}", text(&out));
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains("only in letter case"), "{args:?}: {said}");
    }
    // A deployment is checked before the device is touched (no ssh runs: none listens).
    for (destination, more, said) in [
        ("root@a b", vec![], "`a b` is not an address"),
        (
            "root@192.0.2.30",
            vec!["--agent-port", "0"],
            "port 0 is not a port",
        ),
        (
            "root@router.lab",
            vec![],
            "`r1` is already at router.lab:12444",
        ),
        ("root@192.0.2.30", vec!["-g", "LAB"], "only in letter case"),
        (
            "root@192.0.2.30",
            vec!["-g", "a/b"],
            "not a valid group name",
        ),
        (
            "root@192.0.2.30",
            vec!["--allow-from", "10.0.0.0/8,10.0.0.0/33"],
            "`10.0.0.0/33` is not an address range",
        ),
        (
            "root@192.0.2.30",
            vec!["--call-home", "a b"],
            "`a b` is not ADDRESS[:PORT]",
        ),
    ] {
        let mut args = vec!["host", "deploy", "d1", destination, "--ssh-port", "1"];
        args.extend(more);
        let out = server.output(&args);
        assert!(
            matches!(out.status.code(), Some(2 | 5)),
            "{args:?}: {}",
            text(&out)
        );
        assert!(text(&out).contains(said), "{args:?}: {}", text(&out));
    }
    assert!(!server.server_keys().contains(&"d1/current".to_string()));
    // A re-deploy needs the pinned agent key to check the device's against.
    let out = server.output(&["host", "deploy", "r1", "root@192.0.2.31", "--ssh-port", "1"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(text(&out).contains("no pinned agent key"), "{}", text(&out));
    server.ok(&["script", "add", "Hello", "--body", "true"]);
    let out = server.output(&["script", "add", "hello", "--body", "true"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(server.output(&["host", "show", "r9"]).status.code() == Some(4));

    // The API says the same.
    add_user(&server, "root", &["--admin"]);
    let key = key_of(&server, "root");
    let daemon = Daemon::start(&server, &["--http-plain"]);
    let add = async |body: Value| {
        daemon
            .call(Method::POST, "/api/v1/hosts", Some(&key), &body)
            .await
    };
    for body in [
        json!({"name": "a1", "address": ""}),
        json!({"name": "a1", "address": "a b\u{1b}[31m;rm -rf /"}),
        json!({"name": "a1", "address": "192.0.2.7", "port": 0}),
    ] {
        let (status, answer) = add(body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
    }
    let (status, answer) = add(json!({"name": "a1", "address": "ROUTER.lab"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(message(&answer).contains("is already at"), "{answer}");
    let (status, answer) = add(json!({"name": "A2", "address": "192.0.2.7"})).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let (status, answer) = add(json!({"name": "a2", "address": "192.0.2.8"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(message(&answer).contains("only in letter case"), "{answer}");
    let forced = json!({"name": "a3", "address": "ROUTER.lab", "force": true});
    assert_eq!(add(forced).await.0, StatusCode::CREATED);
    let patch = async |body: Value| {
        daemon
            .call(Method::PATCH, "/api/v1/hosts/A2", Some(&key), &body)
            .await
    };
    assert_eq!(patch(json!({"port": 0})).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(
        patch(json!({"address": "-x"})).await.0,
        StatusCode::BAD_REQUEST
    );
    let (status, answer) = patch(json!({"address": "router.lab"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    let (status, answer) = patch(json!({"address": "router.lab", "force": true})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) = daemon
        .call(
            Method::POST,
            "/api/v1/groups",
            Some(&key),
            &json!({"name": "LAB"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_older_database_is_reported_by_check_and_its_names_can_still_be_removed() {
    let server = Server::new();
    server.ok(&["host", "add", "r1", "192.0.2.1"]);
    assert_eq!(
        server.ok(&["check"]),
        "every name, address and port follows the rules\n"
    );
    rusqlite::Connection::open(server.data().join("otto.db"))
        .unwrap()
        .execute_batch(
            "INSERT INTO hosts (name, address, port) VALUES ('../x', 'a b', 0);
             INSERT INTO hosts (name, address, port) VALUES ('R1', '192.0.2.1', 12444);
             INSERT INTO groups (name) VALUES ('');
             INSERT INTO groups (name) VALUES ('a/b');
             INSERT INTO env (scope, owner, name, value) VALUES ('global', '', 'A.B', 'v');",
        )
        .unwrap();
    let out = server.output(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let listed = String::from_utf8_lossy(&out.stdout);
    for said in [
        "`../x` is not a valid host name",
        "`a b` is not an address",
        "`r1` differs from the host `R1` only in letter case",
        "the host `R1` is already at 192.0.2.1:12444",
        "`` is not a valid group name",
        "`a/b` is not a valid group name",
        "`A.B` is not a valid variable name",
    ] {
        assert!(listed.contains(said), "{said}: {listed}");
    }
    let out = server.output(&["check", "--json"]);
    let findings: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(findings.as_array().unwrap().len(), 7, "{findings}");
    // The API answers the same list.
    add_user(&server, "rita", &[]);
    let key = key_of(&server, "rita");
    let daemon = Daemon::start(&server, &["--http-plain"]);
    let (status, answer) = daemon
        .call(Method::GET, "/api/v1/check", Some(&key), &Value::Null)
        .await;
    assert_eq!((status, &answer), (StatusCode::OK, &findings));
    // Nothing was rewritten; each can be removed, and then all is well.
    assert_eq!(server.json(&["group", "list"]).as_array().unwrap().len(), 2);
    // The groups through the API: the empty name, which no path can carry, by the query of
    // `DELETE /api/v1/groups`; `a/b` by its path, percent-encoded.
    add_user(&server, "gus", &["--permission", "groups"]);
    let gus = key_of(&server, "gus");
    let remove = |path: &'static str| {
        let (daemon, gus) = (&daemon, gus.as_str());
        async move {
            daemon
                .call(Method::DELETE, path, Some(gus), &Value::Null)
                .await
        }
    };
    let (status, answer) = remove("/api/v1/groups/").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    let (status, answer) = remove("/api/v1/groups?name=").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
    let (status, answer) = remove("/api/v1/groups?name=").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    let (status, answer) = remove("/api/v1/groups/a%2Fb").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
    assert_eq!(server.json(&["group", "list"]), json!([]));
    server.ok(&["host", "remove", "../x", "R1"]);
    server.ok(&["env", "unset", "A.B"]);
    assert_eq!(
        server.ok(&["check"]),
        "every name, address and port follows the rules\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn name_lists_are_taken_alike_locally_and_through_the_server() {
    let server = Server::new();
    for (i, name) in ["a", "b", "c", "d"].iter().enumerate() {
        server.ok(&["host", "add", name, &format!("192.0.2.{}", i + 1)]);
    }
    server.ok(&["group", "add", "g"]);
    assert_eq!(
        server.ok(&["group", "add-host", "g", "a,b"]),
        "a, b added to g\n"
    );
    assert_eq!(
        server.ok(&["group", "add-host", "g", "c", "d"]),
        "c, d added to g\n"
    );
    let members = |server: &Server| server.json(&["group", "list"])[0]["hosts"].clone();
    assert_eq!(members(&server), json!(["a", "b", "c", "d"]));
    assert_eq!(
        server.ok(&["group", "remove-host", "g", "a,b", "c"]),
        "a, b, c taken out of g\n"
    );
    assert_eq!(members(&server), json!(["d"]));
    assert_eq!(
        server.ok(&["host", "remove", "a", "b"]),
        "removed a\nremoved b\n"
    );

    // Through the server.
    add_user(&server, "root", &["--admin"]);
    let key = key_of(&server, "root");
    let daemon = Daemon::start(&server, &[]);
    let elsewhere = tempfile::tempdir().unwrap();
    let remote = async |args: &[&str]| {
        let out = finish(client(
            elsewhere.path(),
            &server,
            daemon.base(),
            Some(&key),
            args,
        ))
        .await;
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    remote(&["host", "add", "e", "192.0.2.5"]).await;
    assert_eq!(
        remote(&["group", "add-host", "g", "c,e"]).await,
        "c, e added to g\n"
    );
    assert_eq!(members(&server), json!(["c", "d", "e"]));
    assert_eq!(
        remote(&["group", "remove-host", "g", "c", "d,e"]).await,
        "c, d, e taken out of g\n"
    );
    assert_eq!(members(&server), json!([]));
    let said = remote(&["check"]).await;
    assert_eq!(said, "every name, address and port follows the rules\n");
    assert_eq!(
        remote(&["host", "remove", "c,d", "e"]).await,
        "removed c\nremoved d\nremoved e\n"
    );
    assert_eq!(server.json(&["host", "list"]), json!([]));
}
