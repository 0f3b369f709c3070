//! The PostgreSQL backend, for several `serve` processes sharing one fleet: a pool of
//! connections to one database named by its URL, whose transactions and row locks keep what
//! they write consistent across servers as SQLite's single writer does for one.
//!
//! The queries are async functions over a [`GenericClient`] (a pooled connection or a
//! transaction), one module per subject, as in [`super::sqlite`]; their SQL is that backend's in
//! PostgreSQL's dialect, over the same tables ([`schema`]). Connections use TLS as the URL's
//! `sslmode` says ([`tls`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::store::secrets::Keyring;
use crate::store::{Result, StoreError};

mod enrollment;
mod environment;
mod events;
mod groups;
mod hosts;
mod keys;
mod launches;
pub mod leases;
pub mod local;
mod metrics;
mod runs;
mod schedules;
mod schema;
mod scripts;
mod sessions;
pub mod tls;
mod users;
mod webhooks;

pub use schema::SCHEMA_VERSION;

/// How many connections one server keeps to the database at most.
const POOL_SIZE: usize = 16;
/// The longest wait for a connection: to make one, or for one of the pool's to be free.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The fleet's state in one PostgreSQL database.
pub struct Postgres {
    pool: Pool,
    keys: Arc<Keyring>,
    /// This process's lease, renewed while the backend lives ([`leases`]).
    lease: Arc<leases::Lease>,
}

impl Postgres {
    /// Connects to the database at `url` (a `postgres://` URL or `key=value` pairs) and brings
    /// its schema to [`SCHEMA_VERSION`]. Secret variables are encrypted with the key at
    /// `key_file`. An unreachable database, or one whose schema is newer, is refused with an
    /// error that names the URL without its password.
    pub async fn open(url: &str, key_file: PathBuf) -> Result<Postgres> {
        // Every cause in the message: "TLS handshake" alone does not say what to fix.
        let open = |source: BackendError| StoreError::Open {
            path: redact(url),
            source: with_causes(&*source).into(),
        };
        let (mut config, tls) = settings(url).map_err(open)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let manager = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| open(e.into()))?;
        let mut client = pool.get().await.map_err(|e| open(e.into()))?;
        schema::migrate(&mut client).await?;
        drop(client);
        let lease = Arc::new(leases::Lease::new()?);
        lease.renew(&pool).await?;
        leases::keep(&lease, pool.clone());
        Ok(Postgres {
            pool,
            keys: Arc::new(Keyring::new(key_file)),
            lease,
        })
    }

    /// A connection of the pool.
    async fn client(&self) -> Result<Object> {
        self.pool.get().await.map_err(unavailable)
    }
}

use crate::store::BackendError;

/// How to connect to the database at `url`: the driver's settings (named `otto-server` unless
/// the URL names it) and the TLS its `sslmode` and `sslrootcert` ask for.
fn settings(
    url: &str,
) -> std::result::Result<(tokio_postgres::Config, MakeRustlsConnect), BackendError> {
    let (plain, root_cert) = tls::split_root_cert(url);
    let mut config: tokio_postgres::Config = plain.parse()?;
    let tls = tls::connector(root_cert.as_deref())?;
    if config.get_application_name().is_none() {
        config.application_name("otto-server");
    }
    Ok((config, tls))
}

/// The names in `table` (one of the fleet's tables with a `name` column: `hosts`, `groups`,
/// `scripts`, `schedules`) of the database at `url`, sorted, read over one connection made
/// within `connect` and closed after: no pool, no lease, the schema left as it is (for the
/// shell's completion of names, which reads and must not wait).
pub async fn names(url: &str, table: &'static str, connect: Duration) -> Result<Vec<String>> {
    let (mut config, tls) = settings(url).map_err(|source| StoreError::Open {
        path: redact(url),
        source,
    })?;
    config.connect_timeout(connect);
    let (client, connection) = config.connect(tls).await?;
    let driver = tokio::spawn(connection);
    let sql = format!(r#"SELECT name FROM {table} ORDER BY name COLLATE "C""#);
    let rows = client.query(&sql, &[]).await;
    // Closed cleanly: the server sees the session end, not a lost connection.
    drop(client);
    let _ = driver.await;
    rows?.iter().map(|row| Ok(row.try_get(0)?)).collect()
}

/// `e` and its causes, `: `-separated, each said once.
fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut said = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !said.contains(&text) {
            said = format!("{said}: {text}");
        }
        cause = c.source();
    }
    said
}

/// The database could not be reached for a request.
fn unavailable(e: deadpool_postgres::PoolError) -> StoreError {
    StoreError::Unavailable(with_causes(&e))
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> StoreError {
        StoreError::Sql(e.into())
    }
}

/// Maps a unique constraint's violation to "already exists".
fn exists(what: &'static str, name: &str) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    let name = name.to_string();
    move |e| match e.code() {
        Some(code) if *code == SqlState::UNIQUE_VIOLATION => StoreError::Exists(what, name),
        _ => StoreError::from(e),
    }
}

/// A stored integer that does not fit the type the model gives it.
fn corrupt(what: &'static str, value: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what, value.to_string())
}

/// `url` with its password (URL userinfo or `password=`) replaced by `***`, to be shown.
pub fn redact(url: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if let Some(at) = authority.rfind('@')
            && let Some(colon) = authority[..at].find(':')
        {
            return format!(
                "{}{}:***{}",
                &url[..scheme_end + 3],
                &authority[..colon],
                &rest[at..]
            );
        }
        return url.to_string();
    }
    match setting(url, "password") {
        Some((span, _)) => format!("{}password=***{}", &url[..span.start], &url[span.end..]),
        None => url.to_string(),
    }
}

/// Where `key`'s setting is in libpq's `key=value` form (the bytes of `key = value`), and its
/// value, unquoted.
pub(super) fn setting(text: &str, key: &str) -> Option<(std::ops::Range<usize>, String)> {
    let mut from = 0;
    while let Some(found) = text.get(from..).and_then(|rest| rest.find(key)) {
        let start = from + found;
        from = start + key.len();
        // A whole key: at the start, or after a space.
        if !text[..start].is_empty() && !text[..start].ends_with(char::is_whitespace) {
            continue;
        }
        let Some(value) = text[from..].trim_start().strip_prefix('=') else {
            continue;
        };
        let value = value.trim_start();
        let value_start = text.len() - value.len();
        let Some(quoted) = value.strip_prefix('\'') else {
            let len = value.find(char::is_whitespace).unwrap_or(value.len());
            return Some((start..value_start + len, value[..len].to_string()));
        };
        let mut unquoted = String::new();
        let mut chars = quoted.char_indices();
        let mut end = text.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => unquoted.extend(chars.next().map(|(_, c)| c)),
                '\'' => {
                    end = value_start + 1 + i + 1;
                    break;
                }
                c => unquoted.push(c),
            }
        }
        return Some((start..end, unquoted));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_hidden_in_both_forms() {
        assert_eq!(
            redact("postgres://otto:s3cret@db.example:5432/otto?sslmode=disable"),
            "postgres://otto:***@db.example:5432/otto?sslmode=disable"
        );
        assert_eq!(
            redact("postgresql://otto@db.example/otto"),
            "postgresql://otto@db.example/otto"
        );
        assert_eq!(
            redact("host=db user=otto password='a b' dbname=otto"),
            "host=db user=otto password=*** dbname=otto"
        );
        assert_eq!(redact("host=db password=x"), "host=db password=***");
    }
}
