//! The fleet and a host over time, for charts: read by any user, as the hosts themselves are.

use crate::model::{DAY_MS, FleetPoint, HostPoint, KEPT_DAYS, now_ms};

use super::{Ops, OpsError, Result};

/// `days` back from now, held to 1 to [`KEPT_DAYS`].
fn since(days: u32) -> Result<i64> {
    if !(1..=KEPT_DAYS).contains(&i64::from(days)) {
        return Err(OpsError::Invalid(format!("days must be 1 to {KEPT_DAYS}")));
    }
    Ok(now_ms() - i64::from(days) * DAY_MS)
}

impl Ops {
    /// The fleet over the last `days` (1 to 400): by the hour for the last 8 days, by the day
    /// before, oldest first.
    pub async fn fleet_metrics(&self, days: u32) -> Result<Vec<FleetPoint>> {
        let since = since(days)?;
        Ok(self.fleet.store().fleet_metrics(since).await?)
    }

    /// Host `name`'s heartbeats over the last `days`, as [`Ops::fleet_metrics`]; `NotFound`
    /// for a host that does not exist.
    pub async fn host_metrics(&self, name: &str, days: u32) -> Result<Vec<HostPoint>> {
        let since = since(days)?;
        self.fleet.store().host(name).await?;
        Ok(self.fleet.store().host_metrics(name, since).await?)
    }

    /// Samples the fleet's reachable hosts now, and merges old hours into days (the daemon,
    /// every minute).
    pub async fn keep_metrics(&self) -> Result<()> {
        let store = self.fleet.store();
        let now = now_ms();
        store.sample_fleet(now).await?;
        Ok(store.roll_up(now).await?)
    }
}
