//! Schedules, the claim of their due times, and the launches they started.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Sqlite, exists};
use crate::model::{Launch, NewSchedule, RunLevel, Schedule, now_ms};
use crate::store::{Result, ScheduleStore, StoreError};

const COLUMNS: &str = "id, name, cron, time_zone, enabled, run, next_due, created";

fn schedule_of(r: &Row<'_>) -> rusqlite::Result<Schedule> {
    Ok(Schedule {
        id: r.get(0)?,
        name: r.get(1)?,
        cron: r.get(2)?,
        time_zone: r.get(3)?,
        enabled: r.get(4)?,
        run: r.get(5)?,
        next_due: r.get(6)?,
        created: r.get(7)?,
    })
}

/// Adds a schedule; returns its id.
pub fn add_schedule(db: &Connection, new: &NewSchedule) -> Result<i64> {
    db.execute(
        "INSERT INTO schedules (name, cron, time_zone, enabled, run, next_due, created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            new.name,
            new.cron,
            new.time_zone,
            new.enabled,
            new.run,
            new.next_due,
            now_ms()
        ],
    )
    .map_err(exists("schedule", &new.name))?;
    Ok(db.last_insert_rowid())
}

/// Every schedule, by name.
pub fn schedules(db: &Connection) -> Result<Vec<Schedule>> {
    let mut stmt = db.prepare(&format!("SELECT {COLUMNS} FROM schedules ORDER BY name"))?;
    let rows = stmt.query_map([], schedule_of)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Schedule `name`.
pub fn schedule(db: &Connection, name: &str) -> Result<Schedule> {
    db.query_row(
        &format!("SELECT {COLUMNS} FROM schedules WHERE name = ?1"),
        [name],
        schedule_of,
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound("schedule", name.to_owned()))
}

/// Enables or disables schedule `name`, with its next due time.
pub fn set_schedule_enabled(
    db: &Connection,
    name: &str,
    enabled: bool,
    next_due: Option<i64>,
) -> Result<()> {
    let changed = db.execute(
        "UPDATE schedules SET enabled = ?2, next_due = ?3 WHERE name = ?1",
        params![name, enabled, next_due],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound("schedule", name.to_owned()));
    }
    Ok(())
}

/// Removes schedule `name` (its launches stay, no longer linked to it).
pub fn remove_schedule(db: &Connection, name: &str) -> Result<()> {
    let tx = db.unchecked_transaction()?;
    tx.execute(
        "UPDATE launches SET schedule = NULL
         WHERE schedule = (SELECT id FROM schedules WHERE name = ?1)",
        [name],
    )?;
    let changed = tx.execute("DELETE FROM schedules WHERE name = ?1", [name])?;
    if changed == 0 {
        return Err(StoreError::NotFound("schedule", name.to_owned()));
    }
    tx.commit()?;
    Ok(())
}

/// Claims due time `due` of schedule `id`, moving its next due time to `next`: true for the
/// one caller whose statement changed the row, false for any other (the time was claimed
/// already, or the schedule changed or went meanwhile).
pub fn claim_schedule(db: &Connection, id: i64, due: i64, next: Option<i64>) -> Result<bool> {
    let changed = db.execute(
        "UPDATE schedules SET next_due = ?3 WHERE id = ?1 AND enabled = 1 AND next_due = ?2",
        params![id, due, next],
    )?;
    Ok(changed == 1)
}

/// Records that schedule `schedule` started launch `launch`.
pub fn link_launch(db: &Connection, launch: u64, schedule: i64) -> Result<()> {
    let id =
        i64::try_from(launch).map_err(|_| StoreError::NotFound("launch", launch.to_string()))?;
    let changed = db.execute(
        "UPDATE launches SET schedule = ?2 WHERE id = ?1",
        params![id, schedule],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound("launch", launch.to_string()));
    }
    Ok(())
}

/// The newest `limit` launches schedule `id` started, newest first.
pub fn schedule_launches(db: &Connection, id: i64, limit: u32) -> Result<Vec<Launch>> {
    let mut stmt = db.prepare(
        "SELECT id, actor, job, hosts, started, finished, last_event, level FROM launches
         WHERE schedule = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![id, limit], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, Option<i64>>(5)?,
            r.get::<_, Option<String>>(6)?,
            r.get::<_, String>(7)?,
        ))
    })?;
    let mut launches = Vec::new();
    for row in rows {
        let (id, actor, job, hosts, started, finished, last_event, level) = row?;
        launches.push(Launch {
            id: u64::try_from(id).map_err(|_| StoreError::Corrupt("launch id", id.to_string()))?,
            actor,
            job,
            hosts: serde_json::from_str(&hosts)
                .map_err(|_| StoreError::Corrupt("launch hosts", hosts))?,
            started,
            finished,
            last_event,
            level: RunLevel::parse(&level).ok_or(StoreError::Corrupt("launch level", level))?,
            owner_live: false,
        });
    }
    Ok(launches)
}

/// The name of the schedule that started launch `launch`, if one did (and still exists).
pub fn launch_schedule(db: &Connection, launch: u64) -> Result<Option<String>> {
    let Ok(id) = i64::try_from(launch) else {
        return Ok(None);
    };
    Ok(db
        .query_row(
            "SELECT s.name FROM launches l JOIN schedules s ON s.id = l.schedule WHERE l.id = ?1",
            [id],
            |r| r.get(0),
        )
        .optional()?)
}

#[async_trait]
impl ScheduleStore for Sqlite {
    async fn add_schedule(&self, new: &NewSchedule) -> Result<i64> {
        let new = new.clone();
        self.call(move |db| add_schedule(db, &new)).await
    }

    async fn schedules(&self) -> Result<Vec<Schedule>> {
        self.read(schedules).await
    }

    async fn schedule(&self, name: &str) -> Result<Schedule> {
        let name = name.to_owned();
        self.read(move |db| schedule(db, &name)).await
    }

    async fn set_schedule_enabled(
        &self,
        name: &str,
        enabled: bool,
        next_due: Option<i64>,
    ) -> Result<()> {
        let name = name.to_owned();
        self.call(move |db| set_schedule_enabled(db, &name, enabled, next_due))
            .await
    }

    async fn remove_schedule(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.call(move |db| remove_schedule(db, &name)).await
    }

    async fn claim_schedule(&self, id: i64, due: i64, next: Option<i64>) -> Result<bool> {
        self.call(move |db| claim_schedule(db, id, due, next)).await
    }

    async fn link_launch(&self, launch: u64, schedule: i64) -> Result<()> {
        self.call(move |db| link_launch(db, launch, schedule)).await
    }

    async fn schedule_launches(&self, id: i64, limit: u32) -> Result<Vec<Launch>> {
        self.read(move |db| schedule_launches(db, id, limit)).await
    }

    async fn launch_schedule(&self, launch: u64) -> Result<Option<String>> {
        self.read(move |db| launch_schedule(db, launch)).await
    }
}
