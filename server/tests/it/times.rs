//! Times in `--json` output: RFC 3339 in UTC, naming the instant the database keeps (ms since
//! the epoch).

use rusqlite::Connection;
use serde_json::Value;

use crate::harness::Server;

/// The instant the RFC 3339 text `value` names, in ms since the epoch; fails on anything else
/// (a number, a local time, a missing `Z`).
fn millis(value: &Value) -> i64 {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"));
    assert!(text.ends_with('Z'), "not UTC: {text}");
    text.parse::<jiff::Timestamp>()
        .unwrap_or_else(|e| panic!("not RFC 3339: {text}: {e}"))
        .as_millisecond()
}

/// The one integer `sql` selects from the server's database.
fn stored(server: &Server, sql: &str) -> i64 {
    Connection::open(server.data().join("otto.db"))
        .unwrap()
        .query_row(sql, [], |row| row.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn json_times_are_rfc3339_strings_of_the_stored_instant() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _agent = server.agent("r1", dir.path(), &[], "").await;
    server
        .bounded_results(&["run", "-c", "true", "-H", "r1"])
        .await;
    server.bounded_json(&["ping", "-H", "r1"]).await;

    let events = server.bounded_json(&["events"]).await;
    let events = events.as_array().unwrap();
    assert!(!events.is_empty());
    for event in events {
        let sql = format!("SELECT at FROM events WHERE id = {}", event["id"]);
        assert_eq!(millis(&event["at"]), stored(&server, &sql), "{event:#}");
    }

    let history = server.bounded_json(&["history"]).await;
    let run = &history[0];
    let id = &run["id"];
    let started = stored(
        &server,
        &format!("SELECT started FROM runs WHERE id = {id}"),
    );
    let finished = stored(
        &server,
        &format!("SELECT finished FROM runs WHERE id = {id}"),
    );
    assert_eq!(millis(&run["started"]), started, "{run:#}");
    assert_eq!(millis(&run["finished"]), finished, "{run:#}");
    let detail = server
        .bounded_json(&["history", "--run", &id.to_string()])
        .await;
    assert_eq!(millis(&detail["started"]), started, "{detail:#}");

    let host = server.bounded_json(&["host", "show", "r1"]).await;
    let seen = stored(&server, "SELECT last_seen FROM hosts WHERE name = 'r1'");
    let rotated = stored(&server, "SELECT last_rotation FROM hosts WHERE name = 'r1'");
    assert_eq!(millis(&host["status"]["last_seen"]), seen, "{host:#}");
    assert_eq!(millis(&host["trust"]["last_rotation"]), rotated, "{host:#}");
}
