//! `otto-agent`: the Otto agent, an SSH server that runs what its one trusted server asks.
//!
//! ```text
//! otto-agent [--config FILE] run          serve (the service)
//! otto-agent [--config FILE] pubkey       print the agent's public key (made on first use)
//! otto-agent [--config FILE] trust KEY    trust this server key, replacing any other
//! otto-agent [--config FILE] enroll --server ADDR[:PORT] --fingerprint SHA256:… --token TOKEN
//!                                         join a fleet by itself (enroll.rs)
//! otto-agent --version | --help
//! ```
//!
//! SIGHUP reloads the configuration, as the server's Reload request does.
//!
//! Exit codes (for procd and systemd): 0 stopped by SIGTERM/SIGINT; 1 a runtime failure (e.g.
//! the port is taken); 64 bad usage; 75 the server asked the agent to exit (restart it); 78 the
//! configuration or key is unusable (restarting will not help).

mod admission;
mod callhome;
mod cidr;
mod config;
mod enroll;
mod facts;
mod files;
mod fsutil;
mod identity;
mod link;
mod log;
mod openssh;
mod reload;
mod script;
mod server;
mod session;
#[cfg(feature = "sim")]
mod simulate;
mod state;
mod trust;
mod update;
mod upload;
mod version;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use config::{Config, ParseError, ServerKeyError};
use log::{error, info};

const USAGE: &str = "usage: otto-agent [--config FILE] run | pubkey | trust 'ssh-ed25519 AAAA…' | enroll … | --version
  run      serve the Otto protocol (the service)
  pubkey   print this agent's public key, making the key on first use
  trust    trust this server public key, replacing any other
  enroll   join a server's fleet and trust the key it answers with: --server ADDR[:PORT] --fingerprint SHA256:… --token TOKEN (or --token-file FILE, or OTTO_ENROLL_TOKEN) [--name NAME]
  --config FILE   the configuration file (default /etc/otto/agent.conf)";

const EXIT_RUNTIME: u8 = 1;
const EXIT_USAGE: u8 = 64;
const EXIT_RESTART: u8 = 75;
const EXIT_CONFIG: u8 = 78;

/// A command line, parsed.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Run,
    Pubkey,
    Trust(String),
    Enroll(enroll::Options),
    /// Many agents in one process, as a plan file says (the feature `sim` only).
    #[cfg(feature = "sim")]
    Simulate(PathBuf),
    Version,
    Help,
}

/// A command line that makes no sense.
#[derive(Debug, PartialEq, Eq)]
enum UsageError {
    /// `--config` is the last argument.
    NoConfigFile,
    /// No command follows the options.
    NoCommand,
    /// The arguments (given) are no command.
    Unknown(String),
    /// The options of `enroll` are wrong (how).
    Enroll(String),
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::NoConfigFile => f.write_str("--config needs a file"),
            UsageError::NoCommand => f.write_str("no command given"),
            UsageError::Unknown(command) => write!(f, "unknown command `{command}`"),
            UsageError::Enroll(e) => write!(f, "enroll: {e}"),
        }
    }
}

/// Parses the arguments after the program name.
fn parse_args(args: &[String]) -> Result<(PathBuf, Command), UsageError> {
    let mut config = PathBuf::from(config::DEFAULT_PATH);
    let mut rest = args;
    while let Some((first, tail)) = rest.split_first() {
        match first.as_str() {
            "--config" | "-c" => {
                let (path, tail) = tail.split_first().ok_or(UsageError::NoConfigFile)?;
                config = PathBuf::from(path);
                rest = tail;
            }
            _ => break,
        }
    }
    let command = match rest {
        [c] if c == "run" => Command::Run,
        [c] if c == "pubkey" => Command::Pubkey,
        [c, key] if c == "trust" => Command::Trust(key.clone()),
        [c, options @ ..] if c == "enroll" => {
            let env_token = std::env::var_os(enroll::TOKEN_VAR).is_some();
            Command::Enroll(enroll::parse(options, env_token).map_err(UsageError::Enroll)?)
        }
        #[cfg(feature = "sim")]
        [c, plan] if c == "simulate" => Command::Simulate(PathBuf::from(plan)),
        [c] if c == "--version" || c == "version" => Command::Version,
        [c] if c == "--help" || c == "-h" || c == "help" => Command::Help,
        [] => return Err(UsageError::NoCommand),
        other => return Err(UsageError::Unknown(other.join(" "))),
    };
    Ok((config, command))
}

