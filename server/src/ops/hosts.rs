//! Hosts and their trust: adding (by hand or by deploying the agent), listing, changing,
//! trusting and removing them.

use std::path::PathBuf;

use russh::keys::{PrivateKey, PublicKey};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::deploy::{self, DeployOptions};
use crate::keys;
use crate::model::{EventKind, Host, HostFilter, HostState, NewHost, Scope};
use crate::names::{self, HostName, Kind};
use crate::selectors::Selector;
use crate::store::StoreError;

pub use crate::deploy::{Deployed, Service};

use super::names::{case_clash, same_address};
use super::{Ops, OpsError, Result};
use super::{Ping, Targets};

/// A host to add by hand (the API's `NewHost`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewHost)]
pub struct AddHost {
    /// A unique name: 1 to 63 letters, digits, `.`, `_` and `-`, not starting with `.` or `-`.
    #[schema(
        min_length = 1,
        max_length = 63,
        pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]*$"
    )]
    pub name: String,
    /// An IP address or a DNS name.
    pub address: String,
    /// The agent's port, 1 to 65535 (default 12444).
    #[serde(default = "default_port")]
    #[schema(minimum = 1, maximum = 65535)]
    pub port: u16,
    /// The agent's key (`ssh-ed25519 …`), if known.
    pub agent_key: Option<String>,
    /// Trust whatever key the agent presents first (only on a network you trust).
    #[serde(default)]
    pub pin_on_first_contact: bool,
    /// Groups to put it in (created if missing).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Add it even if another host is at the same address and port.
    #[serde(default)]
    pub force: bool,
}

/// The agent's port when none is given.
fn default_port() -> u16 {
    otto_proto::DEFAULT_PORT
}

/// A host just added.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = AddedHost)]
pub struct HostAdded {
    /// Its name.
    pub host: String,
    /// The server key its agent must trust (`otto-agent trust …`), in OpenSSH form.
    pub server_key: String,
}

/// One host in full, with its server key (the API's `HostView`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = HostView)]
pub struct HostDetail {
    /// The host.
    #[serde(flatten)]
    pub host: Host,
    /// The fingerprint (`SHA256:…`) of the key its agent presented that is not the pinned
    /// one, waiting to be approved or denied; none without one.
    pub pending_fingerprint: Option<String>,
    /// The server key its agent must trust, in OpenSSH form.
    pub server_key: String,
    /// Whether its agent is older than the newest the server has (`newest_agent`).
    #[serde(default)]
    pub behind: bool,
    /// The newest agent version the server has, if it has binaries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_agent: Option<String>,
}

/// A key pinned or dropped: its host and fingerprint.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyFingerprint {
    /// The host.
    pub host: String,
    /// The key's fingerprint, `SHA256:…`.
    pub fingerprint: String,
}

impl KeyFingerprint {
    /// The key of `host` whose fingerprint is `fingerprint`.
    fn of(host: &HostName, fingerprint: String) -> KeyFingerprint {
        KeyFingerprint {
            host: host.to_string(),
            fingerprint,
        }
    }
}

/// The server key a host's agent must trust.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ServerKey {
    /// The host.
    pub host: String,
    /// The key, in OpenSSH form (`otto-agent trust '…'`).
    pub server_key: String,
}

/// Where a host is reached, changed: what is given.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostChange {
    /// New IP address or DNS name.
    pub address: Option<String>,
    /// New agent port, 1 to 65535.
    #[schema(minimum = 1, maximum = 65535)]
    pub port: Option<u16>,
    /// Move it even if another host is at the same address and port.
    #[serde(default)]
    pub force: bool,
}

/// An agent key to pin.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentKey {
    /// The agent's key, `ssh-ed25519 AAAA…` (from `otto-agent pubkey`).
    pub key: String,
}

/// What removing a host removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// The host and its server key.
    Host,
    /// Only the row of a name that breaks the rule (from an older database); no file touched.
    RowOnly,
}

impl Removal {
    /// What removing the host `name`, once done, removed: a name that breaks the rule can only
    /// have been a row of an older database.
    pub fn of(name: &str) -> Removal {
        match HostName::parse(name) {
            Ok(_) => Removal::Host,
            Err(_) => Removal::RowOnly,
        }
    }
}

/// A device to install the agent on, and the host it becomes.
#[derive(Debug, Clone)]
pub struct DeployHost {
    /// The host's name in the fleet.
    pub name: HostName,
    /// `[user@]device`, as for ssh.
    pub destination: String,
    /// The device's SSH port.
    pub ssh_port: u16,
    /// Extra arguments for ssh (`-o …`, `-i …`).
    pub ssh_args: Vec<String>,
    /// The address the server dials (default: the device part of `destination`).
    pub address: Option<String>,
    /// The agent's port on the device (default: the host's on a re-deploy, else 12444).
    pub agent_port: Option<u16>,
    /// `allow_from` address ranges for the agent (`ADDRESS[/PREFIX]`, comma lists too).
    pub allow_from: Vec<String>,
    /// Where the agent calls home, `ADDRESS[:PORT]`: the host is then reached over the
    /// connection its agent makes (`serve --call-home-listen`), never dialled.
    pub call_home: Option<String>,
    /// The agent does not listen (`listen = none`): a device behind NAT that calls home.
    pub no_listen: bool,
    /// The directory of static agents (default: the server's catalogue: built in, else `dist/`).
    pub dist: Option<PathBuf>,
    /// The service manager on the device.
    pub service: Service,
    /// Install under this directory of the device instead of `/`.
    pub prefix: String,
    /// Groups to put the host in (created if missing).
    pub groups: Vec<String>,
}

