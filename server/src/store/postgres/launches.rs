//! The HTTP API's launches. Their ids come from the table's identity, so a launch's id is never
//! one used before, whichever server started it.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;

use super::{Postgres, corrupt};
use crate::model::{Launch, NewLaunch, now_ms};
use crate::store::{LaunchStore, Result, StoreError};

/// Records a launch starting now; returns its id.
pub async fn start_launch(db: &impl GenericClient, launch: &NewLaunch) -> Result<u64> {
    let hosts = serde_json::to_string(&launch.hosts).map_err(|e| StoreError::Sql(Box::new(e)))?;
    let id: i64 = db
        .query_one(
            "INSERT INTO launches (actor, job, hosts, started) VALUES ($1, $2, $3, $4)
             RETURNING id",
            &[&launch.actor, &launch.job, &hosts, &now_ms()],
        )
        .await?
        .get(0);
    u64::try_from(id).map_err(|_| corrupt("launch id", id))
}

/// Launch `id` as the table's key; an id beyond it names no launch.
fn key(id: u64) -> Result<i64> {
    i64::try_from(id).map_err(|_| StoreError::NotFound("launch", id.to_string()))
}

/// Records how launch `id` ended.
pub async fn finish_launch(db: &impl GenericClient, id: u64, last_event: &str) -> Result<()> {
    let changed = db
        .execute(
            "UPDATE launches SET finished = $2, last_event = $3 WHERE id = $1",
            &[&key(id)?, &now_ms(), &last_event],
        )
        .await?;
    if changed == 0 {
        return Err(StoreError::NotFound("launch", id.to_string()));
    }
    Ok(())
}

/// One launch.
pub async fn launch(db: &impl GenericClient, id: u64) -> Result<Launch> {
    let row = db
        .query_opt(
            "SELECT actor, job, hosts, started, finished, last_event FROM launches WHERE id = $1",
            &[&key(id)?],
        )
        .await?
        .ok_or_else(|| StoreError::NotFound("launch", id.to_string()))?;
    let hosts: String = row.get(2);
    Ok(Launch {
        id,
        actor: row.get(0),
        job: row.get(1),
        hosts: serde_json::from_str(&hosts).map_err(|_| corrupt("launch hosts", &hosts))?,
        started: row.get(3),
        finished: row.get(4),
        last_event: row.get(5),
    })
}

#[async_trait]
impl LaunchStore for Postgres {
    async fn start_launch(&self, launch: &NewLaunch) -> Result<u64> {
        start_launch(&self.client().await?, launch).await
    }

    async fn finish_launch(&self, id: u64, last_event: &str) -> Result<()> {
        finish_launch(&self.client().await?, id, last_event).await
    }

    async fn launch(&self, id: u64) -> Result<Launch> {
        launch(&self.client().await?, id).await
    }
}
