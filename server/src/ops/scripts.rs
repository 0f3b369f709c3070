//! Stored scripts and the files attached to them.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize};

use crate::model::{AfterRun, Attachment, EventKind, Ids, Phase, RunLevel, Scope, Script};
use crate::names::Kind;
use crate::store::StoreError;
use crate::templates;

use super::uploads::{hash_file, sha256_hex};
use super::{Ops, OpsError, Result};

/// A script with its attachments.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = ScriptView)]
pub struct ScriptDetail {
    /// The script.
    #[serde(flatten)]
    pub script: Script,
    /// Its attachments, by path (without their content).
    pub attachments: Vec<Attachment>,
}

/// A script to save.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewScript {
    /// A unique name: 1 to 63 letters, digits, `.`, `_` and `-`, not starting with `.` or `-`.
    #[schema(
        min_length = 1,
        max_length = 63,
        pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]*$"
    )]
    pub name: String,
    /// The script text.
    pub body: String,
    /// The program that runs it (default `/bin/sh`).
    #[serde(default = "default_interpreter")]
    pub interpreter: String,
    /// Run as this user and group (the agent must be root).
    pub run_as: Option<Ids>,
    /// Working directory on the host.
    pub working_dir: Option<String>,
    /// Timeout in seconds (default an hour; 0: none).
    pub timeout_secs: Option<u32>,
    /// What to do after a successful run (default `none`).
    #[serde(default = "default_after_run")]
    pub after_run: AfterRun,
    /// Who may run it: `read-only` (users of that run level may) or `read-write` (the
    /// default: only users of that level).
    #[serde(default = "default_run_level")]
    pub run_level: RunLevel,
}

fn default_interpreter() -> String {
    "/bin/sh".into()
}

fn default_after_run() -> AfterRun {
    AfterRun::None
}

fn default_run_level() -> RunLevel {
    RunLevel::ReadWrite
}

impl From<NewScript> for Script {
    fn from(new: NewScript) -> Script {
        Script {
            name: new.name,
            interpreter: new.interpreter,
            body: new.body.into_bytes(),
            run_as: new.run_as,
            working_dir: new.working_dir,
            timeout_secs: new.timeout_secs,
            after_run: new.after_run,
            run_level: new.run_level,
        }
    }
}

impl TryFrom<Script> for NewScript {
    type Error = OpsError;

    /// `Invalid` when the script's text is not UTF-8: the API takes text.
    fn try_from(script: Script) -> Result<NewScript> {
        Ok(NewScript {
            body: text_of(&script.name, script.body)?,
            name: script.name,
            interpreter: script.interpreter,
            run_as: script.run_as,
            working_dir: script.working_dir,
            timeout_secs: script.timeout_secs,
            after_run: script.after_run,
            run_level: script.run_level,
        })
    }
}

/// The text of script `name`'s `body`: `Invalid` when it is not UTF-8, which the API cannot
/// carry.
fn text_of(name: &str, body: Vec<u8>) -> Result<String> {
    String::from_utf8(body).map_err(|_| {
        OpsError::Invalid(format!(
            "script {name}: its text is not UTF-8, which the HTTP API cannot carry"
        ))
    })
}

/// A script's new settings: the fields given replace the stored ones, the fields left out are
/// kept (`null` clears `run_as`, `working_dir` and `timeout_secs`). A script that does not exist
/// yet is made, with the defaults of [`NewScript`] for what is left out; it needs `body`.
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScriptUpdate {
    /// The path's name, if given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The script text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The program that runs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interpreter: Option<String>,
    /// Run as this user and group (`null`: as the agent).
    #[serde(
        default,
        deserialize_with = "given",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Ids>)]
    pub run_as: Option<Option<Ids>>,
    /// Working directory on the host (`null`: none).
    #[serde(
        default,
        deserialize_with = "given",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub working_dir: Option<Option<String>>,
    /// Timeout in seconds (`null`: the default hour; 0: none).
    #[serde(
        default,
        deserialize_with = "given",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<u32>)]
    pub timeout_secs: Option<Option<u32>>,
    /// What to do after a successful run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_run: Option<AfterRun>,
    /// Who may run it: `read-only` or `read-write`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_level: Option<RunLevel>,
}

