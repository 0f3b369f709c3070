//! The service layer: every operation the server offers, one module per capability, shared by
//! the command line and the coming HTTP API.
//!
//! An operation is an async method of [`Ops`]: typed input, a typed result or an [`OpsError`],
//! and a record in the event log of every change it made, naming its [`Actor`]. Callers never
//! reach below this layer (the store, the fleet's connections, the server keys); printing and
//! reading local files are theirs.

mod cancellation;
mod changes;
mod control;
mod daemon;
mod dry_run;
mod enrollment;
mod environment;
mod fetches;
mod groups;
mod history;
mod hosts;
mod import;
mod live;
mod metrics;
mod names;
mod options;
mod ping;
mod removal;
mod rollout;
mod runs;
mod schedules;
mod scripts;
mod servers;
mod sessions;
mod summary;
mod targets;
#[cfg(test)]
mod testing;
mod updates;
mod uploads;
mod users;
mod webhooks;

pub use crate::inventory::Format;
pub use crate::model::HostState;
pub use cancellation::Cancellation;
pub use changes::{ChangeFeed, FleetChange};
pub use control::{Action, Control, ControlRequest};
pub use dry_run::{DryRun, FetchCheck, HostFile, PlannedFile, Rendered, UploadCheck};
pub use enrollment::{
    AddRule, AddToken, CreatedToken, ENROLLMENT_KEY_FILE, Enrolled, Enrollment, Fingerprint,
    PendingDecided, PendingHost, PendingHosts, TOKEN_PREFIX, describe, parse_clause,
};
pub use environment::{HostVar, HostVariable, NewValue, ScopeQuery, SetEnv, Variable};
pub use fetches::{
    API_DEFAULT_LIMIT, FETCH_LIMIT, Fetch, FetchRequest, Fetched, FetchedCopy, KEPT_FOR,
};
pub use groups::NewGroup;
pub use hosts::{
    AddHost, AgentKey, DeployHost, DeployOutcome, Deployed, HostAdded, HostChange, HostDetail,
    HostEntry, HostPage, HostQuery, KeyFingerprint, MAX_PAGE, Removal, ServerKey, Service,
    pending_fingerprint,
};
pub use import::{ImportHosts, Imported, VarChange, VarStep};
pub use live::{
    DEFAULT_OUTPUT_CAP, Follower, LaunchEvent, Launched, Launches, NewRun, PreparedLaunch,
};
pub use names::Finding;
pub use options::{HttpConnections, HttpSecurity, ServeSettings, ServerOptions};
pub use ping::{Ping, PingRequest};
pub use removal::{ForceNeeded, LostVariable};
pub use rollout::{Rollout, RolloutOptions, Share, ShareInput};
pub use runs::{Job, RunEvent, RunResult, RunSink};
pub use schedules::{AddSchedule, DueTime, ScheduleEntry, ScheduledLaunch};
pub use scripts::{
    AttachFile, AttachmentQuery, NewAttachment, NewScript, PathQuery, ScriptChange, ScriptDetail,
    ScriptUpdate,
};
pub use servers::ServerEntry;
pub use sessions::{Me, SESSION_LIFETIME, SessionUser, SignedIn, csrf_token_of};
pub use summary::{SlowHeartbeat, Summary};
pub use targets::{Done, Selection, Status, Targets};
pub use updates::{DEFAULT_CONFIRM_SECS, MAX_CONFIRM_SECS, MIN_CONFIRM_SECS, UpdateAgents};
pub use uploads::{UPLOAD_LIMIT, Upload, UploadEvent, UploadSink, read_template};
pub use users::{
    AddUser, Authenticated, CreateApiKey, CreatedApiKey, KeyQuery, MAX_KEY_LIFETIME_SECS,
    NewPassword,
};
pub use webhooks::{AddedWebhook, MAX_ATTEMPTS, NewWebhook, signature};

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::deploy::DeployError;
use crate::fleet::{Fleet, FleetError};
use crate::inventory::InventoryError;
use crate::keys::KeyError;
use crate::model::{EventKind, NewEvent, Permission, Permissions, RunLevel};
use crate::names::{AddressError, NameError};
use crate::store::StoreError;

