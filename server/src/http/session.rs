//! `/api/v1/session`: a browser signs in with a name and a password and gets a session cookie
//! (`Secure; HttpOnly; SameSite=Strict`) and a CSRF token to send as `X-CSRF-Token` with every
//! request that changes something; tells who is signed in (and the CSRF token again, for a
//! page reloaded); signs out; and a user changes their own password
//! (`/api/v1/users/me/password`), which ends their other sessions. Failed sign-ins are limited
//! per user and per address ([`Limiter`]): past the limit, 429 until a minute has passed, with
//! `Retry-After` saying how long is left.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, State};
use axum::http::header::{RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiState;
use super::auth::{Auth, cookie};
use super::error::{ApiError, ErrorBody, Json};
use crate::model::{Permissions, User, instant};
use crate::ops::{Actor, ErrorKind, Ops, SESSION_LIFETIME, csrf_token_of};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "otto_session";
/// The header that carries the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Failed sign-ins of one user within [`WINDOW`] before they are refused.
const USER_FAILURES: usize = 5;
/// Failed sign-ins from one address within [`WINDOW`] before it is refused.
const ADDRESS_FAILURES: usize = 20;
/// How far back failures count.
const WINDOW: Duration = Duration::from_secs(60);

/// Recent failed sign-ins, by user and by address.
#[derive(Default)]
pub struct Limiter {
    failures: Mutex<HashMap<Who, VecDeque<Instant>>>,
}

/// Whom failures are counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Who {
    User(String),
    Address(IpAddr),
}

impl Who {
    fn limit(&self) -> usize {
        match self {
            Who::User(_) => USER_FAILURES,
            Who::Address(_) => ADDRESS_FAILURES,
        }
    }
}

impl Limiter {
    /// If any of `whom` has failed too often in the window before `now`: how long until the
    /// window lets all of them in again.
    fn blocked(&self, whom: &[Who], now: Instant) -> Option<Duration> {
        let Ok(failures) = self.failures.lock() else {
            return Some(WINDOW);
        };
        let mut wait = None;
        for who in whom {
            let Some(times) = failures.get(who) else {
                continue;
            };
            let recent: Vec<Instant> = times
                .iter()
                .copied()
                .filter(|t| now.duration_since(*t) < WINDOW)
                .collect();
            // At or over the limit: in again once all but `limit - 1` have left the window.
            let Some(index) = recent.len().checked_sub(who.limit()) else {
                continue;
            };
            if let Some(t) = recent.get(index) {
                let left = WINDOW.saturating_sub(now.duration_since(*t));
                wait = wait.max(Some(left));
            }
        }
        wait
    }

    /// Counts a failure at `now` against each of `whom`, forgetting those out of the window.
    fn failed(&self, whom: &[Who], now: Instant) {
        let Ok(mut failures) = self.failures.lock() else {
            return;
        };
        failures.retain(|_, times| {
            times.retain(|t| now.duration_since(*t) < WINDOW);
            !times.is_empty()
        });
        for who in whom {
            let times = failures.entry(who.clone()).or_default();
            times.push_back(now);
            // More than the limit need not be remembered.
            while times.len() > who.limit() {
                times.pop_front();
            }
        }
    }
}

/// A name and a password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// The user's name.
    pub name: String,
    /// Their password.
    pub password: String,
}

/// A session just started (its token is in the cookie only).
#[derive(Debug, Serialize, ToSchema)]
pub struct Started {
    /// Who signed in.
    pub user: User,
    /// To send as `X-CSRF-Token` with every request that changes something.
    pub csrf_token: String,
    /// When the session ends (RFC 3339).
    pub expires: String,
}

/// Who is signed in: what the web UI shows and offers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Current {
    /// The user's name.
    pub user: Option<String>,
    /// What they may do (with an API key: the key's permissions).
    pub permissions: Permissions,
    /// The session's CSRF token, to send as `X-CSRF-Token` (none with an API key).
    pub csrf_token: Option<String>,
}

/// A password change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The password now.
    pub current: String,
    /// The new one (8 to 1024 characters).
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
}

/// The `Set-Cookie` value of a session: `token` for `max_age`, or its end (no token).
fn session_cookie(token: &str, max_age: Duration) -> Result<HeaderValue, ApiError> {
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        max_age.as_secs()
    );
    HeaderValue::from_str(&cookie)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))
}

