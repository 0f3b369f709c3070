//! Upload throughput against OpenSSH's scp, not a test: the same file (default 256 MiB of
//! random bytes) sent three times to a local agent with `otto-server upload` and to a local sshd
//! with `scp -c chacha20-poly1305@openssh.com`, each a fresh process that includes its own
//! handshake; every copy is checked against the file's SHA-256. Prints a table of MiB/s.
//!
//! `cargo build --release -p otto-agent -p otto-server --examples &&
//!  target/release/examples/upload_bench [MIB]` (binaries are taken from beside the example's
//! directory; needs `sshd`, `ssh-keygen` and `scp` from Debian's openssh-server and
//! openssh-client; sshd listens on loopback only, on a free port, and stops with the benchmark).
//! Ends with the agent's peak memory (VmHWM) over the three uploads.

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use otto_server::demo::LocalAgent;
use otto_server::fleet::{Fleet, FleetOptions};
use otto_server::keys;
use otto_server::model::NewHost;
use sha2::{Digest, Sha256};

const SSHD: &str = "/usr/sbin/sshd";
const CIPHER: &str = "chacha20-poly1305@openssh.com";

/// Writes `mib` MiB of pseudo-random bytes (xorshift: incompressible, fast) to `path`; returns
/// their SHA-256.
fn make_file(path: &Path, mib: usize) -> std::io::Result<[u8; 32]> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut hash = Sha256::new();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for chunk in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes());
        }
        hash.update(&block);
        file.write_all(&block)?;
    }
    file.flush()?;
    Ok(hash.finalize().into())
}

fn sha256_of(path: &Path) -> std::io::Result<[u8; 32]> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hash = Sha256::new();
    let mut block = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut block)? {
            0 => return Ok(hash.finalize().into()),
            n => hash.update(block.get(..n).unwrap_or_default()),
        }
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn run(cmd: &mut Command) -> Result<(), Box<dyn std::error::Error>> {
    let status = cmd.stdout(Stdio::null()).status()?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed: {status}").into())
    }
}

/// A private sshd on a loopback port: its own host key, config and authorized key.
struct Sshd {
    child: Child,
    port: u16,
    client_key: PathBuf,
}

impl Sshd {
    fn start(dir: &Path) -> Result<Sshd, Box<dyn std::error::Error>> {
        std::fs::create_dir_all(dir)?;
        let host_key = dir.join("host_key");
        let client_key = dir.join("client_key");
        for key in [&host_key, &client_key] {
            run(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(key))?;
        }
        let authorized = dir.join("authorized_keys");
        std::fs::copy(client_key.with_extension("pub"), &authorized)?;
        // sshd's privilege separation directory (Debian's package makes it at boot).
        std::fs::create_dir_all("/run/sshd")?;
        let port = free_port()?;
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "ListenAddress 127.0.0.1\nPort {port}\nHostKey {}\nAuthorizedKeysFile {}\n\
                 PidFile none\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
                 PermitRootLogin prohibit-password\nCiphers {CIPHER}\nSubsystem sftp internal-sftp\n",
                host_key.display(),
                authorized.display()
            ),
        )?;
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stderr(Stdio::null())
            .spawn()?;
        // Wait until it listens.
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(10) {
                return Err("sshd did not start listening".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Sshd {
            child,
            port,
            client_key,
        })
    }

    /// Copies `file` to `dest` with scp; returns the wall time.
    fn scp(&self, file: &Path, dest: &Path) -> Result<Duration, Box<dyn std::error::Error>> {
        let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
        let started = Instant::now();
        run(Command::new("scp")
            .args(["-q", "-o", "StrictHostKeyChecking=no", "-o"])
            .arg("UserKnownHostsFile=/dev/null")
            .args([
                "-o",
                "BatchMode=yes",
                "-c",
                CIPHER,
                "-P",
                &self.port.to_string(),
                "-i",
            ])
            .arg(&self.client_key)
            .arg(file)
            .arg(format!("{user}@127.0.0.1:{}", dest.display())))?;
        Ok(started.elapsed())
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mib: usize = std::env::args().nth(1).map_or(Ok(256), |a| a.parse())?;
    let bin_dir: PathBuf = std::env::current_exe()?
        .parent()
        .and_then(Path::parent)
        .ok_or("no binary directory")?
        .to_path_buf();
    let (agent_bin, server_bin) = (bin_dir.join("otto-agent"), bin_dir.join("otto-server"));
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("payload");
    let want = make_file(&file, mib)?;
    let dest = dir.path().join("received");

    let data = dir.path().join("server");
    let fleet = Fleet::open(&data, FleetOptions::default())?;
    let server_key = fleet.create_host_key("bench")?;
    let mut agent =
        LocalAgent::start(&agent_bin, &dir.path().join("agent"), &server_key, "").await?;
    fleet
        .store()
        .add_host(&NewHost {
            name: "bench".into(),
            address: agent.address.clone(),
            port: agent.port,
            agent_key: Some(keys::to_openssh(&agent.agent_key)),
            pin_on_first_contact: false,
        })
        .await?;
    drop(fleet);
    let sshd = Sshd::start(&dir.path().join("sshd"))?;

    println!("{mib} MiB, {} and scp -c {CIPHER}", agent_bin.display());
    println!("| run | otto-server upload MiB/s | scp MiB/s | ratio |");
    println!("|-|-:|-:|-:|");
    let dest_arg = dest.to_string_lossy().into_owned();
    let file_arg = file.to_string_lossy().into_owned();
    for round in 1..=3 {
        let (otto, _, ok) = common::timed(
            &server_bin,
            &data,
            &["upload", "-H", "bench", "--path", &dest_arg, &file_arg],
        )?;
        if !ok || sha256_of(&dest)? != want {
            return Err("the upload failed or the file differs".into());
        }
        std::fs::remove_file(&dest)?;
        let scp = sshd.scp(&file, &dest)?;
        if sha256_of(&dest)? != want {
            return Err("scp's copy differs".into());
        }
        std::fs::remove_file(&dest)?;
        let rate = |d: Duration| mib as f64 / d.as_secs_f64();
        println!(
            "| {round} | {:.1} | {:.1} | {:.2} |",
            rate(otto),
            rate(scp),
            rate(otto) / rate(scp)
        );
    }
    if let Some(pid) = agent.pid() {
        println!(
            "agent's peak memory: VmHWM {} KiB",
            common::status_kib(pid, "VmHWM")
        );
    }
    agent.stop().await;
    Ok(())
}
