//! The fleet: the store, each host's server key, and one live SSH connection per agent.
//!
//! Server keys are kept in the store, sealed with the data directory's `secrets.key`
//! ([`crate::store::KeyStore`]), so every server sharing a database authenticates to every
//! agent with the same key; an older data directory's key files (`keys/<host>.key`) are moved
//! into the store when the fleet is opened ([`Fleet::open_with`]).
//!
//! A connection is dialled on first use and reused for every later operation (one channel
//! each; the client goes on over a new SSH connection before the agent's limit of channels per
//! connection, see [`Connection`]); a lost one is dialled again, after a failure only once its backoff has passed (1 s,
//! doubling, at most 5 minutes). Dials have a timeout, and at most `dial_limit` run at once.
//! Trust is enforced here: an agent must present its pinned key; a different key is refused
//! and recorded as pending, and a key is pinned on first contact only when the administrator
//! asked for that when adding the host.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::keys::{PrivateKey, PublicKey};
use tokio::sync::Semaphore;

use crate::client::{AgentKeyCheck, ClientError, Connection, Dial, Limits, OpenChannel};
use crate::keys::{self, KeyError};
use crate::model::{EventKind, Host, NewEvent};
use crate::names::{HostName, NameError};
use crate::relay;
use crate::store::secrets::Keyring;
use crate::store::{KeySlot, Store, StoreError};

/// What went wrong reaching a host. Each such error is shown beside its host's name (a row of
/// results, a host's outcome in a run), so a message names the host only where a sentence
/// needs it; [`FleetError::named`] is the message for where it stands alone.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The fleet's state.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A server key.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The data directory.
    #[error("data directory {0}: {1}")]
    DataDir(PathBuf, std::io::Error),
    /// No agent key is known and pinning on first contact was not asked for.
    #[error("the host has no agent key pinned, and pinning on first contact was not asked for")]
    NoAgentKey(String),
    /// The agent presented another key than the pinned one.
    #[error(
        "the agent presented key {presented}, not the pinned one; refused and held pending approval"
    )]
    KeyRefused {
        /// The host.
        host: String,
        /// The presented key's fingerprint.
        presented: String,
    },
    /// The host is disabled.
    #[error("{0} is disabled")]
    Disabled(String),
    /// Dialling failed recently; the next try is later.
    #[error("{last_error} (next try in {}s)", .retry_in.as_secs())]
    BackingOff {
        /// The host.
        host: String,
        /// Why the last dial failed.
        last_error: String,
        /// Why, when it was that the agent is not trusted.
        untrusted: Option<Box<Untrusted>>,
        /// When the next dial is allowed.
        retry_in: Duration,
    },
    /// Talking to the agent (named) failed.
    #[error("{1}")]
    Client(String, ClientError),
    /// A host name that breaks the rule (from a database older than the rule).
    #[error("{0}; no server key is made or read for it (remove the host)")]
    BadName(#[from] NameError),
    /// The store has no server key for the host.
    #[error("no server key is stored for {0} (remove the host and add it again)")]
    NoServerKey(String),
    /// The host's agent calls home (it is not dialled) and has no connection open now.
    #[error("the agent calls home and is not connected now (it is not dialled)")]
    NotCalledHome(String),
    /// The way through the server the agent called home to could not be set up.
    #[error(transparent)]
    Relay(#[from] relay::RelayError),
}

impl FleetError {
    /// The message for where it is shown alone (the error of a command, or of an API
    /// request): prefixed with the host's name when the message does not say it.
    pub fn named(&self) -> String {
        match self {
            FleetError::KeyRefused { host, .. }
            | FleetError::NoAgentKey(host)
            | FleetError::BackingOff { host, .. }
            | FleetError::NotCalledHome(host)
            | FleetError::Client(host, _) => format!("{host}: {self}"),
            _ => self.to_string(),
        }
    }

    /// Why the host's agent is not trusted, when that is what failed: the fact a front end
    /// offers its own remedy for.
    pub fn untrusted(&self) -> Option<Untrusted> {
        match self {
            FleetError::NoAgentKey(host) => Some(Untrusted::NoAgentKey { host: host.clone() }),
            FleetError::KeyRefused { host, presented } => Some(Untrusted::KeyPending {
                host: host.clone(),
                fingerprint: presented.clone(),
            }),
            FleetError::BackingOff { untrusted, .. } => untrusted.as_deref().cloned(),
            _ => None,
        }
    }
}

/// Why a host's agent cannot be used until an administrator acts: a fact that names no front
/// end's means, which each phrases as its own remedy (the command line by its command, the
/// web UI by its button on the host's page). The API gives it as an error's `detail` and a
/// heartbeat's `untrusted`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum Untrusted {
    /// No agent key is pinned, and pinning on first contact was not asked for: give the key
    /// (from `otto-agent pubkey` on the device).
    NoAgentKey {
        /// The host.
        host: String,
    },
    /// The agent presented another key than the pinned one; it is held pending approval
    /// (approve or deny it).
    KeyPending {
        /// The host.
        host: String,
        /// The presented key's fingerprint.
        fingerprint: String,
    },
}