/// Why a command failed; each kind has its exit code.
#[derive(Debug)]
enum Failure {
    /// The configuration file (given) exists but cannot be read.
    ConfigRead(PathBuf, io::Error),
    /// The configuration file (given) is malformed.
    ConfigParse(PathBuf, ParseError),
    /// The configuration (in the file given) trusts no server key, so no one could log in.
    NoServerKey(PathBuf),
    /// The agent's key cannot be loaded or made.
    Key(identity::KeyError),
    /// The key given to `trust` is unusable.
    ServerKey(ServerKeyError),
    /// The configuration file or its directory (given) cannot be written.
    Write(PathBuf, io::Error),
    /// The runtime cannot be made.
    Start(io::Error),
    /// The listening socket cannot be opened on the address (given).
    Listen(SocketAddr, io::Error),
    /// The configuration (in the file given) neither listens nor calls home.
    Unreachable(PathBuf),
    /// The listening socket failed for good.
    Listener(io::Error),
    /// The signal handlers cannot be installed.
    Signals(io::Error),
    /// The server asked the agent to exit (to be restarted).
    ExitRequested,
    /// Restarting into a new binary (or back into the previous one) failed.
    Restart(io::Error),
    /// The enrollment token cannot be had (why).
    Token(String),
    /// Enrolling got no answer.
    Enroll(enroll::EnrollError),
    /// The server refused the enrollment (its reason).
    Refused(String),
    /// A simulation cannot run (why).
    #[cfg(feature = "sim")]
    Simulate(simulate::SimulateError),
}

impl Failure {
    /// The exit code: whether restarting can help (see the exit codes at the top).
    fn code(&self) -> u8 {
        match self {
            Failure::ConfigRead(..)
            | Failure::ConfigParse(..)
            | Failure::NoServerKey(_)
            | Failure::Unreachable(_) => EXIT_CONFIG,
            Failure::Key(identity::KeyError::Io(..)) => EXIT_RUNTIME,
            Failure::Key(_) => EXIT_CONFIG,
            Failure::ServerKey(_) | Failure::Token(_) => EXIT_USAGE,
            Failure::Enroll(_) | Failure::Refused(_) => EXIT_RUNTIME,
            Failure::Write(..)
            | Failure::Start(_)
            | Failure::Listen(..)
            | Failure::Listener(_)
            | Failure::Signals(_) => EXIT_RUNTIME,
            Failure::ExitRequested | Failure::Restart(_) => EXIT_RESTART,
            #[cfg(feature = "sim")]
            Failure::Simulate(_) => EXIT_RUNTIME,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::ConfigRead(path, e) | Failure::Write(path, e) => {
                write!(f, "{}: {e}", path.display())
            }
            Failure::ConfigParse(path, e) => write!(f, "{}: {e}", path.display()),
            Failure::NoServerKey(path) => write!(
                f,
                "{}: no server key is trusted yet; run: otto-agent trust 'ssh-ed25519 AAAA…'",
                path.display()
            ),
            Failure::Key(e) => e.fmt(f),
            Failure::ServerKey(e) => e.fmt(f),
            Failure::Start(e) => write!(f, "cannot start: {e}"),
            Failure::Listen(listen, e) => write!(f, "cannot listen on {listen}: {e}"),
            Failure::Unreachable(path) => write!(
                f,
                "{}: `listen = none` and no `call_home`: no server could reach the agent",
                path.display()
            ),
            Failure::Listener(e) => write!(f, "listener failed: {e}"),
            Failure::Signals(e) => e.fmt(f),
            Failure::ExitRequested => f.write_str("exiting at the server's request"),
            Failure::Restart(e) => write!(f, "cannot restart into the agent binary: {e}"),
            Failure::Token(e) => write!(f, "the enrollment token: {e}"),
            Failure::Enroll(e) => e.fmt(f),
            Failure::Refused(reason) => write!(f, "the server refused the enrollment: {reason}"),
            #[cfg(feature = "sim")]
            Failure::Simulate(e) => e.fmt(f),
        }
    }
}

/// Reads the configuration; a missing file means the defaults.
fn load_config(path: &Path) -> Result<(Config, String), Failure> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Failure::ConfigRead(path.into(), e)),
    };
    let config = Config::parse(&text).map_err(|e| Failure::ConfigParse(path.into(), e))?;
    Ok((config, text))
}

fn pubkey(config_path: &Path) -> Result<(), Failure> {
    let (config, _) = load_config(config_path)?;
    let key = identity::load_or_create(&config.key_path).map_err(Failure::Key)?;
    println!("{}", identity::openssh_public(key.public_key()));
    Ok(())
}

fn trust(config_path: &Path, key_text: &str) -> Result<(), Failure> {
    let key = config::parse_server_key(key_text).map_err(Failure::ServerKey)?;
    trust_key(config_path, &key)
}

