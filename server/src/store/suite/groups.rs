//! Groups, their members and their scripts.

use super::host;
use crate::model::Scope;
use crate::store::{Store, StoreError};

on_both!(
    groups_are_listed_with_their_members_and_removed_without_them,
    a_membership_or_assignment_names_what_exists,
    many_memberships_and_removals_at_once_leave_none_dangling,
);

async fn groups_are_listed_with_their_members_and_removed_without_them(store: Store) {
    for name in ["r2", "r1", "R3"] {
        store.add_host(&host(name)).await.unwrap();
    }
    for name in ["lab", "edge"] {
        store.add_group(name).await.unwrap();
    }
    assert!(matches!(
        store.add_group("lab").await,
        Err(StoreError::Exists("group", _))
    ));
    for name in ["r2", "r1", "R3"] {
        store.set_membership("lab", name, true).await.unwrap();
    }
    // Twice in: once a member.
    store.set_membership("lab", "r1", true).await.unwrap();
    store.set_membership("edge", "r1", true).await.unwrap();
    let groups = store.groups().await.unwrap();
    let listed: Vec<_> = groups
        .iter()
        .map(|g| (g.name.as_str(), g.hosts.clone(), g.scripts.len()))
        .collect();
    // Names in byte order, as SQLite sorts them.
    assert_eq!(
        listed,
        [
            ("edge", vec!["r1".to_string()], 0),
            ("lab", vec!["R3".into(), "r1".into(), "r2".into()], 0),
        ]
    );
    assert_eq!(store.host("r1").await.unwrap().groups, ["edge", "lab"]);
    store.set_membership("lab", "r2", false).await.unwrap();
    store.set_membership("lab", "r2", false).await.unwrap();
    assert_eq!(store.host("r2").await.unwrap().groups, Vec::<String>::new());

    let scope = Scope::Group("lab".into());
    store.set_env(&scope, "MODE", "fast", false).await.unwrap();
    store.remove_group("lab").await.unwrap();
    assert!(
        store.env(None).await.unwrap().is_empty(),
        "its variables go"
    );
    assert_eq!(store.hosts().await.unwrap().len(), 3, "its hosts stay");
    assert_eq!(store.host("r1").await.unwrap().groups, ["edge"]);
    assert!(matches!(
        store.remove_group("lab").await,
        Err(StoreError::NotFound("group", _))
    ));
    assert!(matches!(
        store.group_hosts("lab").await,
        Err(StoreError::NotFound("group", _))
    ));
}

async fn a_membership_or_assignment_names_what_exists(store: Store) {
    store.add_host(&host("r1")).await.unwrap();
    store.add_group("lab").await.unwrap();
    for (refused, what) in [
        (store.set_membership("nope", "r1", true).await, "group"),
        (store.set_membership("lab", "nope", true).await, "host"),
        (store.set_membership("lab", "nope", false).await, "host"),
        (store.set_group_script("nope", "x", true).await, "group"),
        (store.set_group_script("lab", "nope", true).await, "script"),
        (store.set_group_script("lab", "nope", false).await, "script"),
    ] {
        assert!(
            matches!(refused, Err(StoreError::NotFound(w, _)) if w == what),
            "{what}: {refused:?}"
        );
    }
    assert!(store.groups().await.unwrap()[0].hosts.is_empty());
}

/// Hosts put in a group while others are removed, all at once: no membership is left of a
/// removed host, and every one asked for a host that stays is there.
async fn many_memberships_and_removals_at_once_leave_none_dangling(store: Store) {
    store.add_group("lab").await.unwrap();
    for i in 0..20 {
        store.add_host(&host(&format!("r{i}"))).await.unwrap();
    }
    let mut tasks = Vec::new();
    for i in 0..20 {
        let name = format!("r{i}");
        if i % 2 == 0 {
            let (store, name) = (store.clone(), name.clone());
            tasks.push(tokio::spawn(async move {
                store.remove_host(&name).await.unwrap()
            }));
        }
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            // Refused only when the host is gone already.
            match store.set_membership("lab", &name, true).await {
                Ok(()) | Err(StoreError::NotFound("host", _)) => {}
                Err(e) => panic!("{e}"),
            }
            let scope = Scope::Host(name);
            match store.set_env(&scope, "MODE", "fast", false).await {
                Ok(()) | Err(StoreError::NotFound("host", _)) => {}
                Err(e) => panic!("{e}"),
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let members = store.group_hosts("lab").await.unwrap();
    let names: Vec<_> = members.iter().map(|h| h.name.as_str()).collect();
    let odd: Vec<String> = (0..20)
        .filter(|i| i % 2 == 1)
        .map(|i| format!("r{i}"))
        .collect();
    let mut expected: Vec<&str> = odd.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(names, expected);
    assert_eq!(store.groups().await.unwrap()[0].hosts, expected);
    let owners: Vec<_> = store
        .env(None)
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.scope.to_string())
        .collect();
    assert_eq!(owners.len(), 10, "{owners:?}");
}
