//! What `ping`, `run`, `cancel`, `upload`, the control commands, `history` and `events` need,
//! as one interface with two implementations: [`Ops`] in process, and [`Remote`], the HTTP API
//! of a running `serve`. The commands themselves (`cli/runs.rs`, `cli/history.rs`) are written
//! once over it.

use std::collections::HashSet;
use std::path::PathBuf;
use std::pin::Pin;

use reqwest::{Method, StatusCode};

use crate::cli::CliError;
use crate::cli::remote::{Payload, Remote, RemoteError, chain, read, segment};
use crate::model::{Event, EventKind, LaunchFilter, NewLaunch, PastLaunch, Run, RunFilter};
use crate::ops::UploadCheck;
use crate::ops::{
    Cancellation, ControlRequest, Done, DryRun, Fetch, FetchCheck, FetchRequest, Fetched,
    FetchedCopy, Job, LaunchEvent, Launched, NewRun, Ops, OpsError, Ping, PingRequest,
    PreparedLaunch, RolloutOptions, RunEvent, RunResult, RunSink, Status, Targets, UpdateAgents,
    Upload, UploadEvent, UploadSink,
};

/// A run started: what it runs where, the run to follow, and its cancel.
pub(crate) struct RunStarted<L> {
    /// The script's name or `command: …`.
    pub job: String,
    /// The hosts it addresses, by name.
    pub hosts: Vec<String>,
    /// The run, to follow.
    pub live: L,
    /// Its cancel.
    pub cancel: Cancel,
}

/// A run started, wherever it runs.
pub(crate) trait LiveRun {
    /// Follows the run to its end: its events as they come to `sink` (in process, as the run
    /// reports them: its pace is the sink's), with the output's bytes ([`RunEvent::Data`]) if
    /// `bytes` (through `serve`, as the history keeps them, before each host's end); each
    /// host's result, or None if the events ended before the summary (the server stopping).
    /// A run that failed as a whole is the error.
    async fn follow(self, sink: RunSink, bytes: bool) -> Result<Option<Vec<RunResult>>, CliError>;
}

/// How a run is cancelled on its hosts (as `cancel` does; the hosts not started are skipped).
pub(crate) enum Cancel {
    /// In process: the run's cancellation.
    Local(Cancellation),
    /// Through `serve`: the launch's cancel (`POST /api/v1/launches/{id}/cancel`).
    Remote(Remote, u64),
}

impl Cancel {
    /// Cancels the run.
    pub async fn cancel(&self) -> Result<(), CliError> {
        match self {
            Cancel::Local(cancellation) => cancellation.cancel(),
            Cancel::Remote(remote, launch) => {
                let path = format!("/api/v1/launches/{launch}/cancel");
                remote.send(Method::POST, &path, &()).await?;
            }
        }
        Ok(())
    }
}

/// What the commands on hosts need, wherever the work runs: [`Ops`] in process, the HTTP API
/// through `serve`.
pub(crate) trait RunsApi {
    /// A run under way.
    type Live: LiveRun;

    /// Heartbeats to the hosts named, or to all (`POST /api/v1/ping`).
    async fn ping(&self, request: PingRequest) -> Result<Vec<Ping>, CliError>;

    /// Starts a run (`POST /api/v1/runs`; its events from `GET /api/v1/launches/{id}/events`).
    async fn launch(&self, new: NewRun) -> Result<RunStarted<Self::Live>, CliError>;

    /// Cancels a run by its id (`POST /api/v1/runs/{id}/cancel`).
    async fn cancel(&self, run: i64) -> Result<Done, CliError>;

    /// A control request or new keys (`POST /api/v1/control`).
    async fn act(&self, request: ControlRequest) -> Result<Vec<Done>, CliError>;

    /// What a run would do (`POST /api/v1/dry-run/runs`).
    async fn dry_run(&self, new: NewRun) -> Result<DryRun, CliError>;

    /// Which hosts a control request would act on (`POST /api/v1/dry-run/control`).
    async fn dry_run_control(&self, request: ControlRequest) -> Result<DryRun, CliError>;

    /// Which hosts an upload would go to, and which have the file already (`POST
    /// /api/v1/dry-run/uploads`).
    async fn dry_run_upload(&self, check: UploadCheck) -> Result<DryRun, CliError>;

