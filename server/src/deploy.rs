//! `otto-server host deploy`: a fresh device becomes a managed host in one command, over the
//! device's own SSH server (dropbear on OpenWrt, OpenSSH elsewhere) with the `ssh` client of
//! this machine (so its keys, agent and `~/.ssh/config` apply; one connection is shared by all
//! steps, so a password is asked at most once).
//!
//! Steps: detect the CPU (`uname -m` and the endianness of the device's own `/bin/sh`), pick the
//! matching static agent from the server's catalogue (`agents.rs`: `--agents DIR`, the agents
//! built in, or `dist/`), copy it over (streamed through SSH, written to a temporary name and
//! renamed), write the agent's configuration, make it trust this host's new server key,
//! install and start a service (procd init script on OpenWrt, systemd unit elsewhere; both are
//! the files in `packaging/`), read the agent's public key. `Ops::deploy_host` makes the server
//! key before and adds the host, its agent key pinned, after.
//!
//! A re-deploy (the host exists: [`DeployOptions::pinned`]) upgrades the device in place: the
//! new binary is checked against the pinned agent key before it replaces the old one, the
//! configuration keeps every line but the settings given, the trusted server key is not
//! touched. On OpenWrt (an `/etc/sysupgrade.conf` there) the agent's files are listed in it, so
//! that a firmware upgrade keeps them.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use russh::keys::PublicKey;

use crate::keys::{self, KeyError};

/// The procd init script, as kept in the repository.
const PROCD_INIT: &str = include_str!("../../packaging/openwrt/otto-agent.init");
/// The systemd unit, as kept in the repository.
const SYSTEMD_UNIT: &str = include_str!("../../packaging/systemd/otto-agent.service");

/// Why a deployment stopped.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// A step on the device failed.
    #[error("{step}: {detail}")]
    Remote {
        /// Which step.
        step: &'static str,
        /// What the device or ssh said.
        detail: String,
    },
    /// No agent is built for this CPU.
    #[error("no Otto agent for a {machine} CPU ({endian}-endian)")]
    UnknownCpu {
        /// `uname -m`.
        machine: String,
        /// big or little.
        endian: &'static str,
    },
    /// The binary for the device's CPU is missing.
    #[error(transparent)]
    Agents(#[from] crate::agents::AgentsError),
    /// Neither procd nor systemd, and no `--service none`.
    #[error(
        "the device has neither procd nor systemd; use --service none to start the agent without a service manager"
    )]
    NoServiceManager,
    /// A setting given for the agent's configuration is malformed.
    #[error("{0}")]
    Setting(String),
    /// A re-deploy found no agent on the device to upgrade.
    #[error(
        "the device has no agent to upgrade ({0} is missing); remove the host (`host remove`) and deploy it anew"
    )]
    NoAgent(String),
    /// A re-deploy found an agent whose key is not the pinned one: nothing was changed.
    #[error(
        "the device's agent key is {found}, not the pinned {pinned}: nothing changed (another device at that address, or one reset; if it is the right one, remove the host and deploy it anew)"
    )]
    KeyMismatch {
        /// The pinned key's fingerprint.
        pinned: String,
        /// The device's key's fingerprint.
        found: String,
    },
    /// A key.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Running ssh.
    #[error("cannot run {0}: {1}")]
    Ssh(String, std::io::Error),
}

/// Which service manager runs the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Service {
    /// Whatever the device has: procd on OpenWrt, else systemd.
    Auto,
    /// A procd init script (OpenWrt).
    Procd,
    /// A systemd unit.
    Systemd,
    /// None: the agent is started in the background and not restarted (tests, odd devices).
    None,
}

