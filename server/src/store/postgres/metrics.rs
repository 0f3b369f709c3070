//! Metrics for charts: counted as heartbeats and runs are recorded, sampled and merged by the
//! daemons (several at once: each statement is one upsert, so their samples merge).

use async_trait::async_trait;
use deadpool_postgres::GenericClient;

use super::{Postgres, corrupt};
use crate::model::{DAY_MS, Facts, FleetPoint, HOUR_MS, HOURLY_DAYS, HostPoint, KEPT_DAYS, RunEnd};
use crate::store::{MetricStore, Result};

/// The start of the hour of `at`.
fn hour(at: i64) -> i64 {
    at - at.rem_euclid(HOUR_MS)
}

/// Counts a heartbeat of `host` answered at `at`.
pub(super) async fn heartbeat(
    db: &impl GenericClient,
    host: &str,
    at: i64,
    round_trip_ms: f64,
    facts: &Facts,
) -> Result<()> {
    let flash = (facts.flash_total_kib > 0)
        .then(|| i64::try_from(facts.flash_free_kib).unwrap_or(i64::MAX));
    let load = i64::from(facts.load_centi[0]);
    db.execute(
        "INSERT INTO host_metrics (host, at, span, samples, rtt_sum, rtt_max, load_sum,
                                   flash_free_min)
         VALUES ($1, $2, $3, 1, $4, $4, $5, $6)
         ON CONFLICT (host, span, at) DO UPDATE SET samples = host_metrics.samples + 1,
             rtt_sum = host_metrics.rtt_sum + excluded.rtt_sum,
             rtt_max = greatest(host_metrics.rtt_max, excluded.rtt_max),
             load_sum = host_metrics.load_sum + excluded.load_sum,
             flash_free_min = least(host_metrics.flash_free_min, excluded.flash_free_min)",
        &[&host, &hour(at), &HOUR_MS, &round_trip_ms, &load, &flash],
    )
    .await?;
    Ok(())
}

/// Counts a run that ended at `at` as `end` says.
pub(super) async fn run_ended(db: &impl GenericClient, at: i64, end: &RunEnd) -> Result<()> {
    let (ok, failed, cancelled): (i64, i64, i64) = match (end.success, end.cancelled) {
        (true, _) => (1, 0, 0),
        (false, true) => (0, 0, 1),
        (false, false) => (0, 1, 0),
    };
    db.execute(
        "INSERT INTO fleet_metrics (at, span, succeeded, failed, cancelled)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (span, at) DO UPDATE SET
             succeeded = fleet_metrics.succeeded + excluded.succeeded,
             failed = fleet_metrics.failed + excluded.failed,
             cancelled = fleet_metrics.cancelled + excluded.cancelled",
        &[&hour(at), &HOUR_MS, &ok, &failed, &cancelled],
    )
    .await?;
    Ok(())
}

/// The count in column `i` of `row`.
fn count(row: &tokio_postgres::Row, i: usize) -> Result<u32> {
    let n: i64 = row.get(i);
    u32::try_from(n).map_err(|_| corrupt("metric", n))
}

#[async_trait]
impl MetricStore for Postgres {
    async fn sample_fleet(&self, at: i64) -> Result<()> {
        self.client()
            .await?
            .execute(
                "INSERT INTO fleet_metrics (at, span, hosts, reachable_min, reachable_max)
                 SELECT $1, $2, count(*), count(*) FILTER (WHERE reachable > 0),
                        count(*) FILTER (WHERE reachable > 0)
                 FROM hosts WHERE enabled
                 ON CONFLICT (span, at) DO UPDATE SET
                     hosts = greatest(fleet_metrics.hosts, excluded.hosts),
                     reachable_min = least(fleet_metrics.reachable_min, excluded.reachable_min),
                     reachable_max = greatest(fleet_metrics.reachable_max, excluded.reachable_max)",
                &[&hour(at), &HOUR_MS],
            )
            .await?;
        Ok(())
    }

