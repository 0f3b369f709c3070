//! `/api/v1/updates` and `/api/v1/agents`: the agents of hosts, groups or every host updated to
//! the server's binaries, in the background as a *launch* (its events, at
//! `/api/v1/launches/{id}/events`, are an upload's: each host's progress and end, then the
//! summary); and the binaries the server has, with their versions.

use axum::extract::State;
use axum::http::StatusCode;

use super::ApiState;
use super::auth::{Auth, need};
use super::error::{ApiError, ErrorBody, Json};
use crate::agents::Agents;
use crate::ops::{Launched, UpdateAgents};

/// Updates the agents of the hosts named, in the background: answers at once with the
/// launch's id. Each host gets the binary of its CPU (from its facts), unless its agent already
/// has that version (or `force`); a host never heard from is skipped. Its events (`GET
/// /api/v1/launches/{id}/events`) are `started`, `progress` of each host (`host`, `sent`,
/// `bytes`), `uploaded` as each host ends (confirmed by a heartbeat with the new version, or
/// refused, rolled back, not heard from), and `upload-summary` last; `POST
/// /api/v1/launches/{id}/cancel` stops it.
#[utoipa::path(
    post,
    path = "/api/v1/updates",
    tag = "hosts",
    request_body = UpdateAgents,
    responses(
        (status = 202, description = "Started", body = Launched),
        (status = 400, description = "No hosts named, a bad pattern, a batch of 0, a trial out of its limits", body = ErrorBody),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `hosts` and the run level `read-write`", body = ErrorBody),
        (status = 404, description = "A name or glob that matches no host or group", body = ErrorBody),
        (status = 409, description = "64 launches are still running", body = ErrorBody),
        (status = 422, description = "An unknown field or a wrong type", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn start(
    auth: Auth<need::Hosts>,
    State(api): State<ApiState>,
    Json(request): Json<UpdateAgents>,
) -> Result<(StatusCode, axum::Json<Launched>), ApiError> {
    let launched = auth.ops().launch_update(&api.launches, request).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(launched)))
}

/// The agent binaries the server sends (each target's version, size and SHA-256, why a
/// target has none) and the newest version: a host whose agent has another is behind.
#[utoipa::path(
    get,
    path = "/api/v1/agents",
    tag = "hosts",
    responses(
        (status = 200, description = "The catalogue", body = Agents),
        (status = 401, description = "No credentials that work", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn agents(auth: Auth) -> axum::Json<Agents> {
    axum::Json(auth.ops().agents().await)
}
