//! Webhooks and their deliveries.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::Sqlite;
use crate::model::{
    Attempt, Delivery, DeliveryStatus, DueDelivery, NewDelivery, Webhook, WebhookEvent, now_ms,
};
use crate::store::secrets::{Keyring, webhook_label};
use crate::store::{Result, StoreError, WebhookStore};

/// `events` as stored: their names, comma-separated.
pub(crate) fn event_names(events: &[WebhookEvent]) -> String {
    let names: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
    names.join(",")
}

/// The events stored as `names`.
pub(crate) fn parse_events(names: &str) -> Result<Vec<WebhookEvent>> {
    names
        .split(',')
        .map(|n| {
            WebhookEvent::parse(n).ok_or_else(|| StoreError::Corrupt("webhook event", n.into()))
        })
        .collect()
}

/// Adds a webhook, its secret sealed.
pub fn add_webhook(
    db: &Connection,
    keys: &Keyring,
    url: &str,
    events: &[WebhookEvent],
    secret: &str,
) -> Result<Webhook> {
    let tx = db.unchecked_transaction()?;
    let created = now_ms();
    tx.execute(
        "INSERT INTO webhooks (url, events, secret, created) VALUES (?1, ?2, '', ?3)",
        params![url, event_names(events), created],
    )?;
    let id = tx.last_insert_rowid();
    let sealed = keys.seal(&webhook_label(id), secret)?;
    tx.execute(
        "UPDATE webhooks SET secret = ?2 WHERE id = ?1",
        params![id, sealed],
    )?;
    tx.commit()?;
    Ok(Webhook {
        id,
        url: url.into(),
        events: events.to_vec(),
        created,
    })
}

/// Every webhook.
pub fn webhooks(db: &Connection) -> Result<Vec<Webhook>> {
    let mut query = db.prepare("SELECT id, url, events, created FROM webhooks ORDER BY id")?;
    let rows = query.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    let mut hooks = Vec::new();
    for row in rows {
        let (id, url, events, created) = row?;
        hooks.push(Webhook {
            id,
            url,
            events: parse_events(&events)?,
            created,
        });
    }
    Ok(hooks)
}

/// Removes a webhook and its deliveries.
pub fn remove_webhook(db: &Connection, id: i64) -> Result<()> {
    let tx = db.unchecked_transaction()?;
    if tx.execute("DELETE FROM webhooks WHERE id = ?1", [id])? == 0 {
        return Err(StoreError::NotFound("webhook", id.to_string()));
    }
    tx.execute("DELETE FROM webhook_deliveries WHERE webhook = ?1", [id])?;
    tx.commit()?;
    Ok(())
}

/// How far the log has been matched.
pub fn webhook_cursor(db: &Connection) -> Result<i64> {
    Ok(db
        .query_row("SELECT max(last_event) FROM webhook_cursor", [], |r| {
            r.get::<_, Option<i64>>(0)
        })?
        .unwrap_or(0))
}

/// Queues deliveries and moves the cursor on.
pub fn queue_deliveries(db: &Connection, deliveries: &[NewDelivery], upto: i64) -> Result<()> {
    let tx = db.unchecked_transaction()?;
    let now = now_ms();
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO webhook_deliveries (webhook, event, kind, body, created, next)
             SELECT ?1, ?2, ?3, ?4, ?5, ?5 WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = ?1)
             ON CONFLICT (webhook, event) DO NOTHING",
        )?;
        for d in deliveries {
            insert.execute(params![d.webhook, d.event, d.kind.as_str(), d.body, now])?;
        }
    }
    tx.execute(
        "UPDATE webhook_cursor SET last_event = max(last_event, ?1)",
        [upto],
    )?;
    tx.commit()?;
    Ok(())
}

