//! Webhooks: where the server tells of what an operator chose to hear about (a run failed, a
//! host became unreachable, a key is pending, a schedule was skipped), each delivery recorded.

use serde::{Deserialize, Serialize};

use super::{from_utc, utc};

/// What a webhook can be told of.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum WebhookEvent {
    /// A run failed (not by a cancel).
    RunFailed,
    /// A host became unreachable.
    HostUnreachable,
    /// An agent presented a key that waits for approval.
    KeyPending,
    /// A schedule's due time came while its previous launch was still going.
    ScheduleSkipped,
}

impl WebhookEvent {
    /// Every one, in order.
    pub const ALL: [WebhookEvent; 4] = [
        WebhookEvent::RunFailed,
        WebhookEvent::HostUnreachable,
        WebhookEvent::KeyPending,
        WebhookEvent::ScheduleSkipped,
    ];

    /// Its name, as stored, sent and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::RunFailed => "run-failed",
            WebhookEvent::HostUnreachable => "host-unreachable",
            WebhookEvent::KeyPending => "key-pending",
            WebhookEvent::ScheduleSkipped => "schedule-skipped",
        }
    }

    /// The one named so.
    pub fn parse(name: &str) -> Option<WebhookEvent> {
        WebhookEvent::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

/// A webhook, as kept (its secret never leaves the store but to sign).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Webhook {
    /// Its id.
    pub id: i64,
    /// Where its deliveries are POSTed.
    pub url: String,
    /// What it is told of.
    pub events: Vec<WebhookEvent>,
    /// When it was added (RFC 3339 in JSON).
    #[serde(serialize_with = "utc", deserialize_with = "from_utc")]
    #[schema(value_type = String, format = DateTime)]
    pub created: i64,
}

/// How a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Not delivered yet: it is tried again at `next`.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every attempt failed: it is not tried again.
    Failed,
}

impl DeliveryStatus {
    /// Its name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    /// The one named so.
    pub fn parse(name: &str) -> Option<DeliveryStatus> {
        [
            DeliveryStatus::Pending,
            DeliveryStatus::Delivered,
            DeliveryStatus::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// One event told (or to be told) to one webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Delivery {
    /// Its id (the `X-Otto-Delivery` header).
    pub id: i64,
    /// The webhook.
    pub webhook: i64,
    /// The event of the log it tells of.
    pub event: i64,
    /// What it tells of.
    pub kind: WebhookEvent,
    /// How it stands.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// The HTTP status the receiver answered last, if it answered.
    pub code: Option<u16>,
    /// Why the last attempt failed, if it did.
    pub error: Option<String>,
    /// When it was queued (RFC 3339 in JSON).
    #[serde(serialize_with = "utc", deserialize_with = "from_utc")]
    #[schema(value_type = String, format = DateTime)]
    pub created: i64,
    /// When it is tried next (while pending), or was last.
    #[serde(serialize_with = "utc", deserialize_with = "from_utc")]
    #[schema(value_type = String, format = DateTime)]
    pub next: i64,
}

/// A delivery to queue: an event of the log for one webhook.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// The webhook.
    pub webhook: i64,
    /// The event of the log.
    pub event: i64,
    /// What it tells of.
    pub kind: WebhookEvent,
    /// The JSON body to send.
    pub body: String,
}

/// A delivery due now, claimed for one attempt: what to send, where, signed with what.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    /// Its id.
    pub id: i64,
    /// What it tells of.
    pub kind: WebhookEvent,
    /// Where to POST it.
    pub url: String,
    /// The webhook's secret, to sign the body with.
    pub secret: String,
    /// The JSON body, the same bytes on every attempt.
    pub body: String,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// How an attempt went.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The HTTP status the receiver answered, if it did.
    pub code: Option<u16>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// Whether it was delivered (2xx).
    pub delivered: bool,
    /// When to try again; None: never (delivered, or out of attempts).
    pub retry_at: Option<i64>,
}

impl Attempt {
    /// How its delivery stands after it.
    pub fn status(&self) -> DeliveryStatus {
        match (self.delivered, self.retry_at) {
            (true, _) => DeliveryStatus::Delivered,
            (false, Some(_)) => DeliveryStatus::Pending,
            (false, None) => DeliveryStatus::Failed,
        }
    }
}
