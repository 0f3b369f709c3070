//! Runs started in the background, as the HTTP API starts them. A *launch* is one start of a
//! job on many hosts (each host's part is a run of the history); it goes on in the daemon
//! whoever follows it. [`Launches`] keeps each launch's events (its start, each line of
//! output, each host's end, the summary) in a bounded buffer, so that a follower who comes
//! late first gets what was already produced. Each launch is recorded in the store (who, what,
//! when, and at its end its summary with each host's run id), so that once it has left the
//! buffer ([`KEEP`] after its end), or `serve` has restarted, it is told again from the store
//! and the history (its runs' kept output). Its id is the store's, never reused.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use otto_proto::Stream;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::{
    Cancellation, Job, Ops, OpsError, Result, Rollout, RunEvent, RunResult, RunSink, Status,
    Targets,
};
use crate::model::{EventKind, NewLaunch, Run, RunLevel};
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

/// A finished launch, as told again from the store.
struct Gone {
    /// Its `started` event.
    started: Value,
    /// Each host's result (with its run's id, if it has one).
    results: Vec<RunResult>,
    /// Its last event: the summary, or why it failed.
    last: Value,
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
    /// conflict when every launch kept is still running.
    async fn add(
        &self,
        store: &Store,
        new: &NewLaunch,
        level: RunLevel,
    ) -> Result<(u64, Arc<Launch>)> {
        let _adding = self.adding.lock().await;
        self.make_room()?;
        let id = store.start_launch(new).await?;
        let launch = Launch::new(level);
        lock(&self.live).insert(id, launch.clone());
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
                "{} runs started through the API are still going: try again when one has ended",
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

    /// Ends every follower (the server is stopping); the launches themselves go on.
    pub fn close(&self) {
        self.closed.cancel();
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
    events: VecDeque<(u64, usize, Value)>,
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

    fn push(&self, event: Value) {
        let size = event.to_string().len();
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
    fn finish(&self, last: Value) {
        self.push(last);
        self.end();
    }

    /// The events from number `next` on (a `gap` event first for those dropped); moves
    /// `next` past them.
    fn read(&self, next: &mut u64) -> VecDeque<Value> {
        let log = lock(&self.log);
        let mut out = VecDeque::new();
        let from = *next;
        for (seq, _, event) in log.events.iter().filter(|(s, _, _)| *s >= from) {
            if *seq > *next {
                out.push_back(json!({ "type": "gap", "dropped": seq - *next }));
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
            RunEvent::Line { host, stream, text } => launch.push(json!({
                "type": "output",
                "host": host,
                "stream": match stream {
                    Stream::Stdout => "stdout",
                    Stream::Stderr => "stderr",
                },
                "text": text,
            })),
            RunEvent::Done(result) => launch.push(tagged("done", result)),
            RunEvent::Data { .. } => {}
        })
    }
}

/// `value`'s fields with `"type": kind`.
fn tagged(kind: &str, value: &impl Serialize) -> Value {
    let mut tagged = json!({ "type": kind });
    if let (Some(t), Ok(Value::Object(fields))) =
        (tagged.as_object_mut(), serde_json::to_value(value))
    {
        t.extend(fields);
    }
    tagged
}

/// The event that starts launch `id`.
fn started(id: u64, job: &str, hosts: &[String]) -> Value {
    json!({ "type": "started", "launch": id, "hosts": hosts, "job": job })
}

impl Gone {
    /// Launch `kept` as the store has it. One that has no end was cut short by a stop of the
    /// server that ran it: an `error` event says so.
    fn kept(id: u64, kept: &crate::model::Launch) -> Result<Gone> {
        let corrupt = |text: &str| StoreError::Corrupt("launch", text.to_owned());
        let last = match &kept.last_event {
            Some(text) => serde_json::from_str::<Value>(text).map_err(|_| corrupt(text))?,
            None => json!({
                "type": "error",
                "message": format!(
                    "launch {id} did not end: the server stopped while it ran \
                     (its runs are in the history, as interrupted)"
                ),
            }),
        };
        let results = match last.get("results") {
            Some(results) => serde_json::from_value(results.clone())
                .map_err(|_| corrupt(&results.to_string()))?,
            None => Vec::new(),
        };
        Ok(Gone {
            started: started(id, &kept.job, &kept.hosts),
            results,
            last,
        })
    }
}

/// The events of a finished launch told again from its runs in the history (`runs`, by id):
/// its start, each run's kept lines (standard output, then error) and end, its last event.
/// Lines of different hosts are no longer interleaved as they came.
fn replay(gone: &Gone, runs: &HashMap<i64, Run>) -> Vec<Value> {
    let mut events = vec![gone.started.clone()];
    for result in &gone.results {
        let Some(run) = result.run.and_then(|id| runs.get(&id)) else {
            continue;
        };
        for (stream, data) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            for line in data.split_inclusive(|b| *b == b'\n') {
                let line = line.strip_suffix(b"\n").unwrap_or(line);
                events.push(json!({
                    "type": "output",
                    "host": result.host,
                    "stream": stream,
                    "text": String::from_utf8_lossy(line),
                }));
            }
        }
        events.push(tagged("done", result));
    }
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
    pending: VecDeque<Value>,
    progress: watch::Receiver<(u64, bool)>,
    closed: Cancellation,
}

impl Follower {
    /// The next event (JSON with its `type`), or None once the launch has ended and every
    /// event was read, or the server is stopping.
    pub async fn next(&mut self) -> Option<Value> {
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

impl Ops {
    /// Starts `job` on the hosts [`Ops::run_hosts`] finds, as [`Ops::run`] does but in the
    /// background, as the rollout says, and answers at once: its events are followed with
    /// [`Ops::follow`]. Needs the run level the job needs ([`Ops::require_job`]).
    pub async fn launch(
        &self,
        launches: &Launches,
        targets: Targets,
        job: Job,
        rollout: Rollout,
        output_cap: usize,
    ) -> Result<Launched> {
        let level = self.require_job(&job).await?;
        let hosts: Vec<String> = self
            .run_hosts(&targets, &job)
            .await?
            .into_iter()
            .map(|h| h.name)
            .collect();
        let label = job.label();
        let new = NewLaunch {
            actor: self.actor.to_string(),
            job: label.clone(),
            hosts: hosts.clone(),
        };
        let (id, launch) = launches.add(self.fleet.store(), &new, level).await?;
        launch.push(started(id, &label, &hosts));
        let ops = self
            .clone()
            .rolling(rollout)
            .cancellable(launch.cancellation.clone());
        let launches = launches.clone();
        tokio::spawn(async move {
            let last = match ops.run(&targets, &job, output_cap, launch.sink()).await {
                Ok(results) => {
                    let count = |status| results.iter().filter(|r| r.status == status).count();
                    json!({
                        "type": "summary",
                        "succeeded": count(Status::Ok),
                        "failed": count(Status::Failed),
                        "cancelled": count(Status::Cancelled),
                        "skipped": count(Status::Skipped),
                        "results": results,
                    })
                }
                Err(e) => json!({ "type": "error", "message": e.to_string() }),
            };
            // Kept before it is told, so that whoever reads the end finds it in the store.
            if let Err(e) = ops.fleet.store().finish_launch(id, &last.to_string()).await {
                tracing::error!(launch = id, "cannot record the launch's end: {e}");
            }
            launch.finish(last);
            tokio::time::sleep(launches.keep).await;
            launches.retire(id);
        });
        Ok(Launched {
            launch: id,
            job: label,
            hosts,
        })
    }

    /// Cancels launch `id` as Ctrl-C cancels `run`: its scripts are stopped on their hosts
    /// and the hosts not started are skipped. Needs the run level its job needed; recorded as
    /// `run-cancelled`. A launch that has finished (or was cut short by a stop of the server)
    /// is a conflict.
    pub async fn cancel_launch(&self, launches: &Launches, id: u64) -> Result<()> {
        // Who may run nothing may cancel nothing, whether the launch exists or not.
        self.require_run(RunLevel::ReadOnly)?;
        let Some(launch) = launches.get(id) else {
            self.kept_launch(id).await?;
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
    /// once they have left the buffer, or after a restart).
    pub async fn follow(&self, launches: &Launches, id: u64) -> Result<Follower> {
        let launch = match launches.get(id) {
            Some(launch) => launch,
            None => {
                let gone = Gone::kept(id, &self.kept_launch(id).await?)?;
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
        Ok(Follower {
            progress: launch.progress.subscribe(),
            launch,
            next: 0,
            pending: VecDeque::new(),
            closed: launches.closed.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::fixture;
    use super::*;

    /// A new launch of `launches`, recorded in `ops`'s store.
    async fn add(ops: &Ops, launches: &Launches) -> Result<(u64, Arc<Launch>)> {
        let new = NewLaunch {
            actor: ops.actor.to_string(),
            job: "command: true".into(),
            hosts: Vec::new(),
        };
        launches
            .add(ops.fleet.store(), &new, RunLevel::ReadWrite)
            .await
    }

    fn line(n: usize) -> Value {
        json!({ "type": "output", "text": "x".repeat(n) })
    }

    #[tokio::test]
    async fn a_late_follower_reads_from_the_start_with_a_gap_where_output_was_dropped() {
        let (_dir, ops) = fixture();
        let launches = Launches::default();
        let (id, launch) = add(&ops, &launches).await.unwrap();
        launch.push(json!({ "type": "started" }));
        launch.push(line(1));
        let mut early = ops.follow(&launches, id).await.unwrap();
        assert_eq!(early.next().await.unwrap()["type"], "started");
        assert_eq!(early.next().await.unwrap(), line(1));
        // More than the buffer holds: the oldest output leaves, the start stays.
        for _ in 0..5 {
            launch.push(line(BUFFER_BYTES / 4));
        }
        launch.end();
        let mut late = ops.follow(&launches, id).await.unwrap();
        assert_eq!(late.next().await.unwrap()["type"], "started");
        let gap = late.next().await.unwrap();
        assert_eq!(gap, json!({ "type": "gap", "dropped": 3 }));
        let mut rest = 0;
        while let Some(event) = late.next().await {
            assert_eq!(event, line(BUFFER_BYTES / 4));
            rest += 1;
        }
        assert_eq!(rest, 3);
        // The early follower, behind, is told of the gap too, then ends with the launch.
        assert_eq!(early.next().await.unwrap()["type"], "gap");
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
        let job = Job::Command {
            command: "true".into(),
            timeout_secs: None,
        };
        let launched = ops
            .launch(&launches, Targets::all(), job, Rollout::default(), 1024)
            .await
            .unwrap();
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
        let kinds: Vec<&str> = again.iter().filter_map(|e| e["type"].as_str()).collect();
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
        };
        let cut = ops.fleet.store().start_launch(&new).await.unwrap();
        assert!(cut > id);
        let events = all(ops.follow(&restarted, cut).await.unwrap()).await;
        assert_eq!(events[0], started(cut, "command: sleep 9", &new.hosts));
        assert_eq!(events[1]["type"], "error", "{events:?}");
        assert_eq!(events.len(), 2, "{events:?}");
        let refused = ops.cancel_launch(&restarted, cut).await.unwrap_err();
        assert_eq!(refused.kind(), super::super::ErrorKind::Conflict);
    }

    #[test]
    fn a_replay_has_each_runs_kept_lines_then_its_end() {
        let result = |host: &str, run| RunResult {
            host: host.into(),
            run,
            success: true,
            status: crate::ops::Status::Ok,
            outcome: "exit 0".into(),
            exit_code: Some(0),
            elapsed_ms: Some(1),
        };
        let gone = Gone {
            started: json!({ "type": "started" }),
            results: vec![result("a", Some(7)), result("b", None)],
            last: json!({ "type": "summary" }),
        };
        let run = Run {
            id: 7,
            host: "a".into(),
            what: "command: x".into(),
            action: "00".into(),
            started: 0,
            finished: Some(1),
            success: Some(true),
            cancelled: false,
            outcome: Some("exit 0".into()),
            exit_code: Some(0),
            elapsed_ms: Some(1),
            stdout: b"one\ntwo".to_vec(),
            stderr: b"oops\n".to_vec(),
            truncated: false,
        };
        let events = replay(&gone, &HashMap::from([(7, run)]));
        let output = |stream: &str, text: &str| json!({ "type": "output", "host": "a", "stream": stream, "text": text });
        assert_eq!(
            events,
            [
                json!({ "type": "started" }),
                output("stdout", "one"),
                output("stdout", "two"),
                output("stderr", "oops"),
                tagged("done", &result("a", Some(7))),
                json!({ "type": "summary" }),
            ]
        );
    }

    #[tokio::test]
    async fn a_new_launch_makes_room_by_letting_finished_ones_go_and_is_refused_without() {
        let (_dir, ops) = fixture();
        let launches = Launches {
            room: 2,
            ..Launches::default()
        };
        let (first, one) = add(&ops, &launches).await.unwrap();
        let (second, _) = add(&ops, &launches).await.unwrap();
        let err = add(&ops, &launches).await.err().map(|e| e.kind());
        assert_eq!(err, Some(super::super::ErrorKind::Conflict));
        one.finish(json!({ "type": "summary" }));
        let (third, _) = add(&ops, &launches).await.unwrap();
        let mut live: Vec<u64> = lock(&launches.live).keys().copied().collect();
        live.sort_unstable();
        assert_eq!(live, [second, third]);
        assert!(first < second && second < third);
    }

    #[tokio::test]
    async fn closing_ends_a_follower_waiting_for_more() {
        let (_dir, ops) = fixture();
        let launches = Launches::default();
        let (id, launch) = add(&ops, &launches).await.unwrap();
        launch.push(json!({ "type": "started" }));
        let mut follower = ops.follow(&launches, id).await.unwrap();
        assert!(follower.next().await.is_some());
        let waiting = tokio::spawn(async move { follower.next().await });
        launches.close();
        assert_eq!(waiting.await.unwrap(), None);
    }
}
