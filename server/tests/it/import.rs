//! `host import`: an Ansible INI inventory imported by the real binary into a real SQLite
//! file — a dry run that changes nothing, the import, a second one that changes nothing, and a
//! host moved by a later import to where its real agent listens, then reached.

use std::path::Path;

use otto_server::demo::LocalAgent;
use otto_server::keys;
use serde_json::Value;

use crate::harness::{Server, agent_bin};

/// The hosts (name, address, port), their groups (group, host) and the number of events, as
/// the database holds them.
#[derive(Debug, PartialEq)]
struct State {
    hosts: Vec<(String, String, u16)>,
    groups: Vec<(String, String)>,
    events: i64,
}

fn state(data: &Path) -> State {
    let db = rusqlite::Connection::open(data.join("otto.db")).unwrap();
    let hosts = db
        .prepare("SELECT name, address, port FROM hosts ORDER BY name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let groups = db
        .prepare("SELECT grp, host FROM host_groups ORDER BY 1, 2")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let events = db
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    State {
        hosts,
        groups,
        events,
    }
}

fn changes(imported: &Value) -> Vec<(String, String)> {
    imported["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["host"].as_str().unwrap().to_string(),
                s["change"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

const INVENTORY: &str = "\
# Ansible's inventory of the lab
[routers]
r1 ansible_host=127.0.0.1 ansible_port=22 otto_port=1 uplink=wan
r2 ansible_host=127.0.0.2

[aps]
ap1 ansible_host=127.0.0.3 otto_port=2222
r2

[all:vars]
ansible_user=root
ntp_server=192.0.2.123

[routers:vars]
mtu=1500
";

#[tokio::test(flavor = "multi_thread")]
async fn an_ansible_inventory_is_imported_once() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hosts.ini");
    std::fs::write(&file, INVENTORY).unwrap();
    let file = file.to_str().unwrap();
    server.ok(&["host", "list"]);
    let empty = state(server.data());

    // A dry run shows the plan and changes nothing.
    let dry = server.json(&[
        "host",
        "import",
        file,
        "--dry-run",
        "--pin-on-first-contact",
    ]);
    assert_eq!(
        changes(&dry),
        pairs(&[("r1", "add"), ("r2", "add"), ("ap1", "add")])
    );
    assert_eq!(dry["applied"], false);
    let notes = dry["notes"].to_string();
    assert!(notes.contains("line 3: ansible_port ignored"), "{notes}");
    // Ansible's variables (but its own, ansible_*) are to be set at their level.
    let planned: Vec<_> = dry["variables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| format!("{} {} {}", v["change"], v["scope"], v["name"]))
        .collect();
    assert_eq!(
        planned,
        [
            r#""add" "host r1" "uplink""#,
            r#""add" "global" "ntp_server""#,
            r#""add" "group routers" "mtu""#
        ]
    );
    assert_eq!(state(server.data()), empty);

    // The import: the hosts, their ports (otto_port, else 12444) and groups.
    let done = server.ok(&["host", "import", file, "--pin-on-first-contact"]);
    assert!(done.contains("3 added, 0 updated"), "{done}");
    for line in [
        "set uplink (host r1)",
        "set ntp_server (global)",
        "set mtu (group routers)",
    ] {
        assert!(done.lines().any(|l| l == line), "{line:?} in {done}");
    }
    assert!(done.contains("; 3 variables set, 0 unchanged"), "{done}");
    // Each new host's ready trust line, with its own server key.
    for host in ["r1", "r2", "ap1"] {
        let key = server.ok(&["host", "key", host]);
        let line = format!("  {host:<3}  otto-agent trust '{}'", key.trim());
        assert!(done.lines().any(|l| l == line), "{line:?} in {done}");
    }
    let listed = server.json(&["host", "list"]);
    let hosts: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap().to_string(),
                h["address"].as_str().unwrap().to_string(),
                h["port"].as_u64().unwrap(),
                h["groups"].clone(),
                h["trust"]["pin_on_first_contact"].clone(),
            )
        })
        .collect();
    let yes = Value::Bool(true);
    assert_eq!(
        hosts,
        [
            (
                "ap1".into(),
                "127.0.0.3".into(),
                2222,
                serde_json::json!(["aps"]),
                yes.clone()
            ),
            (
                "r1".into(),
                "127.0.0.1".into(),
                1,
                serde_json::json!(["routers"]),
                yes.clone()
            ),
            (
                "r2".into(),
                "127.0.0.2".into(),
                12444,
                serde_json::json!(["aps", "routers"]),
                yes
            ),
        ]
    );
    let imported = state(server.data());

    // Again: everything unchanged, and nothing is.
    let again = server.json(&["host", "import", file]);
    assert_eq!(
        changes(&again),
        pairs(&[
            ("r1", "unchanged"),
            ("r2", "unchanged"),
            ("ap1", "unchanged")
        ])
    );
    assert_eq!(state(server.data()), imported);

    // r1's agent starts, on a port of its own; the inventory is changed to say so, and
    // imported from standard input: r1 is moved (reported as an update) and reached.
    let key = server.ok(&["host", "key", "r1"]);
    let key = keys::parse_public(key.trim()).unwrap();
    let agent = LocalAgent::start(&agent_bin(), &dir.path().join("r1"), &key, "")
        .await
        .unwrap();
    let moved = INVENTORY.replace("otto_port=1 ", &format!("otto_port={} ", agent.port));
    let mut import = server.command(&["host", "import", "-", "--format", "ini", "--json"]);
    import
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = import.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), moved.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let update: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        changes(&update),
        pairs(&[("r1", "update"), ("r2", "unchanged"), ("ap1", "unchanged")])
    );
    assert_eq!(update["steps"][0]["was"], "127.0.0.1:1");
    let pings = server.bounded_json(&["ping", "--host", "r1"]).await;
    assert_eq!(pings[0]["reachable"], true, "{pings}");
    // Its runs get the inventory's variables of every level.
    let (out, _) = server
        .bounded(&["run", "-H", "r1", "-c", "echo $ntp_server $mtu $uplink"])
        .await;
    assert!(out.status.success(), "{}", crate::harness::text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("r1 | 192.0.2.123 1500 wan"), "{said}");
}

