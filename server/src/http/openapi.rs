//! `/api/v1/openapi.json`: the API described as OpenAPI 3, made from the handlers' own
//! annotations, so it lists what the router serves (a test holds the two together).

use utoipa::openapi::security::{
    ApiKey as ApiKeyIn, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme,
};
use utoipa::{Modify, OpenApi};

use super::auth::Auth;
use super::error::{ErrorBody, ErrorDetail};
use super::{
    apikeys, control, environment, events, groups, hosts, options, runs, scripts, session, summary,
    uploads, users,
};
use crate::inventory::{Change, Step};
use crate::model::{
    AfterRun, ApiKey, Attachment, Event, EventKind, Group, Host, Ids, Permission, Permissions,
    Phase, Run, RunLevel, Script, Status, Trust, User,
};
use crate::ops::{
    CreatedApiKey, Done, Finding, Format, Heartbeat, Imported, Launched, Missing, Ping,
    ServerOptions,
    ShareInput, Summary,
};

/// The API's description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Otto server API",
        description = "The fleet of an Otto server: hosts, groups, scripts and their attachments, \
                       environment variables, uploads, runs with live output, control, \
                       heartbeats, a summary, events, users, sessions, API keys, the server's options."
    ),
    paths(
        hosts::list,
        hosts::show,
        hosts::add,
        hosts::remove,
        hosts::change,
        hosts::enable,
        hosts::disable,
        hosts::trust,
        hosts::approve,
        hosts::deny,
        hosts::server_key,
        hosts::import,
        events::list,
        apikeys::list,
        apikeys::create,
        apikeys::revoke,
        groups::list,
        groups::add,
        groups::remove,
        groups::add_host,
        groups::remove_host,
        groups::add_script,
        groups::remove_script,
        scripts::list,
        scripts::show,
        scripts::add,
        scripts::replace,
        scripts::remove,
        scripts::attach,
        scripts::detach,
        environment::list,
        environment::host,
        environment::set,
        environment::unset,
        uploads::upload,
        users::list,
        users::add,
        users::disable,
        users::enable,
        users::set_permissions,
        users::set_password,
        session::show,
        session::sign_in,
        session::sign_out,
        session::change_password,
        runs::start,
        runs::events,
        runs::cancel_launch,
        runs::list,
        runs::show,
        runs::cancel,
        control::control,
        control::ping,
        summary::show,
        summary::check,
        options::show,
        document
    ),
    components(schemas(
        Host,
        Trust,
        Status,
        Event,
        EventKind,
        ShareInput,
        Permission,
        Permissions,
        RunLevel,
        hosts::HostPage,
        hosts::HostView,
        hosts::NewHost,
        hosts::AddedHost,
        hosts::HostState,
        hosts::HostEntry,
        hosts::HostChange,
        hosts::AgentKey,
        hosts::KeyFingerprint,
        hosts::ServerKey,
        hosts::Inventory,
        Imported,
        Finding,
        Step,
        Change,
        Format,
        ApiKey,
        CreatedApiKey,
        apikeys::NewApiKey,
        Group,
        groups::NewGroup,
        Script,
        Attachment,
        Ids,
        AfterRun,
        Phase,
        scripts::NewScript,
        scripts::ScriptUpdate,
        scripts::ScriptView,
        environment::Variable,
        environment::HostVariable,
        environment::NewValue,
        Done,
        User,
        users::NewUser,
        users::NewPassword,
        session::Credentials,
        session::Started,
        session::Current,
        session::PasswordChange,
        runs::NewRun,
        Launched,
        Run,
        control::HostsAction,
        control::Action,
        Ping,
        Summary,
        Heartbeat,
        ServerOptions,
        ErrorBody,
        ErrorDetail,
        Missing,
    )),
    modifiers(&BearerKey),
    security(("api_key" = []))
)]
pub struct ApiDoc;

/// Declares the schemes the routes name: `api_key`, `Authorization: Bearer <API key>`; and
/// `session`, the cookie of a browser signed in (with `X-CSRF-Token` on changes).
struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKeyIn::Cookie(ApiKeyValue::new(session::SESSION_COOKIE))),
        );
    }
}

/// This document (any user may read it).
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    responses(
        (status = 200, description = "The OpenAPI 3 document", body = Object),
        (status = 401, description = "No API key that works", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn document(_auth: Auth) -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}
