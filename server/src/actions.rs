//! What the server does to hosts, many at once: heartbeats, runs (attachments, script,
//! after-run action, history), uploads, control requests, key rotation and cancel. Every
//! operation goes through the fleet's live connections and records its outcome in the store;
//! what a person sees of a run's output goes through a [`LineSink`], with secrets redacted.

use std::sync::Arc;
use std::time::Duration;

use otto_proto::{Control, Credentials, ScriptTimeout, Stream};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::client::{self, Outcome, ScriptEvent, UploadSpec, new_action_id};
use crate::environment::{self, Assembled};
use crate::fleet::{Fleet, FleetError};
use crate::keys;
use crate::model::{self, AfterRun, Attachment, Facts, Host, Ids, Phase, RunEnd};
use crate::output::{Line, LineSplitter, MAX_LINE};
use crate::store::StoreError;

/// Which hosts an operation addresses.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    /// Every enabled host.
    pub all: bool,
    /// These hosts.
    pub hosts: Vec<String>,
    /// The members of these groups.
    pub groups: Vec<String>,
}

impl Targets {
    /// The enabled hosts addressed, each once, by name. Names that do not exist are errors;
    /// disabled hosts are left out.
    pub async fn resolve(&self, fleet: &Fleet) -> Result<Vec<Host>, StoreError> {
        let store = fleet.store();
        let mut hosts = if self.all {
            store.hosts().await?
        } else {
            Vec::new()
        };
        for name in &self.hosts {
            hosts.push(store.host(name).await?);
        }
        for group in &self.groups {
            hosts.extend(store.group_hosts(group).await?);
        }
        hosts.sort_by(|a, b| a.name.cmp(&b.name));
        hosts.dedup_by(|a, b| a.name == b.name);
        hosts.retain(|h| h.enabled);
        Ok(hosts)
    }

    /// Whether nothing was named.
    pub fn is_empty(&self) -> bool {
        !self.all && self.hosts.is_empty() && self.groups.is_empty()
    }
}

/// Receives each line of output as it arrives: host, stream, line (secrets already redacted).
pub type LineSink = Arc<dyn Fn(&str, Stream, &str) + Send + Sync>;

/// One host's answer to a heartbeat.
#[derive(Debug, Clone, Serialize)]
pub struct Ping {
    /// The host.
    pub host: String,
    /// Whether it answered.
    pub reachable: bool,
    /// Agent version.
    pub agent_version: Option<String>,
    /// Its facts.
    pub facts: Option<Facts>,
    /// Round trip of the heartbeat itself (connection set-up excluded).
    pub round_trip_ms: Option<f64>,
    /// Why not.
    pub error: Option<String>,
}

/// Sends a heartbeat to every host at once and records the answers.
pub async fn ping(fleet: &Arc<Fleet>, hosts: Vec<Host>) -> Vec<Ping> {
    for_each(fleet, hosts, |fleet, host| async move {
        let answer = async {
            let conn = fleet.connect(&host).await?;
            match conn.heartbeat().await {
                Ok(hb) => Ok(hb),
                Err(e) => {
                    fleet.failed(&host.name, &conn, &e).await;
                    Err(FleetError::Client(host.name.clone(), e))
                }
            }
        }
        .await;
        match answer {
            Ok(hb) => {
                let facts = hb.facts;
                let stored = fleet
                    .store()
                    .heartbeat_ok(&host.name, &hb.agent_version, &facts)
                    .await;
                Ping {
                    host: host.name,
                    reachable: true,
                    agent_version: Some(hb.agent_version),
                    facts: Some(facts),
                    round_trip_ms: Some(hb.round_trip.as_secs_f64() * 1000.0),
                    error: stored.err().map(|e| e.to_string()),
                }
            }
            Err(e) => {
                let error = e.to_string();
                if let Err(e) = fleet.store().heartbeat_failed(&host.name, &error).await {
                    tracing::error!(host = %host.name, "cannot record heartbeat: {e}");
                }
                Ping {
                    host: host.name,
                    reachable: false,
                    agent_version: None,
                    facts: None,
                    round_trip_ms: None,
                    error: Some(error),
                }
            }
        }
    })
    .await
}

