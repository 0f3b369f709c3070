//! The hosts' server keys in their slots, and the rotation of the key that seals them and the
//! secret variables (`secrets.key` → `.next` → `.old`), with a server still on the old key
//! writing meanwhile.

use std::path::Path;

use super::Held;
use crate::model::{NewDelivery, Scope, WebhookEvent, now_ms};
use crate::store::secrets::{self, KEY_FILE};
use crate::store::{KeySlot, Reseal, Resealed, Store, StoreError};

on_both!(server_keys_in_their_slots);

async fn server_keys_in_their_slots(store: Store) {
    assert_eq!(
        store.server_key("r1", KeySlot::Current).await.unwrap(),
        None
    );
    store
        .put_server_key("r1", KeySlot::Current, "one")
        .await
        .unwrap();
    store
        .put_server_key("r2", KeySlot::Current, "two")
        .await
        .unwrap();
    assert!(matches!(
        store.promote_server_key("r1").await,
        Err(StoreError::NotFound(..))
    ));
    store
        .put_server_key("r1", KeySlot::Next, "three")
        .await
        .unwrap();
    store
        .put_server_key("r1", KeySlot::Next, "four")
        .await
        .unwrap();
    let r1 = |slot| {
        let store = store.clone();
        async move { store.server_key("r1", slot).await.unwrap() }
    };
    assert_eq!(r1(KeySlot::Current).await.as_deref(), Some("one"));
    assert_eq!(r1(KeySlot::Next).await.as_deref(), Some("four"));
    assert_eq!(store.server_key_hosts().await.unwrap(), ["r1", "r2"]);
    store.promote_server_key("r1").await.unwrap();
    assert_eq!(r1(KeySlot::Current).await.as_deref(), Some("four"));
    assert_eq!(r1(KeySlot::Next).await, None);
    store
        .remove_server_key("r1", Some(KeySlot::Next))
        .await
        .unwrap();
    assert_eq!(r1(KeySlot::Current).await.as_deref(), Some("four"));
    store
        .put_server_key("r1", KeySlot::Next, "five")
        .await
        .unwrap();
    store.remove_server_key("r1", None).await.unwrap();
    assert_eq!(store.server_key_hosts().await.unwrap(), ["r2"]);
    // Nothing to seal again: every value is sealed with the key.
    assert_eq!(
        store.reseal(&Reseal::Stale).await.unwrap(),
        Resealed::default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_is_rotated_with_secrets_and_server_keys_on_sqlite() {
    let (held, store) = super::sqlite().await;
    rotation(&held, &store, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_is_rotated_with_secrets_and_server_keys_on_postgres() {
    if let Some((held, store)) = super::postgres().await {
        rotation(&held, &store, true).await;
    }
}

/// Every value the rotation test stores, as the store opens them now.
async fn readable(store: &Store, variables: bool) -> Vec<String> {
    let mut found = Vec::new();
    if variables {
        for var in store.env(None).await.unwrap() {
            found.push(format!("{}={}", var.name, var.value.value));
        }
    }
    for host in store.server_key_hosts().await.unwrap() {
        for slot in [KeySlot::Current, KeySlot::Next] {
            if let Some(key) = store.server_key(&host, slot).await.unwrap() {
                found.push(format!("{host}/{}={key}", slot.as_str()));
            }
        }
    }
    found
}

/// What `otto-server secrets rotate-key` does to the files once the values are sealed again.
fn switch(dir: &Path) {
    let key = dir.join(KEY_FILE);
    std::fs::rename(&key, dir.join(format!("{KEY_FILE}.old"))).unwrap();
    std::fs::rename(dir.join(format!("{KEY_FILE}.next")), &key).unwrap();
}

async fn rotation(held: &Held, store: &Store, variables: bool) {
    let dir = held.dir();
    if variables {
        store
            .set_env(&Scope::Global, "TOKEN", "hunter2", true)
            .await
            .unwrap();
        store
            .set_env(&Scope::Global, "PLAIN", "visible", false)
            .await
            .unwrap();
    }
    store
        .put_server_key("r1", KeySlot::Current, "key of r1")
        .await
        .unwrap();
    store
        .put_server_key("r1", KeySlot::Next, "next key of r1")
        .await
        .unwrap();
    let hook = store
        .add_webhook(
            "http://127.0.0.1:9/",
            &[WebhookEvent::KeyPending],
            "hook secret",
        )
        .await
        .unwrap();
    let before = readable(store, variables).await;
    let old_key = std::fs::read(dir.join(KEY_FILE)).unwrap();

    // A new key beside the old: both files there, everything still opens.
    let next = dir.join(format!("{KEY_FILE}.next"));
    secrets::new_key_file(&next).unwrap();
    assert!(secrets::new_key_file(&next).is_err(), "never replaced");
    assert_eq!(readable(store, variables).await, before);

    // Sealed again with the next key, in one go; the key itself no longer opens them, the
    // next one does.
    let resealed = store.reseal(&Reseal::AllWith(next.clone())).await.unwrap();
    assert_eq!(
        resealed,
        Resealed {
            variables: usize::from(variables),
            server_keys: 2,
            webhooks: 1,
        }
    );
    assert_eq!(readable(store, variables).await, before);

    // A server that has not switched yet seals with the old key meanwhile.
    let mut after = before.clone();
    if variables {
        store
            .set_env(&Scope::Global, "LATE", "sealed with the old key", true)
            .await
            .unwrap();
        after = readable(store, variables).await;
    }
    store
        .put_server_key("r2", KeySlot::Current, "key of r2")
        .await
        .unwrap();
    after.push("r2/current=key of r2".into());
    assert_eq!(readable(store, variables).await, after);

    // Switched: the new key is secrets.key, the old one secrets.key.old; all still opens.
    switch(dir);
    assert_ne!(std::fs::read(dir.join(KEY_FILE)).unwrap(), old_key);
    assert_eq!(readable(store, variables).await, after);

    // Only what the old key sealed is sealed again.
    let resealed = store.reseal(&Reseal::Stale).await.unwrap();
    assert_eq!(
        resealed,
        Resealed {
            variables: usize::from(variables),
            server_keys: 1,
            webhooks: 0,
        }
    );
    // The webhook's secret, sealed with the new key, still signs.
    let delivery = NewDelivery {
        webhook: hook.id,
        event: 1,
        kind: WebhookEvent::KeyPending,
        body: "{}".into(),
    };
    store.queue_deliveries(&[delivery], 1).await.unwrap();
    let due = store.claim_deliveries(now_ms(), 1000, 1).await.unwrap();
    assert_eq!(due[0].secret, "hook secret");
    assert_eq!(
        store.reseal(&Reseal::Stale).await.unwrap(),
        Resealed::default()
    );

    // Without the old key, everything opens with the new one alone.
    std::fs::remove_file(dir.join(format!("{KEY_FILE}.old"))).unwrap();
    assert_eq!(readable(store, variables).await, after);
    // And without any key, nothing opens.
    std::fs::remove_file(dir.join(KEY_FILE)).unwrap();
    assert!(matches!(
        store.server_key("r1", KeySlot::Current).await,
        Err(StoreError::Secret(secrets::SecretError::Missing(_)))
    ));
}
