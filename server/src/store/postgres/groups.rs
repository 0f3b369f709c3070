//! TODO(postgres): GroupStore on PostgreSQL.

#![allow(unused_variables)]

use async_trait::async_trait;

use super::Postgres;
use crate::model::*;
use crate::store::*;

#[async_trait]
impl GroupStore for Postgres {
    async fn add_group(&self, name: &str) -> Result<()> {
        unimplemented!("postgres")
    }
    async fn remove_group(&self, name: &str) -> Result<()> {
        unimplemented!("postgres")
    }
    async fn groups(&self) -> Result<Vec<Group>> {
        unimplemented!("postgres")
    }
    async fn set_membership(&self, group: &str, host: &str, member: bool) -> Result<()> {
        unimplemented!("postgres")
    }
    async fn set_group_script(&self, group: &str, script: &str, assigned: bool) -> Result<()> {
        unimplemented!("postgres")
    }
}