/// Trusts `key` as the server key, replacing any other: the configuration file rewritten
/// atomically, mode 0600 (`trust` and `enroll`).
fn trust_key(config_path: &Path, key: &russh::keys::PublicKey) -> Result<(), Failure> {
    let (_, text) = load_config(config_path)?;
    let text = config::with_setting(&text, "server_key", &identity::openssh_public(key));
    // The administrator's choice replaces any key a rotation kept.
    let text = config::without_setting(&text, "server_key_previous");
    if let Some(dir) = config_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Failure::Write(dir.into(), e))?;
    }
    fsutil::write_atomic(config_path, text.as_bytes(), 0o600)
        .map_err(|e| Failure::Write(config_path.into(), e))?;
    println!(
        "trusting {} (in {})",
        key.fingerprint(Default::default()),
        config_path.display()
    );
    Ok(())
}

/// The agent's one thread of async work (`run` and `enroll`): made in one place, so that its
/// code is in the agent once.
#[inline(never)]
fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Failure::Start)
}

/// `otto-agent enroll`: asks the server to make this agent a host, and trusts the server key
/// it answers with.
fn enroll(config_path: &Path, options: &enroll::Options) -> Result<(), Failure> {
    let (config, _) = load_config(config_path)?;
    let token = match &options.token {
        enroll::Token::Given(token) => token.clone(),
        enroll::Token::File(path) => match std::fs::read_to_string(path) {
            Ok(text) => enroll::token_of_file(&text).to_string(),
            Err(e) => return Err(Failure::Token(format!("{}: {e}", path.display()))),
        },
        enroll::Token::Environment => std::env::var(enroll::TOKEN_VAR)
            .map_err(|e| Failure::Token(format!("{}: {e}", enroll::TOKEN_VAR)))?,
    };
    if token.is_empty() {
        return Err(Failure::Token("it is empty".into()));
    }
    let key = identity::load_or_create(&config.key_path).map_err(Failure::Key)?;
    let facts = facts::gather();
    let request = otto_proto::EnrollRequest {
        token: &token,
        name: options.name.as_deref(),
        // The port the server dials, if the agent listens; whether it calls home instead.
        port: config.listen.map_or(otto_proto::DEFAULT_PORT, |l| l.port()),
        call_home: config.call_home.is_some(),
        facts: facts.as_message(),
    };
    let runtime = runtime()?;
    let agent = state::Agent::new(config_path.to_path_buf(), config, key);
    let answer = runtime
        .block_on(enroll::enroll(options, agent, &request))
        .map_err(Failure::Enroll)?;
    match answer {
        enroll::Answer::Accepted {
            host,
            server_key,
            pending,
        } => {
            let key = identity::public_from_raw(server_key).map_err(|e| {
                Failure::Enroll(enroll::EnrollError::Protocol(format!(
                    "the server key it answered with is refused: {e}"
                )))
            })?;
            trust_key(config_path, &key)?;
            if pending {
                println!("enrolled as {host}, waiting for an administrator's approval");
            } else {
                println!("enrolled as {host}");
            }
            Ok(())
        }
        enroll::Answer::Refused(reason) => Err(Failure::Refused(reason)),
    }
}

