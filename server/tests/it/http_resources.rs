//! The HTTP API's resources beside hosts: groups, scripts and their attachments, environment
//! variables and uploads, over real loopback HTTP with real agents: what the API changes is the
//! CLI's too, a secret is never in any answer, and a large attachment goes to the store without
//! the server holding it in memory.

use std::os::unix::fs::PermissionsExt;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::harness::Server;
use crate::http::{Daemon, key_of};
use crate::http_runs::Events;
use crate::users::add_user;

/// This module's routes for `http::routes`: method, path (a query after `?`), a body, and the
/// permission (or run level) needed.
pub fn routes() -> Vec<(Method, &'static str, Value, Option<&'static str>)> {
    let null = Value::Null;
    vec![
        (Method::GET, "/api/v1/groups", null.clone(), None),
        (
            Method::POST,
            "/api/v1/groups",
            json!({"name": "lab"}),
            Some("groups"),
        ),
        (
            Method::DELETE,
            "/api/v1/groups/r1",
            null.clone(),
            Some("groups"),
        ),
        (
            Method::DELETE,
            "/api/v1/groups?name=r1",
            null.clone(),
            Some("groups"),
        ),
        (
            Method::PUT,
            "/api/v1/groups/r1/hosts/r1",
            null.clone(),
            Some("groups"),
        ),
        (
            Method::DELETE,
            "/api/v1/groups/r1/hosts/r1",
            null.clone(),
            Some("groups"),
        ),
        (
            Method::PUT,
            "/api/v1/groups/r1/scripts/r1",
            null.clone(),
            Some("groups"),
        ),
        (
            Method::DELETE,
            "/api/v1/groups/r1/scripts/r1",
            null.clone(),
            Some("groups"),
        ),
        (Method::GET, "/api/v1/scripts", null.clone(), None),
        (Method::GET, "/api/v1/scripts/r1", null.clone(), None),
        (
            Method::POST,
            "/api/v1/scripts",
            json!({"name": "s2", "body": "true"}),
            Some("scripts"),
        ),
        (
            Method::PUT,
            "/api/v1/scripts/r1",
            json!({"name": "r1", "body": "false"}),
            Some("scripts"),
        ),
        (
            Method::DELETE,
            "/api/v1/scripts/r1",
            null.clone(),
            Some("scripts"),
        ),
        (
            Method::PUT,
            "/api/v1/scripts/r1/attachments?path=/tmp/x",
            null.clone(),
            Some("scripts"),
        ),
        (
            Method::DELETE,
            "/api/v1/scripts/r1/attachments?path=/tmp/x",
            null.clone(),
            Some("scripts"),
        ),
        (Method::GET, "/api/v1/env", null.clone(), None),
        (Method::GET, "/api/v1/hosts/r1/env", null.clone(), None),
        (
            Method::PUT,
            "/api/v1/env/r1",
            json!({"value": "fast"}),
            Some("scripts"),
        ),
        (
            Method::DELETE,
            "/api/v1/env/r1",
            null.clone(),
            Some("scripts"),
        ),
        (
            Method::POST,
            "/api/v1/uploads?path=/tmp/x&all=true",
            null.clone(),
            Some("read-write"),
        ),
        (Method::GET, "/api/v1/users", null.clone(), Some("users")),
        (
            Method::POST,
            "/api/v1/users",
            json!({"name": "eve", "password": "long enough"}),
            Some("users"),
        ),
        (
            Method::POST,
            "/api/v1/users/r1/disable",
            null.clone(),
            Some("users"),
        ),
        (
            Method::POST,
            "/api/v1/users/r1/enable",
            null.clone(),
            Some("users"),
        ),
        (
            Method::PUT,
            "/api/v1/users/r1/permissions",
            json!({"admin": true, "run": "read-write", "modify": []}),
            Some("users"),
        ),
        (
            Method::PUT,
            "/api/v1/users/r1/password",
            json!({"password": "correct horse battery"}),
            Some("users"),
        ),
        // One's own password (the tests' users all have this one) and session: no permission.
        (
            Method::POST,
            "/api/v1/users/me/password",
            json!({"current": "correct horse battery", "password": "correct horse battery"}),
            None,
        ),
        (Method::DELETE, "/api/v1/session", null, None),
    ]
}

