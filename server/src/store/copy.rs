//! Copying a fleet's state from an SQLite data directory into a new PostgreSQL database, to
//! move a server from the [`sqlite`](super::sqlite) backend to the [`postgres`](super::postgres)
//! one: [`copy_sqlite_to_postgres`].
//!
//! Every table is copied as stored, row for row, in one PostgreSQL transaction: the target
//! holds the whole fleet or, on any error, nothing. Flags stored as SQLite integers become
//! booleans; an attachment's content, one blob in SQLite, becomes its `attachment_pieces`
//! (read from SQLite and written a piece at a time, never whole in memory); ids are kept, and
//! each id's sequence is then set past the largest copied (or handed out by SQLite's
//! `AUTOINCREMENT`), so that PostgreSQL never hands out an id SQLite already used.
//!
//! Secret variables stay sealed as they are: the PostgreSQL server must be given the same
//! secrets key file as the SQLite data directory's ([`secrets::KEY_FILE`]). The copy refuses
//! to start unless every sealed value opens with the key file it is given.

use std::fmt;
use std::path::{Path, PathBuf};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::mpsc;
use tokio_postgres::types::ToSql;

use super::StoreError;
use super::postgres::{self, Postgres};
use super::secrets::{self, Keyring, SecretError, server_key_label, variable_label};
use super::sqlite::SCHEMA_VERSION;
use super::sqlite::Sqlite;

/// The size of an attachment's pieces in PostgreSQL (the last one may be shorter).
const PIECE: usize = 1 << 20;

/// How many rows or pieces wait between the SQLite reader and the PostgreSQL writer at most.
const QUEUE: usize = 16;

/// Why a copy failed; nothing was written to PostgreSQL then.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// Opening a database, or a statement, failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The SQLite database could not be read.
    #[error("SQLite database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// Why.
        source: rusqlite::Error,
    },
    /// The SQLite database's schema is newer than this program's.
    #[error(
        "SQLite database {path} has schema version {found}; this otto-server knows up to {known}: copy it with a newer otto-server"
    )]
    TooNew {
        /// The database file.
        path: String,
        /// Its version.
        found: i64,
        /// The newest this program knows.
        known: i64,
    },
    /// The PostgreSQL database already holds a fleet (or part of one).
    #[error(
        "PostgreSQL database {url} is not empty (its table {table} has rows): copy into a new, empty database"
    )]
    NotEmpty {
        /// The database's URL, without its password.
        url: String,
        /// The first table found with rows.
        table: &'static str,
    },
    /// A statement on PostgreSQL failed.
    #[error("PostgreSQL database {url}: {source}")]
    Postgres {
        /// The database's URL, without its password.
        url: String,
        /// Why.
        source: tokio_postgres::Error,
    },
    /// A stored value does not fit its PostgreSQL column.
    #[error("{table}.{column} holds {found}, which does not fit its PostgreSQL column")]
    Value {
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
        /// The value, as far as it can be shown.
        found: String,
    },
    /// A sealed secret does not open with the key file given.
    #[error(
        "{0}; the PostgreSQL server must use the secrets key the SQLite database's secrets were sealed with (its data directory's {key})",
        key = secrets::KEY_FILE
    )]
    Key(#[source] SecretError),
    /// The task reading the SQLite database failed.
    #[error("the copy's SQLite reader failed: {0}")]
    Reader(String),
}

/// Shorthand for this module's results.
pub type Result<T> = std::result::Result<T, CopyError>;

/// What a copy copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// The rows copied, by table, in the order they were copied (every table, also those
    /// empty).
    pub tables: Vec<(&'static str, u64)>,
    /// The bytes of attachments' content copied.
    pub attachment_bytes: u64,
    /// How many secret variables were copied sealed.
    pub sealed_secrets: u64,
    /// How many server keys were copied sealed (each slot counts).
    pub server_keys: u64,
    /// The secrets key file they open with, which the PostgreSQL server must use.
    pub key_file: PathBuf,
    /// The schema version the SQLite database was migrated from before the copy, if it was
    /// older than this program's.
    pub migrated_from: Option<i64>,
}

