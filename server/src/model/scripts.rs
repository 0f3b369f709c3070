//! Scripts, what runs after them, their attachments, and environment variables with their
//! scopes.

use otto_proto::Control;
use serde::{Deserialize, Serialize};

use super::{RunLevel, lossy_text, text_bytes};

/// What happens on the host after a script ran successfully.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum AfterRun {
    /// Nothing.
    None,
    /// Reload the agent's configuration.
    Reload,
    /// Make the agent exit (its service manager restarts it).
    Exit,
    /// Reboot the host.
    Reboot,
    /// Shut the host down.
    Shutdown,
}

impl AfterRun {
    /// The control request it makes, if any.
    pub fn control(self) -> Option<Control> {
        match self {
            AfterRun::None => None,
            AfterRun::Reload => Some(Control::Reload),
            AfterRun::Exit => Some(Control::Exit),
            AfterRun::Reboot => Some(Control::Reboot),
            AfterRun::Shutdown => Some(Control::Shutdown),
        }
    }

    /// Its name, as stored and as `parse` reads it.
    pub fn as_str(self) -> &'static str {
        match self {
            AfterRun::None => "none",
            AfterRun::Reload => "reload",
            AfterRun::Exit => "exit",
            AfterRun::Reboot => "reboot",
            AfterRun::Shutdown => "shutdown",
        }
    }

    /// The action named `text`, if it is one.
    pub fn parse(text: &str) -> Option<AfterRun> {
        Some(match text {
            "none" => AfterRun::None,
            "reload" => AfterRun::Reload,
            "exit" => AfterRun::Exit,
            "reboot" => AfterRun::Reboot,
            "shutdown" => AfterRun::Shutdown,
            _ => return None,
        })
    }
}

/// A user and group id pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Ids {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// A stored script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Script {
    /// Unique name.
    pub name: String,
    /// The program that runs it, e.g. `/bin/sh`.
    pub interpreter: String,
    /// The script text.
    #[serde(serialize_with = "lossy_text", deserialize_with = "text_bytes")]
    #[schema(value_type = String)]
    pub body: Vec<u8>,
    /// Run as this user and group (agent must be root), else as the agent.
    pub run_as: Option<Ids>,
    /// Working directory on the host.
    pub working_dir: Option<String>,
    /// Timeout in seconds; None means the default hour (`ScriptTimeout::DEFAULT_SECS`), 0 none.
    pub timeout_secs: Option<u32>,
    /// What happens after a successful run.
    pub after_run: AfterRun,
    /// Who may run it: users of the run level `read-only` run only `read-only` scripts (which
    /// look and change nothing); `read-write` (the default) needs that level.
    #[serde(default = "read_write")]
    pub run_level: RunLevel,
}

#[cfg(test)]
impl Script {
    /// A read-write `/bin/sh` script with `body`, run as the agent's user, where it likes,
    /// with the default timeout and nothing after it.
    pub fn example(name: &str, body: &[u8]) -> Script {
        Script {
            name: name.into(),
            interpreter: "/bin/sh".into(),
            body: body.to_vec(),
            run_as: None,
            working_dir: None,
            timeout_secs: None,
            after_run: AfterRun::None,
            run_level: RunLevel::ReadWrite,
        }
    }
}

/// The run level of a script that does not say: read-write.
fn read_write() -> RunLevel {
    RunLevel::ReadWrite
}

/// Whether an attachment goes up before or after its script.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Uploaded before the script runs.
    Before,
    /// Uploaded after it succeeded.
    After,
}

impl Phase {
    /// Its name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Before => "before",
            Phase::After => "after",
        }
    }
}

/// A file uploaded with a script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attachment {
    /// The script it belongs to.
    pub script: String,
    /// Absolute path on the host.
    pub path: String,
    /// Its bytes (not listed in JSON; `size` and `sha256` are).
    #[serde(skip)]
    pub content: Vec<u8>,
    /// Its size in bytes.
    pub size: u64,
    /// SHA-256, hex.
    pub sha256: String,
    /// Owner; None keeps the agent's user.
    pub owner: Option<Ids>,
    /// Permission bits.
    pub mode: u32,
    /// Before or after the script.
    pub phase: Phase,
    /// A template, rendered for each host before it is sent (see [`crate::templates`]);
    /// `sha256` and `size` are the template's.
    #[serde(default)]
    pub template: bool,
}

/// Where an environment variable applies. Later scopes win: global, script, group, host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "scope", content = "owner", rename_all = "lowercase")]
pub enum Scope {
    /// Every run.
    Global,
    /// Runs on members of this group.
    Group(String),
    /// Runs on this host.
    Host(String),
    /// Runs of this script.
    Script(String),
}

impl Scope {
    /// Its kind (`global`, `group`, `host`, `script`) and its owner's name (empty for global).
    pub fn parts(&self) -> (&'static str, &str) {
        match self {
            Scope::Global => ("global", ""),
            Scope::Group(g) => ("group", g),
            Scope::Host(h) => ("host", h),
            Scope::Script(s) => ("script", s),
        }
    }

    /// The scope of kind `scope` owned by `owner`, if `scope` is a kind.
    pub fn from_parts(scope: &str, owner: String) -> Option<Scope> {
        Some(match scope {
            "global" => Scope::Global,
            "group" => Scope::Group(owner),
            "host" => Scope::Host(owner),
            "script" => Scope::Script(owner),
            _ => return None,
        })
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.parts() {
            (scope, "") => f.write_str(scope),
            (scope, owner) => write!(f, "{scope} {owner}"),
        }
    }
}

/// One environment variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvVar {
    /// Where it applies.
    #[serde(flatten)]
    pub scope: Scope,
    /// Its name.
    pub name: String,
    /// Its value (serialized masked when secret).
    #[serde(serialize_with = "masked_value")]
    pub value: Secretish,
}

/// A value that may be secret: secret ones print as `********` everywhere.
#[derive(Clone, PartialEq, Eq)]
pub struct Secretish {
    /// The value itself: only ever sent to agents.
    pub value: String,
    /// Whether it is secret.
    pub secret: bool,
}

impl Secretish {
    /// What may be shown to a person or a log.
    pub fn shown(&self) -> &str {
        if self.secret { "********" } else { &self.value }
    }
}

impl std::fmt::Debug for Secretish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.shown())
    }
}

fn masked_value<S: serde::Serializer>(v: &Secretish, s: S) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let mut st = s.serialize_struct("value", 2)?;
    st.serialize_field("value", v.shown())?;
    st.serialize_field("secret", &v.secret)?;
    st.end()
}
