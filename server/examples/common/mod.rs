//! Shared by the server's examples.

// Each example is its own crate and uses only part of this module.
#![allow(dead_code)]

pub mod console;

use std::path::Path;

use otto_server::demo::LocalAgent;
use otto_server::fleet::Fleet;
use otto_server::keys;
use otto_server::model::NewHost;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The `otto-agent` and `otto-server` binaries beside the example's directory (the build's
/// profile directory: `target/release/examples/..`).
pub fn binaries() -> std::io::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| std::io::Error::other("no binary directory"))?;
    Ok((dir.join("otto-agent"), dir.join("otto-server")))
}

/// [`start_agents`] of `count` agents named `agent-0000`…, into `fleet` (then closed), saying
/// how long they took to start.
pub async fn start_counted(
    fleet: Fleet,
    agent_bin: &Path,
    dir: &Path,
    count: usize,
) -> Result<Vec<LocalAgent>, Box<dyn std::error::Error + Send + Sync>> {
    let started = Instant::now();
    let names = (0..count).map(|i| format!("agent-{i:04}"));
    let agents = start_agents(&fleet, agent_bin, dir, names).await?;
    drop(fleet);
    println!(
        "{count} agents started in {:.1} s ({})",
        started.elapsed().as_secs_f64(),
        agent_bin.display()
    );
    Ok(agents)
}

/// CPU time used so far by process `pid` (all its threads, user and system), in clock ticks,
/// from `/proc/PID/stat`; 0 when it cannot be read.
pub fn stat_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command's `(name)`, from the third (state) on: utime and stime are
    // the 14th and 15th, so the 12th and 13th here.
    stat.rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default()
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|f| f.parse::<u64>().unwrap_or(0))
        .sum()
}

/// Clock ticks per second, as [`stat_ticks`] counts them.
pub fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64
}

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

/// Starts a local agent of `agent_bin` for each of `names` (each in `dir/NAME`), each trusting a
/// server key of its own made in `fleet`, and adds each to `fleet` with its key pinned.
pub async fn start_agents(
    fleet: &Fleet,
    agent_bin: &Path,
    dir: &Path,
    names: impl IntoIterator<Item = String>,
) -> Result<Vec<LocalAgent>, Box<dyn std::error::Error + Send + Sync>> {
    let mut agents = Vec::new();
    for name in names {
        let server_key = fleet.create_host_key(&name).await?;
        let agent = LocalAgent::start(agent_bin, &dir.join(&name), &server_key, "").await?;
        fleet
            .store()
            .add_host(&NewHost {
                name,
                address: agent.address.clone(),
                port: agent.port,
                agent_key: Some(keys::to_openssh(&agent.agent_key)),
                pin_on_first_contact: false,
            })
            .await?;
        agents.push(agent);
    }
    Ok(agents)
}
