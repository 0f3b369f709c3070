//! What runs: scripts, their attachments, and environment variables.

use std::io::Write;

use super::Printer;
use crate::model::Script;

impl<W: Write + Send + 'static> Printer<W> {
    /// Scripts, one row each.
    pub fn scripts(&self, scripts: &[Script]) {
        self.list(
            scripts,
            &[
                "script",
                "interpreter",
                "lines",
                "run as",
                "timeout",
                "after",
                "run level",
            ],
            |s| {
                vec![
                    s.name.clone(),
                    s.interpreter.clone(),
                    s.body
                        .split(|&b| b == b'\n')
                        .filter(|l| !l.is_empty())
                        .count()
                        .to_string(),
                    s.run_as
                        .map_or("agent".into(), |i| format!("{}:{}", i.uid, i.gid)),
                    match s.timeout_secs {
                        None => "agent's".into(),
                        Some(0) => "none".into(),
                        Some(n) => format!("{n} s"),
                    },
                    format!("{:?}", s.after_run).to_lowercase(),
                    s.run_level.as_str().to_owned(),
                ]
            },
        );
    }

    /// One script in full: its row, its attachments and its text.
    pub fn script_detail(&self, s: &Script, attachments: &[crate::model::Attachment]) {
        if self.json {
            let mut value = serde_json::to_value(s).unwrap_or_default();
            if let Some(map) = value.as_object_mut() {
                map.insert(
                    "attachments".into(),
                    serde_json::to_value(attachments).unwrap_or_default(),
                );
            }
            return self.json(&value);
        }
        self.scripts(std::slice::from_ref(s));
        if !attachments.is_empty() {
            self.print(|out| writeln!(out));
            self.attachments(attachments);
        }
        self.print(|out| writeln!(out, "\n{}", String::from_utf8_lossy(&s.body)));
    }

    /// Attachments, one row each.
    pub fn attachments(&self, attachments: &[crate::model::Attachment]) {
        self.list(
            attachments,
            &["script", "path", "size", "mode", "owner", "when", "sha256"],
            |a| {
                vec![
                    a.script.clone(),
                    a.path.clone(),
                    a.size.to_string(),
                    format!("{:o}", a.mode),
                    a.owner
                        .map_or("agent".into(), |i| format!("{}:{}", i.uid, i.gid)),
                    format!("{:?}", a.phase).to_lowercase(),
                    a.sha256.chars().take(16).collect(),
                ]
            },
        );
    }

    /// Environment variables, secret values masked.
    pub fn env(&self, vars: &[crate::model::EnvVar]) {
        self.list(vars, &["scope", "name", "value"], |v| {
            vec![
                v.scope.to_string(),
                v.name.clone(),
                v.value.shown().to_string(),
            ]
        });
    }

    /// The variables a host's runs get, in the order they apply, with where each comes from.
    pub fn host_env(&self, vars: &[crate::ops::HostVar]) {
        self.list(vars, &["from", "name", "value", "applies"], |v| {
            vec![
                v.var.scope.to_string(),
                v.var.name.clone(),
                v.var.value.shown().to_string(),
                if v.overridden {
                    "no: overridden"
                } else {
                    "yes"
                }
                .to_string(),
            ]
        });
    }
}
