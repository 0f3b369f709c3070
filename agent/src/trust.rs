//! Rotating the keys without ever locking the server out.
//!
//! A rotation trusts the server's new key and makes a new agent key, but the answer may never
//! reach the server (the connection drops, the agent or the server dies). So the server key that
//! was trusted before stays accepted, as `server_key_previous` in the configuration file, until
//! the new key has authenticated once; only then is it dropped. Both changes are atomic rewrites
//! of the file, so they hold across restarts and crashes.

use std::fmt;
use std::path::PathBuf;

use russh::keys::PublicKey;

use crate::config::{with_setting, without_setting};
use crate::fsutil::write_atomic;
use crate::identity::{self, KeyError, RawKeyError};
use crate::log::{info, warning};
use crate::state::Agent;

/// Why a rotation was refused or failed.
#[derive(Debug)]
pub enum RotateError {
    /// The server's new key is unusable; nothing changed.
    ServerKey(RawKeyError),
    /// Making or saving the new agent key failed.
    Key(KeyError),
    /// The new agent key is not an Ed25519 key.
    NotEd25519,
    /// Reading or rewriting the configuration file (given) failed.
    Config(PathBuf, std::io::Error),
}

impl fmt::Display for RotateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RotateError::ServerKey(e) => e.fmt(f),
            RotateError::Key(e) => e.fmt(f),
            RotateError::NotEd25519 => f.write_str("the new key is not Ed25519"),
            RotateError::Config(path, e) => write!(f, "{}: {e}", path.display()),
        }
    }
}

impl std::error::Error for RotateError {}

/// Trusts `server_public_key` (refused unless it is a usable Ed25519 key) and makes a new agent
/// key; returns the new agent key's public half.
///
/// The server key kept as the previous one is the key the server is sure to hold: the previous
/// key if the last rotation's key has not authenticated yet (its answer may have been lost),
/// else the current one. The configuration is written first: if the agent stops before the new
/// agent key is saved, it serves its old key and accepts the server's old key, as the server
/// expects when it got no answer.
pub fn rotate(agent: &Agent, server_public_key: [u8; 32]) -> Result<[u8; 32], RotateError> {
    let server_key =
        identity::public_from_raw(server_public_key).map_err(RotateError::ServerKey)?;
    let mut config = agent.config().clone();
    let keep = config
        .server_key_previous
        .clone()
        .or_else(|| config.server_key.clone())
        .filter(|k| k.key_data() != server_key.key_data());
    let new_key = identity::generate().map_err(RotateError::Key)?;
    let public = identity::raw_public(new_key.public_key()).ok_or(RotateError::NotEd25519)?;

    let path = &agent.config_path;
    let config_error = |e| RotateError::Config(path.clone(), e);
    let text = std::fs::read_to_string(path).map_err(config_error)?;
    let text = with_setting(&text, "server_key", &identity::openssh_public(&server_key));
    let text = match &keep {
        Some(key) => with_setting(&text, "server_key_previous", &identity::openssh_public(key)),
        None => without_setting(&text, "server_key_previous"),
    };
    write_atomic(path, text.as_bytes(), 0o600).map_err(config_error)?;
    identity::save(&config.key_path, &new_key).map_err(RotateError::Key)?;

    info!(
        "keys rotated: new server key trusted (the previous one until it is used), new agent key {}",
        identity::openssh_public(new_key.public_key())
    );
    config.server_key = Some(server_key);
    config.server_key_previous = keep;
    agent.set_config(config);
    agent.set_host_key(new_key);
    Ok(public)
}

/// To be called when `key` has authenticated: if it is the current server key, the previous one
/// is no longer needed and is dropped, in the file and in memory.
pub fn authenticated(agent: &Agent, key: &PublicKey) {
    let mut config = {
        let config = agent.config();
        let is_current = config
            .server_key
            .as_ref()
            .is_some_and(|k| k.key_data() == key.key_data());
        if !is_current || config.server_key_previous.is_none() {
            return;
        }
        config.clone()
    };
    config.server_key_previous = None;
    let path = &agent.config_path;
    let written = std::fs::read_to_string(path).and_then(|text| {
        let text = without_setting(&text, "server_key_previous");
        write_atomic(path, text.as_bytes(), 0o600)
    });
    match written {
        Ok(()) => info!("the new server key has authenticated; the previous one is now refused"),
        // Refused from now on all the same; after a restart it is dropped again on first use.
        Err(e) => warning!(
            "{}: cannot drop the previous server key: {e}",
            path.display()
        ),
    }
    agent.set_config(config);
}
