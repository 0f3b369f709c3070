//! `/api/v1/summary`: the fleet at a glance, for every user.

use super::auth::Auth;
use super::error::{ApiError, ErrorBody};
use crate::ops::Summary;

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
