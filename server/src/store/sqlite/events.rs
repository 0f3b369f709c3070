//! The event log.

use async_trait::async_trait;
use rusqlite::{Connection, params};

use super::Sqlite;
use crate::model::{Event, EventFilter, EventKind, NewEvent, now_ms};
use crate::store::{EventStore, Result};

/// Appends an event the server saw by itself (no actor).
pub fn log(db: &Connection, host: Option<&str>, kind: EventKind, detail: &str) -> Result<()> {
    insert(db, None, host, kind, detail)
}

/// Appends an event `actor` made happen.
pub fn log_by(
    db: &Connection,
    actor: &str,
    host: Option<&str>,
    kind: EventKind,
    detail: &str,
) -> Result<()> {
    insert(db, Some(actor), host, kind, detail)
}

fn insert(
    db: &Connection,
    actor: Option<&str>,
    host: Option<&str>,
    kind: EventKind,
    detail: &str,
) -> Result<()> {
    db.execute(
        "INSERT INTO events (at, host, kind, detail, actor) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![now_ms(), host, kind.as_str(), detail, actor],
    )?;
    Ok(())
}

/// The newest events `filter` matches, oldest first. A user's are those of the API
/// (`user:NAME (…)`) and of the command line run as that login (`cli:NAME`).
pub fn events(db: &Connection, filter: &EventFilter) -> Result<Vec<Event>> {
    let mut stmt = db.prepare(
        "SELECT id, at, host, kind, detail, actor FROM events
         WHERE (?1 IS NULL OR host = ?1) AND (?2 IS NULL OR kind = ?2)
           AND (?3 IS NULL OR actor = 'cli:' || ?3
                OR substr(actor, 1, length(?3) + 6) = 'user:' || ?3 || ' ')
           AND (?4 IS NULL OR id < ?4)
         ORDER BY id DESC LIMIT ?5",
    )?;
    let query = params![
        filter.host,
        filter.kind.map(EventKind::as_str),
        filter.user,
        filter.before,
        filter.limit
    ];
    let mut events = stmt
        .query_map(query, event)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    events.reverse();
    Ok(events)
}

/// The first `limit` events after event `after`, oldest first.
pub fn events_after(db: &Connection, after: i64, limit: u32) -> Result<Vec<Event>> {
    let mut stmt = db.prepare_cached(
        "SELECT id, at, host, kind, detail, actor FROM events WHERE id > ?1
         ORDER BY id LIMIT ?2",
    )?;
    let events = stmt
        .query_map(params![after, limit], event)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(events)
}

/// An event as its row has it (id, at, host, kind, detail, actor).
fn event(r: &rusqlite::Row<'_>) -> rusqlite::Result<Event> {
    Ok(Event {
        id: r.get(0)?,
        at: r.get(1)?,
        host: r.get(2)?,
        kind: r.get(3)?,
        detail: r.get(4)?,
        actor: r.get(5)?,
    })
}

#[async_trait]
impl EventStore for Sqlite {
    async fn log(&self, event: &NewEvent) -> Result<()> {
        let event = event.clone();
        // Through the committer: hosts log their events many at once (a first contact, a
        // run's end), and those waiting together share one commit.
        self.write(move |db| {
            insert(
                db,
                event.actor.as_deref(),
                event.host.as_deref(),
                event.kind,
                &event.detail,
            )
        })
        .await
    }

    async fn events(&self, filter: &EventFilter) -> Result<Vec<Event>> {
        let filter = filter.clone();
        self.read(move |db| events(db, &filter)).await
    }

    async fn events_after(&self, after: i64, limit: u32) -> Result<Vec<Event>> {
        self.read(move |db| events_after(db, after, limit)).await
    }

    async fn last_event_id(&self) -> Result<i64> {
        self.read(|db| {
            Ok(db.query_row("SELECT coalesce(max(id), 0) FROM events", [], |r| r.get(0))?)
        })
        .await
    }
}
