//! The command line: clap definitions and dispatch, one module per group of commands. What a
//! command prints is [`crate::print`]'s; what it does, the service layer's.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::client::Limits;
use crate::config::{self, Config, ConfigError};
use crate::fleet::{Fleet, FleetError, FleetOptions};
use crate::http::{ConnectionLimits, HttpOptions, Tls};
use crate::ops::{Action, Actor, Missing, Ops, OpsError};
use crate::print::Printer;
use crate::sanitize;
use crate::serve::{self, ServeOptions};

mod api;
pub mod complete;
mod database;
mod docs;
mod enrollment;
mod env;
mod groups;
mod history;
mod hosts;
mod parse;
pub(crate) mod remote;
mod removal;
mod runs;
mod schedules;
mod scripts;
mod secrets;
mod targets;
mod users;
mod webhooks;

pub use docs::agent_command;
pub use parse::parse_duration;
use parse::parse_nonzero_duration;

use enrollment::EnrollmentCommand;
use env::EnvCommand;
use groups::GroupCommand;
use hosts::HostCommand;
use runs::{FetchArgs, PowerArgs, RunArgs, UpdateArgs, UploadArgs};
use schedules::ScheduleCommand;
use scripts::{AttachmentCommand, ScriptCommand};
use secrets::SecretsCommand;
use targets::{ActionArgs, TargetArgs};
use users::{ApiKeyCommand, UserCommand};

/// The exit codes, as `--help` ends (and docs/server.md lists them).
const EXIT_CODES: &str = "\
Exit codes:
    0  success
    1  some hosts failed (their results say why); `check` found something
    2  bad usage: arguments or a request that cannot work as given
    3  no host could be connected to (unreachable, refused, wrong or no agent key), or
       with --server the server
    4  not found: a host, group, script, run, variable or file named does not exist
    5  conflict: a name is taken (or one differing only in case, or an address and port),
       no pending key to approve
    6  the data directory is unusable (cannot be made, or its database opened), or the
       PostgreSQL database (--database) unreachable, refused or not empty for a copy
    7  internal error
    8  not allowed: the API key is unknown, expired or revoked, or lacks the permission
  130  interrupted (Ctrl-C or SIGTERM) during run or upload: the runs were cancelled on the
       hosts, the uploads stopped; a second interrupt exits at once (runs may stay unfinished).
       Also a run cancelled on some hosts from elsewhere (cancel, the API, the web UI), none
       failed";

