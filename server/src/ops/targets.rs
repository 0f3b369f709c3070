//! Which hosts an operation addresses, resolved to the enabled hosts it names, and the fan-out
//! that works on them: at most the fleet's dial limit at once, in the batches of the
//! operation's [`Rollout`](super::Rollout), skipping the rest once too many have failed.

use std::future::Future;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{Missing, Ops, OpsError, Ping, Result, RunResult};
use crate::fleet::Untrusted;
use crate::model::{EventKind, Host};
use crate::patterns::{self, Glob};
use crate::selectors::Selector;

/// Which hosts an operation addresses. A host or a group is named by its name or by a glob
/// over names (`ap-*`, `r?`, `[ab]*`: see [`crate::patterns`]). The API's requests take its
/// fields among their own (`#[serde(flatten)]`), each optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Targets {
    /// Every enabled host.
    pub all: bool,
    /// These hosts: names or globs (`ap-*`).
    pub hosts: Vec<String>,
    /// The members of these groups: names or globs (one that matches no group is an error).
    pub groups: Vec<String>,
    /// But not these hosts: names or globs (one that matches nothing is no error).
    pub exclude: Vec<String>,
    /// Nor the members of these groups: names or globs (one that matches nothing is no error).
    pub exclude_groups: Vec<String>,
    /// Only those whose facts match every one of these selectors (`arch=mips`,
    /// `kernel~^5\.`, `flash_free<2MiB`, `version!=0.3.1`: see [`crate::selectors`]); given
    /// alone, they choose among every enabled host. A host without facts yet is left out,
    /// and [`Ops::selection`] says which.
    #[serde(rename = "where")]
    #[schema(max_items = 16)]
    pub selectors: Vec<String>,
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

    /// Whether nothing was named (exclusions alone name nothing; selectors alone choose among
    /// every enabled host).
    pub fn is_empty(&self) -> bool {
        !self.all && self.hosts.is_empty() && self.groups.is_empty() && self.selectors.is_empty()
    }
}

/// The hosts a choice of [`Targets`] makes, and those its fact selectors could not judge.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Selection {
    /// The enabled hosts chosen, by name.
    pub hosts: Vec<String>,
    /// The hosts the names and groups chose that the `where` selectors left out because their
    /// agent has not reported the fact yet (never answered a heartbeat, or no version): they
    /// are neither chosen nor refused.
    pub left_out: Vec<String>,
}

impl Selection {
    /// What to tell of the hosts left out, if any: how many and which.
    pub fn note(&self) -> Option<String> {
        const SHOWN: usize = 10;
        let n = self.left_out.len();
        if n == 0 {
            return None;
        }
        let shown: Vec<&str> = self
            .left_out
            .iter()
            .take(SHOWN)
            .map(String::as_str)
            .collect();
        let mut names = shown.join(", ");
        if n > SHOWN {
            names.push_str(&format!(" and {} more", n - SHOWN));
        }
        let hosts = if n == 1 { "host" } else { "hosts" };
        Some(format!(
            "{n} {hosts} left out: no facts reported yet for the --where selectors: {names}"
        ))
    }
}

/// A host's name or a glob, as [`Targets`] gives them.
enum Pattern<'a> {
    Name(&'a str),
    Glob(&'a str, Glob),
}

impl Pattern<'_> {
    fn parse(text: &str) -> Result<Pattern<'_>> {
        if patterns::is_glob(text) {
            let glob = Glob::parse(text).map_err(|e| OpsError::Invalid(e.to_string()))?;
            Ok(Pattern::Glob(text, glob))
        } else {
            Ok(Pattern::Name(text))
        }
    }

    fn matches(&self, name: &str) -> bool {
        match self {
            Pattern::Name(n) => *n == name,
            Pattern::Glob(_, glob) => glob.matches(name),
        }
    }
}

