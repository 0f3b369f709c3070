//! Which hosts a command addresses, how it goes through them, and how many of them failed.

use clap::Args;

use crate::ops::{Rollout, RolloutOptions, Share, Status, Targets};
use crate::patterns;
use crate::selectors::Selector;

use super::CliError;

/// Which hosts.
#[derive(Args, Clone, Default)]
pub struct TargetArgs {
    /// Hosts by name or glob (`ap-*`, `r?`, `r[0-9]`), or a comma list of them (repeatable).
    #[arg(short = 'H', long = "host", value_name = "PATTERN", value_delimiter = ',',
          value_parser = parse_pattern)]
    pub hosts: Vec<String>,
    /// The members of groups by name or glob (`lab-*`), or a comma list of them (repeatable;
    /// one that matches no group is an error).
    #[arg(short, long = "group", value_name = "GROUP", value_delimiter = ',')]
    pub groups: Vec<String>,
    /// Every enabled host.
    #[arg(short, long)]
    pub all: bool,
    /// Leave out hosts by name or glob, or a comma list of them (repeatable; one that matches
    /// nothing is no error).
    #[arg(long, value_name = "PATTERN", value_delimiter = ',', value_parser = parse_pattern)]
    pub exclude: Vec<String>,
    /// Leave out the members of groups by name or glob, or a comma list of them (repeatable;
    /// a glob that matches nothing is no error).
    #[arg(long, value_name = "GROUP", value_delimiter = ',')]
    pub exclude_group: Vec<String>,
    /// Only the hosts whose last reported facts match FACT OP VALUE (repeatable: all must
    /// match): `arch=mips`, `kernel~^5\.`, `model~Archer`, `flash_free<2MiB`,
    /// `version!=0.3.1`. Facts: arch, model, hostname, kernel_name, os, version, kernel,
    /// release, mem_total, mem_available, flash_total, flash_free, load, uptime, big_endian;
    /// operators = != ~ (regex) !~ < <= > >=. Alone, it chooses among every enabled host;
    /// hosts without facts yet are left out, and said so.
    #[arg(short = 'w', long = "where", value_name = "FACT OP VALUE",
          value_parser = parse_selector)]
    pub selectors: Vec<String>,
}

impl TargetArgs {
    pub fn targets(&self) -> Targets {
        Targets {
            all: self.all,
            hosts: self.hosts.clone(),
            groups: self.groups.clone(),
            exclude: self.exclude.clone(),
            exclude_groups: self.exclude_group.clone(),
            selectors: self.selectors.clone(),
        }
    }
}

/// A fact selector, checked.
pub(super) fn parse_selector(text: &str) -> Result<String, String> {
    Selector::parse(text)
        .map(|s| s.to_string())
        .map_err(|e| e.to_string())
}

/// A host's name or a glob, checked.
fn parse_pattern(text: &str) -> Result<String, String> {
    patterns::check(text)
        .map(|()| text.to_string())
        .map_err(|e| e.to_string())
}

/// How the hosts go: in batches, up to a number of failures.
#[derive(Args, Clone, Default)]
pub struct RolloutArgs {
    /// Work on N hosts (or N% of them) at a time, the next batch once one is done.
    #[arg(long, value_name = "N|N%", value_parser = parse_batch)]
    pub batch: Option<Share>,
    /// Start no further batch once more than N hosts (or N% of them) have failed; the hosts
    /// not started are reported as skipped.
    #[arg(long, value_name = "N|N%", value_parser = Share::parse)]
    pub max_failures: Option<Share>,
}

impl RolloutArgs {
    /// The request's options these flags give.
    pub fn options(&self) -> RolloutOptions {
        RolloutOptions {
            batch: self.batch,
            max_failures: self.max_failures,
        }
    }
}

/// Hosts and how they go, for an action on many hosts.
#[derive(Args, Clone, Default)]
pub struct ActionArgs {
    #[command(flatten)]
    pub targets: TargetArgs,
    #[command(flatten)]
    pub rollout: RolloutArgs,
    /// Print which hosts it would act on, and do nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// [`Share::parse`], held to [`Rollout::batch`]'s rule.
fn parse_batch(text: &str) -> Result<Share, String> {
    Rollout::batch(Share::parse(text)?).map_err(|e| e.to_string())
}

/// Ok if every host succeeded, else how many failed, were cancelled and were skipped.
pub fn failures(results: impl Iterator<Item = Status>) -> Result<(), CliError> {
    let (mut failed, mut cancelled, mut skipped, mut total) = (0, 0, 0, 0);
    for status in results {
        total += 1;
        failed += usize::from(status == Status::Failed);
        cancelled += usize::from(status == Status::Cancelled);
        skipped += usize::from(status == Status::Skipped);
    }
    if failed + cancelled + skipped > 0 {
        Err(CliError::HostsFailed {
            failed,
            cancelled,
            skipped,
            total,
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancelled_hosts_are_no_failures_and_exit_as_an_interrupt() {
        use Status::{Cancelled, Failed, Ok, Skipped};
        let err = failures([Ok, Cancelled].into_iter()).unwrap_err();
        assert_eq!(err.to_string(), "1 of 2 hosts cancelled");
        assert_eq!(err.exit_code(), 130);
        let err = failures([Failed, Cancelled, Skipped].into_iter()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "1 of 3 hosts failed, 1 cancelled, 1 skipped"
        );
        assert_eq!(err.exit_code(), 1);
        let err = failures([Ok, Skipped].into_iter()).unwrap_err();
        assert_eq!(err.to_string(), "0 of 2 hosts failed, 1 skipped");
        assert_eq!(err.exit_code(), 1);
        assert!(failures([Ok, Ok].into_iter()).is_ok());
    }

    #[test]
    fn a_batch_has_hosts() {
        assert_eq!(parse_batch("1"), Ok(Share::Count(1)));
        assert_eq!(parse_batch("25%"), Ok(Share::Percent(25)));
        assert!(parse_batch("0").is_err() && parse_batch("0%").is_err());
    }
}
