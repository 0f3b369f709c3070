//! Test harness: spawns the real `otto-agent` binary with its own configuration, key and
//! loopback port in a temporary directory, and talks to it over real SSH as the server does,
//! through the server's own client (`otto_server::client`). A raw channel (russh client and the
//! Otto codec) is kept for what the server never sends: malformed frames, half-written requests,
//! other subsystems, floods. The agent process is killed when the harness is dropped.
#![allow(dead_code)] // each test file uses part of the harness

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use otto_proto::{FrameReader, HEADER_LEN, Item, MAX_BODY_LEN, Message, ScriptTimeout, Stream};
use otto_server::client::{
    ActionReport, AgentKeyCheck, ClientError, Dial, Limits, ScriptEvent, ScriptRequest,
};
use russh::client;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey};
use russh::{ChannelMsg, Preferred};

/// Generous limit for anything to happen on a loaded machine.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A fresh Ed25519 key.
pub fn new_key() -> PrivateKey {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).unwrap();
    PrivateKey::from(Ed25519Keypair::from_seed(&seed))
}

/// A running agent.
pub struct Agent {
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub addr: SocketAddr,
    pub agent_key: PublicKey,
    pub server_key: PrivateKey,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    /// The copy of the binary it runs ([`Agent::start_copy`]); `None`: the one cargo built.
    pub exe: Option<PathBuf>,
}

/// A command that runs the `otto-agent` under test. Cross-built agents run under QEMU user-mode
/// emulation: `OTTO_AGENT_RUNNER=qemu-mips-static` makes it `qemu-mips-static otto-agent …`
/// (cargo's `runner` only wraps the test binary itself, and binfmt_misc may not be set up).
pub fn agent_command() -> Command {
    agent_command_of(Path::new(env!("CARGO_BIN_EXE_otto-agent")))
}

/// [`agent_command`] for the agent binary `agent`.
pub fn agent_command_of(agent: &Path) -> Command {
    match std::env::var("OTTO_AGENT_RUNNER") {
        Ok(runner) if emulated() => {
            let mut command = Command::new(runner);
            command.arg(agent);
            command
        }
        _ => Command::new(agent),
    }
}

/// Spawns `command`, whose program may be a copy made just now. While a test thread copies a
/// binary, another thread's fork may inherit the copy's open descriptor until its `exec`; the
/// kernel then refuses to run the copy ("Text file busy") for that instant: tried again, for
/// at most five seconds.
fn spawn_fresh_copy(command: &mut Command) -> Child {
    let until = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match command.spawn() {
            Err(e)
                if e.kind() == std::io::ErrorKind::ExecutableFileBusy
                    && std::time::Instant::now() < until =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            result => return result.unwrap(),
        }
    }
}

/// Whether the agent runs under an emulator (`OTTO_AGENT_RUNNER`), whose own memory (its code
/// cache grows as it translates more of the agent) is then part of the agent's figures.
pub fn emulated() -> bool {
    std::env::var_os("OTTO_AGENT_RUNNER").is_some_and(|r| !r.is_empty())
}

