//! `/api/v1/uploads`: a file, the raw request body, copied to hosts, groups or every host; it
//! is streamed to a temporary file in the data directory first, then to each host from there
//! (checked by the agents against its SHA-256) in the background, as a *launch*: the answer
//! says its id at once, and its events (`/api/v1/launches/{id}/events`) tell each host's
//! progress and end, then the summary.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use utoipa::IntoParams;

use super::ApiState;
use super::auth::{Auth, need};
use super::error::{ApiError, ErrorBody, ListQuery};
use super::scripts::{file_mode, file_owner};
use super::spool::{spool, within};
use crate::ops::{Launched, OpsError, RolloutOptions, Share, Targets, UPLOAD_LIMIT, Upload};

/// Where the file goes, and how it is written there.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// Absolute path on the hosts.
    path: String,
    /// Mode, octal (default 644).
    mode: Option<String>,
    /// Owner on the hosts, `UID:GID` (default: the agent's user).
    owner: Option<String>,
    /// Hosts: names or globs, comma-separated.
    hosts: Option<String>,
    /// The members of these groups: names or globs, comma-separated.
    groups: Option<String>,
    /// Every enabled host.
    #[serde(default)]
    all: bool,
    /// But not these hosts: names or globs, comma-separated.
    exclude: Option<String>,
    /// Nor the members of these groups: names or globs, comma-separated.
    exclude_groups: Option<String>,
    /// Only the hosts whose facts match this selector (`arch=mips`, `flash_free<2MiB`),
    /// repeated for each (all must match); alone, among every enabled host.
    #[serde(default, rename = "where")]
    #[param(rename = "where", max_items = 16)]
    selectors: Vec<String>,
    /// Upload to this many hosts at a time (`2`), or this share of them (`25%`), the next
    /// batch once one is done.
    batch: Option<String>,
    /// Start no further batch once more than this many hosts (`0`), or this share of them
    /// (`10%`), have failed (those not started are skipped).
    max_failures: Option<String>,
    /// Send the file even to hosts whose file already has its checksum and mode (and owner,
    /// when one is given); without it, those are sent nothing and their result says
    /// `"changed": false`.
    #[serde(default)]
    force: bool,
    /// The body is a template (Jinja2's syntax, UTF-8, at most 64 MiB): rendered for each host
    /// with its environment (secrets included), `host` and `facts`, and the rendering sent; an
    /// error is that host's failure, naming the line.
    #[serde(default)]
    template: bool,
}

/// The items of a comma-separated list.
fn items(list: Option<&str>) -> Vec<String> {
    list.into_iter()
        .flat_map(|l| l.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Copies the body (at most 1 GiB) to the hosts named, as `path`, in the background: answers
/// once it has the body, with the launch's id. Its events (`GET /api/v1/launches/{id}/events`)
/// are `started`, `progress` of each host (`host`, `sent`, `bytes`), `uploaded` as each host
/// ends (its result, with `changed`: false when the host already had the file and was sent
/// nothing), and `upload-summary` last (`succeeded`, `failed`, `cancelled`, `skipped`,
/// `results`); `POST /api/v1/launches/{id}/cancel` stops it.
#[utoipa::path(
    post,
    path = "/api/v1/uploads",
    tag = "uploads",
    params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 202, description = "Started", body = Launched),
        (status = 400, description = "No hosts named, a bad path, mode, owner or batch, or a template larger than 64 MiB or not UTF-8", body = ErrorBody),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Below the run level `read-write`", body = ErrorBody),
        (status = 404, description = "A name or glob that matches no host or group", body = ErrorBody),
        (status = 409, description = "64 launches are still running", body = ErrorBody),
        (status = 413, description = "Larger than 1 GiB", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn upload(
    auth: Auth<need::RunReadWrite>,
    State(api): State<ApiState>,
    ListQuery(query): ListQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, axum::Json<Launched>), ApiError> {
    let ops = auth.ops();
    let targets = Targets {
        all: query.all,
        hosts: items(query.hosts.as_deref()),
        groups: items(query.groups.as_deref()),
        exclude: items(query.exclude.as_deref()),
        exclude_groups: items(query.exclude_groups.as_deref()),
        selectors: query.selectors,
    };
    let share = |text: Option<&str>| {
        text.map(Share::parse)
            .transpose()
            .map_err(OpsError::Invalid)
    };
    let rollout = RolloutOptions {
        batch: share(query.batch.as_deref())?,
        max_failures: share(query.max_failures.as_deref())?,
    };
    rollout.rollout()?;
    if !query.path.starts_with('/') {
        let message = format!("{}: the path on the hosts must be absolute", query.path);
        return Err(OpsError::Invalid(message).into());
    }
    let owner = file_owner(query.owner.as_deref())?;
    let mode = file_mode(query.mode.as_deref())?;
    // A body said to be too large, or hosts that are not there, are refused before the body
    // is read.
    within(&headers, UPLOAD_LIMIT)?;
    ops.resolve(&targets).await?;
    let file = spool(&headers, body, UPLOAD_LIMIT, api.fleet.data_dir()).await?;
    let upload = Upload {
        source: file.path().to_path_buf(),
        path: query.path,
        owner,
        mode,
        force: query.force,
        template: query.template,
    };
    let launched = ops
        .launch_upload(&api.launches, targets, rollout, upload, file)
        .await?;
    Ok((StatusCode::ACCEPTED, axum::Json(launched)))
}
