//! Actions as they happen and when they end: a run's live output, an upload's progress bar,
//! a run's summary, and the results of other actions.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, PoisonError};

use otto_proto::Stream;

use super::{Printer, units};
use crate::ops::{self, Done};
use crate::sanitize;

impl<W: Write + Send + 'static> Printer<W> {
    /// Where a run's output goes as it arrives: `HOST | line` (`!` for standard error), host
    /// names padded to `width`; nothing with JSON, which has only the summary.
    pub fn live_output(&self, width: usize) -> ops::LineSink {
        let json = self.json;
        let out = Arc::clone(&self.out);
        Arc::new(move |host, stream, line| {
            if !json {
                let mark = if stream == Stream::Stderr { '!' } else { '|' };
                let mut out = out.lock().unwrap_or_else(PoisonError::into_inner);
                // Like `println!`, whose place this takes: a closed pipe ends the process.
                let _ = writeln!(out, "{host:<width$} {mark} {}", sanitize::line(line))
                    .and_then(|()| out.flush());
            }
        })
    }

    /// A progress bar on standard error for `total` bytes, hidden with JSON or when standard
    /// error is not a terminal.
    pub fn progress(&self, total: u64) -> indicatif::ProgressBar {
        let bar = if self.json || !std::io::stderr().is_terminal() {
            indicatif::ProgressBar::hidden()
        } else {
            indicatif::ProgressBar::new(total)
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    }

    /// How a run ended on each host, and how many succeeded.
    pub fn run_summary(&self, results: &[ops::RunResult]) {
        if self.json {
            return self.json(&results);
        }
        let ok = results.iter().filter(|r| r.success).count();
        self.print(|out| writeln!(out));
        self.list(
            results,
            &["host", "result", "outcome", "elapsed", "run"],
            |r| {
                vec![
                    r.host.clone(),
                    if r.success { "ok" } else { "FAILED" }.into(),
                    r.outcome.clone(),
                    r.elapsed_ms.map_or("-".into(), units::millis),
                    r.run.map_or("-".into(), |id| id.to_string()),
                ]
            },
        );
        self.print(|out| writeln!(out, "{ok} of {} hosts succeeded", results.len()));
    }

    /// The results of an action (upload, control, rotation, cancel), one row per host.
    pub fn done(&self, results: &[Done]) {
        self.list(results, &["host", "result", "detail"], |d| {
            vec![
                d.host.clone(),
                if d.success { "ok" } else { "FAILED" }.into(),
                d.detail.clone(),
            ]
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::printed;
    use super::*;

    fn results() -> Vec<Done> {
        vec![
            Done {
                host: "r1".into(),
                success: true,
                detail: "reloaded".into(),
            },
            Done {
                host: "router-2".into(),
                success: false,
                detail: "no answer".into(),
            },
        ]
    }

    #[test]
    fn results_are_a_table_for_people() {
        let p = Printer::new(false, Vec::new());
        p.done(&results());
        assert_eq!(
            printed(&p),
            "host      result  detail\n\
             r1        ok      reloaded\n\
             router-2  FAILED  no answer\n"
        );
    }

    #[test]
    fn results_are_an_array_of_objects_in_json() {
        let p = Printer::new(true, Vec::new());
        p.done(&results());
        let value: serde_json::Value = serde_json::from_str(&printed(&p)).unwrap();
        assert_eq!(
            value,
            serde_json::json!([
                { "host": "r1", "success": true, "detail": "reloaded" },
                { "host": "router-2", "success": false, "detail": "no answer" },
            ])
        );
    }

    #[test]
    fn live_output_marks_standard_error_and_pads_hosts() {
        let p = Printer::new(false, Vec::new());
        let sink = p.live_output(8);
        sink("r1", Stream::Stdout, "hello");
        sink("router-2", Stream::Stderr, "oops\u{1b}");
        assert_eq!(printed(&p), "r1       | hello\nrouter-2 ! oops\\u{1b}\n");
        // JSON has only the summary.
        let p = Printer::new(true, Vec::new());
        p.live_output(8)("r1", Stream::Stdout, "hello");
        assert_eq!(printed(&p), "");
    }
}
