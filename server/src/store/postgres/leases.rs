//! Servers' leases and the hosts they own, on the database's clock (`otto_now()`), so that
//! servers on machines whose clocks differ agree on whose lease is live.
//!
//! Each [`Postgres`] holds a lease from its start, renewed every [`RENEW_EVERY`] by a task of
//! its own for [`LEASE_TTL`]. The hosts are balanced by [`LeaseStore::claim_hosts`], which each
//! server calls every few seconds: a host goes to at most one live server (a conditional
//! upsert, re-checked against the row's newest version by PostgreSQL), a server keeps at most
//! its fair share, and the hosts of a server whose lease ran out are free for the others.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use deadpool_postgres::Pool;

use super::Postgres;
use crate::model::{RelayServer, ServerLease};
use crate::store::{LeaseStore, Result};

/// How long a lease lasts unless renewed.
pub const LEASE_TTL: Duration = Duration::from_secs(15);
/// How often the lease is renewed: three tries before it runs out.
pub const RENEW_EVERY: Duration = Duration::from_secs(5);
const _: () = assert!(LEASE_TTL.as_secs() >= 3 * RENEW_EVERY.as_secs());
/// The margin below [`LEASE_TTL`] after which a server that could not renew stops acting for
/// its hosts: before the others may take them.
const MARGIN: Duration = Duration::from_secs(3);
/// How long a lease that ran out is still listed by [`LeaseStore::servers`].
const LISTED_AFTER_END_MS: i64 = 3_600_000;

/// This process's lease.
pub struct Lease {
    /// Its id, new at each start (also the `owner` of the runs this process starts).
    pub id: String,
    /// The machine's name and the process id.
    name: String,
    /// When it was last renewed (this process's clock).
    renewed: Mutex<Option<Instant>>,
    /// Whether it was ended ([`LeaseStore::end_lease`]): never renewed again.
    ended: AtomicBool,
}

impl Lease {
    /// A new lease for this process, not yet taken.
    pub fn new() -> Result<Lease> {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes)
            .map_err(|e| crate::store::StoreError::Unavailable(format!("no randomness: {e}")))?;
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let machine = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        Ok(Lease {
            id,
            name: format!("{machine}:{}", std::process::id()),
            renewed: Mutex::new(None),
            ended: AtomicBool::new(false),
        })
    }

    /// Whether it was renewed recently enough to act on.
    pub fn live(&self) -> bool {
        let renewed = *self.renewed.lock().unwrap_or_else(|e| e.into_inner());
        renewed.is_some_and(|at| at.elapsed() < LEASE_TTL - MARGIN)
    }

    /// Takes or renews the lease for [`LEASE_TTL`].
    pub async fn renew(&self, pool: &Pool) -> Result<()> {
        if self.ended.load(Ordering::Relaxed) {
            return Err(crate::store::StoreError::Unavailable(
                "this process's lease was ended".into(),
            ));
        }
        let started = Instant::now();
        let client = pool.get().await.map_err(super::unavailable)?;
        let ttl = i64::try_from(LEASE_TTL.as_millis()).unwrap_or(i64::MAX);
        client
            .execute(
                "INSERT INTO servers (id, name, started, expires)
                     VALUES ($1, $2, otto_now(), otto_now() + $3)
                 ON CONFLICT (id) DO UPDATE SET expires = otto_now() + $3",
                &[&self.id, &self.name, &ttl],
            )
            .await?;
        // Counted from before the request: the database's expiry is later than that.
        *self.renewed.lock().unwrap_or_else(|e| e.into_inner()) = Some(started);
        Ok(())
    }

    /// Renews the lease every [`RENEW_EVERY`] while `lease` is referenced elsewhere; logs
    /// when renewing fails and when it works again.
    pub async fn keep(lease: std::sync::Weak<Lease>, pool: Pool) {
        let mut failing = false;
        loop {
            tokio::time::sleep(RENEW_EVERY).await;
            let Some(lease) = lease.upgrade().filter(|l| !l.ended.load(Ordering::Relaxed)) else {
                return;
            };
            match lease.renew(&pool).await {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!(lease = %lease.id, "the database is back: lease renewed");
                }
                Ok(()) => {}
                Err(e) => {
                    if !failing || !lease.live() {
                        tracing::warn!(lease = %lease.id, live = lease.live(), "cannot renew the lease: {e}");
                    }
                    failing = true;
                }
            }
        }
    }
}

