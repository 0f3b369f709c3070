//! `run`, `upload` and the control commands: work on hosts, with live output.

use std::sync::Arc;

use clap::Args;
use otto_proto::Control;

use crate::actions::{self, Job, Targets, Upload};
use crate::fleet::Fleet;
use crate::print::Printer;

use super::CliError;
use super::scripts::FileArgs;
use super::targets::{TargetArgs, failures, resolve};

#[derive(Args)]
pub struct RunArgs {
    /// The stored script to run.
    #[arg(required_unless_present = "command", conflicts_with = "command")]
    pub script: Option<String>,
    /// An ad-hoc shell command instead of a stored script.
    #[arg(short, long)]
    pub command: Option<String>,
    /// Timeout in seconds for the ad-hoc command (0: none; default: the agent's).
    #[arg(long)]
    pub timeout: Option<u32>,
    /// Bytes of each stream's output kept in the history per run.
    #[arg(long, default_value_t = 1 << 20)]
    pub output_cap: usize,
    #[command(flatten)]
    pub targets: TargetArgs,
}

#[derive(Args)]
pub struct UploadArgs {
    #[command(flatten)]
    pub file: FileArgs,
    #[command(flatten)]
    pub targets: TargetArgs,
}

pub async fn run(fleet: &Arc<Fleet>, out: &Printer, args: RunArgs) -> Result<(), CliError> {
    let hosts = resolve(fleet, &args.targets).await?;
    let job = match (&args.script, &args.command) {
        (Some(name), _) => Job::stored(fleet, name).await?,
        (None, Some(command)) => Job::command(command, args.timeout),
        (None, None) => return Err(CliError::Usage("give a script or --command".into())),
    };
    let width = hosts.iter().map(|h| h.name.len()).max().unwrap_or(0);
    let results = actions::run(fleet, hosts, job, args.output_cap, out.live_output(width)).await;
    out.run_summary(&results);
    failures(results.iter().map(|r| r.success))
}

pub async fn upload(fleet: &Arc<Fleet>, out: &Printer, args: UploadArgs) -> Result<(), CliError> {
    let UploadArgs { file, targets } = args;
    let hosts = resolve(fleet, &targets).await?;
    let size = std::fs::metadata(&file.file)
        .map_err(|e| CliError::File(file.file.clone(), e))?
        .len();
    let bar = out.progress(size * hosts.len() as u64);
    let progress = {
        let bar = bar.clone();
        Arc::new(move |n| bar.inc(n))
    };
    let results = actions::upload(
        fleet,
        hosts,
        Upload {
            source: file.file.clone(),
            path: file.path,
            owner: file.owner,
            mode: file.mode,
        },
        progress,
    )
    .await
    .map_err(|e| CliError::File(file.file, e))?;
    bar.finish_and_clear();
    out.done(&results);
    failures(results.iter().map(|d| d.success))
}

pub async fn control(
    fleet: &Arc<Fleet>,
    out: &Printer,
    targets: TargetArgs,
    request: Control,
) -> Result<(), CliError> {
    let hosts = resolve(fleet, &targets).await?;
    let results = actions::control(fleet, hosts, request).await;
    out.done(&results);
    failures(results.iter().map(|d| d.success))
}

/// `ping`: a heartbeat to the hosts named, or to all.
pub async fn ping(fleet: &Arc<Fleet>, out: &Printer, t: TargetArgs) -> Result<(), CliError> {
    let targets = if t.targets().is_empty() {
        Targets {
            all: true,
            ..Targets::default()
        }
    } else {
        t.targets()
    };
    let results = actions::ping(fleet, targets.resolve(fleet).await?).await;
    out.ping(&results);
    failures(results.iter().map(|p| p.reachable))
}

/// `cancel`: stops a running run.
pub async fn cancel(fleet: &Arc<Fleet>, out: &Printer, run: i64) -> Result<(), CliError> {
    let result = actions::cancel(fleet, run).await?;
    let ok = result.success;
    out.done(&[result]);
    failures([ok].into_iter())
}

/// `rotate-keys`: new server and agent keys.
pub async fn rotate(fleet: &Arc<Fleet>, out: &Printer, t: TargetArgs) -> Result<(), CliError> {
    let hosts = resolve(fleet, &t).await?;
    let results = actions::rotate(fleet, hosts).await;
    out.done(&results);
    failures(results.iter().map(|d| d.success))
}
