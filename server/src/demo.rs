//! `otto-server demo`: a real `otto-agent` on this machine, set up and driven the way a fleet
//! would be — keys exchanged, a heartbeat, a script with streamed output, an upload verified on
//! disk, a cancel, a key rotation — with a history of what happened. Everything lives in a
//! temporary directory that is removed at the end.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use otto_proto::{Credentials, ScriptTimeout, Stream};
use russh::keys::{PrivateKey, PublicKey};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::client::{
    ActionReport, AgentKeyCheck, ClientError, Connection, Dial, Outcome, Script, ScriptEvent,
    UploadSpec,
};
use crate::keys::{self, KeyError};

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
    /// A key could not be made or stored.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Local files.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Something the demo checks was not so.
    #[error("check failed: {0}")]
    Check(String),
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
    /// key, and starts it. `extra` is appended to its configuration.
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
        let mut child = Command::new(binary)
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

/// Splits a stream of output chunks into whole lines (the last partial line is kept until the
/// next chunk or [`LineSplitter::finish`]).
#[derive(Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    /// Adds a chunk; returns the lines it completed, without their newlines.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        self.partial.extend_from_slice(chunk);
        let mut lines = Vec::new();
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            lines.push(String::from_utf8_lossy(&line[..end]).into_owned());
        }
        lines
    }

    /// The last line if it had no newline.
    pub fn finish(&mut self) -> Option<String> {
        (!self.partial.is_empty())
            .then(|| String::from_utf8_lossy(&std::mem::take(&mut self.partial)).into_owned())
    }
}

/// One row of the demo's history.
struct Entry {
    what: String,
    outcome: String,
    elapsed: Duration,
}

const HOST: &str = "demo-router";

fn section(n: u32, title: &str) {
    println!("\n{n}. {title}");
}

fn human_kib(kib: u64) -> String {
    match kib {
        k if k >= 1024 * 1024 => format!("{:.1} GiB", k as f64 / (1024.0 * 1024.0)),
        k if k >= 1024 => format!("{:.0} MiB", k as f64 / 1024.0),
        k => format!("{k} KiB"),
    }
}

