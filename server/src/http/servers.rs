//! `/api/v1/servers`: the servers sharing the store (every `serve` on one PostgreSQL database),
//! for every user, as `otto-server servers`.

use super::auth::Auth;
use super::error::{ApiError, ErrorBody};
use crate::ops::ServerEntry;

/// The servers sharing the store whose lease is live or ran out within the hour, by name:
/// their lease and how many hosts each owns, and which one answered (`this`). Empty on
/// SQLite, where one server owns every host.
#[utoipa::path(
    get,
    path = "/api/v1/servers",
    tag = "hosts",
    responses(
        (status = 200, description = "The servers sharing the store (empty on SQLite)", body = Vec<ServerEntry>),
        (status = 401, description = "No API key that works", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list(auth: Auth) -> Result<axum::Json<Vec<ServerEntry>>, ApiError> {
    Ok(axum::Json(auth.ops().servers().await?))
}