    /// Which hosts a fetch would copy from, and what each has (`POST
    /// /api/v1/dry-run/fetches`).
    async fn dry_run_fetch(&self, check: FetchCheck) -> Result<DryRun, CliError>;

    /// Uploads `upload` to the hosts `targets` names, as `rollout` says (`POST
    /// /api/v1/uploads`, which answers once it has the file, and starts a launch whose events
    /// tell each host's progress and end); `started` hears the hosts' names before the
    /// uploads begin, and gives the sink of their progress. `interrupt` completing stops the
    /// uploads: each host's result, and `true` if they were stopped so. Interrupted while the
    /// file is still on its way to `serve`, nothing has started: [`CliError::Interrupted`].
    async fn upload(
        &self,
        upload: Upload,
        targets: Targets,
        rollout: RolloutOptions,
        started: impl FnOnce(&[&str]) -> UploadSink,
        interrupt: impl Future<Output = ()>,
    ) -> Result<(Vec<Done>, bool), CliError>;

    /// Fetches `fetch.path` from the hosts `targets` names into `fetch.into`, as `rollout`
    /// says: each host's result (through `serve`: `POST /api/v1/fetches`, then each copy
    /// downloaded and checked).
    async fn fetch(
        &self,
        fetch: Fetch,
        targets: Targets,
        rollout: RolloutOptions,
    ) -> Result<Vec<Done>, CliError>;

    /// Updates the agents `request` names (`POST /api/v1/updates`, a launch whose events are
    /// an upload's), with the binaries of `agents` (in process only: through `serve`, its
    /// own); `started` and `interrupt` as for [`RunsApi::upload`].
    async fn update_agents(
        &self,
        request: UpdateAgents,
        agents: Option<PathBuf>,
        started: impl FnOnce(&[&str]) -> UploadSink,
        interrupt: impl Future<Output = ()>,
    ) -> Result<(Vec<Done>, bool), CliError>;

    /// Starts launch `id` again, all of it or only its hosts that did not succeed (`POST
    /// /api/v1/launches/{id}/relaunch`), as [`RunsApi::launch`] does.
    async fn relaunch(
        &self,
        id: u64,
        failed_only: bool,
    ) -> Result<RunStarted<Self::Live>, CliError>;

    /// The newest runs, with their kept output (`GET /api/v1/runs?output=true`).
    async fn history(&self, filter: RunFilter) -> Result<Vec<Run>, CliError>;

    /// The newest launches (`GET /api/v1/launches`).
    async fn launches(&self, filter: LaunchFilter) -> Result<Vec<PastLaunch>, CliError>;

    /// One run with its output (`GET /api/v1/runs/{id}`).
    async fn past_run(&self, id: i64) -> Result<Run, CliError>;

    /// The newest events (`GET /api/v1/events`).
    async fn events(
        &self,
        host: Option<String>,
        kind: Option<EventKind>,
        limit: u32,
    ) -> Result<Vec<Event>, CliError>;
}

/// A run in this process, started (and recorded as a launch) when followed.
pub(crate) struct LocalRun {
    ops: Ops,
    launch: NewLaunch,
    targets: Targets,
    job: Job,
    cap: usize,
}

impl LiveRun for LocalRun {
    async fn follow(self, sink: RunSink, _bytes: bool) -> Result<Option<Vec<RunResult>>, CliError> {
        let LocalRun {
            ops,
            launch,
            targets,
            job,
            cap,
        } = self;
        Ok(Some(
            ops.run_as_launch(&launch, &targets, &job, cap, sink)
                .await?,
        ))
    }
}

impl RunsApi for Ops {
    type Live = LocalRun;

    async fn ping(&self, request: PingRequest) -> Result<Vec<Ping>, CliError> {
        Ok(Ops::ping(self, &request.targets).await?)
    }

    async fn launch(&self, new: NewRun) -> Result<RunStarted<LocalRun>, CliError> {
        let PreparedLaunch {
            targets,
            job,
            rollout,
            output_cap: cap,
            record: launch,
        } = self.prepare_launch(new).await?;
        let cancellation = Cancellation::new();
        let ops = self
            .clone()
            .rolling(rollout)
            .cancellable(cancellation.clone());
        Ok(RunStarted {
            job: launch.job.clone(),
            hosts: launch.hosts.clone(),
            live: LocalRun {
                ops,
                launch,
                targets,
                job,
                cap,
            },
            cancel: Cancel::Local(cancellation),
        })
    }

