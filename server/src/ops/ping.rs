//! Heartbeats: many hosts at once answer with their agent's version and facts, which the store
//! keeps with whether they answered.

use serde::Serialize;

use super::{Ops, Result, Targets};
use crate::fleet::{FleetError, Untrusted};
use crate::model::{Facts, Host};

/// One host's answer to a heartbeat.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Ping {
    /// The host.
    pub host: String,
    /// Whether it answered.
    pub reachable: bool,
    /// Whether it answered but was busy: its agent authenticated this server and refused the
    /// heartbeat's channel, serving as many at once as it may (`error` says how).
    #[serde(default)]
    pub busy: bool,
    /// Agent version.
    pub agent_version: Option<String>,
    /// Its facts.
    #[schema(value_type = Option<crate::model::FactsSchema>)]
    pub facts: Option<Facts>,
    /// Round trip of the heartbeat itself (connection set-up excluded).
    pub round_trip_ms: Option<f64>,
    /// Why not.
    pub error: Option<String>,
    /// Why not, when it is that its agent is not trusted: for a front end to offer its remedy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untrusted: Option<Untrusted>,
}

/// The hosts a heartbeat goes to, as a run names them (every enabled host when none is): the
/// body of `POST /api/v1/ping`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PingRequest {
    /// The hosts.
    #[serde(flatten)]
    pub targets: Targets,
}

impl Ops {
    /// Sends a heartbeat to the enabled hosts `targets` names (all but those it excludes when
    /// it names none) at once, and has the store keep the answers. Heartbeats change no setting: nothing is
    /// recorded in the event log but what the store notes of reachability.
    pub async fn ping(&self, targets: &Targets) -> Result<Vec<Ping>> {
        let hosts = if targets.is_empty() {
            let all = Targets {
                all: true,
                ..targets.clone()
            };
            self.enabled(&all).await?
        } else {
            self.enabled(targets).await?
        };
        Ok(self
            .for_each(hosts, |ops, host| async move { ops.ping_one(host).await })
            .await)
    }

    /// Sends a heartbeat to `host`, as found already (serve's heartbeat job has it: no need to
    /// read it again), and has the store keep the answer.
    pub async fn ping_one(&self, host: Host) -> Ping {
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
                let round_trip_ms = hb.round_trip.as_secs_f64() * 1000.0;
                let stored = fleet
                    .store()
                    .heartbeat_ok(&host.name, &hb.agent_version, &facts, round_trip_ms)
                    .await;
                Ping {
                    host: host.name,
                    reachable: true,
                    busy: false,
                    agent_version: Some(hb.agent_version),
                    facts: Some(facts),
                    round_trip_ms: Some(round_trip_ms),
                    error: stored.err().map(|e| e.to_string()),
                    untrusted: None,
                }
            }
            Err(FleetError::Client(_, e)) if e.busy() => {
                let error = e.to_string();
                if let Err(e) = fleet.store().heartbeat_busy(&host.name, &error).await {
                    tracing::error!(host = %host.name, "cannot record heartbeat: {e}");
                }
                Ping {
                    host: host.name,
                    reachable: true,
                    busy: true,
                    agent_version: None,
                    facts: None,
                    round_trip_ms: None,
                    error: Some(error),
                    untrusted: None,
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
                    busy: false,
                    agent_version: None,
                    facts: None,
                    round_trip_ms: None,
                    error: Some(error),
                    untrusted: e.untrusted(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{events, fleet};
    use super::*;

    #[tokio::test]
    async fn no_targets_ping_every_enabled_host_and_record_no_change() {
        let (_dir, ops) = fleet(&["a", "b"]).await;
        let pings = ops.ping(&Targets::default()).await.unwrap();
        let hosts: Vec<_> = pings.iter().map(|p| p.host.as_str()).collect();
        assert_eq!(hosts, ["a", "b"]);
        assert!(pings.iter().all(|p| !p.reachable && p.error.is_some()));
        let a = ops.fleet.store().host("a").await.unwrap();
        assert_eq!(a.status.reachable, Some(false));
        let all = ops.events(None, None, 100).await.unwrap();
        assert!(all.iter().all(|e| e.actor.is_none()), "{all:?}");
        assert!(events(&ops, "reachability").await.len() >= 2, "{all:?}");
        // Named hosts only, disabled ones left out: no error.
        ops.fleet.store().set_enabled("b", false).await.unwrap();
        assert!(ops.ping(&Targets::hosts(["b"])).await.unwrap().is_empty());
    }
}
