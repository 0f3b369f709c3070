//! Schedules run by a real `serve` on a real agent: launches every few seconds in the history,
//! linked to their schedule (in `schedule show`, and in the launch's `started` event); a
//! schedule whose launch is still going skips its time (`schedule-skipped`); times missed
//! while `serve` was down are caught up once, the next one counted from then.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use crate::harness::{BOUND, Server};
use crate::http::{Daemon, key_of};
use crate::users::add_user;

/// Waits (within the harness's bound, a hang guard) until `done` holds for `schedule show
/// NAME --json`; returns that answer.
async fn until(server: &Server, name: &str, done: impl Fn(&Value) -> bool) -> Value {
    tokio::time::timeout(BOUND, async {
        loop {
            let shown = server.bounded_json(&["schedule", "show", name]).await;
            if done(&shown) {
                return shown;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("schedule {name} never got there"))
}

/// The launches of a `schedule show --json` answer that have ended.
fn finished(shown: &Value) -> Vec<&Value> {
    shown["launches"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| !l["finished"].is_null())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_starts_a_schedule_every_few_seconds_and_skips_a_time_while_its_launch_goes_on() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _agent = server.agent("r1", dir.path(), &[], "").await;
    add_user(&server, "root", &["--admin"]);
    let key = key_of(&server, "root");
    server.ok(&[
        "schedule",
        "add",
        "tick",
        "--cron",
        "*/2 * * * * *",
        "--command",
        "echo tick",
        "-H",
        "r1",
    ]);
    server.ok(&[
        "schedule",
        "add",
        "slow",
        "--cron",
        "*/2 * * * * *",
        "--command",
        "sleep 5",
        "-H",
        "r1",
    ]);
    // Added while serve runs (another process on the same data directory): picked up too.
    let daemon = Daemon::start(&server, &[]);
    server.ok(&[
        "schedule",
        "add",
        "late",
        "--cron",
        "*/2 * * * * *",
        "--command",
        "true",
        "-H",
        "r1",
    ]);

    let shown = until(&server, "tick", |s| finished(s).len() >= 2).await;
    for launch in finished(&shown) {
        assert_eq!(launch["outcome"], "succeeded on 1", "{launch}");
        assert_eq!(launch["success"], true);
    }
    // The launch is an ordinary one: its events name the schedule, and its run is in the
    // history with its output.
    let id = finished(&shown)[0]["launch"].as_u64().unwrap();
    let events = daemon
        .request(
            Method::GET,
            &format!("/api/v1/launches/{id}/events"),
            Some(&key),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let started = events
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| serde_json::from_str::<Value>(d.trim()).unwrap())
        .find(|e| e["type"] == "started")
        .unwrap();
    assert_eq!(started["schedule"], "tick", "{events}");
    assert_eq!(started["job"], "command: echo tick");
    let runs = server.runs();
    assert!(
        runs.iter()
            .any(|r| r["what"] == "command: echo tick" && r["stdout"] == "tick\n"),
        "{runs:?}"
    );

    until(&server, "late", |s| !finished(s).is_empty()).await;

    // `slow` sleeps longer than its period: its times while a launch goes on are skipped.
    tokio::time::timeout(BOUND, async {
        loop {
            let events = server
                .bounded_json(&["events", "--kind", "schedule-skipped"])
                .await;
            let said = events.as_array().unwrap().iter().any(|e| {
                let detail = e["detail"].as_str().unwrap();
                detail.starts_with("schedule slow: its launch ")
                    && detail.ends_with("is still going, none started")
            });
            if said {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("no schedule-skipped event");
    let slow = server.bounded_json(&["schedule", "show", "slow"]).await;
    let launches = slow["launches"].as_array().unwrap();
    let going = launches.iter().filter(|l| l["finished"].is_null()).count();
    assert!(going <= 1, "two launches of one schedule at once: {slow}");
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread")]
async fn times_missed_while_serve_was_down_run_once_and_the_next_is_counted_from_then() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _agent = server.agent("r1", dir.path(), &[], "").await;
    server.ok(&[
        "schedule",
        "add",
        "yearly",
        "--cron",
        "@yearly",
        "--command",
        "echo caught up",
        "-H",
        "r1",
    ]);
    // Serve was down over three of its times: its due time is three years gone.
    let db = rusqlite::Connection::open(server.data().join("otto.db")).unwrap();
    let three_years_ago = jiff::Timestamp::now().as_millisecond() - 3 * 366 * 86_400_000;
    let changed = db
        .execute(
            "UPDATE schedules SET next_due = ?1 WHERE name = 'yearly'",
            [three_years_ago],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(db);

    let daemon = Daemon::start(&server, &[]);
    let shown = until(&server, "yearly", |s| !finished(s).is_empty()).await;
    assert_eq!(finished(&shown)[0]["outcome"], "succeeded on 1");
    // Several reads of the schedules later, still that one launch, and the next time is the
    // first one from now (next New Year), not one of the missed ones.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let shown = server.bounded_json(&["schedule", "show", "yearly"]).await;
    assert_eq!(shown["launches"].as_array().unwrap().len(), 1, "{shown}");
    let next: jiff::Timestamp = shown["next"][0]["at"].as_str().unwrap().parse().unwrap();
    assert!(next > jiff::Timestamp::now(), "{shown}");
    let new_year = next.to_zoned_datetime(jiff::tz::TimeZone::UTC);
    assert_eq!(
        (new_year.month(), new_year.day(), new_year.hour()),
        (1, 1, 0)
    );
    drop(daemon);
}
