//! Copying an SQLite database into PostgreSQL ([`copy_sqlite_to_postgres`]): every item reads
//! back equal, ids continue after those SQLite used, secrets open with the same key, and a
//! copy goes only into an empty database, whole or not at all.
//!
//! The subjects whose PostgreSQL half other work brings (hosts, groups, scripts, environment,
//! runs, launches, users, sessions) are read back with plain SQL here; schedules, enrollment
//! and events through the store.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::model::{
    Attachment, Clause, EnrollHost, EventFilter, EventKind, NewApiKey, NewDelivery, NewEvent,
    NewHost, NewLaunch, NewRule, NewSchedule, NewSession, NewToken, NewUser, Permissions, Phase,
    RunEnd, RunLevel, Scope, Script, WebhookEvent, now_ms,
};
use crate::store::copy::{CopyError, copy_sqlite_to_postgres};
use crate::store::secrets::{KEY_FILE, Keyring};
use crate::store::{KeySlot, Store, StoreError};

/// A 3 MiB attachment's content: not one piece, and not a whole number of them.
/// A server key as the store keeps it (its text only matters to the fleet).
const SERVER_KEY: &str =
    "-----BEGIN OPENSSH PRIVATE KEY-----\nfor the copy test\n-----END OPENSSH PRIVATE KEY-----\n";

fn content() -> Vec<u8> {
    (0..3 * 1024 * 1024 + 123)
        .map(|i: u32| (i % 251) as u8)
        .collect()
}

