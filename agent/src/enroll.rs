//! `otto-agent enroll`: joining the fleet by itself. The agent dials the server, serves SSH on
//! that socket as it always does, lets in only the client key whose fingerprint it was given,
//! and on the one `otto-enroll` channel sends its request (token, name, facts) and reads the
//! answer: the server key to trust, or why not (`proto-nostd/README.md`, "Enrollment").
//!
//! The option parsing and the answer's text are pure; [`enroll`] does the network.

use std::fmt;
use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use otto_proto::{
    ENROLL_SUBSYSTEM, EnrollRequest, EnrollResponse, FrameReader, Item, MAX_BODY_LEN, Message,
};
use russh::server::{Auth, ChannelOpenHandle, Msg, Session};
use russh::{Channel, ChannelId, ChannelMsg, ChannelOpenFailure};
use tokio::sync::mpsc;

use crate::callhome::CallHome;

use crate::link::Writer;
use crate::state::Agent;

/// The environment variable that may hold the token, so that it is not on the command line.
pub const TOKEN_VAR: &str = "OTTO_ENROLL_TOKEN";

/// How long an enrollment may take, from the first connection attempt to the answer.
pub const TIME_LIMIT: Duration = Duration::from_secs(60);

/// The options of `otto-agent enroll`.
#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    /// The server's host name or address.
    pub host: String,
    /// Its call-home port.
    pub port: u16,
    /// The fingerprint of its enrollment key, `SHA256:…`.
    pub fingerprint: String,
    /// Where the token comes from.
    pub token: Token,
    /// The host name asked for; None: the server chooses.
    pub name: Option<String>,
}

/// Where the token comes from.
#[derive(Debug, PartialEq, Eq)]
pub enum Token {
    /// `--token TOKEN`.
    Given(String),
    /// `--token-file FILE`: its first line.
    File(PathBuf),
    /// The environment variable [`TOKEN_VAR`].
    Environment,
}

/// Parses the arguments after `enroll`; the error says what is wrong, for a person.
pub fn parse(args: &[String], env_token: bool) -> Result<Options, String> {
    let mut server = None;
    let mut fingerprint = None;
    let mut token = None;
    let mut name = None;
    let mut rest = args;
    while let Some((option, tail)) = rest.split_first() {
        let (value, tail) = tail
            .split_first()
            .ok_or_else(|| format!("{option} needs a value"))?;
        let slot = match option.as_str() {
            "--server" => &mut server,
            "--fingerprint" => &mut fingerprint,
            "--name" => &mut name,
            "--token" | "--token-file" if token.is_some() => {
                return Err("give the token once: --token or --token-file".into());
            }
            "--token" => {
                token = Some(Token::Given(value.clone()));
                rest = tail;
                continue;
            }
            "--token-file" => {
                token = Some(Token::File(PathBuf::from(value)));
                rest = tail;
                continue;
            }
            other => return Err(format!("unknown option `{other}`")),
        };
        if slot.replace(value.clone()).is_some() {
            return Err(format!("{option} is given twice"));
        }
        rest = tail;
    }
    let server = server.ok_or("--server ADDR[:PORT] is needed")?;
    let CallHome { host, port } = CallHome::parse(&server).map_err(|e| e.to_string())?;
    let fingerprint = fingerprint.ok_or("--fingerprint SHA256:… is needed")?;
    if !fingerprint.starts_with("SHA256:") || fingerprint.len() == "SHA256:".len() {
        return Err(format!(
            "`{fingerprint}` is not a key fingerprint (SHA256:…, as the server shows it)"
        ));
    }
    let token = match token {
        Some(token) => token,
        None if env_token => Token::Environment,
        None => {
            return Err(format!(
                "give the token: --token, --token-file or {TOKEN_VAR}"
            ));
        }
    };
    Ok(Options {
        host,
        port,
        fingerprint,
        token,
        name,
    })
}

