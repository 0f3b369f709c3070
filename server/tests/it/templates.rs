//! Uploads as templates (`upload --template`): rendered for each real agent with its group's
//! variable, its own secret, its name and its facts; the secret in no output nor event; an
//! error is each host's failure naming the line, nothing written; a second identical upload
//! sends nothing; a dry run renders it and says whether each host has it; and the same
//! through `--server`. A script's attachment as a template: rendered for each host of its runs
//! and of their dry runs.

use std::process::Stdio;

use reqwest::{Method, StatusCode};

use crate::harness::{Server, text};
use crate::http::{Daemon, key_of};
use crate::remote::{client, finish};
use crate::users::add_user;

const TEMPLATE: &str =
    "server {{ ntp_server }}\nkey={{ API_TOKEN }}\nhost={{ host.name }} arch={{ facts.arch }}\n";

/// Each host's secret.
fn secret(host: &str) -> String {
    format!("t0ken-{host}-XYZZY")
}

/// What the template renders to on `host`.
fn expected(host: &str) -> String {
    format!(
        "server ntp.lab.example\nkey={}\nhost={host} arch={}\n",
        secret(host),
        std::env::consts::ARCH
    )
}

/// `env set NAME --group GROUP` with the value on standard input.
fn set_group_var(server: &Server, name: &str, group: &str, value: &str) {
    let mut set = server
        .command(&["env", "set", name, "--group", group])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut set.stdin.take().unwrap(), value.as_bytes()).unwrap();
    assert!(set.wait().unwrap().success());
}

/// Agents r1 and r2 (in `dir`) in the group lab, whose `ntp_server` is set, each with a secret
/// `API_TOKEN` of its own, their facts reported.
async fn lab(server: &Server, dir: &std::path::Path) -> [otto_server::demo::LocalAgent; 2] {
    let agents = [
        server.agent("r1", dir, &["lab"], "").await,
        server.agent("r2", dir, &["lab"], "").await,
    ];
    set_group_var(server, "ntp_server", "lab", "ntp.lab.example");
    for host in ["r1", "r2"] {
        server.set_secret("API_TOKEN", host, &secret(host));
    }
    server.ok(&["ping", "--group", "lab"]);
    agents
}

