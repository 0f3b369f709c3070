//! The SQLite backend: one file in the data directory, in WAL mode with full synchronous
//! commits, so a kill at any moment loses at most the writes in flight (none yet answered)
//! and never corrupts what was committed.
//!
//! The queries are plain synchronous functions over a [`Connection`], one module per subject;
//! [`Sqlite`] runs them on tokio's blocking threads, one at a time on its one connection, so
//! the async threads never wait on the disk. A run's start and end, which many hosts write at
//! once, are committed in groups by a thread of their own ([`group`]): one flush of the disk
//! for all those waiting.

use std::path::Path;
use std::sync::{Arc, Mutex};
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

/// The fleet's state in one SQLite file.
pub struct Sqlite {
    db: Arc<Mutex<Connection>>,
    keys: Arc<Keyring>,
    writes: group::Committer,
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
        let db = Arc::new(Mutex::new(db));
        let writes = group::Committer::start(Arc::clone(&db))
            .map_err(|e| StoreError::Unavailable(format!("cannot start its committer: {e}")))?;
        Ok(Sqlite {
            db,
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
