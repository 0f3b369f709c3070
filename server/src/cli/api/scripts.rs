//! What `script …` and `attachment …` need. Through `serve` an attachment is streamed from its
//! file, never read whole.

use reqwest::Method;

use crate::model::{Attachment, Script};
use crate::ops::{
    AttachFile, AttachmentQuery, NewScript, Ops, OpsError, PathQuery, ScriptChange, ScriptDetail,
    ScriptUpdate,
};

use super::super::CliError;
use super::super::remote::{Payload, Remote, read, segment};

/// What `script …` and `attachment …` need, wherever the work runs: [`Ops`] in process, the
/// HTTP API through `serve`.
pub(crate) trait ScriptsApi {
    /// Every script, by name (`GET /api/v1/scripts`).
    async fn scripts(&self) -> Result<Vec<Script>, CliError>;
    /// One script with its attachments (`GET /api/v1/scripts/{name}`).
    async fn script(&self, name: &str) -> Result<ScriptDetail, CliError>;
    /// Adds a script (`POST /api/v1/scripts`).
    async fn add_script(&self, script: Script) -> Result<(), CliError>;
    /// Changes a script as `change` says, making it if there is none (`PUT
    /// /api/v1/scripts/{name}`).
    async fn change_script(&self, name: &str, change: ScriptChange) -> Result<(), CliError>;
    /// Removes a script with its attachments, and its variables only with `force`
    /// (`DELETE /api/v1/scripts/{name}?force=true`).
    async fn remove_script(&self, name: &str, force: bool) -> Result<(), CliError>;
    /// Attaches a local file to a script, streamed (`PUT /api/v1/scripts/{name}/attachments`).
    async fn attach_file(&self, file: AttachFile) -> Result<Attachment, CliError>;
    /// A script's attachments, or every script's.
    async fn attachments(&self, script: Option<&str>) -> Result<Vec<Attachment>, CliError>;
    /// Removes an attachment (`DELETE /api/v1/scripts/{name}/attachments`).
    async fn remove_attachment(&self, script: &str, path: &str) -> Result<(), CliError>;
}

impl ScriptsApi for Ops {
    async fn scripts(&self) -> Result<Vec<Script>, CliError> {
        Ok(Ops::scripts(self).await?)
    }

    async fn script(&self, name: &str) -> Result<ScriptDetail, CliError> {
        Ok(Ops::script(self, name).await?)
    }

    async fn add_script(&self, script: Script) -> Result<(), CliError> {
        Ok(self.save_script(&script, false).await?)
    }

    async fn change_script(&self, name: &str, change: ScriptChange) -> Result<(), CliError> {
        Ops::change_script(self, name, change).await?;
        Ok(())
    }

    async fn remove_script(&self, name: &str, force: bool) -> Result<(), CliError> {
        Ok(Ops::remove_script(self, name, force).await?)
    }

    async fn attach_file(&self, file: AttachFile) -> Result<Attachment, CliError> {
        Ok(Ops::attach_file(self, file).await?)
    }

    async fn attachments(&self, script: Option<&str>) -> Result<Vec<Attachment>, CliError> {
        Ok(Ops::attachments(self, script).await?)
    }

    async fn remove_attachment(&self, script: &str, path: &str) -> Result<(), CliError> {
        Ok(Ops::remove_attachment(self, script, path).await?)
    }
}

/// `/api/v1/scripts/{name}` and what follows it.
fn script_path(name: &str, what: &str) -> String {
    format!("/api/v1/scripts/{}{what}", segment(name))
}

impl ScriptsApi for Remote {
    async fn scripts(&self) -> Result<Vec<Script>, CliError> {
        Ok(self.call(Method::GET, "/api/v1/scripts", &()).await?)
    }

    async fn script(&self, name: &str) -> Result<ScriptDetail, CliError> {
        Ok(self.call(Method::GET, &script_path(name, ""), &()).await?)
    }

    async fn add_script(&self, script: Script) -> Result<(), CliError> {
        let new = NewScript::try_from(script)?;
        self.send(Method::POST, "/api/v1/scripts", &new).await?;
        Ok(())
    }

    async fn change_script(&self, name: &str, change: ScriptChange) -> Result<(), CliError> {
        let update = ScriptUpdate::new(name, change)?;
        self.send(Method::PUT, &script_path(name, ""), &update)
            .await?;
        Ok(())
    }

    async fn remove_script(&self, name: &str, force: bool) -> Result<(), CliError> {
        let forced = if force { "?force=true" } else { "" };
        self.send(Method::DELETE, &script_path(name, forced), &())
            .await?;
        Ok(())
    }

    async fn attach_file(&self, file: AttachFile) -> Result<Attachment, CliError> {
        let source = tokio::fs::File::open(&file.source)
            .await
            .map_err(|e| OpsError::File(file.source.clone(), e))?;
        let query = AttachmentQuery::from(&file);
        let payload = Payload::Stream(reqwest::Body::from(source));
        let path = script_path(&file.script, "/attachments");
        let response = self.request(Method::PUT, &path, &query, payload).await?;
        Ok(read(response).await?)
    }

    async fn attachments(&self, script: Option<&str>) -> Result<Vec<Attachment>, CliError> {
        let scripts = match script {
            Some(script) => vec![script.to_string()],
            None => self.scripts().await?.into_iter().map(|s| s.name).collect(),
        };
        let mut attachments = Vec::new();
        for script in scripts {
            attachments.extend(self.script(&script).await?.attachments);
        }
        Ok(attachments)
    }

    async fn remove_attachment(&self, script: &str, path: &str) -> Result<(), CliError> {
        let query = PathQuery { path: path.into() };
        let target = script_path(script, "/attachments");
        self.request(Method::DELETE, &target, &query, Payload::Empty)
            .await?;
        Ok(())
    }
}
