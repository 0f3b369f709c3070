//! The client against real agents on loopback: key pinning, refusals and the operations.

use std::sync::Arc;

use otto_proto::{Credentials, ScriptTimeout};
use otto_server::client::{
    AgentKeyCheck, ClientError, Connection, Outcome, ScriptRequest, UploadSpec, new_action_id,
};
use otto_server::demo::LocalAgent;
use otto_server::keys;
use sha2::{Digest, Sha256};

use crate::harness::agent_bin;

#[tokio::test]
async fn a_different_agent_key_is_refused_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let server_key = Arc::new(keys::generate().unwrap());
    let agent = LocalAgent::start(&agent_bin(), dir.path(), server_key.public_key(), "")
        .await
        .unwrap();
    let mut dial = agent.dial(server_key.clone());
    let wrong = keys::generate().unwrap();
    dial.agent_key = AgentKeyCheck::Pinned(wrong.public_key().clone());
    match Connection::connect(&dial).await {
        Err(ClientError::AgentKeyMismatch { presented }) => {
            assert_eq!(presented.key_data(), agent.agent_key.key_data())
        }
        other => panic!("expected a key mismatch, got {:?}", other.map(|_| ())),
    }
    // Pinning on first contact accepts and reports the key.
    dial.agent_key = AgentKeyCheck::PinOnFirstContact;
    let conn = Connection::connect(&dial).await.unwrap();
    assert_eq!(conn.agent_key().key_data(), agent.agent_key.key_data());
}

#[tokio::test]
async fn a_server_key_the_agent_does_not_trust_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server_key = Arc::new(keys::generate().unwrap());
    let agent = LocalAgent::start(&agent_bin(), dir.path(), server_key.public_key(), "")
        .await
        .unwrap();
    let other = Arc::new(keys::generate().unwrap());
    assert!(matches!(
        Connection::connect(&agent.dial(other)).await,
        Err(ClientError::AuthRejected)
    ));
}

#[tokio::test]
async fn operations_share_one_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server_key = Arc::new(keys::generate().unwrap());
    let agent = LocalAgent::start(&agent_bin(), dir.path(), server_key.public_key(), "")
        .await
        .unwrap();
    let conn = Connection::connect(&agent.dial(server_key)).await.unwrap();
    let script = ScriptRequest {
        name: "t".into(),
        interpreter: "/bin/sh".into(),
        body: b"echo $GREETING; exit 4\n".to_vec(),
        env: vec![("GREETING".into(), "hi".into())],
        run_as: Credentials::Inherit,
        working_dir: None,
        timeout: ScriptTimeout::AgentDefault,
    };
    // Ten heartbeats and five scripts at once, on one connection.
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let (conn, script) = (conn.clone(), script.clone());
        tasks.push(tokio::spawn(async move {
            let (tx, mut rx) = tokio::sync::mpsc::channel(8);
            let report = conn.run_script(&script, new_action_id(), tx).await.unwrap();
            let mut out = Vec::new();
            while let Ok(otto_server::client::ScriptEvent::Output { data, .. }) = rx.try_recv() {
                out.extend(data);
            }
            (report.outcome, out)
        }));
    }
    for _ in 0..10 {
        assert_eq!(conn.heartbeat().await.unwrap().facts.kernel_name, "Linux");
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), (Outcome::Exited(4), b"hi\n".to_vec()));
    }

    // An upload whose checksum does not match is refused and leaves nothing.
    let target = dir.path().join("f");
    let spec = UploadSpec {
        path: target.to_string_lossy().into(),
        owner: Credentials::Inherit,
        mode: 0o600,
        sha256: [0; 32],
        len: 3,
    };
    let report = conn
        .upload(&spec, new_action_id(), &b"abc"[..], |_| {})
        .await
        .unwrap();
    assert!(
        matches!(report.outcome, Outcome::Failed(ref e) if e.contains("checksum")),
        "{report:?}"
    );
    assert!(!target.exists());
    let spec = UploadSpec {
        sha256: Sha256::digest(b"abc").into(),
        ..spec
    };
    let mut seen = 0;
    let report = conn
        .upload(&spec, new_action_id(), &b"abc"[..], |n| seen = n)
        .await
        .unwrap();
    assert_eq!((report.outcome, seen), (Outcome::Completed, 3));
    assert_eq!(std::fs::read(&target).unwrap(), b"abc");
    assert!(
        !conn.cancel(new_action_id()).await.unwrap(),
        "nothing to cancel"
    );
}
