//! Environment variables: global, or for a group, a host or a script.

use serde::{Deserialize, Serialize};

use crate::environment::layers;
use crate::model::{EnvVar, EventKind, Scope, Secretish};
use crate::names::{HostName, Kind};

use super::{Ops, OpsError, Result};

/// A variable to set.
#[derive(Debug, Clone)]
pub struct SetEnv {
    /// Where it applies.
    pub scope: Scope,
    /// Its name: an environment variable's (see [`crate::names`]).
    pub name: String,
    /// Its value.
    pub value: String,
    /// Whether its value is never shown; `None` keeps what the variable is (a new one: not
    /// secret), so a secret set again without saying stays secret.
    pub secret: Option<bool>,
}

/// A variable a host's runs get, with where it comes from (its scope: global, one of the
/// host's groups, or the host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostVar {
    /// The variable (a secret's value is masked when shown).
    #[serde(flatten)]
    pub var: EnvVar,
    /// A later scope sets the same name: runs get that one's value instead.
    pub overridden: bool,
}

/// Where variables apply, as the API's query names it (`?global=true`, `?group=`, `?host=`,
/// `?script=`): at most one of these; none is global (for a list: every scope).
#[derive(Debug, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ScopeQuery {
    /// The global scope (only for a list, where no scope means every one).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    global: bool,
    /// This group's.
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<String>,
    /// This host's.
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<String>,
    /// This script's.
    #[serde(skip_serializing_if = "Option::is_none")]
    script: Option<String>,
}

impl ScopeQuery {
    /// The one scope named, if any: `Invalid` for more than one.
    pub fn scope(self) -> Result<Option<Scope>> {
        let named = [
            self.global.then_some(Scope::Global),
            self.group.map(Scope::Group),
            self.host.map(Scope::Host),
            self.script.map(Scope::Script),
        ];
        let mut named = named.into_iter().flatten();
        let scope = named.next();
        match named.next() {
            Some(_) => Err(OpsError::Invalid(
                "name at most one of global, group, host and script".into(),
            )),
            None => Ok(scope),
        }
    }
}

impl From<Option<&Scope>> for ScopeQuery {
    /// The query naming `scope` (none: every scope).
    fn from(scope: Option<&Scope>) -> ScopeQuery {
        let mut query = ScopeQuery::default();
        match scope.cloned() {
            None => {}
            Some(Scope::Global) => query.global = true,
            Some(Scope::Group(group)) => query.group = Some(group),
            Some(Scope::Host(host)) => query.host = Some(host),
            Some(Scope::Script(script)) => query.script = Some(script),
        }
        query
    }
}

/// A variable as listed: a secret's value is never shown.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Variable {
    /// `global`, `group`, `host` or `script`.
    pub scope: String,
    /// The group, host or script it belongs to (none when global).
    pub owner: Option<String>,
    /// Its name.
    pub name: String,
    /// Its value; none when secret.
    pub value: Option<String>,
    /// Whether it is secret: set, and never shown.
    pub secret: bool,
}

impl From<EnvVar> for Variable {
    fn from(var: EnvVar) -> Variable {
        let (scope, owner) = var.scope.parts();
        Variable {
            scope: scope.to_string(),
            owner: (!owner.is_empty()).then(|| owner.to_string()),
            name: var.name,
            value: (!var.value.secret).then_some(var.value.value),
            secret: var.value.secret,
        }
    }
}

impl Variable {
    /// The variable as listed (a secret's value empty: it is never shown); `None` when its
    /// scope is none of the four.
    pub fn into_var(self) -> Option<EnvVar> {
        Some(EnvVar {
            scope: Scope::from_parts(&self.scope, self.owner.unwrap_or_default())?,
            name: self.name,
            value: Secretish {
                value: self.value.unwrap_or_default(),
                secret: self.secret,
            },
        })
    }
}

/// A variable a host's runs get, with the scope it comes from.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HostVariable {
    /// The variable, with its scope: `global`, `group` (`owner`: which) or `host`.
    #[serde(flatten)]
    pub variable: Variable,
    /// A later scope sets the same name: runs get that one's value instead.
    pub overridden: bool,
}

