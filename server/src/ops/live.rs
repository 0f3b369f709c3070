//! Runs and uploads started in the background, as the HTTP API starts them. A *launch* is one
//! start of a job on many hosts (each host's part of a run is a run of the history), or of an
//! upload of a file to many hosts; it goes on in the daemon whoever follows it. [`Launches`] keeps each launch's events (its start, each line of
//! output or an upload's progress, each host's end, the summary) in a bounded buffer, so that a follower who comes
//! late first gets what was already produced. Each launch is recorded in the store (who, what,
//! when, and at its end its summary with each host's run id), so that once it has left the
//! buffer ([`KEEP`] after its end), or `serve` has restarted, it is told again from the store
//! and the history (its runs' kept output). Its id is the store's, never reused.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use otto_proto::Stream;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::sync::watch;

use super::{
    Cancellation, Done, Job, Ops, OpsError, Result, Rollout, RolloutOptions, RunEvent, RunResult,
    RunSink, Status, Targets, UpdateAgents, Upload, UploadEvent, UploadSink,
};
use crate::model::{EventKind, Host, NewLaunch, Run, RunLevel};
use crate::store::{Store, StoreError};

/// How long a finished launch's events stay as they were produced.
pub const KEEP: Duration = Duration::from_secs(600);

/// Most launches whose events are kept: a new one makes room by letting the oldest finished
/// one's events go early, and is refused while this many are still running.
pub const BUFFERED: usize = 64;

/// Most bytes of events kept for one launch: beyond them the oldest output leaves (its start
/// stays), and a late follower is told how many events it missed.
const BUFFER_BYTES: usize = 4 << 20;

/// The launches of this process whose events are kept, by id.
#[derive(Clone)]
pub struct Launches {
    live: Arc<Mutex<HashMap<u64, Arc<Launch>>>>,
    /// Held while a launch is added: its room is made and its record stored one at a time.
    adding: Arc<tokio::sync::Mutex<()>>,
    /// Set when the server stops: every follower ends.
    closed: Cancellation,
    /// How long a finished launch's events stay.
    keep: Duration,
    /// How many launches' events may be kept at once ([`BUFFERED`]).
    room: usize,
}

impl Default for Launches {
    fn default() -> Launches {
        Launches::keeping(KEEP)
    }
}

/// Output kept in the history per stream when a run says none: 1 MiB.
pub const DEFAULT_OUTPUT_CAP: usize = 1 << 20;

/// What to run, and where: the body of `POST /api/v1/runs`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRun {
    /// A stored script, by name (or give `command`).
    pub script: Option<String>,
    /// An ad-hoc command for `/bin/sh` (or give `script`).
    pub command: Option<String>,
    /// This run's timeout in whole seconds (0: none): for a script instead of its own; without
    /// one, the script's own, else 1 hour.
    pub timeout_secs: Option<u32>,
    /// The hosts (none: for a stored script, the members of its groups).
    #[serde(flatten)]
    pub targets: Targets,
    /// How the hosts go: in batches, up to a number of failures.
    #[serde(flatten)]
    pub rollout: RolloutOptions,
    /// Bytes of each stream kept in the history per host (default 1 MiB).
    pub output_cap: Option<usize>,
}

impl NewRun {
    /// The operation's input: targets, job, rollout (held to its rules), output cap; a
    /// request that names both a script and a command, or neither, is `Invalid`.
    pub fn parts(self) -> Result<(Targets, Job, Rollout, usize)> {
        let timeout_secs = self.timeout_secs;
        let job = match (self.script, self.command) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(OpsError::Invalid("give `script` or `command`".into()));
            }
            (Some(name), None) => Job::Script { name, timeout_secs },
            (None, Some(command)) => Job::Command {
                command,
                timeout_secs,
            },
        };
        let rollout = self.rollout.rollout()?;
        let cap = self.output_cap.unwrap_or(DEFAULT_OUTPUT_CAP);
        Ok((self.targets, job, rollout, cap))
    }
}

/// One event of a launch, as `GET /api/v1/launches/{id}/events` sends it: the data of a
/// Server-Sent Event named by its `type` ([`LaunchEvent::kind`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum LaunchEvent {
    /// The launch has started: what it runs where.
    Started {
        /// Its id.
        launch: u64,
        /// The hosts it addresses, by name.
        hosts: Vec<String>,
        /// The script's name or `command: …`.
        job: String,
        /// The schedule that started it, if one did (and still exists).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        schedule: Option<String>,
    },
    /// A line of a host's output (secrets redacted), without its newline.
    Output {
        /// The host.
        host: String,
        /// `stdout` or `stderr`.
        #[serde(serialize_with = "stream_name", deserialize_with = "named_stream")]
        #[schema(value_type = String, pattern = "^(stdout|stderr)$")]
        stream: Stream,
        /// The line.
        text: String,
    },
    /// A host's run has ended (or it was skipped).
    Done(RunResult),
    /// This many events were dropped here, beyond what the server keeps (the history keeps
    /// the output).
    Gap {
        /// How many.
        dropped: u64,
    },
    /// The launch has ended: how many hosts succeeded, failed, were cancelled or skipped, and
    /// each one's result. The last event.
    Summary {
        /// Hosts that succeeded.
        succeeded: usize,
        /// Hosts that failed.
        failed: usize,
        /// Hosts whose run a cancel stopped.
        cancelled: usize,
        /// Hosts not started.
        skipped: usize,
        /// Each host's result.
        results: Vec<RunResult>,
    },
    /// A host's upload has begun (`sent` 0) or got further: `sent` of its `bytes` so far, told
    /// at most once per hundredth of the file.
    Progress {
        /// The host.
        host: String,
        /// Bytes sent to it so far.
        sent: u64,
        /// The size of the file.
        bytes: u64,
    },
    /// A host's upload has ended (or it was skipped).
    Uploaded(Done),
    /// The upload has ended: how many hosts have the file, failed, were cancelled or skipped,
    /// and each one's result. The last event of an upload.
    #[serde(rename = "upload-summary")]
    UploadSummary {
        /// Hosts that have the file.
        succeeded: usize,
        /// Hosts that failed.
        failed: usize,
        /// Hosts whose upload a cancel stopped.
        cancelled: usize,
        /// Hosts not started.
        skipped: usize,
        /// Each host's result.
        results: Vec<Done>,
    },
    /// The launch failed as a whole (or its server stopped while it ran). The last event.
    Error {
        /// Why.
        message: String,
    },
}