/// A deployment and the heartbeat that followed it.
#[derive(Debug, Clone)]
pub struct DeployOutcome {
    /// What was installed.
    pub deployed: Deployed,
    /// The first heartbeat of the new agent.
    pub heartbeat: Vec<Ping>,
}

impl Ops {
    /// Adds a host with a new server key (stored once the host is).
    pub async fn add_host(&self, add: AddHost) -> Result<HostAdded> {
        let agent_key = self.check_new(&add).await?;
        self.make_host(add, agent_key).await
    }

    /// Adds a host, checked as [`Ops::add_host`] checks, whose server key the fleet has made
    /// already (`Fleet::create_host_key`): its agent had to trust the key before it could
    /// listen (the demo's agent). The key is removed again if the store refuses the host.
    pub async fn add_keyed_host(&self, add: AddHost) -> Result<HostAdded> {
        let agent_key = self.check_new(&add).await?;
        let server_key = self.fleet.host_key(&add.name).await?;
        let name = add.name.clone();
        let added = self.keep_host(add, agent_key, &server_key, false).await;
        if added.is_err() {
            self.fleet.remove_host_key(&name).await;
        }
        added
    }

    /// Checks a host to add against the rules and the fleet; its agent key in OpenSSH form.
    async fn check_new(&self, add: &AddHost) -> Result<Option<String>> {
        HostName::parse(&add.name)?;
        let agent_key = add
            .agent_key
            .as_deref()
            .map(|k| keys::parse_public(k).map(|k| keys::to_openssh(&k)))
            .transpose()?;
        let hosts = self.fleet.store().hosts().await?;
        check_new_host(&add.name, &hosts)?;
        check_place(
            &add.name,
            &add.address,
            add.port,
            add.force,
            hosts_at(&hosts),
        )?;
        check_new_groups(&add.groups, &self.group_names().await?)?;
        Ok(agent_key)
    }

    /// Adds a host checked already (its name, its agent key parsed), with a new server key
    /// (stored once the host is).
    pub(super) async fn make_host(
        &self,
        add: AddHost,
        agent_key: Option<String>,
    ) -> Result<HostAdded> {
        let server_key = keys::generate()?;
        self.keep_host(add, agent_key, &server_key, true).await
    }

    /// Adds a host checked already whose server key is made (and stored once the host is,
    /// when `store_key`), in its groups.
    async fn keep_host(
        &self,
        add: AddHost,
        agent_key: Option<String>,
        server_key: &PrivateKey,
        store_key: bool,
    ) -> Result<HostAdded> {
        let host = NewHost {
            name: add.name.clone(),
            address: add.address,
            port: add.port,
            agent_key,
            pin_on_first_contact: add.pin_on_first_contact,
        };
        self.store_host(&host, &added_detail(&host), store_key.then_some(server_key))
            .await?;
        self.join_groups(&HostName::parse(&add.name)?, &add.groups)
            .await?;
        Ok(HostAdded {
            host: add.name,
            server_key: keys::to_openssh(server_key.public_key()),
        })
    }

    /// Stores `host`, then its server key `key` if given (the host is removed again if the key
    /// cannot be stored: of two servers adding one name, only the one whose host the store
    /// took stores its key), and records its addition (`detail`).
    async fn store_host(
        &self,
        host: &NewHost,
        detail: &str,
        key: Option<&PrivateKey>,
    ) -> Result<()> {
        let store = self.fleet.store();
        store.add_host(host).await?;
        if let Some(key) = key
            && let Err(e) = self.fleet.keep_host_key(&host.name, key).await
        {
            if let Err(removed) = store.remove_host(&host.name).await {
                tracing::warn!(host = %host.name, "added without its server key, not removed: {removed}");
            }
            return Err(e.into());
        }
        self.record(Some(&host.name), EventKind::HostAdded, detail)
            .await
    }

    /// Installs the agent on a device over its own SSH server and adds it as a host, in
    /// `groups`; then asks it for a heartbeat (unless it calls home). A host of that name is
    /// upgraded in place: see [`Ops::redeploy_host`].
    pub async fn deploy_host(&self, d: DeployHost) -> Result<DeployOutcome> {
        let store = self.fleet.store();
        let hosts = store.hosts().await?;
        let settings = deploy_settings(&d)?;
        if let Some(host) = hosts.iter().find(|h| h.name == d.name.as_str()) {
            return self.redeploy_host(d, host, &hosts, settings).await;
        }
        if d.no_listen && d.call_home.is_none() {
            return Err(OpsError::Invalid(
                "an agent that does not listen must call home: give --call-home".into(),
            ));
        }
        check_new_host(&d.name, &hosts)?;
        let agent_port = d.agent_port.unwrap_or(otto_proto::DEFAULT_PORT);
        let address = deploy::dial_address(&d.destination, d.address.as_deref());
        check_place(&d.name, &address, agent_port, false, hosts_at(&hosts))?;
        check_new_groups(&d.groups, &self.group_names().await?)?;
        let settings = deploy::Settings {
            listen: Some((!d.no_listen).then_some(agent_port)),
            ..settings
        };
        let options = deploy_options(&d, agent_port, settings, None);
        // The agent is given the host's server key to trust as it is installed.
        // (Stored once the host is.)
        let server_key = keys::generate()?;
        let deployed = deploy::deploy(&options, server_key.public_key()).await?;
        let host = NewHost {
            name: d.name.to_string(),
            address: deployed.address.clone(),
            port: agent_port,
            agent_key: Some(deployed.agent_key.clone()),
            pin_on_first_contact: false,
        };
        let detail = format!(
            "{}:{}, agent key given (deployed: {})",
            deployed.address, agent_port, deployed.target
        );
        self.store_host(&host, &detail, Some(&server_key)).await?;
        self.join_groups(&d.name, &d.groups).await?;
        self.after_deploy(&d.name, d.call_home.is_some(), deployed)
            .await
    }

