//! `run`, `upload` and the control commands: work on hosts, with live output.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use crate::ops::{Cancellation, Control, Job, Ops, Status, Upload};
use crate::print::{OutputFiles, Printer};
use crate::sanitize;

use super::CliError;
use super::parse::parse_timeout_secs;
use super::scripts::FileArgs;
use super::targets::{ActionArgs, RolloutArgs, TargetArgs, failures};

#[derive(Args)]
pub struct RunArgs {
    /// The stored script to run.
    #[arg(required_unless_present = "command", conflicts_with = "command")]
    pub script: Option<String>,
    /// An ad-hoc shell command instead of a stored script.
    #[arg(short, long)]
    pub command: Option<String>,
    /// Timeout of this run, e.g. 90s, 30m, 2h (plain numbers are seconds; 0: none), for a
    /// script instead of its own. Without it: the script's own, else 1h.
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout_secs)]
    pub timeout: Option<u32>,
    /// Also write each host's output, as the agent sent it, to DIR/HOST.stdout and
    /// DIR/HOST.stderr (DIR made if missing; a file there replaced when the host's run ends).
    #[arg(short, long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Bytes of each stream's output kept in the history per run.
    #[arg(long, default_value_t = 1 << 20)]
    pub output_cap: usize,
    #[command(flatten)]
    pub targets: TargetArgs,
    #[command(flatten)]
    pub rollout: RolloutArgs,
}

#[derive(Args)]
pub struct UploadArgs {
    #[command(flatten)]
    pub file: FileArgs,
    #[command(flatten)]
    pub targets: TargetArgs,
    #[command(flatten)]
    pub rollout: RolloutArgs,
}

/// `reboot` and `shutdown`: an action that asks first when it takes down several hosts.
#[derive(Args)]
pub struct PowerArgs {
    #[command(flatten)]
    pub action: ActionArgs,
    /// Do not ask for confirmation (required for more than one host when standard input is
    /// not a terminal).
    #[arg(short, long)]
    pub yes: bool,
}

/// `run`; `interrupt` completing (Ctrl-C) cancels the runs on their hosts.
pub async fn run(
    ops: &Ops,
    out: &Printer,
    args: RunArgs,
    interrupt: impl Future<Output = ()>,
) -> Result<(), CliError> {
    let cancellation = Cancellation::new();
    let ops = &ops
        .clone()
        .rolling(args.rollout.rollout())
        .cancellable(cancellation.clone());
    let targets = args.targets.targets();
    let job = match (args.script, args.command) {
        (Some(name), _) => Job::Script {
            name,
            timeout_secs: args.timeout,
        },
        (None, Some(command)) => Job::Command {
            command,
            timeout_secs: args.timeout,
        },
        (None, None) => return Err(CliError::Usage("give a script or --command".into())),
    };
    // The hosts' names, to line their output up.
    let hosts = ops.run_hosts(&targets, &job).await?;
    let width = hosts.iter().map(|h| h.name.len()).max().unwrap_or(0);
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    let files = match &args.output_dir {
        Some(dir) => Some(OutputFiles::create(dir).map_err(|e| CliError::File(dir.clone(), e))?),
        None => None,
    };
    out.started(&names, serde_json::json!({ "job": job.label() }));
    let live = out.live_run(width, hosts.len());
    let sink: crate::ops::RunSink = match files {
        Some(files) => {
            let files = files.sink();
            Arc::new(move |event| {
                live(event);
                files(event);
            })
        }
        None => live,
    };
    let results = until_interrupted(
        ops.run(&targets, &job, args.output_cap, sink),
        interrupt,
        &cancellation,
        "cancelling the runs on their hosts",
    )
    .await?;
    out.run_summary(&results);
    if cancellation.is_cancelled() {
        let cancelled = results
            .iter()
            .filter(|r| r.status == Status::Cancelled)
            .count();
        return Err(CliError::Interrupted(format!(
            "the run was cancelled on {cancelled} of {} hosts",
            results.len()
        )));
    }
    failures(results.iter().map(|r| r.status))
}

/// Awaits `work`; if `interrupt` completes first, says so, sets `cancellation` (which `work`
/// follows) and awaits the rest of `work`.
async fn until_interrupted<T>(
    work: impl Future<Output = T>,
    interrupt: impl Future<Output = ()>,
    cancellation: &Cancellation,
    what: &str,
) -> T {
    tokio::pin!(work, interrupt);
    tokio::select! {
        done = &mut work => return done,
        () = &mut interrupt => {}
    }
    eprintln!("otto-server: interrupted: {what} (interrupt again to exit at once)");
    cancellation.cancel();
    work.await
}

