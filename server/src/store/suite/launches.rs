//! The HTTP API's launches, kept with their end, whose ids are never used twice.

use super::database::Database;
use crate::model::NewLaunch;
use crate::store::{Store, StoreError};

on_both_with_database!(launches_are_kept_with_their_end_and_their_ids_never_reused);

async fn launches_are_kept_with_their_end_and_their_ids_never_reused(
    store: Store,
    database: Database,
) {
    let new = NewLaunch {
        actor: "user:ann".into(),
        job: "command: true".into(),
        hosts: vec!["r1".into(), "r2".into()],
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
