//! Dry runs (`--dry-run`, Ansible's `--check`): which hosts an action would touch, and with
//! what (the script's name and checksum, each file's checksum), found as the action itself
//! finds them and held to the same permissions; nothing is sent, started or recorded.

use serde::{Deserialize, Serialize};

use super::control::ControlRequest;
use super::live::NewRun;
use super::runs::{Job, command_body};
use super::uploads::sha256_hex;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

use super::targets::HostResult;
use super::{Ops, OpsError, Result, Targets};
use crate::client::UploadSpec;
use crate::fleet::Untrusted;
use crate::model::{Attachment, EnvVar, Host, Ids, Phase};
use crate::{environment, templates};

/// What a host has at the path of an upload or a fetch, as its agent said when a dry run asked
/// (the only thing a dry run asks of agents: it reads, and changes nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HostFile {
    /// The host.
    pub host: String,
    /// The file's length, if there is one.
    pub size: Option<u64>,
    /// Its SHA-256 (hex).
    pub sha256: Option<String>,
    /// Its permission bits.
    pub mode: Option<u32>,
    /// For an upload: whether the host's file already is the one it would make (the same
    /// checksum, mode and owner asked), so nothing would be sent.
    pub unchanged: Option<bool>,
    /// Why the host could not say (unreachable, or its agent refused the question).
    pub error: Option<String>,
}

/// An upload a dry run looks at: the file by its checksum and length (it is not sent), or a
/// template by its text (rendered for each host, as the upload would), where it would go, and
/// to which hosts. The body of `POST /api/v1/dry-run/uploads`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadCheck {
    /// Absolute path on the hosts.
    pub path: String,
    /// The file's SHA-256, hex (with `size`; not with `template`).
    #[schema(min_length = 64, max_length = 64, pattern = "^[0-9a-fA-F]{64}$")]
    pub sha256: Option<String>,
    /// Its length in bytes (with `sha256`; not with `template`).
    pub size: Option<u64>,
    /// Instead of `sha256` and `size`: the text of a template (Jinja2's syntax), rendered for
    /// each host with its environment and facts.
    pub template: Option<String>,
    /// Its mode (default 0o644).
    #[serde(default = "default_mode")]
    #[schema(maximum = 4095)]
    pub mode: u32,
    /// Its owner on the hosts (default: the agent's user).
    pub owner: Option<Ids>,
    /// Whether it would be sent even where it is unchanged.
    #[serde(default)]
    pub force: bool,
    /// The hosts.
    #[serde(flatten)]
    pub targets: Targets,
}

fn default_mode() -> u32 {
    0o644
}

/// A fetch a dry run looks at: the body of `POST /api/v1/dry-run/fetches`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FetchCheck {
    /// Absolute path of the file on the hosts.
    pub path: String,
    /// The hosts.
    #[serde(flatten)]
    pub targets: Targets,
}

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
    /// For an upload or a fetch: what each host has at the path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_hosts: Vec<HostFile>,
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
    /// Whether it is a template: `size` and `sha256` are then the template's, and `rendered`
    /// says what each host would get.
    #[serde(default)]
    pub template: bool,
    /// For a template: its rendering for each host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rendered: Vec<Rendered>,
}

/// A template rendered for one host by a dry run (never sent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rendered {
    /// The host.
    pub host: String,
    /// The rendering's size in bytes.
    pub size: Option<u64>,
    /// Its SHA-256, hex.
    pub sha256: Option<String>,
    /// Why it could not be rendered (the line named; no secret shown).
    pub error: Option<String>,
}

impl Rendered {
    /// `path`'s template `source` rendered for `host` with `env`; the rendering too, if it
    /// could be.
    fn of(
        path: &str,
        source: &[u8],
        host: &Host,
        env: &environment::Assembled,
    ) -> (Rendered, Option<Vec<u8>>) {
        match templates::render(path, source, host, env) {
            Ok(bytes) => (
                Rendered {
                    host: host.name.clone(),
                    size: Some(bytes.len() as u64),
                    sha256: Some(sha256_hex(&bytes)),
                    error: None,
                },
                Some(bytes),
            ),
            Err(e) => (
                Rendered {
                    host: host.name.clone(),
                    size: None,
                    sha256: None,
                    error: Some(e.to_string()),
                },
                None,
            ),
        }
    }
}

