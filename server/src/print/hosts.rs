//! Hosts: the list, one host in full, its server key, a deployment, and heartbeats; groups.

use std::io::Write;

use super::{Printer, units, yes_no};
use crate::deploy::Deployed;
use crate::fleet::Untrusted;
use crate::keys;
use crate::ops;
use crate::sanitize;

/// A key's fingerprint, or a word saying it cannot be read.
fn fingerprint_of(key: &str) -> String {
    keys::parse_public(key).map_or_else(|_| "(unreadable key)".into(), |k| keys::fingerprint(&k))
}

/// How a reached host is said to be: `yes`, or `busy` when its agent refused a channel for
/// serving as many at once as it may.
/// The command that makes a host's agent trust `server_key`, ready to run on its device.
pub fn trust_command(server_key: &str) -> String {
    format!("otto-agent trust '{server_key}'")
}

/// A host's trust line, as `--trust-lines` writes it: its name, then its agent's command.
pub fn trust_line(added: &ops::HostAdded) -> String {
    format!("{} {}", added.host, trust_command(&added.server_key))
}

fn reached(busy: bool) -> &'static str {
    if busy { "busy" } else { "yes" }
}

/// What to do about a host whose agent is not trusted, by the command that does it.
pub fn remedy(untrusted: &Untrusted) -> String {
    match untrusted {
        Untrusted::NoAgentKey { host } => format!(
            "give it with `otto-server host trust {host} 'ssh-ed25519 …'` (from `otto-agent pubkey`)"
        ),
        Untrusted::KeyPending { host, .. } => {
            format!("approve with `otto-server host approve {host}`")
        }
    }
}

