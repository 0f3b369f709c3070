//! Importing an inventory: many hosts at once, with their groups, from another tool's
//! inventory (see [`crate::inventory`]). The plan is made against the fleet as it is, and
//! checked as `host add` and `host set` check a host (a name that differs from another only in
//! letter case, two hosts at one address and port, a group's name): every problem is listed,
//! with those of the file itself. A dry run stops there, else each step is applied through the
//! hosts' own operations, so every change is recorded as if made by hand. A second import of
//! the same inventory changes nothing.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::inventory::{self, Change, Format, InventoryError, Problem, Step, Wanted};
use crate::model::Host;
use crate::names::{self, HostName, Kind};

use super::hosts::shared_place;
use super::names::case_clash;
use super::{AddHost, HostAdded, Ops, Result, SetEnv};

/// An inventory to import (the API's `Inventory`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Inventory)]
pub struct ImportHosts {
    /// Its format: `ini` or `yaml` (Ansible's), `csv` (header `name,address,port,groups`,
    /// groups `;`-separated) or `json` (a list of objects with those fields).
    pub format: Format,
    /// Its text.
    pub text: String,
    /// Only answer the plan; change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// New hosts trust whatever key their agent presents first (only on a network you trust).
    #[serde(default)]
    pub pin_on_first_contact: bool,
}

/// What an import does to one of the inventory's variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum VarChange {
    /// It is new at its scope.
    Add,
    /// It had another value there (or a secret one, which is not compared).
    Update,
    /// It has this value there already.
    Unchanged,
}

/// A variable an import sets in the environment, at the level the inventory gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VarStep {
    /// Where it applies: `global`, `group NAME` or `host NAME`.
    pub scope: String,
    /// Its name.
    pub name: String,
    /// What happens to it.
    pub change: VarChange,
}

/// What an import did, or would do.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Imported {
    /// One step per host of the inventory.
    pub steps: Vec<Step>,
    /// One step per variable of the inventory (Ansible's `[all:vars]`, `[group:vars]`,
    /// `vars:` and a host's own, but `ansible_*` and `otto_port`), set in the environment at
    /// the same level: global, the group's, the host's. Values are not shown.
    #[serde(default)]
    pub variables: Vec<VarStep>,
    /// What the inventory held that was not used.
    pub notes: Vec<String>,
    /// Whether the steps were applied (false for a dry run).
    pub applied: bool,
    /// Each host added, with the server key its agent must trust (`otto-agent trust …`); none
    /// for a dry run.
    pub added: Vec<HostAdded>,
}

impl Ops {
    /// Reads an inventory and brings the fleet to what it says (adds hosts, moves them, puts
    /// them in groups; removes nothing). Any problem in it fails the whole import before
    /// anything is changed.
    pub async fn import_hosts(&self, import: ImportHosts) -> Result<Imported> {
        let read = inventory::read(import.format, &import.text)?;
        let hosts = self.hosts().await?;
        let steps = inventory::plan(&read.wanted, &hosts);
        let mut problems = read.problems;
        let groups = self.group_names().await?;
        problems.extend(fleet_problems(&read.wanted, &steps, &hosts, &groups));
        if !problems.is_empty() {
            inventory::in_order(&mut problems);
            return Err(InventoryError::Invalid(problems).into());
        }
        let notes = read.notes;
        let variables = self.var_steps(&read.vars).await?;
        let mut added = Vec::new();
        if !import.dry_run {
            for step in &steps {
                added.extend(self.apply(step, import.pin_on_first_contact).await?);
            }
            for (var, step) in read.vars.iter().zip(&variables) {
                if step.change != VarChange::Unchanged {
                    let set = SetEnv {
                        scope: var.scope.clone(),
                        name: var.name.clone(),
                        value: var.value.clone(),
                        secret: None,
                    };
                    self.set_env(&set).await?;
                }
            }
        }
        Ok(Imported {
            steps,
            variables,
            notes,
            applied: !import.dry_run,
            added,
        })
    }

    /// What setting each of `vars` changes in the environment as it is.
    async fn var_steps(&self, vars: &[inventory::Var]) -> Result<Vec<VarStep>> {
        let now = self.fleet.store().env(None).await?;
        Ok(vars
            .iter()
            .map(|var| {
                let was = now
                    .iter()
                    .find(|e| e.scope == var.scope && e.name == var.name);
                let change = match was {
                    None => VarChange::Add,
                    Some(e) if !e.value.secret && e.value.value == var.value => {
                        VarChange::Unchanged
                    }
                    Some(_) => VarChange::Update,
                };
                VarStep {
                    scope: var.scope.to_string(),
                    name: var.name.clone(),
                    change,
                }
            })
            .collect())
    }

