//! `otto-server host deploy` against a real dropbear (OpenWrt's SSH server) on loopback.
//!
//! dropbear reads the login user's `~/.ssh/authorized_keys` and has no option for another file,
//! so this test adds a key of its own there for the duration of the test (and removes it after).
//! It therefore runs only when asked: `OTTO_DEPLOY_E2E=1` (`ci/test.sh` sets it), with `dropbear`
//! installed (Debian: dropbear-bin, which `ci/install-toolchain.sh` installs). Otherwise it says
//! why and does nothing, or fails under `OTTO_REQUIRE_TOOLS=1` (CI): [`tool_missing`].

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use otto_server::keys;

use crate::harness::{agent_bin, tool_missing};

/// Removes the line it added to authorized_keys when dropped.
struct AuthorizedKey {
    file: PathBuf,
    line: String,
}

impl Drop for AuthorizedKey {
    fn drop(&mut self) {
        if let Ok(text) = std::fs::read_to_string(&self.file) {
            let kept: String = text
                .lines()
                .filter(|l| *l != self.line)
                .map(|l| format!("{l}\n"))
                .collect();
            let _ = std::fs::write(&self.file, kept);
        }
    }
}

struct Dropbear(Child);

impl Drop for Dropbear {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A program of the dropbear-bin package.
fn dropbear_tool(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/usr/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
}

fn wait_for_port(port: u16) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "nothing listens on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn server(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_otto-server"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn deploy_over_dropbear_makes_a_managed_host() {
    if std::env::var_os("OTTO_DEPLOY_E2E").is_none() {
        return tool_missing(
            "no OTTO_DEPLOY_E2E=1, the consent this test needs",
            "set it to run the test (it adds a key to ~/.ssh/authorized_keys while it runs)",
        );
    }
    let (Some(dropbear), Some(dropbearkey)) =
        (dropbear_tool("dropbear"), dropbear_tool("dropbearkey"))
    else {
        return tool_missing(
            "no dropbear",
            "ci/install-toolchain.sh installs it (Debian: dropbear-bin)",
        );
    };
    let dir = tempfile::tempdir().unwrap();

    // The administrator's SSH key, authorized on the "device".
    let client_key = keys::generate().unwrap();
    let identity = dir.path().join("id_ed25519");
    keys::save(&identity, &client_key).unwrap();
    let home = PathBuf::from(std::env::var_os("HOME").unwrap());
    let ssh_dir = home.join(".ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    let line = format!(
        "{} otto-deploy-test-{}",
        keys::to_openssh(client_key.public_key()),
        std::process::id()
    );
    let _authorized = AuthorizedKey {
        file: ssh_dir.join("authorized_keys"),
        line: line.clone(),
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(ssh_dir.join("authorized_keys"))
        .unwrap();
    writeln!(file, "{line}").unwrap();
    drop(file);

    let host_key = dir.path().join("dropbear_ed25519_host_key");
    let made = Command::new(dropbearkey)
        .args(["-t", "ed25519", "-f"])
        .arg(&host_key)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made));
    let ssh_port = free_port();
    let _dropbear = Dropbear(
        Command::new(dropbear)
            .args(["-F", "-E", "-s", "-p"])
            .arg(format!("127.0.0.1:{ssh_port}"))
            .arg("-r")
            .arg(&host_key)
            .arg("-P")
            .arg(dir.path().join("dropbear.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(ssh_port);

    // The "dist" directory holds this machine's agent under the name of its CPU's build.
    let dist = dir.path().join("dist");
    std::fs::create_dir_all(&dist).unwrap();
    std::fs::copy(
        agent_bin(),
        dist.join("otto-agent-x86_64-unknown-linux-musl"),
    )
    .unwrap();
    let device = dir.path().join("device");
    // An OpenWrt-like device: its list of files a firmware upgrade keeps.
    std::fs::create_dir_all(device.join("etc")).unwrap();
    let stock = "## This file contains files and directories that should\n## be preserved during an upgrade.\n";
    std::fs::write(device.join("etc/sysupgrade.conf"), stock).unwrap();
    let data = dir.path().join("server");
    let agent_port = free_port().to_string();
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let destination = format!("{user}@127.0.0.1");
    let ssh_port = ssh_port.to_string();
    let identity = identity.to_string_lossy().into_owned();
    let dist = dist.to_string_lossy().into_owned();
    let deploy = |name: &str, prefix: &Path, more: &[&str]| {
        let prefix = prefix.to_string_lossy();
        let mut args = vec![
            "host",
            "deploy",
            name,
            &destination,
            "--ssh-port",
            &ssh_port,
            "-i",
            &identity,
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "--dist",
            &dist,
            "--service",
            "none",
            "--prefix",
            &prefix,
        ];
        args.extend_from_slice(more);
        server(&data, &args)
    };
    let out = deploy(
        "router",
        &device,
        &["--agent-port", &agent_port, "--group", "lab"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("x86_64 (little-endian) → otto-agent for x86_64-unknown-linux-musl"),
        "{said}"
    );
    // On the device: the binary, a private configuration trusting the host's server key.
    let conf = std::fs::read_to_string(device.join("etc/otto/agent.conf")).unwrap();
    let shown = server(&data, &["host", "show", "router", "--json"]);
    let host: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let server_key = host["server_key"].as_str().unwrap();
    assert!(conf.contains(server_key), "{conf}");
    assert!(
        conf.contains(&format!("listen = 0.0.0.0:{agent_port}")),
        "{conf}"
    );
    assert!(device.join("usr/local/bin/otto-agent").is_file());
    assert!(!device.join("usr/local/bin/otto-agent.new").exists());
    assert_eq!(host["groups"], serde_json::json!(["lab"]));
    let agent_key = host["trust"]["agent_key"].as_str().unwrap().to_string();
    // Its files are listed for sysupgrade, after the stock lines.
    let kept = [
        "/usr/local/bin/otto-agent",
        "/usr/local/bin/otto-agent.previous",
        "/etc/otto/",
    ];
    let listed = std::fs::read_to_string(device.join("etc/sysupgrade.conf")).unwrap();
    assert!(listed.starts_with(stock), "{listed}");
    for line in kept {
        assert_eq!(listed.lines().filter(|l| *l == line).count(), 1, "{listed}");
    }
    // Its addition is recorded as any other host's, with what was deployed.
    let events = || {
        let out = server(&data, &["events", "--host", "router", "--json"]);
        let events: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["kind"].as_str().unwrap().to_string(),
                    e["detail"].as_str().unwrap().to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    let kinds = events();
    let has = |kinds: &[(String, String)], kind: &str, detail: &str| {
        kinds.iter().any(|(k, d)| k == kind && d == detail)
    };
    assert!(
        has(
            &kinds,
            "host-added",
            &format!(
                "127.0.0.1:{agent_port}, agent key given (deployed: x86_64-unknown-linux-musl)"
            )
        ),
        "{kinds:?}"
    );
    assert!(
        has(&kinds, "group-changed", "router added to lab"),
        "{kinds:?}"
    );

    // It is a managed host now.
    let out = server(
        &data,
        &[
            "run",
            "--group",
            "lab",
            "--command",
            "echo deployed-and-running",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("router | deployed-and-running"));
    // Stop the agent (no service manager restarts it) before it is upgraded.
    let out = server(&data, &["exit-agent", "--host", "router"]);
    assert!(out.status.success(), "{}", text(&out));

    // A device whose agent key is not the pinned one is refused, and nothing changes.
    let key_file = device.join("etc/otto/agent.key");
    let saved = dir.path().join("agent.key.saved");
    std::fs::rename(&key_file, &saved).unwrap();
    let made = Command::new(device.join("usr/local/bin/otto-agent"))
        .arg("--config")
        .arg(device.join("etc/otto/agent.conf"))
        .arg("pubkey")
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made));
    let out = deploy("router", &device, &["--allow-from", "10.0.0.0/8"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("not the pinned"), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(device.join("etc/otto/agent.conf")).unwrap(),
        conf
    );
    assert!(!device.join("usr/local/bin/otto-agent.new").exists());
    assert!(!events().iter().any(|(k, _)| k == "host-redeployed"));
    std::fs::rename(&saved, &key_file).unwrap();

    // Deploying the same name again upgrades it in place: the key and trust are kept, the
    // settings given change, every other line stays.
    let new_port = free_port().to_string();
    let out = deploy(
        "router",
        &device,
        &[
            "--allow-from",
            "127.0.0.0/8,::1",
            "--allow-from",
            "192.0.2.0/24",
            "--agent-port",
            &new_port,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("checked and kept"), "{}", text(&out));
    let upgraded = std::fs::read_to_string(device.join("etc/otto/agent.conf")).unwrap();
    assert_eq!(
        upgraded,
        format!("{conf}allow_from = 127.0.0.0/8, ::1, 192.0.2.0/24\n").replace(
            &format!("listen = 0.0.0.0:{agent_port}\n"),
            &format!("listen = 0.0.0.0:{new_port}\n")
        )
    );
    let shown = server(&data, &["host", "show", "router", "--json"]);
    let host: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(host["trust"]["agent_key"], agent_key.as_str());
    assert_eq!(host["server_key"], server_key);
    assert_eq!(host["port"], new_port.parse::<u16>().unwrap());
    let listed = std::fs::read_to_string(device.join("etc/sysupgrade.conf")).unwrap();
    for line in kept {
        assert_eq!(listed.lines().filter(|l| *l == line).count(), 1, "{listed}");
    }
    let kinds = events();
    assert!(
        has(
            &kinds,
            "host-redeployed",
            &format!(
                "upgraded to x86_64-unknown-linux-musl, {} bytes; set listen = 0.0.0.0:{new_port}, allow_from = 127.0.0.0/8, ::1, 192.0.2.0/24",
                std::fs::metadata(agent_bin()).unwrap().len()
            )
        ),
        "{kinds:?}"
    );
    assert!(
        has(
            &kinds,
            "host-changed",
            &format!("address 127.0.0.1:{new_port}")
        ),
        "{kinds:?}"
    );
    let out = server(
        &data,
        &["run", "--host", "router", "--command", "echo upgraded"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("router | upgraded"));
    let out = server(&data, &["exit-agent", "--host", "router"]);
    assert!(out.status.success(), "{}", text(&out));

    // An agent behind NAT: it calls home and does not listen; the host is marked so.
    let nat = dir.path().join("nat-device");
    let out = deploy(
        "nat-router",
        &nat,
        &["--call-home", "127.0.0.1:1", "--no-listen"],
    );
    let _stop = StopAgent(nat.join("etc/otto/agent.conf"));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("the agent calls home"),
        "{}",
        text(&out)
    );
    let conf = std::fs::read_to_string(nat.join("etc/otto/agent.conf")).unwrap();
    assert!(conf.contains("\nlisten = none\n"), "{conf}");
    assert!(conf.contains("\ncall_home = 127.0.0.1:1\n"), "{conf}");
    let shown = server(&data, &["host", "show", "nat-router", "--json"]);
    let host: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(host["status"]["calls_home"], true, "{host:#}");
    // Upgraded with nothing given, it still calls home: no heartbeat is waited for, its
    // configuration is the same.
    let out = deploy("nat-router", &nat, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("the agent calls home"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_to_string(nat.join("etc/otto/agent.conf")).unwrap(),
        conf
    );
    let shown = server(&data, &["host", "show", "nat-router", "--json"]);
    let host: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(host["status"]["calls_home"], true, "{host:#}");
    // Not listening needs somewhere to call.
    let out = server(
        &data,
        &["host", "deploy", "x", "nobody@192.0.2.1", "--no-listen"],
    );
    assert!(!out.status.success());
}

/// Ends the agents (started by a deploy without a service manager) whose command line names
/// this configuration file, by their process ids.
struct StopAgent(PathBuf);

impl Drop for StopAgent {
    fn drop(&mut self) {
        let conf = self.0.to_string_lossy().into_owned();
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return;
        };
        for entry in procs.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let words: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            if words.contains(&conf.as_bytes()) && words.contains(&&b"run"[..]) {
                let _ = Command::new("kill").arg(pid.to_string()).status();
            }
        }
    }
}

/// The switch for tests that need a tool: without `OTTO_REQUIRE_TOOLS` a test that lacks what it
/// needs (here the deploy test's `OTTO_DEPLOY_E2E=1`) passes and says SKIPPED; with it, the same
/// test fails and names what is missing. Runs this test binary again as a child process.
#[test]
fn a_missing_tool_is_skipped_here_and_a_failure_under_otto_require_tools() {
    let run = |require: bool| {
        let mut test = Command::new(std::env::current_exe().unwrap());
        test.args([
            "deploy::deploy_over_dropbear_makes_a_managed_host",
            "--exact",
            "--nocapture",
        ])
        .env_remove("OTTO_DEPLOY_E2E")
        .env_remove(crate::harness::REQUIRE_TOOLS);
        if require {
            test.env(crate::harness::REQUIRE_TOOLS, "1");
        }
        test.output().unwrap()
    };
    let skipped = run(false);
    assert!(skipped.status.success(), "{}", text(&skipped));
    assert!(
        text(&skipped).contains("SKIPPED: no OTTO_DEPLOY_E2E=1"),
        "{}",
        text(&skipped)
    );
    let failed = run(true);
    assert!(!failed.status.success(), "{}", text(&failed));
    assert!(
        text(&failed).contains("missing: no OTTO_DEPLOY_E2E=1"),
        "{}",
        text(&failed)
    );
}
