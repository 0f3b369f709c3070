//! The agent updating itself (`UpdateAgent`), with a way back.
//!
//! Beside the running binary P (`current_exe`): the new binary is received into a temporary file
//! in P's directory (streamed and hashed as an upload is), checked (SHA-256, an ELF for this
//! machine), and swapped in: P is kept as `P.previous` (a hard link), `P.trial` is written (the
//! seconds the new agent has to be confirmed), and the new file is renamed over P. The agent then
//! answers, ends its runtime, and becomes the watchdog of a trial ([`trial`]): it runs P as a
//! child with `OTTO_AGENT_TRIAL=1`; the child confirms by removing `P.trial` once it has answered
//! a heartbeat of its trusted server ([`confirm`]). Confirmed, the watchdog stops the child and
//! `exec`s P (the service keeps its PID); otherwise (the child exits, cannot start, or is not
//! confirmed in time) it puts `P.previous` back as P and `exec`s that. A start that finds
//! `P.trial` without being on trial (a power cut, a killed watchdog) rolls back too
//! ([`at_start`]).

use std::ffi::CString;
use std::fmt;
use std::fs;
use std::io;
use std::ops::RangeInclusive;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt, fchown};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use otto_proto::UpdateAgent;

use crate::fsutil::{self, TempFile};
use crate::link::Reader;
use crate::log::{error, info, warning};
use crate::upload::{self, UploadError};
use crate::{facts, script};

/// The largest binary accepted (the agent is about 1 MiB; a debug build is tens of MiB).
const MAX_LEN: u64 = 64 << 20;
/// The seconds a new agent may be given to be confirmed.
const CONFIRM_SECS: RangeInclusive<u32> = 10..=3600;
/// Set (to 1) in the environment of a new agent on trial.
const TRIAL_VAR: &str = "OTTO_AGENT_TRIAL";
/// How often the watchdog looks at its child and the trial file.
const POLL: Duration = Duration::from_millis(500);
/// How long a confirmed child has to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How the new binary is named in errors.
const NEW_BINARY: &str = "the new agent binary";

/// Whether an update is being received or was swapped in (one at a time).
static BUSY: AtomicBool = AtomicBool::new(false);
/// The binary an update was swapped into, once it is in place: the trial follows the runtime.
static SWAPPED: Mutex<Option<PathBuf>> = Mutex::new(None);

/// The files of an update, beside the agent's binary.
#[derive(Debug)]
struct Files {
    /// The binary (P).
    exe: PathBuf,
    /// The binary an update replaced (`P.previous`).
    previous: PathBuf,
    /// Present while an update is unconfirmed (`P.trial`): the seconds it has, as text.
    trial: PathBuf,
}

impl Files {
    fn of(exe: PathBuf) -> Files {
        let with = |suffix: &str| {
            let mut name = exe.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        };
        Files {
            previous: with(".previous"),
            trial: with(".trial"),
            exe,
        }
    }

    fn dir(&self) -> &Path {
        self.exe.parent().unwrap_or(Path::new("/"))
    }
}

/// An ELF file's target: machine, byte order, word size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elf {
    /// `e_machine`.
    machine: u16,
    big_endian: bool,
    /// 32 or 64.
    bits: u8,
}

/// The machine the agent was built for (the compiler's, not `/proc/self/exe`'s).
const OWN: Elf = Elf {
    machine: if cfg!(target_arch = "mips") {
        8
    } else if cfg!(target_arch = "arm") {
        40
    } else if cfg!(target_arch = "aarch64") {
        183
    } else if cfg!(target_arch = "x86_64") {
        62
    } else {
        0
    },
    big_endian: cfg!(target_endian = "big"),
    bits: if cfg!(target_pointer_width = "64") {
        64
    } else {
        32
    },
};

impl fmt::Display for Elf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.machine {
            8 => f.write_str("mips")?,
            40 => f.write_str("arm")?,
            183 => f.write_str("aarch64")?,
            62 => f.write_str("x86_64")?,
            other => write!(f, "machine {other}")?,
        }
        let order = if self.big_endian { "big" } else { "little" };
        write!(f, " ({order}-endian, {}-bit)", self.bits)
    }
}

