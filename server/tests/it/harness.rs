//! The harness the tests share: the `otto-server` binary run on a data directory of its own,
//! hosts added to it with real agents (the `otto-agent` binary of this build) or fake ones on
//! loopback, and the commands' output captured; and the one switch for tests that need a tool
//! this machine may lack ([`tool_missing`]).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use otto_server::demo::LocalAgent;
use otto_server::fleet::{Fleet, FleetOptions};
use otto_server::keys;
use russh::keys::{PrivateKey, PublicKey};
use serde_json::Value;

use crate::fake_agent::{Behaviour, FakeAgent};

/// The outer bound of a [`Server::bounded`] command: far above every deadline the commands
/// have (10 s answers, 5 s + 10 s runs), so code that waits forever fails instead of hanging.
pub const BOUND: Duration = Duration::from_secs(60);

/// The switch that makes a missing tool a test failure instead of a skip: set to anything but
/// `0` (`OTTO_REQUIRE_TOOLS=1`) by `ci/test.sh` and `ci/cross-check.sh`.
pub const REQUIRE_TOOLS: &str = "OTTO_REQUIRE_TOOLS";

/// Called, then returned from, by every test that cannot run because this machine lacks a tool:
/// Chromium and chromedriver (`browser.rs`), a QEMU emulator, a cross-built agent or a device
/// image (`qemu.rs`, `qemu_system.rs`), dropbear (`deploy.rs`). `what` names what is missing,
/// `how` says how to get it.
///
/// On a developer's machine the test is skipped: it passes and says `SKIPPED: what; how` on
/// stderr (written directly, not with `eprintln!`, so the test harness's capture does not hide
/// it). Under [`REQUIRE_TOOLS`] (CI) it fails, naming what is missing, so a machine that lost a
/// tool cannot stay green.
///
/// One opt-in switch remains, for a reason besides its tool: the deploy test adds a key to
/// `~/.ssh/authorized_keys` while it runs, so it runs only with `OTTO_DEPLOY_E2E=1`; `ci/test.sh`
/// sets it, and under [`REQUIRE_TOOLS`] its absence is a failure like a missing tool. The QEMU
/// tests need what `ci/cross-check.sh` builds first (the agents in `dist/`, the device images),
/// so `ci/test.sh`'s host step leaves them out by name and `ci/cross-check.sh` runs them.
pub fn tool_missing(what: &str, how: &str) {
    let required = std::env::var_os(REQUIRE_TOOLS).is_some_and(|v| !v.is_empty() && v != "0");
    assert!(!required, "missing: {what}; {how} ({REQUIRE_TOOLS} is set)");
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {what}; {how} ({REQUIRE_TOOLS}=1 makes this a failure)"
    );
}

/// The `otto-agent` binary of this build (built first when it is missing).
pub fn agent_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .to_path_buf();
    let bin = profile_dir.join("otto-agent");
    if !bin.is_file() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "otto-agent", "--target-dir"])
            .arg(profile_dir.join("agent-for-tests"))
            .status()
            .unwrap();
        assert!(status.success());
        return profile_dir.join("agent-for-tests/debug/otto-agent");
    }
    bin
}

/// The server binary with its data directory.
pub struct Server {
    data: PathBuf,
    /// The temporary directory that is `data`, removed with the server (none when given one).
    _temp: Option<tempfile::TempDir>,
    /// The PostgreSQL database holding the fleet (`--database`), if not the data directory.
    database: Option<String>,
}

impl Server {
    /// A server on a new temporary data directory.
    pub fn new() -> Server {
        let temp = tempfile::tempdir().unwrap();
        Server {
            data: temp.path().to_path_buf(),
            _temp: Some(temp),
            database: None,
        }
    }

    /// A server on a new temporary data directory whose fleet is in the PostgreSQL database
    /// at `url`.
    pub fn on_postgres(url: &str) -> Server {
        Server {
            database: Some(url.to_string()),
            ..Server::new()
        }
    }

    /// A server on the data directory `data` (made by the server if missing, left in place).
    pub fn at(data: &Path) -> Server {
        Server {
            data: data.to_path_buf(),
            _temp: None,
            database: None,
        }
    }

    /// Its data directory.
    pub fn data(&self) -> &Path {
        &self.data
    }

