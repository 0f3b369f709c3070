//! The agent's configuration file.
//!
//! One setting per line, `key = value`; blank lines and lines starting with `#` are ignored.
//! Every key has a default, so an empty file is a valid configuration (apart from the trusted
//! server key, which `otto-agent trust` adds). Parsing is pure; the agent only ever rewrites the
//! file atomically, changing single lines and keeping the rest (comments included) as it was.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use otto_proto::ScriptTimeout;
use russh::keys::PublicKey;

use crate::callhome::{AddressError, CallHome};
use crate::cidr::{Cidr, CidrError};
use crate::identity::RawKeyError;
use crate::log::Level;
use crate::openssh::FormatError;

/// Where the configuration is read from when `--config` is not given (OpenWrt and systemd alike).
pub const DEFAULT_PATH: &str = "/etc/otto/agent.conf";

/// The agent's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `listen`: the address the SSH server listens on; `none`: it does not listen (it only
    /// calls home).
    pub listen: Option<SocketAddr>,
    /// `key`: the agent's private key file.
    pub key_path: PathBuf,
    /// `server_key`: the server public key the agent accepts (OpenSSH form).
    pub server_key: Option<PublicKey>,
    /// `server_key_previous`: the server key trusted before the last rotation, still accepted
    /// until `server_key` has authenticated once (the agent sets and clears it itself).
    pub server_key_previous: Option<PublicKey>,
    /// `allow_from`: address ranges that may connect, separated by spaces or commas.
    pub allow_from: Vec<Cidr>,
    /// `path`: the `PATH` scripts run with.
    pub path: String,
    /// `script_timeout`: seconds a script may run unless the server says otherwise (default
    /// [`ScriptTimeout::DEFAULT_SECS`]); 0 = no limit.
    pub script_timeout: Option<Duration>,
    /// `reboot_command`: the command run for a Reboot request.
    pub reboot_command: Vec<String>,
    /// `shutdown_command`: the command run for a Shutdown request.
    pub shutdown_command: Vec<String>,
    /// `log_level`: error, warn, info or debug.
    pub log_level: Level,
    /// `temp_dir`: where scripts are written before they run.
    pub temp_dir: PathBuf,
    /// `idle_timeout`: seconds a channel may wait for the rest of a frame or of its data.
    pub idle_timeout: Duration,
    /// `login_grace_time`: seconds a connection may take from its TCP accept to authentication.
    pub login_grace_time: Duration,
    /// `call_home`: the server the agent keeps a connection open to (and serves SSH on).
    pub call_home: Option<CallHome>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: Some(SocketAddr::from(([0, 0, 0, 0], otto_proto::DEFAULT_PORT))),
            key_path: PathBuf::from("/etc/otto/agent.key"),
            server_key: None,
            server_key_previous: None,
            allow_from: Cidr::everything().to_vec(),
            path: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            script_timeout: Some(Duration::from_secs(ScriptTimeout::DEFAULT_SECS.into())),
            reboot_command: vec!["reboot".into()],
            shutdown_command: vec!["poweroff".into()],
            log_level: Level::Info,
            temp_dir: PathBuf::from("/tmp"),
            idle_timeout: Duration::from_secs(30),
            login_grace_time: Duration::from_secs(20),
            call_home: None,
        }
    }
}

/// A configuration file that could not be read.
#[derive(Debug)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub error: ConfigError,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.error)
    }
}

impl std::error::Error for ParseError {}

