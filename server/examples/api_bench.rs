//! Figures for the HTTP API at fleet scale, not a test: N real local agents (default 1000), then
//!
//! 1. **cold**: `otto-server run --all --command true`, a fresh process dialling every agent,
//!    three times;
//! 2. **warm**: the same through the API of a `serve` that already holds a connection to every
//!    agent: `POST /api/v1/runs`, then its Server-Sent Events read up to the `summary` (from the
//!    request's start to the last result), three times;
//! 3. **latency under load**: 1000 concurrent `GET /api/v1/hosts?limit=100` from one client,
//!    over HTTPS with serve's self-signed certificate pinned: p50, p99, max and the total time,
//!    with serve's VmRSS before and after; then `wrk -c100` (`apt-get install wrk`) on the same
//!    request for 10 s, idle and while warm runs on every host follow one another (with
//!    `--heartbeat 5`, heartbeats too). serve is started with a limit of 1024 connections per
//!    source: every client here is 127.0.0.1.
//!
//! Everything is on loopback and stopped at the end (serve by SIGTERM, then SIGKILL if it has
//! not gone within 10 s; the agents killed).
//!
//! Before them, **the floor**: `true` run by `sh` 1000 times with no server nor agent (64 at a
//! time, as serve runs hosts, and all at once), three times: what the processes alone cost.
//!
//! With `--ui`, last, **the web console** ([`common::console`]): time to the dashboard's and the
//! host list's content in headless Chromium, and with the dashboard open during warm runs, the
//! change stream's events per second and Chromium's CPU.
//!
//! With `--simulated AGENT`, the agents are not processes of their own but one `otto-agent
//! simulate` of AGENT, an agent built with the feature `sim` (the agent's code serving every
//! host on one thread, scripts answered by a built-in: see `agent/src/simulate.rs`), so that
//! ten thousand fit on one machine; serve's memory per held connection (against serve with no
//! hosts) and its threads are printed once it holds them all. `--first-port PORT` (20000)
//! moves their listeners, so that two benchmarks can run side by side. With `--call-home` they
//! call home instead (to serve's `--call-home-listen` on port PORT - 1), each from a loopback
//! address of its own and with a key pinned beforehand.
//!
//! With `--soak MINUTES` (and `--heartbeat SECS`, serve's interval, an hour otherwise), serve is
//! watched that long once it holds every connection, before the runs: its VmRSS, threads and
//! share of a core at each interval, and each heartbeat round's length.
//!
//! `cargo build --release -p otto-agent -p otto-server --examples &&
//!  target/release/examples/api_bench [AGENTS] [--warm-only] [--ui] [--tries N] [--pause SECS]`
//! (binaries are taken from beside the example's directory). `--warm-only` leaves out the cold
//! runs and the load test, `--tries` repeats each figure N times (3), `--pause` waits that long
//! once serve holds every connection, so that a profiler can be attached to serve's pid
//! (printed) before the warm runs, and `--serve-arg ARG` (repeated) gives serve more arguments. Each agent is a process with a few descriptors and the benchmark holds a pipe to
//! each and a socket per request, so the soft open-file limit is raised to the hard one.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use otto_server::fleet::{Fleet, FleetOptions};
use serde_json::{Value, json};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Concurrent requests in the latency test.
const REQUESTS: usize = 1000;
/// How long serve may take for its first heartbeat round, a run, or to stop.
const BOUND: Duration = Duration::from_secs(300);

/// Raises the soft limit on open files to the hard one; returns the new soft limit.
fn raise_open_files() -> std::io::Result<u64> {
    // SAFETY: an all-zero rlimit is a valid value for getrlimit to fill in.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a local.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: a valid pointer to a local.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(limit.rlim_cur)
}

