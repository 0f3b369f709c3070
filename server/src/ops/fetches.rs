//! Fetches: one file from many hosts at once, each host's copy streamed into a folder of its
//! own (`INTO/HOST/NAME`) and checked against the length and SHA-256 its agent announced. A
//! copy is written to a temporary file beside its place and renamed there only once it is
//! whole and checked: a failed host leaves nothing behind (its folder neither, if the fetch
//! made it), and a host that fails is that host's failure, not the others'.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Done, Ops, OpsError, Result, RolloutOptions, Targets, UPLOAD_LIMIT};
use crate::fleet::Fleet;
use crate::model::{EventKind, Host};
use crate::store::StoreError;

/// The longest file fetched unless told otherwise: the longest an upload takes.
pub const FETCH_LIMIT: u64 = UPLOAD_LIMIT;

/// The most a fetched file's mode keeps of the mode it has on its host: read and write for its
/// owner, read for the others (no execute, setuid, setgid or sticky bits).
const KEPT_MODE: u32 = 0o644;

/// A file to fetch from many hosts.
#[derive(Debug, Clone)]
pub struct Fetch {
    /// Absolute path of the file on the hosts.
    pub path: String,
    /// The local folder: each host's copy goes to `into/HOST/NAME`, NAME being the file name
    /// of `path`.
    pub into: PathBuf,
    /// The longest file taken; a longer one is that host's failure.
    pub max_len: u64,
}

impl Ops {
    /// Fetches `fetch.path` from the enabled hosts `targets` names, as the rollout goes: each
    /// host's copy into `fetch.into/HOST/NAME` (its mode the host's, masked to 0644), written
    /// atomically once its length and checksum are checked. A host whose file is missing, too
    /// long or unreadable, or that cannot be reached, fails alone.
    pub async fn fetch(&self, targets: &Targets, fetch: Fetch) -> Result<Vec<Done>> {
        let name = file_name(&fetch.path)?;
        if fetch.max_len > FETCH_LIMIT {
            return Err(OpsError::Invalid(format!(
                "at most {FETCH_LIMIT} bytes may be fetched, not {}",
                fetch.max_len
            )));
        }
        let hosts = self.resolve(targets).await?;
        std::fs::create_dir_all(&fetch.into).map_err(|e| OpsError::File(fetch.into.clone(), e))?;
        let fetch = Arc::new((fetch, name));
        let fetch_one = move |ops: Ops, host: Host| {
            let fetch = fetch.clone();
            async move {
                let (fetch, name) = &*fetch;
                let result = tokio::select! {
                    result = fetch_to(&ops.fleet, &host, fetch, name) => result,
                    () = ops.cancellation.cancelled() => {
                        Err("cancelled (nothing kept)".to_string())
                    }
                };
                match &result {
                    Ok((_, len)) => {
                        let detail = format!("{}, {len} bytes", fetch.path);
                        ops.note(&host.name, EventKind::Fetched, &detail).await;
                    }
                    // The host's folder, if empty: the fetch made it, or it had nothing anyway.
                    Err(_) => drop(std::fs::remove_dir(fetch.into.join(&host.name))),
                }
                let result = result.map(|(said, _)| said);
                Done::new(host.name.clone(), result)
            }
        };
        Ok(self.for_each_reporting(hosts, fetch_one, |_| {}).await)
    }
}

/// Where the HTTP API keeps what it fetched, in the data directory: a folder per fetch (named
/// by its id), each host's copy in it as [`Ops::fetch`] writes it.
const SPOOL: &str = "fetches";

/// How long the API keeps a fetch's copies to be downloaded.
pub const KEPT_FOR: std::time::Duration = std::time::Duration::from_secs(3600);

/// The longest file the API fetches unless asked for more (files of configuration are small;
/// every host's copy waits in the data directory until downloaded or an hour has passed).
pub const API_DEFAULT_LIMIT: u64 = 16 * 1024 * 1024;

/// What to fetch through the API: the body of `POST /api/v1/fetches`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FetchRequest {
    /// Absolute path of the file on the hosts.
    pub path: String,
    /// The longest file taken (default 16 MiB, at most 1 GiB); a longer one fails its host.
    #[schema(minimum = 1, maximum = 1073741824)]
    pub max_bytes: Option<u64>,
    /// The hosts.
    #[serde(flatten)]
    pub targets: Targets,
    /// How the hosts go: in batches, up to a number of failures.
    #[serde(flatten)]
    pub rollout: RolloutOptions,
}

