//! Request bodies too large to hold in memory (attachments, uploads): streamed as they arrive
//! to a temporary file in the data directory, up to a cap, for an operation to read from there.
//! The file is removed when the handler drops it, whatever the outcome.

use std::path::Path;

use axum::body::Body;
use axum::http::header::CONTENT_LENGTH;
use axum::http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use tempfile::NamedTempFile;
use tokio::io::AsyncWriteExt;

use super::error::ApiError;
use crate::ops::OpsError;

/// The refusal (413) of a body larger than `limit` bytes.
fn too_large(limit: u64) -> ApiError {
    let message = format!("the body is larger than the limit of {limit} bytes");
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", message)
}

/// Refuses (413) a body whose `Content-Length` says it is larger than `limit` bytes, before
/// anything else is asked of the request.
pub fn within(headers: &HeaderMap, limit: u64) -> Result<(), ApiError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    Ok(())
}

/// Writes `body` to a new temporary file in `dir`, refusing (413) one that says or turns out
/// to be larger than `limit` bytes.
pub async fn spool(
    headers: &HeaderMap,
    body: Body,
    limit: u64,
    dir: &Path,
) -> Result<NamedTempFile, ApiError> {
    within(headers, limit)?;
    let internal = |e: std::io::Error| ApiError::from(OpsError::File(dir.to_path_buf(), e));
    let temp = tempfile::Builder::new()
        .prefix(".body-")
        .tempfile_in(dir)
        .map_err(internal)?;
    let mut file = tokio::fs::File::from_std(temp.as_file().try_clone().map_err(internal)?);
    let mut body = body;
    let mut written = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            let message = format!("the body could not be read to its end: {e}");
            ApiError::new(StatusCode::BAD_REQUEST, "invalid", message)
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        written += data.len() as u64;
        if written > limit {
            return Err(too_large(limit));
        }
        file.write_all(&data).await.map_err(internal)?;
    }
    file.flush().await.map_err(internal)?;
    Ok(temp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse;

    #[tokio::test]
    async fn a_body_is_kept_whole_up_to_its_limit_and_refused_beyond() {
        let dir = tempfile::tempdir().unwrap();
        let none = HeaderMap::new();
        let kept = spool(&none, Body::from("abcd"), 4, dir.path())
            .await
            .unwrap();
        assert_eq!(std::fs::read(kept.path()).unwrap(), b"abcd");

        // Beyond the limit without saying so: refused as it arrives, and its file is gone.
        let refused = spool(&none, Body::from("abcde"), 4, dir.path()).await;
        assert_eq!(
            refused.unwrap_err().into_response().status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        // Saying so: refused before any of it is read.
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_LENGTH, "5".parse().unwrap());
        let refused = spool(&headers, Body::from(""), 4, dir.path()).await;
        assert_eq!(
            refused.unwrap_err().into_response().status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        drop(kept);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
