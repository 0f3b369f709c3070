//! `enrollment …`'s interface: [`EnrollmentApi`].

use reqwest::Method;

use crate::model::{Rule, Token};
use crate::ops::{
    AddRule, AddToken, CreatedToken, Fingerprint, Ops, PendingDecided, PendingHost, PendingHosts,
};

use super::super::CliError;
use super::super::remote::Remote;

/// What `enrollment …` needs, wherever the work runs: [`Ops`] in process, the HTTP API
/// through `serve`.
pub(crate) trait EnrollmentApi {
    /// Makes a token (`POST /api/v1/enrollment/tokens`).
    async fn add_token(&self, add: AddToken) -> Result<CreatedToken, CliError>;
    /// Every token, without secrets (`GET /api/v1/enrollment/tokens`).
    async fn tokens(&self) -> Result<Vec<Token>, CliError>;
    /// Revokes a token (`DELETE /api/v1/enrollment/tokens/{id}`).
    async fn revoke_token(&self, id: i64) -> Result<Token, CliError>;
    /// Adds a rule; every rule as it is now (`POST /api/v1/enrollment/rules`).
    async fn add_rule(&self, add: AddRule) -> Result<Vec<Rule>, CliError>;
    /// Every rule, in order (`GET /api/v1/enrollment/rules`).
    async fn rules(&self) -> Result<Vec<Rule>, CliError>;
    /// Removes a rule (`DELETE /api/v1/enrollment/rules/{id}`).
    async fn remove_rule(&self, id: i64) -> Result<Rule, CliError>;
    /// The enrollment fingerprint (`GET /api/v1/enrollment/fingerprint`).
    async fn fingerprint(&self) -> Result<Fingerprint, CliError>;
    /// The hosts whose agent keys wait for approval (`GET /api/v1/enrollment/pending`).
    async fn pending_hosts(&self) -> Result<Vec<PendingHost>, CliError>;
    /// Approves or denies the pending keys of hosts (`POST
    /// /api/v1/enrollment/pending/approve` or `…/deny`).
    async fn decide_pending(
        &self,
        hosts: Vec<String>,
        approve: bool,
    ) -> Result<Vec<PendingDecided>, CliError>;
}

impl EnrollmentApi for Ops {
    async fn add_token(&self, add: AddToken) -> Result<CreatedToken, CliError> {
        Ok(Ops::add_token(self, add).await?)
    }

    async fn tokens(&self) -> Result<Vec<Token>, CliError> {
        Ok(Ops::tokens(self).await?)
    }

    async fn revoke_token(&self, id: i64) -> Result<Token, CliError> {
        Ok(Ops::revoke_token(self, id).await?)
    }

    async fn add_rule(&self, add: AddRule) -> Result<Vec<Rule>, CliError> {
        Ok(Ops::add_rule(self, add).await?)
    }

    async fn rules(&self) -> Result<Vec<Rule>, CliError> {
        Ok(Ops::rules(self).await?)
    }

    async fn remove_rule(&self, id: i64) -> Result<Rule, CliError> {
        Ok(Ops::remove_rule(self, id).await?)
    }

    async fn fingerprint(&self) -> Result<Fingerprint, CliError> {
        Ok(Ops::fingerprint(self)?)
    }

    async fn pending_hosts(&self) -> Result<Vec<PendingHost>, CliError> {
        Ok(Ops::pending_hosts(self).await?)
    }

    async fn decide_pending(
        &self,
        hosts: Vec<String>,
        approve: bool,
    ) -> Result<Vec<PendingDecided>, CliError> {
        Ok(Ops::decide_pending(self, &hosts, approve).await?)
    }
}

impl EnrollmentApi for Remote {
    async fn add_token(&self, add: AddToken) -> Result<CreatedToken, CliError> {
        Ok(self
            .call(Method::POST, "/api/v1/enrollment/tokens", &add)
            .await?)
    }

    async fn tokens(&self) -> Result<Vec<Token>, CliError> {
        Ok(self.get("/api/v1/enrollment/tokens", &[]).await?)
    }

    async fn revoke_token(&self, id: i64) -> Result<Token, CliError> {
        let path = format!("/api/v1/enrollment/tokens/{id}");
        Ok(self.call(Method::DELETE, &path, &()).await?)
    }

    async fn add_rule(&self, add: AddRule) -> Result<Vec<Rule>, CliError> {
        Ok(self
            .call(Method::POST, "/api/v1/enrollment/rules", &add)
            .await?)
    }

    async fn rules(&self) -> Result<Vec<Rule>, CliError> {
        Ok(self.get("/api/v1/enrollment/rules", &[]).await?)
    }

    async fn remove_rule(&self, id: i64) -> Result<Rule, CliError> {
        let path = format!("/api/v1/enrollment/rules/{id}");
        Ok(self.call(Method::DELETE, &path, &()).await?)
    }

    async fn fingerprint(&self) -> Result<Fingerprint, CliError> {
        Ok(self.get("/api/v1/enrollment/fingerprint", &[]).await?)
    }

    async fn pending_hosts(&self) -> Result<Vec<PendingHost>, CliError> {
        Ok(self.get("/api/v1/enrollment/pending", &[]).await?)
    }

    async fn decide_pending(
        &self,
        hosts: Vec<String>,
        approve: bool,
    ) -> Result<Vec<PendingDecided>, CliError> {
        let what = if approve { "approve" } else { "deny" };
        let path = format!("/api/v1/enrollment/pending/{what}");
        Ok(self
            .call(Method::POST, &path, &PendingHosts { hosts })
            .await?)
    }
}