/// What a fetch through the API brought: each host's result, and where its copy is.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Fetched {
    /// The fetch's id: each host's copy is at `GET /api/v1/fetches/{id}/{host}` for an hour.
    pub id: String,
    /// The file name each copy has (the last part of the path).
    pub name: String,
    /// Each host's result.
    pub results: Vec<FetchedCopy>,
}

/// One host's part of a fetch through the API.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FetchedCopy {
    /// The result, as every action's.
    #[serde(flatten)]
    pub done: Done,
    /// The copy's length in bytes, when there is one.
    pub size: Option<u64>,
    /// Its SHA-256 (hex), checked against what the agent announced.
    pub sha256: Option<String>,
    /// Its mode as kept (the host's, masked to 0644).
    pub mode: Option<u32>,
}

impl Ops {
    /// [`Ops::fetch`] for the HTTP API: the copies kept in the data directory for
    /// [`KEPT_FOR`] under a new unguessable id, to be downloaded with [`Ops::fetched_copy`].
    /// Copies kept longer are removed first.
    pub async fn fetch_for_api(&self, request: FetchRequest) -> Result<Fetched> {
        let spool = self.fleet.data_dir().join(SPOOL);
        sweep(&spool);
        let id = super::users::random_hex()?;
        let name = file_name(&request.path)?;
        let into = spool.join(&id);
        let fetch = Fetch {
            path: request.path,
            into: into.clone(),
            max_len: request.max_bytes.unwrap_or(API_DEFAULT_LIMIT),
        };
        if fetch.max_len == 0 {
            return Err(OpsError::Invalid("max_bytes must be 1 or more".into()));
        }
        let ops = self.clone().rolling(request.rollout.rollout()?);
        let done = ops.fetch(&request.targets, fetch).await?;
        let mut results = Vec::with_capacity(done.len());
        for done in done {
            let copy = into.join(&done.host).join(&name);
            let (size, sha256, mode) = if done.success {
                match super::uploads::hash_file(&copy).await {
                    Ok((sha256, size)) => {
                        let mode = std::fs::metadata(&copy)
                            .ok()
                            .map(|m| m.permissions().mode() & 0o7777);
                        let hex = sha256.iter().map(|b| format!("{b:02x}")).collect();
                        (Some(size), Some(hex), mode)
                    }
                    Err(_) => (None, None, None),
                }
            } else {
                (None, None, None)
            };
            results.push(FetchedCopy {
                done,
                size,
                sha256,
                mode,
            });
        }
        Ok(Fetched { id, name, results })
    }

    /// Where host `host`'s copy of fetch `id` is, and its length, while it is kept: NotFound
    /// for an id or host that has none (or no longer).
    pub async fn fetched_copy(&self, id: &str, host: &str) -> Result<(PathBuf, u64)> {
        let missing =
            || OpsError::from(StoreError::NotFound("fetched copy", format!("{id}/{host}")));
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(missing());
        }
        crate::names::HostName::parse(host).map_err(|_| missing())?;
        let spool = self.fleet.data_dir().join(SPOOL);
        sweep(&spool);
        let dir = spool.join(id).join(host);
        let mut entries = std::fs::read_dir(&dir).map_err(|_| missing())?;
        let copy = entries
            .find_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .ok_or_else(missing)?;
        let size = std::fs::metadata(&copy).map_err(|_| missing())?.len();
        Ok((copy, size))
    }
}

/// Removes the fetches in `spool` kept longer than [`KEPT_FOR`] (by their folder's time).
fn sweep(spool: &Path) {
    let Ok(entries) = std::fs::read_dir(spool) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > KEPT_FOR);
        if old && let Err(e) = std::fs::remove_dir_all(entry.path()) {
            tracing::warn!("cannot remove {}: {e}", entry.path().display());
        }
    }
}

/// The file name a path on the hosts ends in, which each host's copy is called by.
fn file_name(path: &str) -> Result<String> {
    if !path.starts_with('/') {
        return Err(OpsError::Invalid(format!(
            "{path}: the path on the hosts must be absolute"
        )));
    }
    Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| *n != "..")
        .map(str::to_owned)
        .ok_or_else(|| OpsError::Invalid(format!("{path}: names no file")))
}

