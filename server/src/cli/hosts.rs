//! `host …`: adding, trusting, enabling, removing and deploying hosts.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::names::HostName;
use crate::ops::{
    AddHost, AgentKey, DeployHost, Format, HostAdded, HostChange, ImportHosts, Removal,
};
use crate::ops::{Selection, Service, Status};
use crate::print::{Printer, trust_line};
use crate::sanitize;

use super::CliError;
use super::api::HostsApi;
use super::removal::confirmed;
use super::targets::failures;

#[derive(Subcommand)]
pub enum HostCommand {
    /// Add a host; prints the server key to give its agent (`otto-agent trust …`).
    Add {
        /// A unique name: 1 to 63 letters, digits, `.`, `_` and `-`, not starting with `.` or `-`.
        name: HostName,
        /// An IP address or a DNS name.
        address: String,
        /// The agent's SSH port (1 to 65535).
        #[arg(long, default_value_t = otto_proto::DEFAULT_PORT)]
        port: u16,
        /// The agent's key, from `otto-agent pubkey`.
        #[arg(long, conflicts_with = "pin_on_first_contact")]
        agent_key: Option<String>,
        /// Trust whatever key the agent presents the first time (only on a network you trust).
        #[arg(long)]
        pin_on_first_contact: bool,
        /// Put it in these groups (repeatable, or a comma list; created if missing).
        #[arg(short, long = "group", value_delimiter = ',')]
        groups: Vec<String>,
        /// Add it even if another host is at the same address and port.
        #[arg(long)]
        force: bool,
        /// Also append its trust line to FILE (made if missing, mode 644): its name and the
        /// `otto-agent trust '…'` command to run on its device.
        #[arg(long, value_name = "FILE")]
        trust_lines: Option<PathBuf>,
    },
    /// Add many hosts at once, with their groups, from an inventory: Ansible's (INI or YAML;
    /// the address is `ansible_host`, the agent's port `otto_port`, default 12444), a CSV with
    /// a header `name,address,port,groups` (groups `;`-separated) or a JSON list of objects with
    /// those fields. Re-importing changes nothing; an import removes nothing; a host at another
    /// address is moved. Any bad line: nothing is imported.
    Import {
        /// The inventory file (`-`: standard input, with `--format`).
        file: PathBuf,
        /// Its format (default: from the file's extension).
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Print the plan and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// New hosts trust whatever key their agent presents first (only on a network you
        /// trust).
        #[arg(long)]
        pin_on_first_contact: bool,
        /// Append each new host's trust line to FILE (made if missing, mode 644) instead of
        /// printing them: its name and the `otto-agent trust '…'` command to run on its device.
        #[arg(long, value_name = "FILE", conflicts_with = "dry_run")]
        trust_lines: Option<PathBuf>,
    },
    /// Install the agent on a device over its own SSH server (dropbear or OpenSSH) and add
    /// it: CPU detected, static binary copied, configuration written, service installed and
    /// started, keys exchanged.
    Deploy(DeployArgs),
    /// List hosts.
    List {
        /// Also what each host reported: its board's model, release, uptime, load and free
        /// flash (`LOW` under 10 % or 1 MiB).
        #[arg(long)]
        wide: bool,
        /// Only the hosts whose last reported facts match FACT OP VALUE (repeatable: all must
        /// match), as for `run --where`; those without facts yet are left out, and said so.
        #[arg(long = "where", value_name = "FACT OP VALUE", value_parser = super::targets::parse_selector)]
        selectors: Vec<String>,
    },
    /// One host in full.
    Show {
        /// The host.
        name: HostName,
    },
    /// Remove hosts with their server keys and their variables (their history stays): the
    /// variables are listed first, and must be confirmed on a terminal or with --force. A host
    /// whose name breaks the rule (from an older database) is removed from the database only.
    Remove {
        /// The hosts (or a comma list), removed in turn; the first that fails stops it.
        #[arg(required = true, value_delimiter = ',')]
        names: Vec<String>,
        /// Remove its variables without asking.
        #[arg(long)]
        force: bool,
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
        /// Move it even if another host is at the same address and port.
        #[arg(long)]
        force: bool,
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
    /// Drop the pending key the agent presented (the host stays as it was: its agent is
    /// refused until a key is pinned).
    Deny {
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
pub struct DeployArgs {
    /// The host's name in the fleet.
    pub name: HostName,
    /// `[user@]device`, as for ssh.
    pub destination: String,
    /// The device's SSH port.
    #[arg(long, default_value_t = 22)]
    pub ssh_port: u16,
    /// An ssh option (`-o`), e.g. `StrictHostKeyChecking=accept-new` (repeatable).
    #[arg(short = 'o', long = "ssh-option", value_name = "OPTION")]
    pub ssh_options: Vec<String>,
    /// The ssh identity file (`-i`).
    #[arg(short, long)]
    pub identity: Option<PathBuf>,
    /// The address the server dials (default: the device part of DESTINATION).
    #[arg(long)]
    pub address: Option<String>,
    /// The agent's port on the device (default 12444; on a re-deploy, the host's).
    #[arg(long)]
    pub agent_port: Option<u16>,
    /// Address ranges the agent accepts connections from, ADDRESS[/PREFIX] (repeatable, or a
    /// comma list): the agent's `allow_from`.
    #[arg(long, value_name = "CIDR")]
    pub allow_from: Vec<String>,
    /// The server the agent calls home to, ADDRESS[:PORT] (port default 12445; the server's
    /// `serve --call-home-listen`): the host is reached over that connection, never dialled.
    #[arg(long, value_name = "ADDRESS[:PORT]")]
    pub call_home: Option<String>,
    /// The agent does not listen (`listen = none`): a device behind NAT; needs --call-home.
    #[arg(long, requires = "call_home")]
    pub no_listen: bool,
    /// The directory of static agents, `otto-agent-<target>` (from `ci/build-agents.sh`);
    /// default: the agents built into this server, else `dist/`.
    #[arg(long = "agents", visible_alias = "dist", value_name = "DIR")]
    pub dist: Option<PathBuf>,
    /// The service manager on the device.
    #[arg(long, value_enum, default_value = "auto")]
    pub service: Service,
    /// Install under this directory of the device instead of `/`.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Put the host in these groups (repeatable, or a comma list; created if missing).
    #[arg(short, long = "group", value_delimiter = ',')]
    pub groups: Vec<String>,
}

async fn deploy(api: &impl HostsApi, out: &Printer, args: DeployArgs) -> Result<(), CliError> {
    let mut ssh_args: Vec<String> = args
        .ssh_options
        .iter()
        .flat_map(|o| ["-o".to_string(), o.clone()])
        .collect();
    if let Some(identity) = &args.identity {
        ssh_args.extend(["-i".to_string(), identity.display().to_string()]);
    }
    let done = api
        .deploy_host(DeployHost {
            name: args.name,
            destination: args.destination,
            ssh_port: args.ssh_port,
            ssh_args,
            address: args.address,
            agent_port: args.agent_port,
            allow_from: args.allow_from,
            call_home: args.call_home,
            no_listen: args.no_listen,
            dist: args.dist,
            service: args.service,
            prefix: args.prefix,
            groups: args.groups,
        })
        .await?;
    let reachable = done.heartbeat.iter().all(|p| p.reachable);
    out.deployed(&done.deployed, &done.heartbeat);
    failures([Status::of(reachable)].into_iter())
}

/// The text of an inventory file (`-`: standard input) and its format, given or from the
/// file's extension.
fn read_inventory(file: &Path, format: Option<Format>) -> Result<(String, Format), CliError> {
    let stdin = file == Path::new("-");
    let format = format.or_else(|| Format::from_path(file)).ok_or_else(|| {
        CliError::Usage(if stdin {
            "an inventory on standard input needs --format ini|yaml|csv|json".into()
        } else {
            format!(
                "cannot tell the format of {} from its name: give --format ini|yaml|csv|json",
                file.display()
            )
        })
    })?;
    let mut text = String::new();
    let read = if stdin {
        std::io::stdin().read_to_string(&mut text)
    } else {
        std::fs::File::open(file).and_then(|mut f| f.read_to_string(&mut text))
    };
    read.map_err(|e| CliError::File(file.to_path_buf(), e))?;
    Ok((text, format))
}

/// Appends the trust lines of the hosts `added` to `file` (made if missing, mode 644: server
/// keys are public, and only its owner may change it), all in one write, so that commands
/// writing to one file at once do not mix their lines.
fn append_trust_lines(file: &Path, added: &[HostAdded]) -> Result<(), CliError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let lines: String = added.iter().map(|a| trust_line(a) + "\n").collect();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(file)
        .and_then(|mut f| f.write_all(lines.as_bytes()))
        .map_err(|e| CliError::File(file.to_path_buf(), e))
}

/// Runs `host …` over `api`.
pub async fn execute(
    api: &impl HostsApi,
    out: &Printer,
    command: HostCommand,
) -> Result<(), CliError> {
    match command {
        HostCommand::Deploy(args) => return deploy(api, out, args).await,
        HostCommand::Add {
            name,
            address,
            port,
            agent_key,
            pin_on_first_contact,
            groups,
            force,
            trust_lines,
        } => {
            let added = api
                .add_host(AddHost {
                    name: name.to_string(),
                    address,
                    port,
                    agent_key,
                    pin_on_first_contact,
                    groups,
                    force,
                })
                .await?;
            out.host_added(&added.host, &added.server_key);
            if let Some(file) = &trust_lines {
                append_trust_lines(file, std::slice::from_ref(&added))?;
            }
        }
        HostCommand::Import {
            file,
            format,
            dry_run,
            pin_on_first_contact,
            trust_lines,
        } => {
            let (text, format) = read_inventory(&file, format)?;
            let imported = api
                .import_hosts(ImportHosts {
                    text,
                    format,
                    dry_run,
                    pin_on_first_contact,
                })
                .await?;
            // Lines that cannot be written are printed: the hosts are added.
            let written = match &trust_lines {
                Some(file) => append_trust_lines(file, &imported.added).map(|()| Some(file)),
                None => Ok(None),
            };
            let shown = written.as_ref().ok().copied().flatten();
            out.imported(&imported, shown.map(PathBuf::as_path));
            written?;
        }
        HostCommand::List { wide, selectors } => {
            let page = api.hosts(&selectors).await?;
            out.hosts(&page.hosts, wide);
            let left_out = Selection {
                hosts: Vec::new(),
                left_out: page.left_out,
            };
            if let Some(note) = left_out.note() {
                out.note(&note);
            }
        }
        HostCommand::Show { name } => {
            let detail = api.host(&name).await?;
            out.host_detail(
                &detail.host,
                &detail.server_key,
                detail.newest_agent.as_deref(),
            );
        }
        HostCommand::Remove { names, force } => {
            for name in names {
                let removed = async |force| api.remove_host(&name, force).await;
                match confirmed(force, removed).await? {
                    Removal::Host => out.say(&format!("removed {name}")),
                    Removal::RowOnly => out.say(&format!(
                        "removed {} from the database; its name breaks the rule, so no key file \
                         was touched",
                        sanitize::field(&name, 80)
                    )),
                }
            }
        }
        HostCommand::Set {
            name,
            address,
            port,
            force,
        } => {
            let change = HostChange {
                address,
                port,
                force,
            };
            let host = api.set_address(&name, change).await?;
            out.say(&format!("{name} is at {}:{}", host.address, host.port));
        }
        HostCommand::Enable { name } => {
            api.set_enabled(&name, true).await?;
            out.say(&format!("{name} enabled"));
        }
        HostCommand::Disable { name } => {
            api.set_enabled(&name, false).await?;
            out.say(&format!("{name} disabled"));
        }
        HostCommand::Trust { name, key } => {
            let pinned = api.trust(&name, AgentKey { key }).await?;
            out.say(&format!("{name}: agent key {} pinned", pinned.fingerprint));
        }
        HostCommand::Approve { name } => {
            let pinned = api.approve(&name).await?;
            out.say(&format!("{name}: agent key {} pinned", pinned.fingerprint));
        }
        HostCommand::Deny { name } => {
            let denied = api.deny(&name).await?;
            let fingerprint = denied.fingerprint;
            out.say(&format!("{name}: pending agent key {fingerprint} denied"));
        }
        HostCommand::Key { name } => {
            let key = api.server_key(&name).await?;
            out.server_key(name.as_str(), &key.server_key);
        }
    }
    Ok(())
}