/// The token a `--token-file` holds: its first line, without the line's end.
pub fn token_of_file(text: &str) -> &str {
    text.lines().next().unwrap_or_default().trim()
}

/// Text from the server, made safe for a terminal: control characters become `?`.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The server's answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// Enrolled as `host`; trust `server_key`; `pending`: an administrator approves it first.
    Accepted {
        host: String,
        server_key: [u8; 32],
        pending: bool,
    },
    /// Refused, for this reason.
    Refused(String),
}

/// Why an enrollment did not get an answer.
#[derive(Debug)]
pub enum EnrollError {
    /// The server cannot be reached.
    Connect(String, std::io::Error),
    /// The server authenticated with another key than the one given.
    WrongServer { presented: String, expected: String },
    /// SSH failed.
    Ssh(russh::Error),
    /// The server broke off or broke the protocol (what happened).
    Protocol(String),
    /// No answer within [`TIME_LIMIT`].
    Timeout,
}

impl fmt::Display for EnrollError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnrollError::Connect(server, e) => write!(f, "cannot connect to {server}: {e}"),
            EnrollError::WrongServer {
                presented,
                expected,
            } => write!(
                f,
                "the server authenticated with key {presented}, not {expected} (--fingerprint): \
                 not enrolling"
            ),
            EnrollError::Ssh(e) => write!(f, "ssh: {e}"),
            EnrollError::Protocol(what) => f.write_str(what),
            EnrollError::Timeout => write!(
                f,
                "no answer from the server within {} s",
                TIME_LIMIT.as_secs()
            ),
        }
    }
}

/// What the connection's handler tells the enrollment.
pub enum Event {
    /// A client key other than the expected one tried to authenticate (its fingerprint).
    WrongServer(String),
    /// The server opened the enrollment channel.
    Channel(Channel<Msg>),
}

/// What makes a connection of the agent's SSH server ([`crate::server`]) an enrolling one: it
/// lets in only the client key of one fingerprint, and serves one session channel, only for the
/// `otto-enroll` subsystem, handing it to the enrollment. Any other channel is refused, and so
/// are the Otto subsystem and every other request (as on every connection of the agent).
pub struct Door {
    fingerprint: String,
    /// The one session channel, until its subsystem request.
    channel: Option<Channel<Msg>>,
    /// Whether a channel was opened already (the only one accepted).
    opened: bool,
    events: mpsc::UnboundedSender<Event>,
}

impl Door {
    /// Whether `key` is the server's enrollment key; tells the enrollment of any other.
    pub fn check(&self, key: &russh::keys::PublicKey) -> Auth {
        let presented = key.fingerprint(Default::default()).to_string();
        if presented == self.fingerprint {
            Auth::Accept
        } else {
            let _ = self.events.send(Event::WrongServer(presented));
            Auth::reject()
        }
    }

    /// Accepts the first session channel, refuses any other.
    pub async fn open(&mut self, channel: Channel<Msg>, reply: ChannelOpenHandle) {
        if self.opened {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
        } else {
            self.opened = true;
            reply.accept().await;
            self.channel = Some(channel);
        }
    }

    /// Grants `otto-enroll` on the one channel and hands the channel over; refuses the rest.
    pub fn subsystem(
        &mut self,
        id: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        let channel = self
            .channel
            .take_if(|c| c.id() == id && name == ENROLL_SUBSYSTEM);
        match channel {
            Some(channel) => {
                session.channel_success(id)?;
                let _ = self.events.send(Event::Channel(channel));
                Ok(())
            }
            None => session.channel_failure(id),
        }
    }
}

/// Enrolls: dials the server, serves SSH to it as `agent` (its key and settings), sends `request` on the
/// enrollment channel and returns the server's answer, all within [`TIME_LIMIT`].
pub async fn enroll(
    options: &Options,
    agent: Arc<Agent>,
    request: &EnrollRequest<'_>,
) -> Result<Answer, EnrollError> {
    tokio::time::timeout(TIME_LIMIT, converse(options, agent, request))
        .await
        .unwrap_or(Err(EnrollError::Timeout))
}