/// Claims pending deliveries due at `now`.
pub fn claim_deliveries(
    db: &Connection,
    keys: &Keyring,
    now: i64,
    lease_ms: i64,
    limit: u32,
) -> Result<Vec<DueDelivery>> {
    let tx = db.unchecked_transaction()?;
    let claimed = {
        let mut query = tx.prepare(
            "UPDATE webhook_deliveries SET next = ?2 + ?3
             WHERE id IN (SELECT id FROM webhook_deliveries
                          WHERE status = 'pending' AND next <= ?2 ORDER BY next, id LIMIT ?1)
             RETURNING id, webhook, kind, body, attempts",
        )?;
        let rows = query.query_map(params![limit, now, lease_ms], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, u32>(4)?,
            ))
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    let mut due = Vec::new();
    for (id, webhook, kind, body, attempts) in claimed {
        let found: Option<(String, String)> = tx
            .query_row(
                "SELECT url, secret FROM webhooks WHERE id = ?1",
                [webhook],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((url, sealed)) = found else { continue };
        due.push(DueDelivery {
            id,
            kind: WebhookEvent::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt("webhook event", kind.clone()))?,
            url,
            secret: keys.open(&webhook_label(webhook), &sealed)?,
            body,
            attempts,
        });
    }
    tx.commit()?;
    Ok(due)
}

/// Records an attempt.
pub fn record_attempt(db: &Connection, id: i64, attempt: &Attempt) -> Result<()> {
    let status = attempt.status();
    db.execute(
        "UPDATE webhook_deliveries SET status = ?2, attempts = attempts + 1, code = ?3,
             error = ?4, next = ?5 WHERE id = ?1",
        params![
            id,
            status.as_str(),
            attempt.code,
            attempt.error,
            attempt.retry_at.unwrap_or_else(now_ms)
        ],
    )?;
    Ok(())
}

fn delivery_row(r: &Row<'_>) -> rusqlite::Result<(Delivery, String, String)> {
    Ok((
        Delivery {
            id: r.get(0)?,
            webhook: r.get(1)?,
            event: r.get(2)?,
            kind: WebhookEvent::RunFailed,
            status: DeliveryStatus::Pending,
            attempts: r.get(5)?,
            code: r.get(6)?,
            error: r.get(7)?,
            created: r.get(8)?,
            next: r.get(9)?,
        },
        r.get(3)?,
        r.get(4)?,
    ))
}

/// The newest deliveries.
pub fn deliveries(db: &Connection, webhook: Option<i64>, limit: u32) -> Result<Vec<Delivery>> {
    let mut query = db.prepare(
        "SELECT id, webhook, event, kind, status, attempts, code, error, created, next
         FROM webhook_deliveries WHERE ?1 IS NULL OR webhook = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = query.query_map(params![webhook, limit], delivery_row)?;
    let mut found = Vec::new();
    for row in rows {
        let (mut delivery, kind, status) = row?;
        delivery.kind =
            WebhookEvent::parse(&kind).ok_or(StoreError::Corrupt("webhook event", kind))?;
        delivery.status =
            DeliveryStatus::parse(&status).ok_or(StoreError::Corrupt("delivery status", status))?;
        found.push(delivery);
    }
    Ok(found)
}

#[async_trait]
impl WebhookStore for Sqlite {
    async fn add_webhook(
        &self,
        url: &str,
        events: &[WebhookEvent],
        secret: &str,
    ) -> Result<Webhook> {
        let (url, events, secret) = (url.to_owned(), events.to_vec(), secret.to_owned());
        let keys = self.keys.clone();
        self.call(move |db| add_webhook(db, &keys, &url, &events, &secret))
            .await
    }

    async fn webhooks(&self) -> Result<Vec<Webhook>> {
        self.read(webhooks).await
    }

    async fn remove_webhook(&self, id: i64) -> Result<()> {
        self.call(move |db| remove_webhook(db, id)).await
    }

    async fn webhook_cursor(&self) -> Result<i64> {
        self.read(webhook_cursor).await
    }

    async fn queue_deliveries(&self, deliveries: &[NewDelivery], upto: i64) -> Result<()> {
        let deliveries = deliveries.to_vec();
        self.call(move |db| queue_deliveries(db, &deliveries, upto))
            .await
    }

    async fn claim_deliveries(
        &self,
        now: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<DueDelivery>> {
        let keys = self.keys.clone();
        self.call(move |db| claim_deliveries(db, &keys, now, lease_ms, limit))
            .await
    }

    async fn record_attempt(&self, id: i64, attempt: &Attempt) -> Result<()> {
        let attempt = attempt.clone();
        self.call(move |db| record_attempt(db, id, &attempt)).await
    }

    async fn deliveries(&self, webhook: Option<i64>, limit: u32) -> Result<Vec<Delivery>> {
        self.read(move |db| deliveries(db, webhook, limit)).await
    }
}
