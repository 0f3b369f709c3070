//! A whole emulated device: QEMU's full-system emulator boots Debian 12's kernel for a little-endian
//! MIPS board (Malta) and for a 32-bit ARM board (virt), each with 64 MiB of RAM, an initramfs
//! and 16 MiB of writable flash (a virtio disk holding ext4, mounted on /overlay as OpenWrt's is)
//! where the cross-built agent, the device's only service, lives with its configuration and key
//! (`ci/qemu-system.sh` makes them; each test boots a copy of the flash). The server library
//! reaches the agent through QEMU's user-mode network (a port forwarded from loopback) and checks:
//! the agent's key printed on the console on first boot is the one it presents; the heartbeat
//! reports the emulated kernel, architecture, byte order, host name, distribution, board model
//! and the flash's size and free space; output streams
//! back while a script runs; an upload's checksum matches on the device; a cancel kills the script
//! and its child; a key rotation takes effect; and a Shutdown powers the device off. Each test
//! prints the boot time and the agent's own peak RSS as the device's kernel counts it (no
//! emulator in that figure).
//!
//! Without the images or the emulator the tests are skipped with a message on stderr; under
//! `OTTO_REQUIRE_TOOLS=1` (ci/cross-check.sh) a missing one is a failure instead
//! ([`tool_missing`]).

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use emulated::{find_in_path, next_output, workspace};
use otto_proto::{Control, Stream};
use otto_server::client::{
    AgentKeyCheck, ClientError, Connection, Dial, Limits, Outcome, new_action_id,
};
use otto_server::keys;
use russh::keys::{PrivateKey, PublicKey};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::emulated;
use crate::harness::tool_missing;

/// How to boot one board.
struct Board {
    /// Its directory under target/qemu-system (and `ci/qemu-system.sh`'s name for it).
    name: &'static str,
    /// The emulator.
    qemu: &'static str,
    /// Machine and devices, before the kernel, initramfs and network options.
    machine: &'static [&'static str],
    /// The network device, given `netdev=n0`.
    nic: &'static str,
    /// The flash's disk device, given `drive=flash`.
    disk: &'static str,
    /// The serial console's name in the guest.
    console: &'static str,
    /// What `uname -m` says there.
    arch: &'static str,
}

const MALTA: Board = Board {
    name: "mipsel",
    qemu: "qemu-system-mipsel",
    machine: &["-M", "malta", "-vga", "none"],
    // The PCnet card Malta boards have; no option ROM: nothing boots from the network.
    nic: "pcnet,netdev=n0,romfile=",
    disk: "virtio-blk-pci,drive=flash",
    console: "ttyS0",
    arch: "mips",
};

const ARM_VIRT: Board = Board {
    name: "armhf",
    qemu: "qemu-system-arm",
    machine: &["-M", "virt,highmem=off"],
    nic: "virtio-net-device,netdev=n0",
    disk: "virtio-blk-device,drive=flash",
    console: "ttyAMA0",
    arch: "armv7l",
};

#[tokio::test]
async fn mipsel_malta_board() {
    device(&MALTA).await;
}

#[tokio::test]
async fn armv7_virt_board() {
    device(&ARM_VIRT).await;
}

/// The console's lines as they arrive, and all of them so far (printed if the test fails).
struct Console {
    lines: mpsc::UnboundedReceiver<String>,
    log: Arc<Mutex<String>>,
}

impl Console {
    /// Follows the emulator's standard output (the guest's serial console).
    fn follow(qemu: &mut Child) -> Console {
        let stdout = qemu.stdout.take().expect("the emulator's stdout is piped");
        let (tx, lines) = mpsc::unbounded_channel();
        let log = Arc::new(Mutex::new(String::new()));
        let kept = log.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let line = line.trim_end_matches('\r').to_string();
                if let Ok(mut log) = kept.lock() {
                    log.push_str(&line);
                    log.push('\n');
                }
                let _ = tx.send(line);
            }
        });
        Console { lines, log }
    }

    /// The first line, from now on, that contains `marker`.
    async fn wait_for(&mut self, marker: &str, limit: Duration) -> String {
        let found = tokio::time::timeout(limit, async {
            while let Some(line) = self.lines.recv().await {
                if line.contains(marker) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            Ok(None) => panic!("the device stopped before printing `{marker}`"),
            Err(_) => panic!("no `{marker}` on the console within {limit:?}"),
        }
    }
}

/// Prints the device's console when a check fails: the boot log says what went wrong there.
struct PrintOnFailure(Arc<Mutex<String>>);

impl Drop for PrintOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Ok(log) = self.0.lock()
        {
            eprintln!("---- the device's console ----\n{log}---- end of console ----");
        }
    }
}

