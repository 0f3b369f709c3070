//! Hosts, their trust and their heartbeat state.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::{Sqlite, environment, events, exists, groups};
use crate::model::{EventKind, Facts, Host, HostFilter, HostStatus, NewHost, Trust, now_ms};
use crate::store::{HostStore, Result, StoreError, host_page};

/// Adds a host; its name must follow the rule of [`crate::names`].
pub fn add_host(db: &Connection, host: &NewHost) -> Result<()> {
    crate::names::HostName::parse(&host.name)?;
    db.execute(
        "INSERT INTO hosts (name, address, port, agent_key, pin_first, last_rotation)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            host.name,
            host.address,
            host.port,
            host.agent_key,
            host.pin_on_first_contact,
            now_ms()
        ],
    )
    .map_err(exists("host", &host.name))?;
    Ok(())
}

/// Removes a host with the variables of its scope, in one transaction (its history stays).
pub fn remove_host(db: &Connection, name: &str) -> Result<()> {
    environment::remove_with_env(db, "hosts", "host", name)
}

/// Changes where a host is reached.
pub fn set_address(
    db: &Connection,
    name: &str,
    address: Option<&str>,
    port: Option<u16>,
) -> Result<()> {
    update_host(
        db,
        name,
        // A place to dial: the host is dialled again, even if its agent called home.
        "UPDATE hosts SET address = coalesce(?2, address), port = coalesce(?3, port),
                          calls_home = 0 WHERE name = ?1",
        params![name, address, port],
    )
}

/// Enables or disables a host.
pub fn set_enabled(db: &Connection, name: &str, enabled: bool) -> Result<()> {
    update_host(
        db,
        name,
        "UPDATE hosts SET enabled = ?2 WHERE name = ?1",
        params![name, enabled],
    )
}

