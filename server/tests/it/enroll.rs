//! Enrollment end to end: real `otto-agent enroll` processes against the server's enrollment
//! session (`serve::enroll::enroll_session`) on a loopback listener of the test's own (a
//! minimal accept loop: TCP accept, the SSH client on the socket learning the agent's key, the
//! session), over a real data directory; then the server drives an enrolled agent as any other.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use otto_server::fleet::{Fleet, FleetOptions};
use otto_server::keys;
use otto_server::ops::{Actor, AddRule, AddToken, Ops};
use otto_server::serve::enroll::{EnrollError, EnrollOutcome, enroll_session};
use russh::client;
use russh::keys::{PublicKey, PublicKeyOrCertificate};
use tokio::sync::mpsc;

use crate::harness::{BOUND, Server, agent_bin, all_succeeded, text};

/// The SSH client of the accept loop: accepts any agent key (enrollment is what decides about
/// it) and remembers it.
struct Learner(Arc<Mutex<Option<PublicKey>>>);

impl client::Handler for Learner {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return Ok(false);
        };
        *self.0.lock().unwrap() = Some(key.clone());
        Ok(true)
    }
}

/// A server's data directory with its operations, and a listener that runs an enrollment
/// session on every connection; each session's outcome is sent to `outcomes`.
struct Enroller {
    server: Server,
    ops: Ops,
    addr: SocketAddr,
    outcomes: mpsc::UnboundedReceiver<Result<EnrollOutcome, EnrollError>>,
}

impl Enroller {
    async fn start() -> Enroller {
        let server = Server::new();
        let fleet = Fleet::open(server.data(), FleetOptions::default())
            .await
            .unwrap();
        let ops = Ops::new(Arc::new(fleet), Actor::Server);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (sender, outcomes) = mpsc::unbounded_channel();
        let session_ops = ops.clone();
        tokio::spawn(async move {
            while let Ok((stream, peer)) = listener.accept().await {
                let (ops, sender) = (session_ops.clone(), sender.clone());
                tokio::spawn(async move {
                    let learnt = Arc::new(Mutex::new(None));
                    let config = Arc::new(client::Config {
                        preferred: otto_server::client::preferred(),
                        ..Default::default()
                    });
                    let handle =
                        client::connect_stream(config, stream, Learner(learnt.clone())).await;
                    let key = learnt.lock().unwrap().clone();
                    let (Ok(handle), Some(key)) = (handle, key) else {
                        return;
                    };
                    let _ = sender.send(enroll_session(&ops, handle, &key, peer).await);
                });
            }
        });
        Enroller {
            server,
            ops,
            addr,
            outcomes,
        }
    }

    fn fingerprint(&self) -> String {
        self.ops.enrollment_fingerprint().unwrap()
    }

    /// A token for `uses` enrollments, valid for `secs`; its secret and id.
    async fn token(&self, uses: u32, secs: u64) -> (String, i64) {
        let created = self
            .ops
            .add_token(AddToken {
                uses: Some(uses),
                expires_in_secs: Some(secs),
                ..AddToken::default()
            })
            .await
            .unwrap();
        (created.secret, created.token.id)
    }

    /// A last rule that every agent matches: trusted at once or held, in `groups`.
    async fn rule(&self, trust: bool, groups: &[&str]) {
        self.ops
            .add_rule(AddRule {
                clauses: Vec::new(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
                trust,
                position: None,
            })
            .await
            .unwrap();
    }

    /// The next session's outcome.
    async fn outcome(&mut self) -> Result<EnrollOutcome, EnrollError> {
        tokio::time::timeout(BOUND, self.outcomes.recv())
            .await
            .expect("no enrollment session ended")
            .unwrap()
    }
}

/// A device: the agent's directory, configuration (listening on a free loopback port) and key.
struct Device {
    _dir: tempfile::TempDir,
    config: PathBuf,
    port: u16,
}

impl Device {
    fn new() -> Device {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("agent.conf");
        let temp = dir.path().join("tmp");
        std::fs::create_dir_all(&temp).unwrap();
        std::fs::write(
            &config,
            format!(
                "listen = 127.0.0.1:{port}\nkey = {}\ntemp_dir = {}\n",
                dir.path().join("agent.key").display(),
                temp.display()
            ),
        )
        .unwrap();
        Device {
            _dir: dir,
            config,
            port,
        }
    }

    fn conf(&self) -> &str {
        self.config.to_str().unwrap()
    }

