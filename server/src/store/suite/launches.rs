//! The HTTP API's launches, kept with their end, whose ids are never used twice.

use super::database::Database;
use crate::model::{LaunchFilter, NewLaunch, RunFilter, RunLevel, RunOutcome, now_ms};
use crate::store::{Store, StoreError};

on_both_with_database!(
    launches_are_kept_with_their_end_and_their_ids_never_reused,
    relayed_events_are_read_in_order_kept_once_and_forgotten_after_the_end,
    a_cancel_is_asked_of_a_running_launch_only,
);
on_both!(launches_are_listed_with_their_runs_counted_and_found_by_job_user_outcome_and_time);

async fn launches_are_kept_with_their_end_and_their_ids_never_reused(
    store: Store,
    database: Database,
) {
    let new = NewLaunch {
        actor: "user:ann".into(),
        job: "command: true".into(),
        hosts: vec!["r1".into(), "r2".into()],
        level: RunLevel::ReadOnly,
        request: None,
    };
    let first = store.start_launch(&new).await.unwrap();
    let kept = store.launch(first).await.unwrap();
    assert_eq!(
        (kept.id, kept.actor.as_str(), kept.job.as_str()),
        (first, "user:ann", "command: true")
    );
    assert_eq!(
        (kept.hosts.as_slice(), kept.finished, kept.last_event),
        (&new.hosts[..], None, None)
    );
    // Its server's lease is live on PostgreSQL (it relays its events); SQLite's one server
    // has none.
    assert_eq!(kept.level, RunLevel::ReadOnly);
    assert_eq!(kept.owner_live, store.lease_id().is_some());
    store
        .finish_launch(first, r#"{"type":"summary"}"#)
        .await
        .unwrap();
    let kept = store.launch(first).await.unwrap();
    assert!(kept.finished.is_some_and(|f| f >= kept.started));
    assert_eq!(kept.last_event.as_deref(), Some(r#"{"type":"summary"}"#));
    for id in [first + 1, u64::MAX] {
        assert!(matches!(
            store.launch(id).await,
            Err(StoreError::NotFound("launch", _))
        ));
        assert!(matches!(
            store.finish_launch(id, "{}").await,
            Err(StoreError::NotFound("launch", _))
        ));
    }
    // Even with the newest gone, a new launch, by a server started again, gets a new id.
    database.execute("DELETE FROM launches").await;
    drop(store);
    let store = database.open().await;
    assert!(store.start_launch(&new).await.unwrap() > first);
}

/// A launch of `command: true` on no host, started now.
fn launch() -> NewLaunch {
    NewLaunch {
        actor: "user:ann".into(),
        job: "command: true".into(),
        hosts: Vec::new(),
        level: RunLevel::ReadWrite,
        request: None,
    }
}

async fn relayed_events_are_read_in_order_kept_once_and_forgotten_after_the_end(
    store: Store,
    database: Database,
) {
    let id = store.start_launch(&launch()).await.unwrap();
    let other = store.start_launch(&launch()).await.unwrap();
    let events = |range: std::ops::Range<u64>| -> Vec<(u64, String)> {
        range.map(|n| (n, format!("{{\"n\":{n}}}"))).collect()
    };
    // Numbers 0..3 and 5..7 (4 was not relayed): read from any number, at most a limit.
    assert!(!store.relay_launch_events(id, &events(0..3)).await.unwrap());
    assert!(!store.relay_launch_events(id, &events(5..7)).await.unwrap());
    assert!(!store.relay_launch_events(id, &[]).await.unwrap());
    // A number relayed again (a retry after an error) is kept once, as it first was.
    let again = vec![(2, "{\"again\":true}".to_string())];
    store.relay_launch_events(id, &again).await.unwrap();
    store
        .relay_launch_events(other, &events(0..1))
        .await
        .unwrap();
    assert_eq!(store.launch_events(id, 0, 100).await.unwrap(), {
        let mut all = events(0..3);
        all.extend(events(5..7));
        all
    });
    assert_eq!(store.launch_events(id, 2, 2).await.unwrap(), {
        let mut some = events(2..3);
        some.extend(events(5..6));
        some
    });
    assert_eq!(store.launch_events(id, 7, 100).await.unwrap(), []);
    assert!(matches!(
        store.relay_launch_events(u64::MAX, &events(0..1)).await,
        Err(StoreError::NotFound("launch", _))
    ));
    // Kept while the launch runs and a while after its end; then forgotten.
    store.finish_launch(id, "{}").await.unwrap();
    let ended = store.launch(id).await.unwrap().finished.unwrap();
    assert_eq!(store.prune_launch_events(ended).await.unwrap(), 0);
    assert_eq!(store.prune_launch_events(ended + 1).await.unwrap(), 5);
    assert_eq!(store.launch_events(id, 0, 100).await.unwrap(), []);
    // The running one keeps its own (on PostgreSQL, while its server's lease is live).
    assert_eq!(store.launch_events(other, 0, 100).await.unwrap().len(), 1);
    if store.lease_id().is_some() {
        // Its server's lease ran out: nobody will end it, its events go.
        database.execute("UPDATE servers SET expires = 0").await;
        assert!(!store.launch(other).await.unwrap().owner_live);
        assert_eq!(store.prune_launch_events(now_ms()).await.unwrap(), 1);
    }
}

async fn a_cancel_is_asked_of_a_running_launch_only(store: Store, database: Database) {
    let id = store.start_launch(&launch()).await.unwrap();
    assert!(!store.relay_launch_events(id, &[]).await.unwrap());
    assert!(store.ask_cancel(id).await.unwrap());
    // Its server hears it at its next relay.
    assert!(store.relay_launch_events(id, &[]).await.unwrap());
    store.finish_launch(id, "{}").await.unwrap();
    assert!(!store.ask_cancel(id).await.unwrap());
    assert!(matches!(
        store.ask_cancel(id + 1).await,
        Err(StoreError::NotFound("launch", _))
    ));
    drop(database);
}

async fn launches_are_listed_with_their_runs_counted_and_found_by_job_user_outcome_and_time(
    store: Store,
) {
    let request = r#"{"command":"true","hosts":["r1","r2","r3"]}"#;
    let ann = NewLaunch {
        actor: "user:ann (key 1)".into(),
        hosts: vec!["r1".into(), "r2".into(), "r3".into()],
        request: Some(request.into()),
        ..launch()
    };
    let first = store.start_launch(&ann).await.unwrap();
    let upload = NewLaunch {
        actor: "cli:bob".into(),
        job: "upload: /etc/x".into(),
        ..launch()
    };
    let second = store.start_launch(&upload).await.unwrap();
    // r1 succeeds, r2 fails, r3 is cancelled; a run of no launch is not counted.
    let mut runs = Vec::new();
    for host in ["r1", "r2", "r3"] {
        let record = crate::model::NewRunRecord {
            launch: Some(first),
            ..super::run_record(host, "command: true", "01", "user:ann (key 1)")
        };
        runs.push(store.start_run(&record).await.unwrap());
    }
    let loose = super::run_record("r1", "command: true", "02", "cli:bob");
    store.start_run(&loose).await.unwrap();
    let all = LaunchFilter {
        limit: 10,
        ..LaunchFilter::default()
    };
    let listed = store.find_launches(&all).await.unwrap();
    assert_eq!(
        listed.iter().map(|l| l.id).collect::<Vec<_>>(),
        [first, second],
        "oldest first"
    );
    assert_eq!(listed[0].runs.running, 3);
    assert!(listed[0].relaunchable && !listed[1].relaunchable);
    assert_eq!(listed[0].hosts, ann.hosts);
    store
        .finish_run(runs[0], &super::runs::end(true, "exit 0", b""))
        .await
        .unwrap();
    store
        .finish_run(runs[1], &super::runs::end(false, "exit 1", b""))
        .await
        .unwrap();
    let cancelled = crate::model::RunEnd {
        cancelled: true,
        ..super::runs::end(false, "cancelled", b"")
    };
    store.finish_run(runs[2], &cancelled).await.unwrap();
    store.finish_launch(first, "{}").await.unwrap();
    let shown = store.past_launch(first).await.unwrap();
    assert_eq!(
        (
            shown.runs.succeeded,
            shown.runs.failed,
            shown.runs.cancelled,
            shown.runs.running
        ),
        (1, 1, 1, 0)
    );
    assert!(shown.finished.is_some());
    assert_eq!(shown.actor, "user:ann (key 1)");
    // Found by job, user, an outcome of one of its runs, and time; a page at a time.
    let find = |filter: LaunchFilter| {
        let store = store.clone();
        async move {
            let found = store.find_launches(&filter).await.unwrap();
            found.iter().map(|l| l.id).collect::<Vec<_>>()
        }
    };
    let by = |f: fn(&mut LaunchFilter)| {
        let mut filter = all.clone();
        f(&mut filter);
        filter
    };
    assert_eq!(
        find(by(|f| f.what = Some("upload: /etc/x".into()))).await,
        [second]
    );
    assert_eq!(find(by(|f| f.user = Some("bob".into()))).await, [second]);
    assert_eq!(find(by(|f| f.user = Some("ann".into()))).await, [first]);
    assert_eq!(
        find(by(|f| f.outcome = Some(RunOutcome::Failed))).await,
        [first]
    );
    assert_eq!(
        find(by(|f| f.outcome = Some(RunOutcome::Running))).await,
        Vec::<u64>::new()
    );
    assert_eq!(
        find(by(|f| f.since = Some(now_ms() + 60_000))).await,
        Vec::<u64>::new()
    );
    assert_eq!(
        find(by(|f| f.until = Some(now_ms() + 60_000))).await,
        [first, second]
    );
    let mut page = by(|f| f.limit = 1);
    assert_eq!(find(page.clone()).await, [second]);
    page.before = Some(second);
    assert_eq!(find(page).await, [first]);
    // Its runs, and what it asked for.
    let filter = RunFilter {
        launch: Some(first),
        limit: 10,
        ..RunFilter::default()
    };
    let its_runs = store.find_runs(&filter).await.unwrap();
    assert_eq!(its_runs.iter().map(|r| r.id).collect::<Vec<_>>(), runs);
    assert!(its_runs.iter().all(|r| r.launch == Some(first)));
    assert_eq!(
        store.launch_request(first).await.unwrap().as_deref(),
        Some(request)
    );
    assert_eq!(store.launch_request(second).await.unwrap(), None);
    assert!(matches!(
        store.launch_request(second + 1).await,
        Err(StoreError::NotFound("launch", _))
    ));
    assert!(matches!(
        store.past_launch(u64::MAX).await,
        Err(StoreError::NotFound("launch", _))
    ));
}
