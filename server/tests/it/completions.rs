//! Shell completions and man pages, from `otto-server completions` and `otto-server man`, for
//! the server and (`--agent`) for the agent, whose description must match `otto-agent --help`.

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use clap::CommandFactory;
use otto_server::cli::{Cli, agent_command};

use crate::callhome::free_port;
use crate::harness::{Server, agent_bin, text};
use crate::http::{Daemon, key_of};
use crate::remote::empty;
use crate::users::add_user;

/// The names of the server's subcommands, from its clap definitions.
fn subcommands() -> Vec<String> {
    let names: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    assert!(names.len() > 15, "{names:?}");
    names
}

/// Whether `program` is installed (runs with `--version`).
fn installed(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok()
}

/// Checks `script` with `shell -n` (parse only), when that shell is installed.
fn parses(shell: &str, script: &str) {
    if !installed(shell) {
        println!("{shell} is not installed: its completion script is not parsed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("completion");
    std::fs::write(&path, script).unwrap();
    let out = Command::new(shell).arg("-n").arg(&path).output().unwrap();
    assert!(out.status.success(), "{shell} -n: {}", text(&out));
}

/// What bash completes for the command line `words` (the last being the word under the
/// cursor), with `server`'s registration script sourced and its otto-server first on the PATH,
/// in `env`: bash's own completion function, run as bash runs it.
fn bash_completes(server: &Server, words: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_otto-server"));
    let path = format!(
        "{}:{}",
        exe.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let script = format!(
        "source <(otto-server completions bash)\n\
         COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_TYPE=9\n\
         _clap_complete_otto_server otto-server {current} {previous}\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        words = quoted.join(" "),
        cword = words.len() - 1,
        current = quoted.last().unwrap(),
        previous = quoted
            .get(words.len().wrapping_sub(2))
            .cloned()
            .unwrap_or_default(),
    );
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(script)
        .env("PATH", path)
        .env("OTTO_DATA_DIR", server.data())
        .env("OTTO_CONFIG", "/dev/null")
        .env_remove("OTTO_SERVER")
        .env_remove("OTTO_DATABASE_URL")
        .env_remove("OTTO_API_KEY")
        .env_remove("OTTO_API_KEY_FILE")
        .env_remove("OTTO_CA_CERT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn completions_are_registered_for_each_shell_and_name_every_subcommand() {
    let server = Server::new();
    let bash = server.ok(&["completions", "bash"]);
    assert!(bash.contains("COMPLETE=\"bash\""), "{bash}");
    assert!(
        bash.contains("-F _clap_complete_otto_server otto-server"),
        "{bash}"
    );
    parses("bash", &bash);
    let completed = bash_completes(&server, &["otto-server", ""], &[]);
    for name in subcommands() {
        assert!(
            completed.contains(&name),
            "{name} is not completed: {completed:?}"
        );
    }
    // A subcommand's own options too.
    let serve = bash_completes(&server, &["otto-server", "serve", "--heart"], &[]);
    assert_eq!(serve, ["--heartbeat-interval"]);
    for shell in ["zsh", "fish"] {
        let script = server.ok(&["completions", shell]);
        assert!(
            script.contains(&format!("COMPLETE={shell}"))
                || script.contains(&format!("COMPLETE=\"{shell}\"")),
            "{shell}: {script}"
        );
        if shell == "zsh" {
            parses(shell, &script);
        }
    }
    let out = server.output(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn host_group_script_and_fact_names_are_completed_where_they_are_taken() {
    let server = Server::new();
    server.add("r1", &["lab"]).await;
    server.add("r2", &["lab"]).await;
    server.add("core", &["backbone"]).await;
    server.ok(&["script", "add", "hello", "--body", "echo hi"]);
    // The names completed (an empty word is offered the options too).
    let completes = |words: &[&str]| {
        let mut all = bash_completes(&server, words, &[]);
        all.retain(|w| !w.starts_with('-'));
        all
    };
    assert_eq!(completes(&["otto-server", "run", "-H", "r"]), ["r1", "r2"]);
    assert_eq!(
        completes(&["otto-server", "run", "--host", "r1,"]),
        ["r1,core", "r1,r1", "r1,r2"]
    );
    assert_eq!(
        completes(&["otto-server", "ping", "--exclude", "c"]),
        ["core"]
    );
    assert_eq!(completes(&["otto-server", "upload", "-g", "l"]), ["lab"]);
    assert_eq!(
        completes(&["otto-server", "host", "show", ""]),
        ["core", "r1", "r2"]
    );
    assert_eq!(
        completes(&["otto-server", "group", "remove", "b"]),
        ["backbone"]
    );
    assert_eq!(
        completes(&["otto-server", "group", "add-host", "lab", "c"]),
        ["core"]
    );
    assert_eq!(
        completes(&["otto-server", "run", "--script", "h"]),
        ["hello"]
    );
    assert_eq!(
        completes(&["otto-server", "history", "--host", "co"]),
        ["core"]
    );
    assert_eq!(
        completes(&["otto-server", "run", "--where", "flash"]),
        ["flash_total", "flash_free"]
    );
    // A data directory typed on the line is the one read; one without a database completes
    // nothing and is not made.
    let other = tempfile::tempdir().unwrap();
    let missing = other.path().join("none");
    let typed = [
        "otto-server",
        "--data-dir",
        missing.to_str().unwrap(),
        "host",
        "show",
        "",
    ];
    assert!(completes(&typed).is_empty());
    assert!(!missing.exists());
    // A PostgreSQL database that cannot be reached completes nothing, the local list unread.
    let refused = format!(
        "postgres://otto@127.0.0.1:{}/otto?sslmode=disable",
        free_port()
    );
    let postgres = [("OTTO_DATABASE_URL", refused.as_str())];
    let mut names = bash_completes(&server, &["otto-server", "host", "show", ""], &postgres);
    names.retain(|w| !w.starts_with('-'));
    assert!(names.is_empty(), "{names:?}");
    // fish asks the same way, and gets a line per name.
    let out = server
        .command(&[])
        .env("COMPLETE", "fish")
        .env("OTTO_DATA_DIR", server.data())
        .args(["--", "otto-server", "run", "-H", "r"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "r1\nr2\n");
}

/// `COMPLETE=fish otto-server -- WORDS…` in `env` (no configuration file, no server or
/// database but those `env` names), as fish runs it: its output (a line per candidate), and
/// how long it took.
fn fish_completes(words: &[&str], env: &[(&str, &str)]) -> (Output, Duration) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_otto-server"));
    cmd.arg("--")
        .args(words)
        .env("COMPLETE", "fish")
        .env("OTTO_CONFIG", "/dev/null");
    for var in [
        "OTTO_SERVER",
        "OTTO_DATABASE_URL",
        "OTTO_API_KEY",
        "OTTO_API_KEY_FILE",
        "OTTO_CA_CERT",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let out = cmd.output().unwrap();
    (out, started.elapsed())
}

/// The candidates of `out` that are not options.
fn names(out: &Output) -> Vec<String> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('-'))
        .map(str::to_owned)
        .collect()
}

/// Well under the harness's bound, and past the completion's own wait (1.5 s) with room for
/// a debug binary's start on a loaded machine: an answer this late would be a hang.
const QUICK: Duration = Duration::from_secs(6);

#[tokio::test(flavor = "multi_thread")]
async fn names_are_completed_through_a_server_with_the_key_and_certificate_of_server_commands() {
    let server = Server::new();
    server.add("r1", &["lab"]).await;
    server.add("r2", &["lab"]).await;
    server.add("core", &["backbone"]).await;
    server.ok(&["script", "add", "hello", "--body", "echo hi"]);
    server.ok(&[
        "schedule",
        "add",
        "nightly",
        "--cron",
        "@daily",
        "--command",
        "true",
        "-H",
        "r1",
    ]);
    add_user(&server, "ann", &[]);
    let key = key_of(&server, "ann");
    let daemon = Daemon::start(&server, &[]);
    let url = daemon.base();
    let cert = server.data().join("http.crt");
    let cert = cert.to_str().unwrap();
    // The client's own data directory is empty: every name is the server's.
    let elsewhere = tempfile::tempdir().unwrap();
    let client = elsewhere.path().to_str().unwrap();
    let env = [
        ("OTTO_DATA_DIR", client),
        ("OTTO_API_KEY", key.as_str()),
        ("OTTO_CA_CERT", cert),
    ];
    let completes = |words: &[&str]| {
        let mut line = vec!["otto-server", "--server", url];
        line.extend(words);
        let mut all = bash_completes(&server, &line, &env);
        all.retain(|w| !w.starts_with('-'));
        all
    };
    assert_eq!(completes(&["run", "-H", "r"]), ["r1", "r2"]);
    assert_eq!(
        completes(&["run", "--host", "r1,"]),
        ["r1,core", "r1,r1", "r1,r2"]
    );
    assert_eq!(completes(&["host", "show", ""]), ["core", "r1", "r2"]);
    assert_eq!(completes(&["upload", "-g", "l"]), ["lab"]);
    assert_eq!(completes(&["group", "remove", ""]), ["backbone", "lab"]);
    assert_eq!(completes(&["run", "--script", "h"]), ["hello"]);
    assert_eq!(completes(&["schedule", "show", ""]), ["nightly"]);
    assert!(
        empty(elsewhere.path()),
        "the client opened its data directory"
    );

    // The server from the environment, the key from the file typed on the line, the
    // certificate typed too.
    let key_file = elsewhere.path().join("key");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    let (out, _) = fish_completes(
        &[
            "otto-server",
            "--api-key-file",
            key_file.to_str().unwrap(),
            "--ca-cert",
            cert,
            "run",
            "-H",
            "c",
        ],
        &[("OTTO_SERVER", url), ("OTTO_DATA_DIR", client)],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "core\n");

    // Without the certificate, or with a key the server refuses, nothing, and not a word of
    // why on either output.
    let refused = [
        vec![("OTTO_API_KEY", key.as_str())],
        vec![("OTTO_API_KEY", "otto_0000"), ("OTTO_CA_CERT", cert)],
        vec![("OTTO_CA_CERT", cert)],
    ];
    for mut env in refused {
        env.extend([("OTTO_SERVER", url), ("OTTO_DATA_DIR", client)]);
        let (out, took) = fish_completes(&["otto-server", "host", "show", "r"], &env);
        assert!(out.status.success(), "{env:?}: {}", text(&out));
        assert!(
            out.stdout.is_empty() && out.stderr.is_empty(),
            "{env:?}: {}",
            text(&out)
        );
        assert!(took < QUICK, "{env:?}: {took:?}");
    }
}

#[test]
fn an_unreachable_or_silent_server_completes_no_names_quickly_and_quietly() {
    let server = Server::new();
    // Nothing listens on one port; on the other, connections are taken into the backlog and
    // never answered (the TLS handshake waits forever).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let urls = [
        format!("https://127.0.0.1:{}", free_port()),
        format!("https://127.0.0.1:{}", silent.local_addr().unwrap().port()),
    ];
    let elsewhere = tempfile::tempdir().unwrap();
    let client = elsewhere.path().to_str().unwrap();
    for url in &urls {
        let env = [
            ("OTTO_SERVER", url.as_str()),
            ("OTTO_API_KEY", "otto_0000"),
            ("OTTO_DATA_DIR", client),
        ];
        let (out, took) = fish_completes(&["otto-server", "run", "-H", ""], &env);
        assert!(out.status.success(), "{url}: {}", text(&out));
        assert!(
            out.stdout.is_empty() && out.stderr.is_empty(),
            "{url}: {}",
            text(&out)
        );
        assert!(took < QUICK, "{url}: {took:?}");
        // Through bash's completion function too; the options are still completed.
        let started = Instant::now();
        let all = bash_completes(&server, &["otto-server", "run", "--h"], &env);
        assert!(all.contains(&"--host".to_string()), "{url}: {all:?}");
        assert!(started.elapsed() < QUICK, "{url}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn names_are_completed_from_postgresql() {
    let Some(url) = crate::postgres::database().await else {
        return;
    };
    let server = Server::on_postgres(&url);
    server.add("r1", &["lab"]).await;
    server.add("r2", &["lab"]).await;
    server.ok(&["script", "add", "hello", "--body", "echo hi"]);
    // The client's data directory has no database: the names are PostgreSQL's.
    let elsewhere = tempfile::tempdir().unwrap();
    let client = elsewhere.path().to_str().unwrap();
    let from_env = [
        ("OTTO_DATABASE_URL", url.as_str()),
        ("OTTO_DATA_DIR", client),
    ];
    let (out, _) = fish_completes(&["otto-server", "run", "-H", "r"], &from_env);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "r1\nr2\n");
    let typed = ["otto-server", "--database", &url, "group", "remove", ""];
    let (out, _) = fish_completes(&typed, &[("OTTO_DATA_DIR", client)]);
    assert_eq!(names(&out), ["lab"], "{}", text(&out));
    let line = ["otto-server", "--database", &url, "run", "--script", ""];
    let mut all = bash_completes(&server, &line, &[("OTTO_DATA_DIR", client)]);
    all.retain(|w| !w.starts_with('-'));
    assert_eq!(all, ["hello"]);
    assert!(
        empty(elsewhere.path()),
        "the client opened its data directory"
    );
}

/// Checks that `page` is a man page in roff: a title, the sections a man page has, only
/// requests of the man macros, and no warning from groff where it is installed.
fn assert_roff(page: &str, title: &str) {
    let th = page.lines().find(|l| l.starts_with(".TH ")).unwrap();
    assert!(th.starts_with(&format!(".TH {title} 1 ")), "{th}");
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION", ".SH OPTIONS"] {
        assert!(page.lines().any(|l| l == section), "no {section}:\n{page}");
    }
    let known = [
        ".TH", ".SH", ".TP", ".IP", ".PP", ".RS", ".RE", ".br", ".ie", ".el", ".sp",
    ];
    for line in page.lines().filter(|l| l.starts_with('.')) {
        let request = line.split_whitespace().next().unwrap();
        assert!(known.contains(&request), "unknown request {line:?}");
    }
    if !installed("groff") {
        println!("groff is not installed: the page is not typeset");
        return;
    }
    let mut groff = Command::new("groff")
        .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    groff
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = groff.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "groff: {}",
        text(&out)
    );
}

#[test]
fn the_man_page_is_roff_naming_every_subcommand_and_the_exit_codes() {
    let server = Server::new();
    let page = server.ok(&["man"]);
    assert_roff(&page, "otto-server");
    let listed = page.split_once(".SH SUBCOMMANDS").unwrap().1;
    for name in subcommands() {
        // roff escapes `-` as `\-`.
        let name = format!("otto\\-server\\-{}", name.replace('-', "\\-"));
        assert!(listed.contains(&name), "{name} missing:\n{listed}");
    }
    assert!(page.contains("Exit codes:"), "{page}");

    // Every page, into a directory: one per command.
    let dir = tempfile::tempdir().unwrap();
    server.ok(&["man", "--dir", dir.path().to_str().unwrap()]);
    for file in [
        "otto-server.1",
        "otto-server-host-add.1",
        "otto-server-rotate-keys.1",
    ] {
        let page = std::fs::read_to_string(dir.path().join(file)).unwrap();
        assert_roff(&page, file.trim_end_matches(".1"));
    }
}

/// `otto-agent --help`'s entries: each command or option and what it says.
fn agent_help() -> BTreeMap<String, String> {
    let out = Command::new(agent_bin()).arg("--help").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.starts_with("usage: otto-agent "), "{help}");
    help.lines()
        .skip(1)
        .map(|line| {
            let (name, rest) = line.trim().split_once(' ').unwrap();
            // An option's value name comes before its description.
            let rest = rest.trim_start().strip_prefix("FILE ").unwrap_or(rest);
            (name.to_owned(), rest.trim().to_owned())
        })
        .collect()
}

#[test]
fn the_agents_pages_say_what_otto_agent_help_says() {
    // The description is `otto-agent --help`, entry for entry.
    let agent = agent_command();
    let mut described: BTreeMap<String, String> = agent
        .get_subcommands()
        .map(|c| (c.get_name().to_owned(), c.get_about().unwrap().to_string()))
        .collect();
    for arg in agent
        .get_arguments()
        .filter(|a| a.get_long() == Some("config"))
    {
        described.insert("--config".into(), arg.get_help().unwrap().to_string());
    }
    assert_eq!(described, agent_help());
    let version = Command::new(agent_bin()).arg("--version").output().unwrap();
    let version = String::from_utf8(version.stdout).unwrap();
    let expected = format!("otto-agent {} ", agent.get_version().unwrap());
    assert!(version.starts_with(&expected), "{version}");

    // The pages made from it.
    let server = Server::new();
    let page = server.ok(&["man", "--agent"]);
    assert_roff(&page, "otto-agent");
    for name in ["run", "pubkey", "trust", "\\-\\-config", "SIGHUP"] {
        assert!(page.contains(name), "{name} missing:\n{page}");
    }
    let bash = server.ok(&["completions", "bash", "--agent"]);
    assert!(bash.contains("-o default otto-agent"), "{bash}");
    for name in ["run", "pubkey", "trust", "--config"] {
        assert!(bash.contains(name), "{name} missing:\n{bash}");
    }
    parses("bash", &bash);
}
