//! What the store kept: past runs, one run with its output, and the event log.

use std::io::Write;

use super::{Printer, units, yes_no};
use crate::sanitize;

impl<W: Write + Send + 'static> Printer<W> {
    /// Past runs, one row each.
    pub fn history(&self, runs: &[crate::model::Run]) {
        self.list(
            runs,
            &[
                "run", "started", "host", "what", "result", "outcome", "elapsed",
            ],
            |r| {
                vec![
                    r.id.to_string(),
                    self.time(r.started),
                    r.host.clone(),
                    r.what.chars().take(40).collect(),
                    result(r, "FAILED"),
                    r.outcome.clone().unwrap_or_else(|| "unfinished".into()),
                    r.elapsed_ms.map_or("-".into(), units::millis),
                ]
            },
        );
    }

    /// Launches, one row each: who started what, when, on how many hosts, and how their runs
    /// stand.
    pub fn launches(&self, launches: &[crate::model::PastLaunch]) {
        self.list(
            launches,
            &[
                "launch",
                "started",
                "by",
                "what",
                "hosts",
                "ok",
                "failed",
                "cancelled",
                "running",
            ],
            |l| {
                vec![
                    l.id.to_string(),
                    self.time(l.started),
                    l.actor.chars().take(30).collect(),
                    l.job.chars().take(40).collect(),
                    l.hosts.len().to_string(),
                    l.runs.succeeded.to_string(),
                    l.runs.failed.to_string(),
                    l.runs.cancelled.to_string(),
                    if l.finished.is_some() {
                        l.runs.running.to_string()
                    } else {
                        format!("{} (not ended)", l.runs.running)
                    },
                ]
            },
        );
    }

    /// One run in full, with its kept output.
    pub fn run_detail(&self, r: &crate::model::Run) {
        if self.json {
            return self.json(r);
        }
        self.print(|out| {
            writeln!(
                out,
                "run {} on {}: {}",
                r.id,
                sanitize::field(&r.host, usize::MAX),
                sanitize::field(&r.what, usize::MAX)
            )?;
            writeln!(out, "  action    {}", r.action)?;
            writeln!(out, "  started   {}", self.time(r.started))?;
            writeln!(out, "  finished  {}", self.time_or_dash(r.finished))?;
            writeln!(
                out,
                "  outcome   {} ({})",
                sanitize::field(r.outcome.as_deref().unwrap_or("unfinished"), usize::MAX),
                result(r, "failed")
            )?;
            if let Some(ms) = r.elapsed_ms {
                writeln!(out, "  elapsed   {}", units::millis(ms))?;
            }
            for (name, data) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
                if !data.is_empty() {
                    writeln!(out, "--- {name}")?;
                    write!(out, "{}", sanitize::text(&String::from_utf8_lossy(data)))?;
                }
            }
            if r.truncated {
                writeln!(out, "--- (output beyond the cap was not kept)")?;
            }
            Ok(())
        });
    }

    /// Events, one row each, with who made each happen.
    pub fn events(&self, events: &[crate::model::Event]) {
        self.list(events, &["time", "host", "event", "detail", "by"], |e| {
            vec![
                self.time(e.at),
                e.host.clone().unwrap_or_else(|| "-".into()),
                e.kind.clone(),
                e.detail.clone(),
                e.actor.clone().unwrap_or_else(|| "-".into()),
            ]
        });
    }
}

/// A run's result: `ok`, `failed` (as given), `cancelled`, or `-` while it runs.
fn result(r: &crate::model::Run, failed: &str) -> String {
    if r.cancelled {
        "cancelled".into()
    } else {
        yes_no(r.success, "ok", failed)
    }
}

impl Printer {
    /// One change of the fleet, as it happens: a line, or a JSON object on a line.
    pub fn change(&self, change: &crate::ops::FleetChange) {
        if self.json {
            match serde_json::to_string(change) {
                Ok(text) => self.print(|out| writeln!(out, "{text}")),
                Err(e) => eprintln!("otto-server: cannot write JSON: {e}"),
            }
            return;
        }
        let host = change.host.as_deref().unwrap_or("-");
        let line = format!("{}  {}  {}", self.time(change.at), change.kind, host);
        self.print(|out| writeln!(out, "{}", sanitize::text(&line)));
    }
}
