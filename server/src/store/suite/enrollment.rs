//! Enrollment: a token's uses taken once each however many agents race for them, its
//! refusals, the rules' positions, and what an enrolled agent reported.

use std::collections::BTreeMap;

use crate::model::{
    Clause, EnrollHost, EventFilter, EventKind, NewRule, NewToken, TokenRefusal, TokenUse, now_ms,
};
use crate::store::{Store, StoreError};

on_both!(
    a_token_s_uses_run_out_under_concurrent_enrollments,
    a_refused_token_changes_nothing,
    an_enrollment_adds_its_groups_events_and_properties,
    a_taken_name_uses_no_token,
    rules_keep_their_positions,
    rules_added_at_once_take_distinct_positions,
);

/// A token of `uses` uses whose secret's hash is `hash`, valid for an hour.
fn token(hash: &str, uses: u32, groups: &[&str]) -> NewToken {
    NewToken {
        hash: hash.into(),
        note: format!("token {hash}"),
        uses,
        expires: now_ms() + 3_600_000,
        groups: groups.iter().map(|g| g.to_string()).collect(),
        created_by: "cli:admin".into(),
    }
}

/// Host `name` enrolling with the token whose hash is `hash`, its key pinned.
fn enrolling(hash: &str, name: &str) -> EnrollHost {
    EnrollHost {
        token_hash: hash.into(),
        name: name.into(),
        address: "192.0.2.7".into(),
        port: 12444,
        agent_key: format!("ssh-ed25519 AAAA{name}"),
        trust: true,
        groups: Vec::new(),
        properties: BTreeMap::from([("hostname".into(), name.into())]),
        actor: "agent".into(),
        detail: format!("enrolled {name}"),
    }
}

/// A rule matching hostnames by `regex`, into `group`.
fn rule(position: Option<u32>, regex: &str, group: &str) -> NewRule {
    NewRule {
        position,
        clauses: vec![Clause {
            property: "hostname".into(),
            regex: regex.into(),
        }],
        groups: vec![group.into()],
        trust: false,
        created_by: "cli:admin".into(),
    }
}

/// Every event, oldest first.
async fn events(store: &Store) -> Vec<crate::model::Event> {
    store
        .events(&EventFilter::newest(None, 1000))
        .await
        .unwrap()
}

/// Eight agents enroll at once with a token of three uses (on PostgreSQL each on its own
/// connection): exactly three succeed, the others are told it is used up.
async fn a_token_s_uses_run_out_under_concurrent_enrollments(store: Store) {
    let id = store.add_token(&token("t3", 3, &[])).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.enroll(&enrolling("t3", &format!("r{i}"))).await })
        })
        .collect();
    let mut enrolled = 0;
    for task in tasks {
        match task.await.unwrap().unwrap() {
            Ok(used) => {
                assert_eq!(used.token, id);
                enrolled += 1;
            }
            Err(refusal) => assert_eq!(refusal, TokenRefusal::UsedUp(id)),
        }
    }
    assert_eq!(enrolled, 3);
    let token = store.tokens().await.unwrap().pop().unwrap();
    assert_eq!((token.uses, token.used), (3, 3));
    assert!(token.last_used.is_some());
    assert_eq!(store.enrolled_properties().await.unwrap().len(), 3);
    assert_eq!(
        store.check_token("t3").await.unwrap(),
        Err(TokenRefusal::UsedUp(id))
    );
}

