//! `/api/v1/options`: the server's options as `serve` runs with them (nothing secret), for
//! users with the permission `options`. Read-only: `server.toml` and serve's flags set them.

use axum::extract::State;

use super::ApiState;
use super::auth::{Auth, need};
use super::error::{ApiError, ErrorBody};
use crate::ops::ServerOptions;

/// The server's options: data directory, where the API listens and its certificate's
/// fingerprint, heartbeat and rotation periods, dial and answer limits.
#[utoipa::path(
    get,
    path = "/api/v1/options",
    tag = "options",
    responses(
        (status = 200, description = "The options in force", body = ServerOptions),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `options`", body = ErrorBody),
    ),
    security(("api_key" = []), ("session" = []))
)]
pub async fn show(
    auth: Auth<need::Options>,
    State(api): State<ApiState>,
) -> Result<axum::Json<ServerOptions>, ApiError> {
    let ops = auth.ops();
    Ok(axum::Json(ops.server_options(&api.settings)?))
}
