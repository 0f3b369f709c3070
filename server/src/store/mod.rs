//! The fleet's state behind one async interface: hosts and their trust, groups, scripts,
//! attachments, environment variables, heartbeat state, run history, the API's launches, the
//! event log, and the API's users, keys and sessions.
//!
//! Callers hold a [`Store`], a cheap cloneable handle on a [`Backend`]. Its methods are async
//! and grouped by subject ([`HostStore`], [`GroupStore`], [`ScriptStore`], [`EnvStore`],
//! [`RunStore`], [`LaunchStore`], [`EventStore`], [`UserStore`], [`SessionStore`], [`KeyStore`]…); no database type appears in them, so no lock is held across
//! an `.await` and a PostgreSQL backend, for several servers sharing one fleet, can join the
//! [`sqlite`] one without touching a caller. Nothing outside a backend writes SQL.

use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;

use crate::model::{
    ApiKey, Attachment, Attempt, Delivery, DueDelivery, EnrollHost, EnvVar, Event, EventFilter,
    Facts, FleetPoint, Group, Host, HostFilter, HostPoint, Launch, LaunchFilter, NewApiKey,
    NewDelivery, NewEvent, NewHost, NewLaunch, NewRule, NewRunRecord, NewSchedule, NewSession,
    NewToken, NewUser, PastLaunch, Permissions, RelayServer, Rule, Run, RunEnd, RunFilter,
    Schedule, Scope, Script, ServerLease, Session, Token, TokenRefusal, TokenUse, User, Webhook,
    WebhookEvent,
};

pub mod copy;
mod host_page;
mod owner;
pub mod postgres;
pub mod secrets;
pub mod sqlite;
#[cfg(test)]
#[macro_use]
pub(crate) mod suite;

/// A backend's own error, kept as the cause.
pub type BackendError = Box<dyn std::error::Error + Send + Sync>;

