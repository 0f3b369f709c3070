//! Browser sessions: signing in with a name and a password (Argon2id), the session that a
//! cookie carries (its token and CSRF token kept only as SHA-256 hashes), signing out, and
//! changing one's own password, which ends one's other sessions. Disabling a user ends theirs
//! (`users.rs`).

use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::PasswordVerifier;

use crate::model::{NewSession, Session, User, now_ms};
use crate::store::StoreError;

use super::users::{hash_password, random_hex, secret_hash};
use super::{Actor, Ops, OpsError, Result};

/// How long a session lasts from signing in.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// A session just started: its tokens are in this answer only.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// Who signed in.
    pub user: User,
    /// The session's token, for the cookie.
    pub token: String,
    /// The token every request with the cookie that changes something must carry.
    pub csrf_token: String,
    /// When it ends (ms since the epoch).
    pub expires: i64,
}

/// Who a session cookie belongs to.
#[derive(Debug, Clone)]
pub struct SessionUser {
    /// Its user, as they are now.
    pub user: User,
    /// The session.
    pub session: Session,
}

/// Whether `text` has the form of a token (before any lookup).
fn looks_like_token(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `password` is the one hashed in `hash`, checked on a blocking thread.
async fn verify_password(password: String, hash: String) -> Result<bool> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok()
    })
    .await
    .map_err(|e| OpsError::Internal(format!("checking the password failed: {e}")))
}

impl Ops {
    /// Starts a session for `name` if `password` is theirs and they are not disabled
    /// (`Unauthenticated` otherwise, saying no more than that).
    pub async fn sign_in(&self, name: &str, password: String) -> Result<SignedIn> {
        let refused = || OpsError::Unauthenticated("wrong name or password".into());
        let store = self.fleet.store();
        let hash = match store.password_hash(name).await {
            Ok(hash) => hash,
            Err(StoreError::NotFound(..)) => return Err(refused()),
            Err(e) => return Err(e.into()),
        };
        if !verify_password(password, hash).await? {
            return Err(refused());
        }
        let user = store.user(name).await?;
        if user.disabled {
            return Err(refused());
        }
        let lifetime = i64::try_from(SESSION_LIFETIME.as_millis()).unwrap_or(i64::MAX);
        let (token, csrf_token) = (random_hex()?, random_hex()?);
        let expires = now_ms().saturating_add(lifetime);
        store
            .add_session(&NewSession {
                user: user.name.clone(),
                hash: secret_hash(&token),
                csrf_hash: secret_hash(&csrf_token),
                expires,
            })
            .await?;
        Ok(SignedIn {
            user,
            token,
            csrf_token,
            expires,
        })
    }

    /// Whose session `token` is: `Unauthenticated` for one unknown, ended or expired, or of
    /// a disabled user. A request that changes something (`changing`) must also carry the
    /// session's CSRF token (`Forbidden` without it).
    pub async fn authenticate_session(
        &self,
        token: &str,
        csrf_token: Option<&str>,
        changing: bool,
    ) -> Result<SessionUser> {
        let unknown = || OpsError::Unauthenticated("no such session: sign in again".into());
        if !looks_like_token(token) {
            return Err(unknown());
        }
        let found = self
            .fleet
            .store()
            .session_by_hash(&secret_hash(token))
            .await?;
        let (session, user) = found.ok_or_else(unknown)?;
        if session.expires <= now_ms() || user.disabled {
            return Err(unknown());
        }
        if changing && csrf_token.map(secret_hash).as_deref() != Some(session.csrf_hash.as_str()) {
            return Err(OpsError::Forbidden(
                "a request with a session cookie that changes something needs the session's \
                 `X-CSRF-Token`"
                    .into(),
            ));
        }
        Ok(SessionUser { user, session })
    }

    /// Ends the actor's session, if they are in one (an API key has none to end).
    pub async fn sign_out(&self) -> Result<()> {
        match &self.actor {
            Actor::Session { session, .. } => Ok(self.fleet.store().end_session(*session).await?),
            _ => Ok(()),
        }
    }

    /// Changes the actor's own password, given the current one, and ends their other
    /// sessions (the one asking stays).
    pub async fn change_own_password(&self, current: String, password: String) -> Result<()> {
        let name = self
            .own_name()
            .ok_or_else(|| OpsError::Invalid("name the user whose password to change".into()))?
            .to_owned();
        let store = self.fleet.store();
        if !verify_password(current, store.password_hash(&name).await?).await? {
            return Err(OpsError::Forbidden("the current password is wrong".into()));
        }
        // Hashed first, so that a password refused as too short changes nothing.
        let hash = hash_password(password).await?;
        store.set_password(&name, &hash).await?;
        let this = match &self.actor {
            Actor::Session { session, .. } => Some(*session),
            _ => None,
        };
        let ended = store.end_sessions(&name, this).await?;
        let detail = format!("password of {name} changed ({ended} other sessions ended)");
        self.record(None, crate::model::EventKind::UserChanged, &detail)
            .await
    }
}
