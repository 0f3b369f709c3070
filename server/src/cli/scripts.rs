//! `script …` and `attachment …`: stored scripts and the files that go with them.

use std::io::Read;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::model::{AfterRun, Attachment, Ids, Phase, RunLevel};
use crate::ops::{AttachFile, ScriptChange};
use crate::print::Printer;

use super::CliError;
use super::api::EnvApi;
use super::api::ScriptsApi;
use super::parse::{parse_absolute, parse_ids, parse_mode, parse_timeout_secs};

/// A local file and how it is to be written on the hosts.
#[derive(Args)]
pub struct FileArgs {
    /// The local file.
    pub file: PathBuf,
    /// Absolute path on the hosts.
    #[arg(long, value_parser = parse_absolute)]
    pub path: String,
    /// Owner on the hosts, UID:GID (default: the agent's user).
    #[arg(long, value_parser = parse_ids)]
    pub owner: Option<Ids>,
    /// Mode, octal.
    #[arg(long, default_value = "644", value_parser = parse_mode)]
    pub mode: u32,
}

#[derive(Subcommand)]
pub enum ScriptCommand {
    /// Add a script, or with --replace change one: what is not given then keeps its value.
    Add {
        /// A unique name: 1 to 63 letters, digits, `.`, `_` and `-`, not starting with `.` or `-`.
        name: String,
        /// Read the script from this file (`-`: standard input).
        #[arg(long, required_unless_present_any = ["body", "replace"], conflicts_with = "body")]
        file: Option<PathBuf>,
        /// The script text itself.
        #[arg(long)]
        body: Option<String>,
        /// The program that runs it (for a new script: /bin/sh).
        #[arg(long)]
        interpreter: Option<String>,
        /// Run as UID:GID (the agent must be root).
        #[arg(long, value_parser = parse_ids)]
        run_as: Option<Ids>,
        /// Working directory on the host.
        #[arg(long)]
        workdir: Option<String>,
        /// Timeout, e.g. 90s, 30m, 2h (plain numbers are seconds; 0: none). Without it: 1h.
        #[arg(long, value_name = "DURATION", value_parser = parse_timeout_secs)]
        timeout: Option<u32>,
        /// What to do after a successful run (for a new script: none).
        #[arg(long, value_enum)]
        after: Option<AfterRun>,
        /// Who may run it: users of the run level read-only run only read-only scripts (for a
        /// new script: read-write).
        #[arg(long, value_parser = parse_script_level)]
        run_level: Option<RunLevel>,
        /// Change the script of this name (made if there is none), keeping what is not given.
        #[arg(long)]
        replace: bool,
    },
    /// List scripts.
    List,
    /// One script with its text.
    Show {
        /// The script.
        name: String,
    },
    /// Remove a script with its attachments and variables: the variables are listed first,
    /// and must be confirmed on a terminal or with --force.
    Remove {
        /// The script.
        name: String,
        /// Remove its variables without asking.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
pub enum AttachmentCommand {
    /// Attach a local file to a script (replaces one with the same path).
    Add {
        /// The script.
        script: String,
        #[command(flatten)]
        file: FileArgs,
        /// Upload it before or after the script.
        #[arg(long, value_enum, default_value = "before")]
        phase: Phase,
        /// FILE is a template (Jinja2's syntax, UTF-8 text): rendered for each host with its
        /// environment (secrets included) and facts before it is sent.
        #[arg(long)]
        template: bool,
    },
    /// List attachments.
    List {
        /// Only this script's.
        script: Option<String>,
    },
    /// Remove an attachment.
    Remove {
        /// The script.
        script: String,
        /// Its path on the hosts.
        path: String,
    },
}

/// A script's run level: `read-only` or `read-write` (a script every user may not run has no
/// use).
fn parse_script_level(text: &str) -> Result<RunLevel, String> {
    match RunLevel::parse(text) {
        Some(level @ (RunLevel::ReadOnly | RunLevel::ReadWrite)) => Ok(level),
        _ => Err(format!("`{text}`: read-only or read-write")),
    }
}

/// The bytes of the file at `path` (`-`: standard input).
fn read_file(path: &PathBuf) -> Result<Vec<u8>, CliError> {
    let io = |e| CliError::File(path.clone(), e);
    if path.as_os_str() == "-" {
        let mut data = Vec::new();
        std::io::stdin().read_to_end(&mut data).map_err(io)?;
        return Ok(data);
    }
    std::fs::read(path).map_err(io)
}

/// What `attachment add` says of `file`, attached as `a`.
fn attached(file: &std::path::Path, a: &Attachment) -> String {
    let phase = match a.phase {
        Phase::Before => "before",
        Phase::After => "after",
    };
    format!(
        "{} ({} bytes, sha256 {}) attached to {} as {}{}, {phase} the script",
        file.display(),
        a.size,
        a.sha256.get(..16).unwrap_or(&a.sha256),
        a.script,
        a.path,
        if a.template { " (a template)" } else { "" },
    )
}

/// `script …`, in process or through `serve`.
pub async fn script(
    api: &(impl ScriptsApi + EnvApi),
    out: &Printer,
    command: ScriptCommand,
) -> Result<(), CliError> {
    match command {
        ScriptCommand::Add {
            name,
            file,
            body,
            interpreter,
            run_as,
            workdir,
            timeout,
            after,
            run_level,
            replace,
        } => {
            let body = match (file, body) {
                (Some(file), _) => Some(read_file(&file)?),
                (None, body) => body.map(String::into_bytes),
            };
            let change = ScriptChange {
                body,
                interpreter,
                run_as: run_as.map(Some),
                working_dir: workdir.map(Some),
                timeout_secs: timeout.map(Some),
                after_run: after,
                run_level,
            };
            if replace {
                api.change_script(&name, change).await?;
            } else {
                let script = change
                    .new_script(&name)
                    .ok_or_else(|| CliError::Usage("give --file or --body".into()))?;
                api.add_script(script).await?;
            }
            out.say(&format!("script {name} saved"));
        }
        ScriptCommand::List => out.scripts(&api.scripts().await?),
        ScriptCommand::Show { name } => {
            let detail = api.script(&name).await?;
            out.script_detail(&detail.script, &detail.attachments);
        }
        ScriptCommand::Remove { name, force } => {
            let removed = async |force| api.remove_script(&name, force).await;
            super::removal::confirmed(force, removed).await?;
            out.say(&format!("script {name} removed"));
        }
    }
    Ok(())
}

/// `attachment …`, in process or through `serve`: the file streamed, never read whole.
pub async fn attachment(
    api: &impl ScriptsApi,
    out: &Printer,
    command: AttachmentCommand,
) -> Result<(), CliError> {
    match command {
        AttachmentCommand::Add {
            script,
            file:
                FileArgs {
                    file,
                    path,
                    owner,
                    mode,
                },
            phase,
            template,
        } => {
            let a = api
                .attach_file(AttachFile {
                    script,
                    path,
                    source: file.clone(),
                    owner,
                    mode: Some(mode),
                    phase: Some(phase),
                    template: Some(template),
                })
                .await?;
            out.say(&attached(&file, &a));
        }
        AttachmentCommand::List { script } => {
            out.attachments(&api.attachments(script.as_deref()).await?)
        }
        AttachmentCommand::Remove { script, path } => {
            api.remove_attachment(&script, &path).await?;
            out.say(&format!("attachment {path} removed from {script}"));
        }
    }
    Ok(())
}
