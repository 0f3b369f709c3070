//! The HTTP API of `serve`, over real loopback HTTPS (its self-signed certificate pinned from
//! the data directory, as a client of a private server would) and plain HTTP: every route
//! refuses a request without a working key (401) or without its permission (403), bad input
//! gets a 4xx JSON error, a change made through it is the CLI's too and names its user.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;

use crate::harness::Server;
use crate::users::{add_user, create_key};

/// A running `serve` with its API, killed when dropped.
pub struct Daemon {
    child: Child,
    /// `https://127.0.0.1:PORT` (or `http://`).
    base: String,
    /// The certificate's fingerprint, as logged (HTTPS only).
    pub fingerprint: Option<String>,
    client: reqwest::Client,
}

impl Daemon {
    /// `serve --http-listen 127.0.0.1:0` (`extra` after it; heartbeats every hour unless it
    /// says otherwise) on `server`'s data directory, once it says where it listens.
    pub fn start(server: &Server, extra: &[&str]) -> Daemon {
        let mut args = vec!["serve", "--http-listen", "127.0.0.1:0"];
        if !extra.contains(&"--heartbeat-interval") {
            args.extend(["--heartbeat-interval", "1h"]);
        }
        args.extend(extra);
        let mut child = server
            .command(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let listening = loop {
            line.clear();
            assert!(stderr.read_line(&mut line).unwrap() > 0, "serve ended");
            if line.contains("API listening") {
                break line.clone();
            }
        };
        // Keep draining, so that serve never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        let field = |name: &str| {
            listening
                .split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .map(str::to_owned)
        };
        let address = field("address=").unwrap();
        let plain = extra.contains(&"--http-plain");
        // Plain HTTP: a client that trusts no certificate at all; HTTPS: the one given, or
        // else the one serve made in the data directory.
        let given = extra.iter().position(|a| *a == "--tls-cert");
        let client = client(match given.and_then(|i| extra.get(i + 1)) {
            _ if plain => rustls::RootCertStore::empty(),
            Some(cert) => pinned(std::path::Path::new(cert)),
            None => pinned(&server.data().join("http.crt")),
        });
        Daemon {
            child,
            base: format!("{}://{address}", if plain { "http" } else { "https" }),
            fingerprint: field("fingerprint="),
            client,
        }
    }

    /// A request to `path` with `key` (none: no `Authorization`).
    pub fn request(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let request = self.client.request(method, format!("{}{path}", self.base));
        match key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    /// Sends `request`; returns its status and JSON body (null when it has none).
    pub async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        (status, body)
    }

    /// `method path` with `key` and a JSON `body` (if not null).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: &Value,
    ) -> (StatusCode, Value) {
        let mut request = self.request(method, path, key);
        if !body.is_null() {
            request = request.json(body);
        }
        Daemon::send(request).await
    }
}

