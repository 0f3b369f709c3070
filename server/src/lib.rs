//! The Otto server: keeps a key per agent and drives agents over SSH with the Otto protocol.
//!
//! - [`keys`]: per-host Ed25519 server keys, stored 0600.
//! - [`client`]: one SSH connection to one agent, many operations at once, one channel each.
//! - [`demo`]: a real agent on this machine, driven end to end.

pub mod client;
pub mod demo;
pub mod keys;
