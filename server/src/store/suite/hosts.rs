//! Hosts, their groups, their trust and heartbeat state, and many callers at once.

use super::host;
use crate::model::{EventFilter, Facts, HostFilter, HostState};
use crate::store::{Store, StoreError};

on_both!(
    hosts_groups_and_duplicates,
    many_tasks_at_once,
    a_host_name_outside_the_rule_is_refused,
    a_host_is_changed_and_its_address_makes_it_dialled_again,
    reachability_changes_are_logged_once,
    a_busy_agent_is_recorded_reachable_and_busy_until_it_answers,
    a_change_recorded_by_many_callers_at_once_is_logged_once,
    a_host_is_found_by_its_pinned_agent_key_never_by_a_pending_one,
    a_pending_key_is_logged_when_new_and_dropped_only_if_still_pending,
    a_rotation_pins_the_new_key_and_is_logged_with_its_actor,
    a_page_of_hosts_is_chosen_by_its_filters_in_the_order_of_the_names_bytes,
);

/// The details of the events of host `name`, oldest first.
async fn details(store: &Store, name: &str) -> Vec<String> {
    store
        .events(&EventFilter::newest(Some(name), 100))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.detail)
        .collect()
}

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

async fn a_host_name_outside_the_rule_is_refused(store: Store) {
    for name in ["../x", "a/b", "", "a\u{1b}b"] {
        assert!(
            matches!(store.add_host(&host(name)).await, Err(StoreError::Name(_))),
            "{name:?}"
        );
    }
    assert!(store.hosts().await.unwrap().is_empty());
}

async fn a_host_is_changed_and_its_address_makes_it_dialled_again(store: Store) {
    store.add_host(&host("r1")).await.unwrap();
    store.set_enabled("r1", false).await.unwrap();
    store.set_calls_home("r1").await.unwrap();
    store.set_calls_home("r1").await.unwrap();
    let r1 = store.host("r1").await.unwrap();
    assert!(!r1.enabled);
    assert!(r1.status.calls_home);
    assert_eq!(details(&store, "r1").await.len(), 1, "logged once");
    // A new port alone keeps the address; any new place to dial ends the calling home.
    store.set_address("r1", None, Some(2222)).await.unwrap();
    let r1 = store.host("r1").await.unwrap();
    assert_eq!((r1.address.as_str(), r1.port), ("192.0.2.1", 2222));
    assert!(!r1.status.calls_home);
    store
        .set_address("r1", Some("192.0.2.7"), None)
        .await
        .unwrap();
    let r1 = store.host("r1").await.unwrap();
    assert_eq!((r1.address.as_str(), r1.port), ("192.0.2.7", 2222));
    for missing in [
        store.set_enabled("nope", true).await,
        store.set_address("nope", None, Some(1)).await,
        store.remove_host("nope").await,
        store.host("nope").await.map(drop),
        store.heartbeat_failed("nope", "timeout").await,
    ] {
        assert!(
            matches!(missing, Err(StoreError::NotFound("host", _))),
            "{missing:?}"
        );
    }
}

async fn reachability_changes_are_logged_once(store: Store) {
    store.add_host(&host("r1")).await.unwrap();
    let facts = super::facts("r1", 1, 5_120);
    store
        .heartbeat_ok("r1", "0.1.0", &facts, 2.5)
        .await
        .unwrap();
    store
        .heartbeat_ok("r1", "0.1.0", &facts, 1.5)
        .await
        .unwrap();
    store.heartbeat_failed("r1", "timeout").await.unwrap();
    store.heartbeat_failed("r1", "timeout").await.unwrap();
    assert_eq!(
        details(&store, "r1").await,
        ["reachable", "unreachable: timeout"]
    );
    let r1 = store.host("r1").await.unwrap();
    assert_eq!(r1.status.facts, Some(facts));
    assert_eq!(r1.status.reachable, Some(false));
    assert_eq!(r1.status.agent_version.as_deref(), Some("0.1.0"));
    assert_eq!(r1.status.last_error.as_deref(), Some("timeout"));
    // The round trip of the last answered heartbeat stays, with when it was.
    assert_eq!(r1.status.round_trip_ms, Some(1.5));
    assert!(r1.status.last_seen.is_some());
}

