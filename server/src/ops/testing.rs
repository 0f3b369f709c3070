//! What the ops tests share: a real fleet (SQLite file, server keys in it) in a temporary directory,
//! whose hosts point at a port nothing listens on, and its event log.

use std::sync::Arc;

use super::{Actor, AddHost, Ops};
use crate::fleet::{Fleet, FleetOptions};
use crate::model::{Event, NewHost};

/// Operations by `cli:alice` on a new fleet with these hosts (enabled, no agent behind them).
pub async fn fleet(hosts: &[&str]) -> (tempfile::TempDir, Ops) {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Arc::new(
        Fleet::open(dir.path(), FleetOptions::default())
            .await
            .unwrap(),
    );
    // A port nothing listens on: bind, learn the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for name in hosts {
        fleet.create_host_key(name).await.unwrap();
        fleet
            .store()
            .add_host(&NewHost {
                name: (*name).into(),
                address: "127.0.0.1".into(),
                port,
                agent_key: None,
                pin_on_first_contact: true,
            })
            .await
            .unwrap();
    }
    (dir, Ops::new(fleet, Actor::Cli("alice".into())))
}

/// Whether the store holds a server key for `host` (current or next).
pub async fn has_server_key(ops: &Ops, host: &str) -> bool {
    let hosts = ops.fleet.store().server_key_hosts().await.unwrap();
    hosts.iter().any(|h| h == host)
}

/// The events of `kind` in the log.
pub async fn events(ops: &Ops, kind: &str) -> Vec<Event> {
    let all = ops.events(None, None, 100).await.unwrap();
    all.into_iter().filter(|e| e.kind == kind).collect()
}

/// Operations by `cli:alice` on a new fleet in a temporary directory (real SQLite file,
/// server keys in it).
pub async fn fixture() -> (tempfile::TempDir, Ops) {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::open(dir.path(), FleetOptions::default())
        .await
        .unwrap();
    (dir, Ops::new(Arc::new(fleet), Actor::Cli("alice".into())))
}

/// The event log as (actor, host, kind, detail), oldest first.
pub async fn logged(ops: &Ops) -> Vec<(String, String, String, String)> {
    ops.events(None, None, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            (
                e.actor.unwrap_or_default(),
                e.host.unwrap_or_default(),
                e.kind,
                e.detail,
            )
        })
        .collect()
}

/// The last event as (actor, host, kind, detail).
pub async fn last(ops: &Ops) -> (String, String, String, String) {
    logged(ops).await.pop().unwrap()
}

/// `(actor, host, kind, detail)` as the log has it, for comparing.
pub fn ev(host: &str, kind: &str, detail: &str) -> (String, String, String, String) {
    ("cli:alice".into(), host.into(), kind.into(), detail.into())
}

/// Host r1 to add, pinning its agent's key on first contact.
pub fn new_r1() -> AddHost {
    AddHost {
        force: false,
        name: "r1".into(),
        address: "192.0.2.1".into(),
        port: otto_proto::DEFAULT_PORT,
        agent_key: None,
        pin_on_first_contact: true,
        groups: Vec::new(),
    }
}
