//! `/api/v1/users`: the API's users, for those with the permission `users`: listed, added,
//! disabled (which ends their sessions and stops their keys) and enabled, their permissions
//! set. A user changes their own password at `/api/v1/users/me/password` (`session.rs`).

use axum::http::StatusCode;

use super::auth::{Auth, need};
use super::error::{ApiError, ErrorBody, Json, Path};
use crate::model::{Permissions, User};
use crate::ops::{AddUser, NewPassword};

/// Every user, by name.
#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "users",
    responses(
        (status = 200, description = "Users, by name", body = Vec<User>),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `users`", body = ErrorBody),
    ),
    security(("api_key" = []), ("session" = []))
)]
pub async fn list(auth: Auth<need::Users>) -> Result<axum::Json<Vec<User>>, ApiError> {
    Ok(axum::Json(auth.ops().users().await?))
}

/// Adds a user.
#[utoipa::path(
    post,
    path = "/api/v1/users",
    tag = "users",
    request_body = AddUser,
    responses(
        (status = 201, description = "Added", body = User),
        (status = 400, description = "A bad name, or a password too short", body = ErrorBody),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `users`", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 422, description = "A missing field, an unknown one, or a wrong type", body = ErrorBody),
    ),
    security(("api_key" = []), ("session" = []))
)]
pub async fn add(
    auth: Auth<need::Users>,
    Json(new): Json<AddUser>,
) -> Result<(StatusCode, axum::Json<User>), ApiError> {
    let user = auth.ops().add_user(new).await?;
    Ok((StatusCode::CREATED, axum::Json(user)))
}

/// Disables a user: their sessions end and their API keys stop working, until enabled.
#[utoipa::path(
    post,
    path = "/api/v1/users/{name}/disable",
    tag = "users",
    params(("name" = String, Path, description = "The user")),
    responses(
        (status = 204, description = "Disabled"),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `users`", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ),
    security(("api_key" = []), ("session" = []))
)]
pub async fn disable(
    auth: Auth<need::Users>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let ops = auth.ops();
    ops.set_user_disabled(&name, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enables a user again.
#[utoipa::path(
    post,
    path = "/api/v1/users/{name}/enable",
    tag = "users",
    params(("name" = String, Path, description = "The user")),
    responses(
        (status = 204, description = "Enabled"),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `users`", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ),
    security(("api_key" = []), ("session" = []))
)]
pub async fn enable(
    auth: Auth<need::Users>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let ops = auth.ops();
    ops.set_user_disabled(&name, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets a user's permissions (never more than one's own).
#[utoipa::path(
    put,
    path = "/api/v1/users/{name}/permissions",
    tag = "users",
    params(("name" = String, Path, description = "The user")),
    request_body = Permissions,
    responses(
        (status = 204, description = "Set"),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `users`, or more than one's own", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 422, description = "An unknown field or a wrong type", body = ErrorBody),
    ),
    security(("api_key" = []), ("session" = []))
)]
pub async fn set_permissions(
    auth: Auth<need::Users>,
    Path(name): Path<String>,
    Json(permissions): Json<Permissions>,
) -> Result<StatusCode, ApiError> {
    let ops = auth.ops();
    ops.set_user_permissions(&name, &permissions).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets a user's password (an administrator's reset: one's own, with the current one, is
/// `/api/v1/users/me/password`).
#[utoipa::path(
    put,
    path = "/api/v1/users/{name}/password",
    tag = "users",
    params(("name" = String, Path, description = "The user")),
    request_body = NewPassword,
    responses(
        (status = 204, description = "Changed"),
        (status = 400, description = "Malformed JSON, or a password too short", body = ErrorBody),
        (status = 401, description = "No API key or session that works", body = ErrorBody),
        (status = 403, description = "Without the permission `users`", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 422, description = "A missing field, an unknown one, or a wrong type", body = ErrorBody),
    ),
    security(("api_key" = []), ("session" = []))
)]
pub async fn set_password(
    auth: Auth<need::Users>,
    Path(name): Path<String>,
    Json(new): Json<NewPassword>,
) -> Result<StatusCode, ApiError> {
    let ops = auth.ops();
    ops.change_password(&name, new.password).await?;
    Ok(StatusCode::NO_CONTENT)
}
