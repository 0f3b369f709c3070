//! TODO(postgres): ScheduleStore on PostgreSQL.

#![allow(unused_variables)]

use async_trait::async_trait;

use super::Postgres;
use crate::model::*;
use crate::store::*;

#[async_trait]
impl ScheduleStore for Postgres {
    async fn add_schedule(&self, new: &NewSchedule) -> Result<i64> {
        unimplemented!("postgres")
    }
    async fn schedules(&self) -> Result<Vec<Schedule>> {
        unimplemented!("postgres")
    }
    async fn schedule(&self, name: &str) -> Result<Schedule> {
        unimplemented!("postgres")
    }
    async fn set_schedule_enabled(
        &self,
        name: &str,
        enabled: bool,
        next_due: Option<i64>,
    ) -> Result<()> {
        unimplemented!("postgres")
    }
    async fn remove_schedule(&self, name: &str) -> Result<()> {
        unimplemented!("postgres")
    }
    async fn claim_schedule(&self, id: i64, due: i64, next: Option<i64>) -> Result<bool> {
        unimplemented!("postgres")
    }
    async fn link_launch(&self, launch: u64, schedule: i64) -> Result<()> {
        unimplemented!("postgres")
    }
    async fn schedule_launches(&self, id: i64, limit: u32) -> Result<Vec<Launch>> {
        unimplemented!("postgres")
    }
    async fn launch_schedule(&self, launch: u64) -> Result<Option<String>> {
        unimplemented!("postgres")
    }
}
