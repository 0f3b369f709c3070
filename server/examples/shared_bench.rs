//! Figures for a fleet on PostgreSQL shared by three servers, not a test: N real local agents
//! (default 300) on one machine, on a private PostgreSQL cluster (`store::postgres::local`):
//!
//! 1. `database copy` of their SQLite fleet into PostgreSQL;
//! 2. the cold `otto-server run --all --command true` (a fresh process dialling every agent) on
//!    SQLite and on PostgreSQL;
//! 3. three `serve` processes on the database: the time of their first full heartbeat round,
//!    each one's resident memory and the memory per connected agent (against a `serve` with no
//!    hosts);
//! 4. the warm fan-out through one serve's API (`run --all --command true --server URL`, over
//!    its kept connections and those it dials for hosts other servers own);
//! 5. SIGKILL of one server: the time until every host has been heartbeated again.
//!
//! `cargo build --release -p otto-agent -p otto-server --examples &&
//!  target/release/examples/shared_bench [AGENTS]` (binaries are taken from beside the example's
//! directory; PostgreSQL's server programs must be installed).

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use otto_server::fleet::{Fleet, FleetOptions};
use otto_server::store::copy::copy_sqlite_to_postgres;
use otto_server::store::postgres::local::LocalCluster;
use otto_server::store::secrets::KEY_FILE;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// A `serve` on the database, with its HTTP API on a loopback port.
struct Serve {
    child: Child,
    url: String,
}