    /// Upgrades the agent of `host` in place over the device's SSH: the agent's key must be
    /// the pinned one (else nothing changes, on the device nor here); its trust and every
    /// setting not given stay; the host's address and port change if given.
    async fn redeploy_host(
        &self,
        d: DeployHost,
        host: &Host,
        hosts: &[Host],
        settings: deploy::Settings,
    ) -> Result<DeployOutcome> {
        let pinned = host
            .trust
            .agent_key
            .as_deref()
            .ok_or_else(|| {
                OpsError::Conflict(format!(
                    "{} has no pinned agent key to check the device's against: pin it (`host trust`) or remove the host first",
                    d.name
                ))
            })
            .and_then(|k| Ok(keys::parse_public(k)?))?;
        let address = d.address.clone().unwrap_or_else(|| host.address.clone());
        let agent_port = d.agent_port.unwrap_or(host.port);
        check_place(&d.name, &address, agent_port, false, hosts_at(hosts))?;
        let member: Vec<String> = host.groups.clone();
        let new_groups: Vec<String> = d
            .groups
            .iter()
            .filter(|g| !member.contains(g))
            .cloned()
            .collect();
        check_new_groups(&new_groups, &self.group_names().await?)?;
        let settings = deploy::Settings {
            listen: match (d.no_listen, d.agent_port) {
                (true, _) => Some(None),
                (false, Some(port)) => Some(Some(port)),
                (false, None) => None,
            },
            ..settings
        };
        let options = deploy_options(&d, agent_port, settings, Some(pinned));
        let server_key = self.fleet.host_key(&d.name).await?;
        let deployed = deploy::deploy(&options, server_key.public_key()).await?;
        // A move makes the host one the server dials again (`Ops::set_address`).
        let moved = d.address.is_some() || d.agent_port.is_some_and(|p| p != host.port);
        if moved {
            self.move_host(&d.name, d.address.clone(), d.agent_port)
                .await?;
        }
        let mut detail = format!("upgraded to {}, {} bytes", deployed.target, deployed.bytes);
        if !deployed.settings.is_empty() {
            detail.push_str(&format!("; set {}", deployed.settings.join(", ")));
        }
        if !deployed.sysupgrade_lines.is_empty() {
            detail.push_str(&format!(
                "; {} line(s) added to /etc/sysupgrade.conf",
                deployed.sysupgrade_lines.len()
            ));
        }
        self.record(Some(&d.name), EventKind::HostRedeployed, &detail)
            .await?;
        self.join_groups(&d.name, &new_groups).await?;
        let calls_home = d.call_home.is_some() || (host.status.calls_home && !moved);
        self.after_deploy(&d.name, calls_home, deployed).await
    }

    /// After a deployment: a host whose agent calls home is marked so (and not asked for a
    /// heartbeat: its agent calls the daemon, `serve`); any other is asked for one.
    async fn after_deploy(
        &self,
        name: &HostName,
        calls_home: bool,
        deployed: Deployed,
    ) -> Result<DeployOutcome> {
        if calls_home {
            self.fleet.store().set_calls_home(name).await?;
            return Ok(DeployOutcome {
                deployed,
                heartbeat: Vec::new(),
            });
        }
        let heartbeat = self.ping(&Targets::hosts([name.to_string()])).await?;
        Ok(DeployOutcome {
            deployed,
            heartbeat,
        })
    }

    /// Puts `host` in each of `groups`, creating those missing.
    pub(super) async fn join_groups(&self, host: &HostName, groups: &[String]) -> Result<()> {
        let store = self.fleet.store();
        for g in groups {
            match store.add_group(g).await {
                Ok(()) => {
                    self.record(None, EventKind::GroupChanged, &format!("group {g} added"))
                        .await?
                }
                Err(StoreError::Exists(..)) => {}
                Err(e) => return Err(e.into()),
            }
            store.set_membership(g, host, true).await?;
            self.record(
                Some(host),
                EventKind::GroupChanged,
                &format!("{host} added to {g}"),
            )
            .await?;
        }
        Ok(())
    }

    /// The name of every group.
    pub(super) async fn group_names(&self) -> Result<Vec<String>> {
        let groups = self.fleet.store().groups().await?;
        Ok(groups.into_iter().map(|g| g.name).collect())
    }

    /// Every host, by name.
    pub async fn hosts(&self) -> Result<Vec<Host>> {
        Ok(self.fleet.store().hosts().await?)
    }

    /// One host, with its server key.
    pub async fn host(&self, name: &HostName) -> Result<HostDetail> {
        let host = self.fleet.store().host(name).await?;
        let key = self.fleet.host_key(name).await?;
        let newest_agent = self.newest_agent().await;
        Ok(HostDetail {
            pending_fingerprint: host.trust.pending_key.as_deref().map(pending_fingerprint),
            behind: crate::agents::behind(
                host.status.agent_version.as_deref(),
                newest_agent.as_deref(),
            ),
            newest_agent,
            host,
            server_key: keys::to_openssh(key.public_key()),
        })
    }