impl CopyReport {
    /// The rows copied of `table` (0 for a table not copied).
    pub fn rows(&self, table: &str) -> u64 {
        self.tables
            .iter()
            .find(|(name, _)| *name == table)
            .map_or(0, |(_, rows)| *rows)
    }
}

impl fmt::Display for CopyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(version) = self.migrated_from {
            writeln!(
                f,
                "The SQLite database was first brought from schema version {version} to {SCHEMA_VERSION}."
            )?;
        }
        for (table, rows) in &self.tables {
            writeln!(f, "{table:<18} {rows:>10} rows")?;
        }
        writeln!(f, "Attachments' content: {} bytes.", self.attachment_bytes)?;
        if self.sealed_secrets + self.server_keys > 0 {
            writeln!(
                f,
                "{} secret variables and {} server keys were copied encrypted: every server on the PostgreSQL database must use the secrets key {} (copy it into each one's data directory, mode 0600).",
                self.sealed_secrets,
                self.server_keys,
                self.key_file.display()
            )?;
        }
        Ok(())
    }
}

/// What a column holds in PostgreSQL, and so how its SQLite value is converted.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// `TEXT`.
    Text,
    /// `BYTEA`, from a blob (or text).
    Bytes,
    /// `INTEGER`.
    Int,
    /// `SMALLINT`.
    SmallInt,
    /// `BIGINT`.
    BigInt,
    /// `BOOLEAN`, from an integer (0 is false).
    Bool,
    /// `DOUBLE PRECISION`.
    Real,
}

use Kind::{BigInt, Bool, Bytes, Int, Real, SmallInt, Text};

/// A table copied: its name in both databases, its columns (PostgreSQL's name, the SQLite
/// expression that reads it, its kind), and whether its `id` is an identity.
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, &'static str, Kind)],
    identity: bool,
}

