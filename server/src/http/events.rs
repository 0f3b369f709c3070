//! `/api/v1/events`: the audit trail, for users with the permission `audit`.

use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::Auth;
use super::error::{ApiError, ErrorBody, Query};
use crate::model::{Event, EventKind, Permission};
use crate::ops::OpsError;

/// Most events in one answer.
const MAX_LIMIT: u32 = 10_000;

/// Which events to read.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Only those of this host.
    host: Option<String>,
    /// Only those of this kind (`sign-in-failed`, `run-started`…).
    kind: Option<EventKind>,
    /// The newest this many (1 to 10000; default 100), oldest first.
    limit: Option<u32>,
}

/// The newest events, oldest first: who (user, API key, address), what, when.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    params(EventQuery),
    responses(
        (status = 200, description = "Events, oldest first", body = Vec<Event>),
        (status = 400, description = "A bad query", body = ErrorBody),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 403, description = "Without the permission `audit`", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list(
    auth: Auth,
    Query(query): Query<EventQuery>,
) -> Result<axum::Json<Vec<Event>>, ApiError> {
    let ops = auth.with(Permission::Audit)?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        let message = format!("limit must be 1 to {MAX_LIMIT}");
        return Err(OpsError::Invalid(message).into());
    }
    Ok(axum::Json(
        ops.events(query.host.as_deref(), query.kind, limit).await?,
    ))
}
