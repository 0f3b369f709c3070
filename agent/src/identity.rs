//! The agent's own Ed25519 key: made on first start from the operating system's randomness, kept
//! in OpenSSH's private key format with mode 0600, and refused if anyone else could read it.

use std::fmt;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use getrandom::SysRng;
use otto_proto::ed25519::KeyEncodingError;
use rand_core::TryRng;
use russh::keys::ssh_key::private::{Ed25519Keypair, Ed25519PrivateKey};
use russh::keys::ssh_key::public::Ed25519PublicKey;
use russh::keys::{PrivateKey, PublicKey};

use crate::fsutil;
use crate::openssh::{self, FormatError};

/// Why the key could not be loaded or saved.
#[derive(Debug)]
pub enum KeyError {
    /// The key file is readable by group or others, or its mode cannot be read.
    NotPrivate(fsutil::PrivateError),
    /// Reading or writing the file failed.
    Io(PathBuf, std::io::Error),
    /// The file is not an unencrypted OpenSSH Ed25519 private key.
    Format(PathBuf, FormatError),
    /// The file's public key does not belong to its private key.
    Mismatch(PathBuf),
    /// The operating system gave no randomness.
    Random(getrandom::Error),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::NotPrivate(e) => e.fmt(f),
            KeyError::Io(path, e) => write!(f, "{}: {e}", path.display()),
            KeyError::Format(path, e) => write!(f, "{}: {e}", path.display()),
            KeyError::Mismatch(path) => write!(
                f,
                "{}: the public key in the file does not belong to its private key",
                path.display()
            ),
            KeyError::Random(e) => write!(f, "no randomness from the operating system: {e}"),
        }
    }
}

impl std::error::Error for KeyError {}

/// Why 32 bytes are not a usable Ed25519 public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawKeyError {
    /// Not a canonical encoding, or a point of small order (a weak key, such as all zeros):
    /// the protocol's own check ([`otto_proto::ed25519`]).
    Encoding(KeyEncodingError),
    /// The bytes are not the encoding of a point on the curve.
    OffCurve,
}

impl fmt::Display for RawKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RawKeyError::Encoding(e) => e.fmt(f),
            RawKeyError::OffCurve => {
                f.write_str("not a valid Ed25519 public key (not a point on the curve)")
            }
        }
    }
}

impl std::error::Error for RawKeyError {}

/// Makes a new Ed25519 key.
pub fn generate() -> Result<PrivateKey, KeyError> {
    let mut seed = [0u8; 32];
    SysRng.try_fill_bytes(&mut seed).map_err(KeyError::Random)?;
    Ok(from_seed(&seed))
}

/// The key pair of a 32-byte Ed25519 seed.
pub(crate) fn from_seed(seed: &[u8; 32]) -> PrivateKey {
    let public = SigningKey::from_bytes(seed).verifying_key().to_bytes();
    PrivateKey::from(Ed25519Keypair {
        public: Ed25519PublicKey(public),
        private: Ed25519PrivateKey::from_bytes(seed),
    })
}

/// Loads the key at `path`, refusing a file that group or others can read.
pub fn load(path: &Path) -> Result<PrivateKey, KeyError> {
    fsutil::check_private(path).map_err(KeyError::NotPrivate)?;
    let text = std::fs::read_to_string(path).map_err(|e| KeyError::Io(path.into(), e))?;
    let (seed, public) =
        openssh::parse_private_file(&text).map_err(|e| KeyError::Format(path.into(), e))?;
    let key = from_seed(&seed);
    if raw_public(key.public_key()) != Some(public) {
        return Err(KeyError::Mismatch(path.into()));
    }
    Ok(key)
}

