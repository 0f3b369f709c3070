//! The hosts' server keys, sealed with the data directory's key, and the re-sealing of every
//! sealed value (secret variables and server keys) when that key changes.

use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::Sqlite;
use crate::store::secrets::{Keyring, server_key_label, variable_label, webhook_label};
use crate::store::{KeySlot, KeyStore, Reseal, Resealed, Result, StoreError};

/// Stores `key` as the server key of `host` in `slot`, sealed.
pub fn put_server_key(
    db: &Connection,
    keys: &Keyring,
    host: &str,
    slot: KeySlot,
    key: &str,
) -> Result<()> {
    let sealed = keys.seal(&server_key_label(host, slot.as_str()), key)?;
    db.execute(
        "INSERT INTO server_keys (host, slot, sealed) VALUES (?1, ?2, ?3)
         ON CONFLICT (host, slot) DO UPDATE SET sealed = excluded.sealed",
        params![host, slot.as_str(), sealed],
    )?;
    Ok(())
}

/// The server key of `host` in `slot`, opened.
pub fn server_key(
    db: &Connection,
    keys: &Keyring,
    host: &str,
    slot: KeySlot,
) -> Result<Option<String>> {
    let sealed: Option<String> = db
        .query_row(
            "SELECT sealed FROM server_keys WHERE host = ?1 AND slot = ?2",
            params![host, slot.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    sealed
        .map(|sealed| Ok(keys.open(&server_key_label(host, slot.as_str()), &sealed)?))
        .transpose()
}

/// Makes the `next` key of `host` its `current` one, sealed again for its new slot, in one
/// transaction.
pub fn promote_server_key(db: &Connection, keys: &Keyring, host: &str) -> Result<()> {
    let tx = Transaction::new_unchecked(db, TransactionBehavior::Immediate)?;
    let key = server_key(&tx, keys, host, KeySlot::Next)?
        .ok_or_else(|| StoreError::NotFound("next server key of host", host.into()))?;
    put_server_key(&tx, keys, host, KeySlot::Current, &key)?;
    tx.execute(
        "DELETE FROM server_keys WHERE host = ?1 AND slot = 'next'",
        [host],
    )?;
    tx.commit()?;
    Ok(())
}

/// Removes the server key of `host` in `slot`, or both.
pub fn remove_server_key(db: &Connection, host: &str, slot: Option<KeySlot>) -> Result<()> {
    db.execute(
        "DELETE FROM server_keys WHERE host = ?1 AND (?2 IS NULL OR slot = ?2)",
        params![host, slot.map(KeySlot::as_str)],
    )?;
    Ok(())
}

/// The hosts with a server key, by name.
pub fn server_key_hosts(db: &Connection) -> Result<Vec<String>> {
    Ok(db
        .prepare("SELECT DISTINCT host FROM server_keys ORDER BY host")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}

/// The value sealed for `label`, sealed again as `what` says; None when it is to stay.
fn resealed(keys: &Keyring, what: &Reseal, label: &str, sealed: &str) -> Result<Option<String>> {
    match what {
        Reseal::Stale if keys.opens_with_key(label, sealed)? => Ok(None),
        Reseal::Stale => Ok(Some(keys.seal(label, &keys.open(label, sealed)?)?)),
        Reseal::AllWith(path) => {
            let plain = keys.open(label, sealed)?;
            Ok(Some(Keyring::only(path.clone()).seal(label, &plain)?))
        }
    }
}

/// Seals again the secret variables, server keys and webhooks' secrets `what` says, in one transaction; nothing
/// is changed if any value does not open.
pub fn reseal(db: &Connection, keys: &Keyring, what: &Reseal) -> Result<Resealed> {
    let tx = Transaction::new_unchecked(db, TransactionBehavior::Immediate)?;
    let mut done = Resealed::default();
    let variables = super::environment::variables_where(&tx, "sealed")?;
    for (scope, owner, name, value) in variables {
        if let Some(sealed) = resealed(keys, what, &variable_label(&scope, &owner, &name), &value)?
        {
            tx.execute(
                "UPDATE env SET value = ?4 WHERE scope = ?1 AND owner = ?2 AND name = ?3",
                params![scope, owner, name, sealed],
            )?;
            done.variables += 1;
        }
    }
    let server_keys = tx
        .prepare("SELECT host, slot, sealed FROM server_keys")?
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (host, slot, value) in server_keys {
        if let Some(sealed) = resealed(keys, what, &server_key_label(&host, &slot), &value)? {
            tx.execute(
                "UPDATE server_keys SET sealed = ?3 WHERE host = ?1 AND slot = ?2",
                params![host, slot, sealed],
            )?;
            done.server_keys += 1;
        }
    }
    let webhooks = tx
        .prepare("SELECT id, secret FROM webhooks")?
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (id, value) in webhooks {
        if let Some(sealed) = resealed(keys, what, &webhook_label(id), &value)? {
            tx.execute(
                "UPDATE webhooks SET secret = ?2 WHERE id = ?1",
                params![id, sealed],
            )?;
            done.webhooks += 1;
        }
    }
    tx.commit()?;
    // What the values were sealed with before is still in the write-ahead log until it is
    // copied back and emptied.
    db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(done)
}

#[async_trait]
impl KeyStore for Sqlite {
    async fn put_server_key(&self, host: &str, slot: KeySlot, key: &str) -> Result<()> {
        let (host, key) = (host.to_owned(), key.to_owned());
        let keys = Arc::clone(&self.keys);
        self.call(move |db| put_server_key(db, &keys, &host, slot, &key))
            .await
    }

    async fn server_key(&self, host: &str, slot: KeySlot) -> Result<Option<String>> {
        let host = host.to_owned();
        let keys = Arc::clone(&self.keys);
        self.read(move |db| server_key(db, &keys, &host, slot))
            .await
    }

    async fn promote_server_key(&self, host: &str) -> Result<()> {
        let host = host.to_owned();
        let keys = Arc::clone(&self.keys);
        self.call(move |db| promote_server_key(db, &keys, &host))
            .await
    }

    async fn remove_server_key(&self, host: &str, slot: Option<KeySlot>) -> Result<()> {
        let host = host.to_owned();
        self.call(move |db| remove_server_key(db, &host, slot))
            .await
    }

    async fn server_key_hosts(&self) -> Result<Vec<String>> {
        self.read(server_key_hosts).await
    }

    async fn reseal(&self, what: &Reseal) -> Result<Resealed> {
        let what = what.clone();
        let keys = Arc::clone(&self.keys);
        self.call(move |db| reseal(db, &keys, &what)).await
    }
}
