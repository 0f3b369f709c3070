//! Shared by the server's examples.

// Each example is its own crate and uses only part of this module.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A field of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`), or 0 when it cannot be read.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .strip_prefix(':')?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Runs the server binary `server` on the data directory `data` with `args`, its output thrown
/// away; returns (wall time, peak RSS in KiB, success).
pub fn timed(server: &Path, data: &Path, args: &[&str]) -> std::io::Result<(Duration, i64, bool)> {
    let started = Instant::now();
    let child = Command::new(server)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .stdout(Stdio::null())
        .spawn()?;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child, with valid pointers to locals.
    if unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((
        started.elapsed(),
        usage.ru_maxrss,
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
    ))
}
