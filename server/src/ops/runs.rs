//! Runs: a stored script (with its attachments and after-run action) or an ad-hoc command on
//! many hosts at once, output and each host's end streamed to a [`RunSink`] with secrets
//! redacted, output kept in the history; and the cancel of a run by its id.

use std::sync::Arc;

use otto_proto::{ScriptTimeout, Stream};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::uploads::{credentials, upload_attachment};
use super::{Done, Missing, Ops, OpsError, Result, Status, Targets};
use crate::client::{self, Outcome, ScriptEvent, new_action_id};
use crate::environment::{self, Assembled, Redactor};
use crate::fleet::{Fleet, FleetError, Untrusted};
use crate::model::{
    AfterRun, Attachment, EventKind, Host, Ids, NewRunRecord, Phase, RunEnd, RunLevel,
};
use crate::output::{Line, LineSplitter, MAX_LINE};
use crate::store::StoreError;

/// What a run reports as it goes, to whoever follows it live.
#[derive(Debug, Clone, Copy)]
pub enum RunEvent<'a> {
    /// A line of output as it arrives (secrets already redacted).
    Line {
        /// The host.
        host: &'a str,
        /// Standard output or error.
        stream: Stream,
        /// The line, without its newline.
        text: &'a str,
    },
    /// Output as the agent sent it, before it is split into lines or redacted: for whoever
    /// keeps the bytes themselves (per-host output files).
    Data {
        /// The host.
        host: &'a str,
        /// Standard output or error.
        stream: Stream,
        /// The bytes of one chunk, in order.
        data: &'a [u8],
    },
    /// A host's run has ended, as the summary will have it.
    Done(&'a RunResult),
}

/// Receives a run's [`RunEvent`]s as they happen.
pub type RunSink = Arc<dyn Fn(RunEvent<'_>) + Send + Sync>;

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// A stored script, by name, with its attachments and after-run action.
    Script {
        /// The script's name.
        name: String,
        /// This run's timeout in whole seconds (0: none) instead of the script's own, which
        /// else applies (without one: 1 hour).
        timeout_secs: Option<u32>,
    },
    /// An ad-hoc shell command.
    Command {
        /// The command line, for `/bin/sh`: not empty, not only white space.
        command: String,
        /// Its timeout in whole seconds (0: none; without one: 1 hour).
        timeout_secs: Option<u32>,
    },
}

impl Job {
    /// A stored script with its own timeout.
    pub fn script(name: impl Into<String>) -> Job {
        Job::Script {
            name: name.into(),
            timeout_secs: None,
        }
    }

    /// What the history calls it: the script's name or `command: …`.
    pub fn label(&self) -> String {
        match self {
            Job::Script { name, .. } => name.clone(),
            Job::Command { command, .. } => command_label(command),
        }
    }

    /// `Invalid` if the job cannot run: an empty command (or one of white space only).
    fn check(&self) -> Result<()> {
        match self {
            Job::Command { command, .. } if command.trim().is_empty() => Err(OpsError::Invalid(
                "the command is empty: give a command for /bin/sh".into(),
            )),
            _ => Ok(()),
        }
    }
}

/// What the history calls an ad-hoc command.
fn command_label(command: &str) -> String {
    format!("command: {command}")
}

/// A [`Job`] with everything it needs from the store.
#[derive(Debug, Clone)]
struct Prepared {
    /// What the history calls it: the script's name or `command: …`.
    label: String,
    /// The stored script's name (its environment layer), None for an ad-hoc command.
    script: Option<String>,
    interpreter: String,
    body: Vec<u8>,
    run_as: Option<Ids>,
    working_dir: Option<String>,
    timeout: ScriptTimeout,
    after_run: AfterRun,
    /// Files uploaded before and after.
    attachments: Vec<Attachment>,
}

