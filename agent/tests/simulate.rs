//! `otto-agent simulate PLAN` (built with the feature `sim`: `cargo test -p otto-agent
//! --features sim --test simulate`): many agents in one process, each on its own listener with
//! a key of its own, each trusting only its own server key; scripts answered by the built-in,
//! which starts no process; an agent of the plan that calls home instead, from its own address.
#![cfg(feature = "sim")]
// Helpers outside #[test] functions may unwrap and index too: a failing test stops there.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{PATIENCE, agent_command, dial_checking, new_key, run, script};
use otto_proto::ScriptTimeout;
use otto_server::client::{AgentKeyCheck, Connection, Limits, Outcome, answer_call};
use russh::keys::PrivateKey;
use russh::keys::ssh_key::private::Ed25519Keypair;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::Arc;

/// Connects to the agent on `port` with `key`, taking whatever key it presents.
async fn dial(port: u16, key: &PrivateKey) -> Result<Connection, otto_server::client::ClientError> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    dial_checking(addr, AgentKeyCheck::PinOnFirstContact, key).await
}

/// `otto-agent simulate PLAN_FILE` started, and the first line it printed.
fn simulate(plan_file: &std::path::Path) -> (std::process::Child, String) {
    let mut child = agent_command()
        .arg("simulate")
        .arg(plan_file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut said)
        .unwrap();
    (child, said)
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
    let (mut child, said) = simulate(&plan_file);
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

#[tokio::test]
async fn a_simulated_agent_calls_home_from_its_own_address_with_the_key_of_its_seed() {
    let dir = tempfile::tempdir().unwrap();
    let home = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = home.local_addr().unwrap().port();
    let server_key = new_key();
    let seed = [0x5a; 32];
    let agent_key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    let plan_file = dir.path().join("plan");
    std::fs::write(
        &plan_file,
        format!(
            "call 127.0.0.1:{port} 127.0.0.7 {} {}\n",
            "5a".repeat(32),
            server_key.public_key().to_openssh().unwrap()
        ),
    )
    .unwrap();
    let (mut child, said) = simulate(&plan_file);
    assert_eq!(said, "simulating 1 agents\n");

    let (stream, peer) = tokio::time::timeout(PATIENCE, home.accept())
        .await
        .expect("the agent called home")
        .unwrap();
    assert_eq!(peer.ip(), std::net::IpAddr::from([127, 0, 0, 7]));
    let call = answer_call(stream, PATIENCE).await.unwrap();
    assert_eq!(&call.agent_key, agent_key.public_key());
    let limits = Limits {
        answer: PATIENCE,
        stall: PATIENCE,
        grace: PATIENCE,
        silence: PATIENCE,
    };
    let conn = Connection::called(call, peer, Arc::new(server_key), PATIENCE, limits)
        .await
        .unwrap();
    let done = run(
        &conn,
        9,
        &script("exit 3\n", &[], ScriptTimeout::AgentDefault),
    )
    .await;
    assert_eq!(
        done.report.outcome,
        Outcome::Exited(0),
        "the built-in answered"
    );

    let _ = child.kill();
    let _ = child.wait();
}
