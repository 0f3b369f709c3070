//! Progress on a terminal, drawn on standard error while the work goes on: one bar per host
//! for an upload, and a live count of the hosts done, failed and running for a run. Nothing
//! is drawn with JSON or when standard error is not a terminal; the output is then as without
//! them.

use std::collections::HashMap;
use std::fmt;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::Printer;
use crate::ops::{self, Done, Status};
use crate::sanitize;

/// A bar while its host's upload goes on.
const UPLOADING: &str = "{prefix} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}";
/// A bar once its host's upload has ended: how it ended after the bytes sent.
const UPLOADED: &str = "{prefix} {bar:30} {bytes}/{total_bytes} {msg}";
/// A run's status line.
const STATUS: &str = "{spinner} {msg}";

impl<W: Write + Send + 'static> Printer<W> {
    /// Whether progress is drawn: not with JSON, and only on a terminal.
    fn draws_progress(&self) -> bool {
        !self.json && std::io::stderr().is_terminal()
    }

    /// Where an upload's events go as they happen: with JSON, a `done` line as each host ends;
    /// on a terminal, a bar per host (its name padded to `width`), left with how it ended;
    /// else nowhere.
    pub fn upload_progress(&self, width: usize) -> ops::UploadSink {
        if self.json {
            let out = Arc::clone(&self.out);
            return Arc::new(move |event| {
                if let ops::UploadEvent::Done(done) = event {
                    let value = super::runs::tagged("done", done);
                    let mut out = out.lock().unwrap_or_else(PoisonError::into_inner);
                    let _ = writeln!(out, "{value}").and_then(|()| out.flush());
                }
            });
        }
        if !self.draws_progress() {
            return Arc::new(|_| {});
        }
        let bars = Bars {
            multi: MultiProgress::new(),
            width,
            of_host: Mutex::new(HashMap::new()),
        };
        Arc::new(move |event| bars.show(event))
    }

    /// Where a run's events go as they happen ([`Printer::live_output`]), with, on a terminal,
    /// a status line counting the `hosts` done, failed and running below the output, cleared
    /// once every host has ended.
    pub fn live_run(&self, width: usize, hosts: usize) -> ops::RunSink {
        let live = self.live_output(width);
        if !self.draws_progress() {
            return live;
        }
        let tally = Tally::new(hosts);
        let line = ProgressBar::new_spinner().with_message(tally.to_string());
        let tally = Mutex::new(tally);
        line.set_style(style(STATUS));
        line.enable_steady_tick(Duration::from_millis(100));
        Arc::new(move |event| {
            // The output goes above the status line, never through it.
            if let ops::RunEvent::Line { .. } = event {
                line.suspend(|| live(event));
            } else {
                live(event);
            }
            if let ops::RunEvent::Done(result) = event {
                let mut tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
                tally.add(result.status);
                if tally.running() == 0 {
                    line.finish_and_clear();
                } else {
                    line.set_message(tally.to_string());
                }
            }
        })
    }
}

/// A style from one of the templates above (all valid; the default otherwise).
fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// An upload's bars, one per host, in the order the hosts start.
struct Bars {
    multi: MultiProgress,
    width: usize,
    of_host: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    fn show(&self, event: ops::UploadEvent<'_>) {
        let mut of_host = self.of_host.lock().unwrap_or_else(PoisonError::into_inner);
        match event {
            ops::UploadEvent::Started { host, bytes } => {
                let bar = self.bar(host, bytes);
                of_host.insert(host.to_string(), bar);
            }
            ops::UploadEvent::Sent { host, sent } => {
                if let Some(bar) = of_host.get(host) {
                    bar.set_position(sent);
                }
            }
            ops::UploadEvent::Done(done) => {
                let bar = match of_host.remove(&done.host) {
                    Some(bar) => bar,
                    // A host skipped: a line says so.
                    None => self.bar(&done.host, 0),
                };
                bar.set_style(style(UPLOADED));
                let message = ended(done);
                if done.success {
                    // All of it arrived, whatever progress was told (a remote upload's progress
                    // events may have been dropped on the way).
                    if let Some(length) = bar.length() {
                        bar.set_position(length);
                    }
                    bar.finish_with_message(message);
                } else {
                    bar.abandon_with_message(message);
                }
            }
        }
    }

