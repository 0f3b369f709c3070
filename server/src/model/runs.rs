//! Runs of a script or command on a host: launched, ended.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{RunLevel, from_utc, lossy_text, text_bytes, utc};

/// The outcome recorded for a run whose server process ended before the run did.
pub const INTERRUPTED: &str = "interrupted";

/// One run of a script or command on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Run {
    /// Its id.
    pub id: i64,
    /// The host.
    pub host: String,
    /// The script's name, or the ad-hoc command.
    pub what: String,
    /// The action id on the agent (hex), for `cancel`.
    pub action: String,
    /// When it started (ms since the epoch; RFC 3339 in JSON).
    #[serde(serialize_with = "utc", deserialize_with = "from_utc")]
    #[schema(value_type = String, format = DateTime)]
    pub started: i64,
    /// When it finished; None while running, or if the server died first (then its outcome
    /// says [`INTERRUPTED`]).
    #[serde(serialize_with = "utc", deserialize_with = "from_utc", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished: Option<i64>,
    /// Who started it ([`crate::ops::Actor`] as text); none for runs older than the record
    /// of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The launch it is part of (a job on many hosts: `GET /api/v1/launches/{id}`); none for
    /// runs older than the record of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch: Option<u64>,
    /// Whether it succeeded.
    pub success: Option<bool>,
    /// Whether a cancel stopped it (before or while its script ran): it did not succeed, and
    /// did not fail either.
    #[serde(default)]
    pub cancelled: bool,
    /// How it ended, in words.
    pub outcome: Option<String>,
    /// The script's exit code, when it exited.
    pub exit_code: Option<i32>,
    /// How long it ran on the agent.
    pub elapsed_ms: Option<u64>,
    /// Standard output, up to the cap.
    #[serde(serialize_with = "lossy_text", deserialize_with = "text_bytes")]
    #[schema(value_type = String)]
    pub stdout: Vec<u8>,
    /// Standard error, up to the cap.
    #[serde(serialize_with = "lossy_text", deserialize_with = "text_bytes")]
    #[schema(value_type = String)]
    pub stderr: Vec<u8>,
    /// Whether output beyond the cap was dropped.
    pub truncated: bool,
}

/// One start of a job on many hosts through the HTTP API (a *launch*), as kept: each host's
/// part is a run of the history, named by its result in `last_event`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// Its id, never reused.
    pub id: u64,
    /// Who started it ([`crate::ops::Actor`] as text).
    pub actor: String,
    /// The script's name or `command: …`.
    pub job: String,
    /// The hosts it addressed, by name.
    pub hosts: Vec<String>,
    /// When it started (ms since the epoch).
    pub started: i64,
    /// When it ended; None while it runs, or if the server stopped first.
    pub finished: Option<i64>,
    /// Its last event as JSON text: the summary, with each host's result and run id, or why
    /// it failed. None while it runs, or if the server stopped first.
    pub last_event: Option<String>,
    /// The run level its job needs, and so its cancel.
    pub level: RunLevel,
    /// Whether the server running it is known to live (with several servers on PostgreSQL,
    /// its lease): it relays its events for followers on other servers and heeds a cancel
    /// asked for there. Always false on SQLite, whose one server keeps its launches itself.
    pub owner_live: bool,
}

/// A launch to record.
#[derive(Debug, Clone)]
pub struct NewLaunch {
    /// Who starts it.
    pub actor: String,
    /// The script's name or `command: …`.
    pub job: String,
    /// The hosts it addresses, by name.
    pub hosts: Vec<String>,
    /// The run level its job needs.
    pub level: RunLevel,
    /// What was asked, to start it again (`ops::NewRun` as JSON); none for uploads and updates,
    /// whose files are not kept.
    pub request: Option<String>,
}

/// A run to record as started.
#[derive(Debug, Clone)]
pub struct NewRunRecord {
    /// The host.
    pub host: String,
    /// The script's name, or `command: …`.
    pub what: String,
    /// The action id on the agent (hex).
    pub action: String,
    /// Who asked ([`crate::ops::Actor`] as text).
    pub actor: String,
    /// The launch it is part of, if one.
    pub launch: Option<u64>,
}

