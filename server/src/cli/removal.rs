//! Removing what has variables (a host, a group, a script): `ops` refuses it without force,
//! naming them ([`ForceNeeded`]); the command line then asks on a terminal, and otherwise
//! refuses, naming `--force`. The same locally and through `--server`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use crate::ops::{ForceNeeded, OpsError};
use crate::sanitize;

use super::CliError;

/// Removes by `remove(force)`: refused for the variables it would take with it, asks on a
/// terminal and with a yes removes by `remove(true)`; without a terminal, refused naming
/// `--force`.
pub(super) async fn confirmed<T>(
    force: bool,
    remove: impl AsyncFn(bool) -> Result<T, CliError>,
) -> Result<T, CliError> {
    match remove(force).await {
        Err(CliError::Ops(e)) => match *e {
            OpsError::ForceNeeded(needed) => {
                ask(&needed)?;
                remove(true).await
            }
            e => Err(e.into()),
        },
        done => done,
    }
}

/// Asks whether to remove what `needed` says goes with the removal: a yes on a terminal, or
/// `Usage` naming `--force`.
fn ask(needed: &ForceNeeded) -> Result<(), CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(format!(
            "{needed}; give --force to remove them too"
        )));
    }
    eprint!("{}. Remove? [y/N] ", sanitize::text(&needed.to_string()));
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| CliError::File(PathBuf::from("<terminal>"), e))?;
    match answer.trim() {
        "y" | "Y" | "yes" | "YES" | "Yes" => Ok(()),
        _ => {
            let ForceNeeded::HasVariables { scope, owner, .. } = needed;
            Err(CliError::Usage(format!("{scope} {owner} not removed")))
        }
    }
}
