//! Enrollment: tokens (by the hash of their secret), rules in order, and the one transaction
//! that takes a token's use and adds the host it enrolls.
//!
//! Across servers: an enrollment locks its token's row (`FOR UPDATE`) before it counts the
//! uses left, so enrollments racing for a token's last use take it one after the other and
//! exactly one gets it; the rules' writers lock their table against each other, so positions
//! stay 1, 2, 3… whatever number of servers add and remove rules at once.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::{Postgres, corrupt, events, hosts};
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

/// A count stored as BIGINT, as the model's `u32`.
fn count(what: &'static str, value: i64) -> Result<u32> {
    u32::try_from(value).map_err(|_| corrupt(what, value))
}

/// Makes the rules' writers wait for each other (readers do not wait): the lock is held to
/// the end of the transaction `tx`.
async fn lock_rules(tx: &impl GenericClient) -> Result<()> {
    tx.batch_execute("LOCK TABLE enrollment_rules IN SHARE ROW EXCLUSIVE MODE")
        .await?;
    Ok(())
}

/// Stores a token; its id.
pub async fn add_token(db: &impl GenericClient, token: &NewToken) -> Result<i64> {
    let row = db
        .query_one(
            "INSERT INTO enrollment_tokens (hash, note, uses, expires, groups, created_by, created)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            &[
                &token.hash,
                &token.note,
                &i64::from(token.uses),
                &token.expires,
                &to_json(&token.groups)?,
                &token.created_by,
                &now_ms(),
            ],
        )
        .await?;
    Ok(row.get(0))
}

/// The columns [`token_of`] reads, in its order.
const TOKEN_COLUMNS: &str =
    "id, note, uses, used, expires, groups, revoked, created_by, created, last_used";

/// A token from a row of [`TOKEN_COLUMNS`].
fn token_of(r: &Row) -> Result<Token> {
    let groups: String = r.get(5);
    Ok(Token {
        id: r.get(0),
        note: r.get(1),
        uses: count("token uses", r.get(2))?,
        used: count("token uses", r.get(3))?,
        expires: r.get(4),
        groups: from_json("token groups", &groups)?,
        revoked: r.get(6),
        created_by: r.get(7),
        created: r.get(8),
        last_used: r.get(9),
    })
}

/// Every token, by id.
pub async fn tokens(db: &impl GenericClient) -> Result<Vec<Token>> {
    let rows = db
        .query(
            &format!("SELECT {TOKEN_COLUMNS} FROM enrollment_tokens ORDER BY id"),
            &[],
        )
        .await?;
    rows.iter().map(token_of).collect()
}

/// Revokes a token; the token as it is now.
pub async fn revoke_token(db: &impl GenericClient, id: i64) -> Result<Token> {
    let row = db
        .query_opt(
            &format!(
                "UPDATE enrollment_tokens SET revoked = TRUE WHERE id = $1 RETURNING {TOKEN_COLUMNS}"
            ),
            &[&id],
        )
        .await?
        .ok_or_else(|| StoreError::NotFound("enrollment token", id.to_string()))?;
    token_of(&row)
}

/// Stores a rule at its position (those from there on move down one), in one transaction
/// that holds the rules' writers' lock; its id.
pub async fn add_rule(db: &Postgres, rule: &NewRule) -> Result<i64> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    lock_rules(&tx).await?;
    let count: i64 = tx
        .query_one("SELECT count(*) FROM enrollment_rules", &[])
        .await?
        .get(0);
    let last = count.saturating_add(1);
    let position = rule.position.map_or(last, i64::from).clamp(1, last);
    tx.execute(
        "UPDATE enrollment_rules SET position = position + 1 WHERE position >= $1",
        &[&position],
    )
    .await?;
    let id: i64 = tx
        .query_one(
            "INSERT INTO enrollment_rules (position, clauses, groups, trust, created_by, created)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[
                &position,
                &to_json(&rule.clauses)?,
                &to_json(&rule.groups)?,
                &rule.trust,
                &rule.created_by,
                &now_ms(),
            ],
        )
        .await?
        .get(0);
    tx.commit().await?;
    Ok(id)
}

