//! `enrollment …`, written once: a table of commands run both ways, locally on one fleet's
//! data directory and through `--server` against a real `serve` of an identical fleet, row by
//! row: the same standard output (secrets, fingerprints, times and who made a token masked)
//! and the same exit code, the one the row expects. Without the permission `enrollment` (or
//! `hosts`, for approving) a command is refused through the server (exit 8), changing nothing.

use regex::Regex;
use serde_json::{Value, json};

use super::{Both, Masks, row};
use crate::harness::text;

/// The table's masks: standard output compared, masked.
struct Enrollment;

impl Masks for Enrollment {
    fn stdout(_args: &[&str], out: &[u8]) -> Value {
        json!(masked(out))
    }
}

/// Standard output `out` with what differs between two fleets by nature masked: tokens'
/// secrets, the enrollment fingerprint, times, who made a token (the login here, the API key's
/// user there), and the table widths those change.
fn masked(out: &[u8]) -> String {
    let stdout = String::from_utf8_lossy(out);
    let masks = [
        ("otto-enroll-[0-9a-f]{64}", "<secret>"),
        ("SHA256:[A-Za-z0-9+/=]+", "<fingerprint>"),
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "<time>"),
        (r"\b\d{12,}\b", "<ms>"),
        (
            r"cli:(uid \d+|[^\s\x22]+)|user:root \(API key \d+ from [^)]+\)",
            "<actor>",
        ),
        (r"[ \t]{2,}", " "),
        ("[─-]{2,}", "--"),
    ];
    masks
        .iter()
        .fold(stdout.into_owned(), |text, (pattern, mask)| {
            Regex::new(pattern)
                .unwrap()
                .replace_all(&text, *mask)
                .into_owned()
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn each_enrollment_command_prints_and_exits_the_same_locally_and_through_the_server() {
    let both = Both::alike(|server| {
        server.ok(&["host", "add", "r1", "192.0.2.1"]);
    });
    let table = [
        // Rules: none yet (the default follows), added last and in place, listed in order;
        // a regex that does not compile, both decisions at once, none, position 0.
        row(&["enrollment", "rule", "list"], 0),
        row(
            &[
                "enrollment",
                "rule",
                "add",
                "--match",
                "arch~^mips",
                "--group",
                "mips",
                "--trust",
            ],
            0,
        ),
        row(
            &[
                "enrollment",
                "rule",
                "add",
                "--match",
                "hostname~^lab-",
                "--match",
                "kernel~^5\\.",
                "--hold",
                "--position",
                "1",
            ],
            0,
        ),
        row(
            &["enrollment", "rule", "add", "--match", "arch~(", "--hold"],
            2,
        ),
        row(
            &["enrollment", "rule", "add", "--match", "arch", "--hold"],
            2,
        ),
        row(&["enrollment", "rule", "add", "--trust", "--hold"], 2),
        row(&["enrollment", "rule", "add", "--match", "arch~x"], 2),
        row(
            &["enrollment", "rule", "add", "--trust", "--position", "0"],
            2,
        ),
        row(&["enrollment", "rule", "list"], 0),
        row(&["--json", "enrollment", "rule", "list"], 0),
        row(&["enrollment", "rule", "remove", "2"], 0),
        row(&["enrollment", "rule", "remove", "2"], 4),
        row(&["enrollment", "rule", "list"], 0),
        // Tokens: made (the secret and the command once), past the limits, listed, revoked.
        row(
            &[
                "enrollment",
                "token",
                "add",
                "--uses",
                "3",
                "--group",
                "lab",
                "--note",
                "lab routers",
                "--call-home",
                "otto.example:12445",
            ],
            0,
        ),
        row(
            &["--json", "enrollment", "token", "add", "--expires", "1h"],
            0,
        ),
        row(&["enrollment", "token", "add", "--uses", "0"], 2),
        row(&["enrollment", "token", "add", "--expires", "400d"], 2),
        row(&["enrollment", "token", "add", "--group", "-bad"], 2),
        row(&["enrollment", "token", "add", "--call-home", "a b"], 2),
        row(&["enrollment", "token", "list"], 0),
        row(&["enrollment", "token", "revoke", "1"], 0),
        row(&["enrollment", "token", "revoke", "1"], 5),
        row(&["enrollment", "token", "revoke", "9"], 4),
        row(&["--json", "enrollment", "token", "list"], 0),
        row(&["enrollment", "fingerprint"], 0),
        // Pending keys: r1 has none, and no host is named `nope`: each says so, exit 1.
        row(&["enrollment", "pending"], 0),
        row(&["enrollment", "approve", "r1", "nope"], 1),
        row(&["enrollment", "deny", "r1"], 1),
        row(&["--json", "enrollment", "deny", "r1"], 1),
    ];
    for row in &table {
        let (here, _) = both.check::<Enrollment>(row).await;
        if row.args.join(" ").contains("token add --uses 3") {
            let out = String::from_utf8_lossy(&here.stdout);
            assert!(
                out.contains("otto-agent enroll --server otto.example:12445 --fingerprint SHA256:"),
                "{out}"
            );
        }
    }

    // The secret is printed once, and never listed.
    let listed = both.local.ok(&["enrollment", "token", "list"]);
    assert!(!listed.contains("otto-enroll-"), "{listed}");
    assert!(
        listed.contains("revoked") && listed.contains("active"),
        "{listed}"
    );

    // Without `enrollment` (rita reads only), refused through the server, nothing changed.
    let remote = &both.remote;
    let before = (
        remote.ok(&["enrollment", "token", "list"]),
        remote.ok(&["enrollment", "rule", "list"]),
    );
    for args in [
        &["enrollment", "token", "add"][..],
        &["enrollment", "token", "list"],
        &["enrollment", "token", "revoke", "2"],
        &["enrollment", "rule", "add", "--trust"],
        &["enrollment", "rule", "list"],
        &["enrollment", "rule", "remove", "1"],
        &["enrollment", "fingerprint"],
        &["enrollment", "approve", "r1"],
        &["enrollment", "deny", "r1"],
    ] {
        let out = both.there(&both.rita, args, None).await;
        assert_eq!(out.status.code(), Some(8), "{args:?}: {}", text(&out));
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out));
    }
    let after = (
        remote.ok(&["enrollment", "token", "list"]),
        remote.ok(&["enrollment", "rule", "list"]),
    );
    assert_eq!(before, after);
}
