//! `/api/v1/scripts`: stored scripts, listed, shown with their attachments, added, replaced and
//! removed (with their variables only when asked to); and their attachments, each uploaded as
//! the raw request body, streamed to disk and into the store, never whole in memory.

use super::ApiState;
use super::auth::{Auth, need};
use super::environment::RemovalQuery;
use super::error::{ApiError, ErrorBody, Json, Path, Query};
use super::spool::spool;
use crate::model::{Attachment, Ids, Script};
use crate::ops::{
    AttachFile, AttachmentQuery, NewScript, OpsError, PathQuery, ScriptChange, ScriptDetail,
    ScriptUpdate,
};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

/// The largest attachment taken: runs upload attachments from memory.
pub const ATTACHMENT_LIMIT: u64 = 64 * 1024 * 1024;

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
        (status = 200, description = "The script", body = ScriptDetail),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 404, description = "No such script", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn show(
    auth: Auth,
    Path(name): Path<String>,
) -> Result<axum::Json<ScriptDetail>, ApiError> {
    Ok(axum::Json(auth.ops().script(&name).await?))
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
    params(("name" = String, Path, description = "The script"), RemovalQuery),
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
    Query(removal): Query<RemovalQuery>,
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
    State(api): State<ApiState>,
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
            template: query.template,
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
