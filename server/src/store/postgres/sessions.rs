//! TODO(postgres): SessionStore on PostgreSQL.

#![allow(unused_variables)]

use async_trait::async_trait;

use super::Postgres;
use crate::model::*;
use crate::store::*;

#[async_trait]
impl SessionStore for Postgres {
    async fn add_session(&self, session: &NewSession) -> Result<i64> {
        unimplemented!("postgres")
    }
    async fn session_by_hash(&self, hash: &str) -> Result<Option<(Session, User)>> {
        unimplemented!("postgres")
    }
    async fn end_sessions(&self, user: &str, except: Option<i64>) -> Result<usize> {
        unimplemented!("postgres")
    }
    async fn end_session(&self, id: i64) -> Result<()> {
        unimplemented!("postgres")
    }
}
