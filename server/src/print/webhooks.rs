//! Webhooks and their deliveries.

use std::io::Write;

use super::Printer;
use crate::model::{Delivery, Webhook};
use crate::ops::AddedWebhook;
use crate::sanitize;

/// A webhook's events, comma-separated.
fn events(webhook: &Webhook) -> String {
    let names: Vec<&str> = webhook.events.iter().map(|e| e.as_str()).collect();
    names.join(",")
}

impl Printer {
    /// Webhooks, one row each, without secrets.
    pub fn webhooks(&self, webhooks: &[Webhook]) {
        self.list(webhooks, &["id", "url", "events", "added"], |w| {
            vec![
                w.id.to_string(),
                sanitize::field(&w.url, 80),
                events(w),
                self.time(w.created),
            ]
        });
    }

    /// A webhook just added: its secret, shown this once.
    pub fn webhook_added(&self, added: &AddedWebhook) {
        if self.json {
            return self.json(added);
        }
        let w = &added.webhook;
        self.print(|out| {
            writeln!(
                out,
                "webhook {} added: {} for {}",
                w.id,
                sanitize::field(&w.url, usize::MAX),
                events(w)
            )?;
            writeln!(out, "secret {}", added.secret)?;
            writeln!(
                out,
                "Keep it now: it is not shown again. Each delivery carries \
                 X-Otto-Signature-256: sha256=HMAC-SHA256(secret, body)."
            )
        });
    }

    /// Deliveries, one row each.
    pub fn deliveries(&self, deliveries: &[Delivery]) {
        self.list(
            deliveries,
            &[
                "id",
                "webhook",
                "event",
                "kind",
                "status",
                "attempts",
                "last answer",
                "next",
            ],
            |d| {
                let answer = match (&d.code, &d.error) {
                    (_, Some(error)) => sanitize::field(error, 60),
                    (Some(code), None) => code.to_string(),
                    (None, None) => "-".into(),
                };
                vec![
                    d.id.to_string(),
                    d.webhook.to_string(),
                    d.event.to_string(),
                    d.kind.as_str().into(),
                    d.status.as_str().into(),
                    d.attempts.to_string(),
                    answer,
                    self.time(d.next),
                ]
            },
        );
    }
}
