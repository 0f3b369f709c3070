//! Fuzzes the server's reader of what an agent sends, `otto_server::client::frames::Frames`.
//!
//! The first byte picks the mode, the next ones how the stream is cut into pieces:
//! - raw: the rest of the input is the agent's byte stream;
//! - structured: the rest builds a sequence of valid agent messages (every reply type and
//!   outcome, arbitrary text and output on both streams), server-only messages (some declaring
//!   additional data, which follows) and corrupt bytes, encoded with `otto_proto::encode`.
//!
//! Invariants: no panic; the replies (a `FileHeader`'s additional data joined) and the error do
//! not depend on how the stream is cut;
//! after an error every call errors; the reader holds at most the piece just pushed (pushing
//! only after `Ok(None)`, as the client does); an output chunk is at most `MAX_BODY_LEN` bytes,
//! and the line splitter makes of it lines without a newline, one per newline. In structured
//! mode, moreover, each valid message before the first corrupt byte or server-only message
//! comes back as the matching `Reply` as soon as its last byte is pushed, and a server-only
//! message is refused as soon as its frame is complete.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run agent_frames` from `server/`.
#![no_main]

use std::time::Duration;

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use otto_proto as p;
use otto_proto::{HEADER_LEN, MAX_BODY_LEN, Message, Stream, encode};
use otto_server::client::frames::{FrameError, Frames, Reply};
use otto_server::client::{ActionReport, Outcome};
use otto_server::model::safe_facts;
use otto_server::output::LineSplitter;
use otto_server::sanitize::{self, FIELD_MAX, MESSAGE_MAX};

/// A fact or version as the server keeps it: made safe to show and bounded.
fn field(text: &str) -> String {
    sanitize::field(text, FIELD_MAX)
}

/// An agent's error message as the server keeps it.
fn message(text: &str) -> String {
    sanitize::field(text, MESSAGE_MAX)
}

/// The longest stream built in structured mode (repeated output makes it far longer than the
/// input).
const MAX_WIRE: usize = 256 * 1024;

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    let Some((&count, rest)) = rest.split_first() else {
        return;
    };
    let (sizes, rest) = rest.split_at(usize::from(count % 8).min(rest.len()));
    let script = if mode & 1 == 0 {
        Script {
            wire: rest.to_vec(),
            ..Script::default()
        }
    } else {
        structured(&mut Unstructured::new(rest))
    };
    let pieces = cut(&script.wire, sizes);
    let got = read(&pieces);
    let whole = read(&[&script.wire[..]]);
    assert_eq!(
        got.replies(),
        whole.replies(),
        "the cut changed the replies"
    );
    assert_eq!(
        got.error.as_ref().map(|e| &e.1),
        whole.error.as_ref().map(|e| &e.1),
        "the cut changed the error"
    );
    if mode & 1 == 1 {
        script.check(&pieces, &got);
    }
});

/// The length of a piece: 1 to 192 bytes, 512 bytes to 31.5 KiB, or the rest.
fn piece_len(size: u8) -> usize {
    match size {
        0..=191 => usize::from(size) + 1,
        192..=254 => (usize::from(size) - 191) * 512,
        255 => usize::MAX,
    }
}

/// `wire` cut into pieces whose lengths cycle through `sizes` (one piece if there are none).
fn cut<'a>(wire: &'a [u8], sizes: &[u8]) -> Vec<&'a [u8]> {
    let mut pieces = Vec::new();
    let mut rest = wire;
    for &size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, more) = rest.split_at(piece_len(size).min(rest.len()));
        pieces.push(piece);
        rest = more;
    }
    if !rest.is_empty() {
        pieces.push(rest);
    }
    pieces
}

/// What the reader gave, each with the number of bytes pushed when it came.
#[derive(Default)]
struct Read {
    replies: Vec<(usize, Reply)>,
    error: Option<(usize, FrameError)>,
    idle: bool,
}

