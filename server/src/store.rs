//! The fleet's state, and all the SQL there is: hosts and their trust, groups, scripts,
//! attachments, environment variables, heartbeat state, run history and the event log.
//!
//! The default backend is one SQLite file in the data directory, in WAL mode with full
//! synchronous commits, so a kill at any moment loses at most the statement in flight and never
//! corrupts what was committed. The schema is created and upgraded by numbered migrations
//! (`PRAGMA user_version`). Nothing outside this module writes SQL: a PostgreSQL backend for
//! several servers sharing one fleet goes in here, behind the same methods.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use otto_proto::Control;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

mod owner;

use owner::{Liveness, Owner};

/// The outcome recorded for a run whose server process ended before the run did.
pub const INTERRUPTED: &str = "interrupted";

/// What went wrong with the fleet's state.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or upgraded.
    #[error("database {path}: {source}")]
    Open {
        /// The database file.
        path: String,
        /// Why.
        source: rusqlite::Error,
    },
    /// The database is newer than this program.
    #[error(
        "the database has schema version {found}; this otto-server knows up to {known}: use a newer otto-server"
    )]
    TooNew {
        /// The file's version.
        found: i64,
        /// The newest this program knows.
        known: i64,
    },
    /// A statement failed.
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// No such thing.
    #[error("no {0} named `{1}`")]
    NotFound(&'static str, String),
    /// The name is taken.
    #[error("a {0} named `{1}` already exists")]
    Exists(&'static str, String),
    /// A stored value does not parse.
    #[error("stored {0} is corrupt: {1}")]
    Corrupt(&'static str, String),
    /// A host name that breaks the rule.
    #[error(transparent)]
    Name(#[from] crate::names::NameError),
}

/// Shorthand for this module's results.
pub type Result<T> = std::result::Result<T, StoreError>;

/// The schema, one migration per entry; entry `i` brings the file to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE hosts (
    name          TEXT PRIMARY KEY,
    address       TEXT NOT NULL,
    port          INTEGER NOT NULL,
    enabled       INTEGER NOT NULL DEFAULT 1,
    agent_key     TEXT,
    pin_first     INTEGER NOT NULL DEFAULT 0,
    pending_key   TEXT,
    last_rotation INTEGER,
    reachable     INTEGER,
    last_seen     INTEGER,
    agent_version TEXT,
    facts         TEXT,
    last_error    TEXT
);
CREATE TABLE groups (name TEXT PRIMARY KEY);
CREATE TABLE host_groups (
    host  TEXT NOT NULL REFERENCES hosts(name) ON DELETE CASCADE,
    grp   TEXT NOT NULL REFERENCES groups(name) ON DELETE CASCADE,
    PRIMARY KEY (host, grp)
);
CREATE TABLE scripts (
    name         TEXT PRIMARY KEY,
    interpreter  TEXT NOT NULL,
    body         BLOB NOT NULL,
    run_as_uid   INTEGER,
    run_as_gid   INTEGER,
    working_dir  TEXT,
    timeout_secs INTEGER,
    after_run    TEXT NOT NULL DEFAULT 'none'
);
CREATE TABLE group_scripts (
    grp    TEXT NOT NULL REFERENCES groups(name) ON DELETE CASCADE,
    script TEXT NOT NULL REFERENCES scripts(name) ON DELETE CASCADE,
    PRIMARY KEY (grp, script)
);
CREATE TABLE attachments (
    script    TEXT NOT NULL REFERENCES scripts(name) ON DELETE CASCADE,
    path      TEXT NOT NULL,
    content   BLOB NOT NULL,
    sha256    TEXT NOT NULL,
    owner_uid INTEGER,
    owner_gid INTEGER,
    mode      INTEGER NOT NULL,
    phase     TEXT NOT NULL CHECK (phase IN ('before', 'after')),
    PRIMARY KEY (script, path)
);
CREATE TABLE env (
    scope  TEXT NOT NULL CHECK (scope IN ('global', 'group', 'host', 'script')),
    owner  TEXT NOT NULL,
    name   TEXT NOT NULL,
    value  TEXT NOT NULL,
    secret INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, owner, name)
);
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    host        TEXT NOT NULL,
    what        TEXT NOT NULL,
    action      TEXT NOT NULL,
    started     INTEGER NOT NULL,
    finished    INTEGER,
    success     INTEGER,
    outcome     TEXT,
    exit_code   INTEGER,
    elapsed_ms  INTEGER,
    stdout      BLOB NOT NULL DEFAULT x'',
    stderr      BLOB NOT NULL DEFAULT x'',
    truncated   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_by_host ON runs (host, id);
CREATE TABLE events (
    id     INTEGER PRIMARY KEY,
    at     INTEGER NOT NULL,
    host   TEXT,
    kind   TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX events_by_host ON events (host, id);
"#,
    r#"
-- The process that started a run (`pid:start:boot`, see `owner`), to find interrupted runs.
ALTER TABLE runs ADD COLUMN owner TEXT;
CREATE INDEX runs_open ON runs (id) WHERE finished IS NULL AND outcome IS NULL;
"#,
];

/// Milliseconds since the Unix epoch, the unit of every time in the store.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// How a host's agent key is trusted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trust {
    /// The pinned agent key (OpenSSH text), if any.
    pub agent_key: Option<String>,
    /// Pin whatever key the agent presents on the first successful contact.
    pub pin_on_first_contact: bool,
    /// A different key the agent presented, waiting for `host approve`.
    pub pending_key: Option<String>,
    /// When keys were last made or rotated (ms since the epoch).
    pub last_rotation: Option<i64>,
}

