//! What `servers` needs.

use crate::ops::{Ops, ServerEntry};

use super::super::CliError;
use super::super::remote::Remote;

/// What `servers` needs, wherever the work runs: [`Ops`] in process, the HTTP API through
/// `serve`.
pub(crate) trait ServersApi {
    /// The servers sharing the store, empty on SQLite (`GET /api/v1/servers`).
    async fn servers(&self) -> Result<Vec<ServerEntry>, CliError>;
}

impl ServersApi for Ops {
    async fn servers(&self) -> Result<Vec<ServerEntry>, CliError> {
        Ok(Ops::servers(self).await?)
    }
}

impl ServersApi for Remote {
    async fn servers(&self) -> Result<Vec<ServerEntry>, CliError> {
        Ok(self.get("/api/v1/servers", &[]).await?)
    }
}
