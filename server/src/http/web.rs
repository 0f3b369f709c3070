//! The web UI's files, served with the API by `serve`: `GET /` is the app's page and `/ui/…`
//! its script modules and style sheet, all built into the binary from `server/web/` (no
//! front-end toolchain: plain HTML, CSS and JavaScript modules). The build script walks that
//! directory, so every file in it is served, with its type from its extension. Every answer
//! carries the same strict headers: a Content-Security-Policy that allows only this origin's files (no inline
//! script or style), no sniffing, no referrer, no framing; an ETag with `no-cache`, so a
//! browser asks again but a file that has not changed is not sent twice.

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::error::Path;

/// The policy of every UI answer: this origin's files only, nothing inline, never framed.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// One file of the UI.
struct Asset {
    /// Its path under `/ui/` (the page itself is also `/`).
    path: &'static str,
    /// Its `Content-Type`, from its extension.
    content_type: &'static str,
    /// Its bytes, as built in.
    bytes: &'static [u8],
}

/// `Asset { path, content_type, bytes }` of `server/web/<path>`.
macro_rules! asset {
    ($path:literal, $type:literal) => {
        Asset {
            path: $path,
            content_type: $type,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $path)),
        }
    };
}

/// Every file under `server/web/`, found by the build script (`server/build.rs`).
const ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// `GET /`: the app's page.
pub async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// `GET /ui/{path}`: one of the app's files, or 404.
pub async fn file(headers: HeaderMap, Path(path): Path<String>) -> Response {
    serve(&path, &headers)
}

/// The answer for the file at `path`, or 304 if the client has it (`If-None-Match`), or 404.
fn serve(path: &str, request: &HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.path == path) else {
        return secured(
            (
                StatusCode::NOT_FOUND,
                [(CONTENT_TYPE, "text/plain; charset=utf-8")],
                "no such file",
            )
                .into_response(),
        );
    };
    let etag = etag(asset.bytes);
    let fresh = request
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(CONTENT_TYPE, asset.content_type)], asset.bytes).into_response()
    };
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(ETAG, value);
    }
    secured(response)
}

/// A strong ETag of `bytes`: the start of their SHA-256, quoted.
fn etag(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// `response` with the headers every UI answer carries.
fn secured(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (CONTENT_SECURITY_POLICY, CSP),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (REFERRER_POLICY, "no-referrer"),
        (X_FRAME_OPTIONS, "DENY"),
        (CACHE_CONTROL, "no-cache"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
