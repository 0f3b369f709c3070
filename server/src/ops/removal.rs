//! The rule for removing what has variables (a host, a group, a script): they go with it only
//! when the removal is forced; otherwise it is refused with their names ([`ForceNeeded`]), for
//! each front end to ask in its own words (the command line on a terminal, the web UI in a
//! dialog) and to try again with force.

use serde::{Deserialize, Serialize};

use crate::model::Scope;

use super::{Ops, OpsError, Result};

/// A variable that a removal would take with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LostVariable {
    /// Its name.
    pub name: String,
    /// Whether it is secret.
    pub secret: bool,
}

/// Why a removal needs force, as data (the API's `error.detail`): what it would take with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum ForceNeeded {
    /// The host, group or script has variables of its own, which would go with it.
    HasVariables {
        /// What it is: `host`, `group` or `script`.
        scope: String,
        /// Its name.
        owner: String,
        /// Its variables, by name.
        variables: Vec<LostVariable>,
    },
}

impl std::fmt::Display for ForceNeeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ForceNeeded::HasVariables {
            scope,
            owner,
            variables,
        } = self;
        let names: Vec<String> = variables
            .iter()
            .map(|v| match v.secret {
                true => format!("{} (secret)", v.name),
                false => v.name.clone(),
            })
            .collect();
        let which = match names.len() {
            1 => "its variable".to_string(),
            n => format!("its {n} variables"),
        };
        write!(
            f,
            "removing {scope} {owner} also removes {which}: {}",
            names.join(", ")
        )
    }
}

impl Ops {
    /// Before removing what owns `scope`: refused ([`OpsError::ForceNeeded`]) when it has
    /// variables and the removal is not forced. With `force` nothing is read (so a lost
    /// secrets key does not stand in the way).
    pub(super) async fn refuse_losing_variables(&self, scope: &Scope, force: bool) -> Result<()> {
        if force {
            return Ok(());
        }
        let vars = self.fleet.store().env(Some(scope)).await?;
        if vars.is_empty() {
            return Ok(());
        }
        let (kind, owner) = scope.parts();
        Err(OpsError::ForceNeeded(ForceNeeded::HasVariables {
            scope: kind.to_string(),
            owner: owner.to_string(),
            variables: vars
                .into_iter()
                .map(|v| LostVariable {
                    name: v.name,
                    secret: v.value.secret,
                })
                .collect(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Script;
    use crate::ops::testing::{fixture, new_r1};
    use crate::ops::{ErrorKind, SetEnv};

    fn lost(name: &str, secret: bool) -> LostVariable {
        LostVariable {
            name: name.into(),
            secret,
        }
    }

    #[test]
    fn the_refusal_names_each_variable_and_marks_secrets() {
        let refusal = |variables| ForceNeeded::HasVariables {
            scope: "group".into(),
            owner: "lab".into(),
            variables,
        };
        assert_eq!(
            refusal(vec![lost("API_TOKEN", true), lost("MODE", false)]).to_string(),
            "removing group lab also removes its 2 variables: API_TOKEN (secret), MODE"
        );
        assert_eq!(
            refusal(vec![lost("MODE", false)]).to_string(),
            "removing group lab also removes its variable: MODE"
        );
    }

    #[tokio::test]
    async fn hosts_groups_and_scripts_with_variables_go_only_when_forced() {
        let (_dir, ops) = fixture().await;
        ops.add_host(new_r1()).await.unwrap();
        ops.add_group("lab").await.unwrap();
        let script = Script::example("job", b"true");
        ops.save_script(&script, false).await.unwrap();
        for (scope, secret) in [
            (Scope::Host("r1".into()), true),
            (Scope::Group("lab".into()), false),
            (Scope::Script("job".into()), false),
        ] {
            let set = SetEnv {
                scope,
                name: "MODE".into(),
                value: "fast".into(),
                secret: Some(secret),
            };
            ops.set_env(&set).await.unwrap();
        }
        let refused = |e: OpsError| {
            assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
            match e {
                OpsError::ForceNeeded(ForceNeeded::HasVariables {
                    scope, variables, ..
                }) => (scope, variables),
                e => panic!("not refused for its variables: {e}"),
            }
        };

        let host = refused(ops.remove_host("r1", false).await.unwrap_err());
        assert_eq!(host, ("host".into(), vec![lost("MODE", true)]));
        let group = refused(ops.remove_group("lab", false).await.unwrap_err());
        assert_eq!(group, ("group".into(), vec![lost("MODE", false)]));
        let script = refused(ops.remove_script("job", false).await.unwrap_err());
        assert_eq!(script, ("script".into(), vec![lost("MODE", false)]));
        // Refused: all still there, with their variables.
        assert_eq!(ops.hosts().await.unwrap().len(), 1);
        assert_eq!(ops.groups().await.unwrap().len(), 1);
        assert_eq!(ops.scripts().await.unwrap().len(), 1);
        assert_eq!(ops.env(None).await.unwrap().len(), 3);

        ops.remove_host("r1", true).await.unwrap();
        ops.remove_group("lab", true).await.unwrap();
        ops.remove_script("job", true).await.unwrap();
        assert!(ops.env(None).await.unwrap().is_empty());
        // Without variables, no force is needed.
        ops.add_group("empty").await.unwrap();
        ops.remove_group("empty", false).await.unwrap();
    }
}
