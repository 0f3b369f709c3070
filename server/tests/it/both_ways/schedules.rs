//! `schedule …` both ways: one table of commands (successes, and failures: a bad pattern,
//! zone, name or rollout, a script or host that does not exist, a name taken, a schedule that
//! does not exist), each run locally on one fleet's data directory and through `--server`
//! against a real `serve` of a second, identical fleet, row by row: the same output (times
//! masked), the same message on standard error, the same exit code. The schedules' times are
//! far off, so neither `serve` starts one meanwhile. A user without `schedules` reads them
//! through the server, and is refused any change (exit 8).

use regex::Regex;
use serde_json::{Value, json};

use super::{Both, Masks, row};
use crate::harness::{Server, text};

/// The table's masks: output and errors compared, times masked.
struct Schedules;

impl Masks for Schedules {
    fn stdout(_args: &[&str], out: &[u8]) -> Value {
        json!(masked(out))
    }

    fn stderr(args: &[&str], here: &[u8], there: &[u8]) {
        assert_eq!(
            masked(here),
            masked(there),
            "{args:?}: locally, then through the server"
        );
    }
}

/// The times of the two fleets' own making masked.
fn masked(text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    let time = Regex::new(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?Z?").unwrap();
    time.replace_all(&text, "TIME").into_owned()
}

/// The same fleet on `server`: hosts r1 (group lab) and r2, a script.
fn fleet(server: &Server) {
    server.ok(&["host", "add", "r1", "192.0.2.1", "-g", "lab"]);
    server.ok(&["host", "add", "r2", "192.0.2.2"]);
    server.ok(&["script", "add", "hello", "--body", "echo hello"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn schedule_commands_print_and_exit_the_same_locally_and_through_the_server() {
    let both = Both::alike(fleet);
    let leap = [
        "schedule",
        "add",
        "leap",
        "--cron",
        "0 12 29 2 *",
        "--tz",
        "Europe/Berlin",
        "--script",
        "hello",
        "-g",
        "lab",
    ];
    let bad = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut args = vec!["schedule", "add", "bad"];
        args.extend(extra);
        args
    };
    let table: Vec<(Vec<&str>, i32)> = vec![
        (vec!["schedule", "list"], 0),
        (leap.to_vec(), 0),
        (leap.to_vec(), 5),
        (
            vec![
                "schedule",
                "add",
                "LEAP",
                "--cron",
                "@yearly",
                "--command",
                "true",
                "-H",
                "r1",
            ],
            5,
        ),
        (
            bad(&["--cron", "61 * * * *", "--command", "true", "-H", "r1"]),
            2,
        ),
        (
            bad(&[
                "--cron",
                "@daily",
                "--tz",
                "Mars/Olympus",
                "--command",
                "true",
                "-H",
                "r1",
            ]),
            2,
        ),
        (
            bad(&["--cron", "0 0 30 2 *", "--command", "true", "-H", "r1"]),
            2,
        ),
        (
            bad(&["--cron", "@daily", "--script", "nope", "-H", "r1"]),
            4,
        ),
        (
            bad(&["--cron", "@daily", "--command", "true", "-H", "r9"]),
            4,
        ),
        (
            bad(&[
                "--cron",
                "@daily",
                "--command",
                "true",
                "-H",
                "r1",
                "--batch",
                "0",
            ]),
            2,
        ),
        (
            vec![
                "schedule",
                "add",
                "a/b",
                "--cron",
                "@daily",
                "--command",
                "true",
                "-H",
                "r1",
            ],
            2,
        ),
        (
            vec![
                "schedule",
                "add",
                "yearly",
                "--cron",
                "@yearly",
                "--command",
                "uptime",
                "--all",
                "--batch",
                "1",
                "--max-failures",
                "0",
                "--disabled",
            ],
            0,
        ),
        (vec!["schedule", "list"], 0),
        (vec!["--json", "schedule", "list"], 0),
        (vec!["schedule", "show", "leap"], 0),
        (vec!["--json", "schedule", "show", "yearly"], 0),
        (vec!["schedule", "show", "nope"], 4),
        (vec!["schedule", "disable", "leap"], 0),
        (vec!["schedule", "enable", "yearly"], 0),
        (vec!["--json", "schedule", "list"], 0),
        (vec!["schedule", "enable", "nope"], 4),
        (vec!["schedule", "remove", "yearly"], 0),
        (vec!["schedule", "remove", "yearly"], 4),
        (vec!["schedule", "list"], 0),
    ];
    for (args, code) in &table {
        both.check::<Schedules>(&row(args, *code)).await;
    }

    // A reader sees the schedules, and may change none.
    let list = both
        .there(&both.rita, &["--json", "schedule", "list"], None)
        .await;
    assert!(list.status.success(), "{}", text(&list));
    let listed: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(listed[0]["name"], "leap", "{listed}");
    assert_eq!(listed[0]["enabled"], false);
    for args in [
        &[
            "schedule",
            "add",
            "x",
            "--cron",
            "@daily",
            "--command",
            "true",
            "--all",
        ][..],
        &["schedule", "enable", "leap"],
        &["schedule", "remove", "leap"],
    ] {
        let refused = both.there(&both.rita, args, None).await;
        assert_eq!(
            refused.status.code(),
            Some(8),
            "{args:?}: {}",
            text(&refused)
        );
        assert!(text(&refused).contains("schedules"), "{}", text(&refused));
    }
    let shown = both.remote.json(&["schedule", "show", "leap"]);
    assert_eq!(shown["enabled"], false, "{shown}");

    // Every change is an event, both ways.
    for server in [&both.local, &both.remote] {
        let events = server.json(&["events", "--kind", "schedule-changed"]);
        let details: Vec<&str> = events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["detail"].as_str().unwrap())
            .collect();
        assert_eq!(
            details,
            [
                "schedule leap added: hello at `0 12 29 2 *` (Europe/Berlin)",
                "schedule yearly added disabled: command: uptime at `@yearly` (UTC)",
                "schedule leap disabled",
                "schedule yearly enabled",
                "schedule yearly removed",
            ]
        );
    }
}
