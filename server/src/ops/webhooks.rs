//! Webhooks: an operator chooses which events to hear of (a run failed, a host became
//! unreachable, a key is pending, a schedule was skipped) and where; the server matches the
//! event log against them ([`Ops::queue_webhooks`]), and POSTs each delivery as JSON, signed
//! with HMAC-SHA256 of the body under the webhook's secret (`X-Otto-Signature-256: sha256=HEX`),
//! retried with backoff until the receiver answers 2xx or [`MAX_ATTEMPTS`] have failed
//! ([`Ops::deliver_webhooks`]); every attempt is recorded. Seeing webhooks and their
//! deliveries needs the permission `audit` (they carry the log's events); adding and removing
//! them, `options`.

use std::time::Duration;

use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::model::{
    Attempt, Delivery, DueDelivery, Event, EventKind, NewDelivery, Permission, Webhook,
    WebhookEvent, now_ms,
};

use super::{Ops, OpsError, Result};

/// Attempts at a delivery before it is given up.
pub const MAX_ATTEMPTS: u32 = 8;

/// The wait after the first failed attempt; doubled after each further one.
const FIRST_RETRY: Duration = Duration::from_secs(5);

/// The longest wait between attempts.
const LONGEST_RETRY: Duration = Duration::from_secs(3600);

/// How long a receiver has to answer an attempt.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Events of the log read in one pass.
const EVENTS_PER_PASS: u32 = 1000;

/// Deliveries attempted in one pass.
const DELIVERIES_PER_PASS: u32 = 32;

/// A webhook to add: the body of `POST /api/v1/webhooks`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where to POST: an `http` or `https` URL.
    pub url: String,
    /// What to tell of (at least one).
    #[schema(min_items = 1)]
    pub events: Vec<WebhookEvent>,
}

/// A webhook just added, with its secret: shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AddedWebhook {
    /// The webhook.
    #[serde(flatten)]
    pub webhook: Webhook,
    /// The secret its deliveries are signed with (HMAC-SHA256 of the body, hex, in
    /// `X-Otto-Signature-256: sha256=…`): shown once, kept sealed.
    pub secret: String,
}

/// The wait before attempt `attempts + 1`, after `attempts` failed.
pub fn backoff(attempts: u32) -> Duration {
    let doubled = FIRST_RETRY.saturating_mul(1 << attempts.saturating_sub(1).min(16));
    doubled.min(LONGEST_RETRY)
}

/// `X-Otto-Signature-256` of `body` under `secret`: `sha256=` and the HMAC-SHA256, hex.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(body);
    format!("sha256={}", super::users::hex(&mac.finalize().into_bytes()))
}

impl Ops {
    /// Every webhook. Needs the permission `audit`.
    pub async fn webhooks(&self) -> Result<Vec<Webhook>> {
        self.require(Permission::Audit)?;
        Ok(self.fleet.store().webhooks().await?)
    }