/// Every table of schema version [`SCHEMA_VERSION`] (the same in both databases), parents
/// before the tables that refer to them. An attachment's content is not among its columns:
/// it is copied into `attachment_pieces` beside the row.
const TABLES: &[Table] = &[
    Table {
        name: "hosts",
        columns: &[
            ("name", "name", Text),
            ("address", "address", Text),
            ("port", "port", Int),
            ("enabled", "enabled", Bool),
            ("agent_key", "agent_key", Text),
            ("pin_first", "pin_first", Bool),
            ("pending_key", "pending_key", Text),
            ("last_rotation", "last_rotation", BigInt),
            ("reachable", "reachable", SmallInt),
            ("last_seen", "last_seen", BigInt),
            ("agent_version", "agent_version", Text),
            ("facts", "facts", Text),
            ("last_error", "last_error", Text),
            ("round_trip_ms", "round_trip_ms", Real),
            ("calls_home", "calls_home", Bool),
        ],
        identity: false,
    },
    Table {
        name: "groups",
        columns: &[("name", "name", Text)],
        identity: false,
    },
    Table {
        name: "host_groups",
        columns: &[("host", "host", Text), ("grp", "grp", Text)],
        identity: false,
    },
    Table {
        name: "scripts",
        columns: &[
            ("name", "name", Text),
            ("interpreter", "interpreter", Text),
            ("body", "body", Bytes),
            ("run_as_uid", "run_as_uid", BigInt),
            ("run_as_gid", "run_as_gid", BigInt),
            ("working_dir", "working_dir", Text),
            ("timeout_secs", "timeout_secs", BigInt),
            ("after_run", "after_run", Text),
            ("run_level", "run_level", Text),
        ],
        identity: false,
    },
    Table {
        name: "group_scripts",
        columns: &[("grp", "grp", Text), ("script", "script", Text)],
        identity: false,
    },
    Table {
        name: "attachments",
        columns: &[
            ("script", "script", Text),
            ("path", "path", Text),
            ("sha256", "sha256", Text),
            ("size", "length(content)", BigInt),
            ("owner_uid", "owner_uid", BigInt),
            ("owner_gid", "owner_gid", BigInt),
            ("mode", "mode", BigInt),
            ("phase", "phase", Text),
            ("template", "template", Bool),
        ],
        identity: false,
    },
    Table {
        name: "env",
        columns: &[
            ("scope", "scope", Text),
            ("owner", "owner", Text),
            ("name", "name", Text),
            ("value", "value", Text),
            ("secret", "secret", Bool),
            ("sealed", "sealed", Bool),
        ],
        identity: false,
    },
    Table {
        name: "runs",
        columns: &[
            ("id", "id", BigInt),
            ("host", "host", Text),
            ("what", "what", Text),
            ("action", "action", Text),
            ("started", "started", BigInt),
            ("finished", "finished", BigInt),
            ("success", "success", Bool),
            ("outcome", "outcome", Text),
            ("exit_code", "exit_code", Int),
            ("elapsed_ms", "elapsed_ms", BigInt),
            ("stdout", "stdout", Bytes),
            ("stderr", "stderr", Bytes),
            ("truncated", "truncated", Bool),
            ("owner", "owner", Text),
            ("cancelled", "cancelled", Bool),
            ("actor", "actor", Text),
            ("launch", "launch", BigInt),
        ],
        identity: true,
    },
    Table {
        name: "events",
        columns: &[
            ("id", "id", BigInt),
            ("at", "at", BigInt),
            ("host", "host", Text),
            ("kind", "kind", Text),
            ("detail", "detail", Text),
            ("actor", "actor", Text),
        ],
        identity: true,
    },
    Table {
        name: "users",
        columns: &[
            ("name", "name", Text),
            ("password_hash", "password_hash", Text),
            ("permissions", "permissions", Text),
            ("disabled", "disabled", Bool),
            ("created", "created", BigInt),
        ],
        identity: false,
    },
    Table {
        name: "api_keys",
        columns: &[
            ("id", "id", BigInt),
            ("\"user\"", "\"user\"", Text),
            ("hash", "hash", Text),
            ("permissions", "permissions", Text),
            ("created", "created", BigInt),
            ("expires", "expires", BigInt),
            ("revoked", "revoked", BigInt),
        ],
        identity: true,
    },
    Table {
        name: "sessions",
        columns: &[
            ("id", "id", BigInt),
            ("\"user\"", "\"user\"", Text),
            ("hash", "hash", Text),
            ("csrf_hash", "csrf_hash", Text),
            ("created", "created", BigInt),
            ("expires", "expires", BigInt),
        ],
        identity: true,
    },
    Table {
        name: "launches",
        columns: &[
            ("id", "id", BigInt),
            ("actor", "actor", Text),
            ("job", "job", Text),
            ("hosts", "hosts", Text),
            ("started", "started", BigInt),
            ("finished", "finished", BigInt),
            ("last_event", "last_event", Text),
            ("schedule", "schedule", BigInt),
            ("level", "level", Text),
            ("request", "request", Text),
        ],
        identity: true,
    },
    Table {
        name: "schedules",
        columns: &[
            ("id", "id", BigInt),
            ("name", "name", Text),
            ("cron", "cron", Text),
            ("time_zone", "time_zone", Text),
            ("enabled", "enabled", Bool),
            ("run", "run", Text),
            ("next_due", "next_due", BigInt),
            ("created", "created", BigInt),
        ],
        identity: true,
    },
    Table {
        name: "enrollment_tokens",
        columns: &[
            ("id", "id", BigInt),
            ("hash", "hash", Text),
            ("note", "note", Text),
            ("uses", "uses", BigInt),
            ("used", "used", BigInt),
            ("expires", "expires", BigInt),
            ("groups", "groups", Text),
            ("revoked", "revoked", Bool),
            ("created_by", "created_by", Text),
            ("created", "created", BigInt),
            ("last_used", "last_used", BigInt),
        ],
        identity: true,
    },
    Table {
        name: "enrollment_rules",
        columns: &[
            ("id", "id", BigInt),
            ("position", "position", BigInt),
            ("clauses", "clauses", Text),
            ("groups", "groups", Text),
            ("trust", "trust", Bool),
            ("created_by", "created_by", Text),
            ("created", "created", BigInt),
        ],
        identity: true,
    },
    Table {
        name: "enrollments",
        columns: &[
            ("host", "host", Text),
            ("properties", "properties", Text),
            ("at", "at", BigInt),
        ],
        identity: false,
    },
    Table {
        name: "server_keys",
        columns: &[
            ("host", "host", Text),
            ("slot", "slot", Text),
            ("sealed", "sealed", Text),
        ],
        identity: false,
    },
    Table {
        name: "webhooks",
        columns: &[
            ("id", "id", BigInt),
            ("url", "url", Text),
            ("events", "events", Text),
            ("secret", "secret", Text),
            ("created", "created", BigInt),
        ],
        identity: true,
    },
    Table {
        name: "webhook_deliveries",
        columns: &[
            ("id", "id", BigInt),
            ("webhook", "webhook", BigInt),
            ("event", "event", BigInt),
            ("kind", "kind", Text),
            ("body", "body", Text),
            ("status", "status", Text),
            ("attempts", "attempts", Int),
            ("code", "code", Int),
            ("error", "error", Text),
            ("created", "created", BigInt),
            ("next", "next", BigInt),
        ],
        identity: true,
    },
    Table {
        name: "host_metrics",
        columns: &[
            ("host", "host", Text),
            ("at", "at", BigInt),
            ("span", "span", BigInt),
            ("samples", "samples", BigInt),
            ("rtt_sum", "rtt_sum", Real),
            ("rtt_max", "rtt_max", Real),
            ("load_sum", "load_sum", BigInt),
            ("flash_free_min", "flash_free_min", BigInt),
        ],
        identity: false,
    },
    Table {
        name: "fleet_metrics",
        columns: &[
            ("at", "at", BigInt),
            ("span", "span", BigInt),
            ("hosts", "hosts", BigInt),
            ("reachable_min", "reachable_min", BigInt),
            ("reachable_max", "reachable_max", BigInt),
            ("succeeded", "succeeded", BigInt),
            ("failed", "failed", BigInt),
            ("cancelled", "cancelled", BigInt),
        ],
        identity: false,
    },
];

