//! Figures for output handling, not a test: one real local agent prints the same number of bytes
//! (default 20 MB) without a newline, in lines of 100 bytes, and in lines of 1 MB,
//! through `otto-server run`, a fresh process each time; for each shape it prints the wall time
//! and the peak resident memory of that process (its own rusage). Output handling is linear and
//! bounded when the three take about the same time and memory.
//!
//! `cargo build --release -p otto-agent -p otto-server --examples &&
//!  target/release/examples/output_bench [BYTES]` (binaries are taken from beside the example's
//! directory).

mod common;

use otto_server::demo::LocalAgent;
use otto_server::fleet::{Fleet, FleetOptions};
use otto_server::keys;
use otto_server::model::NewHost;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bytes: u64 = std::env::args()
        .nth(1)
        .map_or(Ok(20_000_000), |a| a.parse())?;
    let (agent_bin, server_bin) = common::binaries()?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("server");
    let fleet = Fleet::open(&data, FleetOptions::default()).await?;
    let server_key = fleet.create_host_key("r1").await?;
    let mut agent = LocalAgent::start(
        &agent_bin,
        &dir.path().join("agent"),
        &server_key,
        "script_timeout = 0",
    )
    .await?;
    fleet
        .store()
        .add_host(&NewHost {
            name: "r1".into(),
            address: agent.address.clone(),
            port: agent.port,
            agent_key: Some(keys::to_openssh(&agent.agent_key)),
            pin_on_first_contact: false,
        })
        .await?;
    drop(fleet);

    let bytes_of_a = format!("head -c {bytes} /dev/zero | tr '\\0' a");
    for (shape, command) in [
        ("no output (reference)".to_string(), "true".to_string()),
        (format!("{bytes} bytes in one line"), bytes_of_a.clone()),
        (
            format!("{bytes} bytes in lines of 100"),
            format!("{bytes_of_a} | fold -w 99"),
        ),
        (
            format!("{bytes} bytes in lines of 1 MB"),
            format!("{bytes_of_a} | fold -w 999999"),
        ),
    ] {
        let (took, peak, ok) = common::timed(
            &server_bin,
            &data,
            &["run", "--host", "r1", "--command", &command],
        )?;
        println!(
            "{shape:<36} {:>6.2} s, peak RSS {peak:>7} KiB{}",
            took.as_secs_f64(),
            if ok { "" } else { ", FAILED" }
        );
    }
    agent.stop().await;
    Ok(())
}
