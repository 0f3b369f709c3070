//! What importing an inventory changes: for each host it wants, whether to add it, move it to
//! another address or port, put it in more groups, or leave it. An import only adds: it takes
//! no host out of a group and removes no host.

use serde::{Deserialize, Serialize};

use super::Wanted;
use crate::model::Host;

/// What happens to one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// It is new: added, with its groups.
    Add,
    /// It exists at another address or port (a conflict): moved to the inventory's.
    Update,
    /// It exists where the inventory says, but not in all its groups: put in them.
    Join,
    /// Nothing to do.
    Unchanged,
}

/// One host of an import's plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Step {
    /// The host.
    pub host: String,
    /// Its address as the inventory gives it.
    pub address: String,
    /// The agent's port as the inventory gives it.
    pub port: u16,
    /// What happens to it.
    pub change: Change,
    /// Where it was before, for an update: `ADDRESS:PORT`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub was: Option<String>,
    /// The groups it is put in (all of the inventory's for a new host).
    pub join: Vec<String>,
}

/// The plan that brings `existing` hosts to what `wanted` says, one step per wanted host.
pub fn plan(wanted: &[Wanted], existing: &[Host]) -> Vec<Step> {
    wanted
        .iter()
        .map(|w| {
            let now = existing.iter().find(|h| h.name == w.name.as_str());
            let join: Vec<String> = w
                .groups
                .iter()
                .filter(|g| now.is_none_or(|h| !h.groups.contains(g)))
                .cloned()
                .collect();
            let (change, was) = match now {
                None => (Change::Add, None),
                Some(h) if (h.address.as_str(), h.port) != (w.address.as_str(), w.port) => {
                    (Change::Update, Some(format!("{}:{}", h.address, h.port)))
                }
                Some(_) if !join.is_empty() => (Change::Join, None),
                Some(_) => (Change::Unchanged, None),
            };
            Step {
                host: w.name.to_string(),
                address: w.address.clone(),
                port: w.port,
                change,
                was,
                join,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::names::HostName;

    fn wanted(name: &str, address: &str, groups: &[&str]) -> Wanted {
        Wanted {
            place: "line 1".into(),
            name: HostName::parse(name).unwrap(),
            address: address.into(),
            port: 12444,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    fn host(name: &str, address: &str, port: u16, groups: &[&str]) -> Host {
        Host::example(name, address, port, groups)
    }

    #[test]
    fn each_host_is_added_moved_joined_or_left() {
        let existing = [
            host("r2", "10.0.0.6", 12444, &["routers"]),
            host("r3", "10.0.0.7", 12444, &["routers"]),
            host("r4", "10.0.0.8", 2222, &[]),
            host("other", "10.9.9.9", 12444, &["x"]),
        ];
        let steps = plan(
            &[
                wanted("r1", "10.0.0.5", &["routers"]),
                wanted("r2", "10.0.0.6", &["routers"]),
                wanted("r3", "10.0.0.7", &["core", "routers"]),
                wanted("r4", "10.0.0.8", &["core"]),
            ],
            &existing,
        );
        let got: Vec<_> = steps
            .iter()
            .map(|s| {
                (
                    s.host.as_str(),
                    s.change,
                    s.was.as_deref(),
                    s.join.join(","),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("r1", Change::Add, None, "routers".into()),
                ("r2", Change::Unchanged, None, String::new()),
                ("r3", Change::Join, None, "core".into()),
                ("r4", Change::Update, Some("10.0.0.8:2222"), "core".into()),
            ]
        );
    }
}
