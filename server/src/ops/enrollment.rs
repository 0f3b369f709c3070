//! Enrollment: agents that join by themselves. A token (made here, its secret shown once and
//! stored as its SHA-256) lets an agent enroll a given number of times before it expires; the
//! rules, in order, decide from what the agent reports which groups its host joins and whether
//! its key is pinned at once or held for approval (`host approve`). The enrollment session
//! (over an SSH connection the agent made, authenticated by the server's one enrollment key)
//! calls [`Ops::enroll`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use russh::keys::PrivateKey;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::hosts::{check_new_groups, check_new_host, check_place, hosts_at};
use super::users::{random_hex, secret_hash};
use super::{MAX_PAGE, Ops, OpsError, Result};
use crate::keys;
use crate::model::{
    Clause, EnrollHost, EventKind, NewRule, NewToken, Permission, Rule, Token, now_ms,
};
use crate::names::HostName;
use crate::private_file::{self, Existing};
use crate::sanitize;
use crate::store::StoreError;

/// The prefix of a token's secret, which is followed by 64 hex digits (256 random bits).
pub const TOKEN_PREFIX: &str = "otto-enroll-";
/// The most enrollments one token allows.
pub const MAX_TOKEN_USES: u32 = 100_000;
/// The longest a token lasts: a year.
pub const MAX_TOKEN_LIFETIME_SECS: u64 = 366 * 24 * 3600;
/// How long a token lasts when the request does not say: a week.
pub const DEFAULT_TOKEN_LIFETIME_SECS: u64 = 7 * 24 * 3600;
/// The longest note of a token, in characters.
pub const MAX_NOTE: usize = 200;
/// The most clauses of a rule, and the most groups of a rule or token.
pub const MAX_CLAUSES: usize = 16;
/// The longest regular expression of a clause, in bytes.
pub const MAX_REGEX: usize = 512;
/// The most properties of an enrolling agent kept (the first, by name).
pub const MAX_PROPERTIES: usize = 64;
/// The file of the enrollment key, in the data directory.
pub const ENROLLMENT_KEY_FILE: &str = "enrollment.key";

/// What an agent asks when it enrolls (read by the enrollment session from the agent's
/// request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrollment {
    /// The token's secret as the agent sent it.
    pub token: String,
    /// The agent's public key from the SSH handshake, OpenSSH text (as `model::Trust.agent_key`).
    pub agent_key: String,
    /// The name the agent proposes (its hostname, or `--name`).
    pub name: String,
    /// The peer address the server saw (IP text).
    pub address: String,
    /// The agent's SSH listening port (for dialling), `otto_proto::DEFAULT_PORT` if unsure.
    pub port: u16,
    /// hostname, kernel, distribution, arch, model, …: what rules match (beside `name` and
    /// `address`, which the rules see as properties too).
    pub properties: BTreeMap<String, String>,
}

/// The server's answer to an accepted enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolled {
    /// The host's name.
    pub host: String,
    /// The host's server public key, OpenSSH text: what the agent must trust.
    pub server_key: String,
    /// Held for approval: the agent's key waits as the host's pending key (`host approve`).
    pub pending: bool,
    /// The groups it joined.
    pub groups: Vec<String>,
}

/// A token to make (the API's `NewEnrollmentToken`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewEnrollmentToken)]
pub struct AddToken {
    /// How many agents may enroll with it, 1 to 100000 (default 1).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100_000)]
    pub uses: Option<u32>,
    /// It stops working this many seconds from now, 1 to a year (default a week).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_622_400_u64)]
    pub expires_in_secs: Option<u64>,
    /// Groups every host enrolled with it joins (created if missing), beside its rule's; at
    /// most 16.
    #[serde(default)]
    #[schema(max_items = 16)]
    pub groups: Vec<String>,
    /// What it is for (at most 200 characters).
    #[serde(default)]
    #[schema(max_length = 200)]
    pub note: String,
    /// Where agents reach this server's call-home listener, `ADDRESS[:PORT]`, for the ready
    /// agent command (without it the command says `ADDRESS:PORT` for you to fill in).
    #[serde(default)]
    #[schema(max_length = 300)]
    pub call_home: Option<String>,
}

/// A token just made, with its secret: the only time the secret is seen.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = CreatedEnrollmentToken)]
pub struct CreatedToken {
    /// The token.
    pub token: Token,
    /// Its secret, `otto-enroll-` and 64 hex digits: shown this once, stored only as a hash.
    pub secret: String,
    /// The server's enrollment fingerprint, `SHA256:…`, that agents pin.
    pub fingerprint: String,
    /// The command to run on a device to enroll it.
    pub command: String,
}

/// A rule to add (the API's `NewEnrollmentRule`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewEnrollmentRule)]
pub struct AddRule {
    /// What must all match (none: every agent), at most 16.
    #[serde(default)]
    #[schema(max_items = 16)]
    pub clauses: Vec<Clause>,
    /// The groups a matching host joins (created if missing), at most 16.
    #[serde(default)]
    #[schema(max_items = 16)]
    pub groups: Vec<String>,
    /// Pin a matching host's agent key at once (else it waits for approval).
    pub trust: bool,
    /// Where it goes: 1 is tried first (default: last).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub position: Option<u32>,
}

/// The server's enrollment fingerprint.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = EnrollmentFingerprint)]
pub struct Fingerprint {
    /// `SHA256:…` of the enrollment key: what `otto-agent enroll --fingerprint` pins.
    pub fingerprint: String,
}

/// A clause as written on the command line: `PROPERTY~REGEX`.
pub fn parse_clause(text: &str) -> Result<Clause> {
    let (property, regex) = text.split_once('~').ok_or_else(|| {
        OpsError::Invalid(format!(
            "`{}` is not a clause: write PROPERTY~REGEX",
            sanitize::field(text, 80)
        ))
    })?;
    Ok(Clause {
        property: property.trim().to_string(),
        regex: regex.to_string(),
    })
}