/// How the fleet dials.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Limit for TCP connect, SSH handshake and authentication.
    pub dial_timeout: Duration,
    /// How many dials may be in progress at once, and hosts worked on at once by one
    /// operation.
    pub dial_limit: usize,
    /// The limits of every wait on an agent once connected.
    pub limits: Limits,
}

impl Default for FleetOptions {
    fn default() -> Self {
        FleetOptions {
            dial_timeout: Duration::from_secs(15),
            dial_limit: 64,
            limits: Limits::default(),
        }
    }
}

/// The longest wait between two dials of an unreachable host.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// The longest wait for an agent that calls home and is not connected to call (as it does
/// within a second or two of losing its connection).
const CALL_WAIT: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Link {
    connection: Option<Connection>,
    failures: u32,
    /// When the next dial is allowed, and why the last one failed.
    retry_at: Option<(Instant, String, Option<Box<Untrusted>>)>,
}

/// The fleet's state and its connections.
pub struct Fleet {
    data_dir: PathBuf,
    store: Store,
    options: FleetOptions,
    dials: Semaphore,
    links: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Link>>>>,
    /// Notified whenever an agent has called home.
    calls: tokio::sync::Notify,
    /// The folder of agent binaries given (`--agents`), if one was.
    agents: std::sync::OnceLock<PathBuf>,
    /// The newest version among those binaries, remembered while they stay the same.
    newest_agent: crate::agents::NewestVersion,
}

impl Fleet {
    /// Opens the fleet kept in `data_dir` (created, mode 0700, if missing), moving the key
    /// files of an older data directory into its store ([`Fleet::import_key_files`]).
    pub async fn open(data_dir: &Path, options: FleetOptions) -> Result<Fleet, FleetError> {
        Self::make_data_dir(data_dir)?;
        let store = Store::open_sqlite(&data_dir.join("otto.db"))?;
        Self::with_store(data_dir, store, options).await
    }

    /// Opens the fleet whose state is in the PostgreSQL database at `database`, if given (the
    /// key that seals its secret variables and server keys in `data_dir`), else in `data_dir`
    /// as [`Fleet::open`] does; either way the key files of an older data directory are moved
    /// into the store ([`Fleet::import_key_files`]).
    pub async fn open_with(
        data_dir: &Path,
        database: Option<&str>,
        options: FleetOptions,
    ) -> Result<Fleet, FleetError> {
        let Some(url) = database else {
            return Self::open(data_dir, options).await;
        };
        Self::make_data_dir(data_dir)?;
        let key_file = data_dir.join(crate::store::secrets::KEY_FILE);
        let store = Store::open_postgres(url, key_file).await?;
        Self::with_store(data_dir, store, options).await
    }

