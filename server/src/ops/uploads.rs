//! Uploads: a local file to many hosts at once, streamed from disk and checked by the agents
//! against its SHA-256 (worked out once, beside the sending, and sent after the bytes); a
//! script's attachments, uploaded around its run; and attachments made from local bytes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use otto_proto::Credentials;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::{Done, Ops, OpsError, Result, Targets};
use crate::client::{self, ClientError, StreamSpec, UploadSpec, new_action_id};
use crate::fleet::Fleet;
use crate::model::{Attachment, EnvVar, EventKind, Host, Ids};
use crate::{environment, templates};

/// The largest file the API takes for an upload, and the largest fetched from a host.
pub const UPLOAD_LIMIT: u64 = 1024 * 1024 * 1024;

/// A file to upload to many hosts.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The local file.
    pub source: PathBuf,
    /// The path on the hosts.
    pub path: String,
    /// Owner.
    pub owner: Option<Ids>,
    /// Mode.
    pub mode: u32,
    /// Send the file even to hosts that already have it (same checksum, mode and owner).
    pub force: bool,
    /// The file is a template, rendered for each host (see [`crate::templates`]) and the
    /// rendering sent: each host's own checksum and size.
    pub template: bool,
}

/// What goes to each host: the file as it is, or a template's rendering for the host.
enum Source {
    /// The file of `len` bytes, streamed from disk, the same for all, and its checksum.
    File {
        path: PathBuf,
        len: u64,
        checksum: Checksum,
    },
    /// A template (UTF-8 text, at most [`templates::MAX_RENDERED`] bytes) and every stored
    /// variable, each host's environment assembled from them.
    Template(Arc<str>, Arc<Vec<EnvVar>>),
}

/// A file's SHA-256 and length, worked out on a blocking thread from the moment an upload
/// starts, beside the dialling and the sending (reading it first cost a sixth of a 256 MiB
/// upload's time); each host that needs it waits for it: after its bytes (an `UploadStream`),
/// before them (an older agent's `UploadFile`), or to compare with the host's file.
#[derive(Clone)]
struct Checksum(watch::Receiver<Option<Hashed>>);

/// A file's SHA-256 and length as read, or why it could not be read.
type Hashed = std::result::Result<([u8; 32], u64), String>;

impl Checksum {
    /// Starts reading the file at `path`.
    fn start(path: PathBuf) -> Checksum {
        let (tx, rx) = watch::channel(None);
        tokio::spawn(async move {
            let hashed = hash_file(&path)
                .await
                .map_err(|e| format!("{}: {e}", path.display()));
            let _ = tx.send(Some(hashed));
        });
        Checksum(rx)
    }

    /// The SHA-256 of the file's `len` bytes; an error when it cannot be read or its length
    /// is no longer `len` (it changed while the upload went on).
    async fn of(&self, len: u64) -> std::result::Result<[u8; 32], String> {
        let mut rx = self.0.clone();
        let hashed = match rx.wait_for(Option::is_some).await {
            Ok(hashed) => hashed.clone(),
            Err(_) => None,
        };
        match hashed {
            Some(Ok((sha256, read))) if read == len => Ok(sha256),
            Some(Ok((_, read))) => Err(format!(
                "the file changed while it was sent: {len} bytes, then {read}"
            )),
            Some(Err(e)) => Err(e),
            None => Err("the file's checksum could not be worked out".into()),
        }
    }
}

/// What one host is sent.
enum Prepared<'a> {
    /// The file, streamed from disk (`file`), its checksum from `checksum`.
    File {
        spec: StreamSpec,
        file: &'a Path,
        checksum: &'a Checksum,
    },
    /// A template's rendering for the host.
    Rendered(UploadSpec, Vec<u8>),
}

impl Prepared<'_> {
    /// The host's path.
    fn path(&self) -> &str {
        match self {
            Prepared::File { spec, .. } => &spec.path,
            Prepared::Rendered(spec, _) => &spec.path,
        }
    }

    /// The bytes to send.
    fn len(&self) -> u64 {
        match self {
            Prepared::File { spec, .. } => spec.len,
            Prepared::Rendered(spec, _) => spec.len,
        }
    }

    /// What the host's file becomes, with its checksum (a file's waited for).
    async fn spec(&self) -> std::result::Result<UploadSpec, String> {
        match self {
            Prepared::File { spec, checksum, .. } => with_checksum(spec, checksum).await,
            Prepared::Rendered(spec, _) => Ok(spec.clone()),
        }
    }
}

