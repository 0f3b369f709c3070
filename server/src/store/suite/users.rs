//! The API's users, their passwords and permissions, and their API keys.

use crate::model::{ApiKey, NewApiKey, NewUser, Permission, Permissions, RunLevel, now_ms};
use crate::store::{Store, StoreError};

on_both!(
    users_are_added_changed_and_listed,
    api_keys_are_found_by_hash_and_revoked_once
);

/// Permissions to run read-only scripts and change hosts.
fn reader() -> Permissions {
    Permissions {
        admin: false,
        run: RunLevel::ReadOnly,
        modify: [Permission::Hosts].into_iter().collect(),
    }
}

/// A user named `name` with `permissions`.
fn user(name: &str, permissions: Permissions) -> NewUser {
    NewUser {
        name: name.into(),
        password_hash: format!("$argon2id$v=19${name}"),
        permissions,
    }
}

async fn users_are_added_changed_and_listed(store: Store) {
    let before = now_ms();
    store.add_user(&user("bob", reader())).await.unwrap();
    store
        .add_user(&user("alice", Permissions::admin()))
        .await
        .unwrap();
    assert!(matches!(
        store.add_user(&user("bob", Permissions::default())).await,
        Err(StoreError::Exists("user", _))
    ));
    let bob = store.user("bob").await.unwrap();
    assert_eq!(
        (bob.name.as_str(), &bob.permissions, bob.disabled),
        ("bob", &reader(), false)
    );
    assert!(bob.created >= before);
    let names: Vec<_> = store
        .users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(
        store.password_hash("bob").await.unwrap(),
        "$argon2id$v=19$bob"
    );

    store.set_password("bob", "$argon2id$new").await.unwrap();
    assert_eq!(store.password_hash("bob").await.unwrap(), "$argon2id$new");
    store.set_disabled("bob", true).await.unwrap();
    assert!(store.user("bob").await.unwrap().disabled);
    store.set_disabled("bob", false).await.unwrap();
    assert!(!store.user("bob").await.unwrap().disabled);
    store
        .set_permissions("bob", &Permissions::admin())
        .await
        .unwrap();
    assert_eq!(
        store.user("bob").await.unwrap().permissions,
        Permissions::admin()
    );
    assert!(!store.user("alice").await.unwrap().disabled);

    // None of it for a user who does not exist.
    let missing = |result: Result<(), StoreError>| {
        assert!(
            matches!(result, Err(StoreError::NotFound("user", _))),
            "{result:?}"
        )
    };
    assert!(matches!(
        store.user("carol").await,
        Err(StoreError::NotFound("user", _))
    ));
    assert!(matches!(
        store.password_hash("carol").await,
        Err(StoreError::NotFound("user", _))
    ));
    missing(store.set_password("carol", "x").await);
    missing(store.set_disabled("carol", true).await);
    missing(store.set_permissions("carol", &reader()).await);
}

async fn api_keys_are_found_by_hash_and_revoked_once(store: Store) {
    store.add_user(&user("bob", reader())).await.unwrap();
    store
        .add_user(&user("alice", Permissions::admin()))
        .await
        .unwrap();
    let key = |user: &str, hash: &str, expires: Option<i64>| NewApiKey {
        user: user.into(),
        hash: hash.into(),
        permissions: Permissions {
            modify: Default::default(),
            ..reader()
        },
        expires,
    };
    let later = now_ms() + 3_600_000;
    let bobs = store
        .add_api_key(&key("bob", "k1", Some(later)))
        .await
        .unwrap();
    let alices = store.add_api_key(&key("alice", "k2", None)).await.unwrap();
    let bobs_second = store.add_api_key(&key("bob", "k3", None)).await.unwrap();
    assert!(bobs < alices && alices < bobs_second);
    assert!(matches!(
        store.add_api_key(&key("alice", "k1", None)).await,
        Err(StoreError::Exists("API key", _))
    ));
    assert!(matches!(
        store.add_api_key(&key("carol", "k4", None)).await,
        Err(StoreError::NotFound("user", _))
    ));

    let ids = |keys: Vec<ApiKey>| keys.iter().map(|k| k.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.api_keys(None).await.unwrap()),
        [bobs, alices, bobs_second]
    );
    assert_eq!(
        ids(store.api_keys(Some("bob")).await.unwrap()),
        [bobs, bobs_second]
    );
    assert!(store.api_keys(Some("carol")).await.unwrap().is_empty());

    let (found, owner) = store.api_key_by_hash("k1").await.unwrap().unwrap();
    assert_eq!(
        (found.id, found.user.as_str(), found.expires, found.revoked),
        (bobs, "bob", Some(later), None)
    );
    assert_eq!(found.permissions, key("bob", "k1", None).permissions);
    assert_eq!(owner, store.user("bob").await.unwrap());
    assert_eq!(store.api_key_by_hash("nope").await.unwrap(), None);

    // Revoked once, from now; a second time changes nothing.
    let before = now_ms();
    let revoked = store.revoke_api_key(bobs).await.unwrap().unwrap();
    assert!(revoked.revoked.is_some_and(|at| at >= before));
    assert_eq!(
        revoked,
        ApiKey {
            revoked: revoked.revoked,
            ..found.clone()
        }
    );
    assert_eq!(store.revoke_api_key(bobs).await.unwrap(), None);
    let (again, _) = store.api_key_by_hash("k1").await.unwrap().unwrap();
    assert_eq!(again, revoked);
    assert!(matches!(
        store.revoke_api_key(bobs_second + 100).await,
        Err(StoreError::NotFound("API key", _))
    ));
    // A user's permissions change theirs alone, not their keys'.
    store
        .set_permissions("bob", &Permissions::admin())
        .await
        .unwrap();
    let (key_now, owner_now) = store.api_key_by_hash("k3").await.unwrap().unwrap();
    assert_eq!(key_now.permissions, found.permissions);
    assert_eq!(owner_now.permissions, Permissions::admin());
}