async fn a_busy_agent_is_recorded_reachable_and_busy_until_it_answers(store: Store) {
    store.add_host(&host("r1")).await.unwrap();
    store.heartbeat_failed("r1", "timeout").await.unwrap();
    store
        .heartbeat_busy("r1", "refused a channel")
        .await
        .unwrap();
    store
        .heartbeat_busy("r1", "refused a channel")
        .await
        .unwrap();
    let r1 = store.host("r1").await.unwrap();
    assert_eq!((r1.status.reachable, r1.status.busy), (Some(true), true));
    assert_eq!(r1.status.last_error.as_deref(), Some("refused a channel"));
    assert_eq!(
        details(&store, "r1").await,
        ["unreachable: timeout", "reachable, busy: refused a channel"]
    );
    store
        .heartbeat_ok("r1", "0.1.0", &Facts::default(), 1.0)
        .await
        .unwrap();
    let r1 = store.host("r1").await.unwrap();
    assert_eq!((r1.status.reachable, r1.status.busy), (Some(true), false));
    assert_eq!(r1.status.last_error, None);
    assert_eq!(details(&store, "r1").await.len(), 2, "busy was reachable");
}

/// Many callers (on PostgreSQL, many connections, as of several servers) record the same
/// change at once: it is logged once.
async fn a_change_recorded_by_many_callers_at_once_is_logged_once(store: Store) {
    store.add_host(&host("r1")).await.unwrap();
    let at_once = |work: fn(Store) -> tokio::task::JoinHandle<()>| {
        let tasks: Vec<_> = (0..12).map(|_| work(store.clone())).collect();
        async move {
            for task in tasks {
                task.await.unwrap();
            }
        }
    };
    at_once(|store| {
        tokio::spawn(async move { store.heartbeat_failed("r1", "timeout").await.unwrap() })
    })
    .await;
    at_once(|store| {
        tokio::spawn(async move {
            let facts = Facts::default();
            store
                .heartbeat_ok("r1", "0.1.0", &facts, 1.0)
                .await
                .unwrap()
        })
    })
    .await;
    at_once(|store| {
        tokio::spawn(async move {
            let key = "ssh-ed25519 AAAA2";
            store.set_pending_key("r1", key, "SHA256:2").await.unwrap()
        })
    })
    .await;
    at_once(|store| tokio::spawn(async move { store.set_calls_home("r1").await.unwrap() })).await;
    assert_eq!(
        details(&store, "r1").await,
        [
            "unreachable: timeout",
            "reachable",
            "the agent presented an unknown key SHA256:2; refused, pending approval",
            "its agent calls home: reached over the connection it makes, not dialled",
        ]
    );
}

async fn a_host_is_found_by_its_pinned_agent_key_never_by_a_pending_one(store: Store) {
    store.add_host(&host("r1")).await.unwrap();
    store.add_host(&host("r2")).await.unwrap();
    assert_eq!(
        store.host_by_agent_key("ssh-ed25519 AAAA1").await.unwrap(),
        None
    );
    store
        .pin_agent_key("r2", "ssh-ed25519 AAAA1")
        .await
        .unwrap();
    store
        .set_pending_key("r1", "ssh-ed25519 AAAA2", "SHA256:2")
        .await
        .unwrap();
    assert_eq!(
        store.host_by_agent_key("ssh-ed25519 AAAA1").await.unwrap(),
        Some("r2".into())
    );
    assert_eq!(
        store.host_by_agent_key("ssh-ed25519 AAAA2").await.unwrap(),
        None
    );
    let r2 = store.host("r2").await.unwrap();
    assert_eq!(r2.trust.agent_key.as_deref(), Some("ssh-ed25519 AAAA1"));
    assert!(!r2.trust.pin_on_first_contact, "pinned now");
}

async fn a_pending_key_is_logged_when_new_and_dropped_only_if_still_pending(store: Store) {
    store.add_host(&host("r1")).await.unwrap();
    store.set_pending_key("r1", "k2", "SHA256:2").await.unwrap();
    store.set_pending_key("r1", "k2", "SHA256:2").await.unwrap();
    store.set_pending_key("r1", "k3", "SHA256:3").await.unwrap();
    assert_eq!(details(&store, "r1").await.len(), 2);
    assert_eq!(
        store.host("r1").await.unwrap().trust.pending_key.as_deref(),
        Some("k3")
    );
    assert!(!store.drop_pending_key("r1", "k2").await.unwrap());
    assert!(store.drop_pending_key("r1", "k3").await.unwrap());
    assert_eq!(store.host("r1").await.unwrap().trust.pending_key, None);
    store.set_pending_key("r1", "k4", "SHA256:4").await.unwrap();
    store.pin_agent_key("r1", "k4").await.unwrap();
    let trust = store.host("r1").await.unwrap().trust;
    assert_eq!(
        (trust.agent_key.as_deref(), trust.pending_key),
        (Some("k4"), None)
    );
}

