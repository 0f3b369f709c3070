//! Running a script: its bytes go to a temporary file (mode 0700) in `temp_dir` that the
//! interpreter runs, in a process group of its own, with exactly the environment the server sent
//! plus `PATH`. Output is streamed as it comes, each stream in order; silence gets a Keepalive
//! every 10 s; a timeout or a cancel ends the whole process group, SIGTERM first and SIGKILL
//! after a grace period.
//!
//! The file has no name where the file system allows it (see `fsutil`): the interpreter opens it
//! as `/proc/self/fd/N`, inheriting the descriptor, and it vanishes once the agent and the script
//! have closed it, even if the agent is killed. Otherwise it is a named file, removed after the
//! run, and at the next start if the agent was killed.

use std::fmt;
use std::io::{self, Write};
use std::os::unix::fs::{PermissionsExt, fchown};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use otto_proto::{
    ActionOutput, ActionRef, ActionResult, Credentials, Message, Outcome, ScriptTimeout, Stream,
};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio::sync::Notify;
use tokio::time::sleep_until;

use crate::config::Config;
use crate::fsutil::TempFile;
use crate::link::{Incoming, LinkError, Reader, Script, Writer};
use crate::log::{debug, info, warning};

/// Silence after which a Keepalive is sent.
const KEEPALIVE: Duration = Duration::from_secs(10);
/// Time between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(3);
/// How long output is still read after the script exited (a background child may hold the pipes).
const DRAIN: Duration = Duration::from_secs(2);

/// Totals for the ActionResult.
#[derive(Debug, Default)]
pub struct Report {
    pub stdout_len: u64,
    pub stderr_len: u64,
}

/// Why a script was refused or could not start.
#[derive(Debug)]
pub enum ScriptError<'a> {
    /// The request names no interpreter.
    NoInterpreter,
    /// A user was given, but the agent does not run as root.
    RunAsNeedsRoot,
    /// The script's file could not be made in the directory (given).
    Create(PathBuf, io::Error),
    /// Writing the script's bytes to its file failed.
    Write(io::Error),
    /// The server sent a frame where the script's data was still due.
    EndedEarly,
    /// The channel failed while the data came in.
    Link(LinkError),
    /// Giving the script's file its mode or owner failed.
    File(io::Error),
    /// The interpreter (given) could not be started.
    Start(&'a str, io::Error),
}

impl fmt::Display for ScriptError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScriptError::NoInterpreter => f.write_str("no interpreter given"),
            ScriptError::RunAsNeedsRoot => {
                f.write_str("running as another user needs the agent to run as root")
            }
            ScriptError::Create(dir, e) => {
                write!(f, "cannot create a script file in {}: {e}", dir.display())
            }
            ScriptError::Write(e) => write!(f, "writing the script: {e}"),
            ScriptError::EndedEarly => f.write_str("the script's data ended early"),
            ScriptError::Link(e) => e.fmt(f),
            ScriptError::File(e) => write!(f, "script file: {e}"),
            ScriptError::Start(interpreter, e) => write!(f, "cannot run {interpreter}: {e}"),
        }
    }
}

impl std::error::Error for ScriptError<'_> {}

/// Checks a request before its data is accepted.
pub fn check(script: &Script) -> Result<(), ScriptError<'_>> {
    if script.interpreter.is_empty() {
        return Err(ScriptError::NoInterpreter);
    }
    if matches!(script.run_as, Credentials::Ids { .. }) && !is_root() {
        return Err(ScriptError::RunAsNeedsRoot);
    }
    Ok(())
}

/// Whether the agent runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The stem of the scripts' temporary files (in `temp_dir`).
pub const FILE_STEM: &str = "otto-script";

/// Receives the script's bytes into a new temporary file in `dir`.
pub async fn receive(
    reader: &mut Reader,
    script: &Script,
    dir: &Path,
) -> Result<TempFile, ScriptError<'static>> {
    let mut file = TempFile::create_in(dir, FILE_STEM, 0o700)
        .map_err(|e| ScriptError::Create(dir.into(), e))?;
    let mut received = 0u64;
    while received < script.len {
        match reader.next(Duration::MAX).await {
            Ok(Incoming::Data(chunk)) => {
                received += chunk.len() as u64;
                file.file().write_all(&chunk).map_err(ScriptError::Write)?;
            }
            Ok(_) => return Err(ScriptError::EndedEarly),
            Err(e) => return Err(ScriptError::Link(e)),
        }
    }
    // The mode given at creation is filtered by the umask.
    file.file()
        .set_permissions(std::fs::Permissions::from_mode(0o700))
        .map_err(ScriptError::File)?;
    if let Credentials::Ids { uid, gid } = script.run_as {
        fchown(&*file.file(), Some(uid), Some(gid)).map_err(ScriptError::File)?;
    }
    Ok(file)
}

