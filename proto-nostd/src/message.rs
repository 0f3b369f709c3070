//! The 25 Otto message types and their bodies.
//!
//! Bodies are postcard-encoded structs whose text and byte fields borrow from the frame they were
//! decoded from. Every request that starts work on the agent carries an [`ActionId`] chosen by the
//! server, and every answer names the action it belongs to, so several actions can run at once on
//! one connection and a cancel names exactly one of them.

use serde::{Deserialize, Serialize};

use crate::environment::Environment;
use crate::error::Error;

/// Identifies one action (a script run, an upload, a control request) for its whole life. Chosen
/// by the server, unique among the actions it has running on one agent.
pub type ActionId = u64;

/// The message type numbers of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum MessageType {
    /// Agent → server: something went wrong outside any action.
    GeneralFailure = 0,
    /// Agent → server: a running script has been silent for a while but is alive.
    Keepalive = 1,
    /// Server → agent: are you there, and what are you?
    HeartbeatRequest = 2,
    /// Agent → server: the answer to a heartbeat.
    HeartbeatResponse = 3,
    /// Server → agent: trust this new server key and make a new key of your own.
    RotateIdentityRequest = 4,
    /// Agent → server: the agent's new public key, or why it could not rotate.
    RotateIdentityResponse = 5,
    /// Server → agent: run a script; the script's bytes follow as additional data.
    RunScript = 6,
    /// Server → agent: read the configuration file again.
    ReloadConfig = 7,
    /// Server → agent: write a file; its bytes follow as additional data.
    UploadFile = 8,
    /// Server → agent: exit (the service manager restarts the agent).
    ExitAgent = 9,
    /// Server → agent: reboot the device.
    Reboot = 10,
    /// Server → agent: shut the device down.
    Shutdown = 11,
    /// Server → agent: cancel a running action.
    CancelAction = 12,
    /// Agent → server: a chunk of a running script's output.
    ActionOutput = 13,
    /// Agent → server: how an action ended.
    ActionResult = 14,
    /// Agent → server: the agent is ready for an action's additional data.
    ReadyForData = 15,
    /// Agent → server, on an `otto-enroll` channel: enroll me.
    EnrollRequest = 16,
    /// Server → agent, on an `otto-enroll` channel: the host it became, or why not.
    EnrollResponse = 17,
    /// Server → agent: replace yourself with this binary; its bytes follow as additional data.
    UpdateAgent = 18,
    /// Server → agent: what is at this path (checksum, mode, length, owner)?
    StatFile = 19,
    /// Agent → server: what is at the path of a `StatFile` (`None`: nothing).
    FileStat = 20,
    /// Server → agent: send me this file.
    FetchFile = 21,
    /// Agent → server: the file a `FetchFile` asked for; its bytes follow as additional data.
    FileHeader = 22,
    /// Server → agent: write a file; its bytes follow as additional data, then `UploadDigest`.
    UploadStream = 23,
    /// Server → agent: the SHA-256 of the bytes an `UploadStream` just sent.
    UploadDigest = 24,
}

impl MessageType {
    /// Every message type, in wire-number order.
    pub const ALL: [MessageType; 25] = [
        MessageType::GeneralFailure,
        MessageType::Keepalive,
        MessageType::HeartbeatRequest,
        MessageType::HeartbeatResponse,
        MessageType::RotateIdentityRequest,
        MessageType::RotateIdentityResponse,
        MessageType::RunScript,
        MessageType::ReloadConfig,
        MessageType::UploadFile,
        MessageType::ExitAgent,
        MessageType::Reboot,
        MessageType::Shutdown,
        MessageType::CancelAction,
        MessageType::ActionOutput,
        MessageType::ActionResult,
        MessageType::ReadyForData,
        MessageType::EnrollRequest,
        MessageType::EnrollResponse,
        MessageType::UpdateAgent,
        MessageType::StatFile,
        MessageType::FileStat,
        MessageType::FetchFile,
        MessageType::FileHeader,
        MessageType::UploadStream,
        MessageType::UploadDigest,
    ];

