//! The run history, pages of it, and runs whose server process ended first.

use std::time::Duration;

use super::database::Database;
use crate::model::{EventFilter, INTERRUPTED, RunEnd, RunFilter, RunOutcome, now_ms};
use crate::store::owner::Owner;
use crate::store::{Store, StoreError};

on_both!(
    runs_are_recorded,
    runs_are_read_a_page_at_a_time,
    runs_are_found_by_job_user_outcome_and_time,
);
on_both_with_database!(a_run_whose_process_is_gone_is_interrupted_until_its_real_end_arrives);

/// A run's end: `outcome`, successful or not, with `stdout`.
pub(super) fn end(success: bool, outcome: &str, stdout: &[u8]) -> RunEnd {
    RunEnd {
        success,
        cancelled: false,
        outcome: outcome.into(),
        exit_code: Some(if success { 0 } else { -1 }),
        elapsed: Some(Duration::from_millis(12)),
        stdout: stdout.to_vec(),
        stderr: Vec::new(),
        truncated: false,
    }
}

async fn runs_are_recorded(store: Store) {
    let id = store
        .start_run(&super::run_record("r1", "hello", "00ff", "cli:alice"))
        .await
        .unwrap();
    let started = store.run(id).await.unwrap();
    assert_eq!(
        (started.finished, started.success, started.outcome),
        (None, None, None)
    );
    let logged = store
        .events(&EventFilter::newest(Some("r1"), 5))
        .await
        .unwrap();
    assert_eq!(logged.len(), 1, "one run-started event per run");
    assert_eq!(logged[0].kind, "run-started");
    assert_eq!(logged[0].detail, format!("run {id}: hello (action 00ff)"));
    assert_eq!(logged[0].actor.as_deref(), Some("cli:alice"));
    store
        .finish_run(id, &end(true, "exit 0", b"hi\n"))
        .await
        .unwrap();
    let run = store.run(id).await.unwrap();
    assert_eq!(run.success, Some(true));
    assert_eq!(run.outcome.as_deref(), Some("exit 0"));
    assert_eq!(run.exit_code, Some(0));
    assert_eq!(run.stdout, b"hi\n");
    assert!(run.stderr.is_empty());
    assert_eq!(run.elapsed_ms, Some(12));
    assert!(!run.truncated && !run.cancelled);
    assert!(run.finished.is_some_and(|f| f >= run.started));
    assert_eq!((run.host.as_str(), run.what.as_str()), ("r1", "hello"));
    assert_eq!(run.action, "00ff");
    let logged = store
        .events(&EventFilter::newest(Some("r1"), 5))
        .await
        .unwrap();
    assert_eq!(logged[1].kind, "run-finished");
    assert_eq!(logged[1].detail, format!("run {id}: exit 0"));
    assert_eq!(store.runs(Some("r1"), 5).await.unwrap().len(), 1);
    assert!(store.runs(Some("r2"), 5).await.unwrap().is_empty());
    assert!(matches!(
        store.run(id + 1).await,
        Err(StoreError::NotFound("run", _))
    ));
    assert!(matches!(
        store.finish_run(id + 1, &end(true, "exit 0", b"")).await,
        Err(StoreError::NotFound("run", _))
    ));
}

async fn runs_are_read_a_page_at_a_time(store: Store) {
    let mut ids = Vec::new();
    for i in 0..5 {
        let host = if i % 2 == 0 { "r1" } else { "r2" };
        ids.push(
            store
                .start_run(&super::run_record(host, "job", "01", "server"))
                .await
                .unwrap(),
        );
    }
    // A cancelled run is kept as such.
    let cancelled = RunEnd {
        cancelled: true,
        ..end(false, "cancelled", b"")
    };
    store.finish_run(ids[4], &cancelled).await.unwrap();
    assert!(store.run(ids[4]).await.unwrap().cancelled);
    let page = |runs: Vec<crate::model::Run>| runs.iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(page(store.runs(None, 10).await.unwrap()), ids);
    assert_eq!(page(store.runs(None, 2).await.unwrap()), ids[3..]);
    assert_eq!(
        page(store.runs_before(None, ids[3], 2).await.unwrap()),
        ids[1..3]
    );
    assert_eq!(
        page(store.runs(Some("r1"), 2).await.unwrap()),
        [ids[2], ids[4]]
    );
    assert_eq!(
        page(store.runs_before(Some("r1"), ids[2], 10).await.unwrap()),
        [ids[0]]
    );
    assert!(store.runs(None, 0).await.unwrap().is_empty());
}

