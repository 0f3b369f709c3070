//! The API's users and their API keys.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Sqlite, exists};
use crate::model::{ApiKey, NewApiKey, NewUser, Permissions, User, now_ms};
use crate::store::{Result, StoreError, UserStore};

/// Permissions as stored: JSON.
fn permissions_text(p: &Permissions) -> Result<String> {
    serde_json::to_string(p).map_err(|e| StoreError::Corrupt("permissions", e.to_string()))
}

/// Stored permissions, read back.
fn parse_permissions(text: &str) -> Result<Permissions> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt("permissions", e.to_string()))
}

/// A user row (`name, permissions, disabled, created`), its permissions still as text.
fn user_row(r: &Row<'_>) -> rusqlite::Result<(User, String)> {
    Ok((
        User {
            name: r.get(0)?,
            permissions: Permissions::default(),
            disabled: r.get(2)?,
            created: r.get(3)?,
        },
        r.get(1)?,
    ))
}

/// A key row (`id, user, permissions, created, expires, revoked`), its permissions as text.
fn key_row(r: &Row<'_>) -> rusqlite::Result<(ApiKey, String)> {
    Ok((
        ApiKey {
            id: r.get(0)?,
            user: r.get(1)?,
            permissions: Permissions::default(),
            created: r.get(3)?,
            expires: r.get(4)?,
            revoked: r.get(5)?,
        },
        r.get(2)?,
    ))
}

fn finish_user((mut user, permissions): (User, String)) -> Result<User> {
    user.permissions = parse_permissions(&permissions)?;
    Ok(user)
}

fn finish_key((mut key, permissions): (ApiKey, String)) -> Result<ApiKey> {
    key.permissions = parse_permissions(&permissions)?;
    Ok(key)
}

const USER_COLUMNS: &str = "SELECT name, permissions, disabled, created FROM users";
const KEY_COLUMNS: &str = "SELECT id, user, permissions, created, expires, revoked FROM api_keys";

/// Adds a user.
pub fn add_user(db: &Connection, user: &NewUser) -> Result<()> {
    db.execute(
        "INSERT INTO users (name, password_hash, permissions, created) VALUES (?1, ?2, ?3, ?4)",
        params![
            user.name,
            user.password_hash,
            permissions_text(&user.permissions)?,
            now_ms()
        ],
    )
    .map_err(exists("user", &user.name))?;
    Ok(())
}

/// One user.
pub fn user(db: &Connection, name: &str) -> Result<User> {
    let row = db
        .query_row(&format!("{USER_COLUMNS} WHERE name = ?1"), [name], user_row)
        .optional()?
        .ok_or_else(|| StoreError::NotFound("user", name.into()))?;
    finish_user(row)
}

/// Every user, by name.
pub fn users(db: &Connection) -> Result<Vec<User>> {
    let mut stmt = db.prepare(&format!("{USER_COLUMNS} ORDER BY name"))?;
    let rows = stmt
        .query_map([], user_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(finish_user).collect()
}

/// A user's password hash.
pub fn password_hash(db: &Connection, name: &str) -> Result<String> {
    db.query_row(
        "SELECT password_hash FROM users WHERE name = ?1",
        [name],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound("user", name.into()))
}

/// Sets one column of a user; `NotFound` if there is no such user.
fn update_user(db: &Connection, name: &str, sql: &str, value: &dyn rusqlite::ToSql) -> Result<()> {
    match db.execute(sql, params![value, name])? {
        0 => Err(StoreError::NotFound("user", name.into())),
        _ => Ok(()),
    }
}

/// Adds an API key; returns its id.
pub fn add_api_key(db: &Connection, key: &NewApiKey) -> Result<i64> {
    user(db, &key.user)?;
    db.execute(
        "INSERT INTO api_keys (user, hash, permissions, created, expires)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            key.user,
            key.hash,
            permissions_text(&key.permissions)?,
            now_ms(),
            key.expires
        ],
    )
    .map_err(exists("API key", "with this secret"))?;
    Ok(db.last_insert_rowid())
}

