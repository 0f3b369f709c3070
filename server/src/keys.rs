//! Server keys: one Ed25519 key pair per host, in OpenSSH's format (as text for the store, or a
//! file with mode 0600 written atomically); OpenSSH public-key text in and out.

use std::path::{Path, PathBuf};

use otto_proto::ed25519::KeyEncodingError;
use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{PrivateKey, PublicKey};

use crate::private_file::{self, Existing, ReadError};

/// Why a key could not be made, read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The operating system gave no randomness.
    #[error("no randomness from the operating system: {0}")]
    Random(getrandom::Error),
    /// Reading or writing failed.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// The file is readable by group or others.
    #[error("{0} has mode {1:03o}: a private key must not be accessible by group or others")]
    NotPrivate(PathBuf, u32),
    /// Not an OpenSSH Ed25519 key.
    #[error("{0}: {1}")]
    Format(String, String),
}

/// A new Ed25519 key.
pub fn generate() -> Result<PrivateKey, KeyError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(KeyError::Random)?;
    Ok(PrivateKey::from(Ed25519Keypair::from_seed(&seed)))
}

/// Saves `key` at `path` atomically (temporary file, fsync, rename) with mode 0600.
pub fn save(path: &Path, key: &PrivateKey) -> Result<(), KeyError> {
    let text = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| KeyError::Format(path.display().to_string(), e.to_string()))?;
    private_file::write(path, text.as_bytes(), Existing::Replace)
        .map_err(|e| KeyError::Io(path.to_path_buf(), e))
}

/// Loads the key at `path`, refusing a file that group or others can read.
pub fn load(path: &Path) -> Result<PrivateKey, KeyError> {
    let text = private_file::read(path).map_err(|e| match e {
        ReadError::Io(e) => KeyError::Io(path.to_path_buf(), e),
        ReadError::NotPrivate(mode) => KeyError::NotPrivate(path.to_path_buf(), mode),
    })?;
    PrivateKey::from_openssh(text)
        .map_err(|e| KeyError::Format(path.display().to_string(), e.to_string()))
}

/// `key` as OpenSSH private-key text, as the store keeps it (zeroed when dropped).
pub fn to_text(key: &PrivateKey) -> Result<impl std::ops::Deref<Target = String>, KeyError> {
    key.to_openssh(LineEnding::LF)
        .map_err(|e| KeyError::Format("a server key".into(), e.to_string()))
}

/// The key of OpenSSH private-key `text`, the server key of `host`.
pub fn from_text(host: &str, text: &str) -> Result<PrivateKey, KeyError> {
    PrivateKey::from_openssh(text)
        .map_err(|e| KeyError::Format(format!("the server key of {host}"), e.to_string()))
}

/// A public key as OpenSSH text, `ssh-ed25519 AAAA…`.
pub fn to_openssh(key: &PublicKey) -> String {
    key.to_openssh().unwrap_or_default()
}

/// Parses OpenSSH public-key text, requiring a usable Ed25519 key: its encoding canonical and
/// not of small order ([`usable`]).
pub fn parse_public(text: &str) -> Result<PublicKey, KeyError> {
    let key = PublicKey::from_openssh(text.trim())
        .map_err(|e| KeyError::Format(text.into(), e.to_string()))?;
    if key.algorithm() != russh::keys::Algorithm::Ed25519 {
        return Err(KeyError::Format(
            text.into(),
            "not an ssh-ed25519 key".into(),
        ));
    }
    usable(&key).map_err(|e| KeyError::Format(text.into(), e.to_string()))?;
    Ok(key)
}

/// Whether an Ed25519 key is one either side accepts: the protocol's check of its 32 bytes
/// ([`otto_proto::ed25519`]). Other algorithms are the caller's to refuse.
pub fn usable(key: &PublicKey) -> Result<(), KeyEncodingError> {
    match key.key_data().ed25519() {
        Some(raw) => otto_proto::ed25519::check_public_key(&raw.0),
        None => Ok(()),
    }
}

/// The short form people compare: `SHA256:…`.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(Default::default()).to_string()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn keys_are_saved_private_and_load_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/host.key");
        let key = generate().unwrap();
        save(&path, &key).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(load(&path).unwrap().public_key(), key.public_key());
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1,
            "no temp file left"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(load(&path), Err(KeyError::NotPrivate(_, 0o644))));
        let text = to_openssh(key.public_key());
        assert_eq!(
            parse_public(&text).unwrap().key_data(),
            key.public_key().key_data()
        );
        assert!(parse_public("ssh-rsa AAAA").is_err());
    }

    #[test]
    fn keys_not_canonical_or_of_small_order_are_refused() {
        use russh::keys::ssh_key::public::Ed25519PublicKey;

        let text = |raw: [u8; 32]| to_openssh(&PublicKey::from(Ed25519PublicKey(raw)));
        // y = 2^255 - 1 (at or above p), sign bit set: what a rotation once let through.
        let error = parse_public(&text([0xff; 32])).unwrap_err().to_string();
        assert!(
            error.ends_with(": not a valid Ed25519 public key (not a canonical encoding)"),
            "{error}"
        );
        let error = parse_public(&text([0; 32])).unwrap_err().to_string();
        assert!(
            error.ends_with(": not a usable Ed25519 public key (a point of small order)"),
            "{error}"
        );
        let key = generate().unwrap();
        assert!(usable(key.public_key()).is_ok());
    }
}
