//! The server's configuration file (`server.toml`): what the global flags and `serve`'s flags
//! set, for people who would rather not repeat them. A flag given on the command line (or its
//! environment variable) wins over the file; the file wins over the built-in default.
//!
//! ```toml
//! data_dir = "/srv/otto"
//! database = "postgres://otto@db.example/otto"   # the fleet on PostgreSQL (--database)
//! dial_timeout = "15s"      # durations as the flags take them, or plain seconds
//! dial_limit = 32
//! answer_timeout = "10s"
//! stall_timeout = "35s"
//! server = "https://otto.example:8443"   # work through this serve's API (--server)
//! api_key_file = "/home/me/.config/otto/api-key"
//! ca_cert = "/home/me/.config/otto/serve.crt"
//!
//! [serve]
//! heartbeat_interval = "5m"
//! rotate_every = "7d"        # "0": no rotation
//! http_listen = "0.0.0.0:8443"
//! tls_cert = "/etc/otto/cert.pem"   # and tls_key; without them a self-signed certificate
//! http_connections = 1024             # the API's connections at once
//! http_connections_per_source = 64    # of them from one address
//! call_home_listen = "0.0.0.0:12445"  # agents that call home
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The settings a configuration file may hold; each is optional.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the fleet's database and keys live.
    pub data_dir: Option<PathBuf>,
    /// `--database`: the PostgreSQL database holding the fleet's state.
    pub database: Option<String>,
    /// `--dial-timeout`.
    pub dial_timeout: Option<Duration>,
    /// `--dial-limit`.
    pub dial_limit: Option<usize>,
    /// `--answer-timeout`.
    pub answer_timeout: Option<Duration>,
    /// `--stall-timeout`.
    pub stall_timeout: Option<Duration>,
    /// `--server`: the URL of a running `serve` to work through.
    pub server: Option<String>,
    /// `--api-key-file`.
    pub api_key_file: Option<PathBuf>,
    /// `--ca-cert`.
    pub ca_cert: Option<PathBuf>,
    /// `serve`'s settings.
    #[serde(default)]
    pub serve: ServeConfig,
}

/// `[serve]`: the daemon's settings.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// `serve --heartbeat-interval`.
    pub heartbeat_interval: Option<Duration>,
    /// `serve --rotate-every`.
    pub rotate_every: Option<Duration>,
    /// `serve --http-listen`.
    pub http_listen: Option<std::net::SocketAddr>,
    /// `serve --http-plain`.
    pub http_plain: Option<bool>,
    /// `serve --tls-cert`.
    pub tls_cert: Option<PathBuf>,
    /// `serve --tls-key`.
    pub tls_key: Option<PathBuf>,
    /// `serve --http-connections`.
    pub http_connections: Option<usize>,
    /// `serve --http-connections-per-source`.
    pub http_connections_per_source: Option<usize>,
    /// `serve --call-home-listen`.
    pub call_home_listen: Option<std::net::SocketAddr>,
    /// `serve --relay-address`.
    pub relay_address: Option<String>,
}

/// A duration as written in the file: `"1h30m"`, or a number of seconds. Kept as the flags'
/// text, so the flags' own parser checks it (zero where it means nothing, units).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Duration {
    /// `"90s"`, `"5m"`, `"1h30m"`.
    Text(String),
    /// Plain seconds.
    Seconds(u64),
}

impl Duration {
    /// As the command line would have it.
    pub fn as_arg(&self) -> String {
        match self {
            Duration::Text(text) => text.clone(),
            Duration::Seconds(n) => n.to_string(),
        }
    }
}

/// Why the configuration file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// It cannot be read.
    #[error("configuration file {0}: {1}")]
    Read(PathBuf, std::io::Error),
    /// It is not TOML, or holds a setting that does not exist or a value of the wrong kind.
    #[error("configuration file {0}: {1}")]
    Parse(PathBuf, String),
    /// A value the flag it stands for refuses.
    #[error("configuration file {0}: {1}: {2}")]
    Value(PathBuf, &'static str, String),
}

/// Where the configuration file is looked for when none is named: `/etc/otto/server.toml` for
/// root, else `$XDG_CONFIG_HOME/otto/server.toml` (or `~/.config/otto/server.toml`).
pub fn default_path(root: bool) -> Option<PathBuf> {
    if root {
        return Some(PathBuf::from("/etc/otto/server.toml"));
    }
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .map(|dir| dir.join("otto/server.toml"))
}

/// Reads the file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.to_path_buf(), e))?;
    parse(path, &text)
}

/// Parses the text of the file at `path`.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse(path.to_path_buf(), e.message().into()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_is_optional_and_read_as_written() {
        let path = Path::new("server.toml");
        assert_eq!(parse(path, "").unwrap(), Config::default());
        let config = parse(
            path,
            "data_dir = \"/srv/otto\"\ndial_timeout = 20\ndial_limit = 8\n\
             stall_timeout = \"1m\"\n[serve]\nheartbeat_interval = \"30s\"\n",
        )
        .unwrap();
        assert_eq!(config.data_dir, Some(PathBuf::from("/srv/otto")));
        assert_eq!(config.dial_timeout.unwrap().as_arg(), "20");
        assert_eq!(config.dial_limit, Some(8));
        assert_eq!(config.stall_timeout.unwrap().as_arg(), "1m");
        assert_eq!(config.answer_timeout, None);
        assert_eq!(config.serve.heartbeat_interval.unwrap().as_arg(), "30s");
    }

    #[test]
    fn unknown_settings_and_wrong_kinds_are_refused_with_the_file_named() {
        let path = Path::new("/etc/otto/server.toml");
        for text in [
            "dial_limt = 3",
            "dial_limit = \"many\"",
            "[serve]\nheartbeat = \"5m\"",
            "data_dir = ",
        ] {
            let e = parse(path, text).unwrap_err().to_string();
            assert!(
                e.starts_with("configuration file /etc/otto/server.toml: "),
                "{e}"
            );
        }
    }
}
