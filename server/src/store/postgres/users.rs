//! TODO(postgres): UserStore on PostgreSQL.

#![allow(unused_variables)]

use async_trait::async_trait;

use super::Postgres;
use crate::model::*;
use crate::store::*;

#[async_trait]
impl UserStore for Postgres {
    async fn add_user(&self, user: &NewUser) -> Result<()> {
        unimplemented!("postgres")
    }
    async fn user(&self, name: &str) -> Result<User> {
        unimplemented!("postgres")
    }
    async fn users(&self) -> Result<Vec<User>> {
        unimplemented!("postgres")
    }
    async fn password_hash(&self, name: &str) -> Result<String> {
        unimplemented!("postgres")
    }
    async fn set_password(&self, name: &str, hash: &str) -> Result<()> {
        unimplemented!("postgres")
    }
    async fn set_disabled(&self, name: &str, disabled: bool) -> Result<()> {
        unimplemented!("postgres")
    }
    async fn add_api_key(&self, key: &NewApiKey) -> Result<i64> {
        unimplemented!("postgres")
    }
    async fn api_keys(&self, user: Option<&str>) -> Result<Vec<ApiKey>> {
        unimplemented!("postgres")
    }
    async fn revoke_api_key(&self, id: i64) -> Result<Option<ApiKey>> {
        unimplemented!("postgres")
    }
    async fn api_key_by_hash(&self, hash: &str) -> Result<Option<(ApiKey, User)>> {
        unimplemented!("postgres")
    }
    async fn set_permissions(&self, name: &str, permissions: &Permissions) -> Result<()> {
        unimplemented!("postgres")
    }
}