#[test]
fn a_bad_line_imports_nothing() {
    let server = Server::new();
    server.ok(&["host", "list"]);
    let empty = state(server.data());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hosts.csv");
    std::fs::write(&file, "name,address\nr1,10.0.0.1\n../etc,10.0.0.2\n").unwrap();
    let out = server.output(&["host", "import", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(state(server.data()), empty);
    // Without an extension the format must be given.
    let plain = dir.path().join("hosts");
    std::fs::write(&plain, "r1\n").unwrap();
    let out = server.output(&["host", "import", plain.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn every_problem_of_a_file_is_listed_and_nothing_is_imported() {
    let server = Server::new();
    server.ok(&["host", "add", "r0", "192.0.2.1", "-g", "lab"]);
    let before = state(server.data());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hosts.ini");
    let inventory = "\
[routers]
r1 ansible_host=10.0.0.1 otto_port=0
../x ansible_host=10.0.0.2
r3 ansible_host=a/b
R0 ansible_host=10.0.0.9
r5 ansible_host=192.0.2.1
r6 ansible_host=10.0.0.6
[Lab]
r6
[bad/group]
r7 ansible_host=10.0.0.7
r8 ansible_host=10.0.0.8 otto_port=x
";
    std::fs::write(&file, inventory).unwrap();
    for dry in [true, false] {
        let mut args = vec!["host", "import", file.to_str().unwrap()];
        args.extend(dry.then_some("--dry-run"));
        let out = server.output(&args);
        assert_eq!(out.status.code(), Some(2), "{}", crate::harness::text(&out));
        let err = String::from_utf8(out.stderr).unwrap();
        let listed: Vec<&str> = err.lines().skip(1).map(str::trim).collect();
        let expected = [
            ("line 2: ", "otto_port 0 is not a port"),
            ("line 3: ", "`../x` is not a valid host name"),
            ("line 4: ", "r3: `a/b` is not an address"),
            (
                "line 5: ",
                "R0: `R0` differs from the host `r0` only in letter case",
            ),
            (
                "line 6: ",
                "r5: the host `r0` is already at 192.0.2.1:12444",
            ),
            (
                "line 7: ",
                "r6: `Lab` differs from the group `lab` only in letter case",
            ),
            ("line 11: ", "`bad/group` is not a valid group name"),
            ("line 12: ", "otto_port x is not a port"),
            ("line 12: ", "`bad/group` is not a valid group name"),
        ];
        assert_eq!(listed.len(), expected.len(), "{err}");
        for (line, (place, said)) in listed.iter().zip(expected) {
            assert!(
                line.starts_with(place) && line.contains(said),
                "{line} ≠ {place}{said}: {err}"
            );
        }
        assert!(err.contains("nothing was changed"), "{err}");
        assert_eq!(state(server.data()), before);
    }
}