async fn a_run_whose_process_is_gone_is_interrupted_until_its_real_end_arrives(
    store: Store,
    database: Database,
) {
    let mine = store
        .start_run(&super::run_record("r1", "mine", "01", "server"))
        .await
        .unwrap();
    let orphan = match &database {
        // On PostgreSQL a run is its process's lease's: one of another process, since ended.
        Database::Postgres(..) => {
            let gone = database.open().await;
            let orphan = gone
                .start_run(&super::run_record("r1", "orphan", "02", "server"))
                .await
                .unwrap();
            gone.end_lease().await.unwrap();
            orphan
        }
        // On SQLite, its process's: one that has ended.
        Database::Sqlite(_) => {
            let orphan = store
                .start_run(&super::run_record("r1", "orphan", "02", "server"))
                .await
                .unwrap();
            let mut child = std::process::Command::new("true").spawn().unwrap();
            let pid = child.id();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            child.wait().unwrap();
            let me = Owner::current().unwrap().to_string();
            let (_, boot) = me.split_at(me.rfind(':').unwrap());
            let start = stat
                .rsplit_once(')')
                .unwrap()
                .1
                .split_whitespace()
                .nth(19)
                .unwrap();
            database
                .execute(&format!(
                    "UPDATE runs SET owner = '{pid}:{start}{boot}' WHERE id = {orphan}"
                ))
                .await;
            orphan
        }
    };

    // Read by two servers at once, and by each task many times.
    let other = database.open().await;
    let reads: Vec<_> = (0..8)
        .map(|i| {
            let store = if i % 2 == 0 { &store } else { &other }.clone();
            tokio::spawn(async move { store.runs(None, 10).await.unwrap() })
        })
        .collect();
    for read in reads {
        read.await.unwrap();
    }
    let runs = store.runs(None, 10).await.unwrap();
    assert_eq!(runs[0].outcome, None, "this process's run is still going");
    assert_eq!(runs[1].outcome.as_deref(), Some(INTERRUPTED));
    assert_eq!(runs[1].success, Some(false));
    assert_eq!(runs[1].finished, None);
    // Persisted: read straight from the table, and logged once.
    let outcome = database
        .text(&format!("SELECT outcome FROM runs WHERE id = {orphan}"))
        .await;
    assert_eq!(outcome, INTERRUPTED);
    store.runs(None, 10).await.unwrap();
    store.run(orphan).await.unwrap();
    let logged = store
        .events(&EventFilter::newest(Some("r1"), 50))
        .await
        .unwrap();
    assert_eq!(
        logged
            .iter()
            .filter(|e| e.detail.contains(INTERRUPTED))
            .count(),
        1
    );

    // Its owner was alive after all (another pid namespace, say; a server cut off from the
    // database for longer than its lease): the real end wins.
    store
        .finish_run(orphan, &end(true, "exit 0", b""))
        .await
        .unwrap();
    let run = store.run(orphan).await.unwrap();
    assert_eq!(run.outcome.as_deref(), Some("exit 0"));
    assert_eq!(run.success, Some(true));
    assert!(run.finished.is_some());
    assert_eq!(store.run(mine).await.unwrap().outcome, None);
}

async fn runs_are_found_by_job_user_outcome_and_time(store: Store) {
    let start = now_ms();
    let mut ids = Vec::new();
    for (what, actor) in [
        ("hello", "user:ann (API key 2 from ::1)"),
        ("command: true", "cli:ann"),
        ("hello", "user:annie (session 3 from ::1)"),
        ("command: false", "server"),
    ] {
        ids.push(
            store
                .start_run(&super::run_record("r1", what, "01", actor))
                .await
                .unwrap(),
        );
    }
    store
        .finish_run(ids[0], &end(true, "exit 0", b""))
        .await
        .unwrap();
    store
        .finish_run(ids[2], &end(false, "exit 1", b""))
        .await
        .unwrap();
    let cancelled = RunEnd {
        cancelled: true,
        ..end(false, "cancelled", b"")
    };
    store.finish_run(ids[3], &cancelled).await.unwrap();
    let found = |filter: RunFilter| {
        let store = store.clone();
        async move {
            let runs = store.find_runs(&filter).await.unwrap();
            runs.iter().map(|r| r.id).collect::<Vec<_>>()
        }
    };
    let all = RunFilter::newest(None, 10);
    // Who started each is kept.
    let runs = store.find_runs(&all).await.unwrap();
    assert_eq!(runs[1].actor.as_deref(), Some("cli:ann"));
    let by = |f: &dyn Fn(&mut RunFilter)| {
        let mut filter = all.clone();
        f(&mut filter);
        filter
    };
    assert_eq!(
        found(by(&|f| f.what = Some("hello".into()))).await,
        [ids[0], ids[2]]
    );
    // A user by name, through the API or the command line; not one whose name begins so.
    assert_eq!(
        found(by(&|f| f.user = Some("ann".into()))).await,
        [ids[0], ids[1]]
    );
    assert_eq!(
        found(by(&|f| f.user = Some("annie".into()))).await,
        [ids[2]]
    );
    let outcome = |o| {
        let mut filter = all.clone();
        filter.outcome = Some(o);
        filter
    };
    assert_eq!(found(outcome(RunOutcome::Succeeded)).await, [ids[0]]);
    assert_eq!(found(outcome(RunOutcome::Failed)).await, [ids[2]]);
    assert_eq!(found(outcome(RunOutcome::Cancelled)).await, [ids[3]]);
    assert_eq!(found(outcome(RunOutcome::Running)).await, [ids[1]]);
    // By when they started, with the rest and a page at a time.
    assert_eq!(found(by(&|f| f.since = Some(0))).await, ids);
    assert!(found(by(&|f| f.until = Some(start))).await.is_empty());
    let mut filter = by(&|f| f.since = Some(start));
    filter.what = Some("hello".into());
    filter.before = Some(ids[2]);
    assert_eq!(found(filter).await, [ids[0]]);
}
