//! Groups of hosts, with the scripts assigned to them.

use crate::model::{EventKind, Group};
use crate::names::HostName;

use super::{Ops, Result};

impl Ops {
    /// Adds a group.
    pub async fn add_group(&self, name: &str) -> Result<()> {
        self.fleet.store().add_group(name).await?;
        self.record(
            None,
            EventKind::GroupChanged,
            &format!("group {name} added"),
        )
        .await
    }

    /// Removes a group (its hosts stay) with the variables of its scope.
    pub async fn remove_group(&self, name: &str) -> Result<()> {
        self.fleet.store().remove_group(name).await?;
        self.record(
            None,
            EventKind::GroupChanged,
            &format!("group {name} removed"),
        )
        .await
    }

    /// Every group with its hosts and scripts.
    pub async fn groups(&self) -> Result<Vec<Group>> {
        Ok(self.fleet.store().groups().await?)
    }

    /// Puts hosts in a group (`member`), or takes them out, one at a time: the first failure
    /// stops it, the hosts before it stay changed.
    pub async fn set_membership(
        &self,
        group: &str,
        hosts: &[HostName],
        member: bool,
    ) -> Result<()> {
        for host in hosts {
            self.fleet
                .store()
                .set_membership(group, host, member)
                .await?;
            let detail = if member {
                format!("{host} added to {group}")
            } else {
                format!("{host} taken out of {group}")
            };
            self.record(Some(host), EventKind::GroupChanged, &detail)
                .await?;
        }
        Ok(())
    }

    /// Assigns a script to a group (`assigned`), or takes it away.
    pub async fn set_group_script(&self, group: &str, script: &str, assigned: bool) -> Result<()> {
        self.fleet
            .store()
            .set_group_script(group, script, assigned)
            .await?;
        let detail = if assigned {
            format!("script {script} assigned to {group}")
        } else {
            format!("script {script} taken from {group}")
        };
        self.record(None, EventKind::GroupChanged, &detail).await
    }
}