/// The keys of one user, or all, by id.
pub fn api_keys(db: &Connection, user: Option<&str>) -> Result<Vec<ApiKey>> {
    let mut stmt = db.prepare(&format!(
        "{KEY_COLUMNS} WHERE ?1 IS NULL OR user = ?1 ORDER BY id"
    ))?;
    let rows = stmt
        .query_map([user], key_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(finish_key).collect()
}

/// One key by id.
fn api_key(db: &Connection, id: i64) -> Result<ApiKey> {
    let row = db
        .query_row(&format!("{KEY_COLUMNS} WHERE id = ?1"), [id], key_row)
        .optional()?
        .ok_or_else(|| StoreError::NotFound("API key", id.to_string()))?;
    finish_key(row)
}

/// Revokes a key from now; None if it was revoked already (and stays as it was).
pub fn revoke_api_key(db: &Connection, id: i64) -> Result<Option<ApiKey>> {
    api_key(db, id)?;
    let changed = db.execute(
        "UPDATE api_keys SET revoked = ?1 WHERE id = ?2 AND revoked IS NULL",
        params![now_ms(), id],
    )?;
    if changed == 0 {
        return Ok(None);
    }
    api_key(db, id).map(Some)
}

/// The key of `hash`, with its user.
pub fn api_key_by_hash(db: &Connection, hash: &str) -> Result<Option<(ApiKey, User)>> {
    let row = db
        .query_row(&format!("{KEY_COLUMNS} WHERE hash = ?1"), [hash], key_row)
        .optional()?;
    match row {
        Some(row) => {
            let key = finish_key(row)?;
            let owner = user(db, &key.user)?;
            Ok(Some((key, owner)))
        }
        None => Ok(None),
    }
}

#[async_trait]
impl UserStore for Sqlite {
    async fn add_user(&self, new: &NewUser) -> Result<()> {
        let new = new.clone();
        self.call(move |db| add_user(db, &new)).await
    }

    async fn user(&self, name: &str) -> Result<User> {
        let name = name.to_owned();
        self.read(move |db| user(db, &name)).await
    }

    async fn users(&self) -> Result<Vec<User>> {
        self.read(users).await
    }

    async fn password_hash(&self, name: &str) -> Result<String> {
        let name = name.to_owned();
        self.read(move |db| password_hash(db, &name)).await
    }

    async fn set_password(&self, name: &str, hash: &str) -> Result<()> {
        let (name, hash) = (name.to_owned(), hash.to_owned());
        self.call(move |db| {
            update_user(
                db,
                &name,
                "UPDATE users SET password_hash = ?1 WHERE name = ?2",
                &hash,
            )
        })
        .await
    }

    async fn set_disabled(&self, name: &str, disabled: bool) -> Result<()> {
        let name = name.to_owned();
        self.call(move |db| {
            update_user(
                db,
                &name,
                "UPDATE users SET disabled = ?1 WHERE name = ?2",
                &disabled,
            )
        })
        .await
    }

    async fn add_api_key(&self, key: &NewApiKey) -> Result<i64> {
        let key = key.clone();
        self.call(move |db| add_api_key(db, &key)).await
    }

    async fn api_keys(&self, user: Option<&str>) -> Result<Vec<ApiKey>> {
        let user = user.map(str::to_owned);
        self.read(move |db| api_keys(db, user.as_deref())).await
    }

    async fn revoke_api_key(&self, id: i64) -> Result<Option<ApiKey>> {
        self.call(move |db| revoke_api_key(db, id)).await
    }

    async fn api_key_by_hash(&self, hash: &str) -> Result<Option<(ApiKey, User)>> {
        let hash = hash.to_owned();
        self.read(move |db| api_key_by_hash(db, &hash)).await
    }

    async fn set_permissions(&self, name: &str, permissions: &Permissions) -> Result<()> {
        let (name, text) = (name.to_owned(), permissions_text(permissions)?);
        self.call(move |db| {
            update_user(
                db,
                &name,
                "UPDATE users SET permissions = ?1 WHERE name = ?2",
                &text,
            )
        })
        .await
    }
}
