//! Leases on an SQLite file: it is one server's, whose process owns every enabled host.
//! Several servers sharing one fleet need PostgreSQL ([`crate::store::postgres::leases`]).

use async_trait::async_trait;

use super::Sqlite;
use crate::model::{RelayServer, ServerLease};
use crate::store::{LeaseStore, Result};

#[async_trait]
impl LeaseStore for Sqlite {
    fn lease_id(&self) -> Option<&str> {
        None
    }

    fn lease_live(&self) -> bool {
        true
    }

    async fn claim_hosts(&self) -> Result<Vec<String>> {
        self.call(|db| {
            let mut stmt = db.prepare("SELECT name FROM hosts WHERE enabled ORDER BY name")?;
            let names = stmt
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(names)
        })
        .await
    }

    async fn take_host(&self, _host: &str) -> Result<()> {
        Ok(())
    }

    async fn end_lease(&self) -> Result<()> {
        Ok(())
    }

    async fn servers(&self) -> Result<Vec<ServerLease>> {
        Ok(Vec::new())
    }

    async fn advertise_relay(&self, _address: &str, _certificate: &str) -> Result<()> {
        Ok(())
    }

    async fn host_relay(&self, _host: &str) -> Result<Option<RelayServer>> {
        Ok(None)
    }
}