/// `spec` with the file's checksum, once it is known.
async fn with_checksum(
    spec: &StreamSpec,
    checksum: &Checksum,
) -> std::result::Result<UploadSpec, String> {
    Ok(UploadSpec {
        path: spec.path.clone(),
        owner: spec.owner,
        mode: spec.mode,
        sha256: checksum.of(spec.len).await?,
        len: spec.len,
    })
}

/// Sends `file` to `conn` as `spec` says, its checksum after its bytes; to an agent older
/// than that (protocol 9) with its checksum first, once it is known. An error (`Err`) is
/// local: the file could not be read or changed; the agent keeps nothing.
async fn send_file(
    conn: &client::Connection,
    file: &Path,
    spec: &StreamSpec,
    checksum: &Checksum,
    progress: impl Fn(u64),
) -> std::result::Result<std::result::Result<client::ActionReport, ClientError>, String> {
    let unreadable = |e: std::io::Error| format!("{}: {e}", file.display());
    let reader = open_to_send(file).await.map_err(unreadable)?;
    let digest = async { checksum.of(spec.len).await.map_err(std::io::Error::other) };
    let sent = conn
        .upload_streamed(spec, new_action_id(), reader, digest, &progress)
        .await;
    match sent {
        Err(e) if e.older_protocol() => {
            let spec = with_checksum(spec, checksum).await?;
            let reader = open_to_send(file).await.map_err(unreadable)?;
            Ok(conn.upload(&spec, new_action_id(), reader, &progress).await)
        }
        Err(ClientError::Io(e)) => Err(e.to_string()),
        sent => Ok(sent),
    }
}

/// The length of the regular file at `path`.
async fn file_len(path: &Path) -> std::io::Result<u64> {
    let meta = tokio::fs::metadata(path).await?;
    if meta.is_file() {
        Ok(meta.len())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ))
    }
}

/// What an upload reports as it goes, host by host, to whoever follows it live.
#[derive(Debug, Clone, Copy)]
pub enum UploadEvent<'a> {
    /// The upload to `host` begins: `bytes` to send.
    Started {
        /// The host.
        host: &'a str,
        /// The size of the file.
        bytes: u64,
    },
    /// `sent` bytes of the file have gone to `host` so far.
    Sent {
        /// The host.
        host: &'a str,
        /// Bytes sent so far.
        sent: u64,
    },
    /// A host's upload has ended, or was skipped, as the results will have it.
    Done(&'a Done),
}

