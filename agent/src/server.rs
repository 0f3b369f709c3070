//! The SSH server: accepts TCP connections from `allow_from` addresses only (others are dropped
//! before the handshake), authenticates the one trusted server key, and serves session channels
//! that ask for the `otto` subsystem; every other channel type and request is refused.
//!
//! Every resource a peer can make the agent hold is bounded: connections before and after
//! authentication ([`admission`]), the time to authenticate (`login_grace_time`), channels per
//! connection and in total, and what each channel may buffer (the SSH window).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelOpenFailure, Disconnect};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot};

use crate::admission::{self, Admissions};
use crate::cidr::allowed;
use crate::enroll::Door;
use crate::log::{debug, info, warning};
use crate::session;
use crate::state::Agent;

/// The subsystem an Otto channel asks for.
pub const SUBSYSTEM: &str = "otto";
/// Channels one connection may have open at once (waiting for their subsystem, or served).
const CHANNELS_PER_CONNECTION: usize = 16;
/// russh remembers every channel the agent closed first (as it closes every Otto channel) until
/// the connection ends, about 3 KiB each. So a connection that has had this many channels is
/// closed once it has been without channels for the idle timeout (the server connects again
/// when it next needs to)...
const RECYCLE_AFTER: usize = 128;
/// ... and one that has had this many accepts no more until then: under 2 MiB each.
const CHANNELS_PER_CONNECTION_EVER: usize = otto_proto::MAX_CHANNELS_PER_CONNECTION;
/// Channels being served at once, on all connections. Each holds up to its queue
/// ([`crate::state::CHANNEL_QUEUE`] packets, 256 KiB) of unread data and about 40 KiB of its own:
/// 32 of them stay under 10 MiB.
const CHANNELS: usize = 32;

/// What the connections share: the admission bookkeeping and the channel slots.
pub struct Shared {
    admissions: Mutex<Admissions<RawFd>>,
    channels: Arc<Semaphore>,
}

impl Shared {
    fn admissions(&self) -> MutexGuard<'_, Admissions<RawFd>> {
        self.admissions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new connection, cutting off the one it displaces; returns its id.
    fn admit(&self, peer: SocketAddr, stream: &TcpStream) -> u64 {
        let mut admissions = self.admissions();
        let (id, displaced) = admissions.admit(peer, stream.as_raw_fd());
        if let Some((victim, fd)) = displaced {
            cut(fd);
            info!("{victim}: dropped, unauthenticated connections over the limit");
        }
        id
    }

    /// Marks `id` authenticated, cutting off the oldest authenticated connection if that makes
    /// one too many; returns its address, or None if `id` is gone.
    fn authenticate(&self, id: u64) -> Option<Option<SocketAddr>> {
        let displaced = self.admissions().authenticate(id)?;
        Some(displaced.map(|(peer, fd)| {
            cut(fd);
            peer
        }))
    }

    /// Cuts `id` off if it has not authenticated; true if it had not.
    fn expire(&self, id: u64) -> bool {
        let mut admissions = self.admissions();
        let expired = admissions.expire(id);
        if let Some(fd) = expired {
            cut(fd);
        }
        expired.is_some()
    }
}

/// Shuts a registered connection's socket down; the task serving it then ends and closes it.
fn cut(fd: RawFd) {
    // SAFETY: shutdown(2) only acts on the descriptor. It is still open: a connection leaves
    // the admissions (under the lock held by the caller) before its socket is closed
    // (`Tracked::drop`), so the number cannot belong to another file yet.
    unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
}

/// A connection's socket, registered in the admissions for as long as it is open.
struct Tracked {
    stream: TcpStream,
    id: u64,
    shared: Arc<Shared>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        // Runs before `stream` closes the descriptor.
        self.shared.admissions().remove(self.id);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// The admissions and channel slots that every connection shares, accepted or called home.
pub fn shared() -> Arc<Shared> {
    Arc::new(Shared {
        admissions: Mutex::new(Admissions::new(admission::LIMITS)),
        channels: Arc::new(Semaphore::new(CHANNELS)),
    })
}

/// Accepts connections until the listener fails for good.
pub async fn serve(
    agent: Arc<Agent>,
    shared: Arc<Shared>,
    listener: TcpListener,
) -> io::Result<()> {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                warning!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if !allowed(&agent.config().allow_from, peer.ip()) {
            info!("{peer}: refused, not in allow_from");
            continue;
        }
        tokio::spawn(serve_connection(
            agent.clone(),
            shared.clone(),
            stream,
            peer,
        ));
    }
}