    /// The protocol version that brought this message, which its frames carry: 9 for the
    /// streamed upload, 8 for the stat and fetch conversations,
    /// [`OLDEST_VERSION`](crate::OLDEST_VERSION) for the rest.
    pub const fn since(self) -> u32 {
        match self {
            MessageType::UploadStream | MessageType::UploadDigest => 9,
            MessageType::StatFile
            | MessageType::FileStat
            | MessageType::FetchFile
            | MessageType::FileHeader => 8,
            _ => crate::OLDEST_VERSION,
        }
    }

    /// The message type with this wire number, if there is one.
    pub fn from_u32(value: u32) -> Option<MessageType> {
        Self::ALL.into_iter().find(|t| *t as u32 == value)
    }

    /// The message type's name, as used in errors and logs.
    pub fn name(self) -> &'static str {
        match self {
            MessageType::GeneralFailure => "GeneralFailure",
            MessageType::Keepalive => "Keepalive",
            MessageType::HeartbeatRequest => "HeartbeatRequest",
            MessageType::HeartbeatResponse => "HeartbeatResponse",
            MessageType::RotateIdentityRequest => "RotateIdentityRequest",
            MessageType::RotateIdentityResponse => "RotateIdentityResponse",
            MessageType::RunScript => "RunScript",
            MessageType::ReloadConfig => "ReloadConfig",
            MessageType::UploadFile => "UploadFile",
            MessageType::ExitAgent => "ExitAgent",
            MessageType::Reboot => "Reboot",
            MessageType::Shutdown => "Shutdown",
            MessageType::CancelAction => "CancelAction",
            MessageType::ActionOutput => "ActionOutput",
            MessageType::ActionResult => "ActionResult",
            MessageType::ReadyForData => "ReadyForData",
            MessageType::EnrollRequest => "EnrollRequest",
            MessageType::EnrollResponse => "EnrollResponse",
            MessageType::UpdateAgent => "UpdateAgent",
            MessageType::StatFile => "StatFile",
            MessageType::FileStat => "FileStat",
            MessageType::FetchFile => "FetchFile",
            MessageType::FileHeader => "FileHeader",
            MessageType::UploadStream => "UploadStream",
            MessageType::UploadDigest => "UploadDigest",
        }
    }
}

/// Body of `GeneralFailure`: an error outside any action, e.g. a frame the agent could not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneralFailure<'a> {
    /// What went wrong, for a person to read.
    pub message: &'a str,
}

/// A body that only names an action: `Keepalive`, `ReadyForData`, and the control requests
/// `ReloadConfig`, `ExitAgent`, `Reboot` and `Shutdown` (each answered by an [`ActionResult`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRef {
    /// The action this message belongs to.
    pub action: ActionId,
}

/// Body of `HeartbeatRequest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatRequest<'a> {
    /// The server's version.
    pub server_version: &'a str,
    /// A value the agent echoes, to pair the answer with the request.
    pub nonce: u64,
}

/// Body of `HeartbeatResponse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatResponse<'a> {
    /// The agent's version.
    pub agent_version: &'a str,
    /// The nonce of the request this answers.
    pub nonce: u64,
    /// What the agent knows about its host.
    #[serde(borrow)]
    pub facts: HostFacts<'a>,
}

/// Facts about an agent's host, reported with every heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts<'a> {
    /// The host name.
    pub hostname: &'a str,
    /// Kernel name (`uname -s`).
    pub kernel_name: &'a str,
    /// Kernel version (`uname -r`).
    pub kernel_version: &'a str,
    /// Machine architecture (`uname -m`).
    pub arch: &'a str,
    /// Distribution name (e.g. `OpenWrt`, `Debian GNU/Linux`).
    pub distribution_name: &'a str,
    /// Distribution version.
    pub distribution_version: &'a str,
    /// Seconds since boot.
    pub uptime_secs: u64,
    /// The 1, 5 and 15 minute load averages, times 100.
    pub load_centi: [u32; 3],
    /// Total memory in KiB.
    pub mem_total_kib: u64,
    /// Memory available for new work in KiB.
    pub mem_available_kib: u64,
    /// The board's model (OpenWrt's `/tmp/sysinfo/model`, or `/proc/device-tree/model`);
    /// empty when unknown.
    pub model: &'a str,
    /// Whether the CPU runs big-endian (with `arch`, which agent binary the host needs: `uname -m`
    /// says `mips` for both byte orders).
    pub big_endian: bool,
    /// Size of the writable flash in KiB: the file system of OpenWrt's `/overlay`, else of `/`.
    pub flash_total_kib: u64,
    /// Free space on the writable flash in KiB (what an unprivileged process may use).
    pub flash_free_kib: u64,
}

