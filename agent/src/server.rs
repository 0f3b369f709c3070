//! The SSH server: accepts TCP connections from `allow_from` addresses only (others are dropped
//! before the handshake), authenticates the one trusted server key, and serves session channels
//! that ask for the `otto` subsystem; every other channel type and request is refused.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::cidr::allowed;
use crate::log::{debug, info, warning};
use crate::session;
use crate::state::Agent;

/// The subsystem an Otto channel asks for.
pub const SUBSYSTEM: &str = "otto";
/// Connections served at once; more are dropped at accept (bounds memory on a small device).
const MAX_CONNECTIONS: usize = 32;
/// Session channels opened but not yet given the Otto subsystem, per connection.
const MAX_PENDING_CHANNELS: usize = 16;

/// Accepts connections until the listener fails for good.
pub async fn serve(agent: Arc<Agent>, listener: TcpListener) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
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
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            warning!("{peer}: refused, {MAX_CONNECTIONS} connections already open");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = Connection {
            agent: agent.clone(),
            peer,
            pending: HashMap::new(),
        };
        let config = agent.ssh();
        tokio::spawn(async move {
            debug!("{peer}: connected");
            let result = match russh::server::run_stream(config, stream, handler).await {
                Ok(running) => running.await,
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => debug!("{peer}: disconnected"),
                Err(e) => debug!("{peer}: connection ended: {e}"),
            }
            drop(slot);
        });
    }
}

/// One SSH connection.
struct Connection {
    agent: Arc<Agent>,
    peer: SocketAddr,
    pending: HashMap<ChannelId, Channel<Msg>>,
}

impl Connection {
    fn check_key(&self, key: &russh::keys::PublicKey) -> Auth {
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
        if auth == Auth::Accept {
            info!("{}: server authenticated", self.peer);
            crate::trust::authenticated(&self.agent, key.public_key);
        }
        Ok(auth)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.pending.len() >= MAX_PENDING_CHANNELS {
            reply
                .reject(russh::ChannelOpenFailure::ResourceShortage)
                .await;
        } else {
            reply.accept().await;
            self.pending.insert(channel.id(), channel);
        }
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        id: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        match self.pending.remove(&id) {
            Some(channel) if name == SUBSYSTEM => {
                session.channel_success(id)?;
                tokio::spawn(session::serve(channel, self.agent.clone()));
                Ok(())
            }
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
        self.pending.remove(&id);
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