#[tokio::test(flavor = "multi_thread")]
async fn a_template_gets_its_hosts_group_variable_secret_and_facts_and_never_shows_the_secret() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _agents = lab(&server, dir.path()).await;
    let local = dir.path().join("ntp.conf.j2");
    std::fs::write(&local, TEMPLATE).unwrap();
    let local = local.to_str().unwrap();
    // The agents share this machine: each host's file goes to a path of its own.
    let target = |host: &str| dir.path().join(format!("{host}.conf"));
    let mut said = String::new();
    for host in ["r1", "r2"] {
        let path = target(host);
        let upload = [
            "upload",
            local,
            "--path",
            path.to_str().unwrap(),
            "--host",
            host,
            "--template",
        ];
        // A dry run first: the host's own rendering, which its file is not yet; nothing sent.
        let dry_run = |said: &mut String| {
            let out = server.output(&[&upload[..], &["--dry-run", "--json"]].concat());
            *said += &text(&out);
            assert!(out.status.success(), "{said}");
            let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let rendered = &plan["files"][0]["rendered"][0];
            assert_eq!(rendered["host"], host, "{plan}");
            assert_eq!(rendered["sha256"], sha256_hex(&expected(host)), "{plan}");
            plan["on_hosts"][0]["unchanged"].as_bool().unwrap()
        };
        assert!(!dry_run(&mut said));
        assert!(!path.exists());
        let out = server.output(&upload);
        said += &text(&out);
        assert!(out.status.success(), "{said}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), expected(host));
        assert!(dry_run(&mut said));

        // Again: the host's file already is this rendering; nothing is sent.
        let out = server.output(&upload);
        let again = text(&out);
        assert!(out.status.success(), "{again}");
        assert!(
            again
                .lines()
                .any(|l| l.starts_with(host) && l.contains(" unchanged ")),
            "{again}"
        );
        said += &again;
    }

    // A name not defined on line 2: each host fails naming it, and nothing is written.
    let broken = dir.path().join("broken.j2");
    std::fs::write(&broken, "server {{ ntp_server }}\nkey={{ NO_SUCH }}\n").unwrap();
    let nowhere = dir.path().join("broken.conf");
    let out = server.output(&[
        "upload",
        broken.to_str().unwrap(),
        "--path",
        nowhere.to_str().unwrap(),
        "--group",
        "lab",
        "--template",
        "--json",
    ]);
    said += &text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    let failed = crate::harness::results(&out.stdout);
    let failed = failed.as_array().unwrap();
    assert_eq!(failed.len(), 2, "{said}");
    for result in failed {
        assert_eq!(result["success"], false, "{result}");
        assert!(result["detail"].to_string().contains("line 2"), "{result}");
    }
    assert!(!nowhere.exists());

    // Through a running serve, as a client of its API: the same rendering, unchanged.
    add_user(&server, "ann", &["--run-level", "read-write"]);
    let ann = key_of(&server, "ann");
    let daemon = Daemon::start(&server, &[]);
    let (status, pinged) = daemon
        .call(
            Method::POST,
            "/api/v1/ping",
            Some(&ann),
            &serde_json::json!({"all": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{pinged}");
    let elsewhere = tempfile::tempdir().unwrap();
    let remote = |args: &[&str]| client(elsewhere.path(), &server, daemon.base(), Some(&ann), args);
    let path = target("r1");
    std::fs::remove_file(&path).unwrap();
    let upload = [
        "upload",
        local,
        "--path",
        path.to_str().unwrap(),
        "--host",
        "r1",
        "--template",
    ];
    let out = finish(remote(&upload)).await;
    said += &text(&out);
    assert!(out.status.success(), "{said}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), expected("r1"));
    let out = finish(remote(&upload)).await;
    let again = text(&out);
    assert!(out.status.success(), "{again}");
    assert!(again.contains(" unchanged "), "{again}");
    said += &again;
    // Its dry run through serve renders it there and finds it unchanged.
    let out = finish(remote(&[&upload[..], &["--dry-run", "--json"]].concat())).await;
    said += &text(&out);
    assert!(out.status.success(), "{said}");
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        plan["files"][0]["rendered"][0]["sha256"],
        sha256_hex(&expected("r1"))
    );
    assert_eq!(plan["on_hosts"][0]["unchanged"], true, "{plan}");

    // The secrets appear in no output, nor in any event, local or through the API.
    said += &server.ok(&["events", "--json"]);
    said += &text(&finish(remote(&["events", "--json"])).await);
    assert!(said.contains("uploaded"), "{said}");
    for host in ["r1", "r2"] {
        assert!(!said.contains(&secret(host)), "{said}");
    }
}

/// SHA-256 of `text`, hex.
fn sha256_hex(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_attachment_template_is_rendered_for_each_host_of_a_run_and_its_dry_run() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let _agents = lab(&server, dir.path()).await;
    // The script shows the checksum of the file its run was given (the agents share this
    // machine: one host at a time).
    let conf = dir.path().join("ntp.conf");
    let conf = conf.to_str().unwrap();
    let script = dir.path().join("show.sh");
    std::fs::write(&script, format!("sha256sum {conf}\n")).unwrap();
    server.ok(&["script", "add", "show", "--file", script.to_str().unwrap()]);
    let local = dir.path().join("ntp.conf.j2");
    std::fs::write(&local, TEMPLATE).unwrap();
    let attach = |file: &std::path::Path| {
        server.output(&[
            "attachment",
            "add",
            "show",
            file.to_str().unwrap(),
            "--path",
            conf,
            "--template",
        ])
    };
    let out = attach(&local);
    let mut said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("(a template)"), "{said}");

    // A dry run renders it for each host, sends nothing and runs nothing.
    let out = server.output(&["run", "show", "--group", "lab", "--dry-run", "--json"]);
    said += &text(&out);
    assert!(out.status.success(), "{said}");
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let file = &plan["files"][0];
    assert_eq!(file["template"], true, "{plan}");
    assert_eq!(file["sha256"], sha256_hex(TEMPLATE), "{plan}");
    for (i, host) in ["r1", "r2"].into_iter().enumerate() {
        assert_eq!(file["rendered"][i]["host"], host, "{plan}");
        assert_eq!(file["rendered"][i]["sha256"], sha256_hex(&expected(host)));
    }
    assert!(!std::path::Path::new(conf).exists());
    assert!(server.runs().is_empty());

    // The run: each host gets its own rendering before its script.
    let out = server.output(&["run", "show", "--group", "lab", "--batch", "1"]);
    said += &text(&out);
    assert!(out.status.success(), "{said}");
    for host in ["r1", "r2"] {
        let line = format!("{host} | {}  {conf}", sha256_hex(&expected(host)));
        assert!(said.contains(&line), "{line} in {said}");
    }
    assert_eq!(std::fs::read_to_string(conf).unwrap(), expected("r2"));

    // A text that is not a template is refused when attached; a name not defined fails each
    // host's run, naming the line, and its script does not run.
    let binary = dir.path().join("binary.j2");
    std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
    let out = attach(&binary);
    said += &text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(text(&out).contains("not UTF-8 text"), "{said}");
    let broken = dir.path().join("broken.j2");
    std::fs::write(&broken, "server {{ ntp_server }}\nkey={{ NO_SUCH }}\n").unwrap();
    let out = attach(&broken);
    said += &text(&out);
    assert!(out.status.success(), "{said}");
    std::fs::remove_file(conf).unwrap();
    let out = server.output(&["run", "show", "--group", "lab", "--json"]);
    said += &text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    let results = crate::harness::results(&out.stdout);
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), 2, "{said}");
    for result in results {
        assert_eq!(result["success"], false, "{result}");
        let detail = result["outcome"].to_string();
        assert!(
            detail.contains("attachment") && detail.contains("line 2"),
            "{result}"
        );
    }
    assert!(!std::path::Path::new(conf).exists());

    // Through a running serve: attached as a template, listed as one.
    add_user(
        &server,
        "ann",
        &["--run-level", "read-write", "--permission", "scripts"],
    );
    let ann = key_of(&server, "ann");
    let daemon = Daemon::start(&server, &[]);
    let elsewhere = tempfile::tempdir().unwrap();
    let remote = |args: &[&str]| client(elsewhere.path(), &server, daemon.base(), Some(&ann), args);
    let local = local.to_str().unwrap();
    let out = finish(remote(&[
        "attachment",
        "add",
        "show",
        local,
        "--path",
        conf,
        "--template",
    ]))
    .await;
    said += &text(&out);
    assert!(out.status.success(), "{said}");
    let (status, listed) = daemon
        .call(
            Method::GET,
            "/api/v1/scripts/show",
            Some(&ann),
            &serde_json::Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["attachments"][0]["template"], true, "{listed}");
    assert_eq!(
        listed["attachments"][0]["sha256"],
        sha256_hex(TEMPLATE),
        "{listed}"
    );

    // The secrets appear in no output, nor in any event.
    said += &server.ok(&["events", "--json"]);
    for host in ["r1", "r2"] {
        assert!(!said.contains(&secret(host)), "{said}");
    }
}
