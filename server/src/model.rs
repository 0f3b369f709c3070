//! The fleet's domain types: hosts and their trust, groups, scripts, attachments, environment
//! variables, runs and events. The store keeps them, the fleet and the operations work on them,
//! the command line prints them (their serde form is its JSON output, where every time is
//! RFC 3339 in UTC: [`utc`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use otto_proto::Control;
use serde::{Deserialize, Serialize};

/// The outcome recorded for a run whose server process ended before the run did.
pub const INTERRUPTED: &str = "interrupted";

/// Milliseconds since the Unix epoch, the unit of every time in the store.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The instant `ms` milliseconds after the Unix epoch, brought within the years -9999 to 9999
/// that a calendar date can show (only a corrupt database holds a time outside them).
pub fn instant(ms: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    })
}

/// A time of the store (ms since the epoch), or one that may be missing.
pub trait Millis {
    /// The time in ms since the epoch, if there is one.
    fn millis(&self) -> Option<i64>;
}

impl Millis for i64 {
    fn millis(&self) -> Option<i64> {
        Some(*self)
    }
}

impl Millis for Option<i64> {
    fn millis(&self) -> Option<i64> {
        *self
    }
}

/// Serializes a time of the store as RFC 3339 in UTC to the millisecond
/// (`2026-11-25T20:08:42.123Z`), and a missing one as null: the form of every time in the JSON
/// output.
pub fn utc<T: Millis, S: serde::Serializer>(t: &T, s: S) -> std::result::Result<S::Ok, S::Error> {
    match t.millis() {
        Some(ms) => s.collect_str(&format_args!("{:.3}", instant(ms))),
        None => s.serialize_none(),
    }
}

/// Reads a time as [`utc`] writes it (RFC 3339), or null: the API's answers read back by the
/// command line (`--server`).
pub fn from_utc<'de, T: FromMillis, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<T, D::Error> {
    let text: Option<String> = Deserialize::deserialize(d)?;
    let ms = text
        .map(|t| {
            t.parse::<jiff::Timestamp>()
                .map(|t| t.as_millisecond())
                .map_err(serde::de::Error::custom)
        })
        .transpose()?;
    T::from_millis(ms).ok_or_else(|| serde::de::Error::custom("a time is missing"))
}

/// A time of the store made from one that may be missing: [`from_utc`]'s result.
pub trait FromMillis: Sized {
    /// The time, if `ms` is one this type can hold.
    fn from_millis(ms: Option<i64>) -> Option<Self>;
}

impl FromMillis for i64 {
    fn from_millis(ms: Option<i64>) -> Option<i64> {
        ms
    }
}

impl FromMillis for Option<i64> {
    fn from_millis(ms: Option<i64>) -> Option<Option<i64>> {
        Some(ms)
    }
}

/// How a host's agent key is trusted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Trust {
    /// The pinned agent key (OpenSSH text), if any.
    pub agent_key: Option<String>,
    /// Pin whatever key the agent presents on the first successful contact.
    pub pin_on_first_contact: bool,
    /// A different key the agent presented, waiting for `host approve`.
    pub pending_key: Option<String>,
    /// When keys were last made or rotated (ms since the epoch; RFC 3339 in JSON).
    #[serde(serialize_with = "utc", deserialize_with = "from_utc", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_rotation: Option<i64>,
}