/// What the last heartbeat said, persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// Whether the last attempt reached the agent; None before the first.
    pub reachable: Option<bool>,
    /// The last successful heartbeat (ms since the epoch).
    pub last_seen: Option<i64>,
    /// The agent's version.
    pub agent_version: Option<String>,
    /// The host's facts.
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
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

    fn as_str(self) -> &'static str {
        match self {
            AfterRun::None => "none",
            AfterRun::Reload => "reload",
            AfterRun::Exit => "exit",
            AfterRun::Reboot => "reboot",
            AfterRun::Shutdown => "shutdown",
        }
    }

    fn parse(text: &str) -> Result<AfterRun> {
        Ok(match text {
            "none" => AfterRun::None,
            "reload" => AfterRun::Reload,
            "exit" => AfterRun::Exit,
            "reboot" => AfterRun::Reboot,
            "shutdown" => AfterRun::Shutdown,
            other => return Err(StoreError::Corrupt("after-run action", other.into())),
        })
    }
}

/// A user and group id pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ids {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// A stored script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Script {
    /// Unique name.
    pub name: String,
    /// The program that runs it, e.g. `/bin/sh`.
    pub interpreter: String,
    /// The script text.
    #[serde(serialize_with = "lossy_text")]
    pub body: Vec<u8>,
    /// Run as this user and group (agent must be root), else as the agent.
    pub run_as: Option<Ids>,
    /// Working directory on the host.
    pub working_dir: Option<String>,
    /// Timeout in seconds; None means the agent's default, 0 means none.
    pub timeout_secs: Option<u32>,
    /// What happens after a successful run.
    pub after_run: AfterRun,
}

fn lossy_text<S: serde::Serializer>(bytes: &[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(bytes))
}

/// Whether an attachment goes up before or after its script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Uploaded before the script runs.
    Before,
    /// Uploaded after it succeeded.
    After,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Before => "before",
            Phase::After => "after",
        }
    }
}

/// A file uploaded with a script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    fn parts(&self) -> (&'static str, &str) {
        match self {
            Scope::Global => ("global", ""),
            Scope::Group(g) => ("group", g),
            Scope::Host(h) => ("host", h),
            Scope::Script(s) => ("script", s),
        }
    }

    fn from_parts(scope: &str, owner: String) -> Result<Scope> {
        Ok(match scope {
            "global" => Scope::Global,
            "group" => Scope::Group(owner),
            "host" => Scope::Host(owner),
            "script" => Scope::Script(owner),
            other => return Err(StoreError::Corrupt("environment scope", other.into())),
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    /// Its id.
    pub id: i64,
    /// The host.
    pub host: String,
    /// The script's name, or the ad-hoc command.
    pub what: String,
    /// The action id on the agent (hex), for `cancel`.
    pub action: String,
    /// When it started (ms since the epoch).
    pub started: i64,
    /// When it finished; None while running, or if the server died first (then its outcome
    /// says [`INTERRUPTED`]).
    pub finished: Option<i64>,
    /// Whether it succeeded.
    pub success: Option<bool>,
    /// How it ended, in words.
    pub outcome: Option<String>,
    /// The script's exit code, when it exited.
    pub exit_code: Option<i32>,
    /// How long it ran on the agent.
    pub elapsed_ms: Option<u64>,
    /// Standard output, up to the cap.
    #[serde(serialize_with = "lossy_text")]
    pub stdout: Vec<u8>,
    /// Standard error, up to the cap.
    #[serde(serialize_with = "lossy_text")]
    pub stderr: Vec<u8>,
    /// Whether output beyond the cap was dropped.
    pub truncated: bool,
}

/// How a run ended, as recorded.
#[derive(Debug, Clone)]
pub struct RunEnd {
    /// Success.
    pub success: bool,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
}

impl EventKind {
    fn as_str(self) -> &'static str {
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
        }
    }
}

/// One entry of the event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Its id, increasing.
    pub id: i64,
    /// When (ms since the epoch).
    pub at: i64,
    /// The host it concerns, if one.
    pub host: Option<String>,
    /// What kind.
    pub kind: String,
    /// What happened, in words.
    pub detail: String,
}

/// The fleet's state in one SQLite file.
pub struct Store {
    db: Connection,
}

/// Maps a constraint violation to "already exists".
fn exists(what: &'static str, name: &str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    let name = name.to_string();
    move |e| match e.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => StoreError::Exists(what, name),
        _ => StoreError::Sql(e),
    }
}

fn ids(uid: Option<u32>, gid: Option<u32>) -> Option<Ids> {
    Some(Ids {
        uid: uid?,
        gid: gid?,
    })
}

impl Store {
    /// The newest schema version this program knows.
    pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

