//! Heartbeats: many hosts at once answer with their agent's version and facts, which the store
//! keeps with whether they answered.

use serde::Serialize;

use super::{Ops, Result, Targets};
use crate::fleet::FleetError;
use crate::model::{Facts, Host};

/// One host's answer to a heartbeat.
#[derive(Debug, Clone, Serialize)]
pub struct Ping {
    /// The host.
    pub host: String,
    /// Whether it answered.
    pub reachable: bool,
    /// Agent version.
    pub agent_version: Option<String>,
    /// Its facts.
    pub facts: Option<Facts>,
    /// Round trip of the heartbeat itself (connection set-up excluded).
    pub round_trip_ms: Option<f64>,
    /// Why not.
    pub error: Option<String>,
}

impl Ops {
    /// Sends a heartbeat to the enabled hosts `targets` names (all when it names none) at
    /// once, and has the store keep the answers. Heartbeats change no setting: nothing is
    /// recorded in the event log but what the store notes of reachability.
    pub async fn ping(&self, targets: &Targets) -> Result<Vec<Ping>> {
        let hosts = if targets.is_empty() {
            self.enabled(&Targets::all()).await?
        } else {
            self.enabled(targets).await?
        };
        Ok(self
            .for_each(hosts, |ops, host| async move { ops.ping_one(host).await })
            .await)
    }

    async fn ping_one(&self, host: Host) -> Ping {
        let fleet = &self.fleet;
        let answer = async {
            let conn = fleet.connect(&host).await?;
            match conn.heartbeat().await {
                Ok(hb) => Ok(hb),
                Err(e) => {
                    fleet.failed(&host.name, &conn, &e).await;
                    Err(FleetError::Client(host.name.clone(), e))
                }
            }
        }
        .await;
        match answer {
            Ok(hb) => {
                let facts = hb.facts;
                let stored = fleet
                    .store()
                    .heartbeat_ok(&host.name, &hb.agent_version, &facts)
                    .await;
                Ping {
                    host: host.name,
                    reachable: true,
                    agent_version: Some(hb.agent_version),
                    facts: Some(facts),
                    round_trip_ms: Some(hb.round_trip.as_secs_f64() * 1000.0),
                    error: stored.err().map(|e| e.to_string()),
                }
            }
            Err(e) => {
                let error = e.to_string();
                if let Err(e) = fleet.store().heartbeat_failed(&host.name, &error).await {
                    tracing::error!(host = %host.name, "cannot record heartbeat: {e}");
                }
                Ping {
                    host: host.name,
                    reachable: false,
                    agent_version: None,
                    facts: None,
                    round_trip_ms: None,
                    error: Some(error),
                }
            }
        }
    }
}