/// A token revoked, expired, used up or unknown is refused for its reason, by the check and
/// by the enrollment, which then changes nothing.
async fn a_refused_token_changes_nothing(store: Store) {
    let revoked = store.add_token(&token("revoked", 5, &[])).await.unwrap();
    let expired = store
        .add_token(&NewToken {
            expires: now_ms() - 1,
            ..token("expired", 5, &[])
        })
        .await
        .unwrap();
    let none_left = store.add_token(&token("none-left", 0, &[])).await.unwrap();
    let good = store.add_token(&token("good", 5, &["lab"])).await.unwrap();
    assert_eq!(store.check_token("revoked").await.unwrap(), Ok(revoked));
    let token = store.revoke_token(revoked).await.unwrap();
    assert!(token.revoked);
    assert_eq!((token.id, token.note.as_str()), (revoked, "token revoked"));
    assert!(matches!(
        store.revoke_token(good + 100).await,
        Err(StoreError::NotFound("enrollment token", _))
    ));
    let before = events(&store).await;
    for (hash, refusal) in [
        ("revoked", TokenRefusal::Revoked(revoked)),
        ("expired", TokenRefusal::Expired(expired)),
        ("none-left", TokenRefusal::UsedUp(none_left)),
        ("unknown", TokenRefusal::Unknown),
    ] {
        assert_eq!(store.check_token(hash).await.unwrap(), Err(refusal));
        assert_eq!(
            store.enroll(&enrolling(hash, "r1")).await.unwrap(),
            Err(refusal)
        );
    }
    assert_eq!(events(&store).await, before);
    assert!(store.enrolled_properties().await.unwrap().is_empty());
    let tokens = store.tokens().await.unwrap();
    assert_eq!(
        tokens.iter().map(|t| t.id).collect::<Vec<_>>(),
        [revoked, expired, none_left, good]
    );
    assert!(tokens.iter().all(|t| t.used == 0 && t.last_used.is_none()));
    assert_eq!(tokens[3].groups, ["lab"]);
    assert_eq!(tokens[3].created_by, "cli:admin");
    // The good one still works: the host's name was not taken by the refusals.
    assert!(
        store
            .enroll(&enrolling("good", "r1"))
            .await
            .unwrap()
            .is_ok()
    );
}

/// An enrollment puts its host in its rule's groups then its token's (no repeats), creating
/// those missing (each logged once), logs the host's addition and its enrollment, and keeps
/// what its agent reported.
async fn an_enrollment_adds_its_groups_events_and_properties(store: Store) {
    let id = store
        .add_token(&token("t", 5, &["site-a", "lab"]))
        .await
        .unwrap();
    let first = EnrollHost {
        groups: vec!["lab".into(), "mips".into()],
        properties: BTreeMap::from([
            ("hostname".into(), "r1".into()),
            ("arch".into(), "mips".into()),
        ]),
        ..enrolling("t", "r1")
    };
    assert_eq!(
        store.enroll(&first).await.unwrap(),
        Ok(TokenUse {
            token: id,
            groups: vec!["lab".into(), "mips".into(), "site-a".into()]
        })
    );
    let second = EnrollHost {
        trust: false,
        ..enrolling("t", "r2")
    };
    let used = store.enroll(&second).await.unwrap().unwrap();
    assert_eq!(used.groups, ["site-a", "lab"]);
    let properties = store.enrolled_properties().await.unwrap();
    assert_eq!(properties["r1"], first.properties);
    assert_eq!(properties["r2"], second.properties);
    assert_eq!(properties.len(), 2);
    let events = events(&store).await;
    let made: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::GroupChanged.as_str())
        .map(|e| (e.detail.as_str(), e.actor.as_deref(), e.host.as_deref()))
        .collect();
    assert_eq!(
        made,
        [
            ("group lab added", Some("agent"), None),
            ("group mips added", Some("agent"), None),
            ("group site-a added", Some("agent"), None),
        ]
    );
    let of_r2: Vec<_> = events
        .iter()
        .filter(|e| e.host.as_deref() == Some("r2"))
        .map(|e| (e.kind.as_str(), e.detail.as_str()))
        .collect();
    let enrolled = format!("enrolled r2, token {id}; groups site-a, lab");
    assert_eq!(
        of_r2,
        [
            (
                "host-added",
                "192.0.2.7:12444, agent key pending approval (enrolled)"
            ),
            ("enrolled", enrolled.as_str()),
        ]
    );
    let token = store.tokens().await.unwrap().pop().unwrap();
    assert_eq!(token.used, 2);
}