impl LaunchEvent {
    /// Its `type`, which names its Server-Sent Event.
    pub fn kind(&self) -> &'static str {
        match self {
            LaunchEvent::Started { .. } => "started",
            LaunchEvent::Output { .. } => "output",
            LaunchEvent::Done(_) => "done",
            LaunchEvent::Gap { .. } => "gap",
            LaunchEvent::Summary { .. } => "summary",
            LaunchEvent::Progress { .. } => "progress",
            LaunchEvent::Uploaded(_) => "uploaded",
            LaunchEvent::UploadSummary { .. } => "upload-summary",
            LaunchEvent::Error { .. } => "error",
        }
    }

    /// The summary of an upload whose hosts ended as `results` say.
    pub fn upload_summary(results: Vec<Done>) -> LaunchEvent {
        let count = |status| results.iter().filter(|r| r.status == status).count();
        LaunchEvent::UploadSummary {
            succeeded: count(Status::Ok),
            failed: count(Status::Failed),
            cancelled: count(Status::Cancelled),
            skipped: count(Status::Skipped),
            results,
        }
    }

    /// The summary of a launch whose hosts ended as `results` say.
    pub fn summary(results: Vec<RunResult>) -> LaunchEvent {
        let count = |status| results.iter().filter(|r| r.status == status).count();
        LaunchEvent::Summary {
            succeeded: count(Status::Ok),
            failed: count(Status::Failed),
            cancelled: count(Status::Cancelled),
            skipped: count(Status::Skipped),
            results,
        }
    }

    /// A line of output, as a run reports it.
    fn output(host: &str, stream: Stream, text: &str) -> LaunchEvent {
        LaunchEvent::Output {
            host: host.to_owned(),
            stream,
            text: text.to_owned(),
        }
    }
}

/// `stdout` or `stderr`.
fn stream_name<S: Serializer>(
    stream: &Stream,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_str(match stream {
        Stream::Stdout => "stdout",
        Stream::Stderr => "stderr",
    })
}

/// The stream `stdout` or `stderr` names.
fn named_stream<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Stream, D::Error> {
    match String::deserialize(deserializer)?.as_str() {
        "stdout" => Ok(Stream::Stdout),
        "stderr" => Ok(Stream::Stderr),
        other => Err(serde::de::Error::unknown_variant(
            other,
            &["stdout", "stderr"],
        )),
    }
}

/// A finished launch, as told again from the store.
struct Gone {
    /// Its `started` event.
    started: LaunchEvent,
    /// Each host's result (with its run's id, if it has one), for a run.
    results: Vec<RunResult>,
    /// Each host's result, for an upload.
    uploads: Vec<Done>,
    /// Its last event: the summary, or why it failed.
    last: LaunchEvent,
}

impl Launches {
    /// Launches whose events stay `keep` after they end.
    pub fn keeping(keep: Duration) -> Launches {
        Launches {
            live: Arc::default(),
            adding: Arc::default(),
            closed: Cancellation::new(),
            keep,
            room: BUFFERED,
        }
    }

    /// A new launch, recorded in `store`, and its events' record, room made for it; a
    /// conflict when every launch kept is still running. With several servers on one
    /// database, its events are relayed there for followers on the others ([`relay`]).
    async fn add(&self, store: &Store, new: &NewLaunch) -> Result<(u64, Arc<Launch>)> {
        let _adding = self.adding.lock().await;
        self.make_room()?;
        let id = store.start_launch(new).await?;
        let launch = Launch::new(new.level);
        lock(&self.live).insert(id, launch.clone());
        if store.lease_id().is_some() {
            tokio::spawn(relay(store.clone(), id, launch.clone(), self.keep));
        }
        Ok((id, launch))
    }

    /// Lets the oldest finished launches' events go until there is room for one more; a
    /// conflict if there is none.
    fn make_room(&self) -> Result<()> {
        let mut live = lock(&self.live);
        if live.len() < self.room {
            return Ok(());
        }
        let mut finished: Vec<u64> = live
            .iter()
            .filter(|(_, l)| l.progress.borrow().1)
            .map(|(id, _)| *id)
            .collect();
        finished.sort_unstable();
        let excess = live.len() + 1 - self.room;
        for id in finished.into_iter().take(excess) {
            live.remove(&id);
        }
        if live.len() >= self.room {
            return Err(OpsError::Conflict(format!(
                "{} runs and uploads started through the API are still going: try again when \
                 one has ended",
                live.len()
            )));
        }
        Ok(())
    }

    /// Launch `id`, if its events are kept.
    fn get(&self, id: u64) -> Option<Arc<Launch>> {
        lock(&self.live).get(&id).cloned()
    }

    fn retire(&self, id: u64) {
        lock(&self.live).remove(&id);
    }

    /// Whether launch `id` of this process is still going.
    pub fn running(&self, id: u64) -> bool {
        self.get(id).is_some_and(|l| !l.progress.borrow().1)
    }

    /// Ends every follower (the server is stopping); the launches themselves go on.
    pub fn close(&self) {
        self.closed.cancel();
    }

    /// What [`Launches::close`] cancels: the server is stopping (long-lived answers end).
    pub fn closing(&self) -> Cancellation {
        self.closed.clone()
    }
}

/// One launch: its events so far, and its cancel.
struct Launch {
    /// The run level its job needs: cancelling it needs it too.
    level: RunLevel,
    cancellation: Cancellation,
    log: Mutex<Log>,
    /// How many events were produced, and whether the launch has ended.
    progress: watch::Sender<(u64, bool)>,
}

/// A launch's events, each with its number and size, the oldest output dropped first.
#[derive(Default)]
struct Log {
    events: VecDeque<(u64, usize, LaunchEvent)>,
    produced: u64,
    bytes: usize,
}

impl Launch {
    fn new(level: RunLevel) -> Arc<Launch> {
        Arc::new(Launch {
            level,
            cancellation: Cancellation::new(),
            log: Mutex::new(Log::default()),
            progress: watch::Sender::new((0, false)),
        })
    }

    fn push(&self, event: LaunchEvent) {
        let size = serde_json::to_string(&event).map_or(0, |text| text.len());
        let mut log = lock(&self.log);
        let seq = log.produced;
        log.produced += 1;
        log.events.push_back((seq, size, event));
        log.bytes += size;
        // The start (first) and the newest event always stay.
        while log.bytes > BUFFER_BYTES && log.events.len() > 2 {
            if let Some((_, size, _)) = log.events.remove(1) {
                log.bytes -= size;
            }
        }
        self.progress.send_modify(|p| p.0 = seq + 1);
    }

    fn end(&self) {
        self.progress.send_modify(|p| p.1 = true);
    }

    /// Ends the launch with its last event.
    fn finish(&self, last: LaunchEvent) {
        self.push(last);
        self.end();
    }

    /// The events from number `next` on (a `gap` event first for those dropped); moves
    /// `next` past them.
    fn read(&self, next: &mut u64) -> VecDeque<LaunchEvent> {
        let log = lock(&self.log);
        let mut out = VecDeque::new();
        let from = *next;
        for (seq, _, event) in log.events.iter().filter(|(s, _, _)| *s >= from) {
            if *seq > *next {
                out.push_back(LaunchEvent::Gap {
                    dropped: seq - *next,
                });
            }
            out.push_back(event.clone());
            *next = seq + 1;
        }
        out
    }