/// The columns [`rule_of`] reads, in its order.
const RULE_COLUMNS: &str = "id, position, clauses, groups, trust, created_by, created";

/// A rule from a row of [`RULE_COLUMNS`].
fn rule_of(r: &Row) -> Result<Rule> {
    let clauses: String = r.get(2);
    let groups: String = r.get(3);
    Ok(Rule {
        id: r.get(0),
        position: count("rule position", r.get(1))?,
        clauses: from_json::<Vec<Clause>>("rule clauses", &clauses)?,
        groups: from_json("rule groups", &groups)?,
        trust: r.get(4),
        created_by: r.get(5),
        created: r.get(6),
    })
}

/// Every rule, in the order they are tried.
pub async fn rules(db: &impl GenericClient) -> Result<Vec<Rule>> {
    let rows = db
        .query(
            &format!("SELECT {RULE_COLUMNS} FROM enrollment_rules ORDER BY position, id"),
            &[],
        )
        .await?;
    rows.iter().map(rule_of).collect()
}

/// Removes a rule (those after it move up one), in one transaction that holds the rules'
/// writers' lock; the rule removed.
pub async fn remove_rule(db: &Postgres, id: i64) -> Result<Rule> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    lock_rules(&tx).await?;
    let row = tx
        .query_opt(
            &format!("DELETE FROM enrollment_rules WHERE id = $1 RETURNING {RULE_COLUMNS}"),
            &[&id],
        )
        .await?
        .ok_or_else(|| StoreError::NotFound("enrollment rule", id.to_string()))?;
    let rule = rule_of(&row)?;
    tx.execute(
        "UPDATE enrollment_rules SET position = position - 1 WHERE position > $1",
        &[&i64::from(rule.position)],
    )
    .await?;
    tx.commit().await?;
    Ok(rule)
}

/// The token whose hash is `hash`, if it may be used now: its id and groups (as stored), or
/// why not. With `lock`, its row is locked (`FOR UPDATE`) to the end of the transaction `db`,
/// so no other enrollment takes a use of it meanwhile.
async fn usable_token(
    db: &impl GenericClient,
    hash: &str,
    lock: bool,
) -> Result<std::result::Result<(i64, String), TokenRefusal>> {
    let sql = format!(
        "SELECT id, revoked, expires, uses, used, groups FROM enrollment_tokens WHERE hash = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let Some(r) = db.query_opt(&sql, &[&hash]).await? else {
        return Ok(Err(TokenRefusal::Unknown));
    };
    let id: i64 = r.get(0);
    let revoked: bool = r.get(1);
    let expires: i64 = r.get(2);
    let uses: i64 = r.get(3);
    let used: i64 = r.get(4);
    Ok(if revoked {
        Err(TokenRefusal::Revoked(id))
    } else if expires <= now_ms() {
        Err(TokenRefusal::Expired(id))
    } else if used >= uses {
        Err(TokenRefusal::UsedUp(id))
    } else {
        Ok((id, r.get(5)))
    })
}

/// Whether the token whose hash is `hash` may be used now: its id, or why not.
pub async fn check_token(
    db: &impl GenericClient,
    hash: &str,
) -> Result<std::result::Result<i64, TokenRefusal>> {
    Ok(usable_token(db, hash, false).await?.map(|(id, _)| id))
}