/// Why a binary is not one this agent can run.
#[derive(Debug, PartialEq, Eq)]
pub enum ElfError {
    /// It does not start with an ELF header.
    NotElf,
    /// It is an ELF for another machine (given).
    Machine(Elf),
    /// It is an ELF of this type (`e_type`), not an executable.
    NotExecutable(u16),
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElfError::NotElf => write!(f, "not an ELF executable; an ELF for {OWN} is needed"),
            ElfError::Machine(found) => {
                write!(f, "an ELF for {OWN} is needed; this is for {found}")
            }
            ElfError::NotExecutable(kind) => {
                write!(f, "an ELF of type {kind} is not an executable")
            }
        }
    }
}

/// Checks that `header` (a file's first bytes) is an ELF executable for this machine.
pub fn check_elf(header: &[u8]) -> Result<(), ElfError> {
    if header.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err(ElfError::NotElf);
    }
    let bits = match header.get(4) {
        Some(1) => 32,
        Some(2) => 64,
        _ => return Err(ElfError::NotElf),
    };
    let big_endian = match header.get(5) {
        Some(1) => false,
        Some(2) => true,
        _ => return Err(ElfError::NotElf),
    };
    let half = |at: usize| {
        let bytes: [u8; 2] = header.get(at..at + 2)?.try_into().ok()?;
        Some(if big_endian {
            u16::from_be_bytes(bytes)
        } else {
            u16::from_le_bytes(bytes)
        })
    };
    let (Some(kind), Some(machine)) = (half(16), half(18)) else {
        return Err(ElfError::NotElf);
    };
    let found = Elf {
        machine,
        big_endian,
        bits,
    };
    if found != OWN {
        return Err(ElfError::Machine(found));
    }
    // ET_EXEC (static) or ET_DYN (static-pie).
    if !matches!(kind, 2 | 3) {
        return Err(ElfError::NotExecutable(kind));
    }
    Ok(())
}

/// Why an update was refused or failed; the binary in place is as it was.
#[derive(Debug)]
pub enum UpdateError {
    /// The length (given) is 0 or over [`MAX_LEN`].
    Len(u64),
    /// The seconds to confirm (given) are outside [`CONFIRM_SECS`].
    ConfirmSecs(u32),
    /// Another update is being received, or is on trial.
    Busy,
    /// The agent's own binary cannot be found.
    NoExe(io::Error),
    /// The binary's file system (its directory, given) has not the room: free and needed KiB.
    Room(PathBuf, u64, u64),
    /// The binary's directory (given) cannot be examined or written.
    Directory(PathBuf, io::Error),
    /// Receiving the data failed, or its checksum is wrong.
    Receive(UploadError<'static>),
    /// The data is not an executable for this machine.
    Elf(ElfError),
    /// A step of the swap (what, on which file) failed.
    Swap(&'static str, PathBuf, io::Error),
}

impl fmt::Display for UpdateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdateError::Len(len) => write!(
                f,
                "an agent binary of {len} bytes: it must be 1 to {MAX_LEN} bytes"
            ),
            UpdateError::ConfirmSecs(secs) => write!(
                f,
                "{secs} s to confirm the new agent: it must be {} to {} s",
                CONFIRM_SECS.start(),
                CONFIRM_SECS.end()
            ),
            UpdateError::Busy => f.write_str("another update is in progress or on trial"),
            UpdateError::NoExe(e) => write!(f, "the agent's own binary cannot be found: {e}"),
            UpdateError::Room(dir, free, needed) => write!(
                f,
                "not enough room in {}: {free} KiB free, {needed} KiB needed",
                dir.display()
            ),
            UpdateError::Directory(dir, e) => write!(f, "{}: {e}", dir.display()),
            UpdateError::Receive(e) => e.fmt(f),
            UpdateError::Elf(e) => e.fmt(f),
            UpdateError::Swap(what, path, e) => write!(f, "{what} {}: {e}", path.display()),
        }
    }
}