/// A free TCP port on loopback for QEMU to forward to the guest's agent.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// Runs `body` on the device and returns its exit code and standard output.
async fn on_device(conn: &Connection, body: &str) -> (Outcome, String) {
    let (run, mut events) = emulated::start(conn, body.to_string(), new_action_id());
    let mut stdout = Vec::new();
    while let Some(event) = events.recv().await {
        if let otto_server::client::ScriptEvent::Output {
            stream: Stream::Stdout,
            data,
        } = event
        {
            stdout.extend_from_slice(&data);
        }
    }
    let report = run.await.unwrap().unwrap();
    (
        report.outcome,
        String::from_utf8_lossy(&stdout).into_owned(),
    )
}

/// How to dial the agent behind the forwarded port.
fn dial(port: u16, server_key: Arc<PrivateKey>, agent_key: &PublicKey) -> Dial {
    Dial {
        address: "127.0.0.1".into(),
        port,
        server_key,
        agent_key: AgentKeyCheck::Pinned(agent_key.clone()),
        // Key exchange on an emulated CPU is slow; CI machines are slower still.
        timeout: Duration::from_secs(60),
        limits: Limits {
            answer: Duration::from_secs(120),
            stall: Duration::from_secs(120),
            grace: Duration::from_secs(60),
            silence: Duration::from_secs(120),
        },
    }
}

/// A booted device: its emulator, its console, the loopback port forwarded to its agent, and the
/// agent key it printed on its console.
struct Device {
    vm: Child,
    console: Console,
    _print: PrintOnFailure,
    port: u16,
    agent_key: PublicKey,
}

/// Where `board`'s images are (`ci/qemu-system.sh`), or None after reporting what is missing.
fn images(board: &Board) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let dir = workspace().join("target/qemu-system").join(board.name);
    if !dir.join("initrd.gz").is_file() || !dir.join("flash.img").is_file() {
        tool_missing(
            &format!("no images in {}", dir.display()),
            &format!("make them with ci/qemu-system.sh {}", board.name),
        );
        return None;
    }
    stale_agent_refused(&dir);
    let Some(qemu) = find_in_path(board.qemu) else {
        tool_missing(
            &format!("no {} in PATH", board.qemu),
            "ci/qemu-system.sh installs it",
        );
        return None;
    };
    Some((dir, qemu))
}

/// Panics if the flash image in `dir` holds an agent other than the one in dist/ now (the
/// images were made before the agents were built again): a test of that image would measure
/// an old agent.
fn stale_agent_refused(dir: &std::path::Path) {
    use sha2::Digest;
    let stamp = std::fs::read_to_string(dir.join("agent.sha256")).unwrap_or_default();
    let Some((sha256, path)) = stamp.trim_end().split_once("  ") else {
        panic!(
            "{} says nothing of its agent: make the images again with ci/qemu-system.sh",
            dir.display()
        );
    };
    let now = std::fs::read(workspace().join(path)).unwrap_or_default();
    let now = sha2::Sha256::digest(&now)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    assert_eq!(
        sha256,
        now,
        "the image in {} holds another agent than {path}: make the images again with \
         ci/qemu-system.sh",
        dir.display()
    );
}

