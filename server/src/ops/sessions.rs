//! Browser sessions: signing in with a name and a password (Argon2id), the session that a
//! cookie carries (its token and CSRF token kept only as SHA-256 hashes), signing out, and
//! changing one's own password, which ends one's other sessions. Disabling a user ends theirs
//! (`users.rs`).

use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::PasswordVerifier;

use crate::model::{EventKind, NewSession, Permissions, Session, User, now_ms};
use crate::store::StoreError;

use super::users::{hash_password, random_hex, secret_hash};
use super::{Actor, Ops, OpsError, Result};

/// How long a session lasts from signing in.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// A hash to check the password of a user who does not exist against.
static DECOY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();

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

/// The CSRF token of the session whose cookie holds `token`: derived from it, so that the
/// session's own page can be told it again after a reload (`GET /api/v1/session`), while a
/// page of another origin, which cannot read that answer, never learns it.
pub fn csrf_token_of(token: &str) -> String {
    secret_hash(&format!("otto-csrf:{token}"))
}

/// Who the actor is, and what they may do.
#[derive(Debug, Clone)]
pub struct Me {
    /// Their user's name (none for the server itself).
    pub user: Option<String>,
    /// What they may do now: a user's permissions, or an API key's.
    pub permissions: Permissions,
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
    /// (`Unauthenticated` otherwise, saying no more than that). Recorded either way: a
    /// `signed-in` event by the new session (from the actor's address), or `sign-in-failed`
    /// by the actor (a [`Actor::Client`]) with the name tried and why, never the password.
    pub async fn sign_in(&self, name: &str, password: String) -> Result<SignedIn> {
        let refused = |why: &str| {
            let detail = format!(
                "sign-in as `{}` refused: {why}",
                crate::sanitize::field(name, crate::sanitize::FIELD_MAX)
            );
            async move {
                if let Err(e) = self.record(None, EventKind::SignInFailed, &detail).await {
                    tracing::error!("cannot record a failed sign-in: {e}");
                }
                OpsError::Unauthenticated("wrong name or password".into())
            }
        };
        let store = self.fleet.store();
        let hash = match store.password_hash(name).await {
            Ok(hash) => hash,
            Err(StoreError::NotFound(..)) => {
                // As long as for a user who exists, so that the time tells nothing.
                let decoy = DECOY
                    .get_or_try_init(|| hash_password("not anyone's password".into()))
                    .await?;
                verify_password(password, decoy.clone()).await?;
                return Err(refused("no such user").await);
            }
            Err(e) => return Err(e.into()),
        };
        if !verify_password(password, hash).await? {
            return Err(refused("wrong password").await);
        }
        let user = store.user(name).await?;
        if user.disabled {
            return Err(refused("the user is disabled").await);
        }
        let lifetime = i64::try_from(SESSION_LIFETIME.as_millis()).unwrap_or(i64::MAX);
        let token = random_hex()?;
        let csrf_token = csrf_token_of(&token);
        let expires = now_ms().saturating_add(lifetime);
        let session = store
            .add_session(&NewSession {
                user: user.name.clone(),
                hash: secret_hash(&token),
                csrf_hash: secret_hash(&csrf_token),
                expires,
            })
            .await?;
        let actor = match self.actor.address() {
            Some(address) => Actor::Session {
                user: user.name.clone(),
                session,
                address,
            },
            None => self.actor.clone(),
        };
        let detail = format!("{} signed in (session {session})", user.name);
        self.record_as(actor, EventKind::SignedIn, &detail).await?;
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

    /// Who the actor is and what they may do (so that a client offers only that).
    pub fn me(&self) -> Me {
        Me {
            user: self.own_name().map(str::to_owned),
            permissions: self.permissions.clone().unwrap_or_else(Permissions::admin),
        }
    }

    /// Ends the actor's session, if they are in one (an API key has none to end); recorded
    /// as `signed-out`.
    pub async fn sign_out(&self) -> Result<()> {
        let Actor::Session { user, session, .. } = &self.actor else {
            return Ok(());
        };
        self.fleet.store().end_session(*session).await?;
        let detail = format!("{user} signed out (session {session})");
        self.record(None, EventKind::SignedOut, &detail).await
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
        self.record(None, EventKind::PasswordChanged, &detail).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::net::IpAddr;

    use super::*;
    use crate::model::{Permission, Permissions, RunLevel};
    use crate::ops::testing::fixture;
    use crate::ops::{AddUser, ErrorKind};

    const PASSWORD: &str = "correct horse";

    #[tokio::test]
    async fn a_session_works_until_it_expires_or_its_user_is_disabled() {
        let (_dir, ops) = fixture().await;
        let add = AddUser {
            name: "bob".into(),
            password: PASSWORD.into(),
            permissions: Permissions {
                admin: false,
                run: RunLevel::None,
                modify: BTreeSet::from([Permission::Users]),
            },
        };
        ops.add_user(add).await.unwrap();
        for (name, password) in [("bob", "wrong password"), ("nobody", PASSWORD)] {
            let e = ops.sign_in(name, password.into()).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{name}");
        }
        let signed_in = ops.sign_in("bob", PASSWORD.into()).await.unwrap();
        let (token, csrf) = (signed_in.token.as_str(), signed_in.csrf_token.as_str());
        let who = ops.authenticate_session(token, None, false).await.unwrap();
        assert_eq!(who.user.name, "bob");
        let e = ops
            .authenticate_session(token, None, true)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Forbidden);
        ops.authenticate_session(token, Some(csrf), true)
            .await
            .unwrap();
        for bad in ["", "x", csrf] {
            let e = ops
                .authenticate_session(bad, None, false)
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{bad}");
        }

        // Bob, in his session, cannot give anyone more than he has.
        let bob = Ops::new(
            ops.fleet.clone(),
            Actor::Session {
                user: "bob".into(),
                session: who.session.id,
                address: IpAddr::from([127, 0, 0, 1]),
            },
        )
        .limited_to(who.user.permissions.clone());
        let wider = bob.set_user_permissions("bob", &Permissions::admin()).await;
        assert_eq!(wider.unwrap_err().kind(), ErrorKind::Forbidden);

        // An expired session is refused.
        let stale = random_hex().unwrap();
        let store = ops.fleet.store();
        store
            .add_session(&NewSession {
                user: "bob".into(),
                hash: secret_hash(&stale),
                csrf_hash: secret_hash(csrf),
                expires: now_ms() - 1,
            })
            .await
            .unwrap();
        let e = ops
            .authenticate_session(&stale, None, false)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated);

        // A disabled user can neither sign in nor use the sessions they had.
        ops.set_user_disabled("bob", true).await.unwrap();
        let e = ops
            .authenticate_session(token, None, false)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated);
        let e = ops.sign_in("bob", PASSWORD.into()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    }
}