/// How a run ended, as recorded.
#[derive(Debug, Clone)]
pub struct RunEnd {
    /// Success.
    pub success: bool,
    /// Whether a cancel stopped it, before or while its script ran.
    pub cancelled: bool,
    /// In words.
    pub outcome: String,
    /// Exit code, if it exited.
    pub exit_code: Option<i32>,
    /// Time on the agent.
    pub elapsed: Option<Duration>,
    /// Kept stdout.
    pub stdout: Vec<u8>,
    /// Kept stderr.
    pub stderr: Vec<u8>,
    /// Whether output was dropped at the cap.
    pub truncated: bool,
}

/// How a run of the history ended, to find runs by.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum RunOutcome {
    /// It succeeded.
    Succeeded,
    /// It failed (or was interrupted), not by a cancel.
    Failed,
    /// A cancel stopped it.
    Cancelled,
    /// It has not ended.
    Running,
}

impl RunOutcome {
    /// Its name, as the API and the command line write it.
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::Failed => "failed",
            RunOutcome::Cancelled => "cancelled",
            RunOutcome::Running => "running",
        }
    }
}

/// Which runs of the history to read: the newest `limit` that match, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Only those of this host.
    pub host: Option<String>,
    /// Only those of this job: a script's name, or `command: …`, exactly.
    pub what: Option<String>,
    /// Only those this user started (through the API, or the command line as that login).
    pub user: Option<String>,
    /// Only those that ended so (or have not).
    pub outcome: Option<RunOutcome>,
    /// Only those started at or after this time (ms since the epoch).
    pub since: Option<i64>,
    /// Only those started before this time (ms since the epoch).
    pub until: Option<i64>,
    /// Only those older than this run (the first id of the page after).
    pub before: Option<i64>,
    /// Only the hosts' runs of this launch.
    pub launch: Option<u64>,
    /// At most this many.
    pub limit: u32,
}

impl RunFilter {
    /// The newest `limit` runs, optionally of one host.
    pub fn newest(host: Option<&str>, limit: u32) -> RunFilter {
        RunFilter {
            host: host.map(str::to_owned),
            limit,
            ..RunFilter::default()
        }
    }
}

/// Which launches to read: the newest `limit` that match, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LaunchFilter {
    /// Only those of this job: a script's name, `command: …`, `upload: PATH` or
    /// `update-agents`, exactly.
    pub what: Option<String>,
    /// Only those this user started (through the API, or the command line as that login).
    pub user: Option<String>,
    /// Only those with a host's run that ended so (or has not).
    pub outcome: Option<RunOutcome>,
    /// Only those started at or after this time (ms since the epoch).
    pub since: Option<i64>,
    /// Only those started before this time (ms since the epoch).
    pub until: Option<i64>,
    /// Only those older than this launch (the first id of the page after).
    pub before: Option<u64>,
    /// At most this many.
    pub limit: u32,
}

/// How the hosts' runs of a launch stand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LaunchCounts {
    /// Runs that succeeded.
    pub succeeded: u32,
    /// Runs that failed (or were interrupted), not by a cancel.
    pub failed: u32,
    /// Runs a cancel stopped.
    pub cancelled: u32,
    /// Runs not ended.
    pub running: u32,
}

/// A launch as the history lists it: who started what, when, on which hosts, and how its
/// hosts' runs stand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PastLaunch {
    /// Its id.
    pub id: u64,
    /// Who started it ([`crate::ops::Actor`] as text).
    pub actor: String,
    /// The script's name, `command: …`, `upload: PATH` or `update-agents`.
    pub job: String,
    /// The hosts it addressed, by name.
    pub hosts: Vec<String>,
    /// When it started (ms since the epoch; RFC 3339 in JSON).
    #[serde(serialize_with = "utc", deserialize_with = "from_utc")]
    #[schema(value_type = String, format = DateTime)]
    pub started: i64,
    /// When it ended; None while it runs, or if its server stopped first.
    #[serde(serialize_with = "utc", deserialize_with = "from_utc", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished: Option<i64>,
    /// The schedule that started it, if one did (and still exists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Its hosts' runs (uploads and updates have none: their summary says how each host
    /// ended).
    pub runs: LaunchCounts,
    /// Whether it can be started again (`POST /api/v1/launches/{id}/relaunch`): a script or
    /// command, not an upload or update.
    pub relaunchable: bool,
}
