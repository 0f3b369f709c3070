//! `host …`'s interface: [`HostsApi`].

use reqwest::Method;

use crate::model::Host;
use crate::names::HostName;
use crate::ops::{
    AddHost, AgentKey, DeployHost, DeployOutcome, HostAdded, HostChange, HostDetail, HostEntry,
    HostPage, ImportHosts, Imported, KeyFingerprint, MAX_PAGE, Ops, Removal, Selection, ServerKey,
    Targets,
};

use super::super::CliError;
use super::super::remote::{Remote, local_only, segment};

/// What `host …` needs, wherever the work runs: [`Ops`] in process, the HTTP API through
/// `serve`.
pub(crate) trait HostsApi {
    /// Adds a host (`POST /api/v1/hosts`).
    async fn add_host(&self, new: AddHost) -> Result<HostAdded, CliError>;
    /// Imports an inventory (`POST /api/v1/imports`).
    async fn import_hosts(&self, import: ImportHosts) -> Result<Imported, CliError>;
    /// Installs the agent on a device and adds it (only in process: over the device's own SSH
    /// from this machine, with the key in its data directory).
    async fn deploy_host(&self, deploy: DeployHost) -> Result<DeployOutcome, CliError>;
    /// Every host whose facts match `selectors` (all when none), by name, and those they left
    /// out (`GET /api/v1/hosts?where=…`, page after page).
    async fn hosts(&self, selectors: &[String]) -> Result<HostPage, CliError>;
    /// The hosts `targets` chooses, and those its selectors left out (`POST
    /// /api/v1/selection`).
    async fn selection(&self, targets: &Targets) -> Result<Selection, CliError>;
    /// One host in full (`GET /api/v1/hosts/{name}`).
    async fn host(&self, name: &HostName) -> Result<HostDetail, CliError>;
    /// Removes a host; with variables only when `force` (`DELETE /api/v1/hosts/{name}`).
    async fn remove_host(&self, name: &str, force: bool) -> Result<Removal, CliError>;
    /// Changes where a host is reached (`PATCH /api/v1/hosts/{name}`).
    async fn set_address(&self, name: &HostName, change: HostChange) -> Result<Host, CliError>;
    /// Enables or disables a host (`POST /api/v1/hosts/{name}/enable`, `…/disable`).
    async fn set_enabled(&self, name: &HostName, enabled: bool) -> Result<(), CliError>;
    /// Pins an agent key given by hand (`POST /api/v1/hosts/{name}/trust`).
    async fn trust(&self, name: &HostName, key: AgentKey) -> Result<KeyFingerprint, CliError>;
    /// Pins the pending key (`POST /api/v1/hosts/{name}/approve`).
    async fn approve(&self, name: &HostName) -> Result<KeyFingerprint, CliError>;
    /// Drops the pending key (`POST /api/v1/hosts/{name}/deny`).
    async fn deny(&self, name: &HostName) -> Result<KeyFingerprint, CliError>;
    /// The server key its agent must trust (`GET /api/v1/hosts/{name}/key`).
    async fn server_key(&self, name: &HostName) -> Result<ServerKey, CliError>;
}

impl HostsApi for Ops {
    async fn add_host(&self, new: AddHost) -> Result<HostAdded, CliError> {
        Ok(Ops::add_host(self, new).await?)
    }

    async fn import_hosts(&self, import: ImportHosts) -> Result<Imported, CliError> {
        Ok(Ops::import_hosts(self, import).await?)
    }

    async fn deploy_host(&self, deploy: DeployHost) -> Result<DeployOutcome, CliError> {
        Ok(Ops::deploy_host(self, deploy).await?)
    }

    async fn hosts(&self, selectors: &[String]) -> Result<HostPage, CliError> {
        Ok(Ops::host_entries(self, selectors).await?)
    }

    async fn selection(&self, targets: &Targets) -> Result<Selection, CliError> {
        Ok(Ops::selection(self, targets).await?)
    }

    async fn host(&self, name: &HostName) -> Result<HostDetail, CliError> {
        Ok(Ops::host(self, name).await?)
    }

    async fn remove_host(&self, name: &str, force: bool) -> Result<Removal, CliError> {
        Ok(Ops::remove_host(self, name, force).await?)
    }

    async fn set_address(&self, name: &HostName, change: HostChange) -> Result<Host, CliError> {
        let HostChange {
            address,
            port,
            force,
        } = change;
        Ok(Ops::set_address(self, name, address, port, force).await?)
    }

