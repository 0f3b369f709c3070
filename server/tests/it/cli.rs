//! The command line as an operator meets it: the real `otto-server` binary's help, and its logs
//! (which crates speak at `-v`/`-vv`, colours on a terminal) while it drives a real agent.

use std::process::Output;

use crate::harness::{BOUND, Server, text};

/// The lines of a help text's section `heading` (up to the next blank line).
fn section<'a>(help: &'a str, heading: &str) -> Vec<&'a str> {
    help.lines()
        .skip_while(|l| *l != heading)
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect()
}

/// Whether one of `lines` documents the option `flag`.
fn lists(lines: &[&str], flag: &str) -> bool {
    lines.iter().any(|l| {
        l.split_whitespace()
            .any(|w| w.trim_end_matches([',', '.']) == flag)
    })
}

#[test]
fn a_subcommands_help_shows_its_own_options_first_and_the_global_ones_apart() {
    let help = Server::new().ok(&["host", "add", "--help"]);
    let own = section(&help, "Options:");
    let global = section(&help, "Global options:");
    for flag in ["--port", "--agent-key", "--group", "--pin-on-first-contact"] {
        assert!(lists(&own, flag), "{flag} not under Options:\n{help}");
        assert!(
            !lists(&global, flag),
            "{flag} under Global options:\n{help}"
        );
    }
    for flag in [
        "--data-dir",
        "--json",
        "--dial-timeout",
        "--dial-limit",
        "--answer-timeout",
        "--stall-timeout",
        "--verbose",
    ] {
        assert!(
            lists(&global, flag),
            "{flag} not under Global options:\n{help}"
        );
        assert!(!lists(&own, flag), "{flag} under Options:\n{help}");
    }
    let at = |heading: &str| help.find(&format!("\n{heading}\n")).unwrap();
    assert!(at("Options:") < at("Global options:"), "{help}");
}

/// `otto-server ARGS` with `RUST_LOG` set to `rust_log` (or unset), within [`BOUND`].
async fn with_rust_log(server: &Server, args: &[&str], rust_log: Option<&str>) -> Output {
    let mut command = server.async_command(args);
    if let Some(filter) = rust_log {
        command.env("RUST_LOG", filter);
    }
    tokio::time::timeout(BOUND, command.output())
        .await
        .unwrap()
        .unwrap()
}

/// Log lines from the crate `target` (its own or one of its modules).
fn from(out: &Output, target: &str) -> usize {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .any(|w| w.trim_end_matches(':') == target || w.starts_with(&format!("{target}::")))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn verbose_logs_are_the_servers_own_unless_rust_log_asks_for_more() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _agent = server.agent("r1", dir.path(), &[], "").await;

    let out = with_rust_log(&server, &["-vv", "ping"], None).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(from(&out, "otto_server") > 0, "{}", text(&out));
    assert_eq!(from(&out, "russh"), 0, "{}", text(&out));

    let out = with_rust_log(&server, &["-vv", "ping"], Some("russh=debug")).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(from(&out, "russh") > 0, "{}", text(&out));
}

/// `otto-server ARGS` on a terminal (a pseudo-terminal from util-linux's `script`), with
/// `NO_COLOR` set to `no_color` (or unset); returns what the terminal showed.
async fn on_a_terminal(server: &Server, args: &[&str], no_color: Option<&str>) -> String {
    on_a_terminal_of(server, "", args, no_color).await
}