/// Who asks for an operation: recorded with every change it makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A person at the command line, by their login name.
    Cli(String),
    /// The server itself (the daemon's jobs).
    Server,
    /// A user of the HTTP API, by the API key they used, from the client's address.
    Api {
        /// The user's name.
        user: String,
        /// The id of their API key.
        key: i64,
        /// Where the request came from.
        address: IpAddr,
    },
    /// A client of the HTTP API not known yet (signing in, or giving an API key that does not
    /// work), by its address.
    Client(IpAddr),
    /// A user of the HTTP API signed in through a browser session.
    Session {
        /// The user's name.
        user: String,
        /// The session's id.
        session: i64,
        /// Where the request came from.
        address: IpAddr,
    },
}

impl Actor {
    /// The person running this process, as the operating system names them.
    pub fn local_user() -> Actor {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        let name = std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| format!("uid {uid}"));
        Actor::Cli(name)
    }
}

impl Actor {
    /// Where the request came from, for a client of the HTTP API.
    pub fn address(&self) -> Option<IpAddr> {
        match self {
            Actor::Client(address)
            | Actor::Api { address, .. }
            | Actor::Session { address, .. } => Some(*address),
            Actor::Cli(_) | Actor::Server => None,
        }
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Cli(user) => write!(f, "cli:{user}"),
            Actor::Server => f.write_str("server"),
            Actor::Client(address) => write!(f, "client {address}"),
            Actor::Api { user, key, address } => {
                write!(f, "user:{user} (API key {key} from {address})")
            }
            Actor::Session {
                user,
                session,
                address,
            } => write!(f, "user:{user} (session {session} from {address})"),
        }
    }
}

/// What kind of failure an [`OpsError`] is: what a front end needs to answer it (an exit code
/// now, an HTTP status next).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request does not make sense (bad name, missing argument, bad key text).
    Invalid,
    /// What it names does not exist.
    NotFound,
    /// It clashes with what exists (a name taken, no pending key to approve).
    Conflict,
    /// A host or the state could not be reached; trying later may work.
    Unavailable,
    /// Who asks could not be told: no credentials, or ones that do not work (unknown, expired,
    /// revoked, of a disabled user).
    Unauthenticated,
    /// Who asks may not do this.
    Forbidden,
    /// The server's own files cannot be used as they are (the database, the secrets key): an
    /// administrator must look.
    DataDir,
    /// Anything else: the server's own failure.
    Internal,
}

impl ErrorKind {
    /// The process exit code for the command line (the table in `otto-server --help`): 2 for a
    /// request that cannot work as given, 3 for a host that could not be reached, 4 for a name
    /// that does not exist, 5 for a clash, 6 for the data directory's files, 7 for the server's
    /// own failure, 8 for a request refused for who asks.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Unauthenticated | ErrorKind::Forbidden => 8,
            ErrorKind::Invalid => 2,
            ErrorKind::Unavailable => 3,
            ErrorKind::NotFound => 4,
            ErrorKind::Conflict => 5,
            ErrorKind::DataDir => 6,
            ErrorKind::Internal => 7,
        }
    }

    /// The HTTP status an API answers with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::Invalid => 400,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::Unavailable => 503,
            ErrorKind::DataDir | ErrorKind::Internal => 500,
        }
    }
}

/// What a request left out that it must name. Each front end asks for it in its own words (the
/// command line by its flags, the API by its fields, the web UI by its form), from this; its
/// `Display` names no front end's means.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum Missing {
    /// The hosts to act on. `script`: a stored script's run, asked for without hosts, that is
    /// assigned to no group (whose members it would otherwise run on).
    NoHosts {
        /// The script.
        script: Option<String>,
    },
    /// The user an API key is for (who asks is not a user: the command line on the server).
    NoKeyUser,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Missing::NoHosts { script: None } => f.write_str("name the hosts"),
            Missing::NoHosts {
                script: Some(script),
            } => write!(
                f,
                "name the hosts (script {script} is assigned to no group)"
            ),
            Missing::NoKeyUser => f.write_str("name the user the key is for"),
        }
    }
}

/// What an error carries as data, for each front end to phrase in its own words (the API's
/// `error.detail`, told apart by its `code`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Detail {
    /// What the request left out.
    Missing(Missing),
    /// What a removal would take with it without force.
    ForceNeeded(ForceNeeded),
    /// Why a host's agent is not trusted.
    Untrusted(crate::fleet::Untrusted),
}

