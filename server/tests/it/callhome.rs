//! Agents that call home (`call_home` in their configuration) to `serve --call-home-listen`:
//! driven over the connection they made, with no address the server can dial (heartbeat,
//! streamed run, upload, cancel); back by themselves after `serve` restarts; an unknown agent
//! key dropped at once; unauthenticated sockets bounded per source.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use russh::keys::PrivateKey;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{BOUND, Server, agent_bin, text};
use crate::http::{Daemon, key_of};
use crate::remote::{client, finish};
use crate::users::add_user;
use otto_server::demo::LocalAgent;

/// A loopback port nothing listens on (bound and let go).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Adds host `name` and starts its agent in `dir/name`, calling home to `port`; the host's
/// address is a port nothing listens on, so a dial cannot reach the agent.
async fn calling_agent(server: &Server, dir: &Path, name: &str, port: u16) -> LocalAgent {
    let server_key = server.add(name, &[]).await;
    let call_home = format!("call_home = 127.0.0.1:{port}");
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

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_that_calls_home_is_driven_over_its_connection_and_comes_back_after_a_restart() {
    let server = Server::new();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let daemon = Daemon::start(&server, &["--call-home-listen", &listen]);
    let _agent = calling_agent(&server, dir.path(), "r1", port).await;
    add_user(&server, "ann", &["--run-level", "read-write"]);
    let ann = key_of(&server, "ann");

    // Heartbeat: over the agent's own connection (the host's address has nothing).
    let pinged = ping_until_answered(&daemon, &ann).await;
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
        &server,
        daemon.base(),
        Some(&ann),
        &run,
    ))
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.lines().any(|l| l == "r1 | hi from r1"), "{stdout}");
    let file = dir.path().join("blob");
    let blob: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &blob).unwrap();
    let target = dir.path().join("uploaded.bin");
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
        &server,
        daemon.base(),
        Some(&ann),
        &up,
    ))
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::read(&target).unwrap(), blob);

    // Cancel: a run that has started is cancelled through the API.
    let started = dir.path().join("started");
    let body = json!({
        "command": format!("touch {}; sleep 600", started.display()),
        "all": true,
    });
    let (status, answer) = daemon
        .call(Method::POST, "/api/v1/runs", Some(&ann), &body)
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
        .call(Method::POST, &cancel, Some(&ann), &Value::Null)
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
    let (status, answer) = daemon
        .call(
            Method::POST,
            "/api/v1/ping",
            Some(&ann),
            &json!({"all": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let error = answer[0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("calls home and is not connected"),
        "{answer}"
    );
}

/// An SSH server (the agent's role) with a key no host has pinned, over one connection to the
/// call-home listener; records whether the server tried to authenticate.
struct Stranger {
    tried: Arc<AtomicBool>,
}

impl russh::server::Handler for Stranger {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        _offer: russh::server::PublicKeyOffer<'_>,
    ) -> Result<russh::server::Auth, Self::Error> {
        self.tried.store(true, Ordering::SeqCst);
        Ok(russh::server::Auth::reject())
    }

    async fn auth_publickey(
        &mut self,
        _user: &str,
        _key: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<russh::server::Auth, Self::Error> {
        self.tried.store(true, Ordering::SeqCst);
        Ok(russh::server::Auth::reject())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_agent_key_is_dropped_after_the_key_exchange_without_authenticating() {
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
    let tried = Arc::new(AtomicBool::new(false));
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
    assert!(!tried.load(Ordering::SeqCst), "the server tried to log in");
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