impl Ops {
    /// The enabled hosts `targets` names, each once, by name: at least one. Naming nothing, or
    /// only disabled or excluded hosts, is [`OpsError::Invalid`]; a name that does not exist,
    /// or a glob that matches no host, NotFound.
    pub async fn resolve(&self, targets: &Targets) -> Result<Vec<Host>> {
        if targets.is_empty() {
            return Err(OpsError::Missing(Missing::NoHosts { script: None }));
        }
        let (hosts, left_out) = self.select(targets).await?;
        if hosts.is_empty() {
            let selection = Selection {
                hosts: Vec::new(),
                left_out: left_out.into_iter().map(|h| h.name).collect(),
            };
            let why = match selection.note() {
                Some(note) => format!("no enabled host matches; {note}"),
                None => "no enabled host matches".into(),
            };
            return Err(OpsError::Invalid(why));
        }
        Ok(hosts)
    }

    /// The enabled hosts `targets` names, each once, by name (perhaps none).
    pub(super) async fn enabled(&self, targets: &Targets) -> Result<Vec<Host>> {
        Ok(self.select(targets).await?.0)
    }

    /// The hosts `targets` chooses, and those its fact selectors could not judge; naming
    /// nothing chooses nothing. Recorded nowhere: what is then done with them is.
    pub async fn selection(&self, targets: &Targets) -> Result<Selection> {
        let (hosts, left_out) = if targets.is_empty() {
            Default::default()
        } else {
            self.select(targets).await?
        };
        Ok(Selection {
            hosts: hosts.into_iter().map(|h| h.name).collect(),
            left_out: left_out.into_iter().map(|h| h.name).collect(),
        })
    }

    /// The enabled hosts `targets` names whose facts its selectors match, each once, by name;
    /// and the enabled hosts named that the selectors could not judge (no facts yet).
    async fn select(&self, targets: &Targets) -> Result<(Vec<Host>, Vec<Host>)> {
        let selectors = Selector::parse_all(&targets.selectors)
            .map_err(|e| OpsError::Invalid(e.to_string()))?;
        let mut hosts = self.named(targets).await?;
        let mut left_out = Vec::new();
        if !selectors.is_empty() {
            let mut chosen = Vec::with_capacity(hosts.len());
            for host in hosts {
                let judged: Option<Vec<bool>> =
                    selectors.iter().map(|s| s.judge(&host.status)).collect();
                match judged {
                    Some(all) if all.iter().all(|&b| b) => chosen.push(host),
                    Some(_) => {}
                    None => left_out.push(host),
                }
            }
            hosts = chosen;
        }
        Ok((hosts, left_out))
    }

    /// The enabled hosts `targets` names (every one when only selectors are given), each once,
    /// by name.
    async fn named(&self, targets: &Targets) -> Result<Vec<Host>> {
        let only_selectors = !targets.selectors.is_empty()
            && !targets.all
            && targets.hosts.is_empty()
            && targets.groups.is_empty();
        let all = targets.all || only_selectors;
        let store = self.fleet.store();
        let named = targets
            .hosts
            .iter()
            .map(|t| Pattern::parse(t))
            .collect::<Result<Vec<_>>>()?;
        let excluded = targets
            .exclude
            .iter()
            .map(|t| Pattern::parse(t))
            .collect::<Result<Vec<_>>>()?;
        let every = if all || named.iter().any(|p| matches!(p, Pattern::Glob(..))) {
            store.hosts().await?
        } else {
            Vec::new()
        };
        let mut hosts = if all { every.clone() } else { Vec::new() };
        for pattern in &named {
            match pattern {
                Pattern::Name(name) => hosts.push(store.host(name).await?),
                Pattern::Glob(text, glob) => {
                    let before = hosts.len();
                    hosts.extend(every.iter().filter(|h| glob.matches(&h.name)).cloned());
                    if hosts.len() == before {
                        return Err(OpsError::NoMatch(text.to_string()));
                    }
                }
            }
        }
        for group in self.groups_named(&targets.groups, true).await? {
            hosts.extend(store.group_hosts(&group).await?);
        }
        let mut left_out = Vec::new();
        for group in self.groups_named(&targets.exclude_groups, false).await? {
            left_out.extend(store.group_hosts(&group).await?.into_iter().map(|h| h.name));
        }
        hosts.sort_by(|a, b| a.name.cmp(&b.name));
        hosts.dedup_by(|a, b| a.name == b.name);
        hosts.retain(|h| {
            h.enabled && !excluded.iter().any(|p| p.matches(&h.name)) && !left_out.contains(&h.name)
        });
        Ok(hosts)
    }

