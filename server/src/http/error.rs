//! Errors as the API answers them: a status from the operation's [`ErrorKind`] and a JSON body
//! `{"error": {"kind": …, "message": …}}` (with `detail` when the request left out what it
//! must name, [`Missing`], or a removal needs force, [`ForceNeeded`]: data a client phrases in
//! its own words); and the extractors (`Json`, `Query`, `Path`) whose
//! rejections (malformed JSON, an unknown field, a wrong type, a body too large) answer the same
//! way, never with a 500 or plain text.

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ops::{Detail, ErrorKind, ForceNeeded, Missing, OpsError};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    detail: Option<Detail>,
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
    /// `{"code": "no-hosts", "script": …}` or `{"code": "no-key-user"}`; or what a removal
    /// would take with it unless forced: `{"code": "has-variables", "scope", "owner",
    /// "variables"}`. Only on such errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Detail>,
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
        let message = match &e {
            OpsError::Missing(missing) => by_fields(missing),
            OpsError::ForceNeeded(needed) => by_force(needed),
            e => e.to_string(),
        };
        ApiError {
            detail: e.detail(),
            ..ApiError::new(status, name, message)
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

/// A removal refused without force, with the parameter that forces it.
fn by_force(needed: &ForceNeeded) -> String {
    format!("{needed}; give force=true to remove them too")
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

/// A JSON object as a request's body, refused as an [`ApiError`] when it is not one that
/// parses as `T`: 415 without `Content-Type: application/json`, 400 when it is not JSON, 422
/// when it is JSON but not such an object (an array too, which serde would read as a struct's
/// fields in order). A number with no fraction (`12444.0`) is an integer, as JSON Schema says.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::rejected(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Expected request with `Content-Type: application/json`".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::rejected(e.status(), e.body_text()))?;
        let mut value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            let message = format!("Failed to parse the request body as JSON: {e}");
            ApiError::rejected(StatusCode::BAD_REQUEST, message)
        })?;
        let invalid = |message| ApiError::rejected(StatusCode::UNPROCESSABLE_ENTITY, message);
        if !value.is_object() {
            return Err(invalid("the body must be a JSON object".into()));
        }
        integers(&mut value);
        serde_path_to_error::deserialize(value)
            .map(Json)
            .map_err(|e| invalid(format!("Failed to deserialize the JSON body: {e}")))
    }
}

/// Turns the numbers in `value` that have no fraction and fit an `i64` or `u64` into integers.
fn integers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(n) if n.is_f64() => {
            let whole = n.as_f64().filter(|f| f.fract() == 0.0);
            // The casts saturate; only a value that survives the round trip is taken.
            let integer = whole.and_then(|f| match f {
                f if f < 0.0 && (f as i64) as f64 == f => Some(serde_json::Number::from(f as i64)),
                f if f >= 0.0 && (f as u64) as f64 == f => Some(serde_json::Number::from(f as u64)),
                _ => None,
            });
            if let Some(integer) = integer {
                *n = integer;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integers),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(integers),
        _ => {}
    }
}

/// Whether `headers` say the body is JSON: `application/json`, or `application/…+json`.
fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let essence = essence.to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|subtype| subtype.ends_with("+json"))
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

/// A query string with lists, a key given again for each item (`?where=a&where=b`), refused as
/// an [`ApiError`] (400) when it does not parse as `T` or gives a parameter empty (which is
/// no value, not an absent one: `?state=` names no state).
pub struct ListQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ListQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let refused = |why: String| {
            let text = format!("Failed to deserialize query string: {why}");
            ApiError::rejected(StatusCode::BAD_REQUEST, text)
        };
        let mut pairs = form_urlencoded::parse(query.as_bytes());
        if let Some((key, _)) = pairs.find(|(_, v)| v.is_empty()) {
            return Err(refused(format!("`{key}` is empty")));
        }
        serde_html_form::from_str(query)
            .map(ListQuery)
            .map_err(|e| refused(e.to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::FleetError;

    #[tokio::test]
    async fn an_untrusted_agent_is_answered_with_its_code_and_no_command_line() {
        let refused = FleetError::KeyRefused {
            host: "r1".into(),
            presented: "SHA256:x".into(),
        };
        let response = ApiError::from(OpsError::Fleet(refused)).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body["error"]["detail"],
            serde_json::json!({"code": "key-pending", "host": "r1", "fingerprint": "SHA256:x"})
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("r1: "), "{message}");
        assert!(!message.contains("otto-server"), "{message}");
    }
}
