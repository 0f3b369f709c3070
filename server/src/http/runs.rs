//! `/api/v1/runs` and `/api/v1/launches`: starting a stored script or a command on hosts (a
//! *launch*, which goes on in the daemon and answers at once), following its output live as
//! Server-Sent Events, cancelling it; and the history of runs (one per host), each with its
//! kept output. Running a stored script needs its run level (`read-only` or `read-write`), a
//! command `read-write`; cancelling a launch the level it needed, a run by its id `read-write`.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use utoipa::IntoParams;

use super::ApiState;
use super::auth::{Auth, need};
use super::error::{ApiError, ErrorBody, Json, Path, Query};
use crate::model::{LaunchFilter, PastLaunch, Run, RunFilter, RunOutcome};
use crate::ops::{Done, DryRun, Launched, NewRun, OpsError};

/// Most runs in one answer.
const MAX_LIMIT: u32 = 10_000;

/// Starts a stored script or a command on hosts, in the background: answers at once with the
/// launch's id. Each host's run is in the history (its id in the host's `done` event).
#[utoipa::path(
    post,
    path = "/api/v1/runs",
    tag = "runs",
    request_body = NewRun,
    responses(
        (status = 202, description = "Started", body = Launched),
        (status = 400, description = "Malformed JSON, no hosts or job named, a bad pattern", body = ErrorBody),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 403, description = "Without the run level the job needs: the script's (`read-only` or `read-write`), `read-write` for a command", body = ErrorBody),
        (status = 404, description = "No such script, host or group", body = ErrorBody),
        (status = 409, description = "64 launches are still running", body = ErrorBody),
        (status = 422, description = "An unknown field or a wrong type", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn start(
    auth: Auth<need::RunReadOnly>,
    State(api): State<ApiState>,
    Json(new): Json<NewRun>,
) -> Result<(StatusCode, axum::Json<Launched>), ApiError> {
    // Any run needs `read-only`; the operation checks the run level its job needs.
    let launched = auth.ops().launch(&api.launches, new).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(launched)))
}

