//! `/api/v1/openapi.json`: the API described as OpenAPI 3, made from the handlers' own
//! annotations by the router as it registers them (`super::api_routes`), so it lists what the
//! router serves, with the
//! answers every route can give whatever its handler (those of the extractors) added to each
//! operation in one place, so that no operation leaves one out.

use std::sync::Arc;

use axum::Extension;
use utoipa::Number;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayItems, KnownFormat, ObjectBuilder, Schema, SchemaFormat, SchemaType,
    Type,
};
use utoipa::openapi::security::{
    ApiKey as ApiKeyIn, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use super::auth::Auth;
use super::error::{ErrorBody, ErrorDetail};
use super::session;
use crate::fleet::Untrusted;
use crate::inventory::{Change, Step};
use crate::model::{
    AfterRun, ApiKey, Attachment, Event, EventKind, Group, Host, HostStatus, Ids, Permission,
    Permissions, Phase, Run, RunLevel, RunOutcome, Script, ServerLease, Trust, User,
};
use crate::ops::{
    Action, AddHost, AddUser, AgentKey, ControlRequest, CreateApiKey, CreatedApiKey, Detail, Done,
    Finding, FleetChange, ForceNeeded, Format, HostAdded, HostChange, HostDetail, HostEntry,
    HostPage, HostState, HostVariable, ImportHosts, Imported, KeyFingerprint, LaunchEvent,
    Launched, LostVariable, Missing, NewGroup, NewPassword, NewRun, NewScript, NewValue, Ping,
    PingRequest, RolloutOptions, RunResult, ScriptDetail, ScriptUpdate, ServerEntry, ServerKey,
    ServerOptions, ShareInput, SlowHeartbeat, Summary, Targets, Variable,
};

/// The API's description but its paths, which [`super::api_routes`] adds from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Otto server API",
        description = "The fleet of an Otto server: hosts, groups, scripts and their attachments, \
                       environment variables, uploads, runs with live output, control, \
                       heartbeats, a summary, the servers sharing the store, events and the fleet's changes live, users, sessions, API keys, the server's options."
    ),
    components(schemas(
        RunOutcome,
        Host,
        Trust,
        HostStatus,
        Event,
        EventKind,
        ShareInput,
        Permission,
        Permissions,
        RunLevel,
        HostPage,
        HostDetail,
        AddHost,
        HostAdded,
        HostState,
        HostEntry,
        HostChange,
        FleetChange,
        AgentKey,
        KeyFingerprint,
        ServerKey,
        ImportHosts,
        Imported,
        Finding,
        Step,
        Change,
        Format,
        ApiKey,
        CreatedApiKey,
        CreateApiKey,
        Group,
        NewGroup,
        Script,
        Attachment,
        Ids,
        AfterRun,
        Phase,
        NewScript,
        ScriptUpdate,
        ScriptDetail,
        Variable,
        HostVariable,
        NewValue,
        Done,
        User,
        AddUser,
        NewPassword,
        session::Credentials,
        session::Started,
        session::Current,
        session::PasswordChange,
        NewRun,
        LaunchEvent,
        RunResult,
        Launched,
        Run,
        ControlRequest,
        RolloutOptions,
        PingRequest,
        Action,
        Targets,
        Ping,
        Summary,
        SlowHeartbeat,
        ServerEntry,
        ServerLease,
        ServerOptions,
        ErrorBody,
        ErrorDetail,
        Missing,
        Detail,
        ForceNeeded,
        LostVariable,
        Untrusted,
    )),
    modifiers(&BearerKey),
    security(("api_key" = []))
)]
pub struct ApiDoc;

/// The router the API's routes are added to, with the document they are added to.
pub(super) fn base<S: Clone + Send + Sync + 'static>() -> OpenApiRouter<S> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
}

/// `document`, with its paths, finished: the flattened request bodies written as one object,
/// the answers of the extractors added to every operation and the integers given their ranges.
pub(super) fn complete(mut document: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    Flattened.modify(&mut document);
    ExtractorAnswers.modify(&mut document);
    IntegerRanges.modify(&mut document);
    document
}

