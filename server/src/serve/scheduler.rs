//! One scheduler for the daemon's periodic jobs. It sleeps until the earliest job is due; then,
//! on every enabled host, it starts a turn made of the jobs due now, one after the other in
//! the order they were given. Hosts are independent: a host whose last turn is still going
//! skips this one (so no job runs twice at once on a host), and every wait in a turn has a
//! deadline, so a slow or silent host only skips its own turns and never delays the others.
//! A job that fails is logged, and comes round again at its next due time. At most
//! [`TURNS_AT_ONCE`] turns are in flight; the others wait their turn in order, so that a round
//! over ten thousand hosts holds the memory of a thousand turns, not of ten thousand; once a
//! round is over, the memory its turns freed is given back to the system ([`memory`]).
//!
//! When the shutdown future completes, the scheduler aborts the turns in flight, records for
//! each host what it cut short (a `cut-short` event, in the words of the job that was working),
//! and returns.
//!
//! When jobs are due is kept apart from the clock in [`Timetable`], tested without one.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::{Id, JoinSet};
use tokio::time::Instant;

use crate::model::{Host, now_ms};
use crate::names::HostName;
use crate::ops::Ops;

use super::memory;
use super::ownership::{Gained, Ownership};

/// A job's work on one host.
pub type Work<'a> = Pin<Box<dyn Future<Output = Result<(), JobError>> + Send + 'a>>;

/// Why a job's work on a host failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// What failed, in words.
    #[error("{0}")]
    Failed(String),
}

/// Periodic work on every enabled host.
pub trait Periodic: Send + Sync {
    /// Its name, in logs.
    fn name(&self) -> &'static str;

    /// How often it comes round (at least once a second: see [`MIN_PERIOD`]).
    fn period(&self) -> Duration;

    /// Whether it has work on `host` now (`now` in ms since the epoch), from what the store
    /// says of the host after the jobs before it in the turn.
    fn due(&self, host: &Host, now: i64) -> bool;

    /// Its work on `host`, through `ops` (the server's own).
    fn run<'a>(&'a self, ops: &'a Ops, host: Host) -> Work<'a>;

    /// In words, what stopping the daemon cut short when it was working on `host`.
    fn cut_short(&self, host: &str) -> String;
}

/// The shortest period a job can have: a busy loop helps no one.
pub const MIN_PERIOD: Duration = Duration::from_secs(1);

/// When each job is next due. Pure: the time is given.
struct Timetable {
    /// Each job's period and next due time, in the jobs' order.
    slots: Vec<(Duration, Instant)>,
}

impl Timetable {
    /// Every job due at `start`, with these periods (raised to [`MIN_PERIOD`]).
    fn new(periods: impl IntoIterator<Item = Duration>, start: Instant) -> Timetable {
        Timetable {
            slots: periods
                .into_iter()
                .map(|period| (period.max(MIN_PERIOD), start))
                .collect(),
        }
    }

    /// When the next job is due (None without jobs).
    fn earliest(&self) -> Option<Instant> {
        self.slots.iter().map(|&(_, due)| due).min()
    }

    /// The jobs due at `now` (their positions), each then scheduled for its next time.
    fn take_due(&mut self, now: Instant) -> Vec<usize> {
        let mut due = Vec::new();
        for (i, (period, next)) in self.slots.iter_mut().enumerate() {
            if *next <= now {
                due.push(i);
                *next = next_due(*next, *period, now);
            }
        }
        due
    }
}

/// The time after `due` for a job of `period` that came round at `now`: one period on, keeping
/// the beat; or, if the daemon fell more than a period behind (a suspended machine), one
/// period from now, rather than every missed round at once.
fn next_due(due: Instant, period: Duration, now: Instant) -> Instant {
    let next = due + period;
    if next <= now { now + period } else { next }
}

/// No job in flight in a turn.
const IDLE: usize = usize::MAX;

/// The most turns in flight at once. A turn waiting for a dial (at most `dial_limit` of them
/// run at once, and a silent host holds one until its timeout) holds a place, so there are
/// many more places than dials: heartbeats of connected hosts go on beside them.
pub const TURNS_AT_ONCE: usize = 1024;

/// The jobs of a turn: each job's position, and the job.
type Due = Vec<(usize, Arc<dyn Periodic>)>;

/// The turns to take, by host: at most `at_once` in flight, the others waiting in the order
/// they came, and never two for one host. Pure: the caller starts and ends the turns.
struct Queue<T> {
    at_once: usize,
    /// Hosts with a turn waiting or in flight.
    busy: HashSet<String>,
    waiting: VecDeque<T>,
    in_flight: usize,
}

impl<T> Queue<T> {
    fn new(at_once: usize) -> Queue<T> {
        Queue {
            at_once: at_once.max(1),
            busy: HashSet::new(),
            waiting: VecDeque::new(),
            in_flight: 0,
        }
    }

