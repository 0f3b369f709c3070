//! Schedules: a row each, or one in full with its last launches.

use std::io::Write;

use super::{Printer, Table, yes_no};
use crate::ops::{ScheduleEntry, ScheduledLaunch};
use crate::sanitize;

/// The hosts a schedule's run names, in words.
fn hosts(s: &ScheduleEntry) -> String {
    let t = &s.run.targets;
    let mut parts = Vec::new();
    if t.all {
        parts.push("all".to_owned());
    }
    parts.extend(t.hosts.iter().cloned());
    parts.extend(t.groups.iter().map(|g| format!("group {g}")));
    parts.extend(t.exclude.iter().map(|h| format!("not {h}")));
    parts.extend(t.exclude_groups.iter().map(|g| format!("not group {g}")));
    if parts.is_empty() {
        "its script's groups".into()
    } else {
        parts.join(", ")
    }
}

impl<W: Write + Send + 'static> Printer<W> {
    /// The last launch in words: when, and how it went.
    fn last_launch(&self, l: Option<&ScheduledLaunch>) -> String {
        l.map_or_else(
            || "-".into(),
            |l| {
                format!(
                    "{} ({}, launch {})",
                    self.time(l.started),
                    l.outcome,
                    l.launch
                )
            },
        )
    }

    /// Schedules, a row each: the next time in UTC and on the zone's clock, the last launch.
    pub fn schedules(&self, schedules: &[ScheduleEntry]) {
        self.list(
            schedules,
            &[
                "schedule",
                "enabled",
                "cron",
                "job",
                "hosts",
                "next (UTC)",
                "next (zone)",
                "last launch",
            ],
            |s| {
                let next = s.next.first();
                vec![
                    s.name.clone(),
                    yes_no(Some(s.enabled), "yes", "no"),
                    s.cron.clone(),
                    sanitize::field(&s.job, 40),
                    sanitize::field(&hosts(s), 60),
                    next.map_or_else(|| "-".into(), |n| super::units::utc(n.at)),
                    next.map_or_else(|| "-".into(), |n| n.local.clone()),
                    self.last_launch(s.launches.first()),
                ]
            },
        );
    }

    /// One schedule in full: its settings, its next times, its last launches.
    pub fn schedule_detail(&self, s: &ScheduleEntry) {
        if self.json {
            return self.json(s);
        }
        let mut t = Table::new(&["", ""]);
        t.row(vec!["schedule".into(), s.name.clone()]);
        t.row(vec!["enabled".into(), yes_no(Some(s.enabled), "yes", "no")]);
        t.row(vec!["cron".into(), s.cron.clone()]);
        t.row(vec!["time zone".into(), s.time_zone.clone()]);
        t.row(vec!["job".into(), sanitize::field(&s.job, 200)]);
        t.row(vec!["hosts".into(), sanitize::field(&hosts(s), 200)]);
        if let Some(batch) = s.run.rollout.batch {
            t.row(vec!["batch".into(), batch.to_string()]);
        }
        if let Some(max) = s.run.rollout.max_failures {
            t.row(vec!["max failures".into(), max.to_string()]);
        }
        for (i, n) in s.next.iter().enumerate() {
            let label = if i == 0 { "next" } else { "" };
            t.row(vec![
                label.into(),
                format!("{} ({})", super::units::utc(n.at), n.local),
            ]);
        }
        self.print(|out| write!(out, "{t}"));
        if s.launches.is_empty() {
            self.print(|out| writeln!(out, "\nno launch yet"));
            return;
        }
        let mut t = Table::new(&["launch", "started", "finished", "outcome"]);
        for l in &s.launches {
            t.row(vec![
                l.launch.to_string(),
                self.time(l.started),
                self.time_or_dash(l.finished),
                l.outcome.clone(),
            ]);
        }
        self.print(|out| write!(out, "\n{t}"));
    }
}
