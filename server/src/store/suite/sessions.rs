//! Users' browser sessions, whose ids are never used twice.

use super::database::Database;
use crate::model::{NewSession, NewUser, Permissions, now_ms};
use crate::store::{Store, StoreError};

on_both!(sessions_are_found_by_their_hash_and_ended);
on_both_with_database!(session_ids_are_never_reused);

/// A user named `name` with no permissions.
fn user(name: &str) -> NewUser {
    NewUser {
        name: name.into(),
        password_hash: "x".into(),
        permissions: Permissions::default(),
    }
}

/// A session of `user` whose token and CSRF token hash to `h{n}` and `c{n}`.
fn session(user: &str, n: u32, expires: i64) -> NewSession {
    NewSession {
        user: user.into(),
        hash: format!("h{n}"),
        csrf_hash: format!("c{n}"),
        expires,
    }
}

const HOUR: i64 = 3_600_000;

async fn session_ids_are_never_reused(store: Store, database: Database) {
    store.add_user(&user("carol")).await.unwrap();
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    let add = async |store: &Store, n: u32, expires: i64| {
        store
            .add_session(&session("carol", n, expires))
            .await
            .unwrap()
    };
    // Signed in, out, in again.
    let first = add(&store, next(), now_ms() + HOUR).await;
    store.end_sessions("carol", None).await.unwrap();
    let second = add(&store, next(), now_ms() + HOUR).await;
    assert!(second > first, "{second} after {first}");
    // One expired, forgotten as the next starts.
    let expired = add(&store, next(), now_ms() - 1).await;
    store.end_sessions("carol", Some(expired)).await.unwrap();
    let later = add(&store, next(), now_ms() + HOUR).await;
    assert!(later > expired, "{later} after {expired}");
    assert_eq!(store.session_by_hash("h3").await.unwrap(), None);
    // After a restart, every session ended.
    store.end_sessions("carol", None).await.unwrap();
    drop(store);
    let store = database.open().await;
    let after_restart = add(&store, next(), now_ms() + HOUR).await;
    assert!(after_restart > later, "{after_restart} after {later}");
}

async fn sessions_are_found_by_their_hash_and_ended(store: Store) {
    assert!(matches!(
        store
            .add_session(&session("nobody", 1, now_ms() + HOUR))
            .await,
        Err(StoreError::NotFound("user", _))
    ));
    store.add_user(&user("carol")).await.unwrap();
    store.add_user(&user("dave")).await.unwrap();
    let expires = now_ms() + HOUR;
    let one = store
        .add_session(&session("carol", 1, expires))
        .await
        .unwrap();
    let two = store
        .add_session(&session("carol", 2, expires))
        .await
        .unwrap();
    let three = store
        .add_session(&session("carol", 3, expires))
        .await
        .unwrap();
    let theirs = store
        .add_session(&session("dave", 4, expires))
        .await
        .unwrap();
    assert!(matches!(
        store.add_session(&session("dave", 1, expires)).await,
        Err(StoreError::Exists("session", _))
    ));
    let (found, owner) = store.session_by_hash("h2").await.unwrap().unwrap();
    assert_eq!(
        (found.id, found.user.as_str(), found.csrf_hash.as_str()),
        (two, "carol", "c2")
    );
    assert_eq!(found.expires, expires);
    assert_eq!(owner, store.user("carol").await.unwrap());
    assert_eq!(store.session_by_hash("nope").await.unwrap(), None);

    // One ended; then all of hers but one; the others' stay.
    store.end_session(one).await.unwrap();
    store.end_session(one).await.unwrap();
    assert_eq!(store.session_by_hash("h1").await.unwrap(), None);
    assert_eq!(store.end_sessions("carol", Some(three)).await.unwrap(), 1);
    assert_eq!(store.session_by_hash("h2").await.unwrap(), None);
    assert_eq!(
        store.session_by_hash("h3").await.unwrap().unwrap().0.id,
        three
    );
    assert_eq!(store.end_sessions("carol", None).await.unwrap(), 1);
    assert_eq!(store.end_sessions("carol", None).await.unwrap(), 0);
    assert_eq!(
        store.session_by_hash("h4").await.unwrap().unwrap().0.id,
        theirs
    );
}