/// `otto-server --data-dir DATA ARGS` with `input` on its standard input; its standard output.
fn cli(server: &Path, data: &Path, args: &[&str], input: &str) -> Result<String, Error> {
    let mut child = Command::new(server)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("OTTO_CONFIG", "/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(input.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("otto-server {args:?}: {err}").into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// A running `serve` with the HTTPS API, its log lines coming through `log`.
struct Daemon {
    child: Child,
    log: Receiver<String>,
    base: String,
    client: reqwest::Client,
}

impl Daemon {
    /// Starts `serve` on `data` with the API on a free loopback port (its self-signed
    /// certificate pinned by the client); returns once it listens.
    fn start(server: &Path, data: &Path, options: &Options) -> Result<Daemon, Error> {
        let heartbeat = format!("{}s", options.heartbeat.as_secs());
        let mut child = Command::new(server)
            .arg("--data-dir")
            .arg(data)
            .args([
                "serve",
                "--heartbeat-interval",
                &heartbeat,
                "--rotate-every",
                "0",
            ])
            // The load tests stand for many clients, all from 127.0.0.1 here: serve's limit
            // per source (64) would otherwise close the handshakes beyond it.
            .args(["--http-connections-per-source", "1024"])
            .args(if options.call_home {
                vec!["--call-home-listen".to_owned(), options.home()]
            } else {
                Vec::new()
            })
            .args(&options.serve_args)
            .args(["--http-listen", "127.0.0.1:0"])
            .env("OTTO_CONFIG", "/dev/null")
            // The heartbeat's per-host lines tell when serve holds every connection.
            .env(
                "RUST_LOG",
                "otto_server=info,otto_server::serve::heartbeat=debug",
            )
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (send, log) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // Once nobody listens, keep draining so that serve never blocks on its pipe.
                let _ = send.send(line);
            }
        });
        let listening = match wait_for(&log, |line| line.contains("API listening")) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        let address = listening
            .split_whitespace()
            .find_map(|w| w.strip_prefix("address="))
            .ok_or("no address in serve's log")?;
        Ok(Daemon {
            child,
            log,
            base: format!("https://{address}"),
            client: client(&data.join("http.crt"))?,
        })
    }

    /// Waits for the first heartbeat of all `count` hosts; returns how many answered.
    fn wait_for_heartbeats(&self, count: usize) -> Result<usize, Error> {
        let (mut answered, mut seen) = (0, 0);
        wait_for(&self.log, |line| {
            if line.contains("heartbeat answered") {
                answered += 1;
                seen += 1;
            } else if line.contains("unreachable") {
                seen += 1;
            }
            seen == count
        })?;
        Ok(answered)
    }

    /// Waits until `count` agents have called home.
    fn wait_for_calls(&self, count: usize) -> Result<(), Error> {
        let mut called = 0;
        wait_for(&self.log, |line| {
            called += usize::from(line.contains("called home"));
            called == count
        })?;
        Ok(())
    }

    /// A request to `path` with the API key `key`.
    fn request(&self, method: reqwest::Method, path: &str, key: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key)
    }

    /// Stops serve: SIGTERM, then SIGKILL if it is still there after 10 s.
    fn stop(&mut self) -> Result<(), Error> {
        // SAFETY: signalling our own child, not yet reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        println!("serve did not stop within 10 s of SIGTERM: killed");
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Daemon {
    /// On an early return: serve never outlives the benchmark.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads serve's `log` until a line satisfies `found`; returns that line.
fn wait_for(log: &Receiver<String>, mut found: impl FnMut(&str) -> bool) -> Result<String, Error> {
    let deadline = Instant::now() + BOUND;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match log.recv_timeout(left) {
            Ok(line) if found(&line) => return Ok(line),
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => return Err("serve's log: timed out".into()),
            Err(RecvTimeoutError::Disconnected) => return Err("serve ended".into()),
        }
    }
}

/// A client trusting exactly the certificate in `cert`, with room for every request at once.
fn client(cert: &Path) -> Result<reqwest::Client, Error> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(cert)? {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .pool_max_idle_per_host(REQUESTS)
        .build()?)
}

/// CPU time in seconds used so far by process `pid` (all its threads, user and system); 0
/// when it cannot be read.
fn cpu_secs(pid: u32) -> f64 {
    common::stat_ticks(pid) as f64 / common::ticks_per_sec()
}

/// CPU time in seconds used so far by the main thread of `pid`, in nanoseconds from
/// `/proc/PID/schedstat` (an agent has one thread, and uses less than a clock tick per run).
fn thread_cpu_secs(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .and_then(|ns| ns.parse::<u64>().ok())
        .map_or(0.0, |ns| ns as f64 / 1e9)
}

