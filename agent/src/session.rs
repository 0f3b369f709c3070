//! Serving one Otto channel: read one request, carry it out, answer, close the channel — the
//! conversations of `proto-nostd/README.md`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use otto_proto::{
    ActionRef, Control, FileHeader, FileStat, GeneralFailure, HeartbeatResponse, Message, Outcome,
    RotateIdentityResponse, UpdateAgent,
};
use russh::Channel;
use russh::server::Msg;

use crate::files::FileError;
use crate::link::{Incoming, LinkError, Reader, Request, Script, Upload, Writer};
use crate::log::{debug, error, info, warning};
use crate::state::{Agent, Registration};
use crate::{facts, files, reload, script, trust, update, upload, version};

/// How long a new channel may take to send its request.
const FIRST_REQUEST: Duration = Duration::from_secs(30);

/// Serves `channel` until its one request is answered.
pub async fn serve(channel: Channel<Msg>, agent: Arc<Agent>) {
    let idle = agent.config().idle_timeout;
    let (rx, tx) = channel.split();
    let mut reader = Reader::new(rx, idle);
    let mut writer = Writer::new(tx, idle);
    match reader.next(FIRST_REQUEST).await {
        Ok(Incoming::Request(request)) => handle(request, &mut reader, &mut writer, &agent).await,
        Ok(Incoming::End | Incoming::Data(_)) => {}
        Ok(Incoming::Digest { .. }) => {
            refuse(&mut writer, LinkError::Unexpected("UploadDigest")).await
        }
        Err(e) => refuse(&mut writer, e).await,
    }
    writer.close().await;
}

/// Answers a channel whose first frame is not a request with why, in a `GeneralFailure`.
async fn refuse(writer: &mut Writer, e: LinkError) {
    warning!("channel refused: {e}");
    let _ = writer
        .send(&Message::GeneralFailure(GeneralFailure {
            message: &e.to_string(),
        }))
        .await;
}

async fn handle(request: Request, reader: &mut Reader, writer: &mut Writer, agent: &Arc<Agent>) {
    match request {
        Request::Heartbeat { nonce } => {
            let facts = facts::gather();
            let response = HeartbeatResponse {
                agent_version: version::version(),
                nonce,
                facts: facts.as_message(),
            };
            if writer
                .send(&Message::HeartbeatResponse(response))
                .await
                .is_ok()
            {
                // The trusted server is served: a new agent on trial is confirmed.
                update::confirm();
            }
        }
        Request::RotateIdentity { server_public_key } => {
            let response = match trust::rotate(agent, server_public_key) {
                Ok(key) => RotateIdentityResponse::Rotated {
                    agent_public_key: key,
                },
                Err(e) => {
                    error!("rotating keys failed: {e}");
                    let error = &e.to_string();
                    let _ = writer
                        .send(&Message::RotateIdentityResponse(
                            RotateIdentityResponse::Failed { error },
                        ))
                        .await;
                    return;
                }
            };
            let _ = writer
                .send(&Message::RotateIdentityResponse(response))
                .await;
        }
        Request::RunScript(script) => run_script(script, reader, writer, agent).await,
        Request::Upload(upload) => run_upload(upload, reader, writer, agent).await,
        Request::Update(update) => run_update(update, reader, writer, agent).await,
        Request::Stat { action, path } => stat_file(action, &path, writer).await,
        Request::Fetch {
            action,
            path,
            max_len,
        } => fetch_file(action, &path, max_len, writer, agent).await,
        Request::Cancel { action, target } => {
            let failure: Option<&Words<'_>> = if agent.actions.cancel(target) {
                None
            } else {
                Some(&"no action with that id is running")
            };
            finish(writer, action, failure, Instant::now()).await;
        }
        Request::Control { action, kind } => control(action, kind, writer, agent).await,
    }
}

/// An error as the server gets it: its words.
type Words<'a> = dyn fmt::Display + Sync + 'a;

/// Sends the ActionResult of a request that produced no output: Completed, or Failed with the
/// words of `failure`.
async fn finish(writer: &mut Writer, action: u64, failure: Option<&Words<'_>>, started: Instant) {
    let error = failure.map(ToString::to_string);
    let outcome = match &error {
        None => Outcome::Completed,
        Some(error) => Outcome::Failed { error },
    };
    let result = script::result(action, outcome, &script::Report::default(), started);
    let _ = writer.send(&result).await;
}

