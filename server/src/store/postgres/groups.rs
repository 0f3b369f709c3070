//! Groups, their members and their scripts.
//!
//! A membership or an assignment is written in a transaction that holds both its rows (the
//! group's and the host's or script's) against their removal, as a variable is
//! ([`environment::hold`]): what is written never outlives what it names.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;

use super::{Postgres, environment, exists};
use crate::model::Group;
use crate::store::{GroupStore, Result, StoreError};

/// Adds a group.
pub async fn add_group(db: &impl GenericClient, name: &str) -> Result<()> {
    db.execute("INSERT INTO groups (name) VALUES ($1)", &[&name])
        .await
        .map_err(exists("group", name))?;
    Ok(())
}

/// Whether group `name` exists: `NotFound` if not.
pub(super) async fn group_exists(db: &impl GenericClient, name: &str) -> Result<()> {
    db.query_opt("SELECT 1 FROM groups WHERE name = $1", &[&name])
        .await?
        .map(drop)
        .ok_or_else(|| StoreError::NotFound("group", name.into()))
}

/// Every group with its hosts and scripts.
pub async fn groups(db: &impl GenericClient) -> Result<Vec<Group>> {
    db.query(
        r#"SELECT name,
            ARRAY(SELECT host FROM host_groups WHERE grp = groups.name ORDER BY host COLLATE "C"),
            ARRAY(SELECT script FROM group_scripts WHERE grp = groups.name
                  ORDER BY script COLLATE "C")
         FROM groups ORDER BY name COLLATE "C""#,
        &[],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(Group {
            name: r.try_get(0)?,
            hosts: r.try_get(1)?,
            scripts: r.try_get(2)?,
        })
    })
    .collect()
}

/// Puts a host in a group, or takes it out.
pub async fn set_membership(db: &Postgres, group: &str, host: &str, member: bool) -> Result<()> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    environment::hold(&tx, "groups", "group", group).await?;
    environment::hold(&tx, "hosts", "host", host).await?;
    let sql = if member {
        "INSERT INTO host_groups (host, grp) VALUES ($1, $2) ON CONFLICT DO NOTHING"
    } else {
        "DELETE FROM host_groups WHERE host = $1 AND grp = $2"
    };
    tx.execute(sql, &[&host, &group]).await?;
    tx.commit().await?;
    Ok(())
}

/// Assigns a script to a group, or takes it away.
pub async fn set_group_script(
    db: &Postgres,
    group: &str,
    script: &str,
    assigned: bool,
) -> Result<()> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    environment::hold(&tx, "groups", "group", group).await?;
    environment::hold(&tx, "scripts", "script", script).await?;
    let sql = if assigned {
        "INSERT INTO group_scripts (grp, script) VALUES ($1, $2) ON CONFLICT DO NOTHING"
    } else {
        "DELETE FROM group_scripts WHERE grp = $1 AND script = $2"
    };
    tx.execute(sql, &[&group, &script]).await?;
    tx.commit().await?;
    Ok(())
}

#[async_trait]
impl GroupStore for Postgres {
    async fn add_group(&self, name: &str) -> Result<()> {
        add_group(&self.client().await?, name).await
    }

    async fn remove_group(&self, name: &str) -> Result<()> {
        environment::remove_with_env(self, "groups", "group", name).await
    }

    async fn groups(&self) -> Result<Vec<Group>> {
        groups(&self.client().await?).await
    }

    async fn set_membership(&self, group: &str, host: &str, member: bool) -> Result<()> {
        set_membership(self, group, host, member).await
    }

    async fn set_group_script(&self, group: &str, script: &str, assigned: bool) -> Result<()> {
        set_group_script(self, group, script, assigned).await
    }
}