/// What the last heartbeat said, persisted (in the API's document, `HostStatus`: apart from
/// the outcome of an operation on a host).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = HostStatus)]
pub struct Status {
    /// Whether the last attempt reached the agent; None before the first.
    pub reachable: Option<bool>,
    /// The last successful heartbeat (ms since the epoch; RFC 3339 in JSON).
    #[serde(serialize_with = "utc", deserialize_with = "from_utc", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen: Option<i64>,
    /// Round trip (ms) of the last successful heartbeat, connection set-up excluded.
    #[serde(default)]
    pub round_trip_ms: Option<f64>,
    /// The agent's version.
    pub agent_version: Option<String>,
    /// The host's facts (`otto_proto::Facts`: names and versions of its system, uptime, load
    /// and memory).
    #[schema(value_type = Option<Object>)]
    pub facts: Option<Facts>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// A host's facts from its heartbeat: the protocol's owned form.
pub use otto_proto::Facts;

/// Facts as an agent reported them, made safe: control characters escaped and each text cut
/// to [`sanitize::FIELD_MAX`](crate::sanitize::FIELD_MAX) characters.
pub fn safe_facts(f: &otto_proto::HostFacts<'_>) -> Facts {
    let safe = |text: &str| crate::sanitize::field(text, crate::sanitize::FIELD_MAX);
    Facts {
        hostname: safe(f.hostname),
        kernel_name: safe(f.kernel_name),
        kernel_version: safe(f.kernel_version),
        arch: safe(f.arch),
        distribution_name: safe(f.distribution_name),
        distribution_version: safe(f.distribution_version),
        uptime_secs: f.uptime_secs,
        load_centi: f.load_centi,
        mem_total_kib: f.mem_total_kib,
        mem_available_kib: f.mem_available_kib,
    }
}

/// One managed host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Host {
    /// Its unique name.
    pub name: String,
    /// Address or DNS name the server dials.
    pub address: String,
    /// The agent's SSH port.
    pub port: u16,
    /// Disabled hosts are skipped by every action.
    pub enabled: bool,
    /// Its agent key.
    pub trust: Trust,
    /// The groups it belongs to.
    pub groups: Vec<String>,
    /// Heartbeat state.
    pub status: Status,
}

#[cfg(test)]
impl Host {
    /// An enabled host in `groups`, no key known, never heard from.
    pub fn example(name: &str, address: &str, port: u16, groups: &[&str]) -> Host {
        Host {
            name: name.into(),
            address: address.into(),
            port,
            enabled: true,
            trust: Trust::default(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            status: Status::default(),
        }
    }
}

/// A new host.
#[derive(Debug, Clone)]
pub struct NewHost {
    /// Unique name.
    pub name: String,
    /// Address.
    pub address: String,
    /// Port.
    pub port: u16,
    /// The agent key, if known.
    pub agent_key: Option<String>,
    /// Pin on first contact when no key is given.
    pub pin_on_first_contact: bool,
}

/// What happens on the host after a script ran successfully.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum AfterRun {
    /// Nothing.
    None,
    /// Reload the agent's configuration.
    Reload,
    /// Make the agent exit (its service manager restarts it).
    Exit,
    /// Reboot the host.
    Reboot,
    /// Shut the host down.
    Shutdown,
}

impl AfterRun {
    /// The control request it makes, if any.
    pub fn control(self) -> Option<Control> {
        match self {
            AfterRun::None => None,
            AfterRun::Reload => Some(Control::Reload),
            AfterRun::Exit => Some(Control::Exit),
            AfterRun::Reboot => Some(Control::Reboot),
            AfterRun::Shutdown => Some(Control::Shutdown),
        }
    }

    /// Its name, as stored and as `parse` reads it.
    pub fn as_str(self) -> &'static str {
        match self {
            AfterRun::None => "none",
            AfterRun::Reload => "reload",
            AfterRun::Exit => "exit",
            AfterRun::Reboot => "reboot",
            AfterRun::Shutdown => "shutdown",
        }
    }

    /// The action named `text`, if it is one.
    pub fn parse(text: &str) -> Option<AfterRun> {
        Some(match text {
            "none" => AfterRun::None,
            "reload" => AfterRun::Reload,
            "exit" => AfterRun::Exit,
            "reboot" => AfterRun::Reboot,
            "shutdown" => AfterRun::Shutdown,
            _ => return None,
        })
    }
}

/// A user and group id pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Ids {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// A stored script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Script {
    /// Unique name.
    pub name: String,
    /// The program that runs it, e.g. `/bin/sh`.
    pub interpreter: String,
    /// The script text.
    #[serde(serialize_with = "lossy_text", deserialize_with = "text_bytes")]
    #[schema(value_type = String)]
    pub body: Vec<u8>,
    /// Run as this user and group (agent must be root), else as the agent.
    pub run_as: Option<Ids>,
    /// Working directory on the host.
    pub working_dir: Option<String>,
    /// Timeout in seconds; None means the default hour (`ScriptTimeout::DEFAULT_SECS`), 0 none.
    pub timeout_secs: Option<u32>,
    /// What happens after a successful run.
    pub after_run: AfterRun,
    /// Who may run it: users of the run level `read-only` run only `read-only` scripts (which
    /// look and change nothing); `read-write` (the default) needs that level.
    #[serde(default = "read_write")]
    pub run_level: RunLevel,
}

