//! What was run, and what happened: the run history and the event log.

use crate::model::{Event, EventFilter, EventKind, Run, RunFilter};

use super::{Ops, Result};

impl Ops {
    /// The run history: the newest `limit` runs, oldest first, optionally of one host.
    pub async fn history(&self, host: Option<&str>, limit: u32) -> Result<Vec<Run>> {
        Ok(self.fleet.store().runs(host, limit).await?)
    }

    /// The newest runs `filter` matches, oldest first: by host, job, user, outcome and time,
    /// a page at a time (`before`).
    pub async fn find_history(&self, filter: &RunFilter) -> Result<Vec<Run>> {
        Ok(self.fleet.store().find_runs(filter).await?)
    }

    /// One past (or running) run, with its kept output.
    pub async fn past_run(&self, id: i64) -> Result<Run> {
        Ok(self.fleet.store().run(id).await?)
    }

    /// The newest `limit` events, oldest first, optionally for one host, of one kind.
    pub async fn events(
        &self,
        host: Option<&str>,
        kind: Option<EventKind>,
        limit: u32,
    ) -> Result<Vec<Event>> {
        let filter = EventFilter {
            kind,
            ..EventFilter::newest(host, limit)
        };
        self.find_events(&filter).await
    }

    /// The newest events `filter` matches, oldest first.
    pub async fn find_events(&self, filter: &EventFilter) -> Result<Vec<Event>> {
        Ok(self.fleet.store().events(filter).await?)
    }
}

#[cfg(test)]
mod tests {
    use crate::model::RunFilter;
    use crate::ops::ErrorKind;
    use crate::ops::testing::fixture;

    #[tokio::test]
    async fn runs_and_events_are_read_and_reading_records_nothing() {
        let (_dir, ops) = fixture().await;
        let id = ops
            .fleet
            .store()
            .start_run("r1", "hello", "00ff", "cli:alice")
            .await
            .unwrap();
        assert_eq!(ops.past_run(id).await.unwrap().id, id);
        assert_eq!(ops.history(Some("r1"), 10).await.unwrap().len(), 1);
        assert!(ops.history(Some("r2"), 10).await.unwrap().is_empty());
        let missing = ops.past_run(id + 1).await.unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::NotFound);
        let before = ops.events(None, None, 100).await.unwrap();
        ops.events(Some("r1"), None, 100).await.unwrap();
        assert_eq!(ops.events(None, None, 100).await.unwrap(), before);
        // Pages go back from a run's id.
        let store = ops.fleet.store();
        let second = store.start_run("r2", "x", "01", "cli:alice").await.unwrap();
        let third = store.start_run("r1", "x", "02", "cli:alice").await.unwrap();
        let page = |host: Option<&str>, before, limit| {
            let filter = RunFilter {
                before: Some(before),
                ..RunFilter::newest(host, limit)
            };
            let ops = ops.clone();
            async move {
                let runs = ops.find_history(&filter).await.unwrap();
                runs.iter().map(|r| r.id).collect::<Vec<_>>()
            }
        };
        assert_eq!(page(None, third, 1).await, [second]);
        assert_eq!(page(None, third, 5).await, [id, second]);
        assert_eq!(page(Some("r1"), third, 5).await, [id]);
        assert!(page(None, id, 5).await.is_empty());
    }
}
