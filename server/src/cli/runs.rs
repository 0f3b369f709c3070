//! `ping`, `run`, `cancel`, `upload`, `update-agents` and the control commands: work on hosts, with live
//! output; written once over [`RunsApi`], so each works alike in process and through `serve`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use crate::ops::{
    Action, ControlRequest, DEFAULT_OUTPUT_CAP, FETCH_LIMIT, Fetch, FetchCheck, NewRun, OpsError,
    PingRequest, RunSink, Status, UpdateAgents, Upload, UploadCheck, read_template,
};
use crate::print::{OutputFiles, Printer};
use crate::sanitize;

use super::CliError;
use super::api::{LiveRun, RunStarted, RunsApi};
use super::parse::{parse_absolute, parse_duration, parse_timeout_secs};
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
    #[arg(long, default_value_t = DEFAULT_OUTPUT_CAP)]
    pub output_cap: usize,
    #[command(flatten)]
    pub targets: TargetArgs,
    #[command(flatten)]
    pub rollout: RolloutArgs,
    /// Print which hosts it would run on, with the script's name and SHA-256 and its
    /// attachments' checksums, and run nothing (no run is recorded).
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args)]
pub struct UploadArgs {
    #[command(flatten)]
    pub file: FileArgs,
    #[command(flatten)]
    pub targets: TargetArgs,
    #[command(flatten)]
    pub rollout: RolloutArgs,
    /// Send the file even to hosts whose file already has its checksum and mode (and owner,
    /// with --owner): without it, those are sent nothing and said `unchanged`.
    #[arg(long)]
    pub force: bool,
    /// FILE is a template (Jinja2's syntax): rendered for each host with its environment
    /// (global, its groups', its own; secrets included), `host` and `facts`, and the rendering
    /// sent; an error is that host's failure, naming the line.
    #[arg(long)]
    pub template: bool,
    /// Print which hosts it would go to, with the file's SHA-256 (a template's rendering for
    /// each host, and its errors), and which of them already have it (asked of their agents);
    /// send nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `fetch`: the file, the hosts, and the folder its copies go to.
#[derive(Args)]
pub struct FetchArgs {
    /// Absolute path of the file on the hosts.
    #[arg(value_parser = parse_absolute)]
    pub path: String,
    #[command(flatten)]
    pub targets: TargetArgs,
    #[command(flatten)]
    pub rollout: RolloutArgs,
    /// The local folder: each host's copy goes to DIR/HOST/NAME, NAME being the file name of
    /// PATH (made if missing).
    #[arg(long, value_name = "DIR")]
    pub into: PathBuf,
    /// The longest file taken from a host, in bytes (at most the default, 1 GiB, as for an
    /// upload); a longer one is that host's failure.
    #[arg(long, value_name = "BYTES", default_value_t = FETCH_LIMIT)]
    pub max_bytes: u64,
    /// Print which hosts it would copy from, and what each has at PATH (its size and
    /// SHA-256); copy nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `update-agents`: the hosts, the rollout, and where the binaries come from.
#[derive(Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub targets: TargetArgs,
    #[command(flatten)]
    pub rollout: RolloutArgs,
    /// The folder of agent binaries (`otto-agent-TARGET`, as ci/build-agents.sh writes them
    /// to dist/); default: those built into the server, else dist/. Not with --server (the
    /// server sends its own).
    #[arg(long, value_name = "DIR")]
    pub agents: Option<PathBuf>,
    /// Time each new agent has to answer a heartbeat before its device goes back to the old
    /// binary (10s to 1h).
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = parse_confirm_secs)]
    pub confirm_within: u32,
    /// Send the binary even to hosts whose agent already has its version.
    #[arg(long)]
    pub force: bool,
}

/// `--confirm-within`: a duration ([`parse_duration`]) in whole seconds, 10 s to 1 h.
fn parse_confirm_secs(text: &str) -> Result<u32, String> {
    use crate::ops::{MAX_CONFIRM_SECS, MIN_CONFIRM_SECS};
    let duration = parse_duration(text)?;
    match u32::try_from(duration.as_secs()) {
        Ok(secs @ MIN_CONFIRM_SECS..=MAX_CONFIRM_SECS) if duration.subsec_nanos() == 0 => Ok(secs),
        _ => Err(format!(
            "whole seconds from {MIN_CONFIRM_SECS}s to {MAX_CONFIRM_SECS}s"
        )),
    }
}

