//! Which hosts a command addresses, and how many of them failed.

use clap::Args;

use crate::names::HostName;
use crate::ops::Targets;

use super::CliError;

/// Which hosts.
#[derive(Args, Clone, Default)]
pub struct TargetArgs {
    /// A host (repeatable).
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    pub hosts: Vec<HostName>,
    /// The members of a group (repeatable).
    #[arg(short, long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// Every enabled host.
    #[arg(short, long)]
    pub all: bool,
}

impl TargetArgs {
    pub fn targets(&self) -> Targets {
        Targets {
            all: self.all,
            hosts: self.hosts.iter().map(HostName::to_string).collect(),
            groups: self.groups.clone(),
        }
    }
}

pub fn failures(results: impl Iterator<Item = bool>) -> Result<(), CliError> {
    let (mut failed, mut total) = (0, 0);
    for ok in results {
        total += 1;
        failed += usize::from(!ok);
    }
    if failed > 0 {
        Err(CliError::HostsFailed(failed, total))
    } else {
        Ok(())
    }
}
