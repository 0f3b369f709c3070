//! What each subject's commands need, wherever the work runs: one trait per subject,
//! implemented by [`crate::ops::Ops`] in process and by [`super::remote::Remote`], the HTTP API
//! of a running `serve`. A command is written once, over its trait.

mod groups;
mod hosts;

pub(crate) use groups::GroupsApi;
pub(crate) use hosts::HostsApi;