impl Device {
    /// Boots `board` from the images in `dir` on the flash image `flash`, trusting
    /// `server_key`, and waits until its agent listens.
    async fn boot(
        board: &Board,
        qemu: &std::path::Path,
        dir: &std::path::Path,
        flash: &std::path::Path,
        server_key: &PrivateKey,
    ) -> Device {
        // The server key's base64 part, for the device's rcS to trust.
        let trusted = keys::to_openssh(server_key.public_key());
        let trusted = trusted.split(' ').nth(1).unwrap().to_string();
        let port = free_port();
        let mut vm = Command::new(qemu)
            .args(board.machine)
            .args(["-m", "64", "-display", "none", "-monitor", "none"])
            .args(["-serial", "stdio", "-no-reboot"])
            .arg("-kernel")
            .arg(dir.join("vmlinuz"))
            .arg("-initrd")
            .arg(dir.join("initrd.gz"))
            .arg("-append")
            .arg(format!(
                "console={} quiet otto_server_key={trusted}",
                board.console
            ))
            .arg("-netdev")
            .arg(format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:12444"))
            .arg("-device")
            .arg(board.nic)
            .arg("-drive")
            .arg(format!(
                "file={},format=raw,if=none,id=flash",
                flash.display()
            ))
            .arg("-device")
            .arg(board.disk)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut console = Console::follow(&mut vm);
        let print = PrintOnFailure(console.log.clone());
        // rcS prints the agent's key (made on first boot), as a person would read it off the
        // device's console. Then init starts the agent.
        let line = console
            .wait_for("otto-device: agent key ", Duration::from_secs(300))
            .await;
        let agent_key = keys::parse_public(line.split("agent key ").nth(1).unwrap()).unwrap();
        console
            .wait_for("listening on 0.0.0.0:12444", Duration::from_secs(120))
            .await;
        Device {
            vm,
            console,
            _print: print,
            port,
            agent_key,
        }
    }

    /// A new connection to the agent.
    async fn connect(&self, server_key: &Arc<PrivateKey>) -> Connection {
        Connection::connect(&dial(self.port, server_key.clone(), &self.agent_key))
            .await
            .unwrap()
    }
}

/// Boots `board` and drives its agent.
async fn device(board: &Board) {
    let Some((dir, qemu)) = images(board) else {
        return;
    };
    let release = std::fs::read_to_string(dir.join("kernel-release")).unwrap();
    // The device's own flash, fresh from the image: it is written to.
    let scratch = tempfile::tempdir().unwrap();
    let flash = scratch.path().join("flash.img");
    std::fs::copy(dir.join("flash.img"), &flash).unwrap();
    let server_key = Arc::new(keys::generate().unwrap());
    let booted = Instant::now();
    let Device {
        mut vm,
        console: _console,
        _print,
        port,
        agent_key,
    } = Device::boot(board, &qemu, &dir, &flash, &server_key).await;
    let boot_time = booted.elapsed();
    let conn = Connection::connect(&dial(port, server_key.clone(), &agent_key))
        .await
        .unwrap();

    // The heartbeat reports the emulated device.
    let beat = conn.heartbeat().await.unwrap();
    assert_eq!(
        (
            beat.facts.kernel_name.as_str(),
            beat.facts.kernel_version.as_str(),
            beat.facts.arch.as_str(),
            beat.facts.hostname.as_str(),
            beat.facts.distribution_name.as_str(),
        ),
        (
            "Linux",
            release.trim(),
            board.arch,
            format!("otto-{}", board.arch).as_str(),
            "Otto QEMU test device",
        )
    );
    assert!(
        beat.facts.mem_total_kib > 0 && beat.facts.mem_total_kib <= 64 * 1024,
        "memory {} KiB on a 64 MiB device",
        beat.facts.mem_total_kib
    );
    // The flash mounted on /overlay: 16 MiB less what ext4 keeps for itself, mostly free.
    let flash_facts = (beat.facts.flash_total_kib, beat.facts.flash_free_kib);
    assert!(
        (8 * 1024..=16 * 1024).contains(&flash_facts.0)
            && (1024..flash_facts.0).contains(&flash_facts.1),
        "flash (total, free) {flash_facts:?} KiB on a 16 MiB /overlay"
    );
    assert!(!beat.facts.big_endian, "both boards are little-endian");
    assert!(
        !beat.facts.model.is_empty(),
        "no board model (Malta's from /proc/cpuinfo via /tmp/sysinfo/model, virt's from its device tree)"
    );

    // Output streams back while the script runs: its second line waits for a file that a second
    // action makes only after the first line has arrived here.
    let (run, mut events) = emulated::start(
        &conn,
        "echo one; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo two >&2; exit 3\n".into(),
        new_action_id(),
    );
    assert_eq!(
        next_output(&mut events).await,
        (Stream::Stdout, b"one\n".to_vec())
    );
    assert_eq!(
        on_device(&conn, "touch /tmp/go").await.0,
        Outcome::Exited(0)
    );
    assert_eq!(
        next_output(&mut events).await,
        (Stream::Stderr, b"two\n".to_vec())
    );
    assert_eq!(run.await.unwrap().unwrap().outcome, Outcome::Exited(3));

    // An upload of 1 MiB: the agent checks its checksum, and so does the device's sha256sum.
    let digest = emulated::upload_1mib(&conn, "/tmp/uploaded.bin").await;
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        on_device(&conn, "sha256sum /tmp/uploaded.bin").await,
        (Outcome::Exited(0), format!("{hex}  /tmp/uploaded.bin\n"))
    );

