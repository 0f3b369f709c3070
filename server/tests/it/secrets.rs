//! Secret variables: typed without echo on a terminal, encrypted at rest in the database (old
//! plain ones too), and still given to runs in clear.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{BOUND, Server, text};

const SECRET: &str = "pa55-w0rd-XYZZY";

/// Whether the database's files hold `needle` anywhere.
fn database_holds(data: &Path, needle: &str) -> bool {
    ["otto.db", "otto.db-wal"].iter().any(|file| {
        std::fs::read(data.join(file))
            .unwrap_or_default()
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    })
}

/// Whether a run on `host` sees `$name` equal to `expected` (compared on the agent with a file,
/// so the value is in no command line).
fn run_sees(server: &Server, dir: &Path, host: &str, name: &str, expected: &str) -> String {
    let file = dir.join(format!("expected-{name}"));
    std::fs::write(&file, expected).unwrap();
    let command = format!("printf %s \"${name}\" | cmp -s - '{}'", file.display());
    let out = server.output(&["run", "--host", host, "--command", &command]);
    assert!(
        out.status.success(),
        "the run did not get the value: {}",
        text(&out)
    );
    text(&out)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_is_stored_encrypted_and_runs_get_it_in_clear() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _agent = server.agent("r1", dir.path(), &[], "").await;
    server.set_secret("API_TOKEN", "r1", SECRET);

    assert!(!database_holds(server.data(), SECRET));
    let key = server.data().join("secrets.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    run_sees(&server, dir.path(), "r1", "API_TOKEN", SECRET);
    let listed = server.ok(&["env", "list"]);
    assert!(
        listed.contains("API_TOKEN") && !listed.contains(SECRET),
        "{listed}"
    );

    // A key others can read, another key, no key: a clear error, never a panic or garbage.
    let good = std::fs::read(&key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = server.output(&["env", "list"]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert!(
        text(&out).contains("must not be accessible"),
        "{}",
        text(&out)
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&key, format!("{}\n", "ab".repeat(32))).unwrap();
    let out = server.output(&["run", "--host", "r1", "--command", "true"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("secret host r1 API_TOKEN cannot be decrypted"),
        "{}",
        text(&out)
    );
    std::fs::remove_file(&key).unwrap();
    let out = server.output(&["env", "list"]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert!(text(&out).contains("is missing"), "{}", text(&out));
    std::fs::write(&key, good).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    run_sees(&server, dir.path(), "r1", "API_TOKEN", SECRET);
}

/// The key-encryption key rotated with the commands an administrator runs: a real agent is
/// reached with its server key and runs get the secret before, during, after, and after
/// `reseal` with the old key deleted; a second server's data directory switches with
/// `--files-only`; through `--server` the commands are refused.
#[tokio::test(flavor = "multi_thread")]
async fn the_key_encryption_key_is_rotated_with_secrets_and_server_keys() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _agent = server.agent("r1", dir.path(), &[], "").await;
    server.set_secret("API_TOKEN", "r1", SECRET);
    let data = server.data();
    let (key, next, old) = (
        data.join("secrets.key"),
        data.join("secrets.key.next"),
        data.join("secrets.key.old"),
    );
    let first = std::fs::read(&key).unwrap();
    let works = || {
        server.ok(&["ping", "--host", "r1"]);
        run_sees(&server, dir.path(), "r1", "API_TOKEN", SECRET);
    };
    works();

    let out = server.ok(&["secrets", "new-key"]);
    assert!(out.contains("Copy it"), "{out}");
    assert_eq!(
        std::fs::metadata(&next).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let out = server.output(&["secrets", "new-key"]);
    assert_eq!(out.status.code(), Some(6), "refused: {}", text(&out));
    // Reseal before switching would seal with the key being replaced.
    let out = server.output(&["secrets", "reseal"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    works();

    // Another server's data directory, given the same keys.
    let other = tempfile::tempdir().unwrap();
    std::fs::copy(&key, other.path().join("secrets.key")).unwrap();
    std::fs::copy(&next, other.path().join("secrets.key.next")).unwrap();

    let out = server.ok(&["secrets", "rotate-key"]);
    assert!(
        out.contains("1 secret variable and 1 server key sealed again")
            && out.contains("--files-only"),
        "{out}"
    );
    assert!(!next.exists());
    assert_eq!(std::fs::read(&old).unwrap(), first);
    assert_ne!(std::fs::read(&key).unwrap(), first);
    assert!(!database_holds(data, SECRET));
    works();

    let second = Server::at(other.path());
    let out = second.ok(&["secrets", "rotate-key", "--files-only"]);
    assert!(out.contains("reseal"), "{out}");
    assert_eq!(
        std::fs::read(other.path().join("secrets.key")).unwrap(),
        std::fs::read(&key).unwrap()
    );
    assert_eq!(
        std::fs::read(other.path().join("secrets.key.old")).unwrap(),
        first
    );
    assert!(
        !other.path().join("otto.db").exists(),
        "no store for the renames"
    );

    // A value sealed meanwhile by a server still on the old key: opened with .old, then
    // sealed again by `reseal`.
    std::fs::rename(&key, data.join("new.key")).unwrap();
    std::fs::rename(&old, &key).unwrap();
    server.set_secret("LATE", "r1", SECRET);
    std::fs::rename(&key, &old).unwrap();
    std::fs::rename(data.join("new.key"), &key).unwrap();
    run_sees(&server, dir.path(), "r1", "LATE", SECRET);
    let out = server.ok(&["secrets", "reseal"]);
    assert!(
        out.contains("1 secret variable and 0 server keys sealed again")
            && out.contains("may be deleted"),
        "{out}"
    );
    // A new rotation is refused while the old key of this one is there.
    server.ok(&["secrets", "new-key"]);
    let out = server.output(&["secrets", "rotate-key"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    std::fs::remove_file(&next).unwrap();
    std::fs::remove_file(&old).unwrap();
    works();
    run_sees(&server, dir.path(), "r1", "LATE", SECRET);

    // Local only.
    for args in [
        &["secrets", "new-key"][..],
        &["secrets", "rotate-key"],
        &["secrets", "reseal"],
    ] {
        let mut cmd = server.command(&[]);
        cmd.args(["--server", "https://127.0.0.1:9"])
            .args(args)
            .env("OTTO_API_KEY", "otto_0000");
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("does not work through --server"),
            "{}",
            text(&out)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plain_secret_of_an_older_database_still_works_and_is_encrypted() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _agent = server.agent("r1", dir.path(), &[], "").await;
    {
        // What an older otto-server (schema version 3) left: the secret in plain text.
        let db = rusqlite::Connection::open(server.data().join("otto.db")).unwrap();
        db.execute_batch(&format!(
            "ALTER TABLE hosts DROP COLUMN calls_home; DROP TABLE schedules;
             ALTER TABLE runs DROP COLUMN cancelled; DROP TABLE webhooks; DROP TABLE webhook_deliveries; DROP TABLE webhook_cursor;
         DROP TABLE host_metrics; DROP TABLE fleet_metrics;
         DROP INDEX runs_by_launch; ALTER TABLE runs DROP COLUMN launch;
         ALTER TABLE runs DROP COLUMN actor;
             ALTER TABLE hosts DROP COLUMN round_trip_ms; DROP TABLE launches;
             ALTER TABLE scripts DROP COLUMN run_level;
             DROP TABLE sessions; DROP TABLE api_keys; DROP TABLE users;
             ALTER TABLE env DROP COLUMN sealed; PRAGMA user_version = 3;
             INSERT INTO env (scope, owner, name, value, secret)
             VALUES ('host', 'r1', 'OLD_TOKEN', '{SECRET}', 1);"
        ))
        .unwrap();
    }
    assert!(database_holds(server.data(), SECRET));
    run_sees(&server, dir.path(), "r1", "OLD_TOKEN", SECRET);
    assert!(!database_holds(server.data(), SECRET));
    run_sees(&server, dir.path(), "r1", "OLD_TOKEN", SECRET);
}

/// `otto-server ARGS; stty -a` on a pseudo-terminal (util-linux's `script`): once `prompt`
/// has shown, `typed` is typed; returns what the terminal showed.
pub async fn typed_on_a_terminal(
    server: &Server,
    args: &[&str],
    prompt: &str,
    typed: &[u8],
) -> String {
    // The shell ignores Ctrl-C so that `stty` still runs after it (otto-server takes it).
    let mut line = format!(
        "trap '' INT; '{}' --data-dir '{}'",
        env!("CARGO_BIN_EXE_otto-server"),
        server.data().display()
    );
    for arg in args {
        line.push_str(&format!(" '{arg}'"));
    }
    line.push_str("; stty -a");
    let mut child = tokio::process::Command::new("script")
        .args(["--quiet", "--return", "--command", &line, "/dev/null"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let session = async {
        let mut shown = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&shown).contains(prompt) {
            let n = stdout.read(&mut buf).await.unwrap();
            assert!(n > 0, "no prompt: {}", String::from_utf8_lossy(&shown));
            shown.extend_from_slice(&buf[..n]);
        }
        stdin.write_all(typed).await.unwrap();
        stdin.flush().await.unwrap();
        stdout.read_to_end(&mut shown).await.unwrap();
        drop(stdin);
        assert!(child.wait().await.unwrap().success());
        String::from_utf8_lossy(&shown).into_owned()
    };
    tokio::time::timeout(BOUND, session).await.unwrap()
}

/// The prompt for a secret typed on a terminal.
const HIDDEN: &str = "(secret, not shown): ";

/// Whether `stty -a` output says the echo is on.
fn echo_on(shown: &str) -> bool {
    let words: Vec<&str> = shown.split_whitespace().collect();
    words.contains(&"echo") && !words.contains(&"-echo")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_typed_on_a_terminal_is_not_shown_and_is_stored() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _agent = server.agent("r1", dir.path(), &[], "").await;

    let typed = format!("{SECRET}\n");
    let set = ["env", "set", "TYPED", "--secret", "--host", "r1"];
    let shown = typed_on_a_terminal(&server, &set, HIDDEN, typed.as_bytes()).await;
    assert!(
        !shown.contains(SECRET),
        "the terminal showed the secret: {shown}"
    );
    assert!(shown.contains("TYPED set (host r1, secret)"), "{shown}");
    assert!(echo_on(&shown), "the echo was left off: {shown}");
    run_sees(&server, dir.path(), "r1", "TYPED", SECRET);

    // Ctrl-C at the prompt: nothing is set and the terminal echoes again.
    let set = ["env", "set", "NEVER", "--secret", "--host", "r1"];
    let shown = typed_on_a_terminal(&server, &set, HIDDEN, b"half\x03").await;
    assert!(echo_on(&shown), "the echo was left off: {shown}");
    assert!(!shown.contains("NEVER set"), "{shown}");
    assert!(!server.ok(&["env", "list"]).contains("NEVER"));
}

#[tokio::test(flavor = "multi_thread")]
async fn removing_a_group_or_script_with_variables_asks_first() {
    let server = Server::new();
    server.ok(&["group", "add", "lab"]);
    server.ok(&["group", "add", "empty"]);
    server.ok(&["script", "add", "job", "--body", "true"]);
    server.ok(&["host", "add", "r1", "127.0.0.1", "--group", "lab"]);
    server.set_secret("API_TOKEN", "r1", SECRET);
    server.ok(&["env", "set", "API_TOKEN", "x", "--secret", "--group", "lab"]);
    server.ok(&["env", "set", "MODE", "fast", "--group", "lab"]);
    server.ok(&["env", "set", "LEVEL", "3", "--script", "job"]);
    let lab_vars = || server.ok(&["env", "list", "--group", "lab"]);

    // Not on a terminal: refused with the list, nothing removed.
    let out = server.output(&["group", "remove", "lab"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("its 2 variables: API_TOKEN (secret), MODE") && said.contains("--force"),
        "{said}"
    );
    assert!(server.ok(&["group", "list"]).contains("lab"));
    assert!(lab_vars().contains("MODE"));
    let out = server.output(&["script", "remove", "job"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("its variable: LEVEL"), "{}", text(&out));
    assert!(server.ok(&["script", "list"]).contains("job"));

    // On a terminal: a no keeps it, a yes removes it.
    let ask = "Remove? [y/N] ";
    let shown = typed_on_a_terminal(&server, &["group", "remove", "lab"], ask, b"n\n").await;
    assert!(shown.contains("API_TOKEN (secret), MODE"), "{shown}");
    assert!(lab_vars().contains("MODE"));
    let shown = typed_on_a_terminal(&server, &["group", "remove", "lab"], ask, b"y\n").await;
    assert!(shown.contains("group lab removed"), "{shown}");
    assert!(!lab_vars().contains("MODE"));
    assert!(
        server
            .ok(&["env", "list", "--host", "r1"])
            .contains("API_TOKEN"),
        "the host's own variable stays"
    );

    // --force, and a group without variables: no question.
    server.ok(&["script", "remove", "job", "--force"]);
    assert!(!server.ok(&["script", "list"]).contains("job"));
    server.ok(&["group", "remove", "empty"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn removing_a_host_removes_its_variables_after_asking() {
    let server = Server::new();
    server.ok(&["host", "add", "r1", "127.0.0.1"]);
    server.ok(&["host", "add", "r2", "127.0.0.2"]);
    server.set_secret("API_TOKEN", "r1", SECRET);
    server.ok(&["env", "set", "MODE", "fast", "--host", "r1"]);
    server.ok(&["env", "set", "MODE", "slow", "--host", "r2"]);

    // Not on a terminal: refused with the list, nothing removed.
    let out = server.output(&["host", "remove", "r1"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("host r1 also removes its 2 variables: API_TOKEN (secret), MODE")
            && said.contains("--force"),
        "{said}"
    );
    assert!(server.ok(&["host", "list"]).contains("r1"));

    // On a terminal a yes removes it, and --force without asking; their variables go with
    // them: a new host of the same name starts without any.
    let ask = "Remove? [y/N] ";
    let shown = typed_on_a_terminal(&server, &["host", "remove", "r1"], ask, b"y\n").await;
    assert!(shown.contains("removed r1"), "{shown}");
    server.ok(&["host", "remove", "r2", "--force"]);
    server.ok(&["host", "add", "r1", "127.0.0.1"]);
    server.ok(&["host", "add", "r2", "127.0.0.2"]);
    let left = server.ok(&["env", "list"]);
    assert!(
        !left.contains("MODE") && !left.contains("API_TOKEN"),
        "{left}"
    );

    // A host without variables goes without a question.
    server.ok(&["host", "remove", "r2"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_part_of_a_secret_is_shown_however_secrets_overlap_or_output_is_cut() {
    // Issue 21: with both secret, `env` printed `HOST_TOKEN=********-host`.
    const API: &str = "S3cr3t-VALUE-zq81x";
    const HOST: &str = "S3cr3t-VALUE-zq81x-host";
    const LINES: &str = "first-line-QWERTY\nsecond-line-ASDFG";
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _agent = server.agent("r1", dir.path(), &[], "").await;
    server.ok(&["env", "set", "API_TOKEN", API, "--secret"]);
    server.set_secret("HOST_TOKEN", "r1", HOST);
    server.set_secret("PEM", "r1", LINES);
    // `env`, a secret written in two pieces with a pause between (two chunks on the wire),
    // and a secret of two lines.
    let command = "env | grep TOKEN; printf %s \"$HOST_TOKEN\" | head -c 10; sleep 0.3; \
                   printf '%s\\n' \"$HOST_TOKEN\" | tail -c +11; printf '%s\\n' \"$PEM\"";
    let live = server.ok(&["run", "--host", "r1", "--command", command]);
    let kept = server.ok(&["history", "--run", "1"]);
    let json = server.ok(&["history", "--run", "1", "--json"]);
    for shown in [&live, &kept, &json] {
        for piece in ["zq81x", "-host", "QWERTY", "ASDFG", "S3cr3t"] {
            assert!(!shown.contains(piece), "{piece} shown:\n{shown}");
        }
    }
    assert!(live.contains("HOST_TOKEN=********\n"), "{live}");
    assert!(live.contains("API_TOKEN=********\n"), "{live}");
    assert_eq!(kept.matches("********").count(), 4, "{kept}");
}
