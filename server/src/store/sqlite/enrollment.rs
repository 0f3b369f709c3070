//! Enrollment: tokens (by the hash of their secret), rules in order, and the one transaction
//! that takes a token's use and adds the host it enrolls.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::{Sqlite, events, hosts};
use crate::model::{
    Clause, EnrollHost, EventKind, NewHost, NewRule, NewToken, Rule, Token, TokenRefusal, TokenUse,
    now_ms,
};
use crate::store::{EnrollStore, Properties, Result, StoreError};

/// A list as stored: a JSON array.
fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt("enrollment list", e.to_string()))
}

/// A list stored as a JSON array.
fn from_json<T: serde::de::DeserializeOwned>(what: &'static str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(what, e.to_string()))
}

/// Stores a token; its id.
pub fn add_token(db: &Connection, token: &NewToken) -> Result<i64> {
    db.execute(
        "INSERT INTO enrollment_tokens (hash, note, uses, expires, groups, created_by, created)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            token.hash,
            token.note,
            token.uses,
            token.expires,
            to_json(&token.groups)?,
            token.created_by,
            now_ms()
        ],
    )?;
    Ok(db.last_insert_rowid())
}

const TOKEN_COLUMNS: &str =
    "id, note, uses, used, expires, groups, revoked, created_by, created, last_used";

/// Every token, by id.
pub fn tokens(db: &Connection) -> Result<Vec<Token>> {
    tokens_where(db, "", params![])
}

fn tokens_where(
    db: &Connection,
    filter: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<Vec<Token>> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM enrollment_tokens {filter} ORDER BY id");
    let mut stmt = db.prepare(&sql)?;
    let rows = stmt
        .query_map(params, |r| {
            Ok((
                Token {
                    id: r.get(0)?,
                    note: r.get(1)?,
                    uses: r.get(2)?,
                    used: r.get(3)?,
                    expires: r.get(4)?,
                    groups: Vec::new(),
                    revoked: r.get(6)?,
                    created_by: r.get(7)?,
                    created: r.get(8)?,
                    last_used: r.get(9)?,
                },
                r.get::<_, String>(5)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(mut token, groups)| {
            token.groups = from_json("token groups", &groups)?;
            Ok(token)
        })
        .collect()
}

/// Revokes a token; the token as it is now.
pub fn revoke_token(db: &Connection, id: i64) -> Result<Token> {
    db.execute(
        "UPDATE enrollment_tokens SET revoked = 1 WHERE id = ?1",
        params![id],
    )?;
    tokens_where(db, "WHERE id = ?1", params![id])?
        .pop()
        .ok_or_else(|| StoreError::NotFound("enrollment token", id.to_string()))
}

/// Stores a rule at its position (those from there on move down one); its id.
pub fn add_rule(db: &Connection, rule: &NewRule) -> Result<i64> {
    let tx = Transaction::new_unchecked(db, TransactionBehavior::Immediate)?;
    let count: u32 = tx.query_row("SELECT count(*) FROM enrollment_rules", [], |r| r.get(0))?;
    let last = count.saturating_add(1);
    let position = rule.position.unwrap_or(last).clamp(1, last);
    tx.execute(
        "UPDATE enrollment_rules SET position = position + 1 WHERE position >= ?1",
        params![position],
    )?;
    tx.execute(
        "INSERT INTO enrollment_rules (position, clauses, groups, trust, created_by, created)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            position,
            to_json(&rule.clauses)?,
            to_json(&rule.groups)?,
            rule.trust,
            rule.created_by,
            now_ms()
        ],
    )?;
    let id = tx.last_insert_rowid();
    tx.commit()?;
    Ok(id)
}

/// Every rule, in the order they are tried.
pub fn rules(db: &Connection) -> Result<Vec<Rule>> {
    let mut stmt = db.prepare(
        "SELECT id, position, clauses, groups, trust, created_by, created
         FROM enrollment_rules ORDER BY position, id",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, u32>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, bool>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, i64>(6)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(
            |(id, position, clauses, groups, trust, created_by, created)| {
                Ok(Rule {
                    id,
                    position,
                    clauses: from_json::<Vec<Clause>>("rule clauses", &clauses)?,
                    groups: from_json("rule groups", &groups)?,
                    trust,
                    created_by,
                    created,
                })
            },
        )
        .collect()
}

/// Removes a rule (those after it move up one); the rule removed.
pub fn remove_rule(db: &Connection, id: i64) -> Result<Rule> {
    let tx = Transaction::new_unchecked(db, TransactionBehavior::Immediate)?;
    let rule = rules(&tx)?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| StoreError::NotFound("enrollment rule", id.to_string()))?;
    tx.execute("DELETE FROM enrollment_rules WHERE id = ?1", params![id])?;
    tx.execute(
        "UPDATE enrollment_rules SET position = position - 1 WHERE position > ?1",
        params![rule.position],
    )?;
    tx.commit()?;
    Ok(rule)
}

/// The token whose hash is `hash`, if it may be used now: its id and groups (as stored), or
/// why not.
fn usable_token(
    db: &Connection,
    hash: &str,
) -> Result<std::result::Result<(i64, String), TokenRefusal>> {
    let token = db
        .query_row(
            "SELECT id, revoked, expires, uses, used, groups FROM enrollment_tokens
             WHERE hash = ?1",
            params![hash],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, bool>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, u32>(3)?,
                    r.get::<_, u32>(4)?,
                    r.get::<_, String>(5)?,
                ))
            },
        )
        .optional()?;
    let Some((id, revoked, expires, uses, used, groups)) = token else {
        return Ok(Err(TokenRefusal::Unknown));
    };
    Ok(if revoked {
        Err(TokenRefusal::Revoked(id))
    } else if expires <= now_ms() {
        Err(TokenRefusal::Expired(id))
    } else if used >= uses {
        Err(TokenRefusal::UsedUp(id))
    } else {
        Ok((id, groups))
    })
}

