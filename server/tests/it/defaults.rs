//! What `run` assumes when it is not told, and the durations operators write: the real
//! `otto-server` binary with real agents on loopback and a real SQLite file.

use serde_json::Value;

use crate::harness::{Server, all_succeeded, text};

#[tokio::test(flavor = "multi_thread")]
async fn durations_are_written_as_people_write_them_and_zero_only_where_it_means_none() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _a = server.agent("r1", dir.path(), &[], "").await;

    // Human durations for the run's timeout and the global waits; plain seconds still work.
    for (timeout, waits) in [
        ("5m", ["5s", "1m", "2m"]),
        ("1h30m", ["15", "10", "35"]),
        ("0", ["1m30s", "1h", "7d"]),
    ] {
        let args = [
            "run",
            "-H",
            "r1",
            "--command",
            "echo ok",
            "--timeout",
            timeout,
            "--dial-timeout",
            waits[0],
            "--answer-timeout",
            waits[1],
            "--stall-timeout",
            waits[2],
        ];
        let results = server.bounded_results(&args).await;
        assert!(all_succeeded(&results), "{args:?}: {results:#}");
    }
    server
        .bounded_json(&["script", "add", "s", "--body", "true", "--timeout", "10m"])
        .await;
    let shown = server.bounded_json(&["script", "show", "s"]).await;
    assert_eq!(shown["timeout_secs"], 600, "{shown:#}");

    // Zero where a wait has no meaning, and words that are no duration, are bad usage.
    for (args, says) in [
        (
            vec!["serve", "--heartbeat-interval", "0"],
            "--heartbeat-interval",
        ),
        (vec!["ping", "--dial-timeout", "0s"], "--dial-timeout"),
        (vec!["ping", "--answer-timeout", "0"], "--answer-timeout"),
        (vec!["ping", "--stall-timeout", "0m"], "--stall-timeout"),
        (
            vec!["run", "-H", "r1", "--command", "true", "--timeout", "soon"],
            "--timeout",
        ),
    ] {
        let (out, _) = server.bounded(&args).await;
        let said = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {said}");
        assert!(said.contains(says), "{args:?}: {said}");
    }
    let (out, _) = server
        .bounded(&["serve", "--heartbeat-interval", "0"])
        .await;
    assert!(
        text(&out).contains("more than zero"),
        "the refusal says why: {}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_timeout_a_run_gets_the_documented_hour_not_the_agents_config() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    // An agent whose own default would kill any script after one second.
    let _a = server
        .agent("r1", dir.path(), &[], "script_timeout = 1\n")
        .await;

    let results = server
        .bounded_results(&["run", "-H", "r1", "--command", "sleep 2; echo done"])
        .await;
    assert!(all_succeeded(&results), "{results:#}");
    server
        .bounded_json(&["script", "add", "slow", "--body", "sleep 2; echo done"])
        .await;
    let results = server.bounded_results(&["run", "slow", "-H", "r1"]).await;
    assert!(all_succeeded(&results), "{results:#}");
    let runs = server.runs();
    assert!(runs.iter().all(|r| r["stdout"] == "done\n"), "{runs:#?}");

    // A timeout given is still the one that counts.
    let (out, _) = server
        .bounded(&[
            "run",
            "-H",
            "r1",
            "--command",
            "sleep 5",
            "--timeout",
            "1s",
            "--json",
        ])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // For a stored script too, instead of its own (issue 21: it was ignored): the script is
    // stopped at 1 s, before it prints.
    let (out, _) = server
        .bounded(&["run", "slow", "-H", "r1", "--timeout", "1s", "--json"])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let runs = server.runs();
    let last = runs.last().unwrap();
    assert_eq!(last["what"], "slow", "{last:#}");
    assert_eq!(last["outcome"], "timed out", "{last:#}");
    assert_eq!(last["stdout"], "", "{last:#}");
    let help = server.ok(&["run", "--help"]);
    assert!(help.contains("1h"), "run --help says the default:\n{help}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_script_runs_on_its_groups_when_no_host_is_named() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _a = server.agent("r1", dir.path(), &["lab"], "").await;
    let _b = server.agent("r2", dir.path(), &["lab", "edge"], "").await;
    // No agent behind these two: a run that reached either would fail.
    server.add("outside", &[]).await;
    server.add("off", &["lab"]).await;
    server.bounded_json(&["host", "disable", "off"]).await;

    server
        .bounded_json(&[
            "script",
            "add",
            "hello",
            "--body",
            "echo hi-$OTTO_HOST_NAME",
        ])
        .await;
    server
        .bounded_json(&["group", "add-script", "lab", "hello"])
        .await;
    server
        .bounded_json(&["group", "add-script", "edge", "hello"])
        .await;

    let (out, _) = server.bounded(&["run", "hello"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout.contains("r1 | hi-r1"), "{stdout}");
    assert!(stdout.contains("r2 | hi-r2"), "{stdout}");
    let hosts: Vec<Value> = server.runs().iter().map(|r| r["host"].clone()).collect();
    assert_eq!(
        hosts.len(),
        2,
        "each member once, enabled ones only: {hosts:?}"
    );

    // Naming hosts still picks exactly those.
    let results = server.bounded_results(&["run", "hello", "-H", "r2"]).await;
    assert_eq!(results.as_array().unwrap().len(), 1, "{results:#}");

    // A script of no group, with nothing named, still asks for hosts.
    server
        .bounded_json(&["script", "add", "lonely", "--body", "true"])
        .await;
    let (out, _) = server.bounded(&["run", "lonely"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // In the command line's words: its flags.
    let said = "name the hosts: --host HOST, --group GROUP or --all \
                (script lonely is assigned to no group)";
    assert!(text(&out).contains(said), "{}", text(&out));
    let help = server.ok(&["run", "--help"]);
    assert!(help.contains("assigned to"), "run --help says so:\n{help}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_command_is_refused_before_anything_runs() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _a = server.agent("r1", dir.path(), &[], "").await;
    for command in ["", "  \n\t "] {
        let (out, _) = server
            .bounded(&["run", "-H", "r1", "--command", command])
            .await;
        assert_eq!(out.status.code(), Some(2), "{command:?}: {}", text(&out));
        assert!(
            text(&out).contains("the command is empty"),
            "{command:?}: {}",
            text(&out)
        );
    }
    assert!(server.runs().is_empty(), "{:#?}", server.runs());
}
