//! Hosts: the list, one host in full, its server key, a deployment, and heartbeats; groups.

use std::io::Write;

use super::{Printer, units, yes_no};
use crate::deploy::Deployed;
use crate::fleet::Untrusted;
use crate::keys;
use crate::model::Facts;
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

/// A host's firmware or distribution release: its name and version (`OpenWrt 24.10.0`).
fn release(f: &Facts) -> String {
    format!("{} {}", f.distribution_name, f.distribution_version)
        .trim()
        .to_string()
}

/// Its architecture with its byte order: `mips (big-endian)`.
fn architecture(f: &Facts) -> String {
    let order = if f.big_endian { "big" } else { "little" };
    format!("{} ({order}-endian)", f.arch)
}

/// `text`, or `-` when it is empty.
fn or_dash(text: String) -> String {
    if text.is_empty() { "-".into() } else { text }
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

/// The columns `host list --wide` adds: what each host reported.
const FACTS_COLUMNS: [&str; 5] = ["model", "release", "uptime", "load", "flash free"];

/// The cells of [`FACTS_COLUMNS`] from a host's facts: model, release, uptime, the last
/// minute's load and free flash; dashes before its first heartbeat.
fn facts_cells(facts: Option<&Facts>) -> [String; 5] {
    match facts {
        Some(f) => [
            or_dash(f.model.clone()),
            or_dash(release(f)),
            units::uptime(f.uptime_secs, 2),
            units::load(f.load_centi[0]),
            units::flash_short(f.flash_free_kib, f.flash_total_kib),
        ],
        None => ["-", "-", "-", "-", "-"].map(String::from),
    }
}

impl<W: Write + Send + 'static> Printer<W> {
    /// Hosts, one row each; `wide`, with what each reported ([`FACTS_COLUMNS`]).
    pub fn hosts(&self, hosts: &[crate::ops::HostEntry], wide: bool) {
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
            ]
            .into_iter()
            .chain(wide.then_some(FACTS_COLUMNS).into_iter().flatten())
            .collect::<Vec<_>>(),
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
                let mut row = vec![
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
                ];
                if wide {
                    row.extend(facts_cells(h.status.facts.as_ref()));
                }
                row
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
                writeln!(out, "  model          {}", or_dash(shown(&f.model)))?;
                writeln!(out, "  release        {}", or_dash(shown(&release(f))))?;
                writeln!(
                    out,
                    "  kernel         {} {}",
                    shown(&f.kernel_name),
                    shown(&f.kernel_version)
                )?;
                writeln!(out, "  architecture   {}", shown(&architecture(f)))?;
                writeln!(out, "  hostname       {}", shown(&f.hostname))?;
                writeln!(out, "  uptime         {}", units::uptime(f.uptime_secs, 3))?;
                let [one, five, fifteen] = f.load_centi.map(units::load);
                writeln!(out, "  load           {one} {five} {fifteen}")?;
                writeln!(
                    out,
                    "  memory         {} free of {}",
                    units::kib(f.mem_available_kib),
                    units::kib(f.mem_total_kib)
                )?;
                writeln!(
                    out,
                    "  flash          {}",
                    units::flash(f.flash_free_kib, f.flash_total_kib)
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
                "{}: {} → otto-agent for {} ({} bytes), {} service, agent key {} {}",
                deployed.host,
                sanitize::field(&deployed.cpu, usize::MAX),
                deployed.target,
                deployed.bytes,
                deployed.service,
                fingerprint_of(&deployed.agent_key),
                if deployed.upgraded {
                    "checked and kept (upgraded in place)"
                } else {
                    "pinned"
                }
            )?;
            for setting in &deployed.settings {
                writeln!(out, "  set {}", sanitize::field(setting, usize::MAX))?;
            }
            for line in &deployed.sysupgrade_lines {
                writeln!(
                    out,
                    "  kept by sysupgrade: {}",
                    sanitize::field(line, usize::MAX)
                )?;
            }
            if ping.is_empty() {
                writeln!(
                    out,
                    "  the agent calls home: `serve --call-home-listen` takes its call"
                )?;
            }
            Ok(())
        });
        if !ping.is_empty() {
            self.ping(ping);
        }
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
                    units::uptime(f.uptime_secs, 2),
                    units::load(f.load_centi[0]),
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

#[cfg(test)]
mod tests {
    use super::super::tests::printed;
    use super::*;
    use crate::model::{Host, HostStatus};

    /// A TP-Link router's facts: 3 days 4 hours 5 minutes up, 5 of 7.5 MiB flash free.
    fn archer() -> Facts {
        Facts {
            hostname: "gw".into(),
            kernel_name: "Linux".into(),
            kernel_version: "6.6.73".into(),
            arch: "mips".into(),
            distribution_name: "OpenWrt".into(),
            distribution_version: "24.10.0".into(),
            uptime_secs: 3 * 86_400 + 4 * 3600 + 5 * 60 + 6,
            load_centi: [15, 10, 5],
            mem_total_kib: 128 * 1024,
            mem_available_kib: 64 * 1024,
            model: "TP-Link Archer C7 v5".into(),
            big_endian: true,
            flash_total_kib: 7680,
            flash_free_kib: 5120,
        }
    }

