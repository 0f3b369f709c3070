//! TODO(postgres): EnvStore on PostgreSQL (remove_with_env is done: hosts, groups and
//! scripts use it).

#![allow(unused_variables)]

use async_trait::async_trait;

use super::Postgres;
use crate::model::*;
use crate::store::*;

/// Deletes row `name` of `table` with the variables of its scope (`what`), in one
/// transaction.
pub(super) async fn remove_with_env(
    db: &Postgres,
    table: &str,
    what: &'static str,
    name: &str,
) -> Result<()> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    let deleted = tx
        .execute(&format!("DELETE FROM {table} WHERE name = $1"), &[&name])
        .await?;
    if deleted == 0 {
        return Err(StoreError::NotFound(what, name.into()));
    }
    tx.execute(
        "DELETE FROM env WHERE scope = $1 AND owner = $2",
        &[&what, &name],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[async_trait]
impl EnvStore for Postgres {
    async fn set_env(&self, scope: &Scope, name: &str, value: &str, secret: bool) -> Result<()> {
        unimplemented!("postgres")
    }
    async fn unset_env(&self, scope: &Scope, name: &str) -> Result<()> {
        unimplemented!("postgres")
    }
    async fn env(&self, scope: Option<&Scope>) -> Result<Vec<EnvVar>> {
        unimplemented!("postgres")
    }
}