/// The Otto server: manages a fleet of Otto agents over SSH.
#[derive(Parser)]
// The options every command takes are listed apart, after each command's own.
#[command(
    version,
    about,
    propagate_version = true,
    next_help_heading = "Global options",
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// The configuration file: settings for the options below and serve's, which flags given
    /// here override (default: /etc/otto/server.toml for root, else
    /// ~/.config/otto/server.toml, when it exists).
    #[arg(long, global = true, env = "OTTO_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where the fleet's database and keys live (default: /var/lib/otto-server for root, else
    /// ~/.local/share/otto-server).
    #[arg(long, global = true, env = "OTTO_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Keep the fleet's state in this PostgreSQL database (postgres://USER:PASSWORD@HOST/DB,
    /// or key=value pairs) instead of the data directory's SQLite file, so that several
    /// servers can share it; the data directory still holds the keys.
    #[arg(long, global = true, env = "OTTO_DATABASE_URL", value_name = "URL")]
    database: Option<String>,
    /// Print listings and results as JSON.
    #[arg(long, global = true)]
    json: bool,
    /// Time allowed for connecting to one agent (TCP, SSH handshake, authentication), e.g. 15s
    /// or 1m (plain numbers are seconds).
    #[arg(long, global = true, default_value = "15s", value_name = "DURATION",
          value_parser = parse_nonzero_duration)]
    dial_timeout: Duration,
    /// How many agents may be dialled at once, and hosts worked on at once by one command.
    #[arg(long, global = true, default_value_t = 64, value_name = "N")]
    dial_limit: usize,
    /// Time an agent has for each answer (and, after a run's own timeout, for its result).
    #[arg(long, global = true, default_value = "10s", value_name = "DURATION",
          value_parser = parse_nonzero_duration)]
    answer_timeout: Duration,
    /// Time an upload may make no progress (or take to be confirmed once sent), and a run may
    /// go without any sign of life.
    #[arg(long, global = true, default_value = "35s", value_name = "DURATION",
          value_parser = parse_nonzero_duration)]
    stall_timeout: Duration,
    /// Work through the HTTP API of a running `serve` at this URL (e.g.
    /// https://otto.example:8443) instead of the data directory, so runs use its kept
    /// connections; the API key comes from OTTO_API_KEY or --api-key-file.
    #[arg(long, global = true, env = "OTTO_SERVER", value_name = "URL")]
    server: Option<String>,
    /// The file holding the API key for --server (else the environment's OTTO_API_KEY; never
    /// an argument, which other users could read).
    #[arg(long, global = true, env = "OTTO_API_KEY_FILE", value_name = "FILE")]
    api_key_file: Option<PathBuf>,
    /// The certificate (PEM) to trust for --server, e.g. serve's self-signed http.crt
    /// (default: the system's root certificates).
    #[arg(long, global = true, env = "OTTO_CA_CERT", value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// Log more of the server's own work (-v: info, -vv: debug); RUST_LOG overrides, e.g.
    /// RUST_LOG=debug for the libraries' too.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Hosts: add, list, trust, enable, remove.
    #[command(subcommand)]
    Host(HostCommand),
    /// Groups of hosts, with scripts.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Stored scripts.
    #[command(subcommand)]
    Script(ScriptCommand),
    /// Files uploaded with a script, before or after it runs.
    #[command(subcommand)]
    Attachment(AttachmentCommand),
    /// Environment variables: global, per group, host or script.
    #[command(subcommand)]
    Env(EnvCommand),
    /// Users of the HTTP API, with their permissions.
    #[command(subcommand)]
    User(UserCommand),
    /// API keys: the HTTP API's credentials, each acting for one user.
    #[command(subcommand, name = "apikey")]
    ApiKey(ApiKeyCommand),
    /// Enrollment: tokens and rules for agents that join by themselves, and approving them.
    #[command(subcommand)]
    Enrollment(EnrollmentCommand),
    /// Heartbeat: version and facts of hosts (all when none are named).
    Ping(TargetArgs),
    /// Run a stored script or a command on hosts, with live output (and on a terminal a count
    /// of the hosts done, failed and running).
    ///
    /// The hosts are those --host, --group and --all name; when none are named, a stored script
    /// runs on the enabled members of the groups it is assigned to (`group add-script`).
    ///
    /// A script runs until its timeout (the script's own, or --timeout for a command): without
    /// one, 1h, whatever the agent's configuration says; then its process group is killed.
    ///
    /// Each line is shown as `HOST | line` (`!` for standard error), with control characters
    /// escaped (`\u{1b}` for ESC) and lines longer than 64 KiB shown in pieces; the history
    /// keeps the bytes as they came (`history --run ID --json`).
    ///
    /// Ctrl-C (or SIGTERM) cancels the run on every host, as `cancel` does, records each run
    /// as cancelled, prints the summary and exits 130; a second Ctrl-C exits at once, leaving
    /// runs that had not answered unfinished.
    Run(RunArgs),
    /// Start a launch again (`history --launches` lists them): the same script or command on
    /// the hosts its targets choose now, or with --failed only on its hosts that did not
    /// succeed; followed as `run` follows its run (same output, Ctrl-C and exit codes).
    Relaunch(runs::RelaunchArgs),
    /// Cancel a running run by its id (as `run` and `history` print it).
    Cancel {
        /// The run's id.
        run: i64,
    },
    /// Upload a file to hosts, with a progress bar per host on a terminal.
    ///
    /// Ctrl-C (or SIGTERM) stops the uploads (an agent keeps no file cut short) and exits 130.
    Upload(UploadArgs),
    /// Fetch a file from hosts: each host's copy in a folder of its own (DIR/HOST/NAME),
    /// checked against its checksum and written atomically (mode at most 644).
    ///
    /// A host whose file is missing, too long or unreadable fails alone; the others keep their
    /// copies. In process only (not with --server).
    Fetch(FetchArgs),
    /// Make agents reload their configuration.
    Reload(ActionArgs),
    /// Give hosts new keys (server and agent).
    RotateKeys(ActionArgs),
    /// Make agents exit (their service manager restarts them).
    ExitAgent(ActionArgs),
    /// Reboot hosts (unless one is named plainly, only with --yes or confirmed on the
    /// terminal).
    Reboot(PowerArgs),
    /// Shut hosts down (unless one is named plainly, only with --yes or confirmed on the
    /// terminal).
    Shutdown(PowerArgs),
    /// Past runs, or one run with its output.
    History {
        /// Only this host.
        #[arg(long)]
        host: Option<String>,
        /// Only runs of this stored script.
        #[arg(long, value_name = "NAME", conflicts_with = "command")]
        script: Option<String>,
        /// Only runs of this ad-hoc command (exactly as it was given).
        #[arg(long, value_name = "TEXT")]
        command: Option<String>,
        /// Only runs this user started (through the API, or here as that login).
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        /// Only runs that ended so.
        #[arg(long, value_enum)]
        outcome: Option<crate::model::RunOutcome>,
        /// Only runs started at or after this time: RFC 3339 (2026-12-01T08:00:00Z), or a
        /// while ago (90m, 2d).
        #[arg(long, value_name = "TIME", value_parser = parse::time_or_ago)]
        since: Option<i64>,
        /// Only runs started before this time (as for --since).
        #[arg(long, value_name = "TIME", value_parser = parse::time_or_ago)]
        until: Option<i64>,
        /// Show this run in full, with its output (the filters then say nothing).
        #[arg(long)]
        run: Option<i64>,
        /// Only the hosts' runs of this launch.
        #[arg(long, value_name = "ID", conflicts_with = "launches")]
        launch: Option<u64>,
        /// List launches (a job started on many hosts, with how their runs stand) instead of
        /// runs; the filters but --host apply to them.
        #[arg(long, conflicts_with_all = ["host", "run"])]
        launches: bool,
        /// How many of the newest.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// The event log.
    Events {
        /// Only this host.
        #[arg(long)]
        host: Option<String>,
        /// Only events of this kind.
        #[arg(long, value_enum)]
        kind: Option<crate::model::EventKind>,
        /// How many of the newest.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// List what the database holds that breaks today's rules, changing nothing: names of
    /// hosts, groups, scripts, users and variables that an older version took, names of a kind
    /// that differ only in letter case, hosts' addresses and ports, two hosts at one address
    /// and port. Exit 1 if there is any. Such a host, group, script, user or variable can still
    /// be removed (`host remove`, `group remove`, …).
    Check,
    /// The servers sharing the fleet: every `serve` on one PostgreSQL database (--database),
    /// with its lease (live, or ended within the hour) and how many hosts it owns; through
    /// --server, `(this)` marks the one that answered. On SQLite there is one server.
    Servers,
    /// The daemon: heartbeats, key rotation and the schedules' runs, until SIGTERM.
    Serve(ServeArgs),
    /// The fleet's database: copy an SQLite data directory into PostgreSQL.
    #[command(subcommand)]
    Database(database::DatabaseCommand),
    /// Shell completions (bash, zsh, fish, elvish, powershell), to standard output: they ask
    /// otto-server (on the PATH) as you type, which also completes host, group, script and
    /// schedule names from the data directory, PostgreSQL or --server, as the line says.
    ///
    /// For example `otto-server completions bash > /etc/bash_completion.d/otto-server`, or
    /// `otto-server completions fish > ~/.config/fish/completions/otto-server.fish`.
    Completions(docs::CompletionsArgs),
    /// The man page (roff), to standard output: `otto-server man | man -l -`.
    Man(docs::ManArgs),
    /// Start a real otto-agent on this machine and drive it end to end; then offer the web UI
    /// on it (asked on a terminal).
    Demo {
        /// The otto-agent binary (default: beside this executable).
        #[arg(long)]
        agent_bin: Option<PathBuf>,
        /// End by serving the web UI on the same agent, with a one-time administrator's
        /// password, until Ctrl-C (without --web or --no-web: asked on a terminal).
        #[arg(long, conflicts_with = "no_web")]
        web: bool,
        /// End without the web UI, without asking.
        #[arg(long)]
        no_web: bool,
    },
    /// Schedules: runs that `serve` starts at the times of a cron pattern, in a time zone.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Webhooks: where `serve` tells of the events chosen (a run failed, a host became
    /// unreachable, a key is pending, a schedule was skipped), signed with HMAC-SHA256; each
    /// delivery recorded.
    #[command(subcommand)]
    Webhook(webhooks::WebhookCommand),
    /// Follow the fleet's changes as they happen (as the web UI's live pages do): each entry
    /// of the event log about hosts, their keys, runs and schedules, as a line (its time, kind
    /// and host; with --json, a JSON object per line), until Ctrl-C. Users, sessions and API
    /// keys are left out; `events` has each entry's detail.
    Changes {
        /// Those after this entry of the event log (its id, as `events --json` gives it);
        /// without it, from now on.
        #[arg(long, value_name = "ID")]
        after: Option<i64>,
    },
    /// The fleet over time (each hour's enabled and reachable hosts, runs by outcome), or one
    /// host's heartbeats (round trip, load, free flash): by the hour for the last 8 days, by
    /// the day before; kept while `serve` runs.
    Metrics {
        /// One host's heartbeats instead of the fleet.
        #[arg(long)]
        host: Option<String>,
        /// The last this many days (1 to 400).
        #[arg(long, default_value_t = 1)]
        days: u32,
    },
    /// The key that seals the secret variables and the hosts' server keys in the database
    /// (secrets.key in the data directory, which every server sharing a database must have):
    /// make a new one, rotate to it, seal again what an older one sealed. Local only.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Update the agents of hosts to the server's binaries, with a progress bar per host.
    ///
    /// Each host gets the binary of its CPU and byte order (from its last heartbeat's facts;
    /// a host never heard from is skipped: ping it first), unless its agent already has that
    /// version (--force sends it anyway). Its agent checks it, keeps the old one and restarts
    /// into the new one on trial; the update is confirmed once the host answers a heartbeat
    /// with the new version. A new agent not heard from within --confirm-within is replaced
    /// by the old one on the device itself (rolled back: a failure). Needs the permission
    /// `hosts` and the run level `read-write`. Ctrl-C (or SIGTERM) stops the updates and
    /// exits 130.
    UpdateAgents(UpdateArgs),
}

impl Command {
    /// The hosts it acts on, if it takes the target flags (`--host`, `--where`, …).
    fn targets(&self) -> Option<&TargetArgs> {
        match self {
            Command::Ping(t) => Some(t),
            Command::Run(a) => Some(&a.targets),
            Command::Upload(a) => Some(&a.targets),
            Command::UpdateAgents(a) => Some(&a.targets),
            Command::Reload(a) | Command::RotateKeys(a) | Command::ExitAgent(a) => Some(&a.targets),
            Command::Reboot(p) | Command::Shutdown(p) => Some(&p.action.targets),
            _ => None,
        }
    }
}

#[derive(Args)]
struct ServeArgs {
    /// Time between heartbeats to every host (e.g. 30s, 5m, 1h; plain numbers are seconds).
    #[arg(long, default_value = "5m", value_name = "DURATION", value_parser = parse_nonzero_duration)]
    heartbeat_interval: Duration,
    /// Rotate each host's keys this often (e.g. 7d, 12h; 0 turns rotation off).
    #[arg(long, default_value = "7d", value_name = "DURATION", value_parser = parse_duration)]
    rotate_every: Duration,
    /// Serve the HTTP API on this address and port (e.g. 0.0.0.0:8443), over HTTPS unless
    /// --http-plain; its users and keys are made with `user` and `apikey`.
    #[arg(long, value_name = "ADDR:PORT")]
    http_listen: Option<std::net::SocketAddr>,
    /// The HTTPS certificate, PEM, any intermediates after it (default: a self-signed one,
    /// made on first start as http.crt and http.key in the data directory).
    #[arg(long, value_name = "FILE", requires_all = ["tls_key", "http_listen"])]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key, PEM.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Plain HTTP instead of HTTPS: API keys then cross the network readable, so only behind
    /// something that secures the connection (a reverse proxy on this machine).
    #[arg(long, requires = "http_listen", conflicts_with = "tls_cert")]
    http_plain: bool,
    /// Most connections to the HTTP API at once; past it, a new one takes the place of a
    /// stalled one (in its handshake, or idle).
    #[arg(long, default_value_t = ConnectionLimits::default().connections, value_name = "N",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    http_connections: usize,
    /// Most connections to the HTTP API at once from one address (an IPv6 /64); behind a
    /// reverse proxy every connection is the proxy's: raise it to --http-connections.
    #[arg(long, default_value_t = ConnectionLimits::default().per_source, value_name = "N",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    http_connections_per_source: usize,
    /// Listen for agents that call home (`call_home` in their configuration) on this address
    /// and port (e.g. 0.0.0.0:12445); off unless given.
    #[arg(long, value_name = "ADDR:PORT")]
    call_home_listen: Option<std::net::SocketAddr>,
    /// With several servers on one database: the address (HOST:PORT) where the others reach
    /// this one's HTTPS listener, to use the agents that called home here (default: the
    /// --http-listen address, or this machine's name and its port when that is 0.0.0.0/[::]).
    #[arg(long, value_name = "HOST:PORT", requires = "http_listen")]
    relay_address: Option<String>,
    /// The folder of agent binaries `update-agents` sends (`otto-agent-TARGET`, as
    /// ci/build-agents.sh writes them to dist/); default: those built into the server, else
    /// dist/.
    #[arg(long, value_name = "DIR")]
    agents: Option<PathBuf>,
}

impl ServeArgs {
    /// Where and how to serve the HTTP API, if at all.
    fn http(&self) -> Result<Option<HttpOptions>, CliError> {
        let Some(listen) = self.http_listen else {
            if self.http_plain || self.tls_cert.is_some() || self.tls_key.is_some() {
                return Err(CliError::Usage(
                    "--http-plain, --tls-cert and --tls-key need --http-listen".into(),
                ));
            }
            return Ok(None);
        };
        let tls = match (self.http_plain, &self.tls_cert, &self.tls_key) {
            (true, None, None) => Tls::Plain,
            (false, None, None) => Tls::SelfSigned,
            (false, Some(cert), Some(key)) => Tls::Given {
                cert: cert.clone(),
                key: key.clone(),
            },
            (true, _, _) => {
                return Err(CliError::Usage(
                    "plain HTTP (--http-plain) takes no certificate".into(),
                ));
            }
            _ => {
                return Err(CliError::Usage("give both --tls-cert and --tls-key".into()));
            }
        };
        let limits = ConnectionLimits {
            connections: self.http_connections,
            per_source: self.http_connections_per_source,
            ..ConnectionLimits::default()
        };
        Ok(Some(HttpOptions {
            listen,
            tls,
            limits,
            relay_address: self.relay_address.clone(),
        }))
    }
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// An operation (boxed: it is the largest error, and every command returns this one), in
    /// the command line's words.
    #[error("{}", in_cli_words(.0))]
    Ops(Box<OpsError>),
    /// The data directory (its database, its keys) cannot be used.
    #[error(transparent)]
    DataDir(FleetError),
    /// The demo.
    #[error(transparent)]
    Demo(#[from] crate::demo::DemoError),
    /// The daemon.
    #[error(transparent)]
    Serve(#[from] serve::ServeError),
    /// A local file.
    #[error("{0}: {1}")]
    File(PathBuf, std::io::Error),
    /// Arguments that do not make sense together.
    #[error("{0}")]
    Usage(String),
    /// Some hosts failed, were cancelled, or were skipped once too many had failed (already
    /// reported).
    #[error("{}", hosts_failed(*failed, *cancelled, *skipped, *total))]
    HostsFailed {
        /// Hosts that failed.
        failed: usize,
        /// Hosts whose run a cancel stopped (`cancel`, the API, the web UI).
        cancelled: usize,
        /// Hosts not started.
        skipped: usize,
        /// All the hosts.
        total: usize,
    },
    /// No host could be connected to (each one's failure already reported).
    #[error("none of the {0} hosts could be connected to")]
    Unreached(usize),
    /// Working through a running `serve` (`--server`).
    #[error(transparent)]
    Remote(remote::RemoteError),
    /// `check` found names, addresses or ports that break the rules (already listed).
    #[error("{0} things in the database break the rules (listed above)")]
    Broken(usize),
    /// Interrupted (Ctrl-C): the work on the hosts cancelled, as said.
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// Copying a fleet into PostgreSQL failed (nothing was written).
    #[error(transparent)]
    Copy(#[from] crate::store::copy::CopyError),
}

/// `N of M hosts failed, K cancelled, J skipped` (those there are), or, when none failed,
/// `K of M hosts cancelled…`.
fn hosts_failed(failed: usize, cancelled: usize, skipped: usize, total: usize) -> String {
    let and = |n: usize, what: &str| match n {
        0 => String::new(),
        n => format!(", {n} {what}"),
    };
    match (failed, cancelled) {
        (0, 1..) => format!(
            "{cancelled} of {total} hosts cancelled{}",
            and(skipped, "skipped")
        ),
        _ => format!(
            "{failed} of {total} hosts failed{}{}",
            and(cancelled, "cancelled"),
            and(skipped, "skipped")
        ),
    }
}

impl CliError {
    /// The process exit code: the table of [`EXIT_CODES`].
    fn exit_code(&self) -> u8 {
        match self {
            // Cancelled, and none failed: as an interrupt.
            CliError::HostsFailed {
                failed: 0,
                cancelled: 1..,
                ..
            } => 130,
            CliError::HostsFailed { .. } | CliError::Broken(_) => 1,
            CliError::Usage(_) => 2,
            CliError::Unreached(_) => 3,
            CliError::DataDir(_) | CliError::Copy(_) => 6,
            CliError::Ops(e) => e.kind().exit_code(),
            CliError::Remote(e) => e.exit_code(),
            CliError::File(_, e) if e.kind() == std::io::ErrorKind::NotFound => 4,
            CliError::Demo(_) | CliError::Serve(_) | CliError::File(..) => 7,
            CliError::Interrupted(_) => 130,
        }
    }
}

/// An operation's error as the command line says it: what a command must name, by its flags.
fn in_cli_words(e: &OpsError) -> String {
    match e {
        OpsError::Missing(missing) => by_flags(missing),
        OpsError::Fleet(fleet) => match fleet.untrusted() {
            Some(untrusted) => format!("{e} ({})", crate::print::remedy(&untrusted)),
            None => e.to_string(),
        },
        e => e.to_string(),
    }
}

/// What a command left out, asked for by the flags that give it.
fn by_flags(missing: &Missing) -> String {
    match missing {
        Missing::NoHosts { script: None } => {
            "name the hosts: --host HOST, --group GROUP or --all".into()
        }
        Missing::NoHosts {
            script: Some(script),
        } => format!(
            "name the hosts: --host HOST, --group GROUP or --all \
             (script {script} is assigned to no group)"
        ),
        Missing::NoKeyUser => "name the user the key is for (--user)".into(),
    }
}

impl From<OpsError> for CliError {
    fn from(e: OpsError) -> CliError {
        CliError::Ops(Box::new(e))
    }
}

impl From<remote::RemoteError> for CliError {
    /// A refusal the server gives as data is the operation's own error, as locally.
    fn from(e: remote::RemoteError) -> CliError {
        match e {
            remote::RemoteError::ForceNeeded(needed) => OpsError::ForceNeeded(needed).into(),
            e => CliError::Remote(e),
        }
    }
}

/// Whether this process runs as root.
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The data directory when none is given: /var/lib/otto-server for root, else under
/// `$XDG_DATA_HOME` or `~/.local/share`.
fn default_data_dir() -> PathBuf {
    if is_root() {
        return PathBuf::from("/var/lib/otto-server");
    }
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("otto-server")
}

impl Cli {
    /// Parses the command line, then takes what it left to the defaults from the configuration
    /// file, if there is one: a flag (or its environment variable) wins over the file, the file
    /// over the default. Bad arguments end the process as clap does (usage, exit 2); a file
    /// that cannot be used is the error.
    pub fn parse_with_config() -> Result<Cli, ConfigError> {
        let matches = Cli::command_unset_if_empty().get_matches();
        let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        cli.configure(&matches)?;
        Ok(cli)
    }

    /// The command line's definition, where an environment variable set to nothing counts as
    /// unset (`OTTO_SERVER= otto-server …` works on the data directory), as in a shell.
    fn command_unset_if_empty() -> clap::Command {
        let mut command = Cli::command();
        let empty: Vec<clap::Id> = command
            .get_arguments()
            .filter(|arg| {
                arg.get_env()
                    .is_some_and(|name| std::env::var_os(name).is_some_and(|v| v.is_empty()))
            })
            .map(|arg| arg.get_id().clone())
            .collect();
        for id in empty {
            command = command.mut_arg(id, |arg| arg.env(None));
        }
        command
    }

    /// Applies the configuration file to what `matches` left to defaults.
    fn configure(&mut self, matches: &ArgMatches) -> Result<(), ConfigError> {
        let path = match &self.config {
            Some(path) => path.clone(),
            None => match config::default_path(is_root()) {
                Some(path) if path.exists() => path,
                _ => return Ok(()),
            },
        };
        let file = config::load(&path)?;
        // The file in force, which serve shows with its options.
        self.config = Some(path.clone());
        let defaulted = |m: &ArgMatches, id: &str| {
            !matches!(
                m.value_source(id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        };
        let duration = |key: &'static str, value: &config::Duration, zero_ok: bool| {
            let parse = if zero_ok {
                parse_duration
            } else {
                parse_nonzero_duration
            };
            parse(&value.as_arg()).map_err(|e| ConfigError::Value(path.clone(), key, e))
        };
        let Config {
            data_dir,
            database,
            dial_timeout,
            dial_limit,
            answer_timeout,
            stall_timeout,
            server,
            api_key_file,
            ca_cert,
            serve,
        } = file;
        if let Some(url) = server.filter(|_| defaulted(matches, "server")) {
            self.server = Some(url);
        }
        if let Some(file) = api_key_file.filter(|_| defaulted(matches, "api_key_file")) {
            self.api_key_file = Some(file);
        }
        if let Some(file) = ca_cert.filter(|_| defaulted(matches, "ca_cert")) {
            self.ca_cert = Some(file);
        }
        if let Some(dir) = data_dir.filter(|_| defaulted(matches, "data_dir")) {
            self.data_dir = Some(dir);
        }
        if let Some(url) = database.filter(|_| defaulted(matches, "database")) {
            self.database = Some(url);
        }
        if let Some(v) = dial_timeout.filter(|_| defaulted(matches, "dial_timeout")) {
            self.dial_timeout = duration("dial_timeout", &v, false)?;
        }
        if let Some(n) = dial_limit.filter(|_| defaulted(matches, "dial_limit")) {
            self.dial_limit = n;
        }
        if let Some(v) = answer_timeout.filter(|_| defaulted(matches, "answer_timeout")) {
            self.answer_timeout = duration("answer_timeout", &v, false)?;
        }
        if let Some(v) = stall_timeout.filter(|_| defaulted(matches, "stall_timeout")) {
            self.stall_timeout = duration("stall_timeout", &v, false)?;
        }
        if let (Command::Serve(args), Some(m)) =
            (&mut self.command, matches.subcommand_matches("serve"))
        {
            if let Some(v) = serve
                .heartbeat_interval
                .filter(|_| defaulted(m, "heartbeat_interval"))
            {
                args.heartbeat_interval = duration("serve.heartbeat_interval", &v, false)?;
            }
            if let Some(v) = serve.rotate_every.filter(|_| defaulted(m, "rotate_every")) {
                args.rotate_every = duration("serve.rotate_every", &v, true)?;
            }
            if let Some(listen) = serve.http_listen.filter(|_| defaulted(m, "http_listen")) {
                args.http_listen = Some(listen);
            }
            if let Some(listen) = serve
                .call_home_listen
                .filter(|_| defaulted(m, "call_home_listen"))
            {
                args.call_home_listen = Some(listen);
            }
            if let Some(address) = serve
                .relay_address
                .filter(|_| defaulted(m, "relay_address"))
            {
                args.relay_address = Some(address);
            }
            if let Some(plain) = serve.http_plain.filter(|_| defaulted(m, "http_plain")) {
                args.http_plain = plain;
            }
            if let Some(cert) = serve.tls_cert.filter(|_| defaulted(m, "tls_cert")) {
                args.tls_cert = Some(cert);
            }
            if let Some(key) = serve.tls_key.filter(|_| defaulted(m, "tls_key")) {
                args.tls_key = Some(key);
            }
            let count = |key: &'static str, n: usize| match n {
                0 => Err(ConfigError::Value(
                    path.clone(),
                    key,
                    "must be at least 1".into(),
                )),
                n => Ok(n),
            };
            if let Some(n) = serve
                .http_connections
                .filter(|_| defaulted(m, "http_connections"))
            {
                args.http_connections = count("serve.http_connections", n)?;
            }
            if let Some(n) = serve
                .http_connections_per_source
                .filter(|_| defaulted(m, "http_connections_per_source"))
            {
                args.http_connections_per_source = count("serve.http_connections_per_source", n)?;
            }
        }
        Ok(())
    }

    /// Whether this is the daemon (which must outlive its log reader), not a one-shot command.
    pub fn is_daemon(&self) -> bool {
        matches!(self.command, Command::Serve(_))
    }

    /// How much to log by default (without `RUST_LOG`): `-v` and `-vv` (and `serve`) raise the
    /// server's own level only; the libraries (russh's every packet) stay at warnings.
    pub fn log_filter(&self) -> &'static str {
        match (self.verbose, &self.command) {
            (0, Command::Serve(_)) | (1, _) => "otto_server=info,warn",
            (0, _) => "warn",
            _ => "otto_server=debug,warn",
        }
    }

    /// Whether the command stops cleanly on an interrupt (see [`Cli::run`]): `run` and `upload`.
    pub fn is_interruptible(&self) -> bool {
        matches!(
            self.command,
            Command::Run(_) | Command::Relaunch(_) | Command::Upload(_) | Command::UpdateAgents(_)
        )
    }

    /// Runs the command; `shutdown` completing stops the daemon (`serve`), cancels what `run`
    /// and `upload` are doing on the hosts (they then exit 130), and is ignored by every other
    /// command.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> ExitCode {
        let json = self.json;
        match self.execute(shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                // The hosts' failures are in the results printed; JSON says it all.
                let reported = matches!(e, CliError::HostsFailed { .. } | CliError::Unreached(_));
                if !(json && reported) {
                    eprintln!("otto-server: {}", sanitize::text(&e.to_string()));
                }
                ExitCode::from(e.exit_code())
            }
        }
    }

    async fn execute(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), CliError> {
        // What needs no data directory.
        match &self.command {
            Command::Completions(args) => return docs::completions(args),
            Command::Man(args) => return docs::man(args),
            _ => {}
        }
        if let Command::Demo {
            agent_bin,
            web,
            no_web,
        } = &self.command
        {
            let web = match (web, no_web) {
                (true, _) => crate::demo::Web::Offer,
                (_, true) => crate::demo::Web::Skip,
                _ => crate::demo::Web::Ask,
            };
            let agent_bin = agent_bin.clone().unwrap_or_else(|| {
                std::env::current_exe()
                    .ok()
                    .and_then(|exe| exe.parent().map(|dir| dir.join("otto-agent")))
                    .unwrap_or_else(|| PathBuf::from("otto-agent"))
            });
            return Ok(crate::demo::run(&agent_bin, web).await?);
        }
        if let Some(url) = &self.server {
            let remote = remote::Remote::new(
                url,
                self.api_key_file.as_deref(),
                self.ca_cert.as_deref(),
                self.dial_timeout,
            )?;
            if let Command::Serve(_) = self.command {
                return Err(remote::local_only(
                    "`serve`",
                    "it is the server, over its own data directory",
                ));
            }
            if let Command::Database(_) = self.command {
                return Err(remote::local_only(
                    "`database`",
                    "it works on the databases themselves",
                ));
            }
            if let Command::Secrets(_) = self.command {
                return Err(remote::local_only(
                    "`secrets`",
                    "the key files are in each server's own data directory",
                ));
            }
            let out = Printer::stdout(self.json);
            return dispatch(&remote, &out, self.command, shutdown).await;
        }
        if let Command::Database(command) = self.command {
            let out = Printer::stdout(self.json);
            return database::execute(command, self.database.as_deref(), &out).await;
        }
        let data_dir = self.data_dir.clone().unwrap_or_else(default_data_dir);
        if let Command::Secrets(c) = self.command {
            let out = Printer::stdout(self.json);
            if !secrets::needs_store(&c) {
                return secrets::execute(&data_dir, None, &out, c).await;
            }
            let fleet =
                Fleet::open_with(&data_dir, self.database.as_deref(), FleetOptions::default())
                    .await
                    .map_err(CliError::DataDir)?;
            return secrets::execute(&data_dir, Some(fleet.store()), &out, c).await;
        }
        let fleet = Arc::new(
            Fleet::open_with(
                &data_dir,
                self.database.as_deref(),
                FleetOptions {
                    dial_timeout: self.dial_timeout,
                    dial_limit: self.dial_limit,
                    limits: Limits {
                        answer: self.answer_timeout,
                        stall: self.stall_timeout,
                        grace: self.answer_timeout,
                        silence: self.stall_timeout,
                    },
                },
            )
            .await
            .map_err(CliError::DataDir)?,
        );
        let out = Printer::stdout(self.json);
        let ops = Ops::new(fleet.clone(), Actor::local_user());
        if let Command::Serve(ServeArgs {
            agents: Some(dir), ..
        }) = &self.command
        {
            ops.use_agents(dir.clone());
        }
        let result = match self.command {
            Command::Serve(args) => Ok(serve::serve(
                fleet,
                ServeOptions {
                    heartbeat_interval: args.heartbeat_interval,
                    rotate_every: (!args.rotate_every.is_zero()).then_some(args.rotate_every),
                    http: args.http()?,
                    config_file: self.config.clone(),
                    call_home: args.call_home_listen,
                },
                shutdown,
            )
            .await?),
            command => dispatch(&ops, &out, command, shutdown).await,
        };
        match result {
            Err(CliError::HostsFailed { failed, total, .. })
                if failed == total && ops.unreached().await >= total =>
            {
                Err(CliError::Unreached(total))
            }
            result => result,
        }
    }
}

/// Runs `command` over `api`, in process ([`Ops`]) or through `serve` ([`remote::Remote`]):
/// each command is written once. `shutdown` cancels what `run` and `upload` are doing; `serve`,
/// `demo`, `completions` and `man` are the caller's.
async fn dispatch(
    api: &impl api::Api,
    out: &Printer,
    command: Command,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), CliError> {
    if let Some(targets) = command.targets()
        && !targets.selectors.is_empty()
    {
        let selection = api.selection(&targets.targets()).await?;
        if let Some(note) = selection.note() {
            out.note(&note);
        }
    }
    match command {
        Command::Host(c) => hosts::execute(api, out, c).await,
        Command::Group(c) => groups::execute(api, out, c).await,
        Command::Script(c) => scripts::script(api, out, c).await,
        Command::Attachment(c) => scripts::attachment(api, out, c).await,
        Command::Env(c) => env::execute(api, out, c).await,
        Command::User(c) => users::user(api, out, c).await,
        Command::ApiKey(c) => users::api_key(api, out, c).await,
        Command::Enrollment(c) => enrollment::execute(api, out, c).await,
        Command::Ping(t) => runs::ping(api, out, t).await,
        Command::Run(args) => runs::run(api, out, args, shutdown).await,
        Command::Relaunch(args) => runs::relaunch(api, out, args, shutdown).await,
        Command::Cancel { run } => runs::cancel(api, out, run).await,
        Command::Check => check(api, out).await,
        Command::Servers => servers(api, out).await,
        Command::Upload(args) => runs::upload(api, out, args, shutdown).await,
        Command::Fetch(args) => runs::fetch(api, out, args).await,
        Command::Reload(a) => runs::act(api, out, a, Action::Reload).await,
        Command::ExitAgent(a) => runs::act(api, out, a, Action::Exit).await,
        Command::RotateKeys(a) => runs::act(api, out, a, Action::RotateKey).await,
        Command::Reboot(a) => runs::power(api, out, a, Action::Reboot).await,
        Command::Shutdown(a) => runs::power(api, out, a, Action::Shutdown).await,
        Command::History {
            host,
            script,
            command,
            user,
            outcome,
            since,
            until,
            run,
            launch,
            launches,
            limit,
        } => {
            let what = script.or(command.map(|c| format!("command: {c}")));
            if launches {
                let filter = crate::model::LaunchFilter {
                    what,
                    user,
                    outcome,
                    since,
                    until,
                    before: None,
                    limit,
                };
                return history::launches(api, out, filter).await;
            }
            let filter = crate::model::RunFilter {
                host,
                what,
                user,
                outcome,
                since,
                until,
                before: None,
                launch,
                limit,
            };
            history::runs(api, out, filter, run).await
        }
        Command::Events { host, kind, limit } => history::events(api, out, host, kind, limit).await,
        Command::Schedule(c) => schedules::execute(api, out, c).await,
        Command::Webhook(c) => webhooks::execute(api, out, c).await,
        Command::Metrics { host, days } => metrics(api, out, host, days).await,
        Command::Changes { after } => {
            api.follow_changes(after, &mut |change| out.change(change))
                .await
        }
        Command::UpdateAgents(args) => runs::update_agents(api, out, args, shutdown).await,
        Command::Serve(_)
        | Command::Database(_)
        | Command::Demo { .. }
        | Command::Completions(_)
        | Command::Man(_)
        | Command::Secrets(_) => Ok(()),
    }
}

/// `metrics`, in process or through `serve`: the fleet or a host over time.
async fn metrics(
    api: &impl api::MetricsApi,
    out: &Printer,
    host: Option<String>,
    days: u32,
) -> Result<(), CliError> {
    match host {
        Some(name) => out.host_metrics(&api.host_metrics(&name, days).await?),
        None => out.fleet_metrics(&api.fleet_metrics(days).await?),
    }
    Ok(())
}

/// `servers`, in process or through `serve`: the servers sharing the store.
async fn servers(api: &impl api::ServersApi, out: &Printer) -> Result<(), CliError> {
    out.servers(&api.servers().await?);
    Ok(())
}

/// `check`, in process or through `serve`: prints what it found; `Broken` if anything.
async fn check(api: &impl api::CheckApi, out: &Printer) -> Result<(), CliError> {
    let findings = api.check_names().await?;
    out.findings(&findings);
    match findings.len() {
        0 => Ok(()),
        n => Err(CliError::Broken(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `otto-server ARGS…` parsed.
    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("otto-server").chain(args.iter().copied()))
    }

    /// `otto-server ARGS…` parsed, with `config` as its configuration file applied.
    fn configured(config: &str, args: &[&str]) -> Result<Cli, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        std::fs::write(&path, config).unwrap();
        let argv = ["otto-server", "--config", path.to_str().unwrap()];
        let matches = Cli::command()
            .try_get_matches_from(argv.iter().chain(args.iter()))
            .unwrap();
        let mut cli = Cli::from_arg_matches(&matches).unwrap();
        cli.configure(&matches).map(|()| cli)
    }

    #[test]
    fn the_configuration_file_fills_in_what_no_flag_gives() {
        let file = "data_dir = \"/srv/otto\"\ndial_timeout = \"1m\"\ndial_limit = 3\n\
                    answer_timeout = 20\nstall_timeout = \"2m\"\n\
                    server = \"https://otto:8443\"\napi_key_file = \"/k\"\nca_cert = \"/ca.pem\"\n\
                    [serve]\nheartbeat_interval = \"30s\"\nrotate_every = \"0\"\n\
                    http_listen = \"127.0.0.1:8443\"\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"\n\
                    http_connections = 100\nhttp_connections_per_source = 10\n";
        let cli = configured(file, &["serve"]).unwrap();
        assert_eq!(cli.data_dir, Some(PathBuf::from("/srv/otto")));
        assert_eq!(cli.dial_timeout, Duration::from_secs(60));
        assert_eq!(cli.dial_limit, 3);
        assert_eq!(cli.answer_timeout, Duration::from_secs(20));
        assert_eq!(cli.stall_timeout, Duration::from_secs(120));
        assert_eq!(cli.server.as_deref(), Some("https://otto:8443"));
        assert_eq!(cli.api_key_file, Some(PathBuf::from("/k")));
        assert_eq!(cli.ca_cert, Some(PathBuf::from("/ca.pem")));
        let Command::Serve(serve) = &cli.command else {
            panic!("not serve")
        };
        assert_eq!(serve.heartbeat_interval, Duration::from_secs(30));
        assert_eq!(serve.rotate_every, Duration::ZERO);
        let Some(HttpOptions {
            listen,
            tls,
            limits,
            ..
        }) = serve.http().unwrap()
        else {
            panic!("no HTTP")
        };
        assert_eq!(listen.to_string(), "127.0.0.1:8443");
        assert_eq!((limits.connections, limits.per_source), (100, 10));
        assert!(matches!(tls, Tls::Given { cert, .. } if cert == std::path::Path::new("/c.pem")));
        // Flags win, each on its own.
        let cli = configured(
            file,
            &[
                "--dial-limit",
                "9",
                "--stall-timeout",
                "5s",
                "serve",
                "--rotate-every",
                "1d",
            ],
        )
        .unwrap();
        assert_eq!(
            (cli.dial_limit, cli.dial_timeout),
            (9, Duration::from_secs(60))
        );
        assert_eq!(cli.stall_timeout, Duration::from_secs(5));
        let Command::Serve(serve) = &cli.command else {
            panic!("not serve")
        };
        assert_eq!(serve.rotate_every, Duration::from_secs(86_400));
        assert_eq!(serve.heartbeat_interval, Duration::from_secs(30));
        // Zero where it means nothing is refused, as the flags refuse it.
        let e = configured("dial_timeout = 0\n", &["ping"]).err().unwrap();
        assert!(e.to_string().contains("dial_timeout: "), "{e}");
        let e = configured("[serve]\nhttp_connections_per_source = 0\n", &["serve"])
            .err()
            .unwrap();
        assert!(e.to_string().contains("per_source: must be"), "{e}");
    }

    #[test]
    fn the_duration_flags_default_to_the_fleets_defaults() {
        let cli = parse(&["ping"]).unwrap();
        let (fleet, limits) = (FleetOptions::default(), Limits::default());
        assert_eq!(cli.dial_timeout, fleet.dial_timeout);
        assert_eq!(cli.answer_timeout, limits.answer);
        assert_eq!(cli.stall_timeout, limits.stall);
    }

    #[test]
    fn durations_are_human_and_zero_only_where_it_means_none() {
        let cli = parse(&["--answer-timeout", "1m30s", "serve", "--rotate-every", "0"]).unwrap();
        assert_eq!(cli.answer_timeout, Duration::from_secs(90));
        let Command::Serve(serve) = cli.command else {
            panic!("not serve")
        };
        assert!(serve.rotate_every.is_zero());
        assert!(parse(&["run", "-c", "true", "--all", "--timeout", "0"]).is_ok());
        for args in [
            &["serve", "--heartbeat-interval", "0"][..],
            &["--dial-timeout", "0", "ping"],
            &["--answer-timeout", "0s", "ping"],
            &["--stall-timeout", "0m", "ping"],
        ] {
            let err = parse(args).err().unwrap();
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{args:?}"
            );
            assert!(err.to_string().contains("must be more than zero"), "{err}");
        }
    }
}
