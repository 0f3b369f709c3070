//! Schedules, the claim of their due times, and the launches they started.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::{Postgres, corrupt, exists};
use crate::model::{Launch, NewSchedule, RunLevel, Schedule, now_ms};
use crate::store::{Result, ScheduleStore, StoreError};

/// The columns [`schedule_of`] reads, in its order.
const COLUMNS: &str = "id, name, cron, time_zone, enabled, run, next_due, created";

/// A schedule from a row of [`COLUMNS`].
fn schedule_of(r: &Row) -> Schedule {
    Schedule {
        id: r.get(0),
        name: r.get(1),
        cron: r.get(2),
        time_zone: r.get(3),
        enabled: r.get(4),
        run: r.get(5),
        next_due: r.get(6),
        created: r.get(7),
    }
}

/// Adds a schedule (its name must be free); returns its id.
pub async fn add_schedule(db: &impl GenericClient, new: &NewSchedule) -> Result<i64> {
    let row = db
        .query_one(
            "INSERT INTO schedules (name, cron, time_zone, enabled, run, next_due, created)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            &[
                &new.name,
                &new.cron,
                &new.time_zone,
                &new.enabled,
                &new.run,
                &new.next_due,
                &now_ms(),
            ],
        )
        .await
        .map_err(exists("schedule", &new.name))?;
    Ok(row.get(0))
}

/// Every schedule, by name.
pub async fn schedules(db: &impl GenericClient) -> Result<Vec<Schedule>> {
    let rows = db
        .query(
            &format!("SELECT {COLUMNS} FROM schedules ORDER BY name"),
            &[],
        )
        .await?;
    Ok(rows.iter().map(schedule_of).collect())
}

/// Schedule `name`.
pub async fn schedule(db: &impl GenericClient, name: &str) -> Result<Schedule> {
    db.query_opt(
        &format!("SELECT {COLUMNS} FROM schedules WHERE name = $1"),
        &[&name],
    )
    .await?
    .map(|r| schedule_of(&r))
    .ok_or_else(|| StoreError::NotFound("schedule", name.to_owned()))
}

/// Enables or disables schedule `name`, with its next due time.
pub async fn set_schedule_enabled(
    db: &impl GenericClient,
    name: &str,
    enabled: bool,
    next_due: Option<i64>,
) -> Result<()> {
    let changed = db
        .execute(
            "UPDATE schedules SET enabled = $2, next_due = $3 WHERE name = $1",
            &[&name, &enabled, &next_due],
        )
        .await?;
    if changed == 0 {
        return Err(StoreError::NotFound("schedule", name.to_owned()));
    }
    Ok(())
}

/// Removes schedule `name` in one transaction: its launches stay, no longer linked to it.
pub async fn remove_schedule(db: &Postgres, name: &str) -> Result<()> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    let id: Option<i64> = tx
        .query_opt(
            "DELETE FROM schedules WHERE name = $1 RETURNING id",
            &[&name],
        )
        .await?
        .map(|r| r.get(0));
    let Some(id) = id else {
        return Err(StoreError::NotFound("schedule", name.to_owned()));
    };
    tx.execute(
        "UPDATE launches SET schedule = NULL WHERE schedule = $1",
        &[&id],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Claims due time `due` of schedule `id`, moving its next due time to `next`, in one
/// conditional `UPDATE`: of servers claiming the same time at once, the first to update the
/// row wins; the others' statements wait for its transaction, then find `next_due` changed
/// and update nothing (PostgreSQL re-checks the condition on the row's new version). False
/// also when the time was claimed already, or the schedule was disabled or removed meanwhile.
pub async fn claim_schedule(
    db: &impl GenericClient,
    id: i64,
    due: i64,
    next: Option<i64>,
) -> Result<bool> {
    let changed = db
        .execute(
            "UPDATE schedules SET next_due = $3 WHERE id = $1 AND enabled AND next_due = $2",
            &[&id, &due, &next],
        )
        .await?;
    Ok(changed == 1)
}

/// Records that schedule `schedule` started launch `launch`.
pub async fn link_launch(db: &impl GenericClient, launch: u64, schedule: i64) -> Result<()> {
    let id =
        i64::try_from(launch).map_err(|_| StoreError::NotFound("launch", launch.to_string()))?;
    let changed = db
        .execute(
            "UPDATE launches SET schedule = $2 WHERE id = $1",
            &[&id, &schedule],
        )
        .await?;
    if changed == 0 {
        return Err(StoreError::NotFound("launch", launch.to_string()));
    }
    Ok(())
}

/// The newest `limit` launches schedule `id` started, newest first.
pub async fn schedule_launches(
    db: &impl GenericClient,
    id: i64,
    limit: u32,
) -> Result<Vec<Launch>> {
    let rows = db
        .query(
            "SELECT id, actor, job, hosts, started, finished, last_event, level,
                    EXISTS (SELECT 1 FROM servers s
                            WHERE s.id = launches.owner AND s.expires > otto_now())
             FROM launches WHERE schedule = $1 ORDER BY id DESC LIMIT $2",
            &[&id, &i64::from(limit)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let id: i64 = r.get(0);
            let hosts: String = r.get(3);
            let level: String = r.get(7);
            Ok(Launch {
                id: u64::try_from(id).map_err(|_| corrupt("launch id", id))?,
                actor: r.get(1),
                job: r.get(2),
                hosts: serde_json::from_str(&hosts)
                    .map_err(|_| StoreError::Corrupt("launch hosts", hosts))?,
                started: r.get(4),
                finished: r.get(5),
                last_event: r.get(6),
                level: RunLevel::parse(&level).ok_or_else(|| corrupt("launch level", &level))?,
                owner_live: r.get(8),
            })
        })
        .collect()
}

/// The name of the schedule that started launch `launch`, if one did (and still exists).
pub async fn launch_schedule(db: &impl GenericClient, launch: u64) -> Result<Option<String>> {
    let Ok(id) = i64::try_from(launch) else {
        return Ok(None);
    };
    Ok(db
        .query_opt(
            "SELECT s.name FROM launches l JOIN schedules s ON s.id = l.schedule WHERE l.id = $1",
            &[&id],
        )
        .await?
        .map(|r| r.get(0)))
}

#[async_trait]
impl ScheduleStore for Postgres {
    async fn add_schedule(&self, new: &NewSchedule) -> Result<i64> {
        add_schedule(&self.client().await?, new).await
    }

    async fn schedules(&self) -> Result<Vec<Schedule>> {
        schedules(&self.client().await?).await
    }

    async fn schedule(&self, name: &str) -> Result<Schedule> {
        schedule(&self.client().await?, name).await
    }

    async fn set_schedule_enabled(
        &self,
        name: &str,
        enabled: bool,
        next_due: Option<i64>,
    ) -> Result<()> {
        set_schedule_enabled(&self.client().await?, name, enabled, next_due).await
    }

    async fn remove_schedule(&self, name: &str) -> Result<()> {
        remove_schedule(self, name).await
    }

    async fn claim_schedule(&self, id: i64, due: i64, next: Option<i64>) -> Result<bool> {
        claim_schedule(&self.client().await?, id, due, next).await
    }

    async fn link_launch(&self, launch: u64, schedule: i64) -> Result<()> {
        link_launch(&self.client().await?, launch, schedule).await
    }

    async fn schedule_launches(&self, id: i64, limit: u32) -> Result<Vec<Launch>> {
        schedule_launches(&self.client().await?, id, limit).await
    }

    async fn launch_schedule(&self, launch: u64) -> Result<Option<String>> {
        launch_schedule(&self.client().await?, launch).await
    }
}
