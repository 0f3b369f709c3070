//! TODO(postgres): LaunchStore on PostgreSQL.

#![allow(unused_variables)]

use async_trait::async_trait;

use super::Postgres;
use crate::model::*;
use crate::store::*;

#[async_trait]
impl LaunchStore for Postgres {
    async fn start_launch(&self, launch: &NewLaunch) -> Result<u64> {
        unimplemented!("postgres")
    }
    async fn finish_launch(&self, id: u64, last_event: &str) -> Result<()> {
        unimplemented!("postgres")
    }
    async fn launch(&self, id: u64) -> Result<Launch> {
        unimplemented!("postgres")
    }
}
