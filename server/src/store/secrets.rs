//! Secret variables at rest: AES-256-GCM with a random 96-bit nonce per value, under a key kept
//! beside the database (`secrets.key`: 64 hex digits and a newline, mode 0600, made on first
//! use, refused if group or others can read it). A sealed value is stored as the hex of
//! nonce ‖ ciphertext ‖ tag; the variable's scope, owner and name are its associated data, so
//! a value copied to another variable does not open.

use std::path::{Path, PathBuf};

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

/// The suffix of the key that is to replace [`KEY_FILE`] (`secrets.key.next`).
pub const NEXT_SUFFIX: &str = ".next";
/// The suffix of the key [`KEY_FILE`] replaced (`secrets.key.old`).
pub const OLD_SUFFIX: &str = ".old";

/// The key files of a data directory, read when a secret is sealed or opened: a value is
/// sealed with the key (`secrets.key`) and opened with it, else with the key to come
/// (`secrets.key.next`), else with the key before (`secrets.key.old`): any of them present, each
/// refused if group or others can read it. So while the key is being rotated, servers that
/// have switched and servers that have not yet can open what the others sealed.
#[derive(Debug, Clone)]
pub struct Keyring {
    path: PathBuf,
    /// Only `path`: no next or old key is tried.
    alone: bool,
}

impl Keyring {
    /// The key kept at `path`, with its next and old keys beside it.
    pub fn new(path: PathBuf) -> Keyring {
        Keyring { path, alone: false }
    }

    /// The key at `path` alone (a `secrets.key.next` to seal with).
    pub fn only(path: PathBuf) -> Keyring {
        Keyring { path, alone: true }
    }

    /// The path of the key.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of the key that is to replace it (`secrets.key.next`).
    pub fn next_path(&self) -> PathBuf {
        with_suffix(&self.path, NEXT_SUFFIX)
    }

    /// The path of the key it replaced (`secrets.key.old`).
    pub fn old_path(&self) -> PathBuf {
        with_suffix(&self.path, OLD_SUFFIX)
    }

    /// Encrypts `value` of the variable `label` (scope, owner and name) with the key, making
    /// the key if there is none yet (and no next or old key either: then it is missing, in the
    /// midst of a rotation).
    pub fn seal(&self, label: &str, value: &str) -> Result<String, SecretError> {
        let rotating = !self.alone && (self.next_path().exists() || self.old_path().exists());
        let cipher = cipher(&self.path, !rotating)?;
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

    /// Decrypts what [`Keyring::seal`] made for the variable `label`, with the key, else the
    /// next, else the old one.
    pub fn open(&self, label: &str, sealed: &str) -> Result<String, SecretError> {
        let mut found = false;
        for path in self.files() {
            let cipher = match cipher(&path, false) {
                Err(SecretError::Missing(_)) => continue,
                other => other?,
            };
            found = true;
            if let Some(plain) = decrypt(&cipher, label, sealed) {
                return Ok(plain);
            }
        }
        if found {
            Err(self.undecryptable(label))
        } else {
            Err(SecretError::Missing(self.path.clone()))
        }
    }

    /// Whether the key itself (not the next or old one) opens what was sealed for `label`.
    pub fn opens_with_key(&self, label: &str, sealed: &str) -> Result<bool, SecretError> {
        match cipher(&self.path, false) {
            Err(SecretError::Missing(_)) => Ok(false),
            Err(e) => Err(e),
            Ok(cipher) => Ok(decrypt(&cipher, label, sealed).is_some()),
        }
    }

    /// The files tried by [`Keyring::open`], in order.
    fn files(&self) -> Vec<PathBuf> {
        if self.alone {
            vec![self.path.clone()]
        } else {
            vec![self.path.clone(), self.next_path(), self.old_path()]
        }
    }

    fn undecryptable(&self, label: &str) -> SecretError {
        SecretError::Undecryptable(label.replace('\0', " "), self.path.clone())
    }
}

/// `path` with `suffix` added to its name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The plain text of `sealed` (for `label`) under `cipher`, if it opens.
fn decrypt(cipher: &Aes256Gcm, label: &str, sealed: &str) -> Option<String> {
    let bytes = unhex(sealed)?;
    let (nonce, data) = bytes.split_first_chunk::<NONCE_LEN>()?;
    let plain = cipher
        .decrypt(
            &Nonce::from(*nonce),
            Payload {
                msg: data,
                aad: label.as_bytes(),
            },
        )
        .ok()?;
    String::from_utf8(plain).ok()
}

/// The cipher of the key file at `path`, made first when `create` and there is none.
fn cipher(path: &Path, create: bool) -> Result<Aes256Gcm, SecretError> {
    let text = match private_file::read(path) {
        Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            if !create {
                return Err(SecretError::Missing(path.to_path_buf()));
            }
            write_new_key(path, Existing::Keep)?;
            private_file::read(path)
        }
        other => other,
    }
    .map_err(|e| match e {
        ReadError::Io(e) => SecretError::Io(path.to_path_buf(), e),
        ReadError::NotPrivate(mode) => SecretError::NotPrivate(path.to_path_buf(), mode),
    })?;
    let key = unhex(text.trim_end_matches('\n'))
        .filter(|k| k.len() == 32)
        .ok_or_else(|| SecretError::Format(path.to_path_buf()))?;
    Aes256Gcm::new_from_slice(&key).map_err(|_| SecretError::Format(path.to_path_buf()))
}