/// Signs in: a session cookie and the CSRF token that goes with it.
#[utoipa::path(
    post,
    path = "/api/v1/session",
    tag = "session",
    request_body = Credentials,
    responses(
        (status = 201, description = "Signed in; the cookie `otto_session` is set", body = Started),
        (status = 401, description = "A wrong name or password, or a disabled user", body = ErrorBody),
        (status = 422, description = "A missing field, an unknown one, or a wrong type", body = ErrorBody),
        (
            status = 429,
            description = "Too many failures for this user or address in the last minute",
            body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until a sign-in is taken again"))
        ),
    ),
    security(())
)]
pub async fn sign_in(
    State(api): State<ApiState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Json(credentials): Json<Credentials>,
) -> Result<Response, ApiError> {
    let whom = [
        Who::User(credentials.name.clone()),
        Who::Address(client.ip()),
    ];
    if let Some(wait) = api.limiter.blocked(&whom, Instant::now()) {
        // Whole seconds, rounded up: a client that waits that long is let in.
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let message = format!("too many failed sign-ins: try again in {secs} s");
        let mut response =
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too-many-requests", message)
                .into_response();
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
        return Ok(response);
    }
    let ops = Ops::new(api.fleet.clone(), Actor::Client(client.ip()));
    let signed_in = match ops.sign_in(&credentials.name, credentials.password).await {
        Ok(signed_in) => signed_in,
        Err(e) => {
            if e.kind() == ErrorKind::Unauthenticated {
                api.limiter.failed(&whom, Instant::now());
            }
            return Err(e.into());
        }
    };
    let cookie = session_cookie(&signed_in.token, SESSION_LIFETIME)?;
    let started = Started {
        user: signed_in.user,
        csrf_token: signed_in.csrf_token,
        expires: instant(signed_in.expires).to_string(),
    };
    let mut response = (StatusCode::CREATED, axum::Json(started)).into_response();
    response.headers_mut().insert(SET_COOKIE, cookie);
    Ok(response)
}

/// Who is signed in, what they may do, and the session's CSRF token: how the web UI finds
/// itself again after a reload.
#[utoipa::path(
    get,
    path = "/api/v1/session",
    tag = "session",
    responses(
        (status = 200, description = "Who is signed in", body = Current),
        (status = 401, description = "No credentials that work", body = ErrorBody),
    ),
    security(("api_key" = []), ("session" = []))
)]
pub async fn show(auth: Auth, headers: HeaderMap) -> axum::Json<Current> {
    let me = auth.ops().me();
    // The cookie's token, when it is what authenticated the request (an API key goes first).
    let token = match auth.ops().actor() {
        Actor::Session { .. } => cookie(&headers, SESSION_COOKIE),
        _ => None,
    };
    axum::Json(Current {
        user: me.user,
        permissions: me.permissions,
        csrf_token: token.map(csrf_token_of),
    })
}

/// Signs out: the session ends, and the cookie is cleared.
#[utoipa::path(
    delete,
    path = "/api/v1/session",
    tag = "session",
    responses(
        (status = 204, description = "Signed out (with an API key: nothing to end)"),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "Without the session's `X-CSRF-Token`", body = ErrorBody),
    ),
    security(("api_key" = []), ("session" = []))
)]
pub async fn sign_out(auth: Auth) -> Result<Response, ApiError> {
    auth.ops().sign_out().await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    let cookie = session_cookie("", Duration::ZERO)?;
    response.headers_mut().insert(SET_COOKIE, cookie);
    Ok(response)
}

/// Changes one's own password, given the current one; one's other sessions end.
#[utoipa::path(
    post,
    path = "/api/v1/users/me/password",
    tag = "users",
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed"),
        (status = 400, description = "A new password too short", body = ErrorBody),
        (status = 401, description = "No credentials that work", body = ErrorBody),
        (status = 403, description = "A wrong current password, or no `X-CSRF-Token`", body = ErrorBody),
    ),
    security(("api_key" = []), ("session" = []))
)]
pub async fn change_password(
    auth: Auth,
    Json(change): Json<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    auth.ops()
        .change_own_password(change.current, change.password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_block_their_user_or_address_for_a_minute() {
        let limiter = Limiter::default();
        let start = Instant::now();
        let bob = [Who::User("bob".into()), Who::Address([192, 0, 2, 1].into())];
        let carol = [
            Who::User("carol".into()),
            Who::Address([192, 0, 2, 1].into()),
        ];
        let second = Duration::from_secs(1);
        for n in 0..USER_FAILURES {
            assert_eq!(limiter.blocked(&bob, start), None);
            limiter.failed(&bob, start + second * n as u32);
        }
        // Blocked until the oldest failure has left the window.
        let last = start + second * (USER_FAILURES as u32 - 1);
        assert_eq!(limiter.blocked(&bob, last), Some(WINDOW - second * 4));
        assert_eq!(limiter.blocked(&bob, start + WINDOW - second), Some(second));
        assert_eq!(
            limiter.blocked(&carol, last),
            None,
            "the address is below its limit"
        );
        assert_eq!(
            limiter.blocked(&bob, start + WINDOW),
            None,
            "a minute later"
        );

        // The address: failures of any user count.
        for i in 0..ADDRESS_FAILURES {
            let someone = [
                Who::User(format!("u{i}")),
                Who::Address([192, 0, 2, 1].into()),
            ];
            limiter.failed(&someone, start);
        }
        assert_eq!(limiter.blocked(&carol, start), Some(WINDOW));
        let elsewhere = [
            Who::User("carol".into()),
            Who::Address([192, 0, 2, 2].into()),
        ];
        assert_eq!(limiter.blocked(&elsewhere, start), None);
    }
}
