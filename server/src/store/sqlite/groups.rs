//! Groups, their members and their scripts.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension};

use super::{Sqlite, environment, exists, hosts, scripts};
use crate::model::Group;
use crate::store::{GroupStore, Result, StoreError};

/// Adds a group.
pub fn add_group(db: &Connection, name: &str) -> Result<()> {
    db.execute("INSERT INTO groups (name) VALUES (?1)", [name])
        .map_err(exists("group", name))?;
    Ok(())
}

/// Removes a group (its hosts stay).
pub fn remove_group(db: &Connection, name: &str) -> Result<()> {
    environment::remove_with_env(db, "groups", "group", name)
}

/// Whether group `name` exists: `NotFound` if not.
pub(super) fn group_exists(db: &Connection, name: &str) -> Result<()> {
    db.query_row("SELECT 1 FROM groups WHERE name = ?1", [name], |_| Ok(()))
        .optional()?
        .ok_or_else(|| StoreError::NotFound("group", name.into()))
}

/// Every group with its hosts and scripts.
pub fn groups(db: &Connection) -> Result<Vec<Group>> {
    let mut stmt = db.prepare(
        "SELECT name,
            (SELECT group_concat(host, char(10)) FROM (SELECT host FROM host_groups WHERE grp = name ORDER BY host)),
            (SELECT group_concat(script, char(10)) FROM (SELECT script FROM group_scripts WHERE grp = name ORDER BY script))
         FROM groups ORDER BY name",
    )?;
    let split = |s: Option<String>| -> Vec<String> {
        s.map(|s| s.lines().map(str::to_string).collect())
            .unwrap_or_default()
    };
    let groups = stmt
        .query_map([], |r| {
            Ok(Group {
                name: r.get(0)?,
                hosts: split(r.get(1)?),
                scripts: split(r.get(2)?),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(groups)
}

/// Puts a host in a group, or takes it out.
pub fn set_membership(db: &Connection, group: &str, host: &str, member: bool) -> Result<()> {
    group_exists(db, group)?;
    hosts::host(db, host)?;
    if member {
        db.execute(
            "INSERT OR IGNORE INTO host_groups (host, grp) VALUES (?1, ?2)",
            [host, group],
        )?;
    } else {
        db.execute(
            "DELETE FROM host_groups WHERE host = ?1 AND grp = ?2",
            [host, group],
        )?;
    }
    Ok(())
}

/// Assigns a script to a group, or takes it away.
pub fn set_group_script(db: &Connection, group: &str, script: &str, assigned: bool) -> Result<()> {
    group_exists(db, group)?;
    scripts::script(db, script)?;
    if assigned {
        db.execute(
            "INSERT OR IGNORE INTO group_scripts (grp, script) VALUES (?1, ?2)",
            [group, script],
        )?;
    } else {
        db.execute(
            "DELETE FROM group_scripts WHERE grp = ?1 AND script = ?2",
            [group, script],
        )?;
    }
    Ok(())
}

#[async_trait]
impl GroupStore for Sqlite {
    async fn add_group(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.call(move |db| add_group(db, &name)).await
    }

    async fn remove_group(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.call(move |db| remove_group(db, &name)).await
    }

    async fn groups(&self) -> Result<Vec<Group>> {
        self.read(groups).await
    }

    async fn set_membership(&self, group: &str, host: &str, member: bool) -> Result<()> {
        let (group, host) = (group.to_owned(), host.to_owned());
        self.call(move |db| set_membership(db, &group, &host, member))
            .await
    }

    async fn set_group_script(&self, group: &str, script: &str, assigned: bool) -> Result<()> {
        let (group, script) = (group.to_owned(), script.to_owned());
        self.call(move |db| set_group_script(db, &group, &script, assigned))
            .await
    }
}