/// A clause's regular expression, compiled within bounds.
fn compile(clause: &Clause) -> Result<regex::Regex> {
    let bad = |why: String| {
        OpsError::Invalid(format!(
            "the clause on `{}`: {why}",
            sanitize::field(&clause.property, 40)
        ))
    };
    let name_ok = !clause.property.is_empty()
        && clause.property.len() <= 63
        && clause
            .property
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if !name_ok {
        return Err(bad(
            "a property is 1 to 63 letters, digits, `.`, `_` and `-`".into(),
        ));
    }
    if clause.regex.len() > MAX_REGEX {
        return Err(bad(format!(
            "a regular expression is at most {MAX_REGEX} bytes"
        )));
    }
    regex::RegexBuilder::new(&clause.regex)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| bad(format!("not a regular expression: {e}")))
}

/// What the rules decide for an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Placement {
    /// The rule that matched (its id and position), or none: the default rule.
    rule: Option<(i64, u32)>,
    /// Pin at once.
    trust: bool,
    /// Its groups.
    groups: Vec<String>,
}

impl Placement {
    /// The rule, in words.
    fn rule_text(&self) -> String {
        match self.rule {
            Some((id, position)) => format!("rule {id} (#{position})"),
            None => "the default rule (hold)".into(),
        }
    }
}

/// The first of `rules` whose clauses all match `properties` (a property not reported matches
/// nothing), or the default rule: hold for approval, no group.
fn decide(rules: &[Rule], properties: &BTreeMap<String, String>) -> Placement {
    let matches = |c: &Clause| {
        let value = properties.get(&c.property);
        // A stored rule was compiled when it was added; one that no longer compiles matches
        // nothing.
        value.is_some_and(|v| compile(c).is_ok_and(|r| r.is_match(v)))
    };
    rules
        .iter()
        .find(|r| r.clauses.iter().all(matches))
        .map(|r| Placement {
            rule: Some((r.id, r.position)),
            trust: r.trust,
            groups: r.groups.clone(),
        })
        .unwrap_or(Placement {
            rule: None,
            trust: false,
            groups: Vec::new(),
        })
}

/// The names being enrolled in this process, each with its fleet's data directory: a name is
/// claimed from its checks until its host is stored or refused, so a second agent enrolling
/// as the same name at the same moment is told so at once. Across servers the store's unique
/// host name decides, and the server key is stored only once the host is.
static ENROLLING: Mutex<BTreeSet<(PathBuf, String)>> = Mutex::new(BTreeSet::new());

/// A claim on a name in [`ENROLLING`], given up when dropped.
struct Claim((PathBuf, String));

impl Claim {
    /// Claims `name` in the fleet of `data_dir`, unless another enrollment holds it.
    fn take(data_dir: &Path, name: &HostName) -> Option<Claim> {
        let claim = (data_dir.to_path_buf(), name.to_string());
        let mut names = ENROLLING.lock().unwrap_or_else(|e| e.into_inner());
        names.insert(claim.clone()).then(|| Claim(claim))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut names = ENROLLING.lock().unwrap_or_else(|e| e.into_inner());
        names.remove(&self.0);
    }
}

impl Ops {
    /// Enrolls an agent: checks its token, applies the rules, and adds its host exactly as
    /// `host add` with its agent key (pinned, or pending approval as `host approve` expects)
    /// does. The token's use and the host are stored in one transaction. Every enrollment,
    /// accepted or refused, is an event; a refusal's `Display` is its reason, for the agent
    /// to print.
    pub async fn enroll(&self, mut e: Enrollment) -> Result<Enrolled> {
        // What the agent reports is kept and shown: bounded and made safe first.
        e.properties = e
            .properties
            .iter()
            .take(MAX_PROPERTIES)
            .map(|(k, v)| {
                (
                    sanitize::field(k, 63),
                    sanitize::field(v, sanitize::FIELD_MAX),
                )
            })
            .collect();
        let mut properties = e.properties.clone();
        properties.insert("name".into(), e.name.clone());
        properties.insert("address".into(), e.address.clone());
        let rules = self.fleet.store().rules().await?;
        let decision = decide(&rules, &properties);
        match self.admit(&e, &decision).await {
            Ok(enrolled) => Ok(enrolled),
            Err((token, error)) => {
                let detail = format!(
                    "`{}` from {}:{} refused ({}, token {}): {error}",
                    sanitize::field(&e.name, 80),
                    sanitize::field(&e.address, 80),
                    e.port,
                    decision.rule_text(),
                    token.map_or("unknown".into(), |t| t.to_string()),
                );
                self.record(None, EventKind::EnrollmentRefused, &detail)
                    .await?;
                Err(error)
            }
        }
    }

