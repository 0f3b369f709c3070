//! What `metrics` needs.

use crate::model::{FleetPoint, HostPoint};
use crate::ops::Ops;

use super::super::CliError;
use super::super::remote::{Remote, segment};

/// What `metrics` needs, wherever the work runs: [`Ops`] in process, the HTTP API through
/// `serve`.
pub(crate) trait MetricsApi {
    /// The fleet over the last `days` (`GET /api/v1/metrics`).
    async fn fleet_metrics(&self, days: u32) -> Result<Vec<FleetPoint>, CliError>;
    /// A host over the last `days` (`GET /api/v1/hosts/{name}/metrics`).
    async fn host_metrics(&self, name: &str, days: u32) -> Result<Vec<HostPoint>, CliError>;
}

impl MetricsApi for Ops {
    async fn fleet_metrics(&self, days: u32) -> Result<Vec<FleetPoint>, CliError> {
        Ok(Ops::fleet_metrics(self, days).await?)
    }

    async fn host_metrics(&self, name: &str, days: u32) -> Result<Vec<HostPoint>, CliError> {
        Ok(Ops::host_metrics(self, name, days).await?)
    }
}

impl MetricsApi for Remote {
    async fn fleet_metrics(&self, days: u32) -> Result<Vec<FleetPoint>, CliError> {
        Ok(self
            .get("/api/v1/metrics", &[("days", days.to_string())])
            .await?)
    }

    async fn host_metrics(&self, name: &str, days: u32) -> Result<Vec<HostPoint>, CliError> {
        let path = format!("/api/v1/hosts/{}/metrics", segment(name));
        Ok(self.get(&path, &[("days", days.to_string())]).await?)
    }
}
