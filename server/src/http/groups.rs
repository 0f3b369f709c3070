//! `/api/v1/groups`: groups of hosts, with the scripts assigned to them: listed, added,
//! removed (with their variables only when asked to, as the CLI's `--force`), their members
//! and scripts put in and taken out.

use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::{Auth, need};
use super::environment::RemovalQuery;
use super::error::{ApiError, ErrorBody, Json, Path, Query};
use crate::model::Group;
use crate::names::HostName;
use crate::ops::{NewGroup, OpsError};

/// Every group with its hosts and scripts, by name.
#[utoipa::path(
    get,
    path = "/api/v1/groups",
    tag = "groups",
    responses(
        (status = 200, description = "Groups, by name", body = Vec<Group>),
        (status = 401, description = "No credentials that work", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list(auth: Auth) -> Result<axum::Json<Vec<Group>>, ApiError> {
    Ok(axum::Json(auth.ops().groups().await?))
}

/// Adds a group.
#[utoipa::path(
    post,
    path = "/api/v1/groups",
    tag = "groups",
    request_body = NewGroup,
    responses(
        (status = 201, description = "Added"),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `groups`", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 422, description = "A missing field, an unknown one, or a wrong type", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn add(
    auth: Auth<need::Groups>,
    Json(new): Json<NewGroup>,
) -> Result<StatusCode, ApiError> {
    auth.ops().add_group(&new.name).await?;
    Ok(StatusCode::CREATED)
}

/// Removes a group (its hosts stay). With variables of its own it is removed only with
/// `force=true`, which removes them too.
#[utoipa::path(
    delete,
    path = "/api/v1/groups/{name}",
    tag = "groups",
    params(("name" = String, Path, description = "The group"), RemovalQuery),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `groups`", body = ErrorBody),
        (status = 404, description = "No such group", body = ErrorBody),
        (status = 409, description = "It has variables, and `force` was not given: `detail` names them (code `has-variables`)", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn remove(
    auth: Auth<need::Groups>,
    Path(name): Path<String>,
    Query(removal): Query<RemovalQuery>,
) -> Result<StatusCode, ApiError> {
    auth.ops().remove_group(&name, removal.force).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The group to remove, by a name given in the query: one a path cannot carry (the empty
/// name an older database may hold, see `otto-server check`).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ByName {
    /// The group's name (perhaps empty).
    name: String,
    /// Remove its variables too (without it, a group with variables is not removed).
    #[serde(default)]
    force: bool,
}

/// Removes the group named in the query, as `DELETE /api/v1/groups/{name}` does: for a name
/// that no path can carry, such as the empty one an older database may hold.
#[utoipa::path(
    delete,
    path = "/api/v1/groups",
    tag = "groups",
    params(ByName),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `groups`", body = ErrorBody),
        (status = 404, description = "No such group", body = ErrorBody),
        (status = 409, description = "It has variables, and `force` was not given", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn remove_named(
    auth: Auth<need::Groups>,
    Query(by): Query<ByName>,
) -> Result<StatusCode, ApiError> {
    auth.ops().remove_group(&by.name, by.force).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Puts a host in a group.
#[utoipa::path(
    put,
    path = "/api/v1/groups/{name}/hosts/{host}",
    tag = "groups",
    params(
        ("name" = String, Path, description = "The group"),
        ("host" = String, Path, min_length = 1, max_length = 63, pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]*$", description = "The host"),
    ),
    responses(
        (status = 204, description = "It is a member"),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `groups`", body = ErrorBody),
        (status = 404, description = "No such group or host", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn add_host(
    auth: Auth<need::Groups>,
    Path((group, host)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    membership(auth, &group, &host, true).await
}

/// Takes a host out of a group.
#[utoipa::path(
    delete,
    path = "/api/v1/groups/{name}/hosts/{host}",
    tag = "groups",
    params(
        ("name" = String, Path, description = "The group"),
        ("host" = String, Path, min_length = 1, max_length = 63, pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]*$", description = "The host"),
    ),
    responses(
        (status = 204, description = "It is not a member"),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `groups`", body = ErrorBody),
        (status = 404, description = "No such group or host", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn remove_host(
    auth: Auth<need::Groups>,
    Path((group, host)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    membership(auth, &group, &host, false).await
}

async fn membership(
    auth: Auth<need::Groups>,
    group: &str,
    host: &str,
    member: bool,
) -> Result<StatusCode, ApiError> {
    let ops = auth.ops();
    let host = HostName::parse(host).map_err(OpsError::from)?;
    ops.set_membership(group, &[host], member).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Assigns a script to a group.
#[utoipa::path(
    put,
    path = "/api/v1/groups/{name}/scripts/{script}",
    tag = "groups",
    params(
        ("name" = String, Path, description = "The group"),
        ("script" = String, Path, description = "The script"),
    ),
    responses(
        (status = 204, description = "Assigned"),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `groups`", body = ErrorBody),
        (status = 404, description = "No such group or script", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn add_script(
    auth: Auth<need::Groups>,
    Path((group, script)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let ops = auth.ops();
    ops.set_group_script(&group, &script, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Takes a script from a group.
#[utoipa::path(
    delete,
    path = "/api/v1/groups/{name}/scripts/{script}",
    tag = "groups",
    params(
        ("name" = String, Path, description = "The group"),
        ("script" = String, Path, description = "The script"),
    ),
    responses(
        (status = 204, description = "Not assigned"),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `groups`", body = ErrorBody),
        (status = 404, description = "No such group or script", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn remove_script(
    auth: Auth<need::Groups>,
    Path((group, script)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let ops = auth.ops();
    ops.set_group_script(&group, &script, false).await?;
    Ok(StatusCode::NO_CONTENT)
}