impl HostResult for HostFile {
    fn succeeded(&self) -> bool {
        self.error.is_none()
    }

    fn skipped(host: String, why: &str) -> HostFile {
        HostFile {
            host,
            size: None,
            sha256: None,
            mode: None,
            unchanged: None,
            error: Some(why.to_owned()),
        }
    }

    /// A host that could not be asked says why (`error`).
    fn mark_unreached(&mut self, _: Option<Untrusted>) {}
}

impl PlannedFile {
    /// Attachment `a` as a run of its script on `hosts` would send it: a template rendered for
    /// each of them with its environment among `all_env`.
    fn of(a: &Attachment, hosts: &[Host], all_env: &[EnvVar]) -> PlannedFile {
        let rendered = match a.template {
            true => hosts
                .iter()
                .map(|host| {
                    let env = environment::assemble(all_env, Some(&a.script), host);
                    Rendered::of(&a.path, &a.content, host, &env).0
                })
                .collect(),
            false => Vec::new(),
        };
        PlannedFile {
            path: a.path.clone(),
            size: a.size,
            sha256: a.sha256.clone(),
            phase: Some(a.phase),
            template: a.template,
            rendered,
        }
    }
}

impl Ops {
    /// What `new` would run where, checked as a launch of it is (the job's run level, its
    /// hosts); nothing is started or recorded.
    pub async fn dry_run(&self, new: NewRun) -> Result<DryRun> {
        let (targets, job, _, _) = new.parts()?;
        let (_, hosts) = self.checked_job(&targets, &job).await?;
        let left_out = self.selection(&targets).await?.left_out;
        let store = self.fleet.store();
        let (sha256, files) = match &job {
            Job::Script { name, .. } => {
                let script = store.script(name).await?;
                let files = store.attachments(Some(name)).await?;
                let all_env = match files.iter().any(|a| a.template) {
                    true => store.env(None).await?,
                    false => Vec::new(),
                };
                (
                    sha256_hex(&script.body),
                    files
                        .iter()
                        .map(|a| PlannedFile::of(a, &hosts, &all_env))
                        .collect(),
                )
            }
            Job::Command { command, .. } => (sha256_hex(&command_body(command)), Vec::new()),
        };
        Ok(DryRun {
            what: job.label(),
            sha256: Some(sha256),
            files,
            hosts: hosts.into_iter().map(|h| h.name).collect(),
            left_out,
            on_hosts: Vec::new(),
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
            on_hosts: Vec::new(),
        })
    }

