//! Files between the server and real agents: an upload skips hosts whose file is already as
//! asked (`--force` sends anyway), and `fetch` brings files back, one folder per host.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::harness::{Server, results, text};

/// Bytes the process `pid` has written (`wchar` of /proc/PID/io: files and sockets alike).
fn written(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .unwrap()
        .parse()
        .unwrap()
}

/// Each host's `changed`, in the hosts' order.
fn changed(results: &Value) -> Vec<Value> {
    results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["changed"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_run_twice_sends_nothing_the_second_time_unless_forced() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let mut agents = Vec::new();
    for name in ["r1", "r2", "r3"] {
        agents.push(server.agent(name, dir.path(), &[], "").await);
    }
    let pids: Vec<u32> = agents.iter().map(|a| a.pid().unwrap()).collect();
    let local = dir.path().join("blob");
    let len = 3 << 20;
    let data: Vec<u8> = (0..len).map(|i| (i * 31 % 253) as u8).collect();
    std::fs::write(&local, &data).unwrap();
    // The three agents share this machine, so the one path is each host's file.
    let target = dir.path().join("etc/blob");
    let (local, path) = (local.to_str().unwrap(), target.to_str().unwrap());
    let upload = ["upload", local, "--path", path, "--mode", "640", "--all"];
    let with = |extra: &[&'static str]| [&upload[..], extra].concat();

    // The first host to finish may leave the others nothing to do (the hosts share the file).
    let first = |results: &Value| {
        let changed = changed(results);
        assert!(changed.iter().all(Value::is_boolean), "{results:#}");
        assert!(changed.contains(&Value::Bool(true)), "{results:#}");
    };
    let out = server.output(&with(&["--json"]));
    assert!(out.status.success(), "{}", text(&out));
    first(&results(&out.stdout));
    assert_eq!(std::fs::read(&target).unwrap(), data);
    let inode = std::fs::metadata(&target).unwrap().ino();

    // Again: every host already has it. Each agent writes less than a file body (it writes
    // the body to a temporary file, and its socket, when it receives one).
    let before: Vec<u64> = pids.iter().map(|&p| written(p)).collect();
    let out = server.output(&upload);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    for host in ["r1", "r2", "r3"] {
        assert!(
            said.lines()
                .any(|l| l.starts_with(host) && l.contains(" unchanged ")),
            "{said}"
        );
    }
    assert!(said.contains("0 changed, 3 unchanged, 0 failed"), "{said}");
    let out = server.output(&with(&["--json"]));
    assert!(out.status.success(), "{}", text(&out));
    let summary: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(
        (&summary["changed"], &summary["unchanged"]),
        (&0.into(), &3.into())
    );
    assert_eq!(changed(&summary["results"]), [false, false, false]);
    for (pid, before) in pids.iter().zip(&before) {
        let wrote = written(*pid) - before;
        assert!(wrote < len as u64 / 8, "agent {pid} wrote {wrote} bytes");
    }
    assert_eq!(
        std::fs::metadata(&target).unwrap().ino(),
        inode,
        "not replaced"
    );

    // Another mode is a change.
    let out = server.output(&[
        "upload", local, "--path", path, "--mode", "600", "--all", "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    first(&results(&out.stdout));
    let meta = std::fs::metadata(&target).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o600);
    let inode = meta.ino();

    // Forced, it is sent again: each agent writes at least the body.
    let before: Vec<u64> = pids.iter().map(|&p| written(p)).collect();
    let forced = [
        "upload", local, "--path", path, "--mode", "600", "--all", "--force",
    ];
    let out = server.output(&[&forced[..], &["--json"]].concat());
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(changed(&results(&out.stdout)), [true, true, true]);
    for (pid, before) in pids.iter().zip(&before) {
        let wrote = written(*pid) - before;
        assert!(wrote >= len as u64, "agent {pid} wrote {wrote} bytes");
    }
    assert_ne!(std::fs::metadata(&target).unwrap().ino(), inode, "replaced");
    assert_eq!(std::fs::read(&target).unwrap(), data);
}

/// The files of a folder, sorted.
fn names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fetch_of_a_file_missing_on_one_of_three_hosts_fails_that_host_alone() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let mut agents = Vec::new();
    for name in ["r1", "r2", "r3"] {
        agents.push(server.agent(name, dir.path(), &["lab"], "").await);
    }
    // The agents share this machine; each runs in its own folder, which `/proc/self/cwd` is
    // to it: one path, a file per host. r1 and r2 have theirs (r2's setuid and executable, which
    // its copy does not keep), r3 has none.
    let file = |host: &str| dir.path().join(host).join("current.log");
    let data = |host: &str| -> Vec<u8> {
        let seed = host.len() as u32 + u32::from(host.as_bytes()[1]);
        (0..700_001u32).map(|i| (i * seed % 251) as u8).collect()
    };
    for host in ["r1", "r2"] {
        std::fs::write(file(host), data(host)).unwrap();
    }
    std::fs::set_permissions(file("r1"), PermissionsExt::from_mode(0o640)).unwrap();
    std::fs::set_permissions(file("r2"), PermissionsExt::from_mode(0o4755)).unwrap();
    let path = "/proc/self/cwd/current.log";
    let into = dir.path().join("fetched");
    let into_text = into.to_str().unwrap();

    let out = server.output(&["fetch", path, "-g", "lab", "--into", into_text, "--json"]);
    // One host failed: the exit code of any action with a failed host.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let results: Value = serde_json::from_slice(&out.stdout).unwrap();
    let by_host = |host: &str| {
        results
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["host"] == host)
            .unwrap()
            .clone()
    };
    for host in ["r1", "r2"] {
        let result = by_host(host);
        assert_eq!(result["success"], true, "{results:#}");
        let copy = into.join(host).join("current.log");
        let bytes = std::fs::read(&copy).unwrap();
        assert!(bytes == data(host), "{host}: {} bytes", bytes.len());
        let sha: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let detail = result["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("700001 bytes, sha256 {sha}")),
            "{detail}"
        );
        let mode = std::fs::metadata(&copy).unwrap().mode() & 0o7777;
        let expected = if host == "r2" { 0o644 } else { 0o640 };
        assert_eq!(mode, expected, "{host}: no setuid or execute bit is kept");
        // No temporary file beside it.
        assert_eq!(names(&into.join(host)), ["current.log"], "{host}");
    }
    let r3 = by_host("r3");
    assert_eq!(r3["success"], false, "{results:#}");
    assert_eq!(r3["detail"], format!("no such file: {path}"), "{results:#}");
    // Nothing of r3's: no folder, no temporary file.
    assert_eq!(names(&into), ["r1", "r2"]);
    // Each copy kept is in the event log.
    let logged = server.json(&["events", "--kind", "fetched"]);
    let mut hosts: Vec<&str> = logged
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["host"].as_str().unwrap())
        .collect();
    hosts.sort();
    assert_eq!(hosts, ["r1", "r2"], "{logged:#}");

    // The people's table says the same; a limit below the file's length fails every host
    // that has one, before any byte comes.
    let out = server.output(&[
        "fetch",
        path,
        "-H",
        "r1",
        "--into",
        into_text,
        "--max-bytes",
        "700000",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("current.log is 700001 bytes, over the limit of 700000"),
        "{said}"
    );
    // r1's copy from before is untouched.
    assert!(std::fs::read(into.join("r1/current.log")).unwrap() == data("r1"));
    assert_eq!(names(&into.join("r1")), ["current.log"]);
}
