//! The event log.

use serde::{Deserialize, Serialize};

use super::{from_utc, utc};

/// What an event is about.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// A host was added.
    HostAdded,
    /// A host was removed.
    HostRemoved,
    /// A host's trusted agent key changed (pinned, approved, set).
    TrustChanged,
    /// An agent presented a key that is not the pinned one.
    KeyPending,
    /// A run started.
    RunStarted,
    /// A run finished.
    RunFinished,
    /// A host became reachable or unreachable.
    Reachability,
    /// Keys were rotated.
    KeyRotated,
    /// Work in flight for a host (a heartbeat, a key rotation) was cut short by `serve` stopping.
    CutShort,
    /// A host's address or enabled state changed.
    HostChanged,
    /// A group, its members or its scripts changed.
    GroupChanged,
    /// A script or one of its attachments was saved or removed.
    ScriptChanged,
    /// An environment variable was set or removed (its value is never recorded).
    EnvChanged,
    /// A file was uploaded to a host.
    Uploaded,
    /// A file was fetched from a host.
    Fetched,
    /// A control request (reload, exit, reboot, shutdown) was sent to a host.
    ControlSent,
    /// A running action was asked to stop.
    RunCancelled,
    /// A user was added, or their permissions changed, or they were disabled or enabled.
    UserChanged,
    /// An API key was made or revoked.
    ApiKeyChanged,
    /// A user signed in (a browser session started).
    SignedIn,
    /// A sign-in was refused (a wrong name or password, a disabled user); the name tried is
    /// recorded, never the password.
    SignInFailed,
    /// A user signed out (their session ended).
    SignedOut,
    /// A user's password was changed (their own, or by someone with `users`).
    PasswordChanged,
    /// An API key that exists was refused: revoked, expired, or of a disabled user.
    ApiKeyRefused,
    /// A schedule was added, enabled, disabled or removed.
    ScheduleChanged,
    /// A schedule's due time came while its previous launch was still going: none started.
    ScheduleSkipped,
    /// An agent enrolled: a host was added with its key pinned or pending approval.
    Enrolled,
    /// An enrollment was refused (its reason, token and address are recorded).
    EnrollmentRefused,
    /// An enrollment token or rule was made, revoked or removed.
    EnrollmentChanged,
    /// A host's agent was upgraded in place by `host deploy` (its key and trust kept).
    HostRedeployed,
    /// A new agent binary was sent to a host, and put in place there on trial.
    UpdateSent,
    /// A host's agent refused a new binary (its reason recorded); nothing was replaced.
    UpdateRefused,
    /// A host's new agent answered a heartbeat with the new version: it stays.
    UpdateConfirmed,
    /// A host answered with its old version after an update: the device went back to it.
    UpdateRolledBack,
    /// A host was not heard from after an update, within the time its trial had.
    UpdateLost,
    /// A webhook was added or removed.
    WebhookChanged,
}

impl EventKind {
    /// Its name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::HostAdded => "host-added",
            EventKind::HostRemoved => "host-removed",
            EventKind::TrustChanged => "trust-changed",
            EventKind::KeyPending => "key-pending",
            EventKind::RunStarted => "run-started",
            EventKind::RunFinished => "run-finished",
            EventKind::Reachability => "reachability",
            EventKind::KeyRotated => "key-rotated",
            EventKind::CutShort => "cut-short",
            EventKind::HostChanged => "host-changed",
            EventKind::GroupChanged => "group-changed",
            EventKind::ScriptChanged => "script-changed",
            EventKind::EnvChanged => "env-changed",
            EventKind::Uploaded => "uploaded",
            EventKind::Fetched => "fetched",
            EventKind::ControlSent => "control-sent",
            EventKind::RunCancelled => "run-cancelled",
            EventKind::UserChanged => "user-changed",
            EventKind::ApiKeyChanged => "api-key-changed",
            EventKind::SignedIn => "signed-in",
            EventKind::SignInFailed => "sign-in-failed",
            EventKind::SignedOut => "signed-out",
            EventKind::PasswordChanged => "password-changed",
            EventKind::ApiKeyRefused => "api-key-refused",
            EventKind::ScheduleChanged => "schedule-changed",
            EventKind::ScheduleSkipped => "schedule-skipped",
            EventKind::Enrolled => "enrolled",
            EventKind::EnrollmentRefused => "enrollment-refused",
            EventKind::EnrollmentChanged => "enrollment-changed",
            EventKind::HostRedeployed => "host-redeployed",
            EventKind::UpdateSent => "update-sent",
            EventKind::UpdateRefused => "update-refused",
            EventKind::UpdateConfirmed => "update-confirmed",
            EventKind::UpdateRolledBack => "update-rolled-back",
            EventKind::UpdateLost => "update-lost",
            EventKind::WebhookChanged => "webhook-changed",
        }
    }
}

/// One entry of the event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    /// Its id, increasing.
    pub id: i64,
    /// When (ms since the epoch; RFC 3339 in JSON).
    #[serde(serialize_with = "utc", deserialize_with = "from_utc")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    /// The host it concerns, if one.
    pub host: Option<String>,
    /// What kind.
    pub kind: String,
    /// What happened, in words.
    pub detail: String,
    /// Who made it happen ([`crate::ops::Actor`] as text); none for what the server saw by
    /// itself (a heartbeat, a run's end).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// Which events to read: the newest `limit` of those matching every filter given, oldest
/// first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter {
    /// Only those of this host.
    pub host: Option<String>,
    /// Only those of this kind.
    pub kind: Option<EventKind>,
    /// Only those this user made happen (through the API, or the command line as that login).
    pub user: Option<String>,
    /// Only those older than this event (the first id of the page after).
    pub before: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

impl EventFilter {
    /// The newest `limit` events, optionally of one host.
    pub fn newest(host: Option<&str>, limit: u32) -> EventFilter {
        EventFilter {
            host: host.map(str::to_owned),
            kind: None,
            user: None,
            before: None,
            limit,
        }
    }
}

/// An event to append to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Who made it happen, if someone did.
    pub actor: Option<String>,
    /// The host it concerns, if one.
    pub host: Option<String>,
    /// What kind.
    pub kind: EventKind,
    /// What happened, in words.
    pub detail: String,
}