/// The request bodies that take the fields of other types among their own (`#[serde(flatten)]`:
/// the hosts, [`Targets`]; how they go, [`RolloutOptions`]), and refuse unknown fields.
const FLATTENED: [&str; 7] = [
    "NewRun",
    "ControlRequest",
    "PingRequest",
    "UpdateAgents",
    "FetchRequest",
    "FetchCheck",
    "UploadCheck",
];

/// Writes each of [`FLATTENED`] as the one object its JSON is (utoipa makes an `allOf` of the
/// flattened types and the rest, which could not refuse unknown fields), with every field,
/// those required, and no others: the fields of a flattened type that itself flattens another
/// (an `allOf` within the `allOf`) too, at any depth.
struct Flattened;

impl Modify for Flattened {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for name in FLATTENED {
            let Some(RefOr::T(Schema::AllOf(all_of))) = components.schemas.get(name) else {
                continue;
            };
            let mut merged = ObjectBuilder::new()
                .schema_type(Type::Object)
                .description(all_of.description.clone())
                .additional_properties(Some(AdditionalProperties::FreeForm(false)))
                .build();
            merge(
                &mut merged,
                &all_of.items,
                &components.schemas,
                FLATTEN_DEPTH,
            );
            components
                .schemas
                .insert(name.to_owned(), RefOr::T(Schema::Object(merged)));
        }
    }
}

/// How deep flattened types may be nested in one another (more is a mistake: a type that
/// flattens itself).
const FLATTEN_DEPTH: usize = 8;

/// Adds to `merged` the properties (and those required) of each of `parts`: an object, a
/// reference to a component, or an `allOf` of them (merged in turn, up to `depth` levels).
fn merge(
    merged: &mut utoipa::openapi::schema::Object,
    parts: &[RefOr<Schema>],
    schemas: &std::collections::BTreeMap<String, RefOr<Schema>>,
    depth: usize,
) {
    let Some(depth) = depth.checked_sub(1) else {
        return;
    };
    for part in parts {
        let part = match part {
            RefOr::Ref(reference) => reference
                .ref_location
                .rsplit('/')
                .next()
                .and_then(|name| schemas.get(name)),
            part => Some(part),
        };
        match part {
            Some(RefOr::T(Schema::Object(object))) => {
                merged.properties.extend(object.properties.clone());
                merged.required.extend(object.required.iter().cloned());
            }
            Some(RefOr::T(Schema::AllOf(all_of))) => merge(merged, &all_of.items, schemas, depth),
            _ => {}
        }
    }
}

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

/// Adds to every operation the answers its extractors give, whatever its handler: 401 without
/// credentials that work (every route but signing in), 403 to a change signed in without the
/// session's `X-CSRF-Token`, 400 to a path or query that does not parse, and for a JSON body
/// 400 (not JSON), 413 (too large), 415 (not `application/json`) and 422 (not of its schema).
/// An answer an operation documents itself is kept as it says it.
struct ExtractorAnswers;

impl Modify for ExtractorAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                (&mut item.get, false),
                (&mut item.head, false),
                (&mut item.post, true),
                (&mut item.put, true),
                (&mut item.patch, true),
                (&mut item.delete, true),
            ];
            for (operation, changes) in operations {
                if let Some(operation) = operation {
                    add_extractor_answers(operation, changes);
                }
            }
        }
    }
}

