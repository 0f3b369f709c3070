//! Who asks: every route but signing in takes an [`Auth`], which reads `Authorization: Bearer
//! <API key>`, or else the session cookie of a browser signed in (with its `X-CSRF-Token` on
//! every request but GET and HEAD), and answers 401 without credentials that work. A handler
//! reaches the service layer only through it, saying what it needs: [`Auth::read`] for what
//! every user may see, [`Auth::with`] for a permission (403 without it). The operations it
//! hands out act for the key's or session's user, from the client's address, so every change
//! they record names them.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};

use super::Api;
use super::error::ApiError;
use super::session::{CSRF_HEADER, SESSION_COOKIE};
use crate::model::Permission;
use crate::ops::{Actor, Ops, OpsError};

/// An authenticated request: the operations its API key or session may do.
pub struct Auth {
    ops: Ops,
}

impl Auth {
    /// The operations of a request that only reads what every user may see.
    pub fn read(&self) -> &Ops {
        &self.ops
    }

    /// The operations of a request that needs `permission`: 403 without it.
    pub fn with(&self, permission: Permission) -> Result<&Ops, ApiError> {
        self.ops.require(permission)?;
        Ok(&self.ops)
    }

    /// The operations of a request that runs scripts or commands: 403 without the run level
    /// `read-write`.
    pub fn runner(&self) -> Result<&Ops, ApiError> {
        self.ops.require_run(crate::model::RunLevel::ReadWrite)?;
        Ok(&self.ops)
    }
}

impl FromRequestParts<Api> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Auth, ApiError> {
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
            let ops = Ops::new(api.fleet.clone(), actor).limited_to(who.permissions);
            return Ok(Auth { ops });
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
        let ops = Ops::new(api.fleet.clone(), actor).limited_to(who.user.permissions);
        Ok(Auth { ops })
    }
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
