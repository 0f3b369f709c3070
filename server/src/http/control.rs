//! `/api/v1/control` and `/api/v1/ping`: requests to the agents of many hosts at once, each
//! answered per host. Control requests (reload, exit, reboot, shutdown, key rotation) need the
//! permission `hosts`; a heartbeat changes no setting, so any user may send one.

use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::{Auth, need};
use super::error::{ApiError, ErrorBody, Json};
use crate::ops::{Control, Done, OpsError, Ping, Rollout, Share, ShareInput, Targets};

/// A request to the agents.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Reload the agent's configuration.
    Reload,
    /// Stop the agent (its service manager restarts it).
    Exit,
    /// Reboot the device.
    Reboot,
    /// Power the device off.
    Shutdown,
    /// Give the host new keys, the server's and the agent's.
    RotateKey,
}

/// A request to the agents of hosts named as a run names them: `all`, names or globs, groups,
/// and exclusions; in batches, if asked.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ControlRequest {
    /// What to do.
    pub action: Action,
    /// Every enabled host.
    #[serde(default)]
    pub all: bool,
    /// These hosts: names or globs.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// The members of these groups: names or globs.
    #[serde(default)]
    pub groups: Vec<String>,
    /// But not these hosts.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Nor the members of these groups.
    #[serde(default)]
    pub exclude_groups: Vec<String>,
    /// Hosts in batches of this many, or this share of them (`"25%"`).
    #[schema(value_type = Option<ShareInput>)]
    pub batch: Option<Share>,
    /// Once more than this many hosts, or this share of them (`"10%"`), have failed, no
    /// further batch starts.
    #[schema(value_type = Option<ShareInput>)]
    pub max_failures: Option<Share>,
}

impl ControlRequest {
    fn targets(&self) -> Targets {
        Targets {
            all: self.all,
            hosts: self.hosts.clone(),
            groups: self.groups.clone(),
            exclude: self.exclude.clone(),
            exclude_groups: self.exclude_groups.clone(),
        }
    }

    fn rollout(&self) -> Result<Rollout, OpsError> {
        if self.batch.is_some_and(Share::is_zero) {
            return Err(OpsError::Invalid(
                "`batch` must be at least 1 (or 1%)".into(),
            ));
        }
        Ok(Rollout {
            batch: self.batch,
            max_failures: self.max_failures,
        })
    }
}

/// The hosts a heartbeat goes to, as a run names them (every enabled host when none is).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PingRequest {
    /// Every enabled host.
    #[serde(default)]
    pub all: bool,
    /// These hosts: names or globs.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// The members of these groups: names or globs.
    #[serde(default)]
    pub groups: Vec<String>,
    /// But not these hosts.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Nor the members of these groups.
    #[serde(default)]
    pub exclude_groups: Vec<String>,
}

/// Sends a control request to the hosts named, as the rollout goes; each host's result.
#[utoipa::path(
    post,
    path = "/api/v1/control",
    tag = "hosts",
    request_body = ControlRequest,
    responses(
        (status = 200, description = "Each host's result", body = Vec<Done>),
        (status = 400, description = "No hosts named, a bad pattern, a batch of 0", body = ErrorBody),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 403, description = "Without the permission `hosts`", body = ErrorBody),
        (status = 404, description = "No such host or group", body = ErrorBody),
        (status = 422, description = "An unknown field or a wrong type", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn control(
    auth: Auth<need::Hosts>,
    Json(request): Json<ControlRequest>,
) -> Result<axum::Json<Vec<Done>>, ApiError> {
    let ops = auth.ops().clone().rolling(request.rollout()?);
    let targets = request.targets();
    let done = match request.action {
        Action::RotateKey => ops.rotate(&targets).await?,
        Action::Reload => ops.control(&targets, Control::Reload).await?,
        Action::Exit => ops.control(&targets, Control::Exit).await?,
        Action::Reboot => ops.control(&targets, Control::Reboot).await?,
        Action::Shutdown => ops.control(&targets, Control::Shutdown).await?,
    };
    Ok(axum::Json(done))
}

/// Sends a heartbeat to the hosts named (every enabled host when none is), and keeps their
/// answers (agent version, facts) as `GET /api/v1/hosts` shows them.
#[utoipa::path(
    post,
    path = "/api/v1/ping",
    tag = "hosts",
    request_body = PingRequest,
    responses(
        (status = 200, description = "Each host's answer", body = Vec<Ping>),
        (status = 400, description = "A bad pattern", body = ErrorBody),
        (status = 401, description = "No API key that works", body = ErrorBody),
        (status = 404, description = "No such host or group", body = ErrorBody),
        (status = 422, description = "An unknown field or a wrong type", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn ping(
    auth: Auth,
    Json(request): Json<PingRequest>,
) -> Result<axum::Json<Vec<Ping>>, ApiError> {
    let targets = Targets {
        all: request.all,
        hosts: request.hosts,
        groups: request.groups,
        exclude: request.exclude,
        exclude_groups: request.exclude_groups,
    };
    Ok(axum::Json(auth.ops().ping(&targets).await?))
}
