//! The run history, and the settling of runs whose server process ended first.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Sqlite, events};
use crate::model::{
    EventKind, INTERRUPTED, NewRunRecord, Run, RunEnd, RunFilter, RunOutcome, now_ms,
};
use crate::store::owner::{Liveness, Owner};
use crate::store::{Result, RunStore, StoreError};

/// Records the start of a run by this process, asked for by `actor`, part of `launch` if
/// given; returns its id.
pub fn start_run(db: &Connection, run: &NewRunRecord) -> Result<i64> {
    let NewRunRecord {
        host,
        what,
        action,
        actor,
        launch,
    } = run;
    let owner = Owner::current().map(|o| o.to_string());
    let launch = launch.and_then(|l| i64::try_from(l).ok());
    db.execute(
        "INSERT INTO runs (host, what, action, started, owner, actor, launch)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![host, what, action, now_ms(), owner, actor, launch],
    )?;
    let id = db.last_insert_rowid();
    events::log_by(
        db,
        actor,
        Some(host),
        EventKind::RunStarted,
        &format!("run {id}: {what} (action {action})"),
    )?;
    Ok(id)
}

/// Marks as [`INTERRUPTED`] (failed, not finished) every open run whose owner process is
/// gone. Its owner, if it was alive after all, still records the real end with
/// [`finish_run`].
pub(super) fn settle_interrupted(db: &Connection) -> Result<()> {
    let open: Vec<(i64, String, String)> = db
        .prepare(
            "SELECT id, host, owner FROM runs
             WHERE finished IS NULL AND outcome IS NULL AND owner IS NOT NULL",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (id, host, owner) in open {
        let gone = Owner::parse(&owner).is_some_and(|o| o.liveness() == Liveness::Gone);
        if !gone {
            continue;
        }
        let changed = db.execute(
            "UPDATE runs SET success = 0, outcome = ?2
             WHERE id = ?1 AND finished IS NULL AND outcome IS NULL",
            params![id, INTERRUPTED],
        )?;
        if changed > 0 {
            events::log(
                db,
                Some(&host),
                EventKind::RunFinished,
                &format!("run {id}: {INTERRUPTED} (its server process ended first)"),
            )?;
        }
    }
    Ok(())
}

/// Records how a run ended (also over an [`INTERRUPTED`] mark).
pub fn finish_run(db: &Connection, id: i64, end: &RunEnd) -> Result<()> {
    let host: String = db
        .query_row("SELECT host FROM runs WHERE id = ?1", [id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NotFound("run", id.to_string()))?;
    let now = now_ms();
    super::metrics::run_ended(db, now, end)?;
    db.execute(
        "UPDATE runs SET finished = ?2, success = ?3, outcome = ?4, exit_code = ?5, elapsed_ms = ?6,
             stdout = ?7, stderr = ?8, truncated = ?9, cancelled = ?10 WHERE id = ?1",
        params![
            id,
            now,
            end.success,
            end.outcome,
            end.exit_code,
            end.elapsed.map(|d| d.as_millis() as i64),
            end.stdout,
            end.stderr,
            end.truncated,
            end.cancelled
        ],
    )?;
    events::log(
        db,
        Some(&host),
        EventKind::RunFinished,
        &format!("run {id}: {}", end.outcome),
    )
}

/// One run.
pub fn run(db: &Connection, id: i64) -> Result<Run> {
    settle_interrupted(db)?;
    runs_where(db, "WHERE id = ?1", params![id])?
        .pop()
        .ok_or_else(|| StoreError::NotFound("run", id.to_string()))
}

/// The newest runs `filter` matches, oldest first.
pub fn find_runs(db: &Connection, filter: &RunFilter) -> Result<Vec<Run>> {
    settle_interrupted(db)?;
    let outcome = filter.outcome.map(RunOutcome::as_str);
    let mut runs = runs_where(
        db,
        "WHERE (?1 IS NULL OR host = ?1) AND id < ?3 AND (?4 IS NULL OR what = ?4)
           AND (?5 IS NULL OR actor = 'cli:' || ?5
                OR substr(actor, 1, length(?5) + 6) = 'user:' || ?5 || ' ')
           AND (?6 IS NULL
                OR (?6 = 'succeeded' AND success = 1)
                OR (?6 = 'failed' AND success = 0 AND NOT cancelled)
                OR (?6 = 'cancelled' AND cancelled)
                OR (?6 = 'running' AND finished IS NULL AND outcome IS NULL))
           AND (?7 IS NULL OR started >= ?7) AND (?8 IS NULL OR started < ?8)
           AND (?9 IS NULL OR launch = ?9)
         ORDER BY id DESC LIMIT ?2",
        params![
            filter.host,
            filter.limit,
            filter.before.unwrap_or(i64::MAX),
            filter.what,
            filter.user,
            outcome,
            filter.since,
            filter.until,
            filter.launch.map(|l| i64::try_from(l).unwrap_or(i64::MAX))
        ],
    )?;
    runs.reverse();
    Ok(runs)
}

fn runs_where(db: &Connection, filter: &str, params: &[&dyn rusqlite::ToSql]) -> Result<Vec<Run>> {
    let mut stmt = db.prepare(&format!(
        "SELECT id, host, what, action, started, finished, success, outcome, exit_code, elapsed_ms,
                stdout, stderr, truncated, cancelled, actor, launch FROM runs {filter}"
    ))?;
    let runs = stmt
        .query_map(params, run_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(runs)
}

fn run_row(r: &Row<'_>) -> rusqlite::Result<Run> {
    Ok(Run {
        id: r.get(0)?,
        host: r.get(1)?,
        what: r.get(2)?,
        action: r.get(3)?,
        started: r.get(4)?,
        finished: r.get(5)?,
        actor: r.get(14)?,
        launch: r
            .get::<_, Option<i64>>(15)?
            .and_then(|l| u64::try_from(l).ok()),
        success: r.get(6)?,
        cancelled: r.get(13)?,
        outcome: r.get(7)?,
        exit_code: r.get(8)?,
        elapsed_ms: r.get::<_, Option<i64>>(9)?.map(|ms| ms.max(0) as u64),
        stdout: r.get(10)?,
        stderr: r.get(11)?,
        truncated: r.get(12)?,
    })
}

#[async_trait]
impl RunStore for Sqlite {
    async fn start_run(&self, run: &NewRunRecord) -> Result<i64> {
        let run = run.clone();
        // With its event, one write committed with the other hosts' ([`Sqlite::write`]).
        self.write(move |db| start_run(db, &run)).await
    }

    async fn finish_run(&self, id: i64, end: &RunEnd) -> Result<()> {
        let end = end.clone();
        self.write(move |db| finish_run(db, id, &end)).await
    }

    async fn run(&self, id: i64) -> Result<Run> {
        self.call(move |db| run(db, id)).await
    }

    async fn find_runs(&self, filter: &RunFilter) -> Result<Vec<Run>> {
        let filter = filter.clone();
        self.call(move |db| find_runs(db, &filter)).await
    }
}