impl OpsError {
    /// What this error carries as data, if anything.
    pub fn detail(&self) -> Option<Detail> {
        match self {
            OpsError::Missing(missing) => Some(Detail::Missing(missing.clone())),
            OpsError::ForceNeeded(needed) => Some(Detail::ForceNeeded(needed.clone())),
            OpsError::Fleet(fleet) => fleet.untrusted().map(Detail::Untrusted),
            _ => None,
        }
    }
}

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The request does not make sense as given.
    #[error("{0}")]
    Invalid(String),
    /// The request leaves out what it must name.
    #[error("{0}")]
    Missing(Missing),
    /// A removal that would take more with it (variables) than it may without force.
    #[error("{0}")]
    ForceNeeded(ForceNeeded),
    /// It clashes with the fleet's state.
    #[error("{0}")]
    Conflict(String),
    /// No credentials, or ones that do not work.
    #[error("{0}")]
    Unauthenticated(String),
    /// Who asks may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// A glob that matches no host.
    #[error("no host matches `{0}`")]
    NoMatch(String),
    /// A glob that matches no group.
    #[error("no group matches `{0}`")]
    NoGroupMatch(String),
    /// The fleet's state.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The fleet: keys, connections, trust (named with its host: see [`FleetError::named`]).
    #[error("{}", .0.named())]
    Fleet(#[from] FleetError),
    /// A key given or stored.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A name that breaks the rule.
    #[error(transparent)]
    Name(#[from] NameError),
    /// A host's address or port that cannot be dialled.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// Installing an agent on a device.
    #[error(transparent)]
    Deploy(#[from] DeployError),
    /// An inventory that cannot be imported.
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    /// A file on this machine.
    #[error("{0}: {1}")]
    File(PathBuf, std::io::Error),
    /// The server's own failure (no randomness, a hash that cannot be made).
    #[error("{0}")]
    Internal(String),
}

impl OpsError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            OpsError::Invalid(_)
            | OpsError::Name(_)
            | OpsError::Address(_)
            | OpsError::Missing(_)
            | OpsError::Inventory(_) => ErrorKind::Invalid,
            OpsError::Conflict(_) | OpsError::ForceNeeded(_) => ErrorKind::Conflict,
            OpsError::Unauthenticated(_) => ErrorKind::Unauthenticated,
            OpsError::Forbidden(_) => ErrorKind::Forbidden,
            OpsError::NoMatch(_) | OpsError::NoGroupMatch(_) => ErrorKind::NotFound,
            OpsError::Store(e) | OpsError::Fleet(FleetError::Store(e)) => store_kind(e),
            OpsError::Key(KeyError::Format(..)) => ErrorKind::Invalid,
            OpsError::Fleet(FleetError::BadName(_)) => ErrorKind::Invalid,
            OpsError::Fleet(
                FleetError::Client(..)
                | FleetError::BackingOff { .. }
                | FleetError::KeyRefused { .. }
                | FleetError::NoAgentKey(_)
                | FleetError::Disabled(_),
            ) => ErrorKind::Unavailable,
            OpsError::Deploy(
                DeployError::Agents(_) | DeployError::UnknownCpu { .. } | DeployError::Setting(_),
            ) => ErrorKind::Invalid,
            OpsError::Deploy(DeployError::KeyMismatch { .. } | DeployError::NoAgent(_)) => {
                ErrorKind::Conflict
            }
            OpsError::Deploy(DeployError::Remote { .. }) => ErrorKind::Unavailable,
            OpsError::File(_, e) if e.kind() == std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            _ => ErrorKind::Internal,
        }
    }
}

fn store_kind(e: &StoreError) -> ErrorKind {
    match e {
        StoreError::NotFound(..) => ErrorKind::NotFound,
        StoreError::Exists(..) => ErrorKind::Conflict,
        StoreError::Name(_) => ErrorKind::Invalid,
        StoreError::Unavailable(_) => ErrorKind::Unavailable,
        StoreError::Secret(_) | StoreError::Open { .. } | StoreError::TooNew { .. } => {
            ErrorKind::DataDir
        }
        _ => ErrorKind::Internal,
    }
}

/// Shorthand for an operation's result.
pub type Result<T> = std::result::Result<T, OpsError>;

/// The server's operations, for one [`Actor`].
#[derive(Clone)]
pub struct Ops {
    fleet: Arc<Fleet>,
    actor: Actor,
    /// What the actor may do; None: everything (the command line on the server's own machine,
    /// which holds the database anyway, and the daemon).
    permissions: Option<Permissions>,
    rollout: Rollout,
    cancellation: Cancellation,
    /// The launch its runs are part of, if one.
    launch: Option<u64>,
}

