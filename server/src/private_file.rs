//! Files only their owner may read (the secrets key, the enrollment key): written whole
//! or not at all with mode 0600, and refused on reading when group or others can reach them.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// What [`write`] does when the file already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Put the new file in its place.
    Replace,
    /// Keep it (another process made it first).
    Keep,
}

/// Why a private file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Reading failed (or the file is not there).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Group or others may access it: its mode.
    #[error("mode {0:03o}")]
    NotPrivate(u32),
}

/// Writes `contents` at `path` (making its directory) with mode 0600, whole or not at all: a
/// temporary file beside it, synced, then renamed over `path` or linked to it, as `existing`
/// says. No temporary file is left behind.
pub fn write(path: &Path, contents: &[u8], existing: Existing) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)?;
        // Whatever the umask or an older file of that name had.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(contents)?;
        file.sync_all()?;
        match existing {
            Existing::Replace => std::fs::rename(&temp, path),
            Existing::Keep => match std::fs::hard_link(&temp, path) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                other => other,
            },
        }
    })();
    // After a rename there is nothing left to remove; after a link or a failure, the temporary.
    let _ = std::fs::remove_file(&temp);
    result
}

/// The text of `path`, refusing a file that group or others can access.
pub fn read(path: &Path) -> Result<String, ReadError> {
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ReadError::NotPrivate(mode));
    }
    Ok(std::fs::read_to_string(path)?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn files_are_written_private_whole_and_read_back_only_while_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/secret");
        write(&path, b"one", Existing::Replace).unwrap();
        assert_eq!((mode(&path), read(&path).unwrap().as_str()), (0o600, "one"));
        write(&path, b"two", Existing::Replace).unwrap();
        assert_eq!(read(&path).unwrap(), "two");
        // A file that is there already is kept when asked to.
        write(&path, b"three", Existing::Keep).unwrap();
        assert_eq!(read(&path).unwrap(), "two");
        let left: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["secret"], "no temporary file left");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(read(&path), Err(ReadError::NotPrivate(0o640))));
        assert!(matches!(
            read(&dir.path().join("none")),
            Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound
        ));
    }
}
