//! Ansible's YAML inventory: groups at the top (usually only `all`), each with `hosts` (a map of
//! name to its variables, or nothing), `children` (groups in it) and `vars` (the group's
//! variables; `all`'s are every host's). A host of a child group is in its parents too. The
//! address is `ansible_host` (else the name), the agent's port `otto_port`; a host's other
//! variables are its own. A host's name may hold ranges (`web[01:50]`: see [`ranges`]), one
//! entry per host it makes.

use serde_norway::{Mapping, Value};

use super::{Entry, Inventory, Problem, Var, ansible_port_note, is_connection, ranges};
use crate::model::Scope;

/// Reads a YAML inventory; a part that cannot be used is a problem of the inventory, a text
/// that is no YAML an error.
pub fn parse(text: &str) -> Result<Inventory, Vec<Problem>> {
    let root: Value = serde_norway::from_str(text).map_err(|e| {
        vec![Problem {
            place: e
                .location()
                .map_or_else(|| "the file".into(), |l| format!("line {}", l.line())),
            message: e.to_string(),
        }]
    })?;
    let mut reader = Reader::default();
    match &root {
        Value::Mapping(groups) => {
            for (name, group) in groups {
                reader.group(&key(name), group, &[]);
            }
        }
        Value::Null => {}
        _ => reader.problem("the top", "not a map of groups"),
    }
    let note = ansible_port_note(&reader.ansible_ports);
    reader.inventory.notes.extend(note);
    reader.inventory.problems = reader.problems;
    Ok(reader.inventory)
}

#[derive(Default)]
struct Reader {
    inventory: Inventory,
    problems: Vec<Problem>,
    /// Where `ansible_port` was given (one note for all of them).
    ansible_ports: Vec<String>,
}

impl Reader {
    fn problem(&mut self, place: &str, message: &str) {
        self.problems.push(Problem {
            place: place.to_string(),
            message: message.to_string(),
        });
    }

    /// The group `name` at `node`, inside the groups `outer` (outermost first).
    fn group(&mut self, name: &str, node: &Value, outer: &[String]) {
        let mut path = outer.to_vec();
        path.push(name.to_string());
        let place = path.join(".");
        if path.len() > 32 {
            return self.problem(&place, "groups nested too deep");
        }
        let map = match node {
            Value::Mapping(m) => m,
            Value::Null => return,
            _ => return self.problem(&place, "a group is a map of hosts, children and vars"),
        };
        for (k, v) in map {
            match key(k).as_str() {
                "hosts" => self.hosts(&place, &path, v),
                "children" => match v {
                    Value::Mapping(children) => {
                        for (child, node) in children {
                            self.group(&key(child), node, &path);
                        }
                    }
                    Value::Null => {}
                    _ => self.problem(&place, "children is not a map of groups"),
                },
                "vars" => {
                    let scope = match name {
                        "all" if outer.is_empty() => Some(Scope::Global),
                        "all" | "ungrouped" => None,
                        group => Some(Scope::Group(group.to_string())),
                    };
                    match scope {
                        Some(scope) => self.vars(&format!("{place}.vars"), &scope, v),
                        None => self.inventory.notes.push(format!(
                            "{place}: vars ignored: Otto has no group of the hosts in none"
                        )),
                    }
                }
                other => self.problem(&place, &format!("unknown key `{other}`")),
            }
        }
    }

    /// The hosts of the group at `path`.
    fn hosts(&mut self, place: &str, path: &[String], node: &Value) {
        let hosts = match node {
            Value::Mapping(m) => m,
            Value::Null => return,
            _ => return self.problem(place, "hosts is not a map of host names"),
        };
        let groups: Vec<String> = path
            .iter()
            .filter(|g| !matches!(g.as_str(), "all" | "ungrouped"))
            .cloned()
            .collect();
        for (name, vars) in hosts {
            let name = key(name);
            let here = format!("{place}.hosts.{name}");
            let mut entry = Entry {
                place: here.clone(),
                name,
                address: None,
                port: None,
                groups: groups.clone(),
            };
            let empty = Mapping::new();
            let vars = match vars {
                Value::Mapping(m) => m,
                Value::Null => &empty,
                _ => {
                    self.problem(&here, "a host's variables are a map");
                    continue;
                }
            };
            let mut own = Mapping::new();
            for (k, v) in vars {
                match key(k).as_str() {
                    "ansible_host" => entry.address = Some(key(v)),
                    "otto_port" => match key(v).parse() {
                        Ok(p) if p > 0 => entry.port = Some(p),
                        _ => self.problem(&here, &format!("otto_port {} is not a port", key(v))),
                    },
                    "ansible_port" => self.ansible_ports.push(here.clone()),
                    _ => {
                        own.insert(k.clone(), v.clone());
                    }
                }
            }
            match ranges::expand(&entry.name) {
                Ok(names) => {
                    for name in names {
                        let own = Value::Mapping(own.clone());
                        self.vars(&here, &Scope::Host(name.clone()), &own);
                        self.inventory.entries.push(Entry {
                            name,
                            ..entry.clone()
                        });
                    }
                }
                Err(e) => self.problem(&here, &e.to_string()),
            }
        }
    }
}

