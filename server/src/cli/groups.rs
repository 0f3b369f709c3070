//! `group …`: groups of hosts, with their scripts.

use clap::Subcommand;

use crate::model::Scope;
use crate::names::HostName;
use crate::ops::Ops;
use crate::print::Printer;

use super::CliError;

#[derive(Subcommand)]
pub enum GroupCommand {
    /// Add a group.
    Add {
        /// A unique name: 1 to 63 letters, digits, `.`, `_` and `-`, not starting with `.` or `-`.
        name: String,
    },
    /// Remove a group (its hosts stay) with its variables: they are listed first, and must be
    /// confirmed on a terminal or with --force.
    Remove {
        /// The group.
        name: String,
        /// Remove its variables without asking.
        #[arg(long)]
        force: bool,
    },
    /// List groups with their hosts and scripts.
    List,
    /// Put hosts in a group.
    AddHost {
        /// The group.
        group: String,
        /// Hosts (or a comma list).
        #[arg(required = true, value_delimiter = ',')]
        hosts: Vec<HostName>,
    },
    /// Take hosts out of a group.
    RemoveHost {
        /// The group.
        group: String,
        /// Hosts (or a comma list).
        #[arg(required = true, value_delimiter = ',')]
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

pub async fn execute(ops: &Ops, out: &Printer, command: GroupCommand) -> Result<(), CliError> {
    match command {
        GroupCommand::Add { name } => {
            ops.add_group(&name).await?;
            out.say(&format!("group {name} added"));
        }
        GroupCommand::Remove { name, force } => {
            super::env::confirm_removal(ops, &Scope::Group(name.clone()), force).await?;
            ops.remove_group(&name).await?;
            out.say(&format!("group {name} removed"));
        }
        GroupCommand::List => out.groups(&ops.groups().await?),
        GroupCommand::AddHost { group, hosts } => {
            ops.set_membership(&group, &hosts, true).await?;
            out.say(&format!("{} added to {group}", names(&hosts)));
        }
        GroupCommand::RemoveHost { group, hosts } => {
            ops.set_membership(&group, &hosts, false).await?;
            out.say(&format!("{} taken out of {group}", names(&hosts)));
        }
        GroupCommand::AddScript { group, script } => {
            ops.set_group_script(&group, &script, true).await?;
            out.say(&format!("{script} assigned to {group}"));
        }
        GroupCommand::RemoveScript { group, script } => {
            ops.set_group_script(&group, &script, false).await?;
            out.say(&format!("{script} taken from {group}"));
        }
    }
    Ok(())
}

/// Host names as a list for people.
/// The names of `hosts`, as a comma list.
pub(super) fn names(hosts: &[HostName]) -> String {
    hosts
        .iter()
        .map(HostName::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}