impl Read {
    /// The replies, the additional data after a `FileHeader` joined: how it is cut into
    /// [`Reply::Data`] chunks depends on how it arrived, the bytes do not.
    fn replies(&self) -> Vec<Reply> {
        let mut joined: Vec<Reply> = Vec::new();
        for (_, reply) in &self.replies {
            match (joined.last_mut(), reply) {
                (Some(Reply::Data(data)), Reply::Data(more)) => data.extend_from_slice(more),
                _ => joined.push(reply.clone()),
            }
        }
        joined
    }
}

/// Pushes the pieces one by one, reading every reply after each, and checks what holds for
/// any input.
fn read(pieces: &[&[u8]]) -> Read {
    let mut frames = Frames::new();
    let splitter = || LineSplitter::new(SPLIT_MAX);
    let mut lines = [splitter(), splitter()];
    let mut read = Read::default();
    let mut pushed = 0;
    for piece in pieces {
        frames.push(piece);
        pushed += piece.len();
        assert!(
            frames.buffered() <= piece.len(),
            "holds more than one piece"
        );
        loop {
            match frames.next_reply() {
                Ok(Some(reply)) => {
                    assert!(read.error.is_none(), "a reply after an error");
                    if let Reply::Output { stream, data, .. } = &reply {
                        assert!(data.len() <= MAX_BODY_LEN);
                        split(&mut lines[usize::from(*stream == Stream::Stderr)], data);
                    }
                    read.replies.push((pushed, reply));
                }
                Ok(None) => {
                    assert!(read.error.is_none(), "no error after an error");
                    break;
                }
                Err(e) => {
                    read.error.get_or_insert((pushed, e));
                    break;
                }
            }
        }
    }
    if read.error.is_some() {
        assert!(frames.next_reply().is_err(), "no error after an error");
    }
    for splitter in &mut lines {
        let last = splitter.finish();
        assert!(last.iter().all(|l| !l.newline), "a newline after the end");
        check_lines(&last);
    }
    read.idle = frames.is_idle();
    read
}

/// The splitter's line limit here: small, so that output frames are cut into pieces often.
const SPLIT_MAX: usize = 64;

/// Passes an output chunk through the server's line splitter, as a run does.
fn split(splitter: &mut LineSplitter, data: &[u8]) {
    let lines = splitter.push(data);
    let newlines = data.iter().filter(|&&b| b == b'\n').count();
    let ended = lines.iter().filter(|l| l.newline).count();
    assert_eq!(ended, newlines, "one ended line per newline");
    check_lines(&lines);
}

/// What holds for every line or piece the splitter passes on.
fn check_lines(lines: &[otto_server::output::Line]) {
    for line in lines {
        assert!(!line.text.contains('\n'), "a newline inside a line");
        // Each character comes from at least one byte (U+FFFD stands for one or more).
        assert!(
            line.text.chars().count() <= SPLIT_MAX,
            "a piece over the limit"
        );
    }
}

/// An agent's byte stream and what reading it must give.
#[derive(Default)]
struct Script {
    wire: Vec<u8>,
    /// The valid messages before `stop`, each with the offset where its frame ends.
    expected: Vec<(usize, Reply)>,
    stop: Stop,
}

/// Where the stream stops being an agent's valid answers.
#[derive(Default, Clone, Copy)]
enum Stop {
    /// Nowhere.
    #[default]
    Never,
    /// A message only a server sends, whose frame ends at `end`.
    Refused { end: usize, name: &'static str },
    /// Corrupt bytes from `start` on.
    Corrupt { start: usize },
}

impl Script {
    fn valid(&mut self, frame: &[u8], reply: Reply) {
        self.wire.extend_from_slice(frame);
        if matches!(self.stop, Stop::Never) {
            self.expected.push((self.wire.len(), reply));
        }
    }

    fn refused(&mut self, frame: &[u8], name: &'static str) {
        self.wire.extend_from_slice(frame);
        if matches!(self.stop, Stop::Never) {
            let end = self.wire.len();
            self.stop = Stop::Refused { end, name };
        }
    }

