//! `group …`'s interface: [`GroupsApi`].

use reqwest::Method;

use crate::model::Group;
use crate::names::HostName;
use crate::ops::{NewGroup, Ops};

use super::super::CliError;
use super::super::remote::{Remote, segment};

/// What `group …` needs, wherever the work runs: [`Ops`] in process, the HTTP API through
/// `serve`.
pub(crate) trait GroupsApi {
    /// Adds a group (`POST /api/v1/groups`).
    async fn add_group(&self, new: NewGroup) -> Result<(), CliError>;
    /// Removes a group; with variables only when `force` (`DELETE /api/v1/groups/{name}`).
    async fn remove_group(&self, name: &str, force: bool) -> Result<(), CliError>;
    /// Every group with its hosts and scripts (`GET /api/v1/groups`).
    async fn groups(&self) -> Result<Vec<Group>, CliError>;
    /// Puts hosts in a group, or takes them out, one at a time: the first failure stops it
    /// (`PUT`, `DELETE /api/v1/groups/{name}/hosts/{host}`).
    async fn set_membership(
        &self,
        group: &str,
        hosts: &[HostName],
        member: bool,
    ) -> Result<(), CliError>;
    /// Assigns a script to a group, or takes it away (`PUT`, `DELETE
    /// /api/v1/groups/{name}/scripts/{script}`).
    async fn set_group_script(
        &self,
        group: &str,
        script: &str,
        assigned: bool,
    ) -> Result<(), CliError>;
}

impl GroupsApi for Ops {
    async fn add_group(&self, new: NewGroup) -> Result<(), CliError> {
        Ok(Ops::add_group(self, &new.name).await?)
    }

    async fn remove_group(&self, name: &str, force: bool) -> Result<(), CliError> {
        Ok(Ops::remove_group(self, name, force).await?)
    }

    async fn groups(&self) -> Result<Vec<Group>, CliError> {
        Ok(Ops::groups(self).await?)
    }

    async fn set_membership(
        &self,
        group: &str,
        hosts: &[HostName],
        member: bool,
    ) -> Result<(), CliError> {
        Ok(Ops::set_membership(self, group, hosts, member).await?)
    }

    async fn set_group_script(
        &self,
        group: &str,
        script: &str,
        assigned: bool,
    ) -> Result<(), CliError> {
        Ok(Ops::set_group_script(self, group, script, assigned).await?)
    }
}

/// The path of group `name`, then `what`.
fn group_path(name: &str, what: &str) -> String {
    format!("/api/v1/groups/{}{what}", segment(name))
}

/// `PUT` to make something so, `DELETE` to undo it.
fn put_or_delete(yes: bool) -> Method {
    if yes { Method::PUT } else { Method::DELETE }
}

impl GroupsApi for Remote {
    async fn add_group(&self, new: NewGroup) -> Result<(), CliError> {
        self.send(Method::POST, "/api/v1/groups", &new).await?;
        Ok(())
    }

    async fn remove_group(&self, name: &str, force: bool) -> Result<(), CliError> {
        let forced = if force { "?force=true" } else { "" };
        self.send(Method::DELETE, &group_path(name, forced), &())
            .await?;
        Ok(())
    }

    async fn groups(&self) -> Result<Vec<Group>, CliError> {
        Ok(self.get("/api/v1/groups", &[]).await?)
    }

    async fn set_membership(
        &self,
        group: &str,
        hosts: &[HostName],
        member: bool,
    ) -> Result<(), CliError> {
        for host in hosts {
            let path = group_path(group, &format!("/hosts/{}", segment(host)));
            self.send(put_or_delete(member), &path, &()).await?;
        }
        Ok(())
    }

    async fn set_group_script(
        &self,
        group: &str,
        script: &str,
        assigned: bool,
    ) -> Result<(), CliError> {
        let path = group_path(group, &format!("/scripts/{}", segment(script)));
        self.send(put_or_delete(assigned), &path, &()).await?;
        Ok(())
    }
}