/// The one update being received: released when dropped, kept once swapped in.
#[derive(Debug)]
struct Busy;

impl Busy {
    fn take() -> Option<Busy> {
        let on_trial = std::env::var_os(TRIAL_VAR).is_some();
        (!on_trial && !BUSY.swap(true, Ordering::SeqCst)).then_some(Busy)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        BUSY.store(false, Ordering::SeqCst);
    }
}

/// An update whose request passed the checks, ready for its data.
#[derive(Debug)]
pub struct Prepared {
    files: Files,
    temp: TempFile,
    busy: Busy,
}

/// Checks an update before its data (length, seconds, one at a time, room beside the binary)
/// and makes the temporary file for it beside the binary (recorded with the uploads' of
/// `config_path`).
pub fn prepare(update: &UpdateAgent, config_path: &Path) -> Result<Prepared, UpdateError> {
    if update.len == 0 || update.len > MAX_LEN {
        return Err(UpdateError::Len(update.len));
    }
    if !CONFIRM_SECS.contains(&update.confirm_secs) {
        return Err(UpdateError::ConfirmSecs(update.confirm_secs));
    }
    let busy = Busy::take().ok_or(UpdateError::Busy)?;
    let files = Files::of(std::env::current_exe().map_err(UpdateError::NoExe)?);
    let dir = files.dir();
    let dir_error = |e| UpdateError::Directory(dir.into(), e);
    let c_dir = CString::new(dir.as_os_str().as_bytes()).map_err(|e| dir_error(e.into()))?;
    let (_, free) =
        facts::space_kib(&c_dir).ok_or_else(|| dir_error(io::Error::last_os_error()))?;
    let needed = update.len.div_ceil(1024);
    if needed > free {
        return Err(UpdateError::Room(dir.into(), free, needed));
    }
    let stem = files
        .exe
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("otto-agent");
    let temp = TempFile::create_recorded(dir, stem, 0o700, &upload::records(config_path))
        .map_err(dir_error)?;
    Ok(Prepared { files, temp, busy })
}

/// Receives the new binary, checks it and swaps it in. On any error the binary in place is as it
/// was and the temporary file is gone; on success the agent is to restart into the new binary:
/// end the runtime, then call [`trial`] with [`swapped`].
pub async fn receive(
    reader: &mut Reader,
    update: &UpdateAgent,
    mut prepared: Prepared,
) -> Result<(), UpdateError> {
    let file = prepared.temp.file();
    upload::receive_checked(
        reader,
        file,
        update.len,
        Some(update.sha256),
        update.action,
        NEW_BINARY,
    )
    .await
    .map_err(UpdateError::Receive)?;
    let mut header = [0u8; 64];
    let read = file
        .read_at(&mut header, 0)
        .map_err(|e| UpdateError::Receive(UploadError::Write(NEW_BINARY, e)))?;
    check_elf(header.get(..read).unwrap_or_default()).map_err(UpdateError::Elf)?;
    info!(
        "{NEW_BINARY} ({} bytes) is an ELF for {OWN}; swapping it in",
        update.len
    );
    swap(prepared, update.confirm_secs)
}

/// Keeps the binary as `P.previous`, writes `P.trial` and puts the new binary in place.
fn swap(prepared: Prepared, confirm_secs: u32) -> Result<(), UpdateError> {
    let Prepared {
        files,
        mut temp,
        busy,
    } = prepared;
    let failed = |what, path: &Path| {
        let path = path.to_path_buf();
        move |e| UpdateError::Swap(what, path, e)
    };
    let meta = fs::metadata(&files.exe).map_err(failed("reading", &files.exe))?;
    let file = temp.file();
    if script::is_root() {
        fchown(&*file, Some(meta.uid()), Some(meta.gid())).map_err(failed("chown", &files.exe))?;
    }
    file.set_permissions(fs::Permissions::from_mode(0o755))
        .map_err(failed("chmod", &files.exe))?;
    match fs::remove_file(&files.previous) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(failed("replacing", &files.previous)(e));
        }
        _ => {}
    }
    fs::hard_link(&files.exe, &files.previous).map_err(failed("keeping", &files.previous))?;
    fsutil::write_atomic(&files.trial, format!("{confirm_secs}\n").as_bytes(), 0o600)
        .map_err(failed("writing", &files.trial))?;
    if let Err(e) = temp.commit(&files.exe) {
        let _ = fs::remove_file(&files.trial);
        return Err(failed("replacing", &files.exe)(e));
    }
    info!(
        "swapped in the new agent binary at {} (the previous one is {}); {confirm_secs} s to confirm it",
        files.exe.display(),
        files.previous.display()
    );
    // No other update until the restart.
    std::mem::forget(busy);
    *SWAPPED.lock().unwrap_or_else(|e| e.into_inner()) = Some(files.exe);
    Ok(())
}

