//! `host …` and `group …` both ways: one table of commands (successes and failures: not found,
//! conflict, bad usage, a removal that needs --force), each run locally on one fleet's data
//! directory and through `--server` against a real `serve` of a second, identical fleet, row
//! by row, so that changes are compared too: the same standard output (server keys and times
//! masked, the two fleets' own), the same message on standard error (through the server after
//! the status it came with), the same exit code. Both fleets
//! have tried their hosts once (`serve` beats at once), which are not there.

use std::os::unix::fs::PermissionsExt;

use regex::Regex;
use serde_json::{Value, json};

use super::{Both, Masks, row};
use crate::fake_agent::{Behaviour, Board};
use crate::harness::{Server, text};
use crate::remote::empty;
use crate::secrets::typed_on_a_terminal;

/// The table's masks: output and errors compared, masked alike.
struct Hosts;

impl Masks for Hosts {
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

/// What differs between two fleets by nature: their server keys, the times things were
/// made, and when the server tries a host it failed to reach again (a serve that has tried
/// says when; a command's own process has not).
fn masked(text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    let key = Regex::new(r"ssh-ed25519 [A-Za-z0-9+/=]+").unwrap();
    let time = Regex::new(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?Z?").unwrap();
    let retry = Regex::new(r" \(next try in \d+s\)").unwrap();
    let text = key.replace_all(&text, "ssh-ed25519 KEY");
    let text = retry.replace_all(&text, "");
    time.replace_all(&text, "TIME").into_owned()
}

/// The same fleet made on `server`: hosts r1 (group lab) and r2, a script, variables of r2.
fn fleet(server: &Server) {
    server.ok(&["host", "add", "r1", "192.0.2.1", "-g", "lab"]);
    server.ok(&["host", "add", "r2", "192.0.2.2"]);
    server.ok(&["script", "add", "hello", "--body", "echo hello"]);
    server.ok(&["env", "set", "MODE", "fast", "--host", "r2"]);
    server.ok(&["env", "set", "TOKEN", "x", "--secret", "--host", "r2"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn host_and_group_commands_print_and_exit_the_same_locally_and_through_the_server() {
    let both = Both::alike(fleet);
    let (local, remote) = (&both.local, &both.remote);
    // `serve` beats at once: the local fleet tries its hosts too (they are not there).
    tokio::time::timeout(crate::harness::BOUND, async {
        while remote
            .json(&["host", "list"])
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["status"]["reachable"].is_null())
        {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(local.output(&["ping"]).status.code(), Some(3));
    let dir = tempfile::tempdir().unwrap();
    let inventory = |name: &str, text: &str| -> String {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let csv = inventory(
        "fleet.csv",
        "name,address,port,groups\nr7,192.0.2.7,12444,lab\n",
    );
    let bad_csv = inventory("bad.csv", "name,address\n-r8,192.0.2.8\n");
    let two = inventory(
        "two.csv",
        "name,address\nr1,192.0.2.1\nrouter-10,192.0.2.10\nr11,192.0.2.11\n",
    );
    let agent_key =
        otto_server::keys::to_openssh(otto_server::keys::generate().unwrap().public_key());

    // (arguments, exit code), in order: each row sees what the rows before it did.
    let table: &[(&[&str], i32)] = &[
        (&["host", "list"], 0),
        (&["--json", "host", "list"], 0),
        (&["host", "add", "r3", "192.0.2.3", "-g", "edge,lab"], 0),
        (&["host", "add", "r3", "192.0.2.9"], 5),
        (&["host", "add", "R3", "192.0.2.9"], 5),
        (&["host", "add", "r4", "192.0.2.3"], 5),
        (
            &[
                "host",
                "add",
                "r4",
                "192.0.2.3",
                "--force",
                "--port",
                "2222",
            ],
            0,
        ),
        (&["host", "add", "r5", "not an address"], 2),
        (&["host", "add", "a/b", "192.0.2.5"], 2),
        (
            &["host", "add", "r5", "192.0.2.5", "--agent-key", "nonsense"],
            2,
        ),
        (
            &[
                "--json",
                "host",
                "add",
                "r6",
                "192.0.2.6",
                "--pin-on-first-contact",
            ],
            0,
        ),
        (&["host", "show", "r3"], 0),
        (&["--json", "host", "show", "r3"], 0),
        (&["host", "show", "r9"], 4),
        (&["host", "set", "r4", "--port", "2223"], 0),
        (
            &[
                "host",
                "set",
                "r4",
                "--address",
                "192.0.2.1",
                "--port",
                "12444",
            ],
            5,
        ),
        (&["host", "set", "r9", "--port", "1"], 4),
        (&["host", "disable", "r4"], 0),
        (&["host", "enable", "r4"], 0),
        (&["host", "enable", "r9"], 4),
        (&["host", "trust", "r4", "ssh-ed25519 nonsense"], 2),
        (&["host", "trust", "r4", &agent_key], 0),
        (&["host", "trust", "r9", &agent_key], 4),
        (&["host", "approve", "r4"], 5),
        (&["host", "deny", "r4"], 5),
        (&["host", "approve", "r9"], 4),
        (&["host", "key", "r3"], 0),
        (&["--json", "host", "key", "r3"], 0),
        (&["host", "key", "r9"], 4),
        (&["host", "import", &csv, "--dry-run"], 0),
        (&["--json", "host", "import", &csv], 0),
        (&["host", "import", &csv], 0),
        (&["host", "import", &bad_csv], 2),
        (&["host", "import", &two], 0),
        (
            &["host", "import", &two, "--dry-run", "--trust-lines", "x"],
            2,
        ),
        (&["--json", "host", "list"], 0),
        (&["group", "add", "g1"], 0),
        (&["group", "add", "g1"], 5),
        (&["group", "add", "LAB"], 5),
        (&["group", "add", "a/b"], 2),
        (&["group", "add-host", "g1", "r1", "r2"], 0),
        (&["group", "add-host", "g1", "r9"], 4),
        (&["group", "add-host", "nope", "r1"], 4),
        (&["group", "add-script", "g1", "hello"], 0),
        (&["group", "add-script", "g1", "nope"], 4),
        (&["group", "list"], 0),
        (&["--json", "group", "list"], 0),
        (&["group", "remove-script", "g1", "hello"], 0),
        (&["group", "remove-host", "g1", "r2"], 0),
        (&["group", "remove", "nope"], 4),
        (&["group", "remove", "edge"], 0),
        (&["--json", "group", "list"], 0),
        // Removals that would take variables along: refused without a terminal, naming them.
        (&["host", "remove", "r2"], 2),
        (&["host", "list"], 0),
        (&["host", "remove", "r2", "--force"], 0),
        (&["host", "remove", "r9"], 4),
        (&["host", "remove", "r3,r4,router-10,r11"], 0),
        (&["host", "list"], 0),
    ];
    for (args, code) in table {
        both.check::<Hosts>(&row(args, *code)).await;
    }

    // A group with variables, both ways alike.
    for server in [local, remote] {
        server.ok(&["env", "set", "LEVEL", "3", "--group", "g1"]);
    }
    for (args, code) in [
        (&["group", "remove", "g1"][..], 2),
        (&["group", "list"], 0),
        (&["group", "remove", "g1", "--force"], 0),
        (&["--json", "group", "list"], 0),
    ] {
        both.check::<Hosts>(&row(args, code)).await;
    }
    let listed = local.ok(&["env", "list"]);
    assert!(
        !listed.contains("LEVEL") && !listed.contains("MODE"),
        "{listed}"
    );
    assert_eq!(listed, remote.ok(&["env", "list"]));

    // Through the server only: a key without the permission is refused (exit 8), nothing
    // changed; deploying is local by nature (exit 2).
    for args in [
        &["host", "add", "r9", "192.0.2.99"][..],
        &["host", "remove", "r1", "--force"],
        &["group", "add", "g9"],
    ] {
        let refused = both.there(&both.rita, args, None).await;
        assert_eq!(
            refused.status.code(),
            Some(8),
            "{args:?}: {}",
            text(&refused)
        );
    }
    assert_eq!(local.ok(&["host", "list"]), remote.ok(&["host", "list"]));
    let deploy = ["host", "deploy", "r9", "root@192.0.2.99"];
    let refused = both.there(&both.root, &deploy, None).await;
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("does not work through --server"),
        "{}",
        text(&refused)
    );
    assert!(empty(both.elsewhere.path()));
}

#[tokio::test(flavor = "multi_thread")]
async fn trust_lines_of_new_hosts_are_appended_to_a_file_alike_both_ways() {
    let both = Both::alike(fleet);
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("fleet.csv");
    std::fs::write(
        &csv,
        "name,address\nr1,192.0.2.1\nr7,192.0.2.7\nr8,192.0.2.8\n",
    )
    .unwrap();
    let csv = csv.to_str().unwrap();
    for (server, name) in [(&both.local, "here"), (&both.remote, "there")] {
        let file = dir.path().join(name);
        let lines = file.to_str().unwrap();
        let add = ["host", "add", "r5", "192.0.2.5", "--trust-lines", lines];
        let import = ["host", "import", csv, "--trust-lines", lines];
        let mut said = Vec::new();
        for args in [&add[..], &import] {
            let out = if name == "here" {
                both.here(args, None).await
            } else {
                both.there(&both.root, args, None).await
            };
            assert!(out.status.success(), "{name} {args:?}: {}", text(&out));
            said.push(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        // `host add` still says the line; the import says where its lines are.
        assert!(
            said[0].contains("  otto-agent trust 'ssh-ed25519 "),
            "{}",
            said[0]
        );
        let whereabouts = format!("2 lines to run on them are in {lines}");
        assert!(said[1].contains(&whereabouts), "{}", said[1]);
        assert!(!said[1].contains("otto-agent trust"), "{}", said[1]);
        // One line per new host, appended: its name, then the command with its own key.
        let key = |host: &str| server.ok(&["host", "key", host]).trim().to_owned();
        let expected: Vec<String> = ["r5", "r7", "r8"]
            .iter()
            .map(|h| format!("{h} otto-agent trust '{}'", key(h)))
            .collect();
        let written = std::fs::read_to_string(&file).unwrap();
        assert_eq!(written.lines().collect::<Vec<_>>(), expected, "{name}");
        // Public keys: no secret, but no one else may change which key an agent trusts.
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o022, 0, "{mode:o}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn removing_what_has_variables_asks_on_a_terminal_through_the_server_as_locally() {
    let both = Both::alike(fleet);
    let (local, remote) = (&both.local, &both.remote);
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, &both.root).unwrap();
    let cert = remote.data().join("http.crt");
    let through = |args: &[&'static str]| -> Vec<String> {
        let mut all = vec![
            "--server".to_string(),
            both.daemon.base().to_string(),
            "--ca-cert".into(),
            cert.display().to_string(),
            "--api-key-file".into(),
            key_file.display().to_string(),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        all
    };
    let ask = "Remove? [y/N] ";
    let question = "removing host r2 also removes its 2 variables: MODE, TOKEN (secret). Remove?";
    for (answer, done) in [(&b"n\n"[..], "host r2 not removed"), (b"y\n", "removed r2")] {
        let args = ["host", "remove", "r2"];
        let here = typed_on_a_terminal(local, &args, ask, answer).await;
        let there = through(&args);
        let there: Vec<&str> = there.iter().map(String::as_str).collect();
        let there = typed_on_a_terminal(remote, &there, ask, answer).await;
        for shown in [&here, &there] {
            assert!(shown.contains(question) && shown.contains(done), "{shown}");
        }
    }
    for server in [local, remote] {
        let names: Vec<Value> = server
            .json(&["host", "list"])
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["name"].clone())
            .collect();
        assert_eq!(names, ["r1"]);
        assert_eq!(server.json(&["env", "list"]), serde_json::json!([]));
    }
}

/// The table's masks for hosts that answered, each fleet's own agent: its port, key and
/// fingerprint, and the heartbeat's round trip, beside [`masked`]'s.
struct Reported;

impl Masks for Reported {
    fn stdout(_args: &[&str], out: &[u8]) -> Value {
        let text = masked(out);
        let masks = [
            (r"127\.0\.0\.1:\d+", "127.0.0.1:PORT"),
            (r#""port": \d+"#, r#""port": PORT"#),
            (r"SHA256:[A-Za-z0-9+/]+", "SHA256:FP"),
            (r#""round_trip_ms": [0-9.e-]+"#, r#""round_trip_ms": MS"#),
            (r"[0-9.]+ ms", "MS ms"),
        ];
        let text = masks.iter().fold(text, |text, (pattern, with)| {
            Regex::new(pattern)
                .unwrap()
                .replace_all(&text, *with)
                .into_owned()
        });
        json!(text)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn what_a_host_reported_is_listed_and_shown_alike_both_ways() {
    // A big-endian board with 600 KiB of its 7.5 MiB flash free, on both fleets.
    let board = Board {
        model: "TP-Link Archer C7 v5",
        big_endian: true,
        flash_total_kib: 7680,
        flash_free_kib: 600,
    };
    let (local, remote) = (Server::new(), Server::new());
    let mut agents = Vec::new();
    for server in [&local, &remote] {
        agents.push(server.fake("r1", Behaviour::Reports(board)).await);
        let (out, _) = server.bounded(&["ping"]).await;
        assert!(out.status.success(), "{}", text(&out));
    }
    let both = Both::new(local, remote);
    for args in [
        &["host", "list"][..],
        &["host", "list", "--wide"],
        &["--json", "host", "list"],
        &["host", "show", "r1"],
        &["--json", "host", "show", "r1"],
    ] {
        both.check::<Reported>(&row(args, 0)).await;
    }
    // What the heartbeat stored is what is shown.
    let wide = both.local.ok(&["host", "list", "--wide"]);
    for said in [
        "TP-Link Archer C7 v5",
        "Fake 1",
        "1s",
        "0.00",
        "LOW 600 KiB (8%)",
    ] {
        assert!(wide.contains(said), "{said}: {wide}");
    }
    let shown = both.local.ok(&["host", "show", "r1"]);
    for said in [
        "  model          TP-Link Archer C7 v5\n",
        "  release        Fake 1\n",
        "  architecture   x86_64 (big-endian)\n",
        "  flash          LOW: 600 KiB of 7.5 MiB free (8%)\n",
    ] {
        assert!(shown.contains(said), "{said:?}: {shown}");
    }
    let facts = &both.local.json(&["host", "show", "r1"])["status"]["facts"];
    assert_eq!(facts["model"], "TP-Link Archer C7 v5", "{facts}");
    assert_eq!(
        (&facts["flash_total_kib"], &facts["flash_free_kib"]),
        (&json!(7680), &json!(600)),
        "{facts}"
    );
    assert_eq!(facts["big_endian"], true, "{facts}");
}