    /// Makes the data directory (mode 0700) if missing.
    fn make_data_dir(data_dir: &Path) -> Result<(), FleetError> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .map_err(|e| FleetError::DataDir(data_dir.to_path_buf(), e))
    }

    /// The fleet of `store`, its data directory `data_dir`, once the key files there are in
    /// the store.
    async fn with_store(
        data_dir: &Path,
        store: Store,
        options: FleetOptions,
    ) -> Result<Fleet, FleetError> {
        let fleet = Fleet {
            data_dir: data_dir.to_path_buf(),
            store,
            dials: Semaphore::new(options.dial_limit.max(1)),
            options,
            links: Mutex::new(HashMap::new()),
            calls: tokio::sync::Notify::new(),
            agents: std::sync::OnceLock::new(),
            newest_agent: crate::agents::NewestVersion::default(),
        };
        fleet.import_key_files().await?;
        Ok(fleet)
    }

    /// Moves the server keys an older version kept as files into the store, sealed: each
    /// `keys/<host>.key` into the host's `current` slot and each `keys/<host>.key.next` (of a
    /// rotation left unanswered) into its `next` one. The files are removed once every one of
    /// them is in the store (then `keys/` too, when empty); a file whose slot in the store
    /// holds another key already (another server sharing the database moved its own first)
    /// is left where it is, with a warning. Returns how many keys were moved.
    pub async fn import_key_files(&self) -> Result<usize, FleetError> {
        let dir = self.data_dir.join("keys");
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(KeyError::Io(dir, e).into()),
        };
        let mut moved = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| KeyError::Io(dir.clone(), e))?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let (host, slot) = if let Some(host) = name.strip_suffix(".key.next") {
                (host, KeySlot::Next)
            } else if let Some(host) = name.strip_suffix(".key") {
                (host, KeySlot::Current)
            } else {
                continue;
            };
            let Ok(host) = HostName::parse(host) else {
                tracing::warn!(file = %path.display(), "not a host's key file: left as it is");
                continue;
            };
            let key = keys::load(&path)?;
            let text = keys::to_text(&key)?;
            match self.store.server_key(&host, slot).await? {
                None => self.store.put_server_key(&host, slot, &text).await?,
                Some(stored) if stored == *text => {}
                Some(_) => {
                    tracing::warn!(
                        file = %path.display(),
                        "the store holds another server key for {host} ({}): this file is left \
                         as it is; remove it once you know which key the agent trusts",
                        slot.as_str()
                    );
                    continue;
                }
            }
            moved.push(path);
        }
        for path in &moved {
            std::fs::remove_file(path).map_err(|e| KeyError::Io(path.clone(), e))?;
        }
        if !moved.is_empty() {
            let _ = std::fs::remove_dir(&dir);
            tracing::info!(
                count = moved.len(),
                "server key files moved from {} into the store (sealed with {})",
                dir.display(),
                crate::store::secrets::KEY_FILE
            );
        }
        Ok(moved.len())
    }

    /// Takes the agent binaries from `dir` from now on (`--agents`); false if a folder was
    /// given already (the first one stays).
    pub fn use_agents(&self, dir: PathBuf) -> bool {
        self.agents.set(dir).is_ok()
    }

    /// The agent binaries this fleet sends: those of the folder given ([`Fleet::use_agents`]),
    /// else as [`Catalogue::open`](crate::agents::Catalogue::open) finds them.
    pub fn catalogue(&self) -> crate::agents::Catalogue {
        crate::agents::Catalogue::open(self.agents.get().map(PathBuf::as_path))
    }

    /// The newest version among the agent binaries of [`Fleet::catalogue`] (the files are
    /// looked at, and read again only when they changed). Blocking.
    pub fn newest_agent(&self) -> Option<String> {
        self.newest_agent.of(&self.catalogue())
    }

    /// [`Fleet::newest_agent`] as found within the last second, if it was: not blocking.
    pub fn recent_newest_agent(&self) -> Option<Option<String>> {
        self.newest_agent.recent()
    }

    /// How many hosts one operation works on at once ([`FleetOptions::dial_limit`], at least 1).
    pub fn dial_limit(&self) -> usize {
        self.options.dial_limit.max(1)
    }

    /// How it dials, as it was opened.
    pub fn options(&self) -> &FleetOptions {
        &self.options
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The fleet's state.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Makes a new server key for `host` and keeps it in the store (replacing any); returns
    /// its public half. A name that breaks the rule is refused.
    pub async fn create_host_key(&self, host: &str) -> Result<PublicKey, FleetError> {
        let key = keys::generate()?;
        self.keep_host_key(host, &key).await?;
        Ok(key.public_key().clone())
    }

    /// Keeps `key` as the server key of `host` in the store (replacing any), once the host is
    /// stored: of two servers adding one name, only the one whose host the store took keeps
    /// its key. A name that breaks the rule is refused.
    pub async fn keep_host_key(&self, host: &str, key: &PrivateKey) -> Result<(), FleetError> {
        let host = HostName::parse(host)?;
        self.store
            .put_server_key(&host, KeySlot::Current, &keys::to_text(key)?)
            .await?;
        Ok(())
    }

    /// The server key of `host`.
    pub async fn host_key(&self, host: &str) -> Result<PrivateKey, FleetError> {
        self.stored_key(host, KeySlot::Current)
            .await?
            .ok_or_else(|| FleetError::NoServerKey(host.to_string()))
    }

    /// The server key of `host` in `slot`, if the store has one.
    async fn stored_key(
        &self,
        host: &str,
        slot: KeySlot,
    ) -> Result<Option<PrivateKey>, FleetError> {
        let host = HostName::parse(host)?;
        match self.store.server_key(&host, slot).await? {
            Some(text) => Ok(Some(keys::from_text(&host, &text)?)),
            None => Ok(None),
        }
    }

    /// Removes a host's server keys, current and next (nothing, for a name that breaks the
    /// rule); a failure is logged.
    pub async fn remove_host_key(&self, host: &str) {
        if HostName::parse(host).is_err() {
            return;
        }
        if let Err(e) = self.store.remove_server_key(host, None).await {
            tracing::warn!(host, "its server key was not removed: {e}");
        }
    }

    fn link(&self, host: &str) -> Arc<tokio::sync::Mutex<Link>> {
        self.links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(host.to_string())
            .or_default()
            .clone()
    }

    /// The live connection to `host`: the one its agent made by calling home, or one dialled
    /// if there is none (or it was lost). An agent that calls home is not dialled: without a
    /// connection, it is waited for a little ([`CALL_WAIT`]), then reported not connected.
    pub async fn connect(&self, host: &Host) -> Result<Connection, FleetError> {
        if !host.enabled {
            return Err(FleetError::Disabled(host.name.clone()));
        }
        let link = self.link(&host.name);
        let deadline = tokio::time::Instant::now() + CALL_WAIT.min(self.options.dial_timeout);
        loop {
            let call = self.calls.notified();
            tokio::pin!(call);
            call.as_mut().enable();
            {
                let mut link = link.lock().await;
                if let Some(conn) = link.connection.as_ref().filter(|c| !c.is_closed()) {
                    return Ok(conn.clone());
                }
                if !host.status.calls_home {
                    break;
                }
                link.connection = None;
            }
            // With several servers, the agent may have called another one.
            if let Some(relayed) = self.relayed(host).await? {
                return Ok(relayed);
            }
            if tokio::time::timeout_at(deadline, call).await.is_err() {
                let mut link = link.lock().await;
                link.failures = link.failures.saturating_add(1);
                return Err(FleetError::NotCalledHome(host.name.clone()));
            }
        }
        let mut link = link.lock().await;
        if let Some(conn) = link.connection.as_ref().filter(|c| !c.is_closed()) {
            return Ok(conn.clone());
        }
        link.connection = None;
        if let Some((at, why, untrusted)) = &link.retry_at {
            let now = Instant::now();
            if *at > now {
                return Err(FleetError::BackingOff {
                    host: host.name.clone(),
                    last_error: why.clone(),
                    untrusted: untrusted.clone(),
                    retry_in: *at - now,
                });
            }
        }
        match self.dial(host).await {
            Ok(conn) => {
                link.failures = 0;
                link.retry_at = None;
                link.connection = Some(conn.clone());
                Ok(conn)
            }
            Err(e) => {
                link.failures = link.failures.saturating_add(1);
                let backoff = Duration::from_secs(1 << link.failures.min(9)).min(MAX_BACKOFF);
                link.retry_at = Some((
                    Instant::now() + backoff,
                    e.to_string(),
                    e.untrusted().map(Box::new),
                ));
                Err(e)
            }
        }
    }

    /// A connection to `host` through the other live server its agent called home to, if
    /// one holds its call.
    async fn relayed(&self, host: &Host) -> Result<Option<Connection>, FleetError> {
        let Some(server) = self.store.host_relay(&host.name).await? else {
            return Ok(None);
        };
        let Some(key) = &host.trust.agent_key else {
            return Err(FleetError::NoAgentKey(host.name.clone()));
        };
        let keyring = Keyring::new(self.data_dir.join(crate::store::secrets::KEY_FILE));
        let via = relay::Via::new(server, &host.name, keyring)?;
        Ok(Some(Connection::relayed(
            Arc::new(via),
            keys::parse_public(key)?,
            self.options.limits,
        )))
    }

    /// A new otto channel on `host`'s agent for another server, on the connection the agent
    /// made by calling home here: `NotCalledHome` when there is none now (nothing is dialled
    /// for another server).
    pub async fn channel_for_relay(&self, host: &str) -> Result<OpenChannel, FleetError> {
        let link = self
            .links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(host)
            .cloned()
            .ok_or_else(|| FleetError::NotCalledHome(host.to_owned()))?;
        let conn = link
            .lock()
            .await
            .connection
            .clone()
            .filter(|c| c.called_home() && !c.is_closed())
            .ok_or_else(|| FleetError::NotCalledHome(host.to_owned()))?;
        conn.open_for_relay()
            .await
            .map_err(|e| FleetError::Client(host.to_owned(), e))
    }

    /// How many hosts this fleet failed to connect to at its last try (unreachable, refused,
    /// another agent key than the pinned one, none pinned), and has not reached since.
    pub async fn unreached(&self) -> usize {
        let links: Vec<_> = self
            .links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        let mut unreached = 0;
        for link in links {
            unreached += usize::from(link.lock().await.failures > 0);
        }
        unreached
    }

    /// Whether this fleet failed to connect to `host` at its last try (as for
    /// [`Fleet::unreached`]), and has not reached it since: `Some`, with why its agent is not
    /// trusted when that was why.
    pub async fn unreached_as(&self, host: &str) -> Option<Option<Untrusted>> {
        let link = self
            .links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(host)
            .cloned()?;
        let link = link.lock().await;
        (link.failures > 0).then(|| {
            link.retry_at
                .as_ref()
                .and_then(|(_, _, untrusted)| untrusted.as_deref().cloned())
        })
    }

    /// After `error` on `conn`: if the agent missed a deadline, drops the kept connection to
    /// `host` (when it is still `conn`), so the next use dials again instead of waiting on it.
    pub async fn failed(&self, host: &str, conn: &Connection, error: &ClientError) {
        if !error.missed_deadline() {
            return;
        }
        let link = self.link(host);
        let mut link = link.lock().await;
        if link.connection.as_ref().is_some_and(|c| c.same(conn)) {
            link.connection = None;
            tracing::debug!(host, "connection dropped: {error}");
        }
    }

    /// Drops the cached connection to `host` (after its keys changed, say).
    pub async fn forget(&self, host: &str) {
        let link = self.link(host);
        let mut link = link.lock().await;
        *link = Link::default();
    }

    /// Keeps `conn`, a connection the agent of `host` made by calling home (authenticated,
    /// its key the pinned one), as the host's connection, replacing any other; from now on
    /// the host is not dialled (recorded in the store).
    pub async fn called_home(&self, host: &Host, conn: Connection) -> Result<(), FleetError> {
        if !host.status.calls_home {
            self.store.set_calls_home(&host.name).await?;
        }
        // The server its agent called looks after it (with several servers on one database).
        self.store.take_host(&host.name).await?;
        let link = self.link(&host.name);
        let mut link = link.lock().await;
        if let Some(old) = link.connection.replace(conn) {
            old.close().await;
        }
        link.failures = 0;
        link.retry_at = None;
        drop(link);
        self.calls.notify_waiters();
        Ok(())
    }

    /// The host whose pinned agent key is `key`, if any (a pending key is not pinned).
    pub async fn host_by_agent_key(&self, key: &PublicKey) -> Result<Option<Host>, FleetError> {
        // Keys are pinned in the one OpenSSH form `keys::to_openssh` gives.
        match self.store.host_by_agent_key(&keys::to_openssh(key)).await? {
            Some(name) => Ok(Some(self.store.host(&name).await?)),
            None => Ok(None),
        }
    }

    /// Dials `host` with its server key; when the agent refuses that key and a rotation left
    /// a next one unanswered (the agent took it, its answer was lost), with the next key, which
    /// becomes the current one if the agent accepts it.
    async fn dial(&self, host: &Host) -> Result<Connection, FleetError> {
        // The caller's copy may predate a rotation or an approval: trust what is stored now.
        let host = &self.store.host(&host.name).await?;
        let check = match (&host.trust.agent_key, host.trust.pin_on_first_contact) {
            (Some(key), _) => AgentKeyCheck::Pinned(keys::parse_public(key)?),
            (None, true) => AgentKeyCheck::PinOnFirstContact,
            (None, false) => return Err(FleetError::NoAgentKey(host.name.clone())),
        };
        let mut dial = Dial {
            address: host.address.clone(),
            port: host.port,
            server_key: Arc::new(self.host_key(&host.name).await?),
            agent_key: check.clone(),
            timeout: self.options.dial_timeout,
            limits: self.options.limits,
        };
        let mut result = {
            let _permit = self.dials.acquire().await;
            Connection::connect(&dial).await
        };
        if let Err(ClientError::AuthRejected) = result
            && let Some(next) = self.stored_key(&host.name, KeySlot::Next).await?
        {
            let fingerprint = keys::fingerprint(next.public_key());
            dial.server_key = Arc::new(next);
            result = {
                let _permit = self.dials.acquire().await;
                Connection::connect(&dial).await
            };
            if result.is_ok() {
                self.store.promote_server_key(&host.name).await?;
                self.store
                    .log(&NewEvent {
                        actor: None,
                        host: Some(host.name.clone()),
                        kind: EventKind::TrustChanged,
                        detail: format!(
                            "server key {fingerprint} of an unanswered rotation taken into use: \
                             the agent accepts only it"
                        ),
                    })
                    .await?;
                tracing::warn!(host = %host.name, "the server key of an unanswered rotation is now the current one");
            }
        }
        match result {
            Ok(conn) => {
                if let AgentKeyCheck::PinOnFirstContact = check {
                    self.store
                        .pin_agent_key(&host.name, &keys::to_openssh(conn.agent_key()))
                        .await?;
                    self.store
                        .log(&NewEvent {
                            actor: None,
                            host: Some(host.name.clone()),
                            kind: EventKind::TrustChanged,
                            detail: format!(
                                "agent key {} pinned on first contact",
                                keys::fingerprint(conn.agent_key())
                            ),
                        })
                        .await?;
                }
                tracing::debug!(host = %host.name, "connected");
                Ok(conn)
            }
            Err(ClientError::AgentKeyMismatch { presented }) => {
                let fingerprint = keys::fingerprint(&presented);
                self.store
                    .set_pending_key(&host.name, &keys::to_openssh(&presented), &fingerprint)
                    .await?;
                tracing::warn!(host = %host.name, key = %fingerprint, "agent key refused, pending approval");
                Err(FleetError::KeyRefused {
                    host: host.name.clone(),
                    presented: fingerprint,
                })
            }
            Err(e) => Err(FleetError::Client(host.name.clone(), e)),
        }
    }

    /// Rotates the keys of `host`: a new server key goes to the agent, which answers with its own
    /// new key; both are then stored (the new server key sealed in the store, the agent key
    /// pinned, the event naming `actor`) and the old connection is dropped. Returns the new
    /// agent key.
    ///
    /// The new server key is stored in the host's `next` slot before the agent is asked and
    /// made the current one after it answered, so an interrupted or unanswered rotation keeps
    /// both. Which one is used is then picked at the next dial: the current key while the agent
    /// accepts it, else the next one (then made current, and logged), so nothing is left for an
    /// administrator to do; the next rotation replaces a next key left over.
    pub async fn rotate(&self, host: &Host, actor: &str) -> Result<PublicKey, FleetError> {
        let conn = self.connect(host).await?;
        let name = HostName::parse(&host.name)?;
        let new_key = keys::generate()?;
        self.store
            .put_server_key(&name, KeySlot::Next, &keys::to_text(&new_key)?)
            .await?;
        let agent_key = match conn.rotate_identity(new_key.public_key()).await {
            Ok(key) => key,
            Err(e) if e.missed_deadline() => {
                // The agent may have rotated without its answer arriving: keep the new key
                // beside the old one, as after an interruption.
                tracing::warn!(host = %host.name, "rotation unanswered; the new server key is kept as the next one");
                self.failed(&host.name, &conn, &e).await;
                return Err(FleetError::Client(host.name.clone(), e));
            }
            Err(e) => {
                self.store
                    .remove_server_key(&name, Some(KeySlot::Next))
                    .await?;
                return Err(FleetError::Client(host.name.clone(), e));
            }
        };
        self.store.promote_server_key(&name).await?;
        self.store
            .rotated(
                &host.name,
                &keys::to_openssh(&agent_key),
                &format!(
                    "server key {}, agent key {}",
                    keys::fingerprint(new_key.public_key()),
                    keys::fingerprint(&agent_key)
                ),
                actor,
            )
            .await?;
        self.forget(&host.name).await;
        // An agent that called home calls again once its connection is closed.
        if conn.called_home() {
            conn.close().await;
        }
        // The agent keeps accepting the old server key until the new one has logged in: log
        // in with it now, so the old key stops working at once rather than at the next use.
        if let Err(e) = self.connect(host).await {
            tracing::warn!(
                host = %host.name,
                "keys rotated, but the first login with the new key failed ({e}); the agent \
                 accepts the old key until the new one has logged in"
            );
        }
        Ok(agent_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NewHost;

    #[tokio::test]
    async fn no_server_key_is_made_read_or_removed_for_a_name_outside_the_rule() {
        let top = tempfile::tempdir().unwrap();
        let fleet = Fleet::open(&top.path().join("data"), FleetOptions::default())
            .await
            .unwrap();
        assert!(matches!(
            fleet.create_host_key("../../x").await,
            Err(FleetError::BadName(_))
        ));
        assert!(matches!(
            fleet.host_key("../../x").await,
            Err(FleetError::BadName(_))
        ));
        fleet.remove_host_key("../../x").await;
        assert!(fleet.store().server_key_hosts().await.unwrap().is_empty());
        // No file is made for keys any more.
        assert!(!top.path().join("data/keys").exists());
    }

    #[tokio::test]
    async fn key_files_of_an_older_data_directory_are_moved_into_the_store_once() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().unwrap();
        let (current, next) = (keys::generate().unwrap(), keys::generate().unwrap());
        keys::save(&dir.path().join("keys/r1.key"), &current).unwrap();
        keys::save(&dir.path().join("keys/r1.key.next"), &next).unwrap();
        let fleet = Fleet::open(dir.path(), FleetOptions::default())
            .await
            .unwrap();
        assert!(!dir.path().join("keys").exists(), "the files are removed");
        let stored = fleet.host_key("r1").await.unwrap();
        assert_eq!(stored.public_key(), current.public_key());
        let stored_next = fleet
            .stored_key("r1", KeySlot::Next)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored_next.public_key(), next.public_key());
        // Sealed: the key's text is nowhere in the database file.
        drop(fleet);
        let db = std::fs::read(dir.path().join("otto.db")).unwrap();
        let text = keys::to_text(&current).unwrap();
        let marker = text.lines().nth(1).unwrap().as_bytes();
        assert!(!db.windows(marker.len()).any(|w| w == marker));

        // A file that group or others can read is refused, and left where it is.
        let loose = dir.path().join("keys/r2.key");
        keys::save(&loose, &keys::generate().unwrap()).unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            Fleet::open(dir.path(), FleetOptions::default()).await,
            Err(FleetError::Key(KeyError::NotPrivate(..)))
        ));
        assert!(loose.exists());
        // One whose slot holds another key already (another server's) is left, with a warning.
        keys::save(&loose, &keys::generate().unwrap()).unwrap();
        let again = keys::generate().unwrap();
        keys::save(&dir.path().join("keys/r1.key"), &again).unwrap();
        let fleet = Fleet::open(dir.path(), FleetOptions::default())
            .await
            .unwrap();
        assert!(dir.path().join("keys/r1.key").exists());
        assert!(!loose.exists());
        assert_eq!(
            fleet.host_key("r1").await.unwrap().public_key(),
            current.public_key()
        );
        assert_eq!(
            fleet.store().server_key_hosts().await.unwrap(),
            ["r1", "r2"]
        );
    }

    #[tokio::test]
    async fn an_unreachable_host_is_retried_only_after_its_backoff() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = Fleet::open(dir.path(), FleetOptions::default())
            .await
            .unwrap();
        // A port nothing listens on: bind, learn the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        fleet.create_host_key("gone").await.unwrap();
        fleet
            .store()
            .add_host(&NewHost {
                name: "gone".into(),
                address: "127.0.0.1".into(),
                port,
                agent_key: None,
                pin_on_first_contact: true,
            })
            .await
            .unwrap();
        let host = fleet.store().host("gone").await.unwrap();
        let first = fleet.connect(&host).await.err().unwrap();
        assert!(matches!(first, FleetError::Client(_, _)));
        let again = fleet.connect(&host).await.err().unwrap();
        match &again {
            FleetError::BackingOff { retry_in, .. } => {
                assert!(*retry_in <= Duration::from_secs(2), "{retry_in:?}")
            }
            other => panic!("expected a backoff, got {other:?}"),
        }
        // Shown beside the host's name, neither names it; alone, each names it once (issue 21:
        // `gone: gone: ssh: …`).
        for e in [first, again] {
            let (beside, alone) = (e.to_string(), e.named());
            assert!(!beside.contains("gone"), "{beside}");
            assert_eq!(alone, format!("gone: {beside}"));
            assert_eq!(crate::ops::OpsError::from(e).to_string(), alone);
        }
        // Forgetting the host (as after a key change) allows an immediate new dial.
        fleet.forget("gone").await;
        assert!(matches!(
            fleet.connect(&host).await,
            Err(FleetError::Client(_, _))
        ));
    }
}