    /// Removes a host with its server key and its variables (its history stays); with
    /// variables, only when `force` says to remove them too (else [`OpsError::ForceNeeded`]).
    /// A name that breaks the rule can only be a row of an older database: the row goes, no
    /// file is touched.
    pub async fn remove_host(&self, name: &str, force: bool) -> Result<Removal> {
        self.refuse_losing_variables(&Scope::Host(name.to_string()), force)
            .await?;
        let store = self.fleet.store();
        let removal = match HostName::parse(name) {
            Ok(checked) => {
                store.remove_host(&checked).await?;
                self.fleet.remove_host_key(&checked).await;
                Removal::Host
            }
            Err(bad) => match store.remove_host(name).await {
                Ok(()) => Removal::RowOnly,
                Err(StoreError::NotFound(..)) => return Err(bad.into()),
                Err(e) => return Err(e.into()),
            },
        };
        let detail = match removal {
            Removal::Host => "removed",
            Removal::RowOnly => "removed from the database only (its name breaks the rule)",
        };
        self.record(Some(name), EventKind::HostRemoved, detail)
            .await?;
        Ok(removal)
    }

    /// Changes where a host is reached (to an address and port no other host has, unless
    /// `force`); returns the host as it is now. A kept connection (in `serve`) is dropped, so
    /// the next use dials the new address at once: likewise after each change of trust below.
    pub async fn set_address(
        &self,
        name: &HostName,
        address: Option<String>,
        port: Option<u16>,
        force: bool,
    ) -> Result<Host> {
        let store = self.fleet.store();
        let hosts = store.hosts().await?;
        let now = hosts
            .iter()
            .find(|h| h.name == name.as_str())
            .ok_or_else(|| StoreError::NotFound("host", name.to_string()))?;
        check_place(
            name,
            address.as_deref().unwrap_or(&now.address),
            port.unwrap_or(now.port),
            force,
            hosts_at(&hosts),
        )?;
        self.move_host(name, address, port).await
    }

    /// Changes where a host is reached, checked already; returns the host as it is now.
    pub(super) async fn move_host(
        &self,
        name: &HostName,
        address: Option<String>,
        port: Option<u16>,
    ) -> Result<Host> {
        let store = self.fleet.store();
        store.set_address(name, address.as_deref(), port).await?;
        self.fleet.forget(name).await;
        let host = store.host(name).await?;
        let detail = format!("address {}:{}", host.address, host.port);
        self.record(Some(name), EventKind::HostChanged, &detail)
            .await?;
        Ok(host)
    }

    /// Includes a host in actions again (`true`), or leaves it out of every action.
    pub async fn set_enabled(&self, name: &HostName, enabled: bool) -> Result<()> {
        self.fleet.store().set_enabled(name, enabled).await?;
        let detail = if enabled { "enabled" } else { "disabled" };
        self.record(Some(name), EventKind::HostChanged, detail)
            .await
    }

    /// Pins an agent key given by hand; returns its fingerprint.
    pub async fn trust(&self, name: &HostName, key: &str) -> Result<KeyFingerprint> {
        let key = keys::parse_public(key)?;
        let fingerprint = keys::fingerprint(&key);
        self.fleet
            .store()
            .pin_agent_key(name, &keys::to_openssh(&key))
            .await?;
        self.fleet.forget(name).await;
        let detail = format!("agent key {fingerprint} set by hand");
        self.record(Some(name), EventKind::TrustChanged, &detail)
            .await?;
        Ok(KeyFingerprint::of(name, fingerprint))
    }

    /// Pins the key the agent presented and was refused; returns its fingerprint.
    pub async fn approve(&self, name: &HostName) -> Result<KeyFingerprint> {
        let store = self.fleet.store();
        let pending = store
            .host(name)
            .await?
            .trust
            .pending_key
            .ok_or_else(|| OpsError::Conflict(format!("{name} has no pending key")))?;
        let fingerprint = keys::fingerprint(&keys::parse_public(&pending)?);
        store.pin_agent_key(name, &pending).await?;
        self.fleet.forget(name).await;
        let detail = format!("pending agent key {fingerprint} approved");
        self.record(Some(name), EventKind::TrustChanged, &detail)
            .await?;
        Ok(KeyFingerprint::of(name, fingerprint))
    }

    /// Drops the key the agent presented and was refused, leaving the host as it was (its
    /// pinned key, if any, stays); returns the dropped key's fingerprint. The agent is refused
    /// again, and its key held anew, the next time it presents it.
    pub async fn deny(&self, name: &HostName) -> Result<KeyFingerprint> {
        let store = self.fleet.store();
        let no_pending = || OpsError::Conflict(format!("{name} has no pending key"));
        let pending = store
            .host(name)
            .await?
            .trust
            .pending_key
            .ok_or_else(no_pending)?;
        let fingerprint = pending_fingerprint(&pending);
        if !store.drop_pending_key(name, &pending).await? {
            return Err(OpsError::Conflict(format!(
                "{name}'s pending key changed meanwhile: look again"
            )));
        }
        self.fleet.forget(name).await;
        let detail = format!("pending agent key {fingerprint} denied");
        self.record(Some(name), EventKind::TrustChanged, &detail)
            .await?;
        Ok(KeyFingerprint::of(name, fingerprint))
    }

    /// The server key a host's agent must trust, in OpenSSH form.
    pub async fn server_key(&self, name: &HostName) -> Result<ServerKey> {
        self.fleet.store().host(name).await?;
        Ok(ServerKey {
            host: name.to_string(),
            server_key: keys::to_openssh(self.fleet.host_key(name).await?.public_key()),
        })
    }
}

/// Hosts on one page when the request says no `limit`.
const DEFAULT_PAGE: usize = 100;
/// Most hosts on one page.
pub const MAX_PAGE: usize = 1000;

