//! `/api/v1/openapi.json`: the API described as OpenAPI 3, made from the handlers' own
//! annotations, so it lists what the router serves (a test holds the two together).

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::auth::Auth;
use super::error::{ErrorBody, ErrorDetail};
use super::{apikeys, control, events, hosts, runs, summary};
use crate::model::{ApiKey, Event, Host, Permission, Permissions, Run, RunLevel, Status, Trust};
use crate::ops::{CreatedApiKey, Done, Launched, Ping, Summary};

/// The API's description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Otto server API",
        description = "The fleet of an Otto server: hosts, events, API keys, runs, control, heartbeats, a summary."
    ),
    paths(
        hosts::list,
        hosts::show,
        hosts::add,
        hosts::remove,
        events::list,
        apikeys::list,
        apikeys::create,
        apikeys::revoke,
        runs::start,
        runs::events,
        runs::cancel_launch,
        runs::list,
        runs::show,
        runs::cancel,
        control::control,
        control::ping,
        summary::show,
        document
    ),
    components(schemas(
        Host,
        Trust,
        Status,
        Event,
        Permission,
        Permissions,
        RunLevel,
        hosts::HostPage,
        hosts::HostView,
        hosts::NewHost,
        hosts::AddedHost,
        hosts::HostState,
        ApiKey,
        CreatedApiKey,
        apikeys::NewApiKey,
        runs::NewRun,
        Launched,
        Run,
        Done,
        control::HostsAction,
        control::Action,
        Ping,
        Summary,
        ErrorBody,
        ErrorDetail,
    )),
    modifiers(&BearerKey),
    security(("api_key" = []))
)]
pub struct ApiDoc;

/// Declares the `api_key` scheme the routes name: `Authorization: Bearer <API key>`.
struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
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