/// Runs `f` for every host concurrently; results in the hosts' order.
async fn for_each<T, F, Fut>(fleet: &Arc<Fleet>, hosts: Vec<Host>, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Arc<Fleet>, Host) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let mut tasks = JoinSet::new();
    let count = hosts.len();
    for (i, host) in hosts.into_iter().enumerate() {
        let fut = f(fleet.clone(), host);
        tasks.spawn(async move { (i, fut.await) });
    }
    let mut results: Vec<Option<T>> = (0..count).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((i, value)) => {
                if let Some(slot) = results.get_mut(i) {
                    *slot = Some(value);
                }
            }
            Err(e) => tracing::error!("a host's task failed: {e}"),
        }
    }
    results.into_iter().flatten().collect()
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Job {
    /// What the history calls it: the script's name or `command: …`.
    pub label: String,
    /// The stored script's name (its environment layer), None for an ad-hoc command.
    pub script: Option<String>,
    /// The interpreter.
    pub interpreter: String,
    /// The script text.
    pub body: Vec<u8>,
    /// Run as.
    pub run_as: Option<Ids>,
    /// Working directory.
    pub working_dir: Option<String>,
    /// Timeout.
    pub timeout: ScriptTimeout,
    /// After a successful run.
    pub after_run: AfterRun,
    /// Files uploaded before and after.
    pub attachments: Vec<Attachment>,
}

impl Job {
    /// The stored script `name` with its attachments.
    pub async fn stored(fleet: &Fleet, name: &str) -> Result<Job, StoreError> {
        let store = fleet.store();
        let script = store.script(name).await?;
        Ok(Job {
            label: script.name.clone(),
            script: Some(script.name.clone()),
            interpreter: script.interpreter,
            body: script.body,
            run_as: script.run_as,
            working_dir: script.working_dir,
            timeout: timeout(script.timeout_secs),
            after_run: script.after_run,
            attachments: store.attachments(Some(name)).await?,
        })
    }

    /// An ad-hoc shell command.
    pub fn command(command: &str, timeout_secs: Option<u32>) -> Job {
        Job {
            label: format!("command: {command}"),
            script: None,
            interpreter: "/bin/sh".into(),
            body: format!("{command}\n").into_bytes(),
            run_as: None,
            working_dir: None,
            timeout: timeout(timeout_secs),
            after_run: AfterRun::None,
            attachments: Vec::new(),
        }
    }
}

/// A stored timeout (None: the agent's default; 0: none) as the protocol says it.
pub fn timeout(secs: Option<u32>) -> ScriptTimeout {
    match secs {
        None => ScriptTimeout::AgentDefault,
        Some(0) => ScriptTimeout::Unlimited,
        Some(s) => ScriptTimeout::Seconds(s),
    }
}

fn credentials(ids: Option<Ids>) -> Credentials {
    ids.map_or(Credentials::Inherit, |i| Credentials::Ids {
        uid: i.uid,
        gid: i.gid,
    })
}

/// How one host's run ended.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// The host.
    pub host: String,
    /// Its history entry, if one could be written.
    pub run: Option<i64>,
    /// Whether everything succeeded: attachments, script, after-run action.
    pub success: bool,
    /// How it ended, in words.
    pub outcome: String,
    /// Exit code, if the script exited.
    pub exit_code: Option<i32>,
    /// Time on the agent.
    pub elapsed_ms: Option<u64>,
}

/// Runs `job` on every host at once; lines go to `sink` as they arrive; each run is recorded
/// with up to `output_cap` bytes of each stream.
pub async fn run(
    fleet: &Arc<Fleet>,
    hosts: Vec<Host>,
    job: Job,
    output_cap: usize,
    sink: LineSink,
) -> Vec<RunResult> {
    let job = Arc::new(job);
    let all_env = match fleet.store().env(None).await {
        Ok(env) => Arc::new(env),
        Err(e) => {
            return hosts
                .into_iter()
                .map(|h| RunResult {
                    host: h.name,
                    run: None,
                    success: false,
                    outcome: format!("failed: {e}"),
                    exit_code: None,
                    elapsed_ms: None,
                })
                .collect();
        }
    };
    for_each(fleet, hosts, move |fleet, host| {
        let (job, all_env, sink) = (job.clone(), all_env.clone(), sink.clone());
        async move {
            let env = environment::assemble(&all_env, job.script.as_deref(), &host);
            let action = new_action_id();
            let recorded = fleet
                .store()
                .start_run(&host.name, &job.label, &format!("{action:016x}"))
                .await;
            let end = execute(&fleet, &host, &job, &env, action, output_cap, &sink).await;
            let run = match recorded {
                Ok(id) => match fleet.store().finish_run(id, &end).await {
                    Ok(()) => Some(id),
                    Err(e) => {
                        tracing::error!(host = %host.name, "cannot record the run: {e}");
                        None
                    }
                },
                Err(e) => {
                    tracing::error!(host = %host.name, "cannot record the run: {e}");
                    None
                }
            };
            RunResult {
                host: host.name.clone(),
                run,
                success: end.success,
                outcome: end.outcome,
                exit_code: end.exit_code,
                elapsed_ms: end.elapsed.map(|d| d.as_millis() as u64),
            }
        }
    })
    .await
}