async fn converse(
    options: &Options,
    agent: Arc<Agent>,
    request: &EnrollRequest<'_>,
) -> Result<Answer, EnrollError> {
    let server = format!("{}:{}", options.host, options.port);
    // The name is looked up blocking (the runtime has nothing else to do yet): tokio's lookup
    // would bring its pool of blocking threads into the agent.
    let addresses = (options.host.as_str(), options.port)
        .to_socket_addrs()
        .map_err(|e| EnrollError::Connect(server.clone(), e))?;
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "the name has no address");
    let mut connected = None;
    for address in addresses {
        match tokio::net::TcpStream::connect(address).await {
            Ok(stream) => {
                connected = Some(stream);
                break;
            }
            Err(e) => last = e,
        }
    }
    let stream = connected.ok_or(EnrollError::Connect(server, last))?;
    let _ = stream.set_nodelay(true);
    let (events, mut incoming) = mpsc::unbounded_channel();
    let door = Door {
        fingerprint: options.fingerprint.clone(),
        channel: None,
        opened: false,
        events,
    };
    let session = crate::server::enrolling(agent, stream, door);
    tokio::pin!(session);
    let wrong = |presented| EnrollError::WrongServer {
        presented,
        expected: options.fingerprint.clone(),
    };
    let channel = tokio::select! {
        ended = &mut session => {
            // The connection ended before the channel: say why, a refused key first.
            if let Ok(Event::WrongServer(presented)) = incoming.try_recv() {
                return Err(wrong(presented));
            }
            return Err(match ended {
                Ok(()) => EnrollError::Protocol("the server closed the connection".into()),
                Err(e) => EnrollError::Ssh(e),
            });
        }
        event = incoming.recv() => match event {
            Some(Event::Channel(channel)) => channel,
            Some(Event::WrongServer(presented)) => return Err(wrong(presented)),
            None => return Err(EnrollError::Protocol("the connection ended".into())),
        },
    };
    let exchange = exchange(channel, request);
    tokio::pin!(exchange);
    tokio::select! {
        biased;
        answer = &mut exchange => answer,
        // The server closes the connection right after its answer: what it sent is still
        // queued on the channel, which ends after it.
        _ = &mut session => exchange.await,
    }
}

/// Sends the request on the enrollment channel and reads the answer.
async fn exchange(
    channel: Channel<Msg>,
    request: &EnrollRequest<'_>,
) -> Result<Answer, EnrollError> {
    let (mut rx, tx) = channel.split();
    let mut writer = Writer::new(tx, TIME_LIMIT);
    let lost = |_| EnrollError::Protocol("the enrollment channel closed".into());
    writer
        .send(&Message::EnrollRequest(*request))
        .await
        .map_err(lost)?;
    let mut frames = FrameReader::<MAX_BODY_LEN>::new();
    let mut pending = Bytes::new();
    loop {
        let broken = |what: &dyn fmt::Display| EnrollError::Protocol(format!("protocol: {what}"));
        match frames.next(&pending).map_err(|e| broken(&e))? {
            Some(Item::Frame(Message::EnrollResponse(response))) => {
                writer.close().await;
                return Ok(answer(&response));
            }
            Some(Item::Frame(other)) => {
                return Err(broken(&format_args!(
                    "unexpected {} from the server",
                    other.message_type().name()
                )));
            }
            Some(Item::Data { .. }) => return Err(broken(&"unexpected data from the server")),
            None => {}
        }
        match rx.wait().await {
            Some(ChannelMsg::Data { data }) => pending = data,
            Some(ChannelMsg::Eof | ChannelMsg::Close) | None => {
                return Err(EnrollError::Protocol(
                    "the server closed the enrollment channel without an answer".into(),
                ));
            }
            Some(_) => {}
        }
    }
}

