//! A test's database reached directly, beside its [`Store`]: to write what no store method
//! writes (a run's owner that has ended), to read a value as it is stored, and to open the
//! store again as a restarted server does. [`on_both_with_database!`] runs a test of both.

use super::{Store, postgres_url};
use crate::store::secrets::KEY_FILE;

/// The database under a test's store, kept until the test ends.
pub enum Database {
    /// An SQLite file `otto.db` in this directory.
    Sqlite(tempfile::TempDir),
    /// A PostgreSQL database; its secrets key is in the directory.
    Postgres(String, tempfile::TempDir),
}

impl Database {
    /// A store on a new SQLite file, and its file.
    pub async fn sqlite() -> (Database, Store) {
        let database = Database::Sqlite(tempfile::tempdir().unwrap());
        let store = database.open().await;
        (database, store)
    }

    /// A store on a new, empty PostgreSQL database, and its database; None when the suite
    /// skips PostgreSQL ([`super::cluster`]).
    pub async fn postgres() -> Option<(Database, Store)> {
        let database = Database::Postgres(postgres_url().await?, tempfile::tempdir().unwrap());
        let store = database.open().await;
        Some((database, store))
    }

    /// A new store on the database: a server started again.
    pub async fn open(&self) -> Store {
        match self {
            Database::Sqlite(dir) => Store::open_sqlite(&dir.path().join("otto.db")).unwrap(),
            Database::Postgres(url, dir) => Store::open_postgres(url, dir.path().join(KEY_FILE))
                .await
                .unwrap(),
        }
    }

    /// Runs `sql` (statements without parameters, in both dialects) on the database.
    pub async fn execute(&self, sql: &str) {
        match self {
            Database::Sqlite(dir) => {
                let db = rusqlite::Connection::open(dir.path().join("otto.db")).unwrap();
                db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
                db.execute_batch(sql).unwrap();
            }
            Database::Postgres(url, _) => connect(url).await.batch_execute(sql).await.unwrap(),
        }
    }

    /// The one text value that the query `sql` (without parameters) selects.
    pub async fn text(&self, sql: &str) -> String {
        match self {
            Database::Sqlite(dir) => {
                let db = rusqlite::Connection::open(dir.path().join("otto.db")).unwrap();
                db.query_row(sql, [], |r| r.get(0)).unwrap()
            }
            Database::Postgres(url, _) => {
                connect(url).await.query_one(sql, &[]).await.unwrap().get(0)
            }
        }
    }
}

/// A connection of its own to the PostgreSQL database at `url`.
async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// Runs each named `async fn(Store, Database)` as two tests, `NAME::sqlite` and
/// `NAME::postgres`, as [`on_both!`] does with a test of the store alone.
macro_rules! on_both_with_database {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use crate::store::suite::database::Database;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let (database, store) = Database::sqlite().await;
                super::$name(store, database).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some((database, store)) = Database::postgres().await {
                    super::$name(store, database).await;
                }
            }
        }
    )*};
}