/// A field that is present, even as `null` (`Some(None)`), told from one left out (`None`,
/// through `#[serde(default)]`).
fn given<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

impl From<ScriptUpdate> for ScriptChange {
    fn from(update: ScriptUpdate) -> ScriptChange {
        ScriptChange {
            body: update.body.map(String::into_bytes),
            interpreter: update.interpreter,
            run_as: update.run_as,
            working_dir: update.working_dir,
            timeout_secs: update.timeout_secs,
            after_run: update.after_run,
            run_level: update.run_level,
        }
    }
}

impl ScriptUpdate {
    /// `change` to script `name` as the API takes it: `Invalid` when its text is not UTF-8.
    pub fn new(name: &str, change: ScriptChange) -> Result<ScriptUpdate> {
        Ok(ScriptUpdate {
            name: Some(name.to_string()),
            body: change.body.map(|b| text_of(name, b)).transpose()?,
            interpreter: change.interpreter,
            run_as: change.run_as,
            working_dir: change.working_dir,
            timeout_secs: change.timeout_secs,
            after_run: change.after_run,
            run_level: change.run_level,
        })
    }
}

/// Where to attach a file and how, as the query of `PUT /api/v1/scripts/{name}/attachments`
/// (the file itself is the request's body): what is left out is kept from the attachment
/// replaced.
#[derive(Debug, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AttachmentQuery {
    /// Absolute path on the hosts.
    pub path: String,
    /// Mode, octal (default: the replaced attachment's, else 644).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Owner on the hosts, `UID:GID` (default: the replaced attachment's, else the agent's
    /// user).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Uploaded `before` or `after` the script (default: as the replaced attachment, else
    /// `before`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Whether the file is a template, rendered for each host (default: as the replaced
    /// attachment, else not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<bool>,
}

impl From<&AttachFile> for AttachmentQuery {
    fn from(file: &AttachFile) -> AttachmentQuery {
        AttachmentQuery {
            path: file.path.clone(),
            mode: file.mode.map(|m| format!("{m:o}")),
            owner: file.owner.map(|o| format!("{}:{}", o.uid, o.gid)),
            phase: file.phase,
            template: file.template,
        }
    }
}

/// An attachment, by its path on the hosts (the query of `DELETE
/// /api/v1/scripts/{name}/attachments`).
#[derive(Debug, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PathQuery {
    /// Its path on the hosts.
    pub path: String,
}

/// A file to attach to a script.
#[derive(Debug, Clone)]
pub struct NewAttachment {
    /// The script.
    pub script: String,
    /// Absolute path on the hosts.
    pub path: String,
    /// What the file holds.
    pub content: Vec<u8>,
    /// Owner on the hosts (default: the agent's user).
    pub owner: Option<Ids>,
    /// Mode.
    pub mode: u32,
    /// Uploaded before or after the script.
    pub phase: Phase,
    /// A template, rendered for each host before it is sent.
    pub template: bool,
}

/// A local file to attach to a script: read as it is stored, never whole in memory.
#[derive(Debug, Clone)]
pub struct AttachFile {
    /// The script.
    pub script: String,
    /// Absolute path on the hosts.
    pub path: String,
    /// The local file.
    pub source: PathBuf,
    /// Owner on the hosts (`None`: the replaced attachment's, else the agent's user).
    pub owner: Option<Ids>,
    /// Mode (`None`: the replaced attachment's, else 644).
    pub mode: Option<u32>,
    /// Uploaded before or after the script (`None`: as the replaced attachment, else before).
    pub phase: Option<Phase>,
    /// A template, rendered for each host (`None`: as the replaced attachment, else not).
    pub template: Option<bool>,
}

