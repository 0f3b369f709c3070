//! The PostgreSQL schema: made once, shared by servers starting together, refused when newer.

use crate::store::postgres::SCHEMA_VERSION;
use crate::store::secrets::KEY_FILE;
use crate::store::{Store, StoreError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_starting_together_migrate_once_and_a_newer_schema_is_refused() {
    let Some(url) = super::postgres_url().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let (url, key) = (url.clone(), dir.path().join(KEY_FILE));
            tokio::spawn(async move { Store::open_postgres(&url, key).await.map(drop) })
        })
        .collect();
    for open in opens {
        open.await.unwrap().unwrap();
    }
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let version: i64 = client
        .query_one("SELECT version FROM otto_schema", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, SCHEMA_VERSION);
    client
        .execute("UPDATE otto_schema SET version = 99", &[])
        .await
        .unwrap();
    let refused = Store::open_postgres(&url, dir.path().join(KEY_FILE)).await;
    assert!(
        matches!(refused, Err(StoreError::TooNew { found: 99, .. })),
        "{:?}",
        refused.err()
    );
}

#[tokio::test]
async fn an_unreachable_database_is_named_without_its_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://otto:hunter2@127.0.0.1:{port}/otto");
    let dir = tempfile::tempdir().unwrap();
    let err = Store::open_postgres(&url, dir.path().join(KEY_FILE))
        .await
        .err()
        .expect("nothing listens there");
    let text = err.to_string();
    assert!(
        text.contains(&format!("postgres://otto:***@127.0.0.1:{port}/otto")),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
}