/// What went wrong with the fleet's state.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or upgraded.
    #[error("database {path}: {source}")]
    Open {
        /// The database file.
        path: String,
        /// Why.
        source: BackendError,
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
    Sql(#[source] BackendError),
    /// The backend could not take the request (its connection's lock was poisoned, its worker
    /// thread failed).
    #[error("database unavailable: {0}")]
    Unavailable(String),
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
    /// A secret variable could not be encrypted or decrypted.
    #[error(transparent)]
    Secret(#[from] secrets::SecretError),
    /// A local file to be stored could not be read.
    #[error("reading what was to be stored: {0}")]
    Read(#[source] std::io::Error),
}

// One schema version for both dialects: a change is a migration of the same number in each.
const _: () = assert!(sqlite::SCHEMA_VERSION == postgres::SCHEMA_VERSION);

/// Shorthand for this module's results.
pub type Result<T> = std::result::Result<T, StoreError>;

/// Hosts, their trust and their heartbeat state.
#[async_trait]
pub trait HostStore: Send + Sync {
    /// Adds a host; its name must follow the rule of [`crate::names`]. Logs nothing: the
    /// operation that asked logs it with its actor.
    async fn add_host(&self, host: &NewHost) -> Result<()>;
    /// Removes a host with the variables of its scope (its history stays). Logs nothing, as
    /// [`HostStore::add_host`].
    async fn remove_host(&self, name: &str) -> Result<()>;
    /// Changes where a host is reached.
    async fn set_address(&self, name: &str, address: Option<&str>, port: Option<u16>)
    -> Result<()>;
    /// Enables or disables a host.
    async fn set_enabled(&self, name: &str, enabled: bool) -> Result<()>;
    /// One host.
    async fn host(&self, name: &str) -> Result<Host>;
    /// Every host, by name.
    async fn hosts(&self) -> Result<Vec<Host>>;
    /// At most `limit` of the hosts `filter` keeps, by name.
    async fn host_page(&self, filter: &HostFilter, limit: usize) -> Result<Vec<Host>>;
    /// The members of a group.
    async fn group_hosts(&self, group: &str) -> Result<Vec<Host>>;
    /// Pins `key` as the host's agent key (clearing any pending key). Who pinned it and why is
    /// the caller's to log.
    async fn pin_agent_key(&self, name: &str, key: &str) -> Result<()>;
    /// Records a key the agent presented that is not the pinned one. Logs only when it is new.
    async fn set_pending_key(&self, name: &str, key: &str, fingerprint: &str) -> Result<()>;
    /// Drops the host's pending key if it is still `key`; whether it was. Logs nothing.
    async fn drop_pending_key(&self, name: &str, key: &str) -> Result<bool>;
    /// Records a completed key rotation asked for by `actor`: the new agent key is pinned.
    async fn rotated(&self, name: &str, agent_key: &str, detail: &str, actor: &str) -> Result<()>;
    /// Records a successful heartbeat and its round trip (ms); logs a reachability change.
    async fn heartbeat_ok(
        &self,
        name: &str,
        version: &str,
        facts: &Facts,
        round_trip_ms: f64,
    ) -> Result<()>;
    /// Records a failed attempt to reach the host; logs a reachability change.
    async fn heartbeat_failed(&self, name: &str, error: &str) -> Result<()>;
    /// Records an attempt that reached the host, whose agent refused the heartbeat's channel
    /// as busy (`error` says how): reachable, busy; logs a change from unreachable.
    async fn heartbeat_busy(&self, name: &str, error: &str) -> Result<()>;
    /// The name of the host whose pinned agent key is `key` (OpenSSH form, as pinned), if any.
    async fn host_by_agent_key(&self, key: &str) -> Result<Option<String>>;
    /// Records that the host's agent calls home (it is not dialled until its address is set
    /// again); logs it when that is new.
    async fn set_calls_home(&self, name: &str) -> Result<()>;
}

/// Groups, their members and their scripts.
#[async_trait]
pub trait GroupStore: Send + Sync {
    /// Adds a group.
    async fn add_group(&self, name: &str) -> Result<()>;
    /// Removes a group (its hosts stay) with the variables of its scope.
    async fn remove_group(&self, name: &str) -> Result<()>;
    /// Every group with its hosts and scripts.
    async fn groups(&self) -> Result<Vec<Group>>;
    /// Puts a host in a group, or takes it out.
    async fn set_membership(&self, group: &str, host: &str, member: bool) -> Result<()>;
    /// Assigns a script to a group, or takes it away.
    async fn set_group_script(&self, group: &str, script: &str, assigned: bool) -> Result<()>;
}

/// Scripts and their attachments.
#[async_trait]
pub trait ScriptStore: Send + Sync {
    /// Adds a script, or replaces one of the same name when `replace` (keeping its attachments
    /// and group assignments).
    async fn put_script(&self, script: &Script, replace: bool) -> Result<()>;
    /// Removes a script with its attachments and the variables of its scope.
    async fn remove_script(&self, name: &str) -> Result<()>;
    /// One script.
    async fn script(&self, name: &str) -> Result<Script>;
    /// Every script, by name.
    async fn scripts(&self) -> Result<Vec<Script>>;
    /// Adds (or replaces, same script and path) an attachment.
    async fn put_attachment(&self, attachment: &Attachment) -> Result<()>;
    /// Adds (or replaces) an attachment whose content is the first `attachment.size` bytes of
    /// `source` (its `content` is ignored), copied a piece at a time, never whole in memory.
    async fn put_attachment_file(
        &self,
        attachment: &Attachment,
        source: std::fs::File,
    ) -> Result<()>;
    /// Removes an attachment.
    async fn remove_attachment(&self, script: &str, path: &str) -> Result<()>;
    /// A script's attachments (with their content), by path; or every attachment.
    async fn attachments(&self, script: Option<&str>) -> Result<Vec<Attachment>>;
    /// The attachment of `script` at `path`, if any, without its content.
    async fn attachment(&self, script: &str, path: &str) -> Result<Option<Attachment>>;
}

/// Environment variables.
#[async_trait]
pub trait EnvStore: Send + Sync {
    /// Sets a variable (replacing one of the same scope and name).
    async fn set_env(&self, scope: &Scope, name: &str, value: &str, secret: bool) -> Result<()>;
    /// Removes a variable.
    async fn unset_env(&self, scope: &Scope, name: &str) -> Result<()>;
    /// Variables of one scope, or all, by scope and name.
    async fn env(&self, scope: Option<&Scope>) -> Result<Vec<EnvVar>>;
}

/// The run history.
#[async_trait]
pub trait RunStore: Send + Sync {
    /// Records the start of a run by this process (logged with its `run-started` event, by its
    /// actor); returns its id.
    async fn start_run(&self, run: &NewRunRecord) -> Result<i64>;
    /// Records how a run ended (also over an [`INTERRUPTED`](crate::model::INTERRUPTED) mark).
    async fn finish_run(&self, id: i64, end: &RunEnd) -> Result<()>;
    /// One run. Runs whose server process is gone read as interrupted.
    async fn run(&self, id: i64) -> Result<Run>;
    /// The newest runs `filter` matches, oldest first. Runs whose server process is gone
    /// read as interrupted.
    async fn find_runs(&self, filter: &RunFilter) -> Result<Vec<Run>>;
    /// The newest `limit` runs, oldest first, optionally of one host.
    async fn runs(&self, host: Option<&str>, limit: u32) -> Result<Vec<Run>> {
        self.find_runs(&RunFilter::newest(host, limit)).await
    }
    /// The newest `limit` runs older than run `before` (ids below it), oldest first,
    /// optionally of one host: the page before.
    async fn runs_before(&self, host: Option<&str>, before: i64, limit: u32) -> Result<Vec<Run>> {
        let filter = RunFilter {
            before: Some(before),
            ..RunFilter::newest(host, limit)
        };
        self.find_runs(&filter).await
    }
}

/// The HTTP API's launches: a start of a job on many hosts, kept so that it can be told again
/// after `serve` has restarted.
#[async_trait]
pub trait LaunchStore: Send + Sync {
    /// Records a launch starting now; returns its id, never one used before.
    async fn start_launch(&self, launch: &NewLaunch) -> Result<u64>;
    /// Records how launch `id` ended: its last event, as JSON text.
    async fn finish_launch(&self, id: u64, last_event: &str) -> Result<()>;
    /// One launch.
    async fn launch(&self, id: u64) -> Result<Launch>;
    /// Adds events of running launch `id`, each with its number as its server produced it
    /// and its JSON text (a number already kept is left as it is), for followers on other
    /// servers; returns whether a cancel of it was asked for ([`LaunchStore::ask_cancel`]).
    async fn relay_launch_events(&self, id: u64, events: &[(u64, String)]) -> Result<bool>;
    /// The relayed events of launch `id` numbered `from` or more, at most `limit`, in order.
    async fn launch_events(&self, id: u64, from: u64, limit: u32) -> Result<Vec<(u64, String)>>;
    /// Asks the server running launch `id` to cancel it; false if it has already ended.
    async fn ask_cancel(&self, id: u64) -> Result<bool>;
    /// Forgets the relayed events of the launches that ended before `before` (ms since the
    /// epoch) and, with several servers, of those whose server's lease ran out; returns how
    /// many events.
    async fn prune_launch_events(&self, before: i64) -> Result<u64>;

    /// The newest launches `filter` matches, oldest first, with how their runs stand.
    async fn find_launches(&self, filter: &LaunchFilter) -> Result<Vec<PastLaunch>>;

    /// Launch `id` as the history lists it.
    async fn past_launch(&self, id: u64) -> Result<PastLaunch>;

    /// What launch `id` asked for, to start it again (`ops::NewRun` as JSON); None for an
    /// upload or update.
    async fn launch_request(&self, id: u64) -> Result<Option<String>>;
}

/// The event log.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends an event.
    async fn log(&self, event: &NewEvent) -> Result<()>;
    /// The newest events `filter` matches, oldest first.
    async fn events(&self, filter: &EventFilter) -> Result<Vec<Event>>;
    /// The first `limit` events after event `after` (by id), oldest first: what happened
    /// since, for a stream of changes.
    async fn events_after(&self, after: i64, limit: u32) -> Result<Vec<Event>>;
    /// The id of the newest event (0 when there is none).
    async fn last_event_id(&self) -> Result<i64>;
}

/// The API's users and their API keys. Logs nothing: the operation that asked logs it.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Adds a user.
    async fn add_user(&self, user: &NewUser) -> Result<()>;
    /// One user.
    async fn user(&self, name: &str) -> Result<User>;
    /// Every user, by name.
    async fn users(&self) -> Result<Vec<User>>;
    /// A user's password hash (an Argon2id PHC string).
    async fn password_hash(&self, name: &str) -> Result<String>;
    /// Replaces a user's password hash.
    async fn set_password(&self, name: &str, hash: &str) -> Result<()>;
    /// Disables a user (`true`) or enables them again.
    async fn set_disabled(&self, name: &str, disabled: bool) -> Result<()>;
    /// Stores an API key; returns its id.
    async fn add_api_key(&self, key: &NewApiKey) -> Result<i64>;
    /// The API keys of one user, or every key, by id.
    async fn api_keys(&self, user: Option<&str>) -> Result<Vec<ApiKey>>;
    /// Marks an API key revoked (from now on); None for a key revoked already, which stays as
    /// it was.
    async fn revoke_api_key(&self, id: i64) -> Result<Option<ApiKey>>;
    /// The key whose secret hashes to `hash`, with its user, if there is one (revoked and
    /// expired keys included: the caller decides).
    async fn api_key_by_hash(&self, hash: &str) -> Result<Option<(ApiKey, User)>>;
    /// Replaces a user's permissions.
    async fn set_permissions(&self, name: &str, permissions: &Permissions) -> Result<()>;
}

/// Users' browser sessions. Logs nothing: the operation that asked logs it.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a session (and forgets those expired); returns its id.
    async fn add_session(&self, session: &NewSession) -> Result<i64>;
    /// The session whose token hashes to `hash`, with its user, if there is one (expired ones
    /// included: the caller decides).
    async fn session_by_hash(&self, hash: &str) -> Result<Option<(Session, User)>>;
    /// Ends a user's sessions, all or all but `except`; returns how many ended.
    async fn end_sessions(&self, user: &str, except: Option<i64>) -> Result<usize>;
    /// Ends one session (none: nothing to do).
    async fn end_session(&self, id: i64) -> Result<()>;
}

