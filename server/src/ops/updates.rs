//! Updates of the agents themselves: each host gets the binary of its CPU and byte order (from
//! its facts) out of the server's catalogue ([`crate::agents`]), sent over the Otto protocol;
//! its agent checks it, puts it in place and restarts into it on trial, and the server
//! confirms the new version by a heartbeat. A new agent not heard from in time is replaced by
//! the old one on the device itself.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use otto_proto::UpdateAgent;
use serde::{Deserialize, Serialize};

use super::targets::HostResult;
use super::{Done, Ops, OpsError, Result, RolloutOptions, Targets, UploadEvent, UploadSink};
use crate::agents::{AgentBinary, Agents, Catalogue};
use crate::client::new_action_id;
use crate::model::{EventKind, Facts, Host, Permission, RunLevel};

/// The time a new agent has to be heard from unless asked otherwise (`--confirm-within`).
pub const DEFAULT_CONFIRM_SECS: u32 = 120;
/// The shortest time a new agent may be given (the agent's own limit).
pub const MIN_CONFIRM_SECS: u32 = 10;
/// The longest time a new agent may be given.
pub const MAX_CONFIRM_SECS: u32 = 3600;
/// How much longer than its trial the server listens for a host after an update: the device
/// needs a moment to go back to its old binary and start it.
const CONFIRM_MARGIN: Duration = Duration::from_secs(30);
/// The longest pause between two heartbeats while waiting for a host after an update.
const POLL_MAX: Duration = Duration::from_secs(2);

/// An update of the agents of the hosts named, as `POST /api/v1/updates` takes it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgents {
    /// The hosts.
    #[serde(flatten)]
    pub targets: Targets,
    /// How the hosts go: in batches, up to a number of failures.
    #[serde(flatten)]
    pub rollout: RolloutOptions,
    /// Seconds each new agent has to answer a heartbeat before its device goes back to the
    /// old binary (10 to 3600; default 120).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 10, maximum = 3600)]
    pub confirm_secs: Option<u32>,
    /// Send the binary even to hosts whose agent already has its version.
    #[serde(default)]
    pub force: bool,
}

impl UpdateAgents {
    /// The trial's length, held to its limits.
    pub fn confirm_secs(&self) -> Result<u32> {
        match self.confirm_secs.unwrap_or(DEFAULT_CONFIRM_SECS) {
            secs @ MIN_CONFIRM_SECS..=MAX_CONFIRM_SECS => Ok(secs),
            secs => Err(OpsError::Invalid(format!(
                "a new agent is given {secs} s to be heard from: give {MIN_CONFIRM_SECS} s to \
                 {MAX_CONFIRM_SECS} s"
            ))),
        }
    }
}

/// The binaries of one update, each target's read (and hashed) once, off the runtime's
/// threads, for all the hosts that need it.
struct Binaries {
    catalogue: Catalogue,
    read: tokio::sync::Mutex<HashMap<&'static str, std::result::Result<Arc<AgentBinary>, String>>>,
}

impl Binaries {
    /// The binary for a host with `facts`, or why there is none.
    async fn for_facts(&self, facts: &Facts) -> std::result::Result<Arc<AgentBinary>, String> {
        let target = crate::agents::target_of(facts).map_err(|e| e.to_string())?;
        let mut read = self.read.lock().await;
        if let Some(binary) = read.get(target) {
            return binary.clone();
        }
        let catalogue = self.catalogue.clone();
        let binary = tokio::task::spawn_blocking(move || catalogue.binary(target))
            .await
            .map_err(|e| e.to_string())
            .and_then(|b| b.map(Arc::new).map_err(|e| e.to_string()));
        read.insert(target, binary.clone());
        binary
    }
}

impl Ops {
    /// The agent binaries the server sends: each target's version, size and checksum, and the
    /// newest version (hosts with another are behind).
    pub async fn agents(&self) -> Agents {
        let fleet = self.fleet.clone();
        // Reading and hashing a few MiB of files: off the runtime's threads.
        tokio::task::spawn_blocking(move || fleet.catalogue().versions())
            .await
            .unwrap_or_else(|e| Agents {
                source: self.fleet.catalogue().describe(),
                binaries: Vec::new(),
                missing: vec![format!("the catalogue could not be read: {e}")],
                newest: None,
            })
    }

    /// The newest agent version the server has (none without binaries): hosts with an older
    /// one are behind.
    pub async fn newest_agent(&self) -> Option<String> {
        if let Some(recent) = self.fleet.recent_newest_agent() {
            return recent;
        }
        let fleet = self.fleet.clone();
        tokio::task::spawn_blocking(move || fleet.newest_agent())
            .await
            .ok()
            .flatten()
    }