    /// Adds a webhook, with a new secret (returned this once); logged. Needs the permission
    /// `options`. A URL that is not `http` or `https`, or no events, is `Invalid`.
    pub async fn add_webhook(&self, new: &NewWebhook) -> Result<AddedWebhook> {
        self.require(Permission::Options)?;
        let url = reqwest::Url::parse(&new.url)
            .map_err(|e| OpsError::Invalid(format!("`{}` is not a URL: {e}", new.url)))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(OpsError::Invalid(format!(
                "`{}` is not an http or https URL",
                new.url
            )));
        }
        let mut events = new.events.clone();
        events.sort_by_key(|e| WebhookEvent::ALL.iter().position(|a| a == e));
        events.dedup();
        if events.is_empty() {
            return Err(OpsError::Invalid("name at least one event".into()));
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| OpsError::Internal(format!("no randomness: {e}")))?;
        let secret = super::users::hex(&bytes);
        let webhook = self
            .fleet
            .store()
            .add_webhook(url.as_str(), &events, &secret)
            .await?;
        let names: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
        let detail = format!(
            "webhook {} added: {} for {}",
            webhook.id,
            webhook.url,
            names.join(", ")
        );
        self.record(None, EventKind::WebhookChanged, &detail)
            .await?;
        Ok(AddedWebhook { webhook, secret })
    }

    /// Removes webhook `id` and its deliveries; logged. Needs the permission `options`.
    pub async fn remove_webhook(&self, id: i64) -> Result<()> {
        self.require(Permission::Options)?;
        self.fleet.store().remove_webhook(id).await?;
        let detail = format!("webhook {id} removed");
        self.record(None, EventKind::WebhookChanged, &detail)
            .await?;
        Ok(())
    }

    /// The newest `limit` deliveries, of webhook `id` or all, newest first. Needs the
    /// permission `audit`.
    pub async fn webhook_deliveries(&self, id: Option<i64>, limit: u32) -> Result<Vec<Delivery>> {
        self.require(Permission::Audit)?;
        Ok(self.fleet.store().deliveries(id, limit).await?)
    }

    /// Matches the events of the log not matched yet against the webhooks, queueing a
    /// delivery for each webhook told of one; whether there may be more to match.
    pub async fn queue_webhooks(&self) -> Result<bool> {
        let store = self.fleet.store();
        let after = store.webhook_cursor().await?;
        let events = store.events_after(after, EVENTS_PER_PASS).await?;
        let Some(last) = events.last().map(|e| e.id) else {
            return Ok(false);
        };
        let webhooks = store.webhooks().await?;
        let mut queued = Vec::new();
        for event in &events {
            let Some((kind, body)) = self.told(event).await? else {
                continue;
            };
            for webhook in webhooks.iter().filter(|w| w.events.contains(&kind)) {
                queued.push(NewDelivery {
                    webhook: webhook.id,
                    event: event.id,
                    kind,
                    body: body.clone(),
                });
            }
        }
        store.queue_deliveries(&queued, last).await?;
        Ok(events.len() == EVENTS_PER_PASS as usize)
    }

    /// What a webhook is told of `event`, if it tells of one: its kind and JSON body.
    async fn told(&self, event: &Event) -> Result<Option<(WebhookEvent, String)>> {
        let mut extra = serde_json::Map::new();
        let kind = match event.kind.as_str() {
            "run-finished" => {
                let Some(id) = run_id(&event.detail) else {
                    return Ok(None);
                };
                let run = match self.fleet.store().run(id).await {
                    Ok(run) => run,
                    Err(crate::store::StoreError::NotFound(..)) => return Ok(None),
                    Err(e) => return Err(e.into()),
                };
                if run.success != Some(false) || run.cancelled {
                    return Ok(None);
                }
                extra.insert(
                    "run".into(),
                    serde_json::json!({
                        "id": run.id, "what": run.what, "outcome": run.outcome,
                        "exit_code": run.exit_code, "launch": run.launch, "actor": run.actor,
                    }),
                );
                WebhookEvent::RunFailed
            }
            "reachability" if event.detail.starts_with("unreachable") => {
                WebhookEvent::HostUnreachable
            }
            "key-pending" => WebhookEvent::KeyPending,
            "schedule-skipped" => WebhookEvent::ScheduleSkipped,
            _ => return Ok(None),
        };
        let mut body = serde_json::json!({
            "event": kind,
            "id": event.id,
            "at": jiff::Timestamp::from_millisecond(event.at).map(|t| t.to_string()).unwrap_or_default(),
            "host": event.host,
            "detail": event.detail,
        });
        if let Some(object) = body.as_object_mut() {
            object.extend(extra);
        }
        Ok(Some((kind, body.to_string())))
    }

    /// Attempts the deliveries due now with `client`, each recorded; how many were attempted.
    pub async fn deliver_webhooks(&self, client: &reqwest::Client) -> Result<usize> {
        let store = self.fleet.store();
        let lease = i64::try_from(ATTEMPT_TIMEOUT.as_millis() * 3).unwrap_or(i64::MAX);
        let due = store
            .claim_deliveries(now_ms(), lease, DELIVERIES_PER_PASS)
            .await?;
        let attempts = due.iter().map(|d| attempt(client, d));
        let results = futures_util::future::join_all(attempts).await;
        for (delivery, attempt) in due.iter().zip(&results) {
            store.record_attempt(delivery.id, attempt).await?;
        }
        Ok(due.len())
    }
}

/// The run's id in a `run-finished` event's detail (`run 42: exit 1`).
fn run_id(detail: &str) -> Option<i64> {
    detail.strip_prefix("run ")?.split(':').next()?.parse().ok()
}

