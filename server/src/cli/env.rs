//! `env …`: environment variables, global or per group, host or script.

use std::io::Read;

use clap::{Args, Subcommand};

use crate::model::Scope;
use crate::names::HostName;
use crate::ops::{Ops, SetEnv};
use crate::print::Printer;

use super::CliError;

/// Where a variable applies (global when none is given).
#[derive(Args, Clone, Default)]
pub struct ScopeArgs {
    /// For members of this group.
    #[arg(long, conflicts_with_all = ["host", "script"])]
    pub group: Option<String>,
    /// For this host.
    #[arg(long, conflicts_with = "script")]
    pub host: Option<HostName>,
    /// For this script.
    #[arg(long)]
    pub script: Option<String>,
}

impl ScopeArgs {
    pub fn scope(&self) -> Option<Scope> {
        match (&self.group, &self.host, &self.script) {
            (Some(g), _, _) => Some(Scope::Group(g.clone())),
            (_, Some(h), _) => Some(Scope::Host(h.to_string())),
            (_, _, Some(s)) => Some(Scope::Script(s.clone())),
            _ => None,
        }
    }
}

#[derive(Subcommand)]
pub enum EnvCommand {
    /// Set a variable; without VALUE it is read from standard input (keeps secrets out of
    /// shell history and `ps`).
    Set {
        /// Its name.
        name: String,
        /// Its value.
        value: Option<String>,
        /// Never print its value.
        #[arg(long)]
        secret: bool,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Remove a variable.
    Unset {
        /// Its name.
        name: String,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// List variables (secret values masked).
    List {
        #[command(flatten)]
        scope: ScopeArgs,
        /// Every scope (the default when no scope is given).
        #[arg(long)]
        all: bool,
    },
}

pub async fn execute(ops: &Ops, out: &Printer, command: EnvCommand) -> Result<(), CliError> {
    match command {
        EnvCommand::Set {
            name,
            value,
            secret,
            scope,
        } => {
            let value = match value {
                Some(v) => v,
                None => {
                    let mut v = String::new();
                    std::io::stdin()
                        .read_to_string(&mut v)
                        .map_err(|e| CliError::File("<stdin>".into(), e))?;
                    v.trim_end_matches(['\n', '\r']).to_string()
                }
            };
            let scope = scope.scope().unwrap_or(Scope::Global);
            let set = SetEnv {
                scope,
                name,
                value,
                secret,
            };
            ops.set_env(&set).await?;
            out.say(&format!(
                "{} set ({}{})",
                set.name,
                set.scope,
                if secret { ", secret" } else { "" }
            ));
        }
        EnvCommand::Unset { name, scope } => {
            let scope = scope.scope().unwrap_or(Scope::Global);
            ops.unset_env(&scope, &name).await?;
            out.say(&format!("{name} removed ({scope})"));
        }
        EnvCommand::List { scope, all } => {
            let scope = if all { None } else { scope.scope() };
            out.env(&ops.env(scope.as_ref()).await?);
        }
    }
    Ok(())
}
