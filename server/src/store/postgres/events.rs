//! The event log.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;

use super::Postgres;
use crate::model::{Event, EventFilter, EventKind, NewEvent, now_ms};
use crate::store::{EventStore, Result};

/// Appends an event the server saw by itself (no actor).
pub async fn log(
    db: &impl GenericClient,
    host: Option<&str>,
    kind: EventKind,
    detail: &str,
) -> Result<()> {
    insert(db, None, host, kind, detail).await
}

/// Appends an event `actor` made happen.
pub async fn log_by(
    db: &impl GenericClient,
    actor: &str,
    host: Option<&str>,
    kind: EventKind,
    detail: &str,
) -> Result<()> {
    insert(db, Some(actor), host, kind, detail).await
}

async fn insert(
    db: &impl GenericClient,
    actor: Option<&str>,
    host: Option<&str>,
    kind: EventKind,
    detail: &str,
) -> Result<()> {
    db.execute(
        "INSERT INTO events (at, host, kind, detail, actor) VALUES ($1, $2, $3, $4, $5)",
        &[&now_ms(), &host, &kind.as_str(), &detail, &actor],
    )
    .await?;
    Ok(())
}

/// The newest events `filter` matches, oldest first. A user's are those of the API
/// (`user:NAME (…)`) and of the command line run as that login (`cli:NAME`).
pub async fn events(db: &impl GenericClient, filter: &EventFilter) -> Result<Vec<Event>> {
    let limit = i64::from(filter.limit);
    let rows = db
        .query(
            "SELECT id, at, host, kind, detail, actor FROM events
             WHERE ($1::TEXT IS NULL OR host = $1) AND ($2::TEXT IS NULL OR kind = $2)
               AND ($3::TEXT IS NULL OR actor = 'cli:' || $3
                    OR left(actor, length($3) + 6) = 'user:' || $3 || ' ')
               AND ($4::BIGINT IS NULL OR id < $4)
             ORDER BY id DESC LIMIT $5",
            &[
                &filter.host,
                &filter.kind.map(EventKind::as_str),
                &filter.user,
                &filter.before,
                &limit,
            ],
        )
        .await?;
    let mut events = rows.iter().map(event).collect::<Vec<_>>();
    events.reverse();
    Ok(events)
}

/// The first `limit` events after event `after`, oldest first.
pub async fn events_after(db: &impl GenericClient, after: i64, limit: u32) -> Result<Vec<Event>> {
    let rows = db
        .query(
            "SELECT id, at, host, kind, detail, actor FROM events WHERE id > $1
             ORDER BY id LIMIT $2",
            &[&after, &i64::from(limit)],
        )
        .await?;
    Ok(rows.iter().map(event).collect())
}

/// An event as its row has it (id, at, host, kind, detail, actor).
fn event(r: &tokio_postgres::Row) -> Event {
    Event {
        id: r.get(0),
        at: r.get(1),
        host: r.get(2),
        kind: r.get(3),
        detail: r.get(4),
        actor: r.get(5),
    }
}

#[async_trait]
impl EventStore for Postgres {
    async fn log(&self, event: &NewEvent) -> Result<()> {
        insert(
            &self.client().await?,
            event.actor.as_deref(),
            event.host.as_deref(),
            event.kind,
            &event.detail,
        )
        .await
    }

    async fn events(&self, filter: &EventFilter) -> Result<Vec<Event>> {
        events(&self.client().await?, filter).await
    }

    async fn events_after(&self, after: i64, limit: u32) -> Result<Vec<Event>> {
        events_after(&self.client().await?, after, limit).await
    }

    async fn last_event_id(&self) -> Result<i64> {
        let row = self
            .client()
            .await?
            .query_one("SELECT coalesce(max(id), 0) FROM events", &[])
            .await?;
        Ok(row.get(0))
    }
}
