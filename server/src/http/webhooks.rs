//! `/api/v1/webhooks`: where the server tells of the events an operator chose (a run failed, a
//! host became unreachable, a key is pending, a schedule was skipped), and each delivery with
//! its attempts. Listing needs the permission `audit`; adding and removing, `options`.

use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::{Auth, need};
use super::error::{ApiError, ErrorBody, Json, Path, Query};
use crate::model::{Delivery, Webhook};
use crate::ops::{AddedWebhook, NewWebhook, OpsError};

/// Most deliveries in one answer.
const MAX_LIMIT: u32 = 10_000;

/// Every webhook, oldest first (without their secrets).
#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    responses(
        (status = 200, description = "The webhooks", body = Vec<Webhook>),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 403, description = "Without the permission `audit`", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list(auth: Auth<need::Audit>) -> Result<axum::Json<Vec<Webhook>>, ApiError> {
    Ok(axum::Json(auth.ops().webhooks().await?))
}

/// Adds a webhook: each event of the kinds named is POSTed to `url` as JSON, signed with
/// HMAC-SHA256 of the body under the secret answered here, once (`X-Otto-Signature-256:
/// sha256=HEX`, with `X-Otto-Event` and `X-Otto-Delivery`); retried with backoff (5 s, doubled,
/// at most 1 h apart; 8 attempts) until it answers 2xx.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    request_body = NewWebhook,
    responses(
        (status = 201, description = "Added: the webhook and its secret, shown this once", body = AddedWebhook),
        (status = 400, description = "Malformed JSON, not an http(s) URL, no events", body = ErrorBody),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 403, description = "Without the permission `options`", body = ErrorBody),
        (status = 422, description = "An unknown field or event, or a wrong type", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn add(
    auth: Auth<need::Options>,
    Json(new): Json<NewWebhook>,
) -> Result<(StatusCode, axum::Json<AddedWebhook>), ApiError> {
    let added = auth.ops().add_webhook(&new).await?;
    Ok((StatusCode::CREATED, axum::Json(added)))
}

/// Removes a webhook with its deliveries.
#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = i64, Path, minimum = 1, description = "The webhook's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 403, description = "Without the permission `options`", body = ErrorBody),
        (status = 404, description = "No such webhook", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn remove(
    auth: Auth<need::Options>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    auth.ops().remove_webhook(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Which deliveries to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// Only those of this webhook.
    webhook: Option<i64>,
    /// The newest this many (1 to 10000; default 100), newest first.
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<u32>,
}

/// The newest deliveries, newest first: what each told of, how it stands (`pending`,
/// `delivered`, `failed`), its attempts and the last answer or error.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/deliveries",
    tag = "webhooks",
    params(DeliveryQuery),
    responses(
        (status = 200, description = "Deliveries, newest first", body = Vec<Delivery>),
        (status = 400, description = "A bad query", body = ErrorBody),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 403, description = "Without the permission `audit`", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn deliveries(
    auth: Auth<need::Audit>,
    Query(query): Query<DeliveryQuery>,
) -> Result<axum::Json<Vec<Delivery>>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        let message = format!("limit must be 1 to {MAX_LIMIT}");
        return Err(OpsError::Invalid(message).into());
    }
    Ok(axum::Json(
        auth.ops().webhook_deliveries(query.webhook, limit).await?,
    ))
}
