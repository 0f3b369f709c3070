//! The HTTP API's launches, kept with their end, whose ids are never used twice.

use super::database::Database;
use crate::model::{NewLaunch, RunLevel, now_ms};
use crate::store::{Store, StoreError};

on_both_with_database!(
    launches_are_kept_with_their_end_and_their_ids_never_reused,
    relayed_events_are_read_in_order_kept_once_and_forgotten_after_the_end,
    a_cancel_is_asked_of_a_running_launch_only,
);

async fn launches_are_kept_with_their_end_and_their_ids_never_reused(
    store: Store,
    database: Database,
) {
    let new = NewLaunch {
        actor: "user:ann".into(),
        job: "command: true".into(),
        hosts: vec!["r1".into(), "r2".into()],
        level: RunLevel::ReadOnly,
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