/// Serves SSH on one TCP connection (accepted, or made by calling home) until it ends, under
/// the admissions and limits every connection is under.
pub async fn serve_connection(
    agent: Arc<Agent>,
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
) {
    let _ = stream.set_nodelay(true);
    let id = shared.admit(peer, &stream);
    let stream = Tracked {
        stream,
        id,
        shared: shared.clone(),
    };
    let handler = Connection::new(agent.clone(), peer, id, shared.clone(), None);
    let channels = handler.channels.clone();
    let config = agent.ssh();
    let grace = agent.config().login_grace_time;
    debug!("{peer}: connected");
    let session = async move {
        russh::server::run_stream(config, stream, handler)
            .await?
            .await
    };
    tokio::pin!(session);
    let result = tokio::select! {
        result = &mut session => result,
        () = tokio::time::sleep(grace) => {
            if shared.expire(id) {
                info!("{peer}: dropped, not authenticated within {} s", grace.as_secs());
            }
            session.await
        }
    };
    channels.ended.notify_one();
    match result {
        Ok(()) => debug!("{peer}: disconnected"),
        Err(e) => debug!("{peer}: connection ended: {e}"),
    }
}

/// Serves SSH on `stream`, a connection the agent made to enroll, with the same handler and
/// limits as every connection, opened by `door` (see [`crate::enroll`]); ends with the
/// connection.
pub async fn enrolling(
    agent: Arc<Agent>,
    stream: TcpStream,
    door: Door,
) -> Result<(), russh::Error> {
    let shared = shared();
    let peer = stream.peer_addr()?;
    let id = shared.admit(peer, &stream);
    let stream = Tracked {
        stream,
        id,
        shared: shared.clone(),
    };
    let handler = Connection::new(agent.clone(), peer, id, shared, Some(door));
    russh::server::run_stream(agent.ssh(), stream, handler)
        .await?
        .await
}

/// One SSH connection.
struct Connection {
    agent: Arc<Agent>,
    peer: SocketAddr,
    /// Its id in the admissions.
    id: u64,
    shared: Arc<Shared>,
    /// Its channels.
    channels: Arc<Channels>,
    /// What starts each channel waiting for its subsystem request.
    starting: HashMap<ChannelId, oneshot::Sender<()>>,
    /// Set on a connection made to enroll: it serves nothing but that.
    door: Option<Door>,
}

/// A connection's channels, shared with its recycler.
struct Channels {
    /// Slots for channels open at once.
    slots: Arc<Semaphore>,
    /// Channels opened since the connection began.
    opened: AtomicUsize,
    /// Notified when the connection has ended, so that its recycler lets go of it at once.
    ended: Notify,
}

impl Channels {
    /// Channels opened so far, if none is open now.
    fn idle(&self) -> Option<usize> {
        let opened = self.opened.load(Ordering::Relaxed);
        (self.slots.available_permits() == CHANNELS_PER_CONNECTION).then_some(opened)
    }
}

/// Closes a connection once it has had no channel for `quiet` (two checks in a row find it
/// idle with no channel opened in between); returns at once if the connection ends first.
async fn recycle(handle: russh::server::Handle, channels: Arc<Channels>, quiet: Duration) {
    let mut last = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep(quiet) => {}
            () = channels.ended.notified() => return,
        }
        let now = channels.idle();
        if now.is_some() && now == last {
            break;
        }
        last = now;
    }
    let reason = "idle after many channels; connect again";
    let _ = handle
        .disconnect(Disconnect::ByApplication, reason.into(), String::new())
        .await;
}

impl Connection {
    fn new(
        agent: Arc<Agent>,
        peer: SocketAddr,
        id: u64,
        shared: Arc<Shared>,
        door: Option<Door>,
    ) -> Connection {
        Connection {
            agent,
            peer,
            id,
            shared,
            channels: Arc::new(Channels {
                slots: Arc::new(Semaphore::new(CHANNELS_PER_CONNECTION)),
                opened: AtomicUsize::new(0),
                ended: Notify::new(),
            }),
            starting: HashMap::new(),
            door,
        }
    }
    /// A slot for a new channel of this connection and one of the agent's, if both are free.
    fn take_slots(&self) -> Option<[OwnedSemaphorePermit; 2]> {
        let own = self.channels.slots.clone().try_acquire_owned().ok()?;
        let any = self.shared.channels.clone().try_acquire_owned().ok()?;
        Some([own, any])
    }

