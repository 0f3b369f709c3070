//! The command line as a client of a running `serve` (`--server URL`): a command sends the
//! same typed input to its route of the HTTP API and reads the same typed result, so what it
//! prints (`print/`) is as when it works on the data directory. The API key comes from the
//! file `--api-key-file` names or the environment's `OTTO_API_KEY`, never from an argument.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use otto_proto::Stream;
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;

use crate::model::{Event, Group, Host, Run, Script};
use crate::ops::{Launched, Ping, RunEvent, RunResult, Share, Status};
use crate::print::Printer;

use super::CliError;
use super::groups::GroupCommand;
use super::hosts::HostCommand;
use super::runs::RunArgs;
use super::scripts::ScriptCommand;
use super::targets::{TargetArgs, failures};

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
    /// The server refused the request, with its reason.
    #[error("the server answered {status}: {message}")]
    Refused {
        /// The HTTP status.
        status: StatusCode,
        /// The server's message.
        message: String,
    },
    /// An answer that is not what the API promises.
    #[error("the server's answer cannot be read: {0}")]
    Answer(String),
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
            RemoteError::Answer(_) => 7,
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

    /// Sends `method path` with `body` (if not null); the answer, or the server's reason.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: &Value,
    ) -> Result<reqwest::Response, RemoteError> {
        self.send_query(method, path, &[], body).await
    }

    /// [`Remote::send`] with `query`'s pairs after the path.
    async fn send_query(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: &Value,
    ) -> Result<reqwest::Response, RemoteError> {
        let mut url = self
            .base
            .join(path)
            .map_err(|e| RemoteError::Url(self.base.to_string(), e.to_string()))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut request = self.client.request(method, url).bearer_auth(&self.key);
        if !body.is_null() {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| RemoteError::Unreachable(self.base.to_string(), chain(&e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        Err(RemoteError::Refused {
            status,
            message: error_message(&text),
        })
    }

    /// `method path` with `body`, its JSON answer read as `T`.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &Value,
    ) -> Result<T, RemoteError> {
        self.get_query(method, path, &[], body).await
    }

    /// `GET path?query`, its JSON answer read as `T`.
    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, RemoteError> {
        self.get_query(Method::GET, path, query, &Value::Null).await
    }

    /// [`Remote::call`] with a query.
    async fn get_query<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: &Value,
    ) -> Result<T, RemoteError> {
        self.send_query(method, path, query, body)
            .await?
            .json()
            .await
            .map_err(|e| RemoteError::Answer(chain(&e)))
    }

    /// `host list`, `show`, `add` and `remove`.
    pub async fn host(&self, out: &Printer, command: HostCommand) -> Result<(), CliError> {
        match command {
            HostCommand::List => {
                let mut hosts = Vec::new();
                let mut after = None;
                loop {
                    let mut query = vec![("limit", "1000".to_string())];
                    query.extend(after.map(|a| ("after", a)));
                    let page: HostPage = self.get("/api/v1/hosts", &query).await?;
                    hosts.extend(page.hosts);
                    match page.next {
                        Some(next) => after = Some(next),
                        None => break,
                    }
                }
                out.hosts(&hosts);
            }
            HostCommand::Show { name } => {
                let path = format!("/api/v1/hosts/{name}");
                let view: HostView = self.get(&path, &[]).await?;
                out.host_detail(&view.host, &view.server_key);
            }
            HostCommand::Add {
                name,
                address,
                port,
                agent_key,
                pin_on_first_contact,
                groups,
            } => {
                let body = json!({
                    "name": name.as_str(),
                    "address": address,
                    "port": port,
                    "agent_key": agent_key,
                    "pin_on_first_contact": pin_on_first_contact,
                    "groups": groups,
                });
                let added: AddedHost = self.call(Method::POST, "/api/v1/hosts", &body).await?;
                out.host_added(&added.host, &added.server_key);
            }
            HostCommand::Remove { name, force } => {
                if !force {
                    let query = [("host", name.clone())];
                    let vars: Vec<Variable> = self.get("/api/v1/env", &query).await?;
                    if !vars.is_empty() {
                        let names: Vec<String> = vars.into_iter().map(|v| v.name).collect();
                        return Err(CliError::Usage(format!(
                            "host {name} has variables ({}); give --force to remove them too",
                            names.join(", ")
                        )));
                    }
                }
                let path = format!("/api/v1/hosts/{name}");
                self.send(Method::DELETE, &path, &Value::Null).await?;
                out.say(&format!("removed {name}"));
            }
            _ => return Err(not_yet("this `host` command")),
        }
        Ok(())
    }

    /// `group list`.
    pub async fn group(&self, out: &Printer, command: GroupCommand) -> Result<(), CliError> {
        let GroupCommand::List = command else {
            return Err(not_yet("this `group` command"));
        };
        out.groups(&self.get::<Vec<Group>>("/api/v1/groups", &[]).await?);
        Ok(())
    }

    /// `script list`.
    pub async fn script(&self, out: &Printer, command: ScriptCommand) -> Result<(), CliError> {
        let ScriptCommand::List = command else {
            return Err(not_yet("this `script` command"));
        };
        out.scripts(&self.get::<Vec<Script>>("/api/v1/scripts", &[]).await?);
        Ok(())
    }

    /// `ping`: a heartbeat from the daemon to the hosts named, or to all.
    pub async fn ping(&self, out: &Printer, t: TargetArgs) -> Result<(), CliError> {
        let t = t.targets();
        let body = json!({
            "all": t.all,
            "hosts": t.hosts,
            "groups": t.groups,
            "exclude": t.exclude,
            "exclude_groups": t.exclude_groups,
        });
        let results: Vec<Ping> = self.call(Method::POST, "/api/v1/ping", &body).await?;
        out.ping(&results);
        failures(results.iter().map(|p| Status::of(p.reachable)))
    }

    /// `history`: past runs (without their output: `--run ID` has it), or one run in full.
    pub async fn history(
        &self,
        out: &Printer,
        host: Option<String>,
        run: Option<i64>,
        limit: u32,
    ) -> Result<(), CliError> {
        match run {
            Some(id) => out.run_detail(&self.get::<Run>(&format!("/api/v1/runs/{id}"), &[]).await?),
            None => {
                let mut query = vec![("limit", limit.to_string())];
                query.extend(host.map(|h| ("host", h)));
                out.history(&self.get::<Vec<Run>>("/api/v1/runs", &query).await?);
            }
        }
        Ok(())
    }

    /// `events`: the event log.
    pub async fn events(
        &self,
        out: &Printer,
        host: Option<String>,
        limit: u32,
    ) -> Result<(), CliError> {
        let mut query = vec![("limit", limit.to_string())];
        query.extend(host.map(|h| ("host", h)));
        out.events(&self.get::<Vec<Event>>("/api/v1/events", &query).await?);
        Ok(())
    }

    /// `run` through the API: starts the launch, prints its events as a local run prints
    /// them, and cancels it when `interrupt` completes (Ctrl-C).
    pub async fn run(
        &self,
        out: &Printer,
        args: RunArgs,
        interrupt: impl Future<Output = ()>,
    ) -> Result<(), CliError> {
        let request = new_run(&args)?;
        let launched: Launched = self.call(Method::POST, "/api/v1/runs", &request).await?;
        let width = launched.hosts.iter().map(String::len).max().unwrap_or(0);
        let names: Vec<&str> = launched.hosts.iter().map(String::as_str).collect();
        out.started(&names, json!({ "job": launched.job }));
        let live = out.live_run(width, names.len());
        let path = format!("/api/v1/launches/{}/events", launched.launch);
        let mut response = self.send(Method::GET, &path, &Value::Null).await?;
        let mut buffer = Vec::new();
        let mut interrupt = std::pin::pin!(interrupt);
        let mut interrupted = false;
        let results = loop {
            while let Some(data) = next_event(&mut buffer) {
                match serde_json::from_str::<LaunchEvent>(&data) {
                    Ok(LaunchEvent::Output { host, stream, text }) => live(RunEvent::Line {
                        host: &host,
                        stream: match stream.as_str() {
                            "stderr" => Stream::Stderr,
                            _ => Stream::Stdout,
                        },
                        text: &text,
                    }),
                    Ok(LaunchEvent::Done(result)) => live(RunEvent::Done(&result)),
                    Ok(LaunchEvent::Gap { dropped }) => eprintln!(
                        "otto-server: {dropped} events of output were dropped by the server \
                         (`history` keeps the output)"
                    ),
                    Ok(LaunchEvent::Summary { results }) => {
                        drop(response);
                        return ended(out, results, interrupted);
                    }
                    Ok(LaunchEvent::Error { message }) => {
                        return Err(RemoteError::Refused {
                            status: StatusCode::INTERNAL_SERVER_ERROR,
                            message,
                        }
                        .into());
                    }
                    Ok(LaunchEvent::Started) => {}
                    Err(e) => return Err(RemoteError::Answer(e.to_string()).into()),
                }
            }
            let chunk = tokio::select! {
                chunk = response.chunk() => chunk,
                () = &mut interrupt, if !interrupted => {
                    interrupted = true;
                    eprintln!(
                        "otto-server: interrupted: cancelling the runs on their hosts \
                         (interrupt again to exit at once)"
                    );
                    let cancel = format!("/api/v1/launches/{}/cancel", launched.launch);
                    self.send(Method::POST, &cancel, &Value::Null).await?;
                    continue;
                }
            };
            match chunk {
                Ok(Some(chunk)) => buffer.extend_from_slice(&chunk),
                Ok(None) => break None,
                Err(e) => {
                    return Err(RemoteError::Unreachable(self.base.to_string(), chain(&e)).into());
                }
            }
        };
        match results {
            Some(results) => ended(out, results, interrupted),
            None => Err(RemoteError::Answer(
                "the live output ended before the run's summary (the server stopping?); \
                 `history` will have how each host ended"
                    .into(),
            )
            .into()),
        }
    }
}

