//! The catalogue of agent binaries the server sends (`update-agents`) and installs (`host
//! deploy`): one per target the agent is built for, from a directory (`--agents DIR`), else
//! built into the server (the cargo feature `bundled-agents`, from `ci/build-agents.sh`'s
//! `dist/`), else the `dist/` folder [`deploy::default_dist`] finds. Each binary's version is
//! read from its bytes ([`version_of`]), never by running it (it is for another CPU).

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::deploy;
use crate::model::Facts;

/// The targets the agent is built for (`AGENT_TARGETS` in ci/lib.sh), as
/// [`deploy::target_for`] names them.
pub const TARGETS: [&str; 5] = [
    "mips-unknown-linux-musl",
    "mipsel-unknown-linux-musl",
    "armv7-unknown-linux-musleabihf",
    "aarch64-unknown-linux-musl",
    "x86_64-unknown-linux-musl",
];

/// The longest version text read from a binary.
const VERSION_MAX: usize = 64;

/// The binaries built into this server (the feature `bundled-agents`): each target's name and
/// bytes, as build.rs found them in `$OTTO_AGENTS_DIR` (default the workspace's `dist/`).
#[cfg(feature = "bundled-agents")]
const BUNDLED: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/bundled_agents.rs"));

/// Where the binaries come from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// Files `otto-agent-TARGET` in a directory.
    Dir(PathBuf),
    /// Built into the server.
    #[cfg(feature = "bundled-agents")]
    Bundled,
}

/// The agent binaries this server has, one per target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogue {
    source: Source,
}

/// What a catalogue's files are: each target's (device, inode, length, modified), none where
/// it has no file. Equal stamps mean the same binaries (a file replaced, even by one of the
/// same length, is a new inode or a new time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    source: Source,
    files: Vec<Option<(u64, u64, u64, SystemTime)>>,
}

/// The newest version of a catalogue, remembered while its files stay as they were: each
/// hosts list says which agents are behind, and reading every binary for it costs megabytes
/// per request. The files are looked at again at most once per `fresh_for`.
#[derive(Debug)]
pub struct NewestVersion {
    known: Mutex<Option<Known>>,
    fresh_for: Duration,
}

/// What [`NewestVersion`] last found.
#[derive(Debug)]
struct Known {
    stamp: Stamp,
    newest: Option<String>,
    at: Instant,
}

impl Default for NewestVersion {
    /// Files looked at again at most once a second.
    fn default() -> NewestVersion {
        NewestVersion::fresh_for(Duration::from_secs(1))
    }
}

impl NewestVersion {
    /// One that looks at the files again at most once per `fresh_for`.
    pub fn fresh_for(fresh_for: Duration) -> NewestVersion {
        NewestVersion {
            known: Mutex::new(None),
            fresh_for,
        }
    }

    /// The newest version found less than `fresh_for` ago, if one was: no file is looked at.
    pub fn recent(&self) -> Option<Option<String>> {
        let known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        known
            .as_ref()
            .filter(|k| k.at.elapsed() < self.fresh_for)
            .map(|k| k.newest.clone())
    }

    /// `catalogue`'s newest version ([`Catalogue::newest`]), read again only when its files
    /// changed since the last call. Blocking (the files are looked at).
    pub fn of(&self, catalogue: &Catalogue) -> Option<String> {
        let stamp = catalogue.stamp();
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        let newest = match known.take() {
            Some(k) if k.stamp == stamp => k.newest,
            _ => catalogue.newest(),
        };
        *known = Some(Known {
            stamp,
            newest: newest.clone(),
            at: Instant::now(),
        });
        newest
    }
}

/// One agent binary, read and checked.
#[derive(Debug, Clone)]
pub struct AgentBinary {
    /// Its target (e.g. `mips-unknown-linux-musl`).
    pub target: &'static str,
    /// Its bytes.
    pub bytes: Cow<'static, [u8]>,
    /// Its version, as its heartbeats will report it.
    pub version: String,
    /// Its SHA-256.
    pub sha256: [u8; 32],
}

/// What `GET /api/v1/agents` lists of one binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct AgentInfo {
    /// Its target.
    pub target: String,
    /// Its version.
    pub version: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, hex.
    pub sha256: String,
}

/// The catalogue as `GET /api/v1/agents` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Agents {
    /// Where the binaries come from: a directory, or `built into the server`.
    pub source: String,
    /// The binaries there are, by target.
    pub binaries: Vec<AgentInfo>,
    /// Why a target has none (a missing file, one without a version).
    pub missing: Vec<String>,
    /// The newest version among them, if any (hosts with another are behind).
    pub newest: Option<String>,
}

