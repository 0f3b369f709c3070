//! `otto-server demo`: a real `otto-agent` on this machine, set up and driven the way a fleet
//! is — a data directory with its database, keys exchanged, a heartbeat, a stored script with
//! an attachment and a secret, streamed output, an upload verified on disk, a cancel, a key
//! rotation — then the history and event log from the database. Everything lives in a temporary
//! directory that is removed at the end. [`LocalAgent`] is also what tests and benches use to
//! start agents.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use otto_proto::Stream;
use russh::keys::{PrivateKey, PublicKey};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::client::{AgentKeyCheck, ClientError, Connection, Dial, Limits};
use crate::fleet::{Fleet, FleetError, FleetOptions};
use crate::http::{ConnectionLimits, HttpOptions, Tls};
use crate::keys::{self, KeyError};
use crate::model::Permissions;
use crate::model::{AfterRun, Phase, Scope, Script};
use crate::names::HostName;
use crate::ops::{
    Actor, AddHost, AddUser, Job, NewAttachment, Ops, OpsError, Ping, RunEvent, RunSink, SetEnv,
    Targets, Upload,
};
use crate::print::{Table, units};
use crate::serve::ServeOptions;

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// No agent binary where it was looked for.
    #[error(
        "no otto-agent binary at {0} (build it with `cargo build --release -p otto-agent`, or pass --agent-bin)"
    )]
    AgentBinary(PathBuf),
    /// The agent could not be set up or did not start.
    #[error("otto-agent: {0}")]
    Agent(String),
    /// Talking to the agent failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The fleet (named with its host: see [`FleetError::named`]).
    #[error("{}", .0.named())]
    Fleet(#[from] FleetError),
    /// A key could not be made or stored.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// An operation on the fleet.
    #[error(transparent)]
    Ops(Box<OpsError>),
    /// Local files.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Something the demo checks was not so.
    #[error("check failed: {0}")]
    Check(String),
    /// The web UI could not be served.
    #[error(transparent)]
    Serve(#[from] crate::serve::ServeError),
}

/// Whether the demo ends by offering the web UI on its agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Web {
    /// Yes (`--web`).
    Offer,
    /// No (`--no-web`).
    Skip,
    /// As the user answers, when it runs on a terminal; else no.
    Ask,
}

impl Web {
    /// Whether to serve the web UI: asked on a terminal when `Ask`.
    fn wanted(self) -> Result<bool, DemoError> {
        use std::io::{BufRead, IsTerminal, Write};
        match self {
            Web::Offer => Ok(true),
            Web::Skip => Ok(false),
            Web::Ask if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) => {
                Ok(false)
            }
            Web::Ask => {
                print!("\nSee the web UI on this agent now? [Y/n] ");
                std::io::stdout().flush()?;
                let mut answer = String::new();
                std::io::stdin().lock().read_line(&mut answer)?;
                Ok(!answer.trim().to_ascii_lowercase().starts_with('n'))
            }
        }
    }
}

impl From<OpsError> for DemoError {
    fn from(e: OpsError) -> DemoError {
        DemoError::Ops(Box::new(e))
    }
}

/// An `otto-agent` process started in a directory of its own, trusting one server key.
pub struct LocalAgent {
    /// Its configuration file.
    pub config: PathBuf,
    /// Where it listens.
    pub address: String,
    /// Its SSH port.
    pub port: u16,
    /// Its public key, as `otto-agent pubkey` printed it.
    pub agent_key: PublicKey,
    child: Child,
}

