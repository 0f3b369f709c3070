//! Key rotation cannot lock the server out: an unusable server key is refused and changes
//! nothing, and the server key trusted before a rotation keeps working until the new one has
//! authenticated, across restarts too.

// Helpers outside #[test] functions may unwrap and index too: a failing test stops there.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Agent, new_key};
use otto_server::client::ClientError;
use russh::keys::PublicKey;
use russh::keys::ssh_key::public::Ed25519PublicKey;

/// What the agent answered to a rotation to `raw`: Ok(its new key) or Err(its error).
async fn rotate(agent: &Agent, raw: [u8; 32]) -> Result<PublicKey, String> {
    let conn = agent.client().await;
    match conn
        .rotate_identity(&PublicKey::from(Ed25519PublicKey(raw)))
        .await
    {
        Ok(key) => Ok(key),
        Err(ClientError::AgentFailure(error)) => Err(error),
        Err(other) => panic!("{other}"),
    }
}

/// Whether a new connection with `key` is accepted (the agent must present `agent.agent_key`).
async fn accepted(agent: &Agent, key: &russh::keys::PrivateKey) -> bool {
    agent.client_with(key).await.is_ok()
}

/// 32 bytes that are not the encoding of any point on the curve.
fn not_a_point() -> [u8; 32] {
    (2u8..=255)
        .map(|y| {
            let mut raw = [0u8; 32];
            raw[0] = y;
            raw
        })
        .find(|raw| ed25519_dalek::VerifyingKey::from_bytes(raw).is_err())
        .expect("some small y is not on the curve")
}

#[tokio::test]
async fn an_unusable_server_key_is_refused_and_changes_nothing() {
    let mut agent = Agent::start("");
    let config_before = std::fs::read(&agent.config_path).unwrap();
    let key_before = std::fs::read(agent.dir.path().join("agent.key")).unwrap();
    let mut identity = [0u8; 32];
    identity[0] = 1;
    // Not a point; the all-zero encoding (a point of order 4); the identity (order 1).
    for raw in [not_a_point(), [0u8; 32], identity] {
        let error = rotate(&agent, raw).await.unwrap_err();
        assert!(error.contains("Ed25519"), "{raw:?}: {error}");
        assert_eq!(std::fs::read(&agent.config_path).unwrap(), config_before);
        assert_eq!(
            std::fs::read(agent.dir.path().join("agent.key")).unwrap(),
            key_before
        );
        assert!(accepted(&agent, &agent.server_key).await, "{raw:?}");
    }
    agent.restart();
    assert!(accepted(&agent, &agent.server_key).await);
}

#[tokio::test]
async fn the_old_server_key_works_until_the_new_one_has_authenticated() {
    let mut agent = Agent::start("");
    let old_server = agent.server_key.clone();
    let new_server = new_key();
    let raw = new_server.public_key().key_data().ed25519().unwrap().0;
    agent.agent_key = rotate(&agent, raw).await.unwrap();

    // The answer may never have reached the server: its old key still works, also after a
    // restart, and does not retire itself.
    assert!(accepted(&agent, &old_server).await);
    agent.restart();
    assert!(accepted(&agent, &old_server).await);
    assert!(accepted(&agent, &old_server).await);

    // Once the new key has authenticated, the old one is refused, also after a restart.
    assert!(accepted(&agent, &new_server).await);
    assert!(!accepted(&agent, &old_server).await);
    agent.restart();
    assert!(!accepted(&agent, &old_server).await);
    assert!(accepted(&agent, &new_server).await);
}

#[tokio::test]
async fn a_second_rotation_before_the_first_was_used_keeps_the_key_the_server_holds() {
    let mut agent = Agent::start("");
    let old_server = agent.server_key.clone();
    let lost = new_key();
    agent.agent_key = rotate(&agent, lost.public_key().key_data().ed25519().unwrap().0)
        .await
        .unwrap();
    // The server never saw that answer: it rotates again with the key it still holds.
    let newest = new_key();
    agent.agent_key = rotate(&agent, newest.public_key().key_data().ed25519().unwrap().0)
        .await
        .unwrap();
    agent.restart();
    assert!(accepted(&agent, &old_server).await);
    assert!(!accepted(&agent, &lost).await);
    assert!(accepted(&agent, &newest).await);
    assert!(!accepted(&agent, &old_server).await);
}

/// 32 × 0xFF: y = 2^255 − 1, at or above p = 2^255 − 19, so not a canonical encoding (read
/// modulo p it is y = 18, a point of the curve, which a signature library accepts as such).
const NOT_CANONICAL: [u8; 32] = [0xff; 32];

#[tokio::test]
async fn a_non_canonical_server_key_is_refused_by_a_rotation_and_changes_nothing() {
    let agent = Agent::start("");
    let config_before = std::fs::read(&agent.config_path).unwrap();
    let key_before = std::fs::read(agent.dir.path().join("agent.key")).unwrap();
    let error = rotate(&agent, NOT_CANONICAL).await.unwrap_err();
    assert_eq!(
        error,
        "not a valid Ed25519 public key (not a canonical encoding)"
    );
    assert_eq!(std::fs::read(&agent.config_path).unwrap(), config_before);
    assert_eq!(
        std::fs::read(agent.dir.path().join("agent.key")).unwrap(),
        key_before
    );
    assert!(accepted(&agent, &agent.server_key).await);
}

#[test]
fn trust_refuses_a_non_canonical_server_key_and_keeps_the_old_one() {
    let agent = Agent::start("");
    let before = std::fs::read(&agent.config_path).unwrap();
    let text = PublicKey::from(Ed25519PublicKey(NOT_CANONICAL))
        .to_openssh()
        .unwrap();
    let config = agent.config_path.to_str().unwrap();
    let (status, _, err) = common::agent_cli(&["--config", config, "trust", &text]);
    assert_eq!(status.code(), Some(64), "{err}");
    assert!(
        err.contains("not a valid Ed25519 public key (not a canonical encoding)"),
        "{err}"
    );
    assert_eq!(std::fs::read(&agent.config_path).unwrap(), before);
}