/// A change to a stored script: what it names replaces the stored value, what it leaves out
/// (`None`) is kept. A script that does not exist yet is made from it, with the defaults for
/// what it leaves out (`/bin/sh`, no run-as user or working directory, the default timeout,
/// nothing after a run, `read-write`); it must name the body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptChange {
    /// The script text.
    pub body: Option<Vec<u8>>,
    /// The program that runs it.
    pub interpreter: Option<String>,
    /// Run as this user and group (`Some(None)`: as the agent).
    pub run_as: Option<Option<Ids>>,
    /// Working directory on the host (`Some(None)`: none).
    pub working_dir: Option<Option<String>>,
    /// Timeout in seconds (`Some(None)`: the default).
    pub timeout_secs: Option<Option<u32>>,
    /// What to do after a successful run.
    pub after_run: Option<AfterRun>,
    /// Who may run it.
    pub run_level: Option<RunLevel>,
}

impl ScriptChange {
    /// A new script `name` made from this change, with the defaults for what it leaves out;
    /// `None` without a body.
    pub fn new_script(self, name: &str) -> Option<Script> {
        self.body.as_ref()?;
        let defaults = Script {
            name: name.to_string(),
            interpreter: "/bin/sh".into(),
            body: Vec::new(),
            run_as: None,
            working_dir: None,
            timeout_secs: None,
            after_run: AfterRun::None,
            run_level: RunLevel::ReadWrite,
        };
        Some(self.apply(defaults))
    }

    /// `script` with this change made.
    fn apply(self, script: Script) -> Script {
        Script {
            name: script.name,
            interpreter: self.interpreter.unwrap_or(script.interpreter),
            body: self.body.unwrap_or(script.body),
            run_as: self.run_as.unwrap_or(script.run_as),
            working_dir: self.working_dir.unwrap_or(script.working_dir),
            timeout_secs: self.timeout_secs.unwrap_or(script.timeout_secs),
            after_run: self.after_run.unwrap_or(script.after_run),
            run_level: self.run_level.unwrap_or(script.run_level),
        }
    }
}

impl NewAttachment {
    /// The attachment as stored: its size and SHA-256 computed from its content.
    pub fn into_attachment(self) -> Attachment {
        Attachment {
            size: self.content.len() as u64,
            sha256: sha256_hex(&self.content),
            script: self.script,
            path: self.path,
            content: self.content,
            owner: self.owner,
            mode: self.mode,
            phase: self.phase,
            template: self.template,
        }
    }
}

impl Ops {
    /// Saves a script; one of the same name is replaced (keeping its attachments and groups)
    /// only when `replace`. A new script's name follows the rule ([`crate::names`]) and
    /// differs from no other script's only in letter case (one of an older database that
    /// breaks it can still be replaced).
    pub async fn save_script(&self, script: &Script, replace: bool) -> Result<()> {
        let store = self.fleet.store();
        let replaced = match store.script(&script.name).await {
            Ok(_) => replace,
            Err(StoreError::NotFound(..)) => false,
            Err(e) => return Err(e.into()),
        };
        if !replaced {
            self.check_new_name(Kind::Script, &script.name).await?;
        }
        if script.run_level == RunLevel::None {
            return Err(OpsError::Invalid(format!(
                "script {}: its run level is read-only or read-write",
                script.name
            )));
        }
        store.put_script(script, replace).await?;
        let detail = format!(
            "script {} saved ({} bytes, {})",
            script.name,
            script.body.len(),
            script.run_level.as_str()
        );
        self.record(None, EventKind::ScriptChanged, &detail).await
    }

