//! Inventories from other tools, read into the hosts Otto should have: one parser per format
//! (`ini` and `yaml` for Ansible's, `csv`, `json`), a check that merges a host named twice and
//! validates every name, address and port, and a [`plan`] of what importing them changes.
//! Ansible's variables (`[all:vars]`, `[group:vars]`, `vars:`, a host's own) are kept as
//! [`Var`]s, to become the environment at the same level. All
//! of it is pure: the text comes in, values go out, with every problem found (not only the
//! first); `ops` reads the fleet, adds the problems only it can see, and applies the plan.
//!
//! Ports: `ansible_port` is the port of the device's SSH server, not the agent's, so Ansible's
//! inventories give the agent's port as `otto_port` (default 12444); CSV and JSON name it `port`.

mod csv;
mod ini;
mod json;
pub mod plan;
mod ranges;
mod yaml;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::model::Scope;
use crate::names::{self, HostName, Kind};

pub use plan::{Change, Step, plan};

/// The format of an inventory.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Ansible's INI inventory (`[group]` sections, `host ansible_host=… otto_port=…`).
    Ini,
    /// Ansible's YAML inventory (`all: children: GROUP: hosts: HOST: {ansible_host: …}`).
    Yaml,
    /// A header `name,address,port,groups`, groups `;`-separated.
    Csv,
    /// A list of objects with the fields `name`, `address`, `port`, `groups`.
    Json,
}

impl Format {
    /// The format a file's extension names (`.ini`/`.cfg`, `.yaml`/`.yml`, `.csv`, `.json`).
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "ini" | "cfg" => Some(Format::Ini),
            "yaml" | "yml" => Some(Format::Yaml),
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// A host as one place of an inventory gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Where it is: `line 4`, `item 2`, `all.children.routers`.
    pub place: String,
    /// Its name, unchecked.
    pub name: String,
    /// Its address, if given (else its name).
    pub address: Option<String>,
    /// The agent's port, if given.
    pub port: Option<u16>,
    /// Its groups here.
    pub groups: Vec<String>,
}

/// A variable an inventory gives (Ansible's `[group:vars]` and `vars:`, a host's `key=value`),
/// at its level: every host (`all`), a group's members, or one host. Ansible's own
/// (`ansible_*`) and `otto_port` are not variables here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Var {
    /// Where it is given.
    pub place: String,
    /// Where it applies.
    pub scope: Scope,
    /// Its name, unchecked.
    pub name: String,
    /// Its value as text (YAML's lists and maps as JSON).
    pub value: String,
}

/// Whether a host's `key` is one the import reads or leaves (`ansible_host`, `ansible_port`,
/// `ansible_user`, …, `otto_port`), not a variable for its runs.
fn is_connection(key: &str) -> bool {
    key.starts_with("ansible_") || key == "otto_port"
}

/// An inventory as read: its hosts, place by place, its variables, and notes on what was left
/// out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// The hosts, in the order of the file (a host may come more than once).
    pub entries: Vec<Entry>,
    /// The variables, in the order of the file.
    pub vars: Vec<Var>,
    /// What was read but not used (`ansible_port`, variables of no group).
    pub notes: Vec<String>,
    /// What could not be read, by place.
    pub problems: Vec<Problem>,
}

/// An entry as (place, name, address, port, groups joined by commas).
#[cfg(test)]
pub type Row<'a> = (&'a str, &'a str, Option<&'a str>, Option<u16>, String);

#[cfg(test)]
impl Inventory {
    /// Each entry as a [`Row`]: what the parsers' tests compare.
    pub fn rows(&self) -> Vec<Row<'_>> {
        self.entries
            .iter()
            .map(|e| {
                (
                    e.place.as_str(),
                    e.name.as_str(),
                    e.address.as_deref(),
                    e.port,
                    e.groups.join(","),
                )
            })
            .collect()
    }
}

/// A variable as (place, scope as said, name, value).
#[cfg(test)]
pub type VarRow<'a> = (&'a str, String, &'a str, &'a str);

#[cfg(test)]
impl Inventory {
    /// Each variable as a [`VarRow`]: what the parsers' tests compare.
    pub fn var_rows(&self) -> Vec<VarRow<'_>> {
        self.vars
            .iter()
            .map(|v| {
                (
                    v.place.as_str(),
                    v.scope.to_string(),
                    v.name.as_str(),
                    v.value.as_str(),
                )
            })
            .collect()
    }
}

/// A host the inventory wants, checked and merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// Where the inventory names it first.
    pub place: String,
    /// Its name.
    pub name: HostName,
    /// Its address.
    pub address: String,
    /// The agent's port.
    pub port: u16,
    /// Its groups, sorted.
    pub groups: Vec<String>,
}

/// One thing wrong in an inventory, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: `line 4`, `item 2`, …
    pub place: String,
    /// What.
    pub message: String,
}