/// The run level of a script that does not say: read-write.
fn read_write() -> RunLevel {
    RunLevel::ReadWrite
}

/// Reads text as [`lossy_text`] writes it, as its bytes.
fn text_bytes<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<u8>, D::Error> {
    String::deserialize(d).map(String::into_bytes)
}

fn lossy_text<S: serde::Serializer>(bytes: &[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(bytes))
}

/// Whether an attachment goes up before or after its script.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Uploaded before the script runs.
    Before,
    /// Uploaded after it succeeded.
    After,
}

impl Phase {
    /// Its name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Before => "before",
            Phase::After => "after",
        }
    }
}

/// A file uploaded with a script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attachment {
    /// The script it belongs to.
    pub script: String,
    /// Absolute path on the host.
    pub path: String,
    /// Its bytes (not listed in JSON; `size` and `sha256` are).
    #[serde(skip)]
    pub content: Vec<u8>,
    /// Its size in bytes.
    pub size: u64,
    /// SHA-256, hex.
    pub sha256: String,
    /// Owner; None keeps the agent's user.
    pub owner: Option<Ids>,
    /// Permission bits.
    pub mode: u32,
    /// Before or after the script.
    pub phase: Phase,
}

/// Where an environment variable applies. Later scopes win: global, script, group, host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "scope", content = "owner", rename_all = "lowercase")]
pub enum Scope {
    /// Every run.
    Global,
    /// Runs on members of this group.
    Group(String),
    /// Runs on this host.
    Host(String),
    /// Runs of this script.
    Script(String),
}

impl Scope {
    /// Its kind (`global`, `group`, `host`, `script`) and its owner's name (empty for global).
    pub fn parts(&self) -> (&'static str, &str) {
        match self {
            Scope::Global => ("global", ""),
            Scope::Group(g) => ("group", g),
            Scope::Host(h) => ("host", h),
            Scope::Script(s) => ("script", s),
        }
    }

    /// The scope of kind `scope` owned by `owner`, if `scope` is a kind.
    pub fn from_parts(scope: &str, owner: String) -> Option<Scope> {
        Some(match scope {
            "global" => Scope::Global,
            "group" => Scope::Group(owner),
            "host" => Scope::Host(owner),
            "script" => Scope::Script(owner),
            _ => return None,
        })
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.parts() {
            (scope, "") => f.write_str(scope),
            (scope, owner) => write!(f, "{scope} {owner}"),
        }
    }
}

/// One environment variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvVar {
    /// Where it applies.
    #[serde(flatten)]
    pub scope: Scope,
    /// Its name.
    pub name: String,
    /// Its value (serialized masked when secret).
    #[serde(serialize_with = "masked_value")]
    pub value: Secretish,
}

/// A value that may be secret: secret ones print as `********` everywhere.
#[derive(Clone, PartialEq, Eq)]
pub struct Secretish {
    /// The value itself: only ever sent to agents.
    pub value: String,
    /// Whether it is secret.
    pub secret: bool,
}

impl Secretish {
    /// What may be shown to a person or a log.
    pub fn shown(&self) -> &str {
        if self.secret { "********" } else { &self.value }
    }
}

impl std::fmt::Debug for Secretish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.shown())
    }
}

fn masked_value<S: serde::Serializer>(v: &Secretish, s: S) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let mut st = s.serialize_struct("value", 2)?;
    st.serialize_field("value", v.shown())?;
    st.serialize_field("secret", &v.secret)?;
    st.end()
}

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