/// The peak resident memory of process `pid` so far, in bytes.
fn peak_memory(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// Files the API left in the data directory while taking a body.
fn spooled(server: &Server) -> Vec<String> {
    std::fs::read_dir(server.data())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".body-"))
        .collect()
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn groups_scripts_and_variables_made_through_the_api_are_the_clis_and_secrets_stay_hidden() {
    const SECRET: &str = "hunter2-very-secret";
    let server = Server::new();
    server.ok(&["host", "add", "r1", "192.0.2.1"]);
    add_user(&server, "alice", &["--permission", "groups,scripts,audit"]);
    let key = key_of(&server, "alice");
    let daemon = Daemon::start(&server, &["--http-plain"]);
    // Every answer, to look for the secret in at the end.
    let mut answers: Vec<String> = Vec::new();
    let mut call = async |method: Method, path: &str, body: Value| {
        let (status, answer) = daemon.call(method, path, Some(&key), &body).await;
        answers.push(answer.to_string());
        (status, answer)
    };

    let (status, _) = call(Method::POST, "/api/v1/groups", json!({"name": "lab"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, answer) = call(Method::POST, "/api/v1/groups", json!({"name": "lab"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    let script = json!({"name": "hello", "body": "echo hi", "timeout_secs": 30});
    let (status, _) = call(Method::POST, "/api/v1/scripts", script.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = call(Method::POST, "/api/v1/scripts", script).await;
    assert_eq!(status, StatusCode::CONFLICT);
    for path in [
        "/api/v1/groups/lab/hosts/r1",
        "/api/v1/groups/lab/scripts/hello",
    ] {
        let (status, answer) = call(Method::PUT, path, Value::Null).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{path}: {answer}");
    }
    let (status, answer) = call(Method::PUT, "/api/v1/groups/lab/hosts/r7", Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    let (_, groups) = call(Method::GET, "/api/v1/groups", Value::Null).await;
    assert_eq!(
        groups,
        json!([{"name": "lab", "hosts": ["r1"], "scripts": ["hello"]}])
    );
    assert_eq!(server.json(&["group", "list"]), groups);

    // A script replaced (the body names the path's script), shown, and seen by the CLI.
    let edited = json!({"name": "hello", "body": "echo bye", "after_run": "reload"});
    let (status, _) = call(Method::PUT, "/api/v1/scripts/hello", edited).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let other = json!({"name": "other", "body": "true"});
    let (status, _) = call(Method::PUT, "/api/v1/scripts/hello", other).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, shown) = call(Method::GET, "/api/v1/scripts/hello", Value::Null).await;
    assert_eq!(
        (shown["body"].clone(), shown["after_run"].clone()),
        (json!("echo bye"), json!("reload"))
    );
    assert_eq!(shown["attachments"], json!([]));
    let (_, listed) = call(Method::GET, "/api/v1/scripts", Value::Null).await;
    assert_eq!(listed, server.json(&["script", "list"]));

    // Variables: a secret of the group's, a plain global one.
    let (status, answer) = call(
        Method::PUT,
        "/api/v1/env/TOKEN?group=lab",
        json!({"value": SECRET, "secret": true}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
    let (status, _) = call(Method::PUT, "/api/v1/env/MODE", json!({"value": "fast"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(
        Method::PUT,
        "/api/v1/env/X?group=lab&host=r1",
        json!({"value": "1"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, vars) = call(Method::GET, "/api/v1/env", Value::Null).await;
    assert_eq!(
        vars,
        json!([
            {"scope": "global", "owner": null, "name": "MODE", "value": "fast", "secret": false},
            {"scope": "group", "owner": "lab", "name": "TOKEN", "value": null, "secret": true},
        ])
    );
    let (_, lab) = call(Method::GET, "/api/v1/env?group=lab", Value::Null).await;
    assert_eq!(lab.as_array().unwrap().len(), 1, "{lab}");

    // A group with variables goes only with force, taking them along.
    let (status, answer) = call(Method::DELETE, "/api/v1/groups/lab", Value::Null).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("TOKEN"),
        "{answer}"
    );
    let (status, _) = call(Method::DELETE, "/api/v1/groups/lab?force=true", Value::Null).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, vars) = call(Method::GET, "/api/v1/env", Value::Null).await;
    assert_eq!(vars.as_array().unwrap().len(), 1, "{vars}");
    let (status, _) = call(Method::DELETE, "/api/v1/env/MODE", Value::Null).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(Method::DELETE, "/api/v1/env/MODE", Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(Method::DELETE, "/api/v1/scripts/hello", Value::Null).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(server.json(&["script", "list"]), json!([]));

    // The audit trail names alice for each change, and never holds the secret.
    let (_, events) = call(Method::GET, "/api/v1/events?limit=1000", Value::Null).await;
    let by_alice = |detail: &str| {
        events.as_array().unwrap().iter().any(|e| {
            e["detail"] == detail && e["actor"].as_str().unwrap().starts_with("user:alice ")
        })
    };
    for detail in [
        "group lab added",
        "r1 added to lab",
        "script hello assigned to lab",
        "TOKEN set (group lab, secret)",
        "group lab removed",
        "script hello removed",
    ] {
        assert!(by_alice(detail), "{detail}: {events}");
    }
    for answer in &answers {
        assert!(!answer.contains(SECRET), "{answer}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_attachment_is_streamed_into_the_store_and_reaches_the_host_whole() {
    const SIZE: usize = 48 << 20;
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _agent = server.agent("r1", dir.path(), &[], "").await;
    add_user(&server, "alice", &["--permission", "scripts"]);
    let key = key_of(&server, "alice");
    let daemon = Daemon::start(&server, &["--http-plain"]);
    let target = dir.path().join("big.bin");
    let target = target.to_str().unwrap();
    let script = json!({"name": "check", "body": format!("sha256sum {target}")});
    let (status, _) = daemon
        .call(Method::POST, "/api/v1/scripts", Some(&key), &script)
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let content: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    let sha256 = sha256_hex(&content);
    let before = peak_memory(daemon.pid());
    let path = format!("/api/v1/scripts/check/attachments?path={target}&mode=600");
    let request = daemon.request(Method::PUT, &path, Some(&key)).body(content);
    let (status, attached) = Daemon::send(request).await;
    assert_eq!(status, StatusCode::CREATED, "{attached}");
    assert_eq!(
        (attached["size"].as_u64(), attached["sha256"].as_str()),
        (Some(SIZE as u64), Some(sha256.as_str()))
    );
    // Held whole at any point, it would have raised the peak by its size at least.
    let grown = peak_memory(daemon.pid()).saturating_sub(before);
    assert!(
        grown < SIZE as u64 / 2,
        "serve's peak memory grew by {grown} bytes"
    );
    assert!(spooled(&server).is_empty(), "{:?}", spooled(&server));

    // What the store holds is the file: the run uploads it, and the host sees its checksum.
    let (out, _) = server.bounded(&["run", "check", "--host", "r1"]).await;
    assert!(out.status.success(), "{}", crate::harness::text(&out));
    let runs = server.runs();
    let stdout = runs[0]["stdout"].as_str().unwrap();
    assert!(stdout.starts_with(&sha256), "{stdout}");
    let mode = std::fs::metadata(target).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // Bad metadata is refused before the body is read; an attachment goes as it came.
    for (query, code) in [
        ("path=relative", 400),
        ("path=/x&mode=999", 400),
        ("path=/x&owner=root", 400),
        ("path=/x&phase=during", 400),
    ] {
        let path = format!("/api/v1/scripts/check/attachments?{query}");
        let (status, answer) =
            Daemon::send(daemon.request(Method::PUT, &path, Some(&key)).body("x")).await;
        assert_eq!(status.as_u16(), code, "{query}: {answer}");
    }
    let path = format!("/api/v1/scripts/check/attachments?path={target}");
    let (status, _) = daemon
        .call(Method::DELETE, &path, Some(&key), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, shown) = daemon
        .call(
            Method::GET,
            "/api/v1/scripts/check",
            Some(&key),
            &Value::Null,
        )
        .await;
    assert_eq!(shown["attachments"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_uploaded_through_the_api_reaches_the_hosts_named() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _a1 = server.agent("r1", dir.path(), &[], "").await;
    let _a2 = server.agent("r2", dir.path(), &["lab"], "").await;
    add_user(&server, "ops", &["--run-level", "read-write"]);
    let key = key_of(&server, "ops");
    let daemon = Daemon::start(&server, &["--http-plain"]);
    let content: Vec<u8> = (0..(1 << 20)).map(|i| (i % 253) as u8).collect();

    for (target, hosts, host) in [
        ("one.bin", "hosts=r1", "r1"),
        ("two.bin", "groups=lab", "r2"),
    ] {
        let target = dir.path().join(target);
        let path = format!("/api/v1/uploads?path={}&mode=640&{hosts}", target.display());
        let request = daemon
            .request(Method::POST, &path, Some(&key))
            .body(content.clone());
        // Answered once the server has the file: a launch, followed by its events.
        let (status, launched) = Daemon::send(request).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{launched}");
        assert_eq!(launched["hosts"], json!([host]), "{launched}");
        let id = launched["launch"].as_u64().unwrap();
        let events = Events::follow(&daemon, &key, id).await.rest().await;
        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(kinds.first(), Some(&"started"), "{kinds:?}");
        assert_eq!(
            kinds[kinds.len() - 2..],
            ["uploaded", "upload-summary"],
            "{kinds:?}"
        );
        // The host's progress, from its start to the whole file, at most once a hundredth.
        let progress: Vec<&Value> = events.iter().filter(|e| e["type"] == "progress").collect();
        assert!((2..=101).contains(&progress.len()), "{kinds:?}");
        let sent = |e: &Value| e["sent"].as_u64().unwrap();
        assert_eq!(sent(progress[0]), 0);
        assert_eq!(sent(progress[progress.len() - 1]), content.len() as u64);
        assert!(progress.windows(2).all(|w| sent(w[0]) < sent(w[1])));
        assert!(
            progress
                .iter()
                .all(|e| e["host"] == host && e["bytes"] == 1 << 20)
        );
        let summary = &events[events.len() - 1];
        assert_eq!(summary["succeeded"], 1, "{summary}");
        assert_eq!(
            (
                summary["results"][0]["host"].as_str(),
                summary["results"][0]["success"].as_bool()
            ),
            (Some(host), Some(true)),
            "{summary}"
        );
        assert_eq!(std::fs::read(&target).unwrap(), content);
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        // The file taken is gone once the upload has ended.
        assert!(spooled(&server).is_empty(), "{:?}", spooled(&server));
    }

    for (query, code) in [
        ("path=/tmp/x", 400),
        ("path=relative&all=true", 400),
        ("path=/tmp/x&all=true&batch=0", 400),
        ("path=/tmp/x&hosts=r9", 404),
    ] {
        let path = format!("/api/v1/uploads?{query}");
        let (status, answer) =
            Daemon::send(daemon.request(Method::POST, &path, Some(&key)).body("x")).await;
        assert_eq!(status.as_u16(), code, "{query}: {answer}");
    }
}

/// Signs `name` in with `password`: the status, and the session's token (from the cookie) and
/// CSRF token when it worked, with the whole `Set-Cookie`.
pub async fn sign_in(
    daemon: &Daemon,
    name: &str,
    password: &str,
) -> (StatusCode, Option<(String, String, String)>) {
    let response = daemon
        .request(Method::POST, "/api/v1/session", None)
        .json(&json!({"name": name, "password": password}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let cookie = response
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_string());
    let body: Value = response.json().await.unwrap();
    let session = cookie.map(|cookie| {
        let token = cookie
            .strip_prefix("otto_session=")
            .and_then(|rest| rest.split(';').next())
            .unwrap()
            .to_string();
        let csrf = body["csrf_token"].as_str().unwrap().to_string();
        (token, csrf, cookie)
    });
    (status, session)
}

/// A request with the session cookie `token`, and `csrf` as `X-CSRF-Token` if given.
pub fn in_session(
    daemon: &Daemon,
    method: Method,
    path: &str,
    token: &str,
    csrf: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut request = daemon
        .request(method, path, None)
        .header("cookie", format!("theme=dark; otto_session={token}"));
    if let Some(csrf) = csrf {
        request = request.header("x-csrf-token", csrf);
    }
    request
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_session_needs_its_csrf_token_to_change_things_and_ends_when_it_should() {
    const PASSWORD: &str = "correct horse battery";
    let server = Server::new();
    add_user(&server, "admin", &["--admin"]);
    add_user(&server, "alice", &["--permission", "groups"]);
    add_user(&server, "bob", &[]);
    let admin = key_of(&server, "admin");
    let daemon = Daemon::start(&server, &["--http-plain"]);

    let (status, session) = sign_in(&daemon, "alice", PASSWORD).await;
    assert_eq!(status, StatusCode::CREATED);
    let (token, csrf, cookie) = session.unwrap();
    for attribute in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let (status, _) = Daemon::send(in_session(
        &daemon,
        Method::GET,
        "/api/v1/groups",
        &token,
        None,
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    // A change with the cookie alone, or a wrong token, is refused; with the token it is made
    // and recorded as the session's.
    let add = |csrf: Option<&str>| {
        in_session(&daemon, Method::POST, "/api/v1/groups", &token, csrf)
            .json(&json!({"name": "lab"}))
    };
    for wrong in [None, Some("0".repeat(64).as_str()), Some("x")] {
        let (status, answer) = Daemon::send(add(wrong)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{wrong:?}: {answer}");
    }
    assert_eq!(server.json(&["group", "list"]), json!([]));
    let (status, _) = Daemon::send(add(Some(&csrf))).await;
    assert_eq!(status, StatusCode::CREATED);
    let events = server.json(&["events"]);
    let actor = events.as_array().unwrap().last().unwrap()["actor"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        actor.starts_with("user:alice (session ") && actor.ends_with("from 127.0.0.1)"),
        "{actor}"
    );
    // The session has alice's permissions, no more.
    let (status, _) = Daemon::send(in_session(
        &daemon,
        Method::GET,
        "/api/v1/users",
        &token,
        None,
    ))
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Disabling alice ends her session; enabling her does not bring it back.
    for action in ["disable", "enable"] {
        let path = format!("/api/v1/users/alice/{action}");
        let (status, _) = daemon
            .call(Method::POST, &path, Some(&admin), &Value::Null)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    let (status, _) = Daemon::send(in_session(
        &daemon,
        Method::GET,
        "/api/v1/groups",
        &token,
        None,
    ))
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Two sessions; a password change in one ends the other.
    let (_, one) = sign_in(&daemon, "alice", PASSWORD).await;
    let (_, two) = sign_in(&daemon, "alice", PASSWORD).await;
    let ((one, one_csrf, _), (two, _, _)) = (one.unwrap(), two.unwrap());
    let change = json!({"current": PASSWORD, "password": "a new long password"});
    let (status, answer) = Daemon::send(
        in_session(
            &daemon,
            Method::POST,
            "/api/v1/users/me/password",
            &one,
            Some(&one_csrf),
        )
        .json(&change),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
    for (token, expected) in [(&one, StatusCode::OK), (&two, StatusCode::UNAUTHORIZED)] {
        let (status, _) = Daemon::send(in_session(
            &daemon,
            Method::GET,
            "/api/v1/groups",
            token,
            None,
        ))
        .await;
        assert_eq!(status, expected);
    }
    assert_eq!(
        sign_in(&daemon, "alice", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        sign_in(&daemon, "alice", "a new long password").await.0,
        StatusCode::CREATED
    );

    // Signing out ends the session and clears the cookie.
    let response = in_session(
        &daemon,
        Method::DELETE,
        "/api/v1/session",
        &one,
        Some(&one_csrf),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let cleared = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let (status, _) = Daemon::send(in_session(
        &daemon,
        Method::GET,
        "/api/v1/groups",
        &one,
        None,
    ))
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Users through the API: added, given permissions, listed.
    let new = json!({"name": "carol", "password": "long enough", "permissions": {"admin": false, "run": "none", "modify": ["hosts"]}});
    let (status, added) = daemon
        .call(Method::POST, "/api/v1/users", Some(&admin), &new)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    let wider = json!({"admin": false, "run": "read-only", "modify": ["hosts", "audit"]});
    let (status, _) = daemon
        .call(
            Method::PUT,
            "/api/v1/users/carol/permissions",
            Some(&admin),
            &wider,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, users) = daemon
        .call(Method::GET, "/api/v1/users", Some(&admin), &Value::Null)
        .await;
    let carol = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "carol")
        .unwrap();
    assert_eq!(carol["permissions"], wider);
    assert!(!users.to_string().contains("argon2"), "{users}");
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_sign_ins_are_limited_per_user_and_per_address() {
    const PASSWORD: &str = "correct horse battery";
    let server = Server::new();
    add_user(&server, "alice", &[]);
    add_user(&server, "bob", &[]);
    let daemon = Daemon::start(&server, &["--http-plain"]);
    for _ in 0..5 {
        assert_eq!(
            sign_in(&daemon, "bob", "wrong password").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    // Bob is refused even with his password, told when to come back (within the minute);
    // alice, from the same address, is not.
    let (status, session) = sign_in(&daemon, "bob", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(session.is_none());
    let refused = daemon
        .request(Method::POST, "/api/v1/session", None)
        .json(&json!({"name": "bob", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = refused.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(&format!("{retry_after} s")), "{message}");
    assert_eq!(
        sign_in(&daemon, "alice", PASSWORD).await.0,
        StatusCode::CREATED
    );
    // Failures for any names from one address block it too, within 20 of them.
    let mut tries = 5;
    while sign_in(&daemon, &format!("nobody{tries}"), "wrong password")
        .await
        .0
        == StatusCode::UNAUTHORIZED
    {
        tries += 1;
        assert!(tries <= 20, "the address was never limited");
    }
    assert_eq!(
        sign_in(&daemon, "alice", PASSWORD).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_id_is_never_given_twice_even_after_sign_out_and_a_restart() {
    const PASSWORD: &str = "correct horse battery";
    let server = Server::new();
    add_user(&server, "carol", &[]);
    let mut daemon = Daemon::start(&server, &["--http-plain"]);
    // In, out, in; then serve restarted, out, in.
    let sign_out = |daemon: &Daemon, (token, csrf, _): (String, String, String)| {
        let request = in_session(
            daemon,
            Method::DELETE,
            "/api/v1/session",
            &token,
            Some(&csrf),
        );
        async move { assert_eq!(Daemon::send(request).await.0, StatusCode::NO_CONTENT) }
    };
    let session = sign_in(&daemon, "carol", PASSWORD).await.1.unwrap();
    sign_out(&daemon, session).await;
    let session = sign_in(&daemon, "carol", PASSWORD).await.1.unwrap();
    assert!(daemon.terminate());
    let daemon = Daemon::start(&server, &["--http-plain"]);
    sign_out(&daemon, session).await;
    sign_in(&daemon, "carol", PASSWORD).await.1.unwrap();
    let ids: Vec<String> = server
        .json(&["events", "--kind", "signed-in"])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["detail"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{ids:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_ins_sign_outs_and_password_changes_are_in_the_audit_trail_never_a_password() {
    const PASSWORD: &str = "correct horse battery";
    const GUESS: &str = "hunter2-guess";
    let server = Server::new();
    add_user(&server, "alice", &[]);
    add_user(&server, "auditor", &["--permission", "audit"]);
    let auditor = key_of(&server, "auditor");
    let daemon = Daemon::start(&server, &["--http-plain"]);

    for name in ["alice", "mallory"] {
        assert_eq!(
            sign_in(&daemon, name, GUESS).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (status, session) = sign_in(&daemon, "alice", PASSWORD).await;
    assert_eq!(status, StatusCode::CREATED);
    let (token, csrf, _) = session.unwrap();
    let change = json!({"current": PASSWORD, "password": "a new long password"});
    let (status, answer) = Daemon::send(
        in_session(
            &daemon,
            Method::POST,
            "/api/v1/users/me/password",
            &token,
            Some(&csrf),
        )
        .json(&change),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
    let (status, _) = Daemon::send(in_session(
        &daemon,
        Method::DELETE,
        "/api/v1/session",
        &token,
        Some(&csrf),
    ))
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Each kind apart, through the API's filter: who, from where, what.
    let of_kind = |kind: &'static str| {
        let path = format!("/api/v1/events?kind={kind}");
        let request = daemon.request(Method::GET, &path, Some(&auditor));
        async move {
            let (status, events) = Daemon::send(request).await;
            assert_eq!(status, StatusCode::OK, "{events}");
            let events = events.as_array().unwrap().clone();
            assert!(events.iter().all(|e| e["kind"] == kind), "{events:?}");
            events
        }
    };
    let failed = of_kind("sign-in-failed").await;
    let failed: Vec<(&str, &str)> = failed
        .iter()
        .map(|e| (e["actor"].as_str().unwrap(), e["detail"].as_str().unwrap()))
        .collect();
    assert_eq!(
        failed,
        [
            (
                "client 127.0.0.1",
                "sign-in as `alice` refused: wrong password"
            ),
            (
                "client 127.0.0.1",
                "sign-in as `mallory` refused: no such user"
            ),
        ]
    );
    let signed_in = of_kind("signed-in").await;
    assert_eq!(signed_in.len(), 1, "{signed_in:?}");
    let actor = signed_in[0]["actor"].as_str().unwrap();
    assert!(
        actor.starts_with("user:alice (session ") && actor.ends_with(" from 127.0.0.1)"),
        "{actor}"
    );
    for kind in ["password-changed", "signed-out"] {
        let events = of_kind(kind).await;
        assert_eq!(events.len(), 1, "{kind}: {events:?}");
        assert_eq!(events[0]["actor"], actor, "{kind}");
    }
    // The CLI filters alike; an unknown kind is refused by both.
    let cli = server.json(&["events", "--kind", "sign-in-failed"]);
    assert_eq!(cli.as_array().unwrap().len(), 2, "{cli}");
    assert_eq!(
        server
            .output(&["events", "--kind", "nonsense"])
            .status
            .code(),
        Some(2)
    );
    let (status, answer) = daemon
        .call(
            Method::GET,
            "/api/v1/events?kind=nonsense",
            Some(&auditor),
            &Value::Null,
        )
        .await;
    assert!(status.is_client_error(), "{status} {answer}");
    // No password is anywhere in the log.
    let all = server.json(&["events", "--limit", "1000"]).to_string();
    for secret in [GUESS, PASSWORD, "a new long password"] {
        assert!(!all.contains(secret), "{secret} in the log");
    }
}

/// Every PUT and PATCH route keeps what its body (or query) does not name: a script's run level
/// and settings, a variable's secrecy, a host's port or address, an attachment's mode, owner
/// and phase, a group's other members; a partial set of permissions or a password left out
/// is refused and changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_put_or_patch_keeps_what_it_does_not_name() {
    let server = Server::new();
    server.ok(&["host", "add", "r1", "192.0.2.1", "--port", "2222"]);
    server.ok(&["host", "add", "r2", "192.0.2.2"]);
    add_user(&server, "root", &["--admin"]);
    add_user(&server, "viewer", &["--run-level", "read-only"]);
    let key = key_of(&server, "root");
    let daemon = Daemon::start(&server, &["--http-plain"]);
    let call = async |method: Method, path: &str, body: Value| {
        daemon.call(method, path, Some(&key), &body).await
    };
    let ok = async |method: Method, path: &str, body: Value| {
        let (status, answer) = call(method, path, body).await;
        assert!(status.is_success(), "{path}: {status} {answer}");
        answer
    };

    // PUT /api/v1/scripts/{name}: only the body named; the rest stays; null clears.
    server.ok(&[
        "script",
        "add",
        "look",
        "--body",
        "uptime",
        "--run-level",
        "read-only",
        "--run-as",
        "0:0",
        "--workdir",
        "/tmp",
        "--timeout",
        "90",
        "--after",
        "reload",
    ]);
    let before = server.json(&["script", "list"])[0].clone();
    ok(Method::PUT, "/api/v1/scripts/look", json!({"body": "df"})).await;
    let after = server.json(&["script", "list"])[0].clone();
    let mut expected = before.clone();
    expected["body"] = json!("df");
    assert_eq!(after, expected);
    ok(
        Method::PUT,
        "/api/v1/scripts/look",
        json!({"name": "look", "working_dir": null}),
    )
    .await;
    expected["working_dir"] = Value::Null;
    assert_eq!(server.json(&["script", "list"])[0], expected);
    // A new one needs its body; made with the defaults.
    let (status, answer) = call(Method::PUT, "/api/v1/scripts/new", json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    ok(Method::PUT, "/api/v1/scripts/new", json!({"body": "true"})).await;
    let (_, new) = call(Method::GET, "/api/v1/scripts/new", Value::Null).await;
    assert_eq!(
        (&new["interpreter"], &new["run_level"], &new["after_run"]),
        (&json!("/bin/sh"), &json!("read-write"), &json!("none"))
    );

    // PUT /api/v1/env/{name}: a secret set again without `secret` stays secret.
    ok(
        Method::PUT,
        "/api/v1/env/TOKEN",
        json!({"value": "s3cr3t-1", "secret": true}),
    )
    .await;
    ok(
        Method::PUT,
        "/api/v1/env/TOKEN",
        json!({"value": "s3cr3t-2"}),
    )
    .await;
    let (_, vars) = call(Method::GET, "/api/v1/env", Value::Null).await;
    assert_eq!(
        vars,
        json!([{"scope": "global", "owner": null, "name": "TOKEN", "value": null, "secret": true}])
    );
    ok(
        Method::PUT,
        "/api/v1/env/TOKEN",
        json!({"value": "plain", "secret": false}),
    )
    .await;
    let (_, vars) = call(Method::GET, "/api/v1/env", Value::Null).await;
    assert_eq!(vars[0]["value"], "plain");

    // PATCH /api/v1/hosts/{name}: the port alone, then the address alone.
    let host = ok(Method::PATCH, "/api/v1/hosts/r1", json!({"port": 2300})).await;
    assert_eq!(
        (&host["address"], &host["port"]),
        (&json!("192.0.2.1"), &json!(2300))
    );
    let host = ok(
        Method::PATCH,
        "/api/v1/hosts/r1",
        json!({"address": "192.0.2.9"}),
    )
    .await;
    assert_eq!(
        (&host["address"], &host["port"]),
        (&json!("192.0.2.9"), &json!(2300))
    );

    // PUT /api/v1/scripts/{name}/attachments: replaced without mode, owner or phase, it keeps
    // them.
    let put = |query: &str| {
        let path = format!("/api/v1/scripts/look/attachments?{query}");
        Daemon::send(daemon.request(Method::PUT, &path, Some(&key)).body("v1"))
    };
    let (status, _) = put("path=/etc/x.conf&mode=600&owner=1:2&phase=after").await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, attached) = put("path=/etc/x.conf").await;
    assert_eq!(status, StatusCode::CREATED, "{attached}");
    assert_eq!(
        (&attached["mode"], &attached["owner"], &attached["phase"]),
        (&json!(0o600), &json!({"uid": 1, "gid": 2}), &json!("after"))
    );
    let (status, fresh) = put("path=/etc/y.conf").await;
    assert_eq!(status, StatusCode::CREATED, "{fresh}");
    assert_eq!(
        (&fresh["mode"], &fresh["owner"], &fresh["phase"]),
        (&json!(0o644), &Value::Null, &json!("before"))
    );

    // PUT /api/v1/groups/{name}/hosts/{host} and …/scripts/{script}: one more member or script,
    // the others stay.
    ok(Method::POST, "/api/v1/groups", json!({"name": "lab"})).await;
    for path in [
        "/api/v1/groups/lab/hosts/r1",
        "/api/v1/groups/lab/scripts/look",
        "/api/v1/groups/lab/hosts/r2",
        "/api/v1/groups/lab/scripts/new",
    ] {
        ok(Method::PUT, path, Value::Null).await;
    }
    let (_, groups) = call(Method::GET, "/api/v1/groups", Value::Null).await;
    assert_eq!(
        groups,
        json!([{"name": "lab", "hosts": ["r1", "r2"], "scripts": ["look", "new"]}])
    );

    // PUT /api/v1/users/{name}/permissions and …/password: a body that leaves a field out is
    // refused, and nothing changes.
    let permissions = || {
        let users = server.json(&["user", "list"]);
        let found = users
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == "viewer");
        found.unwrap()["permissions"].clone()
    };
    let kept = permissions();
    let (status, answer) = call(
        Method::PUT,
        "/api/v1/users/viewer/permissions",
        json!({"modify": ["hosts"]}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(permissions(), kept);
    let (status, answer) = call(Method::PUT, "/api/v1/users/viewer/password", json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
}

/// A host's variables from every scope, through the API and the command line: labelled by where
/// they come from, in the order they apply, the overridden marked, secrets without values.
#[tokio::test(flavor = "multi_thread")]
async fn a_hosts_variables_from_every_scope_are_shown_by_where_they_come_from() {
    const SECRET: &str = "s3cr3t-of-the-lab";
    let server = Server::new();
    server.ok(&["host", "add", "r1", "192.0.2.1", "--group", "lab"]);
    server.ok(&["group", "add", "other"]);
    server.ok(&["env", "set", "MODE", "fast"]);
    server.ok(&["env", "set", "TOKEN", SECRET, "--secret", "--group", "lab"]);
    server.ok(&["env", "set", "ELSEWHERE", "x", "--group", "other"]);
    server.ok(&["env", "set", "MODE", "careful", "--host", "r1"]);
    add_user(&server, "reader", &[]);
    let key = key_of(&server, "reader");
    let daemon = Daemon::start(&server, &["--http-plain"]);
    let (status, vars) = daemon
        .call(
            Method::GET,
            "/api/v1/hosts/r1/env",
            Some(&key),
            &Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{vars}");
    assert_eq!(
        vars,
        json!([
            {"scope": "global", "owner": null, "name": "MODE", "value": "fast", "secret": false, "overridden": true},
            {"scope": "group", "owner": "lab", "name": "TOKEN", "value": null, "secret": true, "overridden": false},
            {"scope": "host", "owner": "r1", "name": "MODE", "value": "careful", "secret": false, "overridden": false},
        ])
    );
    let (status, _) = daemon
        .call(
            Method::GET,
            "/api/v1/hosts/r9/env",
            Some(&key),
            &Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let shown = server.json(&["env", "show", "--host", "r1"]);
    let from: Vec<(&str, &str, bool)> = shown
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["scope"].as_str().unwrap(),
                v["name"].as_str().unwrap(),
                v["overridden"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        from,
        [
            ("global", "MODE", true),
            ("group", "TOKEN", false),
            ("host", "MODE", false)
        ]
    );
    let table = server.ok(&["env", "show", "--host", "r1"]);
    assert!(
        !table.contains(SECRET) && !shown.to_string().contains(SECRET),
        "{table}"
    );
    assert!(
        table.contains("group lab") && table.contains("overridden"),
        "{table}"
    );
}
