//! The HTTP API's launches.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::Sqlite;
use crate::model::{Launch, NewLaunch, now_ms};
use crate::store::{LaunchStore, Result, StoreError};

/// Records a launch starting now; returns its id.
pub fn start_launch(db: &Connection, launch: &NewLaunch) -> Result<u64> {
    let hosts = serde_json::to_string(&launch.hosts).map_err(|e| StoreError::Sql(Box::new(e)))?;
    db.execute(
        "INSERT INTO launches (actor, job, hosts, started) VALUES (?1, ?2, ?3, ?4)",
        params![launch.actor, launch.job, hosts, now_ms()],
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
            "SELECT actor, job, hosts, started, finished, last_event FROM launches WHERE id = ?1",
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
                    },
                    r.get::<_, String>(2)?,
                ))
            },
        )
        .optional()?;
    let (mut launch, hosts) = row.ok_or_else(|| StoreError::NotFound("launch", id.to_string()))?;
    launch.hosts =
        serde_json::from_str(&hosts).map_err(|_| StoreError::Corrupt("launch hosts", hosts))?;
    Ok(launch)
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
        self.call(move |db| launch(db, id)).await
    }
}