impl Serve {
    fn start(server: &Path, data: &Path, database: &str) -> Result<Serve, Error> {
        let mut child = Command::new(server)
            .arg("--data-dir")
            .arg(data)
            .args([
                "--database",
                database,
                "serve",
                "--heartbeat-interval",
                "1h",
            ])
            .args(["--rotate-every", "0", "--http-listen", "127.0.0.1:0"])
            .stderr(Stdio::piped())
            .spawn()?;
        let mut lines = BufReader::new(child.stderr.take().ok_or("no stderr")?).lines();
        let url = loop {
            let line = lines.next().ok_or("serve ended")??;
            if line.contains("API listening")
                && let Some(at) = line.split("address=").nth(1)
            {
                let address = at.split_whitespace().next().unwrap_or_default();
                break format!("https://{address}");
            }
        };
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Serve { child, url })
    }

    fn rss(&self) -> u64 {
        common::status_kib(self.child.id(), "VmRSS")
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many hosts were last seen after `since` (ms since the epoch), read from the database.
async fn seen_after(client: &tokio_postgres::Client, since: i64) -> Result<i64, Error> {
    Ok(client
        .query_one("SELECT count(*) FROM hosts WHERE last_seen > $1", &[&since])
        .await?
        .get(0))
}

/// Waits until every one of `count` hosts was seen after `since`; how long it took.
async fn round(client: &tokio_postgres::Client, count: i64, since: i64) -> Result<Duration, Error> {
    let started = Instant::now();
    while seen_after(client, since).await? < count {
        if started.elapsed() > Duration::from_secs(600) {
            return Err("no full round within 10 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(started.elapsed())
}

fn now_ms() -> i64 {
    otto_server::model::now_ms()
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let count: usize = std::env::args().nth(1).map_or(Ok(300), |a| a.parse())?;
    let (agent_bin, server_bin) = common::binaries()?;
    let dir = tempfile::tempdir()?;
    let sqlite = dir.path().join("sqlite");
    let fleet = Fleet::open(&sqlite, FleetOptions::default()).await?;
    let agents = common::start_counted(fleet, &agent_bin, dir.path(), count).await?;

    let cluster = LocalCluster::start()?;
    let database = cluster.create_database("bench").await?;
    let started = Instant::now();
    let report =
        copy_sqlite_to_postgres(&sqlite.join("otto.db"), &database, sqlite.join(KEY_FILE)).await?;
    println!(
        "database copy of {} hosts: {:.2} s",
        report.rows("hosts"),
        started.elapsed().as_secs_f64()
    );
    // Three servers' data directories and an idle one's, each with the key-encryption key.
    let [first, second, third, spare] = ["pg0", "pg1", "pg2", "idle"].map(|d| dir.path().join(d));
    for data in [&first, &second, &third, &spare] {
        std::fs::create_dir_all(data)?;
        std::fs::copy(sqlite.join(KEY_FILE), data.join(KEY_FILE))?;
    }

    for (name, data, extra) in [
        ("SQLite", &sqlite, vec![]),
        ("PostgreSQL", &first, vec!["--database", database.as_str()]),
    ] {
        for attempt in 1..=2 {
            let mut args = extra.clone();
            args.extend(["run", "--all", "--command", "true"]);
            let (took, peak, ok) = common::timed(&server_bin, data, &args)?;
            println!(
                "cold run --all --command true on {name} (try {attempt}): {:.2} s, peak RSS {peak} KiB{}",
                took.as_secs_f64(),
                if ok { "" } else { ", SOME HOSTS FAILED" }
            );
        }
    }

    let (client, connection) = tokio_postgres::connect(&database, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let hosts = i64::try_from(count)?;
    let mut idle = Serve::start(&server_bin, &spare, &cluster.create_database("idle").await?)?;
    let since = now_ms();
    let mut serves = Vec::new();
    for data in [&first, &second, &third] {
        serves.push(Serve::start(&server_bin, data, &database)?);
    }
    let took = round(&client, hosts, since).await?;
    println!(
        "three servers: first full heartbeat round of {count} hosts in {:.2} s (from their start)",
        took.as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    let owned: Vec<(String, i64)> = client
        .query(
            "SELECT server, count(*) FROM host_owners GROUP BY server ORDER BY server",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    println!(
        "hosts owned by each server: {:?}",
        owned.iter().map(|o| o.1).collect::<Vec<_>>()
    );
    let base = idle.rss();
    let rss: Vec<u64> = serves.iter().map(Serve::rss).collect();
    println!("serve with no hosts: VmRSS {base} KiB");
    println!("the three servers: VmRSS {rss:?} KiB");
    println!(
        "memory per connected agent: {:.1} KiB",
        (rss.iter().sum::<u64>().saturating_sub(3 * base)) as f64 / count as f64
    );
    idle.kill();

    // Warm: through the first server's API, over its connections.
    let mut add = Command::new(&server_bin)
        .arg("--data-dir")
        .arg(&first)
        .args(["--database", &database, "user", "add", "bench", "--admin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    std::io::Write::write_all(
        &mut add.stdin.take().ok_or("no stdin")?,
        b"bench-password\n",
    )?;
    if !add.wait()?.success() {
        return Err("user add failed".into());
    }
    let key_out = Command::new(&server_bin)
        .arg("--data-dir")
        .arg(&first)
        .args([
            "--database",
            &database,
            "apikey",
            "create",
            "--user",
            "bench",
            "--json",
        ])
        .output()?;
    if !key_out.status.success() {
        return Err(format!(
            "apikey create: {}",
            String::from_utf8_lossy(&key_out.stderr)
        )
        .into());
    }
    let key: serde_json::Value = serde_json::from_slice(&key_out.stdout)?;
    let secret = key
        .get("secret")
        .and_then(serde_json::Value::as_str)
        .ok_or("no API key")?
        .to_string();
    let through = serves.first().ok_or("no server")?.url.clone();
    for attempt in 1..=2 {
        let started = Instant::now();
        let out = Command::new(&server_bin)
            .args(["--server", &through, "--ca-cert"])
            .arg(first.join("http.crt"))
            .args(["run", "--all", "--command", "true"])
            .env("OTTO_API_KEY", &secret)
            .stdout(Stdio::null())
            .output()?;
        println!(
            "warm run --all --command true through one server's API (try {attempt}): {:.2} s{}",
            started.elapsed().as_secs_f64(),
            if out.status.success() {
                ""
            } else {
                ", SOME HOSTS FAILED"
            }
        );
    }

    // Failover: SIGKILL one; every host it owned heartbeated again by the other two.
    let victim = serves.remove(0);
    let machine = std::fs::read_to_string("/proc/sys/kernel/hostname")?;
    let name = format!("{}:{}", machine.trim(), victim.child.id());
    let lost: Vec<String> = client
        .query(
            "SELECT o.host FROM host_owners o JOIN servers s ON s.id = o.server WHERE s.name = $1",
            &[&name],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let killed = now_ms();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(victim.child.id() as i32, libc::SIGKILL) };
    let started = Instant::now();
    loop {
        let seen: i64 = client
            .query_one(
                "SELECT count(*) FROM hosts WHERE name = ANY($1) AND last_seen > $2",
                &[&lost, &killed],
            )
            .await?
            .get(0);
        if seen == i64::try_from(lost.len())? {
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            return Err(format!("{seen} of {} hosts taken over in 2 minutes", lost.len()).into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "SIGKILL of one server: its {} hosts heartbeated again by the others {:.2} s later",
        lost.len(),
        started.elapsed().as_secs_f64()
    );
    for mut serve in serves {
        serve.kill();
    }
    for mut agent in agents {
        agent.stop().await;
    }
    cluster.stop();
    Ok(())
}
