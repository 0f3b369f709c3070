//! `/api/v1/hosts`: the fleet's hosts, listed page by page and filtered, one in full (with the
//! fingerprint of a key its agent presented that waits for approval), added, changed, enabled
//! and disabled, trusted (a key given, or the pending one approved or denied), imported from an
//! inventory, and removed.

use axum::http::StatusCode;

use super::auth::{Auth, need};
use super::environment::RemovalQuery;
use super::error::{ApiError, ErrorBody, Json, ListQuery, Path, Query};
use crate::names::HostName;
use crate::ops::{
    AddHost, AgentKey, HostAdded, HostChange, HostDetail, HostEntry, HostPage, HostQuery,
    ImportHosts, Imported, KeyFingerprint, OpsError, Selection, ServerKey, Targets,
};

/// The largest inventory taken (its text in a JSON body).
pub const INVENTORY_LIMIT: usize = 4 * 1024 * 1024;

/// The host named in a path, checked.
fn host_name(name: &str) -> Result<HostName, ApiError> {
    Ok(HostName::parse(name).map_err(OpsError::from)?)
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
    ListQuery(query): ListQuery<HostQuery>,
) -> Result<axum::Json<HostPage>, ApiError> {
    Ok(axum::Json(auth.ops().host_page(&query).await?))
}

/// The enabled hosts a choice of hosts (as an action's request gives it: names, groups,
/// exclusions, `where` selectors) makes now, and those its selectors left out because their
/// agent has not reported the fact yet. Changes nothing.
#[utoipa::path(
    post,
    path = "/api/v1/selection",
    tag = "hosts",
    request_body = Targets,
    responses(
        (status = 200, description = "The hosts chosen, and those left out", body = Selection),
        (status = 400, description = "A bad pattern or selector", body = ErrorBody),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 404, description = "No such host or group", body = ErrorBody),
        (status = 422, description = "An unknown field or a wrong type", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn selection(
    auth: Auth,
    Json(targets): Json<Targets>,
) -> Result<axum::Json<Selection>, ApiError> {
    Ok(axum::Json(auth.ops().selection(&targets).await?))
}

/// One host in full, with its server key.
#[utoipa::path(
    get,
    path = "/api/v1/hosts/{name}",
    tag = "hosts",
    params(("name" = String, Path, min_length = 1, max_length = 63, pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]*$", description = "The host's name")),
    responses(
        (status = 200, description = "The host", body = HostDetail),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 404, description = "No such host", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn show(
    auth: Auth,
    Path(name): Path<String>,
) -> Result<axum::Json<HostDetail>, ApiError> {
    Ok(axum::Json(auth.ops().host(&host_name(&name)?).await?))
}

/// Adds a host with a new server key, for its agent to trust.
#[utoipa::path(
    post,
    path = "/api/v1/hosts",
    tag = "hosts",
    request_body = AddHost,
    responses(
        (status = 201, description = "Added", body = HostAdded),
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
    Json(new): Json<AddHost>,
) -> Result<(StatusCode, axum::Json<HostAdded>), ApiError> {
    let added = auth.ops().add_host(new).await?;
    Ok((StatusCode::CREATED, axum::Json(added)))
}

/// Removes a host with its server key and its variables (its history stays). With variables
/// of its own it is removed only with `force=true`, which removes them too.
#[utoipa::path(
    delete,
    path = "/api/v1/hosts/{name}",
    tag = "hosts",
    params(("name" = String, Path, min_length = 1, max_length = 63, pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]*$", description = "The host's name"), RemovalQuery),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 403, description = "Without the permission `hosts`", body = ErrorBody),
        (status = 404, description = "No such host", body = ErrorBody),
        (status = 409, description = "It has variables, and `force` was not given: `detail` names them (code `has-variables`)", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn remove(
    auth: Auth<need::Hosts>,
    Path(name): Path<String>,
    Query(removal): Query<RemovalQuery>,
) -> Result<StatusCode, ApiError> {
    auth.ops().remove_host(&name, removal.force).await?;
    Ok(StatusCode::NO_CONTENT)
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
    Ok(axum::Json(ops.trust(&host_name(&name)?, &key.key).await?))
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
    Ok(axum::Json(ops.approve(&host_name(&name)?).await?))
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
    Ok(axum::Json(ops.deny(&host_name(&name)?).await?))
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
    Ok(axum::Json(auth.ops().server_key(&host_name(&name)?).await?))
}

/// Adds many hosts at once, with their groups, from an inventory (at most 4 MiB); with
/// `dry_run`, only the plan. Re-importing changes nothing; an import removes nothing; a host
/// at another address is moved; any bad line, and nothing is imported.
#[utoipa::path(
    post,
    path = "/api/v1/imports",
    tag = "hosts",
    request_body = ImportHosts,
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
    Json(inventory): Json<ImportHosts>,
) -> Result<axum::Json<Imported>, ApiError> {
    Ok(axum::Json(auth.ops().import_hosts(inventory).await?))
}
