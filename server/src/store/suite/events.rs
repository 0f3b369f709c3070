//! The event log: filters and pages.

use crate::model::{EventFilter, EventKind, NewEvent};
use crate::store::Store;

on_both!(
    events_are_filtered_by_kind_and_user_and_read_a_page_at_a_time,
    events_after_one_are_read_in_order_a_batch_at_a_time,
);

async fn events_are_filtered_by_kind_and_user_and_read_a_page_at_a_time(store: Store) {
    let log = |actor: Option<&str>, host: &str, kind: EventKind| {
        let event = NewEvent {
            actor: actor.map(str::to_owned),
            host: Some(host.into()),
            kind,
            detail: "x".into(),
        };
        let store = store.clone();
        async move { store.log(&event).await.unwrap() }
    };
    log(
        Some("user:al (session 1 from 127.0.0.1)"),
        "r1",
        EventKind::HostAdded,
    )
    .await;
    log(Some("cli:al"), "r2", EventKind::HostAdded).await;
    // A name that begins like hers, and one whose `_` a LIKE would take for any character.
    log(
        Some("user:alice (API key 2 from ::1)"),
        "r1",
        EventKind::HostAdded,
    )
    .await;
    log(
        Some("user:a_ (API key 3 from ::1)"),
        "r1",
        EventKind::ScriptChanged,
    )
    .await;
    log(None, "r1", EventKind::Reachability).await;
    let ids = |filter: EventFilter| {
        let store = store.clone();
        async move {
            store
                .events(&filter)
                .await
                .unwrap()
                .iter()
                .map(|e| e.id)
                .collect::<Vec<i64>>()
        }
    };
    let all = EventFilter::newest(None, 10);
    assert_eq!(ids(all.clone()).await, [1, 2, 3, 4, 5]);
    let user = |name: &str| EventFilter {
        user: Some(name.into()),
        ..all.clone()
    };
    assert_eq!(ids(user("al")).await, [1, 2]);
    assert_eq!(ids(user("a_")).await, [4]);
    assert_eq!(ids(user("ax")).await, Vec::<i64>::new());
    let kind = EventFilter {
        kind: Some(EventKind::HostAdded),
        host: Some("r1".into()),
        ..all.clone()
    };
    assert_eq!(ids(kind).await, [1, 3]);
    // Pages: the newest two, then the two before the first of them.
    let page = |before: Option<i64>| EventFilter {
        before,
        limit: 2,
        ..all.clone()
    };
    assert_eq!(ids(page(None)).await, [4, 5]);
    assert_eq!(ids(page(Some(4))).await, [2, 3]);
    assert_eq!(ids(page(Some(2))).await, [1]);
    let first = &store.events(&all).await.unwrap()[0];
    assert_eq!(
        (
            first.kind.as_str(),
            first.actor.as_deref(),
            first.host.as_deref()
        ),
        (
            "host-added",
            Some("user:al (session 1 from 127.0.0.1)"),
            Some("r1")
        )
    );
}

async fn events_after_one_are_read_in_order_a_batch_at_a_time(store: Store) {
    assert_eq!(store.last_event_id().await.unwrap(), 0);
    assert!(store.events_after(0, 10).await.unwrap().is_empty());
    for host in ["r1", "r2", "r3", "r4"] {
        let event = NewEvent {
            actor: None,
            host: Some(host.into()),
            kind: EventKind::Reachability,
            detail: "unreachable".into(),
        };
        store.log(&event).await.unwrap();
    }
    let last = store.last_event_id().await.unwrap();
    assert_eq!(last, 4);
    let hosts = |after: i64, limit: u32| {
        let store = store.clone();
        async move {
            store
                .events_after(after, limit)
                .await
                .unwrap()
                .into_iter()
                .map(|e| (e.id, e.host.unwrap()))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(hosts(1, 2).await, [(2, "r2".into()), (3, "r3".into())]);
    assert_eq!(hosts(3, 10).await, [(4, "r4".to_string())]);
    assert!(hosts(last, 10).await.is_empty());
}