/// Which hosts to list, a page at a time.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HostQuery {
    /// At most this many (1 to 1000; default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// Those whose name comes after this one: the `next` of the page before.
    pub after: Option<String>,
    /// Only those whose name contains this.
    pub name: Option<String>,
    /// Only the members of this group.
    pub group: Option<String>,
    /// Only the hosts in this state.
    pub state: Option<HostState>,
    /// Only the hosts whose facts match this selector (`arch=mips`, `flash_free<2MiB`),
    /// repeated for each (all must match); hosts without facts yet are left out
    /// (`left_out`).
    #[serde(default, rename = "where")]
    #[param(rename = "where", max_items = 16)]
    pub selectors: Vec<String>,
}

/// A host as listed: with the fingerprint of its pending key, if any.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HostEntry {
    /// The host.
    #[serde(flatten)]
    pub host: Host,
    /// The fingerprint (`SHA256:…`) of the key its agent presented that is not the pinned
    /// one, waiting to be approved or denied; none without one.
    pub pending_fingerprint: Option<String>,
    /// Whether its agent is older than the newest the server has (`newest_agent`).
    #[serde(default)]
    pub behind: bool,
    /// The newest agent version the server has, if it has binaries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_agent: Option<String>,
}

impl From<Host> for HostEntry {
    fn from(host: Host) -> HostEntry {
        let pending_fingerprint = host.trust.pending_key.as_deref().map(pending_fingerprint);
        HostEntry {
            host,
            pending_fingerprint,
            behind: false,
            newest_agent: None,
        }
    }
}

impl HostEntry {
    /// This entry, saying whether its agent is behind `newest`, the newest the server has.
    pub fn against(mut self, newest: Option<&str>) -> HostEntry {
        self.behind = crate::agents::behind(self.host.status.agent_version.as_deref(), newest);
        self.newest_agent = newest.map(str::to_owned);
        self
    }
}

/// One page of hosts, by name.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HostPage {
    /// The hosts.
    pub hosts: Vec<HostEntry>,
    /// The `after` of the next page; none on the last.
    pub next: Option<String>,
    /// The hosts (on any page) the other filters chose that the `where` selectors left out
    /// because their agent has not reported the fact yet.
    #[serde(default)]
    pub left_out: Vec<String>,
}

impl Ops {
    /// The page of hosts (by name) that `query` asks for: `Invalid` for a limit outside 1 to
    /// [`MAX_PAGE`].
    pub async fn host_page(&self, query: &HostQuery) -> Result<HostPage> {
        let limit = query.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(OpsError::Invalid(format!("limit must be 1 to {MAX_PAGE}")));
        }
        self.choose(query, limit).await
    }

    /// Every host whose facts match `selectors` (all when there are none), by name, each
    /// saying whether its agent is behind the newest the server has; and those the selectors
    /// left out (no facts yet).
    pub async fn host_entries(&self, selectors: &[String]) -> Result<HostPage> {
        let query = HostQuery {
            selectors: selectors.to_vec(),
            ..HostQuery::default()
        };
        self.choose(&query, usize::MAX).await
    }

    /// At most `limit` of the hosts (by name) that `query` chooses, each saying whether its
    /// agent is behind the newest the server has, with those its selectors left out. The
    /// store applies the name, group, state and `after` filters and the limit; `where`
    /// selectors judge facts, so with them every host the store's filters keep is read, a
    /// batch at a time, and those left out are named on every page, not only up to this one.
    async fn choose(&self, query: &HostQuery, limit: usize) -> Result<HostPage> {
        self.choose_in(query, limit, SELECTED_BATCH).await
    }

    /// [`Ops::choose`], reading `batch` hosts at a time while selectors choose among them.
    async fn choose_in(&self, query: &HostQuery, limit: usize, batch: usize) -> Result<HostPage> {
        let selectors =
            Selector::parse_all(&query.selectors).map_err(|e| OpsError::Invalid(e.to_string()))?;
        let mut filter = HostFilter {
            after: None,
            name: query.name.clone(),
            group: query.group.clone(),
            state: query.state,
        };
        let batch = match selectors.is_empty() {
            true => {
                filter.after = query.after.clone();
                limit.saturating_add(1)
            }
            false => batch,
        };
        let (mut hosts, mut left_out, mut more) = (Vec::new(), Vec::new(), false);
        loop {
            let read = self.fleet.store().host_page(&filter, batch).await?;
            let last = match read.len() < batch {
                true => None,
                false => read.last().map(|h| h.name.clone()),
            };
            for host in read {
                let judged: Option<Vec<bool>> =
                    selectors.iter().map(|s| s.judge(&host.status)).collect();
                match judged {
                    None => left_out.push(host.name),
                    Some(all) if !all.iter().all(|&b| b) => {}
                    Some(_) if query.after.as_ref().is_some_and(|a| host.name <= *a) => {}
                    Some(_) if hosts.len() < limit => hosts.push(HostEntry::from(host)),
                    Some(_) => more = true,
                }
            }
            match last {
                Some(last) if !(more && selectors.is_empty()) => filter.after = Some(last),
                _ => break,
            }
        }
        let next = match more {
            true => hosts.last().map(|h| h.host.name.clone()),
            false => None,
        };
        let newest = self.newest_agent().await;
        let hosts = hosts
            .into_iter()
            .map(|e| e.against(newest.as_deref()))
            .collect();
        Ok(HostPage {
            hosts,
            next,
            left_out,
        })
    }
}

/// Hosts read from the store at once while `where` selectors choose among them.
const SELECTED_BATCH: usize = 1000;

/// The fingerprint of a pending key as stored (it was parsed when the agent presented it; a
/// row that does not parse says so instead).
pub fn pending_fingerprint(key: &str) -> String {
    keys::parse_public(key)
        .map(|k| keys::fingerprint(&k))
        .unwrap_or_else(|_| "(unreadable key)".into())
}

