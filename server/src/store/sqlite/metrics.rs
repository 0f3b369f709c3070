//! Metrics for charts: counted as heartbeats and runs are recorded, sampled and merged by the
//! daemon.

use async_trait::async_trait;
use rusqlite::{Connection, params};

use super::Sqlite;
use crate::model::{DAY_MS, Facts, FleetPoint, HOUR_MS, HOURLY_DAYS, HostPoint, KEPT_DAYS, RunEnd};
use crate::store::{MetricStore, Result};

/// The start of the hour of `at`.
fn hour(at: i64) -> i64 {
    at - at.rem_euclid(HOUR_MS)
}

/// Counts a heartbeat of `host` answered at `at`.
pub(super) fn heartbeat(
    db: &Connection,
    host: &str,
    at: i64,
    round_trip_ms: f64,
    facts: &Facts,
) -> Result<()> {
    let flash =
        (facts.flash_total_kib > 0).then(|| facts.flash_free_kib.min(i64::MAX as u64) as i64);
    db.prepare_cached(
        "INSERT INTO host_metrics (host, at, span, samples, rtt_sum, rtt_max, load_sum,
                                   flash_free_min)
         VALUES (?1, ?2, ?3, 1, ?4, ?4, ?5, ?6)
         ON CONFLICT (host, span, at) DO UPDATE SET samples = samples + 1,
             rtt_sum = rtt_sum + excluded.rtt_sum, rtt_max = max(rtt_max, excluded.rtt_max),
             load_sum = load_sum + excluded.load_sum,
             flash_free_min = min(coalesce(flash_free_min, excluded.flash_free_min),
                                  coalesce(excluded.flash_free_min, flash_free_min))",
    )?
    .execute(params![
        host,
        hour(at),
        HOUR_MS,
        round_trip_ms,
        facts.load_centi[0],
        flash
    ])?;
    Ok(())
}

/// Counts a run that ended at `at` as `end` says.
pub(super) fn run_ended(db: &Connection, at: i64, end: &RunEnd) -> Result<()> {
    let (ok, failed, cancelled) = match (end.success, end.cancelled) {
        (true, _) => (1, 0, 0),
        (false, true) => (0, 0, 1),
        (false, false) => (0, 1, 0),
    };
    db.prepare_cached(
        "INSERT INTO fleet_metrics (at, span, succeeded, failed, cancelled)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (span, at) DO UPDATE SET succeeded = succeeded + excluded.succeeded,
             failed = failed + excluded.failed, cancelled = cancelled + excluded.cancelled",
    )?
    .execute(params![hour(at), HOUR_MS, ok, failed, cancelled])?;
    Ok(())
}

/// Counts the enabled and reachable hosts into the hour of `at`.
fn sample_fleet(db: &Connection, at: i64) -> Result<()> {
    db.execute(
        "INSERT INTO fleet_metrics (at, span, hosts, reachable_min, reachable_max)
         SELECT ?1, ?2, count(*), coalesce(sum(reachable > 0), 0), coalesce(sum(reachable > 0), 0)
         FROM hosts WHERE enabled
         ON CONFLICT (span, at) DO UPDATE SET hosts = max(hosts, excluded.hosts),
             reachable_min = min(coalesce(reachable_min, excluded.reachable_min),
                                 excluded.reachable_min),
             reachable_max = max(coalesce(reachable_max, excluded.reachable_max),
                                 excluded.reachable_max)",
        params![hour(at), HOUR_MS],
    )?;
    Ok(())
}

