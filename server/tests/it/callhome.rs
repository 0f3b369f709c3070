//! Agents that call home (`call_home` in their configuration) to `serve --call-home-listen`:
//! driven over the connection they made, with no address the server can dial (heartbeat,
//! streamed run, upload, cancel); back by themselves after `serve` restarts; an unknown agent
//! key offered enrollment only; a device enrolled through the same door; unauthenticated
//! sockets bounded per source; and an agent in a network namespace of its own behind NAT, which
//! the server cannot dial, enrolled and driven over its outbound connections and back by itself
//! after its link was cut.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use russh::keys::PrivateKey;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::emulated::find_in_path;
use crate::harness::{BOUND, Server, agent_bin, text, tool_missing};
use crate::http::{Daemon, key_of};
use crate::remote::{client, finish};
use crate::users::add_user;
use otto_server::demo::LocalAgent;

/// A loopback port nothing listens on (bound and let go).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A new one-use enrollment token's secret and the server's enrollment fingerprint.
fn enrollment_offer(server: &Server) -> (String, String) {
    let token = server.json(&["enrollment", "token", "add"])["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let fingerprint = server.ok(&["enrollment", "fingerprint"]).trim().to_owned();
    (token, fingerprint)
}

/// A device's agent configuration in `home` (made), listening on `listen` (or `none`) and
/// calling home to `call_home`; no server key yet. Its path.
fn device_config(home: &Path, listen: &str, call_home: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(home.join("tmp")).unwrap();
    let conf = home.join("agent.conf");
    std::fs::write(
        &conf,
        format!(
            "listen = {listen}\ncall_home = {call_home}\nkey = {}\ntemp_dir = {}\n",
            home.join("agent.key").display(),
            home.join("tmp").display()
        ),
    )
    .unwrap();
    conf
}

/// The arguments of `otto-agent enroll` as `name`, with configuration `conf`, at `server`.
fn enroll_args<'a>(
    conf: &'a str,
    server: &'a str,
    fingerprint: &'a str,
    token: &'a str,
    name: &'a str,
) -> [&'a str; 11] {
    [
        "--config",
        conf,
        "enroll",
        "--server",
        server,
        "--fingerprint",
        fingerprint,
        "--token",
        token,
        "--name",
        name,
    ]
}

/// Adds host `name` and starts its agent in `dir/name`, calling home to `port`; the host's
/// address is a port nothing listens on, so a dial cannot reach the agent.
pub async fn calling_agent(server: &Server, dir: &Path, name: &str, port: u16) -> LocalAgent {
    let server_key = server.add(name, &[]).await;
    // A name, which the agent resolves at each call.
    let call_home = format!("call_home = localhost:{port}");
    let agent = LocalAgent::start(&agent_bin(), &dir.join(name), &server_key, &call_home)
        .await
        .unwrap();
    server.point(name, free_port(), &agent.agent_key).await;
    agent
}

