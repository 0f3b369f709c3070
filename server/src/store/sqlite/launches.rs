//! The HTTP API's launches.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::Sqlite;
use crate::model::{
    Launch, LaunchCounts, LaunchFilter, NewLaunch, PastLaunch, RunLevel, RunOutcome, now_ms,
};
use crate::store::{LaunchStore, Result, StoreError};

/// Records a launch starting now; returns its id.
pub fn start_launch(db: &Connection, launch: &NewLaunch) -> Result<u64> {
    let hosts = serde_json::to_string(&launch.hosts).map_err(|e| StoreError::Sql(Box::new(e)))?;
    db.execute(
        "INSERT INTO launches (actor, job, hosts, started, level, request)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            launch.actor,
            launch.job,
            hosts,
            now_ms(),
            launch.level.as_str(),
            launch.request
        ],
    )?;
    let id = db.last_insert_rowid();
    u64::try_from(id).map_err(|_| StoreError::Corrupt("launch id", id.to_string()))
}

/// Launch `id` as the table's key; an id beyond it names no launch.
fn key(id: u64) -> Result<i64> {
    i64::try_from(id).map_err(|_| StoreError::NotFound("launch", id.to_string()))
}

/// Records how launch `id` ended.
pub fn finish_launch(db: &Connection, id: u64, last_event: &str) -> Result<()> {
    let changed = db.execute(
        "UPDATE launches SET finished = ?2, last_event = ?3 WHERE id = ?1",
        params![key(id)?, now_ms(), last_event],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound("launch", id.to_string()));
    }
    Ok(())
}

/// One launch.
pub fn launch(db: &Connection, id: u64) -> Result<Launch> {
    let row = db
        .query_row(
            "SELECT actor, job, hosts, started, finished, last_event, level FROM launches
             WHERE id = ?1",
            [key(id)?],
            |r| {
                Ok((
                    Launch {
                        id,
                        actor: r.get(0)?,
                        job: r.get(1)?,
                        hosts: Vec::new(),
                        started: r.get(3)?,
                        finished: r.get(4)?,
                        last_event: r.get(5)?,
                        level: RunLevel::ReadWrite,
                        owner_live: false,
                    },
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(6)?,
                ))
            },
        )
        .optional()?;
    let (mut launch, hosts, level) =
        row.ok_or_else(|| StoreError::NotFound("launch", id.to_string()))?;
    launch.level = RunLevel::parse(&level).ok_or(StoreError::Corrupt("launch level", level))?;
    launch.hosts =
        serde_json::from_str(&hosts).map_err(|_| StoreError::Corrupt("launch hosts", hosts))?;
    Ok(launch)
}

/// Adds relayed events of launch `id`; whether a cancel of it was asked for.
pub fn relay_launch_events(db: &Connection, id: u64, events: &[(u64, String)]) -> Result<bool> {
    let launch = key(id)?;
    let tx = db.unchecked_transaction()?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO launch_events (launch, seq, event) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
        )?;
        for (seq, text) in events {
            let seq = i64::try_from(*seq)
                .map_err(|_| StoreError::Corrupt("launch event number", seq.to_string()))?;
            insert.execute(params![launch, seq, text])?;
        }
    }
    let asked: Option<bool> = tx
        .query_row(
            "SELECT cancel_asked FROM launches WHERE id = ?1",
            [launch],
            |r| r.get(0),
        )
        .optional()?;
    let asked = asked.ok_or_else(|| StoreError::NotFound("launch", id.to_string()))?;
    tx.commit()?;
    Ok(asked)
}

/// The relayed events of launch `id` from number `from` on, at most `limit`.
pub fn launch_events(
    db: &Connection,
    id: u64,
    from: u64,
    limit: u32,
) -> Result<Vec<(u64, String)>> {
    let from = i64::try_from(from).unwrap_or(i64::MAX);
    let mut query = db.prepare_cached(
        "SELECT seq, event FROM launch_events WHERE launch = ?1 AND seq >= ?2
         ORDER BY seq LIMIT ?3",
    )?;
    let rows = query.query_map(params![key(id)?, from, limit], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut events = Vec::new();
    for row in rows {
        let (seq, text) = row?;
        let seq = u64::try_from(seq)
            .map_err(|_| StoreError::Corrupt("launch event number", seq.to_string()))?;
        events.push((seq, text));
    }
    Ok(events)
}

/// Asks for launch `id` to be cancelled; false if it has ended.
pub fn ask_cancel(db: &Connection, id: u64) -> Result<bool> {
    let running: Option<bool> = db
        .query_row(
            "UPDATE launches SET cancel_asked = (finished IS NULL) WHERE id = ?1
             RETURNING finished IS NULL",
            [key(id)?],
            |r| r.get(0),
        )
        .optional()?;
    running.ok_or_else(|| StoreError::NotFound("launch", id.to_string()))
}

/// Forgets the relayed events of launches that ended before `before` (one server keeps its
/// launches itself: none runs elsewhere).
pub fn prune_launch_events(db: &Connection, before: i64) -> Result<u64> {
    let gone = db.execute(
        "DELETE FROM launch_events
         WHERE launch IN (SELECT id FROM launches WHERE finished < ?1)",
        [before],
    )?;
    Ok(gone as u64)
}

/// The launches `condition` (a `WHERE` clause and what follows, over `params`) selects, as
/// the history lists them, with how their runs stand (runs of ended processes settled first).
fn launches_where(
    db: &Connection,
    condition: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<Vec<PastLaunch>> {
    super::runs::settle_interrupted(db)?;
    let mut query = db.prepare(&format!(
        "SELECT l.id, l.actor, l.job, l.hosts, l.started, l.finished,
                l.request IS NOT NULL, (SELECT name FROM schedules s WHERE s.id = l.schedule),
                count(CASE WHEN r.success = 1 THEN 1 END),
                count(CASE WHEN r.success = 0 AND NOT r.cancelled THEN 1 END),
                count(CASE WHEN r.cancelled THEN 1 END),
                count(CASE WHEN r.id IS NOT NULL AND r.finished IS NULL AND r.outcome IS NULL
                      THEN 1 END)
         FROM launches l LEFT JOIN runs r ON r.launch = l.id {condition}"
    ))?;
    let rows = query.query_map(params, |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(3)?,
            PastLaunch {
                id: 0,
                actor: r.get(1)?,
                job: r.get(2)?,
                hosts: Vec::new(),
                started: r.get(4)?,
                finished: r.get(5)?,
                relaunchable: r.get(6)?,
                schedule: r.get(7)?,
                runs: LaunchCounts {
                    succeeded: r.get(8)?,
                    failed: r.get(9)?,
                    cancelled: r.get(10)?,
                    running: r.get(11)?,
                },
            },
        ))
    })?;
    let mut launches = Vec::new();
    for row in rows {
        let (id, hosts, mut launch) = row?;
        launch.id =
            u64::try_from(id).map_err(|_| StoreError::Corrupt("launch id", id.to_string()))?;
        launch.hosts =
            serde_json::from_str(&hosts).map_err(|_| StoreError::Corrupt("launch hosts", hosts))?;
        launches.push(launch);
    }
    Ok(launches)
}

