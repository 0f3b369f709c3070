//! Hosts chosen by their facts (`--where`): from the command line in process and through
//! `serve`, and from the HTTP API; a host whose agent never reported facts is left out, and
//! said so.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{Server, text};
use crate::http::{Daemon, key_of};
use crate::remote::{client, finish};
use crate::users::add_user;

/// `text` as a query string's value.
fn encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn hosts_are_chosen_by_their_facts_and_those_without_facts_are_left_out_and_told() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _a = server.agent("r1", dir.path(), &["lab"], "").await;
    let _b = server.agent("r2", dir.path(), &["lab"], "").await;
    // r3 has no agent: it never reports facts.
    server.add("r3", &["lab"]).await;
    server.ok(&["host", "set", "r3", "--address", "127.0.0.1", "--port", "9"]);
    let (out, _) = server.bounded(&["ping"]).await;
    assert!(!out.status.success(), "r3 cannot answer: {}", text(&out));
    let facts = server.json(&["host", "show", "r1"])["status"]["facts"].clone();
    let arch = facts["arch"].as_str().unwrap().to_string();
    let major = facts["kernel_version"]
        .as_str()
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .to_string();
    let is_arch = format!("arch={arch}");
    let kernel = format!("kernel~^{major}\\.");

    // In process: the two with facts run it, r3 is left out and said so on standard error.
    let run = [
        "run",
        "--where",
        &is_arch,
        "-w",
        &kernel,
        "--command",
        "echo $OTTO_HOST_NAME",
    ];
    let (out, _) = server.bounded(&run).await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("r1 | r1") && stdout.contains("r2 | r2"),
        "{stdout}"
    );
    assert!(!stdout.contains("r3"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let note = "1 host left out: no facts reported yet for the --where selectors: r3";
    assert!(stderr.contains(note), "{stderr}");
    // With names: only those named, narrowed by the facts.
    let (out, _) = server
        .bounded(&[
            "run",
            "-H",
            "r1,r3",
            "--where",
            &is_arch,
            "--command",
            "true",
        ])
        .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 of 1 hosts succeeded"));
    // Nothing matches: refused, naming the host left out; nothing ran.
    let before = server.runs().len();
    let not_arch = format!("arch!={arch}");
    let (out, _) = server
        .bounded(&["run", "--where", &not_arch, "--command", "true"])
        .await;
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no enabled host matches; 1 host left out"),
        "{stderr}"
    );
    assert_eq!(server.runs().len(), before);
    // A selector that does not parse is a usage error before anything is done.
    let out = server.output(&["run", "--where", "cpu=mips", "--command", "true"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no fact is called \"cpu\""),
        "{}",
        text(&out)
    );

    // host list --where: those that match, and a note of r3.
    let out = server.output(&["host", "list", "--where", &is_arch]);
    assert!(out.status.success(), "{}", text(&out));
    let listed = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = listed
        .lines()
        .skip(1)
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert_eq!(names, ["r1", "r2"], "{listed}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(note));

    // The HTTP API: the selection, and the hosts' list filtered.
    add_user(&server, "ann", &["--run-level", "read-write"]);
    let ann = key_of(&server, "ann");
    let daemon = Daemon::start(&server, &[]);
    let (status, selection) = daemon
        .call(
            Method::POST,
            "/api/v1/selection",
            Some(&ann),
            &json!({"groups": ["lab"], "where": [is_arch, kernel]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{selection}");
    assert_eq!(
        selection,
        json!({"hosts": ["r1", "r2"], "left_out": ["r3"]})
    );
    let path = format!(
        "/api/v1/hosts?where={}&where={}",
        encoded(&is_arch),
        encoded(&kernel)
    );
    let (status, page) = daemon
        .call(Method::GET, &path, Some(&ann), &json!(null))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let listed: Vec<&str> = page["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["r1", "r2"], "{page}");
    assert_eq!(page["left_out"], json!(["r3"]));
    let (status, bad) = daemon
        .call(
            Method::GET,
            "/api/v1/hosts?where=arch%3Cmips",
            Some(&ann),
            &json!(null),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    let message = bad["error"]["message"].as_str().unwrap();
    assert!(message.contains("arch is text"), "{bad}");

    // Through serve: the same run, and the same note.
    let elsewhere = tempfile::tempdir().unwrap();
    let cmd = client(elsewhere.path(), &server, daemon.base(), Some(&ann), &run);
    let out = finish(cmd).await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("2 of 2 hosts succeeded"), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(note));
    // An upload through serve chooses by facts too.
    let file = dir.path().join("motd");
    std::fs::write(&file, "hello\n").unwrap();
    let dest = dir.path().join("motd-copy");
    let upload = [
        "upload",
        file.to_str().unwrap(),
        "--path",
        dest.to_str().unwrap(),
        "--where",
        &not_arch,
        "-H",
        "r1",
    ];
    let out = finish(client(
        elsewhere.path(),
        &server,
        daemon.base(),
        Some(&ann),
        &upload,
    ))
    .await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("no enabled host matches"),
        "{}",
        text(&out)
    );
    assert!(!dest.exists());
    let list = ["host", "list", "--where", &is_arch];
    let out = finish(client(
        elsewhere.path(),
        &server,
        daemon.base(),
        Some(&ann),
        &list,
    ))
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("r3"));
    assert!(String::from_utf8_lossy(&out.stderr).contains(note));
}