/// Why an agent binary cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum AgentsError {
    /// No binary for the target where the catalogue looks.
    #[error(
        "no agent binary for {target}: {where_} is missing; build it with \
         `ci/build-agents.sh {target}` (it writes dist/otto-agent-{target}) and pass --agents DIR, \
         or use a server built with `--features bundled-agents`"
    )]
    Missing {
        /// The target.
        target: &'static str,
        /// Where it looked.
        where_: String,
    },
    /// A binary without a version tag (not an Otto agent, or one too old to say its version).
    #[error("{0}: no agent version in it (not an Otto agent, or one older than protocol 7)")]
    NoVersion(String),
    /// No target for the CPU the facts name.
    #[error("no Otto agent for a {machine} CPU ({endian}-endian)")]
    UnknownCpu {
        /// `uname -m`.
        machine: String,
        /// big or little.
        endian: &'static str,
    },
}

impl Catalogue {
    /// The binaries in `dir` (files `otto-agent-TARGET`), if given; else those built into
    /// the server (feature `bundled-agents`); else those in [`deploy::default_dist`].
    pub fn open(dir: Option<&Path>) -> Catalogue {
        let source = match dir {
            Some(dir) => Source::Dir(dir.to_path_buf()),
            #[cfg(feature = "bundled-agents")]
            None => Source::Bundled,
            #[cfg(not(feature = "bundled-agents"))]
            None => Source::Dir(deploy::default_dist()),
        };
        Catalogue { source }
    }

    /// Where the binaries come from, in words.
    pub fn describe(&self) -> String {
        match &self.source {
            Source::Dir(dir) => dir.display().to_string(),
            #[cfg(feature = "bundled-agents")]
            Source::Bundled => "built into the server".into(),
        }
    }

    /// The newest version among the binaries there are (hosts with an older one are behind).
    pub fn newest(&self) -> Option<String> {
        TARGETS
            .into_iter()
            .filter_map(|t| self.read(t).ok().map(|(_, version)| version))
            .max_by(|a, b| compare_versions(a, b))
    }

    /// What its files are now, without reading them.
    pub fn stamp(&self) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        let files = match &self.source {
            Source::Dir(dir) => TARGETS
                .into_iter()
                .map(|t| {
                    let meta = std::fs::metadata(dir.join(format!("otto-agent-{t}"))).ok()?;
                    let modified = meta.modified().ok()?;
                    Some((meta.dev(), meta.ino(), meta.len(), modified))
                })
                .collect(),
            #[cfg(feature = "bundled-agents")]
            Source::Bundled => Vec::new(),
        };
        Stamp {
            source: self.source.clone(),
            files,
        }
    }

    /// The binary for `target` (one of [`TARGETS`]), read and checked for its version.
    pub fn binary(&self, target: &str) -> Result<AgentBinary, AgentsError> {
        let (bytes, version) = self.read(target)?;
        let sha256 = Sha256::digest(&bytes).into();
        let target = TARGETS.into_iter().find(|t| *t == target).unwrap_or("");
        Ok(AgentBinary {
            target,
            bytes,
            version,
            sha256,
        })
    }

    /// The bytes and version of the binary for `target`.
    fn read(&self, target: &str) -> Result<(Cow<'static, [u8]>, String), AgentsError> {
        let target =
            TARGETS
                .into_iter()
                .find(|t| *t == target)
                .ok_or_else(|| AgentsError::UnknownCpu {
                    machine: target.to_owned(),
                    endian: "either",
                })?;
        let (bytes, name): (Cow<'static, [u8]>, String) = match &self.source {
            Source::Dir(dir) => {
                let path = dir.join(format!("otto-agent-{target}"));
                let bytes = std::fs::read(&path).map_err(|e| AgentsError::Missing {
                    target,
                    where_: format!("{} ({e})", path.display()),
                })?;
                (Cow::Owned(bytes), path.display().to_string())
            }
            #[cfg(feature = "bundled-agents")]
            Source::Bundled => {
                let (_, bytes) = BUNDLED.iter().find(|(t, _)| *t == target).ok_or_else(|| {
                    AgentsError::Missing {
                        target,
                        where_: format!("otto-agent-{target} (not built into this server)"),
                    }
                })?;
                (
                    Cow::Borrowed(*bytes),
                    format!("otto-agent-{target} (built in)"),
                )
            }
        };
        let version = version_of(&bytes)
            .ok_or(AgentsError::NoVersion(name))?
            .to_owned();
        Ok((bytes, version))
    }

    /// The binary for a host with `facts`: its CPU (`uname -m`) and byte order, as
    /// [`deploy::target_for`] maps them.
    pub fn for_facts(&self, facts: &Facts) -> Result<AgentBinary, AgentsError> {
        self.binary(target_of(facts)?)
    }

    /// What the catalogue holds: each binary there is, why each other target has none, and
    /// the newest version.
    pub fn versions(&self) -> Agents {
        let mut binaries = Vec::new();
        let mut missing = Vec::new();
        for target in TARGETS {
            match self.binary(target) {
                Ok(b) => binaries.push(AgentInfo {
                    target: target.to_owned(),
                    size: b.bytes.len() as u64,
                    sha256: b.sha256.iter().map(|x| format!("{x:02x}")).collect(),
                    version: b.version,
                }),
                Err(e) => missing.push(e.to_string()),
            }
        }
        let newest = binaries
            .iter()
            .map(|b| b.version.as_str())
            .max_by(|a, b| compare_versions(a, b))
            .map(str::to_owned);
        Agents {
            source: self.describe(),
            binaries,
            missing,
            newest,
        }
    }
}

