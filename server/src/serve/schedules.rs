//! The schedules' job: beside the per-host scheduler, one task that sleeps until the
//! earliest schedule is due, then starts those due through [`Ops::start_due_schedules`]
//! (which claims each due time in the store, so that one server starts it). The store is read
//! again at least every [`RELOAD`], so schedules added, changed or removed by another process
//! on the same data directory (the command line) are picked up without a restart.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use crate::model::now_ms;
use crate::ops::{Launches, Ops};

/// The longest the job sleeps before it reads the schedules again.
pub const RELOAD: Duration = Duration::from_secs(2);

/// The shortest sleep between two passes: a due time another server has just claimed is
/// not read again at once.
const LEAST: Duration = Duration::from_millis(50);

/// How long to sleep before the next pass, for the earliest due time `due` (ms) at `now`.
fn pause(due: Option<i64>, now: i64) -> Duration {
    let until = due.map_or(RELOAD, |due| {
        Duration::from_millis(u64::try_from(due.saturating_sub(now)).unwrap_or(0))
    });
    until.clamp(LEAST, RELOAD)
}

/// Starts the schedules when due, as `ops` (the server's own), with their launches in
/// `launches`, until `stopped` completes.
pub async fn run(ops: Ops, launches: Launches, stopped: impl Future<Output = ()>) {
    let mut last = HashMap::new();
    tokio::pin!(stopped);
    loop {
        let due = match ops.start_due_schedules(&launches, &mut last).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!("schedules: {e}");
                None
            }
        };
        tokio::select! {
            () = &mut stopped => return,
            () = tokio::time::sleep(pause(due, now_ms())) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_sleeps_until_the_earliest_due_time_within_bounds() {
        assert_eq!(pause(None, 1000), RELOAD);
        assert_eq!(pause(Some(1500), 1000), Duration::from_millis(500));
        assert_eq!(pause(Some(900), 1000), LEAST);
        assert_eq!(pause(Some(1_000_000), 1000), RELOAD);
    }
}