/// Registers `action` as running, or answers that an action with that id already is.
async fn register<'a>(
    agent: &'a Agent,
    writer: &mut Writer,
    action: u64,
    started: Instant,
) -> Option<Registration<'a>> {
    let registration = agent.actions.register(action);
    if registration.is_none() {
        let error = "an action with that id is already running";
        finish(writer, action, Some(&error), started).await;
    }
    registration
}

async fn run_script(request: Script, reader: &mut Reader, writer: &mut Writer, agent: &Arc<Agent>) {
    let started = Instant::now();
    let action = request.action;
    let Some(registration) = register(agent, writer, action, started).await else {
        return;
    };
    if let Err(e) = script::check(&request) {
        return finish(writer, action, Some(&e), started).await;
    }
    let config = agent.config().clone();
    if writer
        .send(&Message::ReadyForData(ActionRef { action }))
        .await
        .is_err()
    {
        return;
    }
    #[cfg(feature = "sim")]
    if agent.simulated {
        return crate::simulate::answer(reader, &request, writer, started).await;
    }
    let file = match script::receive(reader, &request, &config.temp_dir).await {
        Ok(file) => file,
        Err(e) => {
            warning!("action {action}: {e}");
            return finish(writer, action, Some(&e), started).await;
        }
    };
    // The server may close its side now; the script runs on either way.
    match script::run(&request, &file, &config, &registration.cancelled, writer).await {
        Ok((outcome, report)) => {
            info!(
                "action {action}: {outcome:?} after {} ms",
                started.elapsed().as_millis()
            );
            let _ = writer
                .send(&script::result(action, outcome, &report, started))
                .await;
        }
        Err(e) => {
            warning!("action {action}: {e}");
            finish(writer, action, Some(&e), started).await;
        }
    }
}

async fn run_upload(request: Upload, reader: &mut Reader, writer: &mut Writer, agent: &Arc<Agent>) {
    let started = Instant::now();
    let action = request.action;
    let Some(_registration) = register(agent, writer, action, started).await else {
        return;
    };
    let temp = match upload::prepare(&request, &agent.config_path) {
        Ok(temp) => temp,
        Err(e) => return finish(writer, action, Some(&e), started).await,
    };
    if writer
        .send(&Message::ReadyForData(ActionRef { action }))
        .await
        .is_err()
    {
        return;
    }
    match upload::receive(reader, &request, temp).await {
        Ok(()) => {
            info!(
                "action {action}: wrote {} ({} bytes, mode {:o})",
                request.path, request.len, request.mode
            );
            finish(writer, action, None, started).await;
        }
        Err(e) => {
            warning!("action {action}: upload of {} failed: {e}", request.path);
            finish(writer, action, Some(&e), started).await;
        }
    }
}

/// Answers a `StatFile`: the file's checksum, mode, length and owner, `None` if nothing is
/// there, or `Failed` with why it cannot say.
async fn stat_file(action: u64, path: &str, writer: &mut Writer) {
    let started = Instant::now();
    match files::open(path).await {
        Ok(opened) => {
            let stat = opened.map(|o| o.info);
            let _ = writer
                .send(&Message::FileStat(FileStat { action, stat }))
                .await;
        }
        Err(e) => {
            debug!("action {action}: stat of {path} refused: {e}");
            finish(writer, action, Some(&e), started).await;
        }
    }
}