/// `reboot` and `shutdown`: an action that asks first unless it names one host plainly.
#[derive(Args)]
pub struct PowerArgs {
    #[command(flatten)]
    pub action: ActionArgs,
    /// Do not ask for confirmation (required, unless one host is named plainly, when standard
    /// input is not a terminal).
    #[arg(short, long)]
    pub yes: bool,
}

/// `run`; `interrupt` completing (Ctrl-C) cancels the runs on their hosts.
pub async fn run(
    api: &impl RunsApi,
    out: &Printer,
    args: RunArgs,
    interrupt: impl Future<Output = ()>,
) -> Result<(), CliError> {
    if args.script.is_none() && args.command.is_none() {
        return Err(CliError::Usage("give a script or --command".into()));
    }
    let new = NewRun {
        script: args.script,
        command: args.command,
        timeout_secs: args.timeout,
        targets: args.targets.targets(),
        rollout: args.rollout.options(),
        output_cap: Some(args.output_cap),
    };
    if args.dry_run {
        out.dry_run(&api.dry_run(new).await?);
        return Ok(());
    }
    let files = output_files(args.output_dir.as_deref())?;
    follow(out, api.launch(new).await?, files, interrupt).await
}

/// `relaunch`: a launch started again, all of it or only on its hosts that did not succeed,
/// followed as `run` follows its run.
#[derive(Args)]
pub struct RelaunchArgs {
    /// The launch (`history --launches` lists them).
    pub launch: u64,
    /// Only on its hosts that did not succeed (failed, cancelled, not reached or skipped).
    #[arg(long)]
    pub failed: bool,
    /// As for `run`.
    #[arg(short, long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
}

/// `relaunch`; `interrupt` as for [`run`].
pub async fn relaunch(
    api: &impl RunsApi,
    out: &Printer,
    args: RelaunchArgs,
    interrupt: impl Future<Output = ()>,
) -> Result<(), CliError> {
    let files = output_files(args.output_dir.as_deref())?;
    let started = api.relaunch(args.launch, args.failed).await?;
    follow(out, started, files, interrupt).await
}

/// The files of each host's output in `dir`, if given.
fn output_files(dir: Option<&std::path::Path>) -> Result<Option<OutputFiles>, CliError> {
    dir.map(|dir| OutputFiles::create(dir).map_err(|e| CliError::File(dir.to_owned(), e)))
        .transpose()
}

/// Follows a run just started to its end, printing its output (and writing it to `files`),
/// then its summary; `interrupt` completing cancels it on its hosts. The command's error says
/// how it went as the exit codes document.
async fn follow(
    out: &Printer,
    started: RunStarted<impl LiveRun>,
    files: Option<OutputFiles>,
    interrupt: impl Future<Output = ()>,
) -> Result<(), CliError> {
    let RunStarted {
        job,
        hosts,
        live,
        cancel,
    } = started;
    // The hosts' names, to line their output up.
    let width = hosts.iter().map(String::len).max().unwrap_or(0);
    let names: Vec<&str> = hosts.iter().map(String::as_str).collect();
    out.started(&names, serde_json::json!({ "job": job }));
    let live_output = out.live_run(width, hosts.len());
    let bytes = files.is_some();
    let sink: RunSink = match files {
        Some(files) => {
            let files = files.sink();
            Arc::new(move |event| {
                live_output(event);
                files(event);
            })
        }
        None => live_output,
    };
    let follow = live.follow(sink, bytes);
    tokio::pin!(follow, interrupt);
    let mut interrupted = false;
    let results = tokio::select! {
        results = &mut follow => results?,
        () = &mut interrupt => {
            interrupted = true;
            eprintln!(
                "otto-server: interrupted: cancelling the runs on their hosts \
                 (interrupt again to exit at once)"
            );
            cancel.cancel().await?;
            follow.await?
        }
    };
    let Some(results) = results else {
        return Err(OpsError::Internal(
            "the live output ended before the run's summary (the server stopping?); \
             `history` will have how each host ended"
                .into(),
        )
        .into());
    };
    out.run_summary(&results);
    if interrupted {
        let cancelled = results
            .iter()
            .filter(|r| r.status == Status::Cancelled)
            .count();
        return Err(CliError::Interrupted(format!(
            "the run was cancelled on {cancelled} of {} hosts",
            results.len()
        )));
    }
    unreached(results.iter().map(|r| r.unreached))?;
    failures(results.iter().map(|r| r.status))
}

