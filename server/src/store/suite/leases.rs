//! Servers sharing a PostgreSQL database balance the hosts among them, take over those of a
//! server whose lease ran out, and never own one host twice; an SQLite file's one server owns
//! every enabled host.

use std::collections::BTreeSet;

use super::host;
use crate::store::Store;
use crate::store::secrets::KEY_FILE;

/// `n` stores on one new database: `n` servers.
async fn servers(n: usize) -> Option<(tempfile::TempDir, String, Vec<Store>)> {
    let url = super::postgres_url().await?;
    let dir = tempfile::tempdir().unwrap();
    let mut stores = Vec::new();
    for _ in 0..n {
        stores.push(
            Store::open_postgres(&url, dir.path().join(KEY_FILE))
                .await
                .unwrap(),
        );
    }
    Some((dir, url, stores))
}

/// Each server's claim, `rounds` times over; the last claims.
async fn claim(stores: &[Store], rounds: usize) -> Vec<BTreeSet<String>> {
    let mut owned = Vec::new();
    for _ in 0..rounds {
        owned.clear();
        for store in stores {
            owned.push(store.claim_hosts().await.unwrap().into_iter().collect());
        }
    }
    owned
}

/// Runs `sql` on the database at `url`.
async fn sql(url: &str, sql: &str, id: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client.execute(sql, &[&id]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_are_shared_out_and_those_of_a_lapsed_lease_taken_over() {
    let Some((_dir, url, stores)) = servers(3).await else {
        return;
    };
    for i in 0..30 {
        stores[0]
            .add_host(&host(&format!("r{i:02}")))
            .await
            .unwrap();
    }
    // Everyone claims once (the first takes its share of what is free), then again.
    let owned = claim(&stores, 3).await;
    assert_eq!(
        owned.iter().map(BTreeSet::len).collect::<Vec<_>>(),
        [10, 10, 10]
    );
    let all: BTreeSet<&String> = owned.iter().flatten().collect();
    assert_eq!(all.len(), 30, "each host has one owner");
    let listed = stores[1].servers().await.unwrap();
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().all(|s| s.live && s.hosts == 10), "{listed:?}");

    // The third server's lease runs out (as when it is killed): the others take its hosts.
    let lapsed = stores[2].lease_id().unwrap().to_string();
    let lost = owned[2].clone();
    sql(
        &url,
        "UPDATE servers SET expires = otto_now() - 1 WHERE id = $1",
        &lapsed,
    )
    .await;
    let survivors = &stores[..2];
    let owned = claim(survivors, 2).await;
    assert_eq!(
        owned.iter().map(BTreeSet::len).collect::<Vec<_>>(),
        [15, 15]
    );
    let taken: BTreeSet<&String> = owned.iter().flatten().collect();
    assert!(
        lost.iter().all(|h| taken.contains(h)),
        "every lost host is taken"
    );
    assert_eq!(taken.len(), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_joining_gets_its_share_and_a_host_called_home_stays_where_it_called() {
    let Some((_dir, _url, stores)) = servers(2).await else {
        return;
    };
    for i in 0..10 {
        stores[0].add_host(&host(&format!("r{i}"))).await.unwrap();
    }
    // Alone, the first owns everything.
    assert_eq!(claim(&stores[..1], 1).await[0].len(), 10);
    // The second arrives: the first gives back half, which the second takes.
    stores[1].take_host("r9").await.unwrap();
    let owned = claim(&stores, 2).await;
    assert_eq!(owned[0].len() + owned[1].len(), 10, "{owned:?}");
    assert_eq!((owned[0].len(), owned[1].len()), (5, 5), "{owned:?}");
    assert!(
        owned[1].contains("r9"),
        "the host that called the second stays there"
    );
    // However the balance goes, a host called home is not given back.
    stores[1].end_lease().await.unwrap();
    let owned = claim(&stores[..1], 1).await;
    assert_eq!(owned[0].len(), 10, "a clean stop frees the hosts at once");
}

#[tokio::test]
async fn an_sqlite_file_is_one_servers_and_it_owns_every_enabled_host() {
    let (_held, store) = super::sqlite().await;
    store.add_host(&host("r1")).await.unwrap();
    store.add_host(&host("r2")).await.unwrap();
    assert_eq!(store.claim_hosts().await.unwrap(), ["r1", "r2"]);
    assert!(store.lease_live());
    assert!(store.servers().await.unwrap().is_empty());
}