/// A value ready to be bound to a PostgreSQL statement.
type Param = Box<dyn ToSql + Send + Sync>;

/// What the SQLite reader hands the PostgreSQL writer.
enum Item {
    /// A row of table `TABLES[.0]`, its values in the order of its columns.
    Row(usize, Vec<Param>),
    /// A piece of an attachment's content, `seq` counting from 0.
    Piece {
        script: String,
        path: String,
        seq: i32,
        data: Vec<u8>,
    },
}

/// What the reader found beside the rows.
struct Read {
    /// The schema version the file was migrated from, if it was older.
    migrated_from: Option<i64>,
    /// The largest id SQLite's `AUTOINCREMENT` handed out, by table (ids of rows since
    /// removed included).
    sequences: Vec<(String, i64)>,
    /// How many sealed secrets there are (each opened with the key file).
    sealed: u64,
    /// How many server keys there are (each opened with the key file).
    server_keys: u64,
}

/// Copies the fleet's state from the SQLite database `sqlite_db` (normally `otto.db` of a
/// data directory) into the PostgreSQL database at `url`, which must be empty; what was
/// copied, table by table.
///
/// - The SQLite database is read in one read transaction of a read-only connection: a
///   consistent snapshot, even while a server still uses it (stop it first, so that nothing
///   it writes later is missed). A database of an older schema version is first migrated to
///   this program's, as any command of this otto-server would ([`Sqlite::open`]); one newer
///   is refused.
/// - The PostgreSQL database is opened with [`Postgres::open`], which makes its schema; the
///   copy then takes its own connection and, in one transaction, locks every table against
///   writers, refuses a database that holds any row ([`CopyError::NotEmpty`]: a second copy
///   into the same database is refused), copies each table ([`TABLES`] order) and sets each
///   id's sequence past the largest id copied (or handed out by SQLite's `AUTOINCREMENT`, for
///   the tables that have it), so ids are never reused. On any error nothing is committed.
/// - Secret variables are copied sealed, as stored: `key_file` must be the key they were
///   sealed with (the SQLite data directory's [`secrets::KEY_FILE`], or a copy of it), and
///   the PostgreSQL server must be started with that key file. Every sealed value is opened
///   with `key_file` before the copy commits; one that does not open fails it
///   ([`CopyError::Key`]).
pub async fn copy_sqlite_to_postgres(
    sqlite_db: &Path,
    url: &str,
    key_file: PathBuf,
) -> Result<CopyReport> {
    let shown = postgres::redact(url);
    let pg = |source| CopyError::Postgres {
        url: shown.clone(),
        source,
    };
    drop(Postgres::open(url, key_file.clone()).await?);
    let config: tokio_postgres::Config = url.parse().map_err(pg)?;
    let (mut client, connection) = config.connect(tokio_postgres::NoTls).await.map_err(pg)?;
    let connection = tokio::spawn(connection);
    let tx = client.transaction().await.map_err(pg)?;
    let names: Vec<&str> = TABLES
        .iter()
        .map(|t| t.name)
        .chain(["attachment_pieces"])
        .collect();
    tx.batch_execute(&format!(
        "LOCK TABLE {} IN EXCLUSIVE MODE",
        names.join(", ")
    ))
    .await
    .map_err(pg)?;
    for &name in &names {
        let sql = format!("SELECT EXISTS (SELECT 1 FROM {name})");
        let full: bool = tx.query_one(&sql, &[]).await.map_err(pg)?.get(0);
        if full {
            return Err(CopyError::NotEmpty {
                url: shown.clone(),
                table: name,
            });
        }
    }

    let (send, mut receive) = mpsc::channel(QUEUE);
    let reader = {
        let (path, key_file) = (sqlite_db.to_path_buf(), key_file.clone());
        tokio::task::spawn_blocking(move || read(&path, &key_file, &send))
    };
    let mut statements = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let columns: Vec<&str> = table.columns.iter().map(|c| c.0).collect();
        let places: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            table.name,
            columns.join(", "),
            places.join(", ")
        );
        statements.push(tx.prepare(&sql).await.map_err(pg)?);
    }
    let piece = tx
        .prepare("INSERT INTO attachment_pieces (script, path, seq, data) VALUES ($1, $2, $3, $4)")
        .await
        .map_err(pg)?;
    let mut rows = vec![0u64; TABLES.len()];
    let mut attachment_bytes = 0u64;
    while let Some(item) = receive.recv().await {
        match item {
            Item::Row(table, values) => {
                let (Some(statement), Some(count)) = (statements.get(table), rows.get_mut(table))
                else {
                    return Err(CopyError::Reader(format!("no table {table}")));
                };
                let values: Vec<&(dyn ToSql + Sync)> =
                    values.iter().map(|v| &**v as &(dyn ToSql + Sync)).collect();
                tx.execute(statement, &values).await.map_err(pg)?;
                *count += 1;
            }
            Item::Piece {
                script,
                path,
                seq,
                data,
            } => {
                tx.execute(&piece, &[&script, &path, &seq, &data])
                    .await
                    .map_err(pg)?;
                attachment_bytes += u64::try_from(data.len()).unwrap_or(u64::MAX);
            }
        }
    }
    let read = reader
        .await
        .map_err(|e| CopyError::Reader(e.to_string()))??;

    for table in TABLES.iter().filter(|t| t.identity) {
        let copied: Option<i64> = tx
            .query_one(&format!("SELECT max(id) FROM {}", table.name), &[])
            .await
            .map_err(pg)?
            .get(0);
        let handed_out = read
            .sequences
            .iter()
            .find(|(name, _)| name == table.name)
            .map(|(_, seq)| *seq);
        let last = copied.into_iter().chain(handed_out).max().unwrap_or(0);
        if last > 0 {
            tx.execute(
                "SELECT setval(pg_get_serial_sequence($1, 'id'), $2)",
                &[&table.name, &last],
            )
            .await
            .map_err(pg)?;
        }
    }
    // The events copied have been matched against the webhooks already (or came before them).
    tx.execute(
        "UPDATE webhook_cursor SET last_event = (SELECT coalesce(max(id), 0) FROM events)",
        &[],
    )
    .await
    .map_err(pg)?;
    tx.commit().await.map_err(pg)?;
    drop(client);
    let _ = connection.await;
    Ok(CopyReport {
        tables: TABLES.iter().map(|t| t.name).zip(rows).collect(),
        attachment_bytes,
        sealed_secrets: read.sealed,
        server_keys: read.server_keys,
        key_file,
        migrated_from: read.migrated_from,
    })
}

