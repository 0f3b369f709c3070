//! Prints the agent's peak resident memory (VmHWM) after 100 heartbeats and one script that
//! writes 10 MB of output — a figure for the agent's memory budget, not a test. With `--soak`
//! it then goes on to 10,000 heartbeats and 1,000 short runs, printing the memory every tenth of
//! the way, so that growth (a leak) shows.
//!
//! `cargo run --release -p otto-server --example agent_memory -- [--soak] [path/to/otto-agent]`
//! (default: the otto-agent beside this example's target directory).

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use otto_proto::{Credentials, ScriptTimeout};
use otto_server::client::{Connection, ScriptEvent, ScriptRequest, new_action_id};
use otto_server::demo::LocalAgent;
use otto_server::keys;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let soak = args.iter().any(|a| a == "--soak");
    let agent_bin = args
        .iter()
        .find(|a| *a != "--soak")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().unwrap_or_default();
            exe.parent()
                .and_then(|d| d.parent())
                .map(|d| d.join("otto-agent"))
                .unwrap_or_default()
        });
    let dir = tempfile::tempdir()?;
    let server_key = Arc::new(keys::generate()?);
    let agent = LocalAgent::start(&agent_bin, dir.path(), server_key.public_key(), "").await?;
    let pid = agent.pid().ok_or("agent has no pid")?;
    let conn = Connection::connect(&agent.dial(server_key.clone())).await?;
    println!("agent {} (pid {pid})", agent_bin.display());
    println!(
        "after start:          VmRSS {:>6} KiB  VmHWM {:>6} KiB",
        common::status_kib(pid, "VmRSS"),
        common::status_kib(pid, "VmHWM")
    );

    let started = Instant::now();
    for _ in 0..100 {
        conn.heartbeat().await?;
    }
    println!(
        "after 100 heartbeats: VmRSS {:>6} KiB  VmHWM {:>6} KiB  ({:.2} ms per heartbeat)",
        common::status_kib(pid, "VmRSS"),
        common::status_kib(pid, "VmHWM"),
        started.elapsed().as_secs_f64() * 10.0
    );

    let script = ScriptRequest {
        name: "10MB".into(),
        interpreter: "/bin/sh".into(),
        body: b"head -c 10485760 /dev/zero | tr '\\0' x\n".to_vec(),
        env: Vec::new(),
        run_as: Credentials::Inherit,
        working_dir: None,
        timeout: ScriptTimeout::Unlimited,
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let count = tokio::spawn(async move {
        let mut bytes = 0usize;
        while let Some(event) = rx.recv().await {
            if let ScriptEvent::Output { data, .. } = event {
                bytes += data.len();
            }
        }
        bytes
    });
    let started = Instant::now();
    let report = conn.run_script(&script, new_action_id(), tx).await?;
    let bytes = count.await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "after 10 MB output:   VmRSS {:>6} KiB  VmHWM {:>6} KiB  ({bytes} bytes received, {}, {:.1} MB/s)",
        common::status_kib(pid, "VmRSS"),
        common::status_kib(pid, "VmHWM"),
        report.outcome,
        bytes as f64 / secs / 1e6
    );
    if soak {
        drop(conn);
        soak_test(&agent, &server_key, pid).await?;
    }
    Ok(())
}

/// 10,000 heartbeats and 1,000 short runs, in ten rounds, with the memory after each round.
/// Every channel is one heartbeat or run, and the agent takes at most 512 channels on one
/// connection, so a fresh connection serves every 250 of them (as `serve` reconnects).
async fn soak_test(
    agent: &LocalAgent,
    server_key: &Arc<russh::keys::PrivateKey>,
    pid: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    let script = ScriptRequest {
        name: "short".into(),
        interpreter: "/bin/sh".into(),
        body: b"echo out; echo err >&2\n".to_vec(),
        env: Vec::new(),
        run_as: Credentials::Inherit,
        working_dir: None,
        timeout: ScriptTimeout::Unlimited,
    };
    for round in 1..=10 {
        for _ in 0..4 {
            let conn = Connection::connect(&agent.dial(server_key.clone())).await?;
            for _ in 0..250 {
                conn.heartbeat().await?;
            }
        }
        let conn = Connection::connect(&agent.dial(server_key.clone())).await?;
        for _ in 0..100 {
            let (tx, mut rx) = tokio::sync::mpsc::channel(64);
            let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
            conn.run_script(&script, new_action_id(), tx).await?;
            drain.await?;
        }
        println!(
            "soak {:>5} heartbeats {:>5} runs: VmRSS {:>6} KiB  VmHWM {:>6} KiB",
            round * 1000,
            round * 100,
            common::status_kib(pid, "VmRSS"),
            common::status_kib(pid, "VmHWM")
        );
    }
    Ok(())
}