/// Receives an upload's [`UploadEvent`]s as they happen.
pub type UploadSink = Arc<dyn Fn(UploadEvent<'_>) + Send + Sync>;

impl Ops {
    /// Uploads a local file to the enabled hosts `targets` names, as the rollout goes, streaming it
    /// from disk; a host whose file already has the checksum, mode (and owner, when one is asked)
    /// is sent nothing and its result says `changed: false`, unless `upload.force`. `events`
    /// hears each host start, the bytes sent to it so far, and its end (a host skipped too) as
    /// it comes. Records `uploaded` (path and size) for each host the file was sent to. Once
    /// these operations' [`Cancellation`](super::Cancellation) is set, the uploads still going
    /// stop (an agent keeps no file cut short) and the hosts not started are skipped.
    pub async fn upload(
        &self,
        targets: &Targets,
        upload: Upload,
        events: UploadSink,
    ) -> Result<Vec<Done>> {
        let hosts = self.resolve(targets).await?;
        let source = if upload.template {
            let text = read_template(&upload.source).await?;
            let all_env = self.fleet.store().env(None).await?;
            Arc::new(Source::Template(text.into(), Arc::new(all_env)))
        } else {
            let len = file_len(&upload.source)
                .await
                .map_err(|e| OpsError::File(upload.source.clone(), e))?;
            let checksum = Checksum::start(upload.source.clone());
            Arc::new(Source::File {
                path: upload.source,
                len,
                checksum,
            })
        };
        let (path, owner, mode) = (upload.path, upload.owner, upload.mode);
        let force = upload.force;
        let ended = events.clone();
        let upload_one = move |ops: Ops, host: Host| {
            let (source, events, path) = (source.clone(), events.clone(), path.clone());
            async move {
                let fleet = &ops.fleet;
                let name = host.name.as_str();
                // What the host's file becomes: for a template, its rendering for this host.
                let prepared = match &*source {
                    Source::File {
                        path: file,
                        len,
                        checksum,
                    } => Ok(Prepared::File {
                        spec: StreamSpec {
                            path: path.clone(),
                            owner: credentials(owner),
                            mode,
                            len: *len,
                        },
                        file,
                        checksum,
                    }),
                    Source::Template(text, all_env) => {
                        let env = environment::assemble(all_env, None, &host);
                        templates::render(&path, text.as_bytes(), &host, &env)
                            .map(|rendered| {
                                let spec = UploadSpec {
                                    path: path.clone(),
                                    owner: credentials(owner),
                                    mode,
                                    sha256: Sha256::digest(&rendered).into(),
                                    len: rendered.len() as u64,
                                };
                                Prepared::Rendered(spec, rendered)
                            })
                            .map_err(|e| e.to_string())
                    }
                };
                events(UploadEvent::Started {
                    host: name,
                    bytes: prepared.as_ref().map_or(0, Prepared::len),
                });
                let result = async {
                    let prepared = prepared?;
                    let conn = fleet.connect(&host).await.map_err(|e| e.to_string())?;
                    if !force {
                        let there = match stat_there(&conn, prepared.path()).await {
                            Ok(there) => there,
                            Err(e) => {
                                fleet.failed(&host.name, &conn, &e).await;
                                return Err(e.to_string());
                            }
                        };
                        // A file of another length differs without its checksum.
                        if let Some(info) = there
                            && info.len == prepared.len()
                            && same_file(&info, &prepared.spec().await?)
                        {
                            return Ok(None);
                        }
                    }
                    let progress = |sent| events(UploadEvent::Sent { host: name, sent });
                    let uploaded = match &prepared {
                        Prepared::File {
                            spec,
                            file,
                            checksum,
                        } => send_file(&conn, file, spec, checksum, progress).await?,
                        Prepared::Rendered(spec, bytes) => {
                            conn.upload(spec, new_action_id(), &bytes[..], progress)
                                .await
                        }
                    };
                    let report = match uploaded {
                        Ok(report) => report,
                        Err(e) => {
                            fleet.failed(&host.name, &conn, &e).await;
                            return Err(e.to_string());
                        }
                    };
                    if report.outcome.is_success() {
                        Ok(Some(prepared.len()))
                    } else {
                        Err(report.outcome.to_string())
                    }
                };
                let result = tokio::select! {
                    result = result => result,
                    () = ops.cancellation.cancelled() => Err(
                        "cancelled before the agent confirmed it (a file cut short is not kept)"
                            .to_string(),
                    ),
                };
                if let Ok(Some(len)) = result {
                    let detail = format!("{path}, {len} bytes");
                    ops.note(&host.name, EventKind::Uploaded, &detail).await;
                }
                let changed = result.as_ref().ok().map(Option::is_some);
                let result = result.map(|sent| match sent {
                    Some(len) => format!("{len} bytes, sha256 verified"),
                    None => "unchanged: the host's file has this sha256 and mode; nothing sent"
                        .to_string(),
                });
                Done {
                    changed,
                    ..Done::new(host.name.clone(), result)
                }
            }
        };
        Ok(self
            .for_each_reporting(hosts, upload_one, |done| ended(UploadEvent::Done(done)))
            .await)
    }
}

/// The template at `path`: refused before any host is reached if it is larger than
/// [`templates::MAX_RENDERED`] or not UTF-8 text.
pub async fn read_template(path: &Path) -> Result<String> {
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| OpsError::File(path.to_path_buf(), e))?;
    let mut bytes = Vec::new();
    file.take(templates::MAX_RENDERED as u64 + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| OpsError::File(path.to_path_buf(), e))?;
    if bytes.len() > templates::MAX_RENDERED {
        return Err(OpsError::Invalid(format!(
            "template {}: larger than {} bytes",
            path.display(),
            templates::MAX_RENDERED
        )));
    }
    String::from_utf8(bytes)
        .map_err(|_| OpsError::Invalid(format!("template {}: not UTF-8 text", path.display())))
}

