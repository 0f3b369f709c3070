//! Hosts, their groups, and many callers at once.

use super::host;
use crate::store::{Store, StoreError};

on_both!(hosts_groups_and_duplicates, many_tasks_at_once);

async fn hosts_groups_and_duplicates(store: Store) {
    store.add_host(&host("r1")).await.unwrap();
    store.add_host(&host("r2")).await.unwrap();
    assert!(matches!(
        store.add_host(&host("r1")).await,
        Err(StoreError::Exists("host", _))
    ));
    store.add_group("lab").await.unwrap();
    store.set_membership("lab", "r2", true).await.unwrap();
    assert_eq!(store.host("r2").await.unwrap().groups, ["lab"]);
    let members = store.group_hosts("lab").await.unwrap();
    assert_eq!(
        members.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(),
        ["r2"]
    );
    assert!(matches!(
        store.set_membership("nope", "r1", true).await,
        Err(StoreError::NotFound("group", _))
    ));
    store.remove_host("r2").await.unwrap();
    assert!(store.group_hosts("lab").await.unwrap().is_empty());
}

async fn many_tasks_at_once(store: Store) {
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store.add_host(&host(&format!("r{i}"))).await.unwrap();
                store.hosts().await.unwrap().len()
            })
        })
        .collect();
    for task in tasks {
        let seen = task.await.unwrap();
        assert!((1..=50).contains(&seen), "{seen}");
    }
    assert_eq!(store.hosts().await.unwrap().len(), 50);
}
