//! The HTTP client of a running `serve` (`--server URL`): its key, its certificate, requests
//! and their errors. Each command is written once, over `cli::api`'s traits, which this client
//! implements by sending the command's typed input to its route and reading the same typed
//! result back, so what a command prints (`print/`) is as when it works on the data directory.
//! The API key comes from the file `--api-key-file` names or the environment's
//! `OTTO_API_KEY`, never from an argument.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;

use crate::ops::{Detail, ForceNeeded};

use super::CliError;

/// The environment variable holding the API key.
pub const API_KEY_VAR: &str = "OTTO_API_KEY";

/// Why working through `serve` failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// No API key was given.
    #[error(
        "--server needs an API key: set {API_KEY_VAR} or give --api-key-file FILE \
         (`otto-server apikey create` on the server's machine makes one)"
    )]
    NoKey,
    /// The key given is not one (a key is printable ASCII: `otto_` and hex digits).
    #[error("the API key from {0} is not one: it has spaces or control characters")]
    BadKey(String),
    /// The key file cannot be read, or holds no key.
    #[error("API key file {0}: {1}")]
    KeyFile(PathBuf, String),
    /// The certificate to trust cannot be used.
    #[error("certificate {0}: {1}")]
    CaCert(PathBuf, String),
    /// The URL cannot be used.
    #[error("--server {0}: {1}")]
    Url(String, String),
    /// The server could not be reached, or the connection failed.
    #[error("cannot reach the server at {0}: {1}")]
    Unreachable(String, String),
    /// The server refused the request, with its reason: the API's message, said as the same
    /// refusal is said locally (its exit code from the status).
    #[error("{message}")]
    Refused {
        /// The HTTP status.
        status: StatusCode,
        /// The server's message (with the status, for an answer that is not the API's error).
        message: String,
    },
    /// The server refused a removal that would take variables with it, without force (as
    /// the same removal is refused locally).
    #[error("{0}")]
    ForceNeeded(ForceNeeded),
    /// An answer that is not what the API promises.
    #[error("the server's answer cannot be read: {0}")]
    Answer(String),
    /// A request body that cannot be written as JSON.
    #[error("the request cannot be written: {0}")]
    Request(String),
}

impl RemoteError {
    /// The process exit code, as for the same failure on the data directory: from the status
    /// the API gives each kind of error.
    pub fn exit_code(&self) -> u8 {
        match self {
            RemoteError::NoKey | RemoteError::BadKey(_) | RemoteError::KeyFile(..) => 2,
            RemoteError::CaCert(..) => 2,
            RemoteError::Url(..) => 2,
            RemoteError::Unreachable(..) => 3,
            RemoteError::Refused { status, .. } => exit_code_of(*status),
            RemoteError::ForceNeeded(_) => 5,
            RemoteError::Answer(_) | RemoteError::Request(_) => 7,
        }
    }
}

/// The exit code for an API error's status (the inverse of `ErrorKind::http_status`).
fn exit_code_of(status: StatusCode) -> u8 {
    match status.as_u16() {
        401 | 403 => 8,
        404 => 4,
        409 => 5,
        503 => 3,
        400..=499 => 2,
        _ => 7,
    }
}

/// A client of one `serve`'s API, with its key.
#[derive(Clone)]
pub struct Remote {
    client: reqwest::Client,
    base: Url,
    key: String,
}