fn failed(why: impl std::fmt::Display, secrets: &[String]) -> RunEnd {
    RunEnd {
        success: false,
        outcome: environment::redact(&format!("failed: {why}"), secrets),
        exit_code: None,
        elapsed: None,
        stdout: Vec::new(),
        stderr: Vec::new(),
        truncated: false,
    }
}

/// Output kept for the history: redacted lines up to a cap, each with its newline if it had
/// one (the pieces of a line too long for the splitter go back together).
struct Capture {
    data: Vec<u8>,
    cap: usize,
    truncated: bool,
}

impl Capture {
    fn keep(&mut self, text: &str, newline: bool) {
        if self.truncated {
            return;
        }
        let room = self.cap.saturating_sub(self.data.len());
        if text.len() + usize::from(newline) <= room {
            self.data.extend_from_slice(text.as_bytes());
            if newline {
                self.data.push(b'\n');
            }
        } else {
            let mut end = room.min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            // `end` is a character boundary within `text`.
            self.data
                .extend_from_slice(text.get(..end).unwrap_or_default().as_bytes());
            self.truncated = true;
        }
    }
}

async fn execute(
    fleet: &Fleet,
    host: &Host,
    job: &Job,
    env: &Assembled,
    action: otto_proto::ActionId,
    cap: usize,
    sink: &LineSink,
) -> RunEnd {
    let conn = match fleet.connect(host).await {
        Ok(conn) => conn,
        Err(e) => return failed(e, &env.secrets),
    };
    for a in job.attachments.iter().filter(|a| a.phase == Phase::Before) {
        if let Err(e) = upload_attachment(fleet, &host.name, &conn, a).await {
            return failed(format!("attachment {}: {e}", a.path), &env.secrets);
        }
    }
    let script = client::Script {
        name: job.label.clone(),
        interpreter: job.interpreter.clone(),
        body: job.body.clone(),
        env: env.vars.clone(),
        run_as: credentials(job.run_as),
        working_dir: job.working_dir.clone(),
        timeout: job.timeout,
    };
    let (tx, mut rx) = mpsc::channel(64);
    let run = conn.run_script(&script, action, tx);
    let capture = async {
        let mut out = (LineSplitter::new(MAX_LINE, &env.secrets), new_capture(cap));
        let mut err = (LineSplitter::new(MAX_LINE, &env.secrets), new_capture(cap));
        let emit = |stream: Stream, line: &Line, capture: &mut Capture| {
            let text = environment::redact(&line.text, &env.secrets);
            sink(&host.name, stream, &text);
            capture.keep(&text, line.newline);
        };
        while let Some(event) = rx.recv().await {
            if let ScriptEvent::Output { stream, data } = event {
                let (splitter, capture) = match stream {
                    Stream::Stdout => (&mut out.0, &mut out.1),
                    Stream::Stderr => (&mut err.0, &mut err.1),
                };
                for line in splitter.push(&data) {
                    emit(stream, &line, capture);
                }
            }
        }
        for (stream, (splitter, capture)) in
            [(Stream::Stdout, &mut out), (Stream::Stderr, &mut err)]
        {
            for line in splitter.finish() {
                emit(stream, &line, capture);
            }
        }
        (out.1, err.1)
    };
    let (report, (stdout, stderr)) = tokio::join!(run, capture);
    let truncated = stdout.truncated || stderr.truncated;
    let mut end = match report {
        Ok(report) => RunEnd {
            success: report.outcome.is_success(),
            outcome: environment::redact(&report.outcome.to_string(), &env.secrets),
            exit_code: match report.outcome {
                Outcome::Exited(code) => Some(code),
                _ => None,
            },
            elapsed: Some(report.elapsed),
            stdout: stdout.data,
            stderr: stderr.data,
            truncated,
        },
        Err(e) => {
            fleet.failed(&host.name, &conn, &e).await;
            let why = if e.missed_deadline() {
                e.to_string()
            } else {
                format!("connection lost: {e}")
            };
            RunEnd {
                stdout: stdout.data,
                stderr: stderr.data,
                truncated,
                ..failed(why, &env.secrets)
            }
        }
    };
    if !end.success {
        return end;
    }
    for a in job.attachments.iter().filter(|a| a.phase == Phase::After) {
        if let Err(e) = upload_attachment(fleet, &host.name, &conn, a).await {
            end.success = false;
            end.outcome = format!("{}, then attachment {} failed: {e}", end.outcome, a.path);
            return end;
        }
    }
    if let Some(control) = job.after_run.control() {
        match conn.control(control).await {
            Ok(r) if r.outcome.is_success() => {
                end.outcome = format!("{}, then {control:?}", end.outcome).to_lowercase();
            }
            Ok(r) => {
                end.success = false;
                end.outcome = format!("{}, then {control:?} {}", end.outcome, r.outcome);
            }
            Err(e) => {
                fleet.failed(&host.name, &conn, &e).await;
                end.success = false;
                end.outcome = format!("{}, then {control:?} failed: {e}", end.outcome);
            }
        }
    }
    end
}

