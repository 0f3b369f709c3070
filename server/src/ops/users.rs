//! The API's users and their API keys: adding users (passwords hashed with Argon2id), changing
//! passwords, disabling; making, listing and revoking API keys; and telling who presents a key.
//!
//! An API key is `otto_` and 64 hex digits: 256 random bits. It is stored as its SHA-256, not
//! with Argon2: a password needs a slow hash because people choose guessable ones, but nobody
//! can guess 256 random bits, so a fast hash loses nothing and lets a key be found by its hash
//! in one indexed lookup on every request. Its secret is shown once, when it is made.

use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::PasswordHasher;
use argon2::password_hash::phc::PasswordHash;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{ApiKey, EventKind, NewApiKey, NewUser, Permission, Permissions, User, now_ms};
use crate::names::Kind;

use super::{Actor, Missing, Ops, OpsError, Result};

/// What every API key's secret starts with, so that secret scanners and people can tell one.
const KEY_PREFIX: &str = "otto_";

/// The shortest password taken.
const MIN_PASSWORD: usize = 8;
/// The most characters of a password: beyond any passphrase, and a bound on the hashing.
const MAX_PASSWORD: usize = 1024;
/// The longest an API key can be made to last: a hundred years, in seconds.
pub const MAX_KEY_LIFETIME_SECS: u64 = 3_155_760_000;

/// A user to add.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewUser)]
pub struct AddUser {
    /// Their name: 1 to 63 letters, digits, `.`, `_`, `-` and `@`, not starting with `.`, `-`
    /// or `@`.
    #[schema(
        min_length = 1,
        max_length = 63,
        pattern = "^[A-Za-z0-9_][A-Za-z0-9._@-]*$"
    )]
    pub name: String,
    /// Their password (8 to 1024 characters).
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
    /// What they may do (default: read only).
    #[serde(default)]
    pub permissions: Permissions,
}

/// A password to set.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    /// The new password (8 to 1024 characters).
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
}

/// An API key to make.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewApiKey)]
pub struct CreateApiKey {
    /// For this user (default: oneself; another needs the permission `users`).
    pub user: Option<String>,
    /// What it may do, within its user's permissions and the key making it (default: all of
    /// that).
    pub permissions: Option<Permissions>,
    /// It stops working this many seconds from now, at most 100 years (default: never).
    #[serde(default, rename = "expires_in_secs", with = "seconds")]
    #[schema(value_type = Option<u64>, maximum = 3_155_760_000_u64)]
    pub expires_in: Option<Duration>,
}

/// A duration as whole seconds, if any.
mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// `d` as seconds.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        d.map(|d| d.as_secs()).serialize(s)
    }

    /// Seconds as a duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_secs))
    }
}

/// Whose API keys to list (the query of `GET /api/v1/apikeys`).
#[derive(Debug, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct KeyQuery {
    /// Only this user's (another user's needs the permission `users`); without it, one's own,
    /// or every key with `users`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// An API key just made, with its secret: the only time the secret is seen.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedApiKey {
    /// The key as listed.
    #[serde(flatten)]
    pub key: ApiKey,
    /// The secret to give as `Authorization: Bearer …`.
    pub secret: String,
}

/// Who presented an API key, and what they may do with it.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The key's user.
    pub user: User,
    /// The key.
    pub key: ApiKey,
    /// What the key may do now: its own permissions within its user's of the moment.
    pub permissions: Permissions,
}

