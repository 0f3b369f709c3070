//! Hosts, their trust and their heartbeat state.
//!
//! What is read and then written (a heartbeat's reachability before its change, a key that is
//! logged only when it is new) is read and written in one transaction holding the host's row,
//! so that servers sharing the database log each change once.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;

use super::{Postgres, corrupt, environment, events, exists, groups};
use crate::model::{EventKind, Facts, Host, HostFilter, HostStatus, NewHost, Trust, now_ms};
use crate::store::{HostStore, Result, StoreError, host_page};

/// The column `reachable`: 0 not, 1 yes, 2 yes but busy (NULL: never tried).
const REACHABLE_NOT: i16 = 0;
/// See [`REACHABLE_NOT`].
const REACHABLE_YES: i16 = 1;
/// See [`REACHABLE_NOT`].
const REACHABLE_BUSY: i16 = 2;

/// Adds a host; its name must follow the rule of [`crate::names`].
pub async fn add_host(db: &impl GenericClient, host: &NewHost) -> Result<()> {
    crate::names::HostName::parse(&host.name)?;
    db.execute(
        "INSERT INTO hosts (name, address, port, agent_key, pin_first, last_rotation)
             VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &host.name,
            &host.address,
            &i32::from(host.port),
            &host.agent_key,
            &host.pin_on_first_contact,
            &now_ms(),
        ],
    )
    .await
    .map_err(exists("host", &host.name))?;
    Ok(())
}

/// Changes where a host is reached.
pub async fn set_address(
    db: &impl GenericClient,
    name: &str,
    address: Option<&str>,
    port: Option<u16>,
) -> Result<()> {
    update_host(
        db,
        name,
        // A place to dial: the host is dialled again, even if its agent called home.
        "UPDATE hosts SET address = coalesce($2, address), port = coalesce($3, port),
                          calls_home = FALSE WHERE name = $1",
        &[&name, &address, &port.map(i32::from)],
    )
    .await
}

/// Enables or disables a host.
pub async fn set_enabled(db: &impl GenericClient, name: &str, enabled: bool) -> Result<()> {
    update_host(
        db,
        name,
        "UPDATE hosts SET enabled = $2 WHERE name = $1",
        &[&name, &enabled],
    )
    .await
}