    async fn relaunch(&self, id: u64, failed_only: bool) -> Result<RunStarted<LocalRun>, CliError> {
        let request = self.relaunch_request(id, failed_only).await?;
        RunsApi::launch(self, request).await
    }

    async fn cancel(&self, run: i64) -> Result<Done, CliError> {
        Ok(Ops::cancel(self, run).await?)
    }

    async fn dry_run(&self, new: NewRun) -> Result<DryRun, CliError> {
        Ok(Ops::dry_run(self, new).await?)
    }

    async fn dry_run_control(&self, request: ControlRequest) -> Result<DryRun, CliError> {
        Ok(Ops::dry_run_control(self, &request).await?)
    }

    async fn dry_run_upload(&self, check: UploadCheck) -> Result<DryRun, CliError> {
        Ok(Ops::dry_run_upload(self, check).await?)
    }

    async fn dry_run_fetch(&self, check: FetchCheck) -> Result<DryRun, CliError> {
        Ok(Ops::dry_run_fetch(self, check).await?)
    }

    async fn act(&self, request: ControlRequest) -> Result<Vec<Done>, CliError> {
        Ok(Ops::act(self, request).await?)
    }

    async fn upload(
        &self,
        upload: Upload,
        targets: Targets,
        rollout: RolloutOptions,
        started: impl FnOnce(&[&str]) -> UploadSink,
        interrupt: impl Future<Output = ()>,
    ) -> Result<(Vec<Done>, bool), CliError> {
        let cancellation = Cancellation::new();
        let ops = &self
            .clone()
            .rolling(rollout.rollout()?)
            .cancellable(cancellation.clone());
        let hosts = ops.resolve(&targets).await?;
        let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
        let progress = started(&names);
        let results = until_interrupted(
            ops.upload(&targets, upload, progress),
            interrupt,
            &cancellation,
            "stopping the uploads",
        )
        .await?;
        Ok((results, cancellation.is_cancelled()))
    }

    async fn fetch(
        &self,
        fetch: Fetch,
        targets: Targets,
        rollout: RolloutOptions,
    ) -> Result<Vec<Done>, CliError> {
        let ops = self.clone().rolling(rollout.rollout()?);
        Ok(ops.fetch(&targets, fetch).await?)
    }

    async fn update_agents(
        &self,
        request: UpdateAgents,
        agents: Option<PathBuf>,
        started: impl FnOnce(&[&str]) -> UploadSink,
        interrupt: impl Future<Output = ()>,
    ) -> Result<(Vec<Done>, bool), CliError> {
        self.require_update()?;
        request.confirm_secs()?;
        request.rollout.rollout()?;
        if let Some(dir) = agents {
            self.use_agents(dir);
        }
        let cancellation = Cancellation::new();
        let ops = &self.clone().cancellable(cancellation.clone());
        let hosts = ops.resolve(&request.targets).await?;
        let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
        let progress = started(&names);
        let results = until_interrupted(
            ops.update_agents(&request, progress),
            interrupt,
            &cancellation,
            "stopping the updates",
        )
        .await?;
        Ok((results, cancellation.is_cancelled()))
    }

    async fn history(&self, filter: RunFilter) -> Result<Vec<Run>, CliError> {
        Ok(Ops::find_history(self, &filter).await?)
    }

    async fn launches(&self, filter: LaunchFilter) -> Result<Vec<PastLaunch>, CliError> {
        Ok(Ops::find_launches(self, &filter).await?)
    }

    async fn past_run(&self, id: i64) -> Result<Run, CliError> {
        Ok(Ops::past_run(self, id).await?)
    }

    async fn events(
        &self,
        host: Option<String>,
        kind: Option<EventKind>,
        limit: u32,
    ) -> Result<Vec<Event>, CliError> {
        Ok(Ops::events(self, host.as_deref(), kind, limit).await?)
    }
}

/// Awaits `work`; if `interrupt` completes first, says so, sets `cancellation` (which `work`
/// follows) and awaits the rest of `work`.
async fn until_interrupted<T>(
    work: impl Future<Output = T>,
    interrupt: impl Future<Output = ()>,
    cancellation: &Cancellation,
    what: &str,
) -> T {
    tokio::pin!(work, interrupt);
    tokio::select! {
        done = &mut work => return done,
        () = &mut interrupt => {}
    }
    eprintln!("otto-server: interrupted: {what} (interrupt again to exit at once)");
    cancellation.cancel();
    work.await
}

