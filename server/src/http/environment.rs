//! `/api/v1/env`: environment variables, global or for a group, a host or a script (`?group=`,
//! `?host=`, `?script=`); and `/api/v1/hosts/{name}/env`, those a host's runs get, from every
//! scope. Secret values are write-only: set here, sent to agents, never answered (a secret is
//! listed as set, without its value).

use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::{Auth, need};
use super::error::{ApiError, ErrorBody, Json, Path, Query};
use crate::model::Scope;
use crate::names::HostName;
use crate::ops::{HostVariable, NewValue, OpsError, ScopeQuery, SetEnv, Variable};

/// Whether to remove a group, host or script that has variables, with them.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RemovalQuery {
    /// Remove its variables too (without it, a host, group or script with variables is not
    /// removed: 409, naming them).
    #[serde(default)]
    pub force: bool,
}

/// Variables of one scope, or of all, by scope and name; secrets without their values.
#[utoipa::path(
    get,
    path = "/api/v1/env",
    tag = "env",
    params(ScopeQuery),
    responses(
        (status = 200, description = "Variables", body = Vec<Variable>),
        (status = 400, description = "More than one scope", body = ErrorBody),
        (status = 401, description = "No credentials that work", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list(
    auth: Auth,
    Query(query): Query<ScopeQuery>,
) -> Result<axum::Json<Vec<Variable>>, ApiError> {
    let vars = auth.ops().env(query.scope()?.as_ref()).await?;
    Ok(axum::Json(vars.into_iter().map(Variable::from).collect()))
}

/// The variables every run on a host gets (a script's own come after the global ones and
/// before the groups'), in the order they apply: global, each of its groups by name, its own;
/// secrets without their values.
#[utoipa::path(
    get,
    path = "/api/v1/hosts/{name}/env",
    tag = "env",
    params(("name" = String, Path, min_length = 1, max_length = 63, pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]*$", description = "The host's name")),
    responses(
        (status = 200, description = "Its variables, by scope as they apply", body = Vec<HostVariable>),
        (status = 400, description = "A bad name", body = ErrorBody),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 404, description = "No such host", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn host(
    auth: Auth,
    Path(name): Path<String>,
) -> Result<axum::Json<Vec<HostVariable>>, ApiError> {
    let name = HostName::parse(&name).map_err(OpsError::from)?;
    let vars = auth.ops().host_env(&name).await?;
    Ok(axum::Json(
        vars.into_iter().map(HostVariable::from).collect(),
    ))
}

/// Sets a variable (global without a scope), replacing the value of one of the same scope and
/// name (which stays secret unless `secret` says otherwise).
#[utoipa::path(
    put,
    path = "/api/v1/env/{name}",
    tag = "env",
    params(("name" = String, Path, min_length = 1, max_length = 63, pattern = "^[A-Za-z_][A-Za-z0-9_]*$", description = "The variable"), ScopeQuery),
    request_body = NewValue,
    responses(
        (status = 204, description = "Set"),
        (status = 400, description = "A bad name, or more than one scope", body = ErrorBody),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `scripts`", body = ErrorBody),
        (status = 404, description = "No such group, host or script", body = ErrorBody),
        (status = 422, description = "A missing field, an unknown one, or a wrong type", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn set(
    auth: Auth<need::Scripts>,
    Path(name): Path<String>,
    Query(query): Query<ScopeQuery>,
    Json(new): Json<NewValue>,
) -> Result<StatusCode, ApiError> {
    let ops = auth.ops();
    let set = SetEnv {
        scope: query.scope()?.unwrap_or(Scope::Global),
        name,
        value: new.value,
        secret: new.secret,
    };
    ops.set_env(&set).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a variable (global without a scope).
#[utoipa::path(
    delete,
    path = "/api/v1/env/{name}",
    tag = "env",
    params(("name" = String, Path, description = "The variable"), ScopeQuery),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "More than one scope", body = ErrorBody),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `scripts`", body = ErrorBody),
        (status = 404, description = "No such variable", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn unset(
    auth: Auth<need::Scripts>,
    Path(name): Path<String>,
    Query(query): Query<ScopeQuery>,
) -> Result<StatusCode, ApiError> {
    let ops = auth.ops();
    let scope = query.scope()?.unwrap_or(Scope::Global);
    ops.unset_env(&scope, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