/// Saves `key` at `path` atomically with mode 0600.
pub fn save(path: &Path, key: &PrivateKey) -> Result<(), KeyError> {
    // Every key the agent holds is Ed25519 (`generate`, `load`); the server sends raw Ed25519.
    let Some(pair) = key.key_data().ed25519() else {
        return Err(KeyError::Format(
            path.into(),
            FormatError::Algorithm(key.algorithm().as_str().into()),
        ));
    };
    let mut check = [0u8; 4];
    SysRng
        .try_fill_bytes(&mut check)
        .map_err(KeyError::Random)?;
    let text = openssh::private_file(
        &pair.private.to_bytes(),
        &pair.public.0,
        u32::from_ne_bytes(check),
    );
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| KeyError::Io(dir.into(), e))?;
    }
    fsutil::write_atomic(path, text.as_bytes(), 0o600).map_err(|e| KeyError::Io(path.into(), e))
}

/// Loads the key at `path`, or makes and saves one if there is no file yet.
pub fn load_or_create(path: &Path) -> Result<PrivateKey, KeyError> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => load(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = generate()?;
            save(path, &key)?;
            Ok(key)
        }
        Err(e) => Err(KeyError::Io(path.into(), e)),
    }
}

/// The public half in OpenSSH form, `ssh-ed25519 AAAA…`.
pub fn openssh_public(key: &PublicKey) -> String {
    // Every key the agent handles is Ed25519; an empty string would be refused anyway.
    raw_public(key).map_or_else(String::new, |raw| openssh::public_line(&raw))
}

/// The raw 32 bytes of an Ed25519 public key, as the protocol carries them.
pub fn raw_public(key: &PublicKey) -> Option<[u8; 32]> {
    key.key_data().ed25519().map(|k| k.0)
}

/// A public key from the protocol's raw 32 bytes. Refuses encodings that are not canonical
/// (several byte strings for one key), the weak keys (points of small order, such as all
/// zeros), which no real key pair has and which would let anyone forge signatures, and bytes
/// that are not a point on the curve.
pub fn public_from_raw(bytes: [u8; 32]) -> Result<PublicKey, RawKeyError> {
    otto_proto::ed25519::check_public_key(&bytes).map_err(RawKeyError::Encoding)?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| RawKeyError::OffCurve)?;
    Ok(PublicKey::from(Ed25519PublicKey(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn creates_once_with_mode_0600_then_loads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/agent.key");
        let first = load_or_create(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let again = load_or_create(&path).unwrap();
        assert_eq!(first.public_key(), again.public_key());
        assert!(openssh_public(first.public_key()).starts_with("ssh-ed25519 AAAA"));
        assert_ne!(generate().unwrap().public_key(), first.public_key());
    }

    #[test]
    fn refuses_a_readable_key_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.key");
        load_or_create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(load(&path), Err(KeyError::NotPrivate(_))));
        std::fs::write(&path, "not a key").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(load(&path), Err(KeyError::Format(..))));
    }

    #[test]
    fn raw_public_keys_round_trip() {
        let key = generate().unwrap();
        let raw = raw_public(key.public_key()).unwrap();
        assert_eq!(&public_from_raw(raw).unwrap(), key.public_key());
    }

    #[test]
    fn raw_public_keys_off_the_curve_of_small_order_or_not_canonical_are_refused() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut off_curve = [0u8; 32];
        off_curve[0] = 2; // y = 2 is not the y of any point
        let small = RawKeyError::Encoding(KeyEncodingError::SmallOrder);
        let not_canonical = RawKeyError::Encoding(KeyEncodingError::NotCanonical);
        for (raw, why) in [
            ([0u8; 32], small),
            (identity, small),
            (off_curve, RawKeyError::OffCurve),
            // y = 2^255 - 1 ≥ p, sign bit set: ed25519-dalek reads it as y = 18.
            ([0xff; 32], not_canonical),
        ] {
            assert_eq!(public_from_raw(raw).unwrap_err(), why, "{raw:?}");
        }
        // The texts the server reports.
        assert_eq!(
            RawKeyError::OffCurve.to_string(),
            "not a valid Ed25519 public key (not a point on the curve)"
        );
        assert_eq!(
            small.to_string(),
            "not a usable Ed25519 public key (a point of small order)"
        );
        assert_eq!(
            not_canonical.to_string(),
            "not a valid Ed25519 public key (not a canonical encoding)"
        );
    }
}