/// The events of a launch of `serve`, as its event stream brings them.
pub(crate) struct LaunchEvents {
    remote: Remote,
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl LaunchEvents {
    /// The events of launch `id`, from its start (`GET /api/v1/launches/{id}/events`).
    async fn of(remote: &Remote, id: u64) -> Result<LaunchEvents, CliError> {
        let path = format!("/api/v1/launches/{id}/events");
        Ok(LaunchEvents {
            remote: remote.clone(),
            response: remote.send(Method::GET, &path, &()).await?,
            buffer: Vec::new(),
        })
    }

    /// The next event, or None once the stream has ended.
    async fn next(&mut self) -> Result<Option<LaunchEvent>, CliError> {
        loop {
            if let Some(data) = next_event(&mut self.buffer) {
                let event = serde_json::from_str::<LaunchEvent>(&data)
                    .map_err(|e| RemoteError::Answer(e.to_string()))?;
                return Ok(Some(event));
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.buffer.extend_from_slice(&chunk),
                Ok(None) => return Ok(None),
                Err(e) => {
                    let url = self.remote.base().to_string();
                    return Err(RemoteError::Unreachable(url, chain(&e)).into());
                }
            }
        }
    }
}

/// A launch that failed as a whole, as the error of the command that followed it.
fn failed(message: String) -> CliError {
    RemoteError::Refused {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message,
    }
    .into()
}

/// A launch of `serve` followed through its event stream.
pub(crate) struct RemoteRun {
    events: LaunchEvents,
}

impl LiveRun for RemoteRun {
    async fn follow(self, sink: RunSink, bytes: bool) -> Result<Option<Vec<RunResult>>, CliError> {
        let RemoteRun { mut events } = self;
        while let Some(event) = events.next().await? {
            match event {
                LaunchEvent::Output { host, stream, text } => sink(RunEvent::Line {
                    host: &host,
                    stream,
                    text: &text,
                }),
                LaunchEvent::Done(result) => {
                    // The output as the history keeps it, for whoever keeps the bytes.
                    if let (true, Some(id)) = (bytes, result.run) {
                        let path = format!("/api/v1/runs/{id}");
                        let run: Run = events.remote.get(&path, &[]).await?;
                        for (stream, data) in [
                            (otto_proto::Stream::Stdout, &run.stdout),
                            (otto_proto::Stream::Stderr, &run.stderr),
                        ] {
                            sink(RunEvent::Data {
                                host: &result.host,
                                stream,
                                data,
                            });
                        }
                    }
                    sink(RunEvent::Done(&result));
                }
                LaunchEvent::Gap { dropped } => eprintln!(
                    "otto-server: {dropped} events of output were dropped by the server \
                     (`history` keeps the output)"
                ),
                LaunchEvent::Summary { results, .. } => return Ok(Some(results)),
                LaunchEvent::Error { message } => return Err(failed(message)),
                // Not a run's.
                LaunchEvent::Started { .. }
                | LaunchEvent::Progress { .. }
                | LaunchEvent::Uploaded(_)
                | LaunchEvent::UploadSummary { .. } => {}
            }
        }
        Ok(None)
    }
}

/// `ms` since the epoch as RFC 3339, as the API's queries take times.
fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

impl Remote {
    /// The launch just started, followed from its start.
    async fn follow_launch(&self, launched: Launched) -> Result<RunStarted<RemoteRun>, CliError> {
        let events = LaunchEvents::of(self, launched.launch).await?;
        Ok(RunStarted {
            job: launched.job,
            hosts: launched.hosts,
            live: RemoteRun { events },
            cancel: Cancel::Remote(self.clone(), launched.launch),
        })
    }

