//! Control requests (reload, exit, reboot, shutdown) and key rotation, on many hosts at once.

pub use otto_proto::Control;

use super::{Done, Ops, Result, Targets};
use crate::keys;
use crate::model::EventKind;

impl Ops {
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
    use super::super::ErrorKind;
    use super::super::testing::{events, fleet};
    use super::*;

    #[tokio::test]
    async fn control_and_rotation_record_nothing_when_the_host_is_down() {
        let (_dir, ops) = fleet(&["a"]).await;
        let done = ops.control(&Targets::all(), Control::Reload).await.unwrap();
        assert!(done.len() == 1 && !done[0].success, "{done:?}");
        assert!(events(&ops, "control-sent").await.is_empty());
        let done = ops.rotate(&Targets::hosts(["a"])).await.unwrap();
        assert!(done.len() == 1 && !done[0].success, "{done:?}");
        assert!(events(&ops, "key-rotated").await.is_empty());
        let err = ops.rotate(&Targets::default()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
        let err = ops.control(&Targets::hosts(["b"]), Control::Exit).await;
        assert_eq!(err.unwrap_err().kind(), ErrorKind::NotFound);
    }
}
