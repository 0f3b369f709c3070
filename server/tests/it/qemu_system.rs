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

/// Boots `board` and drives its agent.
async fn device(board: &Board) {
    let dir = workspace().join("target/qemu-system").join(board.name);
    let (kernel, initrd) = (dir.join("vmlinuz"), dir.join("initrd.gz"));
    if !initrd.is_file() || !kernel.is_file() {
        return tool_missing(
            &format!("no {}", initrd.display()),
            &format!("make it with ci/qemu-system.sh {}", board.name),
        );
    }
    let Some(qemu) = find_in_path(board.qemu) else {
        return tool_missing(
            &format!("no {} in PATH", board.qemu),
            "ci/qemu-system.sh installs it",
        );
    };
    let release = std::fs::read_to_string(dir.join("kernel-release")).unwrap();
    // The device's own flash, fresh from the image: it is written to.
    let scratch = tempfile::tempdir().unwrap();
    let flash = scratch.path().join("flash.img");
    std::fs::copy(dir.join("flash.img"), &flash).unwrap();
    let server_key = Arc::new(keys::generate().unwrap());
    // The server key's base64 part, for the device's rcS to trust.
    let trusted = keys::to_openssh(server_key.public_key());
    let trusted = trusted.split(' ').nth(1).unwrap();
    let port = free_port();

    let booted = Instant::now();
    let mut vm = Command::new(&qemu)
        .args(board.machine)
        .args(["-m", "64", "-display", "none", "-monitor", "none"])
        .args(["-serial", "stdio", "-no-reboot"])
        .arg("-kernel")
        .arg(&kernel)
        .arg("-initrd")
        .arg(&initrd)
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
    let _print = PrintOnFailure(console.log.clone());

    // First boot: the agent makes its key; rcS prints it, as a person would read it off the
    // device's console. Then init starts the agent.
    let line = console
        .wait_for("otto-device: agent key ", Duration::from_secs(300))
        .await;
    let agent_key = keys::parse_public(line.split("agent key ").nth(1).unwrap()).unwrap();
    console
        .wait_for("listening on 0.0.0.0:12444", Duration::from_secs(120))
        .await;
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

    // The agent's own peak memory, as the device's kernel counts it.
    let (outcome, hwm) = on_device(
        &conn,
        "grep VmHWM /proc/$(pidof otto-agent)/status | tr -s ' \t' ' '",
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
        hwm.trim()
    );
}
