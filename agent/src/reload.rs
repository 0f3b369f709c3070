//! Reading the configuration file again and putting it in force, for the server's Reload
//! request and for SIGHUP alike. A configuration that cannot be used is refused, and the one in
//! force stays.

use std::fmt;
use std::path::PathBuf;

use crate::config::{Config, ParseError};
use crate::log::{info, warning};
use crate::state::Agent;

/// Why a reload was refused; the configuration in force stays.
#[derive(Debug)]
pub enum ReloadError {
    /// The configuration file (given) could not be read.
    Read(PathBuf, std::io::Error),
    /// The configuration file (given) is malformed.
    Parse(PathBuf, ParseError),
    /// The new configuration has no server key.
    NoServerKey,
}

impl fmt::Display for ReloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReloadError::Read(path, e) => write!(f, "{}: {e}", path.display()),
            ReloadError::Parse(path, e) => write!(f, "{}: {e}", path.display()),
            ReloadError::NoServerKey => f.write_str("the new configuration trusts no server key"),
        }
    }
}

/// Reads the configuration file again and puts it in force; logs what happened.
pub fn reload(agent: &Agent) -> Result<(), ReloadError> {
    let result = replace(agent);
    match &result {
        Ok(()) => info!("configuration reloaded"),
        Err(e) => warning!("reload refused: {e}"),
    }
    result
}

fn replace(agent: &Agent) -> Result<(), ReloadError> {
    let path = &agent.config_path;
    let text = std::fs::read_to_string(path).map_err(|e| ReloadError::Read(path.clone(), e))?;
    let new = Config::parse(&text).map_err(|e| ReloadError::Parse(path.clone(), e))?;
    if new.server_key.is_none() {
        return Err(ReloadError::NoServerKey);
    }
    let old = agent.config().clone();
    if new.listen != old.listen || new.key_path != old.key_path {
        warning!("new listen address or key path take effect at the next start");
    }
    if new.call_home != old.call_home {
        info!("call_home changes at the next call");
    }
    agent.set_config(new);
    Ok(())
}