    async fn roll_up(&self, now: i64) -> Result<()> {
        let cutoff = {
            let before = now - HOURLY_DAYS * DAY_MS;
            before - before.rem_euclid(DAY_MS)
        };
        let oldest = now - KEPT_DAYS * DAY_MS;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO host_metrics (host, at, span, samples, rtt_sum, rtt_max, load_sum,
                                       flash_free_min)
             SELECT host, at - at % $2, $2, sum(samples), sum(rtt_sum), max(rtt_max),
                    sum(load_sum), min(flash_free_min)
             FROM host_metrics WHERE span = $3 AND at < $1 GROUP BY host, at - at % $2
             ON CONFLICT (host, span, at) DO UPDATE SET
                 samples = host_metrics.samples + excluded.samples,
                 rtt_sum = host_metrics.rtt_sum + excluded.rtt_sum,
                 rtt_max = greatest(host_metrics.rtt_max, excluded.rtt_max),
                 load_sum = host_metrics.load_sum + excluded.load_sum,
                 flash_free_min = least(host_metrics.flash_free_min, excluded.flash_free_min)",
            &[&cutoff, &DAY_MS, &HOUR_MS],
        )
        .await?;
        tx.execute(
            "INSERT INTO fleet_metrics (at, span, hosts, reachable_min, reachable_max, succeeded,
                                        failed, cancelled)
             SELECT at - at % $2, $2, max(hosts), min(reachable_min), max(reachable_max),
                    sum(succeeded), sum(failed), sum(cancelled)
             FROM fleet_metrics WHERE span = $3 AND at < $1 GROUP BY at - at % $2
             ON CONFLICT (span, at) DO UPDATE SET
                 hosts = greatest(fleet_metrics.hosts, excluded.hosts),
                 reachable_min = least(fleet_metrics.reachable_min, excluded.reachable_min),
                 reachable_max = greatest(fleet_metrics.reachable_max, excluded.reachable_max),
                 succeeded = fleet_metrics.succeeded + excluded.succeeded,
                 failed = fleet_metrics.failed + excluded.failed,
                 cancelled = fleet_metrics.cancelled + excluded.cancelled",
            &[&cutoff, &DAY_MS, &HOUR_MS],
        )
        .await?;
        for table in ["host_metrics", "fleet_metrics"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE (span = $2 AND at < $1) OR at < $3"),
                &[&cutoff, &HOUR_MS, &oldest],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn fleet_metrics(&self, since: i64) -> Result<Vec<FleetPoint>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT at, span, hosts, reachable_min, reachable_max, succeeded, failed,
                        cancelled
                 FROM fleet_metrics WHERE at + span > $1 ORDER BY at, span DESC",
                &[&since],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let optional = |i: usize| -> Result<Option<u32>> {
                    r.get::<_, Option<i64>>(i)
                        .map(|n| u32::try_from(n).map_err(|_| corrupt("metric", n)))
                        .transpose()
                };
                Ok(FleetPoint {
                    at: r.get(0),
                    span_secs: count(r, 1)? / 1000,
                    hosts: count(r, 2)?,
                    reachable_min: optional(3)?,
                    reachable_max: optional(4)?,
                    succeeded: count(r, 5)?,
                    failed: count(r, 6)?,
                    cancelled: count(r, 7)?,
                })
            })
            .collect()
    }

    async fn host_metrics(&self, host: &str, since: i64) -> Result<Vec<HostPoint>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT at, span, samples, rtt_sum, rtt_max, load_sum, flash_free_min
                 FROM host_metrics WHERE host = $1 AND at + span > $2 ORDER BY at, span DESC",
                &[&host, &since],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let samples = count(r, 2)?;
                let n = f64::from(samples.max(1));
                let load: i64 = r.get(5);
                Ok(HostPoint {
                    at: r.get(0),
                    span_secs: count(r, 1)? / 1000,
                    heartbeats: samples,
                    round_trip_ms: r.get::<_, f64>(3) / n,
                    round_trip_max_ms: r.get(4),
                    load: load as f64 / 100.0 / n,
                    flash_free_kib: r
                        .get::<_, Option<i64>>(6)
                        .map(|k| u64::try_from(k).unwrap_or(0)),
                })
            })
            .collect()
    }
}