    /// What the server's dry run of `what` (`POST /api/v1/dry-run/{what}`) says of `body`.
    async fn dry(&self, what: &str, body: &impl serde::Serialize) -> Result<DryRun, CliError> {
        let path = format!("/api/v1/dry-run/{what}");
        Ok(self.call(Method::POST, &path, body).await?)
    }
}

impl Remote {
    /// Downloads the copy at `path` (`GET /api/v1/fetches/{id}/{host}`) into `dir/name`:
    /// written to a temporary file beside it and renamed there once its length and SHA-256
    /// are those the server announced (its mode as the server kept it). What was kept, in
    /// words; or why nothing was.
    async fn download(
        &self,
        path: &str,
        dir: &std::path::Path,
        name: &str,
        copy: &FetchedCopy,
    ) -> Result<String, String> {
        use sha2::{Digest, Sha256};
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut temp = tempfile::Builder::new()
            .prefix(".fetch-")
            .tempfile_in(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut response = self
            .request(Method::GET, path, &(), Payload::Empty)
            .await
            .map_err(|e| e.to_string())?;
        let mut hasher = Sha256::new();
        let mut len = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(|e| chain(&e))? {
            hasher.update(&chunk);
            len += chunk.len() as u64;
            temp.write_all(&chunk)
                .map_err(|e| format!("{}: {e}", temp.path().display()))?;
        }
        let sha256: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if Some(len) != copy.size || Some(&sha256) != copy.sha256.as_ref() {
            return Err(format!(
                "the copy downloaded ({len} bytes, sha256 {sha256}) is not the one the server \
                 fetched"
            ));
        }
        let mode = copy.mode.unwrap_or(0o600) & 0o644;
        let file = temp.as_file();
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .and_then(|()| file.sync_all())
            .map_err(|e| format!("{}: {e}", temp.path().display()))?;
        let place = dir.join(name);
        temp.persist(&place)
            .map_err(|e| format!("{}: {}", place.display(), e.error))?;
        Ok(format!("{}: {len} bytes, sha256 {sha256}", place.display()))
    }
}

impl RunsApi for Remote {
    type Live = RemoteRun;

    async fn ping(&self, request: PingRequest) -> Result<Vec<Ping>, CliError> {
        Ok(self.call(Method::POST, "/api/v1/ping", &request).await?)
    }

    async fn launch(&self, new: NewRun) -> Result<RunStarted<RemoteRun>, CliError> {
        let launched: Launched = self.call(Method::POST, "/api/v1/runs", &new).await?;
        self.follow_launch(launched).await
    }

    async fn relaunch(
        &self,
        id: u64,
        failed_only: bool,
    ) -> Result<RunStarted<RemoteRun>, CliError> {
        let path = format!("/api/v1/launches/{id}/relaunch");
        let body = serde_json::json!({ "failed_only": failed_only });
        let launched: Launched = self.call(Method::POST, &path, &body).await?;
        self.follow_launch(launched).await
    }

    async fn cancel(&self, run: i64) -> Result<Done, CliError> {
        let path = format!("/api/v1/runs/{run}/cancel");
        Ok(self.call(Method::POST, &path, &()).await?)
    }

    async fn dry_run(&self, new: NewRun) -> Result<DryRun, CliError> {
        self.dry("runs", &new).await
    }

    async fn dry_run_control(&self, request: ControlRequest) -> Result<DryRun, CliError> {
        self.dry("control", &request).await
    }

    async fn dry_run_upload(&self, check: UploadCheck) -> Result<DryRun, CliError> {
        self.dry("uploads", &check).await
    }

    async fn dry_run_fetch(&self, check: FetchCheck) -> Result<DryRun, CliError> {
        self.dry("fetches", &check).await
    }

    async fn act(&self, request: ControlRequest) -> Result<Vec<Done>, CliError> {
        Ok(self.call(Method::POST, "/api/v1/control", &request).await?)
    }

