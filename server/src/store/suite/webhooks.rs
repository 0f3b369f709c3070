//! Webhooks and their deliveries: queued once per webhook and event, claimed by one attempt at
//! a time, recorded, removed with their webhook; the secret sealed and opened.

use crate::model::{Attempt, DeliveryStatus, NewDelivery, WebhookEvent, now_ms};
use crate::store::{Store, StoreError};

on_both!(
    deliveries_are_queued_once_claimed_once_recorded_and_removed_with_their_webhook,
    the_cursor_starts_at_the_newest_event_and_never_goes_back,
);

fn delivery(webhook: i64, event: i64) -> NewDelivery {
    NewDelivery {
        webhook,
        event,
        kind: WebhookEvent::RunFailed,
        body: format!("{{\"id\":{event}}}"),
    }
}

async fn deliveries_are_queued_once_claimed_once_recorded_and_removed_with_their_webhook(
    store: Store,
) {
    let events = [WebhookEvent::RunFailed, WebhookEvent::KeyPending];
    let hook = store
        .add_webhook("http://127.0.0.1:9/a", &events, "s3cret")
        .await
        .unwrap();
    let other = store
        .add_webhook("http://127.0.0.1:9/b", &events[..1], "other")
        .await
        .unwrap();
    assert_eq!(
        store.webhooks().await.unwrap(),
        [hook.clone(), other.clone()]
    );
    // Queued twice (two servers saw the event), and for a webhook gone: one delivery each.
    let queued = [
        delivery(hook.id, 7),
        delivery(other.id, 7),
        delivery(999, 7),
    ];
    store.queue_deliveries(&queued, 7).await.unwrap();
    store.queue_deliveries(&queued[..1], 7).await.unwrap();
    assert_eq!(store.deliveries(None, 10).await.unwrap().len(), 2);

    // Claimed once: a second claim within the lease finds none; with its secret opened.
    let now = now_ms();
    let due = store.claim_deliveries(now, 60_000, 10).await.unwrap();
    assert_eq!(due.len(), 2);
    let mine = due.iter().find(|d| d.url.ends_with("/a")).unwrap();
    assert_eq!(
        (mine.secret.as_str(), mine.body.as_str()),
        ("s3cret", "{\"id\":7}")
    );
    assert_eq!(mine.attempts, 0);
    assert!(
        store
            .claim_deliveries(now, 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // A failed attempt, retried when due; then delivered.
    let failed = Attempt {
        code: Some(500),
        error: Some("answered 500".into()),
        delivered: false,
        retry_at: Some(now + 5_000),
    };
    store.record_attempt(mine.id, &failed).await.unwrap();
    assert!(
        store
            .claim_deliveries(now + 4_000, 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store
        .claim_deliveries(now + 5_000, 60_000, 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id, again[0].attempts), (mine.id, 1));
    let delivered = Attempt {
        code: Some(204),
        error: None,
        delivered: true,
        retry_at: None,
    };
    store.record_attempt(mine.id, &delivered).await.unwrap();
    let gave_up = Attempt {
        code: None,
        error: Some("connection refused".into()),
        delivered: false,
        retry_at: None,
    };
    let theirs = due.iter().find(|d| d.url.ends_with("/b")).unwrap();
    store.record_attempt(theirs.id, &gave_up).await.unwrap();
    assert!(
        store
            .claim_deliveries(i64::MAX / 2, 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let recorded = store.deliveries(Some(hook.id), 10).await.unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        (recorded[0].status, recorded[0].attempts, recorded[0].code),
        (DeliveryStatus::Delivered, 2, Some(204))
    );
    let theirs = store.deliveries(Some(other.id), 10).await.unwrap();
    assert_eq!(theirs[0].status, DeliveryStatus::Failed);
    assert_eq!(theirs[0].error.as_deref(), Some("connection refused"));

    // Removed with its deliveries; again, not found.
    store.remove_webhook(hook.id).await.unwrap();
    assert_eq!(store.webhooks().await.unwrap(), [other]);
    assert!(
        store
            .deliveries(Some(hook.id), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.remove_webhook(hook.id).await,
        Err(StoreError::NotFound("webhook", _))
    ));
}

async fn the_cursor_starts_at_the_newest_event_and_never_goes_back(store: Store) {
    let start = store.webhook_cursor().await.unwrap();
    assert_eq!(start, 0, "a new store has no events");
    store.queue_deliveries(&[], 12).await.unwrap();
    assert_eq!(store.webhook_cursor().await.unwrap(), 12);
    store.queue_deliveries(&[], 5).await.unwrap();
    assert_eq!(store.webhook_cursor().await.unwrap(), 12);
}
