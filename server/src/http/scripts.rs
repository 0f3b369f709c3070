//! `/api/v1/scripts`: stored scripts, listed, shown with their attachments, added, replaced and
//! removed (with their variables only when asked to); and their attachments, each uploaded as
//! the raw request body, streamed to disk and into the store, never whole in memory.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::Api;
use super::auth::{Auth, need};
use super::environment::Removal;
use super::error::{ApiError, ErrorBody, Json, Path, Query};
use super::spool::spool;
use crate::model::{AfterRun, Attachment, Ids, Phase, RunLevel, Script};
use crate::ops::{AttachFile, OpsError, ScriptChange};

/// The largest attachment taken: runs upload attachments from memory.
pub const ATTACHMENT_LIMIT: u64 = 64 * 1024 * 1024;

/// A script to save.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewScript {
    /// A unique name: 1 to 63 letters, digits, `.`, `_` and `-`, not starting with `.` or `-`.
    #[schema(
        min_length = 1,
        max_length = 63,
        pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]*$"
    )]
    pub name: String,
    /// The script text.
    pub body: String,
    /// The program that runs it (default `/bin/sh`).
    #[serde(default = "default_interpreter")]
    pub interpreter: String,
    /// Run as this user and group (the agent must be root).
    pub run_as: Option<Ids>,
    /// Working directory on the host.
    pub working_dir: Option<String>,
    /// Timeout in seconds (default an hour; 0: none).
    pub timeout_secs: Option<u32>,
    /// What to do after a successful run (default `none`).
    #[serde(default = "default_after_run")]
    pub after_run: AfterRun,
    /// Who may run it: `read-only` (users of that run level may) or `read-write` (the
    /// default: only users of that level).
    #[serde(default = "default_run_level")]
    pub run_level: RunLevel,
}

fn default_interpreter() -> String {
    "/bin/sh".into()
}

fn default_after_run() -> AfterRun {
    AfterRun::None
}

fn default_run_level() -> RunLevel {
    RunLevel::ReadWrite
}

impl From<NewScript> for Script {
    fn from(new: NewScript) -> Script {
        Script {
            name: new.name,
            interpreter: new.interpreter,
            body: new.body.into_bytes(),
            run_as: new.run_as,
            working_dir: new.working_dir,
            timeout_secs: new.timeout_secs,
            after_run: new.after_run,
            run_level: new.run_level,
        }
    }
}

/// A script's new settings: the fields given replace the stored ones, the fields left out are
/// kept (`null` clears `run_as`, `working_dir` and `timeout_secs`). A script that does not exist
/// yet is made, with the defaults of [`NewScript`] for what is left out; it needs `body`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScriptUpdate {
    /// The path's name, if given.
    pub name: Option<String>,
    /// The script text.
    pub body: Option<String>,
    /// The program that runs it.
    pub interpreter: Option<String>,
    /// Run as this user and group (`null`: as the agent).
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = Option<Ids>)]
    pub run_as: Option<Option<Ids>>,
    /// Working directory on the host (`null`: none).
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = Option<String>)]
    pub working_dir: Option<Option<String>>,
    /// Timeout in seconds (`null`: the default hour; 0: none).
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = Option<u32>)]
    pub timeout_secs: Option<Option<u32>>,
    /// What to do after a successful run.
    pub after_run: Option<AfterRun>,
    /// Who may run it: `read-only` or `read-write`.
    pub run_level: Option<RunLevel>,
}

/// A field that is present, even as `null` (`Some(None)`), told from one left out (`None`,
/// through `#[serde(default)]`).
fn given<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

impl From<ScriptUpdate> for ScriptChange {
    fn from(update: ScriptUpdate) -> ScriptChange {
        ScriptChange {
            body: update.body.map(String::into_bytes),
            interpreter: update.interpreter,
            run_as: update.run_as,
            working_dir: update.working_dir,
            timeout_secs: update.timeout_secs,
            after_run: update.after_run,
            run_level: update.run_level,
        }
    }
}

/// A script with its attachments.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScriptView {
    /// The script.
    #[serde(flatten)]
    pub script: Script,
    /// Its attachments, by path (without their content).
    pub attachments: Vec<Attachment>,
}

/// A file's place and metadata on the hosts, as query parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AttachmentQuery {
    /// Absolute path on the hosts.
    path: String,
    /// Mode, octal (default: the replaced attachment's, else 644).
    mode: Option<String>,
    /// Owner on the hosts, `UID:GID` (default: the replaced attachment's, else the agent's
    /// user).
    owner: Option<String>,
    /// Uploaded `before` or `after` the script (default: as the replaced attachment, else
    /// `before`).
    phase: Option<Phase>,
}

/// An attachment to remove.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PathQuery {
    /// Its path on the hosts.
    path: String,
}

/// A mode given as octal text (`644`, `0o600`), at most 7777; 644 when none is.
pub(super) fn file_mode(text: Option<&str>) -> Result<u32, OpsError> {
    Ok(given_mode(text)?.unwrap_or(0o644))
}

