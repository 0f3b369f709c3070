//! What `webhook …` needs.

use reqwest::Method;

use crate::model::{Delivery, Webhook};
use crate::ops::{AddedWebhook, NewWebhook, Ops};

use super::super::CliError;
use super::super::remote::Remote;

/// What `webhook …` needs, wherever the work runs: [`Ops`] in process, the HTTP API through
/// `serve`.
pub(crate) trait WebhooksApi {
    /// Adds a webhook (`POST /api/v1/webhooks`): it, and its secret, shown once.
    async fn add_webhook(&self, new: NewWebhook) -> Result<AddedWebhook, CliError>;
    /// Every webhook (`GET /api/v1/webhooks`).
    async fn webhooks(&self) -> Result<Vec<Webhook>, CliError>;
    /// Removes a webhook (`DELETE /api/v1/webhooks/{id}`).
    async fn remove_webhook(&self, id: i64) -> Result<(), CliError>;
    /// The newest deliveries (`GET /api/v1/webhooks/deliveries`).
    async fn deliveries(&self, webhook: Option<i64>, limit: u32)
    -> Result<Vec<Delivery>, CliError>;
}

impl WebhooksApi for Ops {
    async fn add_webhook(&self, new: NewWebhook) -> Result<AddedWebhook, CliError> {
        Ok(Ops::add_webhook(self, &new).await?)
    }

    async fn webhooks(&self) -> Result<Vec<Webhook>, CliError> {
        Ok(Ops::webhooks(self).await?)
    }

    async fn remove_webhook(&self, id: i64) -> Result<(), CliError> {
        Ok(Ops::remove_webhook(self, id).await?)
    }

    async fn deliveries(
        &self,
        webhook: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Delivery>, CliError> {
        Ok(self.webhook_deliveries(webhook, limit).await?)
    }
}

impl WebhooksApi for Remote {
    async fn add_webhook(&self, new: NewWebhook) -> Result<AddedWebhook, CliError> {
        Ok(self.call(Method::POST, "/api/v1/webhooks", &new).await?)
    }

    async fn webhooks(&self) -> Result<Vec<Webhook>, CliError> {
        Ok(self.get("/api/v1/webhooks", &[]).await?)
    }

    async fn remove_webhook(&self, id: i64) -> Result<(), CliError> {
        let path = format!("/api/v1/webhooks/{id}");
        self.send(Method::DELETE, &path, &()).await?;
        Ok(())
    }

    async fn deliveries(
        &self,
        webhook: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Delivery>, CliError> {
        let mut query = vec![("limit", limit.to_string())];
        query.extend(webhook.map(|w| ("webhook", w.to_string())));
        Ok(self.get("/api/v1/webhooks/deliveries", &query).await?)
    }
}
