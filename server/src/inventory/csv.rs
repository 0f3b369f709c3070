//! CSV inventories: a header naming the columns `name`, `address`, `port` and `groups` (only
//! `name` is required; groups `;`-separated), one host a row.

use serde::Deserialize;

use super::{Entry, Inventory, Problem};

#[derive(Deserialize)]
struct Row {
    name: String,
    address: Option<String>,
    port: Option<u16>,
    groups: Option<String>,
}

/// Reads a CSV inventory; a row that cannot be read is a problem of the inventory, a header
/// that cannot be read an error.
pub fn parse(text: &str) -> Result<Inventory, Vec<Problem>> {
    let mut reader = ::csv::ReaderBuilder::new()
        .trim(::csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .cloned()
        .map_err(|e| vec![problem("line 1", &e)])?;
    let mut inventory = Inventory::default();
    let mut problems = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let place = e
                    .position()
                    .map_or("a row".into(), |p| format!("line {}", p.line()));
                problems.push(problem(&place, &e));
                continue;
            }
        };
        let place = record
            .position()
            .map_or("a row".into(), |p| line_of(text, p));
        match record.deserialize::<Row>(Some(&headers)) {
            Ok(row) => inventory.entries.push(Entry {
                place,
                name: row.name,
                address: row.address.filter(|a| !a.is_empty()),
                port: row.port,
                groups: row
                    .groups
                    .iter()
                    .flat_map(|g| g.split(';'))
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(str::to_string)
                    .collect(),
            }),
            Err(e) => problems.push(problem(&place, &e)),
        }
    }
    inventory.problems = problems;
    Ok(inventory)
}

/// `line N` of the record at `position`, counted here from its byte offset up to its first
/// character: the csv crate's own line number is off after a blank line.
fn line_of(text: &str, position: &::csv::Position) -> String {
    let before = text.get(..position.byte() as usize).unwrap_or(text);
    let blank = text
        .get(before.len()..)
        .unwrap_or_default()
        .chars()
        .take_while(|c| c.is_whitespace())
        .filter(|c| *c == '\n')
        .count();
    format!("line {}", before.matches('\n').count() + blank + 1)
}

fn problem(place: &str, e: &::csv::Error) -> Problem {
    Problem {
        place: place.to_string(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn rows_with_groups_and_empty_fields() {
        let inv = parse(
            "name,address,port,groups\n\
             r1,10.0.0.5,2222,routers;site\n\
             \n\
             ap1, 10.0.1.10 ,,\n\
             sw1,,,\n",
        )
        .unwrap();
        let got = inv.rows();
        assert_eq!(
            got,
            [
                (
                    "line 2",
                    "r1",
                    Some("10.0.0.5"),
                    Some(2222),
                    "routers,site".into()
                ),
                ("line 4", "ap1", Some("10.0.1.10"), None, String::new()),
                ("line 5", "sw1", None, None, String::new()),
            ]
        );
    }

    #[test]
    fn columns_may_be_left_out_or_reordered() {
        let inv = parse("groups,name\nlab,r1\n").unwrap();
        assert_eq!(
            (inv.entries[0].name.as_str(), inv.entries[0].groups.clone()),
            ("r1", vec!["lab".to_string()])
        );
    }

    #[test]
    fn bad_rows_are_listed_by_line() {
        let problems = parse("name,address,port\nr1,a,99999\nr2,b,12444\nr3,c,x\n")
            .unwrap()
            .problems;
        let places: Vec<_> = problems.iter().map(|p| p.place.as_str()).collect();
        assert_eq!(places, ["line 2", "line 4"]);
        assert!(!parse("address\n10.0.0.1\n").unwrap().problems.is_empty());
    }
}