/// One attempt at `delivery`: POSTed with its headers, answered 2xx or not.
async fn attempt(client: &reqwest::Client, delivery: &DueDelivery) -> Attempt {
    let sent = client
        .post(&delivery.url)
        .header("content-type", "application/json")
        .header("x-otto-event", delivery.kind.as_str())
        .header("x-otto-delivery", delivery.id.to_string())
        .header(
            "x-otto-signature-256",
            signature(&delivery.secret, delivery.body.as_bytes()),
        )
        .body(delivery.body.clone())
        .timeout(ATTEMPT_TIMEOUT)
        .send()
        .await;
    let (code, error) = match sent {
        Ok(answer) if answer.status().is_success() => {
            return Attempt {
                code: Some(answer.status().as_u16()),
                error: None,
                delivered: true,
                retry_at: None,
            };
        }
        Ok(answer) => (
            Some(answer.status().as_u16()),
            format!("answered {}", answer.status()),
        ),
        Err(e) => (None, crate::cli::remote::chain(&e)),
    };
    let made = delivery.attempts + 1;
    let retry_at = (made < MAX_ATTEMPTS)
        .then(|| now_ms() + i64::try_from(backoff(made).as_millis()).unwrap_or(i64::MAX));
    Attempt {
        code,
        error: Some(error),
        delivered: false,
        retry_at,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::fixture;
    use super::*;
    use crate::model::NewEvent;

    async fn log(ops: &Ops, kind: EventKind, host: Option<&str>, detail: &str) {
        let event = NewEvent {
            actor: None,
            host: host.map(str::to_owned),
            kind,
            detail: detail.into(),
        };
        ops.fleet.store().log(&event).await.unwrap();
    }

    #[tokio::test]
    async fn each_event_chosen_is_queued_once_for_each_webhook_that_chose_it() {
        let (_dir, ops) = fixture().await;
        let add = |events: Vec<WebhookEvent>| {
            let ops = ops.clone();
            async move {
                let new = NewWebhook {
                    url: "http://127.0.0.1:9/".into(),
                    events,
                };
                ops.add_webhook(&new).await.unwrap().webhook.id
            }
        };
        let keys = add(vec![
            WebhookEvent::KeyPending,
            WebhookEvent::ScheduleSkipped,
        ])
        .await;
        let reach = add(vec![WebhookEvent::HostUnreachable]).await;
        log(
            &ops,
            EventKind::KeyPending,
            Some("r1"),
            "agent key SHA256:x waits",
        )
        .await;
        log(
            &ops,
            EventKind::ScheduleSkipped,
            None,
            "schedule nightly skipped",
        )
        .await;
        log(&ops, EventKind::Reachability, Some("r1"), "reachable").await;
        log(
            &ops,
            EventKind::Reachability,
            Some("r1"),
            "unreachable: refused",
        )
        .await;
        log(&ops, EventKind::HostAdded, Some("r2"), "host r2 added").await;
        assert!(!ops.queue_webhooks().await.unwrap(), "all matched at once");
        assert!(!ops.queue_webhooks().await.unwrap());
        let kinds = |id: i64| {
            let ops = ops.clone();
            async move {
                let mut kinds: Vec<(WebhookEvent, i64)> = ops
                    .webhook_deliveries(Some(id), 10)
                    .await
                    .unwrap()
                    .iter()
                    .map(|d| (d.kind, d.webhook))
                    .collect();
                kinds.sort_by_key(|(k, _)| k.as_str());
                kinds
            }
        };
        assert_eq!(
            kinds(keys).await,
            [
                (WebhookEvent::KeyPending, keys),
                (WebhookEvent::ScheduleSkipped, keys)
            ]
        );
        assert_eq!(kinds(reach).await, [(WebhookEvent::HostUnreachable, reach)]);
        // The body says what happened, where.
        let due = ops
            .fleet
            .store()
            .claim_deliveries(now_ms(), 1000, 10)
            .await
            .unwrap();
        let pending = due
            .iter()
            .find(|d| d.kind == WebhookEvent::KeyPending)
            .unwrap();
        let body: serde_json::Value = serde_json::from_str(&pending.body).unwrap();
        assert_eq!(
            (&body["event"], &body["host"], &body["detail"]),
            (
                &serde_json::json!("key-pending"),
                &serde_json::json!("r1"),
                &serde_json::json!("agent key SHA256:x waits")
            )
        );
        assert_eq!(pending.secret.len(), 64);
    }

    #[tokio::test]
    async fn a_webhook_needs_an_http_url_and_an_event() {
        let (_dir, ops) = fixture().await;
        for (url, events) in [
            ("ftp://example.com/", vec![WebhookEvent::RunFailed]),
            ("not a url", vec![WebhookEvent::RunFailed]),
            ("https://example.com/", vec![]),
        ] {
            let new = NewWebhook {
                url: url.into(),
                events,
            };
            assert!(
                matches!(ops.add_webhook(&new).await, Err(OpsError::Invalid(_))),
                "{url}"
            );
        }
        assert!(ops.webhooks().await.unwrap().is_empty());
    }

    #[test]
    fn retries_wait_longer_each_time_up_to_an_hour() {
        assert_eq!(backoff(1), Duration::from_secs(5));
        assert_eq!(backoff(2), Duration::from_secs(10));
        assert_eq!(backoff(4), Duration::from_secs(40));
        assert_eq!(backoff(12), LONGEST_RETRY);
        assert_eq!(backoff(u32::MAX), LONGEST_RETRY);
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_run_finished_event_names_its_run() {
        assert_eq!(run_id("run 42: exit 1"), Some(42));
        assert_eq!(run_id("run x: exit 1"), None);
        assert_eq!(run_id("something else"), None);
    }
}
