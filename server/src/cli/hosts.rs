//! `host …`: adding, trusting, enabling, removing and deploying hosts.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};

use crate::deploy;
use crate::fleet::Fleet;
use crate::keys;
use crate::model::NewHost;
use crate::names::HostName;
use crate::ops::{Actor, Ops, Targets};
use crate::print::Printer;
use crate::sanitize;
use crate::store::StoreError;

use super::CliError;
use super::targets::failures;

#[derive(Subcommand)]
pub enum HostCommand {
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
    /// The agent's port on the device.
    #[arg(long, default_value_t = 12444)]
    pub agent_port: u16,
    /// The directory of static agents, `otto-agent-<target>` (from `ci/build-agents.sh`).
    #[arg(long)]
    pub dist: Option<PathBuf>,
    /// The service manager on the device.
    #[arg(long, value_enum, default_value = "auto")]
    pub service: deploy::Service,
    /// Install under this directory of the device instead of `/`.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Put the host in these groups (repeatable; created if missing).
    #[arg(short, long = "group")]
    pub groups: Vec<String>,
}

pub async fn deploy(fleet: &Arc<Fleet>, out: &Printer, args: DeployArgs) -> Result<(), CliError> {
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
    let ping = Ops::new(fleet.clone(), Actor::local_user())
        .ping(&Targets::hosts([args.name.to_string()]))
        .await?;
    let reachable = ping.iter().all(|p| p.reachable);
    out.deployed(&deployed, &ping);
    failures([reachable].into_iter())
}

pub async fn execute(
    fleet: &Arc<Fleet>,
    out: &Printer,
    command: HostCommand,
) -> Result<(), CliError> {
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
