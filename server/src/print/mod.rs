//! How results reach whoever asked: aligned tables and detail views for people, JSON for
//! programs (`--json`). A [`Printer`] takes values already fetched (hosts, scripts, runs,
//! events, the results of actions) and writes them; it does no other IO and knows nothing of
//! where they came from. Its methods are split by subject, one file each, like smoltcp's
//! interface: `hosts`, `import`, `scripts`, `runs` and `history`; `progress` draws bars and a
//! run's status line on a terminal's standard error while the work goes on.
//!
//! A printer writes to any [`Write`] (ripgrep's printers do the same): standard output for the
//! command line, a buffer in tests.

mod database;
mod enrollment;
mod files;
mod history;
mod hosts;
mod import;
mod metrics;
mod progress;
mod runs;
mod schedules;
mod scripts;
mod servers;
mod table;
pub mod units;
mod users;
mod webhooks;

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

use crate::sanitize;

pub use files::OutputFiles;
pub use hosts::{remedy, trust_line};
pub use table::Table;

/// Prints results as tables for people or JSON for programs, to `W`.
pub struct Printer<W = std::io::Stdout> {
    json: bool,
    /// On a terminal, the instant times are shown relative to (`3 min ago`); else they are
    /// shown as RFC 3339 in UTC, for scripts.
    now: Option<jiff::Timestamp>,
    /// Shared with the live output of a run, whose lines come from many tasks.
    out: Arc<Mutex<W>>,
}

impl Printer {
    /// A printer to standard output; on a terminal its times read as how long ago they were.
    pub fn stdout(json: bool) -> Printer {
        let terminal = !json && std::io::IsTerminal::is_terminal(&std::io::stdout());
        Printer {
            now: terminal.then(jiff::Timestamp::now),
            ..Printer::new(json, std::io::stdout())
        }
    }
}

impl<W: Write + Send + 'static> Printer<W> {
    /// A printer to `out`, of JSON if `json`, else of text for people.
    pub fn new(json: bool, out: W) -> Printer<W> {
        Printer {
            json,
            now: None,
            out: Arc::new(Mutex::new(out)),
        }
    }

    /// A time (ms since the epoch) for people: how long ago on a terminal, else RFC 3339 UTC.
    fn time(&self, ms: i64) -> String {
        match self.now {
            Some(now) => units::ago(ms, now),
            None => units::utc(ms),
        }
    }

    /// An optional time as [`Printer::time`], or `-`.
    fn time_or_dash(&self, ms: Option<i64>) -> String {
        ms.map_or_else(|| "-".into(), |ms| self.time(ms))
    }

    /// Whether it prints JSON.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// A message: the text alone, or `{"ok": true, "message": …}`.
    pub fn say(&self, message: &str) {
        if self.json {
            self.json(&serde_json::json!({ "ok": true, "message": message }));
        } else {
            self.print(|out| writeln!(out, "{}", sanitize::text(message)));
        }
    }

    /// A note beside the output, to standard error (so JSON on standard output stays whole):
    /// `otto-server: note: …`.
    pub fn note(&self, message: &str) {
        eprintln!("otto-server: note: {}", sanitize::text(message));
    }

    /// Any value as pretty JSON.
    fn json(&self, value: &impl Serialize) {
        match serde_json::to_string_pretty(value) {
            Ok(text) => self.print(|out| writeln!(out, "{text}")),
            Err(e) => eprintln!("otto-server: cannot write JSON: {e}"),
        }
    }

    /// Prints `items` as JSON, or as a table with `headers` and one `row` per item.
    fn list<T: Serialize>(&self, items: &[T], headers: &[&str], row: impl Fn(&T) -> Vec<String>) {
        if self.json {
            return self.json(&items);
        }
        let mut t = Table::new(headers);
        for item in items {
            t.row(row(item));
        }
        self.print(|out| write!(out, "{t}"));
    }

    /// Writes what `body` writes, at once (lines of a run's live output never interleave).
    fn print(&self, body: impl FnOnce(&mut W) -> std::io::Result<()>) {
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = body(&mut out).and_then(|()| out.flush()) {
            // A closed pipe ends the process (SIGPIPE); anything else is said once per print.
            let _ = writeln!(
                std::io::stderr(),
                "otto-server: cannot write the output: {e}"
            );
        }
    }
}

/// `yes`, `no`, or `-` when unknown.
fn yes_no(b: Option<bool>, yes: &str, no: &str) -> String {
    match b {
        Some(true) => yes.into(),
        Some(false) => no.into(),
        None => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `printer` has printed so far.
    pub(super) fn printed(printer: &Printer<Vec<u8>>) -> String {
        String::from_utf8(printer.out.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn a_message_is_text_or_json() {
        let p = Printer::new(false, Vec::new());
        p.say("r1 enabled\u{1b}");
        assert_eq!(printed(&p), "r1 enabled\\u{1b}\n");
        let p = Printer::new(true, Vec::new());
        p.say("r1 enabled");
        assert_eq!(
            printed(&p),
            "{\n  \"message\": \"r1 enabled\",\n  \"ok\": true\n}\n"
        );
    }
}