/// [`CliError::Unreached`] if no host could be connected to (each result says whether its
/// host was), as the results already printed say.
fn unreached(mut each: impl ExactSizeIterator<Item = bool>) -> Result<(), CliError> {
    let total = each.len();
    if total > 0 && each.all(|unreached| unreached) {
        return Err(CliError::Unreached(total));
    }
    Ok(())
}

/// `upload`; `interrupt` completing (Ctrl-C) stops the uploads (an agent keeps no partial
/// file).
pub async fn upload(
    api: &impl RunsApi,
    out: &Printer,
    args: UploadArgs,
    interrupt: impl Future<Output = ()>,
) -> Result<(), CliError> {
    let UploadArgs {
        file,
        targets,
        rollout,
        force,
        template,
        dry_run,
    } = args;
    if dry_run {
        let (sha256, size, template) = match template {
            true => (None, None, Some(read_template(&file.file).await?)),
            false => {
                let (sha256, size) = hash_local(&file.file)?;
                (Some(sha256), Some(size), None)
            }
        };
        let check = UploadCheck {
            path: file.path,
            sha256,
            size,
            template,
            mode: file.mode,
            owner: file.owner,
            force,
            targets: targets.targets(),
        };
        out.dry_run(&api.dry_run_upload(check).await?);
        return Ok(());
    }
    let rollout = rollout.options();
    let size = std::fs::metadata(&file.file)
        .map_err(|e| CliError::File(file.file.clone(), e))?
        .len();
    let fields = serde_json::json!({ "file": file.file, "path": file.path, "bytes": size });
    let upload = Upload {
        source: file.file,
        path: file.path,
        owner: file.owner,
        mode: file.mode,
        force,
        template,
    };
    let started = |names: &[&str]| {
        out.started(names, fields);
        let width = names.iter().map(|n| n.len()).max().unwrap_or(0);
        out.upload_progress(width)
    };
    let (results, stopped) = api
        .upload(upload, targets.targets(), rollout, started, interrupt)
        .await?;
    out.upload_summary(&results);
    if stopped {
        let done = results.iter().filter(|d| d.success).count();
        return Err(CliError::Interrupted(format!(
            "the upload was stopped; {done} of {} hosts had it already",
            results.len()
        )));
    }
    unreached(results.iter().map(|d| d.unreached))?;
    failures(results.iter().map(|d| d.status))
}

/// `fetch`: the file from each host into its own folder; a host whose file is missing (or too
/// long, or that cannot be reached) fails alone, the others keep their copies.
pub async fn fetch(api: &impl RunsApi, out: &Printer, args: FetchArgs) -> Result<(), CliError> {
    if args.dry_run {
        let check = FetchCheck {
            path: args.path,
            targets: args.targets.targets(),
        };
        out.dry_run(&api.dry_run_fetch(check).await?);
        return Ok(());
    }
    let fetch = Fetch {
        path: args.path,
        into: args.into,
        max_len: args.max_bytes,
    };
    let results = api
        .fetch(fetch, args.targets.targets(), args.rollout.options())
        .await?;
    out.done(&results);
    unreached(results.iter().map(|d| d.unreached))?;
    failures(results.iter().map(|d| d.status))
}

/// The SHA-256 (hex) and length of the local file at `path`, read a piece at a time.
fn hash_local(path: &std::path::Path) -> Result<(String, u64), CliError> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let unreadable = |e| CliError::File(path.to_path_buf(), e);
    let mut file = std::fs::File::open(path).map_err(unreadable)?;
    let (mut hasher, mut len, mut buf) = (Sha256::new(), 0u64, vec![0u8; 64 * 1024]);
    loop {
        let n = file.read(&mut buf).map_err(unreadable)?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
        len += n as u64;
    }
    let hex = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((hex, len))
}