impl LocalAgent {
    /// Configures an agent in `dir` (loopback, a free port), makes it trust `server_key`, reads its
    /// key, and starts it there (its working directory). `extra` is appended to its configuration.
    pub async fn start(
        binary: &Path,
        dir: &Path,
        server_key: &PublicKey,
        extra: &str,
    ) -> Result<LocalAgent, DemoError> {
        if !binary.is_file() {
            return Err(DemoError::AgentBinary(binary.to_path_buf()));
        }
        let config = dir.join("agent.conf");
        let temp = dir.join("tmp");
        std::fs::create_dir_all(&temp)?;
        std::fs::write(
            &config,
            format!(
                "# written by otto-server demo\nlisten = 127.0.0.1:0\nkey = {}\ntemp_dir = {}\n{extra}\n",
                dir.join("agent.key").display(),
                temp.display()
            ),
        )?;
        let conf = config.to_string_lossy().into_owned();
        cli(
            binary,
            &["--config", &conf, "trust", &keys::to_openssh(server_key)],
        )
        .await?;
        let agent_key = keys::parse_public(&cli(binary, &["--config", &conf, "pubkey"]).await?)?;
        let mut command = Command::new(binary);
        // In its own folder, so that `/proc/self/cwd/NAME` is a path that differs between
        // agents on one machine (only when nothing given relative to this one's would move).
        if dir.is_absolute() && binary.is_absolute() {
            command.current_dir(dir);
        }
        let mut child = command
            .args(["--config", &conf, "run"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| DemoError::Agent(format!("cannot start {}: {e}", binary.display())))?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| DemoError::Agent("no stderr".into()))?;
        let mut lines = BufReader::new(stderr).lines();
        let listening = async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    return Ok(rest.split(',').next().unwrap_or_default().to_string());
                }
            }
            Err(std::io::Error::other("the agent exited before listening"))
        };
        let addr = tokio::time::timeout(Duration::from_secs(30), listening)
            .await
            .map_err(|_| DemoError::Agent("did not start listening within 30 s".into()))??;
        // Keep draining its log so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (address, port) = addr
            .rsplit_once(':')
            .and_then(|(a, p)| Some((a.to_string(), p.parse().ok()?)))
            .ok_or_else(|| DemoError::Agent(format!("cannot read its address from `{addr}`")))?;
        Ok(LocalAgent {
            config,
            address,
            port,
            agent_key,
            child,
        })
    }

    /// How to dial it with `server_key`, its key pinned.
    pub fn dial(&self, server_key: Arc<PrivateKey>) -> Dial {
        Dial {
            address: self.address.clone(),
            port: self.port,
            server_key,
            agent_key: AgentKeyCheck::Pinned(self.agent_key.clone()),
            timeout: Duration::from_secs(30),
            // Generous: the agent may run under a user-mode emulator.
            limits: Limits {
                answer: Duration::from_secs(30),
                stall: Duration::from_secs(60),
                ..Limits::default()
            },
        }
    }

    /// The agent's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Stops it (SIGKILL) and waits for it.
    pub async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }
}