    // A cancel kills the script and its child.
    let action = new_action_id();
    let (run, mut events) = emulated::start(&conn, "sleep 600 & echo $!; wait\n".into(), action);
    let child = String::from_utf8(next_output(&mut events).await.1).unwrap();
    let child: u32 = child.trim().parse().unwrap();
    assert!(
        conn.cancel(action).await.unwrap(),
        "the agent had no such action"
    );
    assert_eq!(run.await.unwrap().unwrap().outcome, Outcome::Cancelled);
    // Gone, or a zombie that init has yet to reap.
    let gone = format!(
        "for i in $(seq 50); do grep -qv ') Z' /proc/{child}/stat 2>/dev/null || exit 0; \
         sleep 0.1; done; exit 1"
    );
    assert_eq!(
        on_device(&conn, &gone).await.0,
        Outcome::Exited(0),
        "the script's child {child} survived the cancel"
    );

    // The agent's own peak memory, as the device's kernel counts it, and what it holds now: the
    // executable's pages (`Pss_File`) and its own (`Anonymous`), from `smaps_rollup`.
    let (outcome, hwm) = on_device(
        &conn,
        "pid=$(pidof otto-agent); grep VmHWM /proc/$pid/status; \
         grep -E '^(Rss|Pss_File|Anonymous):' /proc/$pid/smaps_rollup",
    )
    .await;
    assert_eq!(outcome, Outcome::Exited(0));

    // Key rotation: once the new server key has connected the old one is refused; the agent
    // presents a new key of its own.
    let new_server_key = Arc::new(keys::generate().unwrap());
    let new_agent_key = conn
        .rotate_identity(new_server_key.public_key())
        .await
        .unwrap();
    assert_ne!(new_agent_key.key_data(), agent_key.key_data());
    let rotated = Connection::connect(&dial(port, new_server_key, &new_agent_key))
        .await
        .unwrap();
    assert_eq!(rotated.heartbeat().await.unwrap().facts.arch, board.arch);
    assert!(matches!(
        Connection::connect(&dial(port, server_key, &new_agent_key)).await,
        Err(ClientError::AuthRejected)
    ));

    // Shutdown: the agent answers, then the device powers off and the emulator exits.
    let report = rotated.control(Control::Shutdown).await.unwrap();
    assert_eq!(report.outcome, Outcome::Completed);
    let status = tokio::time::timeout(Duration::from_secs(120), vm.wait())
        .await
        .expect("the device did not power off within 120 s")
        .unwrap();
    assert!(status.success(), "the emulator ended with {status}");

    println!(
        "{} ({}, kernel {}): booted and agent listening in {:.1} s; agent peak RSS on the device: {}",
        board.name,
        board.qemu,
        release.trim(),
        boot_time.as_secs_f64(),
        hwm.split_whitespace().collect::<Vec<_>>().join(" ")
    );
}

/// "Another build" of the agent: `binary` with the version after its tag rewritten to one of the
/// same length that ends in `last` (the agent reports what its binary says: part of the design,
/// docs/agent.md). Returns the binary and its version.
fn another_build(binary: &[u8], last: char) -> (Vec<u8>, String) {
    let tag = otto_proto::AGENT_VERSION_TAG.as_bytes();
    let start = binary
        .windows(tag.len())
        .position(|w| w == tag)
        .expect("the agent binary has its version tag")
        + tag.len();
    let len = binary[start..].iter().position(|&b| b == 0).unwrap();
    let old = std::str::from_utf8(&binary[start..start + len]).unwrap();
    let version = format!("{}{last}", &old[..len - 1]);
    assert_ne!(version, old);
    let mut copy = binary.to_vec();
    copy[start..start + len].copy_from_slice(version.as_bytes());
    (copy, version)
}

/// Sends `binary` to the device's agent as its update, with `confirm_secs` to confirm it.
async fn send_update(conn: &Connection, binary: &[u8], confirm_secs: u32) -> Outcome {
    use sha2::Digest;
    let update = otto_proto::UpdateAgent {
        action: new_action_id(),
        sha256: sha2::Sha256::digest(binary).into(),
        len: binary.len() as u64,
        confirm_secs,
    };
    conn.update_agent(&update, binary, |_| {})
        .await
        .unwrap()
        .outcome
}

