//! Reading files for the server: what a path holds (`StatFile`: checksum, mode, length, owner)
//! and the file itself (`FetchFile`: streamed in bounded chunks, never held whole in memory).
//!
//! A file is opened without blocking (a FIFO must not hang the agent) and then judged by the
//! open descriptor, so what is checked is what is read.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path};

use bytes::Bytes;
use otto_proto::FileInfo;
use sha2::{Digest, Sha256};

/// How many bytes are read (and sent) at a time.
pub const CHUNK: usize = 32 * 1024;

/// Why a path could not be stat'ed or fetched.
#[derive(Debug)]
pub enum FileError<'a> {
    /// The path (given) is relative or has a `..`.
    NotAbsolute(&'a str),
    /// Nothing exists at the path (given).
    Missing(&'a str),
    /// The path (given) is a directory, a device, a FIFO or a socket.
    NotRegular(&'a str),
    /// The file (given) could not be opened or read.
    Read(&'a str, io::Error),
    /// The file (given) is longer (its length) than the server takes (the limit).
    TooLong(&'a str, u64, u64),
}

impl fmt::Display for FileError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::NotAbsolute(path) => {
                write!(f, "`{path}` is not an absolute path without `..`")
            }
            FileError::Missing(path) => write!(f, "no such file: {path}"),
            FileError::NotRegular(path) => write!(f, "{path} is not a regular file"),
            FileError::Read(path, e) => write!(f, "reading {path}: {e}"),
            FileError::TooLong(path, len, max) => {
                write!(f, "{path} is {len} bytes, over the limit of {max}")
            }
        }
    }
}

impl std::error::Error for FileError<'_> {}

/// An open regular file and what it is.
pub struct Opened {
    file: File,
    /// Its checksum, mode, length (the bytes hashed) and owner.
    pub info: FileInfo,
}

/// Opens the regular file at `path` and reads it through once for its SHA-256 (yielding to the
/// agent's other work between chunks). `Ok(None)`: nothing exists at `path`.
pub async fn open(path: &str) -> Result<Option<Opened>, FileError<'_>> {
    let p = Path::new(path);
    if !p.is_absolute() || p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(FileError::NotAbsolute(path));
    }
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(p)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        // A directory opens for reading; other kinds that refuse it are judged below.
        Err(e) => {
            return match std::fs::metadata(p) {
                Ok(m) if !m.is_file() => Err(FileError::NotRegular(path)),
                _ => Err(FileError::Read(path, e)),
            };
        }
    };
    let meta = file.metadata().map_err(|e| FileError::Read(path, e))?;
    if !meta.is_file() {
        return Err(FileError::NotRegular(path));
    }
    let mut opened = Opened {
        file,
        info: FileInfo {
            sha256: [0; 32],
            mode: meta.mode() & 0o7777,
            len: 0,
            uid: meta.uid(),
            gid: meta.gid(),
        },
    };
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = opened
            .read(&mut buf)
            .map_err(|e| FileError::Read(path, e))?;
        let Some(read) = buf.get(..n).filter(|r| !r.is_empty()) else {
            break;
        };
        hasher.update(read);
        opened.info.len += n as u64;
        tokio::task::yield_now().await;
    }
    opened.info.sha256 = hasher.finalize().into();
    Ok(Some(opened))
}

impl Opened {
    /// Reads the next bytes, retrying a read an interrupt cut short.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.file.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    /// Goes back to the start, to read the file again for sending.
    pub fn rewind(&mut self) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(0)).map(drop)
    }

    /// The next chunk of at most `left` (and [`CHUNK`]) bytes; empty at the end of the file.
    pub fn chunk(&mut self, left: u64) -> io::Result<Bytes> {
        let size = usize::try_from(left).map_or(CHUNK, |l| l.min(CHUNK));
        let mut buf = vec![0u8; size];
        let n = self.read(&mut buf)?;
        buf.truncate(n);
        Ok(Bytes::from(buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_path_and_why() {
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        let denied_text = denied.to_string();
        let cases = [
            (
                FileError::NotAbsolute("etc/x"),
                "`etc/x` is not an absolute path without `..`".to_string(),
            ),
            (FileError::Missing("/etc/x"), "no such file: /etc/x".into()),
            (
                FileError::NotRegular("/etc"),
                "/etc is not a regular file".into(),
            ),
            (
                FileError::Read("/etc/x", denied),
                format!("reading /etc/x: {denied_text}"),
            ),
            (
                FileError::TooLong("/etc/x", 70_000_000, 67_108_864),
                "/etc/x is 70000000 bytes, over the limit of 67108864".into(),
            ),
        ];
        for (error, text) in cases {
            assert_eq!(error.to_string(), text);
        }
    }

    #[tokio::test]
    async fn a_file_is_hashed_in_chunks_and_judged_by_what_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        // More than two chunks, not a multiple of one.
        let data: Vec<u8> = (0..(2 * CHUNK + 17)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o640))
            .unwrap();
        let text = path.to_str().unwrap();
        let mut opened = open(text).await.unwrap().unwrap();
        let expected: [u8; 32] = Sha256::digest(&data).into();
        assert_eq!(opened.info.sha256, expected);
        assert_eq!(opened.info.len, data.len() as u64);
        assert_eq!(opened.info.mode, 0o640);
        opened.rewind().unwrap();
        let mut again = Vec::new();
        loop {
            let chunk = opened.chunk(u64::MAX).unwrap();
            if chunk.is_empty() {
                break;
            }
            assert!(chunk.len() <= CHUNK);
            again.extend_from_slice(&chunk);
        }
        assert_eq!(again, data);

        let missing = dir.path().join("missing");
        assert!(open(missing.to_str().unwrap()).await.unwrap().is_none());
        let dir_text = dir.path().to_str().unwrap();
        assert!(matches!(
            open(dir_text).await,
            Err(FileError::NotRegular(_))
        ));
        // A FIFO with no writer: refused at once, not waited on.
        let fifo = dir.path().join("fifo");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo reads nothing else.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        assert!(matches!(
            open(fifo.to_str().unwrap()).await,
            Err(FileError::NotRegular(_))
        ));
        assert!(matches!(
            open("relative/f").await,
            Err(FileError::NotAbsolute(_))
        ));
        assert!(matches!(
            open("/tmp/../etc/passwd").await,
            Err(FileError::NotAbsolute(_))
        ));
    }
}
