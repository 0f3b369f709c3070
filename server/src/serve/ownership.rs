//! Which hosts this server looks after — their heartbeats, kept connections and key rotations
//! — when several servers share one database: every [`CLAIM_EVERY`] it asks the store for its
//! share ([`LeaseStore::claim_hosts`](crate::store::LeaseStore::claim_hosts)), drops the
//! connections of the hosts it no longer owns, and hands the hosts it gained to the scheduler
//! for a turn at once, so a server's hosts are looked after again soon after it died.
//!
//! A server that cannot reach the database keeps trying; once its lease may have run out
//! (`lease_live` false) it stops acting for any host, since the others may have taken them,
//! and resumes when the database answers again. On SQLite the one server owns every host.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use crate::fleet::Fleet;

/// How often the hosts are claimed again.
pub const CLAIM_EVERY: Duration = Duration::from_secs(5);

/// Hosts this server has just come to own.
pub struct Gained {
    /// Their names.
    pub hosts: Vec<String>,
    /// Whether from its first claim, when it started.
    pub first: bool,
}

/// The hosts this server owns now.
#[derive(Default)]
pub struct Ownership {
    owned: RwLock<BTreeSet<String>>,
}

impl Ownership {
    /// Whether this server looks after `host` now.
    pub fn owns(&self, host: &str) -> bool {
        self.owned
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(host)
    }

    /// Replaces the set; returns the hosts gained and those lost.
    fn replace(&self, now: BTreeSet<String>) -> (Vec<String>, Vec<String>) {
        let mut owned = self.owned.write().unwrap_or_else(|e| e.into_inner());
        let gained = now.difference(&owned).cloned().collect();
        let lost = owned.difference(&now).cloned().collect();
        *owned = now;
        (gained, lost)
    }
}

/// Claims this server's hosts every [`CLAIM_EVERY`] until `shutdown`, sending those gained to
/// `gained`; then ends the lease, so the other servers take the hosts at once.
pub async fn run(
    fleet: Arc<Fleet>,
    ownership: Arc<Ownership>,
    gained: UnboundedSender<Gained>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut unreachable = false;
    let mut first = true;
    loop {
        let claimed = fleet.store().claim_hosts().await;
        let now = match claimed {
            Ok(hosts) => {
                if unreachable {
                    tracing::info!("the database answers again: claiming hosts");
                    unreachable = false;
                }
                Some(hosts.into_iter().collect())
            }
            Err(e) if fleet.store().lease_live() => {
                tracing::warn!("cannot claim hosts (keeping those owned): {e}");
                None
            }
            Err(e) => {
                if !unreachable {
                    tracing::error!(
                        "cannot reach the database and the lease may have run out: acting for no host until it answers ({e})"
                    );
                    unreachable = true;
                }
                Some(BTreeSet::new())
            }
        };
        if let Some(now) = now {
            let (won, lost) = ownership.replace(now);
            if !won.is_empty() || !lost.is_empty() {
                tracing::info!(gained = won.len(), lost = lost.len(), "hosts owned changed");
            }
            for host in &lost {
                fleet.forget(host).await;
            }
            if !won.is_empty() {
                let _ = gained.send(Gained { hosts: won, first });
            }
            first = false;
        }
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(CLAIM_EVERY) => {}
        }
    }
    if let Err(e) = fleet.store().end_lease().await {
        tracing::warn!("cannot end the lease (the others take the hosts when it runs out): {e}");
    }
}