    /// Checks and stores an enrollment; a refusal with the token's id if it is known.
    async fn admit(
        &self,
        e: &Enrollment,
        decision: &Placement,
    ) -> std::result::Result<Enrolled, (Option<i64>, OpsError)> {
        let early = |error: OpsError| (None, error);
        let agent_key = keys::parse_public(&e.agent_key).map_err(|k| early(k.into()))?;
        let agent_key = keys::to_openssh(&agent_key);
        // The token first: who has none learns nothing of the fleet's names, places or keys.
        let token_hash = secret_hash(e.token.trim());
        let checked = self.fleet.store().check_token(&token_hash).await;
        match checked.map_err(|s| early(s.into()))? {
            Ok(_) => {}
            Err(refusal) => {
                return Err((
                    refusal.token(),
                    OpsError::Unauthenticated(refusal.to_string()),
                ));
            }
        }
        let name = HostName::parse(&e.name).map_err(|n| early(n.into()))?;
        let _claim = Claim::take(self.fleet.data_dir(), &name).ok_or_else(|| {
            early(OpsError::Conflict(format!(
                "another agent is enrolling as `{name}` now"
            )))
        })?;
        let hosts = self
            .fleet
            .store()
            .hosts()
            .await
            .map_err(|s| early(s.into()))?;
        check_new_host(&e.name, &hosts).map_err(early)?;
        check_place(&e.name, &e.address, e.port, false, hosts_at(&hosts)).map_err(early)?;
        let holder = hosts.iter().find(|h| {
            h.trust.agent_key.as_deref() == Some(agent_key.as_str())
                || h.trust.pending_key.as_deref() == Some(agent_key.as_str())
        });
        if let Some(other) = holder {
            return Err(early(OpsError::Conflict(format!(
                "this agent's key belongs to the host `{}` already",
                other.name
            ))));
        }
        let groups = self.group_names().await.map_err(early)?;
        check_new_groups(&decision.groups, &groups).map_err(early)?;
        // Stored once the host is: a refusal (or another server enrolling the name first)
        // leaves nothing behind.
        let server_key = keys::generate().map_err(|k| early(k.into()))?;
        let host = EnrollHost {
            token_hash,
            name: e.name.clone(),
            address: e.address.clone(),
            port: e.port,
            agent_key: agent_key.clone(),
            trust: decision.trust,
            groups: decision.groups.clone(),
            properties: e.properties.clone(),
            actor: self.actor.to_string(),
            detail: format!(
                "{}:{} by {}, agent key {} {}",
                e.address,
                e.port,
                decision.rule_text(),
                keys::fingerprint(&keys::parse_public(&agent_key).map_err(|k| early(k.into()))?),
                if decision.trust {
                    "pinned"
                } else {
                    "pending approval"
                },
            ),
        };
        let stored = self.fleet.store().enroll(&host).await;
        let groups = match stored {
            Ok(Ok(used)) => used.groups,
            Ok(Err(refusal)) => {
                return Err((
                    refusal.token(),
                    OpsError::Unauthenticated(refusal.to_string()),
                ));
            }
            Err(store) => return Err(early(store.into())),
        };
        if let Err(kept) = self.fleet.keep_host_key(&e.name, &server_key).await {
            // A host without its server key cannot be reached: not enrolled after all.
            if let Err(removed) = self.fleet.store().remove_host(&e.name).await {
                tracing::warn!(host = %e.name, "enrolled without its server key, not removed: {removed}");
            }
            return Err(early(kept.into()));
        }
        Ok(Enrolled {
            host: e.name.clone(),
            server_key: keys::to_openssh(server_key.public_key()),
            pending: !decision.trust,
            groups,
        })
    }

    /// The server's one enrollment key (Ed25519), made on first use: a 0600 file in the data
    /// directory, [`ENROLLMENT_KEY_FILE`]. Of two processes making it at once, one's is kept.
    pub fn enrollment_key(&self) -> Result<PrivateKey> {
        let path = self.fleet.data_dir().join(ENROLLMENT_KEY_FILE);
        if !path.exists() {
            let key = keys::generate()?;
            let text = key
                .to_openssh(russh::keys::ssh_key::LineEnding::LF)
                .map_err(|e| OpsError::Internal(format!("the enrollment key: {e}")))?;
            private_file::write(&path, text.as_bytes(), Existing::Keep)
                .map_err(|e| OpsError::File(path.clone(), e))?;
        }
        Ok(keys::load(&path)?)
    }

    /// `SHA256:…` of the enrollment key's public half: what agents pin.
    pub fn enrollment_fingerprint(&self) -> Result<String> {
        Ok(keys::fingerprint(self.enrollment_key()?.public_key()))
    }

    /// The enrollment fingerprint, as the API gives it.
    pub fn fingerprint(&self) -> Result<Fingerprint> {
        Ok(Fingerprint {
            fingerprint: self.enrollment_fingerprint()?,
        })
    }

    /// Makes a token (needs `enrollment`); its secret is in the answer only.
    pub async fn add_token(&self, add: AddToken) -> Result<CreatedToken> {
        self.require(Permission::Enrollment)?;
        let uses = add.uses.unwrap_or(1);
        if !(1..=MAX_TOKEN_USES).contains(&uses) {
            return Err(OpsError::Invalid(format!(
                "a token allows 1 to {MAX_TOKEN_USES} enrollments"
            )));
        }
        let lifetime = add.expires_in_secs.unwrap_or(DEFAULT_TOKEN_LIFETIME_SECS);
        if !(1..=MAX_TOKEN_LIFETIME_SECS).contains(&lifetime) {
            return Err(OpsError::Invalid(
                "a token lasts 1 second to 366 days".into(),
            ));
        }
        if add.note.chars().count() > MAX_NOTE {
            return Err(OpsError::Invalid(format!(
                "a note is at most {MAX_NOTE} characters"
            )));
        }
        check_groups(&add.groups, &self.group_names().await?)?;
        let call_home = match add.call_home.as_deref().map(str::trim) {
            None | Some("") => "ADDRESS:PORT".to_string(),
            Some(place) => check_call_home(place)?,
        };
        let fingerprint = self.enrollment_fingerprint()?;
        let secret = format!("{TOKEN_PREFIX}{}", random_hex()?);
        let lifetime_ms = i64::try_from(Duration::from_secs(lifetime).as_millis()).unwrap_or(0);
        let new = NewToken {
            hash: secret_hash(&secret),
            note: add.note,
            uses,
            expires: now_ms().saturating_add(lifetime_ms),
            groups: add.groups,
            created_by: self.actor.to_string(),
        };
        let store = self.fleet.store();
        let id = store.add_token(&new).await?;
        let detail = format!(
            "enrollment token {id} made: {uses} use(s), for {}",
            humantime::format_duration(Duration::from_secs(lifetime))
        );
        self.record(None, EventKind::EnrollmentChanged, &detail)
            .await?;
        let token = store
            .tokens()
            .await?
            .into_iter()
            .find(|t| t.id == id)
            .ok_or_else(|| OpsError::Internal(format!("token {id} vanished")))?;
        let command = format!(
            "otto-agent enroll --server {call_home} --fingerprint {fingerprint} --token {secret}"
        );
        Ok(CreatedToken {
            token,
            secret,
            fingerprint,
            command,
        })
    }