/// An agent whose host name is taken is refused with `Exists`, and its token's use is not
/// taken (nor is anything else of the enrollment kept).
async fn a_taken_name_uses_no_token(store: Store) {
    store.add_token(&token("t", 1, &["lab"])).await.unwrap();
    store.add_host(&super::host("r1")).await.unwrap();
    let before = events(&store).await;
    assert!(matches!(
        store.enroll(&enrolling("t", "r1")).await,
        Err(StoreError::Exists("host", _))
    ));
    assert_eq!(store.tokens().await.unwrap()[0].used, 0);
    assert!(store.enrolled_properties().await.unwrap().is_empty());
    assert_eq!(events(&store).await, before);
    assert!(store.enroll(&enrolling("t", "r2")).await.unwrap().is_ok());
}

/// Rules are inserted where they say (the rest move down), past the end or without a position
/// at the end, and removing one moves those after it up.
async fn rules_keep_their_positions(store: Store) {
    let a = store.add_rule(&rule(None, "^a", "ga")).await.unwrap();
    let b = store.add_rule(&rule(Some(9), "^b", "gb")).await.unwrap();
    let c = store.add_rule(&rule(Some(1), "^c", "gc")).await.unwrap();
    let d = store.add_rule(&rule(Some(2), "^d", "gd")).await.unwrap();
    let e = store.add_rule(&rule(Some(0), "^e", "ge")).await.unwrap();
    let order =
        |rules: &[crate::model::Rule]| rules.iter().map(|r| (r.position, r.id)).collect::<Vec<_>>();
    let rules = store.rules().await.unwrap();
    assert_eq!(order(&rules), [(1, e), (2, c), (3, d), (4, a), (5, b)]);
    let d_rule = &rules[2];
    assert_eq!(d_rule.clauses, rule(None, "^d", "gd").clauses);
    assert_eq!(d_rule.groups, ["gd"]);
    assert!(!d_rule.trust);
    assert_eq!(d_rule.created_by, "cli:admin");
    let removed = store.remove_rule(c).await.unwrap();
    assert_eq!((removed.id, removed.position), (c, 2));
    assert_eq!(removed.clauses, rule(None, "^c", "gc").clauses);
    assert_eq!(
        order(&store.rules().await.unwrap()),
        [(1, e), (2, d), (3, a), (4, b)]
    );
    assert!(matches!(
        store.remove_rule(c).await,
        Err(StoreError::NotFound("enrollment rule", _))
    ));
    store.remove_rule(b).await.unwrap();
    store.remove_rule(e).await.unwrap();
    assert_eq!(order(&store.rules().await.unwrap()), [(1, d), (2, a)]);
}

/// Rules added and removed by many callers at once (on PostgreSQL, as by several servers)
/// keep their positions 1, 2, 3… with no gap and no repeat.
async fn rules_added_at_once_take_distinct_positions(store: Store) {
    let tasks: Vec<_> = (0..10u32)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let position = (i % 3 != 0).then_some(i % 4);
                store
                    .add_rule(&rule(position, &format!("^r{i}"), "g"))
                    .await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap().unwrap());
    }
    let positions =
        |rules: Vec<crate::model::Rule>| rules.iter().map(|r| r.position).collect::<Vec<_>>();
    assert_eq!(
        positions(store.rules().await.unwrap()),
        (1..=10).collect::<Vec<_>>()
    );
    let tasks: Vec<_> = ids
        .into_iter()
        .step_by(2)
        .map(|id| {
            let store = store.clone();
            tokio::spawn(async move { store.remove_rule(id).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(
        positions(store.rules().await.unwrap()),
        (1..=5).collect::<Vec<_>>()
    );
}