    /// Changes script `name` as `change` says, keeping what it leaves out; makes the script if
    /// there is none (then `change` must name its body). Answers the script as saved.
    pub async fn change_script(&self, name: &str, change: ScriptChange) -> Result<Script> {
        let script = match self.fleet.store().script(name).await {
            Ok(stored) => change.apply(stored),
            Err(StoreError::NotFound(..)) => change.new_script(name).ok_or_else(|| {
                OpsError::Invalid(format!(
                    "there is no script {name}: a new one needs its body"
                ))
            })?,
            Err(e) => return Err(e.into()),
        };
        self.save_script(&script, true).await?;
        Ok(script)
    }

    /// Every script, by name.
    pub async fn scripts(&self) -> Result<Vec<Script>> {
        Ok(self.fleet.store().scripts().await?)
    }

    /// One script with its attachments.
    pub async fn script(&self, name: &str) -> Result<ScriptDetail> {
        let store = self.fleet.store();
        Ok(ScriptDetail {
            script: store.script(name).await?,
            attachments: store.attachments(Some(name)).await?,
        })
    }

    /// Removes a script with its attachments and the variables of its scope: with variables,
    /// only when `force` says to remove them too (else [`OpsError::ForceNeeded`]).
    pub async fn remove_script(&self, name: &str, force: bool) -> Result<()> {
        self.refuse_losing_variables(&Scope::Script(name.to_string()), force)
            .await?;
        self.fleet.store().remove_script(name).await?;
        self.record(
            None,
            EventKind::ScriptChanged,
            &format!("script {name} removed"),
        )
        .await
    }

    /// Attaches a file to a script (replacing one with the same path); returns it as stored.
    pub async fn add_attachment(&self, new: NewAttachment) -> Result<Attachment> {
        if new.template {
            check_template(&new.path, &new.content)?;
        }
        let attachment = new.into_attachment();
        self.fleet.store().put_attachment(&attachment).await?;
        self.record(None, EventKind::ScriptChanged, &attached(&attachment))
            .await?;
        Ok(attachment)
    }

    /// Attaches a local file to a script (replacing one with the same path, whose owner, mode
    /// and phase it keeps when `file` does not give them), streamed from the file into the
    /// store; returns it as stored (without its content).
    pub async fn attach_file(&self, file: AttachFile) -> Result<Attachment> {
        if !file.path.starts_with('/') {
            let message = format!("{}: the path on the hosts must be absolute", file.path);
            return Err(OpsError::Invalid(message));
        }
        let unreadable = |e| OpsError::File(file.source.clone(), e);
        let (sha256, size) = hash_file(&file.source).await.map_err(unreadable)?;
        let source = std::fs::File::open(&file.source).map_err(unreadable)?;
        // What is not given is kept from the attachment this one replaces.
        let store = self.fleet.store();
        let replaced = store.attachment(&file.script, &file.path).await?;
        let attachment = Attachment {
            owner: file.owner.or(replaced.as_ref().and_then(|a| a.owner)),
            mode: (file.mode)
                .or(replaced.as_ref().map(|a| a.mode))
                .unwrap_or(0o644),
            phase: (file.phase)
                .or(replaced.as_ref().map(|a| a.phase))
                .unwrap_or(Phase::Before),
            template: (file.template)
                .or(replaced.as_ref().map(|a| a.template))
                .unwrap_or(false),
            script: file.script,
            path: file.path,
            content: Vec::new(),
            size,
            sha256: sha256.iter().map(|b| format!("{b:02x}")).collect(),
        };
        if attachment.template {
            // A template is read whole when it is rendered: it must be text of a bounded size.
            let text = super::uploads::read_template(&file.source).await?;
            check_template(&attachment.path, text.as_bytes())?;
        }
        store.put_attachment_file(&attachment, source).await?;
        self.record(None, EventKind::ScriptChanged, &attached(&attachment))
            .await?;
        Ok(attachment)
    }

    /// A script's attachments, by path; or every attachment.
    pub async fn attachments(&self, script: Option<&str>) -> Result<Vec<Attachment>> {
        Ok(self.fleet.store().attachments(script).await?)
    }