    /// A new bar for `host`, of `bytes`, below the others.
    fn bar(&self, host: &str, bytes: u64) -> ProgressBar {
        let width = self.width;
        let bar = ProgressBar::new(bytes).with_prefix(format!("{host:<width$}"));
        bar.set_style(style(UPLOADING));
        self.multi.add(bar)
    }
}

/// How a host's upload ended, for its bar.
fn ended(done: &Done) -> String {
    match done.status {
        Status::Ok => super::runs::result_word(done).into(),
        Status::Failed => format!("FAILED: {}", sanitize::text(&done.detail)),
        Status::Skipped => sanitize::text(&done.detail).into_owned(),
        Status::Cancelled => "cancelled".into(),
    }
}

/// How many of a run's hosts have ended, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tally {
    hosts: usize,
    ok: usize,
    failed: usize,
    cancelled: usize,
    skipped: usize,
}

impl Tally {
    fn new(hosts: usize) -> Tally {
        Tally {
            hosts,
            ok: 0,
            failed: 0,
            cancelled: 0,
            skipped: 0,
        }
    }

    fn add(&mut self, status: Status) {
        match status {
            Status::Ok => self.ok += 1,
            Status::Failed => self.failed += 1,
            Status::Skipped => self.skipped += 1,
            Status::Cancelled => self.cancelled += 1,
        }
    }

    /// The hosts not ended yet (running, or waiting for their batch).
    fn running(&self) -> usize {
        self.hosts
            .saturating_sub(self.ok + self.failed + self.cancelled + self.skipped)
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} done, {} failed, {} running",
            self.ok,
            self.failed,
            self.running()
        )?;
        if self.cancelled > 0 {
            write!(f, ", {} cancelled", self.cancelled)?;
        }
        if self.skipped > 0 {
            write!(f, ", {} skipped", self.skipped)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_counts_the_hosts_done_failed_running_cancelled_and_skipped() {
        let mut t = Tally::new(5);
        assert_eq!(t.to_string(), "0 done, 0 failed, 5 running");
        t.add(Status::Ok);
        t.add(Status::Failed);
        assert_eq!(t.to_string(), "1 done, 1 failed, 3 running");
        t.add(Status::Cancelled);
        assert_eq!(t.to_string(), "1 done, 1 failed, 2 running, 1 cancelled");
        t.add(Status::Skipped);
        t.add(Status::Skipped);
        assert_eq!(t.running(), 0);
        assert_eq!(
            t.to_string(),
            "1 done, 1 failed, 0 running, 1 cancelled, 2 skipped"
        );
    }

    #[test]
    fn nothing_is_drawn_with_json_and_json_has_a_done_line_per_host() {
        let p = Printer::new(true, Vec::new());
        let sink = p.upload_progress(2);
        sink(ops::UploadEvent::Started {
            host: "r1",
            bytes: 3,
        });
        sink(ops::UploadEvent::Sent {
            host: "r1",
            sent: 3,
        });
        let done = Done {
            host: "r1".into(),
            success: true,
            status: Status::Ok,
            detail: "3 bytes".into(),
            unreached: false,
            untrusted: None,
            changed: Some(true),
        };
        sink(ops::UploadEvent::Done(&done));
        let line: serde_json::Value =
            serde_json::from_str(&super::super::tests::printed(&p)).unwrap();
        assert_eq!(
            line,
            serde_json::json!({
                "type": "done", "host": "r1", "success": true, "status": "ok",
                "detail": "3 bytes", "changed": true,
            })
        );
    }
}
