//! Enrollment: the tokens an agent enrolls with and the rules that place the hosts it makes.

use serde::{Deserialize, Serialize};

use super::{from_utc, utc};

/// An enrollment token as listed: never its secret (only its hash is stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = EnrollmentToken)]
pub struct Token {
    /// Its id, never reused.
    pub id: i64,
    /// What it is for, in the words of who made it.
    pub note: String,
    /// How many enrollments it allows in all.
    pub uses: u32,
    /// How many it allowed so far.
    pub used: u32,
    /// When it stops working (ms since the epoch; RFC 3339 in JSON).
    #[serde(serialize_with = "utc", deserialize_with = "from_utc")]
    #[schema(value_type = String, format = DateTime)]
    pub expires: i64,
    /// Groups every host enrolled with it joins, beside its rule's.
    pub groups: Vec<String>,
    /// Whether it was revoked.
    pub revoked: bool,
    /// Who made it.
    pub created_by: String,
    /// When (ms since the epoch; RFC 3339 in JSON).
    #[serde(serialize_with = "utc", deserialize_with = "from_utc")]
    #[schema(value_type = String, format = DateTime)]
    pub created: i64,
    /// When an agent last enrolled with it.
    #[serde(serialize_with = "utc", deserialize_with = "from_utc", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used: Option<i64>,
}

/// A token to store.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// The SHA-256 of its secret, hex.
    pub hash: String,
    /// What it is for.
    pub note: String,
    /// How many enrollments it allows.
    pub uses: u32,
    /// When it stops working (ms since the epoch).
    pub expires: i64,
    /// Groups every host enrolled with it joins.
    pub groups: Vec<String>,
    /// Who made it ([`crate::ops::Actor`] as text).
    pub created_by: String,
}

/// One clause of a rule: the property named must match the regular expression.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Clause {
    /// The property, as the agent reports it (`hostname`, `kernel`, `kernel_version`,
    /// `distribution`, `distribution_version`, `arch`, `endian`: `big` or `little`, `model`,
    /// `call_home`) or as the server sees it (`name`, `address`): 1 to 63 letters, digits, `.`,
    /// `_` and `-`.
    #[schema(min_length = 1, max_length = 63, pattern = "^[A-Za-z0-9._-]+$")]
    pub property: String,
    /// A regular expression (Rust's `regex` syntax) it must match somewhere; anchor it with
    /// `^` and `$` to match it whole.
    pub regex: String,
}

/// An enrollment rule: where it stands, what it matches and what it decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = EnrollmentRule)]
pub struct Rule {
    /// Its id, never reused.
    pub id: i64,
    /// Where it stands: 1 is tried first.
    pub position: u32,
    /// What must all match (none: every agent).
    pub clauses: Vec<Clause>,
    /// The groups a matching host joins.
    pub groups: Vec<String>,
    /// Whether a matching host's agent key is pinned at once; else it waits for approval.
    pub trust: bool,
    /// Who made it.
    pub created_by: String,
    /// When (ms since the epoch; RFC 3339 in JSON).
    #[serde(serialize_with = "utc", deserialize_with = "from_utc")]
    #[schema(value_type = String, format = DateTime)]
    pub created: i64,
}

/// A rule to store.
#[derive(Debug, Clone)]
pub struct NewRule {
    /// Where it goes: 1 is first; none, or past the end: last.
    pub position: Option<u32>,
    /// What must all match.
    pub clauses: Vec<Clause>,
    /// The groups a matching host joins.
    pub groups: Vec<String>,
    /// Pin the agent key at once.
    pub trust: bool,
    /// Who made it.
    pub created_by: String,
}

/// The host an enrollment makes, for the store to add in the transaction that takes one use
/// of its token.
#[derive(Debug, Clone)]
pub struct EnrollHost {
    /// The SHA-256 of the token's secret, hex.
    pub token_hash: String,
    /// Its name.
    pub name: String,
    /// Where it is dialled.
    pub address: String,
    /// Its agent's port.
    pub port: u16,
    /// The agent's key (OpenSSH text).
    pub agent_key: String,
    /// Pin the key at once; else it waits as the host's pending key.
    pub trust: bool,
    /// The groups its rule gives (the token's are added).
    pub groups: Vec<String>,
    /// What its agent reported, kept beside it.
    pub properties: std::collections::BTreeMap<String, String>,
    /// Who enrolls it, for the event log.
    pub actor: String,
    /// The event recorded with it (the groups it joined are appended).
    pub detail: String,
}

impl EnrollHost {
    /// Every group the host joins: its rule's, then its token's, without repeats.
    pub fn all_groups(&self, token_groups: &[String]) -> Vec<String> {
        let mut groups: Vec<String> = Vec::new();
        for g in self.groups.iter().chain(token_groups) {
            if !groups.contains(g) {
                groups.push(g.clone());
            }
        }
        groups
    }

    /// The details of the two events its enrollment with token `token` into `groups` records:
    /// `host-added`'s and `enrolled`'s (the same words whichever backend stores them).
    pub fn event_details(&self, token: i64, groups: &[String]) -> (String, String) {
        let trust = match self.trust {
            true => "agent key given",
            false => "agent key pending approval",
        };
        let added = format!("{}:{}, {trust} (enrolled)", self.address, self.port);
        let enrolled = match groups.is_empty() {
            true => format!("{}, token {token}; no group", self.detail),
            false => format!(
                "{}, token {token}; groups {}",
                self.detail,
                groups.join(", ")
            ),
        };
        (added, enrolled)
    }
}

/// What an enrollment took from its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUse {
    /// The token's id.
    pub token: i64,
    /// Every group the host joined (its rule's, then its token's), without repeats.
    pub groups: Vec<String>,
}

/// Why a token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRefusal {
    /// No token has this secret.
    Unknown,
    /// It was revoked (its id).
    Revoked(i64),
    /// Its time is over (its id).
    Expired(i64),
    /// Its uses are used up (its id).
    UsedUp(i64),
}

impl TokenRefusal {
    /// The token's id, when it exists.
    pub fn token(self) -> Option<i64> {
        match self {
            TokenRefusal::Unknown => None,
            TokenRefusal::Revoked(id) | TokenRefusal::Expired(id) | TokenRefusal::UsedUp(id) => {
                Some(id)
            }
        }
    }
}

impl std::fmt::Display for TokenRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TokenRefusal::Unknown => "the enrollment token is not known to this server",
            TokenRefusal::Revoked(_) => "the enrollment token was revoked",
            TokenRefusal::Expired(_) => "the enrollment token has expired",
            TokenRefusal::UsedUp(_) => "the enrollment token is used up",
        })
    }
}