impl Daemon {
    /// Its URL, `https://127.0.0.1:PORT` (or `http://`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The process id of serve.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops serve with SIGTERM; returns whether it exited cleanly (within the harness's
    /// bound, which only turns a hang into a failure).
    pub fn terminate(&mut self) -> bool {
        // SAFETY: sending a signal to our own child, still unreaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let started = std::time::Instant::now();
        while started.elapsed() < crate::harness::BOUND {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("serve did not stop on SIGTERM");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Exactly the certificate in the PEM file `cert`: what a client of a private server pins.
fn pinned(cert: &std::path::Path) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    roots
}

/// A client that trusts only `roots`, with ring as the server uses it.
fn client(roots: rustls::RootCertStore) -> reqwest::Client {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .unwrap()
}

/// The secret of a new key of `user`.
pub fn key_of(server: &Server, user: &str) -> String {
    create_key(server, &["--user", user])["secret"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Every route: method, path, a body it would take, and the permission it needs (none: any
/// user).
fn routes() -> Vec<(Method, &'static str, Value, Option<&'static str>)> {
    let mut routes = crate::http_resources::routes();
    routes.extend(crate::http_hosts::routes());
    routes.extend(crate::http_enrollment::routes());
    routes.extend([
        (Method::GET, "/api/v1/hosts", Value::Null, None),
        (Method::GET, "/api/v1/hosts/r1", Value::Null, None),
        (
            Method::POST,
            "/api/v1/hosts",
            json!({"name": "r9", "address": "192.0.2.9"}),
            Some("hosts"),
        ),
        (
            Method::DELETE,
            "/api/v1/hosts/r1",
            Value::Null,
            Some("hosts"),
        ),
        (Method::GET, "/api/v1/events", Value::Null, Some("audit")),
        (Method::GET, "/api/v1/options", Value::Null, Some("options")),
        (Method::GET, "/api/v1/openapi.json", Value::Null, None),
        (Method::GET, "/api/v1/apikeys", Value::Null, None),
        // One's own key needs no permission; another's (999 is nobody's) needs `users`.
        (Method::POST, "/api/v1/apikeys", json!({}), None),
        (
            Method::DELETE,
            "/api/v1/apikeys/999",
            Value::Null,
            Some("users"),
        ),
        // A command needs the run level read-write, cancelling a launch at least read-only;
        // reading needs nothing (999 is no run: not found).
        (
            Method::POST,
            "/api/v1/runs",
            json!({"command": "true", "all": true}),
            Some("read-write"),
        ),
        (Method::GET, "/api/v1/runs", Value::Null, None),
        (Method::GET, "/api/v1/runs/999", Value::Null, None),
        (
            Method::POST,
            "/api/v1/runs/999/cancel",
            Value::Null,
            Some("read-write"),
        ),
        (
            Method::GET,
            "/api/v1/launches/999/events",
            Value::Null,
            None,
        ),
        (
            Method::POST,
            "/api/v1/launches/999/cancel",
            Value::Null,
            Some("read-only"),
        ),
        (Method::GET, "/api/v1/launches", Value::Null, None),
        (Method::GET, "/api/v1/metrics", Value::Null, None),
        (Method::GET, "/api/v1/hosts/r1/metrics", Value::Null, None),
        (Method::GET, "/api/v1/webhooks", Value::Null, Some("audit")),
        (
            Method::POST,
            "/api/v1/webhooks",
            json!({"url": "http://127.0.0.1:9/", "events": ["run-failed"]}),
            Some("options"),
        ),
        (
            Method::DELETE,
            "/api/v1/webhooks/999",
            Value::Null,
            Some("options"),
        ),
        (
            Method::GET,
            "/api/v1/webhooks/deliveries",
            Value::Null,
            Some("audit"),
        ),
        (Method::GET, "/api/v1/launches/999", Value::Null, None),
        (
            Method::POST,
            "/api/v1/launches/999/relaunch",
            json!({}),
            Some("read-only"),
        ),
        (
            Method::POST,
            "/api/v1/control",
            json!({"action": "reload", "all": true}),
            Some("hosts"),
        ),
        // Every host but all of them: a heartbeat sent to none.
        (
            Method::POST,
            "/api/v1/ping",
            json!({"exclude": ["*"]}),
            None,
        ),
        (
            Method::POST,
            "/api/v1/dry-run/runs",
            json!({"command": "true", "all": true}),
            Some("read-write"),
        ),
        (
            Method::POST,
            "/api/v1/dry-run/control",
            json!({"action": "reload", "all": true}),
            Some("hosts"),
        ),
        (
            Method::POST,
            "/api/v1/fetches",
            json!({"path": "/etc/hostname", "hosts": ["r1"]}),
            Some("read-write"),
        ),
        (
            Method::GET,
            "/api/v1/fetches/999/r1",
            Value::Null,
            Some("read-write"),
        ),
        (
            Method::POST,
            "/api/v1/dry-run/fetches",
            json!({"path": "/etc/hostname", "hosts": ["r1"]}),
            Some("read-write"),
        ),
        (
            Method::POST,
            "/api/v1/dry-run/uploads",
            json!({"path": "/etc/x", "sha256": "00".repeat(32), "size": 0, "hosts": ["r1"]}),
            Some("read-write"),
        ),
        (
            Method::POST,
            "/api/v1/selection",
            json!({"where": ["arch=mips"]}),
            None,
        ),
        (Method::GET, "/api/v1/summary", Value::Null, None),
        (Method::GET, "/api/v1/check", Value::Null, None),
        (Method::GET, "/api/v1/servers", Value::Null, None),
        (Method::GET, "/api/v1/session", Value::Null, None),
        (Method::GET, "/api/v1/schedules", Value::Null, None),
        (Method::GET, "/api/v1/schedules/r1", Value::Null, None),
        (
            Method::POST,
            "/api/v1/schedules",
            json!({"name": "s9", "cron": "@daily", "run": {"command": "true", "all": true}}),
            Some("schedules"),
        ),
        (
            Method::PATCH,
            "/api/v1/schedules/r1",
            json!({"enabled": false}),
            Some("schedules"),
        ),
        (
            Method::DELETE,
            "/api/v1/schedules/r1",
            Value::Null,
            Some("schedules"),
        ),
        // Updating agents needs `hosts` (and the run level read-write); the catalogue, nothing.
        (
            Method::POST,
            "/api/v1/updates",
            json!({"all": true}),
            Some("hosts"),
        ),
        (Method::GET, "/api/v1/agents", Value::Null, None),
    ]);
    routes
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_needs_a_working_key_and_its_permission() {
    let server = Server::new();
    server.ok(&["host", "add", "r1", "192.0.2.1"]);
    server.ok(&["script", "add", "r1", "--body", "true"]);
    server.ok(&[
        "schedule",
        "add",
        "r1",
        "--cron",
        "@yearly",
        "--command",
        "true",
        "-H",
        "r1",
    ]);
    add_user(&server, "reader", &[]);
    let reader = key_of(&server, "reader");
    let daemon = Daemon::start(&server, &[]);

    // The self-signed certificate: kept in the data directory, its key owner-only, and the
    // fingerprint logged is the certificate's.
    use std::os::unix::fs::PermissionsExt;
    let key_mode = std::fs::metadata(server.data().join("http.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);
    let pem = std::fs::read(server.data().join("http.crt")).unwrap();
    let der = CertificateDer::from_pem_slice(&pem).unwrap();
    let digest: Vec<String> = Sha256::digest(der.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    assert_eq!(
        daemon.fingerprint.as_deref(),
        Some(digest.join(":").as_str())
    );

    let wrong = format!("otto_{}", "0".repeat(64));
    for (method, path, body, permission) in routes() {
        for key in [None, Some("not a key"), Some(wrong.as_str())] {
            let (status, answer) = daemon.call(method.clone(), path, key, &body).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} {key:?}: {answer}"
            );
            assert_eq!(answer["error"]["kind"], "unauthenticated", "{answer}");
        }
        let (status, answer) = daemon
            .call(method.clone(), path, Some(&reader), &body)
            .await;
        if let Some(permission) = permission {
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
            assert_eq!(answer["error"]["kind"], "forbidden");
            let message = answer["error"]["message"].as_str().unwrap();
            assert!(message.contains(permission), "{message}");
        } else if path.contains("999") {
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
        } else {
            assert!(status.is_success(), "{method} {path}: {status} {answer}");
        }
    }
    // Nothing was changed by the refused requests.
    let hosts = server.json(&["host", "list"]);
    assert_eq!(hosts.as_array().unwrap().len(), 1, "{hosts}");

    // Verification is on: a client that does not trust the certificate cannot connect.
    let stranger = client(rustls::RootCertStore::empty());
    let url = format!("{}/api/v1/hosts", daemon.base);
    assert!(stranger.get(url).send().await.is_err());

    // The 401 says how to authenticate.
    let response = daemon
        .request(Method::GET, "/api/v1/hosts", None)
        .send()
        .await
        .unwrap();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
}

/// A user without a route's permission is refused (403) before anything else of the request is
/// read: whatever is wrong with its path, query or body, the answer is the one docs/security.md
/// promises.
#[tokio::test(flavor = "multi_thread")]
async fn without_its_permission_a_bad_request_is_refused_before_it_is_read() {
    let server = Server::new();
    add_user(&server, "reader", &[]);
    let reader = key_of(&server, "reader");
    let daemon = Daemon::start(&server, &[]);
    let mut routes: Vec<(Method, String, &str)> = routes()
        .into_iter()
        .filter_map(|(method, path, _, permission)| {
            let separator = if path.contains('?') { '&' } else { '?' };
            let path = format!("{path}{separator}no-such-parameter=1");
            Some((method, path, permission?))
        })
        .collect();
    // Path parameters that do not parse.
    routes.push((
        Method::POST,
        "/api/v1/runs/nine/cancel".into(),
        "read-write",
    ));
    routes.push((Method::DELETE, "/api/v1/hosts/%00".into(), "hosts"));
    for (method, path, permission) in routes {
        for (content_type, body) in [
            ("application/json", "{\"no such field\": ["),
            ("application/json", "{\"no such field\": 1}"),
            ("text/plain", "not JSON"),
        ] {
            let request = daemon
                .request(method.clone(), &path, Some(&reader))
                .header("content-type", content_type)
                .body(body);
            let (status, answer) = Daemon::send(request).await;
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{method} {path} ({content_type} {body}): {answer}"
            );
            let message = answer["error"]["message"].as_str().unwrap();
            assert!(message.contains(permission), "{method} {path}: {message}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_and_revoked_keys_and_disabled_users_are_refused() {
    let server = Server::new();
    add_user(&server, "bob", &["--permission", "hosts"]);
    let expiring = create_key(&server, &["--user", "bob", "--expires", "1ms"]);
    let revoked = create_key(&server, &["--user", "bob"]);
    let working_key = create_key(&server, &["--user", "bob"]);
    let working = working_key["secret"].as_str().unwrap();
    server.ok(&["apikey", "revoke", &revoked["id"].to_string()]);
    let daemon = Daemon::start(&server, &[]);
    // Past its expiry by now (1 ms after it was made, and a process start ago).
    let expires = expiring["expires"].as_str().unwrap();
    for (secret, says) in [
        (expiring["secret"].as_str().unwrap(), "expired"),
        (revoked["secret"].as_str().unwrap(), "revoked"),
    ] {
        let (status, answer) = daemon
            .call(Method::GET, "/api/v1/hosts", Some(secret), &Value::Null)
            .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{answer} (expiry {expires})"
        );
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(says),
            "{answer}"
        );
    }
    let (status, _) = daemon
        .call(Method::GET, "/api/v1/hosts", Some(working), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK);
    // Disabling the user ends the use of every key of theirs, at once; enabling restores it.
    server.ok(&["user", "disable", "bob"]);
    let (status, answer) = daemon
        .call(Method::GET, "/api/v1/hosts", Some(working), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("disabled"),
        "{answer}"
    );
    server.ok(&["user", "enable", "bob"]);
    let (status, _) = daemon
        .call(Method::GET, "/api/v1/hosts", Some(working), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK);

    // Each refusal of a key that exists is in the audit trail, as the key's use from the
    // client's address; an unknown key is not (it names no one).
    let wrong = format!("otto_{}", "0".repeat(64));
    let (status, _) = daemon
        .call(Method::GET, "/api/v1/hosts", Some(&wrong), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let refused = server.json(&["events", "--kind", "api-key-refused"]);
    let refused: Vec<(String, String)> = refused
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["kind"], "api-key-refused", "{e}");
            let actor = e["actor"].as_str().unwrap().to_string();
            (actor, e["detail"].as_str().unwrap().to_string())
        })
        .collect();
    let expected = [
        (&expiring["id"], "has expired"),
        (&revoked["id"], "was revoked"),
        (&working_key["id"], "user bob is disabled"),
    ];
    assert_eq!(refused.len(), expected.len(), "{refused:?}");
    for ((actor, detail), (id, why)) in refused.iter().zip(expected) {
        assert_eq!(actor, &format!("user:bob (API key {id} from 127.0.0.1)"));
        assert!(detail.contains(why), "{detail}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_a_4xx_json_error_and_never_a_500() {
    let server = Server::new();
    add_user(&server, "admin", &["--admin"]);
    let key = key_of(&server, "admin");
    let daemon = Daemon::start(&server, &["--http-plain"]);
    let raw = |body: &str, content_type: Option<&str>| {
        let mut request = daemon
            .request(Method::POST, "/api/v1/hosts", Some(&key))
            .body(body.to_string());
        if let Some(t) = content_type {
            request = request.header("content-type", t);
        }
        request
    };
    let json_type = Some("application/json");
    let huge = format!(
        "{{\"name\": \"r1\", \"address\": \"{}\"}}",
        "a".repeat(100 * 1024)
    );
    let cases = [
        ("malformed JSON", raw("{\"name\": ", json_type), 400),
        (
            "unknown field",
            raw(r#"{"name":"r1","address":"a","colour":"red"}"#, json_type),
            422,
        ),
        (
            "wrong type",
            raw(r#"{"name":"r1","address":"a","port":"high"}"#, json_type),
            422,
        ),
        ("missing field", raw(r#"{"name":"r1"}"#, json_type), 422),
        (
            "port out of range",
            raw(r#"{"name":"r1","address":"a","port":70000}"#, json_type),
            422,
        ),
        (
            "not JSON at all",
            raw("name=r1", Some("application/x-www-form-urlencoded")),
            415,
        ),
        (
            "no content type",
            raw(r#"{"name":"r1","address":"a"}"#, None),
            415,
        ),
        ("oversized body", raw(&huge, json_type), 413),
        (
            "bad host name",
            raw(r#"{"name":"-r1","address":"a"}"#, json_type),
            400,
        ),
        (
            "bad agent key",
            raw(
                r#"{"name":"r1","address":"a","agent_key":"ssh-ed25519 x"}"#,
                json_type,
            ),
            400,
        ),
        (
            "bad limit",
            daemon.request(Method::GET, "/api/v1/hosts?limit=many", Some(&key)),
            400,
        ),
        (
            "zero limit",
            daemon.request(Method::GET, "/api/v1/hosts?limit=0", Some(&key)),
            400,
        ),
        (
            "unknown query",
            daemon.request(Method::GET, "/api/v1/hosts?colour=red", Some(&key)),
            400,
        ),
        (
            "unknown state",
            daemon.request(Method::GET, "/api/v1/hosts?state=asleep", Some(&key)),
            400,
        ),
        (
            "unknown host",
            daemon.request(Method::GET, "/api/v1/hosts/r7", Some(&key)),
            404,
        ),
        (
            "unknown route",
            daemon.request(Method::GET, "/api/v1/nothing", Some(&key)),
            404,
        ),
        (
            "wrong method",
            daemon.request(Method::PUT, "/api/v1/hosts", Some(&key)),
            405,
        ),
        // serde reads an array as a struct's fields in order; the API takes objects only.
        (
            "an array",
            raw(r#"["r1", "192.0.2.1", 22, null, false, []]"#, json_type),
            422,
        ),
        ("a number", raw("12", json_type), 422),
    ];
    for (what, request, code) in cases {
        let (status, answer) = Daemon::send(request).await;
        assert_eq!(status.as_u16(), code, "{what}: {answer}");
        assert!(answer["error"]["kind"].is_string(), "{what}: {answer}");
        assert!(answer["error"]["message"].is_string(), "{what}: {answer}");
    }
    // Nothing was added, and the server still answers.
    let (status, answer) = daemon
        .call(Method::GET, "/api/v1/hosts", Some(&key), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["hosts"], json!([]));

    // A number without a fraction is an integer, as JSON Schema (and the document) say.
    let (status, answer) = Daemon::send(raw(
        r#"{"name": "r1", "address": "192.0.2.1", "port": 2222.0}"#,
        json_type,
    ))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(server.json(&["host", "list"])[0]["port"], 2222);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_added_through_the_api_is_the_clis_and_its_event_names_the_user() {
    let server = Server::new();
    add_user(&server, "alice", &["--permission", "hosts,audit"]);
    let key = create_key(&server, &["--user", "alice"]);
    let (id, key) = (
        key["id"].to_string(),
        key["secret"].as_str().unwrap().to_string(),
    );
    let daemon = Daemon::start(&server, &["--http-plain"]);

    for (name, address, group) in [
        ("r1", "192.0.2.1", "lab"),
        ("r2", "192.0.2.2", "lab"),
        ("r3", "192.0.2.3", "office"),
    ] {
        let new = json!({"name": name, "address": address, "groups": [group]});
        let (status, added) = daemon
            .call(Method::POST, "/api/v1/hosts", Some(&key), &new)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{added}");
        assert_eq!(added["host"], name);
        assert!(
            added["server_key"]
                .as_str()
                .unwrap()
                .starts_with("ssh-ed25519 ")
        );
    }
    let taken = json!({"name": "r1", "address": "192.0.2.1"});
    let (status, answer) = daemon
        .call(Method::POST, "/api/v1/hosts", Some(&key), &taken)
        .await;
    assert_eq!(
        (status, &answer["error"]["kind"]),
        (StatusCode::CONFLICT, &json!("conflict"))
    );

    // The CLI sees them, and the events name alice, her key and her address.
    let listed = server.json(&["host", "list"]);
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["r1", "r2", "r3"]);
    let actor = format!("user:alice (API key {id} from 127.0.0.1)");
    let events = server.json(&["events", "--host", "r1"]);
    assert_eq!(events[0]["kind"], "host-added");
    assert_eq!(events[0]["actor"], actor.as_str());
    let table = server.ok(&["events", "--host", "r1"]);
    assert!(table.contains(&actor), "{table}");

    // Pages by name, filtered by group.
    let (_, first) = daemon
        .call(
            Method::GET,
            "/api/v1/hosts?limit=2",
            Some(&key),
            &Value::Null,
        )
        .await;
    assert_eq!(
        (first["hosts"].as_array().unwrap().len(), &first["next"]),
        (2, &json!("r2"))
    );
    let (_, second) = daemon
        .call(
            Method::GET,
            "/api/v1/hosts?limit=2&after=r2",
            Some(&key),
            &Value::Null,
        )
        .await;
    assert_eq!(
        (&second["hosts"][0]["name"], &second["next"]),
        (&json!("r3"), &Value::Null)
    );
    let (_, lab) = daemon
        .call(
            Method::GET,
            "/api/v1/hosts?group=office",
            Some(&key),
            &Value::Null,
        )
        .await;
    assert_eq!(lab["hosts"].as_array().unwrap().len(), 1);
    let (_, one) = daemon
        .call(Method::GET, "/api/v1/hosts/r2", Some(&key), &Value::Null)
        .await;
    assert_eq!(
        (&one["name"], &one["groups"]),
        (&json!("r2"), &json!(["lab"]))
    );
    assert_eq!(one["server_key"], server.ok(&["host", "key", "r2"]).trim());

    // Removed through the API: gone from the CLI's list; a second removal is 404.
    let (status, _) = daemon
        .call(Method::DELETE, "/api/v1/hosts/r1", Some(&key), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = daemon
        .call(Method::DELETE, "/api/v1/hosts/r1", Some(&key), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(server.json(&["host", "list"]).as_array().unwrap().len(), 2);

    // The audit trail through the API says the same.
    let (status, events) = daemon
        .call(
            Method::GET,
            "/api/v1/events?host=r1",
            Some(&key),
            &Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // The daemon's own (its heartbeat may pin a key on first contact, with no actor) are not
    // the user's.
    let kinds: Vec<(&str, &str)> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"].as_str().is_some_and(|a| a.starts_with("user:")))
        .map(|e| {
            (
                e["kind"].as_str().unwrap(),
                e["actor"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("host-added", actor.as_str()),
            ("group-changed", actor.as_str()),
            ("host-removed", actor.as_str())
        ]
    );

    // SIGTERM stops serve, its API included, with a clean exit.
    let mut daemon = daemon;
    assert!(daemon.terminate());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_lists_each_route_the_server_answers() {
    let server = Server::new();
    add_user(&server, "reader", &[]);
    let key = key_of(&server, "reader");
    let daemon = Daemon::start(&server, &[]);
    let (status, doc) = daemon
        .call(
            Method::GET,
            "/api/v1/openapi.json",
            Some(&key),
            &Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let paths = doc["paths"].as_object().unwrap();
    let mut listed: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object().unwrap().keys().map(move |method| {
                let path = path
                    .replace("{name}", "r1")
                    .replace("{id}", "999")
                    .replace("{host}", "r1")
                    .replace("{script}", "r1");
                (method.to_uppercase(), path)
            })
        })
        .collect();
    listed.sort();
    let mut routes: Vec<(String, String)> = routes()
        .into_iter()
        .map(|(m, p, _, _)| {
            let path = p.split('?').next().unwrap_or(p);
            (m.to_string(), path.to_string())
        })
        .collect();
    // Signing in is the one route without credentials.
    routes.push(("POST".into(), "/api/v1/session".into()));
    // The changes never end: `changes.rs` checks their credentials.
    routes.push(("GET".into(), "/api/v1/changes".into()));
    routes.sort();
    assert_eq!(listed, routes);
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["Host"].is_object());
}

/// The document says what the server answers: a host's `status` is its heartbeat's (not the
/// outcome of an operation, which has the same Rust name), each operation lists the answers
/// its extractors give, and the limits the server keeps are in the schema.
#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_describes_the_answers_and_the_limits() {
    let server = Server::new();
    server.ok(&["host", "add", "r1", "192.0.2.1"]);
    add_user(&server, "reader", &[]);
    let key = key_of(&server, "reader");
    let daemon = Daemon::start(&server, &[]);
    let get = |path: &'static str| daemon.call(Method::GET, path, Some(&key), &Value::Null);
    let (_, doc) = get("/api/v1/openapi.json").await;
    let schemas = &doc["components"]["schemas"];
    let resolve = |schema: &Value| -> Value {
        let reference = schema["$ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{schema}"));
        let name = reference.strip_prefix("#/components/schemas/").unwrap();
        schemas[name].clone()
    };

    // A host as answered, held to its schema's `status`.
    let host_status = resolve(&schemas["Host"]["properties"]["status"]);
    let properties = host_status["properties"].as_object().unwrap();
    let (status, host) = get("/api/v1/hosts/r1").await;
    assert_eq!(status, StatusCode::OK);
    let answered = host["status"].as_object().unwrap();
    assert!(!answered.is_empty(), "{host}");
    for field in answered.keys() {
        assert!(
            properties.contains_key(field),
            "{field} not in {host_status}"
        );
    }
    for field in host_status["required"].as_array().into_iter().flatten() {
        assert!(answered.contains_key(field.as_str().unwrap()), "{field}");
    }
    // A host's facts, field by field, with what each means: in a host, a heartbeat's answer
    // and a pending host alike.
    for (schema, field) in [
        ("HostStatus", "facts"),
        ("Ping", "facts"),
        ("PendingHost", "facts"),
    ] {
        let property = schemas[schema]["properties"][field].to_string();
        assert!(
            property.contains("\"#/components/schemas/Facts\""),
            "{schema}: {property}"
        );
    }
    let facts = &schemas["Facts"];
    for (field, kind) in [
        ("model", "string"),
        ("distribution_name", "string"),
        ("distribution_version", "string"),
        ("arch", "string"),
        ("big_endian", "boolean"),
        ("uptime_secs", "integer"),
        ("load_centi", "array"),
        ("mem_available_kib", "integer"),
        ("flash_total_kib", "integer"),
        ("flash_free_kib", "integer"),
    ] {
        let property = &facts["properties"][field];
        assert_eq!(property["type"], kind, "{field}: {facts}");
        assert!(property["description"].is_string(), "{field}: {facts}");
    }
    let outcome = resolve(&schemas["Done"]["properties"]["status"]);
    assert_eq!(
        outcome["enum"],
        json!(["ok", "failed", "skipped", "cancelled"]),
        "{outcome}"
    );

    // Each operation's answers include its extractors'.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let documented = |status: &str| operation["responses"][status].is_object();
            let what = format!("{method} {path}");
            let open = operation["security"] == json!([{}]);
            assert!(open || documented("401"), "{what}: no 401");
            if !open && method != "get" {
                assert!(documented("403"), "{what}: no 403");
            }
            let parameters = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if !parameters.is_empty() {
                assert!(documented("400"), "{what}: no 400");
            }
            for parameter in parameters.iter().filter(|p| p["in"] == "path") {
                if parameter["schema"]["type"] == "string" {
                    assert_eq!(parameter["schema"]["minLength"], 1, "{what}: {parameter}");
                }
            }
            if operation["requestBody"]["content"]["application/json"].is_object() {
                for status in ["400", "413", "415", "422"] {
                    assert!(documented(status), "{what}: no {status}");
                }
            }
        }
    }

    // The limits.
    let parameter = |path: &str, method: &str, name: &str| -> Value {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()["schema"]
            .clone()
    };
    let limit = parameter("/api/v1/hosts", "get", "limit");
    assert_eq!(
        (&limit["minimum"], &limit["maximum"]),
        (&json!(1), &json!(1000))
    );
    for path in ["/api/v1/runs", "/api/v1/events"] {
        let limit = parameter(path, "get", "limit");
        assert_eq!(
            (&limit["minimum"], &limit["maximum"]),
            (&json!(1), &json!(10000))
        );
    }
    for (path, method) in [
        ("/api/v1/runs/{id}", "get"),
        ("/api/v1/launches/{id}/events", "get"),
        ("/api/v1/apikeys/{id}", "delete"),
    ] {
        assert_eq!(parameter(path, method, "id")["minimum"], 1, "{path}");
    }
    let name = &schemas["NewHost"]["properties"]["name"];
    assert_eq!(
        (&name["minLength"], &name["maxLength"]),
        (&json!(1), &json!(63))
    );
    assert_eq!(name["pattern"], "^[A-Za-z0-9_][A-Za-z0-9._-]*$");
    let host_path = parameter("/api/v1/hosts/{name}", "get", "name");
    assert_eq!(host_path["pattern"], name["pattern"]);
    for (schema, field) in [
        ("NewUser", "password"),
        ("NewPassword", "password"),
        ("PasswordChange", "password"),
    ] {
        let password = &schemas[schema]["properties"][field];
        assert_eq!(
            (&password["minLength"], &password["maxLength"]),
            (&json!(8), &json!(1024)),
            "{schema}"
        );
    }
    assert_eq!(
        schemas["NewApiKey"]["properties"]["expires_in_secs"]["maximum"],
        otto_server::ops::MAX_KEY_LIFETIME_SECS
    );
    for schema in ["NewHost", "HostChange"] {
        assert_eq!(
            schemas[schema]["properties"]["port"]["maximum"], 65535,
            "{schema}"
        );
    }
    // The patterns say what the server's own checks take.
    let pattern = |schema: &Value| regex::Regex::new(schema["pattern"].as_str().unwrap()).unwrap();
    let host_name = pattern(name);
    let long = "a".repeat(63);
    for text in [
        "r1", "A", "_x", "a..b", "9", &long, "", ".x", "-x", "a/b", "a b", "é", "a\nb",
    ] {
        assert_eq!(
            host_name.is_match(text) && !text.is_empty(),
            otto_server::names::HostName::parse(text).is_ok(),
            "{text:?}"
        );
    }
    // Every name's pattern and length say what the name rule of its kind takes.
    use otto_server::names::Kind;
    let variable = parameter("/api/v1/env/{name}", "put", "name");
    for (schema, kind) in [
        (&schemas["NewHost"]["properties"]["name"], Kind::Host),
        (&schemas["NewGroup"]["properties"]["name"], Kind::Group),
        (&schemas["NewScript"]["properties"]["name"], Kind::Script),
        (&schemas["NewUser"]["properties"]["name"], Kind::User),
        (&variable, Kind::Variable),
    ] {
        let rule = pattern(schema);
        let too_long = "a".repeat(64);
        for text in [
            "r1",
            "A",
            "_x",
            "a..b",
            "9",
            "9x",
            "a@b",
            "a.b",
            "a-b",
            &long,
            &too_long,
            "",
            ".x",
            "-x",
            "@x",
            "a/b",
            "a b",
            "é",
            "a\nb",
            "..",
            "a\u{202e}b",
        ] {
            let fits = rule.is_match(text)
                && text.len() as u64 >= schema["minLength"].as_u64().unwrap()
                && text.len() as u64 <= schema["maxLength"].as_u64().unwrap();
            assert_eq!(fits, kind.check(text).is_ok(), "{kind:?} {text:?}");
        }
    }
    for schema in ["NewHost", "HostChange"] {
        assert_eq!(
            schemas[schema]["properties"]["port"]["minimum"], 1,
            "{schema}"
        );
    }
    // Integers OpenAPI has no format for carry their range: a timeout or a uid is any `u32`
    // (an `int32` would refuse half of them), a port a `u16` (1 and up, as the schema says).
    let ids = &schemas["Ids"]["properties"];
    for (name, schema) in [
        (
            "NewScript",
            &schemas["NewScript"]["properties"]["timeout_secs"],
        ),
        (
            "ScriptUpdate",
            &schemas["ScriptUpdate"]["properties"]["timeout_secs"],
        ),
        ("NewRun", &schemas["NewRun"]["properties"]["timeout_secs"]),
        ("Ids.uid", &ids["uid"]),
        ("Ids.gid", &ids["gid"]),
    ] {
        assert_eq!(
            (&schema["format"], &schema["minimum"], &schema["maximum"]),
            (&json!("int64"), &json!(0), &json!(u32::MAX)),
            "{name}"
        );
    }
    let port = &schemas["NewHost"]["properties"]["port"];
    assert_eq!(
        (&port["format"], &port["minimum"], &port["maximum"]),
        (&json!("int32"), &json!(1), &json!(65535))
    );
    let serialized = doc.to_string();
    for format in [
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "\"int8\"",
        "\"int16\"",
    ] {
        assert!(!serialized.contains(format), "{format} in the document");
    }
    // A share of hosts as text; a permission given twice is taken once.
    let share = schemas["ShareInput"]["oneOf"].as_array().unwrap();
    let share = pattern(share.iter().find(|s| s["pattern"].is_string()).unwrap());
    for text in [
        "0",
        "2",
        "999999999",
        "0%",
        "25%",
        "100%",
        "",
        "101%",
        "2.5",
        "x%",
        "-1",
    ] {
        assert_eq!(
            share.is_match(text),
            otto_server::ops::Share::parse(text).is_ok(),
            "{text:?}"
        );
    }
    let modify = &schemas["Permissions"]["properties"]["modify"];
    assert!(modify["uniqueItems"].is_null(), "{modify}");
    // The control request names its action; a heartbeat takes none.
    assert!(
        schemas["ControlRequest"]["required"]
            .as_array()
            .unwrap()
            .contains(&json!("action"))
    );
    assert!(schemas["PingRequest"]["properties"]["action"].is_null());
    // The hosts' fields, declared once (`Targets`) and flattened into each request that names
    // hosts, are the request's own, and no other field is taken.
    for name in ["NewRun", "ControlRequest", "PingRequest"] {
        let schema = &schemas[name];
        assert_eq!(
            schema["additionalProperties"],
            json!(false),
            "{name}: {schema}"
        );
        for field in ["all", "hosts", "groups", "exclude", "exclude_groups"] {
            assert!(
                schema["properties"][field].is_object(),
                "{name}.{field}: {schema}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_given_certificate_is_served_and_plain_http_must_be_asked_for() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let daemon = Daemon::start(&server, &["--tls-cert", cert, "--tls-key", key]);
    let digest: Vec<String> = Sha256::digest(made.cert.der().as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    assert_eq!(
        daemon.fingerprint.as_deref(),
        Some(digest.join(":").as_str())
    );
    assert!(
        !server.data().join("http.crt").exists(),
        "no self-signed one made"
    );
    let (status, _) = daemon
        .call(Method::GET, "/api/v1/hosts", None, &Value::Null)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Only with --http-listen, and never plain with a certificate: bad usage.
    for args in [
        &["serve", "--http-plain"][..],
        &[
            "serve",
            "--http-listen",
            "127.0.0.1:0",
            "--http-plain",
            "--tls-cert",
            cert,
            "--tls-key",
            key,
        ],
        &["serve", "--http-listen", "127.0.0.1:0", "--tls-cert", cert],
    ] {
        let out = server.output(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            crate::harness::text(&out)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_makes_lists_and_revokes_their_own_keys_through_the_api() {
    let server = Server::new();
    add_user(&server, "bob", &["--permission", "hosts"]);
    add_user(&server, "carol", &[]);
    let bob = create_key(&server, &["--user", "bob"]);
    let (bob_id, bob) = (
        bob["id"].as_i64().unwrap(),
        bob["secret"].as_str().unwrap().to_string(),
    );
    let carol = key_of(&server, "carol");
    let daemon = Daemon::start(&server, &["--http-plain"]);

    // A narrower key of his own, expiring: made, shown once, working.
    let nothing = json!({"admin": false, "run": "none", "modify": []});
    let narrow = json!({"permissions": nothing, "expires_in_secs": 3600});
    let (status, made) = daemon
        .call(Method::POST, "/api/v1/apikeys", Some(&bob), &narrow)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["user"], "bob");
    assert!(made["expires"].is_string());
    let second = made["secret"].as_str().unwrap().to_string();
    let (status, _) = daemon
        .call(Method::GET, "/api/v1/hosts", Some(&second), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK);
    // It has no `hosts`: it cannot add one, though bob can.
    let host = json!({"name": "r1", "address": "192.0.2.1"});
    let (status, _) = daemon
        .call(Method::POST, "/api/v1/hosts", Some(&second), &host)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Refused: wider than bob, for carol, carol's keys.
    let wider = json!({"permissions": {"admin": true, "run": "read-write", "modify": []}});
    let (status, _) = daemon
        .call(Method::POST, "/api/v1/apikeys", Some(&bob), &wider)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let for_carol = json!({"user": "carol"});
    let (status, _) = daemon
        .call(Method::POST, "/api/v1/apikeys", Some(&bob), &for_carol)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = daemon
        .call(
            Method::GET,
            "/api/v1/apikeys?user=carol",
            Some(&bob),
            &Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let typo = json!({"expires_in": 60});
    let (status, _) = daemon
        .call(Method::POST, "/api/v1/apikeys", Some(&bob), &typo)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // His list: his two keys only, no secrets.
    let (_, listed) = daemon
        .call(Method::GET, "/api/v1/apikeys", Some(&bob), &Value::Null)
        .await;
    let ids: Vec<i64> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [bob_id, made["id"].as_i64().unwrap()]);
    assert!(!listed.to_string().contains(&second));
    assert!(listed[0].get("secret").is_none());

    // Carol cannot revoke his key; he can, through the other one, and it stops at once.
    let path_of_bob = format!("/api/v1/apikeys/{bob_id}");
    let (status, _) = daemon
        .call(Method::DELETE, &path_of_bob, Some(&carol), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, revoked) = daemon
        .call(Method::DELETE, &path_of_bob, Some(&second), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert!(revoked["revoked"].is_string());
    // Once only: again is a conflict, and no second event (the list below has one).
    let (status, again) = daemon
        .call(Method::DELETE, &path_of_bob, Some(&second), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert_eq!(again["error"]["kind"], "conflict");
    let (status, _) = daemon
        .call(Method::GET, "/api/v1/hosts", Some(&bob), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Each change names bob and the key he used.
    let events = server.json(&["events"]);
    let by_api: Vec<(&str, &str)> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"].as_str().is_some_and(|a| a.starts_with("user:")))
        .map(|e| (e["detail"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    let made_id = made["id"].as_i64().unwrap();
    assert_eq!(
        by_api,
        [
            (
                &format!("API key {made_id} made for bob (run none)")[..],
                &format!("user:bob (API key {bob_id} from 127.0.0.1)")[..]
            ),
            (
                &format!("API key {bob_id} of bob revoked"),
                &format!("user:bob (API key {made_id} from 127.0.0.1)")
            ),
            // The use of the revoked key, refused, is recorded as that key's.
            (
                &format!("API key {bob_id} of bob refused: API key {bob_id} was revoked"),
                &format!("user:bob (API key {bob_id} from 127.0.0.1)")
            ),
        ]
    );
}

/// A TCP connection to `address` from the loopback address `from`.
async fn connect_from(from: &str, address: std::net::SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(std::net::SocketAddr::new(from.parse().unwrap(), 0))
        .unwrap();
    socket.connect(address).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_connections_from_one_address_cannot_lock_others_out() {
    use tokio::io::AsyncReadExt;
    let server = Server::new();
    let limits = [
        "--http-connections",
        "8",
        "--http-connections-per-source",
        "4",
    ];
    let daemon = Daemon::start(&server, &limits);
    let address = daemon
        .base()
        .trim_start_matches("https://")
        .parse()
        .unwrap();
    // From 127.0.0.2, more silent connections than the whole pool holds.
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(connect_from("127.0.0.2", address).await);
    }
    // 127.0.0.1's TLS handshake and request are answered at once.
    let call = daemon.call(Method::GET, "/api/v1/hosts", None, &Value::Null);
    let (status, _) = tokio::time::timeout(std::time::Duration::from_secs(10), call)
        .await
        .expect("locked out");
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // 127.0.0.2 keeps its newest four; each older one was closed, without a byte, as a newer
    // one came.
    let mut buf = [0u8; 16];
    for stream in &mut silent[..16] {
        let read = tokio::time::timeout(crate::harness::BOUND, stream.read(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(0) | Err(_))), "{read:?}");
    }
    for stream in &mut silent[16..] {
        let wait = std::time::Duration::from_millis(300);
        assert!(
            tokio::time::timeout(wait, stream.read(&mut buf))
                .await
                .is_err()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_413_over_https_is_read_by_a_client_that_sends_its_whole_body_first() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::new();
    let daemon = Daemon::start(&server, &[]);
    let address: std::net::SocketAddr = daemon
        .base()
        .trim_start_matches("https://")
        .parse()
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(pinned(&server.data().join("http.crt")))
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let name = rustls::pki_types::ServerName::IpAddress(address.ip().into());
    let head = "POST /api/v1/session HTTP/1.1\r\nHost: otto\r\nContent-Type: application/json\r\n";
    for n in 0..10 {
        // 100 KB, said, or 10 MB in chunks, unsaid: written in full, then the answer read.
        let chunked = n % 3 == 2;
        let mut stream = connector
            .connect(
                name.clone(),
                tokio::net::TcpStream::connect(address).await.unwrap(),
            )
            .await
            .unwrap();
        if chunked {
            let head = format!("{head}Transfer-Encoding: chunked\r\n\r\n");
            stream.write_all(head.as_bytes()).await.unwrap();
            let piece = vec![b' '; 64 * 1024];
            for _ in 0..160 {
                stream.write_all(b"10000\r\n").await.unwrap();
                stream.write_all(&piece).await.unwrap();
                stream.write_all(b"\r\n").await.unwrap();
            }
            stream.write_all(b"0\r\n\r\n").await.unwrap();
        } else {
            let body = vec![b' '; 100 * 1024];
            let head = format!("{head}Content-Length: {}\r\n\r\n", body.len());
            stream.write_all(head.as_bytes()).await.unwrap();
            stream.write_all(&body).await.unwrap();
        }
        stream.flush().await.unwrap();
        // The answer's head (the connection may be kept alive after it).
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        let read = loop {
            match stream.read(&mut buf).await {
                Ok(0) => break Ok(0),
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                Err(e) => break Err(e),
            }
            if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                break Ok(answer.len());
            }
        };
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 413"),
            "try {n}: {read:?} {answer}"
        );
    }
}