    /// Every token, without secrets (needs `enrollment`).
    pub async fn tokens(&self) -> Result<Vec<Token>> {
        self.require(Permission::Enrollment)?;
        Ok(self.fleet.store().tokens().await?)
    }

    /// Revokes a token (needs `enrollment`): no agent enrolls with it from now on; the token
    /// as it is now. One revoked already is a `Conflict`, and nothing is recorded.
    pub async fn revoke_token(&self, id: i64) -> Result<Token> {
        self.require(Permission::Enrollment)?;
        let store = self.fleet.store();
        let known = store.tokens().await?.into_iter().find(|t| t.id == id);
        match known {
            None => return Err(StoreError::NotFound("enrollment token", id.to_string()).into()),
            Some(t) if t.revoked => {
                return Err(OpsError::Conflict(format!(
                    "enrollment token {id} is revoked already"
                )));
            }
            Some(_) => {}
        }
        let token = store.revoke_token(id).await?;
        let detail = format!("enrollment token {id} revoked");
        self.record(None, EventKind::EnrollmentChanged, &detail)
            .await?;
        Ok(token)
    }

    /// Adds a rule (needs `enrollment`); its regular expressions must compile. Every rule as
    /// it is now, in order.
    pub async fn add_rule(&self, add: AddRule) -> Result<Vec<Rule>> {
        self.require(Permission::Enrollment)?;
        if add.clauses.len() > MAX_CLAUSES {
            return Err(OpsError::Invalid(format!(
                "a rule has at most {MAX_CLAUSES} clauses"
            )));
        }
        for clause in &add.clauses {
            compile(clause)?;
        }
        check_groups(&add.groups, &self.group_names().await?)?;
        if add.position == Some(0) {
            return Err(OpsError::Invalid("positions start at 1".into()));
        }
        let new = NewRule {
            position: add.position,
            clauses: add.clauses,
            groups: add.groups,
            trust: add.trust,
            created_by: self.actor.to_string(),
        };
        let store = self.fleet.store();
        let id = store.add_rule(&new).await?;
        let rules = store.rules().await?;
        let rule = rules.iter().find(|r| r.id == id);
        let detail = format!(
            "enrollment rule {id} added at #{}: {}",
            rule.map_or(0, |r| r.position),
            rule.map(describe).unwrap_or_default()
        );
        self.record(None, EventKind::EnrollmentChanged, &detail)
            .await?;
        Ok(rules)
    }

    /// Every rule in the order they are tried (needs `enrollment`).
    pub async fn rules(&self) -> Result<Vec<Rule>> {
        self.require(Permission::Enrollment)?;
        Ok(self.fleet.store().rules().await?)
    }

    /// Removes a rule (needs `enrollment`); the rule removed.
    pub async fn remove_rule(&self, id: i64) -> Result<Rule> {
        self.require(Permission::Enrollment)?;
        let rule = self.fleet.store().remove_rule(id).await?;
        let detail = format!("enrollment rule {id} removed: {}", describe(&rule));
        self.record(None, EventKind::EnrollmentChanged, &detail)
            .await?;
        Ok(rule)
    }
}

/// A host whose agent presented a key waiting for approval: a new enrollment held by its
/// rule, or a pinned key the agent no longer has.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PendingHost {
    /// The host.
    pub name: String,
    /// Where it is dialled.
    pub address: String,
    /// Its agent's port.
    pub port: u16,
    /// The fingerprint of the key waiting, `SHA256:…`.
    pub fingerprint: String,
    /// The fingerprint of the key pinned now; none for a new enrollment.
    pub pinned_fingerprint: Option<String>,
    /// What its agent reported when it enrolled (none if it was added otherwise).
    pub properties: Option<BTreeMap<String, String>>,
    /// Its facts from its last heartbeat, if any.
    #[schema(value_type = Option<crate::model::FactsSchema>)]
    pub facts: Option<crate::model::Facts>,
}

impl Ops {
    /// Every host whose agent key waits for approval, by name.
    pub async fn pending_hosts(&self) -> Result<Vec<PendingHost>> {
        let store = self.fleet.store();
        let mut properties = store.enrolled_properties().await?;
        let hosts = store.hosts().await?;
        Ok(hosts
            .into_iter()
            .filter_map(|h| {
                let pending = h.trust.pending_key.as_deref()?;
                Some(PendingHost {
                    fingerprint: super::pending_fingerprint(pending),
                    pinned_fingerprint: h
                        .trust
                        .agent_key
                        .as_deref()
                        .map(super::pending_fingerprint),
                    properties: properties.remove(&h.name),
                    facts: h.status.facts,
                    name: h.name,
                    address: h.address,
                    port: h.port,
                })
            })
            .collect())
    }
}

/// Hosts whose pending agent keys to approve or deny at once (the API's `PendingHosts`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PendingHosts {
    /// The hosts, 1 to 1000.
    #[schema(min_items = 1, max_items = 1000)]
    pub hosts: Vec<String>,
}

/// What approving or denying one host's pending key did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PendingDecided {
    /// The host.
    pub host: String,
    /// The fingerprint of the key pinned or dropped; none when it failed.
    pub fingerprint: Option<String>,
    /// Why it failed (no such host, no pending key); none when done.
    pub error: Option<String>,
}

impl Ops {
    /// Approves (pins) or denies (drops) the pending agent keys of several hosts, each as
    /// `host approve` or `host deny` would (needs `hosts`): one failing does not stop the
    /// others; what each did, in order.
    pub async fn decide_pending(
        &self,
        hosts: &[String],
        approve: bool,
    ) -> Result<Vec<PendingDecided>> {
        self.require(Permission::Hosts)?;
        if hosts.is_empty() || hosts.len() > MAX_PAGE {
            return Err(OpsError::Invalid(format!("name 1 to {MAX_PAGE} hosts")));
        }
        let mut done = Vec::with_capacity(hosts.len());
        for host in hosts {
            let result = match HostName::parse(host) {
                Ok(name) if approve => self.approve(&name).await,
                Ok(name) => self.deny(&name).await,
                Err(e) => Err(e.into()),
            };
            done.push(match result {
                Ok(key) => PendingDecided {
                    host: host.clone(),
                    fingerprint: Some(key.fingerprint),
                    error: None,
                },
                Err(e) => PendingDecided {
                    host: host.clone(),
                    fingerprint: None,
                    error: Some(e.to_string()),
                },
            });
        }
        Ok(done)
    }
}