/// Runs `otto-agent` with arguments and returns (status, stdout, stderr).
pub fn agent_cli(args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let out = agent_command().args(args).output().unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

impl Agent {
    /// Starts an agent that trusts a new server key; `extra` is appended to its configuration.
    /// Its `idle_timeout` is 2 s, so that the stall tests end soon, unless `extra` sets one.
    pub fn start(extra: &str) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("agent.conf");
        let server_key = new_key();
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        std::fs::write(
            &config_path,
            format!(
                "listen = 127.0.0.1:0\nkey = {}\ntemp_dir = {}\n{}log_level = debug\n{extra}\n",
                dir.path().join("agent.key").display(),
                dir.path().join("tmp").display(),
                if extra.contains("idle_timeout") {
                    ""
                } else {
                    "idle_timeout = 2\n"
                },
            ),
        )
        .unwrap();
        let config = config_path.to_str().unwrap();
        let (status, _, err) = agent_cli(&[
            "--config",
            config,
            "trust",
            &server_key.public_key().to_openssh().unwrap(),
        ]);
        assert!(status.success(), "trust failed: {err}");
        let (status, out, err) = agent_cli(&["--config", config, "pubkey"]);
        assert!(status.success(), "pubkey failed: {err}");
        let agent_key = PublicKey::from_openssh(out.trim()).unwrap();
        Self::spawn(dir, config_path, agent_key, server_key)
    }

    /// Like [`Agent::start`], but runs a copy of the agent's binary, `bin/otto-agent` in the
    /// agent's directory (an update replaces its own binary). Under an emulator, the emulator
    /// runs the copy; the agent's own restarts (an `exec`) would need binfmt_misc.
    pub fn start_copy(extra: &str) -> Agent {
        Agent::start_copy_with(extra, |_| {})
    }

    /// [`Agent::start_copy`], calling `before` with the directory of the copy before it is
    /// copied there (to mount a file system on it).
    pub fn start_copy_with(extra: &str, before: impl FnOnce(&Path)) -> Agent {
        let mut agent = Agent::start(extra);
        let _ = agent.child.kill();
        let _ = agent.child.wait();
        let bin = agent.dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        before(&bin);
        let exe = bin.join("otto-agent");
        std::fs::copy(env!("CARGO_BIN_EXE_otto-agent"), &exe).unwrap();
        agent.exe = Some(exe);
        let (child, addr, log) = Self::run(&agent.config_path, agent.exe.as_deref());
        (agent.child, agent.addr, agent.log) = (child, addr, log);
        agent
    }

    fn spawn(
        dir: tempfile::TempDir,
        config_path: PathBuf,
        agent_key: PublicKey,
        server_key: PrivateKey,
    ) -> Agent {
        let (child, addr, log) = Self::run(&config_path, None);
        Agent {
            dir,
            config_path,
            addr,
            agent_key,
            server_key,
            child,
            log,
            exe: None,
        }
    }

    /// Starts `otto-agent run` (`exe`, else the one cargo built) and waits for it to listen;
    /// returns the process, its address and its log.
    fn run(config_path: &Path, exe: Option<&Path>) -> (Child, SocketAddr, Arc<Mutex<Vec<String>>>) {
        let mut command = exe.map_or_else(agent_command, agent_command_of);
        command
            .args(["--config", config_path.to_str().unwrap(), "run"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = spawn_fresh_copy(&mut command);
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let _ = tx.send(rest.split(',').next().unwrap_or_default().to_string());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(PATIENCE) {
            Ok(addr) => addr.parse().unwrap(),
            Err(_) => {
                let _ = child.kill();
                panic!("agent did not start: {:?}", log.lock().unwrap());
            }
        };
        (child, addr, log)
    }

    /// Kills the agent with SIGKILL, as a crash or a power cut would stop it.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Kills the agent (SIGKILL) and starts it again with the same files; it listens on a new
    /// port. `agent_key` is kept: set it first if the agent's key changed.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, addr, log) = Self::run(&self.config_path, self.exe.as_deref());
        (self.child, self.addr, self.log) = (child, addr, log);
    }

    /// The addresses the agent (and the agents it restarted into, which log to the same stderr)
    /// listened on, in order.
    pub fn listened(&self) -> Vec<SocketAddr> {
        self.log()
            .iter()
            .filter_map(|l| {
                l.split("listening on ")
                    .nth(1)?
                    .split(',')
                    .next()?
                    .parse()
                    .ok()
            })
            .collect()
    }

    /// Everything the agent logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Whether the agent logs a line containing `text` within `PATIENCE` (its stderr is read by
    /// another thread, so a line written just now may not be in `log` yet).
    pub async fn logged(&self, text: &str) -> bool {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while tokio::time::Instant::now() < deadline {
            if self.log().iter().any(|l| l.contains(text)) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// The agent's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A field of /proc/<pid>/status in kB (VmRSS, VmHWM).
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| {
                l.strip_prefix(field)?
                    .strip_prefix(':')?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap()
    }

    /// Sends `signal` (`libc::SIGHUP`, …) to the agent's process.
    pub fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.pid()).unwrap();
        // SAFETY: kill(2) only sends a signal, to a child this harness owns and has not reaped.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill");
    }

    /// Whether the agent's process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for the agent to exit and returns its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        for _ in 0..(PATIENCE.as_millis() / 50) {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("agent did not exit");
    }

    /// Connects as the server does, with the trusted server key.
    pub async fn client(&self) -> otto_server::client::Connection {
        self.client_with(&self.server_key).await.expect("connect")
    }

    /// Connects as the server does, with `key`; the agent's host key must be the pinned one.
    pub async fn client_with(
        &self,
        key: &PrivateKey,
    ) -> Result<otto_server::client::Connection, ClientError> {
        dial(self.addr, &self.agent_key, key).await
    }

    /// A raw SSH connection with the trusted server key, for what the server never sends.
    pub async fn raw(&self) -> RawConnection {
        connect(self.addr, &self.agent_key, &self.server_key)
            .await
            .expect("connect")
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Connects to `addr` with the server's client, expecting host key `agent_key`,
/// authenticating with `key`. Every limit is [`PATIENCE`]: a loaded or emulated machine is slow.
pub async fn dial(
    addr: SocketAddr,
    agent_key: &PublicKey,
    key: &PrivateKey,
) -> Result<otto_server::client::Connection, ClientError> {
    dial_checking(addr, AgentKeyCheck::Pinned(agent_key.clone()), key).await
}

/// [`dial`], the agent's host key held to `check`.
pub async fn dial_checking(
    addr: SocketAddr,
    check: AgentKeyCheck,
    key: &PrivateKey,
) -> Result<otto_server::client::Connection, ClientError> {
    otto_server::client::Connection::connect(&Dial {
        address: addr.ip().to_string(),
        port: addr.port(),
        server_key: Arc::new(key.clone()),
        agent_key: check,
        timeout: PATIENCE,
        limits: Limits {
            answer: PATIENCE,
            stall: PATIENCE,
            grace: PATIENCE,
            silence: PATIENCE,
        },
    })
    .await
}

/// A script for `/bin/sh` with environment `env`, run as the agent's own user.
pub fn script(body: &str, env: &[(&str, &str)], timeout: ScriptTimeout) -> ScriptRequest {
    ScriptRequest {
        name: "test".into(),
        interpreter: "/bin/sh".into(),
        body: body.as_bytes().to_vec(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        run_as: otto_proto::Credentials::Inherit,
        working_dir: None,
        timeout,
    }
}

/// The output and the final report of a script run.
pub struct Run {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub keepalives: usize,
    pub report: ActionReport,
}

/// Runs `script` as `action` through the server's client and collects what it produced.
pub async fn run(
    conn: &otto_server::client::Connection,
    action: u64,
    script: &ScriptRequest,
) -> Run {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let (report, (stdout, stderr, keepalives)) =
        tokio::join!(conn.run_script(script, action, tx), collect(rx));
    Run {
        stdout,
        stderr,
        keepalives,
        report: report.expect("run"),
    }
}

/// Stdout, stderr and the number of keepalives among `events`, until the run drops its sender.
pub async fn collect(
    mut events: tokio::sync::mpsc::Receiver<ScriptEvent>,
) -> (Vec<u8>, Vec<u8>, usize) {
    let (mut stdout, mut stderr, mut keepalives) = (Vec::new(), Vec::new(), 0);
    while let Some(event) = events.recv().await {
        match event {
            ScriptEvent::Output {
                stream: Stream::Stdout,
                data,
            } => stdout.extend_from_slice(&data),
            ScriptEvent::Output {
                stream: Stream::Stderr,
                data,
            } => stderr.extend_from_slice(&data),
            ScriptEvent::Keepalive => keepalives += 1,
        }
    }
    (stdout, stderr, keepalives)
}

/// The client side's check of the agent's host key, for raw connections.
pub struct Pinned(pub PublicKey);

impl client::Handler for Pinned {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(
            matches!(key, russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } if key.key_data() == self.0.key_data()),
        )
    }
}

/// An authenticated raw SSH connection to an agent.
pub struct RawConnection {
    pub handle: client::Handle<Pinned>,
}

/// A raw connection to `addr`, expecting host key `agent_key`, authenticating with `key`.
pub async fn connect(
    addr: SocketAddr,
    agent_key: &PublicKey,
    key: &PrivateKey,
) -> Result<RawConnection, String> {
    connect_offering(addr, agent_key, key, otto_server::client::preferred()).await
}

/// [`connect`], offering the algorithms of `preferred`.
pub async fn connect_offering(
    addr: SocketAddr,
    agent_key: &PublicKey,
    key: &PrivateKey,
    preferred: Preferred,
) -> Result<RawConnection, String> {
    let config = client::Config {
        preferred,
        nodelay: true,
        ..Default::default()
    };
    let mut handle = tokio::time::timeout(
        PATIENCE,
        client::connect(Arc::new(config), addr, Pinned(agent_key.clone())),
    )
    .await
    .map_err(|_| "connect timed out".to_string())?
    .map_err(|e| format!("connect: {e}"))?;
    let auth = handle
        .authenticate_publickey(
            "otto",
            PrivateKeyWithHashAlg::new(Arc::new(key.clone()), None),
        )
        .await
        .map_err(|e| format!("auth: {e}"))?;
    if !auth.success() {
        return Err("authentication refused".into());
    }
    Ok(RawConnection { handle })
}

impl RawConnection {
    /// Opens a channel and asks for the `otto` subsystem.
    pub async fn channel(&self) -> OttoChannel {
        self.channel_for("otto").await.expect("otto subsystem")
    }

    /// Opens a channel and asks for `subsystem`; Err if the agent refuses.
    pub async fn channel_for(&self, subsystem: &str) -> Result<OttoChannel, String> {
        let mut channel = self
            .handle
            .channel_open_session()
            .await
            .map_err(|e| e.to_string())?;
        channel
            .request_subsystem(true, subsystem)
            .await
            .map_err(|e| e.to_string())?;
        loop {
            match tokio::time::timeout(PATIENCE, channel.wait()).await {
                Ok(Some(ChannelMsg::Success)) => break,
                Ok(Some(ChannelMsg::Failure)) => return Err("subsystem refused".into()),
                Ok(Some(_)) => continue,
                Ok(None) => return Err("channel closed".into()),
                Err(_) => return Err("no answer to the subsystem request".into()),
            }
        }
        Ok(OttoChannel {
            channel,
            reader: FrameReader::new(),
            pending: Vec::new(),
        })
    }
}

/// A decoded frame, owned.
#[derive(Clone)]
pub struct Frame(pub Vec<u8>);

impl Frame {
    /// The message in the frame.
    pub fn message(&self) -> Message<'_> {
        otto_proto::decode_frame(&self.0, MAX_BODY_LEN).unwrap().0
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.message())
    }
}

