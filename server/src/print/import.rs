//! An inventory import: its plan as a table, its notes, and what the new hosts still need; and
//! what `check` found in the database.

use std::io::Write;
use std::path::Path;

use super::hosts::trust_command;
use super::{Printer, Table};
use crate::inventory::Change;
use crate::ops::{Finding, Imported, VarChange};

impl<W: Write + Send + 'static> Printer<W> {
    /// The plan of an import (done or not), the notes on what was left out, and the command
    /// that gives each new host's agent its server key (or, when they were written to the file
    /// `trust_lines`, where they are).
    pub fn imported(&self, imported: &Imported, trust_lines: Option<&Path>) {
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
            for v in imported.variables.iter().filter(|v| v.change != VarChange::Unchanged) {
                let verb = match (imported.applied, v.change) {
                    (true, VarChange::Add) => "set",
                    (true, _) => "changed",
                    (false, VarChange::Add) => "would set",
                    (false, _) => "would change",
                };
                let line = format!("{verb} {} ({})", v.name, v.scope);
                writeln!(out, "{}", crate::sanitize::text(&line))?;
            }
            for note in &imported.notes {
                writeln!(out, "note: {}", crate::sanitize::text(note))?;
            }
            let (add, update, join) = (count(Change::Add), count(Change::Update), count(Change::Join));
            let unchanged = count(Change::Unchanged);
            if imported.applied {
                writeln!(out, "{add} added, {update} updated, {join} joined groups, {unchanged} unchanged; {}", variables(imported))?;
                let added = &imported.added;
                match trust_lines {
                    _ if added.is_empty() => {}
                    Some(file) => writeln!(
                        out,
                        "each new host's agent must trust its server key: {} lines to run on them are in {}",
                        added.len(),
                        file.display()
                    )?,
                    None => {
                        writeln!(out, "each new host's agent must trust its server key; on each, run:")?;
                        for a in added {
                            writeln!(out, "  {:<width$}  {}", a.host, trust_command(&a.server_key), width = added.iter().map(|a| a.host.len()).max().unwrap_or(0))?;
                        }
                    }
                }
            } else {
                writeln!(out, "dry run, nothing changed: {add} to add, {update} to update, {join} to join groups, {unchanged} unchanged; {}", variables(imported))?;
            }
            Ok(())
        });
    }
}
/// How many of an import's variables are set or changed, and unchanged.
fn variables(imported: &Imported) -> String {
    let count = |c: VarChange| imported.variables.iter().filter(|v| v.change == c).count();
    let set = count(VarChange::Add) + count(VarChange::Update);
    let vars = if set == 1 { "variable" } else { "variables" };
    format!(
        "{set} {vars} set, {} unchanged",
        count(VarChange::Unchanged)
    )
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
