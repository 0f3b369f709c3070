//! Schedules: unique names, the claim of a due time by exactly one caller, and the launches
//! they started.

use crate::model::{NewLaunch, NewSchedule, RunLevel};
use crate::store::{Store, StoreError};

on_both!(
    a_due_time_is_claimed_exactly_once,
    schedules_are_kept_unique_enabled_and_removed,
    schedules_link_their_launches,
);

/// A schedule every five seconds, enabled when it has a next due time.
fn new(name: &str, next_due: Option<i64>) -> NewSchedule {
    NewSchedule {
        name: name.into(),
        cron: "*/5 * * * * *".into(),
        time_zone: "UTC".into(),
        enabled: next_due.is_some(),
        run: r#"{"command":"true","all":true}"#.into(),
        next_due,
    }
}

/// Many callers (on PostgreSQL, each on its own connection, as servers are) claim the same due
/// time at once: exactly one wins; the next due time is then claimable once more.
async fn a_due_time_is_claimed_exactly_once(store: Store) {
    let id = store
        .add_schedule(&new("nightly", Some(1000)))
        .await
        .unwrap();
    let claims: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.claim_schedule(id, 1000, Some(2000)).await })
        })
        .collect();
    let mut won = 0;
    for claim in claims {
        won += usize::from(claim.await.unwrap().unwrap());
    }
    assert_eq!(won, 1);
    assert_eq!(
        store.schedule("nightly").await.unwrap().next_due,
        Some(2000)
    );
    // An old due time is no longer claimable; the new one is, once.
    assert!(!store.claim_schedule(id, 1000, Some(3000)).await.unwrap());
    assert!(store.claim_schedule(id, 2000, Some(3000)).await.unwrap());
    assert!(!store.claim_schedule(id, 2000, Some(3000)).await.unwrap());
    // A disabled schedule's time is not claimable; nor is an unknown schedule's.
    store
        .set_schedule_enabled("nightly", false, None)
        .await
        .unwrap();
    assert!(!store.claim_schedule(id, 3000, Some(4000)).await.unwrap());
    assert!(!store.claim_schedule(id + 1, 3000, None).await.unwrap());
    // Claiming the last due time leaves none.
    store
        .set_schedule_enabled("nightly", true, Some(5000))
        .await
        .unwrap();
    assert!(store.claim_schedule(id, 5000, None).await.unwrap());
    assert_eq!(store.schedule("nightly").await.unwrap().next_due, None);
}

async fn schedules_are_kept_unique_enabled_and_removed(store: Store) {
    let id = store.add_schedule(&new("b", Some(5))).await.unwrap();
    let other = store.add_schedule(&new("a", None)).await.unwrap();
    assert_ne!(id, other);
    assert!(matches!(
        store.add_schedule(&new("a", None)).await,
        Err(StoreError::Exists("schedule", _))
    ));
    let all = store.schedules().await.unwrap();
    assert_eq!(
        all.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    let b = store.schedule("b").await.unwrap();
    assert_eq!(b, all[1]);
    assert_eq!(
        (b.id, b.cron.as_str(), b.time_zone.as_str(), b.enabled),
        (id, "*/5 * * * * *", "UTC", true)
    );
    assert_eq!(
        (b.run.as_str(), b.next_due),
        (r#"{"command":"true","all":true}"#, Some(5))
    );
    assert!(b.created > 0);
    store
        .set_schedule_enabled("a", true, Some(7))
        .await
        .unwrap();
    let a = store.schedule("a").await.unwrap();
    assert_eq!((a.enabled, a.next_due), (true, Some(7)));
    assert!(matches!(
        store.set_schedule_enabled("c", true, Some(7)).await,
        Err(StoreError::NotFound("schedule", _))
    ));
    assert!(matches!(
        store.schedule("c").await,
        Err(StoreError::NotFound("schedule", _))
    ));
    store.remove_schedule("b").await.unwrap();
    assert!(matches!(
        store.remove_schedule("b").await,
        Err(StoreError::NotFound("schedule", _))
    ));
    // A name freed is taken again under a new id.
    let again = store.add_schedule(&new("b", None)).await.unwrap();
    assert!(again > other.max(id), "{again}");
}

async fn schedules_link_their_launches(store: Store) {
    let id = store.add_schedule(&new("b", Some(5))).await.unwrap();
    let launch = NewLaunch {
        actor: "server".into(),
        job: "command: true".into(),
        hosts: vec!["r1".into()],
        level: RunLevel::ReadWrite,
        request: None,
    };
    let first = store.start_launch(&launch).await.unwrap();
    let other = store.start_launch(&launch).await.unwrap();
    let second = store.start_launch(&launch).await.unwrap();
    store.link_launch(first, id).await.unwrap();
    store.link_launch(second, id).await.unwrap();
    assert!(matches!(
        store.link_launch(second + 100, id).await,
        Err(StoreError::NotFound("launch", _))
    ));
    let launches = store.schedule_launches(id, 10).await.unwrap();
    assert_eq!(
        launches.iter().map(|l| l.id).collect::<Vec<_>>(),
        [second, first]
    );
    assert_eq!(launches[0], store.launch(second).await.unwrap());
    assert_eq!(launches[0].hosts, ["r1"]);
    assert_eq!(store.schedule_launches(id, 1).await.unwrap().len(), 1);
    assert_eq!(
        store.launch_schedule(first).await.unwrap().as_deref(),
        Some("b")
    );
    assert_eq!(store.launch_schedule(other).await.unwrap(), None);
    assert_eq!(store.launch_schedule(u64::MAX).await.unwrap(), None);
    // Removed, its launches stay, unlinked.
    store.remove_schedule("b").await.unwrap();
    assert_eq!(store.launch_schedule(first).await.unwrap(), None);
    assert_eq!(store.launch(first).await.unwrap().id, first);
    let id = store.add_schedule(&new("b", Some(5))).await.unwrap();
    assert!(store.schedule_launches(id, 10).await.unwrap().is_empty());
}

/// Two servers on one database, each with its own handle (two opens of one SQLite file, two
/// pools on one PostgreSQL database), claim the same due times: each is won once.
async fn two_servers_claim_once(one: Store, two: Store) {
    let id = one.add_schedule(&new("nightly", Some(1000))).await.unwrap();
    for due in 1..=20 {
        let (at, next) = (due * 1000, (due + 1) * 1000);
        let (a, b) = tokio::join!(
            one.claim_schedule(id, at, Some(next)),
            two.claim_schedule(id, at, Some(next))
        );
        assert!(a.unwrap() ^ b.unwrap(), "due time {at}");
    }
    assert_eq!(
        two.schedule("nightly").await.unwrap().next_due,
        Some(21_000)
    );
}

mod two_servers_claim_once {
    use crate::store::Store;
    use crate::store::secrets::KEY_FILE;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("otto.db");
        let one = Store::open_sqlite(&path).unwrap();
        let two = Store::open_sqlite(&path).unwrap();
        super::two_servers_claim_once(one, two).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let Some(url) = crate::store::suite::postgres_url().await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let one = Store::open_postgres(&url, dir.path().join(KEY_FILE))
            .await
            .unwrap();
        let two = Store::open_postgres(&url, dir.path().join(KEY_FILE))
            .await
            .unwrap();
        super::two_servers_claim_once(one, two).await;
    }
}
