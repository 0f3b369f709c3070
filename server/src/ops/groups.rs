//! Groups of hosts, with the scripts assigned to them.

use crate::model::{EventKind, Group, Scope};
use crate::names::{HostName, Kind};

use super::{Ops, Result};

/// A group to add.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    /// A unique name: 1 to 63 letters, digits, `.`, `_` and `-`, not starting with `.` or `-`; not one that
    /// differs from another group's only in letter case.
    #[schema(
        min_length = 1,
        max_length = 63,
        pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]*$"
    )]
    pub name: String,
}

impl Ops {
    /// Adds a group; its name follows the rule ([`crate::names`]) and differs from no other
    /// group's only in letter case.
    pub async fn add_group(&self, name: &str) -> Result<()> {
        self.check_new_name(Kind::Group, name).await?;
        self.fleet.store().add_group(name).await?;
        self.record(
            None,
            EventKind::GroupChanged,
            &format!("group {name} added"),
        )
        .await
    }

    /// Removes a group (its hosts stay) with the variables of its scope: with variables, only
    /// when `force` says to remove them too (else [`super::OpsError::ForceNeeded`]).
    pub async fn remove_group(&self, name: &str, force: bool) -> Result<()> {
        self.refuse_losing_variables(&Scope::Group(name.to_string()), force)
            .await?;
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

#[cfg(test)]
mod tests {
    use crate::model::Script;
    use crate::names::HostName;
    use crate::ops::ErrorKind;
    use crate::ops::testing::{ev, fixture, last, new_r1};

    #[tokio::test]
    async fn groups_get_hosts_and_scripts_and_each_change_is_recorded() {
        let (_dir, ops) = fixture().await;
        let r1 = HostName::parse("r1").unwrap();
        ops.add_host(new_r1()).await.unwrap();
        let script = Script::example("hello", b"echo hi");
        ops.save_script(&script, false).await.unwrap();

        ops.add_group("lab").await.unwrap();
        assert_eq!(last(&ops).await, ev("", "group-changed", "group lab added"));
        let taken = ops.add_group("lab").await.unwrap_err();
        assert_eq!(taken.kind(), ErrorKind::Conflict);

        ops.set_membership("lab", std::slice::from_ref(&r1), true)
            .await
            .unwrap();
        assert_eq!(
            last(&ops).await,
            ev("r1", "group-changed", "r1 added to lab")
        );
        ops.set_group_script("lab", "hello", true).await.unwrap();
        assert_eq!(
            last(&ops).await,
            ev("", "group-changed", "script hello assigned to lab")
        );
        let groups = ops.groups().await.unwrap();
        assert_eq!(
            (groups[0].hosts.as_slice(), groups[0].scripts.as_slice()),
            (&["r1".to_string()][..], &["hello".to_string()][..])
        );

        ops.set_membership("lab", std::slice::from_ref(&r1), false)
            .await
            .unwrap();
        assert_eq!(
            last(&ops).await,
            ev("r1", "group-changed", "r1 taken out of lab")
        );
        ops.set_group_script("lab", "hello", false).await.unwrap();
        assert_eq!(
            last(&ops).await,
            ev("", "group-changed", "script hello taken from lab")
        );
        let missing = ops
            .set_membership("nope", std::slice::from_ref(&r1), true)
            .await
            .unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::NotFound);

        ops.remove_group("lab", false).await.unwrap();
        assert_eq!(
            last(&ops).await,
            ev("", "group-changed", "group lab removed")
        );
        assert!(ops.groups().await.unwrap().is_empty());
        let gone = ops.remove_group("lab", false).await.unwrap_err();
        assert_eq!(gone.kind(), ErrorKind::NotFound);
    }
}
