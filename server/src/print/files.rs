//! A run's output kept in files, as pssh's `-o DIR` does: `DIR/HOST.stdout` and
//! `DIR/HOST.stderr` hold the bytes as the agent sent them. They are written as they arrive to
//! `DIR/.HOST.stdout.tmp` (and `.stderr.tmp`), each renamed over its final name when the host's
//! run ends, so a file of that name is replaced whole, and only once complete.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use otto_proto::Stream;

use crate::ops::{RunEvent, RunSink, Status};

/// The per-host output files of one run, in one directory.
pub struct OutputFiles {
    dir: PathBuf,
    /// The temporary file of each host's stream; `None` once writing it failed.
    open: Mutex<HashMap<(String, &'static str), Option<File>>>,
}

impl OutputFiles {
    /// Files in `dir`, which is made (with its parents) if missing.
    pub fn create(dir: &Path) -> std::io::Result<OutputFiles> {
        std::fs::create_dir_all(dir)?;
        Ok(OutputFiles {
            dir: dir.to_path_buf(),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A sink that writes each chunk of output to its host's file and completes a host's files
    /// at its end; problems are said on standard error (the run goes on).
    pub fn sink(self) -> RunSink {
        let files = Arc::new(self);
        Arc::new(move |event| match event {
            RunEvent::Data { host, stream, data } => files.write(host, stream, data),
            // A host skipped ran nothing: it has no files.
            RunEvent::Done(result) if result.status == Status::Skipped => {}
            RunEvent::Done(result) => {
                for stream in [Stream::Stdout, Stream::Stderr] {
                    files.finish(&result.host, stream);
                }
            }
            RunEvent::Line { .. } => {}
        })
    }

    /// `DIR/HOST.stdout` (or `.stderr`), and its temporary name `DIR/.HOST.stdout.tmp`.
    fn paths(&self, host: &str, stream: Stream) -> (PathBuf, PathBuf) {
        let name = format!("{host}.{}", stream_name(stream));
        (self.dir.join(&name), self.dir.join(format!(".{name}.tmp")))
    }

    /// Appends `data` to the temporary file of `host`'s `stream`, made on the first chunk.
    fn write(&self, host: &str, stream: Stream, data: &[u8]) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let (_, temp) = self.paths(host, stream);
        let file = open
            .entry((host.to_string(), stream_name(stream)))
            .or_insert_with(|| match new_file(&temp) {
                Ok(file) => Some(file),
                Err(e) => {
                    warn(&temp, &e);
                    None
                }
            });
        if let Some(f) = file
            && let Err(e) = f.write_all(data)
        {
            warn(&temp, &e);
            *file = None;
        }
    }

    /// Gives `host`'s `stream` its final name (an empty file if it had no output); removes
    /// the temporary file if writing it failed.
    fn finish(&self, host: &str, stream: Stream) {
        let entry = self
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(host.to_string(), stream_name(stream)));
        let (path, temp) = self.paths(host, stream);
        let file = match entry {
            Some(Some(file)) => Ok(file),
            Some(None) => {
                let _ = std::fs::remove_file(&temp);
                return;
            }
            None => new_file(&temp),
        };
        let done = file
            .and_then(|f| f.sync_all())
            .and_then(|()| std::fs::rename(&temp, &path));
        if let Err(e) = done {
            warn(&path, &e);
            let _ = std::fs::remove_file(&temp);
        }
    }
}

/// A new, empty file at `path` (replacing one left there), mode 0600: the raw output may
/// carry what the live output redacts.
fn new_file(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // Whatever mode a file left there had.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

fn stream_name(stream: Stream) -> &'static str {
    match stream {
        Stream::Stdout => "stdout",
        Stream::Stderr => "stderr",
    }
}

fn warn(path: &Path, e: &std::io::Error) {
    eprintln!("otto-server: cannot write {}: {e}", path.display());
}