/// What to deploy where.
#[derive(Debug, Clone)]
pub struct DeployOptions {
    /// The host's name in the fleet.
    pub name: String,
    /// `[user@]device` for ssh.
    pub destination: String,
    /// The device's SSH port.
    pub ssh_port: u16,
    /// The address the server will dial (default: the device part of `destination`).
    pub address: Option<String>,
    /// The agent's port (for the dial address; the `listen` setting is in `settings`).
    pub agent_port: u16,
    /// The settings written into the agent's configuration.
    pub settings: Settings,
    /// The pinned agent key of the host re-deployed; none for a new host.
    pub pinned: Option<PublicKey>,
    /// Where the static agents are (`DIR/otto-agent-<target>`); None: the server's catalogue
    /// (the agents built into it, else `dist/`).
    pub dist: Option<PathBuf>,
    /// The service manager.
    pub service: Service,
    /// Install everything under this directory instead of `/` (staging a firmware image, tests).
    pub prefix: String,
    /// The ssh program.
    pub ssh: String,
    /// Extra ssh options (`-o Name=value`, `-i key`, …).
    pub ssh_args: Vec<String>,
}

/// What was deployed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Deployed {
    /// The host's name.
    pub host: String,
    /// The device's CPU (`uname -m`) and byte order.
    pub cpu: String,
    /// The agent build that was installed.
    pub target: &'static str,
    /// Its size in bytes.
    pub bytes: u64,
    /// The service manager used.
    pub service: String,
    /// Where the server dials it.
    pub address: String,
    /// The agent's key, pinned.
    pub agent_key: String,
    /// Whether an agent already there was upgraded in place (its key and trust kept).
    pub upgraded: bool,
    /// The configuration settings written (`listen`, `allow_from`, `call_home`, …).
    pub settings: Vec<String>,
    /// The lines added to `/etc/sysupgrade.conf` (OpenWrt), none elsewhere or if all were
    /// there.
    pub sysupgrade_lines: Vec<String>,
}

/// The settings `host deploy` writes into the agent's configuration; none is left as it is
/// (on a re-deploy) or to the agent's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// `listen`: `Some(Some(port))` for `0.0.0.0:port`, `Some(None)` for `none`.
    pub listen: Option<Option<u16>>,
    /// `allow_from`, checked as the agent checks it.
    pub allow_from: Option<String>,
    /// `call_home`, `ADDRESS:PORT`.
    pub call_home: Option<String>,
}

impl Settings {
    /// The `key = value` lines, in the order they are written; `key_path` for a new agent.
    pub fn lines(&self, key_path: Option<&str>) -> Vec<(&'static str, String)> {
        let mut lines = Vec::new();
        match self.listen {
            Some(Some(port)) => lines.push(("listen", format!("0.0.0.0:{port}"))),
            Some(None) => lines.push(("listen", "none".to_string())),
            None => {}
        }
        if let Some(key) = key_path {
            lines.push(("key", key.to_string()));
        }
        if let Some(ranges) = &self.allow_from {
            lines.push(("allow_from", ranges.clone()));
        }
        if let Some(server) = &self.call_home {
            lines.push(("call_home", server.clone()));
        }
        lines
    }
}

/// Checks `allow_from` ranges as the agent does (agent/src/cidr.rs): each item an IPv4 or IPv6
/// address with an optional `/PREFIX` (at most 32 or 128), items separated by commas or
/// spaces; returns them as one `allow_from` value.
pub fn check_allow_from(items: &[String]) -> Result<String, DeployError> {
    let mut ranges = Vec::new();
    for item in items.iter().flat_map(|i| i.split([' ', ',', '\t'])) {
        if item.is_empty() {
            continue;
        }
        let (address, prefix) = match item.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (item, None),
        };
        let bad = || {
            DeployError::Setting(format!(
                "`{}` is not an address range (ADDRESS[/PREFIX])",
                crate::sanitize::field(item, 80)
            ))
        };
        let max = match address.parse::<std::net::IpAddr>().map_err(|_| bad())? {
            std::net::IpAddr::V4(_) => 32,
            std::net::IpAddr::V6(_) => 128,
        };
        if let Some(p) = prefix {
            match p.parse::<u8>() {
                Ok(p) if p <= max => {}
                _ => return Err(bad()),
            }
        }
        ranges.push(item);
    }
    if ranges.is_empty() {
        return Err(DeployError::Setting(
            "--allow-from needs at least one address range".into(),
        ));
    }
    Ok(ranges.join(", "))
}

