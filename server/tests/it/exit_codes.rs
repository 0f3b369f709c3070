//! The exit codes of `otto-server`, one kind of failure each (the table in `--help` and
//! docs/server.md), from the real binary.

use std::process::Output;

use otto_server::keys;

use crate::harness::{Server, text};

/// `out`'s exit code, which must be `code`.
fn assert_code(out: &Output, code: i32, what: &str) {
    assert_eq!(out.status.code(), Some(code), "{what}: {}", text(out));
}

/// A loopback port nothing listens on: connecting to it is refused at once.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port().to_string()
}

/// Adds host `name` on a closed port, with some agent key pinned so that it is dialled.
async fn add_unreachable(server: &Server, name: &str) {
    let key = keys::generate().unwrap();
    let (port, key) = (closed_port(), keys::to_openssh(key.public_key()));
    let args = [
        "host",
        "add",
        name,
        "127.0.0.1",
        "--port",
        &port,
        "--agent-key",
        &key,
    ];
    server.bounded_json(&args).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn each_kind_of_failure_has_its_exit_code() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _r1 = server.agent("r1", dir.path(), &[], "").await;

    // 0: success.
    let (out, _) = server.bounded(&["run", "-H", "r1", "-c", "true"]).await;
    assert_code(&out, 0, "a run that worked");
    // 1: some hosts failed, even all of them once they were reached.
    let (out, _) = server.bounded(&["run", "-H", "r1", "-c", "false"]).await;
    assert_code(&out, 1, "a script that failed on the only host");
    add_unreachable(&server, "gone").await;
    let (out, _) = server.bounded(&["ping", "-H", "r1", "-H", "gone"]).await;
    assert_code(&out, 1, "one host reached, one not");
    // 2: bad usage, from clap or from the request.
    let (out, _) = server.bounded(&["run", "--no-such-flag"]).await;
    assert_code(&out, 2, "an unknown flag");
    let (out, _) = server.bounded(&["run", "-c", "true"]).await;
    assert_code(&out, 2, "no host named");
    // 3: no host could be connected to.
    add_unreachable(&server, "gone2").await;
    for args in [
        &["ping", "-H", "gone"][..],
        &["run", "-H", "gone", "-H", "gone2", "-c", "true"],
        &["reload", "-H", "gone"],
    ] {
        let (out, _) = server.bounded(args).await;
        assert_code(&out, 3, &format!("{args:?}: every host unreachable"));
        assert!(
            text(&out).contains("could be connected to"),
            "{}",
            text(&out)
        );
    }
    // 4: a name that does not exist.
    let (out, _) = server.bounded(&["host", "show", "nope"]).await;
    assert_code(&out, 4, "an unknown host");
    let (out, _) = server.bounded(&["run", "nope", "-H", "r1"]).await;
    assert_code(&out, 4, "an unknown script");
    // 5: a clash.
    let (out, _) = server.bounded(&["host", "add", "r1", "127.0.0.1"]).await;
    assert_code(&out, 5, "a host name taken");
    // 7: the server's own failure, here a corrupt row.
    server
        .bounded_json(&["script", "add", "s", "--body", "true"])
        .await;
    rusqlite::Connection::open(server.data().join("otto.db"))
        .unwrap()
        .execute("UPDATE scripts SET after_run = 'bogus'", [])
        .unwrap();
    let (out, _) = server.bounded(&["script", "show", "s"]).await;
    assert_code(&out, 7, "a corrupt script");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unusable_data_directory_exits_6() {
    let top = tempfile::tempdir().unwrap();
    let file = top.path().join("file");
    std::fs::write(&file, "not a directory").unwrap();
    let (out, _) = Server::at(&file.join("data"))
        .bounded(&["host", "list"])
        .await;
    assert_code(&out, 6, "a data directory under a file");
    let (out, _) = Server::at(&file).bounded(&["host", "list"]).await;
    assert_code(&out, 6, "a file as the data directory");
}

#[test]
fn help_lists_the_exit_codes() {
    let help = Server::new().ok(&["--help"]);
    let table = help.split_once("Exit codes:").unwrap().1;
    for line in [
        "0  success",
        "1  some hosts failed",
        "2  bad usage",
        "3  no host could be connected to",
        "4  not found",
        "5  conflict",
        "6  the data directory is unusable",
        "7  internal error",
        "130  interrupted",
    ] {
        assert!(table.contains(line), "{line:?} missing from:\n{help}");
    }
}
