//! TODO(postgres): EnrollStore on PostgreSQL.

#![allow(unused_variables)]

use async_trait::async_trait;

use super::Postgres;
use crate::model::*;
use crate::store::*;

#[async_trait]
impl EnrollStore for Postgres {
    async fn add_token(&self, token: &NewToken) -> Result<i64> {
        unimplemented!("postgres")
    }
    async fn tokens(&self) -> Result<Vec<Token>> {
        unimplemented!("postgres")
    }
    async fn revoke_token(&self, id: i64) -> Result<Token> {
        unimplemented!("postgres")
    }
    async fn add_rule(&self, rule: &NewRule) -> Result<i64> {
        unimplemented!("postgres")
    }
    async fn rules(&self) -> Result<Vec<Rule>> {
        unimplemented!("postgres")
    }
    async fn remove_rule(&self, id: i64) -> Result<Rule> {
        unimplemented!("postgres")
    }
    async fn enroll(
        &self,
        host: &EnrollHost,
    ) -> Result<std::result::Result<TokenUse, TokenRefusal>> {
        unimplemented!("postgres")
    }
    async fn enrolled_properties(&self) -> Result<Properties> {
        unimplemented!("postgres")
    }
    async fn check_token(&self, hash: &str) -> Result<std::result::Result<i64, TokenRefusal>> {
        unimplemented!("postgres")
    }
}
