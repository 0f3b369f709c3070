//! `/api/v1/metrics` and `/api/v1/hosts/{name}/metrics`: the fleet and a host over time, for
//! charts (by the hour for the last 8 days, by the day before), for every user.

use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::Auth;
use super::error::{ApiError, ErrorBody, Path, Query};
use crate::model::{FleetPoint, HostPoint};

/// How far back.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MetricsQuery {
    /// The last this many days (1 to 400; default 7).
    #[param(minimum = 1, maximum = 400)]
    days: Option<u32>,
}

/// The fleet over time, oldest first: each hour's (or, beyond 8 days, day's) enabled hosts,
/// the fewest and most reachable seen, and the runs that ended by outcome.
#[utoipa::path(
    get,
    path = "/api/v1/metrics",
    tag = "metrics",
    params(MetricsQuery),
    responses(
        (status = 200, description = "The fleet's hours and days", body = Vec<FleetPoint>),
        (status = 400, description = "A bad query", body = ErrorBody),
        (status = 401, description = "No API key that works", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn fleet(
    auth: Auth,
    Query(query): Query<MetricsQuery>,
) -> Result<axum::Json<Vec<FleetPoint>>, ApiError> {
    let days = query.days.unwrap_or(7);
    Ok(axum::Json(auth.ops().fleet_metrics(days).await?))
}

/// A host's heartbeats over time, oldest first: each hour's (or day's) count, round trip
/// (average and longest), load and least free flash.
#[utoipa::path(
    get,
    path = "/api/v1/hosts/{name}/metrics",
    tag = "metrics",
    params(("name" = String, Path, description = "The host"), MetricsQuery),
    responses(
        (status = 200, description = "The host's hours and days", body = Vec<HostPoint>),
        (status = 400, description = "A bad query", body = ErrorBody),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 404, description = "No such host", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn host(
    auth: Auth,
    Path(name): Path<String>,
    Query(query): Query<MetricsQuery>,
) -> Result<axum::Json<Vec<HostPoint>>, ApiError> {
    let days = query.days.unwrap_or(7);
    Ok(axum::Json(auth.ops().host_metrics(&name, days).await?))
}