impl Prepared {
    /// The stored script `name` with its attachments; `timeout_secs`, if given, instead of its
    /// own timeout.
    async fn stored(fleet: &Fleet, name: &str, timeout_secs: Option<u32>) -> Result<Prepared> {
        let store = fleet.store();
        let script = store.script(name).await?;
        Ok(Prepared {
            label: script.name.clone(),
            script: Some(script.name.clone()),
            interpreter: script.interpreter,
            body: script.body,
            run_as: script.run_as,
            working_dir: script.working_dir,
            timeout: timeout(timeout_secs.or(script.timeout_secs)),
            after_run: script.after_run,
            attachments: store.attachments(Some(name)).await?,
        })
    }

    /// An ad-hoc shell command.
    fn command(command: &str, timeout_secs: Option<u32>) -> Prepared {
        Prepared {
            label: command_label(command),
            script: None,
            interpreter: "/bin/sh".into(),
            body: command_body(command),
            run_as: None,
            working_dir: None,
            timeout: timeout(timeout_secs),
            after_run: AfterRun::None,
            attachments: Vec::new(),
        }
    }
}

/// The script an ad-hoc command is sent as: the command and a newline, for `/bin/sh`.
pub(super) fn command_body(command: &str) -> Vec<u8> {
    format!("{command}\n").into_bytes()
}

/// The one rule for a run's timeout, as the protocol says it: whole seconds, `0` for none,
/// given for the run (`run --timeout`, `timeout_secs`) or else the stored script's own; without
/// either, the default hour ([`ScriptTimeout::DEFAULT_SECS`]) is said explicitly, whatever the
/// agent's own configuration (an older agent's default was 30 s), so every run's end is bounded
/// by the server too.
fn timeout(secs: Option<u32>) -> ScriptTimeout {
    match secs {
        None => ScriptTimeout::Seconds(ScriptTimeout::DEFAULT_SECS),
        Some(0) => ScriptTimeout::Unlimited,
        Some(s) => ScriptTimeout::Seconds(s),
    }
}

/// How one host's run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunResult {
    /// The host.
    pub host: String,
    /// Its history entry, if one could be written.
    pub run: Option<i64>,
    /// Whether everything succeeded: attachments, script, after-run action.
    pub success: bool,
    /// Whether it succeeded, failed or was not started.
    pub status: Status,
    /// How it ended, in words.
    pub outcome: String,
    /// Exit code, if the script exited.
    pub exit_code: Option<i32>,
    /// Time on the agent.
    pub elapsed_ms: Option<u64>,
    /// It could not be connected to (unreachable, refused, a wrong or no agent key); only
    /// said when so.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unreached: bool,
    /// Why its agent is not trusted, when that is why it could not be connected to; only said
    /// when so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untrusted: Option<Untrusted>,
}

impl Ops {
    /// The run level `job` needs, `Forbidden` if the actor's is lower: a stored script's own
    /// (read-only or read-write), read-write for an ad-hoc command. A stored script that does
    /// not exist is not found.
    pub async fn require_job(&self, job: &Job) -> Result<RunLevel> {
        let (level, what) = match job {
            Job::Script { name, .. } => {
                let script = self.fleet.store().script(name).await?;
                (script.run_level, format!("script {name}"))
            }
            Job::Command { .. } => (RunLevel::ReadWrite, "a command".to_owned()),
        };
        match &self.permissions {
            Some(p) if p.run_level() < level => Err(OpsError::Forbidden(format!(
                "{what} needs the run level `{}`; yours is `{}`",
                level.as_str(),
                p.run_level().as_str()
            ))),
            _ => Ok(level),
        }
    }