impl Ops {
    /// Adds a user.
    pub async fn add_user(&self, add: AddUser) -> Result<User> {
        self.require(Permission::Users)?;
        self.check_new_name(Kind::User, &add.name).await?;
        let password_hash = hash_password(add.password).await?;
        let store = self.fleet.store();
        store
            .add_user(&NewUser {
                name: add.name.clone(),
                password_hash,
                permissions: add.permissions.clone(),
            })
            .await?;
        let detail = format!("user {} added ({})", add.name, add.permissions);
        self.record(None, EventKind::UserChanged, &detail).await?;
        Ok(store.user(&add.name).await?)
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<User>> {
        self.require(Permission::Users)?;
        Ok(self.fleet.store().users().await?)
    }

    /// Changes a user's password: one's own, or anyone's with the permission `users`.
    pub async fn change_password(&self, name: &str, password: String) -> Result<()> {
        if self.own_name() != Some(name) {
            self.require(Permission::Users)?;
        }
        let hash = hash_password(password).await?;
        self.fleet.store().set_password(name, &hash).await?;
        let detail = format!("password of {name} changed");
        self.record(None, EventKind::PasswordChanged, &detail).await
    }

    /// Disables a user (`true`: none of their API keys work until they are enabled again), or
    /// enables them.
    pub async fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<()> {
        self.require(Permission::Users)?;
        let store = self.fleet.store();
        store.set_disabled(name, disabled).await?;
        if disabled {
            store.end_sessions(name, None).await?;
        }
        let state = if disabled { "disabled" } else { "enabled" };
        self.record(
            None,
            EventKind::UserChanged,
            &format!("user {name} {state}"),
        )
        .await
    }

    /// Replaces a user's permissions: never with more than the actor's own.
    pub async fn set_user_permissions(&self, name: &str, permissions: &Permissions) -> Result<()> {
        self.require(Permission::Users)?;
        if let Some(mine) = &self.permissions
            && !permissions.within(mine)
        {
            return Err(OpsError::Forbidden(format!(
                "you cannot give more than you have ({mine})"
            )));
        }
        self.fleet
            .store()
            .set_permissions(name, permissions)
            .await?;
        let detail = format!("permissions of {name} set ({permissions})");
        self.record(None, EventKind::UserChanged, &detail).await
    }

    /// Makes an API key; its secret is in the answer, and nowhere else.
    pub async fn create_api_key(&self, create: CreateApiKey) -> Result<CreatedApiKey> {
        let user = match create.user {
            Some(user) => user,
            None => self
                .own_name()
                .map(str::to_owned)
                .ok_or(OpsError::Missing(Missing::NoKeyUser))?,
        };
        if self.own_name() != Some(user.as_str()) {
            self.require(Permission::Users)?;
        }
        let store = self.fleet.store();
        let owner = store.user(&user).await?;
        // By default all its user may, and no more than the key that makes it.
        let permissions = create
            .permissions
            .unwrap_or_else(|| match &self.permissions {
                Some(mine) => owner.permissions.meet(mine),
                None => owner.permissions.clone(),
            });
        if !permissions.within(&owner.permissions) {
            return Err(OpsError::Forbidden(format!(
                "a key cannot do more than its user: {user} has {}",
                owner.permissions
            )));
        }
        // Nor more than whoever makes it, through the key they use.
        if let Some(mine) = &self.permissions
            && !permissions.within(mine)
        {
            return Err(OpsError::Forbidden(format!(
                "a key cannot do more than the key that makes it ({mine})"
            )));
        }
        let expires = match create.expires_in {
            Some(d) if d.as_secs() > MAX_KEY_LIFETIME_SECS => {
                return Err(OpsError::Invalid(
                    "an API key lasts at most 100 years".into(),
                ));
            }
            Some(d) => Some(
                i64::try_from(d.as_millis())
                    .ok()
                    .and_then(|ms| now_ms().checked_add(ms))
                    .ok_or_else(|| OpsError::Invalid("that expiry is too far away".into()))?,
            ),
            None => None,
        };
        let secret = new_secret()?;
        let id = store
            .add_api_key(&NewApiKey {
                user: user.clone(),
                hash: secret_hash(&secret),
                permissions,
                expires,
            })
            .await?;
        let key = store
            .api_keys(Some(&user))
            .await?
            .into_iter()
            .find(|k| k.id == id)
            .ok_or_else(|| OpsError::Internal(format!("API key {id} vanished as it was made")))?;
        let detail = format!("API key {id} made for {user} ({})", key.permissions);
        self.record(None, EventKind::ApiKeyChanged, &detail).await?;
        Ok(CreatedApiKey { key, secret })
    }

    /// API keys (never their secrets): one user's, or every user's (the actor's own only,
    /// without the permission `users`).
    pub async fn api_keys(&self, user: Option<&str>) -> Result<Vec<ApiKey>> {
        let user = match (user, self.own_name()) {
            (Some(u), Some(me)) if u == me => Some(u),
            (None, Some(me)) if self.require(Permission::Users).is_err() => Some(me),
            (u, _) => {
                self.require(Permission::Users)?;
                u
            }
        };
        Ok(self.fleet.store().api_keys(user).await?)
    }

    /// Revokes an API key: one's own, or anyone's with the permission `users`. A key revoked
    /// already is a `Conflict`, and nothing is recorded.
    pub async fn revoke_api_key(&self, id: i64) -> Result<ApiKey> {
        let store = self.fleet.store();
        let mine = match self.own_name() {
            Some(me) => store.api_keys(Some(me)).await?.iter().any(|k| k.id == id),
            None => false,
        };
        if !mine {
            self.require(Permission::Users)?;
        }
        let key = store
            .revoke_api_key(id)
            .await?
            .ok_or_else(|| OpsError::Conflict(format!("API key {id} was revoked already")))?;
        let detail = format!("API key {id} of {} revoked", key.user);
        self.record(None, EventKind::ApiKeyChanged, &detail).await?;
        Ok(key)
    }

    /// Who presents the API key `secret`, and what they may do: `Unauthenticated` for a key
    /// that is unknown, revoked or expired, or of a disabled user.
    pub async fn authenticate(&self, secret: &str) -> Result<Authenticated> {
        let unknown = || OpsError::Unauthenticated("unknown API key".into());
        if !looks_like_key(secret) {
            return Err(unknown());
        }
        let found = self
            .fleet
            .store()
            .api_key_by_hash(&secret_hash(secret))
            .await?;
        let (key, user) = found.ok_or_else(unknown)?;
        let refused = if key.revoked.is_some() {
            Some(format!("API key {} was revoked", key.id))
        } else if key.expires.is_some_and(|at| at <= now_ms()) {
            Some(format!("API key {} has expired", key.id))
        } else if user.disabled {
            Some(format!("user {} is disabled", user.name))
        } else {
            None
        };
        if let Some(why) = refused {
            // Recorded as the key's use, from the client's address when known.
            let actor = match self.actor.address() {
                Some(address) => Actor::Api {
                    user: user.name.clone(),
                    key: key.id,
                    address,
                },
                None => self.actor.clone(),
            };
            let detail = format!("API key {} of {} refused: {why}", key.id, user.name);
            if let Err(e) = self
                .record_as(actor, EventKind::ApiKeyRefused, &detail)
                .await
            {
                tracing::error!("cannot record a refused API key: {e}");
            }
            return Err(OpsError::Unauthenticated(why));
        }
        let permissions = key.permissions.meet(&user.permissions);
        Ok(Authenticated {
            user,
            key,
            permissions,
        })
    }

    /// The Otto user the actor is: an API user, or on the command line the user named as the
    /// login.
    pub(super) fn own_name(&self) -> Option<&str> {
        match &self.actor {
            Actor::Api { user, .. } | Actor::Session { user, .. } | Actor::Cli(user) => Some(user),
            Actor::Server | Actor::Client(_) => None,
        }
    }
}

/// The Argon2id hash of `password` (with OWASP's parameters, argon2's defaults), in PHC form,
/// made on a blocking thread: it takes tens of milliseconds on purpose.
pub(super) async fn hash_password(password: String) -> Result<String> {
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&password.chars().count()) {
        return Err(OpsError::Invalid(format!(
            "a password needs {MIN_PASSWORD} to {MAX_PASSWORD} characters"
        )));
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| OpsError::Internal(format!("no randomness: {e}")))?;
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password_with_salt(password.as_bytes(), &salt)
            .map(|hash: PasswordHash| hash.to_string())
    })
    .await
    .map_err(|e| OpsError::Internal(format!("hashing the password failed: {e}")))?
    .map_err(|e| OpsError::Internal(format!("hashing the password failed: {e}")))
}