/// The version the device's agent reports, over a new connection, retried (the agent restarts)
/// for up to `limit`; None if it never answered.
async fn version_within(
    device: &Device,
    server_key: &Arc<PrivateKey>,
    limit: Duration,
) -> Option<String> {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        let dial = dial(device.port, server_key.clone(), &device.agent_key);
        if let Ok(conn) = Connection::connect(&dial).await
            && let Ok(beat) = conn.heartbeat().await
        {
            return Some(beat.agent_version);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    None
}

/// The agent of a whole emulated device updates itself (issue 24): to another build (the
/// heartbeat shows its version once it has confirmed itself), then to a broken binary (the
/// device goes back to the previous one by itself, and the server sees the old version again),
/// then a power cut while an update is on trial (the device boots into a working agent: the one
/// it had before the unconfirmed update). Prints how long each step took.
#[tokio::test]
async fn mipsel_malta_board_updates_its_agent() {
    let board = &MALTA;
    let Some((dir, qemu)) = images(board) else {
        return;
    };
    let agent = workspace().join("dist/otto-agent-mipsel-unknown-linux-musl");
    let Ok(current) = std::fs::read(&agent) else {
        return tool_missing(
            &format!("no {}", agent.display()),
            "build it with ci/build-agents.sh mipsel-unknown-linux-musl",
        );
    };
    let scratch = tempfile::tempdir().unwrap();
    let flash = scratch.path().join("flash.img");
    std::fs::copy(dir.join("flash.img"), &flash).unwrap();
    let server_key = Arc::new(keys::generate().unwrap());
    let mut device = Device::boot(board, &qemu, &dir, &flash, &server_key).await;
    let first = version_within(&device, &server_key, Duration::from_secs(120))
        .await
        .expect("the device's agent answers");

    // An update to another build: confirmed by the heartbeat that reports it.
    let started = Instant::now();
    let (second, second_version) = another_build(&current, '7');
    let conn = device.connect(&server_key).await;
    assert_eq!(send_update(&conn, &second, 600).await, Outcome::Completed);
    drop(conn);
    let mut seen = None;
    let until = Instant::now() + Duration::from_secs(600);
    // The first heartbeat of the new agent confirms it; the agent then restarts once more into
    // it, and answers as itself from then on.
    while Instant::now() < until && seen.as_deref() != Some(second_version.as_str()) {
        seen = version_within(&device, &server_key, Duration::from_secs(300)).await;
    }
    assert_eq!(seen.as_deref(), Some(second_version.as_str()));
    device
        .console
        .wait_for("the new agent is confirmed", Duration::from_secs(120))
        .await;
    assert_eq!(
        version_within(&device, &server_key, Duration::from_secs(300)).await,
        Some(second_version.clone())
    );
    let updated = started.elapsed();

    // A broken binary (an ELF header for this machine, then garbage): accepted, swapped in, and
    // rolled back by the device itself when it cannot run.
    let started = Instant::now();
    let mut broken = current.clone();
    for byte in broken.iter_mut().skip(4096) {
        *byte = 0xa5;
    }
    let conn = device.connect(&server_key).await;
    assert_eq!(send_update(&conn, &broken, 600).await, Outcome::Completed);
    drop(conn);
    device
        .console
        .wait_for(
            "rolled back to the previous agent binary",
            Duration::from_secs(300),
        )
        .await;
    assert_eq!(
        version_within(&device, &server_key, Duration::from_secs(300)).await,
        Some(second_version.clone()),
        "the server sees the previous version again"
    );
    let rolled_back = started.elapsed();

    // A power cut while an update is on trial (sent, swapped in, never confirmed: nobody asks
    // the new agent for a heartbeat): the device boots into a working agent, the one it had.
    let started = Instant::now();
    let (third, _) = another_build(&current, '3');
    let conn = device.connect(&server_key).await;
    assert_eq!(send_update(&conn, &third, 3600).await, Outcome::Completed);
    drop(conn);
    device
        .console
        .wait_for("trial started", Duration::from_secs(120))
        .await;
    device.vm.kill().await.unwrap();
    drop(device);
    let device = Device::boot(board, &qemu, &dir, &flash, &server_key).await;
    assert_eq!(
        version_within(&device, &server_key, Duration::from_secs(300)).await,
        Some(second_version.clone()),
        "after the power cut the device runs the agent it had before the unconfirmed update"
    );
    let recovered = started.elapsed();
    println!(
        "{} update on the device: {first} -> {second_version} confirmed in {:.1} s; a broken \
         binary rolled back in {:.1} s; after a power cut during a trial, back on \
         {second_version} in {:.1} s (reboot included)",
        board.name,
        updated.as_secs_f64(),
        rolled_back.as_secs_f64(),
        recovered.as_secs_f64()
    );
}