    /// What the run reports, as events of this launch.
    fn sink(self: &Arc<Launch>) -> RunSink {
        let launch = self.clone();
        Arc::new(move |event| match event {
            RunEvent::Line { host, stream, text } => {
                launch.push(LaunchEvent::output(host, stream, text));
            }
            RunEvent::Done(result) => launch.push(LaunchEvent::Done(result.clone())),
            RunEvent::Data { .. } => {}
        })
    }
}

/// How often a running launch's new events are relayed to the database (and a cancel asked
/// for on another server is heard), and how often a follower on another server reads them.
const RELAY_EVERY: Duration = Duration::from_millis(250);

/// Most bytes of a launch's output relayed to the database: beyond them its lines are not
/// (followers on other servers are told how many events they missed; the history keeps the
/// output), while every host's end and the launch's end still are.
const RELAY_BYTES: usize = BUFFER_BYTES;

/// How long a follower on another server waits for a launch's last events to be relayed once
/// its end is recorded, before it tells the end as recorded.
const RELAY_GRACE: Duration = Duration::from_secs(5);

/// Relayed events read at once by a follower on another server.
const RELAY_READ: u32 = 256;

impl Launch {
    /// The events from number `next` on that are still kept, as JSON text, moving `next`
    /// past them; lines of output once `relayed` bytes of them have reached [`RELAY_BYTES`]
    /// are passed over.
    fn unrelayed(&self, next: &mut u64, relayed: &mut usize) -> Vec<(u64, String)> {
        let log = lock(&self.log);
        let mut out = Vec::new();
        let from = *next;
        for (seq, size, event) in log.events.iter().filter(|(s, _, _)| *s >= from) {
            *next = seq + 1;
            if matches!(event, LaunchEvent::Output { .. }) {
                if *relayed + size > RELAY_BYTES {
                    continue;
                }
                *relayed += size;
            }
            if let Ok(text) = serde_json::to_string(event) {
                out.push((*seq, text));
            }
        }
        out
    }

    /// Whether `event` is a launch's last.
    fn last(event: &LaunchEvent) -> bool {
        matches!(
            event,
            LaunchEvent::Summary { .. }
                | LaunchEvent::UploadSummary { .. }
                | LaunchEvent::Error { .. }
        )
    }
}