/// What an event is about.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// A host was added.
    HostAdded,
    /// A host was removed.
    HostRemoved,
    /// A host's trusted agent key changed (pinned, approved, set).
    TrustChanged,
    /// An agent presented a key that is not the pinned one.
    KeyPending,
    /// A run started.
    RunStarted,
    /// A run finished.
    RunFinished,
    /// A host became reachable or unreachable.
    Reachability,
    /// Keys were rotated.
    KeyRotated,
    /// Work in flight for a host (a heartbeat, a key rotation) was cut short by `serve` stopping.
    CutShort,
    /// A host's address or enabled state changed.
    HostChanged,
    /// A group, its members or its scripts changed.
    GroupChanged,
    /// A script or one of its attachments was saved or removed.
    ScriptChanged,
    /// An environment variable was set or removed (its value is never recorded).
    EnvChanged,
    /// A file was uploaded to a host.
    Uploaded,
    /// A control request (reload, exit, reboot, shutdown) was sent to a host.
    ControlSent,
    /// A running action was asked to stop.
    RunCancelled,
    /// A user was added, or their permissions changed, or they were disabled or enabled.
    UserChanged,
    /// An API key was made or revoked.
    ApiKeyChanged,
    /// A user signed in (a browser session started).
    SignedIn,
    /// A sign-in was refused (a wrong name or password, a disabled user); the name tried is
    /// recorded, never the password.
    SignInFailed,
    /// A user signed out (their session ended).
    SignedOut,
    /// A user's password was changed (their own, or by someone with `users`).
    PasswordChanged,
    /// An API key that exists was refused: revoked, expired, or of a disabled user.
    ApiKeyRefused,
}

impl EventKind {
    /// Its name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::HostAdded => "host-added",
            EventKind::HostRemoved => "host-removed",
            EventKind::TrustChanged => "trust-changed",
            EventKind::KeyPending => "key-pending",
            EventKind::RunStarted => "run-started",
            EventKind::RunFinished => "run-finished",
            EventKind::Reachability => "reachability",
            EventKind::KeyRotated => "key-rotated",
            EventKind::CutShort => "cut-short",
            EventKind::HostChanged => "host-changed",
            EventKind::GroupChanged => "group-changed",
            EventKind::ScriptChanged => "script-changed",
            EventKind::EnvChanged => "env-changed",
            EventKind::Uploaded => "uploaded",
            EventKind::ControlSent => "control-sent",
            EventKind::RunCancelled => "run-cancelled",
            EventKind::UserChanged => "user-changed",
            EventKind::ApiKeyChanged => "api-key-changed",
            EventKind::SignedIn => "signed-in",
            EventKind::SignInFailed => "sign-in-failed",
            EventKind::SignedOut => "signed-out",
            EventKind::PasswordChanged => "password-changed",
            EventKind::ApiKeyRefused => "api-key-refused",
        }
    }
}

/// One entry of the event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    /// Its id, increasing.
    pub id: i64,
    /// When (ms since the epoch; RFC 3339 in JSON).
    #[serde(serialize_with = "utc", deserialize_with = "from_utc")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    /// The host it concerns, if one.
    pub host: Option<String>,
    /// What kind.
    pub kind: String,
    /// What happened, in words.
    pub detail: String,
    /// Who made it happen ([`crate::ops::Actor`] as text); none for what the server saw by
    /// itself (a heartbeat, a run's end).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// Which events to read: the newest `limit` of those matching every filter given, oldest
/// first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter {
    /// Only those of this host.
    pub host: Option<String>,
    /// Only those of this kind.
    pub kind: Option<EventKind>,
    /// Only those this user made happen (through the API, or the command line as that login).
    pub user: Option<String>,
    /// Only those older than this event (the first id of the page after).
    pub before: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

impl EventFilter {
    /// The newest `limit` events, optionally of one host.
    pub fn newest(host: Option<&str>, limit: u32) -> EventFilter {
        EventFilter {
            host: host.map(str::to_owned),
            kind: None,
            user: None,
            before: None,
            limit,
        }
    }
}

/// An event to append to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Who made it happen, if someone did.
    pub actor: Option<String>,
    /// The host it concerns, if one.
    pub host: Option<String>,
    /// What kind.
    pub kind: EventKind,
    /// What happened, in words.
    pub detail: String,
}

