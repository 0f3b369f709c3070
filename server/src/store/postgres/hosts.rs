//! TODO(postgres): HostStore on PostgreSQL (add_host is done: enrollment uses it).

#![allow(unused_variables)]

use async_trait::async_trait;
use deadpool_postgres::GenericClient;

use super::{Postgres, exists};
use crate::model::*;
use crate::store::*;

/// Adds a host; its name must follow the rule of [`crate::names`].
pub async fn add_host(db: &impl GenericClient, host: &NewHost) -> Result<()> {
    crate::names::HostName::parse(&host.name)?;
    db.execute(
        "INSERT INTO hosts (name, address, port, agent_key, pin_first, last_rotation)
             VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &host.name,
            &host.address,
            &i32::from(host.port),
            &host.agent_key,
            &host.pin_on_first_contact,
            &now_ms(),
        ],
    )
    .await
    .map_err(exists("host", &host.name))?;
    Ok(())
}

#[async_trait]
impl HostStore for Postgres {
    async fn add_host(&self, host: &NewHost) -> Result<()> {
        add_host(&self.client().await?, host).await
    }
    async fn remove_host(&self, name: &str) -> Result<()> {
        unimplemented!("postgres")
    }
    async fn set_address(
        &self,
        name: &str,
        address: Option<&str>,
        port: Option<u16>,
    ) -> Result<()> {
        unimplemented!("postgres")
    }
    async fn set_enabled(&self, name: &str, enabled: bool) -> Result<()> {
        unimplemented!("postgres")
    }
    async fn host(&self, name: &str) -> Result<Host> {
        unimplemented!("postgres")
    }
    async fn hosts(&self) -> Result<Vec<Host>> {
        unimplemented!("postgres")
    }
    async fn group_hosts(&self, group: &str) -> Result<Vec<Host>> {
        unimplemented!("postgres")
    }
    async fn pin_agent_key(&self, name: &str, key: &str) -> Result<()> {
        unimplemented!("postgres")
    }
    async fn set_pending_key(&self, name: &str, key: &str, fingerprint: &str) -> Result<()> {
        unimplemented!("postgres")
    }
    async fn drop_pending_key(&self, name: &str, key: &str) -> Result<bool> {
        unimplemented!("postgres")
    }
    async fn rotated(&self, name: &str, agent_key: &str, detail: &str, actor: &str) -> Result<()> {
        unimplemented!("postgres")
    }
    async fn heartbeat_ok(
        &self,
        name: &str,
        version: &str,
        facts: &Facts,
        round_trip_ms: f64,
    ) -> Result<()> {
        unimplemented!("postgres")
    }
    async fn heartbeat_failed(&self, name: &str, error: &str) -> Result<()> {
        unimplemented!("postgres")
    }
    async fn heartbeat_busy(&self, name: &str, error: &str) -> Result<()> {
        unimplemented!("postgres")
    }
    async fn host_by_agent_key(&self, key: &str) -> Result<Option<String>> {
        unimplemented!("postgres")
    }
    async fn set_calls_home(&self, name: &str) -> Result<()> {
        unimplemented!("postgres")
    }
}