/// Takes one use of the token and adds the host, in one transaction that locks the token's
/// row first: of enrollments racing for a token's last use (on any server of the database),
/// exactly one gets it. A refusal, or a host that cannot be added (its name taken), changes
/// nothing.
pub async fn enroll(
    db: &Postgres,
    host: &EnrollHost,
) -> Result<std::result::Result<TokenUse, TokenRefusal>> {
    let mut client = db.client().await?;
    let tx = client.transaction().await?;
    let (id, token_groups) = match usable_token(&tx, &host.token_hash, true).await? {
        Ok(usable) => usable,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let now = now_ms();
    tx.execute(
        "UPDATE enrollment_tokens SET used = used + 1, last_used = $2 WHERE id = $1",
        &[&id, &now],
    )
    .await?;
    hosts::add_host(
        &tx,
        &NewHost {
            name: host.name.clone(),
            address: host.address.clone(),
            port: host.port,
            agent_key: host.trust.then(|| host.agent_key.clone()),
            pin_on_first_contact: false,
        },
    )
    .await?;
    if !host.trust {
        tx.execute(
            "UPDATE hosts SET pending_key = $2 WHERE name = $1",
            &[&host.name, &host.agent_key],
        )
        .await?;
    }
    tx.execute(
        "INSERT INTO enrollments (host, properties, at) VALUES ($1, $2, $3)
         ON CONFLICT (host) DO UPDATE SET properties = EXCLUDED.properties, at = EXCLUDED.at",
        &[&host.name, &to_json(&host.properties)?, &now],
    )
    .await?;
    let token_groups: Vec<String> = from_json("token groups", &token_groups)?;
    let groups = host.all_groups(&token_groups);
    for g in &groups {
        let made = tx
            .execute(
                "INSERT INTO groups (name) VALUES ($1) ON CONFLICT DO NOTHING",
                &[g],
            )
            .await?;
        if made > 0 {
            let detail = format!("group {g} added");
            events::log_by(&tx, &host.actor, None, EventKind::GroupChanged, &detail).await?;
        }
        tx.execute(
            "INSERT INTO host_groups (host, grp) VALUES ($1, $2)",
            &[&host.name, g],
        )
        .await?;
    }
    let (added, detail) = host.event_details(id, &groups);
    events::log_by(
        &tx,
        &host.actor,
        Some(&host.name),
        EventKind::HostAdded,
        &added,
    )
    .await?;
    events::log_by(
        &tx,
        &host.actor,
        Some(&host.name),
        EventKind::Enrolled,
        &detail,
    )
    .await?;
    tx.commit().await?;
    Ok(Ok(TokenUse { token: id, groups }))
}

/// What the agent of each enrolled host reported, by host.
pub async fn enrolled_properties(db: &impl GenericClient) -> Result<Properties> {
    let rows = db
        .query("SELECT host, properties FROM enrollments", &[])
        .await?;
    rows.iter()
        .map(|r| {
            let properties: String = r.get(1);
            Ok((r.get(0), from_json("enrolled properties", &properties)?))
        })
        .collect()
}

#[async_trait]
impl EnrollStore for Postgres {
    async fn add_token(&self, token: &NewToken) -> Result<i64> {
        add_token(&self.client().await?, token).await
    }

    async fn tokens(&self) -> Result<Vec<Token>> {
        tokens(&self.client().await?).await
    }

    async fn revoke_token(&self, id: i64) -> Result<Token> {
        revoke_token(&self.client().await?, id).await
    }

    async fn add_rule(&self, rule: &NewRule) -> Result<i64> {
        add_rule(self, rule).await
    }

    async fn rules(&self) -> Result<Vec<Rule>> {
        rules(&self.client().await?).await
    }

    async fn remove_rule(&self, id: i64) -> Result<Rule> {
        remove_rule(self, id).await
    }

    async fn enroll(
        &self,
        host: &EnrollHost,
    ) -> Result<std::result::Result<TokenUse, TokenRefusal>> {
        enroll(self, host).await
    }

    async fn enrolled_properties(&self) -> Result<Properties> {
        enrolled_properties(&self.client().await?).await
    }

    async fn check_token(&self, hash: &str) -> Result<std::result::Result<i64, TokenRefusal>> {
        check_token(&self.client().await?, hash).await
    }
}
