//! Who asks: every route but signing in takes an [`Auth`], which reads `Authorization: Bearer
//! <API key>`, or else the session cookie of a browser signed in (with its `X-CSRF-Token` on
//! every request but GET and HEAD), and answers 401 without credentials that work. A handler
//! reaches the service layer only through it, and says what it needs in its type:
//! `Auth<need::Hosts>` answers 403 to a user without the permission `hosts`, as it is
//! extracted, so before the request's path, query or body is read (a user without the
//! permission gets 403 whatever else is wrong with the request); a plain `Auth` is what every
//! user may do. The operations it hands out act for the key's or session's user, from the
//! client's address, so every change they record names them.

use std::marker::PhantomData;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};

use super::ApiState;
use super::error::ApiError;
use super::session::{CSRF_HEADER, SESSION_COOKIE};
use crate::ops::{Actor, Ops, OpsError};

/// An authenticated request whose user has what `N` names: the operations its API key or
/// session may do.
pub struct Auth<N: Need = need::Anyone> {
    ops: Ops,
    need: PhantomData<fn() -> N>,
}

impl<N: Need> Auth<N> {
    /// The operations, for what `N` allows (and what the operations check themselves).
    pub fn ops(&self) -> &Ops {
        &self.ops
    }
}

/// What a route needs of its user, checked as [`Auth`] is extracted.
pub trait Need {
    /// `Forbidden` unless `ops` may do it.
    fn check(ops: &Ops) -> Result<(), OpsError>;
}

/// What routes need: a permission, or a run level.
pub mod need {
    use super::Need;
    use crate::model::{Permission, RunLevel};
    use crate::ops::{Ops, OpsError};

    /// Nothing beyond being a user: what every user may see (or what the operation checks
    /// itself, as it depends on whom it touches).
    pub struct Anyone;

    impl Need for Anyone {
        fn check(_: &Ops) -> Result<(), OpsError> {
            Ok(())
        }
    }

    /// Marker types for the permissions routes need, each checked by `Ops::require`.
    macro_rules! permissions {
        ($($name:ident),*) => {$(
            #[doc = concat!("The permission `", stringify!($name), "`.")]
            pub struct $name;

            impl Need for $name {
                fn check(ops: &Ops) -> Result<(), OpsError> {
                    ops.require(Permission::$name)
                }
            }
        )*};
    }
    permissions!(
        Hosts, Groups, Scripts, Users, Options, Audit, Schedules, Enrollment
    );

    /// The run level `read-only` at least: any run or launch (the operation checks the level
    /// its job needs).
    pub struct RunReadOnly;

    impl Need for RunReadOnly {
        fn check(ops: &Ops) -> Result<(), OpsError> {
            ops.require_run(RunLevel::ReadOnly).map_err(|_| {
                OpsError::Forbidden(
                    "this needs the run level `read-only` at least (`read-write` for a command \
                     or a read-write script)"
                        .into(),
                )
            })
        }
    }

    /// The run level `read-write`: commands, uploads, cancelling any run.
    pub struct RunReadWrite;

    impl Need for RunReadWrite {
        fn check(ops: &Ops) -> Result<(), OpsError> {
            ops.require_run(RunLevel::ReadWrite)
        }
    }
}

impl<N: Need> FromRequestParts<ApiState> for Auth<N> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &ApiState) -> Result<Auth<N>, ApiError> {
        let ops = authenticate(parts, api).await?;
        N::check(&ops)?;
        Ok(Auth {
            ops,
            need: PhantomData,
        })
    }
}

/// The operations of the request's API key or session: 401 without one that works.
async fn authenticate(parts: &Parts, api: &ApiState) -> Result<Ops, ApiError> {
    let address = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip())
        .ok_or_else(|| OpsError::Internal("the client's address is unknown".into()))?;
    // Before anyone is known: a refused API key that exists is recorded from the address.
    let checker = Ops::new(api.fleet.clone(), Actor::Client(address));
    if let Some(secret) = bearer(parts) {
        let who = checker.authenticate(secret).await?;
        let actor = Actor::Api {
            user: who.user.name,
            key: who.key.id,
            address,
        };
        return Ok(Ops::new(api.fleet.clone(), actor).limited_to(who.permissions));
    }
    let token = cookie(&parts.headers, SESSION_COOKIE).ok_or_else(|| {
        OpsError::Unauthenticated(
            "give an API key (`Authorization: Bearer <key>`) or sign in".into(),
        )
    })?;
    let changing = ![Method::GET, Method::HEAD].contains(&parts.method);
    let csrf = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    let who = checker.authenticate_session(token, csrf, changing).await?;
    let actor = Actor::Session {
        user: who.user.name,
        session: who.session.id,
        address,
    };
    Ok(Ops::new(api.fleet.clone(), actor).limited_to(who.user.permissions))
}

/// The value of cookie `name`, if the request's `headers` have it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// The key of an `Authorization: Bearer <key>` header, if the request has one.
fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(key.trim())
}