/// `upload`; `interrupt` completing (Ctrl-C) stops the uploads (an agent keeps no partial
/// file).
pub async fn upload(
    ops: &Ops,
    out: &Printer,
    args: UploadArgs,
    interrupt: impl Future<Output = ()>,
) -> Result<(), CliError> {
    let UploadArgs {
        file,
        targets,
        rollout,
    } = args;
    let cancellation = Cancellation::new();
    let ops = &ops
        .clone()
        .rolling(rollout.rollout())
        .cancellable(cancellation.clone());
    let targets = targets.targets();
    let hosts = ops.resolve(&targets).await?;
    let size = std::fs::metadata(&file.file)
        .map_err(|e| CliError::File(file.file.clone(), e))?
        .len();
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    out.started(
        &names,
        serde_json::json!({ "file": file.file, "path": file.path, "bytes": size }),
    );
    let width = hosts.iter().map(|h| h.name.len()).max().unwrap_or(0);
    let upload = Upload {
        source: file.file,
        path: file.path,
        owner: file.owner,
        mode: file.mode,
    };
    let results = until_interrupted(
        ops.upload(&targets, upload, out.upload_progress(width)),
        interrupt,
        &cancellation,
        "stopping the uploads",
    )
    .await?;
    out.uploaded(&results);
    if cancellation.is_cancelled() {
        let done = results.iter().filter(|d| d.success).count();
        return Err(CliError::Interrupted(format!(
            "the upload was stopped; {done} of {} hosts had it already",
            results.len()
        )));
    }
    failures(results.iter().map(|d| d.status))
}

pub async fn control(
    ops: &Ops,
    out: &Printer,
    args: ActionArgs,
    request: Control,
) -> Result<(), CliError> {
    let ops = ops.clone().rolling(args.rollout.rollout());
    let results = ops.control(&args.targets.targets(), request).await?;
    out.done(&results);
    failures(results.iter().map(|d| d.status))
}

/// `reboot` or `shutdown` (`request`): of more than one host only once confirmed, by `--yes`
/// or on the terminal.
pub async fn power(
    ops: &Ops,
    out: &Printer,
    args: PowerArgs,
    request: Control,
) -> Result<(), CliError> {
    let hosts = ops.resolve(&args.action.targets.targets()).await?;
    if hosts.len() > 1 && !args.yes {
        let what = match request {
            Control::Shutdown => "shut down",
            _ => "reboot",
        };
        let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
        let question = format!("{what} {} hosts ({})?", hosts.len(), names.join(", "));
        confirm(&question)?;
    }
    control(ops, out, args.action, request).await
}

/// Asks `question` on the terminal (a usage error without one, or unless answered yes).
pub(super) fn confirm(question: &str) -> Result<(), CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(format!(
            "{question} Standard input is not a terminal: confirm with --yes"
        )));
    }
    eprint!("{} [y/N] ", sanitize::text(question));
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| CliError::File("standard input".into(), e))?;
    if !matches!(answer.trim(), "y" | "Y" | "yes" | "Yes") {
        return Err(CliError::Usage("not confirmed; nothing done".into()));
    }
    Ok(())
}

/// `ping`: a heartbeat to the hosts named, or to all.
pub async fn ping(ops: &Ops, out: &Printer, t: TargetArgs) -> Result<(), CliError> {
    let results = ops.ping(&t.targets()).await?;
    out.ping(&results);
    failures(results.iter().map(|p| Status::of(p.reachable)))
}

/// `cancel`: stops a running run.
pub async fn cancel(ops: &Ops, out: &Printer, run: i64) -> Result<(), CliError> {
    let result = ops.cancel(run).await?;
    let status = result.status;
    out.done(&[result]);
    failures([status].into_iter())
}

/// `rotate-keys`: new server and agent keys.
pub async fn rotate(ops: &Ops, out: &Printer, args: ActionArgs) -> Result<(), CliError> {
    let ops = ops.clone().rolling(args.rollout.rollout());
    let results = ops.rotate(&args.targets.targets()).await?;
    out.done(&results);
    failures(results.iter().map(|d| d.status))
}
