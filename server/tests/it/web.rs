//! The web UI's files as `serve` sends them, over real loopback HTTP: each file under
//! `server/web/`, with its type and the strict headers; a wrong path is 404; and
//! `GET /api/v1/session`, which the UI reads on every load, with the CSRF token that works.

use std::path::{Path, PathBuf};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::Server;
use crate::http::{Daemon, key_of};
use crate::http_resources::{in_session, sign_in};
use crate::users::add_user;

#[tokio::test(flavor = "multi_thread")]
async fn every_file_of_the_ui_is_served_with_its_type_and_the_strict_headers() {
    let server = Server::new();
    let daemon = Daemon::start(&server, &["--http-plain"]);
    // Every file under server/web/, read from the disk (not from the server's table), with the
    // type its extension calls for.
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let mut files = Vec::new();
    walk(&web, &mut files);
    assert!(files.len() >= 20, "{files:?}");
    let mut paths: Vec<(String, &str, Vec<u8>)> = files
        .iter()
        .map(|file| {
            let name = file.strip_prefix(&web).unwrap().to_str().unwrap();
            let content_type = match file.extension().unwrap().to_str().unwrap() {
                "html" => "text/html; charset=utf-8",
                "css" => "text/css; charset=utf-8",
                "js" => "text/javascript; charset=utf-8",
                other => panic!("{name}: which type for .{other}?"),
            };
            (
                format!("/ui/{name}"),
                content_type,
                std::fs::read(file).unwrap(),
            )
        })
        .collect();
    let index = std::fs::read(web.join("index.html")).unwrap();
    paths.push(("/".into(), "text/html; charset=utf-8", index));
    for (path, content_type, bytes) in paths {
        let response = daemon
            .request(Method::GET, &path, None)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers().clone();
        let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_string());
        assert_eq!(
            header("content-type").as_deref(),
            Some(content_type),
            "{path}"
        );
        assert_eq!(
            header("content-security-policy").as_deref(),
            Some(otto_server::http::CSP),
            "{path}"
        );
        assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"));
        assert_eq!(header("referrer-policy").as_deref(), Some("no-referrer"));
        assert_eq!(header("x-frame-options").as_deref(), Some("DENY"));
        assert_eq!(header("cache-control").as_deref(), Some("no-cache"));
        assert_eq!(response.bytes().await.unwrap(), bytes, "{path}");
        // Asked again with its ETag: not sent twice.
        let etag = header("etag").unwrap();
        let again = daemon
            .request(Method::GET, &path, None)
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
    }
    let csp = otto_server::http::CSP;
    assert!(csp.contains("default-src 'self'") && !csp.contains("unsafe-inline"));

    for path in ["/ui/nope.js", "/ui/", "/ui/../Cargo.toml", "/index.html"] {
        let response = daemon
            .request(Method::GET, path, None)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_session_says_who_is_signed_in_and_gives_the_csrf_token_again() {
    let server = Server::new();
    add_user(
        &server,
        "alice",
        &["--permission", "groups", "--run-level", "read-only"],
    );
    let key = key_of(&server, "alice");
    let daemon = Daemon::start(&server, &["--http-plain"]);
    let (_, session) = sign_in(&daemon, "alice", "correct horse battery").await;
    let (token, csrf, _) = session.unwrap();

    let (status, me) = Daemon::send(in_session(
        &daemon,
        Method::GET,
        "/api/v1/session",
        &token,
        None,
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["user"], "alice");
    assert_eq!(
        me["permissions"],
        json!({"admin": false, "run": "read-only", "modify": ["groups"]})
    );
    // The same token as signing in gave: a reloaded page can change things again.
    assert_eq!(me["csrf_token"], csrf);
    let again = me["csrf_token"].as_str().unwrap();
    let (status, answer) = Daemon::send(
        in_session(&daemon, Method::POST, "/api/v1/groups", &token, Some(again))
            .json(&json!({"name": "lab"})),
    )
    .await;
    assert!(status.is_success(), "{status} {answer}");

    // With an API key: who, and no CSRF token (none is needed).
    let (status, me) = daemon
        .call(Method::GET, "/api/v1/session", Some(&key), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&me["user"], &me["csrf_token"]),
        (&json!("alice"), &Value::Null)
    );
}

/// Pushes every file under `dir` (but `.`-files, which the build leaves out) onto `files`.
fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            walk(&entry.path(), files);
        } else {
            files.push(entry.path());
        }
    }
}
