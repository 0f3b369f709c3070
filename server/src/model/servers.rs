//! The servers sharing one store, each with a lease it renews while it lives.

use serde::{Deserialize, Serialize};

use super::{from_utc, utc};

/// A server process holding a lease on the store, as the store last saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServerLease {
    /// Its lease's id, new at each start.
    pub id: String,
    /// What it said of itself: its machine's name and its process id.
    pub name: String,
    /// When it started (ms since the epoch, the database's clock; RFC 3339 in JSON).
    #[serde(serialize_with = "utc", deserialize_with = "from_utc")]
    #[schema(value_type = String, format = DateTime)]
    pub started: i64,
    /// When its lease runs out unless renewed, or ran out (ms since the epoch, the database's
    /// clock; RFC 3339 in JSON).
    #[serde(serialize_with = "utc", deserialize_with = "from_utc")]
    #[schema(value_type = String, format = DateTime)]
    pub expires: i64,
    /// Whether its lease was live when read.
    pub live: bool,
    /// How many hosts it owns (their heartbeats, kept connections and key rotations).
    pub hosts: u64,
}

/// Another live server through which a host is reached: the one its agent called home to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayServer {
    /// Its name ([`ServerLease::name`]).
    pub name: String,
    /// The HTTPS address (`host:port`) where it relays channels to the agents that called it.
    pub address: String,
    /// The certificate it answers there with (PEM): the only one trusted there.
    pub certificate: String,
}
