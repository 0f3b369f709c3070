//! The HTTP API's launches. Their ids come from the table's identity, so a launch's id is never
//! one used before, whichever server started it.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;

use super::{Postgres, corrupt};
use crate::model::{Launch, NewLaunch, RunLevel, now_ms};
use crate::store::{LaunchStore, Result, StoreError};

/// Records a launch starting now, run by the server whose lease is `owner`; returns its id.
pub async fn start_launch(db: &impl GenericClient, launch: &NewLaunch, owner: &str) -> Result<u64> {
    let hosts = serde_json::to_string(&launch.hosts).map_err(|e| StoreError::Sql(Box::new(e)))?;
    let id: i64 = db
        .query_one(
            "INSERT INTO launches (actor, job, hosts, started, level, owner)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[
                &launch.actor,
                &launch.job,
                &hosts,
                &now_ms(),
                &launch.level.as_str(),
                &owner,
            ],
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
            "SELECT actor, job, hosts, started, finished, last_event, level,
                    EXISTS (SELECT 1 FROM servers s
                            WHERE s.id = launches.owner AND s.expires > otto_now())
             FROM launches WHERE id = $1",
            &[&key(id)?],
        )
        .await?
        .ok_or_else(|| StoreError::NotFound("launch", id.to_string()))?;
    let hosts: String = row.get(2);
    let level: String = row.get(6);
    Ok(Launch {
        id,
        actor: row.get(0),
        job: row.get(1),
        hosts: serde_json::from_str(&hosts).map_err(|_| corrupt("launch hosts", &hosts))?,
        started: row.get(3),
        finished: row.get(4),
        last_event: row.get(5),
        level: RunLevel::parse(&level).ok_or_else(|| corrupt("launch level", &level))?,
        owner_live: row.get(7),
    })
}

/// Adds relayed events of launch `id`; whether a cancel of it was asked for.
pub async fn relay_launch_events(
    db: &impl GenericClient,
    id: u64,
    events: &[(u64, String)],
) -> Result<bool> {
    let launch = key(id)?;
    if !events.is_empty() {
        let mut seqs = Vec::with_capacity(events.len());
        let mut texts = Vec::with_capacity(events.len());
        for (seq, text) in events {
            seqs.push(i64::try_from(*seq).map_err(|_| corrupt("launch event number", seq))?);
            texts.push(text.as_str());
        }
        db.execute(
            "INSERT INTO launch_events (launch, seq, event)
             SELECT $1, seq, event FROM unnest($2::BIGINT[], $3::TEXT[]) AS e(seq, event)
             ON CONFLICT DO NOTHING",
            &[&launch, &seqs, &texts],
        )
        .await?;
    }
    let asked = db
        .query_opt(
            "SELECT cancel_asked FROM launches WHERE id = $1",
            &[&launch],
        )
        .await?
        .ok_or_else(|| StoreError::NotFound("launch", id.to_string()))?;
    Ok(asked.get(0))
}

/// The relayed events of launch `id` from number `from` on, at most `limit`.
pub async fn launch_events(
    db: &impl GenericClient,
    id: u64,
    from: u64,
    limit: u32,
) -> Result<Vec<(u64, String)>> {
    let from = i64::try_from(from).unwrap_or(i64::MAX);
    let rows = db
        .query(
            "SELECT seq, event FROM launch_events WHERE launch = $1 AND seq >= $2
             ORDER BY seq LIMIT $3",
            &[&key(id)?, &from, &i64::from(limit)],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let seq: i64 = row.get(0);
            let seq = u64::try_from(seq).map_err(|_| corrupt("launch event number", seq))?;
            Ok((seq, row.get(1)))
        })
        .collect()
}

/// Asks for launch `id` to be cancelled; false if it has ended.
pub async fn ask_cancel(db: &impl GenericClient, id: u64) -> Result<bool> {
    let row = db
        .query_opt(
            "UPDATE launches SET cancel_asked = (finished IS NULL) WHERE id = $1
             RETURNING finished IS NULL",
            &[&key(id)?],
        )
        .await?
        .ok_or_else(|| StoreError::NotFound("launch", id.to_string()))?;
    Ok(row.get(0))
}

/// Forgets the relayed events of launches that ended before `before`, or whose server's
/// lease ran out.
pub async fn prune_launch_events(db: &impl GenericClient, before: i64) -> Result<u64> {
    Ok(db
        .execute(
            "DELETE FROM launch_events e USING launches l
             WHERE e.launch = l.id
               AND (l.finished < $1
                    OR (l.finished IS NULL AND NOT EXISTS (
                        SELECT 1 FROM servers s
                        WHERE s.id = l.owner AND s.expires > otto_now())))",
            &[&before],
        )
        .await?)
}

#[async_trait]
impl LaunchStore for Postgres {
    async fn start_launch(&self, launch: &NewLaunch) -> Result<u64> {
        start_launch(&self.client().await?, launch, &self.lease.id).await
    }

    async fn finish_launch(&self, id: u64, last_event: &str) -> Result<()> {
        finish_launch(&self.client().await?, id, last_event).await
    }

    async fn launch(&self, id: u64) -> Result<Launch> {
        launch(&self.client().await?, id).await
    }

    async fn relay_launch_events(&self, id: u64, events: &[(u64, String)]) -> Result<bool> {
        relay_launch_events(&self.client().await?, id, events).await
    }

    async fn launch_events(&self, id: u64, from: u64, limit: u32) -> Result<Vec<(u64, String)>> {
        launch_events(&self.client().await?, id, from, limit).await
    }

    async fn ask_cancel(&self, id: u64) -> Result<bool> {
        ask_cancel(&self.client().await?, id).await
    }

    async fn prune_launch_events(&self, before: i64) -> Result<u64> {
        prune_launch_events(&self.client().await?, before).await
    }
}