/// Whether the token whose hash is `hash` may be used now: its id, or why not.
pub fn check_token(db: &Connection, hash: &str) -> Result<std::result::Result<i64, TokenRefusal>> {
    Ok(usable_token(db, hash)?.map(|(id, _)| id))
}

/// Takes one use of the token and adds the host, in one IMMEDIATE transaction: of two
/// enrollments racing for a token's last use (in this process or another on the same file,
/// waiting for each other within the busy timeout), exactly one gets it.
pub fn enroll(
    db: &Connection,
    host: &EnrollHost,
) -> Result<std::result::Result<TokenUse, TokenRefusal>> {
    let tx = Transaction::new_unchecked(db, TransactionBehavior::Immediate)?;
    let (id, token_groups) = match usable_token(&tx, &host.token_hash)? {
        Ok(usable) => usable,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let now = now_ms();
    tx.execute(
        "UPDATE enrollment_tokens SET used = used + 1, last_used = ?2 WHERE id = ?1",
        params![id, now],
    )?;
    hosts::add_host(
        &tx,
        &NewHost {
            name: host.name.clone(),
            address: host.address.clone(),
            port: host.port,
            agent_key: host.trust.then(|| host.agent_key.clone()),
            pin_on_first_contact: false,
        },
    )?;
    if !host.trust {
        tx.execute(
            "UPDATE hosts SET pending_key = ?2 WHERE name = ?1",
            params![host.name, host.agent_key],
        )?;
    }
    tx.execute(
        "INSERT OR REPLACE INTO enrollments (host, properties, at) VALUES (?1, ?2, ?3)",
        params![host.name, to_json(&host.properties)?, now],
    )?;
    let token_groups: Vec<String> = from_json("token groups", &token_groups)?;
    let groups = host.all_groups(&token_groups);
    for g in &groups {
        let made = tx.execute(
            "INSERT OR IGNORE INTO groups (name) VALUES (?1)",
            params![g],
        )?;
        if made > 0 {
            let detail = format!("group {g} added");
            events::log_by(&tx, &host.actor, None, EventKind::GroupChanged, &detail)?;
        }
        tx.execute(
            "INSERT INTO host_groups (host, grp) VALUES (?1, ?2)",
            params![host.name, g],
        )?;
    }
    let (added, detail) = host.event_details(id, &groups);
    events::log_by(
        &tx,
        &host.actor,
        Some(&host.name),
        EventKind::HostAdded,
        &added,
    )?;
    events::log_by(
        &tx,
        &host.actor,
        Some(&host.name),
        EventKind::Enrolled,
        &detail,
    )?;
    tx.commit()?;
    Ok(Ok(TokenUse { token: id, groups }))
}

/// What the agent of each enrolled host reported, by host.
pub fn enrolled_properties(db: &Connection) -> Result<Properties> {
    let mut stmt = db.prepare("SELECT host, properties FROM enrollments")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(host, properties)| Ok((host, from_json("enrolled properties", &properties)?)))
        .collect()
}

#[async_trait]
impl EnrollStore for Sqlite {
    async fn enrolled_properties(&self) -> Result<Properties> {
        self.read(enrolled_properties).await
    }

    async fn check_token(&self, hash: &str) -> Result<std::result::Result<i64, TokenRefusal>> {
        let hash = hash.to_owned();
        self.read(move |db| check_token(db, &hash)).await
    }

    async fn add_token(&self, token: &NewToken) -> Result<i64> {
        let token = token.clone();
        self.call(move |db| add_token(db, &token)).await
    }

    async fn tokens(&self) -> Result<Vec<Token>> {
        self.read(tokens).await
    }

    async fn revoke_token(&self, id: i64) -> Result<Token> {
        self.call(move |db| revoke_token(db, id)).await
    }

    async fn add_rule(&self, rule: &NewRule) -> Result<i64> {
        let rule = rule.clone();
        self.call(move |db| add_rule(db, &rule)).await
    }

    async fn rules(&self) -> Result<Vec<Rule>> {
        self.read(rules).await
    }

    async fn remove_rule(&self, id: i64) -> Result<Rule> {
        self.call(move |db| remove_rule(db, id)).await
    }

    async fn enroll(
        &self,
        host: &EnrollHost,
    ) -> Result<std::result::Result<TokenUse, TokenRefusal>> {
        let host = host.clone();
        self.call(move |db| enroll(db, &host)).await
    }
}
