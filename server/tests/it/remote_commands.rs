//! Every command of the CLI through `serve` (`--server`), subject by subject, from a client
//! whose own data directory stays empty: what it changes is the daemon's (and names the API
//! user), what it prints is what the same command prints locally; a secret is never printed;
//! a file is streamed to the server; a permission the key lacks is a clear error, exit 8.

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

use otto_server::keys;
use serde_json::{Value, json};

use crate::harness::{Server, text};
use crate::http::{Daemon, key_of};
use crate::remote::{client, empty, finish};
use crate::users::add_user;

/// The client of `daemon` on its own data directory `e`, with `key`.
struct Client<'a> {
    e: &'a Path,
    server: &'a Server,
    url: &'a str,
    key: &'a str,
}

impl Client<'_> {
    /// `args` through the server, to its end.
    async fn out(&self, args: &[&str]) -> Output {
        finish(client(self.e, self.server, self.url, Some(self.key), args)).await
    }

    /// `args` through the server, with `input` on standard input.
    async fn with_input(&self, args: &[&str], input: &str) -> Output {
        let mut cmd = client(self.e, self.server, self.url, Some(self.key), args);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let input = input.to_string();
        let run = tokio::task::spawn_blocking(move || {
            let mut child = cmd.spawn().unwrap();
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(input.as_bytes()).unwrap();
            drop(stdin);
            child.wait_with_output().unwrap()
        });
        tokio::time::timeout(crate::harness::BOUND, run)
            .await
            .unwrap()
            .unwrap()
    }

    /// `args` through the server, which must succeed; its standard output.
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.out(args).await;
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Whether `args --json` prints the same through the server as locally.
    async fn same(&self, args: &[&str]) {
        assert_eq!(self.json(args).await, self.server.json(args), "{args:?}");
    }

    /// `args --json` through the server, which must succeed; its JSON.
    async fn json(&self, args: &[&str]) -> Value {
        let mut json = vec!["--json"];
        json.extend(args);
        serde_json::from_str(&self.ok(&json).await).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_command_works_through_the_server_as_it_does_locally() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let agent = server.agent("r1", dir.path(), &["lab"], "").await;
    add_user(&server, "root", &["--admin"]);
    add_user(&server, "rita", &[]);
    let (root, rita) = (key_of(&server, "root"), key_of(&server, "rita"));
    let daemon = Daemon::start(&server, &[]);
    let elsewhere = tempfile::tempdir().unwrap();
    let c = Client {
        e: elsewhere.path(),
        server: &server,
        url: daemon.base(),
        key: &root,
    };

    // Hosts: changed, disabled and enabled, their server key, an agent key pinned, a pending
    // key denied and approved, an inventory planned and imported.
    c.ok(&["host", "add", "r5", "192.0.2.5", "-g", "edge"])
        .await;
    let moved = c.ok(&["host", "set", "r5", "--port", "2222"]).await;
    assert_eq!(moved, "r5 is at 192.0.2.5:2222\n");
    assert_eq!(c.ok(&["host", "disable", "r5"]).await, "r5 disabled\n");
    assert_eq!(server.json(&["host", "show", "r5"])["enabled"], false);
    assert_eq!(c.ok(&["host", "enable", "r5"]).await, "r5 enabled\n");
    c.same(&["host", "key", "r5"]).await;
    assert_eq!(
        c.ok(&["host", "key", "r5"]).await,
        server.ok(&["host", "key", "r5"])
    );
    let given = keys::generate().unwrap();
    let trusted = c
        .ok(&["host", "trust", "r5", &keys::to_openssh(given.public_key())])
        .await;
    let fingerprint = keys::fingerprint(given.public_key());
    assert_eq!(trusted, format!("r5: agent key {fingerprint} pinned\n"));
    let other = keys::to_openssh(keys::generate().unwrap().public_key());
    c.ok(&["host", "trust", "r1", &other]).await;
    let pinged = c.out(&["ping", "-H", "r1"]).await;
    assert_eq!(pinged.status.code(), Some(3), "{}", text(&pinged));
    let presented = keys::fingerprint(&agent.agent_key);
    let denied = c.ok(&["host", "deny", "r1"]).await;
    assert_eq!(
        denied,
        format!("r1: pending agent key {presented} denied\n")
    );
    assert_eq!(
        server.json(&["host", "show", "r1"])["trust"]["pending_key"],
        Value::Null
    );
    c.out(&["ping", "-H", "r1"]).await;
    let approved = c.ok(&["host", "approve", "r1"]).await;
    assert_eq!(approved, format!("r1: agent key {presented} pinned\n"));
    c.ok(&["ping", "-H", "r1"]).await;
    let inventory = dir.path().join("hosts.csv");
    std::fs::write(
        &inventory,
        "name,address,port,groups\nr7,192.0.2.7,12444,edge\n",
    )
    .unwrap();
    let inventory = inventory.to_str().unwrap();
    let plan = ["host", "import", inventory, "--dry-run"];
    assert_eq!(c.json(&plan).await, server.json(&plan));
    assert_eq!(c.ok(&plan).await, server.ok(&plan));
    c.ok(&["host", "import", inventory]).await;
    c.same(&["host", "show", "r7"]).await;

    // Groups: added, hosts and scripts put in and taken out, removed.
    c.ok(&[
        "script",
        "add",
        "hello",
        "--body",
        "echo hello from $OTTO_HOST_NAME",
    ])
    .await;
    assert_eq!(c.ok(&["group", "add", "g2"]).await, "group g2 added\n");
    let added = c.ok(&["group", "add-host", "g2", "r1", "r5"]).await;
    assert_eq!(added, "r1, r5 added to g2\n");
    let assigned = c.ok(&["group", "add-script", "g2", "hello"]).await;
    assert_eq!(assigned, "hello assigned to g2\n");
    c.same(&["group", "list"]).await;
    c.ok(&["group", "remove-script", "g2", "hello"]).await;
    c.ok(&["group", "remove-host", "g2", "r5"]).await;
    let g2 = server.json(&["group", "list"]);
    let g2 = g2.as_array().unwrap().iter().find(|g| g["name"] == "g2");
    assert_eq!(g2.unwrap()["hosts"], serde_json::json!(["r1"]), "{g2:?}");
    server.ok(&["env", "set", "V", "1", "--group", "g2"]);
    let refused = c.out(&["group", "remove", "g2"]).await;
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(text(&refused).contains("--force"), "{}", text(&refused));
    c.ok(&["group", "remove", "g2", "--force"]).await;

    // Scripts and attachments: the attachment streamed from its file.
    let body = dir.path().join("hello.sh");
    std::fs::write(&body, "echo replaced\n").unwrap();
    let body = body.to_str().unwrap();
    let saved = c
        .ok(&[
            "script",
            "add",
            "hello",
            "--file",
            body,
            "--replace",
            "--timeout",
            "90s",
        ])
        .await;
    assert_eq!(saved, "script hello saved\n");
    // --replace changes what it is given and keeps the rest, through the server and locally.
    c.ok(&[
        "script",
        "add",
        "hello",
        "--replace",
        "--run-level",
        "read-only",
    ])
    .await;
    c.ok(&[
        "script",
        "add",
        "hello",
        "--replace",
        "--body",
        "echo again",
    ])
    .await;
    server.ok(&["script", "add", "hello", "--replace", "--after", "reload"]);
    let scripts = server.json(&["script", "list"]);
    let hello = scripts
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "hello");
    let hello = hello.unwrap();
    assert_eq!(
        (
            &hello["body"],
            &hello["run_level"],
            &hello["timeout_secs"],
            &hello["after_run"]
        ),
        (
            &json!("echo again"),
            &json!("read-only"),
            &json!(90),
            &json!("reload")
        ),
        "{hello}"
    );
    let refused = c
        .out(&["script", "add", "new-one", "--replace", "--timeout", "1m"])
        .await;
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("needs its body"),
        "{}",
        text(&refused)
    );
    let file = dir.path().join("blob.bin");
    let blob: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, &blob).unwrap();
    let file = file.to_str().unwrap();
    let attach = [
        "attachment",
        "add",
        "hello",
        file,
        "--path",
        "/tmp/blob",
        "--mode",
        "600",
    ];
    let said = c.ok(&attach).await;
    assert!(
        said.starts_with(&format!("{file} (3000000 bytes, sha256 ")),
        "{said}"
    );
    assert!(
        said.ends_with("attached to hello as /tmp/blob, before the script\n"),
        "{said}"
    );
    c.same(&["script", "show", "hello"]).await;
    c.same(&["attachment", "list"]).await;
    c.same(&["attachment", "list", "hello"]).await;
    let removed = c.ok(&["attachment", "remove", "hello", "/tmp/blob"]).await;
    assert_eq!(removed, "attachment /tmp/blob removed from hello\n");
    c.same(&["script", "list"]).await;

    // Variables: a secret's value read from standard input and never printed.
    let set = ["env", "set", "TOKEN", "--secret", "--group", "lab"];
    let out = c.with_input(&set, "s3cret-value\n").await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "TOKEN set (group lab, secret)\n"
    );
    c.ok(&["env", "set", "MODE", "fast"]).await;
    c.same(&["env", "list"]).await;
    c.same(&["env", "list", "--group", "lab"]).await;
    c.same(&["env", "show", "--host", "r1"]).await;
    let shown = c.ok(&["env", "show", "--host", "r1"]).await;
    assert!(
        shown.contains("TOKEN") && shown.contains("group lab"),
        "{shown}"
    );
    for listing in [
        c.ok(&["env", "list"]).await,
        c.ok(&["--json", "env", "list"]).await,
        c.ok(&["env", "show", "--host", "r1"]).await,
    ] {
        assert!(!listing.contains("s3cret"), "{listing}");
    }
    let ran = c
        .ok(&["run", "-H", "r1", "--command", "echo ${#TOKEN}"])
        .await;
    assert!(
        ran.contains("r1 | 12"),
        "the secret reached the agent: {ran}"
    );
    assert!(!ran.contains("s3cret"), "{ran}");
    assert_eq!(
        c.ok(&["env", "unset", "MODE"]).await,
        "MODE removed (global)\n"
    );

    // Users and API keys.
    let out = c
        .with_input(
            &["user", "add", "bob", "--permission", "hosts"],
            "long enough pw\n",
        )
        .await;
    assert!(out.status.success(), "{}", text(&out));
    c.same(&["user", "list"]).await;
    let out = c
        .with_input(&["user", "passwd", "bob"], "another long pw\n")
        .await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "password of bob changed\n",
        "{}",
        text(&out)
    );
    assert_eq!(
        c.ok(&["user", "disable", "bob"]).await,
        "user bob disabled\n"
    );
    assert_eq!(c.ok(&["user", "enable", "bob"]).await, "user bob enabled\n");
    let created = c
        .json(&["apikey", "create", "--user", "bob", "--expires", "1d"])
        .await;
    assert!(
        created["secret"].as_str().unwrap().starts_with("otto_"),
        "{created}"
    );
    c.same(&["apikey", "list"]).await;
    c.same(&["apikey", "list", "--user", "bob"]).await;
    let id = created["id"].as_i64().unwrap().to_string();
    let revoked = c.ok(&["apikey", "revoke", &id]).await;
    assert_eq!(revoked, format!("API key {id} of bob revoked\n"));
    // Again: a conflict (exit 5), through the server as locally.
    let again = c.out(&["apikey", "revoke", &id]).await;
    assert_eq!(again.status.code(), Some(5), "{}", text(&again));
    assert!(text(&again).contains("revoked already"), "{}", text(&again));
    let again = c.server.output(&["apikey", "revoke", &id]);
    assert_eq!(again.status.code(), Some(5), "{}", text(&again));

    // Uploads: the file streamed, a done line per host; a run not found to cancel.
    let target = dir.path().join("uploaded.bin");
    let target = target.to_str().unwrap();
    let up = [
        "--json", "upload", file, "--path", target, "-H", "r1", "--mode", "600",
    ];
    let lines = c.ok(&up).await;
    let lines: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["started", "done", "summary"], "{lines:?}");
    assert_eq!(lines[1]["host"], "r1");
    assert_eq!(lines[2]["succeeded"], 1);
    assert_eq!(std::fs::read(target).unwrap(), blob);
    let table = c.ok(&["upload", file, "--path", target, "-H", "r1"]).await;
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("r1") && l.contains("ok")),
        "{table}"
    );
    // The same again: the host has it, nothing is sent; with --force it is sent anyway.
    let ino = || std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(target).unwrap());
    let inode = ino();
    let table = c.ok(&["upload", file, "--path", target, "-H", "r1"]).await;
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("r1") && l.contains(" unchanged ")),
        "{table}"
    );
    assert!(
        table.contains("0 changed, 1 unchanged, 0 failed"),
        "{table}"
    );
    assert_eq!(ino(), inode);
    let forced = ["upload", file, "--path", target, "-H", "r1", "--force"];
    let table = c.ok(&forced).await;
    assert!(
        table.contains("1 changed, 0 unchanged, 0 failed"),
        "{table}"
    );
    assert_ne!(ino(), inode);
    // A fetch through the server: the server fetches, this machine downloads each copy,
    // checks it and writes it where it is asked.
    let into = dir.path().join("fetched");
    let fetch = [
        "fetch",
        target,
        "-H",
        "r1",
        "--into",
        into.to_str().unwrap(),
    ];
    let fetched = c.ok(&fetch).await;
    let copy = into
        .join("r1")
        .join(std::path::Path::new(target).file_name().unwrap());
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        std::fs::read(file).unwrap(),
        "{fetched}"
    );
    let names: Vec<_> = std::fs::read_dir(into.join("r1"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "no temporary file is left: {names:?}");
    // A file the host does not have fails that host, and leaves nothing.
    let missing = [
        "fetch",
        "/nonexistent/file",
        "-H",
        "r1",
        "--into",
        into.to_str().unwrap(),
    ];
    let out = c.out(&missing).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("no such file"), "{}", text(&out));
    let cancel = c.out(&["cancel", "999"]).await;
    assert_eq!(cancel.status.code(), Some(4), "{}", text(&cancel));

    // Control: reload and a key rotation; a reboot of a group asks first.
    let reloaded = c.json(&["reload", "-H", "r1"]).await;
    assert_eq!(reloaded[0]["success"], true, "{reloaded}");
    let rotated = c.json(&["rotate-keys", "-H", "r1"]).await;
    assert_eq!(rotated[0]["success"], true, "{rotated}");
    c.ok(&["ping", "-H", "r1"]).await;
    let reboot = c.out(&["reboot", "--group", "lab"]).await;
    assert_eq!(reboot.status.code(), Some(2), "{}", text(&reboot));
    assert!(
        text(&reboot).contains("confirm with --yes"),
        "{}",
        text(&reboot)
    );

    // Each change was the daemon's, naming the API user; the client's directory is untouched.
    let events = server.json(&["events", "--limit", "500"]);
    for (kind, detail) in [
        (
            "trust-changed",
            format!("pending agent key {presented} denied"),
        ),
        ("host-changed", "address 192.0.2.5:2222".to_string()),
        (
            "script-changed",
            "script hello saved (14 bytes, read-write)".into(),
        ),
    ] {
        let event = events
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == kind && e["detail"].as_str().unwrap().starts_with(&detail));
        let actor = event.map(|e| e["actor"].as_str().unwrap_or_default());
        assert!(
            actor.is_some_and(|a| a.starts_with("user:root (API key ")),
            "{kind} {detail}: {actor:?} in {events:#}"
        );
    }
    assert!(
        empty(elsewhere.path()),
        "the client opened its data directory"
    );

    // Without the permission: the server's 403, said clearly, exit 8 as locally.
    let reader = Client { key: &rita, ..c };
    for args in [
        &["host", "disable", "r1"][..],
        &["group", "add", "g3"],
        &["script", "remove", "hello", "--force"],
        &["env", "unset", "TOKEN", "--group", "lab"],
        &["user", "list"],
        &["reload", "-H", "r1"],
    ] {
        let out = reader.out(args).await;
        assert_eq!(out.status.code(), Some(8), "{args:?}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("this needs the "), "{args:?}: {stderr}");
    }
    assert_eq!(server.json(&["host", "show", "r1"])["enabled"], true);
}