/// Prints the summary of a run that has ended; how the command ends.
fn ended(out: &Printer, results: Vec<RunResult>, interrupted: bool) -> Result<(), CliError> {
    out.run_summary(&results);
    if interrupted {
        let cancelled = results
            .iter()
            .filter(|r| r.outcome.starts_with("cancelled"))
            .count();
        return Err(CliError::Interrupted(format!(
            "the run was cancelled on {cancelled} of {} hosts",
            results.len()
        )));
    }
    failures(results.iter().map(|r| r.status))
}

/// A page of `GET /api/v1/hosts`.
#[derive(Deserialize)]
struct HostPage {
    hosts: Vec<Host>,
    next: Option<String>,
}

/// `GET /api/v1/hosts/{name}`.
#[derive(Deserialize)]
struct HostView {
    #[serde(flatten)]
    host: Host,
    server_key: String,
}

/// `POST /api/v1/hosts`.
#[derive(Deserialize)]
struct AddedHost {
    host: String,
    server_key: String,
}

/// A variable of `GET /api/v1/env`, by name.
#[derive(Deserialize)]
struct Variable {
    name: String,
}

/// What a command says that works only on the server's machine so far.
pub fn not_yet(what: &str) -> CliError {
    CliError::Usage(format!(
        "{what} is not available through --server yet: run it on the server's machine"
    ))
}