/// Schedules, the claim of their due times, and the launches they started.
#[async_trait]
pub trait ScheduleStore: Send + Sync {
    /// Adds a schedule (its name must be free); returns its id.
    async fn add_schedule(&self, new: &NewSchedule) -> Result<i64>;
    /// Every schedule, by name.
    async fn schedules(&self) -> Result<Vec<Schedule>>;
    /// One schedule.
    async fn schedule(&self, name: &str) -> Result<Schedule>;
    /// Enables or disables a schedule, with its next due time (None while disabled).
    async fn set_schedule_enabled(
        &self,
        name: &str,
        enabled: bool,
        next_due: Option<i64>,
    ) -> Result<()>;
    /// Removes a schedule; its launches stay, unlinked.
    async fn remove_schedule(&self, name: &str) -> Result<()>;
    /// Claims due time `due` of enabled schedule `id`, moving its next due time to `next`:
    /// true for exactly one caller, whatever number of servers share the store.
    async fn claim_schedule(&self, id: i64, due: i64, next: Option<i64>) -> Result<bool>;
    /// Links launch `launch` to the schedule that started it.
    async fn link_launch(&self, launch: u64, schedule: i64) -> Result<()>;
    /// The newest `limit` launches of schedule `id`, newest first.
    async fn schedule_launches(&self, id: i64, limit: u32) -> Result<Vec<Launch>>;
    /// The name of the schedule that started a launch, if one did and still exists.
    async fn launch_schedule(&self, launch: u64) -> Result<Option<String>>;
}

