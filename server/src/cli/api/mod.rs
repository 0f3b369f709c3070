//! The interfaces the commands are written over, one per subject, each implemented by
//! [`crate::ops::Ops`] (in process) and by [`super::remote::Remote`] (the HTTP API of a running
//! `serve`), so that a command is written once and works alike both ways.

pub(crate) mod runs;
