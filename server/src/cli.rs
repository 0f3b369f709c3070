//! The command line: arguments (clap) and what each subcommand does and prints. Listings print
//! as aligned tables, or as JSON with `--json`; a run prints each host's output live.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use otto_proto::Control;

use crate::actions::{self, Job, Targets, Upload};
use crate::client::Limits;
use crate::deploy;
use crate::fleet::{Fleet, FleetError, FleetOptions};
use crate::keys;
use crate::model::{AfterRun, Ids, NewHost, Phase, Scope, Script};
use crate::names::HostName;
use crate::print::Printer;
use crate::sanitize;
use crate::serve::{self, ServeOptions};
use crate::store::StoreError;

/// The Otto server: manages a fleet of Otto agents over SSH.
#[derive(Parser)]
#[command(version, about, propagate_version = true)]
pub struct Cli {
    /// Where the fleet's database and keys live.
    #[arg(long, global = true, env = "OTTO_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Print listings and results as JSON.
    #[arg(long, global = true)]
    json: bool,
    /// Seconds allowed for connecting to one agent (TCP, SSH handshake, authentication).
    #[arg(long, global = true, default_value_t = 15, value_name = "SECS")]
    dial_timeout: u64,
    /// How many agents may be dialled at once.
    #[arg(long, global = true, default_value_t = 64, value_name = "N")]
    dial_limit: usize,
    /// Seconds an agent has for each answer (and, after a run's own timeout, for its result).
    #[arg(long, global = true, default_value_t = Limits::default().answer.as_secs(), value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..))]
    answer_timeout: u64,
    /// Seconds an upload may make no progress (or take to be confirmed once sent), and a run
    /// may go without any sign of life.
    #[arg(long, global = true, default_value_t = Limits::default().stall.as_secs(), value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..))]
    stall_timeout: u64,
    /// Log more (-v: info, -vv: debug); RUST_LOG overrides.
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
    /// Heartbeat: version and facts of hosts (all when none are named).
    Ping(TargetArgs),
    /// Run a stored script or a command on hosts, with live output.
    ///
    /// Each line is shown as `HOST | line` (`!` for standard error), with control characters
    /// escaped (`\u{1b}` for ESC) and lines longer than 64 KiB shown in pieces; the history
    /// keeps the bytes as they came (`history --run ID --json`).
    Run(RunArgs),
    /// Cancel a running run by its id (as `run` and `history` print it).
    Cancel {
        /// The run's id.
        run: i64,
    },
    /// Upload a file to hosts, with a progress bar.
    Upload(UploadArgs),
    /// Make agents reload their configuration.
    Reload(TargetArgs),
    /// Give hosts new keys (server and agent).
    RotateKeys(TargetArgs),
    /// Make agents exit (their service manager restarts them).
    ExitAgent(TargetArgs),
    /// Reboot hosts.
    Reboot(TargetArgs),
    /// Shut hosts down.
    Shutdown(TargetArgs),
    /// Past runs, or one run with its output.
    History {
        /// Only this host.
        #[arg(long)]
        host: Option<String>,
        /// Show this run in full, with its output.
        #[arg(long)]
        run: Option<i64>,
        /// How many of the newest.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// The event log.
    Events {
        /// Only this host.
        #[arg(long)]
        host: Option<String>,
        /// How many of the newest.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// The daemon: heartbeats and key rotation on schedule, until SIGTERM.
    Serve(ServeArgs),
    /// Start a real otto-agent on this machine and drive it end to end.
    Demo {
        /// The otto-agent binary (default: beside this executable).
        #[arg(long)]
        agent_bin: Option<PathBuf>,
    },
}

/// Which hosts.
#[derive(Args, Clone, Default)]
struct TargetArgs {
    /// A host (repeatable).
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    hosts: Vec<HostName>,
    /// The members of a group (repeatable).
    #[arg(short, long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// Every enabled host.
    #[arg(short, long)]
    all: bool,
}

impl TargetArgs {
    fn targets(&self) -> Targets {
        Targets {
            all: self.all,
            hosts: self.hosts.iter().map(HostName::to_string).collect(),
            groups: self.groups.clone(),
        }
    }
}

#[derive(Args)]
struct RunArgs {
    /// The stored script to run.
    #[arg(required_unless_present = "command", conflicts_with = "command")]
    script: Option<String>,
    /// An ad-hoc shell command instead of a stored script.
    #[arg(short, long)]
    command: Option<String>,
    /// Timeout in seconds for the ad-hoc command (0: none; default: the agent's).
    #[arg(long)]
    timeout: Option<u32>,
    /// Bytes of each stream's output kept in the history per run.
    #[arg(long, default_value_t = 1 << 20)]
    output_cap: usize,
    #[command(flatten)]
    targets: TargetArgs,
}

/// A local file and how it is to be written on the hosts.
#[derive(Args)]
struct FileArgs {
    /// The local file.
    file: PathBuf,
    /// Absolute path on the hosts.
    #[arg(long, value_parser = parse_absolute)]
    path: String,
    /// Owner on the hosts, UID:GID (default: the agent's user).
    #[arg(long, value_parser = parse_ids)]
    owner: Option<Ids>,
    /// Mode, octal.
    #[arg(long, default_value = "644", value_parser = parse_mode)]
    mode: u32,
}

#[derive(Args)]
struct UploadArgs {
    #[command(flatten)]
    file: FileArgs,
    #[command(flatten)]
    targets: TargetArgs,
}

#[derive(Args)]
struct ServeArgs {
    /// Time between heartbeats to every host (e.g. 30s, 5m, 1h).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    heartbeat_interval: Duration,
    /// Rotate each host's keys this often (e.g. 7d; 0 turns rotation off).
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    rotate_every: Duration,
}

#[derive(Subcommand)]
enum HostCommand {
    /// Add a host; prints the server key to give its agent (`otto-agent trust …`).
    Add {
        /// A unique name: 1 to 63 letters, digits, `.`, `_` and `-`, not starting with `.` or `-`.
        name: HostName,
        /// Address or DNS name.
        address: String,
        /// The agent's SSH port.
        #[arg(long, default_value_t = 12444)]
        port: u16,
        /// The agent's key, from `otto-agent pubkey`.
        #[arg(long, conflicts_with = "pin_on_first_contact")]
        agent_key: Option<String>,
        /// Trust whatever key the agent presents the first time (only on a network you trust).
        #[arg(long)]
        pin_on_first_contact: bool,
        /// Put it in these groups (repeatable; created if missing).
        #[arg(short, long = "group")]
        groups: Vec<String>,
    },
    /// Install the agent on a device over its own SSH server (dropbear or OpenSSH) and add
    /// it: CPU detected, static binary copied, configuration written, service installed and
    /// started, keys exchanged.
    Deploy(DeployArgs),
    /// List hosts.
    List,
    /// One host in full.
    Show {
        /// The host.
        name: HostName,
    },
    /// Remove a host and its server key (its history stays). A host whose name breaks the rule
    /// (from an older database) is removed from the database only.
    Remove {
        /// The host.
        name: String,
    },
    /// Change where a host is reached.
    Set {
        /// The host.
        name: HostName,
        /// New address or DNS name.
        #[arg(long)]
        address: Option<String>,
        /// New agent port.
        #[arg(long)]
        port: Option<u16>,
    },
    /// Include a host in actions again.
    Enable {
        /// The host.
        name: HostName,
    },
    /// Leave a host out of every action.
    Disable {
        /// The host.
        name: HostName,
    },
    /// Pin an agent key given by hand.
    Trust {
        /// The host.
        name: HostName,
        /// The agent's key, `ssh-ed25519 AAAA…`.
        key: String,
    },
    /// Pin the pending key the agent presented (after checking it).
    Approve {
        /// The host.
        name: HostName,
    },
    /// Print the server key to give this host's agent.
    Key {
        /// The host.
        name: HostName,
    },
}

#[derive(Args)]
struct DeployArgs {
    /// The host's name in the fleet.
    name: HostName,
    /// `[user@]device`, as for ssh.
    destination: String,
    /// The device's SSH port.
    #[arg(long, default_value_t = 22)]
    ssh_port: u16,
    /// An ssh option (`-o`), e.g. `StrictHostKeyChecking=accept-new` (repeatable).
    #[arg(short = 'o', long = "ssh-option", value_name = "OPTION")]
    ssh_options: Vec<String>,
    /// The ssh identity file (`-i`).
    #[arg(short, long)]
    identity: Option<PathBuf>,
    /// The address the server dials (default: the device part of DESTINATION).
    #[arg(long)]
    address: Option<String>,
    /// The agent's port on the device.
    #[arg(long, default_value_t = 12444)]
    agent_port: u16,
    /// The directory of static agents, `otto-agent-<target>` (from `ci/build-agents.sh`).
    #[arg(long)]
    dist: Option<PathBuf>,
    /// The service manager on the device.
    #[arg(long, value_enum, default_value = "auto")]
    service: deploy::Service,
    /// Install under this directory of the device instead of `/`.
    #[arg(long, default_value = "")]
    prefix: String,
    /// Put the host in these groups (repeatable; created if missing).
    #[arg(short, long = "group")]
    groups: Vec<String>,
}

#[derive(Subcommand)]
enum GroupCommand {
    /// Add a group.
    Add {
        /// Its name.
        name: String,
    },
    /// Remove a group (its hosts stay).
    Remove {
        /// The group.
        name: String,
    },
    /// List groups with their hosts and scripts.
    List,
    /// Put hosts in a group.
    AddHost {
        /// The group.
        group: String,
        /// Hosts.
        #[arg(required = true)]
        hosts: Vec<HostName>,
    },
    /// Take hosts out of a group.
    RemoveHost {
        /// The group.
        group: String,
        /// Hosts.
        #[arg(required = true)]
        hosts: Vec<HostName>,
    },
    /// Assign a script to a group.
    AddScript {
        /// The group.
        group: String,
        /// The script.
        script: String,
    },
    /// Take a script from a group.
    RemoveScript {
        /// The group.
        group: String,
        /// The script.
        script: String,
    },
}

#[derive(Subcommand)]
enum ScriptCommand {
    /// Add (or with --replace, change) a script.
    Add {
        /// A unique name.
        name: String,
        /// Read the script from this file (`-`: standard input).
        #[arg(long, required_unless_present = "body", conflicts_with = "body")]
        file: Option<PathBuf>,
        /// The script text itself.
        #[arg(long)]
        body: Option<String>,
        /// The program that runs it.
        #[arg(long, default_value = "/bin/sh")]
        interpreter: String,
        /// Run as UID:GID (the agent must be root).
        #[arg(long, value_parser = parse_ids)]
        run_as: Option<Ids>,
        /// Working directory on the host.
        #[arg(long)]
        workdir: Option<String>,
        /// Timeout in seconds (0: none; default: the agent's).
        #[arg(long)]
        timeout: Option<u32>,
        /// What to do after a successful run.
        #[arg(long, value_enum, default_value = "none")]
        after: AfterRun,
        /// Replace a script of the same name.
        #[arg(long)]
        replace: bool,
    },
    /// List scripts.
    List,
    /// One script with its text.
    Show {
        /// The script.
        name: String,
    },
    /// Remove a script and its attachments.
    Remove {
        /// The script.
        name: String,
    },
}

#[derive(Subcommand)]
enum AttachmentCommand {
    /// Attach a local file to a script (replaces one with the same path).
    Add {
        /// The script.
        script: String,
        #[command(flatten)]
        file: FileArgs,
        /// Upload it before or after the script.
        #[arg(long, value_enum, default_value = "before")]
        phase: Phase,
    },
    /// List attachments.
    List {
        /// Only this script's.
        script: Option<String>,
    },
    /// Remove an attachment.
    Remove {
        /// The script.
        script: String,
        /// Its path on the hosts.
        path: String,
    },
}

/// Where a variable applies (global when none is given).
#[derive(Args, Clone, Default)]
struct ScopeArgs {
    /// For members of this group.
    #[arg(long, conflicts_with_all = ["host", "script"])]
    group: Option<String>,
    /// For this host.
    #[arg(long, conflicts_with = "script")]
    host: Option<HostName>,
    /// For this script.
    #[arg(long)]
    script: Option<String>,
}

impl ScopeArgs {
    fn scope(&self) -> Option<Scope> {
        match (&self.group, &self.host, &self.script) {
            (Some(g), _, _) => Some(Scope::Group(g.clone())),
            (_, Some(h), _) => Some(Scope::Host(h.to_string())),
            (_, _, Some(s)) => Some(Scope::Script(s.clone())),
            _ => None,
        }
    }
}

#[derive(Subcommand)]
enum EnvCommand {
    /// Set a variable; without VALUE it is read from standard input (keeps secrets out of
    /// shell history and `ps`).
    Set {
        /// Its name.
        name: String,
        /// Its value.
        value: Option<String>,
        /// Never print its value.
        #[arg(long)]
        secret: bool,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Remove a variable.
    Unset {
        /// Its name.
        name: String,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// List variables (secret values masked).
    List {
        #[command(flatten)]
        scope: ScopeArgs,
        /// Every scope (the default when no scope is given).
        #[arg(long)]
        all: bool,
    },
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The fleet.
    #[error(transparent)]
    Fleet(#[from] FleetError),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A key.
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    /// The demo.
    #[error(transparent)]
    Demo(#[from] crate::demo::DemoError),
    /// The daemon.
    #[error(transparent)]
    Serve(#[from] serve::ServeError),
    /// A deployment.
    #[error(transparent)]
    Deploy(#[from] deploy::DeployError),
    /// A local file.
    #[error("{0}: {1}")]
    File(PathBuf, std::io::Error),
    /// Arguments that do not make sense together.
    #[error("{0}")]
    Usage(String),
    /// Some hosts failed (already reported).
    #[error("{0} of {1} hosts failed")]
    HostsFailed(usize, usize),
}

fn parse_ids(text: &str) -> Result<Ids, String> {
    let (uid, gid) = text.split_once(':').ok_or("expected UID:GID, e.g. 0:0")?;
    Ok(Ids {
        uid: uid.parse().map_err(|e| format!("uid {uid}: {e}"))?,
        gid: gid.parse().map_err(|e| format!("gid {gid}: {e}"))?,
    })
}

fn parse_absolute(text: &str) -> Result<String, String> {
    if text.starts_with('/') {
        Ok(text.to_string())
    } else {
        Err(format!("{text}: the path on the hosts must be absolute"))
    }
}

fn parse_mode(text: &str) -> Result<u32, String> {
    let mode = u32::from_str_radix(text.trim_start_matches("0o"), 8)
        .map_err(|e| format!("mode {text}: {e} (octal, e.g. 644)"))?;
    if mode > 0o7777 {
        return Err(format!("mode {text} is more than 7777"));
    }
    Ok(mode)
}

/// `30s`, `5m`, `2h`, `7d`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, ""), |i| text.split_at(i));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}`: expected a number and a unit, e.g. 30s, 5m, 2h, 7d"))?;
    let unit = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => return Err(format!("`{text}`: unknown unit `{other}` (s, m, h or d)")),
    };
    Ok(Duration::from_secs(n.saturating_mul(unit)))
}

/// The data directory when none is given: /var/lib/otto-server for root, else under
/// `$XDG_DATA_HOME` or `~/.local/share`.
fn default_data_dir() -> PathBuf {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/lib/otto-server");
    }
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("otto-server")
}

impl Cli {
    /// Whether this is the daemon (which must outlive its log reader), not a one-shot command.
    pub fn is_daemon(&self) -> bool {
        matches!(self.command, Command::Serve(_))
    }

    /// How much to log by default.
    pub fn log_filter(&self) -> &'static str {
        match (self.verbose, &self.command) {
            (0, Command::Serve(_)) => "info",
            (0, _) => "warn",
            (1, _) => "info",
            _ => "debug",
        }
    }

    /// Runs the command; `shutdown` completing stops the daemon (`serve`), and is ignored by
    /// every other command.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> ExitCode {
        let json = self.json;
        match self.execute(shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(CliError::HostsFailed(failed, of)) => {
                if !json {
                    eprintln!("otto-server: {failed} of {of} hosts failed");
                }
                ExitCode::from(1)
            }
            Err(e) => {
                eprintln!("otto-server: {}", sanitize::text(&e.to_string()));
                ExitCode::from(match e {
                    CliError::Usage(_) => 2,
                    _ => 1,
                })
            }
        }
    }

    async fn execute(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), CliError> {
        if let Command::Demo { agent_bin } = &self.command {
            let agent_bin = agent_bin.clone().unwrap_or_else(|| {
                std::env::current_exe()
                    .ok()
                    .and_then(|exe| exe.parent().map(|dir| dir.join("otto-agent")))
                    .unwrap_or_else(|| PathBuf::from("otto-agent"))
            });
            return Ok(crate::demo::run(&agent_bin).await?);
        }
        let data_dir = self.data_dir.clone().unwrap_or_else(default_data_dir);
        let fleet = Arc::new(Fleet::open(
            &data_dir,
            FleetOptions {
                dial_timeout: Duration::from_secs(self.dial_timeout),
                dial_limit: self.dial_limit,
                limits: Limits {
                    answer: Duration::from_secs(self.answer_timeout),
                    stall: Duration::from_secs(self.stall_timeout),
                    grace: Duration::from_secs(self.answer_timeout),
                    silence: Duration::from_secs(self.stall_timeout),
                },
            },
        )?);
        let out = Printer::stdout(self.json);
        match self.command {
            Command::Host(c) => host(&fleet, &out, c).await,
            Command::Group(c) => group(&fleet, &out, c).await,
            Command::Script(c) => script(&fleet, &out, c).await,
            Command::Attachment(c) => attachment(&fleet, &out, c).await,
            Command::Env(c) => env(&fleet, &out, c).await,
            Command::Ping(t) => {
                let targets = if t.targets().is_empty() {
                    Targets {
                        all: true,
                        ..Targets::default()
                    }
                } else {
                    t.targets()
                };
                let results = actions::ping(&fleet, targets.resolve(&fleet).await?).await;
                out.ping(&results);
                failures(results.iter().map(|p| p.reachable))
            }
            Command::Run(args) => run(&fleet, &out, args).await,
            Command::Cancel { run } => {
                let result = actions::cancel(&fleet, run).await?;
                let ok = result.success;
                out.done(&[result]);
                failures([ok].into_iter())
            }
            Command::Upload(args) => upload(&fleet, &out, args).await,
            Command::Reload(t) => control(&fleet, &out, t, Control::Reload).await,
            Command::ExitAgent(t) => control(&fleet, &out, t, Control::Exit).await,
            Command::Reboot(t) => control(&fleet, &out, t, Control::Reboot).await,
            Command::Shutdown(t) => control(&fleet, &out, t, Control::Shutdown).await,
            Command::RotateKeys(t) => {
                let hosts = resolve(&fleet, &t).await?;
                let results = actions::rotate(&fleet, hosts).await;
                out.done(&results);
                failures(results.iter().map(|d| d.success))
            }
            Command::History { host, run, limit } => {
                let store = fleet.store();
                match run {
                    Some(id) => out.run_detail(&store.run(id).await?),
                    None => out.history(&store.runs(host.as_deref(), limit).await?),
                }
                Ok(())
            }
            Command::Events { host, limit } => {
                out.events(&fleet.store().events(host.as_deref(), limit).await?);
                Ok(())
            }
            Command::Serve(args) => Ok(serve::serve(
                fleet,
                ServeOptions {
                    heartbeat_interval: args.heartbeat_interval,
                    rotate_every: (!args.rotate_every.is_zero()).then_some(args.rotate_every),
                },
                shutdown,
            )
            .await?),
            Command::Demo { .. } => Ok(()),
        }
    }
}

async fn resolve(fleet: &Fleet, t: &TargetArgs) -> Result<Vec<crate::model::Host>, CliError> {
    let targets = t.targets();
    if targets.is_empty() {
        return Err(CliError::Usage(
            "name the hosts: --host HOST, --group GROUP or --all".into(),
        ));
    }
    let hosts = targets.resolve(fleet).await?;
    if hosts.is_empty() {
        return Err(CliError::Usage("no enabled host matches".into()));
    }
    Ok(hosts)
}

fn failures(results: impl Iterator<Item = bool>) -> Result<(), CliError> {
    let (mut failed, mut total) = (0, 0);
    for ok in results {
        total += 1;
        failed += usize::from(!ok);
    }
    if failed > 0 {
        Err(CliError::HostsFailed(failed, total))
    } else {
        Ok(())
    }
}

fn read_file(path: &PathBuf) -> Result<Vec<u8>, CliError> {
    let io = |e| CliError::File(path.clone(), e);
    if path.as_os_str() == "-" {
        let mut data = Vec::new();
        std::io::stdin().read_to_end(&mut data).map_err(io)?;
        return Ok(data);
    }
    std::fs::read(path).map_err(io)
}

async fn deploy(fleet: &Arc<Fleet>, out: &Printer, args: DeployArgs) -> Result<(), CliError> {
    let mut ssh_args: Vec<String> = args
        .ssh_options
        .iter()
        .flat_map(|o| ["-o".to_string(), o.clone()])
        .collect();
    if let Some(identity) = &args.identity {
        ssh_args.extend(["-i".to_string(), identity.display().to_string()]);
    }
    let options = deploy::DeployOptions {
        name: args.name.to_string(),
        destination: args.destination,
        ssh_port: args.ssh_port,
        address: args.address,
        agent_port: args.agent_port,
        dist: args.dist.unwrap_or_else(deploy::default_dist),
        service: args.service,
        prefix: args.prefix,
        ssh: "ssh".into(),
        ssh_args,
    };
    let deployed = deploy::deploy(fleet, &options).await?;
    {
        let store = fleet.store();
        for g in &args.groups {
            if let Err(StoreError::Exists(..)) | Ok(()) = store.add_group(g).await {
                store.set_membership(g, &args.name, true).await?;
            }
        }
    }
    let hosts = Targets {
        hosts: vec![args.name.to_string()],
        ..Targets::default()
    }
    .resolve(fleet)
    .await?;
    let ping = actions::ping(fleet, hosts).await;
    let reachable = ping.iter().all(|p| p.reachable);
    out.deployed(&deployed, &ping);
    failures([reachable].into_iter())
}

async fn host(fleet: &Arc<Fleet>, out: &Printer, command: HostCommand) -> Result<(), CliError> {
    match command {
        HostCommand::Deploy(args) => return deploy(fleet, out, args).await,
        HostCommand::Add {
            name,
            address,
            port,
            agent_key,
            pin_on_first_contact,
            groups,
        } => {
            let agent_key = agent_key
                .map(|k| keys::parse_public(&k).map(|k| keys::to_openssh(&k)))
                .transpose()?;
            let store = fleet.store();
            if store.host(&name).await.is_ok() {
                return Err(StoreError::Exists("host", name.to_string()).into());
            }
            let server_key = fleet.create_host_key(&name)?;
            let added = store.add_host(&NewHost {
                name: name.to_string(),
                address,
                port,
                agent_key,
                pin_on_first_contact,
            }).await;
            if let Err(e) = added {
                fleet.remove_host_key(&name);
                return Err(e.into());
            }
            for g in &groups {
                if let Err(StoreError::Exists(..)) | Ok(()) = store.add_group(g).await {
                    store.set_membership(g, &name, true).await?;
                }
            }
            let server_key = keys::to_openssh(&server_key);
            out.host_added(name.as_str(), &server_key);
        }
        HostCommand::List => out.hosts(&fleet.store().hosts().await?),
        HostCommand::Show { name } => {
            let host = fleet.store().host(&name).await?;
            let key = fleet.host_key(&name)?;
            out.host_detail(&host, &keys::to_openssh(key.public_key()));
        }
        HostCommand::Remove { name } => match HostName::parse(&name) {
            Ok(name) => {
                fleet.store().remove_host(&name).await?;
                fleet.remove_host_key(&name);
                out.say(&format!("removed {name}"));
            }
            // Only a row of an older database can have such a name: it goes, no file is touched.
            Err(bad) => match fleet.store().remove_host(&name).await {
                Ok(()) => out.say(&format!(
                    "removed {} from the database; its name breaks the rule, so no key file was touched",
                    sanitize::field(&name, 80)
                )),
                Err(StoreError::NotFound(..)) => return Err(CliError::Usage(bad.to_string())),
                Err(e) => return Err(e.into()),
            },
        },
        HostCommand::Set {
            name,
            address,
            port,
        } => {
            fleet.store().set_address(&name, address.as_deref(), port).await?;
            let host = fleet.store().host(&name).await?;
            out.say(&format!("{name} is at {}:{}", host.address, host.port));
        }
        HostCommand::Enable { name } => {
            fleet.store().set_enabled(&name, true).await?;
            out.say(&format!("{name} enabled"));
        }
        HostCommand::Disable { name } => {
            fleet.store().set_enabled(&name, false).await?;
            out.say(&format!("{name} disabled"));
        }
        HostCommand::Trust { name, key } => {
            let key = keys::parse_public(&key)?;
            fleet.store().pin_agent_key(
                &name,
                &keys::to_openssh(&key),
                &format!("agent key {} set by hand", keys::fingerprint(&key)),
            ).await?;
            out.say(&format!(
                "{name}: agent key {} pinned",
                keys::fingerprint(&key)
            ));
        }
        HostCommand::Approve { name } => {
            let store = fleet.store();
            let host = store.host(&name).await?;
            let pending = host
                .trust
                .pending_key
                .ok_or_else(|| CliError::Usage(format!("{name} has no pending key")))?;
            let key = keys::parse_public(&pending)?;
            store.pin_agent_key(
                &name,
                &pending,
                &format!("pending agent key {} approved", keys::fingerprint(&key)),
            ).await?;
            out.say(&format!(
                "{name}: agent key {} pinned",
                keys::fingerprint(&key)
            ));
        }
        HostCommand::Key { name } => {
            fleet.store().host(&name).await?;
            let key = keys::to_openssh(fleet.host_key(&name)?.public_key());
            out.server_key(name.as_str(), &key);
        }
    }
    Ok(())
}

/// Host names as a list for people.
fn names(hosts: &[HostName]) -> String {
    hosts
        .iter()
        .map(HostName::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

async fn group(fleet: &Fleet, out: &Printer, command: GroupCommand) -> Result<(), CliError> {
    let store = fleet.store();
    match command {
        GroupCommand::Add { name } => {
            store.add_group(&name).await?;
            out.say(&format!("group {name} added"));
        }
        GroupCommand::Remove { name } => {
            store.remove_group(&name).await?;
            out.say(&format!("group {name} removed"));
        }
        GroupCommand::List => out.groups(&store.groups().await?),
        GroupCommand::AddHost { group, hosts } => {
            for host in &hosts {
                store.set_membership(&group, host, true).await?;
            }
            out.say(&format!("{} added to {group}", names(&hosts)));
        }
        GroupCommand::RemoveHost { group, hosts } => {
            for host in &hosts {
                store.set_membership(&group, host, false).await?;
            }
            out.say(&format!("{} taken out of {group}", names(&hosts)));
        }
        GroupCommand::AddScript { group, script } => {
            store.set_group_script(&group, &script, true).await?;
            out.say(&format!("{script} assigned to {group}"));
        }
        GroupCommand::RemoveScript { group, script } => {
            store.set_group_script(&group, &script, false).await?;
            out.say(&format!("{script} taken from {group}"));
        }
    }
    Ok(())
}

async fn script(fleet: &Fleet, out: &Printer, command: ScriptCommand) -> Result<(), CliError> {
    match command {
        ScriptCommand::Add {
            name,
            file,
            body,
            interpreter,
            run_as,
            workdir,
            timeout,
            after,
            replace,
        } => {
            let body = match (file, body) {
                (Some(file), _) => read_file(&file)?,
                (None, Some(body)) => body.into_bytes(),
                (None, None) => return Err(CliError::Usage("give --file or --body".into())),
            };
            fleet
                .store()
                .put_script(
                    &Script {
                        name: name.clone(),
                        interpreter,
                        body,
                        run_as,
                        working_dir: workdir,
                        timeout_secs: timeout,
                        after_run: after,
                    },
                    replace,
                )
                .await?;
            out.say(&format!("script {name} saved"));
        }
        ScriptCommand::List => out.scripts(&fleet.store().scripts().await?),
        ScriptCommand::Show { name } => {
            let store = fleet.store();
            let script = store.script(&name).await?;
            let attachments = store.attachments(Some(&name)).await?;
            out.script_detail(&script, &attachments);
        }
        ScriptCommand::Remove { name } => {
            fleet.store().remove_script(&name).await?;
            out.say(&format!("script {name} removed"));
        }
    }
    Ok(())
}

async fn attachment(
    fleet: &Fleet,
    out: &Printer,
    command: AttachmentCommand,
) -> Result<(), CliError> {
    match command {
        AttachmentCommand::Add {
            script,
            file:
                FileArgs {
                    file,
                    path,
                    owner,
                    mode,
                },
            phase,
        } => {
            let content = read_file(&file)?;
            let a = actions::attachment(&script, &path, content, owner, mode, phase);
            fleet.store().put_attachment(&a).await?;
            out.say(
                &format!(
                    "{} ({} bytes, sha256 {}) attached to {script} as {path}, {:?} the script",
                    file.display(),
                    a.size,
                    &a.sha256[..16],
                    phase
                )
                .to_lowercase(),
            );
        }
        AttachmentCommand::List { script } => {
            out.attachments(&fleet.store().attachments(script.as_deref()).await?)
        }
        AttachmentCommand::Remove { script, path } => {
            fleet.store().remove_attachment(&script, &path).await?;
            out.say(&format!("attachment {path} removed from {script}"));
        }
    }
    Ok(())
}

async fn env(fleet: &Fleet, out: &Printer, command: EnvCommand) -> Result<(), CliError> {
    match command {
        EnvCommand::Set {
            name,
            value,
            secret,
            scope,
        } => {
            if name.is_empty() || name.contains(['=', '\0']) {
                return Err(CliError::Usage(format!("`{name}` is not a variable name")));
            }
            let value = match value {
                Some(v) => v,
                None => {
                    let mut v = String::new();
                    std::io::stdin()
                        .read_to_string(&mut v)
                        .map_err(|e| CliError::File("<stdin>".into(), e))?;
                    v.trim_end_matches(['\n', '\r']).to_string()
                }
            };
            let scope = scope.scope().unwrap_or(Scope::Global);
            fleet.store().set_env(&scope, &name, &value, secret).await?;
            out.say(&format!(
                "{name} set ({scope}{})",
                if secret { ", secret" } else { "" }
            ));
        }
        EnvCommand::Unset { name, scope } => {
            let scope = scope.scope().unwrap_or(Scope::Global);
            fleet.store().unset_env(&scope, &name).await?;
            out.say(&format!("{name} removed ({scope})"));
        }
        EnvCommand::List { scope, all } => {
            let scope = if all { None } else { scope.scope() };
            out.env(&fleet.store().env(scope.as_ref()).await?);
        }
    }
    Ok(())
}

async fn run(fleet: &Arc<Fleet>, out: &Printer, args: RunArgs) -> Result<(), CliError> {
    let hosts = resolve(fleet, &args.targets).await?;
    let job = match (&args.script, &args.command) {
        (Some(name), _) => Job::stored(fleet, name).await?,
        (None, Some(command)) => Job::command(command, args.timeout),
        (None, None) => return Err(CliError::Usage("give a script or --command".into())),
    };
    let width = hosts.iter().map(|h| h.name.len()).max().unwrap_or(0);
    let results = actions::run(fleet, hosts, job, args.output_cap, out.live_output(width)).await;
    out.run_summary(&results);
    failures(results.iter().map(|r| r.success))
}

async fn upload(fleet: &Arc<Fleet>, out: &Printer, args: UploadArgs) -> Result<(), CliError> {
    let UploadArgs { file, targets } = args;
    let hosts = resolve(fleet, &targets).await?;
    let size = std::fs::metadata(&file.file)
        .map_err(|e| CliError::File(file.file.clone(), e))?
        .len();
    let bar = out.progress(size * hosts.len() as u64);
    let progress = {
        let bar = bar.clone();
        Arc::new(move |n| bar.inc(n))
    };
    let results = actions::upload(
        fleet,
        hosts,
        Upload {
            source: file.file.clone(),
            path: file.path,
            owner: file.owner,
            mode: file.mode,
        },
        progress,
    )
    .await
    .map_err(|e| CliError::File(file.file, e))?;
    bar.finish_and_clear();
    out.done(&results);
    failures(results.iter().map(|d| d.success))
}

async fn control(
    fleet: &Arc<Fleet>,
    out: &Printer,
    targets: TargetArgs,
    request: Control,
) -> Result<(), CliError> {
    let hosts = resolve(fleet, &targets).await?;
    let results = actions::control(fleet, hosts, request).await;
    out.done(&results);
    failures(results.iter().map(|d| d.success))
}
