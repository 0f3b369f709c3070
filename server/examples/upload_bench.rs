//! Upload throughput against OpenSSH's scp, not a test: the same file (default 256 MiB of
//! random bytes) sent three times to a local agent with `otto-server upload` and to a local sshd
//! with `scp -c chacha20-poly1305@openssh.com`, each a fresh process that includes its own
//! handshake; every copy is checked against the file's SHA-256. Prints a table of MiB/s.
//!
//! `cargo build --release -p otto-agent -p otto-server --examples &&
//!  target/release/examples/upload_bench [MIB]` (binaries are taken from beside the example's
//! directory; needs `sshd`, `ssh-keygen` and `scp` from Debian's openssh-server and
//! openssh-client; sshd listens on loopback only, on a free port, and stops with the benchmark).
//! Beside the speed, the CPU time both ends spent (otto-server and the agent; scp with its ssh
//! and sshd with its session processes), which does not depend on what else the machine runs.
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

/// Runs `cmd` to its end: (wall time, CPU time of it and the children it waited for, success).
fn run_timed(cmd: &mut Command) -> std::io::Result<(Duration, Duration, bool)> {
    let started = Instant::now();
    let child = cmd.stdout(Stdio::null()).spawn()?;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child, with valid pointers to locals.
    if unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Ok((
        started.elapsed(),
        time(usage.ru_utime) + time(usage.ru_stime),
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
    ))
}

/// CPU time of process `pid` from `/proc/PID/stat`: its own, plus that of the children it has
/// reaped when `children`.
fn process_cpu(pid: u32, children: bool) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<u64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .map(|f| f.parse().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default();
    // utime, stime, cutime, cstime are fields 14 to 17; `rest` starts at field 3.
    let field = |n: usize| fields.get(n - 3).copied().unwrap_or(0);
    let mut ticks = field(14) + field(15);
    if children {
        ticks += field(16) + field(17);
    }
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(ticks * 1000 / per_second)
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

    /// Copies `file` to `dest` with scp; returns the wall time and the CPU time of scp (with
    /// its ssh) and sshd (with the session's processes).
    fn scp(
        &self,
        file: &Path,
        dest: &Path,
    ) -> Result<(Duration, Duration), Box<dyn std::error::Error>> {
        let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
        let sshd_before = process_cpu(self.child.id(), true);
        let (wall, cpu, ok) = run_timed(
            Command::new("scp")
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
                .arg(format!("{user}@127.0.0.1:{}", dest.display())),
        )?;
        if !ok {
            return Err("scp failed".into());
        }
        // The session's processes are reaped by the time scp has its answer, almost always;
        // a moment more makes sure.
        std::thread::sleep(Duration::from_millis(200));
        Ok((wall, cpu + process_cpu(self.child.id(), true) - sshd_before))
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
    let (agent_bin, server_bin) = common::binaries()?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("payload");
    let want = make_file(&file, mib)?;
    let dest = dir.path().join("received");

    let data = dir.path().join("server");
    let fleet = Fleet::open(&data, FleetOptions::default()).await?;
    let server_key = fleet.create_host_key("bench").await?;
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
    println!(
        "| run | otto-server upload MiB/s | scp MiB/s | ratio | otto CPU s (server + agent) | scp CPU s (scp + sshd) |"
    );
    println!("|-|-:|-:|-:|-:|-:|");
    let agent_pid = agent.pid().ok_or("the agent has no pid")?;
    let dest_arg = dest.to_string_lossy().into_owned();
    let file_arg = file.to_string_lossy().into_owned();
    for round in 1..=3 {
        let agent_before = process_cpu(agent_pid, false);
        let (otto, server_cpu, ok) = run_timed(
            Command::new(&server_bin)
                .arg("--data-dir")
                .arg(&data)
                .args(["upload", "-H", "bench", "--path", &dest_arg, &file_arg]),
        )?;
        let otto_cpu = server_cpu + process_cpu(agent_pid, false) - agent_before;
        if !ok || sha256_of(&dest)? != want {
            return Err("the upload failed or the file differs".into());
        }
        std::fs::remove_file(&dest)?;
        let (scp, scp_cpu) = sshd.scp(&file, &dest)?;
        if sha256_of(&dest)? != want {
            return Err("scp's copy differs".into());
        }
        std::fs::remove_file(&dest)?;
        let rate = |d: Duration| mib as f64 / d.as_secs_f64();
        println!(
            "| {round} | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} |",
            rate(otto),
            rate(scp),
            rate(otto) / rate(scp),
            otto_cpu.as_secs_f64(),
            scp_cpu.as_secs_f64()
        );
    }
    println!(
        "agent's peak memory: VmHWM {} KiB",
        common::status_kib(agent_pid, "VmHWM")
    );
    agent.stop().await;
    Ok(())
}