fn run(config_path: &Path) -> Result<(), Failure> {
    let (config, _) = load_config(config_path)?;
    log::set_level(config.log_level);
    if config.server_key.is_none() {
        return Err(Failure::NoServerKey(config_path.into()));
    }
    let key = identity::load_or_create(&config.key_path).map_err(Failure::Key)?;
    remove_leftovers(config_path, &config);
    let runtime = runtime()?;
    runtime.block_on(async {
        // Before the agent says it listens, so that no signal sent from then on kills it.
        let signals = Signals::install().map_err(Failure::Signals)?;
        let listener = match config.listen {
            Some(listen) => Some(
                tokio::net::TcpListener::bind(listen)
                    .await
                    .map_err(|e| Failure::Listen(listen, e))?,
            ),
            None => None,
        };
        let listening = match (&listener, &config.call_home) {
            (Some(listener), _) => listener
                .local_addr()
                .map_or_else(|_| "listening".into(), |a| format!("listening on {a}")),
            (None, Some(_)) => "not listening".into(),
            (None, None) => return Err(Failure::Unreachable(config_path.into())),
        };
        let calling = match &config.call_home {
            Some(home) => format!(", calling home to {home}"),
            None => String::new(),
        };
        info!(
            "otto-agent {} {listening}{calling}, agent key {}",
            version::version(),
            key.public_key().fingerprint(Default::default())
        );
        let agent = state::Agent::new(config_path.to_path_buf(), config, key);
        let shared = server::shared();
        let accepting = async {
            match listener {
                Some(listener) => server::serve(agent.clone(), shared.clone(), listener).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = accepting => result.map_err(Failure::Listener),
            () = callhome::keep(agent.clone(), shared.clone(), None) => Ok(()),
            () = agent.exit_requested.notified() => Err(Failure::ExitRequested),
            () = signals.serve(&agent) => {
                info!("stopping");
                Ok(())
            }
        }
    })
}

/// Removes the named temporary files a killed agent left (where the file system had no
/// anonymous files): uploads in progress, scripts, and rewrites of the configuration and key.
fn remove_leftovers(config_path: &Path, config: &Config) {
    let records = upload::records(config_path);
    let mut done = vec![(records.clone(), fsutil::remove_recorded(&records))];
    let mut named = vec![(config.temp_dir.clone(), script::FILE_STEM)];
    for file in [config_path, config.key_path.as_path()] {
        let dir = file.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(name) = file.file_name().and_then(|n| n.to_str()) {
            named.push((dir.unwrap_or(Path::new(".")).to_path_buf(), name));
        }
    }
    for (dir, stem) in named {
        let result = fsutil::remove_stale(&dir, stem);
        done.push((dir, result));
    }
    for (place, result) in done {
        match result {
            Ok(0) => {}
            Ok(n) => info!(
                "removed {n} temporary files a killed agent left in {}",
                place.display()
            ),
            Err(e) => log::warning!("cleaning up {}: {e}", place.display()),
        }
    }
}

/// The signals a daemon answers: SIGTERM and SIGINT stop it, SIGHUP reloads its configuration.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers; the signals' default actions (ending the process) no longer apply.
    fn install() -> io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Reloads `agent`'s configuration on every SIGHUP; completes on SIGTERM or SIGINT.
    async fn serve(mut self, agent: &state::Agent) {
        loop {
            tokio::select! {
                _ = self.term.recv() => return,
                _ = self.int.recv() => return,
                Some(()) = self.hup.recv() => {
                    info!("SIGHUP: reloading the configuration");
                    // Refused or not, it is logged and the agent runs on.
                    let _ = reload::reload(agent);
                }
            }
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (config_path, command) = match parse_args(&args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("otto-agent: {e}\n{USAGE}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let result = match command {
        Command::Run => {
            update::at_start();
            let result = run(&config_path);
            match update::swapped() {
                // The runtime is gone: the trial of the new binary, then an exec.
                Some(exe) => Err(Failure::Restart(update::trial(exe))),
                None => result,
            }
        }
        Command::Pubkey => pubkey(&config_path),
        Command::Trust(key) => trust(&config_path, &key),
        Command::Enroll(options) => enroll(&config_path, &options),
        #[cfg(feature = "sim")]
        Command::Simulate(plan) => {
            runtime().and_then(|rt| simulate::run(&plan, &rt).map_err(Failure::Simulate))
        }
        Command::Version => {
            println!(
                "otto-agent {} (Otto protocol {})",
                version::version(),
                otto_proto::PROTOCOL_VERSION
            );
            Ok(())
        }
        Command::Help => {
            println!("{USAGE}");
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if command_is_service(&args) {
                error!("{failure}");
            } else {
                eprintln!("otto-agent: {failure}");
            }
            ExitCode::from(failure.code())
        }
    }
}

fn command_is_service(args: &[String]) -> bool {
    args.iter().any(|a| a == "run")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_commands_and_the_config_option() {
        assert_eq!(
            parse_args(&args(&["run"])).unwrap(),
            (PathBuf::from(config::DEFAULT_PATH), Command::Run)
        );
        assert_eq!(
            parse_args(&args(&["--config", "/c", "pubkey"])).unwrap(),
            (PathBuf::from("/c"), Command::Pubkey)
        );
        assert_eq!(
            parse_args(&args(&["-c", "x", "trust", "ssh-ed25519 AAAA"]))
                .unwrap()
                .1,
            Command::Trust("ssh-ed25519 AAAA".into())
        );
        assert_eq!(parse_args(&args(&[])), Err(UsageError::NoCommand));
        assert_eq!(
            parse_args(&args(&["--config"])),
            Err(UsageError::NoConfigFile)
        );
        assert!(parse_args(&args(&["trust"])).is_err());
        let enroll = [
            "enroll",
            "--server",
            "s",
            "--fingerprint",
            "SHA256:x",
            "--token",
            "t",
        ];
        assert!(matches!(
            parse_args(&args(&enroll)).unwrap().1,
            Command::Enroll(enroll::Options {
                port: otto_proto::CALL_HOME_PORT,
                ..
            })
        ));
        assert_eq!(
            parse_args(&args(&["enroll", "--server", "s"]))
                .unwrap_err()
                .to_string(),
            "enroll: --fingerprint SHA256:… is needed"
        );
        let unknown = parse_args(&args(&["frobnicate", "now"])).unwrap_err();
        assert_eq!(unknown.to_string(), "unknown command `frobnicate now`");
    }
}