    /// Which hosts `check` would upload to, and for each whether its file is already the one
    /// it would make (asked of its agent, which changes nothing): nothing is sent. A template
    /// is rendered for each host, as the upload would, and each host's file compared with its
    /// own rendering.
    pub async fn dry_run_upload(&self, check: UploadCheck) -> Result<DryRun> {
        if !check.path.starts_with('/') {
            let message = format!("{}: the path on the hosts must be absolute", check.path);
            return Err(OpsError::Invalid(message));
        }
        let hosts = self.resolve(&check.targets).await?;
        let names = hosts.iter().map(|h| h.name.clone()).collect();
        let spec = |sha256, len| UploadSpec {
            path: check.path.clone(),
            owner: super::uploads::credentials(check.owner),
            mode: check.mode,
            sha256,
            len,
        };
        // What each host would be sent, or why nothing could be.
        let mut specs = HashMap::new();
        let (what, sha256, files) = match (&check.template, &check.sha256, check.size) {
            (Some(text), None, None) => {
                templates::check(&check.path, text.as_bytes())
                    .map_err(|e| OpsError::Invalid(e.to_string()))?;
                let all_env = self.fleet.store().env(None).await?;
                let mut rendered = Vec::new();
                for host in &hosts {
                    let env = environment::assemble(&all_env, None, host);
                    let (one, bytes) = Rendered::of(&check.path, text.as_bytes(), host, &env);
                    let planned = match bytes {
                        Some(bytes) => Ok(spec(Sha256::digest(&bytes).into(), bytes.len() as u64)),
                        None => Err(one.error.clone().unwrap_or_default()),
                    };
                    specs.insert(host.name.clone(), planned);
                    rendered.push(one);
                }
                let file = PlannedFile {
                    path: check.path.clone(),
                    size: text.len() as u64,
                    sha256: sha256_hex(text.as_bytes()),
                    phase: None,
                    template: true,
                    rendered,
                };
                let what = format!("upload of a template to {}", check.path);
                (what, None, vec![file])
            }
            (None, Some(sha256), Some(size)) => {
                let parsed = super::uploads::parse_sha256(sha256).map_err(OpsError::Invalid)?;
                for host in &hosts {
                    specs.insert(host.name.clone(), Ok(spec(parsed, size)));
                }
                let what = format!("upload to {} ({size} bytes)", check.path);
                (what, Some(sha256.to_ascii_lowercase()), Vec::new())
            }
            _ => {
                let message = "give the file's sha256 and size, or a template (not both)";
                return Err(OpsError::Invalid(message.into()));
            }
        };
        let specs = Arc::new(specs);
        let force = check.force;
        let asked = self
            .for_each(hosts, move |ops, host| {
                let specs = specs.clone();
                async move {
                    match specs.get(&host.name) {
                        Some(Ok(spec)) => {
                            ops.host_file(&host, &spec.path, (!force).then_some(spec))
                                .await
                        }
                        Some(Err(why)) => HostFile::skipped(host.name, why),
                        None => HostFile::skipped(host.name, "not rendered"),
                    }
                }
            })
            .await;
        Ok(DryRun {
            what,
            sha256,
            files,
            hosts: names,
            left_out: self.selection(&check.targets).await?.left_out,
            on_hosts: asked,
        })
    }

    /// Which hosts `check` would fetch from, and what each has at the path (asked of its
    /// agent): nothing is copied.
    pub async fn dry_run_fetch(&self, check: FetchCheck) -> Result<DryRun> {
        if !check.path.starts_with('/') {
            let message = format!("{}: the path on the hosts must be absolute", check.path);
            return Err(OpsError::Invalid(message));
        }
        let hosts = self.resolve(&check.targets).await?;
        let names = hosts.iter().map(|h| h.name.clone()).collect();
        let path = Arc::new(check.path.clone());
        let asked = self
            .for_each(hosts, move |ops, host| {
                let path = path.clone();
                async move { ops.host_file(&host, &path, None).await }
            })
            .await;
        Ok(DryRun {
            what: format!("fetch {}", check.path),
            sha256: None,
            files: Vec::new(),
            hosts: names,
            left_out: self.selection(&check.targets).await?.left_out,
            on_hosts: asked,
        })
    }

    /// What `host` has at `path`, and, against `upload`, whether it already is that file.
    async fn host_file(&self, host: &Host, path: &str, upload: Option<&UploadSpec>) -> HostFile {
        let mut file = HostFile {
            host: host.name.clone(),
            size: None,
            sha256: None,
            mode: None,
            unchanged: None,
            error: None,
        };
        let asked = match self.fleet.connect(host).await {
            Ok(conn) => conn.stat_file(path).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match asked {
            Ok(info) => {
                if let Some(info) = info {
                    file.size = Some(info.len);
                    file.sha256 = Some(info.sha256.iter().map(|b| format!("{b:02x}")).collect());
                    file.mode = Some(info.mode);
                }
                file.unchanged = upload
                    .map(|spec| info.is_some_and(|info| super::uploads::same_file(&info, spec)));
            }
            Err(why) => file.error = Some(why),
        }
        file
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
            template: false,
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
                template: false,
                rendered: Vec::new(),
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
