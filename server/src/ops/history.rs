//! What was run, and what happened: the run history and the event log.

use std::collections::HashSet;

use crate::model::{Event, EventFilter, EventKind, LaunchFilter, PastLaunch, Run, RunFilter};

use super::{NewRun, Ops, OpsError, Result, Targets};

impl Ops {
    /// The newest launches `filter` matches, oldest first, with how their hosts' runs stand:
    /// by job, user, outcome (of any of its runs) and time, a page at a time (`before`).
    pub async fn find_launches(&self, filter: &LaunchFilter) -> Result<Vec<PastLaunch>> {
        Ok(self.fleet.store().find_launches(filter).await?)
    }

    /// One launch as the history lists it (its runs: [`Ops::find_history`] with its id).
    pub async fn past_launch(&self, id: u64) -> Result<PastLaunch> {
        Ok(self.fleet.store().past_launch(id).await?)
    }

    /// What to start to run launch `id` again: what it asked for (its targets chosen anew), or
    /// with `failed_only` on the hosts of it that did not succeed (failed, cancelled, not
    /// reached, or skipped), by name. An upload or update cannot be started again (its file is
    /// not kept), nor `failed_only` a launch still running or where every host succeeded:
    /// `Conflict`.
    pub async fn relaunch_request(&self, id: u64, failed_only: bool) -> Result<NewRun> {
        let store = self.fleet.store();
        let Some(text) = store.launch_request(id).await? else {
            return Err(OpsError::Conflict(format!(
                "launch {id} is an upload or an update, whose file is not kept: start it anew"
            )));
        };
        let mut request: NewRun = serde_json::from_str(&text)
            .map_err(|e| OpsError::Conflict(format!("launch {id}'s request is unreadable: {e}")))?;
        if failed_only {
            let launch = store.past_launch(id).await?;
            if launch.finished.is_none() {
                return Err(OpsError::Conflict(format!(
                    "launch {id} has not ended: its failed hosts are not known yet"
                )));
            }
            let filter = RunFilter {
                launch: Some(id),
                limit: u32::try_from(launch.hosts.len()).unwrap_or(u32::MAX).max(1),
                ..RunFilter::default()
            };
            let succeeded: HashSet<String> = store
                .find_runs(&filter)
                .await?
                .into_iter()
                .filter(|r| r.success == Some(true))
                .map(|r| r.host)
                .collect();
            let failed: Vec<String> = launch
                .hosts
                .into_iter()
                .filter(|h| !succeeded.contains(h))
                .collect();
            if failed.is_empty() {
                return Err(OpsError::Conflict(format!(
                    "every host of launch {id} succeeded: none to run again"
                )));
            }
            request.targets = Targets::hosts(failed);
        }
        Ok(request)
    }

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
            .start_run(&crate::store::suite::run_record(
                "r1",
                "hello",
                "00ff",
                "cli:alice",
            ))
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
        let second = store
            .start_run(&crate::store::suite::run_record(
                "r2",
                "x",
                "01",
                "cli:alice",
            ))
            .await
            .unwrap();
        let third = store
            .start_run(&crate::store::suite::run_record(
                "r1",
                "x",
                "02",
                "cli:alice",
            ))
            .await
            .unwrap();
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
