//! Webhooks and their deliveries. A delivery is claimed with `FOR UPDATE SKIP LOCKED`, so that
//! of several servers each attempts a different one.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::environment::with_keys;
use super::{Postgres, corrupt};
use crate::model::{
    Attempt, Delivery, DeliveryStatus, DueDelivery, NewDelivery, Webhook, WebhookEvent, now_ms,
};
use crate::store::secrets::webhook_label;
use crate::store::sqlite::webhooks::{event_names, parse_events};
use crate::store::{Result, StoreError, WebhookStore};

/// Adds a webhook, its secret sealed.
async fn add_webhook(
    db: &Postgres,
    url: &str,
    events: &[WebhookEvent],
    secret: &str,
) -> Result<Webhook> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    let created = now_ms();
    let id: i64 = tx
        .query_one(
            "INSERT INTO webhooks (url, events, secret, created) VALUES ($1, $2, '', $3)
             RETURNING id",
            &[&url, &event_names(events), &created],
        )
        .await?
        .get(0);
    let secret = secret.to_owned();
    let sealed = with_keys(&db.keys, move |keys| keys.seal(&webhook_label(id), &secret)).await?;
    tx.execute(
        "UPDATE webhooks SET secret = $2 WHERE id = $1",
        &[&id, &sealed],
    )
    .await?;
    tx.commit().await?;
    Ok(Webhook {
        id,
        url: url.into(),
        events: events.to_vec(),
        created,
    })
}

/// Every webhook.
async fn webhooks(db: &impl GenericClient) -> Result<Vec<Webhook>> {
    db.query(
        "SELECT id, url, events, created FROM webhooks ORDER BY id",
        &[],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(Webhook {
            id: r.get(0),
            url: r.get(1),
            events: parse_events(r.get(2))?,
            created: r.get(3),
        })
    })
    .collect()
}

/// Removes a webhook and its deliveries.
async fn remove_webhook(db: &Postgres, id: i64) -> Result<()> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    if tx
        .execute("DELETE FROM webhooks WHERE id = $1", &[&id])
        .await?
        == 0
    {
        return Err(StoreError::NotFound("webhook", id.to_string()));
    }
    tx.execute("DELETE FROM webhook_deliveries WHERE webhook = $1", &[&id])
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Queues deliveries and moves the cursor on.
async fn queue_deliveries(db: &Postgres, deliveries: &[NewDelivery], upto: i64) -> Result<()> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    let now = now_ms();
    for d in deliveries {
        tx.execute(
            "INSERT INTO webhook_deliveries (webhook, event, kind, body, created, next)
             SELECT $1, $2, $3, $4, $5, $5 WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = $1)
             ON CONFLICT (webhook, event) DO NOTHING",
            &[&d.webhook, &d.event, &d.kind.as_str(), &d.body, &now],
        )
        .await?;
    }
    tx.execute(
        "UPDATE webhook_cursor SET last_event = greatest(last_event, $1)",
        &[&upto],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Claims pending deliveries due at `now`.
async fn claim_deliveries(
    db: &Postgres,
    now: i64,
    lease_ms: i64,
    limit: u32,
) -> Result<Vec<DueDelivery>> {
    let rows = db
        .client()
        .await?
        .query(
            "UPDATE webhook_deliveries d SET next = $2 + $3
             FROM webhooks w
             WHERE w.id = d.webhook AND d.id IN (
                 SELECT id FROM webhook_deliveries
                 WHERE status = 'pending' AND next <= $2
                 ORDER BY next, id LIMIT $1 FOR UPDATE SKIP LOCKED)
             RETURNING d.id, d.webhook, d.kind, d.body, d.attempts, w.url, w.secret",
            &[&i64::from(limit), &now, &lease_ms],
        )
        .await?;
    let mut due = Vec::new();
    for r in rows {
        let (webhook, kind, sealed): (i64, String, String) = (r.get(1), r.get(2), r.get(6));
        let attempts: i32 = r.get(4);
        let secret = with_keys(&db.keys, move |keys| {
            keys.open(&webhook_label(webhook), &sealed)
        })
        .await?;
        due.push(DueDelivery {
            id: r.get(0),
            kind: WebhookEvent::parse(&kind).ok_or_else(|| corrupt("webhook event", &kind))?,
            url: r.get(5),
            secret,
            body: r.get(3),
            attempts: u32::try_from(attempts).map_err(|_| corrupt("attempts", attempts))?,
        });
    }
    Ok(due)
}

/// Records an attempt.
async fn record_attempt(db: &impl GenericClient, id: i64, attempt: &Attempt) -> Result<()> {
    let status = attempt.status();
    let code = attempt.code.map(i32::from);
    db.execute(
        "UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1, code = $3,
             error = $4, next = $5 WHERE id = $1",
        &[
            &id,
            &status.as_str(),
            &code,
            &attempt.error,
            &attempt.retry_at.unwrap_or_else(now_ms),
        ],
    )
    .await?;
    Ok(())
}

fn delivery(r: &Row) -> Result<Delivery> {
    let (kind, status): (String, String) = (r.get(3), r.get(4));
    let (attempts, code): (i32, Option<i32>) = (r.get(5), r.get(6));
    Ok(Delivery {
        id: r.get(0),
        webhook: r.get(1),
        event: r.get(2),
        kind: WebhookEvent::parse(&kind).ok_or_else(|| corrupt("webhook event", &kind))?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| corrupt("delivery status", &status))?,
        attempts: u32::try_from(attempts).map_err(|_| corrupt("attempts", attempts))?,
        code: code.and_then(|c| u16::try_from(c).ok()),
        error: r.get(7),
        created: r.get(8),
        next: r.get(9),
    })
}

/// The newest deliveries.
async fn deliveries(
    db: &impl GenericClient,
    webhook: Option<i64>,
    limit: u32,
) -> Result<Vec<Delivery>> {
    db.query(
        "SELECT id, webhook, event, kind, status, attempts, code, error, created, next
         FROM webhook_deliveries WHERE $1::BIGINT IS NULL OR webhook = $1
         ORDER BY id DESC LIMIT $2",
        &[&webhook, &i64::from(limit)],
    )
    .await?
    .iter()
    .map(delivery)
    .collect()
}

#[async_trait]
impl WebhookStore for Postgres {
    async fn add_webhook(
        &self,
        url: &str,
        events: &[WebhookEvent],
        secret: &str,
    ) -> Result<Webhook> {
        add_webhook(self, url, events, secret).await
    }

    async fn webhooks(&self) -> Result<Vec<Webhook>> {
        webhooks(&self.client().await?).await
    }

    async fn remove_webhook(&self, id: i64) -> Result<()> {
        remove_webhook(self, id).await
    }

    async fn webhook_cursor(&self) -> Result<i64> {
        let row = self
            .client()
            .await?
            .query_one("SELECT max(last_event) FROM webhook_cursor", &[])
            .await?;
        Ok(row.get::<_, Option<i64>>(0).unwrap_or(0))
    }

    async fn queue_deliveries(&self, deliveries: &[NewDelivery], upto: i64) -> Result<()> {
        queue_deliveries(self, deliveries, upto).await
    }

    async fn claim_deliveries(
        &self,
        now: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<DueDelivery>> {
        claim_deliveries(self, now, lease_ms, limit).await
    }

    async fn record_attempt(&self, id: i64, attempt: &Attempt) -> Result<()> {
        record_attempt(&self.client().await?, id, attempt).await
    }

    async fn deliveries(&self, webhook: Option<i64>, limit: u32) -> Result<Vec<Delivery>> {
        deliveries(&self.client().await?, webhook, limit).await
    }
}
