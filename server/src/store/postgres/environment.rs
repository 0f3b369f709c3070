//! Environment variables; a secret one is stored sealed with the server's key
//! ([`crate::store::secrets`]), as in the SQLite backend.
//!
//! A variable names its owner (a group, host or script): it is written in a transaction that
//! holds the owner's row against its removal ([`hold`]), and the owner is removed with its
//! variables in one transaction ([`remove_with_env`]), so no variable outlives its owner
//! whatever the servers sharing the database do at once.

use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;

use super::Postgres;
use crate::model::{EnvVar, Scope, Secretish};
use crate::store::secrets::{Keyring, SecretError};
use crate::store::{EnvStore, Result, StoreError};

/// What a sealed value is bound to: the variable's scope, owner and name.
fn label(scope: &str, owner: &str, name: &str) -> String {
    format!("{scope}\0{owner}\0{name}")
}

/// Deletes row `name` of `table` with the variables of its scope (`what`), in one
/// transaction.
pub(super) async fn remove_with_env(
    db: &Postgres,
    table: &str,
    what: &'static str,
    name: &str,
) -> Result<()> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    let deleted = tx
        .execute(&format!("DELETE FROM {table} WHERE name = $1"), &[&name])
        .await?;
    if deleted == 0 {
        return Err(StoreError::NotFound(what, name.into()));
    }
    tx.execute(
        "DELETE FROM env WHERE scope = $1 AND owner = $2",
        &[&what, &name],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Whether row `name` of `table` (a `what`) exists, `NotFound` if not; it is then held (`FOR
/// KEY SHARE`) until the transaction `db` ends: its removal waits, and removes what the
/// transaction wrote for it.
pub(super) async fn hold(
    db: &impl GenericClient,
    table: &str,
    what: &'static str,
    name: &str,
) -> Result<()> {
    db.query_opt(
        &format!("SELECT 1 FROM {table} WHERE name = $1 FOR KEY SHARE"),
        &[&name],
    )
    .await?
    .map(drop)
    .ok_or_else(|| StoreError::NotFound(what, name.into()))
}

/// Runs `work` with the keyring on a blocking thread (it reads the key file).
pub(super) async fn with_keys<T: Send + 'static>(
    keys: &Arc<Keyring>,
    work: impl FnOnce(&Keyring) -> std::result::Result<T, SecretError> + Send + 'static,
) -> Result<T> {
    let keys = Arc::clone(keys);
    tokio::task::spawn_blocking(move || work(&keys))
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
        .map_err(StoreError::from)
}

/// Sets a variable (replacing one of the same scope and name); a secret is stored encrypted.
pub async fn set_env(
    db: &Postgres,
    scope: &Scope,
    name: &str,
    value: &str,
    secret: bool,
) -> Result<()> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    match scope {
        Scope::Global => {}
        Scope::Group(g) => hold(&tx, "groups", "group", g).await?,
        Scope::Host(h) => hold(&tx, "hosts", "host", h).await?,
        Scope::Script(s) => hold(&tx, "scripts", "script", s).await?,
    }
    let (kind, owner) = scope.parts();
    let value = if secret {
        let (label, value) = (label(kind, owner, name), value.to_owned());
        with_keys(&db.keys, move |keys| keys.seal(&label, &value)).await?
    } else {
        value.to_owned()
    };
    tx.execute(
        "INSERT INTO env (scope, owner, name, value, secret, sealed)
         VALUES ($1, $2, $3, $4, $5, $5)
         ON CONFLICT (scope, owner, name) DO UPDATE
             SET value = EXCLUDED.value, secret = EXCLUDED.secret, sealed = EXCLUDED.sealed",
        &[&kind, &owner, &name, &value, &secret],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Removes a variable.
pub async fn unset_env(db: &impl GenericClient, scope: &Scope, name: &str) -> Result<()> {
    let (kind, owner) = scope.parts();
    let deleted = db
        .execute(
            "DELETE FROM env WHERE scope = $1 AND owner = $2 AND name = $3",
            &[&kind, &owner, &name],
        )
        .await?;
    if deleted == 0 {
        return Err(StoreError::NotFound(
            "variable",
            format!("{name} ({scope})"),
        ));
    }
    Ok(())
}

/// Variables of one scope, or all, by scope and name (names in byte order, as in SQLite);
/// secrets decrypted.
pub async fn env(
    db: &impl GenericClient,
    keys: &Arc<Keyring>,
    scope: Option<&Scope>,
) -> Result<Vec<EnvVar>> {
    let (kind, owner) = scope.map(Scope::parts).unzip();
    let rows = db
        .query(
            r#"SELECT scope, owner, name, value, secret, sealed FROM env
               WHERE ($1::TEXT IS NULL OR scope = $1) AND ($2::TEXT IS NULL OR owner = $2)
               ORDER BY CASE scope WHEN 'global' THEN 0 WHEN 'script' THEN 1
                                   WHEN 'group' THEN 2 ELSE 3 END,
                        owner COLLATE "C", name COLLATE "C""#,
            &[&kind, &owner],
        )
        .await?
        .iter()
        .map(|r| {
            let row = (
                r.try_get(0)?,
                r.try_get(1)?,
                r.try_get(2)?,
                r.try_get(3)?,
                r.try_get(4)?,
            );
            Ok((row, r.try_get::<_, bool>(5)?))
        })
        .collect::<Result<Vec<(Row, bool)>>>()?;
    let open: Vec<Row> = if rows.iter().any(|(_, sealed)| *sealed) {
        with_keys(keys, move |keys| {
            rows.into_iter()
                .map(|((scope, owner, name, value, secret), sealed)| {
                    let value = if sealed {
                        keys.open(&label(&scope, &owner, &name), &value)?
                    } else {
                        value
                    };
                    Ok((scope, owner, name, value, secret))
                })
                .collect()
        })
        .await?
    } else {
        rows.into_iter().map(|(row, _)| row).collect()
    };
    open.into_iter().map(env_var).collect()
}

/// A row of `env` whose value is open: scope, owner, name, value, secret.
type Row = (String, String, String, String, bool);

/// The variable of a row.
fn env_var((scope, owner, name, value, secret): Row) -> Result<EnvVar> {
    Ok(EnvVar {
        value: Secretish { value, secret },
        scope: Scope::from_parts(&scope, owner)
            .ok_or_else(|| StoreError::Corrupt("environment scope", scope.clone()))?,
        name,
    })
}

#[async_trait]
impl EnvStore for Postgres {
    async fn set_env(&self, scope: &Scope, name: &str, value: &str, secret: bool) -> Result<()> {
        set_env(self, scope, name, value, secret).await
    }

    async fn unset_env(&self, scope: &Scope, name: &str) -> Result<()> {
        unset_env(&self.client().await?, scope, name).await
    }

    async fn env(&self, scope: Option<&Scope>) -> Result<Vec<EnvVar>> {
        env(&self.client().await?, &self.keys, scope).await
    }
}
