//! `script …`, `attachment …`, `env …`, `user …`, `apikey …` and `check`, each written once: a
//! table of commands run both ways, locally on one fleet's data directory and through
//! `--server` against a real `serve` of an identical fleet, row by row (so that changes are
//! compared too): the same standard output (API keys' secrets and times masked) and the same
//! exit code, which is the one the row expects. A permission the key lacks is refused through
//! the server (exit 8), changing nothing.

use regex::Regex;
use serde_json::{Value, json};

use super::{Both, Masks, fed, row};
use crate::harness::text;

/// The table's masks: standard output compared, masked.
struct Scripts;

impl Masks for Scripts {
    fn stdout(_args: &[&str], out: &[u8]) -> Value {
        json!(masked(out))
    }
}

/// Standard output `out` with what differs between two fleets by nature masked: API keys'
/// secrets and times (as text and as milliseconds).
fn masked(out: &[u8]) -> String {
    let stdout = String::from_utf8_lossy(out);
    let secret = Regex::new("otto_[0-9a-f]{64}").unwrap();
    let time = Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z").unwrap();
    let millis = Regex::new(r"\b\d{12,}\b").unwrap();
    let stdout = secret.replace_all(&stdout, "<secret>");
    let stdout = time.replace_all(&stdout, "<time>");
    millis.replace_all(&stdout, "<ms>").into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_command_prints_and_exits_the_same_locally_and_through_the_server() {
    // Two fleets of their own, alike: host r1 in group lab.
    let both = Both::alike(|server| {
        server.ok(&["host", "add", "r1", "192.0.2.1", "-g", "lab"]);
    });
    let remote = &both.remote;
    let files = tempfile::tempdir().unwrap();
    let conf = files.path().join("app.conf");
    std::fs::write(&conf, "setting=1\n").unwrap();
    let conf = conf.to_str().unwrap();
    let missing = files.path().join("missing.conf");
    let missing = missing.to_str().unwrap();
    let script_file = files.path().join("hello.sh");
    std::fs::write(&script_file, "echo from a file\n").unwrap();
    let script_file = script_file.to_str().unwrap();

    // `conf` attached to `hello` at `path`, with `more`.
    let attach = |path: &str, more: &[&str]| {
        row(
            &[
                &["attachment", "add", "hello", conf, "--path", path][..],
                more,
            ]
            .concat(),
            0,
        )
    };
    let table = [
        // Scripts: added, changed keeping what is not given, listed, shown; a name taken, one
        // that breaks the rule, one that does not exist.
        row(&["script", "add", "hello", "--body", "echo hi"], 0),
        row(&["script", "add", "hello", "--body", "echo again"], 5),
        row(&["script", "add", "a b", "--body", "echo"], 2),
        row(
            &["script", "add", "hello", "--replace", "--timeout", "90s"],
            0,
        ),
        row(
            &["script", "add", "hello", "--replace", "--file", script_file],
            0,
        ),
        row(
            &["script", "add", "new-one", "--replace", "--timeout", "1m"],
            2,
        ),
        row(&["script", "list"], 0),
        row(&["--json", "script", "list"], 0),
        row(&["script", "show", "hello"], 0),
        row(&["script", "show", "nope"], 4),
        // Attachments: a file attached (streamed), listed, removed; a missing file, a missing
        // script, a missing attachment.
        attach("/etc/app.conf", &["--mode", "600"]),
        row(
            &["attachment", "add", "hello", missing, "--path", "/etc/x"],
            4,
        ),
        row(&["attachment", "add", "nope", conf, "--path", "/etc/x"], 4),
        attach("/etc/after.conf", &["--owner", "0:0", "--phase", "after"]),
        row(&["attachment", "list"], 0),
        row(&["--json", "attachment", "list", "hello"], 0),
        row(&["--json", "script", "show", "hello"], 0),
        row(&["attachment", "remove", "hello", "/etc/x"], 4),
        row(&["attachment", "remove", "hello", "/etc/app.conf"], 0),
        // Variables: set (a secret from standard input, never printed), listed, shown for a
        // host, removed; a scope that does not exist, a variable that does not.
        row(&["env", "set", "MODE", "fast"], 0),
        fed(
            &["env", "set", "TOKEN", "--secret", "--group", "lab"],
            "s3cret\n",
            0,
        ),
        row(&["env", "set", "LEVEL", "2", "--script", "hello"], 0),
        row(&["env", "set", "X", "1", "--group", "nope"], 4),
        row(&["env", "set", "1BAD", "1"], 2),
        row(&["env", "list"], 0),
        row(&["--json", "env", "list"], 0),
        row(&["env", "list", "--group", "lab"], 0),
        row(&["--json", "env", "set", "PORT", "80", "--host", "r1"], 0),
        row(&["env", "list", "--host", "r1"], 0),
        row(&["env", "show", "--host", "r1"], 0),
        row(&["--json", "env", "show", "--host", "r1"], 0),
        row(&["env", "show", "--host", "nope"], 4),
        row(&["env", "unset", "MODE"], 0),
        row(&["env", "unset", "MODE"], 4),
        // A script with variables is removed only with --force (no terminal to ask on).
        row(&["script", "remove", "hello"], 2),
        row(&["script", "remove", "hello", "--force"], 0),
        row(&["script", "remove", "hello", "--force"], 4),
        row(&["env", "list", "--script", "hello"], 0),
        // Users: added (the password on standard input), listed, their password changed,
        // disabled and enabled; a name taken, a user that does not exist.
        fed(
            &["user", "add", "bob", "--permission", "hosts"],
            "long enough pw\n",
            0,
        ),
        fed(&["user", "add", "bob"], "long enough pw\n", 5),
        fed(&["user", "add", "ann"], "short\n", 2),
        row(&["user", "list"], 0),
        row(&["--json", "user", "list"], 0),
        fed(&["user", "passwd", "bob"], "another long pw\n", 0),
        fed(&["user", "passwd", "nobody"], "another long pw\n", 4),
        row(&["user", "disable", "bob"], 0),
        row(&["user", "enable", "bob"], 0),
        row(&["user", "disable", "nobody"], 4),
        // API keys: made (the secret printed once, the same way), listed, revoked; revoked
        // again (a conflict), one that does not exist, a user that does not.
        row(&["apikey", "create", "--user", "bob", "--expires", "1d"], 0),
        row(
            &[
                "--json",
                "apikey",
                "create",
                "--user",
                "bob",
                "--permission",
                "hosts",
            ],
            0,
        ),
        row(&["apikey", "create", "--user", "nobody"], 4),
        row(&["apikey", "list"], 0),
        row(&["apikey", "list", "--user", "bob"], 0),
        row(&["apikey", "revoke", "3"], 0),
        row(&["apikey", "revoke", "3"], 5),
        row(&["apikey", "revoke", "99"], 4),
        // Nothing in the database breaks the rules.
        row(&["check"], 0),
        row(&["--json", "check"], 0),
    ];

    for row in &table {
        let (here, there) = both.check::<Scripts>(row).await;
        let args = &row.args;
        assert!(!text(&here).contains("s3cret"), "{args:?}: {}", text(&here));
        assert!(
            !text(&there).contains("s3cret"),
            "{args:?}: {}",
            text(&there)
        );
    }

    // A new key's secret is printed once, on a line of its own, both ways.
    let made = ["apikey", "create", "--user", "bob"];
    let secret = Regex::new("^otto_[0-9a-f]{64}$").unwrap();
    for out in [
        both.here(&made, None).await,
        both.there(&both.root, &made, None).await,
    ] {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = stdout.lines().filter(|l| l.contains("otto_")).collect();
        assert_eq!(lines.len(), 1, "{stdout}");
        assert!(secret.is_match(lines[0]), "{stdout}");
    }

    // Without the permission: refused through the server, exit 8, nothing changed.
    remote.ok(&["script", "add", "kept", "--body", "true"]);
    remote.ok(&["env", "set", "KEPT", "1"]);
    let before = (
        remote.ok(&["script", "list"]),
        remote.ok(&["env", "list"]),
        remote.ok(&["user", "list"]),
    );
    for args in [
        &["script", "add", "other", "--body", "true"][..],
        &["script", "add", "kept", "--replace", "--timeout", "5s"],
        &["script", "remove", "kept", "--force"],
        &["attachment", "add", "kept", conf, "--path", "/etc/x"],
        &["env", "set", "KEPT", "2"],
        &["env", "unset", "KEPT"],
        &["user", "list"],
        &["user", "disable", "bob"],
        &["apikey", "list", "--user", "bob"],
        &["apikey", "revoke", "1"],
    ] {
        let out = both.there(&both.rita, args, None).await;
        assert_eq!(out.status.code(), Some(8), "{args:?}: {}", text(&out));
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out));
    }
    let after = (
        remote.ok(&["script", "list"]),
        remote.ok(&["env", "list"]),
        remote.ok(&["user", "list"]),
    );
    assert_eq!(before, after);
    assert!(
        crate::remote::empty(both.elsewhere.path()),
        "the client opened its own data directory"
    );
}
