//! `otto-agent simulate PLAN` (only in a binary built with the feature `sim`, never in one for a
//! device): many agents in one process, to measure a server at fleet scale on one machine. Each
//! agent of the plan is the agent's own code (its SSH server, admissions, Otto sessions,
//! heartbeats with this machine's facts, uploads, fetches) with a key of its own, on one
//! listener of its own, all on the one thread of the agent's runtime; only scripts differ: they
//! are answered by a built-in (each succeeds at once, with no output) instead of a process, so
//! that ten thousand of them cost what the server spends on them, not `sh`.
//!
//! The plan is a text file, one agent per line: `ADDRESS:PORT SERVER_KEY`, the address it
//! listens on and the server key it trusts (OpenSSH form); `#` starts a comment. The agents run
//! until SIGTERM or SIGINT; each prints nothing below warnings.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use russh::keys::PublicKey;

use crate::config::{self, Config};
use crate::link::{Incoming, Reader, Script, Writer};
use crate::log::{self, Level};
use crate::{identity, script, server, state};

/// One agent of a plan.
#[derive(Debug)]
pub struct Planned {
    /// Where it listens.
    pub listen: SocketAddr,
    /// The server key it trusts.
    pub server_key: PublicKey,
}

/// Why a plan cannot be simulated.
#[derive(Debug)]
pub enum SimulateError {
    /// The plan cannot be read.
    Read(PathBuf, io::Error),
    /// Line (given) of the plan is wrong (how).
    Plan(usize, String),
    /// An agent's key cannot be made.
    Key(identity::KeyError),
    /// An agent cannot listen on its address.
    Listen(SocketAddr, io::Error),
}

impl std::fmt::Display for SimulateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SimulateError::Read(path, e) => write!(f, "{}: {e}", path.display()),
            SimulateError::Plan(line, e) => write!(f, "plan line {line}: {e}"),
            SimulateError::Key(e) => e.fmt(f),
            SimulateError::Listen(listen, e) => write!(f, "cannot listen on {listen}: {e}"),
        }
    }
}

/// The agents of a plan's text.
pub fn parse(text: &str) -> Result<Vec<Planned>, SimulateError> {
    let mut planned = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let wrong = |e: String| SimulateError::Plan(i + 1, e);
        let (listen, key) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| wrong("expected `ADDRESS:PORT SERVER_KEY`".into()))?;
        let listen = listen
            .parse()
            .map_err(|_| wrong(format!("`{listen}` is no ADDRESS:PORT")))?;
        let server_key = config::parse_server_key(key.trim()).map_err(|e| wrong(e.to_string()))?;
        planned.push(Planned { listen, server_key });
    }
    Ok(planned)
}

/// Serves every agent of the plan at `plan` on `runtime` until SIGTERM or SIGINT.
pub fn run(plan: &Path, runtime: &tokio::runtime::Runtime) -> Result<(), SimulateError> {
    let text = std::fs::read_to_string(plan).map_err(|e| SimulateError::Read(plan.into(), e))?;
    let planned = parse(&text)?;
    log::set_level(Level::Warn);
    raise_file_limit();
    runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term =
            signal(SignalKind::terminate()).map_err(|e| SimulateError::Read(plan.into(), e))?;
        let count = planned.len();
        for one in planned {
            let key = identity::generate().map_err(SimulateError::Key)?;
            let config = Config {
                listen: Some(one.listen),
                server_key: Some(one.server_key),
                log_level: Level::Warn,
                temp_dir: std::env::temp_dir(),
                ..Config::default()
            };
            let listener = tokio::net::TcpListener::bind(one.listen)
                .await
                .map_err(|e| SimulateError::Listen(one.listen, e))?;
            let agent = state::Agent::simulated(plan.to_path_buf(), config, key);
            tokio::spawn(server::serve(agent, server::shared(), listener));
        }
        println!("simulating {count} agents");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(())
    })
}

/// Takes the whole hard limit of open files as the soft one: an agent's listener and each of
/// its connections are a descriptor each.
fn raise_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// A script of a simulated agent: its bytes read (as a real agent receives them) and thrown
/// away; it succeeds at once with no output.
pub async fn answer(
    reader: &mut Reader,
    request: &Script,
    writer: &mut Writer,
    started: std::time::Instant,
) {
    let mut received = 0u64;
    while received < request.len {
        match reader.next(std::time::Duration::MAX).await {
            Ok(Incoming::Data(chunk)) => received += chunk.len() as u64,
            _ => return,
        }
    }
    let outcome = otto_proto::Outcome::Exited { code: 0 };
    let report = script::Report::default();
    let _ = writer
        .send(&script::result(request.action, outcome, &report, started))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_names_each_agents_address_and_server_key() {
        let key =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGKFfyRz/mKoC8fdvANl2t0sLzgdO4dNEh6ycbTI8OAw";
        let text = format!("# two agents\n127.0.0.1:20001 {key}\n\n127.0.0.2:20002 {key} # b\n");
        let planned = parse(&text).unwrap();
        assert_eq!(planned.len(), 2);
        assert_eq!(planned[1].listen, "127.0.0.2:20002".parse().unwrap());
        let wrong = parse("127.0.0.1 ssh-ed25519 AAAA\n").unwrap_err();
        assert!(matches!(wrong, SimulateError::Plan(1, _)), "{wrong}");
        let wrong = parse(&format!("a\n127.0.0.1:1 {key}\n127.0.0.1:2 nokey")).unwrap_err();
        assert!(matches!(wrong, SimulateError::Plan(1, _)), "{wrong}");
    }
}