impl From<HostVar> for HostVariable {
    fn from(var: HostVar) -> HostVariable {
        HostVariable {
            variable: Variable::from(var.var),
            overridden: var.overridden,
        }
    }
}

impl HostVariable {
    /// The variable as listed (see [`Variable::into_var`]).
    pub fn into_host_var(self) -> Option<HostVar> {
        Some(HostVar {
            var: self.variable.into_var()?,
            overridden: self.overridden,
        })
    }
}

/// A value to set.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewValue {
    /// The value.
    pub value: String,
    /// Never show it again. Left out: a secret variable stays secret, a new one is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<bool>,
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
        Kind::Variable.check(&set.name)?;
        let store = self.fleet.store();
        let secret = match set.secret {
            Some(secret) => secret,
            None => store
                .env(Some(&set.scope))
                .await?
                .iter()
                .any(|v| v.name == set.name && v.value.secret),
        };
        store
            .set_env(&set.scope, &set.name, &set.value, secret)
            .await?;
        let secret = if secret { ", secret" } else { "" };
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

    /// The variables every run on host `name` gets (a script's own come after the global ones
    /// and before its groups'), in the order they apply: global, each of its groups by name,
    /// its own; each marked when a later one sets the same name.
    pub async fn host_env(&self, name: &HostName) -> Result<Vec<HostVar>> {
        let store = self.fleet.store();
        let host = store.host(name).await?;
        let all = store.env(None).await?;
        let applied: Vec<EnvVar> = layers(None, &host)
            .flat_map(|layer| all.iter().filter(move |v| v.scope == layer))
            .cloned()
            .collect();
        let vars = applied.iter().enumerate().map(|(i, var)| HostVar {
            overridden: applied
                .iter()
                .skip(i + 1)
                .any(|later| later.name == var.name),
            var: var.clone(),
        });
        Ok(vars.collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::ErrorKind;
    use crate::ops::testing::{ev, fixture, last, logged, new_r1};

    #[test]
    fn the_apis_variable_types_carry_scopes_and_hide_secrets() {
        // Each scope, and none (every scope), as the query names it and back.
        let scopes = [
            None,
            Some(Scope::Global),
            Some(Scope::Group("lab".into())),
            Some(Scope::Host("r1".into())),
            Some(Scope::Script("hello".into())),
        ];
        for scope in scopes {
            let query = serde_json::to_value(ScopeQuery::from(scope.as_ref())).unwrap();
            let read: ScopeQuery = serde_json::from_value(query).unwrap();
            assert_eq!(read.scope().unwrap(), scope);
        }
        // A variable as listed reads back as itself; a secret without its value.
        let var = |secret| EnvVar {
            scope: Scope::Group("lab".into()),
            name: "TOKEN".into(),
            value: Secretish {
                value: "s3cret".into(),
                secret,
            },
        };
        let plain = Variable::from(var(false));
        assert_eq!(plain.into_var(), Some(var(false)));
        let secret = serde_json::to_string(&Variable::from(var(true))).unwrap();
        assert!(!secret.contains("s3cret"), "{secret}");
        let read: Variable = serde_json::from_str(&secret).unwrap();
        let read = read.into_var().unwrap();
        assert_eq!((read.value.secret, read.value.value.as_str()), (true, ""));
        let unknown = Variable {
            scope: "galaxy".into(),
            ..Variable::from(var(false))
        };
        assert_eq!(unknown.into_var(), None);
    }

    #[tokio::test]
    async fn a_hosts_variables_come_from_global_its_groups_and_itself_marked_when_overridden() {
        let (_dir, ops) = fixture().await;
        ops.add_host(new_r1()).await.unwrap();
        for group in ["a", "b", "other"] {
            ops.add_group(group).await.unwrap();
        }
        let r1: HostName = "r1".parse().unwrap();
        for group in ["b", "a"] {
            ops.set_membership(group, std::slice::from_ref(&r1), true)
                .await
                .unwrap();
        }
        let set = |scope: Scope, name: &str, secret| SetEnv {
            scope,
            name: name.into(),
            value: format!("{name} value"),
            secret: Some(secret),
        };
        for var in [
            set(Scope::Host("r1".into()), "X", false),
            set(Scope::Group("b".into()), "X", false),
            set(Scope::Group("a".into()), "TOKEN", true),
            set(Scope::Global, "X", false),
            set(Scope::Global, "MODE", false),
            set(Scope::Group("other".into()), "NOT_MINE", false),
        ] {
            ops.set_env(&var).await.unwrap();
        }
        let vars = ops.host_env(&r1).await.unwrap();
        let seen: Vec<(String, &str, bool, bool)> = vars
            .iter()
            .map(|v| {
                (
                    v.var.scope.to_string(),
                    v.var.name.as_str(),
                    v.var.value.secret,
                    v.overridden,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("global".to_string(), "MODE", false, false),
                ("global".to_string(), "X", false, true),
                ("group a".to_string(), "TOKEN", true, false),
                ("group b".to_string(), "X", false, true),
                ("host r1".to_string(), "X", false, false),
            ]
        );
        let missing = ops.host_env(&"r9".parse().unwrap()).await.unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn variables_are_set_and_unset_and_recorded_without_their_value() {
        let (_dir, ops) = fixture().await;
        ops.add_host(new_r1()).await.unwrap();
        let host = Scope::Host("r1".into());
        ops.set_env(&SetEnv {
            scope: host.clone(),
            name: "TOKEN".into(),
            value: "hunter2".into(),
            secret: Some(true),
        })
        .await
        .unwrap();
        assert_eq!(
            last(&ops).await,
            ev("r1", "env-changed", "TOKEN set (host r1, secret)")
        );
        ops.set_env(&SetEnv {
            scope: Scope::Global,
            name: "MODE".into(),
            value: "fast".into(),
            secret: Some(false),
        })
        .await
        .unwrap();
        assert_eq!(last(&ops).await, ev("", "env-changed", "MODE set (global)"));
        let vars = ops.env(None).await.unwrap();
        assert_eq!(vars.len(), 2);
        assert_eq!(
            ops.env(Some(&host)).await.unwrap()[0].value.value,
            "hunter2"
        );
        assert!(!format!("{:?}", logged(&ops).await).contains("hunter2"));

        for name in ["", "A=B", "A\0", "A.B", "1A", "a-b", "A B", "../x"] {
            let bad = ops
                .set_env(&SetEnv {
                    scope: Scope::Global,
                    name: name.into(),
                    value: "v".into(),
                    secret: Some(false),
                })
                .await
                .unwrap_err();
            assert_eq!(bad.kind(), ErrorKind::Invalid, "{name:?}");
        }

        ops.unset_env(&host, "TOKEN").await.unwrap();
        assert_eq!(
            last(&ops).await,
            ev("r1", "env-changed", "TOKEN removed (host r1)")
        );
        assert!(ops.env(Some(&host)).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_secret_set_again_without_saying_stays_secret() {
        let (_dir, ops) = fixture().await;
        let set = |value: &str, secret| SetEnv {
            scope: Scope::Global,
            name: "TOKEN".into(),
            value: value.into(),
            secret,
        };
        // New and not said: not secret.
        ops.set_env(&set("a", None)).await.unwrap();
        assert!(!ops.env(None).await.unwrap()[0].value.secret);
        ops.set_env(&set("b", Some(true))).await.unwrap();
        ops.set_env(&set("c", None)).await.unwrap();
        let vars = ops.env(None).await.unwrap();
        assert_eq!(
            (vars[0].value.value.as_str(), vars[0].value.secret),
            ("c", true)
        );
        assert_eq!(
            last(&ops).await,
            ev("", "env-changed", "TOKEN set (global, secret)")
        );
        ops.set_env(&set("d", Some(false))).await.unwrap();
        assert!(!ops.env(None).await.unwrap()[0].value.secret);
    }
}