/// Body of `RotateIdentityRequest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotateIdentityRequest {
    /// The Ed25519 public key the agent trusts from now on, instead of the current one.
    pub server_public_key: [u8; 32],
}

/// Body of `RotateIdentityResponse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RotateIdentityResponse<'a> {
    /// The agent stored the new server key and made a new key of its own.
    Rotated {
        /// The agent's new Ed25519 public key.
        agent_public_key: [u8; 32],
    },
    /// The agent kept its old keys.
    Failed {
        /// Why.
        error: &'a str,
    },
}

/// Whose identity a script runs as, or who owns an uploaded file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Credentials {
    /// The agent's own user and group.
    Inherit,
    /// These numeric ids (the agent must be root to switch to them).
    Ids {
        /// User id.
        uid: u32,
        /// Group id.
        gid: u32,
    },
}

/// How long a script may run before its process group is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScriptTimeout {
    /// The agent's configured default.
    AgentDefault,
    /// No limit.
    Unlimited,
    /// This many seconds.
    Seconds(u32),
}

impl ScriptTimeout {
    /// The default both sides use when nothing else is said: one hour, room for a package
    /// install over a slow link or a firmware write, yet a bound on a script that hangs.
    pub const DEFAULT_SECS: u32 = 3600;
}

/// Body of `RunScript`. The agent answers `ReadyForData`, receives `script_len` bytes of script
/// as additional data, and reports with `ActionOutput`, `Keepalive` and finally `ActionResult`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunScript<'a> {
    /// The action this run is.
    pub action: ActionId,
    /// The script's name, for logs.
    pub name: &'a str,
    /// The program that runs the script file (e.g. `/bin/sh`).
    pub interpreter: &'a str,
    /// Who the script runs as.
    pub run_as: Credentials,
    /// Working directory; `None` means the agent's temporary directory.
    #[serde(borrow)]
    pub working_dir: Option<&'a str>,
    /// The script's whole environment, apart from `PATH`, which the agent adds.
    #[serde(borrow)]
    pub env: Environment<'a>,
    /// When to give up on the script.
    pub timeout: ScriptTimeout,
    /// Length of the script, which follows as additional data.
    pub script_len: u64,
}

/// Body of `UploadFile`. The agent answers `ReadyForData`, receives `len` bytes of file as
/// additional data, and reports with `ActionResult`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadFile<'a> {
    /// The action this upload is.
    pub action: ActionId,
    /// Absolute path of the file on the agent's host.
    pub path: &'a str,
    /// Who owns the file.
    pub owner: Credentials,
    /// Permission bits of the file (e.g. `0o644`).
    pub mode: u32,
    /// SHA-256 of the file's contents.
    pub sha256: [u8; 32],
    /// Length of the file, which follows as additional data.
    pub len: u64,
}

/// Body of `UploadStream`: an [`UploadFile`] whose checksum comes after its data, so that the
/// server sends the first byte without reading the whole file first. The agent answers
/// `ReadyForData`, receives `len` bytes of file as additional data, then an [`UploadDigest`] for
/// the same action, and reports with `ActionResult`; any other frame in its place, or a
/// different checksum, fails the upload (the target stays as it was).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadStream<'a> {
    /// The action this upload is.
    pub action: ActionId,
    /// Absolute path of the file on the agent's host.
    pub path: &'a str,
    /// Who owns the file.
    pub owner: Credentials,
    /// Permission bits of the file (e.g. `0o644`).
    pub mode: u32,
    /// Length of the file, which follows as additional data.
    pub len: u64,
}

