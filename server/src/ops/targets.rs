//! Which hosts an operation addresses, resolved to the enabled hosts it names, and the fan-out
//! that works on all of them at once.

use std::future::Future;

use serde::Serialize;
use tokio::task::JoinSet;

use super::{Ops, OpsError, Result};
use crate::model::{EventKind, Host};

/// Which hosts an operation addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    /// Every enabled host.
    pub all: bool,
    /// These hosts.
    pub hosts: Vec<String>,
    /// The members of these groups.
    pub groups: Vec<String>,
}

impl Targets {
    /// Every enabled host.
    pub fn all() -> Targets {
        Targets {
            all: true,
            ..Targets::default()
        }
    }

    /// These hosts.
    pub fn hosts(names: impl IntoIterator<Item = impl Into<String>>) -> Targets {
        Targets {
            hosts: names.into_iter().map(Into::into).collect(),
            ..Targets::default()
        }
    }

    /// Whether nothing was named.
    pub fn is_empty(&self) -> bool {
        !self.all && self.hosts.is_empty() && self.groups.is_empty()
    }
}

impl Ops {
    /// The enabled hosts `targets` names, each once, by name: at least one. Naming nothing, or
    /// only disabled hosts, is [`OpsError::Invalid`]; a name that does not exist, NotFound.
    pub async fn resolve(&self, targets: &Targets) -> Result<Vec<Host>> {
        if targets.is_empty() {
            return Err(OpsError::Invalid(
                "name the hosts: --host HOST, --group GROUP or --all".into(),
            ));
        }
        let hosts = self.enabled(targets).await?;
        if hosts.is_empty() {
            return Err(OpsError::Invalid("no enabled host matches".into()));
        }
        Ok(hosts)
    }

    /// The enabled hosts `targets` names, each once, by name (perhaps none).
    pub(super) async fn enabled(&self, targets: &Targets) -> Result<Vec<Host>> {
        let store = self.fleet.store();
        let mut hosts = if targets.all {
            store.hosts().await?
        } else {
            Vec::new()
        };
        for name in &targets.hosts {
            hosts.push(store.host(name).await?);
        }
        for group in &targets.groups {
            hosts.extend(store.group_hosts(group).await?);
        }
        hosts.sort_by(|a, b| a.name.cmp(&b.name));
        hosts.dedup_by(|a, b| a.name == b.name);
        hosts.retain(|h| h.enabled);
        Ok(hosts)
    }

    /// Runs `f` for every host concurrently, each with its own handle on these operations;
    /// results in the hosts' order.
    pub(super) async fn for_each<T, F, Fut>(&self, hosts: Vec<Host>, f: F) -> Vec<T>
    where
        T: Send + 'static,
        F: Fn(Ops, Host) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        let mut tasks = JoinSet::new();
        let count = hosts.len();
        for (i, host) in hosts.into_iter().enumerate() {
            let fut = f(self.clone(), host);
            tasks.spawn(async move { (i, fut.await) });
        }
        let mut results: Vec<Option<T>> = (0..count).map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((i, value)) => {
                    if let Some(slot) = results.get_mut(i) {
                        *slot = Some(value);
                    }
                }
                Err(e) => tracing::error!("a host's task failed: {e}"),
            }
        }
        results.into_iter().flatten().collect()
    }
}

/// The result of a simple operation on one host.
#[derive(Debug, Clone, Serialize)]
pub struct Done {
    /// The host.
    pub host: String,
    /// Whether it worked.
    pub success: bool,
    /// What happened, in words.
    pub detail: String,
}

impl Done {
    /// `host`'s result: what happened, or why it failed.
    pub(super) fn new(host: String, result: std::result::Result<String, String>) -> Done {
        match result {
            Ok(detail) => Done {
                host,
                success: true,
                detail,
            },
            Err(detail) => Done {
                host,
                success: false,
                detail,
            },
        }
    }
}

impl Ops {
    /// Records a change made on `host` by one host's task of a fan-out, whose result is the
    /// host's outcome: a failure to record is logged, not returned.
    pub(super) async fn note(&self, host: &str, kind: EventKind, detail: &str) {
        if let Err(e) = self.record(Some(host), kind, detail).await {
            tracing::error!(host, "cannot record {}: {e}", kind.as_str());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::ErrorKind;
    use super::super::testing::fleet;
    use super::*;

    #[tokio::test]
    async fn targets_resolve_to_enabled_hosts_each_once_by_name() {
        let (_dir, ops) = fleet(&["b", "a", "off"]).await;
        let store = ops.fleet.store();
        store.add_group("g").await.unwrap();
        store.set_membership("g", "b", true).await.unwrap();
        store.set_membership("g", "off", true).await.unwrap();
        store.set_enabled("off", false).await.unwrap();
        let both = Targets {
            hosts: vec!["b".into(), "a".into()],
            groups: vec!["g".into()],
            ..Targets::default()
        };
        let names = |hosts: Vec<Host>| hosts.into_iter().map(|h| h.name).collect::<Vec<_>>();
        assert_eq!(names(ops.resolve(&both).await.unwrap()), ["a", "b"]);
        assert_eq!(
            names(ops.resolve(&Targets::all()).await.unwrap()),
            ["a", "b"]
        );

        let none = ops.resolve(&Targets::default()).await.unwrap_err();
        assert_eq!(none.kind(), ErrorKind::Invalid);
        assert_eq!(
            none.to_string(),
            "name the hosts: --host HOST, --group GROUP or --all"
        );
        let disabled = ops.resolve(&Targets::hosts(["off"])).await.unwrap_err();
        assert_eq!(disabled.kind(), ErrorKind::Invalid);
        assert_eq!(disabled.to_string(), "no enabled host matches");
        let missing = ops.resolve(&Targets::hosts(["nope"])).await.unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::NotFound);
    }
}
