//! The Otto server: keeps the fleet's state in SQLite, a key per host, one live SSH
//! connection per agent, and drives agents with the Otto protocol.
//!
//! - [`model`]: the domain types (hosts, trust, groups, scripts, attachments, environment,
//!   runs, events), as the store keeps them and the command line prints them.
//! - [`store`]: the fleet's state behind an async interface, a cheap cloneable handle on a
//!   backend; the SQLite backend holds all the SQL and runs it on blocking threads.
//! - [`keys`]: per-host Ed25519 server keys, stored 0600 ([`private_file`]: files only their
//!   owner may read).
//! - [`client`]: one SSH connection to one agent, many operations at once, one channel each.
//! - [`fleet`]: the store, the keys and the live connections together; trust is enforced here.
//! - [`relay`]: agents reached through the server they called home to (several servers).
//! - [`environment`]: a run's environment with the original precedence, and secret redaction.
//! - [`ops`]: the service layer, every operation the server offers (hosts, runs, uploads…).
//! - [`inventory`]: inventories of other tools (Ansible's INI and YAML, CSV, JSON) read, and
//!   the plan of importing them.
//! - [`deploy`]: installing the agent on a device over its own SSH server.
//! - [`config`]: the configuration file (`server.toml`), under the flags.
//! - [`serve`]: the daemon; [`cli`]: the command line; [`print`](mod@print): results as tables
//!   or JSON; [`output`]: a run's output split into lines.
//! - [`names`]: host names, checked (they name key files); [`patterns`]: globs over host names;
//!   [`sanitize`]: text from agents made safe to show.
//! - [`demo`]: a real agent on this machine, driven end to end.

pub mod agents;
pub mod cli;
pub mod client;
pub mod config;
pub mod demo;
pub mod deploy;
pub mod environment;
pub mod fleet;
pub mod http;
pub mod inventory;
pub mod keys;
pub mod model;
pub mod names;
pub mod ops;
pub mod output;
pub mod patterns;
pub mod print;
pub mod private_file;
pub mod relay;
pub mod sanitize;
pub mod selectors;
pub mod serve;
pub mod store;
pub mod templates;