fn update_host(
    db: &Connection,
    name: &str,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<()> {
    if db.execute(sql, params)? == 0 {
        return Err(StoreError::NotFound("host", name.into()));
    }
    Ok(())
}

/// One host.
pub fn host(db: &Connection, name: &str) -> Result<Host> {
    hosts_where(db, "WHERE name = ?1", params![name])?
        .pop()
        .ok_or_else(|| StoreError::NotFound("host", name.into()))
}

/// Every host, by name.
pub fn hosts(db: &Connection) -> Result<Vec<Host>> {
    hosts_where(db, "ORDER BY name", params![])
}

/// At most `limit` of the hosts `filter` keeps, by name.
pub fn host_page(db: &Connection, filter: &HostFilter, limit: usize) -> Result<Vec<Host>> {
    let (tail, texts) = host_page::tail(filter, &DIALECT);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut params: Vec<&dyn rusqlite::ToSql> = texts.iter().map(|t| *t as _).collect();
    params.push(&limit);
    hosts_where(db, &tail, &params)
}

/// How SQLite writes a page of hosts (names compare by their bytes as they are).
const DIALECT: host_page::Dialect = host_page::Dialect {
    placeholder: '?',
    name_bytes: "name",
    find: "instr",
};

/// The members of a group.
pub fn group_hosts(db: &Connection, group: &str) -> Result<Vec<Host>> {
    groups::group_exists(db, group)?;
    hosts_where(
        db,
        "WHERE name IN (SELECT host FROM host_groups WHERE grp = ?1) ORDER BY name",
        params![group],
    )
}

/// The hosts `tail` (a `WHERE` clause over `hosts`, its order and limit; or nothing) keeps,
/// each with its groups.
fn hosts_where(db: &Connection, tail: &str, params: &[&dyn rusqlite::ToSql]) -> Result<Vec<Host>> {
    let sql = format!(
        "SELECT name, address, port, enabled, agent_key, pin_first, pending_key, last_rotation,
                reachable, last_seen, agent_version, facts, last_error, round_trip_ms,
                calls_home, (SELECT group_concat(grp, char(10)) FROM
                    (SELECT grp FROM host_groups WHERE host = name ORDER BY grp))
         FROM hosts {tail}"
    );
    // Parsing this query costs more than reading a page of hosts with it: kept prepared.
    let mut stmt = db.prepare_cached(&sql)?;
    let rows = stmt
        .query_map(params, |r| {
            Ok((
                Host {
                    name: r.get(0)?,
                    address: r.get(1)?,
                    port: r.get(2)?,
                    enabled: r.get(3)?,
                    trust: Trust {
                        agent_key: r.get(4)?,
                        pin_on_first_contact: r.get(5)?,
                        pending_key: r.get(6)?,
                        last_rotation: r.get(7)?,
                    },
                    groups: r
                        .get::<_, Option<String>>(15)?
                        .map(|g| g.lines().map(str::to_string).collect())
                        .unwrap_or_default(),
                    status: HostStatus {
                        reachable: r.get::<_, Option<i64>>(8)?.map(|r| r != REACHABLE_NOT),
                        busy: r.get::<_, Option<i64>>(8)? == Some(REACHABLE_BUSY),
                        last_seen: r.get(9)?,
                        round_trip_ms: r.get(13)?,
                        agent_version: r.get(10)?,
                        facts: None,
                        last_error: r.get(12)?,
                        calls_home: r.get(14)?,
                    },
                },
                r.get::<_, Option<String>>(11)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(mut host, facts)| {
            host.status.facts = facts
                .map(|f| serde_json::from_str(&f))
                .transpose()
                .map_err(|e| StoreError::Corrupt("host facts", e.to_string()))?;
            Ok(host)
        })
        .collect()
}

/// Pins `key` as the host's agent key (clearing any pending key).
pub fn pin_agent_key(db: &Connection, name: &str, key: &str) -> Result<()> {
    update_host(
        db,
        name,
        "UPDATE hosts SET agent_key = ?2, pending_key = NULL, pin_first = 0 WHERE name = ?1",
        params![name, key],
    )
}

/// Records a key the agent presented that is not the pinned one. Logs only when it is new.
pub fn set_pending_key(db: &Connection, name: &str, key: &str, fingerprint: &str) -> Result<()> {
    let changed = db.execute(
        "UPDATE hosts SET pending_key = ?2 WHERE name = ?1 AND pending_key IS NOT ?2",
        params![name, key],
    )?;
    if changed > 0 {
        events::log(
            db,
            Some(name),
            EventKind::KeyPending,
            &format!("the agent presented an unknown key {fingerprint}; refused, pending approval"),
        )?;
    }
    Ok(())
}

/// Drops the host's pending key if it is still `key`; whether it was.
pub fn drop_pending_key(db: &Connection, name: &str, key: &str) -> Result<bool> {
    let changed = db.execute(
        "UPDATE hosts SET pending_key = NULL WHERE name = ?1 AND pending_key = ?2",
        params![name, key],
    )?;
    Ok(changed > 0)
}

/// Records a completed key rotation asked for by `actor`: the new agent key is pinned.
pub fn rotated(
    db: &Connection,
    name: &str,
    agent_key: &str,
    detail: &str,
    actor: &str,
) -> Result<()> {
    update_host(
        db,
        name,
        "UPDATE hosts SET agent_key = ?2, pending_key = NULL, last_rotation = ?3 WHERE name = ?1",
        params![name, agent_key, now_ms()],
    )?;
    events::log_by(db, actor, Some(name), EventKind::KeyRotated, detail)
}

/// Records a successful heartbeat and its round trip (ms); logs a reachability change.
pub fn heartbeat_ok(
    db: &Connection,
    name: &str,
    version: &str,
    facts: &Facts,
    round_trip_ms: f64,
) -> Result<()> {
    let text = serde_json::to_string(facts)
        .map_err(|e| StoreError::Corrupt("host facts", e.to_string()))?;
    let before = reachable(db, name)?;
    let now = now_ms();
    update_host(
        db,
        name,
        "UPDATE hosts SET reachable = 1, last_seen = ?2, agent_version = ?3, facts = ?4,
             last_error = NULL, round_trip_ms = ?5 WHERE name = ?1",
        params![name, now, version, text, round_trip_ms],
    )?;
    super::metrics::heartbeat(db, name, now, round_trip_ms, facts)?;
    if before != Some(true) {
        events::log(db, Some(name), EventKind::Reachability, "reachable")?;
    }
    Ok(())
}

/// The column `reachable`: 0 not, 1 yes, 2 yes but busy (read as reachable by a reader that
/// takes it for a boolean).
const REACHABLE_NOT: i64 = 0;
const REACHABLE_BUSY: i64 = 2;

/// Records an attempt that reached the host and found its agent busy; logs a change from
/// unreachable (or never reached).
pub fn heartbeat_busy(db: &Connection, name: &str, error: &str) -> Result<()> {
    let before = reachable(db, name)?;
    update_host(
        db,
        name,
        "UPDATE hosts SET reachable = ?2, last_error = ?3 WHERE name = ?1",
        params![name, REACHABLE_BUSY, error],
    )?;
    if before != Some(true) {
        events::log(
            db,
            Some(name),
            EventKind::Reachability,
            &format!("reachable, busy: {error}"),
        )?;
    }
    Ok(())
}

/// Records a failed attempt to reach the host; logs a reachability change.
pub fn heartbeat_failed(db: &Connection, name: &str, error: &str) -> Result<()> {
    let before = reachable(db, name)?;
    update_host(
        db,
        name,
        "UPDATE hosts SET reachable = 0, last_error = ?2 WHERE name = ?1",
        params![name, error],
    )?;
    if before != Some(false) {
        events::log(
            db,
            Some(name),
            EventKind::Reachability,
            &format!("unreachable: {error}"),
        )?;
    }
    Ok(())
}

fn reachable(db: &Connection, name: &str) -> Result<Option<bool>> {
    db.query_row("SELECT reachable FROM hosts WHERE name = ?1", [name], |r| {
        r.get(0)
    })
    .optional()?
    .ok_or_else(|| StoreError::NotFound("host", name.into()))
}

/// Marks the host as one whose agent calls home (it is not dialled from now on); logs it when
/// that is new.
pub fn set_calls_home(db: &Connection, name: &str) -> Result<()> {
    let changed = db.execute(
        "UPDATE hosts SET calls_home = 1 WHERE name = ?1 AND calls_home = 0",
        [name],
    )?;
    if changed > 0 {
        events::log(
            db,
            Some(name),
            EventKind::HostChanged,
            "its agent calls home: reached over the connection it makes, not dialled",
        )?;
    }
    Ok(())
}

/// The name of the host whose pinned agent key is `key`, if any.
pub fn host_by_agent_key(db: &Connection, key: &str) -> Result<Option<String>> {
    Ok(db
        .query_row("SELECT name FROM hosts WHERE agent_key = ?1", [key], |r| {
            r.get(0)
        })
        .optional()?)
}

#[async_trait]
impl HostStore for Sqlite {
    async fn add_host(&self, host: &NewHost) -> Result<()> {
        let host = host.clone();
        self.call(move |db| add_host(db, &host)).await
    }

    async fn remove_host(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.call(move |db| remove_host(db, &name)).await
    }

    async fn set_address(
        &self,
        name: &str,
        address: Option<&str>,
        port: Option<u16>,
    ) -> Result<()> {
        let (name, address) = (name.to_owned(), address.map(str::to_owned));
        self.call(move |db| set_address(db, &name, address.as_deref(), port))
            .await
    }

    async fn set_enabled(&self, name: &str, enabled: bool) -> Result<()> {
        let name = name.to_owned();
        self.call(move |db| set_enabled(db, &name, enabled)).await
    }

    async fn host(&self, name: &str) -> Result<Host> {
        let name = name.to_owned();
        self.read(move |db| host(db, &name)).await
    }

    async fn hosts(&self) -> Result<Vec<Host>> {
        self.read(hosts).await
    }

    async fn host_page(&self, filter: &HostFilter, limit: usize) -> Result<Vec<Host>> {
        let filter = filter.clone();
        self.read(move |db| host_page(db, &filter, limit)).await
    }

    async fn group_hosts(&self, group: &str) -> Result<Vec<Host>> {
        let group = group.to_owned();
        self.read(move |db| group_hosts(db, &group)).await
    }

    async fn pin_agent_key(&self, name: &str, key: &str) -> Result<()> {
        let (name, key) = (name.to_owned(), key.to_owned());
        // Through the committer: a fleet's first contact pins many hosts' keys at once.
        self.write(move |db| pin_agent_key(db, &name, &key)).await
    }

    async fn set_pending_key(&self, name: &str, key: &str, fingerprint: &str) -> Result<()> {
        let (name, key, fingerprint) = (name.to_owned(), key.to_owned(), fingerprint.to_owned());
        self.call(move |db| set_pending_key(db, &name, &key, &fingerprint))
            .await
    }

    async fn drop_pending_key(&self, name: &str, key: &str) -> Result<bool> {
        let (name, key) = (name.to_owned(), key.to_owned());
        self.call(move |db| drop_pending_key(db, &name, &key)).await
    }

    async fn rotated(&self, name: &str, agent_key: &str, detail: &str, actor: &str) -> Result<()> {
        let (name, agent_key) = (name.to_owned(), agent_key.to_owned());
        let (detail, actor) = (detail.to_owned(), actor.to_owned());
        self.call(move |db| rotated(db, &name, &agent_key, &detail, &actor))
            .await
    }

    async fn heartbeat_ok(
        &self,
        name: &str,
        version: &str,
        facts: &Facts,
        round_trip_ms: f64,
    ) -> Result<()> {
        let (name, version, facts) = (name.to_owned(), version.to_owned(), facts.clone());
        self.write(move |db| heartbeat_ok(db, &name, &version, &facts, round_trip_ms))
            .await
    }

    async fn heartbeat_busy(&self, name: &str, error: &str) -> Result<()> {
        let (name, error) = (name.to_owned(), error.to_owned());
        self.write(move |db| heartbeat_busy(db, &name, &error))
            .await
    }

    async fn heartbeat_failed(&self, name: &str, error: &str) -> Result<()> {
        let (name, error) = (name.to_owned(), error.to_owned());
        self.write(move |db| heartbeat_failed(db, &name, &error))
            .await
    }

    async fn host_by_agent_key(&self, key: &str) -> Result<Option<String>> {
        let key = key.to_owned();
        self.read(move |db| host_by_agent_key(db, &key)).await
    }

    async fn set_calls_home(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.call(move |db| set_calls_home(db, &name)).await
    }
}
