//! What each command needs, as one trait per subject with two implementations: [`Ops`] in
//! process, and [`Remote`], the HTTP API of a running `serve` (`--server`). A command is written
//! once, over its trait: the same output and exit codes wherever the work runs.
//!
//! [`Ops`]: crate::ops::Ops
//! [`Remote`]: super::remote::Remote

mod changes;
mod check;
mod enrollment;
mod env;
mod groups;
mod hosts;
mod metrics;
mod runs;
mod schedules;
mod scripts;
mod servers;
mod users;
mod webhooks;

pub(crate) use changes::ChangesApi;
pub(crate) use check::CheckApi;
pub(crate) use enrollment::EnrollmentApi;
pub(crate) use env::EnvApi;
pub(crate) use groups::GroupsApi;
pub(crate) use hosts::HostsApi;
pub(crate) use metrics::MetricsApi;
pub(crate) use runs::{LiveRun, RunStarted, RunsApi};
pub(crate) use schedules::SchedulesApi;
pub(crate) use scripts::ScriptsApi;
pub(crate) use servers::ServersApi;
pub(crate) use users::UsersApi;
pub(crate) use webhooks::WebhooksApi;

/// Every command's needs: what [`super::dispatch`] runs a command over.
pub(crate) trait Api:
    CheckApi
    + EnvApi
    + GroupsApi
    + HostsApi
    + RunsApi
    + ScriptsApi
    + UsersApi
    + SchedulesApi
    + EnrollmentApi
    + ServersApi
    + WebhooksApi
    + MetricsApi
    + ChangesApi
{
}

impl<A> Api for A where
    A: CheckApi
        + EnvApi
        + GroupsApi
        + HostsApi
        + RunsApi
        + ScriptsApi
        + UsersApi
        + SchedulesApi
        + EnrollmentApi
        + ServersApi
        + WebhooksApi
        + MetricsApi
        + ChangesApi
{
}
