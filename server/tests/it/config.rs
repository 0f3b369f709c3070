//! The configuration file (`server.toml`): its settings apply where no flag is given, flags and
//! their environment variables win, and a file that cannot be used is refused clearly.

use std::process::{Command, Output};

use crate::harness::text;

/// `otto-server ARGS` with `config` as its configuration file (and nothing else set).
fn with_config(config: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_otto-server"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("OTTO_DATA_DIR")
        .env_remove("OTTO_CONFIG")
        .output()
        .unwrap()
}

/// The hosts `host list --json` shows.
fn hosts(out: &Output) -> Vec<String> {
    assert!(out.status.success(), "{}", text(out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_file_sets_what_no_flag_gives_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let (data, other) = (dir.path().join("data"), dir.path().join("other"));
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\ndial_limit = 4\nanswer_timeout = \"20s\"\n[serve]\nrotate_every = 0\n",
            data.display()
        ),
    )
    .unwrap();
    // The data directory comes from the file.
    let added = with_config(&config, &["host", "add", "r1", "192.0.2.1"]);
    assert!(added.status.success(), "{}", text(&added));
    assert!(data.join("otto.db").exists());
    assert_eq!(
        hosts(&with_config(&config, &["host", "list", "--json"])),
        ["r1"]
    );
    // A flag wins over the file, and so does its environment variable.
    let flag = with_config(
        &config,
        &[
            "--data-dir",
            other.to_str().unwrap(),
            "host",
            "list",
            "--json",
        ],
    );
    assert!(hosts(&flag).is_empty());
    let env = Command::new(env!("CARGO_BIN_EXE_otto-server"))
        .arg("--config")
        .arg(&config)
        .args(["host", "list", "--json"])
        .env("OTTO_DATA_DIR", &other)
        .output()
        .unwrap();
    assert!(hosts(&env).is_empty());
    // OTTO_CONFIG names the file too.
    let named = Command::new(env!("CARGO_BIN_EXE_otto-server"))
        .args(["host", "list", "--json"])
        .env_remove("OTTO_DATA_DIR")
        .env("OTTO_CONFIG", &config)
        .output()
        .unwrap();
    assert_eq!(hosts(&named), ["r1"]);
}

#[test]
fn a_file_that_cannot_be_used_is_refused_naming_the_file_and_setting() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
    let data = dir.path().join("data");
    for (text_of_file, expected) in [
        ("dial_limt = 4\n", "unknown field `dial_limt`"),
        ("answer_timeout = \"0s\"\n", "answer_timeout: "),
        ("dial_timeout = \"soon\"\n", "dial_timeout: "),
        (
            "[serve]\nheartbeat_interval = 0\n",
            "serve.heartbeat_interval: ",
        ),
    ] {
        std::fs::write(&config, text_of_file).unwrap();
        let out = with_config(&config, &["--data-dir", data.to_str().unwrap(), "serve"]);
        assert_eq!(out.status.code(), Some(2), "{text_of_file}: {}", text(&out));
        let said = text(&out);
        assert!(
            said.contains(&format!("configuration file {}: ", config.display()))
                && said.contains(expected),
            "{text_of_file}: {said}"
        );
    }
    // A file named but missing.
    let out = with_config(&dir.path().join("none.toml"), &["host", "list"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("none.toml"), "{}", text(&out));
    // Nothing was made: the refusal came before the data directory was touched.
    assert!(!data.exists());
}