fn ms(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Runs the demo with the agent binary at `agent_bin`.
pub async fn run(agent_bin: &Path) -> Result<(), DemoError> {
    let dir = tempfile::Builder::new().prefix("otto-demo-").tempdir()?;
    println!("Otto demo: a real otto-agent on this machine, driven over SSH by the server");
    println!(
        "  working directory  {} (removed at the end)",
        dir.path().display()
    );
    println!("  agent binary       {}", agent_bin.display());
    let mut history: Vec<Entry> = Vec::new();

    section(1, "Keys");
    let server_key = keys::generate()?;
    let key_path = dir.path().join("server/keys").join(format!("{HOST}.key"));
    keys::save(&key_path, &server_key)?;
    println!(
        "  server key for {HOST}  {} (mode 0600, {})",
        keys::fingerprint(server_key.public_key()),
        key_path.display()
    );
    let agent_dir = dir.path().join("agent");
    let mut agent = LocalAgent::start(agent_bin, &agent_dir, server_key.public_key(), "").await?;
    println!(
        "  the agent trusts it         otto-agent trust '{}'",
        keys::to_openssh(server_key.public_key())
    );
    println!(
        "  agent key, pinned           {}",
        keys::fingerprint(&agent.agent_key)
    );

    section(2, "Connect");
    let started = Instant::now();
    let server_key = Arc::new(server_key);
    let conn = Connection::connect(&agent.dial(server_key.clone())).await?;
    println!(
        "  otto-agent pid {} on {}:{}; SSH (curve25519-sha256, chacha20-poly1305, ed25519) up in {}",
        agent.pid().unwrap_or(0),
        agent.address,
        agent.port,
        ms(started.elapsed())
    );
    history.push(Entry {
        what: "connect".into(),
        outcome: "done".into(),
        elapsed: started.elapsed(),
    });

    section(3, "Heartbeat");
    let hb = conn.heartbeat().await?;
    println!("  host      {}", hb.hostname);
    println!(
        "  system    {} {} {}, {} {}",
        hb.kernel_name, hb.kernel_version, hb.arch, hb.distribution_name, hb.distribution_version
    );
    let [l1, l5, l15] = hb.load_centi.map(|l| format!("{}.{:02}", l / 100, l % 100));
    println!(
        "  uptime    {} h {} min   load {l1} {l5} {l15}   memory {} free of {}",
        hb.uptime_secs / 3600,
        hb.uptime_secs % 3600 / 60,
        human_kib(hb.mem_available_kib),
        human_kib(hb.mem_total_kib)
    );
    println!(
        "  agent     otto-agent {}, answered in {}",
        hb.agent_version,
        ms(hb.round_trip)
    );
    history.push(Entry {
        what: "heartbeat".into(),
        outcome: "done".into(),
        elapsed: hb.round_trip,
    });

    section(4, "Run a script (output streamed as it is produced)");
    let script = Script {
        name: "hello".into(),
        interpreter: "/bin/sh".into(),
        body: b"echo \"Hello from $(hostname), $(uname -sm)\"\n\
                echo \"OTTO_HOST_ADDRESS=$OTTO_HOST_ADDRESS\"\n\
                for i in 1 2 3; do echo \"step $i of 3\"; sleep 0.3; done\n\
                echo 'a warning on stderr' >&2\n\
                df -h / | tail -n 1\n"
            .to_vec(),
        env: vec![
            ("OTTO_HOST_ADDRESS".into(), agent.address.clone()),
            ("OTTO_HOST_PORT".into(), agent.port.to_string()),
        ],
        run_as: Credentials::Inherit,
        working_dir: None,
        timeout: ScriptTimeout::Seconds(60),
    };
    let report = run_printed(&conn, &script).await?;
    println!(
        "  → {} in {}, {} bytes of stdout, {} of stderr",
        report.outcome,
        ms(report.elapsed),
        report.stdout_len,
        report.stderr_len
    );
    if report.outcome != Outcome::Exited(0) {
        return Err(DemoError::Check(format!(
            "the script ended with {}",
            report.outcome
        )));
    }
    history.push(Entry {
        what: "run hello".into(),
        outcome: report.outcome.to_string(),
        elapsed: report.elapsed,
    });

    section(5, "Upload a file");
    let data: Vec<u8> = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let sha256: [u8; 32] = Sha256::digest(&data).into();
    let target = dir.path().join("device/etc/otto-demo.bin");
    let spec = UploadSpec {
        path: target.to_string_lossy().into_owned(),
        owner: Credentials::Inherit,
        mode: 0o640,
        sha256,
        len: data.len() as u64,
    };
    let report = conn
        .upload(&spec, crate::client::new_action_id(), &data[..], |_| {})
        .await?;
    let on_disk: [u8; 32] = Sha256::digest(std::fs::read(&target)?).into();
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&target)?.permissions()) & 0o777;
    println!(
        "  1 MiB → {} : {} in {}",
        target.display(),
        report.outcome,
        ms(report.elapsed)
    );
    println!(
        "  on disk: sha256 {}…, mode {mode:o} — {}",
        hex(&on_disk[..8]),
        if on_disk == sha256 && mode == 0o640 {
            "verified"
        } else {
            "MISMATCH"
        }
    );
    if on_disk != sha256 || mode != 0o640 || !report.outcome.is_success() {
        return Err(DemoError::Check(
            "the uploaded file is not what was sent".into(),
        ));
    }
    history.push(Entry {
        what: "upload 1 MiB".into(),
        outcome: report.outcome.to_string(),
        elapsed: report.elapsed,
    });

    section(6, "Cancel a running script");
    let sleeper = Script {
        name: "sleep".into(),
        body: b"echo sleeping; sleep 300\n".to_vec(),
        timeout: ScriptTimeout::Unlimited,
        ..script.clone()
    };
    let action = crate::client::new_action_id();
    let (tx, mut rx) = mpsc::channel(16);
    let running = {
        let conn = conn.clone();
        tokio::spawn(async move { conn.run_script(&sleeper, action, tx).await })
    };
    // Wait until it has started, then cancel it by its action id on another channel.
    let _ = rx.recv().await;
    println!("  started `sleep 300` as action {action:016x}");
    let cancelled_at = Instant::now();
    let found = conn.cancel(action).await?;
    let report: ActionReport = running
        .await
        .map_err(|e| DemoError::Check(e.to_string()))??;
    println!(
        "  cancel {} → the script ended: {} ({} after the cancel)",
        if found { "delivered" } else { "found nothing" },
        report.outcome,
        ms(cancelled_at.elapsed())
    );
    if report.outcome != Outcome::Cancelled {
        return Err(DemoError::Check(format!(
            "expected a cancelled script, got {}",
            report.outcome
        )));
    }
    history.push(Entry {
        what: "run sleep 300, cancel".into(),
        outcome: report.outcome.to_string(),
        elapsed: report.elapsed,
    });

    section(7, "Rotate keys");
    let started = Instant::now();
    let new_server_key = Arc::new(keys::generate()?);
    let new_agent_key = conn.rotate_identity(new_server_key.public_key()).await?;
    keys::save(&key_path, &new_server_key)?;
    agent.agent_key = new_agent_key;
    let fresh = Connection::connect(&agent.dial(new_server_key.clone())).await?;
    let refused = Connection::connect(&agent.dial(server_key.clone()))
        .await
        .is_err();
    fresh.heartbeat().await?;
    println!(
        "  new server key {}, new agent key {}",
        keys::fingerprint(new_server_key.public_key()),
        keys::fingerprint(&agent.agent_key)
    );
    println!(
        "  a new connection with the new keys works; the old server key is {}",
        if refused { "refused" } else { "STILL ACCEPTED" }
    );
    if !refused {
        return Err(DemoError::Check(
            "the old server key still works after rotation".into(),
        ));
    }
    history.push(Entry {
        what: "rotate keys".into(),
        outcome: "done".into(),
        elapsed: started.elapsed(),
    });

    section(8, "History");
    println!(
        "  {:<3} {:<12} {:<24} {:<14} {:>8}",
        "#", "host", "action", "outcome", "elapsed"
    );
    for (i, entry) in history.iter().enumerate() {
        println!(
            "  {:<3} {:<12} {:<24} {:<14} {:>8}",
            i + 1,
            HOST,
            entry.what,
            entry.outcome,
            ms(entry.elapsed)
        );
    }
    agent.stop().await;
    println!(
        "\nAll steps succeeded; the agent was stopped and {} is removed.",
        dir.path().display()
    );
    Ok(())
}

