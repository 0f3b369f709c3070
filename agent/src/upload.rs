//! Receiving a file: streamed into a temporary file in the target's directory while it is hashed
//! (never held whole in memory) and written out to the device, SHA-256 checked, fsynced, given its owner and mode, and only
//! then put in place over the target. The temporary file has no name where the file system
//! allows it (see `fsutil`), so not even a killed agent leaves it behind; on any other failure it
//! is removed, and the old target is untouched.

use std::fmt;
use std::io::{self, Write};
use std::os::unix::fs::{PermissionsExt, fchown};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use otto_proto::Credentials;
use sha2::{Digest, Sha256};

use crate::fsutil::{TempFile, WriteBehind};
use crate::link::{Incoming, LinkError, Reader, Upload};
use crate::script::is_root;

/// Why an upload was refused or failed; the target is as it was.
#[derive(Debug)]
pub enum UploadError<'a> {
    /// The target path (given) is relative or has a `..`.
    NotAbsolute(&'a str),
    /// The mode (given) has bits beyond 0o7777.
    Mode(u32),
    /// An owner was given, but the agent does not run as root.
    OwnerNeedsRoot,
    /// The target (given) is a directory.
    IsDirectory(&'a str),
    /// The target (given) has no directory part.
    NoDirectory(&'a str),
    /// The target's directory (given) could not be made, or the temporary file in it.
    Directory(PathBuf, io::Error),
    /// Writing the data to the temporary file for the target (given) failed.
    Write(&'a str, io::Error),
    /// The server sent a frame where the file's data was still due.
    EndedEarly,
    /// A streamed upload's data was not followed by its SHA-256 (`UploadDigest` for the action).
    NoDigest,
    /// The channel failed while the data came in.
    Link(LinkError),
    /// The data's SHA-256 is not the one announced.
    Checksum {
        /// The SHA-256 in the request.
        expected: [u8; 32],
        /// The SHA-256 of the data received.
        received: [u8; 32],
    },
    /// Giving the file (the target, given) its owner failed.
    Chown(&'a str, io::Error),
    /// Giving the file (the target, given) its mode failed.
    Chmod(&'a str, io::Error),
    /// Putting the file in place as the target (given) failed.
    Commit(&'a str, io::Error),
}

impl fmt::Display for UploadError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UploadError::NotAbsolute(path) => {
                write!(f, "`{path}` is not an absolute path without `..`")
            }
            UploadError::Mode(mode) => write!(f, "mode {mode:o} is not a file mode"),
            UploadError::OwnerNeedsRoot => {
                f.write_str("setting a file's owner needs the agent to run as root")
            }
            UploadError::IsDirectory(path) => write!(f, "{path} is a directory"),
            UploadError::NoDirectory(path) => write!(f, "`{path}` has no directory"),
            UploadError::Directory(dir, e) => write!(f, "{}: {e}", dir.display()),
            UploadError::Write(path, e) => write!(f, "writing {path}: {e}"),
            UploadError::EndedEarly => f.write_str("the file's data ended early"),
            UploadError::NoDigest => f.write_str("the file's checksum did not follow its data"),
            UploadError::Link(e) => e.fmt(f),
            UploadError::Checksum { expected, received } => {
                f.write_str("checksum mismatch: expected ")?;
                hex(f, expected)?;
                f.write_str(", received ")?;
                hex(f, received)
            }
            UploadError::Chown(path, e) => write!(f, "chown {path}: {e}"),
            UploadError::Chmod(path, e) => write!(f, "chmod {path}: {e}"),
            UploadError::Commit(path, e) => write!(f, "{path}: {e}"),
        }
    }
}

impl std::error::Error for UploadError<'_> {}

/// Writes `bytes` in lower-case hexadecimal.
fn hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
}

/// Checks a request before its data is accepted; returns the target's directory.
fn check(upload: &Upload) -> Result<&Path, UploadError<'_>> {
    let path = Path::new(&upload.path);
    if !path.is_absolute() || path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(UploadError::NotAbsolute(&upload.path));
    }
    if upload.mode > 0o7777 {
        return Err(UploadError::Mode(upload.mode));
    }
    if matches!(upload.owner, Credentials::Ids { .. }) && !is_root() {
        return Err(UploadError::OwnerNeedsRoot);
    }
    if path.is_dir() {
        return Err(UploadError::IsDirectory(&upload.path));
    }
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .ok_or_else(|| UploadError::NoDirectory(&upload.path))
}

/// Where the named temporary files of uploads in progress are recorded (for file systems without
/// anonymous files), so that the next start removes those a killed agent left: beside the
/// configuration file, which survives reboots.
pub fn records(config_path: &Path) -> PathBuf {
    let mut name = config_path.as_os_str().to_owned();
    name.push(".uploads");
    PathBuf::from(name)
}

