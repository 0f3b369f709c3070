//! An inventory import: its plan as a table, its notes, and what the new hosts still need; and
//! what `check` found in the database.

use std::io::Write;

use super::{Printer, Table};
use crate::inventory::Change;
use crate::ops::{Finding, Imported};

impl<W: Write + Send + 'static> Printer<W> {
    /// The plan of an import (done or not), the notes on what was left out, and how to give
    /// each new host's agent its server key.
    pub fn imported(&self, imported: &Imported) {
        if self.json {
            return self.json(imported);
        }
        let mut t = Table::new(&["host", "address", "change", "groups"]);
        for s in &imported.steps {
            let change = match (s.change, &s.was) {
                (Change::Add, _) => "add".to_string(),
                (Change::Update, Some(was)) => format!("UPDATE (was {was})"),
                (Change::Update, None) => "UPDATE".into(),
                (Change::Join, _) => "join groups".into(),
                (Change::Unchanged, _) => "unchanged".into(),
            };
            let groups = if s.join.is_empty() {
                "-".into()
            } else {
                format!("+{}", s.join.join(", +"))
            };
            t.row(vec![
                s.host.clone(),
                format!("{}:{}", s.address, s.port),
                change,
                groups,
            ]);
        }
        let count = |c: Change| imported.steps.iter().filter(|s| s.change == c).count();
        self.print(|out| {
            write!(out, "{t}")?;
            for note in &imported.notes {
                writeln!(out, "note: {}", crate::sanitize::text(note))?;
            }
            let (add, update, join) = (count(Change::Add), count(Change::Update), count(Change::Join));
            let unchanged = count(Change::Unchanged);
            if imported.applied {
                writeln!(out, "{add} added, {update} updated, {join} joined groups, {unchanged} unchanged")?;
                if !imported.trust.is_empty() {
                    writeln!(out, "each new host's agent must trust its server key; on each:")?;
                    for line in trust_lines(imported) {
                        writeln!(out, "  {line}")?;
                    }
                }
            } else {
                writeln!(out, "dry run, nothing changed: {add} to add, {update} to update, {join} to join groups, {unchanged} unchanged")?;
            }
            Ok(())
        });
    }
}
impl<W: Write + Send + 'static> Printer<W> {
    /// What `check` found: one row each (names shown escaped), or a line saying all is well.
    pub fn findings(&self, findings: &[Finding]) {
        if self.json {
            return self.json(&findings);
        }
        if findings.is_empty() {
            return self.say("every name, address and port follows the rules");
        }
        let mut t = Table::new(&["kind", "name", "problem"]);
        for f in findings {
            t.row(vec![f.kind.clone(), f.name.clone(), f.problem.clone()]);
        }
        self.print(|out| write!(out, "{t}"));
    }
}

/// The `otto-agent trust '…'` line of each host an import added, after its name:
/// `NAME: otto-agent trust 'KEY'`.
pub fn trust_lines(imported: &Imported) -> Vec<String> {
    imported
        .trust
        .iter()
        .map(|k| format!("{}: otto-agent trust '{}'", k.host, k.server_key))
        .collect()
}
