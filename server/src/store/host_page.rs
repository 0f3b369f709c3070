//! The query of a page of hosts, written once for both dialects: which of a [`HostFilter`]'s
//! filters are given decides the clauses, so that the database walks the names' index and
//! stops at the limit.

use crate::model::{HostFilter, HostState};

/// How a dialect writes what a page of hosts needs.
pub(super) struct Dialect {
    /// What precedes a parameter's number (`?` in SQLite, `$` in PostgreSQL).
    pub placeholder: char,
    /// The name compared by its bytes (`name`; `name COLLATE "C"`).
    pub name_bytes: &'static str,
    /// The function that finds a text in another, from 1, 0 where it is not (`instr`; `strpos`).
    pub find: &'static str,
}

/// The `WHERE`, `ORDER BY` and `LIMIT` of the hosts `filter` keeps, and the texts its
/// parameters stand for, in order; the limit is one more parameter, after them.
pub(super) fn tail<'a>(filter: &'a HostFilter, dialect: &Dialect) -> (String, Vec<&'a String>) {
    let Dialect {
        placeholder: p,
        name_bytes,
        find,
    } = dialect;
    let mut texts = Vec::new();
    let mut clauses = Vec::new();
    if let Some(after) = &filter.after {
        texts.push(after);
        clauses.push(format!("{name_bytes} > {p}{}", texts.len()));
    }
    if let Some(name) = &filter.name {
        texts.push(name);
        clauses.push(format!("{find}(name, {p}{}) > 0", texts.len()));
    }
    if let Some(group) = &filter.group {
        texts.push(group);
        clauses.push(format!(
            "name IN (SELECT host FROM host_groups WHERE grp = {p}{})",
            texts.len()
        ));
    }
    if let Some(state) = filter.state {
        clauses.push(state_clause(state).into());
    }
    let filter = match clauses.is_empty() {
        true => String::new(),
        false => format!("WHERE {} ", clauses.join(" AND ")),
    };
    let tail = format!("{filter}ORDER BY {name_bytes} LIMIT {p}{}", texts.len() + 1);
    (tail, texts)
}

/// The condition on a row of `hosts` that it is in `state`; both dialects keep `reachable` as
/// 0 not, 1 yes, 2 yes but busy, NULL never tried.
fn state_clause(state: HostState) -> &'static str {
    match state {
        HostState::Pending => "pending_key IS NOT NULL",
        HostState::Disabled => "NOT enabled",
        HostState::Reachable => "enabled AND reachable <> 0",
        HostState::Unreachable => "enabled AND reachable = 0",
        HostState::Unknown => "enabled AND reachable IS NULL",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PostgreSQL's way.
    const DOLLARS: Dialect = Dialect {
        placeholder: '$',
        name_bytes: r#"name COLLATE "C""#,
        find: "strpos",
    };

    #[test]
    fn only_the_filters_given_are_in_the_query_numbered_in_order() {
        let all = HostFilter::default();
        let (tail, texts) = tail(&all, &DOLLARS);
        assert_eq!(tail, r#"ORDER BY name COLLATE "C" LIMIT $1"#);
        assert!(texts.is_empty());
        let filter = HostFilter {
            after: Some("a".into()),
            name: Some("r".into()),
            group: Some("lab".into()),
            state: Some(HostState::Unknown),
        };
        let (tail, texts) = super::tail(&filter, &DOLLARS);
        assert_eq!(
            tail,
            r#"WHERE name COLLATE "C" > $1 AND strpos(name, $2) > 0 AND name IN (SELECT host FROM host_groups WHERE grp = $3) AND enabled AND reachable IS NULL ORDER BY name COLLATE "C" LIMIT $4"#
        );
        assert_eq!(texts, ["a", "r", "lab"]);
    }
}