/// A mode given as octal text (`644`, `0o600`), at most 7777, if one is.
fn given_mode(text: Option<&str>) -> Result<Option<u32>, OpsError> {
    let Some(text) = text else { return Ok(None) };
    u32::from_str_radix(text.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .map(Some)
        .ok_or_else(|| OpsError::Invalid(format!("mode {text}: octal, at most 7777 (e.g. 644)")))
}

/// An owner given as `UID:GID`.
pub(super) fn file_owner(text: Option<&str>) -> Result<Option<Ids>, OpsError> {
    let Some(text) = text else { return Ok(None) };
    let ids = text.split_once(':').and_then(|(uid, gid)| {
        Some(Ids {
            uid: uid.parse().ok()?,
            gid: gid.parse().ok()?,
        })
    });
    ids.map(Some)
        .ok_or_else(|| OpsError::Invalid(format!("owner {text}: expected UID:GID, e.g. 0:0")))
}

/// Every script, by name.
#[utoipa::path(
    get,
    path = "/api/v1/scripts",
    tag = "scripts",
    responses(
        (status = 200, description = "Scripts, by name", body = Vec<Script>),
        (status = 401, description = "No credentials that work", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list(auth: Auth) -> Result<axum::Json<Vec<Script>>, ApiError> {
    Ok(axum::Json(auth.ops().scripts().await?))
}

/// One script with its attachments.
#[utoipa::path(
    get,
    path = "/api/v1/scripts/{name}",
    tag = "scripts",
    params(("name" = String, Path, description = "The script")),
    responses(
        (status = 200, description = "The script", body = ScriptView),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 404, description = "No such script", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn show(
    auth: Auth,
    Path(name): Path<String>,
) -> Result<axum::Json<ScriptView>, ApiError> {
    let detail = auth.ops().script(&name).await?;
    Ok(axum::Json(ScriptView {
        script: detail.script,
        attachments: detail.attachments,
    }))
}

/// Adds a script.
#[utoipa::path(
    post,
    path = "/api/v1/scripts",
    tag = "scripts",
    request_body = NewScript,
    responses(
        (status = 201, description = "Added"),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `scripts`", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 422, description = "A missing field, an unknown one, or a wrong type", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn add(
    auth: Auth<need::Scripts>,
    Json(new): Json<NewScript>,
) -> Result<StatusCode, ApiError> {
    let ops = auth.ops();
    ops.save_script(&Script::from(new), false).await?;
    Ok(StatusCode::CREATED)
}

/// Changes a script: the fields given replace its own, the others are kept (and its attachments
/// and groups); a script that does not exist yet is made, from at least its `body`.
#[utoipa::path(
    put,
    path = "/api/v1/scripts/{name}",
    tag = "scripts",
    params(("name" = String, Path, description = "The script")),
    request_body = ScriptUpdate,
    responses(
        (status = 204, description = "Saved"),
        (status = 400, description = "The body names another script, or a new script has no body", body = ErrorBody),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `scripts`", body = ErrorBody),
        (status = 422, description = "A missing field, an unknown one, or a wrong type", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn replace(
    auth: Auth<need::Scripts>,
    Path(name): Path<String>,
    Json(update): Json<ScriptUpdate>,
) -> Result<StatusCode, ApiError> {
    let ops = auth.ops();
    if let Some(named) = update.name.as_ref().filter(|named| **named != name) {
        let message = format!("the body names script {named}, the path {name}");
        return Err(OpsError::Invalid(message).into());
    }
    ops.change_script(&name, ScriptChange::from(update)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a script with its attachments. With variables of its own it is removed only with
/// `force=true`, which removes them too.
#[utoipa::path(
    delete,
    path = "/api/v1/scripts/{name}",
    tag = "scripts",
    params(("name" = String, Path, description = "The script"), Removal),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `scripts`", body = ErrorBody),
        (status = 404, description = "No such script", body = ErrorBody),
        (status = 409, description = "It has variables, and `force` was not given: `detail` names them (code `has-variables`)", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn remove(
    auth: Auth<need::Scripts>,
    Path(name): Path<String>,
    Query(removal): Query<Removal>,
) -> Result<StatusCode, ApiError> {
    auth.ops().remove_script(&name, removal.force).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Attaches a file, the raw request body (at most 64 MiB), to a script; one with the same path
/// is replaced, keeping the mode, owner and phase not given.
#[utoipa::path(
    put,
    path = "/api/v1/scripts/{name}/attachments",
    tag = "scripts",
    params(("name" = String, Path, description = "The script"), AttachmentQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "Attached", body = Attachment),
        (status = 400, description = "A bad path, mode or owner", body = ErrorBody),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `scripts`", body = ErrorBody),
        (status = 404, description = "No such script", body = ErrorBody),
        (status = 413, description = "Larger than 64 MiB", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn attach(
    auth: Auth<need::Scripts>,
    State(api): State<Api>,
    Path(name): Path<String>,
    Query(query): Query<AttachmentQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, axum::Json<Attachment>), ApiError> {
    let ops = auth.ops();
    let mode = given_mode(query.mode.as_deref())?;
    let owner = file_owner(query.owner.as_deref())?;
    let file = spool(&headers, body, ATTACHMENT_LIMIT, api.fleet.data_dir()).await?;
    let attachment = ops
        .attach_file(AttachFile {
            script: name,
            path: query.path,
            source: file.path().to_path_buf(),
            owner,
            mode,
            phase: query.phase,
        })
        .await?;
    Ok((StatusCode::CREATED, axum::Json(attachment)))
}

/// Removes an attachment.
#[utoipa::path(
    delete,
    path = "/api/v1/scripts/{name}/attachments",
    tag = "scripts",
    params(("name" = String, Path, description = "The script"), PathQuery),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the permission `scripts`", body = ErrorBody),
        (status = 404, description = "No such attachment", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn detach(
    auth: Auth<need::Scripts>,
    Path(name): Path<String>,
    Query(query): Query<PathQuery>,
) -> Result<StatusCode, ApiError> {
    let ops = auth.ops();
    ops.remove_attachment(&name, &query.path).await?;
    Ok(StatusCode::NO_CONTENT)
}
