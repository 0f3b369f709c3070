//! The event log.

use async_trait::async_trait;
use rusqlite::{Connection, params};

use super::Sqlite;
use crate::model::{Event, EventKind, now_ms};
use crate::store::{EventStore, Result};

/// Appends an event.
pub fn log(db: &Connection, host: Option<&str>, kind: EventKind, detail: &str) -> Result<()> {
    db.execute(
        "INSERT INTO events (at, host, kind, detail) VALUES (?1, ?2, ?3, ?4)",
        params![now_ms(), host, kind.as_str(), detail],
    )?;
    Ok(())
}

/// The newest `limit` events, oldest first, optionally for one host.
pub fn events(db: &Connection, host: Option<&str>, limit: u32) -> Result<Vec<Event>> {
    let mut stmt = db.prepare(
        "SELECT id, at, host, kind, detail FROM events
         WHERE ?1 IS NULL OR host = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let mut events = stmt
        .query_map(params![host, limit], |r| {
            Ok(Event {
                id: r.get(0)?,
                at: r.get(1)?,
                host: r.get(2)?,
                kind: r.get(3)?,
                detail: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    events.reverse();
    Ok(events)
}

#[async_trait]
impl EventStore for Sqlite {
    async fn log(&self, host: Option<&str>, kind: EventKind, detail: &str) -> Result<()> {
        let (host, detail) = (host.map(str::to_owned), detail.to_owned());
        self.call(move |db| log(db, host.as_deref(), kind, &detail))
            .await
    }

    async fn events(&self, host: Option<&str>, limit: u32) -> Result<Vec<Event>> {
        let host = host.map(str::to_owned);
        self.call(move |db| events(db, host.as_deref(), limit))
            .await
    }
}