    /// The groups `patterns` name (names or globs), each once. A glob that matches no group is
    /// [`OpsError::NoGroupMatch`] if `required`, else nothing; a name is checked where it is
    /// used.
    async fn groups_named(&self, patterns: &[String], required: bool) -> Result<Vec<String>> {
        let patterns = patterns
            .iter()
            .map(|t| Pattern::parse(t))
            .collect::<Result<Vec<_>>>()?;
        let every = if patterns.iter().any(|p| matches!(p, Pattern::Glob(..))) {
            self.fleet.store().groups().await?
        } else {
            Vec::new()
        };
        let mut groups = Vec::new();
        for pattern in &patterns {
            match pattern {
                Pattern::Name(name) => groups.push(name.to_string()),
                Pattern::Glob(text, glob) => {
                    let before = groups.len();
                    groups.extend(
                        every
                            .iter()
                            .filter(|g| glob.matches(&g.name))
                            .map(|g| g.name.clone()),
                    );
                    if required && groups.len() == before {
                        return Err(OpsError::NoGroupMatch(text.to_string()));
                    }
                }
            }
        }
        groups.sort();
        groups.dedup();
        Ok(groups)
    }

    /// Runs `f` for every host, each with its own handle on these operations: at most the
    /// fleet's dial limit at once, batch after batch as the rollout says; once more hosts have
    /// failed than it allows, or once the operation is cancelled, the hosts not started are
    /// [`HostResult::skipped`]. Results in the hosts' order.
    pub(super) async fn for_each<T, F, Fut>(&self, hosts: Vec<Host>, f: F) -> Vec<T>
    where
        T: HostResult + Send + 'static,
        F: Fn(Ops, Host) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        self.for_each_reporting(hosts, f, |_| {}).await
    }

    /// [`Ops::for_each`], giving each host's result to `ended` as soon as the host is done
    /// with, skipped hosts included: whoever follows the operation sees every host end.
    pub(super) async fn for_each_reporting<T, F, Fut>(
        &self,
        hosts: Vec<Host>,
        f: F,
        ended: impl Fn(&T),
    ) -> Vec<T>
    where
        T: HostResult + Send + 'static,
        F: Fn(Ops, Host) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        let total = hosts.len();
        let slots = Arc::new(Semaphore::new(self.fleet.dial_limit()));
        let mut results = Vec::with_capacity(total);
        let mut failed = 0;
        let mut hosts = hosts.into_iter();
        for size in self.rollout.batches(total) {
            if self.rollout.exceeded(failed, total) || self.cancellation.is_cancelled() {
                break;
            }
            let batch = self
                .batch(hosts.by_ref().take(size), &f, &slots, &ended)
                .await;
            failed += batch.iter().filter(|r| !r.succeeded()).count();
            results.extend(batch);
        }
        let why = if self.cancellation.is_cancelled() {
            NOT_STARTED.to_string()
        } else {
            format!("skipped: {failed} of {total} hosts had failed, more than allowed")
        };
        for host in hosts {
            let skipped = T::skipped(host.name, &why);
            ended(&skipped);
            results.push(skipped);
        }
        results
    }

    /// Runs `f` for `hosts` concurrently, each once it has one of `slots` (or skips it if the
    /// operation was cancelled meanwhile), giving each result to `ended` as it comes; results
    /// in the hosts' order.
    async fn batch<T, F, Fut>(
        &self,
        hosts: impl Iterator<Item = Host>,
        f: &F,
        slots: &Arc<Semaphore>,
        ended: &impl Fn(&T),
    ) -> Vec<T>
    where
        T: HostResult + Send + 'static,
        F: Fn(Ops, Host) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        let mut tasks = JoinSet::new();
        let mut count = 0;
        for (i, host) in hosts.enumerate() {
            let name = host.name.clone();
            let fut = f(self.clone(), host);
            let (slots, cancellation) = (slots.clone(), self.cancellation.clone());
            let fleet = self.fleet.clone();
            tasks.spawn(async move {
                // The semaphore is never closed, so a permit always comes.
                let _slot = slots.acquire_owned().await;
                if cancellation.is_cancelled() {
                    return (i, T::skipped(name, NOT_STARTED));
                }
                let mut result = fut.await;
                if !result.succeeded()
                    && let Some(untrusted) = fleet.unreached_as(&name).await
                {
                    result.mark_unreached(untrusted);
                }
                (i, result)
            });
            count += 1;
        }
        let mut results: Vec<Option<T>> = (0..count).map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((i, value)) => {
                    ended(&value);
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

/// Why a host of a cancelled operation was not worked on.
const NOT_STARTED: &str = "not started: cancelled";

/// What a fan-out needs of one host's result.
pub trait HostResult {
    /// Whether the host did what was asked.
    fn succeeded(&self) -> bool;
    /// The result of a host that was not started, and why.
    fn skipped(host: String, why: &str) -> Self;
    /// Says that the host, which failed, could not be connected to, and whether because its
    /// agent is not trusted.
    fn mark_unreached(&mut self, untrusted: Option<Untrusted>);
}

impl HostResult for Done {
    fn succeeded(&self) -> bool {
        self.success
    }

    fn mark_unreached(&mut self, untrusted: Option<Untrusted>) {
        self.unreached = true;
        self.untrusted = untrusted;
    }

    fn skipped(host: String, why: &str) -> Done {
        Done {
            status: Status::Skipped,
            ..Done::new(host, Err(why.to_string()))
        }
    }
}

impl HostResult for RunResult {
    fn succeeded(&self) -> bool {
        self.success
    }

    fn skipped(host: String, why: &str) -> RunResult {
        RunResult {
            host,
            run: None,
            success: false,
            status: Status::Skipped,
            outcome: why.to_string(),
            exit_code: None,
            elapsed_ms: None,
            unreached: false,
            untrusted: None,
        }
    }

    fn mark_unreached(&mut self, untrusted: Option<Untrusted>) {
        self.unreached = true;
        self.untrusted = untrusted;
    }
}

impl HostResult for Ping {
    fn succeeded(&self) -> bool {
        self.reachable
    }

    fn skipped(host: String, why: &str) -> Ping {
        Ping {
            host,
            reachable: false,
            busy: false,
            agent_version: None,
            facts: None,
            round_trip_ms: None,
            error: Some(why.to_string()),
            untrusted: None,
        }
    }

    /// A heartbeat that failed says so already (`reachable`, `untrusted`).
    fn mark_unreached(&mut self, _: Option<Untrusted>) {}
}

/// How a host's part of an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// It did what was asked.
    Ok,
    /// It was tried, and failed.
    Failed,
    /// It was not started: too many hosts had failed, or the operation was cancelled.
    Skipped,
    /// It was started, and a cancel stopped it (a run): neither done nor failed.
    Cancelled,
}

