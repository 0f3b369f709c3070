//! Users' browser sessions.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::{Sqlite, exists, users};
use crate::model::{NewSession, Session, User, now_ms};
use crate::store::{Result, SessionStore};

/// Stores a session, after forgetting those expired; returns its id.
pub fn add_session(db: &Connection, session: &NewSession) -> Result<i64> {
    users::user(db, &session.user)?;
    db.execute("DELETE FROM sessions WHERE expires <= ?1", [now_ms()])?;
    db.execute(
        "INSERT INTO sessions (user, hash, csrf_hash, created, expires)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            session.user,
            session.hash,
            session.csrf_hash,
            now_ms(),
            session.expires
        ],
    )
    .map_err(exists("session", "with this token"))?;
    Ok(db.last_insert_rowid())
}

/// The session of `hash`, with its user.
pub fn session_by_hash(db: &Connection, hash: &str) -> Result<Option<(Session, User)>> {
    let row = db
        .query_row(
            "SELECT id, user, csrf_hash, expires FROM sessions WHERE hash = ?1",
            [hash],
            |r| {
                Ok(Session {
                    id: r.get(0)?,
                    user: r.get(1)?,
                    csrf_hash: r.get(2)?,
                    expires: r.get(3)?,
                })
            },
        )
        .optional()?;
    match row {
        Some(session) => {
            let owner = users::user(db, &session.user)?;
            Ok(Some((session, owner)))
        }
        None => Ok(None),
    }
}

/// Ends `user`'s sessions but `except`.
pub fn end_sessions(db: &Connection, user: &str, except: Option<i64>) -> Result<usize> {
    Ok(db.execute(
        "DELETE FROM sessions WHERE user = ?1 AND (?2 IS NULL OR id != ?2)",
        params![user, except],
    )?)
}

#[async_trait]
impl SessionStore for Sqlite {
    async fn add_session(&self, session: &NewSession) -> Result<i64> {
        let session = session.clone();
        self.call(move |db| add_session(db, &session)).await
    }

    async fn session_by_hash(&self, hash: &str) -> Result<Option<(Session, User)>> {
        let hash = hash.to_owned();
        self.read(move |db| session_by_hash(db, &hash)).await
    }

    async fn end_sessions(&self, user: &str, except: Option<i64>) -> Result<usize> {
        let user = user.to_owned();
        self.call(move |db| end_sessions(db, &user, except)).await
    }

    async fn end_session(&self, id: i64) -> Result<()> {
        self.call(move |db| {
            db.execute("DELETE FROM sessions WHERE id = ?1", [id])?;
            Ok(())
        })
        .await
    }
}