    /// Runs `otto-agent enroll` against `at` with `args` after the address, within the bound.
    async fn enroll(&self, at: SocketAddr, args: &[&str]) -> Output {
        let server = at.to_string();
        let mut all = vec!["--config", self.conf(), "enroll", "--server", &server];
        all.extend_from_slice(args);
        let child = tokio::process::Command::new(agent_bin())
            .args(&all)
            .env_remove(otto_env())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        tokio::time::timeout(BOUND, child)
            .await
            .expect("otto-agent enroll did not end")
            .unwrap()
    }

    /// The agent's public key.
    fn agent_key(&self) -> PublicKey {
        let out = std::process::Command::new(agent_bin())
            .args(["--config", self.conf(), "pubkey"])
            .output()
            .unwrap();
        keys::parse_public(&String::from_utf8(out.stdout).unwrap()).unwrap()
    }

    /// The server key the agent's configuration trusts, if any.
    fn trusted(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.config).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("server_key = "))
            .map(str::to_owned)
    }
}

/// The environment variable that would give the token (never inherited from the test's).
fn otto_env() -> &'static str {
    "OTTO_ENROLL_TOKEN"
}

/// The server key of host `name`, OpenSSH text.
async fn server_key(data: &Path, name: &str) -> String {
    let fleet = Fleet::open(data, FleetOptions::default()).await.unwrap();
    keys::to_openssh(fleet.host_key(name).await.unwrap().public_key())
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_token_enrolls_the_agent_both_sides_trust_and_the_server_drives_it() {
    let mut enroller = Enroller::start().await;
    enroller.rule(true, &["lab"]).await;
    let (token, _) = enroller.token(1, 3600).await;
    let device = Device::new();
    let fingerprint = enroller.fingerprint();
    let token_file = device._dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let out = device
        .enroll(
            enroller.addr,
            &[
                "--fingerprint",
                &fingerprint,
                "--token-file",
                token_file.to_str().unwrap(),
                "--name",
                "gw-enrolled",
            ],
        )
        .await;
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("enrolled as gw-enrolled\n"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("approval"));
    let Ok(EnrollOutcome::Enrolled(enrolled)) = enroller.outcome().await else {
        panic!("not enrolled");
    };
    assert_eq!(enrolled.groups, ["lab"]);
    assert!(!enrolled.pending);

    // The agent trusts the host's own server key, in its configuration, 0600.
    let data = enroller.server.data();
    assert_eq!(
        device.trusted().as_deref(),
        Some(server_key(data, "gw-enrolled").await.as_str())
    );
    let mode = std::fs::metadata(&device.config)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // The server pinned the agent's key for the host at the address and port it enrolled from.
    let host = enroller.server.json(&["host", "show", "gw-enrolled"]);
    assert_eq!(
        host["trust"]["agent_key"],
        keys::to_openssh(&device.agent_key()).as_str(),
        "{host}"
    );
    assert_eq!(host["address"], "127.0.0.1", "{host}");
    assert_eq!(host["port"], device.port, "{host}");

    // The enrolled agent is an ordinary agent: the server dials it and runs a command.
    let mut agent = tokio::process::Command::new(agent_bin())
        .args(["--config", device.conf(), "run"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_listening(device.port).await;
    let results = enroller
        .server
        .bounded_results(&["run", "--host", "gw-enrolled", "--command", "echo hi"])
        .await;
    assert!(all_succeeded(&results), "{results}");
    agent.kill().await.unwrap();
}

/// Waits (within the bound) until something accepts connections on loopback `port`.
async fn wait_listening(port: u16) {
    tokio::time::timeout(BOUND, async {
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the agent never listened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_held_for_approval_trusts_the_key_and_the_server_holds_it_pending() {
    let mut enroller = Enroller::start().await;
    // A rule for the other byte order only: the default holds this agent for approval.
    let (this, other) = if cfg!(target_endian = "big") {
        ("big", "little")
    } else {
        ("little", "big")
    };
    enroller
        .ops
        .add_rule(AddRule {
            clauses: vec![otto_server::ops::parse_clause(&format!("endian~^{other}$")).unwrap()],
            groups: vec!["other".into()],
            trust: true,
            position: None,
        })
        .await
        .unwrap();
    let (token, _) = enroller.token(5, 3600).await;
    let device = Device::new();
    let fingerprint = enroller.fingerprint();
    let out = tokio::time::timeout(BOUND, {
        let server = enroller.addr.to_string();
        tokio::process::Command::new(agent_bin())
            .args(["--config", device.conf(), "enroll", "--server", &server])
            .args(["--fingerprint", &fingerprint, "--name", "held"])
            .env(otto_env(), &token)
            .kill_on_drop(true)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).lines().last(),
        Some("enrolled as held, waiting for an administrator's approval")
    );
    assert!(matches!(
        enroller.outcome().await,
        Ok(EnrollOutcome::Enrolled(e)) if e.pending
    ));
    let data = enroller.server.data();
    assert_eq!(device.trusted(), Some(server_key(data, "held").await));
    let host = enroller.server.json(&["host", "show", "held"]);
    assert_eq!(
        host["trust"]["pending_key"],
        keys::to_openssh(&device.agent_key()).as_str(),
        "{host}"
    );
    assert_eq!(
        host["trust"]["agent_key"],
        serde_json::Value::Null,
        "{host}"
    );
    assert_eq!(host["groups"], serde_json::json!([]), "{host}");
    // What rules match, as the agent reported it: its byte order, architecture, model, release.
    let pending = enroller.ops.pending_hosts().await.unwrap();
    let properties = pending[0].properties.clone().unwrap();
    assert_eq!(properties["endian"], this, "{properties:?}");
    assert_eq!(properties["arch"], std::env::consts::ARCH, "{properties:?}");
    for reported in ["model", "distribution", "distribution_version", "kernel"] {
        assert!(
            properties.contains_key(reported),
            "{reported}: {properties:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_expired_used_up_and_revoked_tokens_are_refused_with_the_reason() {
    let mut enroller = Enroller::start().await;
    enroller.rule(true, &[]).await;
    let fingerprint = enroller.fingerprint();
    let (once, _) = enroller.token(1, 3600).await;
    let (expiring, _) = enroller.token(3, 1).await;
    let (revoked, id) = enroller.token(3, 3600).await;
    enroller.ops.revoke_token(id).await.unwrap();
    let first = Device::new();
    let out = first
        .enroll(
            enroller.addr,
            &[
                "--fingerprint",
                &fingerprint,
                "--token",
                &once,
                "--name",
                "first",
            ],
        )
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(enroller.outcome().await.is_ok());
    // Past the expiring token's one second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let wrong = format!("otto-enroll-{}", "0".repeat(64));
    for (token, why) in [
        (once.as_str(), "used up"),
        (expiring.as_str(), "expired"),
        (revoked.as_str(), "revoked"),
        (wrong.as_str(), "wrong"),
    ] {
        let device = Device::new();
        let out = device
            .enroll(
                enroller.addr,
                &[
                    "--fingerprint",
                    &fingerprint,
                    "--token",
                    token,
                    "--name",
                    "second",
                ],
            )
            .await;
        assert_eq!(out.status.code(), Some(1), "{why}: {}", stderr(&out));
        let said = stderr(&out);
        assert!(
            said.contains("the server refused the enrollment: "),
            "{why}: {said}"
        );
        let Ok(EnrollOutcome::Refused(refused)) = enroller.outcome().await else {
            panic!("{why}: not refused");
        };
        assert!(said.contains(&refused.to_string()), "{why}: {said}");
        assert_eq!(device.trusted(), None, "{why}");
    }
    let hosts = enroller.server.json(&["host", "list"]).to_string();
    assert!(!hosts.contains("second"), "{hosts}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_refuses_a_server_with_another_fingerprint_and_sends_nothing() {
    let mut enroller = Enroller::start().await;
    enroller.rule(true, &[]).await;
    let (token, _) = enroller.token(1, 3600).await;
    let device = Device::new();
    let other = keys::fingerprint(keys::generate().unwrap().public_key());
    let out = device
        .enroll(
            enroller.addr,
            &[
                "--fingerprint",
                &other,
                "--token",
                &token,
                "--name",
                "fooled",
            ],
        )
        .await;
    assert_eq!(out.status.code(), Some(1));
    let said = stderr(&out);
    assert!(
        said.contains(&other) && said.contains(&enroller.fingerprint()),
        "{said}"
    );
    // The server got no further than a refused authentication: no request, no host, and the
    // token is still unused.
    assert!(matches!(
        enroller.outcome().await,
        Err(EnrollError::KeyRefused)
    ));
    assert_eq!(device.trusted(), None);
    let out = device
        .enroll(
            enroller.addr,
            &[
                "--fingerprint",
                &enroller.fingerprint(),
                "--token",
                &token,
                "--name",
                "real",
            ],
        )
        .await;
    assert!(
        out.status.success(),
        "the token was spent: {}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_taken_is_refused_and_of_two_agents_racing_for_a_one_use_token_one_wins() {
    let mut enroller = Enroller::start().await;
    enroller.rule(true, &[]).await;
    let fingerprint = enroller.fingerprint();
    let (token, _) = enroller.token(5, 3600).await;
    let first = Device::new();
    let args = [
        "--fingerprint",
        &fingerprint,
        "--token",
        &token,
        "--name",
        "twin",
    ];
    assert!(first.enroll(enroller.addr, &args).await.status.success());
    assert!(enroller.outcome().await.is_ok());
    let second = Device::new();
    let out = second.enroll(enroller.addr, &args).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("twin"), "{}", stderr(&out));
    assert!(matches!(
        enroller.outcome().await,
        Ok(EnrollOutcome::Refused(_))
    ));

    let (one, _) = enroller.token(1, 3600).await;
    let (a, b) = (Device::new(), Device::new());
    let args_a = [
        "--fingerprint",
        &fingerprint,
        "--token",
        &one,
        "--name",
        "racer-a",
    ];
    let args_b = [
        "--fingerprint",
        &fingerprint,
        "--token",
        &one,
        "--name",
        "racer-b",
    ];
    let (out_a, out_b) = tokio::join!(
        a.enroll(enroller.addr, &args_a),
        b.enroll(enroller.addr, &args_b)
    );
    let won = [&out_a, &out_b]
        .iter()
        .filter(|o| o.status.success())
        .count();
    assert_eq!(won, 1, "{}\n{}", text(&out_a), text(&out_b));
    let outcomes = [enroller.outcome().await, enroller.outcome().await];
    let enrolled = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(EnrollOutcome::Enrolled(_))))
        .count();
    assert_eq!(enrolled, 1);
    let hosts = enroller.server.json(&["host", "list"]).to_string();
    assert_eq!(
        hosts.contains("racer-a") as u8 + hosts.contains("racer-b") as u8,
        1,
        "{hosts}"
    );
}

/// A fake enrolling agent: serves SSH on a connection to the enroller's listener, lets any
/// client key in, and on the `otto-enroll` channel sends `payload` instead of a request; sends
/// what came back once the channel closes.
struct FakeEnrollee {
    payload: Vec<u8>,
    answer: mpsc::UnboundedSender<Vec<u8>>,
    channel: Option<russh::Channel<russh::server::Msg>>,
}

impl russh::server::Handler for FakeEnrollee {
    type Error = russh::Error;

    async fn auth_publickey(
        &mut self,
        _user: &str,
        _key: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<russh::server::Auth, Self::Error> {
        Ok(russh::server::Auth::Accept)
    }

    async fn channel_open_session(
        &mut self,
        channel: russh::Channel<russh::server::Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut russh::server::Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        self.channel = Some(channel);
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        id: russh::ChannelId,
        _name: &str,
        session: &mut russh::server::Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(id)?;
        let channel = self.channel.take().unwrap();
        let (payload, answer) = (self.payload.clone(), self.answer.clone());
        tokio::spawn(async move {
            let (mut read, write) = channel.split();
            write.data(&payload[..]).await.unwrap();
            let mut got = Vec::new();
            while let Some(msg) = read.wait().await {
                match msg {
                    russh::ChannelMsg::Data { data } => got.extend_from_slice(&data),
                    russh::ChannelMsg::Close => break,
                    _ => {}
                }
            }
            let _ = answer.send(got);
        });
        Ok(())
    }
}

/// The reason of the one `EnrollResponse::Refused` frame in `bytes`.
fn refusal(bytes: &[u8]) -> String {
    let mut frames = otto_proto::FrameReader::<{ otto_proto::MAX_BODY_LEN }>::new();
    match frames.next(bytes).unwrap() {
        Some(otto_proto::Item::Frame(otto_proto::Message::EnrollResponse(
            otto_proto::EnrollResponse::Refused { reason },
        ))) => reason.to_string(),
        other => panic!("not a refusal: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_oversized_and_wrong_requests_are_refused_cleanly() {
    let mut enroller = Enroller::start().await;
    let (token, _) = enroller.token(3, 3600).await;
    // A header (this version, EnrollRequest) declaring a body of 1 MiB, and one of 4 bytes of
    // garbage.
    let header = |body_len| {
        otto_proto::Header {
            version: otto_proto::PROTOCOL_VERSION,
            message_type: otto_proto::MessageType::EnrollRequest as u32,
            body_len,
        }
        .emit()
        .to_vec()
    };
    let oversized = header(1 << 20);
    let mut garbage = header(4);
    garbage.extend_from_slice(&[0xff; 4]);
    let heartbeat = {
        let mut buf = vec![0u8; 256];
        let message = otto_proto::Message::HeartbeatRequest(otto_proto::HeartbeatRequest {
            server_version: &token,
            nonce: 1,
        });
        let n = otto_proto::encode(&message, &mut buf).unwrap();
        buf.truncate(n);
        buf
    };
    for (payload, said) in [
        (oversized, "malformed enrollment request: "),
        (garbage, "malformed enrollment request: "),
        (heartbeat, "expected an EnrollRequest, not HeartbeatRequest"),
    ] {
        let (answer, mut answers) = mpsc::unbounded_channel();
        let stream = tokio::net::TcpStream::connect(enroller.addr).await.unwrap();
        let config = Arc::new(russh::server::Config {
            keys: vec![keys::generate().unwrap()],
            ..Default::default()
        });
        let fake = FakeEnrollee {
            payload: payload.clone(),
            answer,
            channel: None,
        };
        let session = russh::server::run_stream(config, stream, fake)
            .await
            .unwrap();
        let got = tokio::time::timeout(BOUND, answers.recv())
            .await
            .unwrap()
            .unwrap();
        let reason = refusal(&got);
        assert!(reason.starts_with(said), "{reason}");
        let Ok(EnrollOutcome::Malformed(malformed)) = enroller.outcome().await else {
            panic!("{said}: not refused as malformed");
        };
        assert_eq!(malformed, reason);
        let _ = tokio::time::timeout(BOUND, session).await.unwrap();
    }
    // Nothing was enrolled and the token was not used.
    let tokens = enroller.ops.tokens().await.unwrap();
    assert_eq!(tokens[0].used, 0);
    assert_eq!(
        enroller.server.json(&["host", "list"]),
        serde_json::json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolling_agent_serves_only_the_one_otto_enroll_channel() {
    let enroller = Enroller::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let device = Device::new();
    let fingerprint = enroller.fingerprint();
    let args = ["--fingerprint", &fingerprint, "--token", "t", "--name", "x"];
    let agent = device.enroll(addr, &args);
    let server = async {
        let (stream, _) = listener.accept().await.unwrap();
        let config = Arc::new(client::Config {
            preferred: otto_server::client::preferred(),
            ..Default::default()
        });
        let learnt = Arc::new(Mutex::new(None));
        let mut handle = client::connect_stream(config, stream, Learner(learnt))
            .await
            .unwrap();
        let key = enroller.ops.enrollment_key().unwrap();
        let auth = handle
            .authenticate_publickey(
                "otto",
                russh::keys::PrivateKeyWithHashAlg::new(Arc::new(key), None),
            )
            .await
            .unwrap();
        assert!(auth.success());
        // The Otto subsystem, exec and shell: refused on the one channel.
        let channel = handle.channel_open_session().await.unwrap();
        let (mut read, write) = channel.split();
        write.request_subsystem(true, "otto").await.unwrap();
        write.exec(true, "id").await.unwrap();
        write.request_shell(true).await.unwrap();
        let mut failures = 0;
        while failures < 3 {
            match read.wait().await.unwrap() {
                russh::ChannelMsg::Failure => failures += 1,
                russh::ChannelMsg::Success => panic!("a request was granted"),
                _ => {}
            }
        }
        // A second channel, even for otto-enroll: refused.
        assert!(handle.channel_open_session().await.is_err());
        handle
            .disconnect(russh::Disconnect::ByApplication, "", "")
            .await
            .unwrap();
    };
    let (out, ()) = tokio::join!(agent, server);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(device.trusted(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_never_sends_its_request_is_dropped_after_the_session_time() {
    let mut enroller = Enroller::start().await;
    let (answer, mut answers) = mpsc::unbounded_channel();
    let stream = tokio::net::TcpStream::connect(enroller.addr).await.unwrap();
    let config = Arc::new(russh::server::Config {
        keys: vec![keys::generate().unwrap()],
        ..Default::default()
    });
    let silent = FakeEnrollee {
        payload: Vec::new(),
        answer,
        channel: None,
    };
    let session = russh::server::run_stream(config, stream, silent)
        .await
        .unwrap();
    assert!(matches!(
        enroller.outcome().await,
        Err(EnrollError::Timeout)
    ));
    // The server closed the connection without an answer.
    let got = tokio::time::timeout(BOUND, answers.recv()).await.unwrap();
    assert!(got.is_none_or(|bytes| bytes.is_empty()));
    let _ = tokio::time::timeout(BOUND, session).await.unwrap();
}
