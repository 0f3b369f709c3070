//! `/api/v1/control` and `/api/v1/ping`: requests to the agents of many hosts at once, each
//! answered per host. Control requests (reload, exit, reboot, shutdown, key rotation) need the
//! permission `hosts`; a heartbeat changes no setting, so any user may send one.

use super::auth::{Auth, need};
use super::error::{ApiError, ErrorBody, Json};
use crate::ops::{ControlRequest, Done, DryRun, Ping, PingRequest};

/// Sends a control request to the hosts named, as the rollout goes; each host's result.
#[utoipa::path(
    post,
    path = "/api/v1/control",
    tag = "hosts",
    request_body = ControlRequest,
    responses(
        (status = 200, description = "Each host's result", body = Vec<Done>),
        (status = 400, description = "No hosts named, a bad pattern, a batch of 0", body = ErrorBody),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 403, description = "Without the permission `hosts`", body = ErrorBody),
        (status = 404, description = "No such host or group", body = ErrorBody),
        (status = 422, description = "An unknown field or a wrong type", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn control(
    auth: Auth<need::Hosts>,
    Json(request): Json<ControlRequest>,
) -> Result<axum::Json<Vec<Done>>, ApiError> {
    Ok(axum::Json(auth.ops().act(request).await?))
}

/// Which hosts a control request would act on; nothing is sent or recorded.
#[utoipa::path(
    post,
    path = "/api/v1/dry-run/control",
    tag = "hosts",
    request_body = ControlRequest,
    responses(
        (status = 200, description = "What it would do", body = DryRun),
        (status = 400, description = "No hosts named, a bad pattern, a batch of 0", body = ErrorBody),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 403, description = "Without the permission `hosts`", body = ErrorBody),
        (status = 404, description = "No such host or group", body = ErrorBody),
        (status = 422, description = "An unknown field or a wrong type", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn dry_run(
    auth: Auth<need::Hosts>,
    Json(request): Json<ControlRequest>,
) -> Result<axum::Json<DryRun>, ApiError> {
    Ok(axum::Json(auth.ops().dry_run_control(&request).await?))
}

/// Sends a heartbeat to the hosts named (every enabled host when none is), and keeps their
/// answers (agent version, facts) as `GET /api/v1/hosts` shows them.
#[utoipa::path(
    post,
    path = "/api/v1/ping",
    tag = "hosts",
    request_body = PingRequest,
    responses(
        (status = 200, description = "Each host's answer", body = Vec<Ping>),
        (status = 400, description = "A bad pattern", body = ErrorBody),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 404, description = "No such host or group", body = ErrorBody),
        (status = 422, description = "An unknown field or a wrong type", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn ping(
    auth: Auth,
    Json(request): Json<PingRequest>,
) -> Result<axum::Json<Vec<Ping>>, ApiError> {
    Ok(axum::Json(auth.ops().ping(&request.targets).await?))
}
