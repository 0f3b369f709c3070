//! JSON inventories: a list of objects with `name` and, optionally, `address`, `port` and
//! `groups` (a list of names).

use serde::Deserialize;

use super::{Entry, Inventory, Problem};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Item {
    name: String,
    address: Option<String>,
    port: Option<u16>,
    #[serde(default)]
    groups: Vec<String>,
}

/// Reads a JSON inventory; an item that cannot be read is a problem of the inventory, a text
/// that is no JSON list an error.
pub fn parse(text: &str) -> Result<Inventory, Vec<Problem>> {
    let items: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|e| {
        vec![Problem {
            place: format!("line {}", e.line()),
            message: e.to_string(),
        }]
    })?;
    let mut inventory = Inventory::default();
    let mut problems = Vec::new();
    for (i, value) in items.into_iter().enumerate() {
        let place = format!("item {}", i + 1);
        match serde_json::from_value::<Item>(value) {
            Ok(item) => inventory.entries.push(Entry {
                place,
                name: item.name,
                address: item.address,
                port: item.port,
                groups: item.groups,
            }),
            Err(e) => problems.push(Problem {
                place,
                message: e.to_string(),
            }),
        }
    }
    inventory.problems = problems;
    Ok(inventory)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn a_list_of_hosts() {
        let inv = parse(
            r#"[
              {"name": "r1", "address": "10.0.0.5", "port": 2222, "groups": ["routers", "site"]},
              {"name": "ap1"}
            ]"#,
        )
        .unwrap();
        assert_eq!(inv.entries.len(), 2);
        assert_eq!(inv.entries[0].place, "item 1");
        assert_eq!(inv.entries[0].port, Some(2222));
        assert_eq!(inv.entries[0].groups, ["routers", "site"]);
        assert_eq!(
            (inv.entries[1].address.clone(), inv.entries[1].port),
            (None, None)
        );
    }

    #[test]
    fn bad_items_are_listed() {
        let problems = parse(r#"[{"name": "r1", "port": 70000}, {"name": "r2"}, {"nam": "r3"}]"#)
            .unwrap()
            .problems;
        let places: Vec<_> = problems.iter().map(|p| p.place.as_str()).collect();
        assert_eq!(places, ["item 1", "item 3"]);
        assert_eq!(parse("{}").unwrap_err()[0].place, "line 1");
    }
}