/// CPU seconds used so far by serve, and by the agents themselves (not their scripts).
fn cpu_used(serve: u32, agents: &[u32]) -> (f64, f64) {
    let agents = agents.iter().map(|pid| thread_cpu_secs(*pid)).sum();
    (cpu_secs(serve), agents)
}

/// CPU seconds used so far by this process's children that have ended.
fn children_cpu_secs() -> f64 {
    // SAFETY: an all-zero rusage is a valid value for getrusage to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a local.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// What a warm run through the API came to.
struct Warm {
    took: Duration,
    /// From the request's start to the `started` event.
    first: Duration,
    /// From the request's start to the first host's end (`done`).
    first_done: Duration,
    succeeded: u64,
    failed: u64,
}

/// `true` on every host through the API: the launch, then its events up to the summary.
async fn warm_run(daemon: &Daemon, key: &str) -> Result<Warm, Error> {
    let started = Instant::now();
    let response = daemon
        .request(reqwest::Method::POST, "/api/v1/runs", key)
        .json(&json!({"command": "true", "all": true}))
        .send()
        .await?;
    if response.status() != reqwest::StatusCode::ACCEPTED {
        return Err(format!("POST /api/v1/runs: {}", response.text().await?).into());
    }
    let launch = response
        .json::<Value>()
        .await?
        .get("launch")
        .and_then(Value::as_u64)
        .ok_or("no launch id")?;
    let path = format!("/api/v1/launches/{launch}/events");
    let mut events = daemon
        .request(reqwest::Method::GET, &path, key)
        .send()
        .await?;
    let (mut buffer, mut first, mut first_done) = (String::new(), None, None);
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) else {
                continue; // a keep-alive comment
            };
            let event: Value = serde_json::from_str(data)?;
            match event.get("type").and_then(Value::as_str) {
                Some("started") => first = Some(started.elapsed()),
                Some("done") if first_done.is_none() => first_done = Some(started.elapsed()),
                Some("summary") => {
                    return Ok(Warm {
                        took: started.elapsed(),
                        first: first.unwrap_or_default(),
                        first_done: first_done.unwrap_or_default(),
                        succeeded: event.get("succeeded").and_then(Value::as_u64).unwrap_or(0),
                        failed: event.get("failed").and_then(Value::as_u64).unwrap_or(0),
                    });
                }
                Some("error") => return Err(format!("the launch failed: {event}").into()),
                _ => {}
            }
        }
        let chunk = tokio::time::timeout(BOUND, events.chunk())
            .await?
            .map_err(|e| format!("the event stream: {e}"))?
            .ok_or("the event stream ended before its summary")?;
        buffer.push_str(std::str::from_utf8(&chunk)?);
    }
}

