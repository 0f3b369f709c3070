//! `/api/v1/summary`: the fleet at a glance, for every user; `/api/v1/check`: what the
//! database holds that breaks today's rules (names, addresses, ports), as `otto-server check`.

use super::auth::Auth;
use super::error::{ApiError, ErrorBody};
use crate::ops::{Finding, Summary};

/// How many hosts are reachable, unreachable, never tried, waiting for approval or disabled,
/// and the runs that failed lately.
#[utoipa::path(
    get,
    path = "/api/v1/summary",
    tag = "hosts",
    responses(
        (status = 200, description = "The fleet at a glance", body = Summary),
        (status = 401, description = "No API key that works", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn show(auth: Auth) -> Result<axum::Json<Summary>, ApiError> {
    Ok(axum::Json(auth.ops().summary().await?))
}

/// What the database holds that breaks today's rules: names (of hosts, groups, scripts, users,
/// variables) an older version took, names of a kind that differ only in letter case, hosts'
/// addresses and ports, two hosts at one address and port. Nothing is changed.
#[utoipa::path(
    get,
    path = "/api/v1/check",
    tag = "hosts",
    responses(
        (status = 200, description = "What breaks the rules (empty: nothing)", body = Vec<Finding>),
        (status = 401, description = "No API key that works", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn check(auth: Auth) -> Result<axum::Json<Vec<Finding>>, ApiError> {
    Ok(axum::Json(auth.ops().check_names().await?))
}
