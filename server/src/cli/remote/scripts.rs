//! `script …`, `attachment …` and `env …` through `serve`: an attachment is streamed from its
//! file, a secret's value read as locally and never printed.

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::model::{Attachment, EnvVar, Scope, Script, Secretish};
use crate::ops::HostVar;
use crate::print::Printer;

use super::super::CliError;
use super::super::env::{EnvCommand, read_value};
use super::super::scripts::{AttachmentCommand, FileArgs, ScriptCommand, attached, read_file};
use super::{Payload, Remote, RemoteError, read, scope_query, segment};

impl Remote {
    /// `script …`.
    pub async fn script(&self, out: &Printer, command: ScriptCommand) -> Result<(), CliError> {
        let script_path = |name: &str| format!("/api/v1/scripts/{}", segment(name));
        match command {
            ScriptCommand::List => {
                out.scripts(&self.get::<Vec<Script>>("/api/v1/scripts", &[]).await?)
            }
            ScriptCommand::Show { name } => {
                let view: ScriptView = self.get(&script_path(&name), &[]).await?;
                out.script_detail(&view.script, &view.attachments);
            }
            ScriptCommand::Add {
                name,
                file,
                body,
                interpreter,
                run_as,
                workdir,
                timeout,
                after,
                run_level,
                replace,
            } => {
                let body = match (file, body) {
                    (Some(file), _) => {
                        Some(String::from_utf8(read_file(&file)?).map_err(|_| {
                            CliError::Usage(format!(
                                "{}: through --server a script must be UTF-8 text",
                                file.display()
                            ))
                        })?)
                    }
                    (None, body) => body,
                };
                if body.is_none() && !replace {
                    return Err(CliError::Usage("give --file or --body".into()));
                }
                // Only what is given: the server keeps the rest of a replaced script.
                let given = [
                    ("body", json!(body)),
                    ("interpreter", json!(interpreter)),
                    ("run_as", json!(run_as)),
                    ("working_dir", json!(workdir)),
                    ("timeout_secs", json!(timeout)),
                    ("after_run", json!(after)),
                    ("run_level", json!(run_level)),
                ];
                let mut script = serde_json::Map::from_iter([("name".into(), json!(name))]);
                for (field, value) in given {
                    if !value.is_null() {
                        script.insert(field.into(), value);
                    }
                }
                let script = Value::Object(script);
                match replace {
                    true => self.send(Method::PUT, &script_path(&name), &script).await?,
                    false => self.send(Method::POST, "/api/v1/scripts", &script).await?,
                };
                out.say(&format!("script {name} saved"));
            }
            ScriptCommand::Remove { name, force } => {
                let removed = async |force| {
                    let forced = if force { "?force=true" } else { "" };
                    let path = format!("{}{forced}", script_path(&name));
                    self.send(Method::DELETE, &path, &Value::Null).await?;
                    Ok(())
                };
                super::super::removal::confirmed(force, removed).await?;
                out.say(&format!("script {name} removed"));
            }
        }
        Ok(())
    }

    /// `attachment …`.
    pub async fn attachment(
        &self,
        out: &Printer,
        command: AttachmentCommand,
    ) -> Result<(), CliError> {
        let attachments_path =
            |script: &str| format!("/api/v1/scripts/{}/attachments", segment(script));
        match command {
            AttachmentCommand::Add {
                script,
                file:
                    FileArgs {
                        file,
                        path,
                        owner,
                        mode,
                    },
                phase,
            } => {
                let source = tokio::fs::File::open(&file)
                    .await
                    .map_err(|e| CliError::File(file.clone(), e))?;
                let mut query = vec![
                    ("path", path),
                    ("mode", format!("{mode:o}")),
                    ("phase", phase_name(phase)),
                ];
                query.extend(owner.map(|o| ("owner", format!("{}:{}", o.uid, o.gid))));
                let payload = Payload::Stream(reqwest::Body::from(source));
                let response = self
                    .request(Method::PUT, &attachments_path(&script), &query, payload)
                    .await?;
                let a: Attachment = read(response).await?;
                out.say(&attached(&file, &a));
            }
            AttachmentCommand::List { script } => {
                let scripts = match script {
                    Some(script) => vec![script],
                    None => {
                        let all: Vec<Script> = self.get("/api/v1/scripts", &[]).await?;
                        all.into_iter().map(|s| s.name).collect()
                    }
                };
                let mut attachments = Vec::new();
                for script in scripts {
                    let path = format!("/api/v1/scripts/{}", segment(&script));
                    let view: ScriptView = self.get(&path, &[]).await?;
                    attachments.extend(view.attachments);
                }
                out.attachments(&attachments);
            }
            AttachmentCommand::Remove { script, path } => {
                let query = [("path", path.clone())];
                let target = attachments_path(&script);
                self.request(Method::DELETE, &target, &query, Payload::Empty)
                    .await?;
                out.say(&format!("attachment {path} removed from {script}"));
            }
        }
        Ok(())
    }