    /// Whether `host` has a turn waiting or in flight.
    fn is_busy(&self, host: &str) -> bool {
        self.busy.contains(host)
    }

    /// Queues `turn` for `host`; false, and nothing queued, if `host` is busy.
    fn offer(&mut self, host: &str, turn: T) -> bool {
        if !self.busy.insert(host.to_owned()) {
            return false;
        }
        self.waiting.push_back(turn);
        true
    }

    /// The next turn to start, if there is one and a place for it (then counted in flight).
    fn start(&mut self) -> Option<T> {
        if self.in_flight >= self.at_once {
            return None;
        }
        let turn = self.waiting.pop_front()?;
        self.in_flight += 1;
        Some(turn)
    }

    /// `host`'s turn in flight ended; true if none is left in flight or waiting: a round's end.
    fn ended(&mut self, host: &str) -> bool {
        self.busy.remove(host);
        self.in_flight = self.in_flight.saturating_sub(1);
        self.in_flight == 0 && self.waiting.is_empty()
    }
}

/// A turn in flight: the host, and which job is working on it (its position, or [`IDLE`]).
struct Turn {
    host: String,
    doing: Arc<AtomicUsize>,
}

/// Runs `jobs` on every enabled host this server owns, through `ops` (the server's own), until
/// `shutdown` completes; a turn of every job at once for each host in a list `gained` sends.
pub async fn run(
    ops: Ops,
    jobs: Vec<Arc<dyn Periodic>>,
    ownership: Arc<Ownership>,
    mut gained: UnboundedReceiver<Gained>,
    shutdown: impl Future<Output = ()>,
) {
    let mut timetable = Timetable::new(jobs.iter().map(|j| j.period()), Instant::now());
    let mut work = JoinSet::new();
    let mut turns: HashMap<Id, Turn> = HashMap::new();
    let mut queue: Queue<(Host, Due)> = Queue::new(TURNS_AT_ONCE);
    tokio::pin!(shutdown);
    loop {
        while let Some((host, due)) = queue.start() {
            let doing = Arc::new(AtomicUsize::new(IDLE));
            let name = host.name.clone();
            let task = work.spawn(turn(ops.clone(), host, due, doing.clone()));
            turns.insert(task.id(), Turn { host: name, doing });
        }
        let wake = timetable.earliest();
        tokio::select! {
            _ = &mut shutdown => break,
            _ = sleep_until(wake) => {
                let due: Due = timetable
                    .take_due(Instant::now())
                    .into_iter()
                    .filter_map(|i| jobs.get(i).map(|job| (i, job.clone())))
                    .collect();
                let hosts = match ops.hosts().await {
                    Ok(hosts) => hosts,
                    Err(e) => {
                        tracing::error!("cannot read the hosts: {e}");
                        continue;
                    }
                };
                for host in hosts.into_iter().filter(|h| h.enabled && ownership.owns(&h.name)) {
                    let name = host.name.clone();
                    if !queue.offer(&name, (host, due.clone())) {
                        tracing::debug!(host = %name, "still busy; skipping this tick");
                    }
                }
            }
            Some(Gained { hosts: names, first }) = gained.recv() => {
                // Hosts owned from the start, or taken over from another server: every job,
                // now (each says whether it has work). A host never looked after yet (just
                // added) waits for the next round, as it would on one server.
                let all: Due = jobs.iter().cloned().enumerate().collect();
                for name in names {
                    if queue.is_busy(&name) || !ownership.owns(&name) {
                        continue;
                    }
                    let Ok(checked) = HostName::parse(&name) else {
                        continue;
                    };
                    let host = match ops.host(&checked).await {
                        Ok(shown) if shown.host.enabled && (first || looked_after(&shown.host)) => {
                            shown.host
                        }
                        Ok(_) => continue,
                        Err(e) => {
                            tracing::error!(host = %name, "cannot read the host: {e}");
                            continue;
                        }
                    };
                    queue.offer(&name, (host, all.clone()));
                }
            }
            Some(done) = work.join_next_with_id(), if !work.is_empty() => {
                let id = match done {
                    Ok((id, ())) => id,
                    Err(e) => {
                        tracing::error!("a host's task failed: {e}");
                        e.id()
                    }
                };
                if let Some(turn) = turns.remove(&id)
                    && queue.ended(&turn.host)
                {
                    // A round's end: what its turns allocated is free again.
                    tokio::task::spawn_blocking(memory::release_free);
                }
            }
        }
    }
    // Abort what is in flight and learn which turns the abort really cut short (a turn may
    // have ended on its own meanwhile).
    work.abort_all();
    let mut cut = Vec::new();
    while let Some(done) = work.join_next().await {
        match done {
            Ok(()) => {}
            Err(e) if e.is_cancelled() => {
                let Some(turn) = turns.remove(&e.id()) else {
                    continue;
                };
                if let Some(job) = jobs.get(turn.doing.load(Ordering::Relaxed)) {
                    cut.push((turn.host.clone(), job.cut_short(&turn.host)));
                }
            }
            Err(e) => tracing::error!("a host's task failed: {e}"),
        }
    }
    cut.sort();
    for (host, detail) in cut {
        tracing::warn!(host = %host, "{detail}");
        if let Err(e) = ops.cut_short(&host, &detail).await {
            tracing::error!(host = %host, "cannot record what was cut short: {e}");
        }
    }
}

