//! Users of the HTTP API and their API keys, through the command line: passwords read from
//! standard input and kept as Argon2id hashes, keys shown once and kept as hashes, never more
//! powerful than their user, revoked and disabled, each change in the event log.

use std::io::Write;
use std::process::{Output, Stdio};

use serde_json::Value;

use crate::harness::{Server, text};

/// `otto-server ARGS…` with `input` on standard input.
pub fn with_input(server: &Server, args: &[&str], input: &str) -> Output {
    let mut child = server
        .command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Adds user `name` with these permission flags (password on standard input).
pub fn add_user(server: &Server, name: &str, flags: &[&str]) {
    let mut args = vec!["user", "add", name];
    args.extend(flags);
    let out = with_input(server, &args, "correct horse battery\n");
    assert!(out.status.success(), "{}", text(&out));
}

/// Makes an API key with `flags`; returns it as `apikey create --json` prints it.
pub fn create_key(server: &Server, flags: &[&str]) -> Value {
    let mut args = vec!["apikey", "create"];
    args.extend(flags);
    server.json(&args)
}

/// The database file's bytes, WAL included.
fn database_bytes(server: &Server) -> Vec<u8> {
    let mut bytes = std::fs::read(server.data().join("otto.db")).unwrap();
    bytes.extend(std::fs::read(server.data().join("otto.db-wal")).unwrap_or_default());
    bytes
}

#[test]
fn users_are_added_with_hashed_passwords_and_their_permissions() {
    let server = Server::new();
    add_user(
        &server,
        "bob",
        &["--permission", "hosts,audit", "--run-level", "read-only"],
    );
    add_user(&server, "root", &["--admin"]);
    let users = server.json(&["user", "list"]);
    assert_eq!(users[0]["name"], "bob");
    assert_eq!(
        users[0]["permissions"]["modify"],
        serde_json::json!(["hosts", "audit"])
    );
    assert_eq!(users[0]["permissions"]["run"], "read-only");
    assert_eq!(users[1]["permissions"]["admin"], true);
    assert!(!users[0].to_string().contains("argon2"), "{users}");
    let db = database_bytes(&server);
    let contains = |needle: &[u8]| db.windows(needle.len()).any(|w| w == needle);
    assert!(contains(b"$argon2id$"));
    assert!(!contains(b"correct horse battery"));

    // Refused: a taken name (5), a bad name or a short password (2), a bad permission (2).
    let taken = with_input(&server, &["user", "add", "bob"], "another password\n");
    assert_eq!(taken.status.code(), Some(5), "{}", text(&taken));
    let bad = with_input(&server, &["user", "add", "b b"], "long enough\n");
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    let short = with_input(&server, &["user", "add", "carol"], "short\n");
    assert_eq!(short.status.code(), Some(2), "{}", text(&short));
    let unknown = with_input(&server, &["user", "add", "dave", "--permission", "all"], "");
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));
    assert_eq!(server.json(&["user", "list"]).as_array().unwrap().len(), 2);

    // A new password replaces the hash; a disabled user shows as such.
    let before = database_bytes(&server);
    let out = with_input(&server, &["user", "passwd", "bob"], "another password\n");
    assert!(out.status.success(), "{}", text(&out));
    assert_ne!(database_bytes(&server), before);
    server.ok(&["user", "disable", "bob"]);
    assert_eq!(server.json(&["user", "list"])[0]["disabled"], true);
    let missing = server.output(&["user", "disable", "nobody"]);
    assert_eq!(missing.status.code(), Some(4), "{}", text(&missing));

    let events = server.json(&["events"]);
    let details: Vec<(&str, &str)> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "user-changed" || e["kind"] == "password-changed")
        .map(|e| (e["kind"].as_str().unwrap(), e["detail"].as_str().unwrap()))
        .collect();
    assert_eq!(
        details,
        [
            (
                "user-changed",
                "user bob added (run read-only; hosts, audit)"
            ),
            ("user-changed", "user root added (admin)"),
            ("password-changed", "password of bob changed"),
            ("user-changed", "user bob disabled")
        ]
    );
}

#[test]
fn an_api_key_is_shown_once_stored_hashed_and_never_wider_than_its_user() {
    let server = Server::new();
    add_user(&server, "bob", &["--permission", "hosts"]);
    let key = create_key(&server, &["--user", "bob", "--expires", "30d"]);
    let secret = key["secret"].as_str().unwrap();
    assert!(
        secret.starts_with("otto_") && secret.len() == 69,
        "{secret}"
    );
    assert_eq!(key["user"], "bob");
    assert!(key["expires"].is_string(), "{key}");
    assert_eq!(key["permissions"]["modify"], serde_json::json!(["hosts"]));
    let db = database_bytes(&server);
    assert!(!db.windows(secret.len()).any(|w| w == secret.as_bytes()));

    let listed = server.json(&["apikey", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(secret));
    assert!(listed[0].get("secret").is_none());

    // More than bob may: refused (8), nothing stored.
    let wider = server.output(&["apikey", "create", "--user", "bob", "--admin"]);
    assert_eq!(wider.status.code(), Some(8), "{}", text(&wider));
    let audit = server.output(&["apikey", "create", "--user", "bob", "--permission", "audit"]);
    assert_eq!(audit.status.code(), Some(8), "{}", text(&audit));
    let nobody = server.output(&["apikey", "create", "--user", "nobody"]);
    assert_eq!(nobody.status.code(), Some(4), "{}", text(&nobody));
    assert_eq!(
        server.json(&["apikey", "list"]).as_array().unwrap().len(),
        1
    );

    let id = key["id"].to_string();
    server.ok(&["apikey", "revoke", &id]);
    let listed = server.json(&["apikey", "list", "--user", "bob"]);
    assert!(listed[0]["revoked"].is_string(), "{listed}");
    let gone = server.output(&["apikey", "revoke", "99"]);
    assert_eq!(gone.status.code(), Some(4), "{}", text(&gone));

    let events = server.json(&["events"]);
    let keys: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "api-key-changed")
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            &format!("API key {id} made for bob (run none; hosts)")[..],
            &format!("API key {id} of bob revoked"),
        ]
    );
}
