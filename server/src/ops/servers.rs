//! The servers sharing the store: every `serve` on one PostgreSQL database, with its lease and
//! the hosts it owns, and which of them is this process. On SQLite there is one server, and the
//! list is empty.

use serde::{Deserialize, Serialize};

use super::{Ops, Result};
use crate::model::ServerLease;

/// A server sharing the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServerEntry {
    /// Its lease, and how many hosts it owns.
    #[serde(flatten)]
    pub lease: ServerLease,
    /// Whether it is the process that answered (through the API: that `serve`).
    pub this: bool,
}

impl Ops {
    /// The servers sharing the store whose lease is live or ran out within the hour, by name;
    /// empty on SQLite, whose one server holds no lease. Any signed-in user may read it.
    pub async fn servers(&self) -> Result<Vec<ServerEntry>> {
        let store = self.fleet.store();
        let this = store.lease_id();
        Ok(store
            .servers()
            .await?
            .into_iter()
            .map(|lease| ServerEntry {
                this: this == Some(lease.id.as_str()),
                lease,
            })
            .collect())
    }
}
