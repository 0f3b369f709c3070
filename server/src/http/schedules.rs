//! `/api/v1/schedules`: runs that `serve` starts at the times of a cron pattern: listed and
//! shown by any user, added, enabled, disabled and removed with the permission `schedules`.

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::auth::{Auth, need};
use super::error::{ApiError, ErrorBody, Json, Path};
use crate::ops::{AddSchedule, ScheduleEntry};

/// A change of a schedule: the body of `PATCH /api/v1/schedules/{name}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleChange {
    /// Whether `serve` starts it.
    pub enabled: bool,
}

/// Every schedule with its next times and its last launch, by name.
#[utoipa::path(
    get,
    path = "/api/v1/schedules",
    tag = "schedules",
    responses(
        (status = 200, description = "Schedules, by name", body = Vec<ScheduleEntry>),
        (status = 401, description = "No credentials that work", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list(auth: Auth) -> Result<axum::Json<Vec<ScheduleEntry>>, ApiError> {
    Ok(axum::Json(auth.ops().schedules().await?))
}

/// Adds a schedule: a pattern that parses, a zone that exists, a script that exists (or a
/// command) the user may run, on hosts as a run takes them.
#[utoipa::path(
    post,
    path = "/api/v1/schedules",
    tag = "schedules",
    request_body = AddSchedule,
    responses(
        (status = 201, description = "Added", body = ScheduleEntry),
        (status = 400, description = "A bad name, pattern, zone, job or rollout", body = ErrorBody),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `schedules`, or the run level of its job", body = ErrorBody),
        (status = 404, description = "No such script, or no host or group matches", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 422, description = "A missing field, an unknown one, or a wrong type", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn add(
    auth: Auth<need::Schedules>,
    Json(add): Json<AddSchedule>,
) -> Result<(StatusCode, axum::Json<ScheduleEntry>), ApiError> {
    let entry = auth.ops().add_schedule(add).await?;
    Ok((StatusCode::CREATED, axum::Json(entry)))
}

/// One schedule with its next times and its last launches.
#[utoipa::path(
    get,
    path = "/api/v1/schedules/{name}",
    tag = "schedules",
    params(("name" = String, Path, description = "The schedule")),
    responses(
        (status = 200, description = "The schedule", body = ScheduleEntry),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 404, description = "No such schedule", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn show(
    auth: Auth,
    Path(name): Path<String>,
) -> Result<axum::Json<ScheduleEntry>, ApiError> {
    Ok(axum::Json(auth.ops().schedule(&name).await?))
}

/// Enables or disables a schedule.
#[utoipa::path(
    patch,
    path = "/api/v1/schedules/{name}",
    tag = "schedules",
    params(("name" = String, Path, description = "The schedule")),
    request_body = ScheduleChange,
    responses(
        (status = 200, description = "The schedule as it is now", body = ScheduleEntry),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `schedules`", body = ErrorBody),
        (status = 404, description = "No such schedule", body = ErrorBody),
        (status = 422, description = "A missing field, an unknown one, or a wrong type", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn change(
    auth: Auth<need::Schedules>,
    Path(name): Path<String>,
    Json(change): Json<ScheduleChange>,
) -> Result<axum::Json<ScheduleEntry>, ApiError> {
    let entry = auth
        .ops()
        .set_schedule_enabled(&name, change.enabled)
        .await?;
    Ok(axum::Json(entry))
}

/// Removes a schedule; the launches it started stay in the history.
#[utoipa::path(
    delete,
    path = "/api/v1/schedules/{name}",
    tag = "schedules",
    params(("name" = String, Path, description = "The schedule")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `schedules`", body = ErrorBody),
        (status = 404, description = "No such schedule", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn remove(
    auth: Auth<need::Schedules>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth.ops().remove_schedule(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