/// One event of a launch, as `GET /api/v1/launches/{id}/events` sends it.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum LaunchEvent {
    Started,
    Output {
        host: String,
        stream: String,
        text: String,
    },
    Done(RunResult),
    Gap {
        dropped: u64,
    },
    Summary {
        results: Vec<RunResult>,
    },
    Error {
        message: String,
    },
}

/// The body of `POST /api/v1/runs` for `args`; what the API cannot do is refused.
fn new_run(args: &RunArgs) -> Result<Value, CliError> {
    if args.output_dir.is_some() {
        return Err(CliError::Usage(
            "--output-dir is not available through --server yet".into(),
        ));
    }
    let count = |share: Option<Share>, flag: &str| match share {
        None => Ok(None),
        Some(Share::Count(n)) => Ok(Some(n)),
        Some(Share::Percent(_)) => Err(CliError::Usage(format!(
            "{flag} as a percentage is not available through --server yet: give a number"
        ))),
    };
    let t = args.targets.targets();
    Ok(json!({
        "script": args.script,
        "command": args.command,
        "timeout_secs": args.timeout,
        "all": t.all,
        "hosts": t.hosts,
        "groups": t.groups,
        "exclude": t.exclude,
        "exclude_groups": t.exclude_groups,
        "batch": count(args.rollout.batch, "--batch")?,
        "max_failures": count(args.rollout.max_failures, "--max-failures")?,
        "output_cap": args.output_cap,
    }))
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
fn system_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!("system certificates: {error}");
    }
    roots.add_parsable_certificates(found.certs);
    roots
}

/// The message of an API error body, or the body itself.
fn error_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.pointer("/error/message")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| body.trim().to_string())
}

/// An error with its causes: reqwest's own message alone rarely says what went wrong.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The data of the next complete Server-Sent Event in `buffer` (removed from it), skipping
/// comments (keep-alives); None until one is complete.
fn next_event(buffer: &mut Vec<u8>) -> Option<String> {
    loop {
        let end = buffer.windows(2).position(|w| w == b"\n\n")?;
        let block: Vec<u8> = buffer.drain(..end + 2).collect();
        let block = String::from_utf8_lossy(&block);
        let data: Vec<&str> = block
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect();
        if !data.is_empty() {
            return Some(data.join("\n"));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn events_are_read_whole_keep_alives_skipped() {
        let mut buffer = b": keep-alive\n\nevent: output\ndata: {\"a\":".to_vec();
        assert_eq!(next_event(&mut buffer), None);
        buffer.extend_from_slice(b"1}\n\nevent: done\ndata: 2\n\n");
        assert_eq!(next_event(&mut buffer).as_deref(), Some("{\"a\":1}"));
        assert_eq!(next_event(&mut buffer).as_deref(), Some("2"));
        assert_eq!(next_event(&mut buffer), None);
        assert!(buffer.is_empty());
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
            error_message(r#"{"error":{"kind":"forbidden","message":"no"}}"#),
            "no"
        );
    }
}
