//! The name rule ([`crate::names`]) where names are made, and the check of the names (and
//! hosts' addresses) a database already holds: an older one may hold names the rule refuses
//! now. Those are reported, never rewritten; they can still be looked up and removed.

use serde::{Deserialize, Serialize};

use crate::names::{self, Kind};
use crate::sanitize;

use super::{Ops, OpsError, Result};

/// Something in the database that breaks a rule of today.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Finding {
    /// What it is: `host`, `group`, `script`, `user` or `variable`.
    pub kind: String,
    /// Its name (a variable's: `NAME (scope)`), as stored.
    pub name: String,
    /// What is wrong with it.
    pub problem: String,
}

impl Ops {
    /// Checks a name about to be made: the rule of its kind, and (but for variables, whose
    /// case matters to the shell) no other name of its kind that differs only in letter case.
    pub(super) async fn check_new_name(&self, kind: Kind, name: &str) -> Result<()> {
        kind.check(name)?;
        let store = self.fleet.store();
        let existing: Vec<String> = match kind {
            Kind::Host => store.hosts().await?.into_iter().map(|h| h.name).collect(),
            Kind::Group => store.groups().await?.into_iter().map(|g| g.name).collect(),
            Kind::Script => store.scripts().await?.into_iter().map(|s| s.name).collect(),
            Kind::User => store.users().await?.into_iter().map(|u| u.name).collect(),
            Kind::Schedule => store
                .schedules()
                .await?
                .into_iter()
                .map(|s| s.name)
                .collect(),
            Kind::Variable => return Ok(()),
        };
        match names::case_clash(name, existing.iter().map(String::as_str)) {
            Some(other) => Err(case_clash(kind, name, other)),
            None => Ok(()),
        }
    }

    /// What the database holds that breaks today's rules: names (hosts, groups, scripts, users,
    /// variables), names of a kind that differ only in letter case, hosts' addresses and ports,
    /// and two hosts at one address and port. Nothing is changed.
    pub async fn check_names(&self) -> Result<Vec<Finding>> {
        let store = self.fleet.store();
        let hosts = store.hosts().await?;
        let lists = [
            (Kind::Host, hosts.iter().map(|h| h.name.clone()).collect()),
            (Kind::Group, names_of(store.groups().await?, |g| g.name)),
            (Kind::Script, names_of(store.scripts().await?, |s| s.name)),
            (Kind::User, names_of(store.users().await?, |u| u.name)),
        ];
        let mut findings = Vec::new();
        for (kind, list) in &lists {
            for (i, name) in list.iter().enumerate() {
                let mut found = |problem: String| {
                    findings.push(Finding {
                        kind: kind.noun().into(),
                        name: name.clone(),
                        problem,
                    })
                };
                if let Err(e) = kind.check(name) {
                    found(e.to_string());
                }
                let before = list.iter().take(i).map(String::as_str);
                if let Some(other) = names::case_clash(name, before) {
                    found(case_clash(*kind, name, other).to_string());
                }
            }
        }
        for (i, host) in hosts.iter().enumerate() {
            let mut found = |problem: String| {
                findings.push(Finding {
                    kind: Kind::Host.noun().into(),
                    name: host.name.clone(),
                    problem,
                })
            };
            let checked = names::check_address(&host.address).and(names::check_port(host.port));
            if let Err(e) = checked {
                found(e.to_string());
            }
            let place = names::same_place(&host.address);
            if let Some(other) = hosts
                .iter()
                .take(i)
                .find(|o| o.port == host.port && names::same_place(&o.address) == place)
            {
                found(same_address(&other.name, &host.address, host.port));
            }
        }
        for var in store.env(None).await? {
            if let Err(e) = Kind::Variable.check(&var.name) {
                findings.push(Finding {
                    kind: Kind::Variable.noun().into(),
                    name: format!("{} ({})", var.name, var.scope),
                    problem: e.to_string(),
                });
            }
        }
        Ok(findings)
    }
}

fn names_of<T>(items: Vec<T>, name: impl Fn(T) -> String) -> Vec<String> {
    items.into_iter().map(name).collect()
}

/// The conflict of `name` with `other`, a name of its kind that differs only in letter case.
pub(super) fn case_clash(kind: Kind, name: &str, other: &str) -> OpsError {
    OpsError::Conflict(format!(
        "`{}` differs from the {} `{}` only in letter case: choose another name",
        sanitize::field(name, 80),
        kind.noun(),
        sanitize::field(other, 80)
    ))
}

/// What is said of a host at `address`:`port`, where `other` is already.
pub(super) fn same_address(other: &str, address: &str, port: u16) -> String {
    format!(
        "the host `{}` is already at {}:{port}",
        sanitize::field(other, 80),
        sanitize::field(address, 80)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::fixture;

    #[tokio::test]
    async fn an_older_database_is_reported_not_rewritten() {
        let (dir, ops) = fixture().await;
        rusqlite::Connection::open(dir.path().join("otto.db"))
            .unwrap()
            .execute_batch(
                "INSERT INTO hosts (name, address, port) VALUES ('../x', 'a b', 0);
                 INSERT INTO hosts (name, address, port) VALUES ('R1', '192.0.2.1', 1);
                 INSERT INTO hosts (name, address, port) VALUES ('r1', '192.0.2.1', 1);
                 INSERT INTO groups (name) VALUES ('');
                 INSERT INTO scripts (name, interpreter, body) VALUES ('a/b', '/bin/sh', x'');",
            )
            .unwrap();
        assert!(ops.check_new_name(Kind::Group, "lab").await.is_ok());
        let got: Vec<(String, String)> = ops
            .check_names()
            .await
            .unwrap()
            .into_iter()
            .map(|f| (f.kind, f.name))
            .collect();
        let want = [
            ("host", "../x"),
            ("host", "r1"),
            ("group", ""),
            ("script", "a/b"),
            ("host", "../x"),
            ("host", "r1"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, n)| (k.to_string(), n.to_string()))
            .collect();
        assert_eq!(got, want);
        // Nothing was rewritten, and a new name like an old one is refused.
        assert_eq!(ops.hosts().await.unwrap().len(), 3);
        let clash = ops.check_new_name(Kind::Host, "X").await;
        assert!(clash.is_ok(), "`../x` is no case clash of `X`");
        let clash = ops.check_new_name(Kind::Script, "A/B").await.unwrap_err();
        assert_eq!(clash.kind(), crate::ops::ErrorKind::Invalid);

        // What an older database holds can still be replaced and removed; nothing new like it
        // can be made.
        let mut script = ops.script("a/b").await.unwrap().script;
        script.body = b"true".to_vec();
        ops.save_script(&script, true).await.unwrap();
        script.name = "c/d".into();
        let refused = ops.save_script(&script, true).await.unwrap_err();
        assert_eq!(refused.kind(), crate::ops::ErrorKind::Invalid);
        ops.remove_script("a/b", false).await.unwrap();
        ops.remove_group("", false).await.unwrap();
        assert!(ops.add_group("").await.is_err());
        assert_eq!(
            ops.remove_host("../x", false).await.unwrap(),
            super::super::Removal::RowOnly
        );
        assert_eq!(
            ops.check_names().await.unwrap().len(),
            2,
            "R1 and r1 are left"
        );
    }
}