    /// The hosts a run of `job` addresses: the enabled hosts `targets` names, or, when it names
    /// none, for a stored script the enabled members of the groups the script is assigned to.
    /// A job that cannot run (an empty command) is refused first, `Invalid`.
    pub async fn run_hosts(&self, targets: &Targets, job: &Job) -> Result<Vec<Host>> {
        job.check()?;
        let name = match job {
            Job::Script { name, .. } if targets.is_empty() => name,
            _ => return self.resolve(targets).await,
        };
        let store = self.fleet.store();
        store.script(name).await?;
        let groups: Vec<String> = store
            .groups()
            .await?
            .into_iter()
            .filter(|g| g.scripts.contains(name))
            .map(|g| g.name)
            .collect();
        if groups.is_empty() {
            return Err(OpsError::Missing(Missing::NoHosts {
                script: Some(name.clone()),
            }));
        }
        self.resolve(&Targets {
            groups,
            ..Targets::default()
        })
        .await
    }

    /// Runs `job` on the hosts [`Ops::run_hosts`] finds, all at once; lines go to `sink` as they
    /// arrive, and each host's end (a host skipped too) as it comes; each run is recorded
    /// (`run-started` naming the actor, then `run-finished`) with up to `output_cap` bytes of
    /// each stream. Needs the run level the job needs ([`Ops::require_job`]).
    ///
    /// Once these operations' [`Cancellation`](super::Cancellation) is set, the scripts
    /// running are cancelled on their hosts (a run not at its script yet stops there), each
    /// such run recorded with the outcome `cancelled` and a `run-cancelled` event, and the
    /// hosts not started are skipped.
    pub async fn run(
        &self,
        targets: &Targets,
        job: &Job,
        output_cap: usize,
        sink: RunSink,
    ) -> Result<Vec<RunResult>> {
        self.require_job(job).await?;
        let hosts = self.run_hosts(targets, job).await?;
        let job = Arc::new(match job {
            Job::Script { name, timeout_secs } => {
                Prepared::stored(&self.fleet, name, *timeout_secs).await?
            }
            Job::Command {
                command,
                timeout_secs,
            } => Prepared::command(command, *timeout_secs),
        });
        let all_env = match self.fleet.store().env(None).await {
            Ok(env) => Arc::new(env),
            Err(e) => {
                let results: Vec<RunResult> = hosts
                    .into_iter()
                    .map(|h| RunResult {
                        host: h.name,
                        run: None,
                        success: false,
                        status: Status::Failed,
                        outcome: format!("failed: {e}"),
                        exit_code: None,
                        elapsed_ms: None,
                        unreached: false,
                        untrusted: None,
                    })
                    .collect();
                for result in &results {
                    sink(RunEvent::Done(result));
                }
                return Ok(results);
            }
        };
        let actor = self.actor.to_string();
        let ended = sink.clone();
        let run_one = move |ops: Ops, host: Host| {
            let (job, all_env, sink, actor) =
                (job.clone(), all_env.clone(), sink.clone(), actor.clone());
            async move {
                let fleet = &ops.fleet;
                let env = environment::assemble(&all_env, job.script.as_deref(), &host);
                let action = new_action_id();
                let record = NewRunRecord {
                    host: host.name.clone(),
                    what: job.label.clone(),
                    action: format!("{action:016x}"),
                    actor: actor.clone(),
                    launch: ops.launch,
                };
                let recorded = fleet.store().start_run(&record).await;
                let (end, cancelled) =
                    execute(&ops, &host, &job, &env, action, output_cap, &sink).await;
                if let (Ok(id), true) = (&recorded, cancelled) {
                    let detail = format!("run {id}: {} (action {action:016x})", job.label);
                    ops.note(&host.name, EventKind::RunCancelled, &detail).await;
                }
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
                    status: if end.cancelled {
                        Status::Cancelled
                    } else {
                        Status::of(end.success)
                    },
                    outcome: end.outcome,
                    exit_code: end.exit_code,
                    elapsed_ms: end.elapsed.map(|d| d.as_millis() as u64),
                    unreached: false,
                    untrusted: None,
                }
            }
        };
        Ok(self
            .for_each_reporting(hosts, run_one, |result| {
                ended(RunEvent::Done(result));
            })
            .await)
    }

    /// Cancels run `id` (recorded by a `run` that may be in another process); records
    /// `run-cancelled` when the agent stopped it.
    pub async fn cancel(&self, id: i64) -> Result<Done> {
        let fleet = &self.fleet;
        let (run, host) = {
            let store = fleet.store();
            let run = store.run(id).await?;
            let host = store.host(&run.host).await?;
            (run, host)
        };
        if run.finished.is_some() {
            return Ok(Done::new(
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
                return Err(OpsError::Fleet(FleetError::Client(host.name.clone(), e)));
            }
        };
        if !found {
            return Ok(Done::new(
                host.name,
                Err(format!("the agent has no running action for run {id}")),
            ));
        }
        self.record(
            Some(&host.name),
            EventKind::RunCancelled,
            &format!("run {id}: {} (action {})", run.what, run.action),
        )
        .await?;
        Ok(Done::new(host.name, Ok(format!("run {id} cancelled"))))
    }
}

