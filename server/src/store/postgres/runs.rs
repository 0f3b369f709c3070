//! The run history, and the settling of runs whose server process ended first.
//!
//! A run records the lease of the process that owns it ([`super::leases`]); reading runs marks
//! those whose owner's lease is not live as [`INTERRUPTED`], by one conditional update, so that
//! of several servers reading at once only one marks each and logs it.

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Object};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{Postgres, corrupt, events};
use crate::model::{
    EventKind, INTERRUPTED, NewRunRecord, Run, RunEnd, RunFilter, RunOutcome, now_ms,
};
use crate::store::{Result, RunStore, StoreError};

/// Records the start of a run by this process, with its `run-started` event, in one
/// transaction; returns its id.
pub async fn start_run(db: &Postgres, run: &NewRunRecord) -> Result<i64> {
    let NewRunRecord {
        host,
        what,
        action,
        actor,
        launch,
    } = run;
    let launch = launch.and_then(|l| i64::try_from(l).ok());
    // The process's lease: the run is open while it is live, on whichever machine.
    let owner = format!("lease:{}", db.lease.id);
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    let id: i64 = tx
        .query_one(
            "INSERT INTO runs (host, what, action, started, owner, actor, launch)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            &[host, what, action, &now_ms(), &owner, actor, &launch],
        )
        .await?
        .get(0);
    events::log_by(
        &tx,
        actor,
        Some(host),
        EventKind::RunStarted,
        &format!("run {id}: {what} (action {action})"),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Marks as [`INTERRUPTED`] (failed, not finished) every open run whose owner's lease is not
/// live (the process ended, was killed, or lost the database for longer than its lease), logging
/// each once, in one transaction: of several servers reading at once, one marks each. Its
/// owner, if it was alive after all, still records the real end with [`finish_run`].
pub(super) async fn settle_interrupted(client: &mut Object) -> Result<()> {
    let tx = client.transaction().await?;
    let settled = tx
        .query(
            "UPDATE runs SET success = FALSE, outcome = $1
             WHERE finished IS NULL AND outcome IS NULL AND owner IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM servers s
                               WHERE runs.owner = 'lease:' || s.id AND s.expires > otto_now())
             RETURNING id, host",
            &[&INTERRUPTED],
        )
        .await?;
    for row in settled {
        let (id, host): (i64, String) = (row.get(0), row.get(1));
        events::log(
            &tx,
            Some(&host),
            EventKind::RunFinished,
            &format!("run {id}: {INTERRUPTED} (its server process ended first)"),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Records how a run ended (also over an [`INTERRUPTED`] mark), with its event, in one
/// transaction.
pub async fn finish_run(db: &Postgres, id: i64, end: &RunEnd) -> Result<()> {
    let elapsed_ms = end
        .elapsed
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    let host: String = tx
        .query_opt(
            "UPDATE runs SET finished = $2, success = $3, outcome = $4, exit_code = $5,
                 elapsed_ms = $6, stdout = $7, stderr = $8, truncated = $9, cancelled = $10
             WHERE id = $1 RETURNING host",
            &[
                &id,
                &now_ms(),
                &end.success,
                &end.outcome,
                &end.exit_code,
                &elapsed_ms,
                &end.stdout,
                &end.stderr,
                &end.truncated,
                &end.cancelled,
            ],
        )
        .await?
        .ok_or_else(|| StoreError::NotFound("run", id.to_string()))?
        .get(0);
    super::metrics::run_ended(&tx, now_ms(), end).await?;
    events::log(
        &tx,
        Some(&host),
        EventKind::RunFinished,
        &format!("run {id}: {}", end.outcome),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// One run.
pub async fn run(db: &Postgres, id: i64) -> Result<Run> {
    let mut client = db.client().await?;
    settle_interrupted(&mut client).await?;
    runs_where(&client, "WHERE id = $1", &[&id])
        .await?
        .pop()
        .ok_or_else(|| StoreError::NotFound("run", id.to_string()))
}

/// The newest runs `filter` matches, oldest first.
pub async fn find_runs(db: &Postgres, filter: &RunFilter) -> Result<Vec<Run>> {
    let mut client = db.client().await?;
    settle_interrupted(&mut client).await?;
    let outcome = filter.outcome.map(RunOutcome::as_str);
    let mut runs = runs_where(
        &client,
        "WHERE ($1::TEXT IS NULL OR host = $1) AND id < $3 AND ($4::TEXT IS NULL OR what = $4)
           AND ($5::TEXT IS NULL OR actor = 'cli:' || $5
                OR left(actor, length($5) + 6) = 'user:' || $5 || ' ')
           AND ($6::TEXT IS NULL
                OR ($6 = 'succeeded' AND success)
                OR ($6 = 'failed' AND NOT success AND NOT cancelled)
                OR ($6 = 'cancelled' AND cancelled)
                OR ($6 = 'running' AND finished IS NULL AND outcome IS NULL))
           AND ($7::BIGINT IS NULL OR started >= $7) AND ($8::BIGINT IS NULL OR started < $8)
           AND ($9::BIGINT IS NULL OR launch = $9)
         ORDER BY id DESC LIMIT $2",
        &[
            &filter.host,
            &i64::from(filter.limit),
            &filter.before.unwrap_or(i64::MAX),
            &filter.what,
            &filter.user,
            &outcome,
            &filter.since,
            &filter.until,
            &filter.launch.map(|l| i64::try_from(l).unwrap_or(i64::MAX)),
        ],
    )
    .await?;
    runs.reverse();
    Ok(runs)
}

/// The runs `filter` (a `WHERE` clause and what follows, over `params`) selects.
async fn runs_where(
    db: &impl GenericClient,
    filter: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Run>> {
    db.query(
        &format!(
            "SELECT id, host, what, action, started, finished, success, outcome, exit_code,
                    elapsed_ms, stdout, stderr, truncated, cancelled, actor, launch FROM runs {filter}"
        ),
        params,
    )
    .await?
    .iter()
    .map(run_row)
    .collect()
}

/// A run from the columns [`runs_where`] selects.
fn run_row(r: &Row) -> Result<Run> {
    let elapsed_ms = r
        .get::<_, Option<i64>>(9)
        .map(|ms| u64::try_from(ms).map_err(|_| corrupt("run's elapsed time", ms)))
        .transpose()?;
    Ok(Run {
        id: r.get(0),
        host: r.get(1),
        what: r.get(2),
        action: r.get(3),
        started: r.get(4),
        finished: r.get(5),
        actor: r.get(14),
        launch: r
            .get::<_, Option<i64>>(15)
            .map(|l| u64::try_from(l).map_err(|_| corrupt("run's launch", l)))
            .transpose()?,
        success: r.get(6),
        cancelled: r.get(13),
        outcome: r.get(7),
        exit_code: r.get(8),
        elapsed_ms,
        stdout: r.get(10),
        stderr: r.get(11),
        truncated: r.get(12),
    })
}

#[async_trait]
impl RunStore for Postgres {
    async fn start_run(&self, run: &NewRunRecord) -> Result<i64> {
        start_run(self, run).await
    }

    async fn finish_run(&self, id: i64, end: &RunEnd) -> Result<()> {
        finish_run(self, id, end).await
    }

    async fn run(&self, id: i64) -> Result<Run> {
        run(self, id).await
    }

    async fn find_runs(&self, filter: &RunFilter) -> Result<Vec<Run>> {
        find_runs(self, filter).await
    }
}