    /// Removes an attachment.
    pub async fn remove_attachment(&self, script: &str, path: &str) -> Result<()> {
        self.fleet.store().remove_attachment(script, path).await?;
        let detail = format!("{path} removed from script {script}");
        self.record(None, EventKind::ScriptChanged, &detail).await
    }
}

/// The event of an attachment stored.
fn attached(a: &Attachment) -> String {
    format!(
        "{} attached to script {} ({} bytes, sha256 {}, mode {:o}, {:?}{})",
        a.path,
        a.script,
        a.size,
        a.sha256,
        a.mode,
        a.phase,
        if a.template { ", a template" } else { "" }
    )
}

/// Refuses `content`, the template of the attachment at `path`, if it is not UTF-8 text of at
/// most [`templates::MAX_RENDERED`] bytes or not a template minijinja can read (its syntax is
/// checked once here; what it names is checked per host, when it is rendered).
fn check_template(path: &str, content: &[u8]) -> Result<()> {
    templates::check(path, content).map_err(|e| OpsError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::ErrorKind;
    use crate::ops::testing::{ev, fixture, last};

    fn script(body: &str) -> Script {
        Script {
            name: "hello".into(),
            interpreter: "/bin/sh".into(),
            body: body.as_bytes().to_vec(),
            run_as: None,
            working_dir: None,
            timeout_secs: Some(5),
            after_run: AfterRun::None,
            run_level: crate::model::RunLevel::ReadWrite,
        }
    }

    #[test]
    fn the_apis_script_types_carry_what_the_client_sends() {
        // A change as the client sends it reads back as the same change: what is left out is
        // not sent (kept), a cleared field is sent as null (cleared).
        let change = ScriptChange {
            body: Some(b"echo 1".to_vec()),
            run_as: Some(None),
            timeout_secs: Some(Some(90)),
            run_level: Some(RunLevel::ReadOnly),
            ..ScriptChange::default()
        };
        let sent = serde_json::to_value(ScriptUpdate::new("hello", change.clone()).unwrap());
        assert_eq!(
            sent.as_ref().unwrap(),
            &serde_json::json!({"name": "hello", "body": "echo 1", "run_as": null,
                "timeout_secs": 90, "run_level": "read-only"})
        );
        let read: ScriptUpdate = serde_json::from_value(sent.unwrap()).unwrap();
        assert_eq!(ScriptChange::from(read), change);
        // A new script reads back as itself; one whose text is not UTF-8 cannot be sent.
        let new = script("echo 2");
        let sent = serde_json::to_value(NewScript::try_from(new.clone()).unwrap()).unwrap();
        let read: NewScript = serde_json::from_value(sent).unwrap();
        assert_eq!(Script::from(read), new);
        let binary = Script {
            body: vec![0xff, 0xfe],
            ..new
        };
        let refused = NewScript::try_from(binary).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Invalid);
        let change = ScriptChange {
            body: Some(vec![0xff]),
            ..ScriptChange::default()
        };
        let refused = ScriptUpdate::new("hello", change).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Invalid);
    }

    #[tokio::test]
    async fn scripts_are_saved_replaced_shown_and_removed_and_recorded() {
        let (_dir, ops) = fixture().await;
        ops.save_script(&script("echo 1"), false).await.unwrap();
        assert_eq!(
            last(&ops).await,
            ev(
                "",
                "script-changed",
                "script hello saved (6 bytes, read-write)"
            )
        );
        let taken = ops.save_script(&script("echo 2"), false).await.unwrap_err();
        assert_eq!(taken.kind(), ErrorKind::Conflict);
        // A script is read-only or read-write: none would be run by no one.
        let never = Script {
            run_level: RunLevel::None,
            ..script("echo 0")
        };
        let refused = ops.save_script(&never, true).await.unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Invalid);
        let looks = Script {
            run_level: RunLevel::ReadOnly,
            ..script("echo 21")
        };
        ops.save_script(&looks, true).await.unwrap();
        assert_eq!(ops.scripts().await.unwrap(), [looks]);
        ops.save_script(&script("echo 22"), true).await.unwrap();
        assert_eq!(ops.scripts().await.unwrap(), [script("echo 22")]);

        let attached = ops
            .add_attachment(NewAttachment {
                script: "hello".into(),
                path: "/etc/x.conf".into(),
                content: b"abc".to_vec(),
                owner: None,
                mode: 0o600,
                phase: Phase::Before,
                template: false,
            })
            .await
            .unwrap();
        let sha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!((attached.size, attached.sha256.as_str()), (3, sha256));
        assert_eq!(
            last(&ops).await,
            ev(
                "",
                "script-changed",
                &format!(
                    "/etc/x.conf attached to script hello (3 bytes, sha256 {sha256}, mode 600, Before)"
                )
            )
        );
        let detail = ops.script("hello").await.unwrap();
        assert_eq!(detail.script, script("echo 22"));
        assert_eq!(detail.attachments, std::slice::from_ref(&attached));
        assert_eq!(ops.attachments(None).await.unwrap(), [attached]);
        let orphan = ops
            .add_attachment(NewAttachment {
                script: "nope".into(),
                path: "/x".into(),
                content: Vec::new(),
                owner: None,
                mode: 0o644,
                phase: Phase::After,
                template: false,
            })
            .await
            .unwrap_err();
        assert_eq!(orphan.kind(), ErrorKind::NotFound);

        ops.remove_attachment("hello", "/etc/x.conf").await.unwrap();
        assert_eq!(
            last(&ops).await,
            ev(
                "",
                "script-changed",
                "/etc/x.conf removed from script hello"
            )
        );
        assert!(ops.attachments(Some("hello")).await.unwrap().is_empty());
        let gone = ops
            .remove_attachment("hello", "/etc/x.conf")
            .await
            .unwrap_err();
        assert_eq!(gone.kind(), ErrorKind::NotFound);

        ops.remove_script("hello", false).await.unwrap();
        assert_eq!(
            last(&ops).await,
            ev("", "script-changed", "script hello removed")
        );
        let missing = ops.script("hello").await.unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn a_change_keeps_what_it_does_not_name() {
        let (_dir, ops) = fixture().await;
        let missing = ops
            .change_script("hello", ScriptChange::default())
            .await
            .unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::Invalid);
        assert!(ops.scripts().await.unwrap().is_empty());
        let made = ops
            .change_script(
                "hello",
                ScriptChange {
                    body: Some(b"echo 1".to_vec()),
                    ..ScriptChange::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            made,
            Script {
                timeout_secs: None,
                ..script("echo 1")
            }
        );
        let looks = Script {
            run_level: RunLevel::ReadOnly,
            working_dir: Some("/tmp".into()),
            run_as: Some(Ids { uid: 1, gid: 2 }),
            ..script("echo 2")
        };
        ops.save_script(&looks, true).await.unwrap();
        // Only the body named: the run level (and everything else) stays.
        let changed = ops
            .change_script(
                "hello",
                ScriptChange {
                    body: Some(b"echo 3".to_vec()),
                    ..ScriptChange::default()
                },
            )
            .await
            .unwrap();
        let expected = Script {
            body: b"echo 3".to_vec(),
            ..looks.clone()
        };
        assert_eq!(
            (&changed, ops.scripts().await.unwrap()),
            (&expected, vec![expected.clone()])
        );
        // Named as none: cleared.
        let cleared = ops
            .change_script(
                "hello",
                ScriptChange {
                    run_as: Some(None),
                    working_dir: Some(None),
                    run_level: Some(RunLevel::ReadWrite),
                    ..ScriptChange::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(cleared, script("echo 3"));
    }
}