/// Why an inventory cannot be imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    /// Every problem found, by place; nothing is imported.
    #[error("the inventory cannot be imported, nothing was changed:{}", list(.0))]
    Invalid(Vec<Problem>),
}

/// An inventory read and checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    /// The hosts it wants.
    pub wanted: Vec<Wanted>,
    /// The variables it sets, each scope and name once (the last given wins, as in Ansible).
    pub vars: Vec<Var>,
    /// What it held that was not used.
    pub notes: Vec<String>,
    /// Every problem found in it, by place.
    pub problems: Vec<Problem>,
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("\n  {}: {}", p.place, p.message))
        .collect()
}

/// Reads `text` as an inventory of `format`, and checks it (see [`check`]): the problems of
/// its lines and of its hosts together. An error only for a text that cannot be read at all.
pub fn read(format: Format, text: &str) -> Result<Checked, InventoryError> {
    let inventory = match format {
        Format::Ini => ini::parse(text),
        Format::Yaml => yaml::parse(text),
        Format::Csv => csv::parse(text),
        Format::Json => json::parse(text),
    }
    .map_err(InventoryError::Invalid)?;
    let (wanted, more) = check(&inventory.entries);
    let mut problems = inventory.problems;
    problems.extend(more);
    let mut notes = inventory.notes;
    let vars = check_vars(inventory.vars, &wanted, &mut problems, &mut notes);
    Ok(Checked {
        wanted,
        vars,
        notes,
        problems,
    })
}

/// The variables of `vars` to set, each scope and name once (the last given wins): a name
/// that breaks the variables' rule, or a group's that breaks the groups', is a problem; the
/// variables of a group that no host of the inventory is in are left out with a note (a group
/// of the fleet gets them only from an inventory that names its members).
fn check_vars(
    vars: Vec<Var>,
    wanted: &[Wanted],
    problems: &mut Vec<Problem>,
    notes: &mut Vec<String>,
) -> Vec<Var> {
    let mut kept: Vec<Var> = Vec::new();
    let mut noted: Vec<String> = Vec::new();
    for var in vars {
        if let Err(bad) = Kind::Variable.check(&var.name) {
            problems.push(Problem {
                place: var.place,
                message: bad.to_string(),
            });
            continue;
        }
        if let Scope::Group(group) = &var.scope {
            if let Err(bad) = Kind::Group.check(group) {
                problems.push(Problem {
                    place: var.place,
                    message: bad.to_string(),
                });
                continue;
            }
            if !wanted.iter().any(|w| w.groups.contains(group)) {
                if !noted.contains(group) {
                    notes.push(format!(
                        "{}: the variables of {group} ignored: no host of the inventory is in it",
                        var.place
                    ));
                    noted.push(group.clone());
                }
                continue;
            }
        }
        kept.retain(|k| !(k.scope == var.scope && k.name == var.name));
        kept.push(var);
    }
    kept
}

/// `problems` in the order of their places in the file (`line 3` before `line 12`, `item 2`
/// before `item 10`); places without a number (YAML paths) keep their order.
pub fn in_order(problems: &mut [Problem]) {
    problems.sort_by_key(|p| {
        p.place
            .split_once(' ')
            .and_then(|(_, n)| n.parse::<u64>().ok())
            .unwrap_or(0)
    });
}

/// A host's entries merged so far: where it came first, and what has been given.
struct Merged<'a> {
    first: &'a Entry,
    name: HostName,
    address: Option<&'a str>,
    port: Option<u16>,
    groups: Vec<String>,
}

/// Merges the entries of each host (their groups joined) and checks them: a host given two
/// different addresses or ports is a problem, as is a name (of a host or a group) that breaks
/// the rule, an address that is neither an IP address nor a DNS name, and port 0. Returns the
/// hosts wanted, and the problems.
pub fn check(entries: &[Entry]) -> (Vec<Wanted>, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut merged: Vec<Merged> = Vec::new();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for e in entries {
        let name = match HostName::parse(&e.name) {
            Ok(name) => name,
            Err(bad) => {
                problems.push(Problem {
                    place: e.place.clone(),
                    message: bad.to_string(),
                });
                continue;
            }
        };
        let i = *index.entry(&e.name).or_insert_with(|| {
            merged.push(Merged {
                first: e,
                name,
                address: None,
                port: None,
                groups: Vec::new(),
            });
            merged.len() - 1
        });
        let Some(m) = merged.get_mut(i) else { continue };
        let mut clash = |what: String| {
            problems.push(Problem {
                place: e.place.clone(),
                message: format!("{} {what} at {}", e.name, m.first.place),
            })
        };
        if let Some(a) = &e.address {
            match m.address {
                Some(was) if was != a => clash(format!("is at {a} here but at {was}")),
                _ => m.address = Some(a),
            }
        }
        if let Some(p) = e.port {
            match m.port {
                Some(was) if was != p => clash(format!("has port {p} here but {was}")),
                _ => m.port = Some(p),
            }
        }
        for g in &e.groups {
            if !m.groups.contains(g) {
                if let Err(bad) = Kind::Group.check(g) {
                    problems.push(Problem {
                        place: e.place.clone(),
                        message: bad.to_string(),
                    });
                }
                m.groups.push(g.clone());
            }
        }
    }
    let wanted: Vec<Wanted> = merged
        .into_iter()
        .map(|mut m| {
            m.groups.sort();
            Wanted {
                place: m.first.place.clone(),
                address: m.address.unwrap_or(m.name.as_str()).to_string(),
                name: m.name,
                port: m.port.unwrap_or(otto_proto::DEFAULT_PORT),
                groups: m.groups,
            }
        })
        .collect();
    for w in &wanted {
        let checked = names::check_address(&w.address).and(names::check_port(w.port));
        if let Err(bad) = checked {
            problems.push(Problem {
                place: w.place.clone(),
                message: format!("{}: {bad}", w.name),
            });
        }
    }
    (wanted, problems)
}

