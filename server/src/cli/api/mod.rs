//! What each command needs, as one trait per subject with two implementations: [`Ops`] in
//! process, and [`Remote`], the HTTP API of a running `serve` (`--server`). A command is written
//! once, over its trait: the same output and exit codes wherever the work runs.
//!
//! [`Ops`]: crate::ops::Ops
//! [`Remote`]: super::remote::Remote

pub(crate) mod check;
pub(crate) mod env;
pub(crate) mod scripts;
pub(crate) mod users;
