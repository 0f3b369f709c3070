//! `/api/v1/events`: the audit trail, for users with the permission `audit`, filtered and read
//! a page at a time.

use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::{Auth, need};
use super::error::{ApiError, ErrorBody, Query};
use crate::model::{Event, EventFilter, EventKind};
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
    /// Only those of this kind (`host-added`, `sign-in-failed`…).
    kind: Option<EventKind>,
    /// Only those this user made happen (through the API, or the command line as that login).
    user: Option<String>,
    /// Only those older than this event: the first `id` of the page after, for the page
    /// before.
    before: Option<i64>,
    /// The newest this many (1 to 10000; default 100), oldest first.
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<u32>,
}

/// The newest events, oldest first: who (user, API key, address), what, when; filtered by
/// host, kind and user, and a page before an event with `before`.
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
    auth: Auth<need::Audit>,
    Query(query): Query<EventQuery>,
) -> Result<axum::Json<Vec<Event>>, ApiError> {
    let ops = auth.ops();
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        let message = format!("limit must be 1 to {MAX_LIMIT}");
        return Err(OpsError::Invalid(message).into());
    }
    let filter = EventFilter {
        host: query.host,
        kind: query.kind,
        user: query.user,
        before: query.before,
        limit,
    };
    Ok(axum::Json(ops.find_events(&filter).await?))
}
