//! Actions as they happen and when they end: a run's live output, an upload's progress bar,
//! a run's summary, and the results of other actions.

use std::io::Write;
use std::sync::{Arc, PoisonError};

use otto_proto::Stream;
use serde::Serialize;

use super::{Printer, units};
use crate::fleet::Untrusted;
use crate::ops::{self, Done, Status};
use crate::sanitize;

impl<W: Write + Send + 'static> Printer<W> {
    /// What a dry run found: what would be done, with its checksums, on which hosts; then
    /// that nothing was (or the JSON object).
    pub fn dry_run(&self, plan: &ops::DryRun) {
        if self.json {
            return self.json(plan);
        }
        let n = plan.hosts.len();
        let hosts = if n == 1 { "host" } else { "hosts" };
        let checksum = plan
            .sha256
            .as_ref()
            .map(|s| format!(" (SHA-256 {s})"))
            .unwrap_or_default();
        let mut lines = vec![format!(
            "would do {}{checksum} on {n} {hosts}: {}",
            plan.what,
            plan.hosts.join(", ")
        )];
        for f in &plan.files {
            let when = match f.phase {
                Some(phase) => format!(" {} it", phase.as_str()),
                None => String::new(),
            };
            let kind = if f.template { ", a template" } else { "" };
            lines.push(format!(
                "  with {}{when} ({} bytes, SHA-256 {}{kind})",
                f.path, f.size, f.sha256
            ));
            for r in &f.rendered {
                let rendered = match (&r.error, r.size, &r.sha256) {
                    (Some(why), _, _) => format!("cannot be rendered: {why}"),
                    (None, Some(size), Some(sha256)) => {
                        format!("rendered to {size} bytes, SHA-256 {sha256}")
                    }
                    _ => "not rendered".into(),
                };
                lines.push(format!("    {}: {rendered}", r.host));
            }
        }
        for f in &plan.on_hosts {
            let there = match (&f.error, f.size, &f.sha256) {
                (Some(why), _, _) => format!("cannot tell: {why}"),
                (None, Some(size), Some(sha256)) => format!("has {size} bytes, SHA-256 {sha256}"),
                _ => "has no such file".into(),
            };
            let verdict = match f.unchanged {
                Some(true) => "unchanged (nothing would be sent); ",
                Some(false) => "would change; ",
                None => "",
            };
            lines.push(format!("  {}: {verdict}{there}", f.host));
        }
        lines.push("dry run: nothing was done".into());
        self.print(|out| {
            for line in &lines {
                writeln!(out, "{}", sanitize::text(line))?;
            }
            Ok(())
        });
    }

    /// Where a run's events go as they happen: with JSON, each output line and each host's
    /// end as a JSON line (see [`Printer::event`]); else each output line as `HOST | line`
    /// (`!` for standard error), host names padded to `width`.
    pub fn live_output(&self, width: usize) -> ops::RunSink {
        if self.json {
            return self.json_events();
        }
        let out = Arc::clone(&self.out);
        Arc::new(move |event| {
            let ops::RunEvent::Line { host, stream, text } = event else {
                return;
            };
            let mark = if stream == Stream::Stderr { '!' } else { '|' };
            let mut out = out.lock().unwrap_or_else(PoisonError::into_inner);
            // Like `println!`, whose place this takes: a closed pipe ends the process.
            let _ = writeln!(out, "{host:<width$} {mark} {}", sanitize::line(text))
                .and_then(|()| out.flush());
        })
    }

    /// A run's events as JSON lines: `output` (host, stream, text) and `done` (the host's
    /// result, as the summary has it).
    fn json_events(&self) -> ops::RunSink {
        let out = Arc::clone(&self.out);
        Arc::new(move |event| {
            let value = match event {
                ops::RunEvent::Line { host, stream, text } => serde_json::json!({
                    "type": "output",
                    "host": host,
                    "stream": match stream {
                        Stream::Stdout => "stdout",
                        Stream::Stderr => "stderr",
                    },
                    "text": text,
                }),
                ops::RunEvent::Done(result) => tagged("done", result),
                ops::RunEvent::Data { .. } => return,
            };
            let mut out = out.lock().unwrap_or_else(PoisonError::into_inner);
            let _ = writeln!(out, "{value}").and_then(|()| out.flush());
        })
    }

    /// With JSON, the first line of a run or upload: `{"type": "started", "hosts": […], …}`
    /// with `fields` (the job, or the file); nothing for people.
    pub fn started(&self, hosts: &[&str], fields: serde_json::Value) {
        if !self.json {
            return;
        }
        let mut value = serde_json::json!({ "type": "started", "hosts": hosts });
        if let (Some(map), serde_json::Value::Object(fields)) = (value.as_object_mut(), fields) {
            map.extend(fields);
        }
        self.event(&value);
    }

    /// One JSON line, written at once.
    fn event(&self, value: &serde_json::Value) {
        self.print(|out| writeln!(out, "{value}"));
    }

    /// The last JSON line of a run or upload: how many hosts succeeded, failed and were
    /// skipped (`statuses`), and each host's result.
    fn json_summary<T: Serialize>(&self, results: &[T], statuses: impl Iterator<Item = Status>) {
        let count = Count::of(statuses);
        self.event(&serde_json::json!({
            "type": "summary",
            "succeeded": count.ok,
            "failed": count.failed,
            "cancelled": count.cancelled,
            "skipped": count.skipped,
            "results": results,
        }));
    }

    /// An upload's results: with JSON, the summary (each host's `done` line came as it ended,
    /// see [`Printer::upload_progress`]); else the table.
    pub fn uploaded(&self, results: &[Done]) {
        if !self.json {
            return self.done(results);
        }
        self.json_summary(results, results.iter().map(|d| d.status));
    }

    /// A file upload's results: the table, then how many hosts' files changed, were unchanged
    /// (already as asked: nothing sent) and failed; with JSON, the summary with `changed` and
    /// `unchanged` among its counts (each host's `done` line came as it ended).
    pub fn upload_summary(&self, results: &[Done]) {
        let unchanged = results
            .iter()
            .filter(|d| d.success && d.changed == Some(false))
            .count();
        let count = Count::of(results.iter().map(|d| d.status));
        let changed = count.ok - unchanged;
        if self.json {
            return self.event(&serde_json::json!({
                "type": "summary",
                "succeeded": count.ok,
                "changed": changed,
                "unchanged": unchanged,
                "failed": count.failed,
                "cancelled": count.cancelled,
                "skipped": count.skipped,
                "results": results,
            }));
        }
        self.done(results);
        let also = count.cancelled_and_skipped();
        self.print(|out| {
            writeln!(
                out,
                "{changed} changed, {unchanged} unchanged, {} failed{also}",
                count.failed
            )
        });
    }

    /// How a run ended on each host, and how many succeeded.
    pub fn run_summary(&self, results: &[ops::RunResult]) {
        if self.json {
            return self.json_summary(results, results.iter().map(|r| r.status));
        }
        let count = Count::of(results.iter().map(|r| r.status));
        self.print(|out| writeln!(out));
        self.list(
            results,
            &["host", "result", "outcome", "elapsed", "run"],
            |r| {
                vec![
                    r.host.clone(),
                    word(r.status).into(),
                    with_remedy(&r.outcome, r.untrusted.as_ref()),
                    r.elapsed_ms.map_or("-".into(), units::millis),
                    r.run.map_or("-".into(), |id| id.to_string()),
                ]
            },
        );
        let also = count.cancelled_and_skipped();
        self.print(|out| {
            writeln!(
                out,
                "{} of {} hosts succeeded{also}",
                count.ok,
                results.len()
            )
        });
    }

    /// The results of an action (upload, control, rotation, cancel), one row per host.
    pub fn done(&self, results: &[Done]) {
        self.list(results, &["host", "result", "detail"], |d| {
            vec![
                d.host.clone(),
                result_word(d).into(),
                with_remedy(&d.detail, d.untrusted.as_ref()),
            ]
        });
    }
}