/// A group with its members and scripts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Group {
    /// Its name.
    pub name: String,
    /// Its hosts.
    pub hosts: Vec<String>,
    /// Its scripts.
    pub scripts: Vec<String>,
}

/// What a user may change, beside reading the fleet (which every user may): Go Otto's flags.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Permission {
    /// Add, change, trust and remove hosts.
    Hosts,
    /// Add, change and remove groups and their members.
    Groups,
    /// Add, change and remove scripts, their attachments and variables.
    Scripts,
    /// Add, change and remove schedules.
    Schedules,
    /// Add, change and disable users, and make API keys for others.
    Users,
    /// Change how new agents enroll.
    Enrollment,
    /// Change the server's options.
    Options,
    /// Read the audit trail (the event log).
    Audit,
}

impl Permission {
    /// Every permission, in order.
    pub const ALL: [Permission; 8] = [
        Permission::Hosts,
        Permission::Groups,
        Permission::Scripts,
        Permission::Schedules,
        Permission::Users,
        Permission::Enrollment,
        Permission::Options,
        Permission::Audit,
    ];

    /// Its name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Hosts => "hosts",
            Permission::Groups => "groups",
            Permission::Scripts => "scripts",
            Permission::Schedules => "schedules",
            Permission::Users => "users",
            Permission::Enrollment => "enrollment",
            Permission::Options => "options",
            Permission::Audit => "audit",
        }
    }

    /// The permission named `text`, if it is one.
    pub fn parse(text: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == text)
    }
}

/// Which scripts a user may run, as in Go Otto: a script of a level runs only for users at or
/// above it (read-only scripts look; read-write ones change the host, as any ad-hoc command may).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum RunLevel {
    /// Runs nothing.
    #[default]
    None,
    /// Runs read-only scripts.
    ReadOnly,
    /// Runs every script and commands.
    ReadWrite,
}

impl RunLevel {
    /// Its name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            RunLevel::None => "none",
            RunLevel::ReadOnly => "read-only",
            RunLevel::ReadWrite => "read-write",
        }
    }

    /// The level named `text`, if it is one.
    pub fn parse(text: &str) -> Option<RunLevel> {
        [RunLevel::None, RunLevel::ReadOnly, RunLevel::ReadWrite]
            .into_iter()
            .find(|l| l.as_str() == text)
    }
}

/// What a user, or an API key, may do. An administrator may do everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Permissions {
    /// May do everything, now and whatever permissions come later.
    pub admin: bool,
    /// Which scripts it may run.
    pub run: RunLevel,
    /// What it may change, beside reading the fleet (one given twice counts once).
    #[schema(value_type = Vec<Permission>)]
    pub modify: std::collections::BTreeSet<Permission>,
}

impl Permissions {
    /// An administrator's.
    pub fn admin() -> Permissions {
        Permissions {
            admin: true,
            run: RunLevel::ReadWrite,
            modify: Permission::ALL.into_iter().collect(),
        }
    }

    /// Whether they include `permission`.
    pub fn allows(&self, permission: Permission) -> bool {
        self.admin || self.modify.contains(&permission)
    }

    /// The run level they give (an administrator's is read-write).
    pub fn run_level(&self) -> RunLevel {
        if self.admin {
            RunLevel::ReadWrite
        } else {
            self.run
        }
    }

    /// Whether they give nothing `other` does not: an API key's against its owner's.
    pub fn within(&self, other: &Permissions) -> bool {
        (other.admin || !self.admin)
            && self.run_level() <= other.run_level()
            && Permission::ALL
                .into_iter()
                .all(|p| !self.allows(p) || other.allows(p))
    }

    /// What both give: an API key's use, bounded by its owner's permissions of the moment.
    pub fn meet(&self, other: &Permissions) -> Permissions {
        Permissions {
            admin: self.admin && other.admin,
            run: self.run_level().min(other.run_level()),
            modify: Permission::ALL
                .into_iter()
                .filter(|p| self.allows(*p) && other.allows(*p))
                .collect(),
        }
    }
}

