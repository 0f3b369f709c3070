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

/// A TCP relay on loopback to the cluster, which the test can cut (every connection dropped,
/// none taken) and restore on the same port: the database lost and back.
struct Relay {
    port: u16,
    task: Option<tokio::task::JoinHandle<()>>,
    to: u16,
}

impl Relay {
    async fn start(to: u16) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        Relay {
            port,
            task: Some(tokio::spawn(Relay::serve(listener, to))),
            to,
        }
    }

    async fn serve(listener: tokio::net::TcpListener, to: u16) {
        let mut links = tokio::task::JoinSet::new();
        while let Ok((mut client, _)) = listener.accept().await {
            links.spawn(async move {
                if let Ok(mut server) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    }

    /// Drops every connection and takes none.
    fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Takes connections again, on the same port.
    async fn restore(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        self.task = Some(tokio::spawn(Relay::serve(listener, self.to)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_loses_the_database_stops_acting_for_hosts_and_resumes_when_it_is_back() {
    let Some(cluster) = super::cluster() else {
        return;
    };
    let url = super::postgres_url().await.unwrap();
    let mut relay = Relay::start(cluster.port()).await;
    let relayed = url.replace(
        &format!(":{}/", cluster.port()),
        &format!(":{}/", relay.port),
    );
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_postgres(&relayed, dir.path().join(KEY_FILE))
        .await
        .unwrap();
    store.add_host(&host("r1")).await.unwrap();
    assert_eq!(store.claim_hosts().await.unwrap(), ["r1"]);
    assert!(store.lease_live());

    // The database is gone: claims fail, and once the lease may have run out (12 s of the
    // 15) the server knows it must not act for its hosts.
    relay.cut();
    let cut = std::time::Instant::now();
    assert!(store.claim_hosts().await.is_err());
    while store.lease_live() {
        assert!(
            cut.elapsed() < std::time::Duration::from_secs(20),
            "still live"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(
        cut.elapsed() >= std::time::Duration::from_secs(10),
        "{:?}",
        cut.elapsed()
    );

    // Back: the next claim renews the lease and the host is this server's again.
    relay.restore().await;
    let back = std::time::Instant::now();
    let owned = loop {
        match store.claim_hosts().await {
            Ok(owned) => break owned,
            Err(_) if back.elapsed() < std::time::Duration::from_secs(30) => {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the database is back but claims fail: {e}"),
        }
    };
    assert_eq!(owned, ["r1"]);
    assert!(store.lease_live());
}
