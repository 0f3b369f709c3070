//! Shell completions and man pages, from `otto-server completions` and `otto-server man`, for
//! the server and (`--agent`) for the agent, whose description must match `otto-agent --help`.

use std::collections::BTreeMap;
use std::process::Command;

use clap::CommandFactory;
use otto_server::cli::{Cli, agent_command};

use crate::harness::{Server, agent_bin, text};

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

#[test]
fn completions_name_every_subcommand_and_parse() {
    let server = Server::new();
    let bash = server.ok(&["completions", "bash"]);
    assert!(bash.contains("-o default otto-server"), "{bash}");
    for name in subcommands() {
        assert!(bash.contains(&name), "{name} is not completed");
    }
    // A subcommand's own options too.
    assert!(bash.contains("--heartbeat-interval"));
    parses("bash", &bash);
    for shell in ["zsh", "fish"] {
        let script = server.ok(&["completions", shell]);
        assert!(script.contains("rotate-keys"), "{shell}: {script}");
        assert!(script.contains("data-dir"), "{shell}: {script}");
        if shell == "zsh" {
            parses(shell, &script);
        }
    }
    let out = server.output(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
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