/// The binary an update was swapped into, if one was: the agent restarts into it on trial.
pub fn swapped() -> Option<PathBuf> {
    SWAPPED.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The seconds to confirm in a trial file's text; `None` if it is not a number in bounds.
fn parse_trial(text: &str) -> Option<u32> {
    text.trim()
        .parse()
        .ok()
        .filter(|secs| CONFIRM_SECS.contains(secs))
}

/// Confirms the update on trial, if this agent is one: called once it has answered a heartbeat
/// of its trusted server.
pub fn confirm() {
    if std::env::var_os(TRIAL_VAR).is_none() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let trial = Files::of(exe).trial;
    match fs::remove_file(&trial) {
        Ok(()) => {
            let _ = fsutil::sync_dir(&trial);
            info!("update confirmed: the trusted server is served");
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => error!("cannot confirm the update: {}: {e}", trial.display()),
    }
}

/// Why a trial failed.
#[derive(Debug)]
enum TrialFailure {
    /// The trial file is missing or unreadable.
    TrialFile,
    /// The new agent could not be started.
    Spawn(io::Error),
    /// The new agent exited (how).
    Exited(ExitStatus),
    /// The new agent was not confirmed within the seconds (given).
    Timeout(u32),
}

impl fmt::Display for TrialFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrialFailure::TrialFile => f.write_str("the trial file is missing or unreadable"),
            TrialFailure::Spawn(e) => write!(f, "the new agent cannot be started: {e}"),
            TrialFailure::Exited(status) => match (status.code(), status.signal()) {
                (Some(code), _) => write!(f, "the new agent exited with code {code}"),
                (None, Some(signal)) => write!(f, "the new agent was killed by signal {signal}"),
                (None, None) => f.write_str("the new agent ended"),
            },
            TrialFailure::Timeout(secs) => {
                write!(f, "the new agent was not confirmed within {secs} s")
            }
        }
    }
}

/// The watchdog of a trial, after the runtime is gone (no socket held): runs the new binary `exe`
/// as a child on trial and waits for it to be confirmed; then `exec`s it, else rolls back and
/// `exec`s the previous binary. Returns only if that `exec` fails.
pub fn trial(exe: PathBuf) -> io::Error {
    let files = Files::of(exe);
    // The runtime's handlers are gone with it: a stop signal ends the watchdog (and, by the
    // parent-death signal, its child); the next start then rolls back.
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: restores the default action; no handler runs.
        unsafe { libc::signal(signal, libc::SIG_DFL) };
    }
    let outcome = match fs::read_to_string(&files.trial)
        .ok()
        .and_then(|t| parse_trial(&t))
    {
        Some(secs) => watch(&files, secs),
        None => Err(TrialFailure::TrialFile),
    };
    match outcome {
        Ok(()) => info!("the new agent is confirmed; restarting into it"),
        Err(why) => {
            warning!("rolling back the update: {why}");
            match roll_back(&files) {
                Ok(()) => info!("rolled back to the previous agent binary"),
                Err(e) => error!("rolling back: {e}"),
            }
        }
    }
    exec(&files.exe)
}