/// Enrollment: tokens, rules, and the enrollment itself.
#[async_trait]
pub trait EnrollStore: Send + Sync {
    /// Stores a token; its id.
    async fn add_token(&self, token: &NewToken) -> Result<i64>;
    /// Every token, by id.
    async fn tokens(&self) -> Result<Vec<Token>>;
    /// Revokes a token; the token as it is now (`NotFound` for none).
    async fn revoke_token(&self, id: i64) -> Result<Token>;
    /// Stores a rule where it says (the rules from there on move down one); its id.
    async fn add_rule(&self, rule: &NewRule) -> Result<i64>;
    /// Every rule, in the order they are tried.
    async fn rules(&self) -> Result<Vec<Rule>>;
    /// Removes a rule (the rules after it move up one); the rule removed.
    async fn remove_rule(&self, id: i64) -> Result<Rule>;
    /// In one transaction: takes one use of the token whose hash `host` names (refused, with
    /// the reason, unless it exists, is not revoked, has not expired and has uses left), adds
    /// the host with its agent key pinned or pending, puts it in its groups and the token's
    /// (creating those missing), and records the enrollment. Nothing is changed on a refusal.
    async fn enroll(
        &self,
        host: &EnrollHost,
    ) -> Result<std::result::Result<TokenUse, TokenRefusal>>;
    /// What the agent of each enrolled host reported, by host.
    async fn enrolled_properties(&self) -> Result<Properties>;
    /// Whether the token whose secret's hash is `hash` may be used now (its id), or why not;
    /// [`EnrollStore::enroll`] checks again as it takes the use.
    async fn check_token(&self, hash: &str) -> Result<std::result::Result<i64, TokenRefusal>>;
}

