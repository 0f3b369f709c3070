//! `otto-agent simulate PLAN` (built with the feature `sim`: `cargo test -p otto-agent
//! --features sim --test simulate`): many agents in one process, each on its own listener with
//! a key of its own, each trusting only its own server key; scripts answered by the built-in,
//! which starts no process.
#![cfg(feature = "sim")]
// Helpers outside #[test] functions may unwrap and index too: a failing test stops there.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{agent_command, dial_checking, new_key, run, script};
use otto_proto::ScriptTimeout;
use otto_server::client::{AgentKeyCheck, Connection, Outcome};
use russh::keys::PrivateKey;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

/// Connects to the agent on `port` with `key`, taking whatever key it presents.
async fn dial(port: u16, key: &PrivateKey) -> Result<Connection, otto_server::client::ClientError> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    dial_checking(addr, AgentKeyCheck::PinOnFirstContact, key).await
}

#[tokio::test]
async fn simulated_agents_have_their_own_keys_trust_their_own_server_and_run_no_process() {
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<PrivateKey> = (0..3).map(|_| new_key()).collect();
    let ports: Vec<u16> = (0..3)
        .map(|_| {
            let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            free.local_addr().unwrap().port()
        })
        .collect();
    let plan: String = keys
        .iter()
        .zip(&ports)
        .map(|(key, port)| {
            format!(
                "127.0.0.1:{port} {}  # agent on {port}\n",
                key.public_key().to_openssh().unwrap()
            )
        })
        .collect();
    let plan_file = dir.path().join("plan");
    std::fs::write(&plan_file, format!("# three agents\n{plan}")).unwrap();
    let mut child = agent_command()
        .arg("simulate")
        .arg(&plan_file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut said)
        .unwrap();
    assert_eq!(said, "simulating 3 agents\n");

    let marker = dir.path().join("ran");
    let mut presented = Vec::new();
    for (key, port) in keys.iter().zip(&ports) {
        let conn = dial(*port, key).await.unwrap();
        presented.push(conn.agent_key().clone());
        let body = format!("touch {}\necho hello\n", marker.display());
        let done = run(&conn, 7, &script(&body, &[], ScriptTimeout::AgentDefault)).await;
        assert_eq!(done.report.outcome, Outcome::Exited(0));
        assert!(done.stdout.is_empty() && done.stderr.is_empty());
    }
    // No process ran the scripts; each agent has a key of its own.
    assert!(!marker.exists());
    presented.dedup();
    assert_eq!(presented.len(), 3);
    // An agent trusts its own server key only.
    assert!(dial(ports[0], &keys[1]).await.is_err());
    assert!(dial(ports[0], &new_key()).await.is_err());

    // A plan that is wrong is refused, naming its line.
    std::fs::write(&plan_file, "127.0.0.1:1 ssh-ed25519 nonsense\n").unwrap();
    let out = agent_command()
        .arg("simulate")
        .arg(&plan_file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(error.contains("plan line 1"), "{error}");

    let _ = child.kill();
    let _ = child.wait();
}