/// Pings every host through `daemon` until all answer (the agents call within seconds);
/// fails after the harness's bound.
async fn ping_until_answered(daemon: &Daemon, key: &str) -> Value {
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let (status, answer) = daemon
            .call(
                Method::POST,
                "/api/v1/ping",
                Some(key),
                &json!({"all": true}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let results = answer.as_array().cloned().unwrap_or_default();
        if !results.is_empty() && results.iter().all(|r| r["reachable"] == true) {
            return answer;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not answered within {BOUND:?}: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Drives host r1 through `daemon` (with `ann`'s key), whose agent is reachable only over
/// the connection it made: heartbeat, a streamed run and an upload through the CLI with
/// `--server`, and a run cancelled through the API; `dir` for the files.
pub(crate) async fn drive(server: &Server, daemon: &Daemon, ann: &str, dir: &Path) {
    // Heartbeat: over the agent's own connection (the host's address has nothing).
    let pinged = ping_until_answered(daemon, ann).await;
    assert_eq!(pinged[0]["host"], "r1", "{pinged}");

    // A streamed run and an upload through the CLI with --server.
    let elsewhere = tempfile::tempdir().unwrap();
    let run = [
        "run",
        "-H",
        "r1",
        "--command",
        "echo hi from $OTTO_HOST_NAME",
    ];
    let out = finish(client(
        elsewhere.path(),
        server,
        daemon.base(),
        Some(ann),
        &run,
    ))
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.lines().any(|l| l == "r1 | hi from r1"), "{stdout}");
    let file = dir.join("blob");
    let blob: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &blob).unwrap();
    let target = dir.join("uploaded.bin");
    let up = [
        "upload",
        file.to_str().unwrap(),
        "--path",
        target.to_str().unwrap(),
        "-H",
        "r1",
    ];
    let out = finish(client(
        elsewhere.path(),
        server,
        daemon.base(),
        Some(ann),
        &up,
    ))
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::read(&target).unwrap(), blob);

    // Cancel: a run that has started is cancelled through the API.
    let started = dir.join("started");
    let body = json!({
        "command": format!("touch {}; sleep 600", started.display()),
        "all": true,
    });
    let (status, answer) = daemon
        .call(Method::POST, "/api/v1/runs", Some(ann), &body)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let id = answer["launch"].as_u64().unwrap();
    let deadline = tokio::time::Instant::now() + BOUND;
    while !started.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run never started"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cancel = format!("/api/v1/launches/{id}/cancel");
    let (status, answer) = daemon
        .call(Method::POST, &cancel, Some(ann), &Value::Null)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
    loop {
        let runs = server.runs();
        if let Some(last) = runs.last().filter(|r| !r["outcome"].is_null()) {
            assert_eq!(last["outcome"], "cancelled", "{runs:?}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not cancelled: {runs:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A control request and a key rotation; the agent then calls with its new key and is
    // logged in to with the new server key.
    for args in [["reload", "-H", "r1"], ["rotate-keys", "-H", "r1"]] {
        let cmd = client(elsewhere.path(), server, daemon.base(), Some(ann), &args);
        let out = finish(cmd).await;
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    }
    let events = server.json(&["events", "--host", "r1"]);
    let rotated = events
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "key-rotated");
    assert!(rotated, "{events}");
    ping_until_answered(daemon, ann).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_that_calls_home_is_driven_over_its_connection_and_comes_back_after_a_restart() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let daemon = Daemon::start(&server, &["--call-home-listen", &listen]);
    let _agent = calling_agent(&server, dir.path(), "r1", port).await;
    add_user(
        &server,
        "ann",
        &["--run-level", "read-write", "--permission", "hosts"],
    );
    let ann = key_of(&server, "ann");

    drive(&server, &daemon, &ann, dir.path()).await;

    // The host is known to call home, and says so (kept in the store, with its event).
    let shown = server.json(&["host", "show", "r1"]);
    assert_eq!(shown["status"]["calls_home"], true, "{shown}");
    let listed = server.ok(&["host", "list"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("r1") && l.contains("calls home")),
        "{listed}"
    );
    let events = server.json(&["events", "--host", "r1"]);
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "host-changed"
                && e["detail"].as_str().unwrap().contains("calls home")),
        "{events}"
    );

    // serve restarted on the same port: the agent calls again by itself.
    drop(daemon);
    let daemon = Daemon::start(&server, &["--call-home-listen", &listen]);
    ping_until_answered(&daemon, &ann).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_that_called_home_is_not_dialled_when_its_agent_is_gone() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let daemon = Daemon::start(&server, &["--call-home-listen", &listen]);
    let agent = calling_agent(&server, dir.path(), "r1", port).await;
    add_user(&server, "ann", &[]);
    let ann = key_of(&server, "ann");
    ping_until_answered(&daemon, &ann).await;
    drop(agent);
    // A ping sent before serve saw the connection close fails on it; from then on the host
    // is told not connected, and its pointed address (where nothing listens) is never tried.
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let (status, answer) = daemon
            .call(
                Method::POST,
                "/api/v1/ping",
                Some(&ann),
                &json!({"all": true}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer[0]["reachable"], false, "{answer}");
        let error = answer[0]["error"].as_str().unwrap_or_default();
        assert!(!error.contains("refused"), "dialled: {answer}");
        if error.contains("calls home and is not connected") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still not told not connected after {BOUND:?}: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// An SSH server (the agent's role) with a key no host has pinned, over one connection to the
/// call-home listener; records the fingerprints of the keys the server tried to log in with.
struct Stranger {
    tried: Arc<Mutex<Vec<String>>>,
}

impl Stranger {
    /// Records that the server tried `key`, and refuses it.
    fn refuse(&self, key: &russh::keys::PublicKey) -> russh::server::Auth {
        let fingerprint = key.fingerprint(russh::keys::HashAlg::Sha256).to_string();
        self.tried.lock().unwrap().push(fingerprint);
        russh::server::Auth::reject()
    }
}

impl russh::server::Handler for Stranger {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: russh::server::PublicKeyOffer<'_>,
    ) -> Result<russh::server::Auth, Self::Error> {
        Ok(self.refuse(offer.public_key))
    }

    async fn auth_publickey(
        &mut self,
        _user: &str,
        key: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<russh::server::Auth, Self::Error> {
        Ok(self.refuse(key.public_key))
    }
}

/// An agent whose key no host has pinned is offered enrollment and nothing else: the server
/// logs in with its enrollment key only (never a host's key), and drops the connection once
/// the agent refuses it.
#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_agent_key_is_offered_enrollment_only_and_dropped_when_it_refuses() {
    let server = Server::new();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _daemon = Daemon::start(&server, &["--call-home-listen", &listen]);
    let stream = TcpStream::connect(&listen).await.unwrap();
    let host_key: PrivateKey = otto_server::keys::generate().unwrap();
    let config = Arc::new(russh::server::Config {
        keys: vec![host_key],
        preferred: otto_server::client::preferred(),
        inactivity_timeout: None,
        ..Default::default()
    });
    let tried = Arc::new(Mutex::new(Vec::new()));
    let handler = Stranger {
        tried: tried.clone(),
    };
    // The session ends (the server disconnects) well before the handshake limit.
    let session = async {
        russh::server::run_stream(config, stream, handler)
            .await?
            .await
    };
    let ended = tokio::time::timeout(BOUND, session).await;
    assert!(
        ended.is_ok(),
        "the server kept an unknown agent's connection"
    );
    let enrollment = server.ok(&["enrollment", "fingerprint"]);
    let tried = tried.lock().unwrap().clone();
    assert!(!tried.is_empty(), "the server did not offer enrollment");
    for fingerprint in &tried {
        assert!(
            enrollment.contains(fingerprint.as_str()),
            "the server logged in with {fingerprint}, not its enrollment key ({enrollment})"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unauthenticated_call_home_sockets_from_one_source_are_bounded() {
    let server = Server::new();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _daemon = Daemon::start(&server, &["--call-home-listen", &listen]);
    let per_source = otto_server::serve::callhome::CallLimits::default().per_source;
    // Silent sockets up to the limit: each is answered with the server's SSH version line.
    let mut held = Vec::new();
    for _ in 0..per_source {
        let mut stream = TcpStream::connect(&listen).await.unwrap();
        let mut first = [0u8; 4];
        tokio::time::timeout(BOUND, stream.read_exact(&mut first))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&first, b"SSH-");
        held.push(stream);
    }
    // One more from the same source is closed at once, unread and unanswered.
    let mut over = TcpStream::connect(&listen).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(BOUND, over.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    // Once one of them goes, a newcomer is answered again.
    let mut gone = held.pop().unwrap();
    gone.shutdown().await.unwrap();
    drop(gone);
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let mut stream = TcpStream::connect(&listen).await.unwrap();
        let mut first = [0u8; 4];
        let read = tokio::time::timeout(BOUND, stream.read_exact(&mut first)).await;
        if matches!(read, Ok(Ok(_))) {
            assert_eq!(&first, b"SSH-");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no room again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `ip ARGS…`, which must succeed.
fn ip(args: &[&str]) {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "ip {args:?}: {}", text(&out));
}

/// Two network namespaces, a NAT router and an agent's device behind it, with a veth from this
/// namespace to the router; all removed when dropped, the test passed or not.
struct Nat {
    router: String,
    device: String,
    uplink: String,
    /// The router's end of its link to the device.
    link: String,
    /// The server's address on the uplink, which the device reaches through the NAT.
    server: String,
    /// The device's address, which this namespace has no route to.
    device_address: String,
    /// The device's network, unreachable from this namespace (whatever its default route).
    device_network: String,
}

impl Nat {
    /// Makes them, with names and addresses of this process and `n`.
    fn new(n: u32) -> Nat {
        let tag = format!("{}{n}", std::process::id() % 100_000);
        let octet = std::process::id() % 250 + 1;
        let nat = Nat {
            router: format!("otto-ch-{tag}-r"),
            device: format!("otto-ch-{tag}-d"),
            uplink: format!("och{tag}u"),
            link: format!("och{tag}x"),
            server: format!("10.231.{octet}.1"),
            device_address: format!("10.232.{octet}.2"),
            device_network: format!("10.232.{octet}.0/30"),
        };
        let (r, d) = (nat.router.as_str(), nat.device.as_str());
        let (up_r, down_r, down_d) = (format!("och{tag}r"), nat.link.clone(), format!("och{tag}d"));
        ip(&["netns", "add", r]);
        ip(&["netns", "add", d]);
        ip(&[
            "link",
            "add",
            &nat.uplink,
            "type",
            "veth",
            "peer",
            "name",
            &up_r,
        ]);
        ip(&["link", "set", &up_r, "netns", r]);
        ip(&[
            "addr",
            "add",
            &format!("{}/30", nat.server),
            "dev",
            &nat.uplink,
        ]);
        ip(&["link", "set", &nat.uplink, "up"]);
        ip(&[
            "-n",
            r,
            "addr",
            "add",
            &format!("10.231.{octet}.2/30"),
            "dev",
            &up_r,
        ]);
        ip(&["-n", r, "link", "set", &up_r, "up"]);
        ip(&[
            "-n", r, "link", "add", &down_r, "type", "veth", "peer", "name", &down_d,
        ]);
        ip(&["-n", r, "link", "set", &down_d, "netns", d]);
        ip(&[
            "-n",
            r,
            "addr",
            "add",
            &format!("10.232.{octet}.1/30"),
            "dev",
            &down_r,
        ]);
        ip(&["-n", r, "link", "set", &down_r, "up"]);
        ip(&[
            "-n",
            d,
            "addr",
            "add",
            &format!("{}/30", nat.device_address),
            "dev",
            &down_d,
        ]);
        ip(&["-n", d, "link", "set", &down_d, "up"]);
        ip(&["-n", d, "link", "set", "lo", "up"]);
        ip(&[
            "-n",
            d,
            "route",
            "add",
            "default",
            "via",
            &format!("10.232.{octet}.1"),
        ]);
        // As from the Internet: no way in to the device but through the NAT's mappings.
        ip(&["route", "add", "unreachable", &nat.device_network]);
        ip(&["netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        ip(&["netns", "exec", r, "nft", "add", "table", "ip", "nat"]);
        ip(&[
            "netns",
            "exec",
            r,
            "nft",
            "add",
            "chain",
            "ip",
            "nat",
            "post",
            "{ type nat hook postrouting priority 100 ; }",
        ]);
        ip(&[
            "netns",
            "exec",
            r,
            "nft",
            "add",
            "rule",
            "ip",
            "nat",
            "post",
            "oifname",
            &up_r,
            "masquerade",
        ]);
        nat
    }

    /// The router's link to the device, up or down.
    fn device_link(&self, up: bool) {
        let state = if up { "up" } else { "down" };
        ip(&["-n", &self.router, "link", "set", &self.link, state]);
    }
}

impl Drop for Nat {
    fn drop(&mut self) {
        // Removing a namespace removes its end of each veth, and with it the other end.
        for ns in [&self.device, &self.router] {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", ns])
                .output();
        }
        for args in [
            ["link", "del", &self.uplink].as_slice(),
            ["route", "del", "unreachable", &self.device_network].as_slice(),
        ] {
            let _ = std::process::Command::new("ip").args(args).output();
        }
    }
}

/// A device behind NAT that the server cannot dial enrolls, calls home, is driven over its own
/// connection, and comes back by itself after its link was cut.
#[tokio::test(flavor = "multi_thread")]
async fn an_agent_behind_nat_is_driven_over_its_own_connection_and_back_after_its_link_was_cut() {
    // Only root may make namespaces.
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    if !root || find_in_path("ip").is_none() || find_in_path("nft").is_none() {
        return tool_missing(
            "root, ip and nft (network namespaces behind NAT)",
            "run as root with iproute2 and nftables (ci/install-toolchain.sh)",
        );
    }
    let nat = Nat::new(1);
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("{}:{port}", nat.server);
    let daemon = Daemon::start(&server, &["--call-home-listen", &listen]);
    add_user(
        &server,
        "ann",
        &["--run-level", "read-write", "--permission", "hosts"],
    );
    let ann = key_of(&server, "ann");

    // The device was never added: it enrolls through the NAT, over the connection it makes to
    // the door it then calls home through. Its agent listens too (nobody can reach it).
    server.ok(&["enrollment", "rule", "add", "--trust"]);
    let (token, fingerprint) = enrollment_offer(&server);
    let conf = device_config(&dir.path().join("r1"), "0.0.0.0:12444", &listen);
    let agent = agent_bin();
    let conf_arg = conf.to_str().unwrap();
    let enrolled = std::process::Command::new("ip")
        .args(["netns", "exec", &nat.device])
        .arg(&agent)
        .args(enroll_args(conf_arg, &listen, &fingerprint, &token, "r1"))
        .env_remove("OTTO_ENROLL_TOKEN")
        .output()
        .unwrap();
    assert!(enrolled.status.success(), "{}", text(&enrolled));
    let host = server.json(&["host", "show", "r1"]);
    assert!(host["trust"]["agent_key"].is_string(), "{host}");
    // The address the server saw is the NAT's, not the device's.
    assert_ne!(host["address"], nat.device_address.as_str(), "{host}");
    let _agent = tokio::process::Command::new("ip")
        .args(["netns", "exec", &nat.device])
        .arg(&agent)
        .args(["--config", conf_arg, "run"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    // The server cannot dial the device.
    let dial = TcpStream::connect((nat.device_address.as_str(), 12444)).await;
    assert!(dial.is_err(), "the device was reachable from the server");

    drive(&server, &daemon, &ann, dir.path()).await;

    // The link cut: the agent does not answer; restored: it is back by itself.
    nat.device_link(false);
    let (status, answer) = daemon
        .call(
            Method::POST,
            "/api/v1/ping",
            Some(&ann),
            &json!({"all": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer[0]["reachable"], false, "{answer}");
    nat.device_link(true);
    ping_until_answered(&daemon, &ann).await;
}

/// A device that was never added enrolls through serve's call-home listener, the door its
/// calls use (the only connection is the device's own, outbound), held by nothing but a token
/// and the enrollment fingerprint; then it calls home with the key it was given and is driven
/// over its own connection, in the group its rule gave.
#[tokio::test(flavor = "multi_thread")]
async fn a_device_enrolls_through_the_call_home_door_and_is_then_driven_over_its_own_call() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let daemon = Daemon::start(&server, &["--call-home-listen", &listen]);
    add_user(
        &server,
        "ann",
        &["--run-level", "read-write", "--permission", "hosts"],
    );
    let ann = key_of(&server, "ann");
    server.ok(&["enrollment", "rule", "add", "--trust", "--group", "field"]);
    let (token, fingerprint) = enrollment_offer(&server);
    assert!(fingerprint.starts_with("SHA256:"), "{fingerprint}");

    // The device: no listening socket, only its call home; no server key yet.
    let config = device_config(&dir.path().join("r1"), "none", &listen);
    let conf = config.to_str().unwrap();
    let enroll = tokio::process::Command::new(agent_bin())
        .args(enroll_args(conf, &listen, &fingerprint, &token, "r1"))
        .env_remove("OTTO_ENROLL_TOKEN")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(BOUND, enroll).await.unwrap().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("enrolled as r1"),
        "{}",
        text(&out)
    );
    let host = server.json(&["host", "show", "r1"]);
    assert_eq!(host["groups"], json!(["field"]), "{host}");
    assert!(host["trust"]["agent_key"].is_string(), "{host}");

    // The token is used up: another device is refused, and told why.
    let other = device_config(&dir.path().join("r2"), "none", &listen);
    let again = tokio::process::Command::new(agent_bin())
        .args(enroll_args(
            other.to_str().unwrap(),
            &listen,
            &fingerprint,
            &token,
            "r2",
        ))
        .env_remove("OTTO_ENROLL_TOKEN")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(BOUND, again).await.unwrap().unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("used up"), "{}", text(&out));

    // Now an ordinary agent that calls home with the key it was given.
    let _agent = tokio::process::Command::new(agent_bin())
        .args(["--config", conf, "run"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    drive(&server, &daemon, &ann, dir.path()).await;
    let host = server.json(&["host", "show", "r1"]);
    assert_eq!(host["status"]["calls_home"], true, "{host}");
}
