//! TODO(postgres): ScriptStore on PostgreSQL.

#![allow(unused_variables)]

use async_trait::async_trait;

use super::Postgres;
use crate::model::*;
use crate::store::*;

#[async_trait]
impl ScriptStore for Postgres {
    async fn put_script(&self, script: &Script, replace: bool) -> Result<()> {
        unimplemented!("postgres")
    }
    async fn remove_script(&self, name: &str) -> Result<()> {
        unimplemented!("postgres")
    }
    async fn script(&self, name: &str) -> Result<Script> {
        unimplemented!("postgres")
    }
    async fn scripts(&self) -> Result<Vec<Script>> {
        unimplemented!("postgres")
    }
    async fn put_attachment(&self, attachment: &Attachment) -> Result<()> {
        unimplemented!("postgres")
    }
    async fn put_attachment_file(
        &self,
        attachment: &Attachment,
        source: std::fs::File,
    ) -> Result<()> {
        unimplemented!("postgres")
    }
    async fn remove_attachment(&self, script: &str, path: &str) -> Result<()> {
        unimplemented!("postgres")
    }
    async fn attachments(&self, script: Option<&str>) -> Result<Vec<Attachment>> {
        unimplemented!("postgres")
    }
    async fn attachment(&self, script: &str, path: &str) -> Result<Option<Attachment>> {
        unimplemented!("postgres")
    }
}