/// The answers of [`ExtractorAnswers`] for `operation` (`changes`: not GET or HEAD).
fn add_extractor_answers(operation: &mut Operation, changes: bool) {
    let mut answers: Vec<(&str, &str)> = Vec::new();
    // Signing in is the one operation open to anyone (an empty requirement).
    let open = operation
        .security
        .as_ref()
        .is_some_and(|s| s.iter().any(|r| r == &Default::default()));
    if !open {
        answers.push(("401", "No credentials that work"));
        if changes {
            answers.push(("403", "Signed in, without the session's `X-CSRF-Token`"));
        }
    }
    // A path parameter is never empty: an empty segment is another route (404).
    for parameter in operation.parameters.iter_mut().flatten() {
        if let RefOr::T(parameter) = parameter
            && parameter.parameter_in == ParameterIn::Path
            && let Some(RefOr::T(Schema::Object(schema))) = &mut parameter.schema
            && schema.schema_type == SchemaType::Type(Type::String)
        {
            schema.min_length.get_or_insert(1);
        }
    }
    let located = |place: ParameterIn| {
        operation.parameters.iter().flatten().any(|p| match p {
            RefOr::T(p) => p.parameter_in == place,
            RefOr::Ref(_) => false,
        })
    };
    if located(ParameterIn::Path) {
        answers.push(("400", "A path parameter that does not parse"));
    }
    if located(ParameterIn::Query) {
        answers.push((
            "400",
            "A query that does not parse, or with an unknown parameter",
        ));
    }
    let json = match &operation.request_body {
        Some(RefOr::T(body)) => body.content.contains_key("application/json"),
        _ => false,
    };
    if json {
        answers.extend([
            ("400", "A body that is not JSON"),
            ("413", "The body is too large"),
            ("415", "A body that is not `application/json`"),
            (
                "422",
                "A missing field, an unknown one, or a wrong type or value",
            ),
        ]);
    }
    let responses = &mut operation.responses.responses;
    for (status, description) in answers {
        responses.entry(status.to_string()).or_insert_with(|| {
            let body = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build();
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content("application/json", body)
                    .build(),
            )
        });
    }
}

/// Writes every integer of a width OpenAPI has no format for (`u8`, `u16`, `u32`, `u64`, `i8`,
/// `i16`, which utoipa names `uint32`… with `non_strict_integers`) as a standard `int32` or
/// `int64` with its range, unless the schema gives a narrower one. Without it a `u32` was an
/// `int32`, whose range refuses half of what the server takes (the contract test sent 2^31 as
/// a uid and a timeout, and they were taken).
struct IntegerRanges;

