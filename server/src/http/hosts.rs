//! `/api/v1/hosts`: the fleet's hosts, listed page by page and filtered, one in full (with the
//! fingerprint of a key its agent presented that waits for approval), added, changed, enabled
//! and disabled, trusted (a key given, or the pending one approved or denied), imported from an
//! inventory, and removed.

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Auth, need};
use super::error::{ApiError, ErrorBody, Json, Path, Query};
use crate::model::Host;
use crate::names::HostName;
use crate::ops::{AddHost, Format, ImportHosts, Imported, OpsError, pending_fingerprint};

/// Hosts on one page when the request says no `limit`.
const DEFAULT_LIMIT: usize = 100;
/// Most hosts on one page.
const MAX_LIMIT: usize = 1000;

/// Which hosts to list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HostQuery {
    /// At most this many (1 to 1000; default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Those whose name comes after this one: the `next` of the page before.
    after: Option<String>,
    /// Only those whose name contains this.
    name: Option<String>,
    /// Only the members of this group.
    group: Option<String>,
    /// Only the hosts in this state.
    state: Option<HostState>,
}

/// What can be said of a host at a glance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum HostState {
    /// Enabled, and its last heartbeat was answered.
    Reachable,
    /// Enabled, and its last heartbeat failed.
    Unreachable,
    /// Enabled, and never tried yet.
    Unknown,
    /// Its agent presented a key waiting for approval.
    Pending,
    /// Left out of every action.
    Disabled,
}

impl HostState {
    /// Whether `host` is in this state.
    fn holds(self, host: &Host) -> bool {
        match self {
            HostState::Pending => host.trust.pending_key.is_some(),
            HostState::Disabled => !host.enabled,
            HostState::Reachable => host.enabled && host.status.reachable == Some(true),
            HostState::Unreachable => host.enabled && host.status.reachable == Some(false),
            HostState::Unknown => host.enabled && host.status.reachable.is_none(),
        }
    }
}

/// A host as the API answers it: with the fingerprint of its pending key, if any.
#[derive(Debug, Serialize, ToSchema)]
pub struct HostEntry {
    /// The host.
    #[serde(flatten)]
    pub host: Host,
    /// The fingerprint (`SHA256:…`) of the key its agent presented that is not the pinned
    /// one, waiting to be approved or denied; none without one.
    pub pending_fingerprint: Option<String>,
}

impl From<Host> for HostEntry {
    fn from(host: Host) -> HostEntry {
        let pending_fingerprint = host.trust.pending_key.as_deref().map(pending_fingerprint);
        HostEntry {
            host,
            pending_fingerprint,
        }
    }
}

/// One page of hosts, by name.
#[derive(Debug, Serialize, ToSchema)]
pub struct HostPage {
    /// The hosts.
    pub hosts: Vec<HostEntry>,
    /// The `after` of the next page; none on the last.
    pub next: Option<String>,
}

/// One host in full.
#[derive(Debug, Serialize, ToSchema)]
pub struct HostView {
    /// The host.
    #[serde(flatten)]
    pub host: HostEntry,
    /// The server key its agent must trust, in OpenSSH form.
    pub server_key: String,
}

/// A host to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHost {
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

fn default_port() -> u16 {
    otto_proto::DEFAULT_PORT
}

/// A host just added.
#[derive(Debug, Serialize, ToSchema)]
pub struct AddedHost {
    /// Its name.
    pub host: String,
    /// The server key its agent must trust (`otto-agent trust …`), in OpenSSH form.
    pub server_key: String,
}

/// The page of `hosts` (sorted by name) that `query` asks for.
fn page(hosts: Vec<Host>, query: &HostQuery) -> Result<HostPage, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        let message = format!("limit must be 1 to {MAX_LIMIT}");
        return Err(OpsError::Invalid(message).into());
    }
    let mut chosen = hosts.into_iter().filter(|h| {
        query.after.as_ref().is_none_or(|after| h.name > *after)
            && query
                .name
                .as_ref()
                .is_none_or(|n| h.name.contains(n.as_str()))
            && query.group.as_ref().is_none_or(|g| h.groups.contains(g))
            && query.state.is_none_or(|s| s.holds(h))
    });
    let hosts: Vec<HostEntry> = chosen.by_ref().take(limit).map(HostEntry::from).collect();
    let next = match chosen.next() {
        Some(_) => hosts.last().map(|h| h.host.name.clone()),
        None => None,
    };
    Ok(HostPage { hosts, next })
}

