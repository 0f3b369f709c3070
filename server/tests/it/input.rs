//! What reaches the server is input: host names from the operator (they name key files), and
//! facts, messages and output from agents (they reach the operator's terminal). The real
//! `otto-server` binary with a real SQLite file, real `otto-agent` processes on loopback, and
//! for facts no real agent would send, a hostile agent: a real russh server in this test.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use otto_proto::{
    ActionResult, GeneralFailure, HeartbeatResponse, HostFacts, MAX_BODY_LEN, Message, Outcome,
};
use otto_server::keys;
use russh::server::{Auth, ChannelOpenHandle, Msg, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId};
use serde_json::Value;

use crate::harness::{Server, text};

/// Everything in a directory tree, as paths relative to it.
fn tree(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            found.push(path.strip_prefix(dir).unwrap().display().to_string());
            if path.is_dir() {
                todo.push(path);
            }
        }
    }
    found.sort();
    found
}

#[test]
fn host_names_outside_the_safe_set_are_refused_and_touch_no_file() {
    let top = tempfile::tempdir().unwrap();
    let data = top.path().join("data");
    // Where `keys/<name>.key` of `../../x` and `../x` would have landed (an older version
    // kept server keys there).
    let outside = top.path().join("x.key");
    let inside = data.join("x.key");
    let server = Server::at(&data);
    server.ok(&["host", "list"]);
    std::fs::write(&outside, "precious").unwrap();
    std::fs::write(&inside, "precious too").unwrap();
    let long = "x".repeat(64);
    for name in [
        "../../x",
        "../x",
        "a/b",
        "",
        "a\nb",
        "a\u{1b}[31mb",
        ".hidden",
        "-x",
        &long,
    ] {
        let out = server.output(&["host", "add", "--", name, "127.0.0.1"]);
        assert_eq!(out.status.code(), Some(2), "{name:?}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("not a valid host name"),
            "{name:?}: {stderr}"
        );
        assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
    }
    // Everywhere a host is named.
    for args in [
        &["host", "remove", "../../x"][..],
        &["host", "key", "../../x"],
        &["host", "show", "a/b"],
        &["ping", "--host", "../../x"],
        &["run", "--host", "../x", "--command", "true"],
        &["env", "set", "V", "1", "--host", "../x"],
        &["group", "add-host", "g", "../x"],
    ] {
        let out = server.output(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("not a valid host name"),
            "{}",
            text(&out)
        );
    }
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "precious");
    assert_eq!(std::fs::read_to_string(&inside).unwrap(), "precious too");
    let mut files = tree(top.path());
    files.retain(|f| !f.starts_with("data/otto.db"));
    assert_eq!(files, ["data", "data/x.key", "x.key"]);
    assert_eq!(server.json(&["host", "list"]), Value::Array(vec![]));
    // The rule's edges are accepted.
    let longest = "r".repeat(63);
    for (i, name) in ["r1", "ap-2.lab", "_x", &longest].iter().enumerate() {
        server.ok(&["host", "add", name, &format!("127.0.0.{}", i + 1)]);
        assert!(server.server_keys().contains(&format!("{name}/current")));
    }
}

#[test]
fn a_stored_host_name_that_breaks_the_rule_never_becomes_a_path() {
    let top = tempfile::tempdir().unwrap();
    let data = top.path().join("data");
    let server = Server::at(&data);
    server.ok(&["host", "list"]);
    // A database from before the rule: names written directly.
    let db = rusqlite::Connection::open(data.join("otto.db")).unwrap();
    for name in ["../../x", "evil\u{1b}]0;owned\u{7}"] {
        db.execute(
            "INSERT INTO hosts (name, address, port, pin_first) VALUES (?1, '127.0.0.1', 9, 1)",
            [name],
        )
        .unwrap();
    }
    drop(db);
    let outside = top.path().join("x.key");
    std::fs::write(&outside, "precious").unwrap();

    for args in [
        &["ping"][..],
        &["rotate-keys", "--all"],
        &["run", "--all", "-c", "true"],
    ] {
        let out = server.output(args);
        // No host could be connected to.
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", text(&out));
        let shown = text(&out);
        assert_eq!(
            shown.matches("not a valid host name").count(),
            2,
            "{args:?}: each bad host is refused clearly: {shown}"
        );
        assert!(!shown.contains('\u{1b}'), "{shown:?}");
    }
    let listed = server.ok(&["host", "list"]);
    assert!(listed.contains("evil\\u{1b}]0;owned\\u{7}"), "{listed}");
    assert!(!listed.contains('\u{1b}'), "{listed:?}");

    // Such a host can be removed: its row goes, no file is touched.
    let removed = server.ok(&["host", "remove", "../../x"]);
    assert!(removed.contains("no key file was touched"), "{removed}");
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "precious");
    let left = server.json(&["host", "list"]);
    assert_eq!(left.as_array().unwrap().len(), 1, "{left:#}");
}