/// The newest launches `filter` matches, oldest first.
pub fn find_launches(db: &Connection, filter: &LaunchFilter) -> Result<Vec<PastLaunch>> {
    let before = filter
        .before
        .map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
    let mut launches = launches_where(
        db,
        "WHERE l.id < ?2 AND (?3 IS NULL OR l.job = ?3)
           AND (?4 IS NULL OR l.actor = 'cli:' || ?4
                OR substr(l.actor, 1, length(?4) + 6) = 'user:' || ?4 || ' ')
           AND (?5 IS NULL OR EXISTS (SELECT 1 FROM runs o WHERE o.launch = l.id AND (
                   (?5 = 'succeeded' AND o.success = 1)
                OR (?5 = 'failed' AND o.success = 0 AND NOT o.cancelled)
                OR (?5 = 'cancelled' AND o.cancelled)
                OR (?5 = 'running' AND o.finished IS NULL AND o.outcome IS NULL))))
           AND (?6 IS NULL OR l.started >= ?6) AND (?7 IS NULL OR l.started < ?7)
         GROUP BY l.id ORDER BY l.id DESC LIMIT ?1",
        params![
            filter.limit,
            before,
            filter.what,
            filter.user,
            filter.outcome.map(RunOutcome::as_str),
            filter.since,
            filter.until
        ],
    )?;
    launches.reverse();
    Ok(launches)
}

/// Launch `id` as the history lists it.
pub fn past_launch(db: &Connection, id: u64) -> Result<PastLaunch> {
    launches_where(db, "WHERE l.id = ?1 GROUP BY l.id", params![key(id)?])?
        .pop()
        .ok_or_else(|| StoreError::NotFound("launch", id.to_string()))
}

/// What launch `id` asked for, if it can be started again.
pub fn launch_request(db: &Connection, id: u64) -> Result<Option<String>> {
    db.query_row(
        "SELECT request FROM launches WHERE id = ?1",
        [key(id)?],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound("launch", id.to_string()))
}

#[async_trait]
impl LaunchStore for Sqlite {
    async fn start_launch(&self, launch: &NewLaunch) -> Result<u64> {
        let launch = launch.clone();
        self.call(move |db| start_launch(db, &launch)).await
    }

    async fn finish_launch(&self, id: u64, last_event: &str) -> Result<()> {
        let last_event = last_event.to_owned();
        self.call(move |db| finish_launch(db, id, &last_event))
            .await
    }

    async fn launch(&self, id: u64) -> Result<Launch> {
        self.read(move |db| launch(db, id)).await
    }

    async fn relay_launch_events(&self, id: u64, events: &[(u64, String)]) -> Result<bool> {
        let events = events.to_vec();
        self.call(move |db| relay_launch_events(db, id, &events))
            .await
    }

    async fn launch_events(&self, id: u64, from: u64, limit: u32) -> Result<Vec<(u64, String)>> {
        self.read(move |db| launch_events(db, id, from, limit))
            .await
    }

    async fn ask_cancel(&self, id: u64) -> Result<bool> {
        self.call(move |db| ask_cancel(db, id)).await
    }

    async fn prune_launch_events(&self, before: i64) -> Result<u64> {
        self.call(move |db| prune_launch_events(db, before)).await
    }

    async fn find_launches(&self, filter: &LaunchFilter) -> Result<Vec<PastLaunch>> {
        let filter = filter.clone();
        self.call(move |db| find_launches(db, &filter)).await
    }

    async fn past_launch(&self, id: u64) -> Result<PastLaunch> {
        self.call(move |db| past_launch(db, id)).await
    }

    async fn launch_request(&self, id: u64) -> Result<Option<String>> {
        self.read(move |db| launch_request(db, id)).await
    }
}