/// Body of `UploadDigest`: the SHA-256 of the bytes of the [`UploadStream`] `action`, which
/// follows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadDigest {
    /// The upload this checksum ends.
    pub action: ActionId,
    /// SHA-256 of the file's contents.
    pub sha256: [u8; 32],
}

/// Body of `UpdateAgent`. The agent checks what it can before the data (that there is room for
/// `len` bytes beside its own binary), answers `ReadyForData`, receives `len` bytes of executable
/// as additional data, and checks them: the SHA-256, and that they are an ELF executable for its
/// own machine (class, byte order, machine). Only then does it keep its current binary as the
/// previous one, put the new one in its place atomically, answer `ActionResult` (`Completed`),
/// and restart into it. Until the new agent has answered a heartbeat of its trusted server,
/// within `confirm_secs`, the update is on trial: if the new binary crashes, exits or is not
/// heard from in time, the device goes back to the previous binary by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateAgent {
    /// The action this update is.
    pub action: ActionId,
    /// SHA-256 of the new binary.
    pub sha256: [u8; 32],
    /// Length of the new binary, which follows as additional data.
    pub len: u64,
    /// Seconds the new agent has, from its start, to answer a heartbeat of the trusted server
    /// before the device goes back to the previous binary.
    pub confirm_secs: u32,
}

/// Body of `StatFile`: the agent answers [`FileStat`], or an `ActionResult` with
/// `Outcome::Failed` when the path is not absolute, is not a regular file or cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatFile<'a> {
    /// The action this question is.
    pub action: ActionId,
    /// Absolute path of the file on the agent's host.
    pub path: &'a str,
}

/// What a regular file is: its contents' checksum, its permission bits, length and owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// SHA-256 of the file's contents.
    pub sha256: [u8; 32],
    /// Permission bits of the file (`st_mode & 0o7777`).
    pub mode: u32,
    /// Length of the file in bytes.
    pub len: u64,
    /// The owner's user id.
    pub uid: u32,
    /// The owner's group id.
    pub gid: u32,
}

/// Body of `FileStat`: the answer to a [`StatFile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStat {
    /// The action this answers.
    pub action: ActionId,
    /// The file; `None` when nothing exists at the path.
    pub stat: Option<FileInfo>,
}

/// Body of `FetchFile`: the agent answers [`FileHeader`] and the file's bytes, then an
/// `ActionResult` (`Completed`); or, before any data, an `ActionResult` with `Outcome::Failed`
/// when the file does not exist, is not a regular file, cannot be read or is longer than
/// `max_len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchFile<'a> {
    /// The action this fetch is.
    pub action: ActionId,
    /// Absolute path of the file on the agent's host.
    pub path: &'a str,
    /// The longest file the server takes.
    pub max_len: u64,
}

/// Body of `FileHeader`: the file a [`FetchFile`] asked for, whose `len` bytes follow as
/// additional data. `len` and `sha256` are what the agent found before it sent the bytes: a file
/// that changes while it is read arrives with another checksum (or the channel ends early), and
/// the server refuses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHeader {
    /// The action this answers.
    pub action: ActionId,
    /// Length of the file, which follows as additional data.
    pub len: u64,
    /// Permission bits of the file (`st_mode & 0o7777`).
    pub mode: u32,
    /// SHA-256 of the file's contents.
    pub sha256: [u8; 32],
}

/// Body of `CancelAction`, answered by an `ActionResult` for `action` (whether the target was
/// found); the target's own channel then ends with `Outcome::Cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelAction {
    /// This cancel request's own action id.
    pub action: ActionId,
    /// The action to cancel.
    pub target: ActionId,
}

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Body of `ActionOutput`: a chunk of output, in the order it was produced within its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionOutput<'a> {
    /// The action that produced the output.
    pub action: ActionId,
    /// Which stream.
    pub stream: Stream,
    /// The bytes (at most [`MAX_OUTPUT_CHUNK`](crate::MAX_OUTPUT_CHUNK)).
    pub data: &'a [u8],
}

