//! TLS to the database: required and verified against the root certificate the URL names;
//! refused, with the URL named (password hidden), when the certificate is not trusted.

use crate::store::Store;
use crate::store::postgres::local::LocalCluster;
use crate::store::secrets::KEY_FILE;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_required_and_the_servers_certificate_verified() {
    if super::cluster().is_none() {
        return;
    }
    let cluster = LocalCluster::start_with_tls().unwrap();
    let url = cluster.create_database("tls").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join(KEY_FILE);

    let cert = cluster.certificate();
    let trusted = format!("{url}?sslmode=require&sslrootcert={}", cert.display());
    let store = Store::open_postgres(&trusted, key.clone()).await.unwrap();
    store.add_host(&super::host("r1")).await.unwrap();
    assert_eq!(store.hosts().await.unwrap().len(), 1);

    let untrusted = format!("{url}?sslmode=require");
    let refused = Store::open_postgres(&untrusted, key).await.err().unwrap();
    let said = refused.to_string();
    assert!(said.contains(":***@127.0.0.1"), "{said}");
    assert!(!said.contains("otto-local"), "{said}");
    assert!(said.contains("certificate"), "{said}");
}
