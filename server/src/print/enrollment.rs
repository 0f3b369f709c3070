//! Enrollment: tokens, rules, and the approval of pending keys.

use std::io::Write;

use super::Printer;
use crate::model::{Rule, Token, now_ms};
use crate::ops::{CreatedToken, PendingDecided, PendingHost, describe};
use crate::sanitize;

impl<W: Write + Send + 'static> Printer<W> {
    /// Tokens, one row each, without secrets.
    pub fn tokens(&self, tokens: &[Token]) {
        let now = now_ms();
        self.list(
            tokens,
            &[
                "id",
                "note",
                "used",
                "groups",
                "state",
                "expires",
                "made by",
                "last used",
            ],
            |t| {
                let state = match () {
                    () if t.revoked => "revoked",
                    () if t.expires <= now => "expired",
                    () if t.used >= t.uses => "used up",
                    () => "active",
                };
                vec![
                    t.id.to_string(),
                    t.note.clone(),
                    format!("{}/{}", t.used, t.uses),
                    t.groups.join(","),
                    state.into(),
                    self.time(t.expires),
                    t.created_by.clone(),
                    self.time_or_dash(t.last_used),
                ]
            },
        );
    }

    /// A token just made: its secret and the agent command, shown this once.
    pub fn token_created(&self, created: &CreatedToken) {
        if self.json {
            return self.json(created);
        }
        let token = &created.token;
        self.print(|out| {
            writeln!(
                out,
                "enrollment token {} ({} use(s), expires {})",
                token.id,
                token.uses,
                self.time(token.expires)
            )?;
            writeln!(out, "{}", created.secret)?;
            writeln!(out, "On a device, as root:")?;
            writeln!(out, "  {}", created.command)?;
            writeln!(out, "Keep it now: it is not shown again.")
        });
    }

    /// Rules in order, one row each, then the default that follows them.
    pub fn rules(&self, rules: &[Rule]) {
        if self.json {
            return self.json(&rules);
        }
        self.list(rules, &["#", "id", "rule"], |r| {
            vec![r.position.to_string(), r.id.to_string(), describe(r)]
        });
        self.print(|out| writeln!(out, "then: every agent → hold, no group (the default)"));
    }

    /// Hosts whose agent keys wait for approval, one row each.
    pub fn pending_hosts(&self, hosts: &[PendingHost]) {
        self.list(
            hosts,
            &["host", "address", "waiting key", "pinned key", "reported"],
            |p| {
                let reported = match (&p.properties, &p.facts) {
                    (Some(properties), _) => properties
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                    (None, Some(f)) => format!("{} {} {}", f.hostname, f.distribution_name, f.arch),
                    (None, None) => "-".into(),
                };
                vec![
                    p.name.clone(),
                    format!("{}:{}", p.address, p.port),
                    p.fingerprint.clone(),
                    p.pinned_fingerprint
                        .clone()
                        .unwrap_or_else(|| "- (new)".into()),
                    reported,
                ]
            },
        );
    }

    /// What approving or denying each host's pending key did.
    pub fn pending_decided(&self, decided: &[PendingDecided], approved: bool) {
        if self.json {
            return self.json(&decided);
        }
        let done = if approved { "pinned" } else { "denied" };
        self.print(|out| {
            for d in decided {
                match (&d.fingerprint, &d.error) {
                    (Some(fingerprint), _) => {
                        writeln!(out, "{}: agent key {fingerprint} {done}", d.host)?
                    }
                    (None, error) => writeln!(
                        out,
                        "{}: {}",
                        d.host,
                        sanitize::text(error.as_deref().unwrap_or("failed"))
                    )?,
                }
            }
            Ok(())
        });
    }
}
