//! Receiving a file: streamed into a temporary file in the target's directory while it is hashed
//! (never held whole in memory), SHA-256 checked, fsynced, given its owner and mode, and only
//! then put in place over the target. The temporary file has no name where the file system
//! allows it (see `fsutil`), so not even a killed agent leaves it behind; on any other failure it
//! is removed, and the old target is untouched.

use std::io::Write;
use std::os::unix::fs::{PermissionsExt, fchown};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use otto_proto::Credentials;
use sha2::{Digest, Sha256};

use crate::fsutil::TempFile;
use crate::link::{Incoming, Reader, Upload};
use crate::script::is_root;

/// Checks a request before its data is accepted; returns the target's directory.
fn check(upload: &Upload) -> Result<&Path, String> {
    let path = Path::new(&upload.path);
    if !path.is_absolute() || path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(format!(
            "`{}` is not an absolute path without `..`",
            upload.path
        ));
    }
    if upload.mode > 0o7777 {
        return Err(format!("mode {:o} is not a file mode", upload.mode));
    }
    if matches!(upload.owner, Credentials::Ids { .. }) && !is_root() {
        return Err("setting a file's owner needs the agent to run as root".into());
    }
    if path.is_dir() {
        return Err(format!("{} is a directory", upload.path));
    }
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .ok_or_else(|| format!("`{}` has no directory", upload.path))
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
pub fn prepare(upload: &Upload, config_path: &Path) -> Result<TempFile, String> {
    let dir = check(upload)?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let stem = Path::new(&upload.path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("upload");
    TempFile::create_recorded(dir, stem, 0o600, &records(config_path))
        .map_err(|e| format!("{}: {e}", dir.display()))
}

/// Receives the data into `temp` and puts it in place. Errors leave the target as it was (the
/// temporary file is removed when `temp` is dropped).
pub async fn receive(
    reader: &mut Reader,
    upload: &Upload,
    mut temp: TempFile,
) -> Result<(), String> {
    let mut hasher = Sha256::new();
    let mut received = 0u64;
    while received < upload.len {
        match reader.next(Duration::MAX).await {
            Ok(Incoming::Data(chunk)) => {
                received += chunk.len() as u64;
                hasher.update(&chunk);
                temp.file()
                    .write_all(&chunk)
                    .map_err(|e| format!("writing {}: {e}", upload.path))?;
            }
            Ok(_) => return Err("the file's data ended early".into()),
            Err(e) => return Err(e.to_string()),
        }
    }
    let digest: [u8; 32] = hasher.finalize().into();
    if digest != upload.sha256 {
        return Err(format!(
            "checksum mismatch: expected {}, received {}",
            hex(&upload.sha256),
            hex(&digest)
        ));
    }
    let file = temp.file();
    if let Credentials::Ids { uid, gid } = upload.owner {
        fchown(&*file, Some(uid), Some(gid)).map_err(|e| format!("chown {}: {e}", upload.path))?;
    }
    file.set_permissions(std::fs::Permissions::from_mode(upload.mode))
        .map_err(|e| format!("chmod {}: {e}", upload.path))?;
    temp.commit(Path::new(&upload.path))
        .map_err(|e| format!("{}: {e}", upload.path))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