/// How an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome<'a> {
    /// The script exited with this status.
    Exited {
        /// Exit status.
        code: i32,
    },
    /// The script was killed by this signal (not by the agent).
    Signaled {
        /// Signal number.
        signal: i32,
    },
    /// The script ran past its timeout and its process group was killed.
    TimedOut,
    /// The action was cancelled.
    Cancelled,
    /// The upload or control request did what it asked.
    Completed,
    /// The action could not be carried out (bad request, exec failure, checksum mismatch, …).
    Failed {
        /// Why.
        error: &'a str,
    },
}

impl Outcome<'_> {
    /// Whether the action succeeded: a script that exited 0, or a completed request.
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Exited { code: 0 } | Outcome::Completed)
    }
}

/// Body of `ActionResult`: the last message of an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionResult<'a> {
    /// The action that ended.
    pub action: ActionId,
    /// How it ended.
    #[serde(borrow)]
    pub outcome: Outcome<'a>,
    /// Milliseconds from the start of the action to its end.
    pub elapsed_ms: u64,
    /// Bytes the script wrote to standard output.
    pub stdout_len: u64,
    /// Bytes the script wrote to standard error.
    pub stderr_len: u64,
}

/// Body of `EnrollRequest`: an agent that is not a host yet asks to become one (the only
/// message an agent sends first, on the `otto-enroll` subsystem's channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest<'a> {
    /// The enrollment token the agent was given.
    pub token: &'a str,
    /// The host name the agent asks for; `None`: the server chooses (from its facts).
    #[serde(borrow)]
    pub name: Option<&'a str>,
    /// The TCP port the agent listens on, for the server to dial.
    pub port: u16,
    /// Whether the agent connects out to the server (call-home) rather than waiting to be
    /// dialled.
    pub call_home: bool,
    /// What the agent knows about its host, as a heartbeat reports it (the board's model
    /// among it).
    #[serde(borrow)]
    pub facts: HostFacts<'a>,
}

/// Body of `EnrollResponse`: the server's answer to an [`EnrollRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnrollResponse<'a> {
    /// The agent is a host now (or waits for an administrator's approval as one).
    Accepted {
        /// The host's name.
        host: &'a str,
        /// The Ed25519 server key the agent trusts from now on (its host's own key).
        server_public_key: [u8; 32],
        /// Whether the host waits for an administrator's approval before the server uses it.
        pending: bool,
    },
    /// The server refused; nothing changed.
    Refused {
        /// Why, for a person to read.
        reason: &'a str,
    },
}

