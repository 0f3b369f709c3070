//! What `check` needs.

use reqwest::Method;

use crate::ops::{Finding, Ops};

use super::super::CliError;
use super::super::remote::Remote;

/// What `check` needs, wherever the work runs: [`Ops`] in process, the HTTP API through `serve`.
pub(crate) trait CheckApi {
    /// What the database holds that breaks today's rules (`GET /api/v1/check`).
    async fn check_names(&self) -> Result<Vec<Finding>, CliError>;
}

impl CheckApi for Ops {
    async fn check_names(&self) -> Result<Vec<Finding>, CliError> {
        Ok(Ops::check_names(self).await?)
    }
}

impl CheckApi for Remote {
    async fn check_names(&self) -> Result<Vec<Finding>, CliError> {
        Ok(self.call(Method::GET, "/api/v1/check", &()).await?)
    }
}
