//! The SQLite backend: one file in the data directory, in WAL mode with full synchronous
//! commits, so a kill at any moment loses at most the writes in flight (none yet answered)
//! and never corrupts what was committed.
//!
//! The queries are plain synchronous functions over a [`Connection`], one module per subject;
//! [`Sqlite`] runs them on tokio's blocking threads, so the async threads never wait on the
//! disk. Writes go one at a time through one connection; a run's start and end, which many
//! hosts write at once, are committed in groups by a thread of their own ([`group`]): one flush
//! of the disk for all those waiting. Queries that change nothing run on a few read-only
//! connections ([`Readers`]) beside it: in WAL mode each reads the last commit while the writer
//! writes, so a page of hosts never waits for a heartbeat round's flush, and two of them run
//! at once.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode};

use crate::store::secrets::{KEY_FILE, Keyring};
use crate::store::{Result, StoreError};

mod enrollment;
mod environment;
mod events;
mod group;
mod groups;
mod hosts;
mod keys;
mod launches;
mod leases;
mod metrics;
mod runs;
mod schedules;
pub(crate) mod schema;
mod scripts;
mod sessions;
mod users;
pub(crate) mod webhooks;

#[cfg(test)]
mod tests;

pub use schema::SCHEMA_VERSION;

/// How many read-only connections [`Sqlite`] keeps: queries beyond them wait for one (without
/// holding a thread). Each has its own page cache (SQLite's default, up to 2 MB).
const READERS: usize = 4;

/// The fleet's state in one SQLite file.
pub struct Sqlite {
    db: Arc<Mutex<Connection>>,
    readers: Arc<Readers>,
    keys: Arc<Keyring>,
    writes: group::Committer,
}

/// Read-only connections to the database, each lent to one query at a time.
struct Readers {
    /// Those no query holds.
    idle: Mutex<Vec<Connection>>,
    /// One permit per connection in `idle`: a query takes one before it takes a connection.
    free: Arc<tokio::sync::Semaphore>,
}

impl Sqlite {
    /// Opens (creating and migrating) the database at `path`, and makes it owner-only. Secret
    /// variables are encrypted with the key [`KEY_FILE`] in the same directory; any stored in
    /// plain text by an older version are encrypted now.
    pub fn open(path: &Path) -> Result<Sqlite> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let keys = Keyring::new(dir.join(KEY_FILE));
        let db = connect(path)?;
        environment::seal_plain_secrets(&db, &keys)?;
        let readers = (0..READERS)
            .map(|_| connect_reader(path))
            .collect::<Result<Vec<_>>>()?;
        let db = Arc::new(Mutex::new(db));
        let writes = group::Committer::start(Arc::clone(&db))
            .map_err(|e| StoreError::Unavailable(format!("cannot start its committer: {e}")))?;
        Ok(Sqlite {
            db,
            readers: Arc::new(Readers {
                idle: Mutex::new(readers),
                free: Arc::new(tokio::sync::Semaphore::new(READERS)),
            }),
            keys: Arc::new(keys),
            writes,
        })
    }

    /// Runs `query` on the connection, on a blocking thread.
    async fn call<T, F>(&self, query: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || {
            let db = db
                .lock()
                .map_err(|_| StoreError::Unavailable("its connection's lock is poisoned".into()))?;
            query(&db)
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
    }

    /// Runs `query`, which changes nothing, on a read-only connection, on a blocking thread:
    /// it sees every write answered before it started.
    async fn read<T, F>(&self, query: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let closed = |_| StoreError::Unavailable("its read-only connections are closed".into());
        // Owned: the blocking thread gives it back, even if the caller stops waiting.
        let permit = Arc::clone(&self.readers.free)
            .acquire_owned()
            .await
            .map_err(closed)?;
        let readers = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || {
            let lent = Lent::take(readers);
            let answer = lent.run(query);
            // The connection back among the idle ones before its permit.
            drop(lent);
            drop(permit);
            answer
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
    }

    /// Runs the write `query` on the committing thread, committed together with the other
    /// writes waiting for the connection at the same time ([`group`]); answers once committed.
    /// For the frequent small writes that many hosts make at once (a run's start and end, a
    /// heartbeat's answer).
    async fn write<T, F>(&self, query: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.writes.push(group::write(query, reply));
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the write was dropped".into()))?
    }
}

/// Opens the database at `path`: WAL, full synchronous commits, foreign keys, the newest schema.
fn connect(path: &Path) -> Result<Connection> {
    let open = |source: rusqlite::Error| StoreError::Open {
        path: path.display().to_string(),
        source: source.into(),
    };
    let mut db = Connection::open(path).map_err(open)?;
    db.busy_timeout(Duration::from_secs(10)).map_err(open)?;
    let mode: String = db
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(open)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Corrupt("journal mode", mode));
    }
    // secure_delete: what a row held before (a secret before it was encrypted) is zeroed.
    db.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;",
    )
    .map_err(open)?;
    schema::migrate(&mut db)?;
    // The database holds secrets (environment values marked secret): owner only.
    restrict(path);
    Ok(db)
}

/// A read-only connection lent to one query, back among the idle ones when dropped (a query
/// that panics included).
struct Lent {
    db: Option<Connection>,
    readers: Arc<Readers>,
}

impl Lent {
    /// Takes an idle connection; the caller holds one of [`Readers::free`]'s permits.
    fn take(readers: Arc<Readers>) -> Lent {
        let db = readers
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        Lent { db, readers }
    }

    /// Runs `query` on the connection.
    fn run<T>(&self, query: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        match &self.db {
            Some(db) => query(db),
            None => Err(StoreError::Unavailable(
                "no read-only connection is idle".into(),
            )),
        }
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let Some(db) = self.db.take() {
            let mut idle = self
                .readers
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            idle.push(db);
        }
    }
}

/// Opens a read-only connection to the database at `path`, which [`connect`] made and migrated.
fn connect_reader(path: &Path) -> Result<Connection> {
    let open = |source: rusqlite::Error| StoreError::Open {
        path: path.display().to_string(),
        source: source.into(),
    };
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
        | rusqlite::OpenFlags::SQLITE_OPEN_URI;
    let db = Connection::open_with_flags(path, flags).map_err(open)?;
    db.busy_timeout(Duration::from_secs(10)).map_err(open)?;
    Ok(db)
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::Sql(e.into())
    }
}

/// Maps a constraint violation to "already exists".
fn exists(what: &'static str, name: &str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    let name = name.to_string();
    move |e| match e.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => StoreError::Exists(what, name),
        _ => StoreError::from(e),
    }
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