/// Answers a `FetchFile`: the header, the file's bytes in bounded chunks, then `Completed`; or,
/// before any data, `Failed` with why not. A file that ends sooner than it did when it was
/// hashed ends the channel early (no frame can follow announced data that never came).
async fn fetch_file(action: u64, path: &str, max_len: u64, writer: &mut Writer, agent: &Agent) {
    let started = Instant::now();
    let Some(_registration) = register(agent, writer, action, started).await else {
        return;
    };
    let mut opened = match files::open(path).await {
        Ok(Some(opened)) if opened.info.len > max_len => {
            let e = FileError::TooLong(path, opened.info.len, max_len);
            return finish(writer, action, Some(&e), started).await;
        }
        Ok(Some(opened)) => opened,
        Ok(None) => {
            let e = FileError::Missing(path);
            return finish(writer, action, Some(&e), started).await;
        }
        Err(e) => return finish(writer, action, Some(&e), started).await,
    };
    if let Err(e) = opened.rewind() {
        let e = FileError::Read(path, e);
        return finish(writer, action, Some(&e), started).await;
    }
    let info = opened.info;
    let header = FileHeader {
        action,
        len: info.len,
        mode: info.mode,
        sha256: info.sha256,
    };
    if writer.send(&Message::FileHeader(header)).await.is_err() {
        return;
    }
    let mut left = info.len;
    while left > 0 {
        let chunk = match opened.chunk(left) {
            Ok(chunk) if !chunk.is_empty() => chunk,
            Ok(_) => {
                warning!("action {action}: {path} ended early while it was sent");
                return;
            }
            Err(e) => {
                warning!("action {action}: reading {path}: {e}");
                return;
            }
        };
        left = left.saturating_sub(chunk.len() as u64);
        if writer.send_data(chunk).await.is_err() {
            return;
        }
    }
    info!("action {action}: sent {path} ({} bytes)", info.len);
    finish(writer, action, None, started).await;
}

async fn run_update(
    request: UpdateAgent,
    reader: &mut Reader,
    writer: &mut Writer,
    agent: &Arc<Agent>,
) {
    let started = Instant::now();
    let action = request.action;
    let Some(registration) = register(agent, writer, action, started).await else {
        return;
    };
    let prepared = match update::prepare(&request, &agent.config_path) {
        Ok(prepared) => prepared,
        Err(e) => {
            warning!("action {action}: update refused: {e}");
            return finish(writer, action, Some(&e), started).await;
        }
    };
    info!(
        "action {action}: receiving a new agent binary ({} bytes)",
        request.len
    );
    if writer
        .send(&Message::ReadyForData(ActionRef { action }))
        .await
        .is_err()
    {
        return;
    }
    // A cancel stops the transfer (the swap itself is never interrupted: it does not wait).
    let received = tokio::select! {
        received = update::receive(reader, &request, prepared) => received,
        () = registration.cancelled.notified() => {
            warning!("action {action}: update cancelled; nothing replaced");
            let report = script::Report::default();
            let cancelled = script::result(action, Outcome::Cancelled, &report, started);
            let _ = writer.send(&cancelled).await;
            return;
        }
    };
    if let Err(e) = received {
        warning!("action {action}: update refused: {e}");
        return finish(writer, action, Some(&e), started).await;
    }
    finish(writer, action, None, started).await;
    writer.close().await;
    // Let the answer reach the server before the agent goes away.
    tokio::time::sleep(Duration::from_millis(300)).await;
    info!("restarting into the new agent binary, on trial");
    agent.exit_requested.notify_one();
}

async fn control(action: u64, kind: Control, writer: &mut Writer, agent: &Arc<Agent>) {
    let started = Instant::now();
    match kind {
        Control::Reload => {
            let result = reload::reload(agent);
            let failure = result.as_ref().err().map(|e| e as &Words<'_>);
            finish(writer, action, failure, started).await;
        }
        Control::Exit | Control::Reboot | Control::Shutdown => {
            let command = match kind {
                Control::Reboot => Some(agent.config().reboot_command.clone()),
                Control::Shutdown => Some(agent.config().shutdown_command.clone()),
                _ => None,
            };
            finish(writer, action, None, started).await;
            writer.close().await;
            // Let the answer reach the server before the agent or the device goes away.
            tokio::time::sleep(Duration::from_millis(300)).await;
            match command {
                None => {
                    info!("exiting at the server's request");
                    agent.exit_requested.notify_one();
                }
                Some(argv) => spawn_detached(&argv),
            }
        }
    }
}

/// Starts a reboot or shutdown command without waiting for it.
fn spawn_detached(argv: &[String]) {
    let Some((program, args)) = argv.split_first() else {
        return;
    };
    info!("running {}", argv.join(" "));
    match std::process::Command::new(program).args(args).spawn() {
        // Reaped by nobody on purpose: the device is going down.
        Ok(child) => debug!("started {program} as pid {}", child.id()),
        Err(e) => error!("cannot run {program}: {e}"),
    }
}