/// What is wrong with a line of the configuration.
#[derive(Debug)]
pub enum ConfigError {
    /// The line (given) is not a comment and has no `=`.
    NotASetting(String),
    /// The key (given) was set on an earlier line already.
    SetTwice(String),
    /// The key (given) is not a setting.
    Unknown(String),
    /// The `listen` value (given) is not an address and port.
    Address(String),
    /// The value (given) is not a whole number of seconds.
    Seconds(String),
    /// A command setting has no words.
    EmptyCommand,
    /// The `log_level` value (given) is not a level.
    LogLevel(String),
    /// The setting (named) is 0, but must be at least 1 second.
    Zero(&'static str),
    /// An `allow_from` range is malformed.
    Range(CidrError),
    /// A server key setting is unusable.
    ServerKey(ServerKeyError),
    /// The `call_home` value is not an address.
    CallHome(AddressError),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NotASetting(line) => write!(f, "expected `key = value`, found `{line}`"),
            ConfigError::SetTwice(key) => write!(f, "`{key}` is set twice"),
            ConfigError::Unknown(key) => write!(f, "unknown setting `{key}`"),
            ConfigError::Address(value) => write!(f, "`{value}` is not an address:port"),
            ConfigError::Seconds(value) => {
                write!(f, "`{value}` is not a whole number of seconds")
            }
            ConfigError::EmptyCommand => f.write_str("the command is empty"),
            ConfigError::LogLevel(value) => write!(
                f,
                "log_level must be error, warn, info or debug, not `{value}`"
            ),
            ConfigError::Zero(key) => write!(f, "{key} must be at least 1 second"),
            ConfigError::Range(e) => e.fmt(f),
            ConfigError::ServerKey(e) => e.fmt(f),
            ConfigError::CallHome(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Why a server key was refused.
#[derive(Debug)]
pub enum ServerKeyError {
    /// The text is not an OpenSSH Ed25519 public key line.
    Format(FormatError),
    /// The Ed25519 key is one no one can hold.
    Unusable(RawKeyError),
}

impl fmt::Display for ServerKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerKeyError::Format(e) => e.fmt(f),
            ServerKeyError::Unusable(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ServerKeyError {}

/// Splits a line into key and value; `None` for blank lines and comments.
fn setting(line: &str) -> Option<Result<(&str, &str), ConfigError>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    Some(match line.split_once('=') {
        Some((key, value)) => Ok((key.trim(), value.trim())),
        None => Err(ConfigError::NotASetting(line.into())),
    })
}

fn seconds(value: &str) -> Result<u64, ConfigError> {
    value
        .parse()
        .map_err(|_| ConfigError::Seconds(value.into()))
}

/// A number of seconds that must not be 0 (for the setting `key`).
fn nonzero_seconds(key: &'static str, value: &str) -> Result<Duration, ConfigError> {
    match seconds(value)? {
        0 => Err(ConfigError::Zero(key)),
        s => Ok(Duration::from_secs(s)),
    }
}

fn command(value: &str) -> Result<Vec<String>, ConfigError> {
    let words: Vec<String> = value.split_whitespace().map(String::from).collect();
    if words.is_empty() {
        Err(ConfigError::EmptyCommand)
    } else {
        Ok(words)
    }
}

impl Config {
    /// Parses a configuration file's text.
    pub fn parse(text: &str) -> Result<Config, ParseError> {
        let mut config = Config::default();
        let mut seen: Vec<&str> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let at = |error: ConfigError| ParseError {
                line: index + 1,
                error,
            };
            let Some(parsed) = setting(line) else {
                continue;
            };
            let (key, value) = parsed.map_err(at)?;
            if seen.contains(&key) {
                return Err(at(ConfigError::SetTwice(key.into())));
            }
            seen.push(key);
            config.set(key, value).map_err(at)?;
        }
        Ok(config)
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        match key {
            "listen" if value == "none" => self.listen = None,
            "listen" => {
                self.listen = Some(
                    value
                        .parse()
                        .map_err(|_| ConfigError::Address(value.into()))?,
                )
            }
            "call_home" if value.is_empty() => self.call_home = None,
            "call_home" => {
                self.call_home = Some(CallHome::parse(value).map_err(ConfigError::CallHome)?)
            }
            "key" => self.key_path = PathBuf::from(value),
            "server_key" => self.server_key = optional_server_key(value)?,
            "server_key_previous" => self.server_key_previous = optional_server_key(value)?,
            "allow_from" => {
                self.allow_from = value
                    .split([' ', ',', '\t'])
                    .filter(|s| !s.is_empty())
                    .map(Cidr::parse)
                    .collect::<Result<_, _>>()
                    .map_err(ConfigError::Range)?
            }
            "path" => self.path = value.into(),
            "script_timeout" => {
                self.script_timeout = match seconds(value)? {
                    0 => None,
                    s => Some(Duration::from_secs(s)),
                }
            }
            "reboot_command" => self.reboot_command = command(value)?,
            "shutdown_command" => self.shutdown_command = command(value)?,
            "log_level" => {
                self.log_level =
                    Level::parse(value).ok_or_else(|| ConfigError::LogLevel(value.into()))?
            }
            "temp_dir" => self.temp_dir = PathBuf::from(value),
            "idle_timeout" => self.idle_timeout = nonzero_seconds("idle_timeout", value)?,
            "login_grace_time" => {
                self.login_grace_time = nonzero_seconds("login_grace_time", value)?
            }
            _ => return Err(ConfigError::Unknown(key.into())),
        }
        Ok(())
    }
}

/// A server key setting: empty means none.
fn optional_server_key(value: &str) -> Result<Option<PublicKey>, ConfigError> {
    if value.is_empty() {
        Ok(None)
    } else {
        parse_server_key(value)
            .map(Some)
            .map_err(ConfigError::ServerKey)
    }
}

/// Parses an OpenSSH public key line and requires it to be a usable Ed25519 key.
pub fn parse_server_key(text: &str) -> Result<PublicKey, ServerKeyError> {
    let raw = crate::openssh::parse_public_line(text).map_err(ServerKeyError::Format)?;
    // A key no one can hold (off the curve, small order) would lock the server out.
    crate::identity::public_from_raw(raw).map_err(ServerKeyError::Unusable)
}

/// Returns `text` with `key` set to `value`: the existing line is replaced, or a line appended.
/// Everything else, comments included, stays as it was.
pub fn with_setting(text: &str, key: &str, value: &str) -> String {
    let new_line = format!("{key} = {value}");
    let mut replaced = false;
    let mut out: Vec<String> = text
        .lines()
        .map(|line| match setting(line) {
            Some(Ok((k, _))) if k == key && !replaced => {
                replaced = true;
                new_line.clone()
            }
            _ => line.to_string(),
        })
        .collect();
    if !replaced {
        out.push(new_line);
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}

/// Returns `text` without the lines that set `key`; everything else stays as it was.
pub fn without_setting(text: &str, key: &str) -> String {
    text.lines()
        .filter(|line| !matches!(setting(line), Some(Ok((k, _))) if k == key))
        .map(|line| format!("{line}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEDwV4BKXmx5Sbu2F0Fbd0Y3vQJt7fVgUqFCB7XPdzlS otto";

    #[test]
    fn empty_text_gives_the_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.listen, Some("0.0.0.0:12444".parse().unwrap()));
        assert_eq!(c.call_home, None);
        assert!(c.server_key.is_none());
        assert_eq!(c.script_timeout, Some(Duration::from_secs(3600)));
        assert_eq!(c.login_grace_time, Duration::from_secs(20));
    }

    #[test]
    fn parses_every_setting() {
        let text = format!(
            "# agent\nlisten = 127.0.0.1:2222\nkey = /data/k\nserver_key = {KEY}\n\
             allow_from = 10.0.0.0/8, fd00::/8\npath = /bin\nscript_timeout = 0\n\
             reboot_command = /sbin/reboot -f\nshutdown_command = halt\nlog_level = debug\n\
             temp_dir = /var/tmp\nidle_timeout = 5\nserver_key_previous = {KEY}\n\
             login_grace_time = 7\ncall_home = otto.example.net:2000\n"
        );
        let c = Config::parse(&text).unwrap();
        assert_eq!(c.listen, Some("127.0.0.1:2222".parse().unwrap()));
        assert_eq!(c.call_home.unwrap().to_string(), "otto.example.net:2000");
        let only_calls = Config::parse("listen = none\ncall_home = 192.0.2.1").unwrap();
        assert_eq!(only_calls.listen, None);
        assert_eq!(only_calls.call_home.unwrap().to_string(), "192.0.2.1:12445");
        assert_eq!(c.key_path, PathBuf::from("/data/k"));
        // The key, without its comment.
        let key = KEY.strip_suffix(" otto").unwrap();
        assert_eq!(c.server_key.unwrap().to_openssh().unwrap(), key);
        assert_eq!(c.server_key_previous.unwrap().to_openssh().unwrap(), key);
        assert_eq!(c.allow_from.len(), 2);
        assert_eq!(c.path, "/bin");
        assert_eq!(c.script_timeout, None);
        assert_eq!(c.reboot_command, ["/sbin/reboot", "-f"]);
        assert_eq!(c.shutdown_command, ["halt"]);
        assert_eq!(c.log_level, Level::Debug);
        assert_eq!(c.temp_dir, PathBuf::from("/var/tmp"));
        assert_eq!(c.idle_timeout, Duration::from_secs(5));
        assert_eq!(c.login_grace_time, Duration::from_secs(7));
    }

    #[test]
    fn errors_name_the_line_in_the_same_words_as_ever() {
        let cases = [
            (
                "listen = nowhere",
                "line 1: `nowhere` is not an address:port",
            ),
            ("\n\nbogus = 1", "line 3: unknown setting `bogus`"),
            (
                "# c\nno equals sign",
                "line 2: expected `key = value`, found `no equals sign`",
            ),
            ("path = /a\npath = /b", "line 2: `path` is set twice"),
            (
                "allow_from = 10.0.0.0/8, 10.0.0.0/40",
                "line 1: `10.0.0.0/40`: the prefix length must be 0 to 32",
            ),
            (
                "allow_from = example.com",
                "line 1: `example.com` is not an IP address range",
            ),
            (
                "server_key = ssh-ed25519 garbage",
                "line 1: not an OpenSSH key: the key data is not base64",
            ),
            (
                "server_key = ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                "line 1: not a usable Ed25519 public key (a point of small order)",
            ),
            (
                "script_timeout = soon",
                "line 1: `soon` is not a whole number of seconds",
            ),
            (
                "log_level = loud",
                "line 1: log_level must be error, warn, info or debug, not `loud`",
            ),
            ("reboot_command =", "line 1: the command is empty"),
            (
                "idle_timeout = 0",
                "line 1: idle_timeout must be at least 1 second",
            ),
            (
                "login_grace_time = 0",
                "line 1: login_grace_time must be at least 1 second",
            ),
            (
                "call_home = otto:0",
                "line 1: `otto:0` is not a host or address with an optional :port",
            ),
        ];
        for (text, message) in cases {
            let err = Config::parse(text).unwrap_err().to_string();
            // The key parser's own words follow the prefix; the rest is ours, word for word.
            if message.ends_with(": ") {
                assert!(
                    err.starts_with(message) && err.len() > message.len(),
                    "{err}"
                );
            } else {
                assert_eq!(err, message, "{text}");
            }
        }
    }

    #[test]
    fn with_setting_replaces_or_appends_and_keeps_comments() {
        let text = "# my agent\nlisten = 0.0.0.0:1\nserver_key = old\n";
        assert_eq!(
            with_setting(text, "server_key", "new"),
            "# my agent\nlisten = 0.0.0.0:1\nserver_key = new\n"
        );
        assert_eq!(
            with_setting("# only\n", "server_key", KEY),
            format!("# only\nserver_key = {KEY}\n")
        );
        assert_eq!(with_setting("", "key", "/k"), "key = /k\n");
    }

    #[test]
    fn without_setting_removes_only_that_key() {
        let text = "# server_key = in a comment\nserver_key_previous = a\nserver_key = b\n";
        assert_eq!(
            without_setting(text, "server_key_previous"),
            "# server_key = in a comment\nserver_key = b\n"
        );
        assert_eq!(without_setting("listen = x", "server_key"), "listen = x\n");
    }
}
