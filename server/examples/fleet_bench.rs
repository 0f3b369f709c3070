//! Figures for the server at fleet scale, not a test: N real local agents (default 200), then
//!
//! 1. the wall time and peak resident memory (the child's own rusage) of
//!    `otto-server run --all --command true`, a fresh process dialling every agent at once;
//! 2. the resident memory of `otto-server serve` holding one live connection to every agent,
//!    against the same daemon with no hosts: the memory per connected agent.
//!
//! `cargo build --release -p otto-agent -p otto-server --examples &&
//!  target/release/examples/fleet_bench [AGENTS]` (binaries are taken from beside the example's
//! directory).

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use otto_server::fleet::{Fleet, FleetOptions};

/// Starts `serve` on `hosts` hosts, waits for its first heartbeat round (a log line per host),
/// returns its VmRSS in KiB, and stops it.
fn serve_rss(
    server: &Path,
    data: &Path,
    hosts: usize,
) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
    let mut child = Command::new(server)
        .arg("--data-dir")
        .arg(data)
        .args(["serve", "--heartbeat-interval", "1h", "--rotate-every", "0"])
        .env("RUST_LOG", "otto_server::serve::heartbeat=debug")
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let (mut answered, mut seen) = (0, 0);
    while seen < hosts {
        let Some(line) = lines.next() else { break };
        let line = line?;
        answered += usize::from(line.contains("heartbeat answered"));
        seen += usize::from(line.contains("heartbeat answered") || line.contains("unreachable"));
    }
    println!("  serve: {answered} of {hosts} hosts reachable");
    // Keep draining, so that serve never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    std::thread::sleep(Duration::from_millis(500));
    let rss = common::status_kib(child.id(), "VmRSS");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait()?;
    Ok(rss)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let count: usize = std::env::args().nth(1).map_or(Ok(200), |a| a.parse())?;
    let (agent_bin, server_bin) = common::binaries()?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("server");
    let empty = dir.path().join("empty");
    let fleet = Fleet::open(&data, FleetOptions::default()).await?;
    Fleet::open(&empty, FleetOptions::default()).await?;

    let agents = common::start_counted(fleet, &agent_bin, dir.path(), count).await?;

    for round in 1..=3 {
        let (took, peak, ok) =
            common::timed(&server_bin, &data, &["run", "--all", "--command", "true"])?;
        println!(
            "run --all --command true on {count} agents (try {round}): {:.2} s, peak RSS {} KiB{}",
            took.as_secs_f64(),
            peak,
            if ok { "" } else { ", SOME HOSTS FAILED" }
        );
    }
    let idle = serve_rss(&server_bin, &empty, 0)?;
    let busy = serve_rss(&server_bin, &data, count)?;
    println!("serve with no hosts: VmRSS {idle} KiB");
    println!("serve holding {count} connections: VmRSS {busy} KiB");
    println!(
        "memory per connected agent: {:.1} KiB",
        busy.saturating_sub(idle) as f64 / count as f64
    );
    for mut agent in agents {
        agent.stop().await;
    }
    Ok(())
}