/// Where each of `hosts` is: (name, address, port).
pub(super) fn hosts_at(hosts: &[Host]) -> impl Iterator<Item = (&str, &str, u16)> {
    hosts
        .iter()
        .map(|h| (h.name.as_str(), h.address.as_str(), h.port))
}

/// `Exists` if a host of the fleet (`hosts`) is named `name`, `Conflict` if one's name differs
/// from it only in letter case.
pub(super) fn check_new_host(name: &str, hosts: &[Host]) -> Result<()> {
    if hosts.iter().any(|h| h.name == name) {
        return Err(StoreError::Exists("host", name.to_string()).into());
    }
    match names::case_clash(name, hosts.iter().map(|h| h.name.as_str())) {
        Some(other) => Err(case_clash(Kind::Host, name, other)),
        None => Ok(()),
    }
}

/// The configuration settings given to `host deploy`, checked (all but `listen`).
fn deploy_settings(d: &DeployHost) -> Result<deploy::Settings> {
    Ok(deploy::Settings {
        listen: None,
        allow_from: match d.allow_from.is_empty() {
            true => None,
            false => Some(deploy::check_allow_from(&d.allow_from)?),
        },
        call_home: d
            .call_home
            .as_deref()
            .map(deploy::check_call_home)
            .transpose()?,
    })
}

/// What `deploy::deploy` is given for `d`.
fn deploy_options(
    d: &DeployHost,
    agent_port: u16,
    settings: deploy::Settings,
    pinned: Option<PublicKey>,
) -> DeployOptions {
    DeployOptions {
        name: d.name.to_string(),
        destination: d.destination.clone(),
        ssh_port: d.ssh_port,
        address: d.address.clone(),
        agent_port,
        settings,
        pinned,
        dist: d.dist.clone(),
        service: d.service,
        prefix: d.prefix.clone(),
        ssh: "ssh".into(),
        ssh_args: d.ssh_args.clone(),
    }
}

/// Checks where the host `name` is to be reached: an address and port that can be dialled,
/// and, unless `force`, that no other host of `hosts` (name, address, port) is there.
pub(super) fn check_place<'a>(
    name: &str,
    address: &str,
    port: u16,
    force: bool,
    mut hosts: impl Iterator<Item = (&'a str, &'a str, u16)>,
) -> Result<()> {
    names::check_address(address)?;
    names::check_port(port)?;
    let place = names::same_place(address);
    let other =
        hosts.find(|&(other, at, p)| other != name && p == port && names::same_place(at) == place);
    match other {
        Some((other, ..)) if !force => Err(shared_place(other, address, port)),
        _ => Ok(()),
    }
}

/// The conflict of a host at `address`:`port`, where the host `other` is already.
pub(super) fn shared_place(other: &str, address: &str, port: u16) -> OpsError {
    OpsError::Conflict(format!(
        "{} (force it to have two hosts there)",
        same_address(other, address, port)
    ))
}

/// Checks the groups of `groups` that `existing` lacks, to be made: each name follows the
/// rule and differs from no other group's (nor from one made before it) only in letter case.
pub(super) fn check_new_groups(groups: &[String], existing: &[String]) -> Result<()> {
    let mut known: Vec<&str> = existing.iter().map(String::as_str).collect();
    for g in groups {
        if known.contains(&g.as_str()) {
            continue;
        }
        Kind::Group.check(g)?;
        if let Some(other) = names::case_clash(g, known.iter().copied()) {
            return Err(case_clash(Kind::Group, g, other));
        }
        known.push(g);
    }
    Ok(())
}