/// A new key's secret: the prefix and 256 random bits in hex.
fn new_secret() -> Result<String> {
    Ok(format!("{KEY_PREFIX}{}", random_hex()?))
}

/// 256 random bits in hex.
pub(super) fn random_hex() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| OpsError::Internal(format!("no randomness: {e}")))?;
    Ok(hex(&bytes))
}

/// Whether `text` has the form of a key's secret (before any lookup).
fn looks_like_key(text: &str) -> bool {
    text.strip_prefix(KEY_PREFIX)
        .is_some_and(|rest| rest.len() == 64 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A key's secret as stored: its SHA-256, hex.
pub(super) fn secret_hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::net::IpAddr;

    use super::*;
    use crate::ops::ErrorKind;
    use crate::ops::testing::fixture;

    fn reader(modify: &[Permission]) -> Permissions {
        Permissions {
            admin: false,
            run: RunLevel::ReadOnly,
            modify: modify.iter().copied().collect::<BTreeSet<_>>(),
        }
    }

    async fn add(ops: &Ops, name: &str, permissions: Permissions) {
        let password = "correct horse".to_string();
        let add = AddUser {
            name: name.into(),
            password,
            permissions,
        };
        ops.add_user(add).await.unwrap();
    }

    /// `ops` as seen by `user` through key `key`, with that key's permissions.
    fn as_api(ops: &Ops, user: &str, auth: &Authenticated) -> Ops {
        Ops::new(
            ops.fleet.clone(),
            Actor::Api {
                user: user.into(),
                key: auth.key.id,
                address: IpAddr::from([127, 0, 0, 1]),
            },
        )
        .limited_to(auth.permissions.clone())
    }

    use crate::model::RunLevel;

    #[test]
    fn a_key_to_make_is_sent_with_its_lifetime_in_seconds() {
        let create = CreateApiKey {
            user: Some("bob".into()),
            permissions: Some(reader(&[Permission::Hosts])),
            expires_in: Some(Duration::from_secs(86_400)),
        };
        let sent = serde_json::to_value(&create).unwrap();
        assert_eq!(sent["expires_in_secs"], 86_400, "{sent}");
        let read: CreateApiKey = serde_json::from_value(sent).unwrap();
        assert_eq!(
            (read.user, read.permissions, read.expires_in),
            (create.user, create.permissions, create.expires_in)
        );
        let never: CreateApiKey = serde_json::from_str("{}").unwrap();
        assert_eq!(never.expires_in, None);
        assert!(serde_json::from_str::<CreateApiKey>(r#"{"expires_in": 5}"#).is_err());
    }

    #[tokio::test]
    async fn a_key_authenticates_its_user_within_their_permissions_until_revoked() {
        let (_dir, ops) = fixture().await;
        add(&ops, "bob", reader(&[Permission::Hosts, Permission::Audit])).await;
        let stored = ops.fleet.store().password_hash("bob").await.unwrap();
        assert!(stored.starts_with("$argon2id$"), "{stored}");

        let narrow = CreateApiKey {
            user: Some("bob".into()),
            permissions: Some(reader(&[Permission::Hosts])),
            expires_in: Some(Duration::from_secs(3600)),
        };
        let created = ops.create_api_key(narrow).await.unwrap();
        assert!(looks_like_key(&created.secret));
        let auth = ops.authenticate(&created.secret).await.unwrap();
        assert_eq!(auth.user.name, "bob");
        assert!(auth.permissions.allows(Permission::Hosts));
        assert!(!auth.permissions.allows(Permission::Audit));

        // Never more than its user: asked for, or after the user lost a permission.
        let wide = CreateApiKey {
            user: Some("bob".into()),
            permissions: Some(Permissions::admin()),
            expires_in: None,
        };
        let refused = ops.create_api_key(wide).await.unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Forbidden);

        // Bob through his key: his own keys only, no users, no key for another.
        let bob = as_api(&ops, "bob", &auth);
        assert_eq!(bob.api_keys(None).await.unwrap().len(), 1);
        assert_eq!(bob.users().await.unwrap_err().kind(), ErrorKind::Forbidden);
        add(&ops, "carol", Permissions::default()).await;
        let for_carol = CreateApiKey {
            user: Some("carol".into()),
            ..CreateApiKey::default()
        };
        assert_eq!(
            bob.create_api_key(for_carol).await.unwrap_err().kind(),
            ErrorKind::Forbidden
        );
        // A key of his own, made through a narrow key, is no wider than that key.
        let through = bob.create_api_key(CreateApiKey::default()).await.unwrap();
        assert_eq!(through.key.permissions, reader(&[Permission::Hosts]));

        bob.revoke_api_key(created.key.id).await.unwrap();
        // Once: again is a conflict, and recorded once.
        let again = bob.revoke_api_key(created.key.id).await.unwrap_err();
        assert_eq!(again.kind(), ErrorKind::Conflict, "{again}");
        let events = ops
            .find_events(&crate::model::EventFilter::newest(None, 100))
            .await
            .unwrap();
        let revoked_text = format!("API key {} of bob revoked", created.key.id);
        assert_eq!(
            events.iter().filter(|e| e.detail == revoked_text).count(),
            1
        );
        let revoked = ops.authenticate(&created.secret).await.unwrap_err();
        assert_eq!(revoked.kind(), ErrorKind::Unauthenticated);
        assert!(revoked.to_string().contains("revoked"), "{revoked}");

        ops.set_user_disabled("bob", true).await.unwrap();
        let disabled = ops.authenticate(&through.secret).await.unwrap_err();
        assert!(disabled.to_string().contains("disabled"), "{disabled}");
        ops.set_user_disabled("bob", false).await.unwrap();
        ops.authenticate(&through.secret).await.unwrap();

        // The real secret with its last digit changed: well formed, unknown.
        let mut other = through.secret.clone();
        let last = other.pop().unwrap();
        other.push(if last == '0' { '1' } else { '0' });
        for bad in ["", "otto_", "Bearer x", &other] {
            let e = ops.authenticate(bad).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{bad}");
        }
    }

    #[tokio::test]
    async fn an_expired_key_is_refused() {
        let (_dir, ops) = fixture().await;
        add(&ops, "bob", Permissions::default()).await;
        let secret = new_secret().unwrap();
        let key = NewApiKey {
            user: "bob".into(),
            hash: secret_hash(&secret),
            permissions: Permissions::default(),
            expires: Some(now_ms() - 1),
        };
        ops.fleet.store().add_api_key(&key).await.unwrap();
        let e = ops.authenticate(&secret).await.unwrap_err();
        assert!(e.to_string().contains("expired"), "{e}");
    }

    #[tokio::test]
    async fn bad_names_and_short_passwords_are_refused_before_anything_is_stored() {
        let (_dir, ops) = fixture().await;
        let too_long = "é".repeat(MAX_PASSWORD + 1);
        for (name, password) in [
            ("-x", "long enough"),
            ("a b", "long enough"),
            ("ok", "short"),
            ("ok", too_long.as_str()),
        ] {
            let add = AddUser {
                name: name.into(),
                password: password.into(),
                permissions: Permissions::default(),
            };
            assert_eq!(
                ops.add_user(add).await.unwrap_err().kind(),
                ErrorKind::Invalid
            );
        }
        assert!(ops.users().await.unwrap().is_empty());
        // The longest is taken, counted in characters.
        let longest = AddUser {
            name: "ok".into(),
            password: "é".repeat(MAX_PASSWORD),
            permissions: Permissions::default(),
        };
        ops.add_user(longest).await.unwrap();
    }

    #[tokio::test]
    async fn a_key_lasts_a_hundred_years_at_most() {
        let (_dir, ops) = fixture().await;
        add(&ops, "bob", Permissions::default()).await;
        let key = |secs| CreateApiKey {
            user: Some("bob".into()),
            permissions: None,
            expires_in: Some(Duration::from_secs(secs)),
        };
        let refused = ops.create_api_key(key(MAX_KEY_LIFETIME_SECS + 1)).await;
        assert_eq!(refused.unwrap_err().kind(), ErrorKind::Invalid);
        ops.create_api_key(key(MAX_KEY_LIFETIME_SECS))
            .await
            .unwrap();
    }
}
