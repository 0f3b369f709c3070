//! One suite of store tests, run against both backends: each test is an async function of a
//! fresh, empty [`Store`], and [`on_both!`] runs it on an SQLite file and on a database of a
//! private PostgreSQL cluster ([`postgres::local`]), one cluster for the whole test process.
//!
//! The tests are in one module per subject.
//!
//! Without PostgreSQL on the machine the PostgreSQL half says so and passes, unless
//! `OTTO_REQUIRE_TOOLS=1` (CI) makes that a failure.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use super::Store;
use super::postgres::local::LocalCluster;
use super::secrets::KEY_FILE;
use crate::model::{Facts, NewHost, NewRunRecord};

/// What a test's store lives in, kept until the test ends.
pub struct Held {
    _dir: tempfile::TempDir,
}

impl Held {
    /// The directory of the store's key files (`secrets.key`), and of its SQLite file.
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }
}

/// A store on a new SQLite file.
pub async fn sqlite() -> (Held, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("otto.db")).unwrap();
    (Held { _dir: dir }, store)
}

/// The process's cluster, started on first use; None (the test is skipped) when PostgreSQL is
/// not installed and `OTTO_REQUIRE_TOOLS` is unset.
pub fn cluster() -> Option<&'static LocalCluster> {
    static CLUSTER: OnceLock<Result<LocalCluster, String>> = OnceLock::new();
    match CLUSTER.get_or_init(|| LocalCluster::start().map_err(|e| e.to_string())) {
        Ok(cluster) => Some(cluster),
        Err(e) if std::env::var_os("OTTO_REQUIRE_TOOLS").is_some_and(|v| v == "1") => {
            panic!("PostgreSQL is required (OTTO_REQUIRE_TOOLS=1): {e}")
        }
        Err(e) => {
            eprintln!("skipped on PostgreSQL: {e}");
            None
        }
    }
}

/// The URL of a new, empty database of the process's cluster (see [`cluster`]).
pub async fn postgres_url() -> Option<String> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let cluster = cluster()?;
    let name = format!("t{}", NEXT.fetch_add(1, Ordering::Relaxed));
    Some(cluster.create_database(&name).await.unwrap())
}

/// A store on a new, empty PostgreSQL database (see [`cluster`]).
pub async fn postgres() -> Option<(Held, Store)> {
    let url = postgres_url().await?;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_postgres(&url, dir.path().join(KEY_FILE))
        .await
        .unwrap();
    Some((Held { _dir: dir }, store))
}

/// Runs each named `async fn(Store)` as two tests, `NAME::sqlite` and `NAME::postgres`.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let (_held, store) = crate::store::suite::sqlite().await;
                super::$name(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some((_held, store)) = crate::store::suite::postgres().await {
                    super::$name(store).await;
                }
            }
        }
    )*};
}

/// A host at a documentation address, its key pinned on first contact.
pub fn host(name: &str) -> NewHost {
    NewHost {
        name: name.into(),
        address: "192.0.2.1".into(),
        port: 12444,
        agent_key: None,
        pin_on_first_contact: true,
    }
}

/// Facts of an OpenWrt router `hostname`, with its 1-minute load (×100) and free flash (KiB).
pub fn facts(hostname: &str, load_centi: u32, flash_free_kib: u64) -> Facts {
    Facts {
        hostname: hostname.into(),
        kernel_name: "Linux".into(),
        kernel_version: "6.1".into(),
        arch: "mips".into(),
        distribution_name: "OpenWrt".into(),
        distribution_version: "23.05".into(),
        uptime_secs: 5,
        load_centi: [load_centi, 2, 3],
        mem_total_kib: 1,
        mem_available_kib: 1,
        model: "TP-Link Archer C7 v5".into(),
        big_endian: true,
        flash_total_kib: 7_680,
        flash_free_kib,
    }
}

/// A run of `what` on `host` by `actor` to record, in no launch.
pub fn run_record(host: &str, what: &str, action: &str, actor: &str) -> NewRunRecord {
    NewRunRecord {
        host: host.into(),
        what: what.into(),
        action: action.into(),
        actor: actor.into(),
        launch: None,
    }
}

#[macro_use]
mod database;
mod copy;
mod enrollment;
mod environment;
mod events;
mod groups;
mod hosts;
mod keys;
mod launches;
mod leases;
mod metrics;
mod runs;
mod schedules;
mod schema;
mod scripts;
mod sessions;
mod tls;
mod users;
mod webhooks;
