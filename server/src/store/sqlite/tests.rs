//! The SQLite backend's tests: the query functions on a real file, and the async handle from
//! many tasks at once.

use rusqlite::Connection;

use super::{connect, environment, hosts, runs, schema, scripts, sessions, users};
use crate::model::{Attachment, NewHost, NewSession, Phase, RunEnd, Scope, Script, now_ms};
use crate::store::secrets::{KEY_FILE, Keyring, SecretError};
use crate::store::{Store, StoreError};

/// What undoes the schedules' migration, for a database made older than it.
const UNDO_SCHEDULES: &str = "DROP INDEX launches_by_schedule;
    ALTER TABLE launches DROP COLUMN schedule; DROP TABLE schedules;";

fn store() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let db = connect(&dir.path().join("otto.db")).unwrap();
    (dir, db)
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
    let (dir, db) = store();
    assert_eq!(schema::schema_version(&db).unwrap(), schema::SCHEMA_VERSION);
    hosts::add_host(&db, &host("r1")).unwrap();
    drop(db);
    let again = connect(&dir.path().join("otto.db")).unwrap();
    assert_eq!(hosts::hosts(&again).unwrap().len(), 1);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.path().join("otto.db"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_newer_schema_is_refused() {
    let (dir, db) = store();
    db.pragma_update(None, "user_version", 99).unwrap();
    drop(db);
    assert!(matches!(
        Store::open_sqlite(&dir.path().join("otto.db")),
        Err(StoreError::TooNew { found: 99, .. })
    ));
}

/// The file holds a secret encrypted, and it does not open without the key (the suite checks
/// how secrets are shown, and PostgreSQL's rows).
#[test]
fn secrets_are_stored_encrypted() {
    let (dir, db) = store();
    let keys = Keyring::new(dir.path().join(KEY_FILE));
    environment::set_env(&db, &keys, &Scope::Global, "TOKEN", "hunter2", true).unwrap();
    environment::set_env(&db, &keys, &Scope::Global, "MODE", "fast", false).unwrap();
    let stored: Vec<String> = db
        .prepare("SELECT value FROM env ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(stored[0], "fast");
    assert!(!stored[1].contains("hunter2"), "{stored:?}");
    assert_eq!(
        environment::env(&db, &keys, None).unwrap()[1].value.value,
        "hunter2"
    );

    std::fs::remove_file(dir.path().join(KEY_FILE)).unwrap();
    let lost = environment::env(&db, &keys, None).unwrap_err();
    assert!(
        matches!(lost, StoreError::Secret(SecretError::Missing(_))),
        "{lost}"
    );
}

#[tokio::test]
async fn plain_secrets_of_an_older_database_are_encrypted_when_it_is_opened() {
    let (dir, db) = store();
    // A database of schema version 3, before secrets were encrypted.
    db.execute_batch(
        "ALTER TABLE hosts DROP COLUMN calls_home; DROP INDEX launches_by_schedule; ALTER TABLE launches DROP COLUMN schedule; DROP TABLE schedules;
         ALTER TABLE runs DROP COLUMN cancelled; DROP TABLE webhooks; DROP TABLE webhook_deliveries; DROP TABLE webhook_cursor;
         DROP TABLE host_metrics; DROP TABLE fleet_metrics;
         DROP INDEX runs_by_launch; ALTER TABLE runs DROP COLUMN launch;
         ALTER TABLE runs DROP COLUMN actor;
         ALTER TABLE hosts DROP COLUMN round_trip_ms; DROP TABLE launches;
         ALTER TABLE scripts DROP COLUMN run_level;
         DROP TABLE sessions; DROP TABLE api_keys; DROP TABLE users;
         ALTER TABLE env DROP COLUMN sealed; PRAGMA user_version = 3;
         INSERT INTO env (scope, owner, name, value, secret) VALUES
           ('global', '', 'TOKEN', 'hunter2', 1), ('global', '', 'MODE', 'fast', 0);",
    )
    .unwrap();
    drop(db);
    let path = dir.path().join("otto.db");
    let store = Store::open_sqlite(&path).unwrap();
    let vars = store.env(None).await.unwrap();
    assert_eq!(vars[0].value.value, "fast");
    assert_eq!(vars[1].value.value, "hunter2");
    assert!(vars[1].value.secret);
    drop(store);
    for file in ["otto.db", "otto.db-wal"] {
        let bytes = std::fs::read(dir.path().join(file)).unwrap_or_default();
        assert!(
            !bytes.windows(7).any(|w| w == b"hunter2"),
            "{file} holds the secret"
        );
    }
    // Opened again: nothing left to encrypt, the value still opens.
    let store = Store::open_sqlite(&path).unwrap();
    assert_eq!(store.env(None).await.unwrap()[1].value.value, "hunter2");
}

#[test]
fn a_removed_host_leaves_no_variables_even_from_an_older_database() {
    let (dir, db) = store();
    let keys = Keyring::new(dir.path().join(KEY_FILE));
    for name in ["r1", "r2"] {
        hosts::add_host(&db, &host(name)).unwrap();
        let scope = Scope::Host(name.into());
        environment::set_env(&db, &keys, &scope, "MODE", "fast", false).unwrap();
    }
    hosts::remove_host(&db, "r2").unwrap();
    let owners = |db: &Connection| {
        db.prepare("SELECT owner FROM env ORDER BY owner")
            .unwrap()
            .query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .collect::<rusqlite::Result<Vec<_>>>()
            .unwrap()
    };
    assert_eq!(owners(&db), ["r1"]);

    // An older version removed the host alone: its variables are dropped on the upgrade.
    db.execute_batch(
        "INSERT INTO env (scope, owner, name, value, secret) VALUES ('host', 'gone', 'X', '1', 0);
         ALTER TABLE hosts DROP COLUMN calls_home; DROP INDEX launches_by_schedule; ALTER TABLE launches DROP COLUMN schedule;
         DROP TABLE schedules; ALTER TABLE runs DROP COLUMN cancelled;
         DROP TABLE webhooks; DROP TABLE webhook_deliveries; DROP TABLE webhook_cursor;
         DROP TABLE host_metrics; DROP TABLE fleet_metrics;
         DROP INDEX runs_by_launch; ALTER TABLE runs DROP COLUMN launch;
         ALTER TABLE runs DROP COLUMN actor;
         ALTER TABLE hosts DROP COLUMN round_trip_ms; DROP TABLE launches;
         ALTER TABLE scripts DROP COLUMN run_level;
         DROP TABLE sessions; PRAGMA user_version = 5;",
    )
    .unwrap();
    drop(db);
    let db = connect(&dir.path().join("otto.db")).unwrap();
    assert_eq!(owners(&db), ["r1"]);
}

#[test]
fn an_attachment_is_written_from_a_file_and_kept_by_the_upgrade_that_moves_its_content() {
    let (dir, db) = store();
    let script = Script::example("s", b"true");
    scripts::put_script(&db, &script, false).unwrap();
    let attachment = Attachment {
        script: "s".into(),
        path: "/x".into(),
        content: Vec::new(),
        size: 5,
        sha256: "ab".into(),
        owner: None,
        mode: 0o600,
        phase: Phase::After,
        template: false,
    };
    // The first `size` bytes of the file; a file too short is refused and leaves nothing.
    scripts::put_attachment_file(&db, &attachment, &b"hello, and more"[..]).unwrap();
    let short = scripts::put_attachment_file(
        &db,
        &Attachment {
            path: "/y".into(),
            ..attachment.clone()
        },
        &b"hel"[..],
    );
    assert!(matches!(short, Err(StoreError::Read(_))), "{short:?}");
    let stored = Attachment {
        content: b"hello".to_vec(),
        ..attachment
    };
    assert_eq!(
        scripts::attachments(&db, None).unwrap(),
        std::slice::from_ref(&stored)
    );

    // Brought again from schema 6 to the newest: the attachment stays as it was, and the
    // script, older than run levels, is read-write.
    db.execute_batch(
        "ALTER TABLE hosts DROP COLUMN calls_home; DROP INDEX launches_by_schedule; ALTER TABLE launches DROP COLUMN schedule; DROP TABLE schedules;
         ALTER TABLE runs DROP COLUMN cancelled; DROP TABLE webhooks; DROP TABLE webhook_deliveries; DROP TABLE webhook_cursor;
         DROP TABLE host_metrics; DROP TABLE fleet_metrics;
         DROP INDEX runs_by_launch; ALTER TABLE runs DROP COLUMN launch;
         ALTER TABLE runs DROP COLUMN actor;
         ALTER TABLE hosts DROP COLUMN round_trip_ms; DROP TABLE launches;
         ALTER TABLE scripts DROP COLUMN run_level;
         DROP TABLE sessions; PRAGMA user_version = 6;",
    )
    .unwrap();
    drop(db);
    let db = connect(&dir.path().join("otto.db")).unwrap();
    assert_eq!(scripts::attachments(&db, None).unwrap(), [stored]);
    assert_eq!(scripts::script(&db, "s").unwrap(), script);
}

#[test]
fn a_cancelled_run_is_kept_as_such_and_those_of_an_older_database_are_found() {
    let (dir, db) = store();
    let end = |outcome: &str, cancelled: bool| RunEnd {
        success: false,
        cancelled,
        outcome: outcome.into(),
        exit_code: None,
        elapsed: None,
        stdout: Vec::new(),
        stderr: Vec::new(),
        truncated: false,
    };
    for (outcome, cancelled) in [
        ("cancelled", true),
        ("exit 1", false),
        ("cancelled before the script started", false),
    ] {
        let id = runs::start_run(
            &db,
            &crate::store::suite::run_record("r1", "job", "01", "server"),
        )
        .unwrap();
        runs::finish_run(&db, id, &end(outcome, cancelled)).unwrap();
    }
    let cancelled = |db: &Connection| -> Vec<bool> {
        let runs = runs::find_runs(db, &crate::model::RunFilter::newest(None, 10)).unwrap();
        runs.iter().map(|r| r.cancelled).collect()
    };
    assert_eq!(cancelled(&db), [true, false, false]);
    // A database from before the column (version 13 added it): its cancelled runs are told
    // by their outcome.
    let before = 12;
    db.execute_batch(&format!(
        "{} ALTER TABLE hosts DROP COLUMN calls_home; {UNDO_SCHEDULES} ALTER TABLE runs DROP COLUMN cancelled; PRAGMA user_version = {before};",
        schema::UNDO_LAUNCH_RELAY
    ))
    .unwrap();
    drop(db);
    let db = connect(&dir.path().join("otto.db")).unwrap();
    assert_eq!(cancelled(&db), [true, false, true]);
}

#[test]
fn session_ids_of_an_older_database_skip_those_it_used() {
    let (dir, db) = store();
    let user = crate::model::NewUser {
        name: "carol".into(),
        password_hash: "x".into(),
        permissions: crate::model::Permissions::default(),
    };
    users::add_user(&db, &user).unwrap();
    let add = |db: &Connection, n: u32| {
        let new = NewSession {
            user: "carol".into(),
            hash: format!("h{n}"),
            csrf_hash: format!("c{n}"),
            expires: now_ms() + 3_600_000,
        };
        sessions::add_session(db, &new).unwrap()
    };
    add(&db, 1);
    // A database of schema 11, whose sessions reused ids: upgraded, it skips the ids its
    // table and its event log hold.
    db.execute_batch(schema::UNDO_LAUNCH_RELAY).unwrap();
    db.execute_batch(
        "DROP TABLE sessions;
         CREATE TABLE sessions (
             id INTEGER PRIMARY KEY,
             user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
             hash TEXT NOT NULL UNIQUE, csrf_hash TEXT NOT NULL,
             created INTEGER NOT NULL, expires INTEGER NOT NULL);
         CREATE INDEX sessions_by_user ON sessions (user, id);
         INSERT INTO sessions VALUES (3, 'carol', 'old', 'old', 0, 9999999999999);
         INSERT INTO events (at, kind, detail) VALUES (0, 'signed-in', 'carol signed in (session 41)');
         INSERT INTO events (at, kind, detail) VALUES (0, 'signed-in', 'carol signed in (session 9)');
         ALTER TABLE hosts DROP COLUMN calls_home; ALTER TABLE runs DROP COLUMN cancelled;
         DROP INDEX launches_by_schedule; ALTER TABLE launches DROP COLUMN schedule;
         DROP TABLE schedules; PRAGMA user_version = 11;",
    )
    .unwrap();
    drop(db);
    let db = connect(&dir.path().join("otto.db")).unwrap();
    let found = sessions::session_by_hash(&db, "old").unwrap().unwrap().0;
    assert_eq!(found.id, 3, "kept");
    assert_eq!(add(&db, 2), 42);
}

/// Reads go to the read-only connections: one answers while the writer's connection is held
/// in the middle of a transaction (as during a commit's flush), from the last commit; more
/// reads at once than there are connections all answer; a write answered before a read is
/// in what it reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_answer_while_the_writer_is_busy() {
    use crate::store::HostStore;

    let dir = tempfile::tempdir().unwrap();
    let sqlite = std::sync::Arc::new(super::Sqlite::open(&dir.path().join("otto.db")).unwrap());
    sqlite.add_host(&host("r1")).await.unwrap();

    let writer = std::sync::Arc::clone(&sqlite.db);
    let (held, holding) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let busy = std::thread::spawn(move || {
        let db = writer.lock().unwrap();
        db.execute_batch("BEGIN IMMEDIATE").unwrap();
        hosts::add_host(&db, &host("uncommitted")).unwrap();
        held.send(()).unwrap();
        released.recv().unwrap();
        db.execute_batch("ROLLBACK").unwrap();
    });
    holding.recv().unwrap();
    let reads: Vec<_> = (0..3 * super::READERS)
        .map(|_| {
            let sqlite = std::sync::Arc::clone(&sqlite);
            tokio::spawn(async move { sqlite.hosts().await })
        })
        .collect();
    let mut answers = Vec::new();
    for read in reads {
        answers.push(tokio::time::timeout(std::time::Duration::from_secs(10), read).await);
    }
    release.send(()).unwrap();
    busy.join().unwrap();
    for answer in answers {
        let read = answer.expect("a read waited for the writer");
        let names: Vec<_> = read.unwrap().unwrap().into_iter().map(|h| h.name).collect();
        assert_eq!(names, ["r1"]);
    }

    sqlite.add_host(&host("r2")).await.unwrap();
    assert_eq!(sqlite.hosts().await.unwrap().len(), 2);
    assert_eq!(sqlite.host("r2").await.unwrap().name, "r2");
}
