//! Ansible's INI inventory: hosts under `[group]` sections (before any, in no group), each
//! `name key=value…`; `[group:children]` lists groups whose hosts are in `group` too;
//! `[group:vars]` (and `[all:vars]`) sections give variables, `key=value` a line, as a host's
//! line does after its name. The address is `ansible_host` (else the name), the agent's port
//! `otto_port`. A host's name may hold ranges (`web[01:50]`: see [`ranges`]), one entry per
//! host it makes.

use std::collections::BTreeMap;

use super::{Entry, Inventory, Problem, Var, ansible_port_note, is_connection, ranges, unquote};
use crate::model::Scope;

enum Section {
    Hosts(Option<String>),
    Children(String),
    /// Variables of this scope (none: of no group Otto has, `[ungrouped:vars]`, or a section
    /// that could not be read).
    Vars(Option<Scope>),
}

/// `text` up to a comment: `#` or `;` after a space, outside quotes.
fn uncommented(text: &str) -> &str {
    let mut quote = None;
    let mut after_space = false;
    for (i, c) in text.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if after_space && (c == '#' || c == ';') => {
                return text.get(..i).unwrap_or(text);
            }
            None if c == '"' || c == '\'' => quote = Some(c),
            None => {}
        }
        after_space = quote.is_none() && c.is_whitespace();
    }
    text
}

/// The words of a line, up to a comment (a word starting with `#` or `;`); a quoted part
/// (`motd="hello world"`) stays in its word.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => {
                quote = None;
                word.push(c);
            }
            Some(_) => word.push(c),
            None if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            None if word.is_empty() && (c == '#' || c == ';') => return words,
            None => {
                if c == '"' || c == '\'' {
                    quote = Some(c);
                }
                word.push(c);
            }
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// `all` and `ungrouped` are Ansible's own, not groups of hosts.
fn real_group(name: &str) -> Option<String> {
    (!matches!(name, "all" | "ungrouped")).then(|| name.to_string())
}

/// Reads an INI inventory; a line that cannot be read is a problem of the inventory.
pub fn parse(text: &str) -> Result<Inventory, Vec<Problem>> {
    let mut inventory = Inventory::default();
    let mut problems = Vec::new();
    let mut parents: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut section = Section::Hosts(None);
    let mut ansible_ports = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let place = format!("line {}", i + 1);
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let problem = |message: String| Problem {
            place: place.clone(),
            message,
        };
        if let Some(head) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = match head.split_once(':') {
                None => Section::Hosts(real_group(head.trim())),
                Some((g, "children")) => Section::Children(g.trim().to_string()),
                Some(("all", "vars")) => Section::Vars(Some(Scope::Global)),
                Some(("ungrouped", "vars")) => {
                    inventory.notes.push(format!(
                        "{place}: [{head}] ignored: Otto has no group of the hosts in none"
                    ));
                    Section::Vars(None)
                }
                Some((g, "vars")) => Section::Vars(Some(Scope::Group(g.trim().to_string()))),
                Some(_) => {
                    problems.push(problem(format!("unknown section [{head}]")));
                    Section::Vars(None)
                }
            };
            continue;
        }
        // A comment may follow the host.
        let line_words = words(line);
        let mut words = line_words.iter().map(String::as_str);
        let Some(name) = words.next() else { continue };
        match &section {
            Section::Vars(None) => {}
            Section::Vars(Some(scope)) => match line.split_once('=') {
                Some((k, v)) if !is_connection(k.trim()) => inventory.vars.push(Var {
                    place: place.clone(),
                    scope: scope.clone(),
                    name: k.trim().to_string(),
                    value: unquote(uncommented(v).trim()).to_string(),
                }),
                Some(_) => {}
                None => problems.push(problem(format!("`{line}` is not key=value"))),
            },
            Section::Children(parent) => {
                if let Some(child) = real_group(name) {
                    parents.entry(child).or_default().push(parent.clone());
                }
            }
            Section::Hosts(group) => {
                let mut entry = Entry {
                    place: place.clone(),
                    name: String::new(),
                    address: None,
                    port: None,
                    groups: group.iter().cloned().collect(),
                };
                let mut vars = Vec::new();
                for word in words {
                    match word.split_once('=').map(|(k, v)| (k, unquote(v))) {
                        Some(("ansible_host", v)) => entry.address = Some(v.to_string()),
                        Some(("otto_port", v)) => match v.parse() {
                            Ok(p) if p > 0 => entry.port = Some(p),
                            _ => problems.push(problem(format!("otto_port {v} is not a port"))),
                        },
                        Some(("ansible_port", _)) => ansible_ports.push(place.clone()),
                        Some((k, v)) if !is_connection(k) => vars.push((k, v)),
                        Some(_) => {}
                        None => problems.push(problem(format!("`{word}` is not key=value"))),
                    }
                }
                match ranges::expand(name) {
                    Ok(names) => {
                        for name in names {
                            inventory.vars.extend(vars.iter().map(|(k, v)| Var {
                                place: place.clone(),
                                scope: Scope::Host(name.clone()),
                                name: k.to_string(),
                                value: v.to_string(),
                            }));
                            inventory.entries.push(Entry {
                                name,
                                ..entry.clone()
                            });
                        }
                    }
                    Err(e) => problems.push(problem(e.to_string())),
                }
            }
        }
    }
    inventory.notes.extend(ansible_port_note(&ansible_ports));
    for entry in &mut inventory.entries {
        entry.groups = with_ancestors(&entry.groups, &parents);
    }
    inventory.problems = problems;
    Ok(inventory)
}