/// Runs the script in `file` and streams its output to `writer`; returns how it ended, or why it
/// could not start. The script keeps running if the channel goes away; only a timeout or a cancel
/// stops it.
pub async fn run<'a>(
    script: &'a Script,
    file: &TempFile,
    config: &Config,
    cancelled: &Notify,
    writer: &mut Writer,
) -> Result<(Outcome<'static>, Report), ScriptError<'a>> {
    let mut command = Command::new(&script.interpreter);
    command
        .arg(file.path())
        .env_clear()
        .envs(script.env.iter().map(|(k, v)| (k, v)))
        .env("PATH", &config.path)
        .current_dir(
            script
                .working_dir
                .as_deref()
                .map_or(config.temp_dir.as_path(), Path::new),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Credentials::Ids { uid, gid } = script.run_as {
        // std drops supplementary groups (setgroups(0)) when root switches uid.
        command.gid(gid).uid(uid);
    }
    if let Some(fd) = file.inheritable_fd() {
        // SAFETY: between fork and exec the closure only calls fcntl, which is async-signal-safe,
        // on a descriptor the child has (fork copies the descriptor table).
        unsafe {
            command.pre_exec(move || {
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = command
        .spawn()
        .map_err(|e| ScriptError::Start(&script.interpreter, e))?;
    let timeout = match script.timeout {
        ScriptTimeout::AgentDefault => config.script_timeout,
        ScriptTimeout::Unlimited => None,
        ScriptTimeout::Seconds(s) => Some(Duration::from_secs(u64::from(s))),
    };
    info!(
        "action {}: running `{}` ({} bytes) with {}",
        script.action, script.name, script.len, script.interpreter
    );
    Ok(supervise(&mut child, script.action, timeout, cancelled, writer).await)
}

/// Streams output and enforces the timeout and cancel until the script and its pipes are done.
async fn supervise(
    child: &mut Child,
    action: u64,
    timeout: Option<Duration>,
    cancelled: &Notify,
    writer: &mut Writer,
) -> (Outcome<'static>, Report) {
    let pgid = child.id().and_then(|id| i32::try_from(id).ok());
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let (mut out_buf, mut err_buf) = (
        vec![0u8; otto_proto::MAX_OUTPUT_CHUNK],
        vec![0u8; otto_proto::MAX_OUTPUT_CHUNK],
    );
    let mut report = Report::default();
    let far = tokio::time::Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600);
    let deadline = timeout.map_or(far, |t| tokio::time::Instant::now() + t);
    let mut keepalive_at = tokio::time::Instant::now() + KEEPALIVE;
    let mut kill_at = far;
    let mut drain_until = far;
    let mut status: Option<ExitStatus> = None;
    let mut stopped: Option<Outcome<'static>> = None; // TimedOut or Cancelled, once decided

    while status.is_none() || stdout.is_some() || stderr.is_some() {
        tokio::select! {
            read = read_some(&mut stdout, &mut out_buf) => {
                if let Some(n) = read {
                    report.stdout_len += n as u64;
                    forward(writer, action, Stream::Stdout, out_buf.get(..n).unwrap_or_default()).await;
                    keepalive_at = tokio::time::Instant::now() + KEEPALIVE;
                }
            }
            read = read_some(&mut stderr, &mut err_buf) => {
                if let Some(n) = read {
                    report.stderr_len += n as u64;
                    forward(writer, action, Stream::Stderr, err_buf.get(..n).unwrap_or_default()).await;
                    keepalive_at = tokio::time::Instant::now() + KEEPALIVE;
                }
            }
            exit = child.wait(), if status.is_none() => {
                // A wait error means the child is gone all the same; report it as killed.
                status = Some(exit.unwrap_or_else(|_| ExitStatusExt::from_raw(9)));
                drain_until = tokio::time::Instant::now() + DRAIN;
                if stopped.is_some() {
                    // The leader is gone; whatever is left of its group goes too.
                    signal_group(pgid, libc::SIGKILL);
                }
            }
            _ = sleep_until(keepalive_at) => {
                if writer.is_open() {
                    let _ = writer.send(&Message::Keepalive(ActionRef { action })).await;
                }
                keepalive_at = tokio::time::Instant::now() + KEEPALIVE;
            }
            _ = sleep_until(deadline), if stopped.is_none() && status.is_none() => {
                warning!("action {action}: timed out; stopping its process group");
                stopped = Some(Outcome::TimedOut);
                signal_group(pgid, libc::SIGTERM);
                kill_at = tokio::time::Instant::now() + KILL_GRACE;
            }
            _ = cancelled.notified(), if stopped.is_none() && status.is_none() => {
                info!("action {action}: cancelled; stopping its process group");
                stopped = Some(Outcome::Cancelled);
                signal_group(pgid, libc::SIGTERM);
                kill_at = tokio::time::Instant::now() + KILL_GRACE;
            }
            _ = sleep_until(kill_at), if status.is_none() => {
                signal_group(pgid, libc::SIGKILL);
                kill_at = far;
            }
            _ = sleep_until(drain_until) => {
                debug!("action {action}: output still open after exit; no longer read");
                stdout = None;
                stderr = None;
            }
        }
    }
    let outcome = stopped.unwrap_or_else(|| {
        // The loop ends only once the status is known; on Unix a status is a code or a signal.
        let status = status.unwrap_or_else(|| ExitStatusExt::from_raw(9));
        match (status.code(), status.signal()) {
            (Some(code), _) => Outcome::Exited { code },
            (None, signal) => Outcome::Signaled {
                signal: signal.unwrap_or(0),
            },
        }
    });
    (outcome, report)
}

/// Reads what is available from a pipe; `None` (and the pipe forgotten) at its end. A pipe that
/// is already gone never completes.
async fn read_some<R: tokio::io::AsyncRead + Unpin>(
    pipe: &mut Option<R>,
    buf: &mut [u8],
) -> Option<usize> {
    let Some(reader) = pipe.as_mut() else {
        return std::future::pending().await;
    };
    match reader.read(buf).await {
        Ok(0) | Err(_) => {
            *pipe = None;
            None
        }
        Ok(n) => Some(n),
    }
}

/// Sends one chunk of output, if the channel is still there.
async fn forward(writer: &mut Writer, action: u64, stream: Stream, data: &[u8]) {
    if writer.is_open() {
        let _ = writer
            .send(&Message::ActionOutput(ActionOutput {
                action,
                stream,
                data,
            }))
            .await;
    }
}

/// Sends `signal` to a process group.
fn signal_group(pgid: Option<i32>, signal: i32) {
    if let Some(pgid) = pgid.filter(|&p| p > 1) {
        // SAFETY: killpg has no memory-safety preconditions; a stale group only gives ESRCH.
        unsafe { libc::killpg(pgid, signal) };
    }
}

/// The ActionResult for a finished script.
pub fn result<'a>(
    action: u64,
    outcome: Outcome<'a>,
    report: &Report,
    started: Instant,
) -> Message<'a> {
    Message::ActionResult(ActionResult {
        action,
        outcome,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        stdout_len: report.stdout_len,
        stderr_len: report.stderr_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_as_the_server_has_always_seen_them() {
        let io = || io::Error::from(io::ErrorKind::NotFound);
        let missing = io().to_string();
        let cases = [
            (
                ScriptError::NoInterpreter,
                "no interpreter given".to_string(),
            ),
            (
                ScriptError::RunAsNeedsRoot,
                "running as another user needs the agent to run as root".into(),
            ),
            (
                ScriptError::Create("/tmp".into(), io()),
                format!("cannot create a script file in /tmp: {missing}"),
            ),
            (
                ScriptError::Write(io()),
                format!("writing the script: {missing}"),
            ),
            (
                ScriptError::EndedEarly,
                "the script's data ended early".into(),
            ),
            (
                ScriptError::Link(LinkError::Stalled),
                "the server stopped sending in the middle of a request".into(),
            ),
            (ScriptError::File(io()), format!("script file: {missing}")),
            (
                ScriptError::Start("/bin/nosh", io()),
                format!("cannot run /bin/nosh: {missing}"),
            ),
        ];
        for (error, text) in cases {
            assert_eq!(error.to_string(), text);
        }
    }
}
