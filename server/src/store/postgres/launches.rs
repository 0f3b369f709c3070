//! The HTTP API's launches. Their ids come from the table's identity, so a launch's id is never
//! one used before, whichever server started it.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;

use super::{Postgres, corrupt};
use tokio_postgres::types::ToSql;

use crate::model::{
    Launch, LaunchCounts, LaunchFilter, NewLaunch, PastLaunch, RunLevel, RunOutcome, now_ms,
};
use crate::store::{LaunchStore, Result, StoreError};

/// Records a launch starting now, run by the server whose lease is `owner`; returns its id.
pub async fn start_launch(db: &impl GenericClient, launch: &NewLaunch, owner: &str) -> Result<u64> {
    let hosts = serde_json::to_string(&launch.hosts).map_err(|e| StoreError::Sql(Box::new(e)))?;
    let id: i64 = db
        .query_one(
            "INSERT INTO launches (actor, job, hosts, started, level, owner, request)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            &[
                &launch.actor,
                &launch.job,
                &hosts,
                &now_ms(),
                &launch.level.as_str(),
                &owner,
                &launch.request,
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

/// The launches `condition` (a `WHERE` clause and what follows, over `params`) selects, as
/// the history lists them, with how their runs stand.
async fn launches_where(
    db: &impl GenericClient,
    condition: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<PastLaunch>> {
    let rows = db
        .query(
            &format!(
                "SELECT l.id, l.actor, l.job, l.hosts, l.started, l.finished,
                        l.request IS NOT NULL,
                        (SELECT name FROM schedules s WHERE s.id = l.schedule),
                        count(*) FILTER (WHERE r.success),
                        count(*) FILTER (WHERE NOT r.success AND NOT r.cancelled),
                        count(*) FILTER (WHERE r.cancelled),
                        count(*) FILTER (WHERE r.id IS NOT NULL AND r.finished IS NULL
                                           AND r.outcome IS NULL)
                 FROM launches l LEFT JOIN runs r ON r.launch = l.id {condition}"
            ),
            params,
        )
        .await?;
    let count = |row: &tokio_postgres::Row, i: usize| -> Result<u32> {
        let n: i64 = row.get(i);
        u32::try_from(n).map_err(|_| corrupt("launch's run count", n))
    };
    rows.iter()
        .map(|row| {
            let id: i64 = row.get(0);
            let hosts: String = row.get(3);
            Ok(PastLaunch {
                id: u64::try_from(id).map_err(|_| corrupt("launch id", id))?,
                actor: row.get(1),
                job: row.get(2),
                hosts: serde_json::from_str(&hosts).map_err(|_| corrupt("launch hosts", &hosts))?,
                started: row.get(4),
                finished: row.get(5),
                relaunchable: row.get(6),
                schedule: row.get(7),
                runs: LaunchCounts {
                    succeeded: count(row, 8)?,
                    failed: count(row, 9)?,
                    cancelled: count(row, 10)?,
                    running: count(row, 11)?,
                },
            })
        })
        .collect()
}

/// The newest launches `filter` matches, oldest first (runs of ended servers settled first).
pub async fn find_launches(db: &Postgres, filter: &LaunchFilter) -> Result<Vec<PastLaunch>> {
    let mut client = db.client().await?;
    super::runs::settle_interrupted(&mut client).await?;
    let before = filter
        .before
        .map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
    let mut launches = launches_where(
        &client,
        "WHERE l.id < $2 AND ($3::TEXT IS NULL OR l.job = $3)
           AND ($4::TEXT IS NULL OR l.actor = 'cli:' || $4
                OR left(l.actor, length($4) + 6) = 'user:' || $4 || ' ')
           AND ($5::TEXT IS NULL OR EXISTS (SELECT 1 FROM runs o WHERE o.launch = l.id AND (
                   ($5 = 'succeeded' AND o.success)
                OR ($5 = 'failed' AND NOT o.success AND NOT o.cancelled)
                OR ($5 = 'cancelled' AND o.cancelled)
                OR ($5 = 'running' AND o.finished IS NULL AND o.outcome IS NULL))))
           AND ($6::BIGINT IS NULL OR l.started >= $6) AND ($7::BIGINT IS NULL OR l.started < $7)
         GROUP BY l.id ORDER BY l.id DESC LIMIT $1",
        &[
            &i64::from(filter.limit),
            &before,
            &filter.what,
            &filter.user,
            &filter.outcome.map(RunOutcome::as_str),
            &filter.since,
            &filter.until,
        ],
    )
    .await?;
    launches.reverse();
    Ok(launches)
}

/// Launch `id` as the history lists it (runs of ended servers settled first).
pub async fn past_launch(db: &Postgres, id: u64) -> Result<PastLaunch> {
    let mut client = db.client().await?;
    super::runs::settle_interrupted(&mut client).await?;
    launches_where(&client, "WHERE l.id = $1 GROUP BY l.id", &[&key(id)?])
        .await?
        .pop()
        .ok_or_else(|| StoreError::NotFound("launch", id.to_string()))
}

/// What launch `id` asked for, if it can be started again.
pub async fn launch_request(db: &impl GenericClient, id: u64) -> Result<Option<String>> {
    Ok(db
        .query_opt("SELECT request FROM launches WHERE id = $1", &[&key(id)?])
        .await?
        .ok_or_else(|| StoreError::NotFound("launch", id.to_string()))?
        .get(0))
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

    async fn find_launches(&self, filter: &LaunchFilter) -> Result<Vec<PastLaunch>> {
        find_launches(self, filter).await
    }

    async fn past_launch(&self, id: u64) -> Result<PastLaunch> {
        past_launch(self, id).await
    }

    async fn launch_request(&self, id: u64) -> Result<Option<String>> {
        launch_request(&self.client().await?, id).await
    }
}
