//! `enrollment …`: how agents enroll by themselves (tokens, rules, the fingerprint they pin),
//! and the approval of the hosts held for it.

use std::time::Duration;

use clap::{Args, Subcommand};

use super::CliError;
use super::api::EnrollmentApi;
use super::parse::parse_nonzero_duration;
use crate::ops::{AddRule, AddToken, parse_clause};
use crate::print::Printer;

/// `enrollment …`.
#[derive(Subcommand)]
pub enum EnrollmentCommand {
    /// Tokens agents enroll with: made, listed, revoked.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Rules, tried in order, that decide an enrolling host's groups and whether its agent key
    /// is trusted at once or held for approval (after the last: hold, no group).
    #[command(subcommand)]
    Rule(RuleCommand),
    /// The server's enrollment fingerprint, which `otto-agent enroll --fingerprint` pins.
    Fingerprint,
    /// List the hosts whose agent keys wait for approval, with what their agents reported.
    Pending,
    /// Approve the pending agent keys of hosts (enrolled and held, or changed keys): pinned.
    Approve {
        /// The hosts.
        #[arg(required = true, value_name = "HOST")]
        hosts: Vec<String>,
    },
    /// Deny the pending agent keys of hosts: dropped, the hosts left as they were.
    Deny {
        /// The hosts.
        #[arg(required = true, value_name = "HOST")]
        hosts: Vec<String>,
    },
}

/// `enrollment token …`.
#[derive(Subcommand)]
pub enum TokenCommand {
    /// Make a token; its secret and the agent command that uses it are printed once (only
    /// its hash is stored).
    Add(TokenArgs),
    /// List tokens (never their secrets).
    List,
    /// Revoke a token, by its id: no agent enrolls with it from now on.
    Revoke {
        /// The token's id.
        id: i64,
    },
}

/// What a new token allows.
#[derive(Args)]
pub struct TokenArgs {
    /// How many agents may enroll with it (1 to 100000).
    #[arg(long, default_value_t = 1)]
    uses: u32,
    /// It stops working after this long (at most 366d).
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = parse_nonzero_duration)]
    expires: Duration,
    /// A group every host enrolled with it joins (created if missing); repeat for several.
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// What it is for.
    #[arg(long, default_value = "")]
    note: String,
    /// Where agents reach serve's call-home listener, ADDRESS[:PORT], for the printed command.
    #[arg(long, value_name = "ADDRESS[:PORT]")]
    call_home: Option<String>,
}

/// `enrollment rule …`.
#[derive(Subcommand)]
pub enum RuleCommand {
    /// Add a rule: its clauses must all match (none: every agent).
    Add(RuleArgs),
    /// List the rules in the order they are tried.
    List,
    /// Remove a rule, by its id.
    Remove {
        /// The rule's id.
        id: i64,
    },
}

/// A new rule.
#[derive(Args)]
pub struct RuleArgs {
    /// A clause PROPERTY~REGEX (e.g. 'arch~^mips'): the property the agent reports (hostname,
    /// name, address, kernel, kernel_version, distribution, distribution_version, arch, endian
    /// (big or little), model, call_home) must match; repeat for several.
    #[arg(long = "match", value_name = "PROPERTY~REGEX")]
    clauses: Vec<String>,
    /// A group a matching host joins (created if missing); repeat for several.
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// Pin a matching host's agent key at once.
    #[arg(long, conflicts_with = "hold", required_unless_present = "hold")]
    trust: bool,
    /// Hold a matching host's agent key for approval (`enrollment approve`).
    #[arg(long, required_unless_present = "trust")]
    hold: bool,
    /// Where it goes: 1 is tried first (default: last).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    position: Option<u32>,
}

/// `enrollment …`, in process or through `serve`.
pub async fn execute(
    api: &impl EnrollmentApi,
    out: &Printer,
    command: EnrollmentCommand,
) -> Result<(), CliError> {
    match command {
        EnrollmentCommand::Token(TokenCommand::Add(t)) => {
            let created = api
                .add_token(AddToken {
                    uses: Some(t.uses),
                    expires_in_secs: Some(t.expires.as_secs().max(1)),
                    groups: t.groups,
                    note: t.note,
                    call_home: t.call_home,
                })
                .await?;
            out.token_created(&created);
        }
        EnrollmentCommand::Token(TokenCommand::List) => out.tokens(&api.tokens().await?),
        EnrollmentCommand::Token(TokenCommand::Revoke { id }) => {
            api.revoke_token(id).await?;
            out.say(&format!("enrollment token {id} revoked"));
        }
        EnrollmentCommand::Rule(RuleCommand::Add(r)) => {
            let clauses = r
                .clauses
                .iter()
                .map(|c| parse_clause(c))
                .collect::<Result<Vec<_>, _>>()?;
            let rules = api
                .add_rule(AddRule {
                    clauses,
                    groups: r.groups,
                    trust: r.trust,
                    position: r.position,
                })
                .await?;
            out.rules(&rules);
        }
        EnrollmentCommand::Rule(RuleCommand::List) => out.rules(&api.rules().await?),
        EnrollmentCommand::Rule(RuleCommand::Remove { id }) => {
            api.remove_rule(id).await?;
            out.say(&format!("enrollment rule {id} removed"));
        }
        EnrollmentCommand::Fingerprint => {
            out.say(&api.fingerprint().await?.fingerprint);
        }
        EnrollmentCommand::Pending => out.pending_hosts(&api.pending_hosts().await?),
        EnrollmentCommand::Approve { hosts } => return decide(api, out, hosts, true).await,
        EnrollmentCommand::Deny { hosts } => return decide(api, out, hosts, false).await,
    }
    Ok(())
}

/// `enrollment approve|deny HOST…`: each host's outcome; `HostsFailed` if any failed.
async fn decide(
    api: &impl EnrollmentApi,
    out: &Printer,
    hosts: Vec<String>,
    approve: bool,
) -> Result<(), CliError> {
    let total = hosts.len();
    let decided = api.decide_pending(hosts, approve).await?;
    out.pending_decided(&decided, approve);
    match decided.iter().filter(|d| d.error.is_some()).count() {
        0 => Ok(()),
        failed => Err(CliError::HostsFailed {
            failed,
            cancelled: 0,
            skipped: 0,
            total,
        }),
    }
}
