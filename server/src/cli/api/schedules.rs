//! `schedule …`'s interface: [`SchedulesApi`].

use reqwest::Method;

use crate::ops::{AddSchedule, Ops, ScheduleEntry};

use super::super::CliError;
use super::super::remote::{Remote, segment};

/// What `schedule …` needs, wherever the work runs: [`Ops`] in process, the HTTP API through
/// `serve`.
pub(crate) trait SchedulesApi {
    /// Adds a schedule (`POST /api/v1/schedules`).
    async fn add_schedule(&self, add: AddSchedule) -> Result<ScheduleEntry, CliError>;
    /// Every schedule (`GET /api/v1/schedules`).
    async fn schedules(&self) -> Result<Vec<ScheduleEntry>, CliError>;
    /// One schedule with its last launches (`GET /api/v1/schedules/{name}`).
    async fn schedule(&self, name: &str) -> Result<ScheduleEntry, CliError>;
    /// Enables or disables a schedule (`PATCH /api/v1/schedules/{name}`).
    async fn set_schedule_enabled(
        &self,
        name: &str,
        enabled: bool,
    ) -> Result<ScheduleEntry, CliError>;
    /// Removes a schedule (`DELETE /api/v1/schedules/{name}`).
    async fn remove_schedule(&self, name: &str) -> Result<(), CliError>;
}

impl SchedulesApi for Ops {
    async fn add_schedule(&self, add: AddSchedule) -> Result<ScheduleEntry, CliError> {
        Ok(Ops::add_schedule(self, add).await?)
    }

    async fn schedules(&self) -> Result<Vec<ScheduleEntry>, CliError> {
        Ok(Ops::schedules(self).await?)
    }

    async fn schedule(&self, name: &str) -> Result<ScheduleEntry, CliError> {
        Ok(Ops::schedule(self, name).await?)
    }

    async fn set_schedule_enabled(
        &self,
        name: &str,
        enabled: bool,
    ) -> Result<ScheduleEntry, CliError> {
        Ok(Ops::set_schedule_enabled(self, name, enabled).await?)
    }

    async fn remove_schedule(&self, name: &str) -> Result<(), CliError> {
        Ok(Ops::remove_schedule(self, name).await?)
    }
}

/// The path of schedule `name`.
fn path(name: &str) -> String {
    format!("/api/v1/schedules/{}", segment(name))
}

impl SchedulesApi for Remote {
    async fn add_schedule(&self, add: AddSchedule) -> Result<ScheduleEntry, CliError> {
        Ok(self.call(Method::POST, "/api/v1/schedules", &add).await?)
    }

    async fn schedules(&self) -> Result<Vec<ScheduleEntry>, CliError> {
        Ok(self.get("/api/v1/schedules", &[]).await?)
    }

    async fn schedule(&self, name: &str) -> Result<ScheduleEntry, CliError> {
        Ok(self.get(&path(name), &[]).await?)
    }

    async fn set_schedule_enabled(
        &self,
        name: &str,
        enabled: bool,
    ) -> Result<ScheduleEntry, CliError> {
        let body = serde_json::json!({ "enabled": enabled });
        Ok(self.call(Method::PATCH, &path(name), &body).await?)
    }

    async fn remove_schedule(&self, name: &str) -> Result<(), CliError> {
        self.send(Method::DELETE, &path(name), &()).await?;
        Ok(())
    }
}