    async fn set_enabled(&self, name: &HostName, enabled: bool) -> Result<(), CliError> {
        Ok(Ops::set_enabled(self, name, enabled).await?)
    }

    async fn trust(&self, name: &HostName, key: AgentKey) -> Result<KeyFingerprint, CliError> {
        Ok(Ops::trust(self, name, &key.key).await?)
    }

    async fn approve(&self, name: &HostName) -> Result<KeyFingerprint, CliError> {
        Ok(Ops::approve(self, name).await?)
    }

    async fn deny(&self, name: &HostName) -> Result<KeyFingerprint, CliError> {
        Ok(Ops::deny(self, name).await?)
    }

    async fn server_key(&self, name: &HostName) -> Result<ServerKey, CliError> {
        Ok(Ops::server_key(self, name).await?)
    }
}

/// The path of host `name`, then `what`.
fn host_path(name: &str, what: &str) -> String {
    format!("/api/v1/hosts/{}{what}", segment(name))
}

impl HostsApi for Remote {
    async fn add_host(&self, new: AddHost) -> Result<HostAdded, CliError> {
        Ok(self.call(Method::POST, "/api/v1/hosts", &new).await?)
    }

    async fn import_hosts(&self, import: ImportHosts) -> Result<Imported, CliError> {
        Ok(self.call(Method::POST, "/api/v1/imports", &import).await?)
    }

    async fn deploy_host(&self, _: DeployHost) -> Result<DeployOutcome, CliError> {
        Err(local_only(
            "`host deploy`",
            "it installs the agent over the device's own SSH from the machine it runs on, and \
             keeps the host's key in that machine's data directory",
        ))
    }

    async fn hosts(&self, selectors: &[String]) -> Result<HostPage, CliError> {
        let mut hosts = Vec::new();
        let mut after = None;
        loop {
            let mut query = vec![("limit", MAX_PAGE.to_string())];
            query.extend(after.map(|a| ("after", a)));
            query.extend(selectors.iter().map(|s| ("where", s.clone())));
            let page: HostPage = self.get("/api/v1/hosts", &query).await?;
            hosts.extend(page.hosts);
            match page.next {
                Some(next) => after = Some(next),
                None => {
                    return Ok(HostPage {
                        hosts,
                        next: None,
                        left_out: page.left_out,
                    });
                }
            }
        }
    }

    async fn selection(&self, targets: &Targets) -> Result<Selection, CliError> {
        Ok(self
            .call(Method::POST, "/api/v1/selection", targets)
            .await?)
    }

    async fn host(&self, name: &HostName) -> Result<HostDetail, CliError> {
        Ok(self.get(&host_path(name, ""), &[]).await?)
    }

    async fn remove_host(&self, name: &str, force: bool) -> Result<Removal, CliError> {
        let forced = if force { "?force=true" } else { "" };
        self.send(Method::DELETE, &host_path(name, forced), &())
            .await?;
        Ok(Removal::of(name))
    }

    async fn set_address(&self, name: &HostName, change: HostChange) -> Result<Host, CliError> {
        let entry: HostEntry = self
            .call(Method::PATCH, &host_path(name, ""), &change)
            .await?;
        Ok(entry.host)
    }

    async fn set_enabled(&self, name: &HostName, enabled: bool) -> Result<(), CliError> {
        let what = if enabled { "/enable" } else { "/disable" };
        self.send(Method::POST, &host_path(name, what), &()).await?;
        Ok(())
    }

    async fn trust(&self, name: &HostName, key: AgentKey) -> Result<KeyFingerprint, CliError> {
        let path = host_path(name, "/trust");
        Ok(self.call(Method::POST, &path, &key).await?)
    }

    async fn approve(&self, name: &HostName) -> Result<KeyFingerprint, CliError> {
        let path = host_path(name, "/approve");
        Ok(self.call(Method::POST, &path, &()).await?)
    }

    async fn deny(&self, name: &HostName) -> Result<KeyFingerprint, CliError> {
        let path = host_path(name, "/deny");
        Ok(self.call(Method::POST, &path, &()).await?)
    }

    async fn server_key(&self, name: &HostName) -> Result<ServerKey, CliError> {
        Ok(self.get(&host_path(name, "/key"), &[]).await?)
    }
}