    fn corrupt(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() && matches!(self.stop, Stop::Never) {
            self.stop = Stop::Corrupt {
                start: self.wire.len(),
            };
        }
        self.wire.extend_from_slice(bytes);
    }

    /// Checks what the reader gave against what the stream holds.
    fn check(&self, pieces: &[&[u8]], read: &Read) {
        // The number of bytes pushed once the byte before `end` is in.
        let pushed_at = |end: usize| {
            pieces
                .iter()
                .scan(0, |pushed, p| {
                    *pushed += p.len();
                    Some(*pushed)
                })
                .find(|&pushed| pushed >= end)
        };
        assert!(
            read.replies.len() >= self.expected.len(),
            "a valid reply is missing"
        );
        for ((end, want), (at, got)) in self.expected.iter().zip(&read.replies) {
            assert_eq!(got, want);
            assert_eq!(Some(*at), pushed_at(*end), "a reply came late");
        }
        match self.stop {
            Stop::Never => {
                assert_eq!(read.replies.len(), self.expected.len());
                assert!(read.error.is_none(), "{:?}", read.error);
                assert!(read.idle, "the stream ended between frames");
            }
            Stop::Refused { end, name } => {
                assert_eq!(read.replies.len(), self.expected.len());
                let (at, error) = read.error.as_ref().expect("a server message is refused");
                assert_eq!(*error, FrameError::Unexpected(name));
                assert_eq!(Some(*at), pushed_at(end), "the refusal came late");
            }
            Stop::Corrupt { start } => {
                if let Some((at, _)) = &read.error {
                    assert!(*at > start, "an error before the corrupt bytes");
                }
                for (at, _) in &read.replies[self.expected.len()..] {
                    assert!(*at > start, "a reply made of valid bytes only came late");
                }
            }
        }
    }
}

/// A stream built from the fuzzer's input; ends where the input or `MAX_WIRE` does.
fn structured(u: &mut Unstructured<'_>) -> Script {
    let mut script = Script::default();
    let mut buf = vec![0u8; HEADER_LEN + MAX_BODY_LEN];
    while !u.is_empty() && script.wire.len() < MAX_WIRE {
        if step(u, &mut script, &mut buf).is_err() {
            break;
        }
    }
    script
}

/// Adds one message, or some corrupt bytes, to the script.
fn step(u: &mut Unstructured<'_>, script: &mut Script, buf: &mut [u8]) -> Result<()> {
    match u.int_in_range(0..=15u8)? {
        0..=11 => {
            if let Some((n, reply)) = agent_message(u, buf)? {
                script.valid(&buf[..n], reply);
            }
        }
        12..=13 => {
            if let Some((n, name, data)) = server_message(u, buf)? {
                script.refused(&buf[..n], name);
                script.wire.extend_from_slice(&data);
            }
        }
        _ => {
            let bytes = corrupt(u, buf)?;
            script.corrupt(&bytes);
        }
    }
    Ok(())
}

/// Output: arbitrary bytes, or a pattern repeated up to the largest body.
fn output(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let unit: &[u8] = u.arbitrary()?;
    if unit.is_empty() || u.arbitrary()? {
        return Ok(unit.to_vec());
    }
    let len = u.int_in_range(0..=MAX_BODY_LEN)?;
    Ok(unit.iter().copied().cycle().take(len).collect())
}

/// A valid agent message encoded into `buf`, with the reply it must give; None if it is too
/// long for a frame.
fn agent_message(u: &mut Unstructured<'_>, buf: &mut [u8]) -> Result<Option<(usize, Reply)>> {
    let (message, reply) = match u.int_in_range(0..=7u8)? {
        0 => {
            let facts = p::HostFacts {
                hostname: u.arbitrary()?,
                kernel_name: u.arbitrary()?,
                kernel_version: u.arbitrary()?,
                arch: u.arbitrary()?,
                distribution_name: u.arbitrary()?,
                distribution_version: u.arbitrary()?,
                uptime_secs: u.arbitrary()?,
                load_centi: u.arbitrary()?,
                mem_total_kib: u.arbitrary()?,
                mem_available_kib: u.arbitrary()?,
                model: u.arbitrary()?,
                big_endian: u.arbitrary()?,
                flash_total_kib: u.arbitrary()?,
                flash_free_kib: u.arbitrary()?,
            };
            let r = p::HeartbeatResponse {
                agent_version: u.arbitrary()?,
                nonce: u.arbitrary()?,
                facts,
            };
            let reply = Reply::Heartbeat {
                nonce: r.nonce,
                agent_version: field(r.agent_version),
                facts: safe_facts(&facts),
            };
            return Ok(put(&Message::HeartbeatResponse(r), buf).map(|n| (n, reply)));
        }
        1 => {
            let action = u.arbitrary()?;
            let stream = if u.arbitrary()? {
                Stream::Stderr
            } else {
                Stream::Stdout
            };
            let data = output(u)?;
            let message = Message::ActionOutput(p::ActionOutput {
                action,
                stream,
                data: &data,
            });
            let reply = Reply::Output {
                action,
                stream,
                data: data.clone(),
            };
            return Ok(put(&message, buf).map(|n| (n, reply)));
        }
        2 => {
            let action = u.arbitrary()?;
            (
                Message::Keepalive(p::ActionRef { action }),
                Reply::Keepalive { action },
            )
        }
        3 => {
            let action = u.arbitrary()?;
            (
                Message::ReadyForData(p::ActionRef { action }),
                Reply::Ready { action },
            )
        }
        4 => {
            let (outcome, ended) = match u.int_in_range(0..=5u8)? {
                0 => {
                    let code = u.arbitrary()?;
                    (p::Outcome::Exited { code }, Outcome::Exited(code))
                }
                1 => {
                    let signal = u.arbitrary()?;
                    (p::Outcome::Signaled { signal }, Outcome::Signaled(signal))
                }
                2 => (p::Outcome::TimedOut, Outcome::TimedOut),
                3 => (p::Outcome::Cancelled, Outcome::Cancelled),
                4 => (p::Outcome::Completed, Outcome::Completed),
                _ => {
                    let error = u.arbitrary()?;
                    (
                        p::Outcome::Failed { error },
                        Outcome::Failed(message(error)),
                    )
                }
            };
            let r = p::ActionResult {
                action: u.arbitrary()?,
                outcome,
                elapsed_ms: u.arbitrary()?,
                stdout_len: u.arbitrary()?,
                stderr_len: u.arbitrary()?,
            };
            let reply = Reply::Result {
                action: r.action,
                report: ActionReport {
                    outcome: ended,
                    elapsed: Duration::from_millis(r.elapsed_ms),
                    stdout_len: r.stdout_len,
                    stderr_len: r.stderr_len,
                },
            };
            (Message::ActionResult(r), reply)
        }
        5 => {
            if u.arbitrary()? {
                let agent_public_key = u.arbitrary()?;
                (
                    Message::RotateIdentityResponse(p::RotateIdentityResponse::Rotated {
                        agent_public_key,
                    }),
                    Reply::Rotated { agent_public_key },
                )
            } else {
                let error: &str = u.arbitrary()?;
                (
                    Message::RotateIdentityResponse(p::RotateIdentityResponse::Failed { error }),
                    Reply::RotateFailed {
                        error: message(error),
                    },
                )
            }
        }
        6 => {
            let stat = if u.arbitrary()? {
                Some(p::FileInfo {
                    sha256: u.arbitrary()?,
                    mode: u.arbitrary()?,
                    len: u.arbitrary()?,
                    uid: u.arbitrary()?,
                    gid: u.arbitrary()?,
                })
            } else {
                None
            };
            let action = u.arbitrary()?;
            (
                Message::FileStat(p::FileStat { action, stat }),
                Reply::Stat { action, stat },
            )
        }
        _ => {
            let message: &str = u.arbitrary()?;
            (
                Message::GeneralFailure(p::GeneralFailure { message }),
                Reply::Failure {
                    message: self::message(message),
                },
            )
        }
    };
    Ok(put(&message, buf).map(|n| (n, reply)))
}

/// A message only a server sends, encoded into `buf`, with its name and the additional data
/// that follows it (possibly less than it declares); None if it is too long for a frame.
fn server_message(
    u: &mut Unstructured<'_>,
    buf: &mut [u8],
) -> Result<Option<(usize, &'static str, Vec<u8>)>> {
    let action = u.arbitrary()?;
    let run_as = if u.arbitrary()? {
        p::Credentials::Inherit
    } else {
        p::Credentials::Ids {
            uid: u.arbitrary()?,
            gid: u.arbitrary()?,
        }
    };
    // Additional data: a short length, sent in full, or any length, of which a little is sent.
    let data: &[u8] = u.arbitrary()?;
    let data_len = if u.arbitrary()? {
        data.len() as u64
    } else {
        u.arbitrary()?
    };
    let message = match u.int_in_range(0..=8u8)? {
        0 => Message::HeartbeatRequest(p::HeartbeatRequest {
            server_version: u.arbitrary()?,
            nonce: u.arbitrary()?,
        }),
        1 => Message::RotateIdentityRequest(p::RotateIdentityRequest {
            server_public_key: u.arbitrary()?,
        }),
        2 => Message::RunScript(p::RunScript {
            action,
            name: u.arbitrary()?,
            interpreter: u.arbitrary()?,
            run_as,
            working_dir: u.arbitrary()?,
            env: p::Environment::new(u.arbitrary()?).unwrap_or_default(),
            timeout: p::ScriptTimeout::Seconds(u.arbitrary()?),
            script_len: data_len,
        }),
        3 => Message::UploadFile(p::UploadFile {
            action,
            path: u.arbitrary()?,
            owner: run_as,
            mode: u.arbitrary()?,
            sha256: u.arbitrary()?,
            len: data_len,
        }),
        4 => Message::ReloadConfig(p::ActionRef { action }),
        5 => Message::ExitAgent(p::ActionRef { action }),
        6 => Message::Reboot(p::ActionRef { action }),
        7 => Message::Shutdown(p::ActionRef { action }),
        _ => Message::CancelAction(p::CancelAction {
            action,
            target: u.arbitrary()?,
        }),
    };
    let sent = usize::try_from(message.data_len()).map_or(data.len(), |n| n.min(data.len()));
    let name = message.message_type().name();
    Ok(put(&message, buf).map(|n| (n, name, data[..sent].to_vec())))
}

/// Bytes that are not a valid agent message where they stand: arbitrary bytes, a valid frame
/// cut short or with one byte changed, or a header with any version, type and length.
fn corrupt(u: &mut Unstructured<'_>, buf: &mut [u8]) -> Result<Vec<u8>> {
    Ok(match u.int_in_range(0..=3u8)? {
        0 => u.arbitrary::<&[u8]>()?.to_vec(),
        1 | 2 => {
            let Some((n, _)) = agent_message(u, buf)? else {
                return Ok(Vec::new());
            };
            let mut frame = buf[..n].to_vec();
            let at = u.choose_index(n)?;
            if u.arbitrary()? {
                frame.truncate(at);
            } else {
                frame[at] ^= u.int_in_range(1..=255u8)?;
            }
            frame
        }
        _ => p::Header {
            version: u.arbitrary()?,
            message_type: u.arbitrary()?,
            body_len: u.arbitrary()?,
        }
        .emit()
        .to_vec(),
    })
}

/// Encodes `message` into `buf`; None if it does not fit in a frame.
fn put(message: &Message<'_>, buf: &mut [u8]) -> Option<usize> {
    encode(message, buf).ok()
}