    fn check_key(&self, key: &russh::keys::PublicKey) -> Auth {
        if let Some(door) = &self.door {
            return door.check(key);
        }
        if self.agent.trusts(key) {
            Auth::Accept
        } else {
            warning!(
                "{}: refused key {}",
                self.peer,
                key.fingerprint(Default::default())
            );
            Auth::reject()
        }
    }
}

/// Serves one channel: waits (at most the idle timeout) for its `otto` subsystem request, then
/// answers its request. Holds its slots (the connection's and the agent's) until done.
async fn run_channel(
    channel: Channel<Msg>,
    start: oneshot::Receiver<()>,
    agent: Arc<Agent>,
    _slots: [OwnedSemaphorePermit; 2],
) {
    let wait = agent.config().idle_timeout;
    match tokio::time::timeout(wait, start).await {
        Ok(Ok(())) => session::serve(channel, agent).await,
        _ => {
            debug!("channel {}: no otto subsystem, closed", channel.id());
            let _ = channel.close().await;
        }
    }
}

/// Refuses a channel request (shell, exec, pty, …): Otto channels make none.
fn refuse(channel: ChannelId, session: &mut Session) -> Result<(), russh::Error> {
    session.channel_failure(channel)
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(self.check_key(offer.public_key))
    }

    async fn auth_publickey(
        &mut self,
        _user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let auth = self.check_key(key.public_key);
        if auth != Auth::Accept || self.door.is_some() {
            return Ok(auth);
        }
        match self.shared.authenticate(self.id) {
            None => return Ok(Auth::reject()),
            Some(Some(oldest)) => warning!(
                "{oldest}: dropped, {} authenticated connections already open and {} logged in",
                admission::LIMITS.authenticated,
                self.peer
            ),
            Some(None) => {}
        }
        info!("{}: server authenticated", self.peer);
        crate::trust::authenticated(&self.agent, key.public_key);
        Ok(auth)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(door) = &mut self.door {
            door.open(channel, reply).await;
            return Ok(());
        }
        // Starters of channels that gave up waiting.
        self.starting.retain(|_, start| !start.is_closed());
        let opened = self.channels.opened.load(Ordering::Relaxed);
        let slots = if opened < CHANNELS_PER_CONNECTION_EVER {
            self.take_slots()
        } else {
            None
        };
        let Some(slots) = slots else {
            debug!("{}: channel refused, too many", self.peer);
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        };
        self.channels.opened.store(opened + 1, Ordering::Relaxed);
        if opened + 1 == RECYCLE_AFTER {
            let quiet = self.agent.config().idle_timeout;
            tokio::spawn(recycle(session.handle(), self.channels.clone(), quiet));
        }
        reply.accept().await;
        let (start, started) = oneshot::channel();
        self.starting.insert(channel.id(), start);
        tokio::spawn(run_channel(channel, started, self.agent.clone(), slots));
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        id: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(door) = &mut self.door {
            return door.subsystem(id, name, session);
        }
        // Taking the starter away refuses the channel for good: its task closes it.
        let start = self.starting.remove(&id);
        // The send fails if the channel's task has given up waiting and closed it.
        match start
            .filter(|_| name == SUBSYSTEM)
            .map(|start| start.send(()))
        {
            Some(Ok(())) => session.channel_success(id),
            _ => {
                debug!("{}: refused subsystem {name:?}", self.peer);
                refuse(id, session)
            }
        }
    }

    async fn channel_close(
        &mut self,
        id: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.starting.remove(&id);
        Ok(())
    }

    async fn shell_request(
        &mut self,
        id: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        refuse(id, session)
    }

    async fn exec_request(
        &mut self,
        id: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        refuse(id, session)
    }

    async fn env_request(
        &mut self,
        id: ChannelId,
        _name: &str,
        _value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        refuse(id, session)
    }

    #[allow(clippy::too_many_arguments)]
    async fn pty_request(
        &mut self,
        id: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        refuse(id, session)
    }

    async fn x11_request(
        &mut self,
        id: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        refuse(id, session)
    }

    async fn agent_request(
        &mut self,
        id: ChannelId,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        refuse(id, session)?;
        Ok(false)
    }
}