/// `groups` and every group that has one of them as a child, however deep (a cycle ends).
fn with_ancestors(groups: &[String], parents: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    let mut todo: Vec<String> = groups.to_vec();
    while let Some(g) = todo.pop() {
        if all.contains(&g) {
            continue;
        }
        if let Some(ps) = parents.get(&g) {
            todo.extend(ps.iter().filter_map(|p| real_group(p)));
        }
        all.push(g);
    }
    all.sort();
    all
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    const INVENTORY: &str = "\
# The lab
bastion ansible_host=192.0.2.1

[routers]
r1 ansible_host=10.0.0.5 ansible_port=22 otto_port=2222
r2 ansible_host='10.0.0.6'   # the spare

[aps]
ap1 ansible_host=10.0.1.10 ansible_user=root

[wifi:children]
aps

[site:children]
wifi
routers

[all:vars]
ansible_user=root
ntp_server = 192.0.2.123

[routers:vars]
uplink=wan   ; the default
motd=\"hello world\"

[ungrouped:vars]
x=1
";

    #[test]
    fn sections_children_and_variables() {
        let inv = parse(INVENTORY).unwrap();
        let got = inv.rows();
        assert_eq!(
            got,
            [
                ("line 2", "bastion", Some("192.0.2.1"), None, String::new()),
                (
                    "line 5",
                    "r1",
                    Some("10.0.0.5"),
                    Some(2222),
                    "routers,site".into()
                ),
                (
                    "line 6",
                    "r2",
                    Some("10.0.0.6"),
                    None,
                    "routers,site".into()
                ),
                (
                    "line 9",
                    "ap1",
                    Some("10.0.1.10"),
                    None,
                    "aps,site,wifi".into()
                ),
            ]
        );
        assert_eq!(inv.notes.len(), 2);
        assert_eq!(
            inv.notes[0],
            "line 26: [ungrouped:vars] ignored: Otto has no group of the hosts in none"
        );
        assert!(inv.notes[1].starts_with("line 5: ansible_port ignored"));
        let vars = inv.var_rows();
        assert_eq!(
            vars,
            [
                ("line 20", "global".into(), "ntp_server", "192.0.2.123"),
                ("line 23", "group routers".into(), "uplink", "wan"),
                ("line 24", "group routers".into(), "motd", "hello world"),
            ]
        );
    }

    #[test]
    fn a_hosts_own_variables_are_its_own_on_each_host_a_range_makes() {
        let inv = parse("[g]\nap[1:2] site=\"lab 2\" ansible_user=root # spare\n").unwrap();
        let vars: Vec<_> = inv
            .vars
            .iter()
            .map(|v| (v.scope.to_string(), v.name.as_str(), v.value.as_str()))
            .collect();
        assert_eq!(
            vars,
            [
                ("host ap1".into(), "site", "lab 2"),
                ("host ap2".into(), "site", "lab 2")
            ]
        );
        let problems = parse("[g:vars]\njust-a-word\n").unwrap().problems;
        assert_eq!(problems[0].message, "`just-a-word` is not key=value");
    }

    #[test]
    fn bad_lines_are_listed() {
        let problems = parse("[g]\nr1 otto_port=99999\nr2 junk\n[g:weird]\n")
            .unwrap()
            .problems;
        let places: Vec<_> = problems.iter().map(|p| p.place.as_str()).collect();
        assert_eq!(places, ["line 2", "line 3", "line 4"]);
    }

    #[test]
    fn ranges_make_one_entry_per_host_and_a_bad_one_is_a_problem() {
        let inv = parse("[web]\nweb[01:03] otto_port=2222\ndb-[a:b]\n").unwrap();
        assert_eq!(
            inv.rows(),
            [
                ("line 2", "web01", None, Some(2222), "web".into()),
                ("line 2", "web02", None, Some(2222), "web".into()),
                ("line 2", "web03", None, Some(2222), "web".into()),
                ("line 3", "db-a", None, None, "web".into()),
                ("line 3", "db-b", None, None, "web".into()),
            ]
        );
        let problems = parse("w[1:5000]\nok\nw[3:1]\n").unwrap().problems;
        let said: Vec<_> = problems
            .iter()
            .map(|p| format!("{}: {}", p.place, p.message))
            .collect();
        assert_eq!(
            said,
            [
                "line 1: `w[1:5000]` makes more than 1000 hosts",
                "line 3: `[3:1]` ends before it starts"
            ]
        );
    }

    #[test]
    fn a_cycle_of_children_ends() {
        let inv = parse("[a:children]\nb\n[b:children]\na\n[a]\nh1\n").unwrap();
        assert_eq!(inv.entries[0].groups, ["a", "b"]);
    }
}
