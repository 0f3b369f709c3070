//! A private PostgreSQL cluster: made in a temporary directory with the machine's `initdb`,
//! served on a loopback port, and removed when its [`LocalCluster`] is dropped or the process
//! that made it ends (a supervising shell reads the process's pipe and stops the server
//! when it closes, however the process ended). For the tests, the benchmarks and trying a
//! shared fleet on one machine; never for a fleet's real database.
//!
//! Run as root, the cluster belongs to `nobody` (PostgreSQL refuses to run as root).

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The role the cluster's superuser has, and its password.
const USER: &str = "otto";
const PASSWORD: &str = "otto-local";
/// `nobody` and `nogroup`, whom the cluster belongs to when made by root.
const NOBODY: u32 = 65534;
/// The longest wait for the server to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a cluster could not be made.
#[derive(Debug, thiserror::Error)]
pub enum LocalClusterError {
    /// No PostgreSQL server programs on this machine.
    #[error(
        "no PostgreSQL server programs (initdb, postgres) in $OTTO_PG_BIN, /usr/lib/postgresql/*/bin or $PATH: install Debian's postgresql package"
    )]
    NotInstalled,
    /// A file or program could not be used.
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// `initdb` failed.
    #[error("initdb failed: {0}")]
    Initdb(String),
    /// The server did not start.
    #[error("the PostgreSQL server did not start: {0}")]
    Start(String),
}

/// A running private cluster on `127.0.0.1`.
pub struct LocalCluster {
    dir: PathBuf,
    port: u16,
    /// The supervising shell; its stdin is the pipe whose end stops the server.
    supervisor: Child,
}

impl LocalCluster {
    /// Makes and starts a cluster (a few seconds).
    pub fn start() -> Result<LocalCluster, LocalClusterError> {
        Self::start_with(false)
    }

    /// Makes and starts a cluster that also takes TLS, with a self-signed certificate for
    /// `127.0.0.1`: [`LocalCluster::certificate`].
    pub fn start_with_tls() -> Result<LocalCluster, LocalClusterError> {
        Self::start_with(true)
    }

    /// The certificate (PEM) of a cluster started with TLS.
    pub fn certificate(&self) -> PathBuf {
        self.dir.join("server.crt")
    }

    fn start_with(tls: bool) -> Result<LocalCluster, LocalClusterError> {
        let bin = bin_dir().ok_or(LocalClusterError::NotInstalled)?;
        let as_root = euid() == 0;
        let dir = tempfile::Builder::new()
            .prefix("otto-pg-")
            .tempdir()
            .map_err(|e| LocalClusterError::Io("a temporary directory".into(), e))?
            .keep();
        let io = |what: &str| {
            let what = format!("{what} in {}", dir.display());
            move |e| LocalClusterError::Io(what, e)
        };
        let pwfile = dir.join("password");
        std::fs::write(&pwfile, format!("{PASSWORD}\n")).map_err(io("the password file"))?;
        if as_root {
            for path in [&dir, &pwfile] {
                std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY))
                    .map_err(io("giving the cluster to nobody"))?;
            }
        }
        let data = dir.join("data");
        let out = command(&bin.join("initdb"), as_root)
            .arg("-D")
            .arg(&data)
            .args(["-U", USER, "-E", "UTF8", "--locale=C", "--no-sync"])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .stdin(Stdio::null())
            .output()
            .map_err(io("running initdb"))?;
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(LocalClusterError::Initdb(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        let mut settings = String::new();
        if tls {
            let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])
                .map_err(|e| LocalClusterError::Start(format!("a certificate: {e}")))?;
            let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
            std::fs::write(&cert, made.cert.pem()).map_err(io("the certificate"))?;
            std::fs::write(&key, made.signing_key.serialize_pem()).map_err(io("its key"))?;
            std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .map_err(io("its key"))?;
            if as_root {
                for path in [&cert, &key] {
                    std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY))
                        .map_err(io("giving the certificate to nobody"))?;
                }
            }
            settings = format!(
                "-c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                cert.display(),
                key.display()
            );
        }
        let port = free_port().map_err(io("finding a free port"))?;
        // The server stops (fast shutdown) and the directory goes when stdin closes.
        let script = r#"
"$1/postgres" -D "$2/data" -k "$2" -h 127.0.0.1 -p "$3" \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
    -c max_connections=500 -c shared_buffers=64MB $4 >"$2/log" 2>&1 &
pg=$!
read -r _
kill -INT "$pg" 2>/dev/null
wait "$pg"
rm -rf "$2"
"#;
        let supervisor = command(Path::new("/bin/sh"), as_root)
            .args(["-c", script, "sh"])
            .arg(&bin)
            .arg(&dir)
            .arg(port.to_string())
            .arg(settings)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io("starting the server"))?;
        let mut cluster = LocalCluster {
            dir,
            port,
            supervisor,
        };
        cluster.wait_ready()?;
        Ok(cluster)
    }

    /// Waits until the server says it is ready (`postmaster.pid`'s status line).
    fn wait_ready(&mut self) -> Result<(), LocalClusterError> {
        let deadline = Instant::now() + START_TIMEOUT;
        let pid_file = self.dir.join("data").join("postmaster.pid");
        loop {
            let status = std::fs::read_to_string(&pid_file).unwrap_or_default();
            if status.lines().nth(7).map(str::trim) == Some("ready") {
                return Ok(());
            }
            let exited = matches!(self.supervisor.try_wait(), Ok(Some(_)));
            if exited || Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                let why = if exited { "it exited" } else { "timed out" };
                return Err(LocalClusterError::Start(format!(
                    "{why}; its log ends: {}",
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The port it listens on, on `127.0.0.1`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `database` (with the superuser's password).
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// Makes an empty database named `name` (letters, digits and `_`); its URL.
    pub async fn create_database(&self, name: &str) -> Result<String, tokio_postgres::Error> {
        let (client, connection) =
            tokio_postgres::connect(&self.url("postgres"), tokio_postgres::NoTls).await?;
        let task = tokio::spawn(connection);
        let made = client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await;
        drop(client);
        let _ = task.await;
        made.map(|()| self.url(name))
    }

    /// Stops the server and removes its directory, and waits for both.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.supervisor.stdin.take() {
            let _ = stdin.write_all(b"\n");
            drop(stdin);
            let _ = self.supervisor.wait();
        }
    }
}

/// `program`, run as `nobody` when `as_root`.
fn command(program: &Path, as_root: bool) -> Command {
    if !as_root {
        return Command::new(program);
    }
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={NOBODY}"))
        .arg(format!("--regid={NOBODY}"))
        .arg("--clear-groups")
        .arg("--")
        .arg(program);
    c
}

/// Where `initdb` and `postgres` are: `$OTTO_PG_BIN`, the newest `/usr/lib/postgresql/*/bin`
/// (Debian's), or the directory of `initdb` on `$PATH`.
fn bin_dir() -> Option<PathBuf> {
    let has = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = std::env::var_os("OTTO_PG_BIN").map(PathBuf::from) {
        return has(&dir).then_some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, dir)| has(dir))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Some(dir);
    }
    std::env::split_paths(&std::env::var_os("PATH")?).find(|dir| has(dir))
}

/// A port free on `127.0.0.1` now.
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The effective user id.
fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}
