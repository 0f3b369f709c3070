//! Errors as the API answers them: a status from the operation's [`ErrorKind`] and a JSON body
//! `{"error": {"kind": …, "message": …}}` (with `detail` when the request left out what it
//! must name: [`Missing`], which a client phrases in its own words); and the extractors (`Json`, `Query`, `Path`) whose
//! rejections (malformed JSON, an unknown field, a wrong type, a body too large) answer the same
//! way, never with a 500 or plain text.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ops::{ErrorKind, Missing, OpsError};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    detail: Option<Missing>,
}

/// The body of an error answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Its kind: `invalid`, `unauthenticated`, `forbidden`, `not-found`, `conflict`,
    /// `too-large`, `unavailable`, `internal`…
    pub kind: &'static str,
    /// In words (the API's: the fields of its requests).
    pub message: String,
    /// What the request left out that it must name, for a client to ask for in its own words:
    /// `{"code": "no-hosts", "script": …}` or `{"code": "no-key-user"}`. Only on such errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Missing>,
}

impl ApiError {
    /// An answer with `status`, of kind `kind`.
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            message: message.into(),
            detail: None,
        }
    }

    /// A request refused before any operation: the status the extractor chose.
    fn rejected(status: StatusCode, message: String) -> ApiError {
        let kind = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "too-large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
            s if s.is_server_error() => "internal",
            _ => "invalid",
        };
        ApiError::new(status, kind, message)
    }
}

impl From<OpsError> for ApiError {
    fn from(e: OpsError) -> ApiError {
        let kind = e.kind();
        let status =
            StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let name = match kind {
            ErrorKind::Invalid => "invalid",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not-found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::DataDir | ErrorKind::Internal => "internal",
        };
        if status.is_server_error() {
            tracing::warn!(error = %e, "API request failed");
        }
        match e {
            OpsError::Missing(missing) => ApiError {
                message: by_fields(&missing),
                detail: Some(missing),
                ..ApiError::new(status, name, "")
            },
            e => ApiError::new(status, name, e.to_string()),
        }
    }
}

/// What a request left out, asked for by the fields that give it.
fn by_fields(missing: &Missing) -> String {
    let hosts = "name the hosts: `hosts`, `groups` or `all`";
    match missing {
        Missing::NoHosts { script: None } => hosts.into(),
        Missing::NoHosts {
            script: Some(script),
        } => format!("{hosts} (script {script} is assigned to no group)"),
        Missing::NoKeyUser => "name the user the key is for (`user`)".into(),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let unauthenticated = self.status == StatusCode::UNAUTHORIZED;
        let body = ErrorBody {
            error: ErrorDetail {
                kind: self.kind,
                message: self.message,
                detail: self.detail,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if unauthenticated {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"otto\""),
            );
        }
        response
    }
}

/// A JSON body, refused as an [`ApiError`] when it does not parse as `T`.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        axum::Json::<T>::from_request(req, state)
            .await
            .map(|axum::Json(value)| Json(value))
            .map_err(|e: JsonRejection| ApiError::rejected(e.status(), e.body_text()))
    }
}

/// A query string, refused as an [`ApiError`] when it does not parse as `T`.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(|e: QueryRejection| ApiError::rejected(e.status(), e.body_text()))
    }
}

/// Path parameters, refused as an [`ApiError`] when they do not parse as `T`.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Path(value))
            .map_err(|e: PathRejection| ApiError::rejected(e.status(), e.body_text()))
    }
}