impl std::fmt::Display for Permissions {
    /// `admin`, or `run read-only; hosts, audit`, as tables show them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.admin {
            return f.write_str("admin");
        }
        write!(f, "run {}", self.run.as_str())?;
        let mut sep = "; ";
        for p in &self.modify {
            write!(f, "{sep}{}", p.as_str())?;
            sep = ", ";
        }
        Ok(())
    }
}

/// A person (or a service) who uses the server through its API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    /// Their unique name.
    pub name: String,
    /// What they may do.
    pub permissions: Permissions,
    /// A disabled user cannot sign in, and none of their API keys work.
    pub disabled: bool,
    /// When they were added (ms since the epoch; RFC 3339 in JSON).
    #[serde(serialize_with = "utc", deserialize_with = "from_utc")]
    #[schema(value_type = String, format = DateTime)]
    pub created: i64,
}

/// A user to add.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Their unique name.
    pub name: String,
    /// Their password, hashed (an Argon2id PHC string).
    pub password_hash: String,
    /// What they may do.
    pub permissions: Permissions,
}

/// An API key, as listed: never its secret, which only its maker saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKey {
    /// Its id.
    pub id: i64,
    /// The user it acts for.
    pub user: String,
    /// What it may do (never more than its user may, whatever this says).
    pub permissions: Permissions,
    /// When it was made (ms since the epoch; RFC 3339 in JSON).
    #[serde(serialize_with = "utc", deserialize_with = "from_utc")]
    #[schema(value_type = String, format = DateTime)]
    pub created: i64,
    /// When it stops working, if ever.
    #[serde(serialize_with = "utc", deserialize_with = "from_utc")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires: Option<i64>,
    /// When it was revoked, if it was.
    #[serde(serialize_with = "utc", deserialize_with = "from_utc")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked: Option<i64>,
}

/// A browser session of a user, as stored: never its tokens, only their hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Its id.
    pub id: i64,
    /// Whose it is.
    pub user: String,
    /// The SHA-256 of its CSRF token, hex.
    pub csrf_hash: String,
    /// When it ends (ms since the epoch).
    pub expires: i64,
}

/// A browser session to store.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Whose it is.
    pub user: String,
    /// The SHA-256 of its cookie's token, hex.
    pub hash: String,
    /// The SHA-256 of its CSRF token, hex.
    pub csrf_hash: String,
    /// When it ends (ms since the epoch).
    pub expires: i64,
}

/// An API key to store.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// The user it acts for.
    pub user: String,
    /// The SHA-256 of its secret, hex.
    pub hash: String,
    /// What it may do.
    pub permissions: Permissions,
    /// When it stops working, if ever (ms since the epoch).
    pub expires: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_never_wider_than_its_user() {
        let reader = Permissions {
            admin: false,
            run: RunLevel::ReadOnly,
            modify: [Permission::Hosts].into_iter().collect(),
        };
        let admin = Permissions::admin();
        assert!(reader.within(&admin));
        assert!(!admin.within(&reader));
        assert!(Permissions::default().within(&reader));
        let runner = Permissions {
            run: RunLevel::ReadWrite,
            ..Permissions::default()
        };
        assert!(!runner.within(&reader));
        assert_eq!(admin.meet(&reader), reader);
        assert_eq!(reader.meet(&admin), reader);
        assert_eq!(admin.meet(&admin), admin);
        assert_eq!(admin.to_string(), "admin");
        assert_eq!(reader.to_string(), "run read-only; hosts");
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
        }
    }

    #[test]
    fn times_serialize_as_rfc3339_in_utc_to_the_millisecond() {
        let at = |ms: Option<i64>| {
            let status = Status {
                reachable: None,
                last_seen: ms,
                ..Status::default()
            };
            serde_json::to_value(&status).unwrap()["last_seen"].clone()
        };
        assert_eq!(at(Some(1_795_000_000_123)), "2026-11-18T11:06:40.123Z");
        assert_eq!(at(Some(0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(None), serde_json::Value::Null);
        // Out of range (a corrupt database): the latest time jiff has.
        assert_eq!(at(Some(i64::MAX)), "9999-12-30T22:00:00.999Z");
    }
}