    /// Takes the agent binaries from `dir` (`--agents`) for the rest of this process, unless a
    /// folder was given already.
    pub fn use_agents(&self, dir: std::path::PathBuf) {
        if !self.fleet.use_agents(dir) {
            tracing::warn!("agent binaries: a folder was given already; it stays");
        }
    }

    /// What updating agents needs: the permission `hosts` and the run level `read-write` (a
    /// new binary runs as the agent does, as root).
    pub fn require_update(&self) -> Result<()> {
        self.require(Permission::Hosts)?;
        self.require_run(RunLevel::ReadWrite)
    }

    /// Updates the agents of the enabled hosts `request` names, as its rollout goes (held to
    /// its rules; these operations' own when it gives none): for each host, the binary of its
    /// CPU from the fleet's catalogue, sent unless the host's agent already has its version
    /// (or `force`); then a heartbeat until the host answers with the new version (confirmed)
    /// or the trial and a margin are over (the old version: rolled back; no answer: lost).
    /// `events` hears each host start, the bytes sent to it, and its end. Records
    /// `update-sent`, `update-refused`, `update-confirmed`, `update-rolled-back` and
    /// `update-lost`.
    pub async fn update_agents(
        &self,
        request: &UpdateAgents,
        events: UploadSink,
    ) -> Result<Vec<Done>> {
        self.require_update()?;
        let confirm_secs = request.confirm_secs()?;
        let ops = if request.rollout == RolloutOptions::default() {
            self.clone()
        } else {
            self.clone().rolling(request.rollout.rollout()?)
        };
        let hosts = ops.resolve(&request.targets).await?;
        let binaries = Arc::new(Binaries {
            catalogue: self.fleet.catalogue(),
            read: tokio::sync::Mutex::new(HashMap::new()),
        });
        let force = request.force;
        let ended = events.clone();
        let update_one = move |ops: Ops, host: Host| {
            let (binaries, events) = (binaries.clone(), events.clone());
            async move {
                let Some(facts) = host.status.facts.clone() else {
                    return Done::skipped(
                        host.name,
                        "never heard from: no facts to pick its binary by (ping it first)",
                    );
                };
                let binary = match binaries.for_facts(&facts).await {
                    Ok(binary) => binary,
                    Err(e) => return Done::new(host.name, Err(e)),
                };
                let old = host.status.agent_version.clone().unwrap_or_default();
                if old == binary.version && !force {
                    // Nothing to do: it has what it would get (a success, not a host skipped).
                    return Done::new(host.name, Ok(format!("up to date ({old})")));
                }
                let work = ops.update_one(&host, &binary, &old, confirm_secs, &events);
                let result = tokio::select! {
                    result = work => result,
                    () = ops.cancellation.cancelled() => Err(
                        "cancelled (an agent that has the new binary goes on with its trial)"
                            .to_string(),
                    ),
                };
                Done::new(host.name, result)
            }
        };
        Ok(ops
            .for_each_reporting(hosts, update_one, |done| ended(UploadEvent::Done(done)))
            .await)
    }

    /// Sends `binary` to `host`, whose agent has version `old`, then waits for its new agent's
    /// heartbeat: what happened, or why it failed.
    async fn update_one(
        &self,
        host: &Host,
        binary: &AgentBinary,
        old: &str,
        confirm_secs: u32,
        events: &UploadSink,
    ) -> std::result::Result<String, String> {
        let fleet = &self.fleet;
        let name = host.name.as_str();
        let len = binary.bytes.len() as u64;
        events(UploadEvent::Started {
            host: name,
            bytes: len,
        });
        let conn = fleet.connect(host).await.map_err(|e| e.to_string())?;
        let update = UpdateAgent {
            action: new_action_id(),
            sha256: binary.sha256,
            len,
            confirm_secs,
        };
        let sent = conn
            .update_agent(&update, &binary.bytes[..], |sent| {
                events(UploadEvent::Sent { host: name, sent });
            })
            .await;
        let report = match sent {
            Ok(report) => report,
            Err(e) => {
                fleet.failed(name, &conn, &e).await;
                return Err(e.to_string());
            }
        };
        let new = &binary.version;
        if !report.outcome.is_success() {
            let detail = format!("{new} refused: {}", report.outcome);
            self.note(name, EventKind::UpdateRefused, &detail).await;
            return Err(detail);
        }
        let from = if old.is_empty() { "?" } else { old };
        let detail = format!(
            "{from} -> {new} ({}, {len} bytes), on trial for {confirm_secs} s",
            binary.target
        );
        self.note(name, EventKind::UpdateSent, &detail).await;
        drop(conn);
        let within = Duration::from_secs(u64::from(confirm_secs)) + CONFIRM_MARGIN;
        let heard = self.heard_after_update(host, new, within).await;
        let (kind, result) = match heard {
            Some(version) if version == *new => (
                EventKind::UpdateConfirmed,
                Ok(format!("confirmed: {from} -> {new}")),
            ),
            Some(version) => {
                // It was heard from: a dial that failed while it went back is no unreachable host.
                self.fleet.forget(name).await;
                (
                    EventKind::UpdateRolledBack,
                    Err(format!(
                        "rolled back: the device went back to {version} (the new agent {new} was \
                     not heard from within {confirm_secs} s)"
                    )),
                )
            }
            None => (
                EventKind::UpdateLost,
                Err(format!(
                    "not heard from after the update to {new} (within {} s)",
                    within.as_secs()
                )),
            ),
        };
        let detail = match &result {
            Ok(detail) | Err(detail) => detail.clone(),
        };
        self.note(name, kind, &detail).await;
        result
    }