/// Hosts owned by this lease's server.
async fn owned(client: &deadpool_postgres::Object, id: &str) -> Result<Vec<String>> {
    Ok(client
        .query(
            "SELECT host FROM host_owners WHERE server = $1 ORDER BY host",
            &[&id],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

#[async_trait]
impl LeaseStore for Postgres {
    fn lease_id(&self) -> Option<&str> {
        Some(&self.lease.id)
    }

    fn lease_live(&self) -> bool {
        self.lease.live()
    }

    async fn claim_hosts(&self) -> Result<Vec<String>> {
        if !self.lease.live() {
            // Renew now rather than wait for the renewing task: a claim is a sign of life.
            self.lease.renew(&self.pool).await?;
        }
        let id = self.lease.id.as_str();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // From its first claim on, this process is a server that owns hosts.
        tx.execute("UPDATE servers SET serving = TRUE WHERE id = $1", &[&id])
            .await?;
        // Disabled hosts are nobody's.
        tx.execute(
            "DELETE FROM host_owners o USING hosts h WHERE o.host = h.name AND NOT h.enabled",
            &[],
        )
        .await?;
        let counts = tx
            .query_one(
                "SELECT (SELECT count(*) FROM servers WHERE serving AND expires > otto_now()),
                        (SELECT count(*) FROM hosts WHERE enabled),
                        (SELECT count(*) FROM host_owners WHERE server = $1),
                        (SELECT count(*) FROM host_owners WHERE server = $1 AND NOT pinned)",
                &[&id],
            )
            .await?;
        let (servers, hosts, mine, movable): (i64, i64, i64, i64) =
            (counts.get(0), counts.get(1), counts.get(2), counts.get(3));
        let share = (hosts + servers.max(1) - 1) / servers.max(1);
        if mine > share {
            // Give back those above the share (never a host whose agent called here).
            let extra = (mine - share).min(movable);
            tx.execute(
                "DELETE FROM host_owners WHERE server = $1 AND host IN (
                     SELECT host FROM host_owners WHERE server = $1 AND NOT pinned
                     ORDER BY host DESC LIMIT $2)",
                &[&id, &extra],
            )
            .await?;
        } else if mine < share {
            tx.execute(
                "INSERT INTO host_owners (host, server, since, pinned)
                     SELECT h.name, $1, otto_now(), FALSE FROM hosts h
                     WHERE h.enabled AND NOT EXISTS (
                         SELECT 1 FROM host_owners o JOIN servers s ON s.id = o.server
                         WHERE o.host = h.name AND s.expires > otto_now())
                     ORDER BY md5(h.name || $1) LIMIT $2
                 ON CONFLICT (host) DO UPDATE
                     SET server = EXCLUDED.server, since = EXCLUDED.since, pinned = FALSE
                     WHERE NOT EXISTS (SELECT 1 FROM servers s
                                       WHERE s.id = host_owners.server AND s.expires > otto_now())",
                &[&id, &(share - mine)],
            )
            .await?;
        }
        tx.commit().await?;
        owned(&client, id).await
    }

    async fn take_host(&self, host: &str) -> Result<()> {
        self.client()
            .await?
            .execute(
                "INSERT INTO host_owners (host, server, since, pinned)
                     SELECT name, $2, otto_now(), TRUE FROM hosts WHERE name = $1
                 ON CONFLICT (host) DO UPDATE
                     SET server = EXCLUDED.server, since = EXCLUDED.since, pinned = TRUE",
                &[&host, &self.lease.id],
            )
            .await?;
        Ok(())
    }

    async fn end_lease(&self) -> Result<()> {
        self.lease.ended.store(true, Ordering::Relaxed);
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "DELETE FROM host_owners WHERE server = $1",
            &[&self.lease.id],
        )
        .await?;
        tx.execute(
            "UPDATE servers SET expires = otto_now() WHERE id = $1",
            &[&self.lease.id],
        )
        .await?;
        tx.commit().await?;
        *self.lease.renewed.lock().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(())
    }

    async fn advertise_relay(&self, address: &str, certificate: &str) -> Result<()> {
        self.client()
            .await?
            .execute(
                "UPDATE servers SET relay = $2, certificate = $3 WHERE id = $1",
                &[&self.lease.id, &address, &certificate],
            )
            .await?;
        Ok(())
    }

    async fn host_relay(&self, host: &str) -> Result<Option<RelayServer>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT s.name, s.relay, s.certificate FROM host_owners o
                 JOIN servers s ON s.id = o.server
                 WHERE o.host = $1 AND o.pinned AND s.id <> $2 AND s.expires > otto_now()
                   AND s.relay IS NOT NULL AND s.certificate IS NOT NULL",
                &[&host, &self.lease.id],
            )
            .await?;
        Ok(row.map(|r| RelayServer {
            name: r.get(0),
            address: r.get(1),
            certificate: r.get(2),
        }))
    }

    async fn servers(&self) -> Result<Vec<ServerLease>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT s.id, s.name, s.started, s.expires, s.expires > otto_now(),
                        (SELECT count(*) FROM host_owners o WHERE o.server = s.id)
                 FROM servers s WHERE s.serving AND s.expires > otto_now() - $1
                 ORDER BY s.name, s.id",
                &[&LISTED_AFTER_END_MS],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let hosts: i64 = r.get(5);
                Ok(ServerLease {
                    id: r.get(0),
                    name: r.get(1),
                    started: r.get(2),
                    expires: r.get(3),
                    live: r.get(4),
                    hosts: u64::try_from(hosts).map_err(|_| super::corrupt("host count", hosts))?,
                })
            })
            .collect()
    }
}

/// Starts the task that renews `lease` for as long as it is referenced.
pub fn keep(lease: &Arc<Lease>, pool: Pool) {
    tokio::spawn(Lease::keep(Arc::downgrade(lease), pool));
}