    async fn upload(
        &self,
        upload: Upload,
        targets: Targets,
        rollout: RolloutOptions,
        started: impl FnOnce(&[&str]) -> UploadSink,
        interrupt: impl Future<Output = ()>,
    ) -> Result<(Vec<Done>, bool), CliError> {
        let source = tokio::fs::File::open(&upload.source)
            .await
            .map_err(|e| CliError::File(upload.source.clone(), e))?;
        let list = |items: &[String]| items.join(",");
        let mut query = vec![
            ("path", upload.path.clone()),
            ("mode", format!("{:o}", upload.mode)),
            ("hosts", list(&targets.hosts)),
            ("groups", list(&targets.groups)),
            ("exclude", list(&targets.exclude)),
            ("exclude_groups", list(&targets.exclude_groups)),
            ("all", targets.all.to_string()),
        ];
        query.extend(targets.selectors.iter().map(|s| ("where", s.clone())));
        query.extend(upload.force.then(|| ("force", "true".to_string())));
        query.extend(upload.template.then(|| ("template", "true".to_string())));
        query.extend(
            upload
                .owner
                .map(|o| ("owner", format!("{}:{}", o.uid, o.gid))),
        );
        query.extend(rollout.batch.map(|n| ("batch", n.to_string())));
        query.extend(
            rollout
                .max_failures
                .map(|n| ("max_failures", n.to_string())),
        );
        query.retain(|(_, v)| !v.is_empty());
        // A megabyte a read (reqwest's own way reads 8 KiB, a hop to the blocking pool each).
        let stream = tokio_util::io::ReaderStream::with_capacity(source, 1 << 20);
        let payload = Payload::Stream(reqwest::Body::wrap_stream(stream));
        let sent = self.request(Method::POST, "/api/v1/uploads", &query, payload);
        tokio::pin!(interrupt);
        let launched: Launched = tokio::select! {
            response = sent => read(response?).await?,
            () = &mut interrupt => {
                eprintln!("otto-server: interrupted: stopping the uploads");
                return Err(CliError::Interrupted(
                    "the upload was stopped before the server had the whole file; no host has it"
                        .into(),
                ));
            }
        };
        self.follow_uploads(launched, started, interrupt, "upload")
            .await
    }

    async fn fetch(
        &self,
        fetch: Fetch,
        targets: Targets,
        rollout: RolloutOptions,
    ) -> Result<Vec<Done>, CliError> {
        let request = FetchRequest {
            path: fetch.path.clone(),
            max_bytes: Some(fetch.max_len),
            targets,
            rollout,
        };
        let fetched: Fetched = self.call(Method::POST, "/api/v1/fetches", &request).await?;
        std::fs::create_dir_all(&fetch.into).map_err(|e| CliError::File(fetch.into.clone(), e))?;
        let mut results = Vec::with_capacity(fetched.results.len());
        for copy in fetched.results {
            let done = copy.done.clone();
            if !done.success {
                results.push(done);
                continue;
            }
            let dir = fetch.into.join(&done.host);
            let path = format!("/api/v1/fetches/{}/{}", fetched.id, segment(&done.host));
            let result = self.download(&path, &dir, &fetched.name, &copy).await;
            if result.is_err() {
                // The host's folder, if the download made it and left nothing.
                let _ = std::fs::remove_dir(&dir);
            }
            results.push(match result {
                Ok(detail) => Done { detail, ..done },
                Err(why) => Done {
                    success: false,
                    status: Status::Failed,
                    detail: why,
                    ..done
                },
            });
        }
        Ok(results)
    }

    async fn update_agents(
        &self,
        request: UpdateAgents,
        agents: Option<PathBuf>,
        started: impl FnOnce(&[&str]) -> UploadSink,
        interrupt: impl Future<Output = ()>,
    ) -> Result<(Vec<Done>, bool), CliError> {
        if agents.is_some() {
            return Err(CliError::Usage(
                "--agents names a folder on this machine: with --server, the server sends the \
                 binaries it has (`serve --agents DIR`, or built in); see GET /api/v1/agents"
                    .into(),
            ));
        }
        let launched: Launched = self.call(Method::POST, "/api/v1/updates", &request).await?;
        tokio::pin!(interrupt);
        self.follow_uploads(launched, started, interrupt, "update")
            .await
    }

    async fn history(&self, filter: RunFilter) -> Result<Vec<Run>, CliError> {
        let time = rfc3339;
        let mut query = vec![
            ("limit", filter.limit.to_string()),
            ("output", "true".into()),
        ];
        query.extend(filter.host.map(|h| ("host", h)));
        query.extend(filter.what.map(|w| ("what", w)));
        query.extend(filter.user.map(|u| ("user", u)));
        query.extend(filter.outcome.map(|o| ("outcome", o.as_str().to_owned())));
        query.extend(filter.since.map(|t| ("since", time(t))));
        query.extend(filter.until.map(|t| ("until", time(t))));
        query.extend(filter.launch.map(|l| ("launch", l.to_string())));
        Ok(self.get("/api/v1/runs", &query).await?)
    }

