//! `/api/v1/events`: the audit trail, for users with the permission `audit`, filtered and read
//! a page at a time; `/api/v1/changes`: the fleet's changes as they happen, for anyone signed
//! in, as Server-Sent Events.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use utoipa::IntoParams;

use super::ApiState;
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

/// From where to tell the changes.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// Those after this entry of the event log (its `id`); without it (and without a
    /// `Last-Event-ID` header, which wins), those from now on.
    #[param(minimum = 0)]
    after: Option<i64>,
}

/// The fleet's changes as they happen, as Server-Sent Events named `change`, each with the
/// event log entry's `id` as its SSE id (so a client that reconnects with `Last-Event-ID`
/// catches up): `kind` (`reachability`, `run-started`, `run-finished`, `key-pending`,
/// `host-added`…), `host` if one, `at`. Read from the log every second, so changes made by any
/// server sharing the database are told; who signed in and changes of users and API keys are
/// not. Ends when the server stops.
#[utoipa::path(
    get,
    path = "/api/v1/changes",
    tag = "events",
    params(ChangesQuery),
    responses(
        (status = 200, description = "The changes, as `text/event-stream` (each event's data a `FleetChange`)", content_type = "text/event-stream", body = String),
        (status = 400, description = "A bad query or Last-Event-ID", body = ErrorBody),
        (status = 401, description = "No API key that works", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn changes(
    auth: Auth,
    State(api): State<ApiState>,
    headers: HeaderMap,
    Query(query): Query<ChangesQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let after = match headers.get("last-event-id") {
        Some(id) => Some(
            id.to_str()
                .ok()
                .and_then(|id| id.trim().parse::<i64>().ok())
                .filter(|id| *id >= 0)
                .ok_or_else(|| OpsError::Invalid("Last-Event-ID is not an event's id".into()))?,
        ),
        None => query.after,
    };
    if after.is_some_and(|a| a < 0) {
        return Err(OpsError::Invalid("after must be 0 or more".into()).into());
    }
    let feed = auth.ops().changes(after, api.launches.closing()).await?;
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        let change = feed.next().await?;
        let sent = SseEvent::default()
            .id(change.id.to_string())
            .event("change")
            .json_data(&change);
        Some((Ok(sent.unwrap_or_default()), feed))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