/// Latencies of `REQUESTS` concurrent host listings, sorted; and the time for all of them.
async fn load(daemon: &Daemon, key: &str) -> Result<(Vec<Duration>, Duration), Error> {
    let started = Instant::now();
    let tasks: Vec<_> = (0..REQUESTS)
        .map(|_| {
            let request = daemon.request(reqwest::Method::GET, "/api/v1/hosts?limit=100", key);
            tokio::spawn(async move {
                let sent = Instant::now();
                let response = request.send().await?;
                let status = response.status();
                let body = response.bytes().await?;
                if status != reqwest::StatusCode::OK {
                    return Err(format!("GET /api/v1/hosts: {status}").into());
                }
                let took = sent.elapsed();
                let page: Value = serde_json::from_slice(&body)?;
                if page
                    .get("hosts")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len)
                    == 0
                {
                    return Err("an empty page of hosts".into());
                }
                Ok::<_, Error>(took)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(REQUESTS);
    for task in tasks {
        latencies.push(task.await??);
    }
    let total = started.elapsed();
    latencies.sort();
    Ok((latencies, total))
}

/// The `q` quantile (0 to 1) of the sorted `sorted`, in milliseconds.
fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    let rank = ((sorted.len() as f64 * q).ceil() as usize).saturating_sub(1);
    sorted
        .get(rank.min(sorted.len().saturating_sub(1)))
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// What to measure, from the command line.
struct Options {
    count: usize,
    warm_only: bool,
    /// The web console's figures too (`--ui`).
    ui: bool,
    tries: usize,
    pause: Duration,
    /// More arguments for serve (`--serve-arg --dial-limit=256`).
    serve_args: Vec<String>,
    /// An agent built with the feature `sim`: every agent simulated in one process of it.
    simulated: Option<std::path::PathBuf>,
    /// The simulated agents' first port (`--first-port`, 20000): two benchmarks side by side.
    first_port: u16,
    /// serve's heartbeat interval (`--heartbeat SECS`; an hour unless soaking).
    heartbeat: Duration,
    /// How long to watch serve's heartbeats, memory and CPU before the runs (`--soak MINUTES`).
    soak: Duration,
    /// The simulated agents call home (`--call-home`), to port `first_port - 1`.
    call_home: bool,
}

impl Options {
    /// Where serve listens for agents that call home.
    fn home(&self) -> String {
        format!("127.0.0.1:{}", self.first_port.saturating_sub(1))
    }
}

impl Options {
    fn parse() -> Result<Options, Error> {
        let mut options = Options {
            count: 1000,
            warm_only: false,
            ui: false,
            tries: 3,
            pause: Duration::ZERO,
            serve_args: Vec::new(),
            simulated: None,
            first_port: 20000,
            heartbeat: Duration::from_secs(3600),
            soak: Duration::ZERO,
            call_home: false,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--warm-only" => options.warm_only = true,
                "--ui" => options.ui = true,
                "--tries" => options.tries = args.next().ok_or("--tries N")?.parse()?,
                "--pause" => {
                    let secs: u64 = args.next().ok_or("--pause SECS")?.parse()?;
                    options.pause = Duration::from_secs(secs);
                }
                "--simulated" => {
                    options.simulated = Some(args.next().ok_or("--simulated AGENT")?.into());
                }
                "--first-port" => {
                    options.first_port = args.next().ok_or("--first-port PORT")?.parse()?;
                }
                "--heartbeat" => {
                    let secs: u64 = args.next().ok_or("--heartbeat SECS")?.parse()?;
                    options.heartbeat = Duration::from_secs(secs);
                }
                "--soak" => {
                    let minutes: u64 = args.next().ok_or("--soak MINUTES")?.parse()?;
                    options.soak = Duration::from_secs(60 * minutes);
                }
                "--call-home" => options.call_home = true,
                "--serve-arg" => options
                    .serve_args
                    .push(args.next().ok_or("--serve-arg ARG")?),
                count => options.count = count.parse()?,
            }
        }
        Ok(options)
    }
}

/// Time for `count` runs of `sh -c true`, at most `at_once` at a time: the floor of a fan-out
/// of `true`, with no SSH, no agent and no server.
async fn floor(count: usize, at_once: usize) -> Result<Duration, Error> {
    let slots = Arc::new(tokio::sync::Semaphore::new(at_once));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..count {
        let slots = slots.clone();
        tasks.spawn(async move {
            let _slot = slots.acquire_owned().await?;
            let status = tokio::process::Command::new("/bin/sh")
                .args(["-c", "true"])
                .stdin(Stdio::null())
                .status()
                .await?;
            if !status.success() {
                return Err::<(), Error>("sh -c true failed".into());
            }
            Ok(())
        });
    }
    while let Some(task) = tasks.join_next().await {
        task??;
    }
    Ok(started.elapsed())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let options = Options::parse()?;
    let count = options.count;
    let (agent_bin, server_bin) = common::binaries()?;
    println!("open files: soft limit raised to {}", raise_open_files()?);
    println!("the floor: `sh -c true` {count} times, no server nor agent:");
    println!("| try | 64 at a time | all at once | CPU of the `sh` (both) |");
    println!("|-:|-:|-:|-:|");
    for i in 0..options.tries {
        let cpu = children_cpu_secs();
        let (some, all) = (floor(count, 64).await?, floor(count, count).await?);
        println!(
            "| {} | {:.2} s | {:.2} s | {:.2} s |",
            i + 1,
            some.as_secs_f64(),
            all.as_secs_f64(),
            children_cpu_secs() - cpu
        );
    }
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("server");
    let fleet = Fleet::open(&data, FleetOptions::default()).await?;
    if let Some(simulator) = &options.simulated {
        let idle = serve_rss_idle(&server_bin, &dir.path().join("empty"), &options)?;
        let simulated = simulate(fleet, simulator, dir.path(), &options).await?;
        let pids: Vec<u32> = simulated.iter().map(Child::id).collect();
        let result = bench(&server_bin, &data, &options, &pids, Some(idle)).await;
        for mut child in simulated {
            let _ = child.kill();
            let _ = child.wait();
        }
        return result;
    }

    let mut agents = common::start_counted(fleet, &agent_bin, dir.path(), count).await?;
    let pids: Vec<u32> = agents.iter().filter_map(|a| a.pid()).collect();
    let result = bench(&server_bin, &data, &options, &pids, None).await;
    let stopping = Instant::now();
    for agent in &mut agents {
        if tokio::time::timeout(Duration::from_secs(5), agent.stop())
            .await
            .is_err()
        {
            println!("an agent did not stop within 5 s");
        }
    }
    println!(
        "{count} agents stopped in {:.1} s",
        stopping.elapsed().as_secs_f64()
    );
    result
}

/// VmRSS (KiB) of serve on an empty data directory `data` once it listens: the base that held
/// connections add to.
fn serve_rss_idle(server: &Path, data: &Path, options: &Options) -> Result<u64, Error> {
    let mut daemon = Daemon::start(server, data, options)?;
    std::thread::sleep(Duration::from_secs(1));
    let rss = common::status_kib(daemon.child.id(), "VmRSS");
    daemon.stop()?;
    Ok(rss)
}

/// The most agents one `otto-agent simulate` serves: each takes a descriptor for its listener
/// and one for its connection, and the hard limit of open files may be 20000.
const PER_SIMULATOR: usize = 4000;

/// Adds `count` hosts to `fleet` (then closed), each with a server key of its own and trusting
/// the key its agent presents first, and starts `otto-agent simulate` of `simulator` serving
/// them all (on 127.0.0.1, ports from `first_port`; [`PER_SIMULATOR`] to a process); returns
/// once each says it does.
async fn simulate(
    fleet: Fleet,
    simulator: &Path,
    dir: &Path,
    options: &Options,
) -> Result<Vec<Child>, Error> {
    let (count, first_port) = (options.count, options.first_port);
    let started = Instant::now();
    let mut plans = vec![String::new(); count.div_ceil(PER_SIMULATOR)];
    for i in 0..count {
        let name = format!("sim-{i:05}");
        let port = u16::try_from(usize::from(first_port) + i)?;
        let server_key = otto_server::keys::to_openssh(&fleet.create_host_key(&name).await?);
        let (line, agent_key) = if options.call_home {
            // A key of its own from a seed, pinned now; a loopback address of its own to
            // call from (serve bounds the handshakes from one source).
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).map_err(|e| e.to_string())?;
            let key = russh::keys::PrivateKey::from(
                russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&seed),
            );
            let from = format!(
                "127.{}.{}.{}",
                1 + i / 62500,
                (i / 250) % 250 + 1,
                i % 250 + 1
            );
            let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
            let line = format!("call {} {from} {hex} {server_key}\n", options.home());
            (line, Some(key.public_key().to_openssh()?))
        } else {
            (format!("127.0.0.1:{port} {server_key}\n"), None)
        };
        fleet
            .store()
            .add_host(&otto_server::model::NewHost {
                name,
                address: "127.0.0.1".into(),
                // Nothing listens there for an agent that calls home.
                port: if options.call_home { 1 } else { port },
                pin_on_first_contact: agent_key.is_none(),
                agent_key,
            })
            .await?;
        if let Some(plan) = plans.get_mut(i / PER_SIMULATOR) {
            *plan += &line;
        }
    }
    drop(fleet);
    println!(
        "{count} hosts added in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut children = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        let plan_file = dir.join(format!("plan-{i}"));
        std::fs::write(&plan_file, plan)?;
        let mut child = Command::new(simulator)
            .arg("simulate")
            .arg(&plan_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        match lines.next() {
            Some(Ok(line)) if line.starts_with("simulating") => children.push(child),
            other => {
                let _ = child.kill();
                return Err(format!("otto-agent simulate: {other:?}").into());
            }
        }
    }
    println!(
        "{count} simulated agents ({} processes, pids {:?}) ready in {:.1} s",
        children.len(),
        children.iter().map(Child::id).collect::<Vec<_>>(),
        started.elapsed().as_secs_f64()
    );
    Ok(children)
}

/// The figures, on the data directory `data` of `options.count` hosts; with `idle` (serve's
/// VmRSS with no hosts), its memory per held connection.
async fn bench(
    server: &Path,
    data: &Path,
    options: &Options,
    agents: &[u32],
    idle: Option<u64>,
) -> Result<(), Error> {
    let count = options.count;
    cli(
        server,
        data,
        &["user", "add", "bench", "--admin"],
        "bench password\n",
    )?;
    let key: Value = serde_json::from_str(&cli(
        server,
        data,
        &["apikey", "create", "--user", "bench", "--json"],
        "",
    )?)?;
    let key = key
        .get("secret")
        .and_then(Value::as_str)
        .ok_or("no secret")?
        .to_owned();

    let mut cold = Vec::new();
    for _ in 0..if options.warm_only { 0 } else { options.tries } {
        let (took, peak, ok) = common::timed(server, data, &["run", "--all", "--command", "true"])?;
        cold.push((took, peak, ok));
    }

    let mut daemon = Daemon::start(server, data, options)?;
    let waiting = Instant::now();
    if options.call_home {
        daemon.wait_for_calls(count)?;
        println!(
            "serve (pid {}): every agent called home in {:.1} s",
            daemon.child.id(),
            waiting.elapsed().as_secs_f64()
        );
    } else {
        let answered = daemon.wait_for_heartbeats(count)?;
        println!(
            "serve (pid {}): first heartbeat round in {:.1} s, {answered} of {count} hosts reachable",
            daemon.child.id(),
            waiting.elapsed().as_secs_f64()
        );
    }
    if let Some(idle) = idle {
        std::thread::sleep(Duration::from_secs(2));
        let pid = daemon.child.id();
        let rss = common::status_kib(pid, "VmRSS");
        println!(
            "serve holding {count} connections: VmRSS {rss} KiB, {} threads; with no hosts: \
             {idle} KiB; per connection: {:.1} KiB",
            common::status_kib(pid, "Threads"),
            rss.saturating_sub(idle) as f64 / count as f64
        );
    }
    if !options.soak.is_zero() {
        soak(&daemon, options)?;
    }
    std::thread::sleep(options.pause);
    let mut result = measure(&daemon, &key, &cold, options, agents).await;
    if result.is_ok() && options.ui {
        result = console(&daemon, &key, options).await;
    }
    daemon.stop()?;
    result
}

/// Watches serve for `options.soak` once it holds every connection: at each heartbeat interval,
/// its VmRSS, threads, the CPU it used since the last sample (as a share of one core) and the
/// heartbeats answered; then each round's length (from its first answer to its last, as the
/// log lines arrive).
fn soak(daemon: &Daemon, options: &Options) -> Result<(), Error> {
    let pid = daemon.child.id();
    let interval = options.heartbeat;
    println!();
    println!(
        "serve holding {} connections, heartbeats every {} s, for {} min:",
        options.count,
        interval.as_secs(),
        options.soak.as_secs() / 60
    );
    println!(
        "| after | VmRSS | threads | CPU of serve (share of one core) | heartbeats answered |"
    );
    println!("|-:|-:|-:|-:|-:|");
    let started = Instant::now();
    let mut answers = Vec::new();
    let (mut cpu, mut sampled) = (cpu_secs(pid), Instant::now());
    while started.elapsed() < options.soak {
        let next = sampled + interval;
        let mut answered = 0;
        loop {
            let left = next.saturating_duration_since(Instant::now());
            match daemon.log.recv_timeout(left) {
                Ok(line) if line.contains("heartbeat answered") => {
                    answered += 1;
                    answers.push(Instant::now());
                }
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return Err("serve ended".into()),
            }
        }
        let now_cpu = cpu_secs(pid);
        let share = (now_cpu - cpu) / sampled.elapsed().as_secs_f64();
        (cpu, sampled) = (now_cpu, Instant::now());
        println!(
            "| {:.0} s | {} KiB | {} | {:.1} % | {answered} |",
            started.elapsed().as_secs_f64(),
            common::status_kib(pid, "VmRSS"),
            common::status_kib(pid, "Threads"),
            share * 100.0
        );
    }
    let mut rounds: Vec<(Instant, Instant, usize)> = Vec::new();
    for at in answers {
        match rounds.last_mut() {
            Some((_, last, n)) if at.duration_since(*last) < interval / 2 => {
                (*last, *n) = (at, *n + 1);
            }
            _ => rounds.push((at, at, 1)),
        }
    }
    let lengths: Vec<String> = rounds
        .iter()
        .map(|(first, last, n)| {
            format!("{n} in {:.2} s", last.duration_since(*first).as_secs_f64())
        })
        .collect();
    println!(
        "heartbeat rounds (answers, first to last): {}",
        lengths.join(", ")
    );
    Ok(())
}

/// The web console's figures ([`common::console`]): time to the dashboard's and the host list's
/// content, then warm runs with the dashboard open: the change stream's events per second and
/// Chromium's CPU.
async fn console(daemon: &Daemon, key: &str, options: &Options) -> Result<(), Error> {
    use common::console::{Browser, chromium_cpu_secs, chromium_ticks, count_changes};
    let count = options.count;
    let browser = Browser::start().await?;
    let base = format!("{}/", daemon.base);
    browser.sign_in(&base, "bench", "bench password").await?;
    println!();
    println!("the web console, {count} hosts (headless Chromium on loopback):");
    println!("| try | dashboard: to its counts | host list: to its rows |");
    println!("|-:|-:|-:|");
    for i in 0..options.tries {
        let dashboard = browser.time_to(&format!("{base}#/"), "#counts").await?;
        let hosts = browser
            .time_to(&format!("{base}#/hosts"), "#hosts tbody tr")
            .await?;
        println!(
            "| {} | {:.0} ms | {:.0} ms |",
            i + 1,
            dashboard.as_secs_f64() * 1000.0,
            hosts.as_secs_f64() * 1000.0
        );
    }
    browser.client.goto(&base).await?;
    browser.wait_for("#counts").await?;
    println!();
    println!(
        "`true` on {count} hosts with the dashboard open (its live refresh following the change stream):"
    );
    println!(
        "| try | change events | run took | events/s | Chromium CPU (the run and 2 s after) |"
    );
    println!("|-:|-:|-:|-:|-:|");
    for i in 0..options.tries {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let response = daemon
            .request(reqwest::Method::GET, "/api/v1/changes", key)
            .send()
            .await?;
        let counter = tokio::spawn(count_changes(response, stopped));
        let before = chromium_ticks();
        let run = warm_run(daemon, key).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let cpu = chromium_cpu_secs(&before, &chromium_ticks());
        stop.send(true)?;
        let events = counter.await?;
        println!(
            "| {} | {events} | {:.2} s | {:.0} | {cpu:.2} s |",
            i + 1,
            run.took.as_secs_f64(),
            events as f64 / run.took.as_secs_f64()
        );
    }
    Ok(())
}

/// Warm runs beside `cold`, then the load test, on `daemon`.
async fn measure(
    daemon: &Daemon,
    key: &str,
    cold: &[(Duration, i64, bool)],
    options: &Options,
    agents: &[u32],
) -> Result<(), Error> {
    let count = options.count;
    let mut warm = Vec::new();
    for _ in 0..options.tries {
        let before = cpu_used(daemon.child.id(), agents);
        let run = warm_run(daemon, key).await?;
        let after = cpu_used(daemon.child.id(), agents);
        warm.push((run, after.0 - before.0, after.1 - before.1));
    }
    println!();
    println!("`true` on {count} agents, start to last result:");
    println!(
        "| try | cold CLI `run --all` | its peak RSS | warm API (serve) | warm: `started` after | first `done` after | warm: ok / failed | warm: CPU of serve | of the agents (without `sh`) |"
    );
    println!("|-:|-:|-:|-:|-:|-:|-:|-:|-:|");
    for (i, (w, serve_cpu, agents_cpu)) in warm.iter().enumerate() {
        let (took, peak) = match cold.get(i) {
            Some((took, peak, ok)) => (
                format!(
                    "{:.2} s{}",
                    took.as_secs_f64(),
                    if *ok { "" } else { " (some failed)" }
                ),
                format!("{} MiB", peak / 1024),
            ),
            None => ("-".into(), "-".into()),
        };
        println!(
            "| {} | {took} | {peak} | {:.2} s | {:.0} ms | {:.0} ms | {} / {} | {serve_cpu:.2} s | {agents_cpu:.2} s |",
            i + 1,
            w.took.as_secs_f64(),
            w.first.as_secs_f64() * 1000.0,
            w.first_done.as_secs_f64() * 1000.0,
            w.succeeded,
            w.failed
        );
    }

    if options.warm_only {
        return Ok(());
    }
    let pid = daemon.child.id();
    let before = common::status_kib(pid, "VmRSS");
    let (latencies, total) = load(daemon, key).await?;
    let after = common::status_kib(pid, "VmRSS");
    let peak = common::status_kib(pid, "VmHWM");
    println!();
    println!(
        "{REQUESTS} concurrent `GET /api/v1/hosts?limit=100` (HTTPS, one client, a connection each):"
    );
    println!("| p50 | p99 | max | all done in | serve VmRSS before | after | serve VmHWM |");
    println!("|-:|-:|-:|-:|-:|-:|-:|");
    println!(
        "| {:.1} ms | {:.1} ms | {:.1} ms | {:.2} s | {} MiB | {} MiB | {} MiB |",
        quantile_ms(&latencies, 0.5),
        quantile_ms(&latencies, 0.99),
        quantile_ms(&latencies, 1.0),
        total.as_secs_f64(),
        before / 1024,
        after / 1024,
        peak / 1024
    );

    println!();
    println!(
        "`wrk -c{WRK_CONNECTIONS} -t2 -d{}s` on `GET /api/v1/hosts?limit=100` (HTTPS, keep-alive):",
        WRK_TIME.as_secs()
    );
    println!("| while | requests/s | p50 | p99 | errors | warm runs meanwhile |");
    println!("|-|-:|-:|-:|-|-:|");
    let idle = wrk(daemon, key).await?;
    println!("| idle | {} | 0 |", idle.row());
    // Warm runs of `true` on every host, one after the other, for as long as wrk runs.
    let busy = async {
        let mut runs = 0;
        let deadline = Instant::now() + WRK_TIME;
        while Instant::now() < deadline {
            warm_run(daemon, key).await?;
            runs += 1;
        }
        Ok::<_, Error>(runs)
    };
    let (loaded, runs) = tokio::join!(wrk(daemon, key), busy);
    println!(
        "| a run on all {count} hosts at a time | {} | {} |",
        loaded?.row(),
        runs?
    );
    Ok(())
}

/// Connections wrk keeps open.
const WRK_CONNECTIONS: usize = 100;
/// How long wrk runs.
const WRK_TIME: Duration = Duration::from_secs(10);

/// What wrk said: requests per second, two latency quantiles and its errors, as printed.
struct Wrk {
    rate: String,
    p50: String,
    p99: String,
    errors: String,
}

impl Wrk {
    fn row(&self) -> String {
        format!(
            "{} | {} | {} | {}",
            self.rate, self.p50, self.p99, self.errors
        )
    }
}

/// `wrk` (from PATH) against the host list for [`WRK_TIME`] with [`WRK_CONNECTIONS`]
/// keep-alive connections; its figures, parsed from its `--latency` report.
async fn wrk(daemon: &Daemon, key: &str) -> Result<Wrk, Error> {
    let out = tokio::process::Command::new("wrk")
        .args(["-t2", &format!("-c{WRK_CONNECTIONS}")])
        .arg(format!("-d{}s", WRK_TIME.as_secs()))
        .args(["--latency", "-H", &format!("Authorization: Bearer {key}")])
        .arg(format!("{}/api/v1/hosts?limit=100", daemon.base))
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("wrk (apt-get install wrk): {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("wrk: {}{}", text, String::from_utf8_lossy(&out.stderr)).into());
    }
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_owned()))
    };
    let errors = [field("Socket errors:"), field("Non-2xx or 3xx responses:")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>();
    Ok(Wrk {
        rate: field("Requests/sec:").ok_or("wrk printed no rate")?,
        p50: field("50%").ok_or("wrk printed no latency")?,
        p99: field("99%").ok_or("wrk printed no latency")?,
        errors: if errors.is_empty() {
            "none".into()
        } else {
            errors.join("; ")
        },
    })
}