/// Fills an SQLite store with one of everything; the id of the schedule removed last.
async fn fill(store: &Store) -> i64 {
    store
        .add_host(&NewHost {
            name: "r1".into(),
            address: "192.0.2.1".into(),
            port: 12444,
            agent_key: Some("ssh-ed25519 AAAAr1".into()),
            pin_on_first_contact: false,
        })
        .await
        .unwrap();
    store.add_group("lab").await.unwrap();
    store.add_group("mips").await.unwrap();
    store.set_membership("lab", "r1", true).await.unwrap();
    store.set_membership("mips", "r1", true).await.unwrap();
    store
        .put_script(&Script::example("deploy", b"echo deploy\n"), false)
        .await
        .unwrap();
    store.set_group_script("lab", "deploy", true).await.unwrap();
    let content = content();
    store
        .put_attachment(&Attachment {
            script: "deploy".into(),
            path: "/opt/app.bin".into(),
            size: content.len() as u64,
            sha256: Sha256::digest(&content)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            content,
            owner: None,
            mode: 0o755,
            phase: Phase::Before,
            template: true,
        })
        .await
        .unwrap();
    store
        .set_env(&Scope::Host("r1".into()), "TOKEN", "s3cret", true)
        .await
        .unwrap();
    store
        .set_env(&Scope::Global, "REGION", "eu", false)
        .await
        .unwrap();
    store
        .put_server_key("r1", KeySlot::Current, SERVER_KEY)
        .await
        .unwrap();
    let run = store
        .start_run(&super::run_record("r1", "deploy", "script", "cli:admin"))
        .await
        .unwrap();
    store
        .finish_run(
            run,
            &RunEnd {
                success: false,
                cancelled: false,
                outcome: "exit 3".into(),
                exit_code: Some(3),
                elapsed: Some(Duration::from_millis(1500)),
                stdout: b"out\n".to_vec(),
                stderr: vec![0xff, 0],
                truncated: true,
            },
        )
        .await
        .unwrap();
    store
        .log(&NewEvent {
            host: Some("r1".into()),
            kind: EventKind::HostChanged,
            detail: "a note".into(),
            actor: Some("cli:admin".into()),
        })
        .await
        .unwrap();
    store
        .add_user(&NewUser {
            name: "alice".into(),
            password_hash: "$argon2id$v=19$x".into(),
            permissions: Permissions::admin(),
        })
        .await
        .unwrap();
    store
        .add_api_key(&NewApiKey {
            user: "alice".into(),
            hash: "keyhash".into(),
            permissions: Permissions::default(),
            expires: Some(now_ms() + 1000),
        })
        .await
        .unwrap();
    store
        .add_session(&NewSession {
            user: "alice".into(),
            hash: "sessionhash".into(),
            csrf_hash: "csrfhash".into(),
            expires: now_ms() + 60_000,
        })
        .await
        .unwrap();
    let schedule = |name: &str| NewSchedule {
        name: name.into(),
        cron: "0 3 * * *".into(),
        time_zone: "Europe/Paris".into(),
        enabled: true,
        run: r#"{"script":"deploy","groups":["lab"]}"#.into(),
        next_due: Some(now_ms() + 3_600_000),
    };
    let nightly = store.add_schedule(&schedule("nightly")).await.unwrap();
    let launch = store
        .start_launch(&NewLaunch {
            actor: "schedule:nightly".into(),
            job: "deploy".into(),
            hosts: vec!["r1".into()],
            level: RunLevel::ReadOnly,
            request: None,
        })
        .await
        .unwrap();
    store
        .finish_launch(launch, r#"{"done":true}"#)
        .await
        .unwrap();
    store.link_launch(launch, nightly).await.unwrap();
    let hook = store
        .add_webhook(
            "http://127.0.0.1:9/",
            &[WebhookEvent::RunFailed],
            "hook secret",
        )
        .await
        .unwrap();
    let delivery = NewDelivery {
        webhook: hook.id,
        event: 1,
        kind: WebhookEvent::RunFailed,
        body: "{}".into(),
    };
    store.queue_deliveries(&[delivery], 1).await.unwrap();
    // The largest schedule id is removed: SQLite's AUTOINCREMENT still never hands it out.
    let gone = store.add_schedule(&schedule("gone")).await.unwrap();
    store.remove_schedule("gone").await.unwrap();
    store
        .add_token(&NewToken {
            hash: "tokenhash".into(),
            note: "the lab".into(),
            uses: 5,
            expires: now_ms() + 3_600_000,
            groups: vec!["lab".into()],
            created_by: "cli:admin".into(),
        })
        .await
        .unwrap();
    store
        .add_rule(&NewRule {
            position: None,
            clauses: vec![Clause {
                property: "arch".into(),
                regex: "^mips".into(),
            }],
            groups: vec!["mips".into()],
            trust: true,
            created_by: "cli:admin".into(),
        })
        .await
        .unwrap();
    store
        .enroll(&EnrollHost {
            token_hash: "tokenhash".into(),
            name: "r2".into(),
            address: "192.0.2.2".into(),
            port: 12444,
            agent_key: "ssh-ed25519 AAAAr2".into(),
            trust: false,
            groups: vec!["mips".into()],
            properties: [("arch".to_string(), "mips".to_string())].into(),
            actor: "agent".into(),
            detail: "enrolled".into(),
        })
        .await
        .unwrap()
        .unwrap();
    gone
}

/// A connection to the database at `url`, for plain SQL.
async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqlite_database_is_copied_whole_and_once() {
    let Some(url) = super::postgres_url().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("otto.db");
    let key = dir.path().join(KEY_FILE);
    let sqlite = Store::open_sqlite(&db).unwrap();
    let gone = fill(&sqlite).await;

    // A key file other than the one the secrets were sealed with: refused, nothing written.
    let other = tempfile::tempdir().unwrap();
    let other_key = other.path().join(KEY_FILE);
    Keyring::new(other_key.clone()).seal("x", "y").unwrap();
    let refused = copy_sqlite_to_postgres(&db, &url, other_key).await;
    assert!(matches!(refused, Err(CopyError::Key(_))), "{refused:?}");

    let report = copy_sqlite_to_postgres(&db, &url, key.clone())
        .await
        .unwrap();
    let expected = [
        ("hosts", 2),
        ("groups", 2),
        ("host_groups", 4),
        ("scripts", 1),
        ("group_scripts", 1),
        ("attachments", 1),
        ("env", 2),
        ("runs", 1),
        ("users", 1),
        ("api_keys", 1),
        ("sessions", 1),
        ("launches", 1),
        ("schedules", 1),
        ("enrollment_tokens", 1),
        ("enrollment_rules", 1),
        ("enrollments", 1),
        ("webhooks", 1),
        ("webhook_deliveries", 1),
    ];
    for (table, rows) in expected {
        assert_eq!(report.rows(table), rows, "{table}");
    }
    assert_eq!(report.tables.len(), 22);
    assert_eq!(report.server_keys, 1);
    assert_eq!(report.attachment_bytes, content().len() as u64);
    assert_eq!((report.sealed_secrets, &report.key_file), (1, &key));
    assert_eq!(report.migrated_from, None);
    assert!(report.to_string().contains("must use the secrets key"));

    let pg = Store::open_postgres(&url, key.clone()).await.unwrap();
    let client = connect(&url).await;
    assert_eq!(
        pg.server_key("r1", KeySlot::Current)
            .await
            .unwrap()
            .as_deref(),
        Some(SERVER_KEY),
        "the server key opens with the same key file"
    );
    // The webhook, its delivery due with its secret opened; the events copied are not told
    // again.
    assert_eq!(
        pg.webhooks().await.unwrap(),
        sqlite.webhooks().await.unwrap()
    );
    let due = pg.claim_deliveries(now_ms(), 1000, 10).await.unwrap();
    assert_eq!((due.len(), due[0].secret.as_str()), (1, "hook secret"));
    let copied: i64 = client
        .query_one("SELECT max(id) FROM events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(pg.webhook_cursor().await.unwrap(), copied);

    // Through the store: schedules, their launches, enrollment, events.
    assert_eq!(
        pg.schedules().await.unwrap(),
        sqlite.schedules().await.unwrap()
    );
    let nightly = pg.schedule("nightly").await.unwrap();
    assert_eq!(
        pg.schedule_launches(nightly.id, 10).await.unwrap(),
        sqlite.schedule_launches(nightly.id, 10).await.unwrap()
    );
    assert_eq!(pg.tokens().await.unwrap(), sqlite.tokens().await.unwrap());
    assert_eq!(pg.rules().await.unwrap(), sqlite.rules().await.unwrap());
    assert_eq!(
        pg.enrolled_properties().await.unwrap(),
        sqlite.enrolled_properties().await.unwrap()
    );
    let all = EventFilter::newest(None, 1000);
    let events = sqlite.events(&all).await.unwrap();
    assert!(events.len() >= 5, "{events:?}");
    assert_eq!(pg.events(&all).await.unwrap(), events);

    // With plain SQL: the subjects of the other stores.
    let host = client
        .query_one(
            "SELECT address, port, enabled, agent_key, pin_first, pending_key, calls_home
             FROM hosts WHERE name = 'r1'",
            &[],
        )
        .await
        .unwrap();
    let host: (
        String,
        i32,
        bool,
        Option<String>,
        bool,
        Option<String>,
        bool,
    ) = (
        host.get(0),
        host.get(1),
        host.get(2),
        host.get(3),
        host.get(4),
        host.get(5),
        host.get(6),
    );
    assert_eq!(
        host,
        (
            "192.0.2.1".into(),
            12444,
            true,
            Some("ssh-ed25519 AAAAr1".into()),
            false,
            None,
            false
        )
    );
    let pending: Option<String> = client
        .query_one("SELECT pending_key FROM hosts WHERE name = 'r2'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(pending.as_deref(), Some("ssh-ed25519 AAAAr2"));
    let memberships: String = client
        .query_one(
            "SELECT string_agg(host || ':' || grp, ' ' ORDER BY host, grp) FROM host_groups",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(memberships, "r1:lab r1:mips r2:lab r2:mips");
    let script = client
        .query_one(
            "SELECT body, interpreter, run_level, s.name = g.script
             FROM scripts s JOIN group_scripts g ON g.grp = 'lab'",
            &[],
        )
        .await
        .unwrap();
    let script: (Vec<u8>, String, String, bool) =
        (script.get(0), script.get(1), script.get(2), script.get(3));
    assert_eq!(
        script,
        (
            b"echo deploy\n".to_vec(),
            "/bin/sh".into(),
            "read-write".into(),
            true
        )
    );
    let stored = sqlite.attachments(Some("deploy")).await.unwrap().remove(0);
    let attachment = client
        .query_one(
            "SELECT a.size, a.sha256, a.mode, a.phase, a.owner_uid, a.template,
                    (SELECT count(*) FROM attachment_pieces p
                     WHERE p.script = a.script AND p.path = a.path),
                    (SELECT string_agg(p.data, ''::BYTEA ORDER BY p.seq) FROM attachment_pieces p
                     WHERE p.script = a.script AND p.path = a.path)
             FROM attachments a WHERE a.script = 'deploy' AND a.path = '/opt/app.bin'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(attachment.get::<_, i64>(0), stored.size as i64);
    assert_eq!(attachment.get::<_, String>(1), stored.sha256);
    assert_eq!(attachment.get::<_, i64>(2), 0o755);
    assert_eq!(attachment.get::<_, String>(3), "before");
    assert_eq!(attachment.get::<_, Option<i64>>(4), None);
    assert!(stored.template && attachment.get::<_, bool>(5));
    assert_eq!(attachment.get::<_, i64>(6), 4);
    assert!(attachment.get::<_, Vec<u8>>(7) == stored.content);
    let env = client
        .query(
            "SELECT scope, owner, name, value, secret, sealed FROM env ORDER BY scope",
            &[],
        )
        .await
        .unwrap();
    let (global, secret) = (&env[0], &env[1]);
    assert_eq!(
        (global.get::<_, &str>(3), global.get::<_, bool>(4)),
        ("eu", false)
    );
    assert!(secret.get::<_, bool>(4) && secret.get::<_, bool>(5));
    let sealed: &str = secret.get(3);
    assert_ne!(sealed, "s3cret");
    assert_eq!(
        Keyring::new(key.clone())
            .open("host\0r1\0TOKEN", sealed)
            .unwrap(),
        "s3cret"
    );
    let run = sqlite.runs(None, 10).await.unwrap().remove(0);
    let row = client
        .query_one(
            "SELECT id, host, success, exit_code, elapsed_ms, stdout, stderr, truncated,
                    cancelled, outcome FROM runs",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), run.id);
    assert_eq!(row.get::<_, &str>(1), "r1");
    assert_eq!(row.get::<_, Option<bool>>(2), Some(false));
    assert_eq!(row.get::<_, Option<i32>>(3), Some(3));
    assert_eq!(row.get::<_, Option<i64>>(4), Some(1500));
    assert_eq!(row.get::<_, Vec<u8>>(5), b"out\n");
    assert_eq!(row.get::<_, Vec<u8>>(6), [0xff, 0]);
    assert!(row.get::<_, bool>(7));
    assert!(!row.get::<_, bool>(8));
    assert_eq!(row.get::<_, Option<&str>>(9), Some("exit 3"));
    let user = sqlite.user("alice").await.unwrap();
    let row = client
        .query_one("SELECT permissions, disabled, created FROM users", &[])
        .await
        .unwrap();
    let permissions: Permissions = serde_json::from_str(row.get(0)).unwrap();
    assert_eq!(permissions, user.permissions);
    assert_eq!(
        (row.get::<_, bool>(1), row.get::<_, i64>(2)),
        (false, user.created)
    );
    let key_row = sqlite.api_keys(None).await.unwrap().remove(0);
    let row = client
        .query_one(
            r#"SELECT id, "user", hash, expires, revoked FROM api_keys"#,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), key_row.id);
    assert_eq!(row.get::<_, &str>(1), "alice");
    assert_eq!(row.get::<_, &str>(2), "keyhash");
    assert_eq!(row.get::<_, Option<i64>>(3), key_row.expires);
    assert_eq!(row.get::<_, Option<i64>>(4), None);
    let (session, _) = sqlite
        .session_by_hash("sessionhash")
        .await
        .unwrap()
        .unwrap();
    let id: i64 = client
        .query_one("SELECT id FROM sessions WHERE hash = 'sessionhash'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(id, session.id);

    // New ids continue after the copied ones (and after SQLite's removed schedule's).
    for table in [
        "runs",
        "events",
        "api_keys",
        "sessions",
        "launches",
        "schedules",
        "enrollment_tokens",
        "enrollment_rules",
    ] {
        let row = client
            .query_one(
                &format!(
                    "SELECT nextval(pg_get_serial_sequence('{table}', 'id')),
                            (SELECT max(id) FROM {table})"
                ),
                &[],
            )
            .await
            .unwrap();
        let (next, copied): (i64, i64) = (row.get(0), row.get(1));
        assert!(next > copied, "{table}: {next} after {copied}");
    }
    let id = pg
        .add_schedule(&NewSchedule {
            name: "later".into(),
            cron: nightly.cron.clone(),
            time_zone: nightly.time_zone.clone(),
            enabled: false,
            run: nightly.run.clone(),
            next_due: None,
        })
        .await
        .unwrap();
    assert!(id > gone, "{id} after {gone}");

    // A second copy into the same database is refused.
    let again = copy_sqlite_to_postgres(&db, &url, key).await;
    assert!(
        matches!(again, Err(CopyError::NotEmpty { table: "hosts", .. })),
        "{again:?}"
    );
    assert!(again.unwrap_err().to_string().contains("not empty"));
}

/// An SQLite database of an older schema is migrated first, then copied; one newer than this
/// program's is refused, untouched; a missing one is not made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_sqlite_database_is_migrated_and_a_newer_one_refused() {
    let Some(url) = super::postgres_url().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("otto.db");
    let key = dir.path().join(KEY_FILE);
    let store = Store::open_sqlite(&db).unwrap();
    store.add_host(&super::host("r1")).await.unwrap();
    drop(store);
    // Version 15: before hosts had `calls_home`.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(crate::store::sqlite::schema::UNDO_LAUNCH_RELAY)
        .unwrap();
    conn.execute_batch("ALTER TABLE hosts DROP COLUMN calls_home; PRAGMA user_version = 15;")
        .unwrap();
    drop(conn);
    let report = copy_sqlite_to_postgres(&db, &url, key.clone())
        .await
        .unwrap();
    assert_eq!(report.migrated_from, Some(15));
    assert_eq!(report.rows("hosts"), 1);
    assert!(report.to_string().contains("from schema version 15"));
    let client = connect(&url).await;
    let calls_home: bool = client
        .query_one("SELECT calls_home FROM hosts WHERE name = 'r1'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!calls_home);

    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let url = super::postgres_url().await.unwrap();
    let copied = copy_sqlite_to_postgres(&db, &url, key.clone()).await;
    assert!(
        matches!(copied, Err(CopyError::TooNew { found: 99, .. })),
        "{copied:?}"
    );
    assert!(matches!(
        Store::open_sqlite(&db).map(drop),
        Err(StoreError::TooNew { found: 99, .. })
    ));
    let missing = dir.path().join("none.db");
    let copied = copy_sqlite_to_postgres(&missing, &url, key).await;
    assert!(
        matches!(copied, Err(CopyError::Sqlite { .. })),
        "{copied:?}"
    );
    assert!(!missing.exists());
}
