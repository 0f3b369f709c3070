//! Users' browser sessions. Their ids come from the table's identity, so a session's id is
//! never one used before, whichever server signed it in.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;

use super::{Postgres, corrupt, exists, users};
use crate::model::{NewSession, Session, User, now_ms};
use crate::store::{Result, SessionStore};

/// Stores a session, after forgetting those expired; returns its id.
pub async fn add_session(db: &impl GenericClient, session: &NewSession) -> Result<i64> {
    users::user(db, &session.user).await?;
    db.execute("DELETE FROM sessions WHERE expires <= $1", &[&now_ms()])
        .await?;
    let row = db
        .query_one(
            r#"INSERT INTO sessions ("user", hash, csrf_hash, created, expires)
               VALUES ($1, $2, $3, $4, $5) RETURNING id"#,
            &[
                &session.user,
                &session.hash,
                &session.csrf_hash,
                &now_ms(),
                &session.expires,
            ],
        )
        .await
        .map_err(exists("session", "with this token"))?;
    Ok(row.get(0))
}

/// The session of `hash`, with its user.
pub async fn session_by_hash(
    db: &impl GenericClient,
    hash: &str,
) -> Result<Option<(Session, User)>> {
    let row = db
        .query_opt(
            r#"SELECT s.id, s."user", s.csrf_hash, s.expires,
                      u.name, u.permissions, u.disabled, u.created
               FROM sessions s JOIN users u ON u.name = s."user" WHERE s.hash = $1"#,
            &[&hash],
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let session = Session {
        id: row.get(0),
        user: row.get(1),
        csrf_hash: row.get(2),
        expires: row.get(3),
    };
    Ok(Some((session, users::user_row(&row, 4)?)))
}

/// Ends `user`'s sessions but `except`; how many ended.
pub async fn end_sessions(
    db: &impl GenericClient,
    user: &str,
    except: Option<i64>,
) -> Result<usize> {
    let ended = db
        .execute(
            r#"DELETE FROM sessions WHERE "user" = $1 AND ($2::BIGINT IS NULL OR id <> $2)"#,
            &[&user, &except],
        )
        .await?;
    usize::try_from(ended).map_err(|_| corrupt("number of sessions", ended))
}

/// Ends one session (none: nothing to do).
pub async fn end_session(db: &impl GenericClient, id: i64) -> Result<()> {
    db.execute("DELETE FROM sessions WHERE id = $1", &[&id])
        .await?;
    Ok(())
}

#[async_trait]
impl SessionStore for Postgres {
    async fn add_session(&self, session: &NewSession) -> Result<i64> {
        add_session(&self.client().await?, session).await
    }

    async fn session_by_hash(&self, hash: &str) -> Result<Option<(Session, User)>> {
        session_by_hash(&self.client().await?, hash).await
    }

    async fn end_sessions(&self, user: &str, except: Option<i64>) -> Result<usize> {
        end_sessions(&self.client().await?, user, except).await
    }

    async fn end_session(&self, id: i64) -> Result<()> {
        end_session(&self.client().await?, id).await
    }
}