/// What a run would do, found and checked as `POST /api/v1/runs` does (the run level the job
/// needs, its hosts): the hosts it would touch, the script's name and SHA-256, its attachments'
/// checksums. Nothing is started or recorded.
#[utoipa::path(
    post,
    path = "/api/v1/dry-run/runs",
    tag = "runs",
    request_body = NewRun,
    responses(
        (status = 200, description = "What it would do", body = DryRun),
        (status = 400, description = "Malformed JSON, no hosts or job named, a bad pattern", body = ErrorBody),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 403, description = "Without the run level the job needs", body = ErrorBody),
        (status = 404, description = "No such script, host or group", body = ErrorBody),
        (status = 422, description = "An unknown field or a wrong type", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn dry_run(
    auth: Auth<need::RunReadOnly>,
    Json(new): Json<NewRun>,
) -> Result<axum::Json<DryRun>, ApiError> {
    Ok(axum::Json(auth.ops().dry_run(new).await?))
}

/// A launch's events as Server-Sent Events, from its start (so a late client first gets what
/// was produced): `started` (`launch`, `job`, `hosts`), `output` (`host`, `stream`, `text`,
/// secrets redacted), `done` per host (`run`, `success`, `outcome`…), `summary` last
/// (`succeeded`, `failed`, `results`), or `error`; `gap` (`dropped`) where output beyond the
/// buffer was dropped (the history keeps it). Each event's data is JSON with its `type`.
#[utoipa::path(
    get,
    path = "/api/v1/launches/{id}/events",
    tag = "runs",
    params(("id" = u64, Path, minimum = 1, description = "The launch's id")),
    responses(
        (status = 200, description = "The events, as `text/event-stream`", content_type = "text/event-stream", body = String),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 404, description = "No such launch", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn events(
    auth: Auth,
    State(api): State<ApiState>,
    Path(id): Path<u64>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let follower = auth.ops().follow(&api.launches, id).await?;
    let stream = futures_util::stream::unfold(follower, |mut follower| async move {
        let event = follower.next().await?;
        let sent = Event::default().event(event.kind()).json_data(&event);
        Some((Ok(sent.unwrap_or_default()), follower))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Cancels a launch: its scripts are stopped on their hosts, the hosts not started skipped.
#[utoipa::path(
    post,
    path = "/api/v1/launches/{id}/cancel",
    tag = "runs",
    params(("id" = u64, Path, minimum = 1, description = "The launch's id")),
    responses(
        (status = 204, description = "Cancelling: the summary will say how each host ended"),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 403, description = "Without the run level its job needed", body = ErrorBody),
        (status = 404, description = "No such launch", body = ErrorBody),
        (status = 409, description = "It has finished (or `serve` stopped in its middle)", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn cancel_launch(
    auth: Auth<need::RunReadOnly>,
    State(api): State<ApiState>,
    Path(id): Path<u64>,
) -> Result<StatusCode, ApiError> {
    // Any launch needed `read-only`; the operation checks the level its job needed.
    auth.ops().cancel_launch(&api.launches, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Which runs to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunQuery {
    /// Only those of this host.
    host: Option<String>,
    /// Only those of this job: a script's name, or `command: …`, exactly as `what` says.
    what: Option<String>,
    /// Only those this user started (through the API, or the command line as that login).
    user: Option<String>,
    /// Only those that ended so: `succeeded`, `failed` (not by a cancel), `cancelled`, or
    /// `running`.
    outcome: Option<RunOutcome>,
    /// Only those started at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    /// Only those started before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<String>,
    /// The newest this many (1 to 10000; default 100), oldest first.
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<u32>,
    /// Only those older than this run: the first `id` of the page after, for the page before.
    before: Option<i64>,
    /// Only the hosts' runs of this launch.
    launch: Option<i64>,
    /// With each run's kept output, as `GET /api/v1/runs/{id}` has it (default: without).
    #[serde(default)]
    output: bool,
}

/// The newest runs, oldest first, without their output unless `output=true`
/// (`GET /api/v1/runs/{id}` has it); found by host, job, user, outcome and when they started;
/// the page before with `before`, the first id of this one.
#[utoipa::path(
    get,
    path = "/api/v1/runs",
    tag = "runs",
    params(RunQuery),
    responses(
        (status = 200, description = "Runs, oldest first, `stdout` and `stderr` left empty unless `output=true`", body = Vec<Run>),
        (status = 400, description = "A bad query", body = ErrorBody),
        (status = 401, description = "No API key that works", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list(
    auth: Auth,
    Query(query): Query<RunQuery>,
) -> Result<axum::Json<Vec<Run>>, ApiError> {
    let filter = RunFilter {
        host: query.host,
        what: query.what,
        user: query.user,
        outcome: query.outcome,
        since: time("since", query.since)?,
        until: time("until", query.until)?,
        before: query.before,
        // No launch's id is 0 or below.
        launch: query.launch.map(|l| u64::try_from(l).unwrap_or(0)),
        limit: limit(query.limit)?,
    };
    let mut runs = auth.ops().find_history(&filter).await?;
    if !query.output {
        for run in &mut runs {
            run.stdout = Vec::new();
            run.stderr = Vec::new();
        }
    }
    Ok(axum::Json(runs))
}

/// A page's size: 1 to [`MAX_LIMIT`], 100 if not given.
fn limit(limit: Option<u32>) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        let message = format!("limit must be 1 to {MAX_LIMIT}");
        return Err(OpsError::Invalid(message).into());
    }
    Ok(limit)
}

/// A query's time `name` (RFC 3339), as ms since the epoch.
fn time(name: &str, text: Option<String>) -> Result<Option<i64>, ApiError> {
    text.map(|t| {
        t.parse::<jiff::Timestamp>()
            .map(|t| t.as_millisecond())
            .map_err(|e| OpsError::Invalid(format!("{name} is not an RFC 3339 time: {e}")).into())
    })
    .transpose()
}

/// Which launches to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LaunchQuery {
    /// Only those of this job: a script's name, `command: …`, `upload: PATH` or
    /// `update-agents`, exactly.
    what: Option<String>,
    /// Only those this user started (through the API, or the command line as that login).
    user: Option<String>,
    /// Only those with a host's run that ended so: `succeeded`, `failed` (not by a cancel),
    /// `cancelled`, or `running`.
    outcome: Option<RunOutcome>,
    /// Only those started at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    /// Only those started before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<String>,
    /// The newest this many (1 to 10000; default 100), oldest first.
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<u32>,
    /// Only those older than this launch: the first `id` of the page after, for the page
    /// before.
    before: Option<i64>,
}

/// The newest launches (a job started on many hosts: by the API, the command line or a
/// schedule), oldest first, with how their hosts' runs stand (`GET /api/v1/runs?launch=ID`
/// lists them); found by job, user, outcome and when they started; the page before with
/// `before`, the first id of this one.
#[utoipa::path(
    get,
    path = "/api/v1/launches",
    tag = "runs",
    params(LaunchQuery),
    responses(
        (status = 200, description = "Launches, oldest first", body = Vec<PastLaunch>),
        (status = 400, description = "A bad query", body = ErrorBody),
        (status = 401, description = "No API key that works", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn launches(
    auth: Auth,
    Query(query): Query<LaunchQuery>,
) -> Result<axum::Json<Vec<PastLaunch>>, ApiError> {
    let filter = LaunchFilter {
        what: query.what,
        user: query.user,
        outcome: query.outcome,
        since: time("since", query.since)?,
        until: time("until", query.until)?,
        // None older than a launch 0 or below.
        before: query.before.map(|b| u64::try_from(b).unwrap_or(0)),
        limit: limit(query.limit)?,
    };
    Ok(axum::Json(auth.ops().find_launches(&filter).await?))
}

/// One launch, with how its hosts' runs stand (`GET /api/v1/runs?launch=ID` lists them).
#[utoipa::path(
    get,
    path = "/api/v1/launches/{id}",
    tag = "runs",
    params(("id" = u64, Path, minimum = 1, description = "The launch's id")),
    responses(
        (status = 200, description = "The launch", body = PastLaunch),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 404, description = "No such launch", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn launch(auth: Auth, Path(id): Path<u64>) -> Result<axum::Json<PastLaunch>, ApiError> {
    Ok(axum::Json(auth.ops().past_launch(id).await?))
}

/// How to start a launch again.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Relaunch {
    /// Only on its hosts that did not succeed (failed, cancelled, not reached or skipped),
    /// once it has ended; default: all of it again, its targets chosen anew.
    #[serde(default)]
    pub failed_only: bool,
}

/// Starts a launch of a script or command again, as `POST /api/v1/runs` does (by the caller,
/// who needs its run level): all of it, or only on the hosts that did not succeed.
#[utoipa::path(
    post,
    path = "/api/v1/launches/{id}/relaunch",
    tag = "runs",
    params(("id" = u64, Path, minimum = 1, description = "The launch's id")),
    request_body = Relaunch,
    responses(
        (status = 202, description = "Started", body = Launched),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 403, description = "Without the run level its job needs", body = ErrorBody),
        (status = 404, description = "No such launch, or its script or a host is gone", body = ErrorBody),
        (status = 409, description = "An upload or update (its file is not kept); with `failed_only`, not ended or no host failed; 64 launches are running", body = ErrorBody),
        (status = 422, description = "An unknown field or a wrong type", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn relaunch(
    auth: Auth<need::RunReadOnly>,
    State(api): State<ApiState>,
    Path(id): Path<u64>,
    Json(relaunch): Json<Relaunch>,
) -> Result<(StatusCode, axum::Json<Launched>), ApiError> {
    let launched = auth
        .ops()
        .relaunch(&api.launches, id, relaunch.failed_only)
        .await?;
    Ok((StatusCode::ACCEPTED, axum::Json(launched)))
}

/// One run (of one host), with its kept output.
#[utoipa::path(
    get,
    path = "/api/v1/runs/{id}",
    tag = "runs",
    params(("id" = i64, Path, minimum = 1, description = "The run's id")),
    responses(
        (status = 200, description = "The run", body = Run),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 404, description = "No such run", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn show(auth: Auth, Path(id): Path<i64>) -> Result<axum::Json<Run>, ApiError> {
    Ok(axum::Json(auth.ops().past_run(id).await?))
}

/// Cancels one host's run, by its id (whichever process started it).
#[utoipa::path(
    post,
    path = "/api/v1/runs/{id}/cancel",
    tag = "runs",
    params(("id" = i64, Path, minimum = 1, description = "The run's id")),
    responses(
        (status = 200, description = "What the agent did", body = Done),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 403, description = "Without the run level `read-write`", body = ErrorBody),
        (status = 404, description = "No such run", body = ErrorBody),
        (status = 503, description = "Its host cannot be reached", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn cancel(
    auth: Auth<need::RunReadWrite>,
    Path(id): Path<i64>,
) -> Result<axum::Json<Done>, ApiError> {
    Ok(axum::Json(auth.ops().cancel(id).await?))
}