/// A decoded message: its type and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // each variant is documented on its MessageType
pub enum Message<'a> {
    GeneralFailure(GeneralFailure<'a>),
    Keepalive(ActionRef),
    HeartbeatRequest(HeartbeatRequest<'a>),
    HeartbeatResponse(HeartbeatResponse<'a>),
    RotateIdentityRequest(RotateIdentityRequest),
    RotateIdentityResponse(RotateIdentityResponse<'a>),
    RunScript(RunScript<'a>),
    ReloadConfig(ActionRef),
    UploadFile(UploadFile<'a>),
    ExitAgent(ActionRef),
    Reboot(ActionRef),
    Shutdown(ActionRef),
    CancelAction(CancelAction),
    ActionOutput(ActionOutput<'a>),
    ActionResult(ActionResult<'a>),
    ReadyForData(ActionRef),
    EnrollRequest(EnrollRequest<'a>),
    EnrollResponse(EnrollResponse<'a>),
    UpdateAgent(UpdateAgent),
    StatFile(StatFile<'a>),
    FileStat(FileStat),
    FetchFile(FetchFile<'a>),
    FileHeader(FileHeader),
    UploadStream(UploadStream<'a>),
    UploadDigest(UploadDigest),
}

impl<'a> Message<'a> {
    /// This message's type.
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::GeneralFailure(_) => MessageType::GeneralFailure,
            Message::Keepalive(_) => MessageType::Keepalive,
            Message::HeartbeatRequest(_) => MessageType::HeartbeatRequest,
            Message::HeartbeatResponse(_) => MessageType::HeartbeatResponse,
            Message::RotateIdentityRequest(_) => MessageType::RotateIdentityRequest,
            Message::RotateIdentityResponse(_) => MessageType::RotateIdentityResponse,
            Message::RunScript(_) => MessageType::RunScript,
            Message::ReloadConfig(_) => MessageType::ReloadConfig,
            Message::UploadFile(_) => MessageType::UploadFile,
            Message::ExitAgent(_) => MessageType::ExitAgent,
            Message::Reboot(_) => MessageType::Reboot,
            Message::Shutdown(_) => MessageType::Shutdown,
            Message::CancelAction(_) => MessageType::CancelAction,
            Message::ActionOutput(_) => MessageType::ActionOutput,
            Message::ActionResult(_) => MessageType::ActionResult,
            Message::ReadyForData(_) => MessageType::ReadyForData,
            Message::EnrollRequest(_) => MessageType::EnrollRequest,
            Message::EnrollResponse(_) => MessageType::EnrollResponse,
            Message::UpdateAgent(_) => MessageType::UpdateAgent,
            Message::StatFile(_) => MessageType::StatFile,
            Message::FileStat(_) => MessageType::FileStat,
            Message::FetchFile(_) => MessageType::FetchFile,
            Message::FileHeader(_) => MessageType::FileHeader,
            Message::UploadStream(_) => MessageType::UploadStream,
            Message::UploadDigest(_) => MessageType::UploadDigest,
        }
    }

    /// The action this message belongs to, if it belongs to one.
    pub fn action(&self) -> Option<ActionId> {
        match self {
            Message::Keepalive(r)
            | Message::ReloadConfig(r)
            | Message::ExitAgent(r)
            | Message::Reboot(r)
            | Message::Shutdown(r)
            | Message::ReadyForData(r) => Some(r.action),
            Message::RunScript(m) => Some(m.action),
            Message::UploadFile(m) => Some(m.action),
            Message::UpdateAgent(m) => Some(m.action),
            Message::StatFile(m) => Some(m.action),
            Message::FileStat(m) => Some(m.action),
            Message::FetchFile(m) => Some(m.action),
            Message::FileHeader(m) => Some(m.action),
            Message::UploadStream(m) => Some(m.action),
            Message::UploadDigest(m) => Some(m.action),
            Message::CancelAction(m) => Some(m.action),
            Message::ActionOutput(m) => Some(m.action),
            Message::ActionResult(m) => Some(m.action),
            Message::GeneralFailure(_)
            | Message::HeartbeatRequest(_)
            | Message::HeartbeatResponse(_)
            | Message::RotateIdentityRequest(_)
            | Message::RotateIdentityResponse(_)
            | Message::EnrollRequest(_)
            | Message::EnrollResponse(_) => None,
        }
    }

    /// Length of the additional data that follows this message's frame.
    pub fn data_len(&self) -> u64 {
        match self {
            Message::RunScript(m) => m.script_len,
            Message::UploadFile(m) => m.len,
            Message::UploadStream(m) => m.len,
            Message::UpdateAgent(m) => m.len,
            Message::FileHeader(m) => m.len,
            _ => 0,
        }
    }

    /// Encodes the body into `out`, returning its length.
    pub(crate) fn encode_body(&self, out: &mut [u8]) -> Result<usize, Error> {
        let written = match self {
            Message::GeneralFailure(b) => postcard::to_slice(b, out),
            Message::Keepalive(b)
            | Message::ReloadConfig(b)
            | Message::ExitAgent(b)
            | Message::Reboot(b)
            | Message::Shutdown(b)
            | Message::ReadyForData(b) => postcard::to_slice(b, out),
            Message::HeartbeatRequest(b) => postcard::to_slice(b, out),
            Message::HeartbeatResponse(b) => postcard::to_slice(b, out),
            Message::RotateIdentityRequest(b) => postcard::to_slice(b, out),
            Message::RotateIdentityResponse(b) => postcard::to_slice(b, out),
            Message::RunScript(b) => postcard::to_slice(b, out),
            Message::UploadFile(b) => postcard::to_slice(b, out),
            Message::CancelAction(b) => postcard::to_slice(b, out),
            Message::ActionOutput(b) => postcard::to_slice(b, out),
            Message::ActionResult(b) => postcard::to_slice(b, out),
            Message::EnrollRequest(b) => postcard::to_slice(b, out),
            Message::EnrollResponse(b) => postcard::to_slice(b, out),
            Message::UpdateAgent(b) => postcard::to_slice(b, out),
            Message::StatFile(b) => postcard::to_slice(b, out),
            Message::FileStat(b) => postcard::to_slice(b, out),
            Message::FetchFile(b) => postcard::to_slice(b, out),
            Message::FileHeader(b) => postcard::to_slice(b, out),
            Message::UploadStream(b) => postcard::to_slice(b, out),
            Message::UploadDigest(b) => postcard::to_slice(b, out),
        };
        // Running out of room is the only way serializing these types can fail.
        written
            .map(|body| body.len())
            .map_err(|_| Error::BufferTooSmall)
    }

    /// Decodes a body of type `ty`; the body must be consumed exactly.
    pub(crate) fn decode_body(ty: MessageType, body: &'a [u8]) -> Result<Message<'a>, Error> {
        Ok(match ty {
            MessageType::GeneralFailure => Message::GeneralFailure(parse(ty, body)?),
            MessageType::Keepalive => Message::Keepalive(parse(ty, body)?),
            MessageType::HeartbeatRequest => Message::HeartbeatRequest(parse(ty, body)?),
            MessageType::HeartbeatResponse => Message::HeartbeatResponse(parse(ty, body)?),
            MessageType::RotateIdentityRequest => Message::RotateIdentityRequest(parse(ty, body)?),
            MessageType::RotateIdentityResponse => {
                Message::RotateIdentityResponse(parse(ty, body)?)
            }
            MessageType::RunScript => Message::RunScript(parse(ty, body)?),
            MessageType::ReloadConfig => Message::ReloadConfig(parse(ty, body)?),
            MessageType::UploadFile => Message::UploadFile(parse(ty, body)?),
            MessageType::ExitAgent => Message::ExitAgent(parse(ty, body)?),
            MessageType::Reboot => Message::Reboot(parse(ty, body)?),
            MessageType::Shutdown => Message::Shutdown(parse(ty, body)?),
            MessageType::CancelAction => Message::CancelAction(parse(ty, body)?),
            MessageType::ActionOutput => Message::ActionOutput(parse(ty, body)?),
            MessageType::ActionResult => Message::ActionResult(parse(ty, body)?),
            MessageType::ReadyForData => Message::ReadyForData(parse(ty, body)?),
            MessageType::EnrollRequest => Message::EnrollRequest(parse(ty, body)?),
            MessageType::EnrollResponse => Message::EnrollResponse(parse(ty, body)?),
            MessageType::UpdateAgent => Message::UpdateAgent(parse(ty, body)?),
            MessageType::StatFile => Message::StatFile(parse(ty, body)?),
            MessageType::FileStat => Message::FileStat(parse(ty, body)?),
            MessageType::FetchFile => Message::FetchFile(parse(ty, body)?),
            MessageType::FileHeader => Message::FileHeader(parse(ty, body)?),
            MessageType::UploadStream => Message::UploadStream(parse(ty, body)?),
            MessageType::UploadDigest => Message::UploadDigest(parse(ty, body)?),
        })
    }
}

/// Decodes one body, refusing bytes left over after it.
fn parse<'a, T: Deserialize<'a>>(ty: MessageType, body: &'a [u8]) -> Result<T, Error> {
    let (value, rest) = postcard::take_from_bytes(body).map_err(|_| Error::MalformedBody(ty))?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(Error::TrailingBytes(ty))
    }
}