/// Reads every table of the SQLite database at `path` (migrating it first when older) in one
/// read transaction, handing each row and attachment piece to `send`; checks that every
/// sealed secret opens with `key_file`. Stops early, without error, when the writer is gone
/// (it failed, and says why).
fn read(path: &Path, key_file: &Path, send: &mpsc::Sender<Item>) -> Result<Read> {
    let shown = path.display().to_string();
    let sql = |source| CopyError::Sqlite {
        path: shown.clone(),
        source,
    };
    let open = || {
        let db = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql)?;
        db.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sql)?;
        let version: i64 = db
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql)?;
        Ok::<_, CopyError>((db, version))
    };
    let (mut db, version) = open()?;
    if version > SCHEMA_VERSION {
        return Err(CopyError::TooNew {
            path: shown.clone(),
            found: version,
            known: SCHEMA_VERSION,
        });
    }
    let mut migrated_from = None;
    if version < SCHEMA_VERSION {
        drop(db);
        drop(Sqlite::open(path)?);
        migrated_from = Some(version);
        db = open()?.0;
    }
    let tx = db.unchecked_transaction().map_err(sql)?;
    let keys = Keyring::new(key_file.to_path_buf());
    let (mut sealed, mut server_keys) = (0, 0);
    for (index, table) in TABLES.iter().enumerate() {
        let columns: Vec<&str> = table.columns.iter().map(|c| c.1).collect();
        let query = format!(
            "SELECT {}, rowid FROM {} ORDER BY rowid",
            columns.join(", "),
            table.name
        );
        let mut statement = tx.prepare(&query).map_err(sql)?;
        let mut rows = statement.query([]).map_err(sql)?;
        while let Some(row) = rows.next().map_err(sql)? {
            let mut values = Vec::with_capacity(columns.len());
            for (i, (column, _, kind)) in table.columns.iter().enumerate() {
                let value = row.get_ref(i).map_err(sql)?;
                values.push(convert(value, *kind, table.name, column)?);
            }
            if table.name == "env" && row.get::<_, bool>("sealed").map_err(sql)? {
                let (scope, owner, name, value): (String, String, String, String) = (
                    row.get("scope").map_err(sql)?,
                    row.get("owner").map_err(sql)?,
                    row.get("name").map_err(sql)?,
                    row.get("value").map_err(sql)?,
                );
                keys.open(&variable_label(&scope, &owner, &name), &value)
                    .map_err(CopyError::Key)?;
                sealed += 1;
            }
            if table.name == "server_keys" {
                let (host, slot, value): (String, String, String) = (
                    row.get("host").map_err(sql)?,
                    row.get("slot").map_err(sql)?,
                    row.get("sealed").map_err(sql)?,
                );
                keys.open(&server_key_label(&host, &slot), &value)
                    .map_err(CopyError::Key)?;
                server_keys += 1;
            }
            if send.blocking_send(Item::Row(index, values)).is_err() {
                return Ok(Read::gone());
            }
            if table.name == "attachments" {
                let (script, path): (String, String) =
                    (row.get(0).map_err(sql)?, row.get(1).map_err(sql)?);
                let size: i64 = row.get(3).map_err(sql)?;
                let rowid: i64 = row.get(columns.len()).map_err(sql)?;
                let size = usize::try_from(size).map_err(|_| CopyError::Value {
                    table: "attachments",
                    column: "content",
                    found: format!("a blob of {size} bytes"),
                })?;
                let blob = tx
                    .blob_open("main", "attachments", "content", rowid, true)
                    .map_err(sql)?;
                let (mut start, mut seq) = (0usize, 0i32);
                while start < size {
                    let mut data = vec![0; PIECE.min(size - start)];
                    blob.read_at_exact(&mut data, start).map_err(sql)?;
                    start += data.len();
                    let item = Item::Piece {
                        script: script.clone(),
                        path: path.clone(),
                        seq,
                        data,
                    };
                    if send.blocking_send(item).is_err() {
                        return Ok(Read::gone());
                    }
                    seq += 1;
                }
            }
        }
    }
    let mut statement = tx
        .prepare("SELECT name, seq FROM sqlite_sequence")
        .map_err(sql)?;
    let sequences = statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(sql)?
        .collect::<rusqlite::Result<Vec<(String, i64)>>>()
        .map_err(sql)?;
    Ok(Read {
        migrated_from,
        sequences,
        sealed,
        server_keys,
    })
}

