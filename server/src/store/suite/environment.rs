//! Environment variables: their owners, their order, and secrets sealed at rest.

use super::host;
use crate::model::Scope;
use crate::store::secrets::{KEY_FILE, SecretError};
use crate::store::{Store, StoreError};

on_both!(
    secrets_are_masked_when_shown,
    variables_are_replaced_listed_by_scope_and_unset,
    a_variable_needs_its_owner,
);

async fn secrets_are_masked_when_shown(store: Store) {
    set_token_and_mode(&store).await;
    let vars = store.env(None).await.unwrap();
    let json = serde_json::to_string(&vars).unwrap();
    assert!(!json.contains("hunter2"), "{json}");
    assert!(json.contains("fast"));
    assert!(!format!("{vars:?}").contains("hunter2"));
    assert_eq!(vars[0].value.value, "fast");
    assert_eq!(vars[1].value.value, "hunter2");
    assert!(vars[1].value.secret && !vars[0].value.secret);
}

async fn variables_are_replaced_listed_by_scope_and_unset(store: Store) {
    store.add_host(&host("r1")).await.unwrap();
    store.add_group("lab").await.unwrap();
    let (global, group, r1) = (
        Scope::Global,
        Scope::Group("lab".into()),
        Scope::Host("r1".into()),
    );
    store.set_env(&r1, "A", "1", false).await.unwrap();
    store.set_env(&group, "b", "2", false).await.unwrap();
    store.set_env(&group, "B", "3", false).await.unwrap();
    store.set_env(&global, "Z", "4", true).await.unwrap();
    // Replaced: a secret by a plain value, and back.
    store.set_env(&global, "Z", "5", false).await.unwrap();
    store.set_env(&r1, "A", "6", true).await.unwrap();
    let listed = |vars: Vec<crate::model::EnvVar>| -> Vec<(String, String, String, bool)> {
        vars.into_iter()
            .map(|v| {
                let secret = v.value.secret;
                (v.scope.to_string(), v.name, v.value.value, secret)
            })
            .collect()
    };
    let all = listed(store.env(None).await.unwrap());
    let expected = |rows: &[(&Scope, &str, &str, bool)]| -> Vec<(String, String, String, bool)> {
        rows.iter()
            .map(|(s, n, v, secret)| (s.to_string(), n.to_string(), v.to_string(), *secret))
            .collect()
    };
    // Global, then groups, then hosts; names in byte order.
    assert_eq!(
        all,
        expected(&[
            (&global, "Z", "5", false),
            (&group, "B", "3", false),
            (&group, "b", "2", false),
            (&r1, "A", "6", true),
        ])
    );
    assert_eq!(
        listed(store.env(Some(&r1)).await.unwrap()),
        expected(&[(&r1, "A", "6", true)])
    );
    store.unset_env(&group, "b").await.unwrap();
    assert!(matches!(
        store.unset_env(&group, "b").await,
        Err(StoreError::NotFound("variable", _))
    ));
    assert_eq!(
        listed(store.env(Some(&group)).await.unwrap()),
        expected(&[(&group, "B", "3", false)])
    );
    store.remove_host("r1").await.unwrap();
    assert!(store.env(Some(&r1)).await.unwrap().is_empty());
}

async fn a_variable_needs_its_owner(store: Store) {
    for (scope, what) in [
        (Scope::Group("nope".into()), "group"),
        (Scope::Host("nope".into()), "host"),
        (Scope::Script("nope".into()), "script"),
    ] {
        let refused = store.set_env(&scope, "X", "1", true).await;
        assert!(
            matches!(refused, Err(StoreError::NotFound(w, _)) if w == what),
            "{what}: {refused:?}"
        );
    }
    assert!(store.env(None).await.unwrap().is_empty());
}

/// On PostgreSQL, a secret's row holds it encrypted, and it does not open without the key
/// (SQLite's file is checked in `sqlite::tests`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_stored_encrypted_on_postgres() {
    let Some(url) = super::postgres_url().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_postgres(&url, dir.path().join(KEY_FILE))
        .await
        .unwrap();
    set_token_and_mode(&store).await;
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let stored: Vec<(String, bool)> = client
        .query("SELECT value, sealed FROM env ORDER BY name", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(stored[0], ("fast".to_string(), false));
    assert!(
        stored[1].1 && !stored[1].0.contains("hunter2"),
        "{stored:?}"
    );

    std::fs::remove_file(dir.path().join(KEY_FILE)).unwrap();
    let lost = store.env(None).await.unwrap_err();
    assert!(
        matches!(lost, StoreError::Secret(SecretError::Missing(_))),
        "{lost}"
    );
}

/// Sets the global secret `TOKEN=hunter2` and the plain `MODE=fast`.
async fn set_token_and_mode(store: &Store) {
    store
        .set_env(&Scope::Global, "TOKEN", "hunter2", true)
        .await
        .unwrap();
    store
        .set_env(&Scope::Global, "MODE", "fast", false)
        .await
        .unwrap();
}