/// Checks the request and prepares the temporary file in the target's directory, creating
/// missing directories; a named one is recorded in [`records`] of `config_path`.
pub fn prepare<'a>(upload: &'a Upload, config_path: &Path) -> Result<TempFile, UploadError<'a>> {
    let dir = check(upload)?;
    std::fs::create_dir_all(dir).map_err(|e| UploadError::Directory(dir.into(), e))?;
    let stem = Path::new(&upload.path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("upload");
    TempFile::create_recorded(dir, stem, 0o600, &records(config_path))
        .map_err(|e| UploadError::Directory(dir.into(), e))
}

/// Streams `len` bytes of data into `file` (never held whole in memory) and checks that their
/// SHA-256 is `sha256`, or, when that is `None` (an `UploadStream`), the one of the
/// `UploadDigest` of `action` that must follow the data; `what` names the file in errors.
pub async fn receive_checked<'a>(
    reader: &mut Reader,
    file: &mut std::fs::File,
    len: u64,
    sha256: Option<[u8; 32]>,
    action: u64,
    what: &'a str,
) -> Result<(), UploadError<'a>> {
    let mut hasher = Sha256::new();
    let mut received = 0u64;
    let mut behind = WriteBehind::default();
    while received < len {
        match reader.next(Duration::MAX).await {
            Ok(Incoming::Data(chunk)) => {
                received += chunk.len() as u64;
                hasher.update(&chunk);
                file.write_all(&chunk)
                    .map_err(|e| UploadError::Write(what, e))?;
                behind.wrote(file, chunk.len());
            }
            Ok(_) => return Err(UploadError::EndedEarly),
            Err(e) => return Err(UploadError::Link(e)),
        }
    }
    let expected = match sha256 {
        Some(sha256) => sha256,
        // The digest is part of the request: the peer may pause before it as inside one.
        None => match reader.next(reader.idle()).await {
            Ok(Incoming::Digest { action: a, sha256 }) if a == action => sha256,
            Ok(_) => return Err(UploadError::NoDigest),
            Err(e) => return Err(UploadError::Link(e)),
        },
    };
    let digest: [u8; 32] = hasher.finalize().into();
    if digest != expected {
        return Err(UploadError::Checksum {
            expected,
            received: digest,
        });
    }
    Ok(())
}

/// Receives the data into `temp` and puts it in place. Errors leave the target as it was (the
/// temporary file is removed when `temp` is dropped).
pub async fn receive<'a>(
    reader: &mut Reader,
    upload: &'a Upload,
    mut temp: TempFile,
) -> Result<(), UploadError<'a>> {
    let (len, sha256, action) = (upload.len, upload.sha256, upload.action);
    receive_checked(reader, temp.file(), len, sha256, action, &upload.path).await?;
    let file = temp.file();
    if let Credentials::Ids { uid, gid } = upload.owner {
        fchown(&*file, Some(uid), Some(gid)).map_err(|e| UploadError::Chown(&upload.path, e))?;
    }
    file.set_permissions(std::fs::Permissions::from_mode(upload.mode))
        .map_err(|e| UploadError::Chmod(&upload.path, e))?;
    temp.commit(Path::new(&upload.path))
        .map_err(|e| UploadError::Commit(&upload.path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_as_the_server_has_always_seen_them() {
        let io = || io::Error::from(io::ErrorKind::PermissionDenied);
        let denied = io().to_string();
        let cases = [
            (
                UploadError::NotAbsolute("a/../b"),
                "`a/../b` is not an absolute path without `..`".to_string(),
            ),
            (
                UploadError::Mode(0o17777),
                "mode 17777 is not a file mode".into(),
            ),
            (
                UploadError::OwnerNeedsRoot,
                "setting a file's owner needs the agent to run as root".into(),
            ),
            (
                UploadError::IsDirectory("/etc"),
                "/etc is a directory".into(),
            ),
            (UploadError::NoDirectory("/"), "`/` has no directory".into()),
            (
                UploadError::Directory("/d".into(), io()),
                format!("/d: {denied}"),
            ),
            (
                UploadError::Write("/f", io()),
                format!("writing /f: {denied}"),
            ),
            (
                UploadError::EndedEarly,
                "the file's data ended early".into(),
            ),
            (
                UploadError::NoDigest,
                "the file's checksum did not follow its data".into(),
            ),
            (
                UploadError::Chown("/f", io()),
                format!("chown /f: {denied}"),
            ),
            (
                UploadError::Chmod("/f", io()),
                format!("chmod /f: {denied}"),
            ),
            (UploadError::Commit("/f", io()), format!("/f: {denied}")),
        ];
        for (error, text) in cases {
            assert_eq!(error.to_string(), text);
        }
    }

    #[test]
    fn a_checksum_mismatch_names_both_sums_in_hex() {
        let mut received = [0u8; 32];
        received[0] = 0xab;
        received[31] = 0x01;
        let error = UploadError::Checksum {
            expected: [0xff; 32],
            received,
        };
        assert_eq!(
            error.to_string(),
            format!(
                "checksum mismatch: expected {}, received ab{}01",
                "ff".repeat(32),
                "00".repeat(30)
            )
        );
    }
}