    /// Opens (creating and migrating) the database at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        let open = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        let db = Connection::open(path).map_err(open)?;
        db.busy_timeout(Duration::from_secs(10)).map_err(open)?;
        let mode: String = db
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(open)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt("journal mode", mode));
        }
        db.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
            .map_err(open)?;
        let mut store = Store { db };
        store.migrate()?;
        // The database holds secrets (environment values marked secret): owner only.
        restrict(path);
        Ok(store)
    }

    fn migrate(&mut self) -> Result<()> {
        let found: i64 = self.db.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if found > Self::SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                found,
                known: Self::SCHEMA_VERSION,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let tx = self.db.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self.db.query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    // ---- events ----

    /// Appends an event.
    pub fn log(&self, host: Option<&str>, kind: EventKind, detail: &str) -> Result<()> {
        self.db.execute(
            "INSERT INTO events (at, host, kind, detail) VALUES (?1, ?2, ?3, ?4)",
            params![now_ms(), host, kind.as_str(), detail],
        )?;
        Ok(())
    }

    /// The newest `limit` events, oldest first, optionally for one host.
    pub fn events(&self, host: Option<&str>, limit: u32) -> Result<Vec<Event>> {
        let mut stmt = self.db.prepare(
            "SELECT id, at, host, kind, detail FROM events
             WHERE ?1 IS NULL OR host = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let mut events = stmt
            .query_map(params![host, limit], |r| {
                Ok(Event {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    host: r.get(2)?,
                    kind: r.get(3)?,
                    detail: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        events.reverse();
        Ok(events)
    }

    // ---- hosts ----

    /// Adds a host; its name must follow the rule of [`crate::names`].
    pub fn add_host(&self, host: &NewHost) -> Result<()> {
        crate::names::HostName::parse(&host.name)?;
        self.db
            .execute(
                "INSERT INTO hosts (name, address, port, agent_key, pin_first, last_rotation)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    host.name,
                    host.address,
                    host.port,
                    host.agent_key,
                    host.pin_on_first_contact,
                    now_ms()
                ],
            )
            .map_err(exists("host", &host.name))?;
        let trust = match (&host.agent_key, host.pin_on_first_contact) {
            (Some(_), _) => "agent key given",
            (None, true) => "agent key to be pinned on first contact",
            (None, false) => "no agent key yet",
        };
        self.log(
            Some(&host.name),
            EventKind::HostAdded,
            &format!("{}:{}, {trust}", host.address, host.port),
        )
    }

    /// Removes a host (its history stays).
    pub fn remove_host(&self, name: &str) -> Result<()> {
        if self
            .db
            .execute("DELETE FROM hosts WHERE name = ?1", [name])?
            == 0
        {
            return Err(StoreError::NotFound("host", name.into()));
        }
        self.log(Some(name), EventKind::HostRemoved, "removed")
    }

    /// Changes where a host is reached.
    pub fn set_address(&self, name: &str, address: Option<&str>, port: Option<u16>) -> Result<()> {
        self.update_host(
            name,
            "UPDATE hosts SET address = coalesce(?2, address), port = coalesce(?3, port) WHERE name = ?1",
            params![name, address, port],
        )
    }

    /// Enables or disables a host.
    pub fn set_enabled(&self, name: &str, enabled: bool) -> Result<()> {
        self.update_host(
            name,
            "UPDATE hosts SET enabled = ?2 WHERE name = ?1",
            params![name, enabled],
        )
    }

    fn update_host(&self, name: &str, sql: &str, params: &[&dyn rusqlite::ToSql]) -> Result<()> {
        if self.db.execute(sql, params)? == 0 {
            return Err(StoreError::NotFound("host", name.into()));
        }
        Ok(())
    }

    /// One host.
    pub fn host(&self, name: &str) -> Result<Host> {
        self.hosts_where("WHERE name = ?1", params![name])?
            .pop()
            .ok_or_else(|| StoreError::NotFound("host", name.into()))
    }

    /// Every host, by name.
    pub fn hosts(&self) -> Result<Vec<Host>> {
        self.hosts_where("", params![])
    }

    /// The members of a group.
    pub fn group_hosts(&self, group: &str) -> Result<Vec<Host>> {
        self.group(group)?;
        self.hosts_where(
            "WHERE name IN (SELECT host FROM host_groups WHERE grp = ?1)",
            params![group],
        )
    }

    fn hosts_where(&self, filter: &str, params: &[&dyn rusqlite::ToSql]) -> Result<Vec<Host>> {
        let sql = format!(
            "SELECT name, address, port, enabled, agent_key, pin_first, pending_key, last_rotation,
                    reachable, last_seen, agent_version, facts, last_error,
                    (SELECT group_concat(grp, char(10)) FROM
                        (SELECT grp FROM host_groups WHERE host = name ORDER BY grp))
             FROM hosts {filter} ORDER BY name"
        );
        let mut stmt = self.db.prepare(&sql)?;
        let rows = stmt
            .query_map(params, |r| {
                Ok((
                    Host {
                        name: r.get(0)?,
                        address: r.get(1)?,
                        port: r.get(2)?,
                        enabled: r.get(3)?,
                        trust: Trust {
                            agent_key: r.get(4)?,
                            pin_on_first_contact: r.get(5)?,
                            pending_key: r.get(6)?,
                            last_rotation: r.get(7)?,
                        },
                        groups: r
                            .get::<_, Option<String>>(13)?
                            .map(|g| g.lines().map(str::to_string).collect())
                            .unwrap_or_default(),
                        status: Status {
                            reachable: r.get(8)?,
                            last_seen: r.get(9)?,
                            agent_version: r.get(10)?,
                            facts: None,
                            last_error: r.get(12)?,
                        },
                    },
                    r.get::<_, Option<String>>(11)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(mut host, facts)| {
                host.status.facts = facts
                    .map(|f| serde_json::from_str(&f))
                    .transpose()
                    .map_err(|e| StoreError::Corrupt("host facts", e.to_string()))?;
                Ok(host)
            })
            .collect()
    }

    /// Pins `key` as the host's agent key (clearing any pending key), logging why.
    pub fn pin_agent_key(&self, name: &str, key: &str, why: &str) -> Result<()> {
        self.update_host(
            name,
            "UPDATE hosts SET agent_key = ?2, pending_key = NULL, pin_first = 0 WHERE name = ?1",
            params![name, key],
        )?;
        self.log(Some(name), EventKind::TrustChanged, why)
    }

    /// Records a key the agent presented that is not the pinned one. Logs only when it is new.
    pub fn set_pending_key(&self, name: &str, key: &str, fingerprint: &str) -> Result<()> {
        let changed = self.db.execute(
            "UPDATE hosts SET pending_key = ?2 WHERE name = ?1 AND pending_key IS NOT ?2",
            params![name, key],
        )?;
        if changed > 0 {
            self.log(
                Some(name),
                EventKind::KeyPending,
                &format!(
                    "the agent presented an unknown key {fingerprint}; refused, pending approval (`otto-server host approve {name}`)"
                ),
            )?;
        }
        Ok(())
    }

    /// Records a completed key rotation: the new agent key is pinned.
    pub fn rotated(&self, name: &str, agent_key: &str, detail: &str) -> Result<()> {
        self.update_host(
            name,
            "UPDATE hosts SET agent_key = ?2, pending_key = NULL, last_rotation = ?3 WHERE name = ?1",
            params![name, agent_key, now_ms()],
        )?;
        self.log(Some(name), EventKind::KeyRotated, detail)
    }

    /// Records a successful heartbeat; logs a reachability change.
    pub fn heartbeat_ok(&self, name: &str, version: &str, facts: &Facts) -> Result<()> {
        let facts = serde_json::to_string(facts)
            .map_err(|e| StoreError::Corrupt("host facts", e.to_string()))?;
        let before = self.reachable(name)?;
        self.update_host(
            name,
            "UPDATE hosts SET reachable = 1, last_seen = ?2, agent_version = ?3, facts = ?4,
                 last_error = NULL WHERE name = ?1",
            params![name, now_ms(), version, facts],
        )?;
        if before != Some(true) {
            self.log(Some(name), EventKind::Reachability, "reachable")?;
        }
        Ok(())
    }

    /// Records a failed attempt to reach the host; logs a reachability change.
    pub fn heartbeat_failed(&self, name: &str, error: &str) -> Result<()> {
        let before = self.reachable(name)?;
        self.update_host(
            name,
            "UPDATE hosts SET reachable = 0, last_error = ?2 WHERE name = ?1",
            params![name, error],
        )?;
        if before != Some(false) {
            self.log(
                Some(name),
                EventKind::Reachability,
                &format!("unreachable: {error}"),
            )?;
        }
        Ok(())
    }

    fn reachable(&self, name: &str) -> Result<Option<bool>> {
        self.db
            .query_row("SELECT reachable FROM hosts WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?
            .ok_or_else(|| StoreError::NotFound("host", name.into()))
    }

    // ---- groups ----

    /// Adds a group.
    pub fn add_group(&self, name: &str) -> Result<()> {
        self.db
            .execute("INSERT INTO groups (name) VALUES (?1)", [name])
            .map_err(exists("group", name))?;
        Ok(())
    }

    /// Removes a group (its hosts stay).
    pub fn remove_group(&self, name: &str) -> Result<()> {
        self.remove_with_env("groups", "group", name)
    }

    /// Deletes row `name` of `table` with the variables of its scope (`what`), in one
    /// transaction.
    fn remove_with_env(&self, table: &str, what: &'static str, name: &str) -> Result<()> {
        let tx = self.db.unchecked_transaction()?;
        if tx.execute(&format!("DELETE FROM {table} WHERE name = ?1"), [name])? == 0 {
            return Err(StoreError::NotFound(what, name.into()));
        }
        tx.execute(
            "DELETE FROM env WHERE scope = ?1 AND owner = ?2",
            [what, name],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn group(&self, name: &str) -> Result<()> {
        self.db
            .query_row("SELECT 1 FROM groups WHERE name = ?1", [name], |_| Ok(()))
            .optional()?
            .ok_or_else(|| StoreError::NotFound("group", name.into()))
    }

    /// Every group with its hosts and scripts.
    pub fn groups(&self) -> Result<Vec<Group>> {
        let mut stmt = self.db.prepare(
            "SELECT name,
                (SELECT group_concat(host, char(10)) FROM (SELECT host FROM host_groups WHERE grp = name ORDER BY host)),
                (SELECT group_concat(script, char(10)) FROM (SELECT script FROM group_scripts WHERE grp = name ORDER BY script))
             FROM groups ORDER BY name",
        )?;
        let split = |s: Option<String>| -> Vec<String> {
            s.map(|s| s.lines().map(str::to_string).collect())
                .unwrap_or_default()
        };
        let groups = stmt
            .query_map([], |r| {
                Ok(Group {
                    name: r.get(0)?,
                    hosts: split(r.get(1)?),
                    scripts: split(r.get(2)?),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(groups)
    }

    /// Puts a host in a group, or takes it out.
    pub fn set_membership(&self, group: &str, host: &str, member: bool) -> Result<()> {
        self.group(group)?;
        self.host(host)?;
        if member {
            self.db.execute(
                "INSERT OR IGNORE INTO host_groups (host, grp) VALUES (?1, ?2)",
                [host, group],
            )?;
        } else {
            self.db.execute(
                "DELETE FROM host_groups WHERE host = ?1 AND grp = ?2",
                [host, group],
            )?;
        }
        Ok(())
    }

    /// Assigns a script to a group, or takes it away.
    pub fn set_group_script(&self, group: &str, script: &str, assigned: bool) -> Result<()> {
        self.group(group)?;
        self.script(script)?;
        if assigned {
            self.db.execute(
                "INSERT OR IGNORE INTO group_scripts (grp, script) VALUES (?1, ?2)",
                [group, script],
            )?;
        } else {
            self.db.execute(
                "DELETE FROM group_scripts WHERE grp = ?1 AND script = ?2",
                [group, script],
            )?;
        }
        Ok(())
    }

    // ---- scripts and attachments ----

    /// Adds a script, or replaces one of the same name when `replace`.
    pub fn put_script(&self, script: &Script, replace: bool) -> Result<()> {
        // Updated in place, so its attachments and group assignments stay.
        if replace && self.script(&script.name).is_ok() {
            self.db.execute(
                "UPDATE scripts SET interpreter = ?2, body = ?3, run_as_uid = ?4, run_as_gid = ?5,
                     working_dir = ?6, timeout_secs = ?7, after_run = ?8 WHERE name = ?1",
                params![
                    script.name,
                    script.interpreter,
                    script.body,
                    script.run_as.map(|i| i.uid),
                    script.run_as.map(|i| i.gid),
                    script.working_dir,
                    script.timeout_secs,
                    script.after_run.as_str()
                ],
            )?;
            return Ok(());
        }
        self.db
            .execute(
                "INSERT INTO scripts (name, interpreter, body, run_as_uid, run_as_gid, working_dir,
                     timeout_secs, after_run) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    script.name,
                    script.interpreter,
                    script.body,
                    script.run_as.map(|i| i.uid),
                    script.run_as.map(|i| i.gid),
                    script.working_dir,
                    script.timeout_secs,
                    script.after_run.as_str()
                ],
            )
            .map_err(exists("script", &script.name))?;
        Ok(())
    }

    /// Removes a script with its attachments.
    pub fn remove_script(&self, name: &str) -> Result<()> {
        self.remove_with_env("scripts", "script", name)
    }

    /// One script.
    pub fn script(&self, name: &str) -> Result<Script> {
        self.scripts_where("WHERE name = ?1", params![name])?
            .pop()
            .ok_or_else(|| StoreError::NotFound("script", name.into()))
    }

    /// Every script.
    pub fn scripts(&self) -> Result<Vec<Script>> {
        self.scripts_where("", params![])
    }

    fn scripts_where(&self, filter: &str, params: &[&dyn rusqlite::ToSql]) -> Result<Vec<Script>> {
        let mut stmt = self.db.prepare(&format!(
            "SELECT name, interpreter, body, run_as_uid, run_as_gid, working_dir, timeout_secs, after_run
             FROM scripts {filter} ORDER BY name"
        ))?;
        let rows = stmt
            .query_map(params, |r| {
                Ok((
                    Script {
                        name: r.get(0)?,
                        interpreter: r.get(1)?,
                        body: r.get(2)?,
                        run_as: ids(r.get(3)?, r.get(4)?),
                        working_dir: r.get(5)?,
                        timeout_secs: r.get(6)?,
                        after_run: AfterRun::None,
                    },
                    r.get::<_, String>(7)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(mut script, after)| {
                script.after_run = AfterRun::parse(&after)?;
                Ok(script)
            })
            .collect()
    }

    /// Adds (or replaces, same script and path) an attachment.
    pub fn put_attachment(&self, a: &Attachment) -> Result<()> {
        self.script(&a.script)?;
        self.db.execute(
            "INSERT OR REPLACE INTO attachments (script, path, content, sha256, owner_uid, owner_gid, mode, phase)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                a.script,
                a.path,
                a.content,
                a.sha256,
                a.owner.map(|i| i.uid),
                a.owner.map(|i| i.gid),
                a.mode,
                a.phase.as_str()
            ],
        )?;
        Ok(())
    }

    /// Removes an attachment.
    pub fn remove_attachment(&self, script: &str, path: &str) -> Result<()> {
        if self.db.execute(
            "DELETE FROM attachments WHERE script = ?1 AND path = ?2",
            [script, path],
        )? == 0
        {
            return Err(StoreError::NotFound(
                "attachment",
                format!("{script}:{path}"),
            ));
        }
        Ok(())
    }

    /// A script's attachments (with their content), by path; or every attachment.
    pub fn attachments(&self, script: Option<&str>) -> Result<Vec<Attachment>> {
        let mut stmt = self.db.prepare(
            "SELECT script, path, content, sha256, owner_uid, owner_gid, mode, phase FROM attachments
             WHERE ?1 IS NULL OR script = ?1 ORDER BY script, path",
        )?;
        let rows = stmt
            .query_map(params![script], |r| {
                let content: Vec<u8> = r.get(2)?;
                Ok(Attachment {
                    script: r.get(0)?,
                    path: r.get(1)?,
                    size: content.len() as u64,
                    content,
                    sha256: r.get(3)?,
                    owner: ids(r.get(4)?, r.get(5)?),
                    mode: r.get(6)?,
                    phase: if r.get::<_, String>(7)? == "after" {
                        Phase::After
                    } else {
                        Phase::Before
                    },
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    // ---- environment ----

    /// Sets a variable (replacing one of the same scope and name).
    pub fn set_env(&self, scope: &Scope, name: &str, value: &str, secret: bool) -> Result<()> {
        match scope {
            Scope::Global => {}
            Scope::Group(g) => self.group(g)?,
            Scope::Host(h) => drop(self.host(h)?),
            Scope::Script(s) => drop(self.script(s)?),
        }
        let (scope, owner) = scope.parts();
        self.db.execute(
            "INSERT OR REPLACE INTO env (scope, owner, name, value, secret) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![scope, owner, name, value, secret],
        )?;
        Ok(())
    }

    /// Removes a variable.
    pub fn unset_env(&self, scope: &Scope, name: &str) -> Result<()> {
        let (kind, owner) = scope.parts();
        if self.db.execute(
            "DELETE FROM env WHERE scope = ?1 AND owner = ?2 AND name = ?3",
            params![kind, owner, name],
        )? == 0
        {
            return Err(StoreError::NotFound(
                "variable",
                format!("{name} ({scope})"),
            ));
        }
        Ok(())
    }

    /// Variables of one scope, or all, by scope and name.
    pub fn env(&self, scope: Option<&Scope>) -> Result<Vec<EnvVar>> {
        let (kind, owner) = scope.map(Scope::parts).unzip();
        let mut stmt = self.db.prepare(
            "SELECT scope, owner, name, value, secret FROM env
             WHERE (?1 IS NULL OR scope = ?1) AND (?2 IS NULL OR owner = ?2)
             ORDER BY CASE scope WHEN 'global' THEN 0 WHEN 'script' THEN 1 WHEN 'group' THEN 2 ELSE 3 END,
                      owner, name",
        )?;
        let rows = stmt
            .query_map(params![kind, owner], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    Secretish {
                        value: r.get(3)?,
                        secret: r.get(4)?,
                    },
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(scope, owner, name, value)| {
                Ok(EnvVar {
                    scope: Scope::from_parts(&scope, owner)?,
                    name,
                    value,
                })
            })
            .collect()
    }

    // ---- runs ----

    /// Records the start of a run by this process; returns its id.
    pub fn start_run(&self, host: &str, what: &str, action: &str) -> Result<i64> {
        let owner = Owner::current().map(|o| o.to_string());
        self.db.execute(
            "INSERT INTO runs (host, what, action, started, owner) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![host, what, action, now_ms(), owner],
        )?;
        let id = self.db.last_insert_rowid();
        self.log(
            Some(host),
            EventKind::RunStarted,
            &format!("run {id}: {what} (action {action})"),
        )?;
        Ok(id)
    }

    /// Marks as [`INTERRUPTED`] (failed, not finished) every open run whose owner process is
    /// gone. Its owner, if it was alive after all, still records the real end with
    /// [`finish_run`](Store::finish_run).
    fn settle_interrupted(&self) -> Result<()> {
        let open: Vec<(i64, String, String)> = self
            .db
            .prepare(
                "SELECT id, host, owner FROM runs
                 WHERE finished IS NULL AND outcome IS NULL AND owner IS NOT NULL",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (id, host, owner) in open {
            let gone = Owner::parse(&owner).is_some_and(|o| o.liveness() == Liveness::Gone);
            if !gone {
                continue;
            }
            let changed = self.db.execute(
                "UPDATE runs SET success = 0, outcome = ?2
                 WHERE id = ?1 AND finished IS NULL AND outcome IS NULL",
                params![id, INTERRUPTED],
            )?;
            if changed > 0 {
                self.log(
                    Some(&host),
                    EventKind::RunFinished,
                    &format!("run {id}: {INTERRUPTED} (its server process ended first)"),
                )?;
            }
        }
        Ok(())
    }

    /// Records how a run ended (also over an [`INTERRUPTED`] mark).
    pub fn finish_run(&self, id: i64, end: &RunEnd) -> Result<()> {
        let host: String = self
            .db
            .query_row("SELECT host FROM runs WHERE id = ?1", [id], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::NotFound("run", id.to_string()))?;
        self.db.execute(
            "UPDATE runs SET finished = ?2, success = ?3, outcome = ?4, exit_code = ?5, elapsed_ms = ?6,
                 stdout = ?7, stderr = ?8, truncated = ?9 WHERE id = ?1",
            params![
                id,
                now_ms(),
                end.success,
                end.outcome,
                end.exit_code,
                end.elapsed.map(|d| d.as_millis() as i64),
                end.stdout,
                end.stderr,
                end.truncated
            ],
        )?;
        self.log(
            Some(&host),
            EventKind::RunFinished,
            &format!("run {id}: {}", end.outcome),
        )
    }

    /// One run.
    pub fn run(&self, id: i64) -> Result<Run> {
        self.settle_interrupted()?;
        self.runs_where("WHERE id = ?1", params![id])?
            .pop()
            .ok_or_else(|| StoreError::NotFound("run", id.to_string()))
    }

    /// The newest `limit` runs, oldest first, optionally of one host.
    pub fn runs(&self, host: Option<&str>, limit: u32) -> Result<Vec<Run>> {
        self.settle_interrupted()?;
        let mut runs = self.runs_where(
            "WHERE ?1 IS NULL OR host = ?1 ORDER BY id DESC LIMIT ?2",
            params![host, limit],
        )?;
        runs.reverse();
        Ok(runs)
    }

    fn runs_where(&self, filter: &str, params: &[&dyn rusqlite::ToSql]) -> Result<Vec<Run>> {
        let mut stmt = self.db.prepare(&format!(
            "SELECT id, host, what, action, started, finished, success, outcome, exit_code, elapsed_ms,
                    stdout, stderr, truncated FROM runs {filter}"
        ))?;
        let runs = stmt
            .query_map(params, run_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(runs)
    }
}

fn run_row(r: &Row<'_>) -> rusqlite::Result<Run> {
    Ok(Run {
        id: r.get(0)?,
        host: r.get(1)?,
        what: r.get(2)?,
        action: r.get(3)?,
        started: r.get(4)?,
        finished: r.get(5)?,
        success: r.get(6)?,
        outcome: r.get(7)?,
        exit_code: r.get(8)?,
        elapsed_ms: r.get::<_, Option<i64>>(9)?.map(|ms| ms.max(0) as u64),
        stdout: r.get(10)?,
        stderr: r.get(11)?,
        truncated: r.get(12)?,
    })
}

/// A group with its members and scripts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    /// Its name.
    pub name: String,
    /// Its hosts.
    pub hosts: Vec<String>,
    /// Its scripts.
    pub scripts: Vec<String>,
}

/// Makes the database and its WAL files owner-only (best effort: they may not exist yet).
fn restrict(db: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["", "-wal", "-shm"] {
        let mut path = db.as_os_str().to_owned();
        path.push(suffix);
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("otto.db")).unwrap();
        (dir, store)
    }

    fn host(name: &str) -> NewHost {
        NewHost {
            name: name.into(),
            address: "192.0.2.1".into(),
            port: 12444,
            agent_key: None,
            pin_on_first_contact: true,
        }
    }

    #[test]
    fn schema_is_created_once_and_reopened() {
        let (dir, store) = store();
        assert_eq!(store.schema_version().unwrap(), Store::SCHEMA_VERSION);
        store.add_host(&host("r1")).unwrap();
        drop(store);
        let again = Store::open(&dir.path().join("otto.db")).unwrap();
        assert_eq!(again.hosts().unwrap().len(), 1);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join("otto.db"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let (dir, store) = store();
        store.db.pragma_update(None, "user_version", 99).unwrap();
        drop(store);
        assert!(matches!(
            Store::open(&dir.path().join("otto.db")),
            Err(StoreError::TooNew { found: 99, .. })
        ));
    }

    #[test]
    fn hosts_groups_and_duplicates() {
        let (_dir, store) = store();
        store.add_host(&host("r1")).unwrap();
        store.add_host(&host("r2")).unwrap();
        assert!(matches!(
            store.add_host(&host("r1")),
            Err(StoreError::Exists("host", _))
        ));
        store.add_group("lab").unwrap();
        store.set_membership("lab", "r2", true).unwrap();
        assert_eq!(store.host("r2").unwrap().groups, ["lab"]);
        assert_eq!(
            store
                .group_hosts("lab")
                .unwrap()
                .iter()
                .map(|h| h.name.as_str())
                .collect::<Vec<_>>(),
            ["r2"]
        );
        assert!(matches!(
            store.set_membership("nope", "r1", true),
            Err(StoreError::NotFound("group", _))
        ));
        store.remove_host("r2").unwrap();
        assert!(store.group_hosts("lab").unwrap().is_empty());
    }

    #[test]
    fn a_host_name_outside_the_rule_is_refused() {
        let (_dir, store) = store();
        for name in ["../x", "a/b", "", "a\u{1b}b"] {
            assert!(
                matches!(store.add_host(&host(name)), Err(StoreError::Name(_))),
                "{name:?}"
            );
        }
        assert!(store.hosts().unwrap().is_empty());
    }

    #[test]
    fn reachability_changes_are_logged_once() {
        let (_dir, store) = store();
        store.add_host(&host("r1")).unwrap();
        let facts = Facts {
            hostname: "r1".into(),
            kernel_name: "Linux".into(),
            kernel_version: "6.1".into(),
            arch: "mips".into(),
            distribution_name: "OpenWrt".into(),
            distribution_version: "23.05".into(),
            uptime_secs: 5,
            load_centi: [1, 2, 3],
            mem_total_kib: 1,
            mem_available_kib: 1,
        };
        store.heartbeat_ok("r1", "0.1.0", &facts).unwrap();
        store.heartbeat_ok("r1", "0.1.0", &facts).unwrap();
        store.heartbeat_failed("r1", "timeout").unwrap();
        store.heartbeat_failed("r1", "timeout").unwrap();
        let kinds: Vec<_> = store
            .events(Some("r1"), 10)
            .unwrap()
            .into_iter()
            .map(|e| e.detail)
            .collect();
        assert_eq!(
            kinds,
            [
                "192.0.2.1:12444, agent key to be pinned on first contact",
                "reachable",
                "unreachable: timeout"
            ]
        );
        let r1 = store.host("r1").unwrap();
        assert_eq!(r1.status.facts, Some(facts));
        assert_eq!(r1.status.reachable, Some(false));
    }

    #[test]
    fn secrets_are_masked_when_shown() {
        let (_dir, store) = store();
        store
            .set_env(&Scope::Global, "TOKEN", "hunter2", true)
            .unwrap();
        store
            .set_env(&Scope::Global, "MODE", "fast", false)
            .unwrap();
        let vars = store.env(None).unwrap();
        let json = serde_json::to_string(&vars).unwrap();
        assert!(!json.contains("hunter2"), "{json}");
        assert!(json.contains("fast"));
        assert!(!format!("{vars:?}").contains("hunter2"));
        assert_eq!(vars[1].value.value, "hunter2");
    }

    #[test]
    fn runs_are_recorded() {
        let (_dir, store) = store();
        let id = store.start_run("r1", "hello", "00ff").unwrap();
        assert_eq!(store.run(id).unwrap().finished, None);
        store
            .finish_run(
                id,
                &RunEnd {
                    success: true,
                    outcome: "exit 0".into(),
                    exit_code: Some(0),
                    elapsed: Some(Duration::from_millis(12)),
                    stdout: b"hi\n".to_vec(),
                    stderr: Vec::new(),
                    truncated: false,
                },
            )
            .unwrap();
        let run = store.run(id).unwrap();
        assert_eq!(run.success, Some(true));
        assert_eq!(run.stdout, b"hi\n");
        assert_eq!(run.elapsed_ms, Some(12));
        assert_eq!(store.runs(Some("r1"), 5).unwrap().len(), 1);
        assert!(store.runs(Some("r2"), 5).unwrap().is_empty());
    }

    #[test]
    fn a_run_whose_process_is_gone_is_interrupted_until_its_real_end_arrives() {
        let (_dir, store) = store();
        let mine = store.start_run("r1", "mine", "01").unwrap();
        let orphan = store.start_run("r1", "orphan", "02").unwrap();
        // The orphan's owner: a process that has ended.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        child.wait().unwrap();
        let me = Owner::current().unwrap().to_string();
        let (_, boot) = me.split_at(me.rfind(':').unwrap());
        let start = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .nth(19)
            .unwrap();
        store
            .db
            .execute(
                "UPDATE runs SET owner = ?2 WHERE id = ?1",
                params![orphan, format!("{pid}:{start}{boot}")],
            )
            .unwrap();

        let runs = store.runs(None, 10).unwrap();
        assert_eq!(runs[0].outcome, None, "this process's run is still going");
        assert_eq!(runs[1].outcome.as_deref(), Some(INTERRUPTED));
        assert_eq!(runs[1].success, Some(false));
        assert_eq!(runs[1].finished, None);
        // Persisted: read straight from the table, and logged once.
        let outcome: String = store
            .db
            .query_row("SELECT outcome FROM runs WHERE id = ?1", [orphan], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(outcome, INTERRUPTED);
        store.runs(None, 10).unwrap();
        let logged = store.events(Some("r1"), 50).unwrap();
        assert_eq!(
            logged
                .iter()
                .filter(|e| e.detail.contains(INTERRUPTED))
                .count(),
            1
        );

        // Its owner was alive after all (another pid namespace, say): the real end wins.
        let end = RunEnd {
            success: true,
            outcome: "exit 0".into(),
            exit_code: Some(0),
            elapsed: Some(Duration::from_millis(5)),
            stdout: Vec::new(),
            stderr: Vec::new(),
            truncated: false,
        };
        store.finish_run(orphan, &end).unwrap();
        let run = store.run(orphan).unwrap();
        assert_eq!(run.outcome.as_deref(), Some("exit 0"));
        assert_eq!(run.success, Some(true));
        assert!(run.finished.is_some());
        assert_eq!(store.run(mine).unwrap().outcome, None);
    }
}