/// The target of a host with `facts`: its CPU (`uname -m`) and byte order, as
/// [`deploy::target_for`] maps them.
pub fn target_of(facts: &Facts) -> Result<&'static str, AgentsError> {
    deploy::target_for(&facts.arch, !facts.big_endian).ok_or_else(|| AgentsError::UnknownCpu {
        machine: facts.arch.clone(),
        endian: if facts.big_endian { "big" } else { "little" },
    })
}

/// The version in an agent binary: the text after [`otto_proto::AGENT_VERSION_TAG`] up to the
/// next NUL, if it is there, printable ASCII and at most 64 bytes.
pub fn version_of(bytes: &[u8]) -> Option<&str> {
    let tag = otto_proto::AGENT_VERSION_TAG.as_bytes();
    let start = bytes.windows(tag.len()).position(|w| w == tag)? + tag.len();
    let rest = bytes.get(start..)?;
    let len = rest.iter().take(VERSION_MAX + 1).position(|b| *b == 0)?;
    let version = rest.get(..len)?;
    if version.is_empty() || !version.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        return None;
    }
    std::str::from_utf8(version).ok()
}

/// Whether an agent of `version` is behind `newest` (older; unknown versions are not).
pub fn behind(version: Option<&str>, newest: Option<&str>) -> bool {
    match (version, newest) {
        (Some(version), Some(newest)) => {
            compare_versions(version, newest) == std::cmp::Ordering::Less
        }
        _ => false,
    }
}