impl Remote {
    /// A client of the API at `url`, with the key from `key_file` (else `OTTO_API_KEY`),
    /// trusting `ca_cert` (else the system's roots); `connect` is the time allowed to connect.
    pub fn new(
        url: &str,
        key_file: Option<&Path>,
        ca_cert: Option<&Path>,
        connect: Duration,
    ) -> Result<Remote, RemoteError> {
        let base = base_url(url)?;
        let key = match key_file {
            Some(path) => read_key(path)?,
            None => std::env::var(API_KEY_VAR)
                .ok()
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty())
                .ok_or(RemoteError::NoKey)?,
        };
        if !key.chars().all(|c| c.is_ascii_graphic()) {
            let from = key_file.map_or(API_KEY_VAR.into(), |p| p.display().to_string());
            return Err(RemoteError::BadKey(from));
        }
        let roots = match ca_cert {
            Some(path) => pinned(path)?,
            None => system_roots(),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| RemoteError::Url(url.into(), e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(connect)
            .build()
            .map_err(|e| RemoteError::Url(url.into(), e.to_string()))?;
        Ok(Remote { client, base, key })
    }

    /// Sends `method path` with `body` as JSON (none when it serializes to null: `&()` or
    /// `&None`); the answer, or the server's reason.
    pub(super) async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<reqwest::Response, RemoteError> {
        let body = serde_json::to_value(body).map_err(|e| RemoteError::Request(e.to_string()))?;
        let payload = match &body {
            Value::Null => Payload::Empty,
            body => Payload::Json(body),
        };
        self.request(method, path, &(), payload).await
    }

    /// Sends `method path?query` with `payload` (`query` as a form: pairs, or a struct whose
    /// fields are the parameters); the answer, or the server's reason.
    pub(super) async fn request<Q: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        query: &Q,
        payload: Payload<'_>,
    ) -> Result<reqwest::Response, RemoteError> {
        let url = self
            .base
            .join(path)
            .map_err(|e| RemoteError::Url(self.base.to_string(), e.to_string()))?;
        let mut request = self
            .client
            .request(method, url)
            .query(query)
            .bearer_auth(&self.key);
        request = match payload {
            Payload::Empty => request,
            Payload::Json(body) => request.json(body),
            Payload::Stream(body) => request
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(body),
        };
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        if let Some(Detail::ForceNeeded(needed)) = error_detail(&text) {
            return Err(RemoteError::ForceNeeded(needed));
        }
        let message = error_message(&text)
            .unwrap_or_else(|| format!("the server answered {status}: {}", text.trim()));
        Err(RemoteError::Refused { status, message })
    }

    /// The server's URL.
    pub(crate) fn base(&self) -> &Url {
        &self.base
    }

    /// The server could not be reached: why, and for a certificate that no authority this
    /// client trusts vouches for (serve's self-signed one), how to trust it.
    fn unreachable(&self, e: &reqwest::Error) -> RemoteError {
        let mut why = chain(e);
        if unknown_issuer(e) {
            why.push_str(
                "; if it is serve's self-signed certificate, trust a copy of it: \
                 --ca-cert <serve's data directory>/http.crt (or OTTO_CA_CERT)",
            );
        }
        RemoteError::Unreachable(self.base.to_string(), why)
    }

    /// `method path` with `body` (as for [`Remote::send`]), its JSON answer read as `T`.
    pub(super) async fn call<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T, RemoteError> {
        read(self.send(method, path, body).await?).await
    }

    /// `GET path?query`, its JSON answer read as `T`.
    pub(super) async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, RemoteError> {
        read(
            self.request(Method::GET, path, query, Payload::Empty)
                .await?,
        )
        .await
    }
}

/// What a request carries.
pub(super) enum Payload<'a> {
    /// Nothing.
    Empty,
    /// A JSON body.
    Json(&'a Value),
    /// Raw bytes, streamed (a file).
    Stream(reqwest::Body),
}

/// The JSON answer of `response` read as `T`.
pub(super) async fn read<T: DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, RemoteError> {
    response
        .json()
        .await
        .map_err(|e| RemoteError::Answer(chain(&e)))
}

/// `name` as one segment of a path: every byte but letters, digits and `-._~` escaped.
pub(super) fn segment(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// What a command says that cannot work through `serve` by its nature, and why.
pub fn local_only(what: &str, why: &str) -> CliError {
    CliError::Usage(format!(
        "{what} does not work through --server: {why}; run it on the server's machine"
    ))
}

/// `url` as the base of the API's paths: HTTPS, or plain HTTP to this machine only (a key
/// must not cross the network readable).
fn base_url(url: &str) -> Result<Url, RemoteError> {
    let bad = |why: &str| RemoteError::Url(url.into(), why.into());
    let parsed = Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    let host = parsed.host_str().ok_or_else(|| bad("no host"))?;
    let loopback = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Err(bad("plain http only to this machine; use https")),
        _ => return Err(bad("give an https:// URL")),
    }
    Ok(parsed)
}

/// The key in the file at `path`: its text, trimmed.
fn read_key(path: &Path) -> Result<String, RemoteError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| RemoteError::KeyFile(path.into(), e.to_string()))?;
    let key = text.trim();
    if key.is_empty() {
        return Err(RemoteError::KeyFile(path.into(), "empty".into()));
    }
    Ok(key.to_string())
}