/// As [`on_a_terminal`], on a terminal first set up by the shell command `setup`.
async fn on_a_terminal_of(
    server: &Server,
    setup: &str,
    args: &[&str],
    no_color: Option<&str>,
) -> String {
    let mut line = format!(
        "{setup}'{}' --data-dir '{}'",
        env!("CARGO_BIN_EXE_otto-server"),
        server.data().display()
    );
    for arg in args {
        line.push_str(&format!(" '{arg}'"));
    }
    let mut command = tokio::process::Command::new("script");
    command
        .args(["--quiet", "--return", "--command", &line, "/dev/null"])
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some(value) = no_color {
        command.env("NO_COLOR", value);
    }
    let out = tokio::time::timeout(BOUND, command.output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn no_color_makes_the_logs_plain_even_on_a_terminal() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _agent = server.agent("r1", dir.path(), &[], "").await;

    let shown = on_a_terminal(&server, &["-vv", "ping"], None).await;
    assert!(shown.contains("otto_server"), "{shown}");
    assert!(
        shown.contains('\u{1b}'),
        "no colours on a terminal: {shown:?}"
    );

    let shown = on_a_terminal(&server, &["-vv", "ping"], Some("1")).await;
    assert!(shown.contains("otto_server"), "{shown}");
    assert!(!shown.contains('\u{1b}'), "{shown:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_table_wraps_long_cells_within_the_terminal_and_keeps_one_line_per_row_otherwise() {
    let server = Server::new();
    let groups = [
        "a-rather-long-group-name",
        "another-long-group-name",
        "and-a-third-one",
    ];
    server.add("r1", &groups).await;

    let shown = on_a_terminal_of(&server, "stty cols 100; ", &["host", "list"], None).await;
    let lines: Vec<&str> = shown.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines.iter().all(|l| l.trim_end().chars().count() <= 100),
        "{shown}"
    );
    // The short columns keep their width; the long cell continues on the next line.
    assert!(lines.len() > 2, "{shown}");
    assert!(shown.contains("127.0.0.1:"), "{shown}");
    assert!(shown.contains("last seen"), "{shown}");

    let piped = server.ok(&["host", "list"]);
    // A list in a cell is written `a, b` (sorted).
    assert!(
        piped.contains("a-rather-long-group-name, and-a-third-one, another-long-group-name"),
        "{piped}"
    );
    let row: Vec<&str> = piped.lines().filter(|l| l.starts_with("r1")).collect();
    assert_eq!(row.len(), 1, "{piped}");
    assert!(
        groups.iter().all(|g| row.iter().any(|r| r.contains(g))),
        "{piped}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_narrow_terminal_no_name_or_title_is_split() {
    let server = Server::new();
    let groups = [
        "a-rather-long-group-name",
        "another-long-group-name",
        "and-a-third-one",
    ];
    server.add("r1", &groups).await;
    server.add("router-2", &["core"]).await;

    for (args, address) in [
        (&["host", "list"][..], true),
        (&["group", "list"], false),
        (&["events"], true),
    ] {
        let shown = on_a_terminal_of(&server, "stty cols 60; ", args, None).await;
        let words: Vec<&str> = shown
            .split(|c: char| c.is_whitespace() || c == ',')
            .collect();
        for name in groups.iter().chain(&["router-2"]) {
            assert!(words.contains(name), "{name} split by {args:?}: {shown}");
        }
        assert_eq!(
            words.iter().any(|w| w.starts_with("127.0.0.1:")),
            address,
            "{args:?}: {shown}"
        );
    }
    let shown = on_a_terminal_of(&server, "stty cols 60; ", &["host", "list"], None).await;
    let titles = shown.lines().next().unwrap();
    for title in [
        "host",
        "address",
        "enabled",
        "groups",
        "trust",
        "reachable",
        "last seen",
    ] {
        assert!(titles.contains(title), "{title}: {shown}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn times_read_as_how_long_ago_on_a_terminal_and_in_rfc3339_when_piped() {
    let server = Server::new();
    server.ok(&["host", "add", "r1", "127.0.0.1"]);
    // Three hours and five minutes ago, a time no slow test makes read otherwise.
    let then = jiff::Timestamp::now().as_millisecond() - (3 * 60 + 5) * 60 * 1000;
    let db = rusqlite::Connection::open(server.data().join("otto.db")).unwrap();
    db.execute("UPDATE events SET at = ?1", [then]).unwrap();
    db.execute("UPDATE hosts SET last_seen = ?1", [then])
        .unwrap();
    drop(db);

    for args in [&["events"][..], &["host", "list"], &["host", "show", "r1"]] {
        let shown = on_a_terminal_of(&server, "", args, None).await;
        assert!(shown.contains("3 h ago"), "{args:?}: {shown}");
        assert!(!shown.contains("UTC"), "{args:?}: {shown}");
        let piped = server.ok(args);
        assert!(!piped.contains(" ago"), "{args:?}: {piped}");
        // The first time shown, but a host's last rotation (made when it was added).
        let stamp = piped
            .lines()
            .filter(|l| !l.contains("last rotation"))
            .flat_map(str::split_whitespace)
            .find_map(|w| w.parse::<jiff::Timestamp>().ok())
            .unwrap_or_else(|| panic!("no RFC 3339 time in {args:?}: {piped}"));
        assert_eq!(stamp.as_millisecond(), then / 1000 * 1000, "{piped}");
        assert!(piped.contains(&format!("{stamp}")), "{piped}");
    }
    let json = server.ok(&["events", "--json"]);
    assert!(!json.contains(" ago"), "{json}");
}

/// A real agent's heartbeat: `host show` and `host list --wide` show the model, release and
/// flash it reported (this machine may have no model, or no flash size: then the dash), as the
/// heartbeat stored them.
#[tokio::test(flavor = "multi_thread")]
async fn host_show_and_list_show_what_a_real_agent_reported() {
    use otto_server::print::units;
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _agent = server.agent("r1", dir.path(), &[], "").await;
    let (out, _) = server.bounded(&["ping"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let facts = server.json(&["host", "show", "r1"])["status"]["facts"].clone();
    let said = |field: &str| facts[field].as_str().unwrap().to_string();
    let number = |field: &str| facts[field].as_u64().unwrap();
    let or_dash = |text: String| if text.is_empty() { "-".into() } else { text };
    let release = format!(
        "{} {}",
        said("distribution_name"),
        said("distribution_version")
    );
    let release = or_dash(release.trim().to_string());
    let order = if facts["big_endian"] == true {
        "big"
    } else {
        "little"
    };
    assert_eq!(
        order,
        if cfg!(target_endian = "big") {
            "big"
        } else {
            "little"
        }
    );
    let flash = (number("flash_free_kib"), number("flash_total_kib"));
    let shown = server.ok(&["host", "show", "r1"]);
    for line in [
        format!("  model          {}\n", or_dash(said("model"))),
        format!("  release        {release}\n"),
        format!("  architecture   {} ({order}-endian)\n", said("arch")),
        format!("  flash          {}\n", units::flash(flash.0, flash.1)),
    ] {
        assert!(shown.contains(&line), "{line:?} not in\n{shown}");
    }
    let listed = server.ok(&["host", "list", "--wide"]);
    let row = listed.lines().find(|l| l.starts_with("r1 ")).unwrap();
    for cell in [
        or_dash(said("model")),
        release,
        units::flash_short(flash.0, flash.1),
    ] {
        assert!(
            row.contains(&format!("  {cell}")),
            "{cell:?} not in\n{listed}"
        );
    }
    eprintln!(
        "this machine's agent reported model {:?}, flash {} of {} KiB free",
        said("model"),
        flash.0,
        flash.1
    );
}

/// Facts an older server kept, before agents reported their board's model, byte order and
/// flash: the row still shows, with the defaults (no model, no flash size), on the command
/// line and through the API.
#[tokio::test(flavor = "multi_thread")]
async fn facts_an_older_server_kept_still_show() {
    use reqwest::{Method, StatusCode};
    let server = Server::new();
    server.ok(&["host", "add", "r1", "192.0.2.1"]);
    let old = r#"{"hostname":"gw","kernel_name":"Linux","kernel_version":"5.15.167",
        "arch":"mips","distribution_name":"OpenWrt","distribution_version":"23.05.5",
        "uptime_secs":266700,"load_centi":[15,10,5],"mem_total_kib":125000,
        "mem_available_kib":60000}"#;
    let db = rusqlite::Connection::open(server.data().join("otto.db")).unwrap();
    let set = db
        .execute(
            "UPDATE hosts SET reachable = 1, agent_version = '0.1.0', facts = ?1",
            [old],
        )
        .unwrap();
    assert_eq!(set, 1);
    drop(db);

    let shown = server.ok(&["host", "show", "r1"]);
    for line in [
        "  model          -\n",
        "  release        OpenWrt 23.05.5\n",
        "  uptime         3d 2h 5m\n",
        "  load           0.15 0.10 0.05\n",
        "  flash          -\n",
    ] {
        assert!(shown.contains(line), "{line:?} not in\n{shown}");
    }
    let listed = server.ok(&["host", "list", "--wide"]);
    assert!(
        listed.contains("  OpenWrt 23.05.5  3d 2h   0.15  -"),
        "{listed}"
    );
    let facts = &server.json(&["host", "show", "r1"])["status"]["facts"];
    assert_eq!(facts["model"], "", "{facts}");
    assert_eq!(facts["flash_total_kib"], 0, "{facts}");

    crate::users::add_user(&server, "reader", &[]);
    let key = crate::http::key_of(&server, "reader");
    let daemon = crate::http::Daemon::start(&server, &[]);
    let (status, host) = daemon
        .call(
            Method::GET,
            "/api/v1/hosts/r1",
            Some(&key),
            &serde_json::Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{host}");
    let facts = &host["status"]["facts"];
    assert_eq!(facts["distribution_version"], "23.05.5", "{host}");
    assert_eq!(
        (
            &facts["model"],
            &facts["big_endian"],
            &facts["flash_free_kib"]
        ),
        (
            &serde_json::json!(""),
            &serde_json::json!(false),
            &serde_json::json!(0)
        ),
        "{host}"
    );
}

/// The binary allocates with jemalloc, set to two arenas and to give freed pages back within a
/// second (main.rs): what its own statistics, asked for through the environment, say.
#[test]
fn the_binary_allocates_with_jemalloc_giving_pages_back_within_a_second() {
    let out = Server::new()
        .command(&["--version"])
        .env("_RJEM_MALLOC_CONF", "stats_print:true")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stats = String::from_utf8_lossy(&out.stderr);
    for setting in [
        "opt.narenas: 2\n",
        "opt.dirty_decay_ms: 1000 ",
        "opt.muzzy_decay_ms: 0 ",
    ] {
        assert!(stats.contains(setting), "no {setting:?} in:\n{stats}");
    }
}
