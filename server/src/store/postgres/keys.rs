//! The hosts' server keys, sealed with the data directory's key, and the re-sealing of every
//! sealed value (secret variables and server keys) when that key changes.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;

use super::Postgres;
use crate::store::secrets::{Keyring, server_key_label, variable_label, webhook_label};
use crate::store::{KeySlot, KeyStore, Reseal, Resealed, Result, StoreError};

/// Stores `key` as the server key of `host` in `slot`, sealed.
pub async fn put_server_key(
    db: &impl GenericClient,
    keys: &Keyring,
    host: &str,
    slot: KeySlot,
    key: &str,
) -> Result<()> {
    let sealed = keys.seal(&server_key_label(host, slot.as_str()), key)?;
    db.execute(
        "INSERT INTO server_keys (host, slot, sealed) VALUES ($1, $2, $3)
         ON CONFLICT (host, slot) DO UPDATE SET sealed = excluded.sealed",
        &[&host, &slot.as_str(), &sealed],
    )
    .await?;
    Ok(())
}

/// The server key of `host` in `slot`, opened; with `lock`, its row is locked until the
/// transaction ends.
pub async fn server_key(
    db: &impl GenericClient,
    keys: &Keyring,
    host: &str,
    slot: KeySlot,
    lock: bool,
) -> Result<Option<String>> {
    let sql = if lock {
        "SELECT sealed FROM server_keys WHERE host = $1 AND slot = $2 FOR UPDATE"
    } else {
        "SELECT sealed FROM server_keys WHERE host = $1 AND slot = $2"
    };
    let Some(row) = db.query_opt(sql, &[&host, &slot.as_str()]).await? else {
        return Ok(None);
    };
    let sealed: String = row.try_get(0)?;
    Ok(Some(
        keys.open(&server_key_label(host, slot.as_str()), &sealed)?,
    ))
}

/// Makes the `next` key of `host` its `current` one, sealed again for its new slot, in one
/// transaction (the `next` row locked, so two servers promoting at once do it once).
pub async fn promote_server_key(db: &Postgres, host: &str) -> Result<()> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    let key = server_key(&tx, &db.keys, host, KeySlot::Next, true)
        .await?
        .ok_or_else(|| StoreError::NotFound("next server key of host", host.into()))?;
    put_server_key(&tx, &db.keys, host, KeySlot::Current, &key).await?;
    tx.execute(
        "DELETE FROM server_keys WHERE host = $1 AND slot = 'next'",
        &[&host],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Removes the server key of `host` in `slot`, or both.
pub async fn remove_server_key(
    db: &impl GenericClient,
    host: &str,
    slot: Option<KeySlot>,
) -> Result<()> {
    db.execute(
        "DELETE FROM server_keys WHERE host = $1 AND ($2::TEXT IS NULL OR slot = $2)",
        &[&host, &slot.map(KeySlot::as_str)],
    )
    .await?;
    Ok(())
}

/// The hosts with a server key, by name.
pub async fn server_key_hosts(db: &impl GenericClient) -> Result<Vec<String>> {
    db.query("SELECT DISTINCT host FROM server_keys ORDER BY host", &[])
        .await?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
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

/// Seals again the secret variables and server keys `what` says, in one transaction with
/// their rows locked (a server writing one meanwhile waits); nothing is changed if any value
/// does not open.
pub async fn reseal(db: &Postgres, what: &Reseal) -> Result<Resealed> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    let mut done = Resealed::default();
    let variables = tx
        .query(
            "SELECT scope, owner, name, value FROM env WHERE sealed FOR UPDATE",
            &[],
        )
        .await?;
    for row in variables {
        let (scope, owner, name, value): (String, String, String, String) = (
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
        );
        let label = variable_label(&scope, &owner, &name);
        if let Some(sealed) = resealed(&db.keys, what, &label, &value)? {
            tx.execute(
                "UPDATE env SET value = $4 WHERE scope = $1 AND owner = $2 AND name = $3",
                &[&scope, &owner, &name, &sealed],
            )
            .await?;
            done.variables += 1;
        }
    }
    let server_keys = tx
        .query("SELECT host, slot, sealed FROM server_keys FOR UPDATE", &[])
        .await?;
    for row in server_keys {
        let (host, slot, value): (String, String, String) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        if let Some(sealed) = resealed(&db.keys, what, &server_key_label(&host, &slot), &value)? {
            tx.execute(
                "UPDATE server_keys SET sealed = $3 WHERE host = $1 AND slot = $2",
                &[&host, &slot, &sealed],
            )
            .await?;
            done.server_keys += 1;
        }
    }
    let webhooks = tx
        .query("SELECT id, secret FROM webhooks FOR UPDATE", &[])
        .await?;
    for row in webhooks {
        let (id, value): (i64, String) = (row.try_get(0)?, row.try_get(1)?);
        if let Some(sealed) = resealed(&db.keys, what, &webhook_label(id), &value)? {
            tx.execute(
                "UPDATE webhooks SET secret = $2 WHERE id = $1",
                &[&id, &sealed],
            )
            .await?;
            done.webhooks += 1;
        }
    }
    tx.commit().await?;
    Ok(done)
}

#[async_trait]
impl KeyStore for Postgres {
    async fn put_server_key(&self, host: &str, slot: KeySlot, key: &str) -> Result<()> {
        put_server_key(&self.client().await?, &self.keys, host, slot, key).await
    }

    async fn server_key(&self, host: &str, slot: KeySlot) -> Result<Option<String>> {
        server_key(&self.client().await?, &self.keys, host, slot, false).await
    }

    async fn promote_server_key(&self, host: &str) -> Result<()> {
        promote_server_key(self, host).await
    }

    async fn remove_server_key(&self, host: &str, slot: Option<KeySlot>) -> Result<()> {
        remove_server_key(&self.client().await?, host, slot).await
    }

    async fn server_key_hosts(&self) -> Result<Vec<String>> {
        server_key_hosts(&self.client().await?).await
    }

    async fn reseal(&self, what: &Reseal) -> Result<Resealed> {
        reseal(self, what).await
    }
}
