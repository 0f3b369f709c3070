//! What was run, and what happened: the run history and the event log.

use crate::model::{Event, Run};

use super::{Ops, Result};

impl Ops {
    /// The newest `limit` runs, oldest first, optionally of one host.
    pub async fn runs(&self, host: Option<&str>, limit: u32) -> Result<Vec<Run>> {
        Ok(self.fleet.store().runs(host, limit).await?)
    }

    /// One run, with its kept output.
    pub async fn run(&self, id: i64) -> Result<Run> {
        Ok(self.fleet.store().run(id).await?)
    }

    /// The newest `limit` events, oldest first, optionally for one host.
    pub async fn events(&self, host: Option<&str>, limit: u32) -> Result<Vec<Event>> {
        Ok(self.fleet.store().events(host, limit).await?)
    }
}