    /// Applies a step the import has checked (as `add_host` and `set_address` would): the
    /// host added, if it is new.
    async fn apply(&self, step: &Step, pin_on_first_contact: bool) -> Result<Option<HostAdded>> {
        let name = HostName::parse(&step.host)?;
        match step.change {
            Change::Add => {
                let add = AddHost {
                    name: name.to_string(),
                    address: step.address.clone(),
                    port: step.port,
                    agent_key: None,
                    pin_on_first_contact,
                    groups: step.join.clone(),
                    force: false,
                };
                return Ok(Some(self.make_host(add, None).await?));
            }
            Change::Update | Change::Join => {
                if step.change == Change::Update {
                    let (address, port) = (Some(step.address.clone()), Some(step.port));
                    self.move_host(&name, address, port).await?;
                }
                self.join_groups(&name, &step.join).await?;
            }
            Change::Unchanged => {}
        }
        Ok(None)
    }
}

/// What the fleet (its `hosts` and `groups`) has against the `steps` that bring it to `wanted`
/// (the rules of names, addresses and ports are the inventory's own check): a new host whose
/// name differs from another's only in letter case, a host added or moved to an address and
/// port another host has (or will have), a new group whose name differs from another's only in
/// letter case.
fn fleet_problems<'a>(
    wanted: &'a [Wanted],
    steps: &[Step],
    hosts: &'a [Host],
    groups: &[String],
) -> Vec<Problem> {
    // The fleet after the import (the hosts it leaves alone, and those it names), by name in
    // lower case and by place, so that a large inventory is checked in linear time.
    let named: HashSet<&str> = wanted.iter().map(|w| w.name.as_str()).collect();
    let after = hosts
        .iter()
        .filter(|h| !named.contains(h.name.as_str()))
        .map(|h| (h.name.as_str(), h.address.as_str(), h.port))
        .chain(
            wanted
                .iter()
                .map(|w| (w.name.as_str(), w.address.as_str(), w.port)),
        );
    let mut by_case: HashMap<String, Vec<&str>> = HashMap::new();
    let mut by_place: HashMap<(String, u16), Vec<&str>> = HashMap::new();
    for (name, address, port) in after {
        by_case
            .entry(name.to_ascii_lowercase())
            .or_default()
            .push(name);
        let place = (names::same_place(address), port);
        by_place.entry(place).or_default().push(name);
    }
    let other = |names: Option<&Vec<&'a str>>, name: &str| {
        names.and_then(|ns| ns.iter().copied().find(|n| *n != name))
    };
    let mut known_groups = groups.to_vec();
    let mut problems = Vec::new();
    for (w, step) in wanted.iter().zip(steps) {
        let checked = || -> Result<()> {
            if step.change == Change::Add {
                let same = by_case.get(&w.name.to_ascii_lowercase());
                if let Some(other) = other(same, &w.name) {
                    return Err(case_clash(Kind::Host, &w.name, other));
                }
            }
            if matches!(step.change, Change::Add | Change::Update) {
                let there = by_place.get(&(names::same_place(&w.address), w.port));
                if let Some(other) = other(there, &w.name) {
                    return Err(shared_place(other, &w.address, w.port));
                }
            }
            for g in step.join.iter().filter(|g| !known_groups.contains(g)) {
                let known = known_groups.iter().map(String::as_str);
                if let Some(other) = names::case_clash(g, known) {
                    return Err(case_clash(Kind::Group, g, other));
                }
            }
            Ok(())
        };
        if let Err(e) = checked() {
            problems.push(Problem {
                place: w.place.clone(),
                message: format!("{}: {e}", w.name),
            });
        }
        for g in &step.join {
            if !known_groups.contains(g) {
                known_groups.push(g.clone());
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Scope;
    use crate::ops::ErrorKind;
    use crate::ops::testing::{fixture, logged, new_r1};

    fn ini(text: &str, dry_run: bool) -> ImportHosts {
        ImportHosts {
            text: text.into(),
            format: Format::Ini,
            dry_run,
            pin_on_first_contact: true,
        }
    }

    const INVENTORY: &str = "[routers]\nr1 ansible_host=10.0.0.5\nr2 ansible_host=10.0.0.6\n";

    #[tokio::test]
    async fn ansibles_variables_become_the_environment_at_their_level_and_are_told() {
        let (_dir, ops) = fixture().await;
        let text = "[routers]\nr1 ansible_host=10.0.0.5 ansible_user=root uplink=wan\n\
                    r2 ansible_host=10.0.0.6\n\
                    [all:vars]\nntp_server=192.0.2.123\nansible_python_interpreter=/usr/bin/python3\n\
                    [routers:vars]\nmtu=1500\n\
                    [empty:vars]\nx=1\n";
        let before = logged(&ops).await.len();
        let dry = ops.import_hosts(ini(text, true)).await.unwrap();
        let planned: Vec<_> = dry
            .variables
            .iter()
            .map(|v| (v.scope.as_str(), v.name.as_str(), v.change))
            .collect();
        assert_eq!(
            planned,
            [
                ("host r1", "uplink", VarChange::Add),
                ("global", "ntp_server", VarChange::Add),
                ("group routers", "mtu", VarChange::Add),
            ]
        );
        assert!(
            dry.notes
                .iter()
                .any(|n| n.contains("variables of empty ignored")),
            "{:?}",
            dry.notes
        );
        assert_eq!(
            logged(&ops).await.len(),
            before,
            "a dry run records nothing"
        );
        assert!(ops.env(None).await.unwrap().is_empty());

        ops.import_hosts(ini(text, false)).await.unwrap();
        let env: Vec<_> = ops
            .env(None)
            .await
            .unwrap()
            .into_iter()
            .map(|v| (v.scope.to_string(), v.name, v.value.value))
            .collect();
        assert_eq!(
            env,
            [
                ("global".into(), "ntp_server".into(), "192.0.2.123".into()),
                ("group routers".into(), "mtu".into(), "1500".into()),
                ("host r1".into(), "uplink".into(), "wan".into()),
            ]
        );
        let events = logged(&ops).await;
        assert!(
            events.iter().any(|e| e.3 == "ntp_server set (global)"),
            "{events:?}"
        );
        // Again: nothing changes; a value changed in the file is changed, a secret kept secret.
        let again = ops.import_hosts(ini(text, true)).await.unwrap();
        assert!(
            again
                .variables
                .iter()
                .all(|v| v.change == VarChange::Unchanged)
        );
        let set = SetEnv {
            scope: Scope::Group("routers".into()),
            name: "mtu".into(),
            value: "9000".into(),
            secret: Some(true),
        };
        ops.set_env(&set).await.unwrap();
        let changed = ops
            .import_hosts(ini(&text.replace("1500", "1492"), false))
            .await
            .unwrap();
        let mtu = changed.variables.iter().find(|v| v.name == "mtu").unwrap();
        assert_eq!(mtu.change, VarChange::Update);
        let routers = ops.env(Some(&set.scope)).await.unwrap();
        assert_eq!(routers[0].value.value, "1492");
        assert!(routers[0].value.secret, "a secret stays secret");
    }

    #[tokio::test]
    async fn an_import_is_planned_applied_and_then_changes_nothing() {
        let (_dir, ops) = fixture().await;
        ops.add_host(new_r1()).await.unwrap();
        let before = logged(&ops).await.len();

        let dry = ops.import_hosts(ini(INVENTORY, true)).await.unwrap();
        let changes: Vec<_> = dry.steps.iter().map(|s| s.change).collect();
        assert_eq!(changes, [Change::Update, Change::Add]);
        assert_eq!(dry.steps[0].was.as_deref(), Some("192.0.2.1:12444"));
        assert!(!dry.applied && dry.added.is_empty());
        assert_eq!(logged(&ops).await.len(), before);

        // The new host comes with the server key its agent must trust; the moved one without.
        let done = ops.import_hosts(ini(INVENTORY, false)).await.unwrap();
        assert_eq!(done.added.len(), 1, "{:?}", done.added);
        assert_eq!(done.added[0].host, "r2");
        let key = ops
            .server_key(&HostName::parse("r2").unwrap())
            .await
            .unwrap();
        assert_eq!(done.added[0].server_key, key.server_key);
        let hosts = ops.hosts().await.unwrap();
        let got: Vec<_> = hosts
            .iter()
            .map(|h| (h.name.as_str(), h.address.as_str(), h.groups.join(",")))
            .collect();
        assert_eq!(
            got,
            [
                ("r1", "10.0.0.5", "routers".into()),
                ("r2", "10.0.0.6", "routers".into())
            ]
        );
        assert!(hosts[1].trust.pin_on_first_contact);
        let events = logged(&ops).await.len();

        let again = ops.import_hosts(ini(INVENTORY, false)).await.unwrap();
        assert!(again.steps.iter().all(|s| s.change == Change::Unchanged));
        assert!(again.added.is_empty());
        assert_eq!(ops.hosts().await.unwrap(), hosts);
        assert_eq!(logged(&ops).await.len(), events);
    }

    #[tokio::test]
    async fn a_bad_line_changes_nothing() {
        let (_dir, ops) = fixture().await;
        let err = ops
            .import_hosts(ini("[g]\nr1\n../x\nr2\n", false))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
        assert!(err.to_string().contains("line 3"));
        assert!(ops.hosts().await.unwrap().is_empty());
        assert!(logged(&ops).await.is_empty());
    }
}
