//! Metrics for charts: heartbeats and run ends counted by the hour, the fleet sampled, old
//! hours merged into days and the oldest forgotten.

use std::time::Duration;

use super::database::Database;
use crate::model::{DAY_MS, Facts, HOUR_MS, RunEnd, now_ms};
use crate::store::Store;

on_both_with_database!(heartbeats_runs_and_samples_are_counted_by_the_hour_then_the_day);

fn facts(load: u32, flash_free_kib: u64) -> Facts {
    super::facts("r1", load, flash_free_kib)
}

fn end(success: bool, cancelled: bool) -> RunEnd {
    RunEnd {
        success,
        cancelled,
        outcome: "x".into(),
        exit_code: None,
        elapsed: Some(Duration::from_millis(1)),
        stdout: Vec::new(),
        stderr: Vec::new(),
        truncated: false,
    }
}

async fn heartbeats_runs_and_samples_are_counted_by_the_hour_then_the_day(
    store: Store,
    database: Database,
) {
    store.add_host(&super::host("r1")).await.unwrap();
    store.add_host(&super::host("r2")).await.unwrap();
    store
        .heartbeat_ok("r1", "0.1.0", &facts(50, 5_000), 2.0)
        .await
        .unwrap();
    store
        .heartbeat_ok("r1", "0.1.0", &facts(150, 4_000), 4.0)
        .await
        .unwrap();
    for (success, cancelled) in [(true, false), (false, false), (false, true), (true, false)] {
        let id = store
            .start_run(&super::run_record("r1", "x", "01", "server"))
            .await
            .unwrap();
        store
            .finish_run(id, &end(success, cancelled))
            .await
            .unwrap();
    }
    let now = now_ms();
    store.sample_fleet(now).await.unwrap();
    store.heartbeat_failed("r1", "gone").await.unwrap();
    store.sample_fleet(now).await.unwrap();

    let host = store.host_metrics("r1", now - DAY_MS).await.unwrap();
    assert_eq!(host.len(), 1, "{host:?}");
    let hour = &host[0];
    assert_eq!((hour.span_secs, hour.heartbeats), (3600, 2));
    assert!((hour.round_trip_ms - 3.0).abs() < 1e-9, "{hour:?}");
    assert!((hour.round_trip_max_ms - 4.0).abs() < 1e-9, "{hour:?}");
    assert!((hour.load - 1.0).abs() < 1e-9, "{hour:?}");
    assert_eq!(hour.flash_free_kib, Some(4_000));
    assert!(
        store
            .host_metrics("r2", now - DAY_MS)
            .await
            .unwrap()
            .is_empty()
    );
    let fleet = store.fleet_metrics(now - DAY_MS).await.unwrap();
    assert_eq!(fleet.len(), 1, "{fleet:?}");
    let f = &fleet[0];
    assert_eq!((f.succeeded, f.failed, f.cancelled), (2, 1, 1));
    // r1 reachable at the first sample, not at the second; r2 never.
    assert_eq!(
        (f.hosts, f.reachable_min, f.reachable_max),
        (2, Some(0), Some(1))
    );

    // Hours older than 8 days are merged into their day; what is older than 400 days goes.
    let day = (now - 10 * DAY_MS) - (now - 10 * DAY_MS).rem_euclid(DAY_MS);
    let (a, b, ancient) = (day + HOUR_MS, day + 5 * HOUR_MS, now - 500 * DAY_MS);
    database
        .execute(&format!(
            "INSERT INTO host_metrics VALUES ('r1', {a}, {HOUR_MS}, 2, 10.0, 8.0, 200, 300);
             INSERT INTO host_metrics VALUES ('r1', {b}, {HOUR_MS}, 2, 30.0, 20.0, 600, 200);
             INSERT INTO host_metrics VALUES ('r1', {ancient}, {DAY_MS}, 1, 1.0, 1.0, 1, 1);
             INSERT INTO fleet_metrics VALUES ({a}, {HOUR_MS}, 5, 3, 5, 1, 2, 0);
             INSERT INTO fleet_metrics VALUES ({b}, {HOUR_MS}, 6, 4, 4, 3, 0, 1);"
        ))
        .await;
    store.roll_up(now).await.unwrap();
    store.roll_up(now).await.unwrap();
    let host = store.host_metrics("r1", now - 600 * DAY_MS).await.unwrap();
    assert_eq!(host.len(), 2, "the day, and this hour: {host:?}");
    let merged = &host[0];
    assert_eq!(
        (merged.at, merged.span_secs, merged.heartbeats),
        (day, 86_400, 4)
    );
    assert!((merged.round_trip_ms - 10.0).abs() < 1e-9, "{merged:?}");
    assert!((merged.round_trip_max_ms - 20.0).abs() < 1e-9, "{merged:?}");
    assert!((merged.load - 2.0).abs() < 1e-9, "{merged:?}");
    assert_eq!(merged.flash_free_kib, Some(200));
    let fleet = store.fleet_metrics(now - 600 * DAY_MS).await.unwrap();
    assert_eq!(fleet.len(), 2, "{fleet:?}");
    let merged = &fleet[0];
    assert_eq!(
        (merged.at, merged.span_secs, merged.hosts),
        (day, 86_400, 6)
    );
    assert_eq!(
        (merged.reachable_min, merged.reachable_max),
        (Some(3), Some(5))
    );
    assert_eq!(
        (merged.succeeded, merged.failed, merged.cancelled),
        (4, 2, 1)
    );
}