/// `"x"` or `'x'` without its quotes.
fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|v| v.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

/// The one note on the `ansible_port`s an inventory gives at `places`, naming the first few.
fn ansible_port_note(places: &[String]) -> Option<String> {
    let (first, more) = (places.first()?, places.len() - 1);
    let also = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    Some(format!(
        "{first}{also}: ansible_port ignored: it is the device's SSH port; the agent's is \
         otto_port (default {})",
        otto_proto::DEFAULT_PORT
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn entry(place: &str, name: &str, address: Option<&str>, groups: &[&str]) -> Entry {
        Entry {
            place: place.into(),
            name: name.into(),
            address: address.map(Into::into),
            port: None,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    #[test]
    fn ansible_ports_get_one_note() {
        assert_eq!(ansible_port_note(&[]), None);
        let note = ansible_port_note(&["line 2".into(), "line 3".into()]).unwrap();
        assert!(
            note.starts_with("line 2 and 1 more: ansible_port ignored"),
            "{note}"
        );
    }

    #[test]
    fn formats_come_from_extensions() {
        assert_eq!(Format::from_path(Path::new("hosts.ini")), Some(Format::Ini));
        assert_eq!(
            Format::from_path(Path::new("a/inv.YML")),
            Some(Format::Yaml)
        );
        assert_eq!(Format::from_path(Path::new("f.csv")), Some(Format::Csv));
        assert_eq!(Format::from_path(Path::new("f.json")), Some(Format::Json));
        assert_eq!(Format::from_path(Path::new("hosts")), None);
    }

    #[test]
    fn a_host_named_twice_is_merged_and_defaults_filled() {
        let (wanted, problems) = check(&[
            entry("line 2", "r1", Some("10.0.0.5"), &["routers"]),
            entry("line 5", "ap1", None, &[]),
            entry("line 8", "r1", None, &["core", "routers"]),
        ]);
        assert_eq!(problems, []);
        assert_eq!(wanted.len(), 2);
        assert_eq!(wanted[0].place, "line 2");
        assert_eq!(wanted[0].name.as_str(), "r1");
        assert_eq!(wanted[0].address, "10.0.0.5");
        assert_eq!(wanted[0].port, 12444);
        assert_eq!(wanted[0].groups, ["core", "routers"]);
        assert_eq!((wanted[1].address.as_str(), wanted[1].port), ("ap1", 12444));
    }

    #[test]
    fn bad_names_and_clashes_are_listed_by_place() {
        let (_, problems) = check(&[
            entry("line 2", "r1", Some("10.0.0.5"), &[]),
            entry("line 3", "../x", None, &[]),
            entry("line 4", "r1", Some("10.0.0.6"), &[]),
            entry("line 5", "-bad", None, &[]),
            entry(
                "line 6",
                "r2",
                Some("a b\u{1b}[31m;rm -rf /"),
                &["../g", "ok"],
            ),
            entry("line 7", "r3", Some(""), &[""]),
            entry("line 8", "a_b..c", None, &[]),
        ]);
        let places: Vec<_> = problems.iter().map(|p| p.place.as_str()).collect();
        assert_eq!(
            places,
            [
                "line 3", "line 4", "line 5", "line 6", "line 7", "line 6", "line 7", "line 8"
            ]
        );
        assert!(problems[1].message.contains("10.0.0.6"));
        assert!(problems[3].message.contains("not a valid group name"));
        assert!(
            problems[5]
                .message
                .contains("r2: `a b\\u{1b}[31m;rm -rf /` is not an address")
        );
        assert!(
            problems[7]
                .message
                .contains("a_b..c: `a_b..c` is not an address")
        );
        let err = InventoryError::Invalid(problems);
        assert!(err.to_string().contains("nothing was changed"));
    }
}
