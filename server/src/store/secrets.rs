//! Secret variables at rest: AES-256-GCM with a random 96-bit nonce per value, under a key kept
//! beside the database (`secrets.key`: 64 hex digits and a newline, mode 0600, made on first
//! use, refused if group or others can read it). A sealed value is stored as the hex of
//! nonce ‖ ciphertext ‖ tag; the variable's scope, owner and name are its associated data, so
//! a value copied to another variable does not open.

use std::path::PathBuf;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

use crate::private_file::{self, Existing, ReadError};

/// The key file's name, in the data directory.
pub const KEY_FILE: &str = "secrets.key";

const NONCE_LEN: usize = 12;

/// Why a secret could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The operating system gave no randomness.
    #[error("no randomness from the operating system: {0}")]
    Random(getrandom::Error),
    /// Reading or writing the key file failed.
    #[error("secrets key {0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// The key file is missing while secrets are stored encrypted.
    #[error(
        "secrets key {0} is missing: the secret variables in the database cannot be decrypted (restore the key file from a backup of the data directory)"
    )]
    Missing(PathBuf),
    /// The key file is readable by group or others.
    #[error("secrets key {0} has mode {1:03o}: it must not be accessible by group or others")]
    NotPrivate(PathBuf, u32),
    /// The key file does not hold 64 hex digits.
    #[error("secrets key {0} is not 64 hex digits")]
    Format(PathBuf),
    /// A stored value does not open with this key.
    #[error(
        "secret {0} cannot be decrypted with {1}: the value is damaged or was encrypted with another key"
    )]
    Undecryptable(String, PathBuf),
}

/// The key file of a data directory, read when a secret is sealed or opened.
#[derive(Debug, Clone)]
pub struct Keyring {
    path: PathBuf,
}

impl Keyring {
    /// The key kept at `path`.
    pub fn new(path: PathBuf) -> Keyring {
        Keyring { path }
    }

    /// Encrypts `value` of the variable `label` (scope, owner and name), making the key if there
    /// is none yet.
    pub fn seal(&self, label: &str, value: &str) -> Result<String, SecretError> {
        let cipher = self.cipher(true)?;
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(SecretError::Random)?;
        let sealed = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: value.as_bytes(),
                    aad: label.as_bytes(),
                },
            )
            .map_err(|_| self.undecryptable(label))?;
        Ok(hex(&nonce) + &hex(&sealed))
    }

    /// Decrypts what [`Keyring::seal`] made for the variable `label`.
    pub fn open(&self, label: &str, sealed: &str) -> Result<String, SecretError> {
        let cipher = self.cipher(false)?;
        let bytes = unhex(sealed).ok_or_else(|| self.undecryptable(label))?;
        let (nonce, data) = bytes
            .split_first_chunk::<NONCE_LEN>()
            .ok_or_else(|| self.undecryptable(label))?;
        let plain = cipher
            .decrypt(
                &Nonce::from(*nonce),
                Payload {
                    msg: data,
                    aad: label.as_bytes(),
                },
            )
            .map_err(|_| self.undecryptable(label))?;
        String::from_utf8(plain).map_err(|_| self.undecryptable(label))
    }

    fn undecryptable(&self, label: &str) -> SecretError {
        SecretError::Undecryptable(label.replace('\0', " "), self.path.clone())
    }

    /// The cipher of the key file, made first when `create` and there is none.
    fn cipher(&self, create: bool) -> Result<Aes256Gcm, SecretError> {
        let text = match private_file::read(&self.path) {
            Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                if !create {
                    return Err(SecretError::Missing(self.path.clone()));
                }
                self.create()?;
                private_file::read(&self.path)
            }
            other => other,
        }
        .map_err(|e| match e {
            ReadError::Io(e) => SecretError::Io(self.path.clone(), e),
            ReadError::NotPrivate(mode) => SecretError::NotPrivate(self.path.clone(), mode),
        })?;
        let key = unhex(text.trim_end_matches('\n'))
            .filter(|k| k.len() == 32)
            .ok_or_else(|| SecretError::Format(self.path.clone()))?;
        Aes256Gcm::new_from_slice(&key).map_err(|_| SecretError::Format(self.path.clone()))
    }

    /// Writes a new random key, whole or not at all; a key another process made first is kept.
    fn create(&self) -> Result<(), SecretError> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(SecretError::Random)?;
        let text = format!("{}\n", hex(&key));
        private_file::write(&self.path, text.as_bytes(), Existing::Keep)
            .map_err(|e| SecretError::Io(self.path.clone(), e))
    }
}

/// Lower-case hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of hex text, or `None` if it is not hex.
fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn values_seal_and_open_only_with_their_key_and_label() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        let keys = Keyring::new(path.clone());
        assert!(matches!(keys.open("a", "00"), Err(SecretError::Missing(_))));
        let sealed = keys.seal("host\0r1\0TOKEN", "hunter2").unwrap();
        assert!(!sealed.contains("hunter2"));
        assert_ne!(sealed, keys.seal("host\0r1\0TOKEN", "hunter2").unwrap());
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(keys.open("host\0r1\0TOKEN", &sealed).unwrap(), "hunter2");
        assert!(matches!(
            keys.open("host\0r2\0TOKEN", &sealed),
            Err(SecretError::Undecryptable(..))
        ));
        for garbage in ["", "zz", "0011", &sealed[..sealed.len() - 2]] {
            assert!(keys.open("host\0r1\0TOKEN", garbage).is_err(), "{garbage}");
        }

        let other = tempfile::tempdir().unwrap();
        let other = Keyring::new(other.path().join(KEY_FILE));
        other.seal("x", "y").unwrap();
        assert!(matches!(
            other.open("host\0r1\0TOKEN", &sealed),
            Err(SecretError::Undecryptable(..))
        ));

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            keys.open("host\0r1\0TOKEN", &sealed),
            Err(SecretError::NotPrivate(_, 0o640))
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "not hex\n").unwrap();
        assert!(matches!(
            keys.open("host\0r1\0TOKEN", &sealed),
            Err(SecretError::Format(_))
        ));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file"
        );
    }
}