async fn a_rotation_pins_the_new_key_and_is_logged_with_its_actor(store: Store) {
    store.add_host(&host("r1")).await.unwrap();
    store.pin_agent_key("r1", "k1").await.unwrap();
    let before = store.host("r1").await.unwrap().trust.last_rotation;
    store.set_pending_key("r1", "k9", "SHA256:9").await.unwrap();
    store
        .rotated("r1", "k2", "rotated to SHA256:2", "cli:al")
        .await
        .unwrap();
    let trust = store.host("r1").await.unwrap().trust;
    assert_eq!(
        (trust.agent_key.as_deref(), trust.pending_key),
        (Some("k2"), None)
    );
    assert!(trust.last_rotation >= before && trust.last_rotation.is_some());
    let events = store
        .events(&EventFilter::newest(Some("r1"), 10))
        .await
        .unwrap();
    let last = events.last().unwrap();
    assert_eq!(
        (last.detail.as_str(), last.actor.as_deref()),
        ("rotated to SHA256:2", Some("cli:al"))
    );
    assert!(matches!(
        store.rotated("nope", "k2", "x", "cli:al").await,
        Err(StoreError::NotFound("host", _))
    ));
    assert!(
        store
            .events(&EventFilter::newest(Some("nope"), 10))
            .await
            .unwrap()
            .is_empty(),
        "nothing logged for no host"
    );
}

async fn a_page_of_hosts_is_chosen_by_its_filters_in_the_order_of_the_names_bytes(store: Store) {
    for name in ["d", "b-2", "a", "B", "c_", "e"] {
        store.add_host(&host(name)).await.unwrap();
    }
    store.add_group("lab").await.unwrap();
    for name in ["a", "b-2", "c_"] {
        store.set_membership("lab", name, true).await.unwrap();
    }
    let facts = super::facts("a", 1, 5_120);
    store.heartbeat_ok("a", "0.1.0", &facts, 1.0).await.unwrap();
    store.heartbeat_busy("B", "busy").await.unwrap();
    store.heartbeat_failed("b-2", "timeout").await.unwrap();
    store.set_enabled("c_", false).await.unwrap();
    store
        .set_pending_key("d", "ssh-ed25519 AAAA", "SHA256:x")
        .await
        .unwrap();
    let page = |filter: HostFilter, limit: usize| {
        let store = store.clone();
        async move {
            let hosts = store.host_page(&filter, limit).await.unwrap();
            hosts.into_iter().map(|h| h.name).collect::<Vec<_>>()
        }
    };
    let after = |name: &str| HostFilter {
        after: Some(name.into()),
        ..HostFilter::default()
    };
    let all = HostFilter::default;
    assert_eq!(page(all(), 10).await, ["B", "a", "b-2", "c_", "d", "e"]);
    assert_eq!(page(all(), 2).await, ["B", "a"]);
    assert_eq!(page(after("a"), 2).await, ["b-2", "c_"]);
    assert_eq!(page(after("e"), 2).await, Vec::<String>::new());
    assert_eq!(page(all(), usize::MAX).await.len(), 6);
    // A name contains the text, letter case counting.
    let named = |text: &str| HostFilter {
        name: Some(text.into()),
        ..HostFilter::default()
    };
    assert_eq!(page(named("b"), 10).await, ["b-2"]);
    assert_eq!(page(named("_"), 10).await, ["c_"]);
    assert_eq!(page(named("%"), 10).await, Vec::<String>::new());
    let in_group = |group: &str| HostFilter {
        group: Some(group.into()),
        ..HostFilter::default()
    };
    assert_eq!(page(in_group("lab"), 10).await, ["a", "b-2", "c_"]);
    assert_eq!(page(in_group("nope"), 10).await, Vec::<String>::new());
    let in_state = |state: HostState| HostFilter {
        state: Some(state),
        ..HostFilter::default()
    };
    assert_eq!(page(in_state(HostState::Reachable), 10).await, ["B", "a"]);
    assert_eq!(page(in_state(HostState::Unreachable), 10).await, ["b-2"]);
    assert_eq!(page(in_state(HostState::Disabled), 10).await, ["c_"]);
    assert_eq!(page(in_state(HostState::Pending), 10).await, ["d"]);
    assert_eq!(page(in_state(HostState::Unknown), 10).await, ["d", "e"]);
    // All filters at once.
    let every = HostFilter {
        after: Some("a".into()),
        name: Some("-".into()),
        group: Some("lab".into()),
        state: Some(HostState::Unreachable),
    };
    assert_eq!(page(every, 1).await, ["b-2"]);
    // Facts and groups come with each host.
    let a = store.host_page(&after("B"), 1).await.unwrap();
    assert_eq!(a[0].status.facts, Some(facts));
    assert_eq!(a[0].groups, ["lab"]);
}
