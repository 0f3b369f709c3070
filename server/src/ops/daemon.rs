//! What the daemon (`serve`) records of its own periodic jobs.

use crate::model::EventKind;

use super::{Ops, Result};

impl Ops {
    /// Records that stopping the daemon cut short a job's work on `host`, in the job's words.
    pub async fn cut_short(&self, host: &str, detail: &str) -> Result<()> {
        self.record(Some(host), EventKind::CutShort, detail).await
    }
}