fn new_capture(cap: usize) -> Capture {
    Capture {
        data: Vec::new(),
        cap,
        truncated: false,
    }
}

async fn upload_attachment(
    fleet: &Fleet,
    host: &str,
    conn: &client::Connection,
    a: &Attachment,
) -> Result<(), String> {
    let sha256 = parse_sha256(&a.sha256)?;
    let spec = UploadSpec {
        path: a.path.clone(),
        owner: credentials(a.owner),
        mode: a.mode,
        sha256,
        len: a.content.len() as u64,
    };
    let report = match conn
        .upload(&spec, new_action_id(), &a.content[..], |_| {})
        .await
    {
        Ok(report) => report,
        Err(e) => {
            fleet.failed(host, conn, &e).await;
            return Err(e.to_string());
        }
    };
    if report.outcome.is_success() {
        Ok(())
    } else {
        Err(report.outcome.to_string())
    }
}

fn parse_sha256(hex: &str) -> Result<[u8; 32], String> {
    let mut out = [0u8; 32];
    if hex.len() != 64 {
        return Err(format!("bad stored checksum {hex}"));
    }
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = hex
            .get(i * 2..i * 2 + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .ok_or_else(|| format!("bad stored checksum {hex}"))?;
    }
    Ok(out)
}

/// SHA-256 of `data`, hex.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The result of a simple operation on one host.
#[derive(Debug, Clone, Serialize)]
pub struct Done {
    /// The host.
    pub host: String,
    /// Whether it worked.
    pub success: bool,
    /// What happened, in words.
    pub detail: String,
}

fn done(host: String, result: Result<String, String>) -> Done {
    match result {
        Ok(detail) => Done {
            host,
            success: true,
            detail,
        },
        Err(detail) => Done {
            host,
            success: false,
            detail,
        },
    }
}

/// Sends a control request to every host.
pub async fn control(fleet: &Arc<Fleet>, hosts: Vec<Host>, request: Control) -> Vec<Done> {
    for_each(fleet, hosts, move |fleet, host| async move {
        let result = async {
            let conn = fleet.connect(&host).await.map_err(|e| e.to_string())?;
            let report = match conn.control(request).await {
                Ok(report) => report,
                Err(e) => {
                    fleet.failed(&host.name, &conn, &e).await;
                    return Err(e.to_string());
                }
            };
            if request == Control::Exit {
                fleet.forget(&host.name).await;
            }
            if report.outcome.is_success() {
                Ok(report.outcome.to_string())
            } else {
                Err(report.outcome.to_string())
            }
        }
        .await;
        done(host.name, result)
    })
    .await
}

