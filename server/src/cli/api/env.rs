//! What `env …` needs (and the question before removing what has variables).

use reqwest::Method;

use crate::model::{EnvVar, Scope};
use crate::names::HostName;
use crate::ops::{HostVar, HostVariable, NewValue, Ops, ScopeQuery, SetEnv, Variable};

use super::super::CliError;
use super::super::remote::{Payload, Remote, RemoteError, read, segment};

/// What `env …` needs, wherever the work runs: [`Ops`] in process, the HTTP API through `serve`.
pub(crate) trait EnvApi {
    /// Sets a variable (`PUT /api/v1/env/{name}`).
    async fn set_env(&self, set: SetEnv) -> Result<(), CliError>;
    /// Removes a variable (`DELETE /api/v1/env/{name}`).
    async fn unset_env(&self, scope: &Scope, name: &str) -> Result<(), CliError>;
    /// Variables of one scope, or of all (`GET /api/v1/env`); secrets without their values.
    async fn env(&self, scope: Option<&Scope>) -> Result<Vec<EnvVar>, CliError>;
    /// The variables a host's runs get (`GET /api/v1/hosts/{name}/env`).
    async fn host_env(&self, host: &HostName) -> Result<Vec<HostVar>, CliError>;
}

impl EnvApi for Ops {
    async fn set_env(&self, set: SetEnv) -> Result<(), CliError> {
        Ok(Ops::set_env(self, &set).await?)
    }

    async fn unset_env(&self, scope: &Scope, name: &str) -> Result<(), CliError> {
        Ok(Ops::unset_env(self, scope, name).await?)
    }

    async fn env(&self, scope: Option<&Scope>) -> Result<Vec<EnvVar>, CliError> {
        Ok(Ops::env(self, scope).await?)
    }

    async fn host_env(&self, host: &HostName) -> Result<Vec<HostVar>, CliError> {
        Ok(Ops::host_env(self, host).await?)
    }
}

/// `/api/v1/env/{name}`.
fn var_path(name: &str) -> String {
    format!("/api/v1/env/{}", segment(name))
}

/// A variable listed by the API whose scope is none of the four.
fn unknown_scope() -> RemoteError {
    RemoteError::Answer("a variable of an unknown scope".into())
}

impl EnvApi for Remote {
    async fn set_env(&self, set: SetEnv) -> Result<(), CliError> {
        let query = ScopeQuery::from(Some(&set.scope));
        let body = NewValue {
            value: set.value,
            secret: set.secret,
        };
        let body = serde_json::to_value(&body).map_err(|e| RemoteError::Request(e.to_string()))?;
        let payload = Payload::Json(&body);
        self.request(Method::PUT, &var_path(&set.name), &query, payload)
            .await?;
        Ok(())
    }

    async fn unset_env(&self, scope: &Scope, name: &str) -> Result<(), CliError> {
        let query = ScopeQuery::from(Some(scope));
        self.request(Method::DELETE, &var_path(name), &query, Payload::Empty)
            .await?;
        Ok(())
    }

    async fn env(&self, scope: Option<&Scope>) -> Result<Vec<EnvVar>, CliError> {
        let query = ScopeQuery::from(scope);
        let response = self
            .request(Method::GET, "/api/v1/env", &query, Payload::Empty)
            .await?;
        let listed: Vec<Variable> = read(response).await?;
        let vars = listed.into_iter().map(Variable::into_var);
        Ok(vars.collect::<Option<_>>().ok_or_else(unknown_scope)?)
    }

    async fn host_env(&self, host: &HostName) -> Result<Vec<HostVar>, CliError> {
        let path = format!("/api/v1/hosts/{}/env", segment(host.as_str()));
        let listed: Vec<HostVariable> = self.call(Method::GET, &path, &()).await?;
        let vars = listed.into_iter().map(HostVariable::into_host_var);
        Ok(vars.collect::<Option<_>>().ok_or_else(unknown_scope)?)
    }
}
