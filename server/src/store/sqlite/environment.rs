//! Environment variables.

use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{Connection, params};

use super::{Sqlite, groups, hosts, scripts};
use crate::model::{EnvVar, Scope, Secretish};
use crate::store::secrets::{Keyring, variable_label as label};
use crate::store::{EnvStore, Result, StoreError};

/// Encrypts the secrets an older version stored in plain text (none: nothing is read), in one
/// transaction.
pub(super) fn seal_plain_secrets(db: &Connection, keys: &Keyring) -> Result<()> {
    let tx = db.unchecked_transaction()?;
    let plain = variables_where(&tx, "secret AND NOT sealed")?;
    if plain.is_empty() {
        return Ok(());
    }
    for (scope, owner, name, value) in plain {
        let sealed = keys.seal(&label(&scope, &owner, &name), &value)?;
        tx.execute(
            "UPDATE env SET value = ?4, sealed = 1 WHERE scope = ?1 AND owner = ?2 AND name = ?3",
            params![scope, owner, name, sealed],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// The scope, owner, name and stored value of each variable `filter` (SQL over `env`'s
/// columns) selects.
pub(super) fn variables_where(
    db: &Connection,
    filter: &str,
) -> Result<Vec<(String, String, String, String)>> {
    Ok(db
        .prepare(&format!(
            "SELECT scope, owner, name, value FROM env WHERE {filter}"
        ))?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Deletes row `name` of `table` with the variables of its scope (`what`), in one
/// transaction.
pub(super) fn remove_with_env(
    db: &Connection,
    table: &str,
    what: &'static str,
    name: &str,
) -> Result<()> {
    let tx = db.unchecked_transaction()?;
    if tx.execute(&format!("DELETE FROM {table} WHERE name = ?1"), [name])? == 0 {
        return Err(StoreError::NotFound(what, name.into()));
    }
    tx.execute(
        "DELETE FROM env WHERE scope = ?1 AND owner = ?2",
        [what, name],
    )?;
    tx.commit()?;
    // The plain values are still in the write-ahead log until it is copied back and emptied.
    db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(())
}

/// Sets a variable (replacing one of the same scope and name); a secret is stored encrypted.
pub fn set_env(
    db: &Connection,
    keys: &Keyring,
    scope: &Scope,
    name: &str,
    value: &str,
    secret: bool,
) -> Result<()> {
    match scope {
        Scope::Global => {}
        Scope::Group(g) => groups::group_exists(db, g)?,
        Scope::Host(h) => drop(hosts::host(db, h)?),
        Scope::Script(s) => drop(scripts::script(db, s)?),
    }
    let (scope, owner) = scope.parts();
    let value = if secret {
        keys.seal(&label(scope, owner, name), value)?
    } else {
        value.to_owned()
    };
    db.execute(
        "INSERT OR REPLACE INTO env (scope, owner, name, value, secret, sealed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![scope, owner, name, value, secret],
    )?;
    Ok(())
}

/// Removes a variable.
pub fn unset_env(db: &Connection, scope: &Scope, name: &str) -> Result<()> {
    let (kind, owner) = scope.parts();
    if db.execute(
        "DELETE FROM env WHERE scope = ?1 AND owner = ?2 AND name = ?3",
        params![kind, owner, name],
    )? == 0
    {
        return Err(StoreError::NotFound(
            "variable",
            format!("{name} ({scope})"),
        ));
    }
    Ok(())
}

/// Variables of one scope, or all, by scope and name; secrets decrypted.
pub fn env(db: &Connection, keys: &Keyring, scope: Option<&Scope>) -> Result<Vec<EnvVar>> {
    let (kind, owner) = scope.map(Scope::parts).unzip();
    let mut stmt = db.prepare(
        "SELECT scope, owner, name, value, secret, sealed FROM env
         WHERE (?1 IS NULL OR scope = ?1) AND (?2 IS NULL OR owner = ?2)
         ORDER BY CASE scope WHEN 'global' THEN 0 WHEN 'script' THEN 1 WHEN 'group' THEN 2 ELSE 3 END,
                  owner, name",
    )?;
    let rows = stmt
        .query_map(params![kind, owner], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, bool>(4)?,
                r.get::<_, bool>(5)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(scope, owner, name, value, secret, sealed)| {
            let value = if sealed {
                keys.open(&label(&scope, &owner, &name), &value)?
            } else {
                value
            };
            Ok(EnvVar {
                value: Secretish { value, secret },
                scope: Scope::from_parts(&scope, owner)
                    .ok_or_else(|| StoreError::Corrupt("environment scope", scope.clone()))?,
                name,
            })
        })
        .collect()
}

#[async_trait]
impl EnvStore for Sqlite {
    async fn set_env(&self, scope: &Scope, name: &str, value: &str, secret: bool) -> Result<()> {
        let (scope, name, value) = (scope.clone(), name.to_owned(), value.to_owned());
        let keys = Arc::clone(&self.keys);
        self.call(move |db| set_env(db, &keys, &scope, &name, &value, secret))
            .await
    }

    async fn unset_env(&self, scope: &Scope, name: &str) -> Result<()> {
        let (scope, name) = (scope.clone(), name.to_owned());
        self.call(move |db| unset_env(db, &scope, &name)).await
    }

    async fn env(&self, scope: Option<&Scope>) -> Result<Vec<EnvVar>> {
        let scope = scope.cloned();
        let keys = Arc::clone(&self.keys);
        self.read(move |db| env(db, &keys, scope.as_ref())).await
    }
}