/// Relays the events of launch `id` to `store` as they come, for followers on other servers,
/// and cancels it when one of them asks; ends once its last event is relayed (or, the
/// database unreachable, `keep` after the launch ended).
async fn relay(store: Store, id: u64, launch: Arc<Launch>, keep: Duration) {
    let mut progress = launch.progress.subscribe();
    let (mut next, mut relayed) = (0, 0);
    let mut ended_at = None;
    loop {
        let ended = progress.borrow_and_update().1;
        if ended {
            ended_at.get_or_insert_with(tokio::time::Instant::now);
        }
        let from = next;
        let batch = launch.unrelayed(&mut next, &mut relayed);
        match store.relay_launch_events(id, &batch).await {
            Ok(asked) => {
                if asked && !launch.cancellation.is_cancelled() {
                    tracing::info!(launch = id, "cancelled from another server");
                    launch.cancellation.cancel();
                }
                if ended && next >= launch.progress.borrow().0 {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(
                    launch = id,
                    "its events are not relayed to the database: {e}"
                );
                next = from;
                if ended_at.is_some_and(|at| at.elapsed() > keep) {
                    return;
                }
            }
        }
        tokio::select! {
            _ = progress.changed() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        tokio::time::sleep(RELAY_EVERY).await;
    }
}

/// Tells `launch` (a follower's copy) the events of launch `id`, which another server runs,
/// as that server relays them to `store`: with a `gap` for those it did not relay, until its
/// last event, or an `error` if that server stops first. Ends early once no one follows.
async fn follow_relayed(store: Store, id: u64, launch: Arc<Launch>, closed: Cancellation) {
    let mut next = 0;
    let mut finished_seen = None;
    let end = |event: LaunchEvent| launch.finish(event);
    loop {
        if closed.is_cancelled() || launch.progress.receiver_count() == 0 {
            return;
        }
        let events = match store.launch_events(id, next, RELAY_READ).await {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(launch = id, "its relayed events cannot be read: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if !events.is_empty() {
            for (seq, text) in events {
                if seq > next {
                    launch.push(LaunchEvent::Gap {
                        dropped: seq - next,
                    });
                }
                next = seq + 1;
                let Ok(event) = serde_json::from_str::<LaunchEvent>(&text) else {
                    return end(LaunchEvent::Error {
                        message: format!("launch {id}: an unreadable event was relayed: {text}"),
                    });
                };
                if Launch::last(&event) {
                    return end(event);
                }
                launch.push(event);
            }
            continue;
        }
        match store.launch(id).await {
            // Its end was recorded before it was relayed: it is told as recorded if it is
            // not relayed in time after all (its server cut off from the database, or gone).
            Ok(kept) if kept.last_event.is_some() => {
                let at = *finished_seen.get_or_insert_with(tokio::time::Instant::now);
                if at.elapsed() > RELAY_GRACE || !kept.owner_live {
                    let text = kept.last_event.unwrap_or_default();
                    return end(serde_json::from_str(&text).unwrap_or(LaunchEvent::Error {
                        message: format!("launch {id} ended, its end unreadable: {text}"),
                    }));
                }
            }
            Ok(kept) if !kept.owner_live => {
                return end(LaunchEvent::Error {
                    message: format!(
                        "launch {id} did not end: the server running it stopped \
                         (its runs are in the history, as interrupted)"
                    ),
                });
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(launch = id, "cannot be read: {e}"),
        }
        tokio::time::sleep(RELAY_EVERY).await;
    }
}

/// An upload's progress as a launch tells it: for each host, the hundredths of the file told
/// so far, and the file's size.
type Told = Mutex<HashMap<String, (u64, u64)>>;

impl Launch {
    /// What an upload reports, as events of this launch: a host's progress at its start and
    /// once per hundredth of the file more (a large file is sent in many pieces, and the buffer
    /// is to keep every host's end), its end.
    fn upload_sink(self: &Arc<Launch>) -> UploadSink {
        let launch = self.clone();
        let told = Told::default();
        Arc::new(move |event| {
            let progress = |host: &str, sent, bytes| LaunchEvent::Progress {
                host: host.to_owned(),
                sent,
                bytes,
            };
            match event {
                UploadEvent::Started { host, bytes } => {
                    lock(&told).insert(host.to_owned(), (0, bytes));
                    launch.push(progress(host, 0, bytes));
                }
                UploadEvent::Sent { host, sent } => {
                    let fresh = lock(&told).get_mut(host).and_then(|(hundredths, bytes)| {
                        let now = sent.saturating_mul(100) / (*bytes).max(1);
                        (now > *hundredths).then(|| {
                            *hundredths = now;
                            *bytes
                        })
                    });
                    if let Some(bytes) = fresh {
                        launch.push(progress(host, sent, bytes));
                    }
                }
                UploadEvent::Done(done) => {
                    lock(&told).remove(&done.host);
                    launch.push(LaunchEvent::Uploaded(done.clone()));
                }
            }
        })
    }
}

/// The event that starts launch `id`, started by no schedule.
#[cfg(test)]
fn started(id: u64, job: &str, hosts: &[String]) -> LaunchEvent {
    scheduled(id, job, hosts, None)
}

/// The event that starts launch `id`, started by `schedule` if one did.
fn scheduled(id: u64, job: &str, hosts: &[String], schedule: Option<&str>) -> LaunchEvent {
    LaunchEvent::Started {
        launch: id,
        hosts: hosts.to_vec(),
        job: job.to_owned(),
        schedule: schedule.map(str::to_owned),
    }
}

impl Gone {
    /// Launch `kept` as the store has it. One that has no end was cut short by a stop of the
    /// server that ran it: an `error` event says so.
    fn kept(id: u64, kept: &crate::model::Launch, schedule: Option<&str>) -> Result<Gone> {
        let corrupt = |text: &str| StoreError::Corrupt("launch", text.to_owned());
        let last = match &kept.last_event {
            Some(text) => serde_json::from_str::<LaunchEvent>(text).map_err(|_| corrupt(text))?,
            None => LaunchEvent::Error {
                message: format!(
                    "launch {id} did not end: the server stopped while it ran \
                     (its runs are in the history, as interrupted)"
                ),
            },
        };
        let (results, uploads) = match &last {
            LaunchEvent::Summary { results, .. } => (results.clone(), Vec::new()),
            LaunchEvent::UploadSummary { results, .. } => (Vec::new(), results.clone()),
            _ => (Vec::new(), Vec::new()),
        };
        Ok(Gone {
            started: scheduled(id, &kept.job, &kept.hosts, schedule),
            results,
            uploads,
            last,
        })
    }
}

/// The events of a finished launch told again from its runs in the history (`runs`, by id):
/// its start, each run's kept lines (standard output, then error) and end (or each host's end
/// of an upload, without its progress), its last event. Lines of different hosts are no longer
/// interleaved as they came.
fn replay(gone: &Gone, runs: &HashMap<i64, Run>) -> Vec<LaunchEvent> {
    let mut events = vec![gone.started.clone()];
    for result in &gone.results {
        let Some(run) = result.run.and_then(|id| runs.get(&id)) else {
            continue;
        };
        for (stream, data) in [(Stream::Stdout, &run.stdout), (Stream::Stderr, &run.stderr)] {
            for line in data.split_inclusive(|b| *b == b'\n') {
                let line = line.strip_suffix(b"\n").unwrap_or(line);
                let text = String::from_utf8_lossy(line);
                events.push(LaunchEvent::output(&result.host, stream, &text));
            }
        }
        events.push(LaunchEvent::Done(result.clone()));
    }
    events.extend(gone.uploads.iter().cloned().map(LaunchEvent::Uploaded));
    events.push(gone.last.clone());
    events
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads a launch's events in order, from its start, waiting for those still to come.
pub struct Follower {
    launch: Arc<Launch>,
    next: u64,
    pending: VecDeque<LaunchEvent>,
    progress: watch::Receiver<(u64, bool)>,
    closed: Cancellation,
}

impl Follower {
    /// A reader of `launch` from its start, ended early when `closed`.
    fn of(launch: Arc<Launch>, closed: Cancellation) -> Follower {
        Follower {
            progress: launch.progress.subscribe(),
            launch,
            next: 0,
            pending: VecDeque::new(),
            closed,
        }
    }

    /// The next event, or None once the launch has ended and every event was read, or the
    /// server is stopping.
    pub async fn next(&mut self) -> Option<LaunchEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.closed.is_cancelled() {
                return None;
            }
            let (produced, ended) = *self.progress.borrow_and_update();
            if self.next < produced {
                self.pending = self.launch.read(&mut self.next);
                continue;
            }
            if ended {
                return None;
            }
            tokio::select! {
                changed = self.progress.changed() => changed.ok()?,
                () = self.closed.cancelled() => return None,
            }
        }
    }
}

/// A launch just started: its id, and what it runs where.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Launched {
    /// Its id, for its events and its cancel.
    pub launch: u64,
    /// The script's name or `command: …`.
    pub job: String,
    /// The hosts it addresses, by name.
    pub hosts: Vec<String>,
}

/// A launch of a script or command ready to start: its parts, and its record.
pub struct PreparedLaunch {
    /// The hosts as asked.
    pub targets: Targets,
    /// What runs.
    pub job: Job,
    /// How the hosts go.
    pub rollout: Rollout,
    /// Bytes of each stream kept per host.
    pub output_cap: usize,
    /// The launch to record: by this actor, on the hosts found, with the request kept.
    pub record: NewLaunch,
}

impl Ops {
    /// What `new` asks, checked (the run level its job needs) and its hosts found
    /// ([`Ops::run_hosts`]): ready to start, in the background or in the foreground.
    pub async fn prepare_launch(&self, new: NewRun) -> Result<PreparedLaunch> {
        let request = serde_json::to_string(&new).ok();
        let (targets, job, rollout, output_cap) = new.parts()?;
        let (level, hosts) = self.checked_job(&targets, &job).await?;
        let record = NewLaunch {
            actor: self.actor.to_string(),
            job: job.label(),
            hosts: hosts.into_iter().map(|h| h.name).collect(),
            level,
            request,
        };
        Ok(PreparedLaunch {
            targets,
            job,
            rollout,
            output_cap,
            record,
        })
    }

    /// The run level `job` needs (refused if the actor's is lower: [`Ops::require_job`]) and
    /// the hosts a run of it on `targets` addresses ([`Ops::run_hosts`]).
    pub(super) async fn checked_job(
        &self,
        targets: &Targets,
        job: &Job,
    ) -> Result<(RunLevel, Vec<Host>)> {
        let level = self.require_job(job).await?;
        let hosts = self.run_hosts(targets, job).await?;
        Ok((level, hosts))
    }

    /// Starts what `new` asks on the hosts [`Ops::run_hosts`] finds, as [`Ops::run`] does but
    /// in the background, as its rollout says, and answers at once: its events are followed
    /// with [`Ops::follow`]. Needs the run level the job needs ([`Ops::require_job`]).
    pub async fn launch(&self, launches: &Launches, new: NewRun) -> Result<Launched> {
        self.launch_for(launches, new, None).await
    }

    /// [`Ops::run`] in the foreground, recorded as a launch (the command line's `run` in
    /// process), so that the history lists it with its runs, and it can be started again:
    /// its end is recorded as a launch's summary, or the error.
    pub async fn run_as_launch(
        &self,
        launch: &NewLaunch,
        targets: &Targets,
        job: &Job,
        output_cap: usize,
        sink: RunSink,
    ) -> Result<Vec<RunResult>> {
        let store = self.fleet.store();
        let id = store.start_launch(launch).await?;
        let ops = self.clone().in_launch(id);
        let results = ops.run(targets, job, output_cap, sink).await;
        let last = match &results {
            Ok(results) => LaunchEvent::summary(results.clone()),
            Err(e) => LaunchEvent::Error {
                message: e.to_string(),
            },
        };
        let recorded = match serde_json::to_string(&last) {
            Ok(text) => store
                .finish_launch(id, &text)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = recorded {
            tracing::error!(launch = id, "cannot record the launch's end: {e}");
        }
        results
    }

    /// Starts launch `id` again, as [`Ops::relaunch_request`] says (all of it, or with
    /// `failed_only` the hosts that did not succeed), as [`Ops::launch`] does: by this actor,
    /// who needs the run level its job needs.
    pub async fn relaunch(
        &self,
        launches: &Launches,
        id: u64,
        failed_only: bool,
    ) -> Result<Launched> {
        let request = self.relaunch_request(id, failed_only).await?;
        self.launch(launches, request).await
    }

    /// [`Ops::launch`], for `schedule` (its id and name) if one starts it: the launch is
    /// linked to it in the store and its `started` event names it.
    pub(super) async fn launch_for(
        &self,
        launches: &Launches,
        new: NewRun,
        schedule: Option<(i64, &str)>,
    ) -> Result<Launched> {
        let PreparedLaunch {
            targets,
            job,
            rollout,
            output_cap,
            record: new,
        } = self.prepare_launch(new).await?;
        let (label, hosts) = (new.job.clone(), new.hosts.clone());
        let (id, launch) = launches.add(self.fleet.store(), &new).await?;
        if let Some((schedule, _)) = schedule {
            self.fleet.store().link_launch(id, schedule).await?;
        }
        launch.push(scheduled(
            id,
            &label,
            &hosts,
            schedule.map(|(_, name)| name),
        ));
        let ops = self
            .clone()
            .rolling(rollout)
            .cancellable(launch.cancellation.clone())
            .in_launch(id);
        let launches = launches.clone();
        tokio::spawn(async move {
            let last = match ops.run(&targets, &job, output_cap, launch.sink()).await {
                Ok(results) => LaunchEvent::summary(results),
                Err(e) => LaunchEvent::Error {
                    message: e.to_string(),
                },
            };
            ops.conclude(&launches, id, &launch, last).await;
        });
        Ok(Launched {
            launch: id,
            job: label,
            hosts,
        })
    }

    /// Starts uploading `upload` to the enabled hosts `targets` names, as [`Ops::upload`] does
    /// but in the background, as `rollout` says (held to its rules), and answers at once: its
    /// events (each host's progress and end, then the summary) are followed with
    /// [`Ops::follow`], and it is cancelled with [`Ops::cancel_launch`]. Needs the run level
    /// `read-write`. `keep` is held until the upload has ended (the file it reads, removed
    /// when dropped).
    pub async fn launch_upload(
        &self,
        launches: &Launches,
        targets: Targets,
        rollout: RolloutOptions,
        upload: Upload,
        keep: impl Send + 'static,
    ) -> Result<Launched> {
        self.require_run(RunLevel::ReadWrite)?;
        let rollout = rollout.rollout()?;
        let hosts: Vec<String> = self
            .resolve(&targets)
            .await?
            .into_iter()
            .map(|h| h.name)
            .collect();
        if upload.template {
            // Too large or not text: refused now, not in the launch's events.
            super::uploads::read_template(&upload.source).await?;
        }
        let label = format!("upload: {}", upload.path);
        let new = NewLaunch {
            actor: self.actor.to_string(),
            job: label.clone(),
            hosts: hosts.clone(),
            level: RunLevel::ReadWrite,
            request: None,
        };
        let (id, launch) = launches.add(self.fleet.store(), &new).await?;
        launch.push(scheduled(id, &label, &hosts, None));
        let ops = self
            .clone()
            .rolling(rollout)
            .cancellable(launch.cancellation.clone());
        let launches = launches.clone();
        tokio::spawn(async move {
            let last = match ops.upload(&targets, upload, launch.upload_sink()).await {
                Ok(results) => LaunchEvent::upload_summary(results),
                Err(e) => LaunchEvent::Error {
                    message: e.to_string(),
                },
            };
            drop(keep);
            ops.conclude(&launches, id, &launch, last).await;
        });
        Ok(Launched {
            launch: id,
            job: label,
            hosts,
        })
    }

    /// Starts updating the agents `request` names, as [`Ops::update_agents`] does but in the
    /// background, and answers at once: its events are an upload's (each host's progress and
    /// end, then the summary), followed with [`Ops::follow`] and cancelled with
    /// [`Ops::cancel_launch`]. Needs what [`Ops::require_update`] says.
    pub async fn launch_update(
        &self,
        launches: &Launches,
        request: UpdateAgents,
    ) -> Result<Launched> {
        self.require_update()?;
        request.confirm_secs()?;
        request.rollout.rollout()?;
        let hosts: Vec<String> = self
            .resolve(&request.targets)
            .await?
            .into_iter()
            .map(|h| h.name)
            .collect();
        let label = "update-agents".to_owned();
        let new = NewLaunch {
            actor: self.actor.to_string(),
            job: label.clone(),
            hosts: hosts.clone(),
            level: RunLevel::ReadWrite,
            request: None,
        };
        let (id, launch) = launches.add(self.fleet.store(), &new).await?;
        launch.push(scheduled(id, &label, &hosts, None));
        let ops = self.clone().cancellable(launch.cancellation.clone());
        let launches = launches.clone();
        tokio::spawn(async move {
            let last = match ops.update_agents(&request, launch.upload_sink()).await {
                Ok(results) => LaunchEvent::upload_summary(results),
                Err(e) => LaunchEvent::Error {
                    message: e.to_string(),
                },
            };
            ops.conclude(&launches, id, &launch, last).await;
        });
        Ok(Launched {
            launch: id,
            job: label,
            hosts,
        })
    }

    /// Ends launch `id` with `last`: recorded in the store, then told; its events let go
    /// once they have been kept long enough.
    async fn conclude(&self, launches: &Launches, id: u64, launch: &Launch, last: LaunchEvent) {
        // Kept before it is told, so that whoever reads the end finds it in the store.
        let recorded = match serde_json::to_string(&last) {
            Ok(text) => self
                .fleet
                .store()
                .finish_launch(id, &text)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = recorded {
            tracing::error!(launch = id, "cannot record the launch's end: {e}");
        }
        launch.finish(last);
        tokio::time::sleep(launches.keep).await;
        launches.retire(id);
        let before = crate::model::now_ms() - i64::try_from(launches.keep.as_millis()).unwrap_or(0);
        if let Err(e) = self.fleet.store().prune_launch_events(before).await {
            tracing::warn!("relayed events of ended launches not forgotten: {e}");
        }
    }

    /// Cancels launch `id` as Ctrl-C cancels `run`: its scripts are stopped on their hosts
    /// and the hosts not started are skipped. Needs the run level its job needed; recorded as
    /// `run-cancelled`. A launch that has finished (or was cut short by a stop of the server)
    /// is a conflict.
    pub async fn cancel_launch(&self, launches: &Launches, id: u64) -> Result<()> {
        // Who may run nothing may cancel nothing, whether the launch exists or not.
        self.require_run(RunLevel::ReadOnly)?;
        let Some(launch) = launches.get(id) else {
            // Another server may run it: it is asked through the database.
            let kept = self.kept_launch(id).await?;
            if kept.last_event.is_none() && kept.owner_live {
                self.require_run(kept.level)?;
                if self.fleet.store().ask_cancel(id).await? {
                    return self
                        .record(None, EventKind::RunCancelled, &format!("launch {id}"))
                        .await;
                }
            }
            let message = format!("launch {id} has already finished");
            return Err(OpsError::Conflict(message));
        };
        self.require_run(launch.level)?;
        if launch.progress.borrow().1 {
            let message = format!("launch {id} has already finished");
            return Err(OpsError::Conflict(message));
        }
        launch.cancellation.cancel();
        self.record(None, EventKind::RunCancelled, &format!("launch {id}"))
            .await
    }

    /// Launch `id` as the store keeps it.
    async fn kept_launch(&self, id: u64) -> Result<crate::model::Launch> {
        Ok(self.fleet.store().launch(id).await?)
    }

    /// The events of launch `id`, from its start (told again from the store and the history
    /// once they have left the buffer, or after a restart; read as another server relays
    /// them while it runs there).
    pub async fn follow(&self, launches: &Launches, id: u64) -> Result<Follower> {
        let launch = match launches.get(id) {
            Some(launch) => launch,
            None => {
                let kept = self.kept_launch(id).await?;
                if kept.last_event.is_none() && kept.owner_live {
                    let launch = Launch::new(kept.level);
                    let follower = Follower::of(launch.clone(), launches.closed.clone());
                    let store = self.fleet.store().clone();
                    tokio::spawn(follow_relayed(store, id, launch, launches.closed.clone()));
                    return Ok(follower);
                }
                let schedule = self.fleet.store().launch_schedule(id).await?;
                let gone = Gone::kept(id, &kept, schedule.as_deref())?;
                let mut runs = HashMap::new();
                for id in gone.results.iter().filter_map(|r| r.run) {
                    runs.insert(id, self.fleet.store().run(id).await?);
                }
                let launch = Launch::new(RunLevel::ReadWrite);
                for event in replay(&gone, &runs) {
                    launch.push(event);
                }
                launch.end();
                launch
            }
        };
        Ok(Follower::of(launch, launches.closed.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::Share;
    use super::super::testing::fixture;
    use super::*;

    /// A new launch of `launches`, recorded in `ops`'s store.
    async fn add(ops: &Ops, launches: &Launches) -> Result<(u64, Arc<Launch>)> {
        let new = NewLaunch {
            actor: ops.actor.to_string(),
            job: "command: true".into(),
            hosts: Vec::new(),
            level: RunLevel::ReadWrite,
            request: None,
        };
        launches.add(ops.fleet.store(), &new).await
    }

    fn line(n: usize) -> LaunchEvent {
        LaunchEvent::output("a", Stream::Stdout, &"x".repeat(n))
    }

    fn begun() -> LaunchEvent {
        started(1, "command: true", &[])
    }

    fn summary() -> LaunchEvent {
        LaunchEvent::summary(Vec::new())
    }

    /// The result of `host`'s run `run`, which succeeded.
    fn succeeded(host: &str, run: Option<i64>) -> RunResult {
        RunResult {
            host: host.into(),
            run,
            success: true,
            status: crate::ops::Status::Ok,
            outcome: "exit 0".into(),
            exit_code: Some(0),
            elapsed_ms: Some(1),
            unreached: false,
            untrusted: None,
        }
    }

    #[tokio::test]
    async fn a_late_follower_reads_from_the_start_with_a_gap_where_output_was_dropped() {
        let (_dir, ops) = fixture().await;
        let launches = Launches::default();
        let (id, launch) = add(&ops, &launches).await.unwrap();
        launch.push(begun());
        launch.push(line(1));
        let mut early = ops.follow(&launches, id).await.unwrap();
        assert_eq!(early.next().await.unwrap(), begun());
        assert_eq!(early.next().await.unwrap(), line(1));
        // More than the buffer holds: the oldest output leaves, the start stays.
        for _ in 0..5 {
            launch.push(line(BUFFER_BYTES / 4));
        }
        launch.end();
        let mut late = ops.follow(&launches, id).await.unwrap();
        assert_eq!(late.next().await.unwrap(), begun());
        let gap = late.next().await.unwrap();
        assert_eq!(gap, LaunchEvent::Gap { dropped: 3 });
        let mut rest = 0;
        while let Some(event) = late.next().await {
            assert_eq!(event, line(BUFFER_BYTES / 4));
            rest += 1;
        }
        assert_eq!(rest, 3);
        // The early follower, behind, is told of the gap too, then ends with the launch.
        assert_eq!(early.next().await.unwrap().kind(), "gap");
        let mut count = 0;
        while early.next().await.is_some() {
            count += 1;
        }
        assert_eq!(count, 3);
        assert_eq!(
            ops.follow(&launches, id + 1).await.err().map(|e| e.kind()),
            Some(super::super::ErrorKind::NotFound)
        );
    }

    #[tokio::test]
    async fn a_launch_whose_events_have_left_is_told_again_from_the_store_even_by_a_new_process() {
        let (_dir, ops) = super::super::testing::fleet(&["a"]).await;
        let launches = Launches::keeping(Duration::ZERO);
        let new = NewRun {
            command: Some("true".into()),
            targets: Targets::all(),
            output_cap: Some(1024),
            ..NewRun::default()
        };
        let launched = ops.launch(&launches, new).await.unwrap();
        let id = launched.launch;
        let mut live = Vec::new();
        let mut follower = ops.follow(&launches, id).await.unwrap();
        while let Some(event) = follower.next().await {
            live.push(event);
        }
        // Its events leave at once; until then it is followed as it was.
        while lock(&launches.live).contains_key(&id) {
            tokio::task::yield_now().await;
        }
        let all = |mut follower: Follower| async move {
            let mut events = Vec::new();
            while let Some(event) = follower.next().await {
                events.push(event);
            }
            events
        };
        let again = all(ops.follow(&launches, id).await.unwrap()).await;
        let kinds: Vec<&str> = again.iter().map(LaunchEvent::kind).collect();
        assert_eq!(kinds, ["started", "done", "summary"]);
        assert_eq!(again, live);
        // A new process (a restarted serve) tells it from the store alike.
        let restarted = Launches::default();
        assert_eq!(all(ops.follow(&restarted, id).await.unwrap()).await, live);
        // A launch that never ended (its server stopped first) is told with its start and an
        // error saying so; it cannot be cancelled.
        let new = NewLaunch {
            actor: "user:ann".into(),
            job: "command: sleep 9".into(),
            hosts: vec!["a".into()],
            level: RunLevel::ReadWrite,
            request: None,
        };
        let cut = ops.fleet.store().start_launch(&new).await.unwrap();
        assert!(cut > id);
        let events = all(ops.follow(&restarted, cut).await.unwrap()).await;
        assert_eq!(events[0], started(cut, "command: sleep 9", &new.hosts));
        assert_eq!(events[1].kind(), "error", "{events:?}");
        assert_eq!(events.len(), 2, "{events:?}");
        let refused = ops.cancel_launch(&restarted, cut).await.unwrap_err();
        assert_eq!(refused.kind(), super::super::ErrorKind::Conflict);
    }

    #[tokio::test]
    async fn output_past_the_relay_budget_reaches_other_servers_as_a_gap_and_every_end_still_does()
    {
        let (_dir, ops) = fixture().await;
        let store = ops.fleet.store().clone();
        let (id, launch) = add(&ops, &Launches::default()).await.unwrap();
        let done = LaunchEvent::Done(succeeded("a", Some(1)));
        // Relayed as its server does, a batch at a time: the lines past the budget are not.
        let (mut next, mut relayed) = (0, 0);
        let mut relay = async |launch: &Launch| {
            let batch = launch.unrelayed(&mut next, &mut relayed);
            store.relay_launch_events(id, &batch).await.unwrap();
        };
        launch.push(begun());
        let size = serde_json::to_string(&line(1000)).unwrap().len();
        let fit = RELAY_BYTES / size;
        for _ in 0..fit {
            launch.push(line(1000));
        }
        relay(&launch).await;
        for _ in 0..10 {
            launch.push(line(1000));
        }
        launch.push(done.clone());
        launch.finish(summary());
        relay(&launch).await;

        // A follower on another server reads what was relayed.
        let copy = Launch::new(RunLevel::ReadWrite);
        let mut follower = Follower::of(copy.clone(), Cancellation::new());
        tokio::spawn(follow_relayed(store, id, copy, Cancellation::new()));
        let mut told = Vec::new();
        while let Some(event) = follower.next().await {
            told.push(event);
        }
        assert_eq!(told.len(), 1 + fit + 3, "{:?}", &told[fit..]);
        assert_eq!(told[0], begun());
        assert!(told[1..=fit].iter().all(|e| *e == line(1000)));
        assert_eq!(
            told[fit + 1..],
            [LaunchEvent::Gap { dropped: 10 }, done, summary()]
        );
    }

    #[test]
    fn a_replay_has_each_runs_kept_lines_then_its_end() {
        let gone = Gone {
            started: begun(),
            results: vec![succeeded("a", Some(7)), succeeded("b", None)],
            uploads: Vec::new(),
            last: summary(),
        };
        let run = Run {
            id: 7,
            host: "a".into(),
            what: "command: x".into(),
            action: "00".into(),
            started: 0,
            finished: Some(1),
            success: Some(true),
            actor: None,
            launch: None,
            cancelled: false,
            outcome: Some("exit 0".into()),
            exit_code: Some(0),
            elapsed_ms: Some(1),
            stdout: b"one\ntwo".to_vec(),
            stderr: b"oops\n".to_vec(),
            truncated: false,
        };
        let events = replay(&gone, &HashMap::from([(7, run)]));
        let output = |stream, text| LaunchEvent::output("a", stream, text);
        assert_eq!(
            events,
            [
                begun(),
                output(Stream::Stdout, "one"),
                output(Stream::Stdout, "two"),
                output(Stream::Stderr, "oops"),
                LaunchEvent::Done(succeeded("a", Some(7))),
                summary(),
            ]
        );
    }

    #[tokio::test]
    async fn a_new_launch_makes_room_by_letting_finished_ones_go_and_is_refused_without() {
        let (_dir, ops) = fixture().await;
        let launches = Launches {
            room: 2,
            ..Launches::default()
        };
        let (first, one) = add(&ops, &launches).await.unwrap();
        let (second, _) = add(&ops, &launches).await.unwrap();
        let err = add(&ops, &launches).await.err().map(|e| e.kind());
        assert_eq!(err, Some(super::super::ErrorKind::Conflict));
        one.finish(summary());
        let (third, _) = add(&ops, &launches).await.unwrap();
        let mut live: Vec<u64> = lock(&launches.live).keys().copied().collect();
        live.sort_unstable();
        assert_eq!(live, [second, third]);
        assert!(first < second && second < third);
    }

    fn new(json: serde_json::Value) -> NewRun {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_run_names_a_script_or_a_command_and_sane_batches() {
        use serde_json::json;
        let (targets, job, rollout, cap) =
            new(json!({"command": "true", "hosts": ["a"], "batch": 2}))
                .parts()
                .unwrap();
        assert_eq!(targets, Targets::hosts(["a"]));
        assert_eq!(job.label(), "command: true");
        assert_eq!(rollout.batch_size(), Some(Share::Count(2)));
        let (_, _, rollout, _) =
            new(json!({"command": "true", "batch": "25%", "max_failures": "10%"}))
                .parts()
                .unwrap();
        assert_eq!(rollout.batch_size(), Some(Share::Percent(25)));
        assert_eq!(rollout.max_failures(), Some(Share::Percent(10)));
        assert_eq!(cap, DEFAULT_OUTPUT_CAP);
        // A script's run may have its own timeout, as a command's.
        let (_, job, _, _) = new(json!({"script": "s", "timeout_secs": 5}))
            .parts()
            .unwrap();
        let timeout_secs = Some(5);
        assert_eq!(
            job,
            Job::Script {
                name: "s".into(),
                timeout_secs
            }
        );
        for bad in [
            json!({"all": true}),
            json!({"script": "s", "command": "true"}),
            json!({"command": "true", "batch": 0}),
            json!({"command": "true", "batch": "0%"}),
        ] {
            assert!(new(bad.clone()).parts().is_err(), "{bad}");
        }
        // The hosts' fields are the request's own: an unknown one is refused, as before.
        let all = new(json!({"command": "true", "all": true, "exclude_groups": ["g"]}));
        assert!(all.targets.all && all.targets.exclude_groups == ["g"]);
        let unknown =
            serde_json::from_value::<NewRun>(json!({"command": "true", "everyone": true}));
        assert!(unknown.unwrap_err().to_string().contains("unknown field"));
        // What the client sends is what the server reads.
        let sent = new(json!({"command": "true", "hosts": ["a"], "batch": "50%"}));
        let read: NewRun = serde_json::from_value(serde_json::to_value(&sent).unwrap()).unwrap();
        assert_eq!(read.targets, sent.targets);
        assert_eq!(read.rollout.batch, Some(Share::Percent(50)));
    }

    #[test]
    fn events_are_json_with_their_type_as_the_web_ui_reads_them() {
        use serde_json::json;
        let json = |event: &LaunchEvent| serde_json::to_value(event).unwrap();
        let output = LaunchEvent::output("a", Stream::Stderr, "oops");
        assert_eq!(
            json(&output),
            json!({ "type": "output", "host": "a", "stream": "stderr", "text": "oops" })
        );
        assert_eq!(
            json(&started(3, "s", &["a".into()])),
            json!({ "type": "started", "launch": 3, "hosts": ["a"], "job": "s" })
        );
        assert_eq!(
            json(&LaunchEvent::Gap { dropped: 2 }),
            json!({ "type": "gap", "dropped": 2 })
        );
        let result = RunResult {
            host: "a".into(),
            run: Some(7),
            success: false,
            status: Status::Failed,
            outcome: "exit 1".into(),
            exit_code: Some(1),
            elapsed_ms: Some(5),
            unreached: false,
            untrusted: None,
        };
        let done = json(&LaunchEvent::Done(result.clone()));
        assert_eq!(
            (&done["type"], &done["host"], &done["run"]),
            (&json!("done"), &json!("a"), &json!(7))
        );
        assert_eq!(
            (&done["status"], &done["outcome"]),
            (&json!("failed"), &json!("exit 1"))
        );
        let summary = json(&LaunchEvent::summary(vec![result]));
        assert_eq!(
            (
                &summary["type"],
                &summary["succeeded"],
                &summary["failed"],
                &summary["cancelled"],
                &summary["skipped"]
            ),
            (
                &json!("summary"),
                &json!(0),
                &json!(1),
                &json!(0),
                &json!(0)
            )
        );
        let uploaded = Done::new("a".into(), Err("refused".into()));
        for event in [
            output,
            LaunchEvent::Error {
                message: "no".into(),
            },
            LaunchEvent::Progress {
                host: "a".into(),
                sent: 1,
                bytes: 2,
            },
            LaunchEvent::Uploaded(uploaded.clone()),
            LaunchEvent::upload_summary(vec![uploaded]),
        ] {
            let text = serde_json::to_string(&event).unwrap();
            assert_eq!(serde_json::from_str::<LaunchEvent>(&text).unwrap(), event);
            assert_eq!(json(&event)["type"], event.kind());
        }
        assert_eq!(
            json(&LaunchEvent::upload_summary(Vec::new()))["type"],
            "upload-summary"
        );
        assert!(
            serde_json::from_value::<LaunchEvent>(
                json!({ "type": "output", "host": "a", "stream": "x", "text": "" })
            )
            .is_err()
        );
    }

    #[test]
    fn an_uploads_progress_is_told_once_a_hundredth_and_each_host_ends() {
        let launch = Launch::new(RunLevel::ReadWrite);
        let sink = launch.upload_sink();
        sink(UploadEvent::Started {
            host: "a",
            bytes: 1000,
        });
        for sent in 1..=1000 {
            sink(UploadEvent::Sent { host: "a", sent });
        }
        // A host not started is not told (nor is an empty file's progress beyond its start).
        sink(UploadEvent::Sent { host: "b", sent: 5 });
        sink(UploadEvent::Started {
            host: "c",
            bytes: 0,
        });
        sink(UploadEvent::Sent { host: "c", sent: 0 });
        let done = Done::new("a".into(), Ok("1000 bytes".into()));
        sink(UploadEvent::Done(&done));
        let events = launch.read(&mut 0);
        let sent: Vec<u64> = events
            .iter()
            .filter_map(|e| match e {
                LaunchEvent::Progress { host, sent, .. } if host == "a" => Some(*sent),
                _ => None,
            })
            .collect();
        let hundredths: Vec<u64> = (0..=100).map(|n| n * 10).collect();
        assert_eq!(sent, hundredths);
        assert_eq!(events.len(), 101 + 1 + 1, "{events:?}");
        assert_eq!(events.back(), Some(&LaunchEvent::Uploaded(done)));
    }

    #[tokio::test]
    async fn an_upload_launch_is_followed_to_its_summary_and_told_again_from_the_store() {
        let (dir, ops) = super::super::testing::fleet(&["a"]).await;
        let launches = Launches::keeping(Duration::ZERO);
        let file = tempfile::NamedTempFile::new_in(dir.path()).unwrap();
        std::fs::write(file.path(), b"abc").unwrap();
        let kept = file.path().to_path_buf();
        let upload = Upload {
            source: kept.clone(),
            path: "/tmp/x".into(),
            owner: None,
            mode: 0o644,
            force: false,
            template: false,
        };
        let launched = ops
            .launch_upload(
                &launches,
                Targets::all(),
                RolloutOptions::default(),
                upload.clone(),
                file,
            )
            .await
            .unwrap();
        assert_eq!(
            (launched.job.as_str(), &launched.hosts[..]),
            ("upload: /tmp/x", &["a".to_owned()][..])
        );
        let all = |mut follower: Follower| async move {
            let mut events = Vec::new();
            while let Some(event) = follower.next().await {
                events.push(event);
            }
            events
        };
        let live = all(ops.follow(&launches, launched.launch).await.unwrap()).await;
        let kinds: Vec<&str> = live.iter().map(LaunchEvent::kind).collect();
        // The host is down: it starts and fails.
        assert_eq!(kinds, ["started", "progress", "uploaded", "upload-summary"]);
        let LaunchEvent::UploadSummary {
            failed, results, ..
        } = &live[3]
        else {
            panic!("{live:?}");
        };
        assert_eq!((*failed, results.len()), (1, 1));
        // What it was given to keep went with its end.
        assert!(!kept.exists());
        // Told again from the store: without the progress.
        let again = all(ops
            .follow(&Launches::default(), launched.launch)
            .await
            .unwrap())
        .await;
        assert_eq!(again, [live[0].clone(), live[2].clone(), live[3].clone()]);
        // A batch of no host, or no host named, is refused before anything starts.
        let zero = RolloutOptions {
            batch: Some(Share::Count(0)),
            max_failures: None,
        };
        for (targets, rollout) in [
            (Targets::all(), zero),
            (Targets::default(), RolloutOptions::default()),
        ] {
            let refused = ops
                .launch_upload(&launches, targets, rollout, upload.clone(), ())
                .await
                .unwrap_err();
            assert_eq!(refused.kind(), super::super::ErrorKind::Invalid);
        }
    }

    #[tokio::test]
    async fn closing_ends_a_follower_waiting_for_more() {
        let (_dir, ops) = fixture().await;
        let launches = Launches::default();
        let (id, launch) = add(&ops, &launches).await.unwrap();
        launch.push(begun());
        let mut follower = ops.follow(&launches, id).await.unwrap();
        assert!(follower.next().await.is_some());
        let waiting = tokio::spawn(async move { follower.next().await });
        launches.close();
        assert_eq!(waiting.await.unwrap(), None);
    }
}