impl Ops {
    /// Operations on `fleet` on behalf of `actor`.
    pub fn new(fleet: Arc<Fleet>, actor: Actor) -> Ops {
        Ops {
            fleet,
            actor,
            permissions: None,
            rollout: Rollout::default(),
            cancellation: Cancellation::new(),
            launch: None,
        }
    }

    /// These operations, their runs recorded as parts of launch `id`.
    pub fn in_launch(mut self, id: u64) -> Ops {
        self.launch = Some(id);
        self
    }

    /// These operations, working on many hosts in batches as `rollout` says.
    pub fn rolling(mut self, rollout: Rollout) -> Ops {
        self.rollout = rollout;
        self
    }

    /// These operations, stopped when `cancellation` is set: a fan-out starts no further host,
    /// and a run cancels its scripts on the hosts (see [`Ops::run`]).
    pub fn cancellable(mut self, cancellation: Cancellation) -> Ops {
        self.cancellation = cancellation;
        self
    }

    /// These operations, only as far as `permissions` allow (an API user's, through their key).
    pub fn limited_to(mut self, permissions: Permissions) -> Ops {
        self.permissions = Some(permissions);
        self
    }

    /// Who asks.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// `Forbidden` unless the actor has `permission`.
    pub fn require(&self, permission: Permission) -> Result<()> {
        match &self.permissions {
            Some(p) if !p.allows(permission) => Err(OpsError::Forbidden(format!(
                "this needs the permission `{}`",
                permission.as_str()
            ))),
            _ => Ok(()),
        }
    }

    /// `Forbidden` unless the actor may run scripts of `level`.
    pub fn require_run(&self, level: RunLevel) -> Result<()> {
        match &self.permissions {
            Some(p) if p.run_level() < level => Err(OpsError::Forbidden(format!(
                "this needs the run level `{}`",
                level.as_str()
            ))),
            _ => Ok(()),
        }
    }

    /// How many hosts this process could not connect to at its last try, and has not reached
    /// since: a front end tells "no host reachable" from "some hosts failed" by it.
    pub async fn unreached(&self) -> usize {
        self.fleet.unreached().await
    }

    /// Records what happened as `actor` made it happen (a user just known, signing in).
    async fn record_as(&self, actor: Actor, kind: EventKind, detail: &str) -> Result<()> {
        Ops {
            actor,
            ..self.clone()
        }
        .record(None, kind, detail)
        .await
    }

    /// Records a change this operation made, naming the actor.
    async fn record(&self, host: Option<&str>, kind: EventKind, detail: &str) -> Result<()> {
        self.fleet
            .store()
            .log(&NewEvent {
                actor: Some(self.actor.to_string()),
                host: host.map(str::to_owned),
                kind,
                detail: detail.to_owned(),
            })
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_exit_codes_and_statuses() {
        let missing = OpsError::Store(StoreError::NotFound("host", "a".into()));
        assert_eq!(missing.kind(), ErrorKind::NotFound);
        assert_eq!(missing.kind().http_status(), 404);
        assert_eq!(missing.kind().exit_code(), 4);
        let taken = OpsError::Store(StoreError::Exists("group", "g".into()));
        assert_eq!(taken.kind().http_status(), 409);
        let bad = OpsError::Missing(Missing::NoHosts { script: None });
        assert_eq!((bad.kind().exit_code(), bad.kind().http_status()), (2, 400));
        let gone = OpsError::Fleet(FleetError::Disabled("a".into()));
        assert_eq!(gone.kind().http_status(), 503);
    }

    #[test]
    fn actors_read_as_recorded() {
        assert_eq!(Actor::Cli("alice".into()).to_string(), "cli:alice");
        assert_eq!(Actor::Server.to_string(), "server");
        let api = Actor::Api {
            user: "bob".into(),
            key: 3,
            address: IpAddr::from([127, 0, 0, 1]),
        };
        assert_eq!(api.to_string(), "user:bob (API key 3 from 127.0.0.1)");
        let client = Actor::Client(IpAddr::from([127, 0, 0, 1]));
        assert_eq!(client.to_string(), "client 127.0.0.1");
        assert_eq!(client.address(), api.address());
        assert_eq!(Actor::Server.address(), None);
    }
}
