//! `group …`: groups of hosts, with their scripts.

use clap::Subcommand;

use crate::names::HostName;
use crate::ops::NewGroup;
use crate::print::Printer;

use super::CliError;
use super::api::GroupsApi;
use super::removal::confirmed;

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

/// Runs `group …` over `api`.
pub async fn execute(
    api: &impl GroupsApi,
    out: &Printer,
    command: GroupCommand,
) -> Result<(), CliError> {
    match command {
        GroupCommand::Add { name } => {
            api.add_group(NewGroup { name: name.clone() }).await?;
            out.say(&format!("group {name} added"));
        }
        GroupCommand::Remove { name, force } => {
            confirmed(force, async |force| api.remove_group(&name, force).await).await?;
            out.say(&format!("group {name} removed"));
        }
        GroupCommand::List => out.groups(&api.groups().await?),
        GroupCommand::AddHost { group, hosts } => {
            api.set_membership(&group, &hosts, true).await?;
            out.say(&format!("{} added to {group}", names(&hosts)));
        }
        GroupCommand::RemoveHost { group, hosts } => {
            api.set_membership(&group, &hosts, false).await?;
            out.say(&format!("{} taken out of {group}", names(&hosts)));
        }
        GroupCommand::AddScript { group, script } => {
            api.set_group_script(&group, &script, true).await?;
            out.say(&format!("{script} assigned to {group}"));
        }
        GroupCommand::RemoveScript { group, script } => {
            api.set_group_script(&group, &script, false).await?;
            out.say(&format!("{script} taken from {group}"));
        }
    }
    Ok(())
}

/// The names of `hosts`, as a comma list.
fn names(hosts: &[HostName]) -> String {
    hosts
        .iter()
        .map(HostName::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}