    /// Sends `host` heartbeats, a little further apart each time, until it answers with
    /// version `new` or `within` is over: the last version it answered with, if any. Each
    /// answer is kept by the store as any heartbeat's.
    async fn heard_after_update(&self, host: &Host, new: &str, within: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + within;
        let mut pause = Duration::from_millis(250);
        let mut heard = None;
        loop {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(POLL_MAX);
            // The agent restarts: the connection it had is gone, and a failed dial meanwhile
            // must not hold the next one back.
            self.fleet.forget(&host.name).await;
            let ping = self.ping_one(host.clone()).await;
            if let Some(version) = ping.agent_version {
                if version == new {
                    return Some(version);
                }
                heard = Some(version);
            }
            if tokio::time::Instant::now() >= deadline {
                return heard;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::ErrorKind;
    use super::super::testing::fleet;
    use super::*;
    use crate::model::{Facts, Permissions};

    #[tokio::test]
    async fn hosts_without_facts_are_skipped_and_limits_hold() {
        let (_dir, ops) = fleet(&["a"]).await;
        let request = UpdateAgents {
            targets: Targets::all(),
            ..UpdateAgents::default()
        };
        let done = ops
            .update_agents(&request, Arc::new(|_: UploadEvent<'_>| {}))
            .await
            .unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].status, super::super::Status::Skipped);
        assert!(done[0].detail.contains("ping it first"), "{done:?}");
        for secs in [0, MIN_CONFIRM_SECS - 1, MAX_CONFIRM_SECS + 1] {
            let request = UpdateAgents {
                confirm_secs: Some(secs),
                ..request.clone()
            };
            let refused = ops
                .update_agents(&request, Arc::new(|_: UploadEvent<'_>| {}))
                .await
                .unwrap_err();
            assert_eq!(refused.kind(), ErrorKind::Invalid, "{refused}");
        }
        let limited = ops.clone().limited_to(Permissions::default());
        let refused = limited
            .update_agents(&request, Arc::new(|_: UploadEvent<'_>| {}))
            .await
            .unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Forbidden);
        // Facts for a CPU without an agent: that host fails with its reason, and the rollout
        // goes on to the next (whose binary is missing here: it says how to build it).
        let (_dir, ops) = fleet(&["a", "b"]).await;
        for (host, arch) in [("a", "sparc64"), ("b", "x86_64")] {
            let facts = Facts {
                arch: arch.into(),
                big_endian: arch == "sparc64",
                ..Facts::default()
            };
            let store = ops.fleet.store();
            store
                .heartbeat_ok(host, "0.1.0", &facts, 1.0)
                .await
                .unwrap();
        }
        let empty = tempfile::tempdir().unwrap();
        ops.use_agents(empty.path().to_path_buf());
        let done = ops
            .update_agents(&request, Arc::new(|_: UploadEvent<'_>| {}))
            .await
            .unwrap();
        assert_eq!(done.len(), 2);
        assert!(!done[0].success && !done[1].success);
        assert!(
            done[0].detail.contains("no Otto agent for a sparc64 CPU"),
            "{done:?}"
        );
        assert!(
            done[1].detail.contains("ci/build-agents.sh x86_64"),
            "{done:?}"
        );
    }
}
