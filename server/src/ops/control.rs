//! Control requests (reload, exit, reboot, shutdown) and key rotation, on many hosts at once.

pub use otto_proto::Control;

use serde::{Deserialize, Serialize};

use super::{Done, Ops, Result, RolloutOptions, Targets};
use crate::keys;
use crate::model::EventKind;

/// A request to the agents, as `POST /api/v1/control` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Reload the agent's configuration.
    Reload,
    /// Stop the agent (its service manager restarts it).
    Exit,
    /// Reboot the device.
    Reboot,
    /// Power the device off.
    Shutdown,
    /// Give the host new keys, the server's and the agent's.
    RotateKey,
}

impl Action {
    /// Its name, as the API's requests give it (`reload`, `rotate-key`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Reload => "reload",
            Action::Exit => "exit",
            Action::Reboot => "reboot",
            Action::Shutdown => "shutdown",
            Action::RotateKey => "rotate-key",
        }
    }
}

/// A request to the agents of hosts named as a run names them: `all`, names or globs, groups,
/// and exclusions; in batches, if asked. The body of `POST /api/v1/control`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ControlRequest {
    /// What to do.
    pub action: Action,
    /// The hosts.
    #[serde(flatten)]
    pub targets: Targets,
    /// How the hosts go: in batches, up to a number of failures.
    #[serde(flatten)]
    pub rollout: RolloutOptions,
}

impl Ops {
    /// Does what `request` asks of the hosts it names ([`Ops::control`], or [`Ops::rotate`]
    /// for new keys), as its rollout goes (held to its rules): each host's result.
    pub async fn act(&self, request: ControlRequest) -> Result<Vec<Done>> {
        let rollout = request.rollout.rollout()?;
        let ops = self.clone().rolling(rollout);
        let targets = &request.targets;
        match request.action {
            Action::RotateKey => ops.rotate(targets).await,
            Action::Reload => ops.control(targets, Control::Reload).await,
            Action::Exit => ops.control(targets, Control::Exit).await,
            Action::Reboot => ops.control(targets, Control::Reboot).await,
            Action::Shutdown => ops.control(targets, Control::Shutdown).await,
        }
    }

    /// Sends `request` to the enabled hosts `targets` names, as the rollout goes; records
    /// `control-sent` for each host that did what was asked.
    pub async fn control(&self, targets: &Targets, request: Control) -> Result<Vec<Done>> {
        let hosts = self.resolve(targets).await?;
        Ok(self
            .for_each(hosts, move |ops, host| async move {
                let fleet = &ops.fleet;
                let result = async {
                    let conn = fleet.connect(&host).await.map_err(|e| e.to_string())?;
                    let report = match conn.control(request).await {
                        Ok(report) => report,
                        Err(e) => {
                            fleet.failed(&host.name, &conn, &e).await;
                            return Err(e.to_string());
                        }
                    };
                    if request == Control::Exit {
                        fleet.forget(&host.name).await;
                    }
                    if report.outcome.is_success() {
                        Ok(report.outcome.to_string())
                    } else {
                        Err(report.outcome.to_string())
                    }
                }
                .await;
                if let Ok(outcome) = &result {
                    let detail = format!("{request:?}: {outcome}").to_lowercase();
                    ops.note(&host.name, EventKind::ControlSent, &detail).await;
                }
                Done::new(host.name, result)
            })
            .await)
    }

    /// Gives the enabled hosts `targets` names new keys (server and agent), as the rollout goes; the
    /// store records each rotation (`key-rotated`).
    pub async fn rotate(&self, targets: &Targets) -> Result<Vec<Done>> {
        let hosts = self.resolve(targets).await?;
        Ok(self
            .for_each(hosts, |ops, host| async move {
                let actor = ops.actor.to_string();
                let result = ops
                    .fleet
                    .rotate(&host, &actor)
                    .await
                    .map(|key| format!("new agent key {}", keys::fingerprint(&key)))
                    .map_err(|e| e.to_string());
                Done::new(host.name, result)
            })
            .await)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{events, fleet};
    use super::super::{ErrorKind, Share};
    use super::*;

    #[test]
    fn a_control_request_takes_the_rollout_fields_as_its_own_and_no_other() {
        use serde_json::json;
        let read = |body| serde_json::from_value::<ControlRequest>(body);
        let request =
            read(json!({"action": "reload", "all": true, "batch": "25%", "max_failures": 0}))
                .unwrap();
        assert!(request.targets.all);
        assert_eq!(request.rollout.batch, Some(Share::Percent(25)));
        assert_eq!(request.rollout.max_failures, Some(Share::Count(0)));
        let unknown = read(json!({"action": "reload", "all": true, "batches": 2})).unwrap_err();
        assert!(unknown.to_string().contains("unknown field"), "{unknown}");
        let zero = read(json!({"action": "reload", "all": true, "batch": "0%"})).unwrap();
        assert_eq!(
            zero.rollout.rollout().unwrap_err().kind(),
            ErrorKind::Invalid
        );
    }

    #[tokio::test]
    async fn control_and_rotation_record_nothing_when_the_host_is_down() {
        let (_dir, ops) = fleet(&["a"]).await;
        let done = ops.control(&Targets::all(), Control::Reload).await.unwrap();
        assert!(done.len() == 1 && !done[0].success, "{done:?}");
        // Each result says the host could not be connected to (exit 3, both ways).
        assert!(done[0].unreached, "{done:?}");
        assert!(events(&ops, "control-sent").await.is_empty());
        let done = ops.rotate(&Targets::hosts(["a"])).await.unwrap();
        assert!(done.len() == 1 && !done[0].success, "{done:?}");
        assert!(done[0].unreached, "{done:?}");
        assert!(events(&ops, "key-rotated").await.is_empty());
        let err = ops.rotate(&Targets::default()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
        let err = ops.control(&Targets::hosts(["b"]), Control::Exit).await;
        assert_eq!(err.unwrap_err().kind(), ErrorKind::NotFound);
    }
}