/// The `host-added` detail: where it is, and how its agent key will be known.
fn added_detail(host: &NewHost) -> String {
    let trust = match (&host.agent_key, host.pin_on_first_contact) {
        (Some(_), _) => "agent key given",
        (None, true) => "agent key to be pinned on first contact",
        (None, false) => "no agent key yet",
    };
    format!("{}:{}, {trust}", host.address, host.port)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Facts;
    use crate::ops::ErrorKind;
    use crate::ops::testing::{ev, fixture, has_server_key, last, logged, new_r1};

    fn names(page: &HostPage) -> Vec<&str> {
        page.hosts.iter().map(|h| h.host.name.as_str()).collect()
    }

    #[tokio::test]
    async fn pages_follow_each_other_and_selectors_name_those_left_out_on_every_page() {
        let (_dir, ops) = fixture().await;
        let store = ops.fleet.store();
        for name in ["r1", "r2", "r3", "r4", "r5", "r6"] {
            store
                .add_host(&crate::store::suite::host(name))
                .await
                .unwrap();
        }
        for (name, arch) in [
            ("r1", "mips"),
            ("r2", "mips"),
            ("r3", "arm"),
            ("r4", "mips"),
        ] {
            let facts = Facts {
                arch: arch.into(),
                ..crate::store::suite::facts(name, 1, 5_120)
            };
            store
                .heartbeat_ok(name, "0.1.0", &facts, 1.0)
                .await
                .unwrap();
        }
        let query = |limit: usize, after: Option<&str>, selectors: &[&str]| HostQuery {
            limit: Some(limit),
            after: after.map(str::to_owned),
            selectors: selectors.iter().map(|s| s.to_string()).collect(),
            ..HostQuery::default()
        };
        // Without selectors the store's pages follow each other.
        let first = ops.host_page(&query(4, None, &[])).await.unwrap();
        assert_eq!(names(&first), ["r1", "r2", "r3", "r4"]);
        assert_eq!(first.next.as_deref(), Some("r4"));
        let second = ops
            .host_page(&query(4, first.next.as_deref(), &[]))
            .await
            .unwrap();
        assert_eq!(
            (names(&second), second.next.as_deref()),
            (vec!["r5", "r6"], None)
        );
        // With them, read two at a time: r5 and r6 have no facts yet, on every page.
        for batch in [2, SELECTED_BATCH] {
            let mips = ops
                .choose_in(&query(2, None, &["arch=mips"]), 2, batch)
                .await
                .unwrap();
            assert_eq!(names(&mips), ["r1", "r2"], "batch {batch}");
            assert_eq!(mips.next.as_deref(), Some("r2"));
            assert_eq!(mips.left_out, ["r5", "r6"]);
            let rest = ops
                .choose_in(&query(2, Some("r2"), &["arch=mips"]), 2, batch)
                .await
                .unwrap();
            assert_eq!((names(&rest), rest.next.as_deref()), (vec!["r4"], None));
            assert_eq!(rest.left_out, ["r5", "r6"]);
        }
        let all = ops.host_entries(&["arch=mips".into()]).await.unwrap();
        assert_eq!(names(&all), ["r1", "r2", "r4"]);
        for limit in [0, MAX_PAGE + 1] {
            let bad = ops.host_page(&query(limit, None, &[])).await;
            assert_eq!(bad.unwrap_err().kind(), ErrorKind::Invalid);
        }
        let bad = ops.host_page(&query(1, None, &["no_such_fact=1"])).await;
        assert_eq!(bad.unwrap_err().kind(), ErrorKind::Invalid);
    }

    fn agent_key() -> String {
        keys::to_openssh(keys::generate().unwrap().public_key())
    }

    #[tokio::test]
    async fn a_host_is_added_with_its_key_and_groups_and_recorded() {
        let (_dir, ops) = fixture().await;
        let added = ops
            .add_host(AddHost {
                groups: vec!["lab".into()],
                ..new_r1()
            })
            .await
            .unwrap();
        assert_eq!(added.host, "r1");
        assert!(has_server_key(&ops, "r1").await);
        let r1 = HostName::parse("r1").unwrap();
        let detail = ops.host(&r1).await.unwrap();
        assert_eq!(detail.server_key, added.server_key);
        assert_eq!(detail.host.groups, ["lab"]);
        assert_eq!(
            ops.server_key(&r1).await.unwrap().server_key,
            added.server_key
        );
        assert_eq!(
            logged(&ops).await,
            [
                ev(
                    "r1",
                    "host-added",
                    "192.0.2.1:12444, agent key to be pinned on first contact"
                ),
                ev("", "group-changed", "group lab added"),
                ev("r1", "group-changed", "r1 added to lab"),
            ]
        );

        // Taken: refused, and the first host's key is kept.
        let again = ops.add_host(new_r1()).await.unwrap_err();
        assert_eq!(again.kind(), ErrorKind::Conflict);
        assert_eq!(
            ops.server_key(&r1).await.unwrap().server_key,
            added.server_key
        );
        // A key that does not parse: refused before anything is made.
        let bad = ops
            .add_host(AddHost {
                name: "r2".into(),
                agent_key: Some("ssh-ed25519 nonsense".into()),
                ..new_r1()
            })
            .await
            .unwrap_err();
        assert_eq!(bad.kind(), ErrorKind::Invalid);
        assert!(!has_server_key(&ops, "r2").await);
        assert_eq!(logged(&ops).await.len(), 3);
        let missing = HostName::parse("r9").unwrap();
        assert_eq!(
            ops.host(&missing).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            ops.server_key(&missing).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }

    /// A host whose agent was given its server key before the host was added (the demo's):
    /// the key made is the one kept, and the addition is recorded as any other.
    #[tokio::test]
    async fn a_host_whose_server_key_is_made_first_is_added_and_recorded() {
        let (_dir, ops) = fixture().await;
        let made = ops.fleet.create_host_key("r1").await.unwrap();
        let added = ops
            .add_keyed_host(AddHost {
                agent_key: Some(agent_key()),
                pin_on_first_contact: false,
                groups: vec!["lab".into()],
                ..new_r1()
            })
            .await
            .unwrap();
        assert_eq!(added.server_key, keys::to_openssh(&made));
        assert_eq!(
            logged(&ops).await,
            [
                ev("r1", "host-added", "192.0.2.1:12444, agent key given"),
                ev("", "group-changed", "group lab added"),
                ev("r1", "group-changed", "r1 added to lab"),
            ]
        );
        // No key made: a mistake of the caller's, refused; nothing added or recorded.
        let r2 = HostName::parse("r2").unwrap();
        let unkeyed = ops
            .add_keyed_host(AddHost {
                name: r2.to_string(),
                address: "192.0.2.2".into(),
                ..new_r1()
            })
            .await
            .unwrap_err();
        assert_eq!(unkeyed.kind(), ErrorKind::Internal, "{unkeyed}");
        assert_eq!(ops.host(&r2).await.unwrap_err().kind(), ErrorKind::NotFound);
        assert!(!has_server_key(&ops, "r2").await);
        assert_eq!(logged(&ops).await.len(), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn adds_from_many_tasks_are_each_recorded() {
        let (_dir, ops) = fixture().await;
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let ops = ops.clone();
                tokio::spawn(async move {
                    let name = format!("r{i}");
                    let address = format!("192.0.2.{i}");
                    let add = AddHost {
                        name,
                        address,
                        ..new_r1()
                    };
                    ops.add_host(add).await.unwrap();
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(ops.hosts().await.unwrap().len(), 50);
        let events = logged(&ops).await;
        assert_eq!(events.len(), 50);
        assert!(
            events
                .iter()
                .all(|(actor, _, kind, _)| actor == "cli:alice" && kind == "host-added")
        );
    }

    #[tokio::test]
    async fn a_host_is_changed_trusted_and_removed_and_each_is_recorded() {
        let (_dir, ops) = fixture().await;
        ops.add_host(new_r1()).await.unwrap();
        let r1 = HostName::parse("r1").unwrap();

        let host = ops.set_address(&r1, None, Some(2222), false).await.unwrap();
        assert_eq!((host.address.as_str(), host.port), ("192.0.2.1", 2222));
        assert_eq!(
            last(&ops).await,
            ev("r1", "host-changed", "address 192.0.2.1:2222")
        );
        ops.set_enabled(&r1, false).await.unwrap();
        assert!(!ops.host(&r1).await.unwrap().host.enabled);
        assert_eq!(last(&ops).await, ev("r1", "host-changed", "disabled"));
        ops.set_enabled(&r1, true).await.unwrap();
        assert_eq!(last(&ops).await, ev("r1", "host-changed", "enabled"));

        let key = agent_key();
        let fingerprint = ops.trust(&r1, &key).await.unwrap().fingerprint;
        assert_eq!(
            ops.host(&r1).await.unwrap().host.trust.agent_key.as_deref(),
            Some(key.as_str())
        );
        assert_eq!(
            last(&ops).await,
            ev(
                "r1",
                "trust-changed",
                &format!("agent key {fingerprint} set by hand")
            )
        );
        let bad = ops.trust(&r1, "not a key").await.unwrap_err();
        assert_eq!(bad.kind(), ErrorKind::Invalid);

        // Approving needs a pending key.
        let none = ops.approve(&r1).await.unwrap_err();
        assert_eq!(none.kind(), ErrorKind::Conflict);
        let presented = agent_key();
        ops.fleet
            .store()
            .set_pending_key("r1", &presented, "SHA256:x")
            .await
            .unwrap();
        // Denied: dropped, the pinned key kept, recorded; then nothing is left to deny.
        let pinned = ops.host(&r1).await.unwrap().host.trust.agent_key;
        let denied = ops.deny(&r1).await.unwrap().fingerprint;
        assert_eq!(denied, pending_fingerprint(&presented));
        let trust = ops.host(&r1).await.unwrap().host.trust;
        assert_eq!((trust.pending_key, trust.agent_key), (None, pinned));
        assert_eq!(
            last(&ops).await,
            ev(
                "r1",
                "trust-changed",
                &format!("pending agent key {denied} denied")
            )
        );
        assert_eq!(ops.deny(&r1).await.unwrap_err().kind(), ErrorKind::Conflict);
        ops.fleet
            .store()
            .set_pending_key("r1", &presented, "SHA256:x")
            .await
            .unwrap();
        let fingerprint = ops.approve(&r1).await.unwrap().fingerprint;
        let trust = ops.host(&r1).await.unwrap().host.trust;
        assert_eq!(trust.agent_key.as_deref(), Some(presented.as_str()));
        assert_eq!(trust.pending_key, None);
        assert_eq!(
            last(&ops).await,
            ev(
                "r1",
                "trust-changed",
                &format!("pending agent key {fingerprint} approved")
            )
        );

        let r9 = HostName::parse("r9").unwrap();
        let kind = |e: OpsError| e.kind();
        assert_eq!(
            ops.set_address(&r9, Some("x".into()), None, false)
                .await
                .map_err(kind)
                .err(),
            Some(ErrorKind::NotFound)
        );
        assert_eq!(
            ops.set_enabled(&r9, true).await.map_err(kind).err(),
            Some(ErrorKind::NotFound)
        );
        assert_eq!(
            ops.trust(&r9, &key).await.map_err(kind).err(),
            Some(ErrorKind::NotFound)
        );

        assert_eq!(ops.remove_host("r1", false).await.unwrap(), Removal::Host);
        assert!(!has_server_key(&ops, "r1").await);
        assert_eq!(last(&ops).await, ev("r1", "host-removed", "removed"));
        assert_eq!(
            ops.remove_host("r1", false).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }

    #[tokio::test]
    async fn a_host_the_store_refuses_leaves_no_server_key() {
        let (dir, ops) = fixture().await;
        rusqlite::Connection::open(dir.path().join("otto.db"))
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER refuse BEFORE INSERT ON hosts BEGIN SELECT RAISE(ABORT, 'full'); END;",
            )
            .unwrap();
        assert!(ops.add_host(new_r1()).await.is_err());
        assert!(!has_server_key(&ops, "r1").await);
        assert!(logged(&ops).await.is_empty());
    }

    #[tokio::test]
    async fn a_row_whose_name_breaks_the_rule_is_removed_without_touching_a_file() {
        let (dir, ops) = fixture().await;
        let outside = dir.path().join("x.key");
        std::fs::write(&outside, "precious").unwrap();
        rusqlite::Connection::open(dir.path().join("otto.db"))
            .unwrap()
            .execute(
                "INSERT INTO hosts (name, address, port) VALUES ('../x', 'h', 1)",
                [],
            )
            .unwrap();
        assert_eq!(
            ops.remove_host("../x", false).await.unwrap(),
            Removal::RowOnly
        );
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "precious");
        assert!(ops.hosts().await.unwrap().is_empty());
        assert_eq!(
            last(&ops).await,
            ev(
                "../x",
                "host-removed",
                "removed from the database only (its name breaks the rule)"
            )
        );
        // Gone now: the name is refused as a name.
        let again = ops.remove_host("../x", false).await.unwrap_err();
        assert_eq!(again.kind(), ErrorKind::Invalid);
    }
}