/// SHA-256 of `data`, hex.
pub(super) fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Owner ids as the protocol says them (None: the agent's own).
pub(super) fn credentials(ids: Option<Ids>) -> Credentials {
    ids.map_or(Credentials::Inherit, |i| Credentials::Ids {
        uid: i.uid,
        gid: i.gid,
    })
}

/// What is at `path` on the host, to compare with what an upload would make it: `None` when
/// nothing is there or the agent cannot say (a directory, an unreadable file: the upload then
/// says why it fails) or is of protocol 7 (it refuses the stat's frame of version 8 as a whole).
async fn stat_there(
    conn: &client::Connection,
    path: &str,
) -> std::result::Result<Option<otto_proto::FileInfo>, ClientError> {
    match conn.stat_file(path).await {
        Ok(info) => Ok(info),
        Err(ClientError::FileRefused(_) | ClientError::AgentFailure(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether the file at `spec.path` on the host already is what the upload would make it (see
/// [`same_file`]); not when [`stat_there`] finds nothing comparable.
async fn already_there(
    conn: &client::Connection,
    spec: &UploadSpec,
) -> std::result::Result<bool, ClientError> {
    Ok(stat_there(conn, &spec.path)
        .await?
        .is_some_and(|info| same_file(&info, spec)))
}

/// Whether a host's file as `info` says it is already what `spec` would make it: the same
/// SHA-256 and mode, and the same owner when one is asked.
pub(super) fn same_file(info: &otto_proto::FileInfo, spec: &UploadSpec) -> bool {
    info.sha256 == spec.sha256
        && info.mode == spec.mode
        && match spec.owner {
            Credentials::Inherit => true,
            Credentials::Ids { uid, gid } => info.uid == uid && info.gid == gid,
        }
}

/// Uploads attachment `a` to `host` over `conn` (a template rendered for it with `env`, its
/// environment for this run), unless the host's file already is as `a` would make it; why
/// not, in words (a template's error names its line; no secret of `env` in it).
pub(super) async fn upload_attachment(
    fleet: &Fleet,
    host: &Host,
    env: &environment::Assembled,
    conn: &client::Connection,
    a: &Attachment,
) -> std::result::Result<(), String> {
    let rendered;
    let (content, sha256) = if a.template {
        rendered = templates::render(&a.path, &a.content, host, env).map_err(|e| e.to_string())?;
        (&rendered[..], Sha256::digest(&rendered).into())
    } else {
        (&a.content[..], parse_sha256(&a.sha256)?)
    };
    let host = host.name.as_str();
    let spec = UploadSpec {
        path: a.path.clone(),
        owner: credentials(a.owner),
        mode: a.mode,
        sha256,
        len: content.len() as u64,
    };
    match already_there(conn, &spec).await {
        Ok(true) => {
            tracing::debug!(host, path = a.path, "attachment unchanged; not sent");
            return Ok(());
        }
        Ok(false) => {}
        Err(e) => {
            fleet.failed(host, conn, &e).await;
            return Err(e.to_string());
        }
    }
    let report = match conn.upload(&spec, new_action_id(), content, |_| {}).await {
        Ok(report) => report,
        Err(e) => {
            fleet.failed(host, conn, &e).await;
            return Err(e.to_string());
        }
    };
    if report.outcome.is_success() {
        Ok(())
    } else {
        Err(report.outcome.to_string())
    }
}

pub(super) fn parse_sha256(hex: &str) -> std::result::Result<[u8; 32], String> {
    let mut out = [0u8; 32];
    if hex.len() != 64 {
        return Err(format!("bad stored checksum {hex}"));
    }
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = hex
            .get(i * 2..i * 2 + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .ok_or_else(|| format!("bad stored checksum {hex}"))?;
    }
    Ok(out)
}

/// How much of a file one read takes: a read of a `tokio::fs::File` is a hop to the blocking
/// pool, and made 32 KiB at a time (an SSH packet) those hops were a fifth of an upload's time.
const READ_BLOCK: usize = 1 << 20;

/// The file at `path`, opened to be sent: read [`READ_BLOCK`] at a time.
async fn open_to_send(path: &Path) -> std::io::Result<tokio::io::BufReader<tokio::fs::File>> {
    let file = tokio::fs::File::open(path).await?;
    Ok(tokio::io::BufReader::with_capacity(READ_BLOCK, file))
}

/// The SHA-256 and length of the file at `path`, read [`READ_BLOCK`] at a time on one blocking
/// thread.
pub(super) async fn hash_file(path: &Path) -> std::io::Result<([u8; 32], u64)> {
    let path = path.to_path_buf();
    let hashed = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut file = std::fs::File::open(path)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; READ_BLOCK];
        let mut len = 0u64;
        loop {
            let n = match file.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Ok((hasher.finalize().into(), len));
            }
            hasher.update(buf.get(..n).unwrap_or_default());
            len += n as u64;
        }
    });
    hashed.await.map_err(std::io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::super::ErrorKind;
    use super::super::NewAttachment;
    use super::super::testing::{events, fleet};
    use super::*;
    use crate::model::Phase;

    fn upload(source: PathBuf) -> Upload {
        Upload {
            source,
            path: "/tmp/x".into(),
            owner: None,
            mode: 0o644,
            force: false,
            template: false,
        }
    }

    #[tokio::test]
    async fn a_checksum_is_of_the_length_announced_or_says_the_file_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let checksum = Checksum::start(path.clone());
        let sha: [u8; 32] = Sha256::digest(b"abc").into();
        assert_eq!(checksum.of(3).await, Ok(sha));
        let changed = checksum.of(2).await.unwrap_err();
        assert_eq!(
            changed,
            "the file changed while it was sent: 2 bytes, then 3"
        );
        let gone = Checksum::start(dir.path().join("missing"));
        let error = gone.of(3).await.unwrap_err();
        assert!(
            error.contains("missing") && error.contains("No such file"),
            "{error}"
        );
        assert_eq!(
            file_len(dir.path()).await.unwrap_err().to_string(),
            "not a regular file"
        );
    }

    #[tokio::test]
    async fn an_upload_is_recorded_only_where_it_arrived() {
        let (dir, ops) = fleet(&["a"]).await;
        let local = dir.path().join("blob");
        std::fs::write(&local, b"abc").unwrap();
        let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink: UploadSink = {
            let heard = heard.clone();
            Arc::new(move |event| {
                let said = match event {
                    UploadEvent::Started { host, bytes } => format!("{host} started, {bytes}"),
                    UploadEvent::Sent { host, sent } => format!("{host} sent {sent}"),
                    UploadEvent::Done(done) => format!("{} {:?}", done.host, done.status),
                };
                heard.lock().unwrap().push(said);
            })
        };
        let done = ops
            .upload(&Targets::all(), upload(local), sink)
            .await
            .unwrap();
        assert_eq!(done.len(), 1);
        assert!(!done[0].success, "{done:?}");
        // The host is down: it starts and fails, and is heard doing so.
        assert_eq!(*heard.lock().unwrap(), ["a started, 3", "a Failed"]);
        assert!(events(&ops, "uploaded").await.is_empty());

        let missing = dir.path().join("missing");
        let err = ops
            .upload(
                &Targets::all(),
                upload(missing),
                Arc::new(|_: UploadEvent<'_>| {}),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let err = ops
            .upload(
                &Targets::default(),
                upload(dir.path().into()),
                Arc::new(|_: UploadEvent<'_>| {}),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
    }

    #[tokio::test]
    async fn a_template_not_text_is_refused_before_any_host_and_a_wrong_one_fails_each() {
        let (dir, ops) = fleet(&["a"]).await;
        let quiet = || -> UploadSink { Arc::new(|_: UploadEvent<'_>| {}) };
        let local = dir.path().join("t");
        std::fs::write(&local, b"\xff\xfe").unwrap();
        let template = Upload {
            template: true,
            ..upload(local.clone())
        };
        let err = ops
            .upload(&Targets::all(), template.clone(), quiet())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
        assert!(err.to_string().contains("not UTF-8"), "{err}");

        // Rendered before the host is reached: its failure names the line.
        std::fs::write(&local, "ok\n{{ nowhere }}\n").unwrap();
        let done = ops
            .upload(&Targets::all(), template, quiet())
            .await
            .unwrap();
        assert!(!done[0].success);
        assert!(format!("{done:?}").contains("line 2"), "{done:?}");
        assert!(events(&ops, "uploaded").await.is_empty());
    }

    #[test]
    fn attachments_carry_their_size_and_checksum() {
        let a = NewAttachment {
            script: "s".into(),
            path: "/etc/x".into(),
            content: b"abc".to_vec(),
            owner: None,
            mode: 0o600,
            phase: Phase::Before,
            template: false,
        }
        .into_attachment();
        assert_eq!(a.size, 3);
        assert_eq!(
            a.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(parse_sha256(&a.sha256).unwrap()[..2], [0xba, 0x78]);
        assert!(parse_sha256("xyz").is_err());
    }
}
