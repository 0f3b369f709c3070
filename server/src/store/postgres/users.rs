//! The API's users and their API keys.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{Postgres, exists};
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

/// The columns of a user, as [`user_row`] reads them.
const USER_COLUMNS: &str = "SELECT name, permissions, disabled, created FROM users";
/// The columns of a key, as [`key_row`] reads them.
const KEY_COLUMNS: &str =
    r#"SELECT id, "user", permissions, created, expires, revoked FROM api_keys"#;

/// A user from the columns `name, permissions, disabled, created` from `at` on.
pub(super) fn user_row(r: &Row, at: usize) -> Result<User> {
    Ok(User {
        name: r.get(at),
        permissions: parse_permissions(r.get(at + 1))?,
        disabled: r.get(at + 2),
        created: r.get(at + 3),
    })
}

/// A key from the columns `id, user, permissions, created, expires, revoked`.
fn key_row(r: &Row) -> Result<ApiKey> {
    Ok(ApiKey {
        id: r.get(0),
        user: r.get(1),
        permissions: parse_permissions(r.get(2))?,
        created: r.get(3),
        expires: r.get(4),
        revoked: r.get(5),
    })
}

/// Adds a user.
pub async fn add_user(db: &impl GenericClient, user: &NewUser) -> Result<()> {
    db.execute(
        "INSERT INTO users (name, password_hash, permissions, created) VALUES ($1, $2, $3, $4)",
        &[
            &user.name,
            &user.password_hash,
            &permissions_text(&user.permissions)?,
            &now_ms(),
        ],
    )
    .await
    .map_err(exists("user", &user.name))?;
    Ok(())
}

/// One user.
pub async fn user(db: &impl GenericClient, name: &str) -> Result<User> {
    let row = db
        .query_opt(&format!("{USER_COLUMNS} WHERE name = $1"), &[&name])
        .await?
        .ok_or_else(|| StoreError::NotFound("user", name.into()))?;
    user_row(&row, 0)
}

/// Every user, by name.
pub async fn users(db: &impl GenericClient) -> Result<Vec<User>> {
    db.query(&format!("{USER_COLUMNS} ORDER BY name"), &[])
        .await?
        .iter()
        .map(|r| user_row(r, 0))
        .collect()
}

/// A user's password hash.
pub async fn password_hash(db: &impl GenericClient, name: &str) -> Result<String> {
    db.query_opt("SELECT password_hash FROM users WHERE name = $1", &[&name])
        .await?
        .map(|r| r.get(0))
        .ok_or_else(|| StoreError::NotFound("user", name.into()))
}

/// Sets one column of a user (`sql` takes the value as `$1`, the name as `$2`); `NotFound` if
/// there is no such user.
async fn update_user(
    db: &impl GenericClient,
    name: &str,
    sql: &str,
    value: &(dyn ToSql + Sync),
) -> Result<()> {
    match db.execute(sql, &[value, &name]).await? {
        0 => Err(StoreError::NotFound("user", name.into())),
        _ => Ok(()),
    }
}

/// Adds an API key; returns its id.
pub async fn add_api_key(db: &impl GenericClient, key: &NewApiKey) -> Result<i64> {
    user(db, &key.user).await?;
    let row = db
        .query_one(
            r#"INSERT INTO api_keys ("user", hash, permissions, created, expires)
               VALUES ($1, $2, $3, $4, $5) RETURNING id"#,
            &[
                &key.user,
                &key.hash,
                &permissions_text(&key.permissions)?,
                &now_ms(),
                &key.expires,
            ],
        )
        .await
        .map_err(exists("API key", "with this secret"))?;
    Ok(row.get(0))
}

/// The keys of one user, or all, by id.
pub async fn api_keys(db: &impl GenericClient, user: Option<&str>) -> Result<Vec<ApiKey>> {
    db.query(
        &format!(r#"{KEY_COLUMNS} WHERE $1::TEXT IS NULL OR "user" = $1 ORDER BY id"#),
        &[&user],
    )
    .await?
    .iter()
    .map(key_row)
    .collect()
}

/// Revokes a key from now, in one statement; None if it was revoked already (and stays as it
/// was).
pub async fn revoke_api_key(db: &impl GenericClient, id: i64) -> Result<Option<ApiKey>> {
    let revoked = db
        .query_opt(
            r#"UPDATE api_keys SET revoked = $1 WHERE id = $2 AND revoked IS NULL
               RETURNING id, "user", permissions, created, expires, revoked"#,
            &[&now_ms(), &id],
        )
        .await?;
    if let Some(row) = revoked {
        return key_row(&row).map(Some);
    }
    let known = db
        .query_opt("SELECT 1 FROM api_keys WHERE id = $1", &[&id])
        .await?;
    match known {
        Some(_) => Ok(None),
        None => Err(StoreError::NotFound("API key", id.to_string())),
    }
}

/// The key of `hash`, with its user.
pub async fn api_key_by_hash(
    db: &impl GenericClient,
    hash: &str,
) -> Result<Option<(ApiKey, User)>> {
    let row = db
        .query_opt(
            r#"SELECT k.id, k."user", k.permissions, k.created, k.expires, k.revoked,
                      u.name, u.permissions, u.disabled, u.created
               FROM api_keys k JOIN users u ON u.name = k."user" WHERE k.hash = $1"#,
            &[&hash],
        )
        .await?;
    match row {
        Some(row) => Ok(Some((key_row(&row)?, user_row(&row, 6)?))),
        None => Ok(None),
    }
}

#[async_trait]
impl UserStore for Postgres {
    async fn add_user(&self, new: &NewUser) -> Result<()> {
        add_user(&self.client().await?, new).await
    }

    async fn user(&self, name: &str) -> Result<User> {
        user(&self.client().await?, name).await
    }

    async fn users(&self) -> Result<Vec<User>> {
        users(&self.client().await?).await
    }

    async fn password_hash(&self, name: &str) -> Result<String> {
        password_hash(&self.client().await?, name).await
    }

    async fn set_password(&self, name: &str, hash: &str) -> Result<()> {
        let sql = "UPDATE users SET password_hash = $1 WHERE name = $2";
        update_user(&self.client().await?, name, sql, &hash).await
    }

    async fn set_disabled(&self, name: &str, disabled: bool) -> Result<()> {
        let sql = "UPDATE users SET disabled = $1 WHERE name = $2";
        update_user(&self.client().await?, name, sql, &disabled).await
    }

    async fn add_api_key(&self, key: &NewApiKey) -> Result<i64> {
        add_api_key(&self.client().await?, key).await
    }

    async fn api_keys(&self, user: Option<&str>) -> Result<Vec<ApiKey>> {
        api_keys(&self.client().await?, user).await
    }

    async fn revoke_api_key(&self, id: i64) -> Result<Option<ApiKey>> {
        revoke_api_key(&self.client().await?, id).await
    }

    async fn api_key_by_hash(&self, hash: &str) -> Result<Option<(ApiKey, User)>> {
        api_key_by_hash(&self.client().await?, hash).await
    }

    async fn set_permissions(&self, name: &str, permissions: &Permissions) -> Result<()> {
        let text = permissions_text(permissions)?;
        let sql = "UPDATE users SET permissions = $1 WHERE name = $2";
        update_user(&self.client().await?, name, sql, &text).await
    }
}