impl<W: Write + Send + 'static> Printer<W> {
    /// Hosts, one row each.
    pub fn hosts(&self, hosts: &[crate::ops::HostEntry]) {
        self.list(
            hosts,
            &[
                "host",
                "address",
                "enabled",
                "groups",
                "trust",
                "reachable",
                "last seen",
                "version",
            ],
            |entry| {
                let h = &entry.host;
                let trust = match (
                    &h.trust.agent_key,
                    &h.trust.pending_key,
                    h.trust.pin_on_first_contact,
                ) {
                    (_, Some(_), _) => "PENDING KEY".to_string(),
                    (Some(k), None, _) => fingerprint_of(k).chars().take(20).collect(),
                    (None, None, true) => "pin on first contact".into(),
                    (None, None, false) => "no agent key".into(),
                };
                vec![
                    h.name.clone(),
                    if h.status.calls_home {
                        "calls home".into()
                    } else {
                        format!("{}:{}", h.address, h.port)
                    },
                    if h.enabled { "yes" } else { "no" }.into(),
                    h.groups.join(", "),
                    trust,
                    yes_no(h.status.reachable, reached(h.status.busy), "NO"),
                    self.time_or_dash(h.status.last_seen),
                    agent_version(&h.status.agent_version, entry),
                ]
            },
        );
    }

    /// One host in full, with the server key its agent trusts; `newest` is the newest agent
    /// version the server has (the host's is behind if older).
    pub fn host_detail(&self, h: &crate::model::Host, server_key: &str, newest: Option<&str>) {
        let behind = crate::agents::behind(h.status.agent_version.as_deref(), newest);
        if self.json {
            let mut value = serde_json::to_value(h).unwrap_or_default();
            if let Some(map) = value.as_object_mut() {
                map.insert("server_key".into(), server_key.into());
                map.insert("behind".into(), behind.into());
                if let Some(newest) = newest {
                    map.insert("newest_agent".into(), newest.into());
                }
            }
            return self.json(&value);
        }
        self.print(|out| {
            writeln!(
                out,
                "{}  {}:{}  {}",
                h.name,
                sanitize::field(&h.address, usize::MAX),
                h.port,
                if h.enabled { "enabled" } else { "DISABLED" }
            )?;
            writeln!(
                out,
                "  groups         {}",
                if h.groups.is_empty() {
                    "-".into()
                } else {
                    h.groups.join(", ")
                }
            )?;
            if h.status.calls_home {
                writeln!(out, "  reached by     its call home (not dialled)")?;
            }
            writeln!(out, "  server key     {server_key}")?;
            match &h.trust.agent_key {
                Some(k) => writeln!(out, "  agent key      {}", fingerprint_of(k))?,
                None if h.trust.pin_on_first_contact => {
                    writeln!(out, "  agent key      pinned on first contact")?
                }
                None => writeln!(
                    out,
                    "  agent key      none: `otto-server host trust {} KEY`",
                    h.name
                )?,
            }
            if let Some(p) = &h.trust.pending_key {
                writeln!(
                    out,
                    "  PENDING key    {} (approve: `otto-server host approve {}`)",
                    fingerprint_of(p),
                    h.name
                )?;
            }
            writeln!(
                out,
                "  last rotation  {}",
                self.time_or_dash(h.trust.last_rotation)
            )?;
            writeln!(
                out,
                "  reachable      {}",
                yes_no(h.status.reachable, reached(h.status.busy), "no")
            )?;
            writeln!(
                out,
                "  last seen      {}",
                self.time_or_dash(h.status.last_seen)
            )?;
            if let Some(ms) = h.status.round_trip_ms {
                writeln!(out, "  round trip     {ms:.1} ms")?;
            }
            // What the agent said, from a database older than the checks at ingestion too.
            let shown = |text: &str| sanitize::field(text, usize::MAX);
            if let Some(e) = &h.status.last_error {
                writeln!(out, "  last error     {}", shown(e))?;
            }
            if let Some(f) = &h.status.facts {
                writeln!(
                    out,
                    "  agent          otto-agent {}{}",
                    shown(h.status.agent_version.as_deref().unwrap_or("?")),
                    match newest {
                        Some(newest) if behind =>
                            format!(" (behind {}: update-agents)", shown(newest)),
                        _ => String::new(),
                    }
                )?;
                writeln!(
                    out,
                    "  system         {} {} {}, {} {}",
                    shown(&f.kernel_name),
                    shown(&f.kernel_version),
                    shown(&f.arch),
                    shown(&f.distribution_name),
                    shown(&f.distribution_version)
                )?;
                writeln!(out, "  hostname       {}", shown(&f.hostname))?;
                writeln!(
                    out,
                    "  memory         {} free of {}",
                    units::kib(f.mem_available_kib),
                    units::kib(f.mem_total_kib)
                )?;
            }
            Ok(())
        });
    }

    /// A host just added, with the server key to give its agent.
    pub fn host_added(&self, name: &str, server_key: &str) {
        if self.json {
            self.json(&serde_json::json!({ "host": name, "server_key": server_key }));
        } else {
            self.print(|out| {
                writeln!(
                    out,
                    "added {name}; on its agent run:\n  {}",
                    trust_command(server_key)
                )
            });
        }
    }

    /// The server key a host's agent trusts.
    pub fn server_key(&self, name: &str, server_key: &str) {
        if self.json {
            self.json(&serde_json::json!({ "host": name, "server_key": server_key }));
        } else {
            self.print(|out| writeln!(out, "{server_key}"));
        }
    }

    /// A deployment and the heartbeat that followed it.
    pub fn deployed(&self, deployed: &Deployed, ping: &[ops::Ping]) {
        if self.json {
            return self.json(&serde_json::json!({ "deployed": deployed, "heartbeat": ping }));
        }
        self.print(|out| {
            writeln!(
                out,
                "{}: {} → otto-agent for {} ({} bytes), {} service, agent key {} pinned",
                deployed.host,
                sanitize::field(&deployed.cpu, usize::MAX),
                deployed.target,
                deployed.bytes,
                deployed.service,
                fingerprint_of(&deployed.agent_key)
            )
        });
        self.ping(ping);
    }

    /// Heartbeats: each host's version and facts, or why it did not answer.
    pub fn ping(&self, results: &[ops::Ping]) {
        self.list(
            results,
            &[
                "host",
                "reachable",
                "version",
                "system",
                "uptime",
                "load",
                "memory free",
                "heartbeat",
            ],
            |p| match (&p.facts, &p.error) {
                (Some(f), _) => vec![
                    p.host.clone(),
                    "yes".into(),
                    p.agent_version.clone().unwrap_or_default(),
                    format!(
                        "{} {} {} {}",
                        f.distribution_name, f.distribution_version, f.kernel_name, f.arch
                    ),
                    format!("{}h{:02}m", f.uptime_secs / 3600, f.uptime_secs % 3600 / 60),
                    format!("{}.{:02}", f.load_centi[0] / 100, f.load_centi[0] % 100),
                    format!(
                        "{} of {}",
                        units::kib(f.mem_available_kib),
                        units::kib(f.mem_total_kib)
                    ),
                    p.round_trip_ms
                        .map_or("-".into(), |ms| format!("{ms:.1} ms")),
                ],
                (None, error) => vec![
                    p.host.clone(),
                    if p.reachable { reached(p.busy) } else { "NO" }.into(),
                    "-".into(),
                    match &p.untrusted {
                        Some(untrusted) => format!(
                            "{} ({})",
                            error.as_deref().unwrap_or_default(),
                            remedy(untrusted)
                        ),
                        None => error.clone().unwrap_or_default(),
                    },
                ],
            },
        );
    }

    /// Groups with their hosts and scripts.
    pub fn groups(&self, groups: &[crate::model::Group]) {
        self.list(groups, &["group", "hosts", "scripts"], |g| {
            vec![g.name.clone(), g.hosts.join(", "), g.scripts.join(", ")]
        });
    }
}

/// A host's agent version as `host list` shows it: `-` when unknown, with the newest the
/// server has when it is behind (`0.1.0 (behind 0.2.0)`).
fn agent_version(version: &Option<String>, entry: &crate::ops::HostEntry) -> String {
    match (version, &entry.newest_agent) {
        (None, _) => "-".into(),
        (Some(v), Some(newest)) if entry.behind => format!("{v} (behind {newest})"),
        (Some(v), _) => v.clone(),
    }
}