/// Whether a server has looked after `host` before: it has a heartbeat's outcome.
fn looked_after(host: &Host) -> bool {
    host.status.reachable.is_some() || host.status.last_error.is_some()
}

/// Sleeps until `at`, or for ever.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One host's turn: each job in `due` that has work on it, one after the other; `doing` says
/// which is working.
async fn turn(ops: Ops, host: Host, due: Due, doing: Arc<AtomicUsize>) {
    let name = host.name.clone();
    let mut fresh = Some(host);
    for (i, job) in due {
        // The first job sees the host as listed; each next one, as the store has it now.
        let host = match fresh.take() {
            Some(host) => host,
            None => {
                let now = match HostName::parse(&name) {
                    Ok(checked) => ops.host(&checked).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                match now {
                    Ok(now) => now.host,
                    Err(e) => {
                        tracing::error!(host = %name, "cannot read the host: {e}");
                        return;
                    }
                }
            }
        };
        if !job.due(&host, now_ms()) {
            continue;
        }
        doing.store(i, Ordering::Relaxed);
        if let Err(e) = job.run(&ops, host).await {
            tracing::error!(host = %name, job = job.name(), "{e}");
        }
        doing.store(IDLE, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn jobs_come_round_on_their_own_beat() {
        let start = Instant::now();
        let mut t = Timetable::new([S, 3 * S], start);
        // Both at once at the start, then each on its own period.
        assert_eq!(t.earliest(), Some(start));
        assert_eq!(t.take_due(start), [0, 1]);
        assert_eq!(t.earliest(), Some(start + S));
        assert!(t.take_due(start + S / 2).is_empty(), "nothing is due early");
        assert_eq!(t.take_due(start + S), [0]);
        assert_eq!(t.take_due(start + 2 * S), [0]);
        assert_eq!(t.take_due(start + 3 * S), [0, 1]);
        assert_eq!(t.earliest(), Some(start + 4 * S));
    }

    #[test]
    fn at_most_so_many_turns_are_in_flight_and_the_rest_wait_in_order() {
        let mut queue = Queue::new(2);
        for host in ["a", "b", "c", "d"] {
            assert!(queue.offer(host, host));
        }
        // A host with a turn waiting or in flight gets no second one.
        assert!(!queue.offer("c", "c again"));
        assert_eq!((queue.start(), queue.start()), (Some("a"), Some("b")));
        assert_eq!(queue.start(), None, "two places, both taken");
        assert!(!queue.offer("a", "a again"), "in flight");
        assert!(!queue.ended("a"), "b in flight, c and d waiting");
        assert_eq!((queue.start(), queue.start()), (Some("c"), None));
        // Once its turn ended, a host can be queued again, behind those waiting.
        assert!(queue.offer("a", "a later"));
        assert!(!queue.ended("b"));
        assert!(!queue.ended("c"));
        assert_eq!((queue.start(), queue.start()), (Some("d"), Some("a later")));
        assert!(!queue.ended("d"));
        assert!(
            queue.ended("a"),
            "nothing in flight or waiting: the round is over"
        );
        assert_eq!(queue.start(), None);
    }

    #[test]
    fn a_late_round_keeps_the_beat_and_a_missed_one_is_skipped() {
        let start = Instant::now();
        // Woken a little late: the next round stays on the beat.
        assert_eq!(next_due(start, 10 * S, start + S), start + 10 * S);
        // More than a period behind: one round now, the next a period later, no burst.
        assert_eq!(next_due(start, 10 * S, start + 25 * S), start + 35 * S);
        let mut t = Timetable::new([10 * S], start);
        t.take_due(start);
        assert_eq!(t.take_due(start + 25 * S), [0]);
        assert!(t.take_due(start + 26 * S).is_empty());
        assert_eq!(t.earliest(), Some(start + 35 * S));
    }

    #[test]
    fn periods_are_at_least_a_second_and_no_jobs_never_wake() {
        let start = Instant::now();
        let mut t = Timetable::new([Duration::ZERO], start);
        t.take_due(start);
        assert_eq!(t.earliest(), Some(start + MIN_PERIOD));
        assert_eq!(Timetable::new([], start).earliest(), None);
    }
}