/// One raw Otto channel.
pub struct OttoChannel {
    pub channel: russh::Channel<client::Msg>,
    reader: FrameReader<MAX_BODY_LEN>,
    /// The data that arrived last, read by `reader` until it is used up.
    pending: Vec<u8>,
}

/// What [`OttoChannel::recv`] got.
#[derive(Debug)]
pub enum Received {
    Frame(Frame),
    /// The agent closed the channel.
    Closed,
}

impl OttoChannel {
    /// Sends one message.
    pub async fn send(&mut self, message: &Message<'_>) {
        let mut buf = vec![0u8; HEADER_LEN + MAX_BODY_LEN];
        let n = otto_proto::encode(message, &mut buf).unwrap();
        self.send_raw(&buf[..n]).await;
    }

    /// Sends bytes as they are.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.channel.data(bytes).await.unwrap();
    }

    /// The next frame from the agent (re-encoded), or Closed.
    pub async fn recv(&mut self) -> Received {
        loop {
            match self
                .reader
                .next(&self.pending)
                .expect("agent sent a bad frame")
            {
                Some(Item::Frame(message)) => {
                    let mut buf = vec![0u8; HEADER_LEN + MAX_BODY_LEN];
                    let n = otto_proto::encode(&message, &mut buf).unwrap();
                    buf.truncate(n);
                    return Received::Frame(Frame(buf));
                }
                Some(Item::Data { .. }) => panic!("agent sent additional data"),
                None => {}
            }
            match tokio::time::timeout(PATIENCE, self.channel.wait()).await {
                Ok(Some(ChannelMsg::Data { data })) => self.pending = data.to_vec(),
                Ok(Some(ChannelMsg::Eof | ChannelMsg::Close)) | Ok(None) => {
                    return Received::Closed;
                }
                Ok(Some(_)) => {}
                Err(_) => panic!("agent sent nothing for {PATIENCE:?}"),
            }
        }
    }

    /// The next frame; panics if the channel closed.
    pub async fn frame(&mut self) -> Frame {
        match self.recv().await {
            Received::Frame(f) => f,
            Received::Closed => panic!("channel closed"),
        }
    }

    /// Frames until the channel closes.
    pub async fn until_closed(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Received::Frame(f) = self.recv().await {
            frames.push(f);
        }
        frames
    }
}

/// The files under `dir` that process `pid` holds open, with their sizes: named files and
/// anonymous ones (`O_TMPFILE`, shown by the kernel as `dir/#inode (deleted)`) alike.
pub fn open_files_under(pid: u32, dir: &Path) -> Vec<(PathBuf, u64)> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    fds.filter_map(|fd| {
        let fd = fd.ok()?.path();
        let target = std::fs::read_link(&fd).ok()?;
        let size = std::fs::metadata(&fd).ok()?.len();
        target.starts_with(dir).then_some((target, size))
    })
    .collect()
}

/// The contents of a directory (names).
pub fn list(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
