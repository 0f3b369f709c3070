//! `group …`: groups of hosts, with their scripts.

use clap::Subcommand;

use crate::fleet::Fleet;
use crate::names::HostName;
use crate::print::Printer;

use super::CliError;

#[derive(Subcommand)]
pub enum GroupCommand {
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

pub async fn execute(fleet: &Fleet, out: &Printer, command: GroupCommand) -> Result<(), CliError> {
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

/// Host names as a list for people.
fn names(hosts: &[HostName]) -> String {
    hosts
        .iter()
        .map(HostName::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}