/// The answer, owned, its text made printable.
fn answer(response: &EnrollResponse<'_>) -> Answer {
    match *response {
        EnrollResponse::Accepted {
            host,
            server_public_key,
            pending,
        } => Answer::Accepted {
            host: printable(host),
            server_key: server_public_key,
            pending,
        },
        EnrollResponse::Refused { reason } => Answer::Refused(printable(reason)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_the_options_with_every_source_of_the_token() {
        let parsed = parse(
            &args(&[
                "--server",
                "otto.example:2222",
                "--fingerprint",
                "SHA256:abc",
                "--token",
                "t0k",
                "--name",
                "gw1",
            ]),
            false,
        )
        .unwrap();
        assert_eq!(
            parsed,
            Options {
                host: "otto.example".into(),
                port: 2222,
                fingerprint: "SHA256:abc".into(),
                token: Token::Given("t0k".into()),
                name: Some("gw1".into()),
            }
        );
        let from_file = parse(
            &args(&[
                "--token-file",
                "/run/t",
                "--fingerprint",
                "SHA256:x",
                "--server",
                "10.0.0.1",
            ]),
            true,
        )
        .unwrap();
        assert_eq!(from_file.token, Token::File("/run/t".into()));
        assert_eq!(from_file.port, otto_proto::CALL_HOME_PORT);
        assert_eq!(from_file.name, None);
        let from_env = parse(&args(&["--server", "s", "--fingerprint", "SHA256:x"]), true).unwrap();
        assert_eq!(from_env.token, Token::Environment);
    }

    #[test]
    fn refuses_what_is_missing_twice_or_malformed() {
        let base = ["--server", "s", "--fingerprint", "SHA256:x"];
        let refused = |extra: &[&str], env: bool| {
            let mut all = base.to_vec();
            all.extend_from_slice(extra);
            parse(&args(&all), env).unwrap_err()
        };
        assert_eq!(
            refused(&[], false),
            "give the token: --token, --token-file or OTTO_ENROLL_TOKEN"
        );
        assert_eq!(
            refused(&["--token", "a", "--token-file", "f"], false),
            "give the token once: --token or --token-file"
        );
        assert_eq!(
            refused(&["--server", "t", "--token", "a"], false),
            "--server is given twice"
        );
        assert_eq!(refused(&["--name"], true), "--name needs a value");
        assert_eq!(refused(&["--port", "1"], true), "unknown option `--port`");
        for (fingerprint, ok) in [("SHA256:", false), ("MD5:aa", false), ("abc", false)] {
            let e = parse(
                &args(&[
                    "--server",
                    "s",
                    "--fingerprint",
                    fingerprint,
                    "--token",
                    "t",
                ]),
                false,
            );
            assert_eq!(e.is_ok(), ok, "{fingerprint}");
        }
        assert_eq!(
            parse(&args(&["--fingerprint", "SHA256:x", "--token", "t"]), false).unwrap_err(),
            "--server ADDR[:PORT] is needed"
        );
    }

    #[test]
    fn a_token_file_gives_its_first_line_and_server_text_is_made_printable() {
        assert_eq!(token_of_file("s3cret\n"), "s3cret");
        assert_eq!(token_of_file("  s3cret \r\nsecond\n"), "s3cret");
        assert_eq!(token_of_file(""), "");
        let refused = EnrollResponse::Refused {
            reason: "bad\x1b[2Jtoken\n",
        };
        assert_eq!(answer(&refused), Answer::Refused("bad?[2Jtoken?".into()));
        let accepted = EnrollResponse::Accepted {
            host: "gw\x07",
            server_public_key: [1; 32],
            pending: true,
        };
        assert_eq!(
            answer(&accepted),
            Answer::Accepted {
                host: "gw?".into(),
                server_key: [1; 32],
                pending: true
            }
        );
    }
}