/// How a host's part ended, with the command that trusts its agent when that is why it
/// failed.
fn with_remedy(said: &str, untrusted: Option<&Untrusted>) -> String {
    match untrusted {
        Some(untrusted) => format!("{said} ({})", super::remedy(untrusted)),
        None => said.to_string(),
    }
}

/// A host's result in a table: as [`word`] says, but `unchanged` for an upload that found the
/// host's file already as asked.
pub(super) fn result_word(done: &Done) -> &'static str {
    match (done.status, done.changed) {
        (Status::Ok, Some(false)) => "unchanged",
        (status, _) => word(status),
    }
}

/// A host's result in a table: `ok`, `FAILED`, `skipped` or `cancelled`.
fn word(status: Status) -> &'static str {
    match status {
        Status::Ok => "ok",
        Status::Failed => "FAILED",
        Status::Skipped => "skipped",
        Status::Cancelled => "cancelled",
    }
}

/// How many hosts succeeded, failed, were cancelled and were skipped.
#[derive(Debug, Default, PartialEq, Eq)]
struct Count {
    ok: usize,
    failed: usize,
    cancelled: usize,
    skipped: usize,
}

impl Count {
    fn of(statuses: impl Iterator<Item = Status>) -> Count {
        let mut count = Count::default();
        for status in statuses {
            match status {
                Status::Ok => count.ok += 1,
                Status::Failed => count.failed += 1,
                Status::Skipped => count.skipped += 1,
                Status::Cancelled => count.cancelled += 1,
            }
        }
        count
    }

    /// `, N cancelled, M skipped`, each only when there are any: what a summary says after
    /// its main count.
    fn cancelled_and_skipped(&self) -> String {
        let and = |n: usize, what: &str| match n {
            0 => String::new(),
            n => format!(", {n} {what}"),
        };
        format!(
            "{}{}",
            and(self.cancelled, "cancelled"),
            and(self.skipped, "skipped")
        )
    }
}

