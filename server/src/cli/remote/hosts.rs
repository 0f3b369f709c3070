//! `host …` and `group …` through `serve`.

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::model::{Group, Host, Scope};
use crate::ops::Imported;
use crate::print::Printer;

use super::super::CliError;
use super::super::groups::{GroupCommand, names};
use super::super::hosts::{HostCommand, read_inventory};
use super::{Remote, local_only, segment};

impl Remote {
    /// `host …`, but `deploy`.
    pub async fn host(&self, out: &Printer, command: HostCommand) -> Result<(), CliError> {
        let host_path = |name: &str, what: &str| format!("/api/v1/hosts/{}{what}", segment(name));
        match command {
            HostCommand::Deploy(_) => {
                return Err(local_only(
                    "`host deploy`",
                    "it installs the agent over the device's own SSH from the machine it runs \
                     on, and keeps the host's key in that machine's data directory",
                ));
            }
            HostCommand::List => {
                let mut hosts = Vec::new();
                let mut after = None;
                loop {
                    let mut query = vec![("limit", "1000".to_string())];
                    query.extend(after.map(|a| ("after", a)));
                    let page: HostPage = self.get("/api/v1/hosts", &query).await?;
                    hosts.extend(page.hosts);
                    match page.next {
                        Some(next) => after = Some(next),
                        None => break,
                    }
                }
                out.hosts(&hosts);
            }
            HostCommand::Show { name } => {
                let view: HostView = self.get(&host_path(name.as_str(), ""), &[]).await?;
                out.host_detail(&view.host, &view.server_key);
            }
            HostCommand::Add {
                name,
                address,
                port,
                agent_key,
                pin_on_first_contact,
                groups,
                force,
            } => {
                let body = json!({
                    "name": name.as_str(),
                    "address": address,
                    "port": port,
                    "agent_key": agent_key,
                    "pin_on_first_contact": pin_on_first_contact,
                    "groups": groups,
                    "force": force,
                });
                let added: AddedHost = self.call(Method::POST, "/api/v1/hosts", &body).await?;
                out.host_added(&added.host, &added.server_key);
            }
            HostCommand::Import {
                file,
                format,
                dry_run,
                pin_on_first_contact,
            } => {
                let (text, format) = read_inventory(&file, format)?;
                let body = json!({
                    "format": format,
                    "text": text,
                    "dry_run": dry_run,
                    "pin_on_first_contact": pin_on_first_contact,
                });
                let imported: Imported = self.call(Method::POST, "/api/v1/imports", &body).await?;
                out.imported(&imported);
            }
            HostCommand::Remove { names, force } => {
                for name in names {
                    self.refuse_losing_variables(&Scope::Host(name.clone()), force)
                        .await?;
                    self.send(Method::DELETE, &host_path(&name, ""), &Value::Null)
                        .await?;
                    out.say(&format!("removed {name}"));
                }
            }
            HostCommand::Set {
                name,
                address,
                port,
                force,
            } => {
                let body = json!({ "address": address, "port": port, "force": force });
                let path = host_path(name.as_str(), "");
                let host: Host = self.call(Method::PATCH, &path, &body).await?;
                out.say(&format!("{name} is at {}:{}", host.address, host.port));
            }
            HostCommand::Enable { name } => {
                let path = host_path(name.as_str(), "/enable");
                self.send(Method::POST, &path, &Value::Null).await?;
                out.say(&format!("{name} enabled"));
            }
            HostCommand::Disable { name } => {
                let path = host_path(name.as_str(), "/disable");
                self.send(Method::POST, &path, &Value::Null).await?;
                out.say(&format!("{name} disabled"));
            }
            HostCommand::Trust { name, key } => {
                let path = host_path(name.as_str(), "/trust");
                let pinned: Fingerprint = self
                    .call(Method::POST, &path, &json!({ "key": key }))
                    .await?;
                out.say(&format!("{name}: agent key {} pinned", pinned.fingerprint));
            }
            HostCommand::Approve { name } => {
                let path = host_path(name.as_str(), "/approve");
                let pinned: Fingerprint = self.call(Method::POST, &path, &Value::Null).await?;
                out.say(&format!("{name}: agent key {} pinned", pinned.fingerprint));
            }
            HostCommand::Deny { name } => {
                let path = host_path(name.as_str(), "/deny");
                let denied: Fingerprint = self.call(Method::POST, &path, &Value::Null).await?;
                let fingerprint = denied.fingerprint;
                out.say(&format!("{name}: pending agent key {fingerprint} denied"));
            }
            HostCommand::Key { name } => {
                let key: ServerKey = self.get(&host_path(name.as_str(), "/key"), &[]).await?;
                out.server_key(name.as_str(), &key.server_key);
            }
        }
        Ok(())
    }

    /// `group …`.
    pub async fn group(&self, out: &Printer, command: GroupCommand) -> Result<(), CliError> {
        let group_path = |name: &str| format!("/api/v1/groups/{}", segment(name));
        match command {
            GroupCommand::List => out.groups(&self.get::<Vec<Group>>("/api/v1/groups", &[]).await?),
            GroupCommand::Add { name } => {
                let body = json!({ "name": name });
                self.send(Method::POST, "/api/v1/groups", &body).await?;
                out.say(&format!("group {name} added"));
            }
            GroupCommand::Remove { name, force } => {
                self.refuse_losing_variables(&Scope::Group(name.clone()), force)
                    .await?;
                // Checked just now (or to go with it): the server need not ask again.
                let path = format!("{}?force=true", group_path(&name));
                self.send(Method::DELETE, &path, &Value::Null).await?;
                out.say(&format!("group {name} removed"));
            }
            GroupCommand::AddHost { group, hosts } => {
                for host in &hosts {
                    let path = format!("{}/hosts/{host}", group_path(&group));
                    self.send(Method::PUT, &path, &Value::Null).await?;
                }
                out.say(&format!("{} added to {group}", names(&hosts)));
            }
            GroupCommand::RemoveHost { group, hosts } => {
                for host in &hosts {
                    let path = format!("{}/hosts/{host}", group_path(&group));
                    self.send(Method::DELETE, &path, &Value::Null).await?;
                }
                out.say(&format!("{} taken out of {group}", names(&hosts)));
            }
            GroupCommand::AddScript { group, script } => {
                let path = format!("{}/scripts/{}", group_path(&group), segment(&script));
                self.send(Method::PUT, &path, &Value::Null).await?;
                out.say(&format!("{script} assigned to {group}"));
            }
            GroupCommand::RemoveScript { group, script } => {
                let path = format!("{}/scripts/{}", group_path(&group), segment(&script));
                self.send(Method::DELETE, &path, &Value::Null).await?;
                out.say(&format!("{script} taken from {group}"));
            }
        }
        Ok(())
    }
}

/// A page of `GET /api/v1/hosts`.
#[derive(Deserialize)]
struct HostPage {
    hosts: Vec<Host>,
    next: Option<String>,
}

/// `GET /api/v1/hosts/{name}`.
#[derive(Deserialize)]
struct HostView {
    #[serde(flatten)]
    host: Host,
    server_key: String,
}

/// `POST /api/v1/hosts`.
#[derive(Deserialize)]
struct AddedHost {
    host: String,
    server_key: String,
}

/// A key pinned or dropped: `POST /api/v1/hosts/{name}/trust`, `approve`, `deny`.
#[derive(Deserialize)]
struct Fingerprint {
    fingerprint: String,
}

/// `GET /api/v1/hosts/{name}/key`.
#[derive(Deserialize)]
struct ServerKey {
    server_key: String,
}