/// Merges old hours into days; forgets what is too old.
fn roll_up(db: &Connection, now: i64) -> Result<()> {
    let cutoff = {
        let before = now - HOURLY_DAYS * DAY_MS;
        before - before.rem_euclid(DAY_MS)
    };
    let oldest = now - KEPT_DAYS * DAY_MS;
    let tx = db.unchecked_transaction()?;
    tx.execute(
        "INSERT INTO host_metrics (host, at, span, samples, rtt_sum, rtt_max, load_sum,
                                   flash_free_min)
         SELECT host, at - at % ?2, ?2, sum(samples), sum(rtt_sum), max(rtt_max), sum(load_sum),
                min(flash_free_min)
         FROM host_metrics WHERE span = ?3 AND at < ?1 GROUP BY host, at - at % ?2
         ON CONFLICT (host, span, at) DO UPDATE SET samples = samples + excluded.samples,
             rtt_sum = rtt_sum + excluded.rtt_sum, rtt_max = max(rtt_max, excluded.rtt_max),
             load_sum = load_sum + excluded.load_sum,
             flash_free_min = min(coalesce(flash_free_min, excluded.flash_free_min),
                                  coalesce(excluded.flash_free_min, flash_free_min))",
        params![cutoff, DAY_MS, HOUR_MS],
    )?;
    tx.execute(
        "INSERT INTO fleet_metrics (at, span, hosts, reachable_min, reachable_max, succeeded,
                                    failed, cancelled)
         SELECT at - at % ?2, ?2, max(hosts), min(reachable_min), max(reachable_max),
                sum(succeeded), sum(failed), sum(cancelled)
         FROM fleet_metrics WHERE span = ?3 AND at < ?1 GROUP BY at - at % ?2
         ON CONFLICT (span, at) DO UPDATE SET hosts = max(hosts, excluded.hosts),
             reachable_min = min(coalesce(reachable_min, excluded.reachable_min),
                                 coalesce(excluded.reachable_min, reachable_min)),
             reachable_max = max(coalesce(reachable_max, excluded.reachable_max),
                                 coalesce(excluded.reachable_max, reachable_max)),
             succeeded = succeeded + excluded.succeeded, failed = failed + excluded.failed,
             cancelled = cancelled + excluded.cancelled",
        params![cutoff, DAY_MS, HOUR_MS],
    )?;
    for table in ["host_metrics", "fleet_metrics"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE (span = ?2 AND at < ?1) OR at < ?3"),
            params![cutoff, HOUR_MS, oldest],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// The fleet's points from `since` on.
fn fleet_metrics(db: &Connection, since: i64) -> Result<Vec<FleetPoint>> {
    let mut query = db.prepare(
        "SELECT at, span, hosts, reachable_min, reachable_max, succeeded, failed, cancelled
         FROM fleet_metrics WHERE at + span > ?1 ORDER BY at, span DESC",
    )?;
    let rows = query.query_map([since], |r| {
        Ok(FleetPoint {
            at: r.get(0)?,
            span_secs: (r.get::<_, i64>(1)? / 1000) as u32,
            hosts: r.get(2)?,
            reachable_min: r.get(3)?,
            reachable_max: r.get(4)?,
            succeeded: r.get(5)?,
            failed: r.get(6)?,
            cancelled: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A host's points from `since` on.
fn host_metrics(db: &Connection, host: &str, since: i64) -> Result<Vec<HostPoint>> {
    let mut query = db.prepare(
        "SELECT at, span, samples, rtt_sum, rtt_max, load_sum, flash_free_min
         FROM host_metrics WHERE host = ?1 AND at + span > ?2 ORDER BY at, span DESC",
    )?;
    let rows = query.query_map(params![host, since], |r| {
        let samples: u32 = r.get(2)?;
        let n = f64::from(samples.max(1));
        Ok(HostPoint {
            at: r.get(0)?,
            span_secs: (r.get::<_, i64>(1)? / 1000) as u32,
            heartbeats: samples,
            round_trip_ms: r.get::<_, f64>(3)? / n,
            round_trip_max_ms: r.get(4)?,
            load: r.get::<_, i64>(5)? as f64 / 100.0 / n,
            flash_free_kib: r.get::<_, Option<i64>>(6)?.map(|k| k.max(0) as u64),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[async_trait]
impl MetricStore for Sqlite {
    async fn sample_fleet(&self, at: i64) -> Result<()> {
        self.write(move |db| sample_fleet(db, at)).await
    }

    async fn roll_up(&self, now: i64) -> Result<()> {
        self.call(move |db| roll_up(db, now)).await
    }

    async fn fleet_metrics(&self, since: i64) -> Result<Vec<FleetPoint>> {
        self.read(move |db| fleet_metrics(db, since)).await
    }

    async fn host_metrics(&self, host: &str, since: i64) -> Result<Vec<HostPoint>> {
        let host = host.to_owned();
        self.read(move |db| host_metrics(db, &host, since)).await
    }
}