/// The servers sharing the store, and which of them owns each host: its heartbeats, kept
/// connection and key rotations. Each process that opens a store holds a lease on it, renewed
/// by the backend while the process lives; a host belongs to at most one server whose lease is
/// live, and the hosts of a server whose lease ran out go to the others. An SQLite file is one
/// server's: its process owns every host.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// The id of this process's lease (None on SQLite, whose one server has none).
    fn lease_id(&self) -> Option<&str>;
    /// Whether this process's lease is live as far as it knows: renewed within its time. A
    /// server that cannot renew (the database is unreachable) must stop acting for its hosts
    /// once this is false, as the others may have taken them.
    fn lease_live(&self) -> bool;
    /// Balances the enabled hosts among the servers whose lease is live and returns those this
    /// process owns now: it keeps its own up to a fair share, gives back those above it, and
    /// takes free ones (no owner, or an owner whose lease ran out) up to it.
    async fn claim_hosts(&self) -> Result<Vec<String>>;
    /// Takes `host` for this process, whoever owns it (its agent called home here).
    async fn take_host(&self, host: &str) -> Result<()>;
    /// Ends this process's lease and frees its hosts, for the others to take at once (a clean
    /// stop).
    async fn end_lease(&self) -> Result<()>;
    /// The servers (processes that claimed hosts) whose lease is live or ran out within the
    /// hour, by name.
    async fn servers(&self) -> Result<Vec<ServerLease>>;
    /// Says where this process relays channels to the agents that called it home (its HTTPS
    /// `address`) and the `certificate` it answers there with, for the other servers; nothing
    /// on SQLite, whose one server has every agent's call.
    async fn advertise_relay(&self, address: &str, certificate: &str) -> Result<()>;
    /// The other live server that holds `host`'s call-home connection, if one does and says
    /// where it relays ([`LeaseStore::advertise_relay`]).
    async fn host_relay(&self, host: &str) -> Result<Option<RelayServer>>;
}

/// Which of a host's two server keys: the one in use, or the one a rotation is handing to the
/// agent until the agent has answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySlot {
    /// The key the server authenticates with.
    Current,
    /// The key of a rotation not answered yet ([`KeyStore::promote_server_key`] makes it
    /// current).
    Next,
}

impl KeySlot {
    /// Its name in the store (`current`, `next`).
    pub fn as_str(self) -> &'static str {
        match self {
            KeySlot::Current => "current",
            KeySlot::Next => "next",
        }
    }
}

/// What [`KeyStore::reseal`] seals again.
#[derive(Debug, Clone)]
pub enum Reseal {
    /// Only the values the store's key file does not open (sealed by a server still on the
    /// previous or next key), sealed again with it.
    Stale,
    /// Every value, sealed with the key file at this path (a `secrets.key.next` about to
    /// become the key).
    AllWith(std::path::PathBuf),
}

/// How many values [`KeyStore::reseal`] sealed again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resealed {
    /// Secret variables.
    pub variables: usize,
    /// Server keys (each slot counts).
    pub server_keys: usize,
    /// Webhooks' secrets.
    pub webhooks: usize,
}

/// The hosts' server keys (OpenSSH private-key text), sealed at rest with the store's
/// [`secrets::Keyring`] (the host and the slot as associated data), and the re-sealing of every
/// sealed value when that key changes. Logs nothing.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Stores `key` as the server key of `host` in `slot`, replacing one there.
    async fn put_server_key(&self, host: &str, slot: KeySlot, key: &str) -> Result<()>;
    /// The server key of `host` in `slot`, if there is one.
    async fn server_key(&self, host: &str, slot: KeySlot) -> Result<Option<String>>;
    /// Makes the `next` key of `host` its `current` one, in one transaction (`NotFound` when
    /// there is no `next` key).
    async fn promote_server_key(&self, host: &str) -> Result<()>;
    /// Removes the server key of `host` in `slot`, or both when `None` (none: nothing to do).
    async fn remove_server_key(&self, host: &str, slot: Option<KeySlot>) -> Result<()>;
    /// The hosts that have a server key in either slot, by name.
    async fn server_key_hosts(&self) -> Result<Vec<String>>;
    /// Seals again, in one transaction, the secret variables and server keys `what` says.
    async fn reseal(&self, what: &Reseal) -> Result<Resealed>;
}

/// What enrolled agents reported, by host: property → value.
pub type Properties =
    std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>;