impl Status {
    /// [`Status::Ok`] or [`Status::Failed`], as `success` says.
    pub fn of(success: bool) -> Status {
        if success { Status::Ok } else { Status::Failed }
    }
}

/// The result of a simple operation on one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Done {
    /// The host.
    pub host: String,
    /// Whether it worked.
    pub success: bool,
    /// Whether it worked, failed or was not started.
    pub status: Status,
    /// What happened, in words.
    pub detail: String,
    /// It could not be connected to (unreachable, refused, a wrong or no agent key); only
    /// said when so.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unreached: bool,
    /// Why its agent is not trusted, when that is why it could not be connected to; only said
    /// when so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untrusted: Option<Untrusted>,
    /// Whether an upload changed the host's file: `false` when the file already had the
    /// content, mode (and owner, when one was asked) and nothing was sent. Only uploads say it,
    /// and only when they succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed: Option<bool>,
}

impl Done {
    /// `host`'s result: what happened, or why it failed.
    pub(super) fn new(host: String, result: std::result::Result<String, String>) -> Done {
        match result {
            Ok(detail) => Done {
                host,
                success: true,
                status: Status::Ok,
                detail,
                unreached: false,
                untrusted: None,
                changed: None,
            },
            Err(detail) => Done {
                host,
                success: false,
                status: Status::Failed,
                detail,
                unreached: false,
                untrusted: None,
                changed: None,
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
        assert!(
            matches!(none, OpsError::Missing(Missing::NoHosts { script: None })),
            "{none:?}"
        );
        let disabled = ops.resolve(&Targets::hosts(["off"])).await.unwrap_err();
        assert_eq!(disabled.kind(), ErrorKind::Invalid);
        assert_eq!(disabled.to_string(), "no enabled host matches");
        let missing = ops.resolve(&Targets::hosts(["nope"])).await.unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn fact_selectors_choose_by_facts_and_hosts_without_facts_are_left_out_and_told() {
        let (_dir, ops) = fleet(&["arm", "mips1", "mips2", "new", "off"]).await;
        let store = ops.fleet.store();
        for (host, arch, kernel) in [
            ("arm", "armv7l", "5.15.1"),
            ("mips1", "mips", "5.10.176"),
            ("mips2", "mips", "6.6.73"),
            ("off", "mips", "5.10.176"),
        ] {
            let facts = crate::model::Facts {
                arch: arch.into(),
                kernel_version: kernel.into(),
                flash_free_kib: 1_000,
                ..crate::model::Facts::default()
            };
            store
                .heartbeat_ok(host, "0.3.1", &facts, 1.0)
                .await
                .unwrap();
        }
        store.set_enabled("off", false).await.unwrap();
        let chosen = |selectors: &[&str]| Targets {
            selectors: selectors.iter().map(|s| s.to_string()).collect(),
            ..Targets::default()
        };

        // Alone, among every enabled host; the one without facts is left out, and said so.
        let mips = ops.selection(&chosen(&["arch=mips"])).await.unwrap();
        assert_eq!(mips.hosts, ["mips1", "mips2"]);
        assert_eq!(mips.left_out, ["new"]);
        assert_eq!(
            mips.note().unwrap(),
            "1 host left out: no facts reported yet for the --where selectors: new"
        );
        let names = |hosts: Vec<Host>| hosts.into_iter().map(|h| h.name).collect::<Vec<_>>();
        let five = chosen(&["arch=mips", "kernel~^5\\.", "flash_free<2MiB"]);
        assert_eq!(names(ops.resolve(&five).await.unwrap()), ["mips1"]);

        // With names, groups and exclusions: the selectors narrow what those chose.
        let named = Targets {
            hosts: vec!["mips*".into(), "arm".into()],
            exclude: vec!["mips2".into()],
            ..chosen(&["kernel>5.4"])
        };
        assert_eq!(names(ops.resolve(&named).await.unwrap()), ["arm", "mips1"]);

        // Nothing matches: the error says which hosts were left out for lack of facts.
        let none = Targets {
            hosts: vec!["arm".into(), "new".into()],
            ..chosen(&["arch=mips"])
        };
        let error = ops.resolve(&none).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Invalid);
        assert_eq!(
            error.to_string(),
            "no enabled host matches; 1 host left out: no facts reported yet for the --where \
             selectors: new"
        );
        // A selector that does not parse is refused before anything is chosen.
        let bad = ops.resolve(&chosen(&["cpu=mips"])).await.unwrap_err();
        assert_eq!(bad.kind(), ErrorKind::Invalid);
        assert!(bad.to_string().contains("no fact is called"), "{bad}");
        // Naming nothing chooses nothing.
        assert_eq!(
            ops.selection(&Targets::default()).await.unwrap(),
            Selection::default()
        );
    }

    #[tokio::test]
    async fn globs_lists_and_exclusions_resolve() {
        let (_dir, ops) = fleet(&["ap-1", "ap-2", "core", "off"]).await;
        let store = ops.fleet.store();
        store.add_group("aps").await.unwrap();
        store.set_membership("aps", "ap-2", true).await.unwrap();
        store.set_enabled("off", false).await.unwrap();
        let names = |hosts: Vec<Host>| hosts.into_iter().map(|h| h.name).collect::<Vec<_>>();
        let resolve = |targets: Targets| {
            let ops = ops.clone();
            async move { ops.resolve(&targets).await.map(names) }
        };
        let text = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let globs = Targets::hosts(["ap-*", "[co]*"]);
        assert_eq!(resolve(globs).await.unwrap(), ["ap-1", "ap-2", "core"]);
        let but = Targets {
            exclude: text(&["*-1"]),
            exclude_groups: text(&["aps"]),
            ..Targets::all()
        };
        assert_eq!(resolve(but).await.unwrap(), ["core"]);
        let nothing_left = Targets {
            exclude: text(&["*"]),
            ..Targets::all()
        };
        let err = resolve(nothing_left).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
        let no_match = resolve(Targets::hosts(["ap-1", "zz*"])).await.unwrap_err();
        assert_eq!(no_match.kind(), ErrorKind::NotFound);
        assert_eq!(no_match.to_string(), "no host matches `zz*`");
        let bad = resolve(Targets::hosts(["ap-[1"])).await.unwrap_err();
        assert_eq!(bad.kind(), ErrorKind::Invalid);
    }

    #[tokio::test]
    async fn group_globs_resolve_and_one_that_matches_nothing_is_named() {
        let (_dir, ops) = fleet(&["a", "b", "c"]).await;
        let store = ops.fleet.store();
        for (group, host) in [("lab-1", "a"), ("lab-2", "b"), ("core", "c")] {
            store.add_group(group).await.unwrap();
            store.set_membership(group, host, true).await.unwrap();
        }
        let names = |hosts: Vec<Host>| hosts.into_iter().map(|h| h.name).collect::<Vec<_>>();
        let resolve = |groups: &[&str], exclude_groups: &[&str]| {
            let ops = ops.clone();
            let text = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
            let targets = Targets {
                groups: text(groups),
                exclude_groups: text(exclude_groups),
                ..Targets::default()
            };
            async move { ops.resolve(&targets).await.map(names) }
        };
        assert_eq!(resolve(&["lab-*"], &[]).await.unwrap(), ["a", "b"]);
        assert_eq!(resolve(&["*"], &["lab-[!1]"]).await.unwrap(), ["a", "c"]);
        assert_eq!(
            resolve(&["core", "lab-?"], &["zz*"]).await.unwrap(),
            ["a", "b", "c"]
        );
        let none = resolve(&["lab-*", "zz*"], &[]).await.unwrap_err();
        assert_eq!(none.kind(), ErrorKind::NotFound);
        assert_eq!(none.to_string(), "no group matches `zz*`");
        let bad = resolve(&["lab-[1"], &[]).await.unwrap_err();
        assert_eq!(bad.kind(), ErrorKind::Invalid);
    }

    #[tokio::test]
    async fn too_many_failures_skip_the_batches_not_started() {
        use super::super::{Control, Rollout, Share};
        let (_dir, ops) = fleet(&["a", "b", "c"]).await;
        let rollout = Rollout::new(Some(Share::Count(2)), Some(Share::Count(1))).unwrap();
        let ops = ops.rolling(rollout);
        let done = ops.control(&Targets::all(), Control::Reload).await.unwrap();
        let hosts: Vec<_> = done.iter().map(|d| d.host.as_str()).collect();
        assert_eq!(hosts, ["a", "b", "c"]);
        assert!(done.iter().all(|d| !d.success), "{done:?}");
        assert!(!done[1].detail.starts_with("skipped"), "{done:?}");
        assert_eq!(
            done[2].detail,
            "skipped: 2 of 3 hosts had failed, more than allowed"
        );
        let status: Vec<Status> = done.iter().map(|d| d.status).collect();
        assert_eq!(status, [Status::Failed, Status::Failed, Status::Skipped]);
    }
}