/// Runs `otto-agent ARGS` and returns its standard output.
async fn cli(binary: &Path, args: &[&str]) -> Result<String, DemoError> {
    let out = Command::new(binary).args(args).output().await?;
    if !out.status.success() {
        return Err(DemoError::Agent(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

const HOST: &str = "demo-router";

fn section(n: u32, title: &str) {
    println!("\n{n}. {title}");
}

fn check(ok: bool, what: &str) -> Result<(), DemoError> {
    if ok {
        Ok(())
    } else {
        Err(DemoError::Check(what.into()))
    }
}

/// Prints each output line, indented and prefixed by its host.
fn printed() -> RunSink {
    Arc::new(|event| {
        if let RunEvent::Line { host, stream, text } = event {
            let mark = if stream == Stream::Stderr { '!' } else { '|' };
            println!("  {host} {mark} {}", crate::sanitize::line(text));
        }
    })
}

/// Runs the demo with the agent binary at `agent_bin`; then, as `web` says, serves the web UI
/// on the same agent until Ctrl-C.
pub async fn run(agent_bin: &Path, web: Web) -> Result<(), DemoError> {
    let dir = tempfile::Builder::new().prefix("otto-demo-").tempdir()?;
    let data_dir = dir.path().join("server");
    let device = dir.path().join("device");
    println!("Otto demo: a real otto-agent on this machine, driven over SSH by the server");
    println!(
        "  working directory  {} (removed at the end)",
        dir.path().display()
    );
    println!("  agent binary       {}", agent_bin.display());
    println!(
        "  server data        {} (SQLite database and keys)",
        data_dir.display()
    );

    section(
        1,
        "Keys: the host gets its own server key; the agent trusts it, the server pins the agent's",
    );
    let fleet = Arc::new(Fleet::open(&data_dir, FleetOptions::default()).await?);
    let server_key = fleet.create_host_key(HOST).await?;
    println!(
        "  otto-server host add {HOST} …   server key {} (0600)",
        keys::fingerprint(&server_key)
    );
    let mut agent =
        LocalAgent::start(agent_bin, &dir.path().join("agent"), &server_key, "").await?;
    println!(
        "  otto-agent trust 'ssh-ed25519 …'   done; the agent listens on {}:{}",
        agent.address, agent.port
    );
    let ops = Ops::new(fleet.clone(), Actor::local_user());
    let host = HostName::parse(HOST).map_err(OpsError::from)?;
    ops.add_keyed_host(AddHost {
        name: host.to_string(),
        address: agent.address.clone(),
        port: agent.port,
        agent_key: Some(keys::to_openssh(&agent.agent_key)),
        pin_on_first_contact: false,
        groups: Vec::new(),
        force: false,
    })
    .await?;
    println!(
        "  agent key pinned                  {}",
        keys::fingerprint(&agent.agent_key)
    );
    let everyone = Targets::all();

    section(2, "Heartbeat");
    let started = Instant::now();
    let ping = ops.ping(&everyone).await?.pop();
    let Some(Ping {
        facts: Some(f),
        agent_version: Some(version),
        round_trip_ms,
        ..
    }) = ping
    else {
        return Err(DemoError::Check(format!(
            "no heartbeat: {:?}",
            ping.and_then(|p| p.error)
        )));
    };
    println!(
        "  connected (SSH: curve25519-sha256, chacha20-poly1305, ed25519) and answered in {}",
        human_duration(started.elapsed())
    );
    println!("  host      {}", f.hostname);
    println!(
        "  system    {} {} {}, {} {}",
        f.kernel_name, f.kernel_version, f.arch, f.distribution_name, f.distribution_version
    );
    let [l1, l5, l15] = f.load_centi.map(|l| format!("{}.{:02}", l / 100, l % 100));
    println!(
        "  uptime    {} h {} min   load {l1} {l5} {l15}   memory {} free of {}",
        f.uptime_secs / 3600,
        f.uptime_secs % 3600 / 60,
        units::kib(f.mem_available_kib),
        units::kib(f.mem_total_kib)
    );
    println!(
        "  agent     otto-agent {version}; heartbeat round trip {:.1} ms on the kept connection",
        round_trip_ms.unwrap_or_default()
    );

    section(
        3,
        "A stored script with an attachment, a variable and a secret; output streamed as it is produced",
    );
    let config_path = device.join("etc/otto-demo.conf");
    ops.save_script(
        &Script {
            name: "hello".into(),
            interpreter: "/bin/sh".into(),
            body: format!(
                "echo \"Hello from $(hostname), $(uname -sm)\"\n\
                 echo \"greeting: $GREETING; token: $DEMO_TOKEN\"\n\
                 echo \"attachment: $(cat {})\"\n\
                 for i in 1 2 3; do echo \"step $i of 3\"; sleep 0.3; done\n\
                 echo 'a warning on stderr' >&2\n",
                config_path.display()
            )
            .into_bytes(),
            run_as: None,
            working_dir: None,
            timeout_secs: Some(60),
            after_run: AfterRun::None,
            run_level: crate::model::RunLevel::ReadWrite,
        },
        false,
    )
    .await?;
    ops.add_attachment(NewAttachment {
        script: "hello".into(),
        path: config_path.to_string_lossy().into_owned(),
        content: b"mode=demo".to_vec(),
        owner: None,
        mode: 0o600,
        phase: Phase::Before,
        template: false,
    })
    .await?;
    ops.set_env(&SetEnv {
        scope: Scope::Global,
        name: "GREETING".into(),
        value: "hi from the server".into(),
        secret: Some(false),
    })
    .await?;
    ops.set_env(&SetEnv {
        scope: Scope::Host(HOST.into()),
        name: "DEMO_TOKEN".into(),
        value: "s3cr3t-demo-token".into(),
        secret: Some(true),
    })
    .await?;
    println!(
        "  script hello (/bin/sh), attachment {} before it, GREETING (global), DEMO_TOKEN (host, secret)",
        config_path.display()
    );
    let result = ops
        .run(&everyone, &Job::script("hello"), 1 << 20, printed())
        .await?;
    let r = result
        .first()
        .ok_or_else(|| DemoError::Check("no result".into()))?;
    println!(
        "  → {} in {}; the secret's value was never shown",
        r.outcome,
        r.elapsed_ms.map_or("-".into(), units::millis)
    );
    check(r.success, "the script failed")?;

    section(
        4,
        "Upload a file (streamed from disk, SHA-256 checked by the agent)",
    );
    let data: Vec<u8> = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let local = dir.path().join("firmware.bin");
    std::fs::write(&local, &data)?;
    let target = device.join("lib/firmware.bin");
    let started = Instant::now();
    let done = ops
        .upload(
            &everyone,
            Upload {
                source: local,
                path: target.to_string_lossy().into_owned(),
                owner: None,
                mode: 0o640,
                force: false,
                template: false,
            },
            Arc::new(|_| {}),
        )
        .await?;
    let on_disk: [u8; 32] = Sha256::digest(std::fs::read(&target)?).into();
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&target)?.permissions()) & 0o777;
    let verified = on_disk == <[u8; 32]>::from(Sha256::digest(&data)) && mode == 0o640;
    println!(
        "  1 MiB → {} in {}: {}",
        target.display(),
        human_duration(started.elapsed()),
        done.first().map_or("", |d| d.detail.as_str())
    );
    println!(
        "  on disk: sha256 {}…, mode {mode:o} — {}",
        hex(&on_disk[..8]),
        if verified { "verified" } else { "MISMATCH" }
    );
    check(
        verified && done.iter().all(|d| d.success),
        "the uploaded file is not what was sent",
    )?;

    section(
        5,
        "Cancel a running script by its run id (as `otto-server cancel RUN` does from another shell)",
    );
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let started_tx = std::sync::Mutex::new(Some(started_tx));
    let sink: RunSink = Arc::new(move |event| {
        let RunEvent::Line { host, text, .. } = event else {
            return;
        };
        println!("  {host} | {}", crate::sanitize::line(text));
        if let Some(tx) = started_tx.lock().ok().and_then(|mut t| t.take()) {
            let _ = tx.send(());
        }
    });
    let running = {
        let ops = ops.clone();
        tokio::spawn(async move {
            let sleeper = Job::Command {
                command: "echo sleeping; sleep 300".into(),
                timeout_secs: Some(0),
            };
            ops.run(&Targets::all(), &sleeper, 1 << 20, sink).await
        })
    };
    let _ = started_rx.await;
    let run_id = ops
        .history(Some(HOST), 1)
        .await?
        .pop()
        .map(|r| r.id)
        .unwrap_or_default();
    let cancelled_at = Instant::now();
    let cancel = ops.cancel(run_id).await?;
    let result = running
        .await
        .map_err(|e| DemoError::Check(e.to_string()))??;
    let outcome = result
        .first()
        .map(|r| r.outcome.clone())
        .unwrap_or_default();
    println!(
        "  cancel run {run_id}: {} → the script ended: {outcome} ({} after the cancel)",
        cancel.detail,
        human_duration(cancelled_at.elapsed())
    );
    check(outcome == "cancelled", "the script was not cancelled")?;

    section(6, "Rotate keys");
    let old_key = Arc::new(fleet.host_key(HOST).await?);
    let rotated = ops.rotate(&everyone).await?;
    let rotated = rotated
        .first()
        .ok_or_else(|| DemoError::Check("no rotation result".into()))?;
    check(
        rotated.success,
        &format!("rotation failed: {}", rotated.detail),
    )?;
    agent.agent_key = keys::parse_public(
        ops.host(&host)
            .await?
            .host
            .trust
            .agent_key
            .as_deref()
            .unwrap_or_default(),
    )?;
    // The agent accepts the old server key until the new one has authenticated.
    let again = ops.ping(&everyone).await?;
    let refused = Connection::connect(&agent.dial(old_key)).await.is_err();
    println!(
        "  new server key {}, {}",
        keys::fingerprint(fleet.host_key(HOST).await?.public_key()),
        rotated.detail
    );
    println!(
        "  heartbeat with the new keys: {}; the old server key is {}",
        if again.iter().all(|p| p.reachable) {
            "ok"
        } else {
            "FAILED"
        },
        if refused { "refused" } else { "STILL ACCEPTED" }
    );
    check(
        refused && again.iter().all(|p| p.reachable),
        "rotation did not take effect",
    )?;

    section(7, "History (otto-server history)");
    let mut t = Table::new(&["run", "host", "what", "outcome", "elapsed"]);
    for r in ops.history(None, 50).await? {
        t.row(vec![
            r.id.to_string(),
            r.host,
            r.what,
            r.outcome.unwrap_or_default(),
            r.elapsed_ms.map_or("-".into(), units::millis),
        ]);
    }
    print!("{}", t.render("  "));
    let stored = ops.history(Some(HOST), 50).await?;
    let secret_kept = stored
        .iter()
        .any(|r| String::from_utf8_lossy(&r.stdout).contains("s3cr3t-demo-token"));
    println!(
        "  output is kept per run (`otto-server history --run 1`); secret in stored output: {}",
        if secret_kept { "YES (bug)" } else { "no" }
    );
    check(!secret_kept, "a secret reached the history")?;

    section(8, "Events (otto-server events)");
    let mut t = Table::new(&["time", "event", "detail"]);
    for e in ops.events(None, None, 50).await? {
        t.row(vec![units::utc(e.at), e.kind, e.detail]);
    }
    print!("{}", t.render("  "));

    if web.wanted()? {
        section(9, "The web UI, on the same agent (Ctrl-C ends it)");
        serve_web(fleet, &ops).await?;
    }
    agent.stop().await;
    println!(
        "\nAll steps succeeded; the agent was stopped and {} is removed.",
        dir.path().display()
    );
    Ok(())
}

/// How long a step took, for people.
/// Serves the web UI (and the API) over plain HTTP on a free loopback port, to an
/// administrator `admin` with a new random password, both printed, until Ctrl-C. The user
/// lives in the demo's data directory, removed at the end: the password is good once.
async fn serve_web(fleet: Arc<Fleet>, ops: &Ops) -> Result<(), DemoError> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).map_err(|e| DemoError::Check(format!("no randomness: {e}")))?;
    let password: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    ops.add_user(AddUser {
        name: "admin".into(),
        password: password.clone(),
        permissions: Permissions::admin(),
    })
    .await?;
    let listen = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let options = ServeOptions {
        heartbeat_interval: Duration::from_secs(10),
        rotate_every: None,
        http: Some(HttpOptions {
            listen,
            tls: Tls::Plain,
            limits: ConnectionLimits::default(),
            relay_address: None,
        }),
        config_file: None,
        call_home: None,
    };
    println!("  open      http://{listen}/");
    println!("  sign in   admin, password {password} (this demo's only; gone with it)");
    println!("  Ctrl-C ends it: the server, the agent and the demo's files go.");
    crate::serve::serve(fleet, options, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

fn human_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