/// Writes a new random key at `path` (mode 0600), whole or not at all; with [`Existing::Keep`]
/// a key another process made first is kept.
fn write_new_key(path: &Path, existing: Existing) -> Result<(), SecretError> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(SecretError::Random)?;
    let text = format!("{}\n", hex(&key));
    private_file::write(path, text.as_bytes(), existing)
        .map_err(|e| SecretError::Io(path.to_path_buf(), e))
}

/// Writes a new random key at `path` (mode 0600), refusing to replace one there.
pub fn new_key_file(path: &Path) -> Result<(), SecretError> {
    if path.exists() {
        return Err(SecretError::Io(
            path.to_path_buf(),
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a key is there already (finish or undo the rotation it belongs to first)",
            ),
        ));
    }
    write_new_key(path, Existing::Keep)
}

/// What a secret variable's sealed value is bound to: its scope, owner and name.
pub fn variable_label(scope: &str, owner: &str, name: &str) -> String {
    format!("{scope}\0{owner}\0{name}")
}

/// What a sealed server key is bound to: its host and slot (`current`, `next`); never a
/// variable's label, whose scope is one of four others.
pub fn server_key_label(host: &str, slot: &str) -> String {
    format!("server-key\0{host}\0{slot}")
}

/// The associated data a webhook's secret is sealed with: its id.
pub fn webhook_label(id: i64) -> String {
    format!("webhook\0{id}")
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

    #[test]
    fn values_open_with_the_key_else_the_next_else_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keyring::new(dir.path().join(KEY_FILE));
        let sealed_old = keys.seal("a", "old").unwrap();
        new_key_file(&keys.next_path()).unwrap();
        assert!(new_key_file(&keys.next_path()).is_err());
        let next = Keyring::only(keys.next_path());
        let sealed_next = next.seal("a", "next").unwrap();
        // Both files there: each value opens; only the old one with the key itself.
        assert_eq!(keys.open("a", &sealed_old).unwrap(), "old");
        assert_eq!(keys.open("a", &sealed_next).unwrap(), "next");
        assert!(keys.opens_with_key("a", &sealed_old).unwrap());
        assert!(!keys.opens_with_key("a", &sealed_next).unwrap());
        assert!(next.open("a", &sealed_old).is_err(), "alone, no fallback");
        // Switched: the old key is .old.
        std::fs::rename(keys.path(), keys.old_path()).unwrap();
        // No key, but a rotation under way: none is made.
        assert!(matches!(keys.seal("a", "x"), Err(SecretError::Missing(_))));
        std::fs::rename(keys.next_path(), keys.path()).unwrap();
        assert_eq!(keys.open("a", &sealed_old).unwrap(), "old");
        assert_eq!(keys.open("a", &sealed_next).unwrap(), "next");
        assert!(!keys.opens_with_key("a", &sealed_old).unwrap());
        // Each file is checked as it is read.
        std::fs::set_permissions(keys.old_path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(keys.open("a", &sealed_next).unwrap(), "next");
        assert!(matches!(
            keys.open("a", &sealed_old),
            Err(SecretError::NotPrivate(_, 0o644))
        ));
        std::fs::remove_file(keys.old_path()).unwrap();
        assert!(matches!(
            keys.open("a", &sealed_old),
            Err(SecretError::Undecryptable(..))
        ));
    }
}