    /// The command `otto-server --data-dir DATA ARGS…`, without `RUST_LOG`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_otto-server"));
        cmd.arg("--data-dir")
            .arg(&self.data)
            .args(args)
            .env_remove("RUST_LOG")
            // This machine's data directory, never a running serve of the developer's.
            .env_remove("OTTO_SERVER")
            // No configuration file of this machine's: an empty one.
            .env("OTTO_CONFIG", "/dev/null");
        match &self.database {
            Some(url) => cmd.env("OTTO_DATABASE_URL", url),
            None => cmd.env_remove("OTTO_DATABASE_URL"),
        };
        cmd
    }

    /// Sets secret variable `name` for `host`, its value given on standard input.
    pub fn set_secret(&self, name: &str, host: &str, value: &str) {
        let mut set = self
            .command(&["env", "set", name, "--secret", "--host", host])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut set.stdin.take().unwrap(), value.as_bytes()).unwrap();
        assert!(set.wait().unwrap().success());
    }

    /// The server key of host `name`, as the store keeps it (sealed with the data directory's
    /// `secrets.key`).
    pub async fn server_key(&self, name: &str) -> PrivateKey {
        let fleet = Fleet::open(&self.data, FleetOptions::default())
            .await
            .unwrap();
        fleet.host_key(name).await.unwrap()
    }

    /// The hosts the store holds a server key for (`current` or `next`), with the slot:
    /// `host/slot`, sorted.
    pub fn server_keys(&self) -> Vec<String> {
        let db = rusqlite::Connection::open(self.data.join("otto.db")).unwrap();
        let mut found: Vec<String> = db
            .prepare("SELECT host || '/' || slot FROM server_keys ORDER BY host, slot")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        found.sort();
        found
    }

    /// Runs a command; returns its output whatever the exit status.
    pub fn output(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "otto-server {args:?} failed:\n{}",
            text(&out)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command with `--json` that must succeed.
    pub fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(&with_json(args))).unwrap()
    }

    /// Runs a `run` or `upload` with `--json` that must succeed; returns each host's result
    /// (see [`results`]).
    pub fn results(&self, args: &[&str]) -> Value {
        results(self.ok(&with_json(args)).as_bytes())
    }

    /// The run history, oldest first.
    pub fn runs(&self) -> Vec<Value> {
        self.json(&["history"]).as_array().unwrap().clone()
    }

    /// [`Server::command`] for tokio, with no standard input, killed when dropped.
    pub fn async_command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::from(self.command(args));
        cmd.stdin(Stdio::null()).kill_on_drop(true);
        cmd
    }

    /// Runs a command to its end within [`BOUND`]; returns its output and how long it took.
    pub async fn bounded(&self, args: &[&str]) -> (Output, Duration) {
        let started = Instant::now();
        let out = tokio::time::timeout(BOUND, self.async_command(args).output())
            .await
            .unwrap_or_else(|_| panic!("otto-server {args:?} did not end within {BOUND:?}"))
            .unwrap();
        (out, started.elapsed())
    }

    /// Runs a command with `--json` that must succeed, within [`BOUND`].
    pub async fn bounded_json(&self, args: &[&str]) -> Value {
        let args = with_json(args);
        let (out, _) = self.bounded(&args).await;
        assert!(out.status.success(), "otto-server {args:?}: {}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// [`Server::results`] within [`BOUND`].
    pub async fn bounded_results(&self, args: &[&str]) -> Value {
        let args = with_json(args);
        let (out, _) = self.bounded(&args).await;
        assert!(out.status.success(), "otto-server {args:?}: {}", text(&out));
        results(&out.stdout)
    }

    /// Adds host `name` on 127.0.0.1 in `groups`; returns its server key. Forced: every host
    /// is added at the agent's default port, and [`Server::point`]ed at its own port next.
    pub async fn add(&self, name: &str, groups: &[&str]) -> PublicKey {
        let mut args = vec!["host", "add", name, "127.0.0.1", "--force"];
        for g in groups {
            args.extend(["--group", g]);
        }
        let added = self.bounded_json(&args).await;
        keys::parse_public(added["server_key"].as_str().unwrap()).unwrap()
    }

    /// Points host `name` at `port` with the agent key `key` pinned.
    pub async fn point(&self, name: &str, port: u16, key: &PublicKey) {
        self.bounded_json(&["host", "set", name, "--port", &port.to_string()])
            .await;
        self.bounded_json(&["host", "trust", name, &keys::to_openssh(key)])
            .await;
    }

    /// Adds host `name` in `groups`, starts its agent in `dir/name` (configured with the lines
    /// `config`) trusting the host's server key, and points the host at it with its key pinned
    /// (`host add`, `otto-agent trust`, `host set`, `host trust`).
    pub async fn agent(&self, name: &str, dir: &Path, groups: &[&str], config: &str) -> LocalAgent {
        let server_key = self.add(name, groups).await;
        let agent = LocalAgent::start(&agent_bin(), &dir.join(name), &server_key, config)
            .await
            .unwrap();
        self.point(name, agent.port, &agent.agent_key).await;
        agent
    }

    /// Adds host `name` with a fake agent that misbehaves as `behaviour`.
    pub async fn fake(&self, name: &str, behaviour: Behaviour) -> FakeAgent {
        let server_key = self.add(name, &[]).await;
        let fake = FakeAgent::start(server_key, behaviour).await;
        self.point(name, fake.port, &fake.key).await;
        fake
    }
}

/// `args` and `--json`.
fn with_json<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut args = args.to_vec();
    args.push("--json");
    args
}

/// The results of a `run` or `upload` with `--json` (JSON lines): those of its last line,
/// the summary.
pub fn results(stdout: &[u8]) -> Value {
    let text = String::from_utf8_lossy(stdout);
    let last = text.lines().last().unwrap_or_else(|| panic!("no output"));
    let summary: Value = serde_json::from_str(last).unwrap();
    assert_eq!(summary["type"], "summary", "{text}");
    summary["results"].clone()
}

/// Whether every result of a `--json` action succeeded.
pub fn all_succeeded(results: &Value) -> bool {
    results
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["success"] == true)
}

/// A command's stdout and stderr, as text.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Reads a child's stdout lines until `done` says so (or the child ends); returns them.
pub fn read_until(child: &mut Child, mut done: impl FnMut(&[String]) -> bool) -> Vec<String> {
    let stdout = child.stdout.take().unwrap();
    let mut lines = Vec::new();
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 {
        lines.push(std::mem::take(&mut line).trim_end().to_string());
        if done(&lines) {
            break;
        }
    }
    // Keep draining in the background so the child never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    lines
}

/// Sends SIGINT to `child` (a CLI started with its stderr piped) and waits for it to end, within
/// [`BOUND`] (a hang guard, not a speed assertion): its exit status and its stderr.
pub async fn interrupt(mut child: Child) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    tokio::time::timeout(
        BOUND,
        tokio::task::spawn_blocking(move || {
            let status = child.wait().unwrap();
            let mut stderr = String::new();
            if let Some(mut err) = child.stderr.take() {
                err.read_to_string(&mut stderr).unwrap();
            }
            (status, stderr)
        }),
    )
    .await
    .expect("the command did not end after SIGINT")
    .unwrap()
}