/// Runs the new binary on trial until it is confirmed, exits, or its time is up.
fn watch(files: &Files, secs: u32) -> Result<(), TrialFailure> {
    let mut command = Command::new(&files.exe);
    command
        .args(std::env::args_os().skip(1))
        .env(TRIAL_VAR, "1");
    // SAFETY: prctl is async-signal-safe and only sets the child's own parent-death signal.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        });
    }
    let mut child = command.spawn().map_err(TrialFailure::Spawn)?;
    info!(
        "trial started: the new agent runs as pid {}, {secs} s to be confirmed",
        child.id()
    );
    let deadline = Instant::now() + Duration::from_secs(secs.into());
    loop {
        if !files.trial.exists() {
            stop(&mut child);
            return Ok(());
        }
        match child.try_wait() {
            Ok(Some(status)) => return Err(TrialFailure::Exited(status)),
            Ok(None) => {}
            Err(e) => {
                stop(&mut child);
                return Err(TrialFailure::Spawn(e));
            }
        }
        if Instant::now() >= deadline {
            stop(&mut child);
            return Err(TrialFailure::Timeout(secs));
        }
        std::thread::sleep(POLL);
    }
}

/// Stops `child`: SIGTERM, then SIGKILL after [`STOP_GRACE`].
fn stop(child: &mut Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) only sends a signal, to our own child, not yet reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let until = Instant::now() + STOP_GRACE;
    while Instant::now() < until {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Puts `P.previous` back as P and ends the trial (`P.trial` removed, the directory flushed).
/// Without a previous binary, the one in place stays; the trial ends all the same.
fn roll_back(files: &Files) -> io::Result<()> {
    let restored = fs::rename(&files.previous, &files.exe);
    let removed = match fs::remove_file(&files.trial) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    };
    fsutil::sync_dir(&files.exe)?;
    restored.map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", files.previous.display())))?;
    removed
}

/// Replaces this process with `exe`, with the arguments it was started with (and its
/// environment, which never has [`TRIAL_VAR`]: only a trial's child does); returns only if that
/// fails.
fn exec(exe: &Path) -> io::Error {
    let c_string = |s: &std::ffi::OsStr| CString::new(s.as_bytes());
    let path = match c_string(exe.as_os_str()) {
        Ok(path) => path,
        Err(e) => return e.into(),
    };
    let args: Vec<CString> = match std::env::args_os().map(|a| c_string(&a)).collect() {
        Ok(args) => args,
        Err(e) => return io::Error::from(e),
    };
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    // SAFETY: `path` and every argument are NUL-terminated, `argv` ends with a null pointer, and
    // all of them outlive the call.
    unsafe { libc::execv(path.as_ptr(), argv.as_ptr()) };
    io::Error::last_os_error()
}