/// Fetches `fetch.path` from `host` into `fetch.into/HOST/name`; what was kept, in words, and
/// its length; or why nothing was.
async fn fetch_to(
    fleet: &Fleet,
    host: &Host,
    fetch: &Fetch,
    name: &str,
) -> std::result::Result<(String, u64), String> {
    let dir = fetch.into.join(&host.name);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // Removed when dropped: whatever goes wrong, no temporary file stays.
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".part")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let conn = fleet.connect(host).await.map_err(|e| e.to_string())?;
    let file = tokio::fs::File::from_std(
        temp.as_file()
            .try_clone()
            .map_err(|e| format!("{}: {e}", temp.path().display()))?,
    );
    let fetched = match conn
        .fetch_file(&fetch.path, fetch.max_len, file, |_| {})
        .await
    {
        Ok(fetched) => fetched,
        // An agent of protocol 7 refuses the frame of version 8 as a whole.
        Err(e) if e.older_protocol() => {
            return Err(format!(
                "its agent is older than fetch (protocol 8): update it (update-agents); {e}"
            ));
        }
        Err(e) => {
            fleet.failed(&host.name, &conn, &e).await;
            return Err(e.to_string());
        }
    };
    let kept = fetched.mode & KEPT_MODE;
    let place = dir.join(name);
    let file = temp.as_file();
    file.set_permissions(std::fs::Permissions::from_mode(kept))
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", temp.path().display()))?;
    temp.persist(&place)
        .map_err(|e| format!("{}: {}", place.display(), e.error))?;
    let sha256: String = fetched.sha256.iter().map(|b| format!("{b:02x}")).collect();
    let said = format!(
        "{}: {} bytes, sha256 {sha256}",
        place.display(),
        fetched.len
    );
    Ok((said, fetched.len))
}

#[cfg(test)]
mod tests {
    use super::super::ErrorKind;
    use super::super::testing::fleet;
    use super::*;

    #[test]
    fn a_fetched_file_is_named_by_the_last_part_of_an_absolute_path() {
        assert_eq!(file_name("/etc/config/network").unwrap(), "network");
        for bad in ["etc/x", "/", "/etc/..", ""] {
            assert!(file_name(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_copy_is_kept_for_an_hour_and_only_a_hex_id_and_a_host_name_find_one() {
        let (_dir, ops) = fleet(&["a"]).await;
        let spool = ops.fleet.data_dir().join(SPOOL);
        for id in ["00aa", "00bb"] {
            std::fs::create_dir_all(spool.join(id).join("a")).unwrap();
            std::fs::write(spool.join(id).join("a").join("hostname"), b"a\n").unwrap();
        }
        let (path, size) = ops.fetched_copy("00aa", "a").await.unwrap();
        assert_eq!(
            (path.file_name().unwrap().to_str().unwrap(), size),
            ("hostname", 2)
        );
        for (id, host) in [("../00aa", "a"), ("00aa", "../a"), ("00aa", "b"), ("", "a")] {
            let err = ops.fetched_copy(id, host).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound, "{id} {host}");
        }
        // A fetch kept past the hour is gone, and its folder with it.
        let old = std::process::Command::new("touch")
            .args(["-d", "2 hours ago"])
            .arg(spool.join("00bb"))
            .status()
            .unwrap();
        assert!(old.success());
        let err = ops.fetched_copy("00bb", "a").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(!spool.join("00bb").exists());
        assert!(spool.join("00aa").exists());
    }

    #[tokio::test]
    async fn a_host_that_cannot_be_reached_fails_alone_and_leaves_nothing() {
        let (dir, ops) = fleet(&["a"]).await;
        let into = dir.path().join("fetched");
        let fetch = Fetch {
            path: "/etc/hostname".into(),
            into: into.clone(),
            max_len: FETCH_LIMIT,
        };
        let done = ops.fetch(&Targets::all(), fetch.clone()).await.unwrap();
        assert_eq!(done.len(), 1);
        assert!(!done[0].success, "{done:?}");
        assert_eq!(std::fs::read_dir(&into).unwrap().count(), 0);

        let too_long = Fetch {
            max_len: FETCH_LIMIT + 1,
            ..fetch.clone()
        };
        let err = ops.fetch(&Targets::all(), too_long).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
        let relative = Fetch {
            path: "etc/hostname".into(),
            ..fetch
        };
        let err = ops.fetch(&Targets::all(), relative).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
    }
}