/// Checks where the agent calls home, `ADDRESS[:PORT]` as the agent reads it
/// (agent/src/callhome.rs: a name, an IPv4 address, a bare or bracketed IPv6 address);
/// returns it with its port (default [`otto_proto::CALL_HOME_PORT`]).
pub fn check_call_home(text: &str) -> Result<String, DeployError> {
    let bad = || {
        DeployError::Setting(format!(
            "`{}` is not ADDRESS[:PORT] to call home to",
            crate::sanitize::field(text, 80)
        ))
    };
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else if text.matches(':').count() > 1 {
        (text, None)
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    let port = match port {
        None => otto_proto::CALL_HOME_PORT,
        Some(p) => p.parse().ok().filter(|&p| p != 0).ok_or_else(bad)?,
    };
    if host.contains(':') {
        host.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        return Ok(format!("[{host}]:{port}"));
    }
    crate::names::check_address(host).map_err(|_| bad())?;
    Ok(format!("{host}:{port}"))
}

/// The agent's configuration with `settings` set: each one's line replaced where it is, or
/// appended; every other line (comments, the trusted server key) kept as it was. Without a
/// configuration, a new one of the settings.
pub fn rewrite_config(existing: Option<&str>, settings: &[(&str, String)]) -> String {
    let Some(existing) = existing else {
        let mut text =
            String::from("# Otto agent configuration, written by otto-server host deploy.\n");
        for (key, value) in settings {
            text.push_str(&format!("{key} = {value}\n"));
        }
        return text;
    };
    let mut lines: Vec<String> = existing.lines().map(str::to_string).collect();
    for (key, value) in settings {
        let new_line = format!("{key} = {value}");
        match lines.iter_mut().find(|l| setting_key(l) == Some(key)) {
            Some(line) => *line = new_line,
            None => lines.push(new_line),
        }
    }
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// The key a configuration line sets, if it sets one (not blank, not a comment).
fn setting_key(line: &str) -> Option<&str> {
    let line = line.trim();
    if line.starts_with('#') {
        return None;
    }
    line.split_once('=').map(|(key, _)| key.trim())
}

/// The files of the agent a firmware upgrade must keep, as `/etc/sysupgrade.conf` lines: the
/// binary and the one a self-update keeps beside it (`BINARY.previous`; sysupgrade skips a
/// listed file that is missing), the configuration directory with the key, and with procd the
/// init script and its `/etc/rc.d` link.
pub fn sysupgrade_lines(binary: &str, config_dir: &str, procd: bool) -> Vec<String> {
    let mut lines = vec![
        binary.to_string(),
        format!("{binary}.previous"),
        format!("{}/", config_dir.trim_end_matches('/')),
    ];
    if procd {
        let start = PROCD_INIT
            .lines()
            .find_map(|l| l.strip_prefix("START="))
            .unwrap_or("99")
            .trim();
        lines.push("/etc/init.d/otto-agent".into());
        lines.push(format!("/etc/rc.d/S{start}otto-agent"));
    }
    lines
}

/// `existing` (an `/etc/sysupgrade.conf`) with those of `lines` it lacks appended, under a
/// comment; `None` when it has them all (so a second deploy adds nothing).
pub fn merge_sysupgrade(existing: &str, lines: &[String]) -> Option<(String, Vec<String>)> {
    let have: Vec<&str> = existing.lines().map(str::trim).collect();
    let missing: Vec<String> = lines
        .iter()
        .filter(|l| !have.contains(&l.as_str()))
        .cloned()
        .collect();
    if missing.is_empty() {
        return None;
    }
    let mut text = existing.to_string();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    if !have.contains(&SYSUPGRADE_COMMENT) {
        text.push_str(SYSUPGRADE_COMMENT);
        text.push('\n');
    }
    for line in &missing {
        text.push_str(line);
        text.push('\n');
    }
    Some((text, missing))
}

/// The comment above the lines `host deploy` adds to `/etc/sysupgrade.conf`.
const SYSUPGRADE_COMMENT: &str = "# Otto agent (otto-server host deploy)";

/// The agent build for a CPU, from `uname -m` and the byte order.
pub fn target_for(machine: &str, little_endian: bool) -> Option<&'static str> {
    Some(match (machine, little_endian) {
        ("mips" | "mips32", false) => "mips-unknown-linux-musl",
        ("mips" | "mips32" | "mipsel", true) => "mipsel-unknown-linux-musl",
        (m, true) if m.starts_with("armv7") || m == "armv8l" => "armv7-unknown-linux-musleabihf",
        ("aarch64" | "arm64", true) => "aarch64-unknown-linux-musl",
        ("x86_64" | "amd64", true) => "x86_64-unknown-linux-musl",
        _ => return None,
    })
}

/// What the probe learned about the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// `uname -m`.
    pub machine: String,
    /// Byte order.
    pub little_endian: bool,
    /// procd is there.
    pub procd: bool,
    /// systemd is running.
    pub systemd: bool,
}