/// Runs `sql`, an update of host `name`: `NotFound` if it changed no row.
async fn update_host(
    db: &impl GenericClient,
    name: &str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<()> {
    if db.execute(sql, params).await? == 0 {
        return Err(StoreError::NotFound("host", name.into()));
    }
    Ok(())
}

/// One host.
pub async fn host(db: &impl GenericClient, name: &str) -> Result<Host> {
    hosts_where(db, "WHERE name = $1", &[&name])
        .await?
        .pop()
        .ok_or_else(|| StoreError::NotFound("host", name.into()))
}

/// Every host, by name.
pub async fn hosts(db: &impl GenericClient) -> Result<Vec<Host>> {
    hosts_where(db, BY_NAME, &[]).await
}

/// Hosts in order of their names' bytes, as SQLite orders them.
const BY_NAME: &str = r#"ORDER BY name COLLATE "C""#;

/// At most `limit` of the hosts `filter` keeps, by name.
pub async fn host_page(
    db: &impl GenericClient,
    filter: &HostFilter,
    limit: usize,
) -> Result<Vec<Host>> {
    let (tail, texts) = host_page::tail(filter, &DIALECT);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut params: Vec<&(dyn ToSql + Sync)> = texts.iter().map(|t| *t as _).collect();
    params.push(&limit);
    hosts_where(db, &tail, &params).await
}

/// How PostgreSQL writes a page of hosts: names compared by their bytes, as SQLite does.
const DIALECT: host_page::Dialect = host_page::Dialect {
    placeholder: '$',
    name_bytes: r#"name COLLATE "C""#,
    find: "strpos",
};

/// The members of a group.
pub async fn group_hosts(db: &impl GenericClient, group: &str) -> Result<Vec<Host>> {
    groups::group_exists(db, group).await?;
    hosts_where(
        db,
        &format!("WHERE name IN (SELECT host FROM host_groups WHERE grp = $1) {BY_NAME}"),
        &[&group],
    )
    .await
}

/// The hosts `tail` (a `WHERE` clause over `hosts`, its order and limit; or nothing) keeps,
/// each with its groups.
async fn hosts_where(
    db: &impl GenericClient,
    tail: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Host>> {
    let sql = format!(
        r#"SELECT name, address, port, enabled, agent_key, pin_first, pending_key, last_rotation,
                reachable, last_seen, agent_version, facts, last_error, round_trip_ms,
                calls_home,
                ARRAY(SELECT grp FROM host_groups WHERE host = hosts.name ORDER BY grp COLLATE "C")
         FROM hosts {tail}"#
    );
    db.query(&sql, params)
        .await?
        .iter()
        .map(|r| -> Result<Host> {
            let port: i32 = r.try_get(2)?;
            let reachable: Option<i16> = r.try_get(8)?;
            let facts = r
                .try_get::<_, Option<String>>(11)?
                .map(|f| serde_json::from_str(&f))
                .transpose()
                .map_err(|e| corrupt("host facts", e))?;
            Ok(Host {
                name: r.try_get(0)?,
                address: r.try_get(1)?,
                port: u16::try_from(port).map_err(|_| corrupt("host port", port))?,
                enabled: r.try_get(3)?,
                trust: Trust {
                    agent_key: r.try_get(4)?,
                    pin_on_first_contact: r.try_get(5)?,
                    pending_key: r.try_get(6)?,
                    last_rotation: r.try_get(7)?,
                },
                groups: r.try_get(15)?,
                status: HostStatus {
                    reachable: reachable.map(|r| r != REACHABLE_NOT),
                    busy: reachable == Some(REACHABLE_BUSY),
                    last_seen: r.try_get(9)?,
                    round_trip_ms: r.try_get(13)?,
                    agent_version: r.try_get(10)?,
                    facts,
                    last_error: r.try_get(12)?,
                    calls_home: r.try_get(14)?,
                },
            })
        })
        .collect()
}

/// Pins `key` as the host's agent key (clearing any pending key).
pub async fn pin_agent_key(db: &impl GenericClient, name: &str, key: &str) -> Result<()> {
    update_host(
        db,
        name,
        "UPDATE hosts SET agent_key = $2, pending_key = NULL, pin_first = FALSE
         WHERE name = $1",
        &[&name, &key],
    )
    .await
}

/// Records a key the agent presented that is not the pinned one. Logs only when it is new:
/// the update that changes it, of one server only, logs in the same transaction.
pub async fn set_pending_key(
    db: &Postgres,
    name: &str,
    key: &str,
    fingerprint: &str,
) -> Result<()> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    let changed = tx
        .execute(
            "UPDATE hosts SET pending_key = $2
             WHERE name = $1 AND pending_key IS DISTINCT FROM $2",
            &[&name, &key],
        )
        .await?;
    if changed > 0 {
        events::log(
            &tx,
            Some(name),
            EventKind::KeyPending,
            &format!("the agent presented an unknown key {fingerprint}; refused, pending approval"),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Drops the host's pending key if it is still `key`; whether it was.
pub async fn drop_pending_key(db: &impl GenericClient, name: &str, key: &str) -> Result<bool> {
    let changed = db
        .execute(
            "UPDATE hosts SET pending_key = NULL WHERE name = $1 AND pending_key = $2",
            &[&name, &key],
        )
        .await?;
    Ok(changed > 0)
}

/// Records a completed key rotation asked for by `actor`: the new agent key is pinned, and
/// the rotation logged, in one transaction.
pub async fn rotated(
    db: &Postgres,
    name: &str,
    agent_key: &str,
    detail: &str,
    actor: &str,
) -> Result<()> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    update_host(
        &tx,
        name,
        "UPDATE hosts SET agent_key = $2, pending_key = NULL, last_rotation = $3
         WHERE name = $1",
        &[&name, &agent_key, &now_ms()],
    )
    .await?;
    events::log_by(&tx, actor, Some(name), EventKind::KeyRotated, detail).await?;
    tx.commit().await?;
    Ok(())
}

/// Records a successful heartbeat and its round trip (ms); logs a reachability change.
pub async fn heartbeat_ok(
    db: &Postgres,
    name: &str,
    version: &str,
    facts: &Facts,
    round_trip_ms: f64,
) -> Result<()> {
    let text = serde_json::to_string(facts).map_err(|e| corrupt("host facts", e))?;
    let now = now_ms();
    reach(
        db,
        name,
        "UPDATE hosts SET reachable = $2, last_seen = $3, agent_version = $4, facts = $5,
             last_error = NULL, round_trip_ms = $6 WHERE name = $1",
        &[&name, &REACHABLE_YES, &now, &version, &text, &round_trip_ms],
        true,
        "reachable",
    )
    .await?;
    super::metrics::heartbeat(&db.client().await?, name, now, round_trip_ms, facts).await
}

/// Records an attempt that reached the host and found its agent busy; logs a change from
/// unreachable (or never reached).
pub async fn heartbeat_busy(db: &Postgres, name: &str, error: &str) -> Result<()> {
    reach(
        db,
        name,
        "UPDATE hosts SET reachable = $2, last_error = $3 WHERE name = $1",
        &[&name, &REACHABLE_BUSY, &error],
        true,
        &format!("reachable, busy: {error}"),
    )
    .await
}

/// Records a failed attempt to reach the host; logs a reachability change.
pub async fn heartbeat_failed(db: &Postgres, name: &str, error: &str) -> Result<()> {
    reach(
        db,
        name,
        "UPDATE hosts SET reachable = $2, last_error = $3 WHERE name = $1",
        &[&name, &REACHABLE_NOT, &error],
        false,
        &format!("unreachable: {error}"),
    )
    .await
}

/// Runs `update` (a heartbeat's, of host `name`) in a transaction that holds the host's row
/// from before it is read, and logs `detail` unless the host was already `now` reachable (or
/// not): of several servers recording one change, one logs it. The lock is `FOR NO KEY
/// UPDATE`, the update's own, so that writes which only need the host to stay (a membership,
/// a variable: [`environment::hold`]) do not wait for a heartbeat.
async fn reach(
    db: &Postgres,
    name: &str,
    update: &str,
    params: &[&(dyn ToSql + Sync)],
    now: bool,
    detail: &str,
) -> Result<()> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    let before: Option<i16> = tx
        .query_opt(
            "SELECT reachable FROM hosts WHERE name = $1 FOR NO KEY UPDATE",
            &[&name],
        )
        .await?
        .ok_or_else(|| StoreError::NotFound("host", name.into()))?
        .try_get(0)?;
    tx.execute(update, params).await?;
    if before.map(|r| r != REACHABLE_NOT) != Some(now) {
        events::log(&tx, Some(name), EventKind::Reachability, detail).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Marks the host as one whose agent calls home (it is not dialled from now on); logs it, in
/// the same transaction, when that is new.
pub async fn set_calls_home(db: &Postgres, name: &str) -> Result<()> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    let changed = tx
        .execute(
            "UPDATE hosts SET calls_home = TRUE WHERE name = $1 AND NOT calls_home",
            &[&name],
        )
        .await?;
    if changed > 0 {
        events::log(
            &tx,
            Some(name),
            EventKind::HostChanged,
            "its agent calls home: reached over the connection it makes, not dialled",
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The name of the host whose pinned agent key is `key`, if any (the first by name, should
/// two share it).
pub async fn host_by_agent_key(db: &impl GenericClient, key: &str) -> Result<Option<String>> {
    Ok(db
        .query_opt(
            "SELECT name FROM hosts WHERE agent_key = $1 ORDER BY name LIMIT 1",
            &[&key],
        )
        .await?
        .map(|r| r.try_get(0))
        .transpose()?)
}

#[async_trait]
impl HostStore for Postgres {
    async fn add_host(&self, host: &NewHost) -> Result<()> {
        add_host(&self.client().await?, host).await
    }

    async fn remove_host(&self, name: &str) -> Result<()> {
        environment::remove_with_env(self, "hosts", "host", name).await
    }

    async fn set_address(
        &self,
        name: &str,
        address: Option<&str>,
        port: Option<u16>,
    ) -> Result<()> {
        set_address(&self.client().await?, name, address, port).await
    }

    async fn set_enabled(&self, name: &str, enabled: bool) -> Result<()> {
        set_enabled(&self.client().await?, name, enabled).await
    }

    async fn host(&self, name: &str) -> Result<Host> {
        host(&self.client().await?, name).await
    }

    async fn hosts(&self) -> Result<Vec<Host>> {
        hosts(&self.client().await?).await
    }

    async fn host_page(&self, filter: &HostFilter, limit: usize) -> Result<Vec<Host>> {
        host_page(&self.client().await?, filter, limit).await
    }

    async fn group_hosts(&self, group: &str) -> Result<Vec<Host>> {
        group_hosts(&self.client().await?, group).await
    }

    async fn pin_agent_key(&self, name: &str, key: &str) -> Result<()> {
        pin_agent_key(&self.client().await?, name, key).await
    }

    async fn set_pending_key(&self, name: &str, key: &str, fingerprint: &str) -> Result<()> {
        set_pending_key(self, name, key, fingerprint).await
    }

    async fn drop_pending_key(&self, name: &str, key: &str) -> Result<bool> {
        drop_pending_key(&self.client().await?, name, key).await
    }

    async fn rotated(&self, name: &str, agent_key: &str, detail: &str, actor: &str) -> Result<()> {
        rotated(self, name, agent_key, detail, actor).await
    }

    async fn heartbeat_ok(
        &self,
        name: &str,
        version: &str,
        facts: &Facts,
        round_trip_ms: f64,
    ) -> Result<()> {
        heartbeat_ok(self, name, version, facts, round_trip_ms).await
    }

    async fn heartbeat_failed(&self, name: &str, error: &str) -> Result<()> {
        heartbeat_failed(self, name, error).await
    }

    async fn heartbeat_busy(&self, name: &str, error: &str) -> Result<()> {
        heartbeat_busy(self, name, error).await
    }

    async fn host_by_agent_key(&self, key: &str) -> Result<Option<String>> {
        host_by_agent_key(&self.client().await?, key).await
    }

    async fn set_calls_home(&self, name: &str) -> Result<()> {
        set_calls_home(self, name).await
    }
}
