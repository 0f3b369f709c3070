//! `webhook …`: where the server tells of the events an operator chose, signed; each delivery
//! recorded. `serve` delivers them.

use clap::Subcommand;

use crate::model::WebhookEvent;
use crate::ops::NewWebhook;
use crate::print::Printer;

use super::CliError;
use super::api::WebhooksApi;

#[derive(Subcommand)]
pub enum WebhookCommand {
    /// Add a webhook: `serve` POSTs each event of the kinds given to URL as JSON, signed with
    /// HMAC-SHA256 of the body under the secret printed here once (`X-Otto-Signature-256:
    /// sha256=HEX`), retried with backoff (5 s, doubled, 8 attempts) until it answers 2xx.
    /// Needs the permission `options`.
    Add {
        /// Where to POST: an http or https URL.
        url: String,
        /// What to tell of (repeat, or separate with commas).
        #[arg(long = "on", value_enum, value_delimiter = ',', required = true)]
        events: Vec<WebhookEvent>,
    },
    /// List the webhooks. Needs the permission `audit`.
    List,
    /// Remove a webhook with its deliveries. Needs the permission `options`.
    Remove {
        /// The webhook's id.
        id: i64,
    },
    /// The newest deliveries, newest first: what each told of, how it stands, its attempts
    /// and the last answer. Needs the permission `audit`.
    Deliveries {
        /// Only those of this webhook.
        #[arg(long, value_name = "ID")]
        webhook: Option<i64>,
        /// How many of the newest.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

/// Runs a `webhook …` command.
pub async fn execute(
    api: &impl WebhooksApi,
    out: &Printer,
    command: WebhookCommand,
) -> Result<(), CliError> {
    match command {
        WebhookCommand::Add { url, events } => {
            out.webhook_added(&api.add_webhook(NewWebhook { url, events }).await?);
        }
        WebhookCommand::List => out.webhooks(&api.webhooks().await?),
        WebhookCommand::Remove { id } => {
            api.remove_webhook(id).await?;
            out.say(&format!("webhook {id} removed"));
        }
        WebhookCommand::Deliveries { webhook, limit } => {
            out.deliveries(&api.deliveries(webhook, limit).await?);
        }
    }
    Ok(())
}