/// At the start of `run`: a trial file without being on trial means that a trial was cut short
/// (a power cut, the watchdog killed): rolls back to the previous binary and `exec`s it. Returns
/// if there is nothing to roll back, or if it failed (logged): the agent then runs on.
pub fn at_start() {
    if std::env::var_os(TRIAL_VAR).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let files = Files::of(exe);
    if fs::symlink_metadata(&files.trial).is_err() {
        return;
    }
    warning!("an update's trial was cut short before the new agent was confirmed; rolling back");
    match roll_back(&files) {
        Ok(()) => {
            info!("rolled back to the previous agent binary");
            let e = exec(&files.exe);
            error!("cannot start the previous agent binary: {e}");
        }
        Err(e) => error!("rolling back: {e}; running on"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ELF header (20 bytes) for `elf` of type `kind`.
    fn header(elf: Elf, kind: u16) -> Vec<u8> {
        let mut h = b"\x7fELF".to_vec();
        h.push(if elf.bits == 64 { 2 } else { 1 });
        h.push(if elf.big_endian { 2 } else { 1 });
        h.extend_from_slice(&[1; 10]);
        for half in [kind, elf.machine] {
            if elf.big_endian {
                h.extend_from_slice(&half.to_be_bytes());
            } else {
                h.extend_from_slice(&half.to_le_bytes());
            }
        }
        h
    }

    #[test]
    fn elf_headers_for_this_machine_pass_and_others_are_named() {
        assert_eq!(check_elf(&header(OWN, 2)), Ok(()));
        assert_eq!(check_elf(&header(OWN, 3)), Ok(()));
        assert_eq!(check_elf(&header(OWN, 1)), Err(ElfError::NotExecutable(1)));
        let mips = Elf {
            machine: 8,
            big_endian: true,
            bits: 32,
        };
        let x86_64 = Elf {
            machine: 62,
            big_endian: false,
            bits: 64,
        };
        let other = if OWN == mips { x86_64 } else { mips };
        let error = check_elf(&header(other, 2)).unwrap_err();
        assert_eq!(error, ElfError::Machine(other));
        assert_eq!(
            ElfError::Machine(x86_64)
                .to_string()
                .split_once("; ")
                .unwrap()
                .1,
            "this is for x86_64 (little-endian, 64-bit)"
        );
        assert_eq!(
            mips.to_string(),
            "mips (big-endian, 32-bit)",
            "the words of the issue"
        );
        // Byte order and word size count as much as the machine.
        for flipped in [
            Elf {
                big_endian: !OWN.big_endian,
                ..OWN
            },
            Elf {
                bits: 96 - OWN.bits,
                ..OWN
            },
        ] {
            assert_eq!(
                check_elf(&header(flipped, 2)),
                Err(ElfError::Machine(flipped))
            );
        }
        let arm = Elf {
            machine: 40,
            big_endian: false,
            bits: 32,
        };
        assert_eq!(arm.to_string(), "arm (little-endian, 32-bit)");
        let odd = Elf {
            machine: 999,
            ..arm
        };
        assert_eq!(odd.to_string(), "machine 999 (little-endian, 32-bit)");
    }

    #[test]
    fn what_is_no_elf_is_refused() {
        let good = header(OWN, 2);
        for bad in [
            &b""[..],
            b"#!/bin/sh\necho hi\n",
            &good[..19],
            &good[..4],
            &[&good[..4], &[3u8][..], &good[5..]].concat(),
            &[&good[..5], &[0u8][..], &good[6..]].concat(),
        ] {
            assert_eq!(check_elf(bad), Err(ElfError::NotElf), "{bad:?}");
        }
    }

    #[test]
    fn trial_files_parse_within_bounds() {
        assert_eq!(parse_trial("10\n"), Some(10));
        assert_eq!(parse_trial(" 3600 "), Some(3600));
        for bad in ["", "9", "3601", "-5", "ten", "10 s", "4294967296"] {
            assert_eq!(parse_trial(bad), None, "{bad}");
        }
    }

    #[test]
    fn rolling_back_puts_the_previous_binary_in_place_and_ends_the_trial() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::of(dir.path().join("otto-agent"));
        fs::write(&files.exe, "new").unwrap();
        fs::write(&files.previous, "old").unwrap();
        fs::write(&files.trial, "10\n").unwrap();
        roll_back(&files).unwrap();
        assert_eq!(fs::read_to_string(&files.exe).unwrap(), "old");
        assert!(!files.previous.exists() && !files.trial.exists());
        // Without a previous binary: the one in place stays, the trial ends, the error says so.
        fs::write(&files.trial, "10\n").unwrap();
        let error = roll_back(&files).unwrap_err();
        assert!(error.to_string().contains("otto-agent.previous"), "{error}");
        assert_eq!(fs::read_to_string(&files.exe).unwrap(), "old");
        assert!(!files.trial.exists());
    }

    #[test]
    fn refusals_read_clearly() {
        assert_eq!(
            UpdateError::Room("/usr/bin".into(), 300, 1024).to_string(),
            "not enough room in /usr/bin: 300 KiB free, 1024 KiB needed"
        );
        assert_eq!(
            UpdateError::Len(0).to_string(),
            "an agent binary of 0 bytes: it must be 1 to 67108864 bytes"
        );
        assert_eq!(
            UpdateError::ConfirmSecs(5).to_string(),
            "5 s to confirm the new agent: it must be 10 to 3600 s"
        );
    }
}
