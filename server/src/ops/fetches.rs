//! Fetches: one file from many hosts at once, each host's copy streamed into a folder of its
//! own (`INTO/HOST/NAME`) and checked against the length and SHA-256 its agent announced. A
//! copy is written to a temporary file beside its place and renamed there only once it is
//! whole and checked: a failed host leaves nothing behind (its folder neither, if the fetch
//! made it), and a host that fails is that host's failure, not the others'.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Done, Ops, OpsError, Result, Targets, UPLOAD_LIMIT};
use crate::client::ClientError;
use crate::fleet::Fleet;
use crate::model::{EventKind, Host};

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
        Err(ClientError::AgentFailure(why)) if why.contains("unsupported protocol version") => {
            return Err(format!(
                "its agent is older than fetch (protocol 8): update it (update-agents); it \
                 said: {why}"
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