impl Read {
    /// What a reader whose writer is gone returns (the writer's error is the copy's).
    fn gone() -> Read {
        Read {
            migrated_from: None,
            sequences: Vec::new(),
            sealed: 0,
            server_keys: 0,
        }
    }
}

/// `value` of `table.column`, stored by SQLite, as a parameter of PostgreSQL's `kind`.
fn convert(
    value: ValueRef<'_>,
    kind: Kind,
    table: &'static str,
    column: &'static str,
) -> Result<Param> {
    let wrong = |value: ValueRef<'_>| CopyError::Value {
        table,
        column,
        found: match value {
            ValueRef::Null => "NULL".into(),
            ValueRef::Integer(n) => format!("the integer {n}"),
            ValueRef::Real(x) => format!("the number {x}"),
            ValueRef::Text(t) => format!("the text {:?}", String::from_utf8_lossy(t)),
            ValueRef::Blob(b) => format!("a blob of {} bytes", b.len()),
        },
    };
    Ok(match (kind, value) {
        (Text, ValueRef::Null) => Box::new(None::<String>),
        (Bytes, ValueRef::Null) => Box::new(None::<Vec<u8>>),
        (Int, ValueRef::Null) => Box::new(None::<i32>),
        (SmallInt, ValueRef::Null) => Box::new(None::<i16>),
        (BigInt, ValueRef::Null) => Box::new(None::<i64>),
        (Bool, ValueRef::Null) => Box::new(None::<bool>),
        (Real, ValueRef::Null) => Box::new(None::<f64>),
        (Text, ValueRef::Text(t) | ValueRef::Blob(t)) => Box::new(Some(
            String::from_utf8(t.to_vec()).map_err(|_| wrong(value))?,
        )),
        (Bytes, ValueRef::Blob(b) | ValueRef::Text(b)) => Box::new(Some(b.to_vec())),
        (Int, ValueRef::Integer(n)) => Box::new(Some(i32::try_from(n).map_err(|_| wrong(value))?)),
        (SmallInt, ValueRef::Integer(n)) => {
            Box::new(Some(i16::try_from(n).map_err(|_| wrong(value))?))
        }
        (BigInt, ValueRef::Integer(n)) => Box::new(Some(n)),
        (Bool, ValueRef::Integer(n)) => Box::new(Some(n != 0)),
        (Real, ValueRef::Real(x)) => Box::new(Some(x)),
        (Real, ValueRef::Integer(n)) => {
            Box::new(Some(f64::from(i32::try_from(n).map_err(|_| wrong(value))?)))
        }
        _ => return Err(wrong(value)),
    })
}
