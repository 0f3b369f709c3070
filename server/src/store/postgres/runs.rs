//! TODO(postgres): RunStore on PostgreSQL.

#![allow(unused_variables)]

use async_trait::async_trait;

use super::Postgres;
use crate::model::*;
use crate::store::*;

#[async_trait]
impl RunStore for Postgres {
    async fn start_run(&self, host: &str, what: &str, action: &str, actor: &str) -> Result<i64> {
        unimplemented!("postgres")
    }
    async fn finish_run(&self, id: i64, end: &RunEnd) -> Result<()> {
        unimplemented!("postgres")
    }
    async fn run(&self, id: i64) -> Result<Run> {
        unimplemented!("postgres")
    }
    async fn runs(&self, host: Option<&str>, limit: u32) -> Result<Vec<Run>> {
        unimplemented!("postgres")
    }
    async fn runs_before(&self, host: Option<&str>, before: i64, limit: u32) -> Result<Vec<Run>> {
        unimplemented!("postgres")
    }
}
