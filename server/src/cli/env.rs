//! `env …`: environment variables, global or per group, host or script.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::model::Scope;
use crate::names::HostName;
use crate::ops::SetEnv;
use crate::print::Printer;

use super::CliError;
use super::api::EnvApi;

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