    /// `env …`.
    pub async fn env(&self, out: &Printer, command: EnvCommand) -> Result<(), CliError> {
        let var_path = |name: &str| format!("/api/v1/env/{}", segment(name));
        match command {
            EnvCommand::Set {
                name,
                value,
                secret,
                scope,
            } => {
                let value = read_value(&name, value, secret).await?;
                let scope = scope.scope().unwrap_or(Scope::Global);
                // Not secret unless said: left out, a secret stays one.
                let body = match secret {
                    true => json!({ "value": value, "secret": true }),
                    false => json!({ "value": value }),
                };
                let payload = Payload::Json(&body);
                self.request(Method::PUT, &var_path(&name), &scope_in(&scope), payload)
                    .await?;
                let secret = if secret { ", secret" } else { "" };
                out.say(&format!("{name} set ({scope}{secret})"));
            }
            EnvCommand::Unset { name, scope } => {
                let scope = scope.scope().unwrap_or(Scope::Global);
                let query = scope_in(&scope);
                self.request(Method::DELETE, &var_path(&name), &query, Payload::Empty)
                    .await?;
                out.say(&format!("{name} removed ({scope})"));
            }
            EnvCommand::Show { host } => {
                let path = format!("/api/v1/hosts/{}/env", segment(host.as_str()));
                let listed: Vec<HostVariable> = self.get(&path, &[]).await?;
                let vars = listed
                    .into_iter()
                    .map(|v| {
                        Ok(HostVar {
                            var: v.variable.into_var()?,
                            overridden: v.overridden,
                        })
                    })
                    .collect::<Result<Vec<HostVar>, RemoteError>>()?;
                out.host_env(&vars);
            }
            EnvCommand::List { scope, all } => {
                let scope = if all { None } else { scope.scope() };
                let query = scope.as_ref().map(scope_query).unwrap_or_default();
                let listed: Vec<Variable> = self.get("/api/v1/env", &query).await?;
                let vars = listed
                    .into_iter()
                    .map(Variable::into_var)
                    .collect::<Result<Vec<EnvVar>, RemoteError>>()?;
                out.env(&vars);
            }
        }
        Ok(())
    }
}

/// The query naming `scope` for setting or removing a variable: none for the global one.
fn scope_in(scope: &Scope) -> Vec<(&'static str, String)> {
    match scope {
        Scope::Global => Vec::new(),
        scope => scope_query(scope),
    }
}

/// `before` or `after`, as the API names a phase.
fn phase_name(phase: crate::model::Phase) -> String {
    serde_json::to_value(phase)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// `GET /api/v1/scripts/{name}`.
#[derive(Deserialize)]
struct ScriptView {
    #[serde(flatten)]
    script: Script,
    attachments: Vec<Attachment>,
}

/// A variable of `GET /api/v1/env`: a secret comes without its value.
#[derive(Deserialize)]
struct Variable {
    scope: String,
    owner: Option<String>,
    name: String,
    value: Option<String>,
    secret: bool,
}

/// A variable of `GET /api/v1/hosts/{name}/env`.
#[derive(Deserialize)]
struct HostVariable {
    #[serde(flatten)]
    variable: Variable,
    overridden: bool,
}

impl Variable {
    /// The variable as the printer takes it (a secret's value empty: it prints masked).
    fn into_var(self) -> Result<EnvVar, RemoteError> {
        let scope = Scope::from_parts(&self.scope, self.owner.unwrap_or_default())
            .ok_or_else(|| RemoteError::Answer(format!("a variable of scope {}", self.scope)))?;
        Ok(EnvVar {
            scope,
            name: self.name,
            value: Secretish {
                value: self.value.unwrap_or_default(),
                secret: self.secret,
            },
        })
    }
}