/// The shell script that probes a device: one `key=value` line each.
const PROBE: &str = r#"echo "machine=$(uname -m)"
echo "elfdata=$(dd if=/bin/sh bs=1 skip=5 count=1 2>/dev/null | od -An -tu1 | tr -d ' ')"
if [ -x /sbin/procd ] && [ -f /etc/rc.common ]; then echo procd=1; fi
if [ -d /run/systemd/system ]; then echo systemd=1; fi
"#;

/// Reads the probe's output.
pub fn parse_probe(output: &str) -> Result<Probe, String> {
    let get = |key: &str| {
        output
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::trim)
    };
    let machine = get("machine")
        .filter(|m| !m.is_empty())
        .ok_or("`uname -m` said nothing")?;
    let little_endian = match get("elfdata") {
        Some("1") => true,
        Some("2") => false,
        other => return Err(format!("cannot read the byte order of /bin/sh ({other:?})")),
    };
    Ok(Probe {
        machine: machine.to_string(),
        little_endian,
        procd: get("procd") == Some("1"),
        systemd: get("systemd") == Some("1"),
    })
}

/// One shared SSH connection to the device.
struct Remote<'a> {
    options: &'a DeployOptions,
    control: PathBuf,
}

impl Remote<'_> {
    /// Runs `script` with `sh` on the device, `stdin` piped in; returns its stdout.
    async fn run(
        &self,
        step: &'static str,
        script: &str,
        stdin: Option<&[u8]>,
    ) -> Result<String, DeployError> {
        let mut cmd = Command::new(&self.options.ssh);
        cmd.arg("-p")
            .arg(self.options.ssh_port.to_string())
            .arg("-o")
            .arg("ControlMaster=auto")
            .arg("-o")
            .arg(format!("ControlPath={}", self.control.display()))
            .arg("-o")
            .arg("ControlPersist=30")
            .args(&self.options.ssh_args)
            .arg(&self.options.destination)
            .arg(format!("sh -c {}", quote(script)))
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| DeployError::Ssh(self.options.ssh.clone(), e))?;
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
            let write = pipe.write_all(data).await;
            drop(pipe);
            if let Err(e) = write {
                let out = child.wait_with_output().await.ok();
                return Err(DeployError::Remote {
                    step,
                    detail: format!(
                        "sending data: {e}; {}",
                        out.map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
                            .unwrap_or_default()
                    ),
                });
            }
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| DeployError::Ssh(self.options.ssh.clone(), e))?;
        if !out.status.success() {
            return Err(DeployError::Remote {
                step,
                detail: format!(
                    "{} ({})",
                    String::from_utf8_lossy(&out.stderr).trim(),
                    out.status
                ),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// `text` as one single-quoted shell word.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The address the server dials for a device deployed at `destination` (`[user@]device`):
/// `address` if given, else the device part.
pub fn dial_address(destination: &str, address: Option<&str>) -> String {
    let device = destination.rsplit_once('@').map_or(destination, |(_, d)| d);
    address
        .unwrap_or(device.trim_start_matches('[').trim_end_matches(']'))
        .to_string()
}

/// The agent binary for `target`: from `dir` if given, else from the server's catalogue (the
/// agents built into it, or `dist/`), as `update-agents` has them.
pub fn agent_binary(
    dir: Option<&std::path::Path>,
    target: &'static str,
) -> Result<std::borrow::Cow<'static, [u8]>, DeployError> {
    Ok(crate::agents::Catalogue::open(dir).binary(target)?.bytes)
}

/// Deploys an agent to a device: a new one trusting `server_key` (the host's, made by the
/// caller, who adds the host to the fleet: `Ops::deploy_host`), or, with
/// [`DeployOptions::pinned`], an upgrade of the agent there, whose key must be the pinned one
/// and whose trust is kept.
pub async fn deploy(
    options: &DeployOptions,
    server_key: &PublicKey,
) -> Result<Deployed, DeployError> {
    let control_dir = tempfile::tempdir().map_err(|e| DeployError::Ssh("tempdir".into(), e))?;
    let remote = Remote {
        options,
        control: control_dir.path().join("ssh"),
    };
    let probe =
        parse_probe(&remote.run("probing the device", PROBE, None).await?).map_err(|detail| {
            DeployError::Remote {
                step: "probing the device",
                detail,
            }
        })?;
    let endian = if probe.little_endian { "little" } else { "big" };
    let target =
        target_for(&probe.machine, probe.little_endian).ok_or_else(|| DeployError::UnknownCpu {
            machine: probe.machine.clone(),
            endian,
        })?;
    let service = match options.service {
        Service::Auto if probe.procd => Service::Procd,
        Service::Auto if probe.systemd => Service::Systemd,
        Service::Auto => return Err(DeployError::NoServiceManager),
        other => other,
    };
    let binary = agent_binary(options.dist.as_deref(), target)?;

    let prefix = options.prefix.trim_end_matches('/');
    let device_bin = match service {
        Service::Procd => "/usr/bin/otto-agent",
        _ => "/usr/local/bin/otto-agent",
    };
    let bin = format!("{prefix}{device_bin}");
    let conf = format!("{prefix}/etc/otto/agent.conf");
    let key = format!("{prefix}/etc/otto/agent.key");
    // The new binary goes beside the old one first; it replaces it once the key is checked.
    remote
        .run(
            "copying the agent",
            &format!(
                "set -e; mkdir -p \"$(dirname {b})\"; cat > {b}.new; chmod 755 {b}.new",
                b = quote(&bin)
            ),
            Some(&binary),
        )
        .await?;
    let existing = remote
        .run(
            "reading the configuration",
            &format!(
                "if [ -f {c} ]; then echo present; cat {c}; fi",
                c = quote(&conf)
            ),
            None,
        )
        .await?;
    let existing = existing.strip_prefix("present\n");
    if let Some(pinned) = &options.pinned
        && let Err(e) = check_agent_key(&remote, &bin, &conf, existing, pinned).await
    {
        let _ = remote
            .run(
                "removing the new binary",
                &format!("rm -f {}.new", quote(&bin)),
                None,
            )
            .await;
        return Err(e);
    }
    remote
        .run(
            "installing the agent",
            &format!("mv -f {b}.new {b}", b = quote(&bin)),
            None,
        )
        .await?;
    let settings = options
        .settings
        .lines(options.pinned.is_none().then_some(key.as_str()));
    let config = rewrite_config(existing, &settings);
    // A new agent trusts the host's new server key; an upgraded one keeps what it trusts.
    let trust = match options.pinned {
        None => format!(
            "; {} --config {} trust {}",
            quote(&bin),
            quote(&conf),
            quote(&keys::to_openssh(server_key))
        ),
        Some(_) => String::new(),
    };
    remote
        .run(
            "writing the configuration",
            &format!(
                "set -e; mkdir -p \"$(dirname {c})\"; chmod 700 \"$(dirname {c})\"; \
                 umask 077; cat > {c}.new; mv -f {c}.new {c}{trust}",
                c = quote(&conf),
            ),
            Some(config.as_bytes()),
        )
        .await?;
    let agent_key = start_service(&remote, service, &bin, &conf, prefix).await?;
    if let Some(pinned) = &options.pinned {
        same_key(pinned, &agent_key)?;
    }
    let config_dir = "/etc/otto";
    let sysupgrade = keep_on_sysupgrade(
        &remote,
        prefix,
        &sysupgrade_lines(device_bin, config_dir, service == Service::Procd),
    )
    .await?;
    let address = dial_address(&options.destination, options.address.as_deref());
    Ok(Deployed {
        host: options.name.clone(),
        cpu: format!("{} ({endian}-endian)", probe.machine),
        target,
        bytes: binary.len() as u64,
        service: format!("{service:?}").to_lowercase(),
        address,
        agent_key: keys::to_openssh(&agent_key),
        upgraded: options.pinned.is_some(),
        settings: settings.iter().map(|(k, v)| format!("{k} = {v}")).collect(),
        sysupgrade_lines: sysupgrade,
    })
}

/// Checks, before anything is replaced, that the agent on the device has the pinned key: its
/// configuration and key file must be there; the new binary (`BIN.new`) reads the key.
async fn check_agent_key(
    remote: &Remote<'_>,
    bin: &str,
    conf: &str,
    existing: Option<&str>,
    pinned: &PublicKey,
) -> Result<(), DeployError> {
    let config = existing.ok_or_else(|| DeployError::NoAgent(conf.to_string()))?;
    let key_file = config
        .lines()
        .filter(|l| setting_key(l) == Some("key"))
        .find_map(|l| l.split_once('=').map(|(_, v)| v.trim().to_string()))
        .unwrap_or_else(|| "/etc/otto/agent.key".into());
    let found = remote
        .run(
            "reading the agent's key",
            &format!(
                "if [ -f {k} ]; then {b}.new --config {c} pubkey; fi",
                k = quote(&key_file),
                b = quote(bin),
                c = quote(conf)
            ),
            None,
        )
        .await?;
    if found.trim().is_empty() {
        return Err(DeployError::NoAgent(key_file));
    }
    same_key(pinned, &keys::parse_public(found.trim())?)
}

/// The device's agent key `found` is the `pinned` one.
fn same_key(pinned: &PublicKey, found: &PublicKey) -> Result<(), DeployError> {
    if keys::to_openssh(pinned) == keys::to_openssh(found) {
        return Ok(());
    }
    Err(DeployError::KeyMismatch {
        pinned: keys::fingerprint(pinned),
        found: keys::fingerprint(found),
    })
}

/// Installs the service and (re)starts the agent; returns its key.
async fn start_service(
    remote: &Remote<'_>,
    service: Service,
    bin: &str,
    conf: &str,
    prefix: &str,
) -> Result<PublicKey, DeployError> {
    let paths = |text: &str| {
        text.replace("/usr/local/bin/otto-agent", bin)
            .replace("/usr/bin/otto-agent", bin)
            .replace("/etc/otto/agent.conf", conf)
    };
    let (step, script, data) = match service {
        Service::Procd => (
            "installing the procd service",
            format!(
                "set -e; f={p}/etc/init.d/otto-agent; mkdir -p \"$(dirname $f)\"; cat > $f.new; chmod 755 $f.new; mv -f $f.new $f; \
                 $f enable; $f restart",
                p = quote(prefix)
            ),
            paths(PROCD_INIT),
        ),
        Service::Systemd => (
            "installing the systemd service",
            format!(
                "set -e; f={p}/etc/systemd/system/otto-agent.service; mkdir -p \"$(dirname $f)\"; cat > $f.new; mv -f $f.new $f; \
                 systemctl daemon-reload; systemctl enable otto-agent; systemctl restart otto-agent",
                p = quote(prefix)
            ),
            paths(SYSTEMD_UNIT),
        ),
        Service::None | Service::Auto => (
            "starting the agent",
            format!(
                "cat > /dev/null; nohup {b} --config {c} run > /dev/null 2>&1 < /dev/null &",
                b = quote(bin),
                c = quote(conf)
            ),
            String::new(),
        ),
    };
    remote.run(step, &script, Some(data.as_bytes())).await?;
    // The agent made its key on start; `pubkey` also makes it if the service has not yet.
    let pubkey = remote
        .run(
            "reading the agent's key",
            &format!("{} --config {} pubkey", quote(bin), quote(conf)),
            None,
        )
        .await?;
    Ok(keys::parse_public(pubkey.trim())?)
}

/// On OpenWrt (an `/etc/sysupgrade.conf` on the device), adds those of `lines` it lacks;
/// returns the lines added.
async fn keep_on_sysupgrade(
    remote: &Remote<'_>,
    prefix: &str,
    lines: &[String],
) -> Result<Vec<String>, DeployError> {
    let file = format!("{prefix}/etc/sysupgrade.conf");
    let text = remote
        .run(
            "reading /etc/sysupgrade.conf",
            &format!(
                "if [ -f {f} ]; then echo present; cat {f}; fi",
                f = quote(&file)
            ),
            None,
        )
        .await?;
    let Some(text) = text.strip_prefix("present\n") else {
        return Ok(Vec::new());
    };
    let Some((merged, added)) = merge_sysupgrade(text, lines) else {
        return Ok(Vec::new());
    };
    remote
        .run(
            "listing the agent in /etc/sysupgrade.conf",
            &format!("set -e; cat > {f}.new; mv -f {f}.new {f}", f = quote(&file)),
            Some(merged.as_bytes()),
        )
        .await?;
    Ok(added)
}

/// The default `dist/` directory: beside the working directory, else beside the executable.
pub fn default_dist() -> PathBuf {
    let here = PathBuf::from("dist");
    if here.is_dir() {
        return here;
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().map(|d| d.join("dist")).find(|d| d.is_dir()))
        .unwrap_or(here)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpus_map_to_builds() {
        assert_eq!(target_for("mips", false), Some("mips-unknown-linux-musl"));
        assert_eq!(target_for("mips", true), Some("mipsel-unknown-linux-musl"));
        assert_eq!(
            target_for("armv7l", true),
            Some("armv7-unknown-linux-musleabihf")
        );
        assert_eq!(
            target_for("aarch64", true),
            Some("aarch64-unknown-linux-musl")
        );
        assert_eq!(
            target_for("x86_64", true),
            Some("x86_64-unknown-linux-musl")
        );
        assert_eq!(target_for("armv5tel", true), None);
        assert_eq!(target_for("ppc", false), None);
    }

    #[test]
    fn the_probe_is_read() {
        let probe = parse_probe("machine=mips\nelfdata=2\nprocd=1\n").unwrap();
        assert_eq!(
            probe,
            Probe {
                machine: "mips".into(),
                little_endian: false,
                procd: true,
                systemd: false
            }
        );
        assert!(parse_probe("machine=mips\nelfdata=\n").is_err());
        assert!(parse_probe("elfdata=1\n").is_err());
    }

    #[test]
    fn a_rewritten_configuration_keeps_every_other_line() {
        let before = "# mine\nlisten = 0.0.0.0:12444\nkey = /etc/otto/agent.key\n\
                      server_key = ssh-ed25519 AAAA server\n# allow_from = 10.0.0.0/8\nlog_level = debug\n";
        let after = rewrite_config(
            Some(before),
            &[
                ("allow_from", "192.168.1.0/24, fd00::/8".into()),
                ("listen", "none".into()),
            ],
        );
        assert_eq!(
            after,
            "# mine\nlisten = none\nkey = /etc/otto/agent.key\n\
             server_key = ssh-ed25519 AAAA server\n# allow_from = 10.0.0.0/8\nlog_level = debug\n\
             allow_from = 192.168.1.0/24, fd00::/8\n"
        );
        // Nothing to set: the same text; a missing file: a new one of the settings.
        assert_eq!(rewrite_config(Some(before), &[]), before);
        let new = rewrite_config(
            None,
            &Settings::default().lines(Some("/etc/otto/agent.key")),
        );
        assert!(new.ends_with("\nkey = /etc/otto/agent.key\n"), "{new}");
        assert_eq!(new.lines().count(), 2);
    }

    #[test]
    fn settings_are_written_in_order_and_only_when_given() {
        let settings = Settings {
            listen: Some(None),
            allow_from: Some("10.0.0.0/8".into()),
            call_home: Some("otto.example.net:12445".into()),
        };
        assert_eq!(
            settings.lines(Some("/k")),
            vec![
                ("listen", "none".to_string()),
                ("key", "/k".to_string()),
                ("allow_from", "10.0.0.0/8".to_string()),
                ("call_home", "otto.example.net:12445".to_string()),
            ]
        );
        assert!(Settings::default().lines(None).is_empty());
        let port = Settings {
            listen: Some(Some(2222)),
            ..Settings::default()
        };
        assert_eq!(
            port.lines(None),
            vec![("listen", "0.0.0.0:2222".to_string())]
        );
    }

    #[test]
    fn allow_from_is_checked_as_the_agent_checks_it() {
        let given = [
            "192.168.1.0/24,10.0.0.1".to_string(),
            "fd00::/8".to_string(),
        ];
        assert_eq!(
            check_allow_from(&given).unwrap(),
            "192.168.1.0/24, 10.0.0.1, fd00::/8"
        );
        assert_eq!(check_allow_from(&["::/0".into()]).unwrap(), "::/0");
        for bad in [
            "10.0.0.0/33",
            "fd00::/129",
            "10.0.0/8",
            "example.net",
            "10.0.0.0/x",
            "1.2.3.4/",
        ] {
            assert!(check_allow_from(&[bad.into()]).is_err(), "{bad}");
        }
        assert!(check_allow_from(&[" , ".into()]).is_err());
    }

    #[test]
    fn call_home_gets_its_port() {
        let port = otto_proto::CALL_HOME_PORT;
        assert_eq!(
            check_call_home("otto.example.net").unwrap(),
            format!("otto.example.net:{port}")
        );
        assert_eq!(check_call_home("192.0.2.1:4000").unwrap(), "192.0.2.1:4000");
        assert_eq!(
            check_call_home("2001:db8::1").unwrap(),
            format!("[2001:db8::1]:{port}")
        );
        assert_eq!(
            check_call_home("[2001:db8::1]:4000").unwrap(),
            "[2001:db8::1]:4000"
        );
        for bad in [
            "",
            "a b",
            "host:0",
            "host:70000",
            "[2001:db8::1",
            "[::1]x",
            "x:y:z",
            "-bad-",
        ] {
            assert!(check_call_home(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sysupgrade_lines_are_added_once() {
        let lines = sysupgrade_lines("/usr/bin/otto-agent", "/etc/otto", true);
        assert_eq!(
            lines,
            [
                "/usr/bin/otto-agent",
                "/usr/bin/otto-agent.previous",
                "/etc/otto/",
                "/etc/init.d/otto-agent",
                "/etc/rc.d/S95otto-agent"
            ]
        );
        let stock = "## This file contains files and directories that should\n/etc/dropbear/";
        let (once, added) = merge_sysupgrade(stock, &lines).unwrap();
        assert_eq!(added, lines);
        assert!(
            once.starts_with(&format!("{stock}\n{SYSUPGRADE_COMMENT}\n")),
            "{once}"
        );
        assert_eq!(merge_sysupgrade(&once, &lines), None);
        // A line the administrator listed already is not listed twice; the comment is once.
        let (twice, added) = merge_sysupgrade(&once.replace("/etc/otto/\n", ""), &lines).unwrap();
        assert_eq!(added, ["/etc/otto/"]);
        assert_eq!(twice.matches(SYSUPGRADE_COMMENT).count(), 1);
        assert_eq!(
            twice
                .lines()
                .filter(|l| *l == "/usr/bin/otto-agent")
                .count(),
            1
        );
        assert_eq!(
            sysupgrade_lines("/usr/local/bin/otto-agent", "/etc/otto", false).len(),
            3
        );
    }

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