fn failed(why: impl std::fmt::Display, secrets: &[String]) -> RunEnd {
    RunEnd {
        success: false,
        cancelled: false,
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

/// The end of a run cancelled before its script started.
fn cancelled_before() -> RunEnd {
    RunEnd {
        cancelled: true,
        outcome: "cancelled before the script started".into(),
        ..failed("", &[])
    }
}

/// Runs `job` on `host`: its attachments, script and after-run action. Returns how it ended,
/// and whether `ops`' cancellation stopped it.
async fn execute(
    ops: &Ops,
    host: &Host,
    job: &Prepared,
    env: &Assembled,
    action: otto_proto::ActionId,
    cap: usize,
    sink: &RunSink,
) -> (RunEnd, bool) {
    let (fleet, cancellation) = (&ops.fleet, &ops.cancellation);
    // Until the script is sent, a cancel stops at once: an upload cut short leaves no file.
    let before = async {
        let conn = fleet
            .connect(host)
            .await
            .map_err(|e| failed(e, &env.secrets))?;
        for a in job.attachments.iter().filter(|a| a.phase == Phase::Before) {
            if let Err(e) = upload_attachment(fleet, host, env, &conn, a).await {
                return Err(failed(format!("attachment {}: {e}", a.path), &env.secrets));
            }
        }
        Ok(conn)
    };
    let conn = tokio::select! {
        conn = before => match conn {
            Ok(conn) => conn,
            Err(end) => return (end, false),
        },
        () = cancellation.cancelled() => return (cancelled_before(), true),
    };
    let conn = &conn;
    // The script, then, if it succeeded, its after-run attachments and action.
    let end = async {
        let script = client::ScriptRequest {
            name: job.label.clone(),
            interpreter: job.interpreter.clone(),
            body: job.body.clone(),
            env: env.vars.clone(),
            run_as: credentials(job.run_as),
            working_dir: job.working_dir.clone(),
            timeout: job.timeout,
        };
        let (tx, mut rx) = mpsc::channel(64);
        let run = conn.run_script_until(&script, action, tx, cancellation.cancelled());
        let capture = async {
            // Per stream: secrets redacted from the bytes as they come (a secret may span
            // chunks and lines), then split into lines.
            let stream = || {
                let splitter = LineSplitter::new(MAX_LINE);
                (Redactor::new(&env.secrets), splitter, new_capture(cap))
            };
            let (mut out, mut err) = (stream(), stream());
            let emit = |stream: Stream, line: &Line, capture: &mut Capture| {
                sink(RunEvent::Line {
                    host: &host.name,
                    stream,
                    text: &line.text,
                });
                capture.keep(&line.text, line.newline);
            };
            while let Some(event) = rx.recv().await {
                if let ScriptEvent::Output { stream, data } = event {
                    sink(RunEvent::Data {
                        host: &host.name,
                        stream,
                        data: &data,
                    });
                    let (redactor, splitter, capture) = match stream {
                        Stream::Stdout => (&mut out.0, &mut out.1, &mut out.2),
                        Stream::Stderr => (&mut err.0, &mut err.1, &mut err.2),
                    };
                    for line in splitter.push(&redactor.push(&data)) {
                        emit(stream, &line, capture);
                    }
                }
            }
            for (stream, (redactor, splitter, capture)) in
                [(Stream::Stdout, &mut out), (Stream::Stderr, &mut err)]
            {
                let mut lines = splitter.push(&redactor.finish());
                lines.extend(splitter.finish());
                for line in lines {
                    emit(stream, &line, capture);
                }
            }
            (out.2, err.2)
        };
        let (report, (stdout, stderr)) = tokio::join!(run, capture);
        let truncated = stdout.truncated || stderr.truncated;
        let mut end = match report {
            Ok(report) => RunEnd {
                success: report.outcome.is_success(),
                // By this server's cancel, or by one from elsewhere (`cancel ID`).
                cancelled: report.outcome == Outcome::Cancelled,
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
                fleet.failed(&host.name, conn, &e).await;
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
            if let Err(e) = upload_attachment(fleet, host, env, conn, a).await {
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
                    fleet.failed(&host.name, conn, &e).await;
                    end.success = false;
                    end.outcome = format!("{}, then {control:?} failed: {e}", end.outcome);
                }
            }
        }
        end
    }
    .await;
    let cancelled = cancellation.is_cancelled() && end.cancelled;
    (end, cancelled)
}

fn new_capture(cap: usize) -> Capture {
    Capture {
        data: Vec::new(),
        cap,
        truncated: false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::Cancellation;
    use super::super::ErrorKind;
    use super::super::testing::{events, fleet};
    use super::*;
    use crate::names::HostName;

    fn quiet() -> RunSink {
        Arc::new(|_| {})
    }

    #[tokio::test]
    async fn a_run_is_recorded_once_naming_its_actor_even_when_the_host_is_down() {
        let (_dir, ops) = fleet(&["a"]).await;
        let job = Job::Command {
            command: "true".into(),
            timeout_secs: None,
        };
        let results = ops.run(&Targets::all(), &job, 1024, quiet()).await.unwrap();
        assert_eq!(results.len(), 1);
        let r = &results[0];
        assert!(!r.success && r.outcome.starts_with("failed: "), "{r:?}");
        let id = r.run.unwrap();
        let started = events(&ops, "run-started").await;
        assert_eq!(started.len(), 1, "{started:?}");
        assert_eq!(started[0].actor.as_deref(), Some("cli:alice"));
        assert_eq!(started[0].host.as_deref(), Some("a"));
        assert!(
            started[0]
                .detail
                .starts_with(&format!("run {id}: command: true (action ")),
            "{started:?}"
        );
        assert_eq!(events(&ops, "run-finished").await.len(), 1);

        // A finished run cannot be cancelled: nothing is recorded.
        let done = ops.cancel(id).await.unwrap();
        assert!(!done.success);
        assert_eq!(done.detail, format!("run {id} has already finished"));
        assert!(events(&ops, "run-cancelled").await.is_empty());
    }

    #[tokio::test]
    async fn a_cancelled_run_starts_no_host_and_records_nothing() {
        let (_dir, ops) = fleet(&["a", "b"]).await;
        let cancellation = Cancellation::new();
        cancellation.cancel();
        let ops = ops.cancellable(cancellation);
        let job = Job::Command {
            command: "true".into(),
            timeout_secs: None,
        };
        let results = ops.run(&Targets::all(), &job, 1024, quiet()).await.unwrap();
        let outcomes: Vec<(&str, &str)> = results
            .iter()
            .map(|r| (r.host.as_str(), r.outcome.as_str()))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("a", "not started: cancelled"),
                ("b", "not started: cancelled")
            ]
        );
        assert!(results.iter().all(|r| !r.success && r.run.is_none()));
        assert!(events(&ops, "run-started").await.is_empty());
    }

    #[tokio::test]
    async fn an_empty_command_is_invalid_and_nothing_starts() {
        let (_dir, ops) = fleet(&["a"]).await;
        for command in ["", " \t\n "] {
            let job = Job::Command {
                command: command.into(),
                timeout_secs: None,
            };
            let err = ops.run(&Targets::all(), &job, 1024, quiet()).await;
            assert_eq!(err.unwrap_err().kind(), ErrorKind::Invalid, "{command:?}");
            let err = ops.run_hosts(&Targets::all(), &job).await.unwrap_err();
            assert_eq!(
                err.to_string(),
                "the command is empty: give a command for /bin/sh"
            );
        }
        assert!(events(&ops, "run-started").await.is_empty());
    }

    #[tokio::test]
    async fn unknown_scripts_and_runs_are_not_found() {
        let (_dir, ops) = fleet(&["a"]).await;
        let job = Job::script("missing");
        let err = ops.run(&Targets::all(), &job, 1024, quiet()).await;
        assert_eq!(err.unwrap_err().kind(), ErrorKind::NotFound);
        assert!(events(&ops, "run-started").await.is_empty());
        assert_eq!(
            ops.cancel(99).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        let err = ops.run(&Targets::default(), &job, 1024, quiet()).await;
        assert_eq!(err.unwrap_err().kind(), ErrorKind::NotFound);
        let command = Job::Command {
            command: "true".into(),
            timeout_secs: None,
        };
        let err = ops.run(&Targets::default(), &command, 1024, quiet()).await;
        assert_eq!(err.unwrap_err().kind(), ErrorKind::Invalid);
    }

    #[tokio::test]
    async fn a_script_named_alone_addresses_the_enabled_members_of_its_groups() {
        let (_dir, ops) = fleet(&["a", "b", "c", "off"]).await;
        let script = crate::model::Script::example("s", b"true");
        ops.save_script(&script, false).await.unwrap();
        let job = Job::script("s");
        let none = ops.run_hosts(&Targets::default(), &job).await.unwrap_err();
        assert_eq!(none.kind(), ErrorKind::Invalid);
        assert!(
            matches!(&none, OpsError::Missing(Missing::NoHosts { script: Some(s) }) if s == "s"),
            "{none:?}"
        );

        for (group, hosts) in [("g1", ["a", "off"]), ("g2", ["b", "off"])] {
            ops.add_group(group).await.unwrap();
            let hosts: Vec<HostName> = hosts.iter().map(|h| h.parse().unwrap()).collect();
            ops.set_membership(group, &hosts, true).await.unwrap();
            ops.set_group_script(group, "s", true).await.unwrap();
        }
        ops.add_group("other").await.unwrap();
        ops.set_membership("other", &["c".parse().unwrap()], true)
            .await
            .unwrap();
        ops.fleet.store().set_enabled("off", false).await.unwrap();
        let names = |hosts: Vec<Host>| hosts.into_iter().map(|h| h.name).collect::<Vec<_>>();
        let hosts = ops.run_hosts(&Targets::default(), &job).await.unwrap();
        assert_eq!(names(hosts), ["a", "b"]);
        // Hosts named are the hosts run on, for a script as for a command.
        let named = ops.run_hosts(&Targets::hosts(["c"]), &job).await.unwrap();
        assert_eq!(names(named), ["c"]);
        let command = Job::Command {
            command: "true".into(),
            timeout_secs: None,
        };
        let err = ops.run_hosts(&Targets::default(), &command).await;
        assert_eq!(err.unwrap_err().kind(), ErrorKind::Invalid);
    }

    #[test]
    fn without_a_timeout_the_default_hour_is_said_explicitly() {
        assert_eq!(timeout(None), ScriptTimeout::Seconds(3600));
        assert_eq!(timeout(Some(0)), ScriptTimeout::Unlimited);
        assert_eq!(timeout(Some(90)), ScriptTimeout::Seconds(90));
    }
}