/// Webhooks and their deliveries: queued once per webhook and event of the log, whichever
/// server sees the event first; claimed for an attempt by one server at a time; each attempt
/// recorded. A webhook's secret is sealed at rest with the store's [`secrets::Keyring`].
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Adds a webhook told of `events` at `url`, signing with `secret`; returns it.
    async fn add_webhook(
        &self,
        url: &str,
        events: &[WebhookEvent],
        secret: &str,
    ) -> Result<Webhook>;
    /// Every webhook, oldest first.
    async fn webhooks(&self) -> Result<Vec<Webhook>>;
    /// Removes webhook `id` with its deliveries.
    async fn remove_webhook(&self, id: i64) -> Result<()>;
    /// The id of the newest event of the log matched against the webhooks (at first, the
    /// newest when they came to be: older events are not told).
    async fn webhook_cursor(&self) -> Result<i64>;
    /// Queues `deliveries` (one per webhook and event: again, ignored) and moves the cursor on
    /// to `upto` (never back), in one transaction.
    async fn queue_deliveries(&self, deliveries: &[NewDelivery], upto: i64) -> Result<()>;
    /// Claims at most `limit` pending deliveries due at `now`, oldest first: each is not due
    /// again for `lease_ms`, so that no other server attempts it meanwhile.
    async fn claim_deliveries(
        &self,
        now: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<DueDelivery>>;
    /// Records how an attempt at delivery `id` went.
    async fn record_attempt(&self, id: i64, attempt: &Attempt) -> Result<()>;
    /// The newest `limit` deliveries, of one webhook or all, newest first.
    async fn deliveries(&self, webhook: Option<i64>, limit: u32) -> Result<Vec<Delivery>>;
}

/// Metrics for charts ([`crate::model::metrics`]): a host's heartbeats are counted as they are
/// recorded ([`HostStore::heartbeat_ok`]), runs by outcome as they end
/// ([`RunStore::finish_run`]); the fleet's reachable hosts are sampled, and old hours merged
/// into days, by the daemon.
#[async_trait]
pub trait MetricStore: Send + Sync {
    /// Counts the enabled and the reachable hosts now, into the hour of `at`.
    async fn sample_fleet(&self, at: i64) -> Result<()>;
    /// Merges the hours older than [`crate::model::HOURLY_DAYS`] before `now` into days, and
    /// forgets what is older than [`crate::model::KEPT_DAYS`].
    async fn roll_up(&self, now: i64) -> Result<()>;
    /// The fleet's hours and days from `since` on, oldest first.
    async fn fleet_metrics(&self, since: i64) -> Result<Vec<FleetPoint>>;
    /// Host `host`'s hours and days from `since` on, oldest first.
    async fn host_metrics(&self, host: &str, since: i64) -> Result<Vec<HostPoint>>;
}

/// Everything a store backend does.
pub trait Backend:
    HostStore
    + GroupStore
    + ScriptStore
    + EnvStore
    + RunStore
    + LaunchStore
    + EventStore
    + UserStore
    + SessionStore
    + ScheduleStore
    + EnrollStore
    + LeaseStore
    + KeyStore
    + WebhookStore
    + MetricStore
{
}

impl<
    T: HostStore
        + GroupStore
        + ScriptStore
        + EnvStore
        + RunStore
        + LaunchStore
        + EventStore
        + UserStore
        + SessionStore
        + ScheduleStore
        + EnrollStore
        + LeaseStore
        + KeyStore
        + WebhookStore
        + MetricStore,
> Backend for T
{
}

/// A handle on the fleet's state: cheap to clone, usable from any task; its methods are the
/// [`Backend`]'s.
#[derive(Clone)]
pub struct Store(Arc<dyn Backend>);

impl Store {
    /// A handle on `backend`.
    pub fn new(backend: impl Backend + 'static) -> Store {
        Store(Arc::new(backend))
    }

    /// Opens (creating and migrating) the SQLite database at `path`; secret variables are
    /// encrypted with the key [`secrets::KEY_FILE`] beside it.
    pub fn open_sqlite(path: &Path) -> Result<Store> {
        Ok(Store::new(sqlite::Sqlite::open(path)?))
    }

    /// Connects to (and migrates) the PostgreSQL database at `url`; secret variables are
    /// encrypted with the key at `key_file`.
    pub async fn open_postgres(url: &str, key_file: std::path::PathBuf) -> Result<Store> {
        Ok(Store::new(postgres::Postgres::open(url, key_file).await?))
    }
}

impl Deref for Store {
    type Target = dyn Backend;

    fn deref(&self) -> &(dyn Backend + 'static) {
        &*self.0
    }
}