/// Rotates the keys of every host.
pub async fn rotate(fleet: &Arc<Fleet>, hosts: Vec<Host>) -> Vec<Done> {
    for_each(fleet, hosts, |fleet, host| async move {
        let result = fleet
            .rotate(&host)
            .await
            .map(|key| format!("new agent key {}", keys::fingerprint(&key)))
            .map_err(|e| e.to_string());
        done(host.name, result)
    })
    .await
}

/// Cancels run `id` (recorded by a `run` that may be in another process).
pub async fn cancel(fleet: &Arc<Fleet>, id: i64) -> Result<Done, FleetError> {
    let (run, host) = {
        let store = fleet.store();
        let run = store.run(id).await?;
        let host = store.host(&run.host).await?;
        (run, host)
    };
    if run.finished.is_some() {
        return Ok(done(
            host.name,
            Err(format!("run {id} has already finished")),
        ));
    }
    let action = u64::from_str_radix(&run.action, 16)
        .map_err(|e| StoreError::Corrupt("action id", e.to_string()))?;
    let conn = fleet.connect(&host).await?;
    let found = match conn.cancel(action).await {
        Ok(found) => found,
        Err(e) => {
            fleet.failed(&host.name, &conn, &e).await;
            return Err(FleetError::Client(host.name.clone(), e));
        }
    };
    Ok(done(
        host.name,
        if found {
            Ok(format!("run {id} cancelled"))
        } else {
            Err(format!("the agent has no running action for run {id}"))
        },
    ))
}

/// A file to upload to many hosts.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The local file.
    pub source: std::path::PathBuf,
    /// The path on the hosts.
    pub path: String,
    /// Owner.
    pub owner: Option<Ids>,
    /// Mode.
    pub mode: u32,
}

/// Uploads a local file to every host at once, streaming it from disk; `progress` gets the
/// total bytes sent over all hosts so far.
pub async fn upload(
    fleet: &Arc<Fleet>,
    hosts: Vec<Host>,
    upload: Upload,
    progress: Arc<dyn Fn(u64) + Send + Sync>,
) -> Result<Vec<Done>, std::io::Error> {
    let (sha256, len) = hash_file(&upload.source).await?;
    let spec = Arc::new(UploadSpec {
        path: upload.path.clone(),
        owner: credentials(upload.owner),
        mode: upload.mode,
        sha256,
        len,
    });
    let source = Arc::new(upload.source);
    Ok(for_each(fleet, hosts, move |fleet, host| {
        let (spec, source, progress) = (spec.clone(), source.clone(), progress.clone());
        async move {
            let result = async {
                let conn = fleet.connect(&host).await.map_err(|e| e.to_string())?;
                let file = tokio::fs::File::open(&*source)
                    .await
                    .map_err(|e| format!("{}: {e}", source.display()))?;
                let mut last = 0;
                let uploaded = conn
                    .upload(&spec, new_action_id(), file, |sent| {
                        progress(sent - last);
                        last = sent;
                    })
                    .await;
                let report = match uploaded {
                    Ok(report) => report,
                    Err(e) => {
                        fleet.failed(&host.name, &conn, &e).await;
                        return Err(e.to_string());
                    }
                };
                if report.outcome.is_success() {
                    Ok(format!("{} bytes, sha256 verified", spec.len))
                } else {
                    Err(report.outcome.to_string())
                }
            }
            .await;
            done(host.name, result)
        }
    })
    .await)
}

async fn hash_file(path: &std::path::Path) -> Result<([u8; 32], u64), std::io::Error> {
    use tokio::io::AsyncReadExt;
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok((hasher.finalize().into(), len));
        }
        hasher.update(buf.get(..n).unwrap_or_default());
        len += n as u64;
    }
}

/// A stored attachment made from local bytes.
pub fn attachment(
    script: &str,
    path: &str,
    content: Vec<u8>,
    owner: Option<Ids>,
    mode: u32,
    phase: Phase,
) -> model::Attachment {
    model::Attachment {
        script: script.into(),
        path: path.into(),
        size: content.len() as u64,
        sha256: sha256_hex(&content),
        content,
        owner,
        mode,
        phase,
    }
}

/// How long a heartbeat or run took, for people.
pub fn human_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}
