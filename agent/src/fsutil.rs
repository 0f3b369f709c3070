//! Files written so that a crash or power cut leaves either the old or the new content, never a
//! half-written file, and checks on files that hold secrets.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A temporary file beside its destination, removed on drop unless [`TempFile::commit`] renamed it
/// into place.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
    file: Option<File>,
}

impl TempFile {
    /// Creates a new, empty file with `mode` in `dir`, named after `stem` (never an existing
    /// file: created exclusively).
    pub fn create_in(dir: &Path, stem: &str, mode: u32) -> io::Result<TempFile> {
        for attempt in 0u32..16 {
            let path = dir.join(format!(".{stem}.{}.{attempt}.tmp", std::process::id()));
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&path)
            {
                Ok(file) => {
                    return Ok(TempFile {
                        path,
                        file: Some(file),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no free temporary file name",
        ))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file.
    pub fn file(&mut self) -> io::Result<&mut File> {
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("temporary file already closed"))
    }

    /// Flushes the data to disk and closes the file, keeping it until drop or commit.
    pub fn sync_and_close(&mut self) -> io::Result<()> {
        if let Some(file) = self.file.take() {
            file.sync_all()?;
        }
        Ok(())
    }

    /// Flushes, then renames the file to `dest` and flushes the directory entry.
    pub fn commit(mut self, dest: &Path) -> io::Result<()> {
        self.sync_and_close()?;
        fs::rename(&self.path, dest)?;
        self.path = PathBuf::new(); // nothing left to remove
        if let Some(dir) = dest.parent() {
            // Not every file system lets a directory be opened for syncing; the rename is done.
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Replaces `dest` with `contents` atomically; the file gets `mode`.
pub fn write_atomic(dest: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let stem = dest.file_name().and_then(|n| n.to_str()).unwrap_or("otto");
    let mut temp = TempFile::create_in(dir, stem, mode)?;
    temp.file()?.write_all(contents)?;
    // The mode given at creation is filtered by the umask; set it exactly.
    temp.file()?
        .set_permissions(fs::Permissions::from_mode(mode))?;
    temp.commit(dest)
}

/// Fails unless `path` is readable by its owner only (no group or other bits).
pub fn check_private(path: &Path) -> Result<(), String> {
    let meta = fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} has mode {mode:03o}: a private key must not be accessible by group or others (chmod 600 it)",
            path.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_with_the_mode_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        fs::write(&dest, "old").unwrap();
        write_atomic(&dest, b"new", 0o600).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"new");
        assert_eq!(
            fs::metadata(&dest).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_dropped_temp_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut temp = TempFile::create_in(dir.path(), "x", 0o600).unwrap();
        temp.file().unwrap().write_all(b"partial").unwrap();
        let path = temp.path().to_path_buf();
        assert!(path.exists());
        drop(temp);
        assert!(!path.exists());
    }

    #[test]
    fn check_private_refuses_group_or_other_access() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        fs::write(&path, "k").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(check_private(&path).unwrap_err().contains("mode 640"));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(check_private(&path).is_ok());
    }
}
