//! Dry runs (`--dry-run`, Ansible's `--check`): which hosts an action would touch, and with
//! what (the script's name and checksum, each file's checksum), found as the action itself
//! finds them and held to the same permissions; nothing is sent, started or recorded.

use serde::{Deserialize, Serialize};

use super::control::ControlRequest;
use super::live::NewRun;
use super::runs::{Job, command_body};
use super::uploads::sha256_hex;
use super::{Ops, Result};
use crate::model::{Attachment, Phase};

/// What an action would do, and where; nothing was done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DryRun {
    /// What it would do: the script's name, `command: …`, the control action, or the file.
    pub what: String,
    /// SHA-256 (hex) of what would run: the script's body, or the command as the agent gets
    /// it; none for a control action.
    pub sha256: Option<String>,
    /// The files that would be sent with it (a script's attachments), in order.
    pub files: Vec<PlannedFile>,
    /// The hosts it would touch, by name.
    pub hosts: Vec<String>,
    /// The hosts the `where` selectors left out (no facts yet).
    pub left_out: Vec<String>,
}

/// A file a dry run would send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlannedFile {
    /// Its path on the hosts.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, hex.
    pub sha256: String,
    /// When it would be sent: `before` or `after` the script (none for an upload).
    pub phase: Option<Phase>,
}

impl PlannedFile {
    fn of(a: &Attachment) -> PlannedFile {
        PlannedFile {
            path: a.path.clone(),
            size: a.size,
            sha256: a.sha256.clone(),
            phase: Some(a.phase),
        }
    }
}

impl Ops {
    /// What `new` would run where, checked as a launch of it is (the job's run level, its
    /// hosts); nothing is started or recorded.
    pub async fn dry_run(&self, new: NewRun) -> Result<DryRun> {
        let (targets, job, _, _) = new.parts()?;
        self.require_job(&job).await?;
        let hosts: Vec<String> = self
            .run_hosts(&targets, &job)
            .await?
            .into_iter()
            .map(|h| h.name)
            .collect();
        let left_out = self.selection(&targets).await?.left_out;
        let store = self.fleet.store();
        let (sha256, files) = match &job {
            Job::Script { name, .. } => {
                let script = store.script(name).await?;
                let files = store.attachments(Some(name)).await?;
                (
                    sha256_hex(&script.body),
                    files.iter().map(PlannedFile::of).collect(),
                )
            }
            Job::Command { command, .. } => (sha256_hex(&command_body(command)), Vec::new()),
        };
        Ok(DryRun {
            what: job.label(),
            sha256: Some(sha256),
            files,
            hosts,
            left_out,
        })
    }

    /// Which hosts `request` would act on; nothing is sent or recorded.
    pub async fn dry_run_control(&self, request: &ControlRequest) -> Result<DryRun> {
        request.rollout.rollout()?;
        let hosts = self.resolve(&request.targets).await?;
        Ok(DryRun {
            what: request.action.as_str().to_owned(),
            sha256: None,
            files: Vec::new(),
            hosts: hosts.into_iter().map(|h| h.name).collect(),
            left_out: self.selection(&request.targets).await?.left_out,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::scripts::NewAttachment;
    use super::super::testing::{fleet, logged};
    use super::super::{Action, ErrorKind, Targets};
    use super::*;
    use crate::model::{Permission, Permissions, RunLevel, Script};

    #[tokio::test]
    async fn a_dry_run_says_what_would_run_where_and_records_nothing() {
        let (_dir, ops) = fleet(&["r1", "r2", "r3"]).await;
        ops.save_script(&Script::example("backup", b"tar c /etc\n"), false)
            .await
            .unwrap();
        let attachment = NewAttachment {
            script: "backup".into(),
            path: "/etc/backup.conf".into(),
            content: b"dest=/tmp\n".to_vec(),
            owner: None,
            mode: 0o644,
            phase: Phase::Before,
        };
        ops.add_attachment(attachment).await.unwrap();
        let before = logged(&ops).await.len();

        let new = NewRun {
            script: Some("backup".into()),
            targets: Targets {
                hosts: vec!["r[12]".into()],
                ..Targets::default()
            },
            ..NewRun::default()
        };
        let plan = ops.dry_run(new.clone()).await.unwrap();
        assert_eq!(plan.what, "backup");
        assert_eq!(plan.hosts, ["r1", "r2"]);
        assert_eq!(
            plan.sha256.as_deref(),
            Some(sha256_hex(b"tar c /etc\n").as_str())
        );
        assert_eq!(
            plan.files,
            [PlannedFile {
                path: "/etc/backup.conf".into(),
                size: 10,
                sha256: sha256_hex(b"dest=/tmp\n"),
                phase: Some(Phase::Before),
            }]
        );
        let command = NewRun {
            command: Some("reboot".into()),
            targets: Targets::all(),
            ..NewRun::default()
        };
        let plan = ops.dry_run(command.clone()).await.unwrap();
        assert_eq!(plan.what, "command: reboot");
        assert_eq!(plan.sha256, Some(sha256_hex(b"reboot\n")));
        assert_eq!(plan.hosts, ["r1", "r2", "r3"]);
        let control = ControlRequest {
            action: Action::Exit,
            targets: Targets::hosts(["r3"]),
            rollout: Default::default(),
        };
        let plan = ops.dry_run_control(&control).await.unwrap();
        assert_eq!(
            (plan.what.as_str(), plan.hosts),
            ("exit", vec!["r3".into()])
        );
        // Nothing was recorded: no event, no launch, no run.
        assert_eq!(logged(&ops).await.len(), before);
        let store = ops.fleet.store();
        assert!(store.runs(None, 100).await.unwrap().is_empty());

        // Held to the same permissions as the action itself.
        let read_only = Permissions {
            admin: false,
            run: RunLevel::ReadOnly,
            modify: [Permission::Hosts].into(),
        };
        let limited = ops.clone().limited_to(read_only);
        let refused = limited.dry_run(command).await.unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Forbidden);
        let missing = NewRun {
            script: Some("nope".into()),
            ..new
        };
        assert_eq!(
            ops.dry_run(missing).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }
}