impl Modify for IntegerRanges {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.schemas.values_mut().for_each(integer_ranges);
        }
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.head,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                for parameter in operation.parameters.iter_mut().flatten() {
                    if let RefOr::T(parameter) = parameter {
                        parameter.schema.iter_mut().for_each(integer_ranges);
                    }
                }
                if let Some(RefOr::T(body)) = &mut operation.request_body {
                    for content in body.content.values_mut() {
                        if let RefOr::T(content) = content {
                            content.schema.iter_mut().for_each(integer_ranges);
                        }
                    }
                }
                for response in operation.responses.responses.values_mut() {
                    if let RefOr::T(response) = response {
                        for content in response.content.values_mut() {
                            if let RefOr::T(content) = content {
                                content.schema.iter_mut().for_each(integer_ranges);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// [`IntegerRanges`] for one schema and the schemas within it.
fn integer_ranges(schema: &mut RefOr<Schema>) {
    let RefOr::T(schema) = schema else { return };
    match schema {
        Schema::Object(object) => {
            let range: Option<(KnownFormat, isize, usize)> = match &object.format {
                Some(SchemaFormat::KnownFormat(format)) => match format {
                    KnownFormat::UInt8 => Some((KnownFormat::Int32, 0, u8::MAX.into())),
                    KnownFormat::UInt16 => Some((KnownFormat::Int32, 0, u16::MAX.into())),
                    KnownFormat::UInt32 => Some((KnownFormat::Int64, 0, u32::MAX as usize)),
                    KnownFormat::UInt64 => Some((KnownFormat::Int64, 0, i64::MAX as usize)),
                    KnownFormat::Int8 => Some((KnownFormat::Int32, i8::MIN.into(), 127)),
                    KnownFormat::Int16 => Some((KnownFormat::Int32, i16::MIN.into(), 32767)),
                    _ => None,
                },
                _ => None,
            };
            if let Some((format, minimum, maximum)) = range {
                object.format = Some(SchemaFormat::KnownFormat(format));
                object.minimum.get_or_insert(Number::Int(minimum));
                object.maximum.get_or_insert(Number::UInt(maximum));
            }
            object.properties.values_mut().for_each(integer_ranges);
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                integer_ranges(items);
            }
        }
        Schema::OneOf(one_of) => one_of.items.iter_mut().for_each(integer_ranges),
        Schema::AllOf(all_of) => all_of.items.iter_mut().for_each(integer_ranges),
        Schema::AnyOf(any_of) => any_of.items.iter_mut().for_each(integer_ranges),
        _ => {}
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
pub async fn document(
    _auth: Auth,
    Extension(document): Extension<Arc<utoipa::openapi::OpenApi>>,
) -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(utoipa::openapi::OpenApi::clone(&document))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use utoipa::openapi::schema::AllOfBuilder;
    use utoipa::openapi::{ComponentsBuilder, OpenApiBuilder};

    use super::*;

    /// The document as `serve` serves it.
    fn served() -> Value {
        let (_, document) = super::super::api_routes()
            .into_iter()
            .fold(base::<super::super::ApiState>(), OpenApiRouter::routes)
            .split_for_parts();
        serde_json::to_value(complete(document)).unwrap()
    }

    #[test]
    fn the_rollout_is_declared_once_and_each_request_has_its_fields_with_their_docs_and_limits() {
        let doc = served();
        let schemas = &doc["components"]["schemas"];
        for name in ["NewRun", "ControlRequest"] {
            let schema = &schemas[name];
            assert_eq!(schema["additionalProperties"], json!(false), "{schema:#}");
            assert!(schema["allOf"].is_null(), "{schema:#}");
            for (field, said) in [("batch", "batches of"), ("max_failures", "have failed")] {
                let property = &schema["properties"][field];
                let share = &property["oneOf"][0];
                assert_eq!(
                    share["$ref"], "#/components/schemas/ShareInput",
                    "{name}.{field}: {property:#}"
                );
                let description = share["description"].as_str().unwrap_or_default();
                assert!(description.contains(said), "{name}.{field}: {property:#}");
            }
            // The hosts' fields, flattened too, and what the request itself declares.
            assert!(
                schema["properties"]["exclude_groups"].is_object(),
                "{schema:#}"
            );
        }
        assert!(schemas["NewRun"]["properties"]["output_cap"].is_object());
        assert_eq!(schemas["ControlRequest"]["required"], json!(["action"]));
        // The limit is the share's: a count, or text as the flags take it.
        let one_of = schemas["ShareInput"]["oneOf"].as_array().unwrap();
        assert!(
            one_of.iter().any(|s| s["minimum"] == json!(0)),
            "{one_of:?}"
        );
        assert!(
            one_of.iter().any(|s| s["pattern"].is_string()),
            "{one_of:?}"
        );
    }

    #[test]
    fn a_flattened_type_that_flattens_another_gives_its_fields_at_every_depth() {
        let object = |field: &str, required: bool| {
            let mut object = ObjectBuilder::new()
                .schema_type(Type::Object)
                .property(field, ObjectBuilder::new().schema_type(Type::String));
            if required {
                object = object.required(field);
            }
            RefOr::T(Schema::Object(object.build()))
        };
        let all_of = |parts: Vec<RefOr<Schema>>| {
            let mut all_of = AllOfBuilder::new();
            for part in parts {
                all_of = all_of.item(part);
            }
            RefOr::T(Schema::AllOf(all_of.build()))
        };
        let components = ComponentsBuilder::new()
            .schema("Deep", object("deep", true))
            .schema(
                "Middle",
                all_of(vec![
                    Ref::from_schema_name("Deep").into(),
                    object("middle", false),
                ]),
            )
            .schema(
                "NewRun",
                all_of(vec![
                    Ref::from_schema_name("Middle").into(),
                    object("own", true),
                ]),
            )
            .build();
        let mut document = OpenApiBuilder::new().components(Some(components)).build();
        Flattened.modify(&mut document);
        let merged = serde_json::to_value(&document).unwrap();
        let merged = &merged["components"]["schemas"]["NewRun"];
        let mut fields: Vec<&String> = merged["properties"].as_object().unwrap().keys().collect();
        fields.sort();
        assert_eq!(fields, ["deep", "middle", "own"], "{merged:#}");
        assert_eq!(merged["required"], json!(["deep", "own"]), "{merged:#}");
        assert_eq!(merged["additionalProperties"], json!(false));
    }
}