    async fn launches(&self, filter: LaunchFilter) -> Result<Vec<PastLaunch>, CliError> {
        let mut query = vec![("limit", filter.limit.to_string())];
        query.extend(filter.what.map(|w| ("what", w)));
        query.extend(filter.user.map(|u| ("user", u)));
        query.extend(filter.outcome.map(|o| ("outcome", o.as_str().to_owned())));
        query.extend(filter.since.map(|t| ("since", rfc3339(t))));
        query.extend(filter.until.map(|t| ("until", rfc3339(t))));
        Ok(self.get("/api/v1/launches", &query).await?)
    }

    async fn past_run(&self, id: i64) -> Result<Run, CliError> {
        Ok(self.get(&format!("/api/v1/runs/{id}"), &[]).await?)
    }

    async fn events(
        &self,
        host: Option<String>,
        kind: Option<EventKind>,
        limit: u32,
    ) -> Result<Vec<Event>, CliError> {
        let mut query = vec![("limit", limit.to_string())];
        query.extend(host.map(|h| ("host", h)));
        query.extend(kind.map(|k| ("kind", k.as_str().to_owned())));
        Ok(self.get("/api/v1/events", &query).await?)
    }
}

impl Remote {
    /// Follows `launched`, a launch whose events are an upload's (an upload, an update of
    /// agents: `what`), to its summary: `started` hears the hosts' names and gives the sink of
    /// their progress; `interrupt` completing cancels the launch. Each host's result, and
    /// `true` if the launch was stopped so.
    async fn follow_uploads(
        &self,
        launched: Launched,
        started: impl FnOnce(&[&str]) -> UploadSink,
        mut interrupt: Pin<&mut impl Future<Output = ()>>,
        what: &str,
    ) -> Result<(Vec<Done>, bool), CliError> {
        let mut events = LaunchEvents::of(self, launched.launch).await?;
        let names: Vec<&str> = launched.hosts.iter().map(String::as_str).collect();
        let progress = started(&names);
        let (mut begun, mut ended) = (HashSet::new(), HashSet::new());
        let mut stopped = false;
        loop {
            let event = tokio::select! {
                event = events.next() => event?,
                () = &mut interrupt, if !stopped => {
                    stopped = true;
                    eprintln!(
                        "otto-server: interrupted: stopping the {what}s (interrupt again to exit at once)"
                    );
                    match Cancel::Remote(self.clone(), launched.launch).cancel().await {
                        // Ended meanwhile: its summary follows.
                        Err(CliError::Remote(RemoteError::Refused { status, .. }))
                            if status == StatusCode::CONFLICT => {}
                        other => other?,
                    }
                    continue;
                }
            };
            match event {
                Some(LaunchEvent::Progress { host, sent, bytes }) => {
                    if begun.insert(host.clone()) {
                        progress(UploadEvent::Started { host: &host, bytes });
                    }
                    if sent > 0 {
                        progress(UploadEvent::Sent { host: &host, sent });
                    }
                }
                Some(LaunchEvent::Uploaded(done)) => {
                    progress(UploadEvent::Done(&done));
                    ended.insert(done.host);
                }
                Some(LaunchEvent::UploadSummary { results, .. }) => {
                    // A host whose end was dropped with other events ends here.
                    for done in results.iter().filter(|d| !ended.contains(&d.host)) {
                        progress(UploadEvent::Done(done));
                    }
                    return Ok((results, stopped));
                }
                Some(LaunchEvent::Gap { dropped }) => eprintln!(
                    "otto-server: {dropped} events of the {what}'s progress were dropped by the \
                     server"
                ),
                Some(LaunchEvent::Error { message }) => return Err(failed(message)),
                // Not an upload's.
                Some(
                    LaunchEvent::Started { .. }
                    | LaunchEvent::Output { .. }
                    | LaunchEvent::Done(_)
                    | LaunchEvent::Summary { .. },
                ) => {}
                None => {
                    return Err(OpsError::Internal(format!(
                        "the {what}'s events ended before its summary (the server \
                             stopping?); `events` will say how each host ended"
                    ))
                    .into());
                }
            }
        }
    }
}

/// The data of the next complete Server-Sent Event in `buffer` (removed from it), skipping
/// comments (keep-alives); None until one is complete.
pub(super) fn next_event(buffer: &mut Vec<u8>) -> Option<String> {
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