/// Lists hosts by name, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/hosts",
    tag = "hosts",
    params(HostQuery),
    responses(
        (status = 200, description = "A page of hosts", body = HostPage),
        (status = 400, description = "A bad query", body = ErrorBody),
        (status = 401, description = "No API key that works", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list(
    auth: Auth,
    Query(query): Query<HostQuery>,
) -> Result<axum::Json<HostPage>, ApiError> {
    let hosts = auth.ops().hosts().await?;
    Ok(axum::Json(page(hosts, &query)?))
}

/// One host in full, with its server key.
#[utoipa::path(
    get,
    path = "/api/v1/hosts/{name}",
    tag = "hosts",
    params(("name" = String, Path, min_length = 1, max_length = 63, pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]*$", description = "The host's name")),
    responses(
        (status = 200, description = "The host", body = HostView),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 404, description = "No such host", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn show(auth: Auth, Path(name): Path<String>) -> Result<axum::Json<HostView>, ApiError> {
    let name = HostName::parse(&name).map_err(OpsError::from)?;
    let detail = auth.ops().host(&name).await?;
    Ok(axum::Json(HostView {
        host: HostEntry::from(detail.host),
        server_key: detail.server_key,
    }))
}

/// Adds a host with a new server key, for its agent to trust.
#[utoipa::path(
    post,
    path = "/api/v1/hosts",
    tag = "hosts",
    request_body = NewHost,
    responses(
        (status = 201, description = "Added", body = AddedHost),
        (status = 400, description = "Malformed JSON, or a bad name, address, port or key", body = ErrorBody),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 403, description = "Without the permission `hosts`", body = ErrorBody),
        (status = 409, description = "The name is taken (or one differing only in letter case), or another host is at that address and port (unless forced)", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 422, description = "A missing field, an unknown one, or a wrong type", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn add(
    auth: Auth<need::Hosts>,
    Json(new): Json<NewHost>,
) -> Result<(StatusCode, axum::Json<AddedHost>), ApiError> {
    let ops = auth.ops();
    let added = ops
        .add_host(AddHost {
            name: HostName::parse(&new.name).map_err(OpsError::from)?,
            address: new.address,
            port: new.port,
            agent_key: new.agent_key,
            pin_on_first_contact: new.pin_on_first_contact,
            groups: new.groups,
            force: new.force,
        })
        .await?;
    let added = AddedHost {
        host: added.host,
        server_key: added.server_key,
    };
    Ok((StatusCode::CREATED, axum::Json(added)))
}

/// Removes a host and its server key (its history stays).
#[utoipa::path(
    delete,
    path = "/api/v1/hosts/{name}",
    tag = "hosts",
    params(("name" = String, Path, min_length = 1, max_length = 63, pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]*$", description = "The host's name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 403, description = "Without the permission `hosts`", body = ErrorBody),
        (status = 404, description = "No such host", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn remove(
    auth: Auth<need::Hosts>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth.ops().remove_host(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Where a host is reached, changed: what is given.
#[derive(Debug, Deserialize, ToSchema)]
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
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentKey {
    /// The agent's key, `ssh-ed25519 AAAA…` (from `otto-agent pubkey`).
    pub key: String,
}

/// A key pinned or dropped.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyFingerprint {
    /// The host.
    pub host: String,
    /// The key's fingerprint, `SHA256:…`.
    pub fingerprint: String,
}

/// The server key a host's agent must trust.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ServerKey {
    /// The host.
    pub host: String,
    /// The key, in OpenSSH form (`otto-agent trust '…'`).
    pub server_key: String,
}

/// An inventory to import.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    /// Its format: `ini` or `yaml` (Ansible's), `csv` (header `name,address,port,groups`,
    /// groups `;`-separated) or `json` (a list of objects with those fields).
    pub format: Format,
    /// Its text.
    pub text: String,
    /// Only answer the plan; change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// New hosts trust whatever key their agent presents first (only on a network you trust).
    #[serde(default)]
    pub pin_on_first_contact: bool,
}

/// The largest inventory taken (its text in a JSON body).
pub const INVENTORY_LIMIT: usize = 4 * 1024 * 1024;

/// The host named in a path, checked.
fn host_name(name: &str) -> Result<HostName, ApiError> {
    Ok(HostName::parse(name).map_err(OpsError::from)?)
}

/// Changes where a host is reached; answers the host as it is now.
#[utoipa::path(
    patch,
    path = "/api/v1/hosts/{name}",
    tag = "hosts",
    params(("name" = String, Path, min_length = 1, max_length = 63, pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]*$", description = "The host's name")),
    request_body = HostChange,
    responses(
        (status = 200, description = "Changed", body = HostEntry),
        (status = 400, description = "Malformed JSON, a bad name, address or port", body = ErrorBody),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 403, description = "Without the permission `hosts`", body = ErrorBody),
        (status = 404, description = "No such host", body = ErrorBody),
        (status = 409, description = "Another host is at that address and port (unless forced)", body = ErrorBody),
        (status = 422, description = "An unknown field, or a wrong type", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn change(
    auth: Auth<need::Hosts>,
    Path(name): Path<String>,
    Json(change): Json<HostChange>,
) -> Result<axum::Json<HostEntry>, ApiError> {
    let ops = auth.ops();
    let host = ops
        .set_address(
            &host_name(&name)?,
            change.address,
            change.port,
            change.force,
        )
        .await?;
    Ok(axum::Json(HostEntry::from(host)))
}

/// Includes a host in actions again.
#[utoipa::path(
    post,
    path = "/api/v1/hosts/{name}/enable",
    tag = "hosts",
    params(("name" = String, Path, min_length = 1, max_length = 63, pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]*$", description = "The host's name")),
    responses(
        (status = 204, description = "Enabled"),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 403, description = "Without the permission `hosts`", body = ErrorBody),
        (status = 404, description = "No such host", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn enable(
    auth: Auth<need::Hosts>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let ops = auth.ops();
    ops.set_enabled(&host_name(&name)?, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Leaves a host out of every action.
#[utoipa::path(
    post,
    path = "/api/v1/hosts/{name}/disable",
    tag = "hosts",
    params(("name" = String, Path, min_length = 1, max_length = 63, pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]*$", description = "The host's name")),
    responses(
        (status = 204, description = "Disabled"),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 403, description = "Without the permission `hosts`", body = ErrorBody),
        (status = 404, description = "No such host", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn disable(
    auth: Auth<need::Hosts>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let ops = auth.ops();
    ops.set_enabled(&host_name(&name)?, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Pins an agent key given by hand.
#[utoipa::path(
    post,
    path = "/api/v1/hosts/{name}/trust",
    tag = "hosts",
    params(("name" = String, Path, min_length = 1, max_length = 63, pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]*$", description = "The host's name")),
    request_body = AgentKey,
    responses(
        (status = 200, description = "Pinned", body = KeyFingerprint),
        (status = 400, description = "Malformed JSON, a bad name or key", body = ErrorBody),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 403, description = "Without the permission `hosts`", body = ErrorBody),
        (status = 404, description = "No such host", body = ErrorBody),
        (status = 422, description = "A missing field, an unknown one, or a wrong type", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn trust(
    auth: Auth<need::Hosts>,
    Path(name): Path<String>,
    Json(key): Json<AgentKey>,
) -> Result<axum::Json<KeyFingerprint>, ApiError> {
    let ops = auth.ops();
    let fingerprint = ops.trust(&host_name(&name)?, &key.key).await?;
    Ok(axum::Json(KeyFingerprint {
        host: name,
        fingerprint,
    }))
}

/// Pins the pending key the agent presented.
#[utoipa::path(
    post,
    path = "/api/v1/hosts/{name}/approve",
    tag = "hosts",
    params(("name" = String, Path, min_length = 1, max_length = 63, pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]*$", description = "The host's name")),
    responses(
        (status = 200, description = "Pinned", body = KeyFingerprint),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 403, description = "Without the permission `hosts`", body = ErrorBody),
        (status = 404, description = "No such host", body = ErrorBody),
        (status = 409, description = "No pending key", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn approve(
    auth: Auth<need::Hosts>,
    Path(name): Path<String>,
) -> Result<axum::Json<KeyFingerprint>, ApiError> {
    let ops = auth.ops();
    let fingerprint = ops.approve(&host_name(&name)?).await?;
    Ok(axum::Json(KeyFingerprint {
        host: name,
        fingerprint,
    }))
}

/// Drops the pending key the agent presented: the host stays as it was (its pinned key, if
/// any, kept), and the agent is refused again.
#[utoipa::path(
    post,
    path = "/api/v1/hosts/{name}/deny",
    tag = "hosts",
    params(("name" = String, Path, min_length = 1, max_length = 63, pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]*$", description = "The host's name")),
    responses(
        (status = 200, description = "Dropped", body = KeyFingerprint),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 403, description = "Without the permission `hosts`", body = ErrorBody),
        (status = 404, description = "No such host", body = ErrorBody),
        (status = 409, description = "No pending key, or it changed meanwhile", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn deny(
    auth: Auth<need::Hosts>,
    Path(name): Path<String>,
) -> Result<axum::Json<KeyFingerprint>, ApiError> {
    let ops = auth.ops();
    let fingerprint = ops.deny(&host_name(&name)?).await?;
    Ok(axum::Json(KeyFingerprint {
        host: name,
        fingerprint,
    }))
}

/// The server key a host's agent must trust (`otto-agent trust '…'`).
#[utoipa::path(
    get,
    path = "/api/v1/hosts/{name}/key",
    tag = "hosts",
    params(("name" = String, Path, min_length = 1, max_length = 63, pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]*$", description = "The host's name")),
    responses(
        (status = 200, description = "The key", body = ServerKey),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 404, description = "No such host", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn server_key(
    auth: Auth,
    Path(name): Path<String>,
) -> Result<axum::Json<ServerKey>, ApiError> {
    let server_key = auth.ops().server_key(&host_name(&name)?).await?;
    Ok(axum::Json(ServerKey {
        host: name,
        server_key,
    }))
}

/// Adds many hosts at once, with their groups, from an inventory (at most 4 MiB); with
/// `dry_run`, only the plan. Re-importing changes nothing; an import removes nothing; a host
/// at another address is moved; any bad line, and nothing is imported.
#[utoipa::path(
    post,
    path = "/api/v1/imports",
    tag = "hosts",
    request_body = Inventory,
    responses(
        (status = 200, description = "The plan, applied unless a dry run", body = Imported),
        (status = 400, description = "Malformed JSON, or an inventory that cannot be read", body = ErrorBody),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 403, description = "Without the permission `hosts`", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 422, description = "A missing field, an unknown one, or a wrong type", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn import(
    auth: Auth<need::Hosts>,
    Json(inventory): Json<Inventory>,
) -> Result<axum::Json<Imported>, ApiError> {
    let ops = auth.ops();
    let imported = ops
        .import_hosts(ImportHosts {
            text: inventory.text,
            format: inventory.format,
            dry_run: inventory.dry_run,
            pin_on_first_contact: inventory.pin_on_first_contact,
        })
        .await?;
    Ok(axum::Json(imported))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Vec<Host> {
        let mut hosts: Vec<Host> = ["a", "b", "c", "d"]
            .iter()
            .map(|n| Host::example(n, "192.0.2.1", 12444, &["lab"]))
            .collect();
        hosts[1].status.reachable = Some(true);
        hosts[2].enabled = false;
        hosts[3].groups.clear();
        hosts
    }

    fn names(page: &HostPage) -> Vec<&str> {
        page.hosts.iter().map(|h| h.host.name.as_str()).collect()
    }

    #[test]
    fn pages_follow_each_other_by_name_and_filters_apply_before_the_limit() {
        let two = |after: Option<&str>| HostQuery {
            limit: Some(2),
            after: after.map(str::to_owned),
            ..HostQuery::default()
        };
        let first = page(hosts(), &two(None)).unwrap();
        assert_eq!(
            (names(&first), first.next.as_deref()),
            (vec!["a", "b"], Some("b"))
        );
        let second = page(hosts(), &two(first.next.as_deref())).unwrap();
        assert_eq!(
            (names(&second), second.next.as_deref()),
            (vec!["c", "d"], None)
        );

        let lab = HostQuery {
            group: Some("lab".into()),
            state: Some(HostState::Unknown),
            ..HostQuery::default()
        };
        assert_eq!(names(&page(hosts(), &lab).unwrap()), ["a"]);
        let disabled = HostQuery {
            state: Some(HostState::Disabled),
            ..HostQuery::default()
        };
        assert_eq!(names(&page(hosts(), &disabled).unwrap()), ["c"]);
        let named = HostQuery {
            name: Some("b".into()),
            ..HostQuery::default()
        };
        assert_eq!(names(&page(hosts(), &named).unwrap()), ["b"]);
        for limit in [0, MAX_LIMIT + 1] {
            let bad = HostQuery {
                limit: Some(limit),
                ..HostQuery::default()
            };
            assert!(page(hosts(), &bad).is_err());
        }
    }
}
