//! Who asks: every route but none takes an [`Auth`], which reads `Authorization: Bearer <API
//! key>` and answers 401 without a key that works. A handler reaches the service layer only
//! through it, saying what it needs: [`Auth::read`] for what every user may see,
//! [`Auth::with`] for a permission (403 without it). The operations it hands out act for the
//! key's user, from the client's address, so every change they record names both.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::Api;
use super::error::ApiError;
use crate::model::Permission;
use crate::ops::{Actor, Ops, OpsError};

/// An authenticated request: the operations its API key may do.
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
        self.ops.require_run()?;
        Ok(&self.ops)
    }
}

impl FromRequestParts<Api> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Auth, ApiError> {
        let secret = bearer(parts).ok_or_else(|| {
            OpsError::Unauthenticated("give an API key: `Authorization: Bearer <key>`".into())
        })?;
        // The check records nothing; the server makes it, before anyone is known.
        let checker = Ops::new(api.fleet.clone(), Actor::Server);
        let who = checker.authenticate(secret).await?;
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(a)| a.ip())
            .ok_or_else(|| OpsError::Internal("the client's address is unknown".into()))?;
        let actor = Actor::Api {
            user: who.user.name,
            key: who.key.id,
            address,
        };
        let ops = Ops::new(api.fleet.clone(), actor).limited_to(who.permissions);
        Ok(Auth { ops })
    }
}

/// The key of an `Authorization: Bearer <key>` header, if the request has one.
fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(key.trim())
}
