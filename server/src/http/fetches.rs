//! `/api/v1/fetches`: one file brought back from many hosts. The server fetches each host's
//! copy (checked against the length and SHA-256 its agent announced) into its data directory
//! and answers each host's result with the copy's size and checksum; each copy is then
//! downloaded from `/api/v1/fetches/{id}/{host}` for an hour.

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::auth::{Auth, need};
use super::error::{ApiError, ErrorBody, Json, Path};
use crate::ops::{DryRun, FetchCheck, FetchRequest, Fetched, UploadCheck};

/// Fetches a file from the hosts named, as the rollout goes: each host's result, with its
/// copy's size, SHA-256 and mode. A host whose file is missing, longer than `max_bytes` or
/// unreadable, or that cannot be reached, fails alone.
#[utoipa::path(
    post,
    path = "/api/v1/fetches",
    tag = "uploads",
    request_body = FetchRequest,
    responses(
        (status = 200, description = "Each host's result", body = Fetched),
        (status = 400, description = "No hosts named, a relative path, a bad pattern or limit", body = ErrorBody),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Below the run level `read-write`", body = ErrorBody),
        (status = 404, description = "A name or glob that matches no host or group", body = ErrorBody),
        (status = 422, description = "An unknown field or a wrong type", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn fetch(
    auth: Auth<need::RunReadWrite>,
    Json(request): Json<FetchRequest>,
) -> Result<axum::Json<Fetched>, ApiError> {
    Ok(axum::Json(auth.ops().fetch_for_api(request).await?))
}

/// Which hosts a fetch would copy from, and what each has at the path (asked of its agent,
/// which changes nothing); nothing is copied.
#[utoipa::path(
    post,
    path = "/api/v1/dry-run/fetches",
    tag = "uploads",
    request_body = FetchCheck,
    responses(
        (status = 200, description = "What it would do", body = DryRun),
        (status = 400, description = "No hosts named, a relative path, a bad pattern", body = ErrorBody),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Below the run level `read-write`", body = ErrorBody),
        (status = 404, description = "A name or glob that matches no host or group", body = ErrorBody),
        (status = 422, description = "An unknown field or a wrong type", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn dry_run(
    auth: Auth<need::RunReadWrite>,
    Json(check): Json<FetchCheck>,
) -> Result<axum::Json<DryRun>, ApiError> {
    Ok(axum::Json(auth.ops().dry_run_fetch(check).await?))
}

/// Which hosts an upload (the file named by its checksum and length, not sent) would go to,
/// and which of them already have it as it would be written; nothing is sent.
#[utoipa::path(
    post,
    path = "/api/v1/dry-run/uploads",
    tag = "uploads",
    request_body = UploadCheck,
    responses(
        (status = 200, description = "What it would do", body = DryRun),
        (status = 400, description = "No hosts named, a relative path, a bad checksum or pattern", body = ErrorBody),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Below the run level `read-write`", body = ErrorBody),
        (status = 404, description = "A name or glob that matches no host or group", body = ErrorBody),
        (status = 422, description = "An unknown field or a wrong type", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn dry_run_upload(
    auth: Auth<need::RunReadWrite>,
    Json(check): Json<UploadCheck>,
) -> Result<axum::Json<DryRun>, ApiError> {
    Ok(axum::Json(auth.ops().dry_run_upload(check).await?))
}

/// One host's copy of a fetch, as its bytes, while it is kept (an hour).
#[utoipa::path(
    get,
    path = "/api/v1/fetches/{id}/{host}",
    tag = "uploads",
    params(
        ("id" = String, Path, max_length = 64, description = "The fetch's id"),
        ("host" = String, Path, max_length = 63, description = "The host"),
    ),
    responses(
        (status = 200, description = "The copy", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Below the run level `read-write`", body = ErrorBody),
        (status = 404, description = "No such fetch or copy (or no longer)", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn copy(
    auth: Auth<need::RunReadWrite>,
    Path((id, host)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (path, size) = auth.ops().fetched_copy(&id, &host).await?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| crate::ops::OpsError::File(path.clone(), e))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("copy")
        .to_owned();
    let mut response = Body::from_stream(tokio_util::io::ReaderStream::new(file)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    // The host's name and the file's are safe in a header (names follow the host-name rule;
    // a file name is any bytes, so it is quoted only when plain).
    if name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{host}-{name}\""))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
