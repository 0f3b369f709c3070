//! Files written so that a crash or power cut leaves either the old or the new content, never a
//! half-written file, and checks on files that hold secrets.
//!
//! A file being written has no name where the file system allows it (Linux `O_TMPFILE`): if the
//! agent dies, the kernel frees it, and nothing is left behind. It gets a name only once it is
//! complete (`linkat`, then `rename` over the destination). Where the file system refuses
//! anonymous files, it is a named file `.{stem}.{pid}.{n}.tmp` instead, removed on every error
//! path; those a killed agent left are removed at its next start, by [`remove_stale`] in the
//! directories the agent knows, and by [`remove_recorded`] wherever they were recorded.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// How many names a named temporary file tries before giving up.
const NAME_ATTEMPTS: u32 = 16;

/// A new file in a directory that appears under its final name only through
/// [`TempFile::commit`]; dropped uncommitted, it leaves nothing behind.
#[derive(Debug)]
pub struct TempFile {
    file: File,
    dir: PathBuf,
    stem: String,
    /// The file's name if it has one (the fallback); `None` for an anonymous file.
    name: Option<PathBuf>,
    /// The record of the named file, removed after it (fields drop after `Drop::drop`).
    _record: Option<Record>,
}

impl TempFile {
    /// Creates a new, empty file with `mode` in `dir`: anonymous if the file system allows it,
    /// else named after `stem` (created exclusively, never an existing file).
    pub fn create_in(dir: &Path, stem: &str, mode: u32) -> io::Result<TempFile> {
        let anonymous = OpenOptions::new()
            .read(true)
            .write(true)
            .mode(mode)
            .custom_flags(libc::O_TMPFILE)
            .open(dir);
        match anonymous {
            Ok(file) => Ok(TempFile {
                file,
                dir: dir.to_path_buf(),
                stem: stem.to_string(),
                name: None,
                _record: None,
            }),
            // The file system (EOPNOTSUPP) or the kernel (EISDIR, EINVAL: older than 3.11) has
            // no anonymous files.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
                ) =>
            {
                TempFile::named(dir, stem, mode)
            }
            Err(e) => Err(e),
        }
    }

    /// Like [`TempFile::create_in`]; a named file is also recorded in the directory `records`,
    /// which must survive restarts, so that [`remove_recorded`] finds it if the agent is killed.
    pub fn create_recorded(
        dir: &Path,
        stem: &str,
        mode: u32,
        records: &Path,
    ) -> io::Result<TempFile> {
        let mut temp = TempFile::create_in(dir, stem, mode)?;
        temp.record_in(records).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("recording it in {}: {e}", records.display()),
            )
        })?;
        Ok(temp)
    }

    /// Records the file's name in `records` if it has one.
    fn record_in(&mut self, records: &Path) -> io::Result<()> {
        if let Some(name) = &self.name {
            self._record = Some(Record::create(records, name)?);
        }
        Ok(())
    }

    /// Creates a new, empty file with `mode` in `dir`, named after `stem` (created exclusively).
    fn named(dir: &Path, stem: &str, mode: u32) -> io::Result<TempFile> {
        for attempt in 0..NAME_ATTEMPTS {
            let name = temp_name(dir, stem, attempt);
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&name)
            {
                Ok(file) => {
                    return Ok(TempFile {
                        file,
                        dir: dir.to_path_buf(),
                        stem: stem.to_string(),
                        name: Some(name),
                        _record: None,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(no_free_name())
    }

    /// The open file.
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// A path that opens the file: its name, or for an anonymous file `/proc/self/fd/N`, which
    /// opens it in this process and in a child that inherits [`TempFile::inheritable_fd`].
    pub fn path(&self) -> PathBuf {
        match &self.name {
            Some(name) => name.clone(),
            None => PathBuf::from(format!("/proc/self/fd/{}", self.file.as_raw_fd())),
        }
    }

    /// The descriptor a child process must inherit (its close-on-exec flag cleared, at the same
    /// number) to open [`TempFile::path`]; `None` when the file has a name.
    pub fn inheritable_fd(&self) -> Option<RawFd> {
        self.name.is_none().then(|| self.file.as_raw_fd())
    }

    /// Flushes the data to disk, then puts the file in place as `dest` (replacing it atomically)
    /// and flushes the directory entry. On failure nothing is left but the old `dest`.
    pub fn commit(mut self, dest: &Path) -> io::Result<()> {
        self.file.sync_all()?;
        let name = match self.name.take() {
            Some(name) => name,
            None => match link(&self.path(), dest) {
                // A new file appears whole at once.
                Ok(()) => return sync_dir(dest),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    // An existing file is replaced by rename: it needs a name for an instant.
                    link_named(&self.path(), &self.dir, &self.stem)?
                }
                Err(e) => return Err(e),
            },
        };
        if let Err(e) = fs::rename(&name, dest) {
            let _ = fs::remove_file(&name);
            return Err(e);
        }
        sync_dir(dest)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(name) = &self.name {
            let _ = fs::remove_file(name);
        }
    }
}

/// The name of a named temporary file.
fn temp_name(dir: &Path, stem: &str, attempt: u32) -> PathBuf {
    dir.join(format!(".{stem}.{}.{attempt}.tmp", std::process::id()))
}

/// The stem and process id in a name made by [`temp_name`].
fn parse_temp_name(name: &str) -> Option<(&str, i32)> {
    let rest = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (rest, attempt) = rest.rsplit_once('.')?;
    let (stem, pid) = rest.rsplit_once('.')?;
    attempt.parse::<u32>().ok()?;
    let pid = pid.parse::<i32>().ok().filter(|&p| p > 0)?;
    (!stem.is_empty()).then_some((stem, pid))
}

/// A symbolic link to a named temporary file in a directory of records; removed when dropped.
#[derive(Debug)]
struct Record(PathBuf);

/// Numbers the records of this process.
static RECORDS: AtomicUsize = AtomicUsize::new(0);

impl Record {
    /// Records `file` (an absolute path) in `records`, made with mode 0700 if missing.
    fn create(records: &Path, file: &Path) -> io::Result<Record> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(records)?;
        let number = RECORDS.fetch_add(1, Ordering::Relaxed);
        let link = records.join(format!("{}.{number}", std::process::id()));
        std::os::unix::fs::symlink(file, &link)?;
        Ok(Record(link))
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Removes the named temporary files recorded in `records` and the records: at the start, all of
/// them are a killed agent's. Returns how many files were removed.
pub fn remove_recorded(records: &Path) -> io::Result<usize> {
    let entries = match fs::read_dir(records) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let link = entry?.path();
        // Only ever a temporary file of ours, whatever the link says.
        let file = fs::read_link(&link).ok().filter(|file| {
            file.file_name()
                .and_then(|n| n.to_str())
                .and_then(parse_temp_name)
                .is_some()
        });
        if let Some(file) = file {
            match fs::remove_file(&file) {
                Ok(()) => removed += 1,
                // Already renamed into place, or removed, before the agent died.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        fs::remove_file(&link)?;
    }
    Ok(removed)
}

fn no_free_name() -> io::Error {
    io::Error::new(io::ErrorKind::AlreadyExists, "no free temporary file name")
}

/// Gives an anonymous file (`source`, its `/proc/self/fd/N`) a temporary name in `dir`.
fn link_named(source: &Path, dir: &Path, stem: &str) -> io::Result<PathBuf> {
    for attempt in 0..NAME_ATTEMPTS {
        let name = temp_name(dir, stem, attempt);
        match link(source, &name) {
            Ok(()) => return Ok(name),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(no_free_name())
}

/// `linkat` following `source`'s link (`/proc/self/fd/N` stands for the open file itself);
/// fails with `AlreadyExists` if `dest` exists.
fn link(source: &Path, dest: &Path) -> io::Result<()> {
    let source = CString::new(source.as_os_str().as_bytes())?;
    let dest = CString::new(dest.as_os_str().as_bytes())?;
    // SAFETY: both are NUL-terminated strings that outlive the call.
    let linked = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            source.as_ptr(),
            libc::AT_FDCWD,
            dest.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if linked == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Writes a file's bytes to its device while more arrive, so that the `fsync` before it is put
/// in place has little left to wait for (it was a sixth of a 256 MiB upload's time), and a
/// large upload never piles up as dirty pages in a router's small memory.
#[derive(Default)]
pub struct WriteBehind {
    /// Bytes written so far.
    written: u64,
    /// Of those, the ones whose write-out has been started.
    started: u64,
}

impl WriteBehind {
    /// Bytes written before their write-out is started.
    const STEP: u64 = 1 << 20;

    /// Counts `n` more bytes written to `file`, and starts the write-out of each whole
    /// [`Self::STEP`] (without waiting for it). Only a hint: the `fsync` still decides.
    pub fn wrote(&mut self, file: &File, n: usize) {
        self.written += n as u64;
        let pending = self.written - self.started;
        if pending < Self::STEP {
            return;
        }
        if let (Ok(offset), Ok(len)) = (
            libc::off_t::try_from(self.started),
            libc::off_t::try_from(pending),
        ) {
            // SAFETY: a valid descriptor of an open file; the call only schedules its pages.
            unsafe {
                libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
            };
        }
        self.started = self.written;
    }
}

/// Flushes the directory entry of `path`. Not every file system lets a directory be opened for
/// syncing; the file is in place either way.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// Removes the named temporary files of `stem` in `dir` that an agent killed while writing them
/// left behind (their process is gone); returns how many.
pub fn remove_stale(dir: &Path, stem: &str) -> io::Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(parse_temp_name)
            .filter(|(s, _)| *s == stem)
            .map(|(_, pid)| pid);
        if pid.is_some_and(|pid| !alive(pid)) {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Whether process `pid` exists.
fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let exists = unsafe { libc::kill(pid, 0) } == 0;
    exists || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Replaces `dest` with `contents` atomically; the file gets `mode`.
pub fn write_atomic(dest: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let stem = dest.file_name().and_then(|n| n.to_str()).unwrap_or("otto");
    let mut temp = TempFile::create_in(dir, stem, mode)?;
    temp.file().write_all(contents)?;
    // The mode given at creation is filtered by the umask; set it exactly.
    temp.file()
        .set_permissions(fs::Permissions::from_mode(mode))?;
    temp.commit(dest)
}

/// Why a file is not known to be private.
#[derive(Debug)]
pub enum PrivateError {
    /// Its mode could not be read.
    Unreadable(PathBuf, io::Error),
    /// Its mode (the permission bits) lets group or others in.
    Mode(PathBuf, u32),
}

impl std::fmt::Display for PrivateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrivateError::Unreadable(path, e) => write!(f, "{}: {e}", path.display()),
            PrivateError::Mode(path, mode) => write!(
                f,
                "{} has mode {mode:03o}: a private key must not be accessible by group or others (chmod 600 it)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for PrivateError {}

/// Fails unless `path` is readable by its owner only (no group or other bits).
pub fn check_private(path: &Path) -> Result<(), PrivateError> {
    let meta = fs::metadata(path).map_err(|e| PrivateError::Unreadable(path.into(), e))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(PrivateError::Mode(path.into(), mode));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_behind_starts_each_whole_megabyte_and_leaves_the_rest_to_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = File::create(dir.path().join("f")).unwrap();
        let mut behind = WriteBehind::default();
        let piece = [7u8; 64 << 10];
        for _ in 0..40 {
            file.write_all(&piece).unwrap();
            behind.wrote(&file, piece.len());
        }
        assert_eq!(behind.written, 40 << 16);
        assert_eq!(behind.started, 2 << 20);
        file.sync_all().unwrap();
        assert_eq!(fs::metadata(dir.path().join("f")).unwrap().len(), 40 << 16);
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

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
        assert_eq!(names(dir.path()), ["f"]);
    }

    #[test]
    fn an_anonymous_file_has_no_name_until_it_is_committed() {
        // The test directory is on a file system with O_TMPFILE (ext4, tmpfs, btrfs, xfs).
        let dir = tempfile::tempdir().unwrap();
        for (dest, old) in [("new", None), ("existing", Some("old"))] {
            let dest = dir.path().join(dest);
            if let Some(old) = old {
                fs::write(&dest, old).unwrap();
            }
            let before = names(dir.path());
            let mut temp = TempFile::create_in(dir.path(), "x", 0o600).unwrap();
            assert!(temp.inheritable_fd().is_some());
            temp.file().write_all(b"whole").unwrap();
            assert_eq!(fs::read(temp.path()).unwrap(), b"whole");
            assert_eq!(names(dir.path()), before);
            temp.commit(&dest).unwrap();
            assert_eq!(fs::read(&dest).unwrap(), b"whole");
        }
        assert_eq!(names(dir.path()), ["existing", "new"]);
        // Dropped uncommitted: nothing appears.
        let mut temp = TempFile::create_in(dir.path(), "x", 0o600).unwrap();
        temp.file().write_all(b"partial").unwrap();
        drop(temp);
        assert_eq!(names(dir.path()), ["existing", "new"]);
    }

    #[test]
    fn a_named_file_is_removed_when_dropped_and_renamed_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let mut temp = TempFile::named(dir.path(), "x", 0o600).unwrap();
        assert!(temp.inheritable_fd().is_none());
        temp.file().write_all(b"partial").unwrap();
        assert!(temp.path().exists());
        drop(temp);
        assert!(names(dir.path()).is_empty());
        let mut temp = TempFile::named(dir.path(), "x", 0o600).unwrap();
        temp.file().write_all(b"whole").unwrap();
        temp.commit(&dir.path().join("dest")).unwrap();
        assert_eq!(names(dir.path()), ["dest"]);
    }

    #[test]
    fn a_recorded_file_left_by_a_killed_agent_is_removed_with_its_record() {
        let dir = tempfile::tempdir().unwrap();
        let records = dir.path().join("records");
        // Dropped or committed: file and record go.
        let mut temp = TempFile::named(dir.path(), "x", 0o600).unwrap();
        temp.record_in(&records).unwrap();
        assert_eq!(names(&records).len(), 1);
        drop(temp);
        assert!(names(&records).is_empty());
        let mut temp = TempFile::named(dir.path(), "x", 0o600).unwrap();
        temp.record_in(&records).unwrap();
        temp.commit(&dir.path().join("dest")).unwrap();
        assert!(names(&records).is_empty());
        assert_eq!(remove_recorded(&records).unwrap(), 0);
        // Killed: no destructor runs; the next start removes the file and its record.
        let mut temp = TempFile::named(dir.path(), "x", 0o600).unwrap();
        temp.record_in(&records).unwrap();
        temp.file().write_all(b"partial").unwrap();
        std::mem::forget(temp);
        assert_eq!(names(dir.path()).len(), 3);
        // A record that points elsewhere is dropped without touching its target.
        std::os::unix::fs::symlink(dir.path().join("dest"), records.join("1.1")).unwrap();
        assert_eq!(remove_recorded(&records).unwrap(), 1);
        assert_eq!(names(dir.path()), ["dest", "records"]);
        assert!(names(&records).is_empty());
        assert_eq!(remove_recorded(&dir.path().join("missing")).unwrap(), 0);
    }

    #[test]
    fn temporary_names_parse_back() {
        let name = temp_name(Path::new("/d"), "a.b", 3);
        let name = name.file_name().unwrap().to_str().unwrap();
        let pid = i32::try_from(std::process::id()).unwrap();
        assert_eq!(parse_temp_name(name), Some(("a.b", pid)));
        for other in [".x.1.tmp", "x.1.2.tmp", "..1.2.tmp", ".x.0.1.tmp", ".x.1.2"] {
            assert_eq!(parse_temp_name(other), None, "{other}");
        }
    }

    #[test]
    fn remove_stale_removes_only_the_files_of_processes_that_are_gone() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        let own = std::process::id();
        for name in [
            format!(".otto-script.{gone}.0.tmp"),
            format!(".otto-script.{own}.0.tmp"),
            format!(".other.{gone}.0.tmp"),
            format!(".otto-script.{gone}.tmp"),
            "otto-script".to_string(),
        ] {
            fs::write(dir.path().join(name), "x").unwrap();
        }
        assert_eq!(remove_stale(dir.path(), "otto-script").unwrap(), 1);
        let left = names(dir.path());
        assert_eq!(left.len(), 4);
        assert!(!left.contains(&format!(".otto-script.{gone}.0.tmp")));
    }

    #[test]
    fn check_private_refuses_group_or_other_access() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        fs::write(&path, "k").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(
            check_private(&path).unwrap_err().to_string(),
            format!(
                "{} has mode 640: a private key must not be accessible by group or others (chmod 600 it)",
                path.display()
            )
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(check_private(&path).is_ok());
    }
}
