//! What every connection of the agent shares: the configuration, the SSH settings with the
//! current host key, the registry of running actions, and the way to ask the agent to exit.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use otto_proto::ActionId;
use russh::keys::Algorithm;
use russh::keys::{PrivateKey, PublicKey};
use russh::{MethodKind, MethodSet, Preferred, cipher, compression, kex, mac};
use tokio::sync::Notify;

use crate::config::Config;

/// The agent's shared state.
pub struct Agent {
    /// Where the configuration was read from (reload and rotation rewrite it).
    pub config_path: PathBuf,
    config: Mutex<Config>,
    ssh: Mutex<Arc<russh::server::Config>>,
    /// Actions running now, by id.
    pub actions: Registry,
    /// Signalled when the server asked the agent to exit.
    pub exit_requested: Notify,
    /// One of many agents of `otto-agent simulate`: its scripts are answered by a built-in.
    #[cfg(feature = "sim")]
    pub simulated: bool,
}

impl Agent {
    /// Shared state for `config`, serving with `host_key`.
    pub fn new(config_path: PathBuf, config: Config, host_key: PrivateKey) -> Arc<Agent> {
        Arc::new(Agent::made(config_path, config, host_key))
    }

    /// An agent of `otto-agent simulate`: as [`Agent::new`], its scripts answered by a
    /// built-in (see `simulate.rs`).
    #[cfg(feature = "sim")]
    pub fn simulated(config_path: PathBuf, config: Config, host_key: PrivateKey) -> Arc<Agent> {
        Arc::new(Agent {
            simulated: true,
            ..Agent::made(config_path, config, host_key)
        })
    }