/// `value`'s fields (an object) after `"type": kind`.
pub(super) fn tagged(kind: &str, value: &impl Serialize) -> serde_json::Value {
    let mut tagged = serde_json::json!({ "type": kind });
    if let (Some(map), Ok(serde_json::Value::Object(fields))) =
        (tagged.as_object_mut(), serde_json::to_value(value))
    {
        map.extend(fields);
    }
    tagged
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
                status: Status::Ok,
                detail: "reloaded".into(),
                unreached: false,
                untrusted: None,
                changed: None,
            },
            Done {
                host: "router-2".into(),
                success: false,
                status: Status::Failed,
                detail: "no answer".into(),
                unreached: false,
                untrusted: None,
                changed: None,
            },
        ]
    }

    #[test]
    fn an_upload_says_which_hosts_changed_and_counts_them() {
        let mut results = results();
        results[0].changed = Some(false);
        results[0].detail = "unchanged".into();
        results.push(Done {
            host: "r3".into(),
            changed: Some(true),
            detail: "3 bytes, sha256 verified".into(),
            ..results[0].clone()
        });
        let p = Printer::new(false, Vec::new());
        p.upload_summary(&results);
        assert_eq!(
            printed(&p),
            "host      result     detail\n\
             r1        unchanged  unchanged\n\
             router-2  FAILED     no answer\n\
             r3        ok         3 bytes, sha256 verified\n\
             1 changed, 1 unchanged, 1 failed\n"
        );
        let p = Printer::new(true, Vec::new());
        p.upload_summary(&results);
        let summary: serde_json::Value = serde_json::from_str(&printed(&p)).unwrap();
        assert_eq!(
            (
                &summary["changed"],
                &summary["unchanged"],
                &summary["failed"]
            ),
            (&1.into(), &1.into(), &1.into())
        );
        assert_eq!(summary["results"][0]["changed"], false);
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
                { "host": "r1", "success": true, "status": "ok", "detail": "reloaded" },
                {
                    "host": "router-2", "success": false, "status": "failed",
                    "detail": "no answer",
                },
            ])
        );
    }

    #[test]
    fn live_output_marks_standard_error_and_pads_hosts() {
        let p = Printer::new(false, Vec::new());
        let sink = p.live_output(8);
        sink(line("r1", Stream::Stdout, "hello"));
        sink(line("router-2", Stream::Stderr, "oops\u{1b}"));
        assert_eq!(printed(&p), "r1       | hello\nrouter-2 ! oops\\u{1b}\n");
    }

    fn line<'a>(host: &'a str, stream: Stream, text: &'a str) -> ops::RunEvent<'a> {
        ops::RunEvent::Line { host, stream, text }
    }

    #[test]
    fn a_cancelled_host_is_counted_as_cancelled_not_failed() {
        let result = |host: &str, status, outcome: &str| ops::RunResult {
            host: host.into(),
            run: None,
            success: false,
            status,
            outcome: outcome.into(),
            exit_code: None,
            elapsed_ms: None,
            unreached: false,
            untrusted: None,
        };
        let results = [
            result("r1", Status::Failed, "exit 1"),
            result("r2", Status::Cancelled, "cancelled"),
        ];
        let p = Printer::new(false, Vec::new());
        p.run_summary(&results);
        let shown = printed(&p);
        assert!(shown.contains("r2    cancelled  cancelled"), "{shown}");
        assert!(
            shown.ends_with("0 of 2 hosts succeeded, 1 cancelled\n"),
            "{shown}"
        );
        let p = Printer::new(true, Vec::new());
        p.run_summary(&results);
        let summary: serde_json::Value = serde_json::from_str(&printed(&p)).unwrap();
        let counts = ["succeeded", "failed", "cancelled", "skipped"].map(|k| &summary[k]);
        assert_eq!(counts, [0, 1, 1, 0]);
    }

    #[test]
    fn a_run_in_json_is_one_event_per_line() {
        let p = Printer::new(true, Vec::new());
        p.started(&["r1"], serde_json::json!({ "job": "backup" }));
        let sink = p.live_output(8);
        sink(line("r1", Stream::Stderr, "oops\u{1b}"));
        let result = ops::RunResult {
            host: "r1".into(),
            run: Some(4),
            success: false,
            status: Status::Failed,
            outcome: "exit 1".into(),
            exit_code: Some(1),
            elapsed_ms: Some(12),
            unreached: false,
            untrusted: None,
        };
        sink(ops::RunEvent::Done(&result));
        p.run_summary(std::slice::from_ref(&result));
        let lines: Vec<serde_json::Value> = printed(&p)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let done = serde_json::json!({
            "host": "r1", "run": 4, "success": false, "status": "failed", "outcome": "exit 1",
            "exit_code": 1, "elapsed_ms": 12,
        });
        let mut tagged_done = done.clone();
        tagged_done["type"] = "done".into();
        assert_eq!(
            lines,
            [
                serde_json::json!({ "type": "started", "hosts": ["r1"], "job": "backup" }),
                serde_json::json!({
                    "type": "output", "host": "r1", "stream": "stderr", "text": "oops\u{1b}",
                }),
                tagged_done,
                serde_json::json!({
                    "type": "summary", "succeeded": 0, "failed": 1, "cancelled": 0, "skipped": 0,
                    "results": [done],
                }),
            ]
        );
    }
}