/// Exactly the certificates in the PEM file at `path`.
fn pinned(path: &Path) -> Result<rustls::RootCertStore, RemoteError> {
    let bad = |e: String| RemoteError::CaCert(path.into(), e);
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))? {
        roots
            .add(cert.map_err(|e| bad(e.to_string()))?)
            .map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("no certificate in it".into()));
    }
    Ok(roots)
}

/// The system's root certificates (those it cannot read are left out, as a browser does).
pub(crate) fn system_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!("system certificates: {error}");
    }
    roots.add_parsable_certificates(found.certs);
    roots
}

/// The message of an API error body, if it is one; what a request left out (`error.detail`)
/// is asked for by the command line's flags, and an untrusted agent's remedy named by its
/// command, as without `--server`.
fn error_message(body: &str) -> Option<String> {
    let message = serde_json::from_str::<Value>(body)
        .ok()?
        .pointer("/error/message")?
        .as_str()?
        .to_owned();
    Some(match error_detail(body) {
        Some(Detail::Missing(missing)) => super::by_flags(&missing),
        Some(Detail::Untrusted(untrusted)) => {
            format!("{message} ({})", crate::print::remedy(&untrusted))
        }
        _ => message,
    })
}

/// What an API error body carries as data (`error.detail`), if anything.
fn error_detail(body: &str) -> Option<Detail> {
    let json = serde_json::from_str::<Value>(body).ok()?;
    serde_json::from_value(json.pointer("/error/detail")?.clone()).ok()
}

/// Whether `e` or one of its causes is rustls refusing a certificate signed by no authority
/// the client trusts. A TLS error reaches reqwest inside an `io::Error` (in another one), whose
/// `source` skips it: those are opened with `get_ref`.
fn unknown_issuer(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(error) = next {
        if matches!(
            error.downcast_ref::<rustls::Error>(),
            Some(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            ))
        ) {
            return true;
        }
        next = match error.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => error.source(),
        };
    }
    false
}

/// An error with its causes: reqwest's own message alone rarely says what went wrong.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_in_paths_are_escaped() {
        assert_eq!(segment("lab-1.x_y~"), "lab-1.x_y~");
        assert_eq!(segment("a b/c?d%"), "a%20b%2Fc%3Fd%25");
        assert_eq!(segment("é"), "%C3%A9");
    }

    #[test]
    fn plain_http_only_to_this_machine() {
        assert!(base_url("https://otto.example:8443").is_ok());
        assert!(base_url("http://127.0.0.1:8080").is_ok());
        assert!(base_url("http://localhost:8080").is_ok());
        for bad in ["http://otto.example", "ftp://x", "otto.example", ""] {
            assert_eq!(base_url(bad).unwrap_err().exit_code(), 2, "{bad}");
        }
    }

    #[test]
    fn api_errors_exit_as_their_kind_does_locally() {
        use crate::ops::ErrorKind::*;
        for kind in [
            Invalid,
            NotFound,
            Conflict,
            Unavailable,
            Unauthenticated,
            Forbidden,
        ] {
            let status = StatusCode::from_u16(kind.http_status()).unwrap();
            assert_eq!(exit_code_of(status), kind.exit_code(), "{kind:?}");
        }
        assert_eq!(exit_code_of(StatusCode::INTERNAL_SERVER_ERROR), 7);
        assert_eq!(
            error_message(r#"{"error":{"kind":"forbidden","message":"no"}}"#).as_deref(),
            Some("no")
        );
        assert_eq!(error_message("<html>Bad Gateway</html>"), None);
        let missing = r#"{"error":{"kind":"invalid","message":"name the hosts: `hosts`, `groups` or `all`",
            "detail":{"code":"no-hosts","script":null}}}"#;
        assert_eq!(
            error_message(missing).as_deref(),
            Some("name the hosts: --host HOST, --group GROUP or --all")
        );
        // An untrusted agent: the API's fact, its remedy by the command line's command.
        let pending = r#"{"error":{"kind":"unavailable","message":"r1: refused",
            "detail":{"code":"key-pending","host":"r1","fingerprint":"SHA256:x"}}}"#;
        assert_eq!(
            error_message(pending).as_deref(),
            Some("r1: refused (approve with `otto-server host approve r1`)")
        );
    }
}