/// Waits for child `pid` (killing it after `limit`: a hang fails instead of blocking the
/// tests); returns whether it exited 0 and its peak resident memory in KiB.
///
/// The peak is the kernel's high-water mark of the child's own memory since its `exec`
/// (`VmHWM` in /proc/PID/status), read every 10 ms while it runs: a high-water mark only
/// grows, so the last reading holds every peak before it. (wait4's `ru_maxrss` would not do: it
/// also counts the memory the child was forked from, this whole test process with whatever the
/// tests running beside it hold at that moment.)
fn wait_measured(pid: u32, limit: Duration) -> (bool, i64) {
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            let step = Duration::from_millis(10);
            let (mut waited, mut peak) = (Duration::ZERO, 0);
            while waited < limit {
                if done.load(Ordering::SeqCst) {
                    return peak;
                }
                peak = peak.max(high_water_kib(pid).unwrap_or(0));
                std::thread::sleep(step);
                waited += step;
            }
            // SAFETY: kill(2) on our own child, not yet reaped (the flag is set only after).
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            peak
        })
    };
    let mut status = 0;
    // SAFETY: waiting for our own child, with a valid pointer to a local.
    let waited = unsafe { libc::waitpid(pid as i32, &mut status, 0) };
    done.store(true, Ordering::SeqCst);
    let peak = watchdog.join().unwrap();
    assert_eq!(waited, pid as i32, "{}", std::io::Error::last_os_error());
    assert!(peak > 0, "the child's memory was never read");
    (
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        peak,
    )
}

/// `VmHWM` of a running process, in KiB: None once it has exited.
fn high_water_kib(pid: u32) -> Option<i64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    line.trim().trim_end_matches("kB").trim().parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_megabytes_in_one_line_take_linear_time_and_bounded_memory() {
    const SIZE: usize = 20_000_000;
    const CAP: usize = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::at(&data);
    let _agent = server
        .agent("r1", dir.path(), &[], "script_timeout = 0")
        .await;
    let printed = dir.path().join("printed");
    let mut run = server.command(&[
        "run",
        "--host",
        "r1",
        "--output-cap",
        &CAP.to_string(),
        "--command",
        &format!("head -c {SIZE} /dev/zero | tr '\\0' a; echo; echo end"),
    ]);
    run.stdout(std::fs::File::create(&printed).unwrap())
        .stderr(Stdio::null());
    let child = run.spawn().unwrap();
    // Before, this took minutes in a debug build (every chunk re-scanned the whole partial
    // line); now seconds. The limit only turns a hang into a failure.
    let pid = child.id();
    let (ok, peak_kib) =
        tokio::task::spawn_blocking(move || wait_measured(pid, Duration::from_secs(300)))
            .await
            .unwrap();
    drop(child);
    assert!(ok, "the run failed or was killed after 300 s");

    // Memory: the whole line is never held. This debug build peaks at about 52 MiB here
    // (mostly its code and start-up: `host list` alone peaks at 37 MiB, which grew with the
    // HTTP API's libraries, then the schedules', enrollment's, and the files' and templates';
    // then the 1 MB kept for the history, a 64 KiB piece, buffers); holding the line even
    // once would add 19 MiB, over the bound. Before, the server held it several times over:
    // 77 MiB when the rest took 39.
    println!("peak RSS of `otto-server run`: {peak_kib} KiB");
    assert!(peak_kib < 62 * 1024, "peak RSS {peak_kib} KiB");

    // What was printed: the line in pieces of at most 64 KiB, every byte of it, then `end`.
    let printed = std::fs::read_to_string(&printed).unwrap();
    let lines: Vec<&str> = printed.lines().filter(|l| l.starts_with("r1 ")).collect();
    let pieces: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("r1 | "))
        .filter(|l| l.starts_with('a'))
        .collect();
    assert_eq!(pieces.len(), SIZE.div_ceil(64 * 1024), "{}", lines.len());
    assert!(pieces.iter().all(|p| p.len() <= 64 * 1024));
    assert_eq!(pieces.iter().map(|p| p.len()).sum::<usize>(), SIZE);
    assert!(pieces.iter().all(|p| p.bytes().all(|b| b == b'a')));
    assert!(lines.contains(&"r1 | end"), "{:?}", lines.last());

    // The history keeps the cap's worth, exactly as it came.
    let runs = server.json(&["history"]);
    let id = runs[0]["id"].to_string();
    let run = server.json(&["history", "--run", &id]);
    assert_eq!(run["success"], true, "{}", run["outcome"]);
    assert_eq!(run["truncated"], true);
    let kept = run["stdout"].as_str().unwrap();
    assert_eq!(kept.len(), CAP);
    assert!(kept.bytes().all(|b| b == b'a'));
}