    fn reported(facts: Option<Facts>) -> Host {
        Host {
            status: HostStatus {
                reachable: Some(true),
                agent_version: Some("0.1.0".into()),
                facts,
                ..HostStatus::default()
            },
            ..Host::example("r1", "192.0.2.1", 12444, &["lab"])
        }
    }

    #[test]
    fn a_host_in_full_says_what_its_agent_reported() {
        let p = Printer::new(false, Vec::new());
        p.host_detail(&reported(Some(archer())), "ssh-ed25519 KEY", None);
        let text = printed(&p);
        for line in [
            "  model          TP-Link Archer C7 v5\n",
            "  release        OpenWrt 24.10.0\n",
            "  kernel         Linux 6.6.73\n",
            "  architecture   mips (big-endian)\n",
            "  uptime         3d 4h 5m\n",
            "  load           0.15 0.10 0.05\n",
            "  memory         64 MiB free of 128 MiB\n",
            "  flash          5.0 MiB of 7.5 MiB free (67%)\n",
        ] {
            assert!(text.contains(line), "{line:?} not in\n{text}");
        }
    }

    #[test]
    fn facts_of_an_older_row_show_with_dashes_for_what_it_lacks() {
        // A row stored before the board's model and flash were reported: serde's defaults.
        let stored = r#"{"hostname":"gw","kernel_name":"Linux","kernel_version":"5.15",
            "arch":"x86_64","distribution_name":"Debian GNU/Linux","distribution_version":"12",
            "uptime_secs":45,"load_centi":[0,0,0],"mem_total_kib":1024,"mem_available_kib":512}"#;
        let facts: Facts = serde_json::from_str(stored).unwrap();
        let p = Printer::new(false, Vec::new());
        p.host_detail(&reported(Some(facts.clone())), "ssh-ed25519 KEY", None);
        let text = printed(&p);
        for line in [
            "  model          -\n",
            "  release        Debian GNU/Linux 12\n",
            "  uptime         45s\n",
            "  flash          -\n",
        ] {
            assert!(text.contains(line), "{line:?} not in\n{text}");
        }
        let p = Printer::new(false, Vec::new());
        p.hosts(&[reported(Some(facts)).into()], true);
        let row = cells(&printed(&p), 1);
        assert_eq!(row["model"], "-");
        assert_eq!(row["release"], "Debian GNU/Linux 12");
        assert_eq!(row["uptime"], "45s");
        assert_eq!(row["load"], "0.00");
        assert_eq!(row["flash free"], "-");
    }

    /// Row `n` of a table printed for scripts, by column title (cells are apart by two spaces
    /// or more; none of these holds two spaces).
    fn cells(text: &str, n: usize) -> std::collections::HashMap<String, String> {
        let split = |line: &str| -> Vec<String> {
            line.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect()
        };
        let lines: Vec<&str> = text.lines().collect();
        let row = split(lines[n]);
        assert_eq!(split(lines[0]).len(), row.len(), "{text}");
        split(lines[0]).into_iter().zip(row).collect()
    }

    #[test]
    fn the_list_has_the_model_release_uptime_load_and_free_flash() {
        let mut low = archer();
        low.flash_free_kib = 600;
        low.model = String::new();
        let p = Printer::new(false, Vec::new());
        p.hosts(
            &[
                reported(Some(archer())).into(),
                reported(Some(low)).into(),
                reported(None).into(),
            ],
            true,
        );
        let text = printed(&p);
        let row = cells(&text, 1);
        assert_eq!(row["model"], "TP-Link Archer C7 v5", "{text}");
        assert_eq!(row["release"], "OpenWrt 24.10.0", "{text}");
        assert_eq!(row["uptime"], "3d 4h", "{text}");
        assert_eq!(row["load"], "0.15", "{text}");
        assert_eq!(row["flash free"], "5.0 MiB (67%)", "{text}");
        // Low flash is said in words; an unknown model is a dash.
        let row = cells(&text, 2);
        assert_eq!(row["flash free"], "LOW 600 KiB (8%)", "{text}");
        assert_eq!(row["model"], "-", "{text}");
        // Before its first heartbeat, nothing is known.
        let row = cells(&text, 3);
        for title in FACTS_COLUMNS {
            assert_eq!(row[title], "-", "{text}");
        }
        // Without --wide, the list is as narrow as before.
        let p = Printer::new(false, Vec::new());
        p.hosts(&[reported(Some(archer())).into()], false);
        let text = printed(&p);
        let row = cells(&text, 1);
        assert_eq!(row.len(), 8, "{text}");
        assert!(!text.contains("Archer"), "{text}");
    }
}