impl Reader {
    /// The variables of `scope` that `node` (a map of name to value) gives at `place`; the
    /// connection's (`ansible_*`, `otto_port`) are left alone.
    fn vars(&mut self, place: &str, scope: &Scope, node: &Value) {
        let vars = match node {
            Value::Mapping(m) => m,
            Value::Null => return,
            _ => return self.problem(place, "vars is not a map of names to values"),
        };
        for (k, v) in vars {
            let name = key(k);
            if is_connection(&name) {
                continue;
            }
            let here = format!("{place}.{name}");
            let value = match v {
                Value::Null => String::new(),
                Value::String(_) | Value::Number(_) | Value::Bool(_) => key(v),
                Value::Sequence(_) | Value::Mapping(_) => match serde_json::to_string(v) {
                    Ok(json) => json,
                    Err(e) => {
                        self.problem(&here, &format!("cannot be written as JSON: {e}"));
                        continue;
                    }
                },
                Value::Tagged(t) => {
                    let message = format!(
                        "a {} value cannot be read here (an encrypted one is set with \
                         `env set --secret`)",
                        t.tag
                    );
                    self.problem(&here, &message);
                    continue;
                }
            };
            self.inventory.vars.push(Var {
                place: here,
                scope: scope.clone(),
                name,
                value,
            });
        }
    }
}

/// A scalar as text (names and values may be numbers in YAML).
fn key(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => "?".into(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    const INVENTORY: &str = "\
all:
  hosts:
    bastion:
      ansible_host: 192.0.2.1
  vars:
    ansible_user: root
    ntp_server: 192.0.2.123
  children:
    routers:
      hosts:
        r1:
          ansible_host: 10.0.0.5
          ansible_port: 22
          otto_port: 2222
          uplink: wan
        r2: {ansible_host: 10.0.0.6}
      vars:
        vlans: [10, 20]
        dhcp: true
    site:
      children:
        wifi:
          hosts:
            ap1:
";

    #[test]
    fn groups_children_and_variables() {
        let inv = parse(INVENTORY).unwrap();
        let got: Vec<_> = inv
            .rows()
            .into_iter()
            .map(|(_, name, address, port, groups)| (name, address, port, groups))
            .collect();
        assert_eq!(
            got,
            [
                ("bastion", Some("192.0.2.1"), None, String::new()),
                ("r1", Some("10.0.0.5"), Some(2222), "routers".into()),
                ("r2", Some("10.0.0.6"), None, "routers".into()),
                ("ap1", None, None, "site,wifi".into()),
            ]
        );
        assert_eq!(inv.entries[1].place, "all.routers.hosts.r1");
        assert_eq!(inv.notes.len(), 1);
        assert!(inv.notes[0].contains("ansible_port ignored"));
        let vars = inv.var_rows();
        assert_eq!(
            vars,
            [
                (
                    "all.vars.ntp_server",
                    "global".into(),
                    "ntp_server",
                    "192.0.2.123"
                ),
                (
                    "all.routers.hosts.r1.uplink",
                    "host r1".into(),
                    "uplink",
                    "wan"
                ),
                (
                    "all.routers.vars.vlans",
                    "group routers".into(),
                    "vlans",
                    "[10,20]"
                ),
                (
                    "all.routers.vars.dhcp",
                    "group routers".into(),
                    "dhcp",
                    "true"
                ),
            ]
        );
    }

    #[test]
    fn an_encrypted_value_is_a_problem_naming_its_place() {
        let text = "all:\n  vars:\n    key: !vault |\n      $ANSIBLE_VAULT;1.1;AES256\n";
        let problems = parse(text).unwrap().problems;
        assert_eq!(problems[0].place, "all.vars.key");
        assert!(
            problems[0].message.contains("env set --secret"),
            "{problems:?}"
        );
    }

    #[test]
    fn bad_yaml_and_shapes_are_problems() {
        let syntax = parse("all:\n  hosts: [\n").unwrap_err();
        assert!(syntax[0].place.starts_with("line "));
        let shape = parse("all:\n  hosts: [r1, r2]\n  children: 3\n")
            .unwrap()
            .problems;
        assert_eq!(shape.len(), 2);
        assert_eq!(shape[0].place, "all");
        let port = parse("all:\n  hosts:\n    r1: {otto_port: 0}\n")
            .unwrap()
            .problems;
        assert_eq!(port[0].place, "all.hosts.r1");
    }

    #[test]
    fn ranges_make_one_entry_per_host() {
        let inv = parse("all:\n  hosts:\n    ap[08:10]: {otto_port: 2222}\n").unwrap();
        let names: Vec<_> = inv.rows().into_iter().map(|r| (r.1, r.3)).collect();
        assert_eq!(
            names,
            [
                ("ap08", Some(2222)),
                ("ap09", Some(2222)),
                ("ap10", Some(2222))
            ]
        );
        let many = parse("all:\n  hosts:\n    ap[1:2000]:\n").unwrap().problems;
        assert_eq!(many[0].place, "all.hosts.ap[1:2000]");
        assert_eq!(many[0].message, "`ap[1:2000]` makes more than 1000 hosts");
    }
}
