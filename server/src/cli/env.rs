//! `env …`: environment variables, global or per group, host or script.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::model::{EnvVar, Scope};
use crate::names::HostName;
use crate::ops::SetEnv;
use crate::print::Printer;
use crate::sanitize;

use super::CliError;
use super::api::env::EnvApi;

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
    /// shell history and `ps`): a secret typed on a terminal is not shown.
    Set {
        /// Its name: letters, digits and `_`, not starting with a digit (as the shell's).
        name: String,
        /// Its value.
        value: Option<String>,
        /// Never print its value (a secret set again without it stays secret).
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
    /// The variables a host's runs get, from every scope (global, its groups, its own), in
    /// the order they apply, each with where it comes from (secret values masked).
    Show {
        /// The host.
        #[arg(long)]
        host: HostName,
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

/// `env …`, in process or through `serve`.
pub async fn execute(
    api: &impl EnvApi,
    out: &Printer,
    command: EnvCommand,
) -> Result<(), CliError> {
    match command {
        EnvCommand::Set {
            name,
            value,
            secret,
            scope,
        } => {
            let value = read_value(&name, value, secret).await?;
            let scope = scope.scope().unwrap_or(Scope::Global);
            let said = format!(
                "{name} set ({scope}{})",
                if secret { ", secret" } else { "" }
            );
            let set = SetEnv {
                scope,
                name,
                value,
                secret: secret.then_some(true),
            };
            api.set_env(set).await?;
            out.say(&said);
        }
        EnvCommand::Unset { name, scope } => {
            let scope = scope.scope().unwrap_or(Scope::Global);
            api.unset_env(&scope, &name).await?;
            out.say(&format!("{name} removed ({scope})"));
        }
        EnvCommand::Show { host } => out.host_env(&api.host_env(&host).await?),
        EnvCommand::List { scope, all } => {
            let scope = if all { None } else { scope.scope() };
            out.env(&api.env(scope.as_ref()).await?);
        }
    }
    Ok(())
}

/// The value of variable `name`: `value` if given, else standard input (typed without being
/// shown when `secret` and on a terminal).
async fn read_value(name: &str, value: Option<String>, secret: bool) -> Result<String, CliError> {
    Ok(match value {
        Some(v) => v,
        None if secret && std::io::stdin().is_terminal() => {
            read_hidden(&format!("{name} (secret, not shown)")).await?
        }
        None => {
            let mut v = String::new();
            std::io::stdin()
                .read_to_string(&mut v)
                .map_err(|e| CliError::File("<stdin>".into(), e))?;
            v.trim_end_matches(['\n', '\r']).to_string()
        }
    })
}

/// Reads one line typed on the terminal (standard input) without showing it, after `prompt` on
/// standard error. The terminal's settings are restored on every path, Ctrl-C included.
pub(super) async fn read_hidden(prompt: &str) -> Result<String, CliError> {
    let terminal = |e| CliError::File(PathBuf::from("<terminal>"), e);
    // Ctrl-C is ours (taken before the echo goes off) and still ends the command, below.
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(terminal)?;
    let _echo_off = EchoOff::new().map_err(terminal)?;
    eprint!("{prompt}: ");
    let _ = std::io::stderr().flush();
    let (tx, rx) = tokio::sync::oneshot::channel();
    // A plain thread, not a blocking task: the runtime need not wait for it on Ctrl-C.
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = tx.send(std::io::stdin().read_line(&mut line).map(|_| line));
    });
    tokio::select! {
        line = rx => {
            let line = line
                .map_err(|_| terminal(std::io::ErrorKind::UnexpectedEof.into()))?
                .map_err(terminal)?;
            Ok(line.trim_end_matches(['\n', '\r']).to_string())
        }
        _ = interrupt.recv() => {
            eprintln!();
            Err(terminal(std::io::ErrorKind::Interrupted.into()))
        }
    }
}

/// The terminal on standard input with its echo off, until dropped.
struct EchoOff {
    saved: libc::termios,
}

impl EchoOff {
    fn new() -> std::io::Result<EchoOff> {
        // SAFETY: termios is plain data; tcgetattr fills it and reports failure by its result.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: a valid pointer to a termios we own.
        if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut saved) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut hidden = saved;
        // No echo, but the Enter that ends the line still moves to the next one.
        hidden.c_lflag &= !(libc::ECHO | libc::ECHOE | libc::ECHOK);
        hidden.c_lflag |= libc::ECHONL;
        // SAFETY: a valid pointer to a termios we own.
        if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &hidden) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(EchoOff { saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // SAFETY: restores the settings read in `new`, from a termios we own.
        unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &self.saved) };
    }
}

/// Before removing what owns `scope` (a host, group or script), says which variables go with it and
/// asks: a yes on a terminal, or `force`. Without variables there is nothing to ask; with
/// `force` nothing is read (so a lost secrets key does not stand in the way).
pub(super) async fn confirm_removal(
    api: &impl EnvApi,
    scope: &Scope,
    force: bool,
) -> Result<(), CliError> {
    if force {
        return Ok(());
    }
    let vars = api.env(Some(scope)).await?;
    if vars.is_empty() {
        return Ok(());
    }
    let notice = removal_notice(scope, &vars);
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(format!(
            "{notice}; give --force to remove them too"
        )));
    }
    eprint!("{}. Remove? [y/N] ", sanitize::text(&notice));
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| CliError::File(PathBuf::from("<terminal>"), e))?;
    match answer.trim() {
        "y" | "Y" | "yes" | "YES" | "Yes" => Ok(()),
        _ => Err(CliError::Usage(format!("{scope} not removed"))),
    }
}

/// What removing `scope`'s owner takes with it: its variables by name, secrets marked.
fn removal_notice(scope: &Scope, vars: &[EnvVar]) -> String {
    let names: Vec<String> = vars
        .iter()
        .map(|v| {
            if v.value.secret {
                format!("{} (secret)", v.name)
            } else {
                v.name.clone()
            }
        })
        .collect();
    let which = match names.len() {
        1 => "its variable".to_string(),
        n => format!("its {n} variables"),
    };
    format!(
        "removing {scope} also removes {which}: {}",
        names.join(", ")
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::Secretish;

    fn var(name: &str, secret: bool) -> EnvVar {
        EnvVar {
            scope: Scope::Group("lab".into()),
            name: name.into(),
            value: Secretish {
                value: "v".into(),
                secret,
            },
        }
    }

    #[test]
    fn the_notice_names_each_variable_and_marks_secrets() {
        let lab = Scope::Group("lab".into());
        assert_eq!(
            removal_notice(&lab, &[var("API_TOKEN", true), var("MODE", false)]),
            "removing group lab also removes its 2 variables: API_TOKEN (secret), MODE"
        );
        assert_eq!(
            removal_notice(&lab, &[var("MODE", false)]),
            "removing group lab also removes its variable: MODE"
        );
    }
}