    fn made(config_path: PathBuf, config: Config, host_key: PrivateKey) -> Agent {
        Agent {
            config_path,
            config: Mutex::new(config),
            ssh: Mutex::new(Arc::new(ssh_config(host_key))),
            actions: Registry::default(),
            exit_requested: Notify::new(),
            #[cfg(feature = "sim")]
            simulated: false,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> MutexGuard<'_, Config> {
        // A poisoned lock only means a panic elsewhere; the configuration itself is whole.
        self.config.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the configuration in force.
    pub fn set_config(&self, config: Config) {
        crate::log::set_level(config.log_level);
        *self.config() = config;
    }

    /// Whether `key` is the server key the agent trusts, or the previous one while a rotation
    /// is not confirmed yet (see `trust`).
    pub fn trusts(&self, key: &PublicKey) -> bool {
        let config = self.config();
        [&config.server_key, &config.server_key_previous]
            .into_iter()
            .flatten()
            .any(|trusted| trusted.key_data() == key.key_data())
    }

    /// The SSH settings for a new connection.
    pub fn ssh(&self) -> Arc<russh::server::Config> {
        self.ssh.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Serves new connections with `host_key` from now on.
    pub fn set_host_key(&self, host_key: PrivateKey) {
        *self.ssh.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(ssh_config(host_key));
    }
}

/// Packets of data one channel may hold unread (each at most russh's 32 KiB).
pub const CHANNEL_QUEUE: usize = 8;

/// The SSH server's settings: the Otto algorithm set only, public-key authentication only.
fn ssh_config(host_key: PrivateKey) -> russh::server::Config {
    russh::server::Config {
        methods: MethodSet::from(&[MethodKind::PublicKey][..]),
        keys: vec![host_key],
        preferred: preferred(),
        auth_rejection_time: Duration::from_secs(1),
        // OpenSSH clients probe with "none" first; answering that at once costs nothing.
        auth_rejection_time_initial: Some(Duration::ZERO),
        max_auth_attempts: 3,
        // The server keeps one connection open for days; keepalives find a vanished peer.
        keepalive_interval: Some(Duration::from_secs(60)),
        keepalive_max: 3,
        inactivity_timeout: None,
        nodelay: true,
        // OpenSSH's window (2 MiB): 256 KiB held uploads to about 0.8x scp's speed
        // (`server/examples/upload_bench.rs`). russh opens the window again as packets arrive,
        // not as the channel reads them, so it does not bound what the agent holds...
        window_size: 2048 * 1024,
        // ... the channel's queue does: once it holds this many packets (32 KiB each at most)
        // that the channel has not read, the session reads nothing more from the socket until it
        // has, and the server's sending waits in TCP. 256 KiB a channel, while a file is written
        // slower than it arrives (russh's default, 100, let a slow device queue 3.2 MiB; 8 or 16
        // instead of 100 cost uploads on loopback about 4 %, within this machine's noise:
        // `server/examples/upload_bench.rs`, docs/size.md).
        channel_buffer_size: CHANNEL_QUEUE,
        ..Default::default()
    }
}

/// The Otto SSH profile ([`otto_proto::profile`]) as the agent, the SSH server, offers it.
/// russh has constants, not names: looking the names up at run time would cost the agent 3 KiB,
/// so these are russh's constants for the profile's names, in its order, which a test checks.
fn preferred() -> Preferred {
    Preferred {
        kex: (&[
            kex::CURVE25519,
            kex::EXTENSION_SUPPORT_AS_SERVER,
            kex::EXTENSION_OPENSSH_STRICT_KEX_AS_SERVER,
        ][..])
            .into(),
        key: (&[Algorithm::Ed25519][..]).into(),
        cipher: (&[cipher::CHACHA20_POLY1305][..]).into(),
        // chacha20-poly1305 authenticates by itself; a MAC is still negotiated, never used.
        mac: (&[mac::HMAC_SHA256_ETM][..]).into(),
        compression: (&[compression::NONE][..]).into(),
        host_key_certificates: (&[][..]).into(),
    }
}

/// The running actions, so that a cancel from any channel finds its target.
#[derive(Default)]
pub struct Registry {
    running: Mutex<HashMap<ActionId, Arc<Notify>>>,
}

/// A registered action; leaving the registry when dropped.
pub struct Registration<'a> {
    registry: &'a Registry,
    id: ActionId,
    /// Notified when the action is cancelled.
    pub cancelled: Arc<Notify>,
}

impl Registry {
    fn running(&self) -> MutexGuard<'_, HashMap<ActionId, Arc<Notify>>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `id`; `None` if an action with that id is already running.
    pub fn register(&self, id: ActionId) -> Option<Registration<'_>> {
        let mut running = self.running();
        if running.contains_key(&id) {
            return None;
        }
        let cancelled = Arc::new(Notify::new());
        running.insert(id, cancelled.clone());
        Some(Registration {
            registry: self,
            id,
            cancelled,
        })
    }

    /// Asks the action `id` to stop; false if no such action is running.
    pub fn cancel(&self, id: ActionId) -> bool {
        match self.running().get(&id) {
            // notify_one keeps the signal even if the action is not waiting for it yet.
            Some(cancelled) => {
                cancelled.notify_one();
                true
            }
            None => false,
        }
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.registry.running().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_refuses_duplicates_and_forgets_finished_actions() {
        let registry = Registry::default();
        let first = registry.register(7).unwrap();
        assert!(registry.register(7).is_none());
        assert!(registry.cancel(7));
        assert!(!registry.cancel(8));
        drop(first);
        assert!(!registry.cancel(7));
        assert!(registry.register(7).is_some());
    }

    /// russh's constants are the profile's names, in its order.
    #[test]
    fn preferred_offers_exactly_the_profile() {
        use otto_proto::profile;

        fn strs<N: AsRef<str>>(names: &[N]) -> Vec<&str> {
            names.iter().map(AsRef::as_ref).collect()
        }
        let p = preferred();
        assert_eq!(strs(&p.kex), profile::SERVER_KEX);
        let keys: Vec<&str> = p.key.iter().map(Algorithm::as_str).collect();
        assert_eq!(keys, [profile::HOST_KEY]);
        assert_eq!(strs(&p.cipher), [profile::CIPHER]);
        assert_eq!(strs(&p.mac), [profile::MAC]);
        assert_eq!(strs(&p.compression), [profile::COMPRESSION]);
        assert!(p.host_key_certificates.is_empty());
    }
}
