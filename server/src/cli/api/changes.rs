//! What `changes` needs.

use reqwest::Method;

use crate::ops::{Cancellation, FleetChange, Ops};

use super::super::CliError;
use super::super::remote::{Payload, Remote, RemoteError, chain};
use super::runs::next_event;

/// What `changes` needs, wherever the work runs: [`Ops`] in process (the store read every
/// second), the HTTP API through `serve` (`GET /api/v1/changes`, Server-Sent Events).
pub(crate) trait ChangesApi {
    /// Follows the fleet's changes after event `after` (none: from now on), each to `told`,
    /// until the stream ends (through `serve`: it stopping).
    async fn follow_changes(
        &self,
        after: Option<i64>,
        told: &mut dyn FnMut(&FleetChange),
    ) -> Result<(), CliError>;
}

impl ChangesApi for Ops {
    async fn follow_changes(
        &self,
        after: Option<i64>,
        told: &mut dyn FnMut(&FleetChange),
    ) -> Result<(), CliError> {
        let mut feed = self.changes(after, Cancellation::new()).await?;
        while let Some(change) = feed.next().await {
            told(&change);
        }
        Ok(())
    }
}

impl ChangesApi for Remote {
    async fn follow_changes(
        &self,
        after: Option<i64>,
        told: &mut dyn FnMut(&FleetChange),
    ) -> Result<(), CliError> {
        let query: Vec<(&str, String)> = after
            .map(|a| ("after", a.to_string()))
            .into_iter()
            .collect();
        let mut response = self
            .request(Method::GET, "/api/v1/changes", &query, Payload::Empty)
            .await?;
        let mut buffer = Vec::new();
        loop {
            while let Some(data) = next_event(&mut buffer) {
                let change: FleetChange =
                    serde_json::from_str(&data).map_err(|e| RemoteError::Answer(e.to_string()))?;
                told(&change);
            }
            match response.chunk().await {
                Ok(Some(chunk)) => buffer.extend_from_slice(&chunk),
                Ok(None) => return Ok(()),
                Err(e) => {
                    let url = self.base().to_string();
                    return Err(RemoteError::Unreachable(url, chain(&e)).into());
                }
            }
        }
    }
}