/// Orders versions by their dot-separated numbers (`0.10.0` after `0.9.1`), text where a part
/// is not a number.
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |v: &str| -> Vec<(u64, String)> {
        v.split(['.', '-', '+'])
            .map(|p| (p.parse().unwrap_or(0), p.to_owned()))
            .collect()
    };
    parts(a).cmp(&parts(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tagged(version: &str) -> Vec<u8> {
        let mut bytes = b"\x7fELF....".to_vec();
        bytes.extend_from_slice(otto_proto::AGENT_VERSION_TAG.as_bytes());
        bytes.extend_from_slice(version.as_bytes());
        bytes.extend_from_slice(b"\0rest");
        bytes
    }

    #[test]
    fn a_version_is_read_from_the_tag() {
        assert_eq!(version_of(&tagged("0.2.0")), Some("0.2.0"));
        assert_eq!(version_of(b"no tag here"), None);
        // Not printable, empty, too long, or never ended: none.
        assert_eq!(version_of(&tagged("0.2\n")), None);
        assert_eq!(version_of(&tagged("")), None);
        assert_eq!(version_of(&tagged(&"9".repeat(64))), Some(&*"9".repeat(64)));
        assert_eq!(version_of(&tagged(&"9".repeat(65))), None);
        let mut open = otto_proto::AGENT_VERSION_TAG.as_bytes().to_vec();
        open.extend_from_slice(b"0.1.0");
        assert_eq!(version_of(&open), None);
    }

    #[test]
    fn the_newest_version_is_read_again_only_when_a_binary_changed() {
        let dir = tempfile::tempdir().unwrap();
        let catalogue = Catalogue::open(Some(dir.path()));
        let newest = NewestVersion::fresh_for(Duration::ZERO);
        assert_eq!(newest.of(&catalogue), None);
        let write = |target: &str, version: &str| {
            let path = dir.path().join(format!("otto-agent-{target}"));
            let new = path.with_extension("new");
            std::fs::write(&new, tagged(version)).unwrap();
            std::fs::rename(new, path).unwrap();
        };
        write(TARGETS[0], "0.2.0");
        write(TARGETS[1], "0.3.0");
        assert_eq!(newest.of(&catalogue).as_deref(), Some("0.3.0"));
        let stamp = catalogue.stamp();
        assert_eq!(catalogue.stamp(), stamp, "unchanged files, the same stamp");
        // Replaced by one of the same length: a new version.
        write(TARGETS[1], "0.1.0");
        assert_ne!(catalogue.stamp(), stamp);
        assert_eq!(newest.of(&catalogue).as_deref(), Some("0.2.0"));
        std::fs::remove_file(dir.path().join(format!("otto-agent-{}", TARGETS[0]))).unwrap();
        assert_eq!(newest.of(&catalogue).as_deref(), Some("0.1.0"));
        // Another folder is another catalogue.
        let other = tempfile::tempdir().unwrap();
        assert_eq!(newest.of(&Catalogue::open(Some(other.path()))), None);
        assert_eq!(newest.recent(), None, "nothing is recent for no time");
        // Within its time, what was found last is answered without looking.
        let newest = NewestVersion::fresh_for(Duration::from_secs(3600));
        assert_eq!(newest.recent(), None, "nothing found yet");
        assert_eq!(newest.of(&catalogue).as_deref(), Some("0.1.0"));
        write(TARGETS[2], "0.9.0");
        assert_eq!(newest.recent(), Some(Some("0.1.0".into())));
        assert_eq!(newest.of(&catalogue).as_deref(), Some("0.9.0"));
    }

    #[test]
    fn versions_compare_by_their_numbers() {
        use std::cmp::Ordering::*;
        assert_eq!(compare_versions("0.10.0", "0.9.1"), Greater);
        assert_eq!(compare_versions("0.1.0", "0.1.0"), Equal);
        assert_eq!(compare_versions("0.1.0", "0.2.0"), Less);
        assert!(behind(Some("0.1.0"), Some("0.2.0")));
        assert!(!behind(Some("0.2.0"), Some("0.2.0")));
        assert!(!behind(Some("0.3.0"), Some("0.2.0")));
        assert!(!behind(None, Some("0.2.0")) && !behind(Some("0.1.0"), None));
    }

    #[test]
    fn binaries_are_picked_by_cpu_and_byte_order() {
        let dir = tempfile::tempdir().unwrap();
        for (target, version) in [
            ("x86_64-unknown-linux-musl", "0.2.0"),
            ("mips-unknown-linux-musl", "0.2.0"),
        ] {
            std::fs::write(
                dir.path().join(format!("otto-agent-{target}")),
                tagged(version),
            )
            .unwrap();
        }
        std::fs::write(
            dir.path().join("otto-agent-mipsel-unknown-linux-musl"),
            b"x",
        )
        .unwrap();
        let catalogue = Catalogue::open(Some(dir.path()));
        let facts = |arch: &str, big_endian| Facts {
            arch: arch.into(),
            big_endian,
            ..Facts::default()
        };
        let x86 = catalogue.for_facts(&facts("x86_64", false)).unwrap();
        assert_eq!(
            (x86.target, &*x86.version),
            ("x86_64-unknown-linux-musl", "0.2.0")
        );
        assert_eq!(x86.sha256, <[u8; 32]>::from(Sha256::digest(&x86.bytes)));
        let mips = catalogue.for_facts(&facts("mips", true)).unwrap();
        assert_eq!(mips.target, "mips-unknown-linux-musl");
        let no_tag = catalogue.for_facts(&facts("mips", false)).unwrap_err();
        assert!(matches!(no_tag, AgentsError::NoVersion(_)), "{no_tag}");
        let missing = catalogue.for_facts(&facts("aarch64", false)).unwrap_err();
        let said = missing.to_string();
        assert!(
            said.contains("ci/build-agents.sh aarch64-unknown-linux-musl")
                && said.contains("--agents DIR")
                && said.contains("bundled-agents")
                && said.contains(&dir.path().display().to_string()),
            "{said}"
        );
        let unknown = catalogue.for_facts(&facts("sparc64", true)).unwrap_err();
        assert_eq!(
            unknown.to_string(),
            "no Otto agent for a sparc64 CPU (big-endian)"
        );
        let listed = catalogue.versions();
        assert_eq!(listed.binaries.len(), 2);
        assert_eq!(listed.missing.len(), 3);
        assert_eq!(listed.newest.as_deref(), Some("0.2.0"));
        assert_eq!(catalogue.newest().as_deref(), Some("0.2.0"));
    }
}
