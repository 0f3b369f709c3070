//! `otto-server host deploy`: a fresh device becomes a managed host in one command, over the
//! device's own SSH server (dropbear on OpenWrt, OpenSSH elsewhere) with the `ssh` client of
//! this machine (so its keys, agent and `~/.ssh/config` apply; one connection is shared by all
//! steps, so a password is asked at most once).
//!
//! Steps: detect the CPU (`uname -m` and the endianness of the device's own `/bin/sh`), pick the
//! matching static agent from `dist/`, copy it over (streamed through SSH, written to a temporary
//! name and renamed), write the agent's configuration, make it trust this host's new server key,
//! install and start a service (procd init script on OpenWrt, systemd unit elsewhere; both are
//! the files in `packaging/`), read the agent's public key. `Ops::deploy_host` makes the server
//! key before and adds the host, its agent key pinned, after.

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
    #[error("{0} is missing: build it with `ci/build-agents.sh {1}` or pass --dist")]
    NoBinary(PathBuf, &'static str),
    /// Neither procd nor systemd, and no `--service none`.
    #[error(
        "the device has neither procd nor systemd; use --service none to start the agent without a service manager"
    )]
    NoServiceManager,
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
    /// The agent's port.
    pub agent_port: u16,
    /// Where the static agents are (`dist/otto-agent-<target>`).
    pub dist: PathBuf,
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
}

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

/// Deploys an agent to a device, trusting `server_key` (the host's, made by the caller, who
/// adds the host to the fleet: `Ops::deploy_host`).
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
    let binary_path = options.dist.join(format!("otto-agent-{target}"));
    let binary = std::fs::read(&binary_path)
        .map_err(|_| DeployError::NoBinary(binary_path.clone(), target))?;

    let prefix = options.prefix.trim_end_matches('/');
    let bin = match service {
        Service::Procd => format!("{prefix}/usr/bin/otto-agent"),
        _ => format!("{prefix}/usr/local/bin/otto-agent"),
    };
    let conf = format!("{prefix}/etc/otto/agent.conf");
    let key = format!("{prefix}/etc/otto/agent.key");
    remote
        .run(
            "copying the agent",
            &format!(
                "set -e; mkdir -p \"$(dirname {b})\"; cat > {b}.new; chmod 755 {b}.new; mv -f {b}.new {b}",
                b = quote(&bin)
            ),
            Some(&binary),
        )
        .await?;

    let agent_key = configure(
        &remote, service, &bin, &conf, &key, prefix, options, server_key,
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
    })
}

#[allow(clippy::too_many_arguments)]
async fn configure(
    remote: &Remote<'_>,
    service: Service,
    bin: &str,
    conf: &str,
    key: &str,
    prefix: &str,
    options: &DeployOptions,
    server_key: &PublicKey,
) -> Result<PublicKey, DeployError> {
    // A configuration that is already there is kept (a re-deploy keeps local changes); the
    // trusted server key is always replaced by the new host key.
    let config = format!(
        "# Otto agent configuration, written by otto-server host deploy.\n\
         listen = 0.0.0.0:{}\nkey = {key}\n",
        options.agent_port
    );
    remote
        .run(
            "writing the configuration",
            &format!(
                "set -e; mkdir -p \"$(dirname {c})\"; chmod 700 \"$(dirname {c})\"; \
                 if [ ! -f {c} ]; then umask 077; cat > {c}.new; mv -f {c}.new {c}; else cat > /dev/null; fi; \
                 {b} --config {c} trust {k}",
                c = quote(conf),
                b = quote(bin),
                k = quote(&keys::to_openssh(server_key))
            ),
            Some(config.as_bytes()),
        )
        .await?;
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
    fn quoting_survives_quotes() {
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