/// Every byte that must not reach a terminal: C0 controls but newline, DEL, C1 controls and
/// bidirectional overrides.
fn unsafe_chars(shown: &str) -> Vec<char> {
    shown
        .chars()
        .filter(|&c| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_output_reaches_the_terminal_escaped_and_json_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::at(&data);
    let _agent = server.agent("r1", dir.path(), &[], "").await;
    // ESC sequences (colour, window title, clear screen), BEL, CR, a C1 CSI, tab kept.
    let script = r"printf 'red \033[31mX\033[0m title \033]0;pwned\007 cr \r c1 \302\233 tab\tend\n'; printf 'err \033[2J\n' >&2";
    let out = server.output(&["run", "--host", "r1", "--command", script]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        unsafe_chars(&stdout.replace('\t', "")),
        Vec::<char>::new(),
        "{stdout:?}"
    );
    assert!(
        stdout.contains(
            "r1 | red \\u{1b}[31mX\\u{1b}[0m title \\u{1b}]0;pwned\\u{7} cr \\u{d} c1 \\u{9b} tab\tend"
        ),
        "{stdout:?}"
    );
    assert!(stdout.contains("r1 ! err \\u{1b}[2J"), "{stdout:?}");
    let detail = server.ok(&["history", "--run", "1"]);
    assert_eq!(
        unsafe_chars(&detail.replace('\t', "")),
        Vec::<char>::new(),
        "{detail:?}"
    );
    assert!(detail.contains("\\u{1b}]0;pwned"), "{detail}");
    // JSON has the text itself (JSON-escaped, so just as safe).
    let run = server.json(&["history", "--run", "1"]);
    assert!(
        run["stdout"]
            .as_str()
            .unwrap()
            .contains("\u{1b}]0;pwned\u{7}"),
        "{run:#}"
    );
}

/// A hostile string: window title, clear screen, CR LF, a C1 CSI and a right-to-left override.
const HOSTILE: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2J\r\nFAKE \u{9b}31m\u{202e}gnp.exe";

/// An SSH server speaking the Otto protocol badly: every fact in its heartbeats, its version and
/// every error it reports is [`HOSTILE`], and its host name is 10,000 characters long.
struct HostileAgent {
    channels: Vec<Channel<Msg>>,
}

impl HostileAgent {
    fn answer(request: &[u8]) -> Vec<u8> {
        let hostname = format!("{}{HOSTILE}", "h".repeat(10_000));
        let facts = HostFacts {
            hostname: &hostname,
            kernel_name: HOSTILE,
            kernel_version: HOSTILE,
            arch: HOSTILE,
            distribution_name: HOSTILE,
            distribution_version: HOSTILE,
            uptime_secs: 1,
            load_centi: [0; 3],
            mem_total_kib: 1,
            mem_available_kib: 1,
            model: HOSTILE,
            big_endian: false,
            flash_total_kib: 1,
            flash_free_kib: 1,
        };
        let answer = match otto_proto::decode_frame(request, MAX_BODY_LEN) {
            Ok((Message::HeartbeatRequest(r), _)) => {
                Message::HeartbeatResponse(HeartbeatResponse {
                    agent_version: HOSTILE,
                    nonce: r.nonce,
                    facts,
                })
            }
            Ok((Message::RunScript(r), _)) => Message::ActionResult(ActionResult {
                action: r.action,
                outcome: Outcome::Failed { error: HOSTILE },
                elapsed_ms: 0,
                stdout_len: 0,
                stderr_len: 0,
            }),
            _ => Message::GeneralFailure(GeneralFailure { message: HOSTILE }),
        };
        let mut buf = vec![0u8; otto_proto::HEADER_LEN + MAX_BODY_LEN];
        let n = otto_proto::encode(&answer, &mut buf).unwrap();
        buf.truncate(n);
        buf
    }
}

impl russh::server::Handler for HostileAgent {
    type Error = russh::Error;

    async fn auth_publickey(
        &mut self,
        _user: &str,
        _key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(Auth::Accept)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        self.channels.push(channel);
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        id: ChannelId,
        _name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(id)
    }

    async fn data(
        &mut self,
        id: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Each request of the server's fits in one SSH packet.
        session.data(id, Self::answer(data))
    }
}

/// Starts a [`HostileAgent`] on loopback; returns its port. It serves until the test ends.
async fn hostile_agent() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = Arc::new(russh::server::Config {
        keys: vec![keys::generate().unwrap()],
        inactivity_timeout: Some(Duration::from_secs(60)),
        ..Default::default()
    });
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = HostileAgent {
                channels: Vec::new(),
            };
            let config = config.clone();
            tokio::spawn(async move {
                if let Ok(running) = russh::server::run_stream(config, stream, handler).await {
                    let _ = running.await;
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facts_and_messages_from_a_hostile_agent_are_escaped_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::at(dir.path());
    let port = hostile_agent().await.to_string();
    let add = ["host", "add", "evil", "127.0.0.1", "--port", &port];
    server.ok(&[&add[..], &["--pin-on-first-contact"]].concat());

    let pinged = server.output(&["ping"]);
    assert!(pinged.status.success(), "{}", text(&pinged));
    let mut shown = text(&pinged);
    for args in [
        &["host", "show", "evil"][..],
        &["host", "list"],
        &["run", "--all", "--command", "true"],
        &["reload", "--all"],
        &["history"],
        &["history", "--run", "1"],
        &["events"],
    ] {
        let out = server.output(args);
        shown.push_str(&text(&out));
    }
    assert_eq!(unsafe_chars(&shown), Vec::<char>::new(), "{shown}");
    // Escaped visibly, not dropped: ping's table, the run's outcome, the reload's error.
    let escaped = "\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\u{d}\\u{a}FAKE \\u{9b}31m\\u{202e}gnp.exe";
    assert!(shown.matches(escaped).count() >= 4, "{shown}");
    assert!(shown.contains(&format!("failed: {escaped}")), "{shown}");
    assert!(
        shown.contains(&format!("the agent reported: {escaped}")),
        "{shown}"
    );

    // Stored bounded: 256 characters at most per fact, escaped.
    let host = server.json(&["host", "show", "evil"]);
    let facts = &host["status"]["facts"];
    let hostname = facts["hostname"].as_str().unwrap();
    assert_eq!(hostname.chars().count(), 256, "{hostname}");
    assert!(hostname.starts_with("hhhh") && hostname.ends_with('…'));
    assert_eq!(facts["arch"], escaped);
    assert_eq!(host["status"]["agent_version"], escaped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_across_the_cut_of_a_long_line_is_still_redacted() {
    const SECRET: &str = "pa55-w0rd-XYZZY";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::at(&data);
    let _agent = server.agent("r1", dir.path(), &[], "").await;
    server.ok(&["env", "set", "TOKEN", SECRET, "--secret"]);
    // The secret starts 6 bytes before the 64 KiB cut, in lines of several lengths around it,
    // arriving in whatever chunks the agent reads.
    let out = server.output(&[
        "run",
        "--host",
        "r1",
        "--command",
        "for n in 65530 65525 65536 131066; do head -c $n /dev/zero | tr '\\0' a; echo \"$TOKEN\"; done",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let mut shown = text(&out);
    shown.push_str(&server.ok(&["history", "--run", "1"]));
    shown.push_str(&server.ok(&["history", "--run", "1", "--json"]));
    assert!(!shown.contains("XYZZY"), "a piece of the secret was shown");
    assert!(!shown.contains("pa55"), "a piece of the secret was shown");
    let run = server.json(&["history", "--run", "1"]);
    assert_eq!(
        run["stdout"].as_str().unwrap().matches("********").count(),
        4
    );
}
