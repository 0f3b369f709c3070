//! `/api/v1/apikeys`: API keys, made by a user for themself (or by a user with the permission
//! `users` for another), listed without their secrets, revoked. The operations decide who may
//! touch which key (their own, or any with `users`), so these routes need only a user.

use axum::http::StatusCode;

use super::auth::Auth;
use super::error::{ApiError, ErrorBody, Json, Path, Query};
use crate::model::ApiKey;
use crate::ops::{CreateApiKey, CreatedApiKey, KeyQuery};

/// API keys, without their secrets.
#[utoipa::path(
    get,
    path = "/api/v1/apikeys",
    tag = "apikeys",
    params(KeyQuery),
    responses(
        (status = 200, description = "Keys, by id", body = Vec<ApiKey>),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 403, description = "Another user's, without the permission `users`", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list(
    auth: Auth,
    Query(query): Query<KeyQuery>,
) -> Result<axum::Json<Vec<ApiKey>>, ApiError> {
    let keys = auth.ops().api_keys(query.user.as_deref()).await?;
    Ok(axum::Json(keys))
}

/// Makes an API key: its secret is in this answer only.
#[utoipa::path(
    post,
    path = "/api/v1/apikeys",
    tag = "apikeys",
    request_body = CreateApiKey,
    responses(
        (status = 201, description = "Made", body = CreatedApiKey),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (
            status = 403,
            description = "Wider than its user or the key making it, or for another user \
                           without `users`",
            body = ErrorBody
        ),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 422, description = "An unknown field or a wrong type", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn create(
    auth: Auth,
    Json(new): Json<CreateApiKey>,
) -> Result<(StatusCode, axum::Json<CreatedApiKey>), ApiError> {
    let created = auth.ops().create_api_key(new).await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// Revokes an API key: it stops working at once. One revoked already is 409, and nothing is
/// recorded.
#[utoipa::path(
    delete,
    path = "/api/v1/apikeys/{id}",
    tag = "apikeys",
    params(("id" = i64, Path, minimum = 1, description = "The key's id")),
    responses(
        (status = 200, description = "Revoked", body = ApiKey),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 403, description = "Another user's, without the permission `users`", body = ErrorBody),
        (status = 404, description = "No such key", body = ErrorBody),
        (status = 409, description = "Revoked already", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn revoke(auth: Auth, Path(id): Path<i64>) -> Result<axum::Json<ApiKey>, ApiError> {
    Ok(axum::Json(auth.ops().revoke_api_key(id).await?))
}
