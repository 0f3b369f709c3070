//! `/api/v1/enrollment`: how agents enroll by themselves. Tokens (made with their secret shown
//! once, listed without it, revoked), rules in order (listed, added, removed) and the server's
//! enrollment fingerprint need the permission `enrollment`; approving or denying the pending
//! keys of several hosts at once needs `hosts`, as `host approve` does.

use axum::http::StatusCode;

use super::auth::{Auth, need};
use super::error::{ApiError, ErrorBody, Json, Path};
use crate::model::{Rule, Token};
use crate::ops::{
    AddRule, AddToken, CreatedToken, Fingerprint, PendingDecided, PendingHost, PendingHosts,
};

/// Every enrollment token, without its secret.
#[utoipa::path(
    get,
    path = "/api/v1/enrollment/tokens",
    tag = "enrollment",
    responses(
        (status = 200, description = "Tokens, by id", body = Vec<Token>),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `enrollment`", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn tokens(auth: Auth<need::Enrollment>) -> Result<axum::Json<Vec<Token>>, ApiError> {
    Ok(axum::Json(auth.ops().tokens().await?))
}

/// Makes an enrollment token: its secret, and the agent command that uses it, are in this
/// answer only.
#[utoipa::path(
    post,
    path = "/api/v1/enrollment/tokens",
    tag = "enrollment",
    request_body = AddToken,
    responses(
        (status = 201, description = "Made", body = CreatedToken),
        (status = 400, description = "Uses, lifetime, note, groups or address out of bounds", body = ErrorBody),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `enrollment`", body = ErrorBody),
        (status = 409, description = "A group name differing from another only in letter case", body = ErrorBody),
        (status = 422, description = "An unknown field or a wrong type", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn add_token(
    auth: Auth<need::Enrollment>,
    Json(add): Json<AddToken>,
) -> Result<(StatusCode, axum::Json<CreatedToken>), ApiError> {
    let created = auth.ops().add_token(add).await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// Revokes an enrollment token: no agent enrolls with it from now on (hosts enrolled with it
/// stay). One revoked already is 409, and nothing is recorded.
#[utoipa::path(
    delete,
    path = "/api/v1/enrollment/tokens/{id}",
    tag = "enrollment",
    params(("id" = i64, Path, description = "The token's id")),
    responses(
        (status = 200, description = "Revoked", body = Token),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `enrollment`", body = ErrorBody),
        (status = 404, description = "No such token", body = ErrorBody),
        (status = 409, description = "Revoked already", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn revoke_token(
    auth: Auth<need::Enrollment>,
    Path(id): Path<i64>,
) -> Result<axum::Json<Token>, ApiError> {
    Ok(axum::Json(auth.ops().revoke_token(id).await?))
}

/// Every enrollment rule, in the order they are tried (after the last: hold for approval, no
/// group).
#[utoipa::path(
    get,
    path = "/api/v1/enrollment/rules",
    tag = "enrollment",
    responses(
        (status = 200, description = "Rules, in order", body = Vec<Rule>),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `enrollment`", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn rules(auth: Auth<need::Enrollment>) -> Result<axum::Json<Vec<Rule>>, ApiError> {
    Ok(axum::Json(auth.ops().rules().await?))
}

/// Adds an enrollment rule where it says (default: last); every rule as it is now, in order.
#[utoipa::path(
    post,
    path = "/api/v1/enrollment/rules",
    tag = "enrollment",
    request_body = AddRule,
    responses(
        (status = 201, description = "Added: every rule, in order", body = Vec<Rule>),
        (status = 400, description = "A regular expression or property that does not work, too many clauses or groups, a bad group name", body = ErrorBody),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `enrollment`", body = ErrorBody),
        (status = 409, description = "A group name differing from another only in letter case", body = ErrorBody),
        (status = 422, description = "A missing field, an unknown one, or a wrong type", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn add_rule(
    auth: Auth<need::Enrollment>,
    Json(add): Json<AddRule>,
) -> Result<(StatusCode, axum::Json<Vec<Rule>>), ApiError> {
    let rules = auth.ops().add_rule(add).await?;
    Ok((StatusCode::CREATED, axum::Json(rules)))
}

/// Removes an enrollment rule (those after it move up one).
#[utoipa::path(
    delete,
    path = "/api/v1/enrollment/rules/{id}",
    tag = "enrollment",
    params(("id" = i64, Path, description = "The rule's id")),
    responses(
        (status = 200, description = "Removed", body = Rule),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `enrollment`", body = ErrorBody),
        (status = 404, description = "No such rule", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn remove_rule(
    auth: Auth<need::Enrollment>,
    Path(id): Path<i64>,
) -> Result<axum::Json<Rule>, ApiError> {
    Ok(axum::Json(auth.ops().remove_rule(id).await?))
}

/// The server's enrollment fingerprint: what `otto-agent enroll --fingerprint` pins.
#[utoipa::path(
    get,
    path = "/api/v1/enrollment/fingerprint",
    tag = "enrollment",
    responses(
        (status = 200, description = "The fingerprint", body = Fingerprint),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `enrollment`", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn fingerprint(
    auth: Auth<need::Enrollment>,
) -> Result<axum::Json<Fingerprint>, ApiError> {
    Ok(axum::Json(auth.ops().fingerprint()?))
}

/// Every host whose agent key waits for approval (new enrollments held by their rule, and
/// agents that present a key other than the pinned one), with what its agent reported.
#[utoipa::path(
    get,
    path = "/api/v1/enrollment/pending",
    tag = "enrollment",
    responses(
        (status = 200, description = "Hosts waiting, by name", body = Vec<PendingHost>),
        (status = 401, description = "No credentials that work", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn pending(auth: Auth) -> Result<axum::Json<Vec<PendingHost>>, ApiError> {
    Ok(axum::Json(auth.ops().pending_hosts().await?))
}

/// Approves the pending agent keys of several hosts, each as `POST
/// /api/v1/hosts/{name}/approve`; one failing does not stop the others.
#[utoipa::path(
    post,
    path = "/api/v1/enrollment/pending/approve",
    tag = "enrollment",
    request_body = PendingHosts,
    responses(
        (status = 200, description = "What each host's approval did, in order", body = Vec<PendingDecided>),
        (status = 400, description = "No host, or more than 1000", body = ErrorBody),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `hosts`", body = ErrorBody),
        (status = 422, description = "A missing field, an unknown one, or a wrong type", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn approve(
    auth: Auth<need::Hosts>,
    Json(pending): Json<PendingHosts>,
) -> Result<axum::Json<Vec<PendingDecided>>, ApiError> {
    Ok(axum::Json(
        auth.ops().decide_pending(&pending.hosts, true).await?,
    ))
}

/// Denies (drops) the pending agent keys of several hosts, each as `POST
/// /api/v1/hosts/{name}/deny`; one failing does not stop the others.
#[utoipa::path(
    post,
    path = "/api/v1/enrollment/pending/deny",
    tag = "enrollment",
    request_body = PendingHosts,
    responses(
        (status = 200, description = "What each host's denial did, in order", body = Vec<PendingDecided>),
        (status = 400, description = "No host, or more than 1000", body = ErrorBody),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `hosts`", body = ErrorBody),
        (status = 422, description = "A missing field, an unknown one, or a wrong type", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn deny(
    auth: Auth<need::Hosts>,
    Json(pending): Json<PendingHosts>,
) -> Result<axum::Json<Vec<PendingDecided>>, ApiError> {
    Ok(axum::Json(
        auth.ops().decide_pending(&pending.hosts, false).await?,
    ))
}
