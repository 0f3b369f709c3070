//! `otto-agent simulate PLAN` (only in a binary built with the feature `sim`, never in one for a
//! device): many agents in one process, to measure a server at fleet scale on one machine. Each
//! agent of the plan is the agent's own code (its SSH server, admissions, Otto sessions,
//! heartbeats with this machine's facts, uploads, fetches) with a key of its own, on one
//! listener of its own, all on the one thread of the agent's runtime; only scripts differ: they
//! are answered by a built-in (each succeeds at once, with no output) instead of a process, so
//! that ten thousand of them cost what the server spends on them, not `sh`.
//!
//! The plan is a text file, one agent per line, either `ADDRESS:PORT SERVER_KEY`, an agent
//! that listens on that address and trusts that server key (OpenSSH form), or `call
//! ADDRESS:PORT FROM SEED SERVER_KEY`, an agent that calls home to that address from the
//! address FROM (each its own, as devices have: a server bounds the handshakes from one
//! source), its key made from SEED (64 hex digits: the server pins its public key beforehand);
//! `#` starts a comment. The agents run until SIGTERM or SIGINT; each prints nothing below
//! warnings.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use russh::keys::PublicKey;

use crate::callhome::{self, CallHome};
use crate::config::{self, Config};
use crate::link::{Incoming, Reader, Script, Writer};
use crate::log::{self, Level};
use crate::{identity, script, server, state};

/// One agent of a plan.
#[derive(Debug)]
pub struct Planned {
    /// How the server reaches it.
    pub reached: Reached,
    /// The server key it trusts.
    pub server_key: PublicKey,
}

/// How the server reaches a simulated agent.
#[derive(Debug)]
pub enum Reached {
    /// It dials the agent here.
    Listening(SocketAddr),
    /// The agent calls home.
    Calling {
        /// The server's call-home address.
        home: CallHome,
        /// The address the agent calls from.
        from: IpAddr,
        /// The seed of the agent's key.
        seed: [u8; 32],
    },
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
        let (reached, key) = match line.strip_prefix("call ") {
            Some(call) => calling(call).map_err(wrong)?,
            None => {
                let (listen, key) = line
                    .split_once(char::is_whitespace)
                    .ok_or_else(|| wrong("expected `ADDRESS:PORT SERVER_KEY`".into()))?;
                let listen = listen
                    .parse()
                    .map_err(|_| wrong(format!("`{listen}` is no ADDRESS:PORT")))?;
                (Reached::Listening(listen), key)
            }
        };
        let server_key = config::parse_server_key(key.trim()).map_err(|e| wrong(e.to_string()))?;
        planned.push(Planned {
            reached,
            server_key,
        });
    }
    Ok(planned)
}

/// `ADDRESS:PORT FROM SEED SERVER_KEY` of a `call` line: how the agent is reached, and the
/// rest (the server key).
fn calling(line: &str) -> Result<(Reached, &str), String> {
    let mut words = line.trim().splitn(4, char::is_whitespace);
    let (Some(home), Some(from), Some(seed), Some(key)) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err("expected `call ADDRESS:PORT FROM SEED SERVER_KEY`".into());
    };
    let home = CallHome::parse(home).map_err(|e| e.to_string())?;
    let from = from
        .parse()
        .map_err(|_| format!("`{from}` is no address to call from"))?;
    let mut bytes = [0u8; 32];
    if seed.len() != 64 {
        return Err("the seed is not 64 hex digits".into());
    }
    for (byte, pair) in bytes.iter_mut().zip(seed.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).unwrap_or_default();
        *byte = u8::from_str_radix(pair, 16).map_err(|_| "the seed is not 64 hex digits")?;
    }
    let seed = bytes;
    Ok((Reached::Calling { home, from, seed }, key))
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
            let config = Config {
                server_key: Some(one.server_key),
                log_level: Level::Warn,
                temp_dir: std::env::temp_dir(),
                ..Config::default()
            };
            match one.reached {
                Reached::Listening(listen) => {
                    let key = identity::generate().map_err(SimulateError::Key)?;
                    let config = Config {
                        listen: Some(listen),
                        ..config
                    };
                    let listener = tokio::net::TcpListener::bind(listen)
                        .await
                        .map_err(|e| SimulateError::Listen(listen, e))?;
                    let agent = state::Agent::simulated(plan.to_path_buf(), config, key);
                    tokio::spawn(server::serve(agent, server::shared(), listener));
                }
                Reached::Calling { home, from, seed } => {
                    let config = Config {
                        listen: None,
                        call_home: Some(home),
                        ..config
                    };
                    let key = identity::from_seed(&seed);
                    let agent = state::Agent::simulated(plan.to_path_buf(), config, key);
                    tokio::spawn(callhome::keep(agent, server::shared(), Some(from)));
                }
            }
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
        assert!(
            matches!(planned[1].reached, Reached::Listening(a) if a == "127.0.0.2:20002".parse().unwrap())
        );
        let seed = "0f".repeat(32);
        let call = format!("call 127.0.0.1:12445 127.0.3.4 {seed} {key}\n");
        let planned = parse(&call).unwrap();
        let Reached::Calling { home, from, seed } = &planned[0].reached else {
            panic!("{:?}", planned[0]);
        };
        assert_eq!(home.to_string(), "127.0.0.1:12445");
        assert_eq!(*from, "127.0.3.4".parse::<IpAddr>().unwrap());
        assert_eq!(*seed, [0x0f; 32]);
        for bad in [
            format!("call 127.0.0.1:12445 127.0.3.4 {key}"),
            format!("call 127.0.0.1:12445 nowhere {} {key}", "0f".repeat(32)),
            format!("call 127.0.0.1:12445 127.0.3.4 {} {key}", "0g".repeat(32)),
            format!("call 127.0.0.1:12445 127.0.3.4 {} {key}", "0f".repeat(31)),
        ] {
            let wrong = parse(&bad).unwrap_err();
            assert!(matches!(wrong, SimulateError::Plan(1, _)), "{bad}: {wrong}");
        }
        let wrong = parse("127.0.0.1 ssh-ed25519 AAAA\n").unwrap_err();
        assert!(matches!(wrong, SimulateError::Plan(1, _)), "{wrong}");
        let wrong = parse(&format!("a\n127.0.0.1:1 {key}\n127.0.0.1:2 nokey")).unwrap_err();
        assert!(matches!(wrong, SimulateError::Plan(1, _)), "{wrong}");
    }
}