/// Runs `script`, printing each output line prefixed by the host as it arrives.
async fn run_printed(conn: &Connection, script: &Script) -> Result<ActionReport, DemoError> {
    let (tx, mut rx) = mpsc::channel(64);
    let action = crate::client::new_action_id();
    let run = conn.run_script(script, action, tx);
    let print = async {
        let (mut out, mut err) = (LineSplitter::default(), LineSplitter::default());
        while let Some(event) = rx.recv().await {
            if let ScriptEvent::Output { stream, data } = event {
                let (splitter, mark) = match stream {
                    Stream::Stdout => (&mut out, '|'),
                    Stream::Stderr => (&mut err, '!'),
                };
                for line in splitter.push(&data) {
                    println!("  {HOST} {mark} {line}");
                }
            }
        }
        for (splitter, mark) in [(&mut out, '|'), (&mut err, '!')] {
            if let Some(line) = splitter.finish() {
                println!("  {HOST} {mark} {line}");
            }
        }
    };
    let (report, ()) = tokio::join!(run, print);
    Ok(report?)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_across_chunks() {
        let mut s = LineSplitter::default();
        assert!(s.push(b"hel").is_empty());
        assert_eq!(s.push(b"lo\nwor"), ["hello"]);
        assert_eq!(s.push(b"ld\n\nx"), ["world", ""]);
        assert_eq!(s.finish().as_deref(), Some("x"));
        assert_eq!(s.finish(), None);
    }
}
