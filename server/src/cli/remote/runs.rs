//! `run`, `cancel`, `upload`, `ping`, the control commands, `history` and `events` through
//! `serve`: a run's output followed live from its event stream; an upload streamed from its
//! file; each host's result printed as locally.

use otto_proto::Stream;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::model::{Event, EventKind, Run};
use crate::ops::{Control, Done, Launched, Ping, RunEvent, RunResult, Share, Status};
use crate::print::Printer;

use super::super::CliError;
use super::super::runs::{PowerArgs, RunArgs, UploadArgs};
use super::super::targets::{ActionArgs, RolloutArgs, TargetArgs, failures};
use super::{Payload, Remote, RemoteError, chain, read};

impl Remote {
    /// `ping`: a heartbeat from the daemon to the hosts named, or to all.
    pub async fn ping(&self, out: &Printer, t: TargetArgs) -> Result<(), CliError> {
        let results: Vec<Ping> = self
            .call(Method::POST, "/api/v1/ping", &targets(&t))
            .await?;
        out.ping(&results);
        // A failed heartbeat is a host not connected to: none reached is exit 3, as locally.
        if !results.is_empty() && results.iter().all(|p| !p.reachable) {
            return Err(CliError::Unreached(results.len()));
        }
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
        kind: Option<EventKind>,
        limit: u32,
    ) -> Result<(), CliError> {
        let mut query = vec![("limit", limit.to_string())];
        query.extend(host.map(|h| ("host", h)));
        query.extend(kind.map(|k| ("kind", k.as_str().to_owned())));
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

    /// `cancel`: stops a running run.
    pub async fn cancel(&self, out: &Printer, run: i64) -> Result<(), CliError> {
        let path = format!("/api/v1/runs/{run}/cancel");
        let result: Done = self.call(Method::POST, &path, &Value::Null).await?;
        let status = result.status;
        out.done(&[result]);
        failures([status].into_iter())
    }

    /// `reload`, `exit-agent`, `rotate-keys` (`request` none), through `/api/v1/control`.
    pub async fn control(
        &self,
        out: &Printer,
        args: ActionArgs,
        request: Option<Control>,
    ) -> Result<(), CliError> {
        let action = match request {
            None => "rotate-key",
            Some(Control::Reload) => "reload",
            Some(Control::Exit) => "exit",
            Some(Control::Reboot) => "reboot",
            Some(Control::Shutdown) => "shutdown",
        };
        let mut body = targets(&args.targets);
        let (batch, max_failures) = counts(&args.rollout);
        if let Some(map) = body.as_object_mut() {
            map.insert("action".into(), action.into());
            map.insert("batch".into(), json!(batch));
            map.insert("max_failures".into(), json!(max_failures));
        }
        let results: Vec<Done> = self.call(Method::POST, "/api/v1/control", &body).await?;
        out.done(&results);
        failures(results.iter().map(|d| d.status))
    }

    /// `reboot` or `shutdown`: asked first, as locally, unless `--yes` or one host named
    /// plainly (the hosts a pattern or group stands for are the server's to know).
    pub async fn power(
        &self,
        out: &Printer,
        args: PowerArgs,
        request: Control,
    ) -> Result<(), CliError> {
        let t = &args.action.targets;
        let one = t.hosts.len() == 1
            && t.groups.is_empty()
            && !t.all
            && !t.hosts.iter().any(|h| h.contains(['*', '?', '[']));
        if !one && !args.yes {
            let what = match request {
                Control::Shutdown => "shut down",
                _ => "reboot",
            };
            let question = format!("{what} the hosts named ({})?", described(t));
            crate::cli::runs::confirm(&question)?;
        }
        self.control(out, args.action, Some(request)).await
    }

    /// `upload`: the file streamed to the server, which copies it to each host; each host's
    /// result as locally (no progress bars: the server answers once all are done).
    /// `interrupt` completing (Ctrl-C) stops waiting, which stops the uploads.
    pub async fn upload(
        &self,
        out: &Printer,
        args: UploadArgs,
        interrupt: impl Future<Output = ()>,
    ) -> Result<(), CliError> {
        let UploadArgs {
            file,
            targets,
            rollout,
        } = args;
        let source = tokio::fs::File::open(&file.file)
            .await
            .map_err(|e| CliError::File(file.file.clone(), e))?;
        let size = source
            .metadata()
            .await
            .map_err(|e| CliError::File(file.file.clone(), e))?
            .len();
        let list = |items: &[String]| items.join(",");
        let mut query = vec![
            ("path", file.path.clone()),
            ("mode", format!("{:o}", file.mode)),
            ("hosts", list(&targets.hosts)),
            ("groups", list(&targets.groups)),
            ("exclude", list(&targets.exclude)),
            ("exclude_groups", list(&targets.exclude_group)),
            ("all", targets.all.to_string()),
        ];
        query.extend(
            file.owner
                .map(|o| ("owner", format!("{}:{}", o.uid, o.gid))),
        );
        let (batch, max_failures) = counts(&rollout);
        query.extend(batch.map(|n| ("batch", n)));
        query.extend(max_failures.map(|n| ("max_failures", n)));
        query.retain(|(_, v)| !v.is_empty());
        let payload = Payload::Stream(reqwest::Body::from(source));
        let sent = self.request(Method::POST, "/api/v1/uploads", &query, payload);
        let results: Vec<Done> = tokio::select! {
            response = sent => read(response?).await?,
            () = interrupt => {
                return Err(CliError::Interrupted(
                    "the upload was stopped; `events` says which hosts had it already".into(),
                ));
            }
        };
        let names: Vec<&str> = results.iter().map(|d| d.host.as_str()).collect();
        out.started(
            &names,
            json!({ "file": file.file, "path": file.path, "bytes": size }),
        );
        if out.is_json() {
            let done = out.upload_progress(0);
            for result in &results {
                done(crate::ops::UploadEvent::Done(result));
            }
        }
        out.uploaded(&results);
        failures(results.iter().map(|d| d.status))
    }
}

/// The hosts `t` names, as JSON fields of a request.
fn targets(t: &TargetArgs) -> Value {
    let t = t.targets();
    json!({
        "all": t.all,
        "hosts": t.hosts,
        "groups": t.groups,
        "exclude": t.exclude,
        "exclude_groups": t.exclude_groups,
    })
}

/// What `t` names, in words.
fn described(t: &TargetArgs) -> String {
    let mut parts = Vec::new();
    if t.all {
        parts.push("all".to_string());
    }
    parts.extend(t.hosts.iter().cloned());
    parts.extend(t.groups.iter().map(|g| format!("group {g}")));
    parts.extend(t.exclude.iter().map(|h| format!("not {h}")));
    parts.extend(t.exclude_group.iter().map(|g| format!("not group {g}")));
    parts.join(", ")
}

/// `--batch` and `--max-failures` as the API takes them: the command line's text (`2`, `25%`).
fn counts(rollout: &RolloutArgs) -> (Option<String>, Option<String>) {
    let text = |share: Option<Share>| {
        share.map(|share| match share {
            Share::Count(n) => n.to_string(),
            Share::Percent(p) => format!("{p}%"),
        })
    };
    (text(rollout.batch), text(rollout.max_failures))
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
    let (batch, max_failures) = counts(&args.rollout);
    let mut body = targets(&args.targets);
    if let Some(map) = body.as_object_mut() {
        map.extend([
            ("script".to_string(), json!(args.script)),
            ("command".into(), json!(args.command)),
            ("timeout_secs".into(), json!(args.timeout)),
            ("batch".into(), json!(batch)),
            ("max_failures".into(), json!(max_failures)),
            ("output_cap".into(), json!(args.output_cap)),
        ]);
    }
    Ok(body)
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
}
