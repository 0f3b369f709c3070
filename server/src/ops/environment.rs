//! Environment variables: global, or for a group, a host or a script.

use crate::model::{EnvVar, EventKind, Scope};

use super::{Ops, OpsError, Result};

/// A variable to set.
#[derive(Debug, Clone)]
pub struct SetEnv {
    /// Where it applies.
    pub scope: Scope,
    /// Its name: not empty, without `=` or NUL.
    pub name: String,
    /// Its value.
    pub value: String,
    /// Whether its value is never shown.
    pub secret: bool,
}

/// The host a scope's change concerns, for the event log.
fn scope_host(scope: &Scope) -> Option<&str> {
    match scope {
        Scope::Host(h) => Some(h),
        _ => None,
    }
}

impl Ops {
    /// Sets a variable (replacing one of the same scope and name). The event names it and its
    /// scope, never its value.
    pub async fn set_env(&self, set: &SetEnv) -> Result<()> {
        if set.name.is_empty() || set.name.contains(['=', '\0']) {
            return Err(OpsError::Invalid(format!(
                "`{}` is not a variable name",
                set.name
            )));
        }
        self.fleet
            .store()
            .set_env(&set.scope, &set.name, &set.value, set.secret)
            .await?;
        let secret = if set.secret { ", secret" } else { "" };
        let detail = format!("{} set ({}{secret})", set.name, set.scope);
        self.record(scope_host(&set.scope), EventKind::EnvChanged, &detail)
            .await
    }

    /// Removes a variable.
    pub async fn unset_env(&self, scope: &Scope, name: &str) -> Result<()> {
        self.fleet.store().unset_env(scope, name).await?;
        let detail = format!("{name} removed ({scope})");
        self.record(scope_host(scope), EventKind::EnvChanged, &detail)
            .await
    }

    /// Variables of one scope, or all, by scope and name (secret values masked when shown).
    pub async fn env(&self, scope: Option<&Scope>) -> Result<Vec<EnvVar>> {
        Ok(self.fleet.store().env(scope).await?)
    }
}