/// `update-agents`: each host's binary sent and confirmed, with a progress bar per host;
/// `interrupt` completing (Ctrl-C) stops the updates (an agent that has its new binary goes on
/// with its trial).
pub async fn update_agents(
    api: &impl RunsApi,
    out: &Printer,
    args: UpdateArgs,
    interrupt: impl Future<Output = ()>,
) -> Result<(), CliError> {
    let request = UpdateAgents {
        targets: args.targets.targets(),
        rollout: args.rollout.options(),
        confirm_secs: Some(args.confirm_within),
        force: args.force,
    };
    let fields = serde_json::json!({ "job": "update-agents" });
    let started = |names: &[&str]| {
        out.started(names, fields);
        let width = names.iter().map(|n| n.len()).max().unwrap_or(0);
        out.upload_progress(width)
    };
    let (results, stopped) = api
        .update_agents(request, args.agents, started, interrupt)
        .await?;
    out.uploaded(&results);
    if stopped {
        let done = results.iter().filter(|d| d.success).count();
        return Err(CliError::Interrupted(format!(
            "the update was stopped; {done} of {} hosts were updated",
            results.len()
        )));
    }
    unreached(results.iter().map(|d| d.unreached))?;
    failures(results.iter().map(|d| d.status))
}

/// `reload`, `exit-agent` and `rotate-keys`: `action` on the hosts named.
pub async fn act(
    api: &impl RunsApi,
    out: &Printer,
    args: ActionArgs,
    action: Action,
) -> Result<(), CliError> {
    let request = ControlRequest {
        action,
        targets: args.targets.targets(),
        rollout: args.rollout.options(),
    };
    if args.dry_run {
        out.dry_run(&api.dry_run_control(request).await?);
        return Ok(());
    }
    let results = api.act(request).await?;
    out.done(&results);
    unreached(results.iter().map(|d| d.unreached))?;
    failures(results.iter().map(|d| d.status))
}

/// `reboot` or `shutdown` (`action`): asked first unless `--yes` or one host is named plainly
/// (by its name, not a glob, a group or `--all`).
pub async fn power(
    api: &impl RunsApi,
    out: &Printer,
    args: PowerArgs,
    action: Action,
) -> Result<(), CliError> {
    let t = &args.action.targets;
    let one = t.hosts.len() == 1
        && t.groups.is_empty()
        && !t.all
        && !t.hosts.iter().any(|h| crate::patterns::is_glob(h));
    if !one && !args.yes && !args.action.dry_run {
        let what = match action {
            Action::Shutdown => "shut down",
            _ => "reboot",
        };
        confirm(&format!("{what} the hosts named ({})?", described(t)))?;
    }
    act(api, out, args.action, action).await
}

/// What `t` names, in words.
fn described(t: &TargetArgs) -> String {
    let mut parts = Vec::new();
    if t.all {
        parts.push("all".to_string());
    }
    parts.extend(t.hosts.iter().cloned());
    parts.extend(t.groups.iter().map(|g| format!("group {g}")));
    parts.extend(t.exclude.iter().map(|h| format!("not {h}")));
    parts.extend(t.exclude_group.iter().map(|g| format!("not group {g}")));
    parts.join(", ")
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
pub async fn ping(api: &impl RunsApi, out: &Printer, t: TargetArgs) -> Result<(), CliError> {
    let results = api
        .ping(PingRequest {
            targets: t.targets(),
        })
        .await?;
    out.ping(&results);
    unreached(results.iter().map(|p| !p.reachable))?;
    failures(results.iter().map(|p| Status::of(p.reachable)))
}

/// `cancel`: stops a running run.
pub async fn cancel(api: &impl RunsApi, out: &Printer, run: i64) -> Result<(), CliError> {
    let result = api.cancel(run).await?;
    let status = result.status;
    out.done(&[result]);
    failures([status].into_iter())
}