/// A rule in words: its clauses, what it decides and its groups.
pub fn describe(rule: &Rule) -> String {
    let clauses: Vec<String> = rule
        .clauses
        .iter()
        .map(|c| format!("{}~{}", c.property, c.regex))
        .collect();
    let matches = match clauses.is_empty() {
        true => "every agent".to_string(),
        false => clauses.join(" and "),
    };
    let decides = if rule.trust { "trust" } else { "hold" };
    match rule.groups.is_empty() {
        true => format!("{matches} → {decides}"),
        false => format!("{matches} → {decides}, groups {}", rule.groups.join(", ")),
    }
}

/// Checks the groups of a token or rule: at most [`MAX_CLAUSES`], each a good group name
/// (those missing are made at enrollment).
fn check_groups(groups: &[String], existing: &[String]) -> Result<()> {
    if groups.len() > MAX_CLAUSES {
        return Err(OpsError::Invalid(format!("at most {MAX_CLAUSES} groups")));
    }
    check_new_groups(groups, existing)
}

/// Checks where agents call home, `ADDRESS[:PORT]`; as given.
fn check_call_home(place: &str) -> Result<String> {
    let bad = || {
        OpsError::Invalid(format!(
            "`{}` is not ADDRESS[:PORT]",
            sanitize::field(place, 80)
        ))
    };
    if place.len() > 300 || place.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    if place.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(place.to_string());
    }
    let (address, port) = match place.rsplit_once(':') {
        Some((a, p)) if !a.contains(':') => (a, Some(p)),
        _ => (place, None),
    };
    crate::names::check_address(address.trim_start_matches('[').trim_end_matches(']'))
        .map_err(|_| bad())?;
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => return Err(bad()),
        }
    }
    Ok(place.to_string())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::fleet::{Fleet, FleetOptions};
    use crate::model::{Permissions, RunLevel};
    use crate::names::HostName;
    use crate::ops::testing::{events, fixture, has_server_key};
    use crate::ops::{Actor, ErrorKind};

    /// A new agent key, OpenSSH text.
    fn agent_key() -> String {
        keys::to_openssh(keys::generate().unwrap().public_key())
    }

    /// An enrollment of `name` at 192.0.2.`n` with `token`, reporting `arch`.
    fn enrollment(token: &str, name: &str, n: u8, arch: &str) -> Enrollment {
        Enrollment {
            token: token.into(),
            agent_key: agent_key(),
            name: name.into(),
            address: format!("192.0.2.{n}"),
            port: otto_proto::DEFAULT_PORT,
            properties: BTreeMap::from([("arch".into(), arch.into())]),
        }
    }

    async fn token(ops: &Ops, uses: u32, groups: &[&str]) -> String {
        let made = ops
            .add_token(AddToken {
                uses: Some(uses),
                groups: groups.iter().map(|g| g.to_string()).collect(),
                ..AddToken::default()
            })
            .await
            .unwrap();
        made.secret
    }

    fn rule(clauses: &[&str], groups: &[&str], trust: bool) -> AddRule {
        AddRule {
            clauses: clauses.iter().map(|c| parse_clause(c).unwrap()).collect(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            trust,
            position: None,
        }
    }

    #[tokio::test]
    async fn an_enrolled_host_is_added_as_host_add_would_with_its_key_pinned_or_held() {
        let (_dir, ops) = fixture().await;
        ops.add_rule(rule(&["arch~^mips"], &["mips"], true))
            .await
            .unwrap();
        let secret = token(&ops, 2, &["lab"]).await;
        let made = ops.tokens().await.unwrap();
        assert_eq!((made[0].uses, made[0].used), (2, 0));
        assert!(secret.starts_with(TOKEN_PREFIX) && secret.len() == TOKEN_PREFIX.len() + 64);

        // Trusted at once by the first rule: pinned, in its rule's groups and its token's.
        let e = enrollment(&secret, "r1", 1, "mips");
        let enrolled = ops.enroll(e.clone()).await.unwrap();
        assert!(!enrolled.pending);
        assert_eq!(enrolled.groups, ["mips", "lab"]);
        let r1 = HostName::parse("r1").unwrap();
        let host = ops.host(&r1).await.unwrap();
        assert_eq!(
            host.host.trust.agent_key.as_deref(),
            Some(e.agent_key.as_str())
        );
        assert_eq!(host.host.trust.pending_key, None);
        assert!(!host.host.trust.pin_on_first_contact);
        assert_eq!(host.host.groups, ["lab", "mips"]);
        assert_eq!(host.server_key, enrolled.server_key);
        assert_eq!(
            (host.host.address.as_str(), host.host.port),
            ("192.0.2.1", 12444)
        );

        // Held by the default rule: its key waits as the pending key, for `host approve`.
        let e2 = enrollment(&secret, "r2", 2, "arm");
        let held = ops.enroll(e2.clone()).await.unwrap();
        assert!(held.pending);
        assert_eq!(held.groups, ["lab"]);
        let r2 = HostName::parse("r2").unwrap();
        let host = ops.host(&r2).await.unwrap().host;
        assert_eq!(host.trust.agent_key, None);
        assert_eq!(
            host.trust.pending_key.as_deref(),
            Some(e2.agent_key.as_str())
        );
        // Listed as waiting, new, with what its agent reported.
        let pending = ops.pending_hosts().await.unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].name, "r2");
        assert_eq!(pending[0].pinned_fingerprint, None);
        let fingerprint = keys::fingerprint(&keys::parse_public(&e2.agent_key).unwrap());
        assert_eq!(pending[0].fingerprint, fingerprint);
        assert_eq!(pending[0].properties, Some(e2.properties.clone()));
        // Held, it can do nothing: the server does not even dial it.
        let ping = ops
            .ping(&crate::ops::Targets::hosts(["r2".to_string()]))
            .await;
        let ping = &ping.unwrap()[0];
        assert!(!ping.reachable);
        assert!(ping.untrusted.is_some(), "{ping:?}");
        ops.approve(&r2).await.unwrap();
        assert!(ops.pending_hosts().await.unwrap().is_empty());
        let host = ops.host(&r2).await.unwrap().host;
        assert_eq!(host.trust.agent_key.as_deref(), Some(e2.agent_key.as_str()));

        let token = &ops.tokens().await.unwrap()[0];
        assert_eq!(token.used, 2);
        assert!(token.last_used.is_some());
        let added = events(&ops, "host-added").await;
        assert_eq!(added.len(), 2);
        assert_eq!(
            added[0].detail,
            "192.0.2.1:12444, agent key given (enrolled)"
        );
        assert_eq!(
            added[1].detail,
            "192.0.2.2:12444, agent key pending approval (enrolled)"
        );
        let enrolled = events(&ops, "enrolled").await;
        assert_eq!(enrolled.len(), 2);
        assert_eq!(enrolled[0].host.as_deref(), Some("r1"));
        assert!(
            enrolled[0].detail.contains("rule 1 (#1)"),
            "{}",
            enrolled[0].detail
        );
        assert!(
            enrolled[0].detail.contains("pinned"),
            "{}",
            enrolled[0].detail
        );
        assert!(
            enrolled[0].detail.contains("token 1"),
            "{}",
            enrolled[0].detail
        );
        assert!(
            enrolled[1].detail.contains("default rule (hold)"),
            "{}",
            enrolled[1].detail
        );
        assert!(enrolled[1].detail.contains("pending approval"));
        assert_eq!(events(&ops, "enrollment-changed").await.len(), 2);
    }

    #[tokio::test]
    async fn a_token_expired_used_up_revoked_or_unknown_is_refused_each_for_its_reason() {
        let (_dir, ops) = fixture().await;
        let store = ops.fleet.store();
        let expired = format!("{TOKEN_PREFIX}{}", "0".repeat(64));
        store
            .add_token(&NewToken {
                hash: secret_hash(&expired),
                note: String::new(),
                uses: 5,
                expires: now_ms() - 1,
                groups: Vec::new(),
                created_by: "test".into(),
            })
            .await
            .unwrap();
        let one = token(&ops, 1, &[]).await;
        ops.enroll(enrollment(&one, "r1", 1, "x")).await.unwrap();
        let revoked = token(&ops, 1, &[]).await;
        let id = ops.tokens().await.unwrap()[2].id;
        assert!(ops.revoke_token(id).await.unwrap().revoked);

        let cases = [
            (
                expired.as_str(),
                "the enrollment token has expired",
                "token 1",
            ),
            (one.as_str(), "the enrollment token is used up", "token 2"),
            (
                revoked.as_str(),
                "the enrollment token was revoked",
                "token 3",
            ),
            (
                "otto-enroll-wrong",
                "the enrollment token is not known",
                "token unknown",
            ),
        ];
        for (n, (secret, reason, token)) in cases.into_iter().enumerate() {
            let name = format!("x{n}");
            let e = ops
                .enroll(enrollment(secret, &name, 10 + n as u8, "x"))
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unauthenticated);
            assert!(e.to_string().starts_with(reason), "{e}");
            let refused = events(&ops, "enrollment-refused").await;
            let last = &refused.last().unwrap().detail;
            assert!(last.contains(reason) && last.contains(token), "{last}");
            assert!(last.contains(&format!("192.0.2.{}", 10 + n)), "{last}");
            // Nothing was added, and no key was stored for it.
            assert!(ops.host(&HostName::parse(&name).unwrap()).await.is_err());
            assert!(!has_server_key(&ops, &name).await);
        }
        assert_eq!(ops.tokens().await.unwrap()[0].used, 0);

        // Without a good token nothing of the fleet is told: not that r1 exists.
        let mut probe = enrollment("otto-enroll-wrong", "r1", 1, "x");
        let e = ops.enroll(probe.clone()).await.unwrap_err();
        assert!(
            e.to_string()
                .starts_with("the enrollment token is not known"),
            "{e}"
        );
        probe.token = expired.clone();
        let e = ops.enroll(probe).await.unwrap_err();
        assert!(
            e.to_string()
                .starts_with("the enrollment token has expired"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn what_an_agent_reports_is_kept_bounded_and_safe() {
        let (_dir, ops) = fixture().await;
        let secret = token(&ops, 1, &[]).await;
        let mut e = enrollment(&secret, "r1", 1, "x");
        e.properties = (0..MAX_PROPERTIES + 10)
            .map(|i| {
                (
                    format!("p{i:03}"),
                    format!("v\u{1b}[31m{}", "x".repeat(1000)),
                )
            })
            .collect();
        ops.enroll(e).await.unwrap();
        let pending = ops.pending_hosts().await.unwrap();
        let kept = pending[0].properties.as_ref().unwrap();
        assert_eq!(kept.len(), MAX_PROPERTIES);
        for value in kept.values() {
            assert!(!value.contains('\u{1b}'), "{value}");
            assert!(
                value.chars().count() <= crate::sanitize::FIELD_MAX + 1,
                "{value}"
            );
        }
    }

    #[tokio::test]
    async fn rules_are_tried_in_order_and_the_default_holds() {
        let (_dir, ops) = fixture().await;
        ops.add_rule(rule(&["arch~^mips", "kernel~^5\\."], &["old"], false))
            .await
            .unwrap();
        ops.add_rule(rule(&["arch~^mips"], &["mips"], true))
            .await
            .unwrap();
        // Put first: a rule for one name, before both.
        let mut first = rule(&["name~^special$"], &["special"], true);
        first.position = Some(1);
        let rules = ops.add_rule(first).await.unwrap();
        let order: Vec<_> = rules.iter().map(|r| (r.id, r.position)).collect();
        assert_eq!(order, [(3, 1), (1, 2), (2, 3)]);

        let props = |arch: &str, kernel: &str| {
            BTreeMap::from([
                ("arch".to_string(), arch.to_string()),
                ("kernel".to_string(), kernel.to_string()),
                ("name".to_string(), "r".to_string()),
            ])
        };
        let d = decide(&rules, &props("mips", "5.4"));
        assert_eq!(
            (d.rule, d.trust, d.groups),
            (Some((1, 2)), false, vec!["old".into()])
        );
        let d = decide(&rules, &props("mipsel", "6.1"));
        assert_eq!(
            (d.rule, d.trust, d.groups),
            (Some((2, 3)), true, vec!["mips".into()])
        );
        let d = decide(&rules, &props("aarch64", "6.1"));
        assert_eq!((d.rule, d.trust, d.groups.len()), (None, false, 0));
        // A property the agent did not report matches nothing.
        let d = decide(&rules, &BTreeMap::from([("arch".into(), "mips".into())]));
        assert_eq!(d.rule, Some((2, 3)));

        // Removing one moves those after it up.
        ops.remove_rule(3).await.unwrap();
        let order: Vec<_> = ops
            .rules()
            .await
            .unwrap()
            .iter()
            .map(|r| (r.id, r.position))
            .collect();
        assert_eq!(order, [(1, 1), (2, 2)]);
        let gone = ops.remove_rule(3).await.unwrap_err();
        assert_eq!(gone.kind(), ErrorKind::NotFound);

        // Through enroll: the name is a property.
        let secret = token(&ops, 1, &[]).await;
        let mut e = enrollment(&secret, "r5", 5, "mips");
        e.properties.insert("kernel".into(), "5.10".into());
        assert_eq!(ops.enroll(e).await.unwrap().groups, ["old"]);
    }

    #[tokio::test]
    async fn a_duplicate_name_address_or_key_is_refused_and_uses_no_token() {
        let (_dir, ops) = fixture().await;
        let secret = token(&ops, 10, &[]).await;
        let first = enrollment(&secret, "r1", 1, "x");
        ops.enroll(first.clone()).await.unwrap();

        let mut same_name = enrollment(&secret, "r1", 2, "x");
        let e = ops.enroll(same_name.clone()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert_eq!(e.to_string(), "a host named `r1` already exists");
        same_name.name = "R1".into();
        let e = ops.enroll(same_name).await.unwrap_err();
        assert!(e.to_string().contains("only in letter case"), "{e}");

        let same_place = enrollment(&secret, "r2", 1, "x");
        let e = ops.enroll(same_place).await.unwrap_err();
        assert!(
            e.to_string()
                .starts_with("the host `r1` is already at 192.0.2.1:12444"),
            "{e}"
        );

        let mut same_key = enrollment(&secret, "r3", 3, "x");
        same_key.agent_key = first.agent_key.clone();
        let e = ops.enroll(same_key).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "this agent's key belongs to the host `r1` already"
        );

        let mut bad_key = enrollment(&secret, "r4", 4, "x");
        bad_key.agent_key = "ssh-ed25519 nonsense".into();
        assert_eq!(
            ops.enroll(bad_key).await.unwrap_err().kind(),
            ErrorKind::Invalid
        );
        let mut bad_name = enrollment(&secret, "-r5", 5, "x");
        bad_name.name = "-r5".into();
        assert_eq!(
            ops.enroll(bad_name).await.unwrap_err().kind(),
            ErrorKind::Invalid
        );

        assert_eq!(ops.tokens().await.unwrap()[0].used, 1);
        assert_eq!(events(&ops, "enrollment-refused").await.len(), 6);
        // The first host's server key is untouched by the refusals.
        assert!(has_server_key(&ops, "r1").await);
    }

    #[tokio::test]
    async fn of_agents_racing_for_a_one_use_token_exactly_one_wins() {
        // Two fleets on one data directory: two connections to one SQLite file, as two
        // processes would have, each enrolling at once.
        let (dir, ops) = fixture().await;
        let other = Arc::new(
            Fleet::open(dir.path(), FleetOptions::default())
                .await
                .unwrap(),
        );
        let other = Ops::new(other, Actor::Server);
        let secret = token(&ops, 1, &[]).await;
        let mut tasks = Vec::new();
        for n in 0..8u8 {
            let ops = if n % 2 == 0 {
                ops.clone()
            } else {
                other.clone()
            };
            let e = enrollment(&secret, &format!("r{n}"), n + 1, "x");
            tasks.push(tokio::spawn(async move { ops.enroll(e).await }));
        }
        let mut won = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => won += 1,
                Err(e) => assert_eq!(e.to_string(), "the enrollment token is used up"),
            }
        }
        assert_eq!(won, 1);
        assert_eq!(ops.hosts().await.unwrap().len(), 1);
        assert_eq!(ops.tokens().await.unwrap()[0].used, 1);
        // Only the winner's server key is left.
        let keys = ops.fleet.store().server_key_hosts().await.unwrap();
        assert_eq!(keys.len(), 1);

        // The store's transaction alone decides, past the early check: two connections take
        // a new one-use token's use at once, and one gets it.
        let secret = token(&ops, 1, &[]).await;
        let stores = [ops.fleet.store().clone(), other.fleet.store().clone()];
        let tries = stores.iter().enumerate().map(|(n, store)| {
            let host = EnrollHost {
                token_hash: secret_hash(&secret),
                name: format!("s{n}"),
                address: format!("198.51.100.{n}"),
                port: 12444,
                agent_key: agent_key(),
                trust: true,
                groups: Vec::new(),
                properties: BTreeMap::new(),
                actor: "test".into(),
                detail: "raced".into(),
            };
            let store = store.clone();
            tokio::spawn(async move { store.enroll(&host).await.unwrap() })
        });
        let mut outcomes = Vec::new();
        for t in tries.collect::<Vec<_>>() {
            outcomes.push(t.await.unwrap());
        }
        assert_eq!(
            outcomes.iter().filter(|o| o.is_ok()).count(),
            1,
            "{outcomes:?}"
        );
        assert!(outcomes.contains(&Err(crate::model::TokenRefusal::UsedUp(2))));
    }

    #[tokio::test]
    async fn the_enrollment_key_is_made_once_private_and_kept() {
        let (dir, ops) = fixture().await;
        let first = ops.enrollment_fingerprint().unwrap();
        assert!(first.starts_with("SHA256:"));
        assert_eq!(ops.enrollment_fingerprint().unwrap(), first);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(ENROLLMENT_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = Ops::new(
            Arc::new(
                Fleet::open(dir.path(), FleetOptions::default())
                    .await
                    .unwrap(),
            ),
            Actor::Server,
        );
        assert_eq!(again.enrollment_fingerprint().unwrap(), first);
        let made = ops.add_token(AddToken::default()).await.unwrap();
        assert_eq!(made.fingerprint, first);
        assert_eq!(
            made.command,
            format!(
                "otto-agent enroll --server ADDRESS:PORT --fingerprint {first} --token {}",
                made.secret
            )
        );
    }

    #[tokio::test]
    async fn tokens_and_rules_past_their_limits_are_refused() {
        let (_dir, ops) = fixture().await;
        let refused = |add: AddToken| {
            let ops = ops.clone();
            async move { ops.add_token(add).await.unwrap_err().to_string() }
        };
        let uses = |n| AddToken {
            uses: Some(n),
            ..AddToken::default()
        };
        assert!(refused(uses(0)).await.contains("1 to 100000"));
        assert!(
            refused(uses(MAX_TOKEN_USES + 1))
                .await
                .contains("1 to 100000")
        );
        ops.add_token(uses(MAX_TOKEN_USES)).await.unwrap();
        let lasting = |secs| AddToken {
            expires_in_secs: Some(secs),
            ..AddToken::default()
        };
        assert!(refused(lasting(0)).await.contains("366 days"));
        assert!(
            refused(lasting(MAX_TOKEN_LIFETIME_SECS + 1))
                .await
                .contains("366 days")
        );
        ops.add_token(lasting(MAX_TOKEN_LIFETIME_SECS))
            .await
            .unwrap();
        let noted = |n| AddToken {
            note: "é".repeat(n),
            ..AddToken::default()
        };
        assert!(refused(noted(MAX_NOTE + 1)).await.contains("at most 200"));
        ops.add_token(noted(MAX_NOTE)).await.unwrap();
        let grouped = |groups: Vec<String>| AddToken {
            groups,
            ..AddToken::default()
        };
        let many: Vec<String> = (0..=MAX_CLAUSES).map(|i| format!("g{i}")).collect();
        assert!(refused(grouped(many)).await.contains("at most 16 groups"));
        assert_eq!(
            ops.add_token(grouped(vec!["-bad".into()]))
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::Invalid
        );
        let placed = |at: &str| AddToken {
            call_home: Some(at.into()),
            ..AddToken::default()
        };
        assert!(
            refused(placed("a b:1"))
                .await
                .contains("is not ADDRESS[:PORT]")
        );
        assert!(
            refused(placed("otto.example:0"))
                .await
                .contains("is not ADDRESS[:PORT]")
        );
        let made = ops.add_token(placed("otto.example:12445")).await.unwrap();
        assert!(
            made.command
                .starts_with("otto-agent enroll --server otto.example:12445 ")
        );

        let bad_rule = |clauses: Vec<Clause>| {
            let ops = ops.clone();
            async move {
                ops.add_rule(AddRule {
                    clauses,
                    trust: true,
                    ..AddRule::default()
                })
                .await
                .unwrap_err()
                .to_string()
            }
        };
        let clause = |p: &str, r: &str| Clause {
            property: p.into(),
            regex: r.into(),
        };
        assert!(
            bad_rule(vec![clause("arch", "(")])
                .await
                .contains("not a regular expression")
        );
        assert!(
            bad_rule(vec![clause("", "x")])
                .await
                .contains("a property is")
        );
        let long = "a".repeat(MAX_REGEX + 1);
        assert!(
            bad_rule(vec![clause("arch", &long)])
                .await
                .contains("at most 512 bytes")
        );
        assert!(
            bad_rule(vec![clause("arch", "a{1000}{1000}")])
                .await
                .contains("not a regular")
        );
        let many = vec![clause("arch", "x"); MAX_CLAUSES + 1];
        assert!(bad_rule(many).await.contains("at most 16 clauses"));
        let mut zero = rule(&[], &[], true);
        zero.position = Some(0);
        assert!(ops.add_rule(zero).await.is_err());
        assert!(parse_clause("arch").is_err());
        ops.add_rule(AddRule {
            clauses: vec![clause("arch", &"a".repeat(MAX_REGEX)); MAX_CLAUSES],
            trust: false,
            ..AddRule::default()
        })
        .await
        .unwrap();
        assert!(ops.rules().await.unwrap().len() == 1);
    }

    #[tokio::test]
    async fn tokens_and_rules_need_the_enrollment_permission() {
        let (_dir, ops) = fixture().await;
        let without = Permissions {
            admin: false,
            run: RunLevel::ReadWrite,
            modify: [Permission::Hosts].into(),
        };
        let limited = ops.clone().limited_to(without);
        let forbidden = |e: OpsError| assert_eq!(e.kind(), ErrorKind::Forbidden);
        forbidden(limited.add_token(AddToken::default()).await.unwrap_err());
        forbidden(limited.tokens().await.unwrap_err());
        forbidden(limited.revoke_token(1).await.unwrap_err());
        forbidden(limited.add_rule(rule(&[], &[], true)).await.unwrap_err());
        forbidden(limited.rules().await.unwrap_err());
        forbidden(limited.remove_rule(1).await.unwrap_err());
        assert!(ops.tokens().await.unwrap().is_empty());
    }
}
