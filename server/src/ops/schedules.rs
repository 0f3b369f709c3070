//! Schedules: a run (a stored script or a command, its hosts and rollout, as `run` takes
//! them) that `serve` starts at the times of a cron pattern in a time zone
//! ([`crate::model::Timing`]). Adding, enabling, disabling and removing one needs the
//! permission `schedules` (and the run level of its job); each is a `schedule-changed` event.
//!
//! When a schedule is due, the server that claims its due time in the store (one, however many
//! share it) starts an ordinary launch ([`Ops::launch`]) linked to the schedule; a schedule
//! whose previous launch is still going starts none and says so (`schedule-skipped`). A time
//! missed while no server ran is caught up once: the next one is counted from now.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{Launches, NewRun, Ops, OpsError, Result};
use crate::model::{DEFAULT_ZONE, EventKind, NewSchedule, Permission, Schedule, Timing, now_ms};
use crate::model::{from_utc, utc};
use crate::names::Kind;
use crate::store::StoreError;

/// How many next times a schedule shows.
pub const NEXT_TIMES: usize = 3;

/// How many of its last launches a schedule shows: one in a list, these many alone.
pub const LAST_LAUNCHES: u32 = 10;

/// A schedule to add: the body of `POST /api/v1/schedules`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddSchedule {
    /// Its name (as a script's).
    pub name: String,
    /// Its cron pattern: 5 fields (minute hour day-of-month month day-of-week), an optional
    /// leading 6th for seconds, or `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`.
    pub cron: String,
    /// Its time zone, an IANA name (`Europe/Berlin`); UTC without one.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Added disabled: `serve` starts it once it is enabled.
    #[serde(default)]
    pub disabled: bool,
    /// What it runs where, as the body of `POST /api/v1/runs`.
    pub run: NewRun,
}

/// A time a schedule is due, in UTC and in its zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DueTime {
    /// The time (RFC 3339 in UTC).
    #[serde(serialize_with = "utc", deserialize_with = "from_utc")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    /// The same time on the schedule zone's clock, with its offset and zone.
    pub local: String,
}

/// One launch a schedule started, with its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScheduledLaunch {
    /// The launch's id (its events: `GET /api/v1/launches/{id}/events`).
    pub launch: u64,
    /// When it started.
    #[serde(serialize_with = "utc", deserialize_with = "from_utc")]
    #[schema(value_type = String, format = DateTime)]
    pub started: i64,
    /// When it ended; null while it runs, or if the server stopped first.
    #[serde(serialize_with = "utc", deserialize_with = "from_utc", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished: Option<i64>,
    /// Its outcome in words: `running`, `succeeded on 3`, `failed on 1 of 3`, …
    pub outcome: String,
    /// Whether every host it addressed succeeded.
    pub success: Option<bool>,
}

/// A schedule as shown.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScheduleEntry {
    /// Its name.
    pub name: String,
    /// Its cron pattern.
    pub cron: String,
    /// Its time zone.
    pub time_zone: String,
    /// Whether `serve` starts it.
    pub enabled: bool,
    /// What it runs (the script's name or `command: …`).
    pub job: String,
    /// What it runs where, as the body of a run.
    pub run: NewRun,
    /// Its next due times (none while disabled): the first is the one `serve` starts it at,
    /// or at once if it is past (a time missed while no server ran).
    pub next: Vec<DueTime>,
    /// Its last launches, newest first (one in a list).
    pub launches: Vec<ScheduledLaunch>,
}

/// The stored schedule's timing; a corrupt row if it no longer parses.
fn timing(s: &Schedule) -> Result<Timing> {
    Timing::parse(&s.cron, &s.time_zone)
        .map_err(|e| StoreError::Corrupt("schedule", format!("{}: {e}", s.name)).into())
}

/// The stored schedule's run.
fn run_of(s: &Schedule) -> Result<NewRun> {
    serde_json::from_str(&s.run)
        .map_err(|e| StoreError::Corrupt("schedule", format!("{}: {e}", s.name)).into())
}

/// A launch's outcome from its last event (the summary as JSON).
fn outcome(launch: &crate::model::Launch) -> (String, Option<bool>) {
    use super::LaunchEvent;
    let Some(text) = &launch.last_event else {
        return match launch.finished {
            None => (
                "running (or cut short by a stop of the server)".into(),
                None,
            ),
            Some(_) => ("ended".into(), None),
        };
    };
    match serde_json::from_str::<LaunchEvent>(text) {
        Ok(LaunchEvent::Summary {
            succeeded,
            failed,
            cancelled,
            skipped,
            ..
        }) => {
            let total = succeeded + failed + cancelled + skipped;
            if succeeded == total {
                (format!("succeeded on {total}"), Some(true))
            } else {
                let mut parts = vec![format!("{succeeded} of {total} succeeded")];
                for (n, what) in [
                    (failed, "failed"),
                    (cancelled, "cancelled"),
                    (skipped, "skipped"),
                ] {
                    if n > 0 {
                        parts.push(format!("{n} {what}"));
                    }
                }
                (parts.join(", "), Some(false))
            }
        }
        Ok(LaunchEvent::Error { message }) => (format!("failed: {message}"), Some(false)),
        _ => ("ended".into(), None),
    }
}

impl Ops {
    /// Adds a schedule: its name free and valid, its pattern and zone known, its job one the
    /// actor may run (a stored script that exists, or a command) on hosts as `run` finds them
    /// now. Needs `schedules`; recorded as `schedule-changed`.
    pub async fn add_schedule(&self, add: AddSchedule) -> Result<ScheduleEntry> {
        self.require(Permission::Schedules)?;
        let zone = add.time_zone.clone().unwrap_or_else(|| DEFAULT_ZONE.into());
        let timing =
            Timing::parse(&add.cron, &zone).map_err(|e| OpsError::Invalid(e.to_string()))?;
        let next_due = timing.next_after(now_ms()).ok_or_else(|| {
            OpsError::Invalid(format!("cron pattern `{}` names no time to come", add.cron))
        })?;
        let (targets, job, _, _) = add.run.clone().parts()?;
        self.require_job(&job).await?;
        self.run_hosts(&targets, &job).await?;
        self.check_new_name(Kind::Schedule, &add.name).await?;
        let run = serde_json::to_string(&add.run).map_err(|e| OpsError::Internal(e.to_string()))?;
        let new = NewSchedule {
            name: add.name.clone(),
            cron: add.cron.trim().to_owned(),
            time_zone: zone.clone(),
            enabled: !add.disabled,
            run,
            next_due: (!add.disabled).then_some(next_due),
        };
        self.fleet.store().add_schedule(&new).await?;
        self.record(
            None,
            EventKind::ScheduleChanged,
            &format!(
                "schedule {} added{}: {} at `{}` ({zone})",
                add.name,
                if add.disabled { " disabled" } else { "" },
                job.label(),
                new.cron
            ),
        )
        .await?;
        self.schedule(&add.name).await
    }

    /// Every schedule with its next times and its last launch, by name.
    pub async fn schedules(&self) -> Result<Vec<ScheduleEntry>> {
        let mut out = Vec::new();
        for s in self.fleet.store().schedules().await? {
            out.push(self.entry(&s, 1).await?);
        }
        Ok(out)
    }

    /// One schedule with its next times and its last launches.
    pub async fn schedule(&self, name: &str) -> Result<ScheduleEntry> {
        let s = self.fleet.store().schedule(name).await?;
        self.entry(&s, LAST_LAUNCHES).await
    }

    async fn entry(&self, s: &Schedule, launches: u32) -> Result<ScheduleEntry> {
        let timing = timing(s)?;
        let run = run_of(s)?;
        let job = run
            .clone()
            .parts()
            .map(|(_, job, _, _)| job.label())
            .unwrap_or_default();
        let next = match s.next_due {
            Some(due) => std::iter::once(due)
                .chain(timing.next_times(due.max(now_ms()), NEXT_TIMES - 1))
                .map(|at| DueTime {
                    at,
                    local: timing.local(at),
                })
                .collect(),
            None => Vec::new(),
        };
        let launches = self
            .fleet
            .store()
            .schedule_launches(s.id, launches)
            .await?
            .iter()
            .map(|l| {
                let (outcome, success) = outcome(l);
                ScheduledLaunch {
                    launch: l.id,
                    started: l.started,
                    finished: l.finished,
                    outcome,
                    success,
                }
            })
            .collect();
        Ok(ScheduleEntry {
            name: s.name.clone(),
            cron: s.cron.clone(),
            time_zone: s.time_zone.clone(),
            enabled: s.enabled,
            job,
            run,
            next,
            launches,
        })
    }

    /// Enables a schedule (due next at its first time from now) or disables it. Needs
    /// `schedules`; recorded as `schedule-changed` when it changes.
    pub async fn set_schedule_enabled(&self, name: &str, enabled: bool) -> Result<ScheduleEntry> {
        self.require(Permission::Schedules)?;
        let s = self.fleet.store().schedule(name).await?;
        if s.enabled != enabled {
            let next_due = if enabled {
                timing(&s)?.next_after(now_ms())
            } else {
                None
            };
            self.fleet
                .store()
                .set_schedule_enabled(name, enabled, next_due)
                .await?;
            let done = if enabled { "enabled" } else { "disabled" };
            self.record(
                None,
                EventKind::ScheduleChanged,
                &format!("schedule {name} {done}"),
            )
            .await?;
        }
        self.schedule(name).await
    }

    /// Removes a schedule (its launches stay in the history). Needs `schedules`; recorded as
    /// `schedule-changed`.
    pub async fn remove_schedule(&self, name: &str) -> Result<()> {
        self.require(Permission::Schedules)?;
        self.fleet.store().remove_schedule(name).await?;
        self.record(
            None,
            EventKind::ScheduleChanged,
            &format!("schedule {name} removed"),
        )
        .await
    }

    /// Starts every schedule due now whose due time this server claims, as the server's own
    /// launch in `launches`; `last` holds each schedule's launch of this process, so that one
    /// still going is skipped (a `schedule-skipped` event). Answers the earliest due time
    /// of the enabled schedules after this pass (ms), if any.
    pub async fn start_due_schedules(
        &self,
        launches: &Launches,
        last: &mut HashMap<i64, u64>,
    ) -> Result<Option<i64>> {
        let now = now_ms();
        let mut earliest: Option<i64> = None;
        let store = self.fleet.store();
        let schedules = store.schedules().await?;
        last.retain(|id, _| schedules.iter().any(|s| s.id == *id));
        for s in schedules {
            let Some(due) = s.next_due.filter(|_| s.enabled) else {
                continue;
            };
            if due > now {
                earliest = Some(earliest.map_or(due, |e| e.min(due)));
                continue;
            }
            let next = match timing(&s) {
                Ok(timing) => timing.next_after(now),
                Err(e) => {
                    tracing::error!(schedule = %s.name, "{e}");
                    continue;
                }
            };
            if !store.claim_schedule(s.id, due, next).await? {
                continue;
            }
            if let Some(next) = next {
                earliest = Some(earliest.map_or(next, |e| e.min(next)));
            }
            if let Some(launch) = last.get(&s.id).filter(|l| launches.running(**l)) {
                let detail = format!(
                    "schedule {}: its launch {launch} is still going, none started",
                    s.name
                );
                self.record(None, EventKind::ScheduleSkipped, &detail)
                    .await?;
                continue;
            }
            let started = match run_of(&s) {
                Ok(run) => self.launch_for(launches, run, Some((s.id, &s.name))).await,
                Err(e) => Err(e),
            };
            match started {
                Ok(launched) => {
                    last.insert(s.id, launched.launch);
                }
                Err(e) => {
                    tracing::warn!(schedule = %s.name, "cannot start: {e}");
                    let detail = format!("schedule {}: cannot start: {e}", s.name);
                    self.record(None, EventKind::ScheduleSkipped, &detail)
                        .await?;
                }
            }
        }
        Ok(earliest)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::model::{NewLaunch, Permissions, RunLevel};
    use crate::ops::ErrorKind;
    use crate::ops::testing::{events, fleet};

    fn every(name: &str, cron: &str) -> AddSchedule {
        AddSchedule {
            name: name.into(),
            cron: cron.into(),
            time_zone: None,
            disabled: false,
            run: NewRun {
                command: Some("true".into()),
                targets: super::super::Targets::hosts(["r1"]),
                ..NewRun::default()
            },
        }
    }

    #[tokio::test]
    async fn adding_checks_pattern_zone_job_hosts_and_name() {
        let (_dir, ops) = fleet(&["r1"]).await;
        let kind = |r: Result<ScheduleEntry>| r.map(|_| ()).unwrap_err().kind();
        assert_eq!(
            kind(ops.add_schedule(every("a", "61 * * * *")).await),
            ErrorKind::Invalid
        );
        assert_eq!(
            kind(ops.add_schedule(every("a", "0 0 30 2 *")).await),
            ErrorKind::Invalid
        );
        let zoned = AddSchedule {
            time_zone: Some("Mars/Olympus".into()),
            ..every("a", "@daily")
        };
        assert_eq!(kind(ops.add_schedule(zoned).await), ErrorKind::Invalid);
        let mut scripted = every("a", "@daily");
        scripted.run.command = None;
        scripted.run.script = Some("nope".into());
        assert_eq!(kind(ops.add_schedule(scripted).await), ErrorKind::NotFound);
        let mut nowhere = every("a", "@daily");
        nowhere.run.targets = super::super::Targets::hosts(["r9"]);
        assert_eq!(kind(ops.add_schedule(nowhere).await), ErrorKind::NotFound);
        let mut both = every("a", "@daily");
        both.run.script = Some("x".into());
        assert_eq!(kind(ops.add_schedule(both).await), ErrorKind::Invalid);
        assert_eq!(
            kind(ops.add_schedule(every("a/b", "@daily")).await),
            ErrorKind::Invalid
        );
        let added = ops.add_schedule(every("a", "@daily")).await.unwrap();
        assert_eq!(added.time_zone, "UTC");
        assert_eq!(added.next.len(), NEXT_TIMES);
        assert_eq!(
            kind(ops.add_schedule(every("A", "@daily")).await),
            ErrorKind::Conflict
        );
        assert_eq!(
            kind(ops.add_schedule(every("a", "@daily")).await),
            ErrorKind::Conflict
        );
        assert!(events(&ops, "schedule-changed").await.len() == 1);
    }

    #[tokio::test]
    async fn changes_need_the_permission_and_the_jobs_run_level() {
        let (_dir, ops) = fleet(&["r1"]).await;
        ops.add_schedule(every("a", "@daily")).await.unwrap();
        let limited = |modify: &[Permission], run| {
            ops.clone().limited_to(Permissions {
                admin: false,
                run,
                modify: modify.iter().copied().collect::<BTreeSet<_>>(),
            })
        };
        let reader = limited(&[], RunLevel::ReadWrite);
        assert_eq!(reader.schedules().await.unwrap().len(), 1);
        for refused in [
            reader.add_schedule(every("b", "@daily")).await.map(|_| ()),
            reader.set_schedule_enabled("a", false).await.map(|_| ()),
            reader.remove_schedule("a").await,
        ] {
            assert_eq!(refused.unwrap_err().kind(), ErrorKind::Forbidden);
        }
        // `schedules`, but only read-only scripts: a command is refused.
        let scheduler = limited(&[Permission::Schedules], RunLevel::ReadOnly);
        let refused = scheduler.add_schedule(every("b", "@daily")).await;
        assert_eq!(
            refused.map(|_| ()).unwrap_err().kind(),
            ErrorKind::Forbidden
        );
        let allowed = limited(&[Permission::Schedules], RunLevel::ReadWrite);
        allowed.set_schedule_enabled("a", false).await.unwrap();
        assert!(ops.schedule("a").await.unwrap().next.is_empty());
        allowed.set_schedule_enabled("a", true).await.unwrap();
        allowed.remove_schedule("a").await.unwrap();
        assert_eq!(events(&ops, "schedule-changed").await.len(), 4);
    }

    /// More launches than a schedule shows: the newest [`LAST_LAUNCHES`] alone, one in a list.
    #[tokio::test]
    async fn a_schedule_shows_its_newest_launches() {
        let (_dir, ops) = fleet(&["r1"]).await;
        ops.add_schedule(every("a", "@daily")).await.unwrap();
        let store = ops.fleet.store();
        let id = store.schedule("a").await.unwrap().id;
        let mut ids = Vec::new();
        for _ in 0..LAST_LAUNCHES + 2 {
            let new = NewLaunch {
                actor: "server".into(),
                job: "command: true".into(),
                hosts: vec!["r1".into()],
                level: crate::model::RunLevel::ReadWrite,
                request: None,
            };
            let launch = store.start_launch(&new).await.unwrap();
            store.link_launch(launch, id).await.unwrap();
            ids.push(launch);
        }
        let shown = ops.schedule("a").await.unwrap();
        let newest: Vec<u64> = ids.iter().rev().take(10).copied().collect();
        assert_eq!(
            shown.launches.iter().map(|l| l.launch).collect::<Vec<_>>(),
            newest
        );
        assert_eq!(
            shown.launches[0].outcome,
            "running (or cut short by a stop of the server)"
        );
        let listed = ops.schedules().await.unwrap();
        assert_eq!(listed[0].launches.len(), 1);
    }

    /// A due time long past (the server was down over several) starts one launch, and the next
    /// due time is counted from now.
    #[tokio::test]
    async fn times_missed_start_one_launch_and_the_next_is_from_now() {
        let (_dir, ops) = fleet(&["r1"]).await;
        ops.add_schedule(every("a", "@hourly")).await.unwrap();
        let store = ops.fleet.store();
        let s = store.schedule("a").await.unwrap();
        let long_ago = now_ms() - 5 * 3_600_000;
        assert!(
            store
                .claim_schedule(s.id, s.next_due.unwrap(), Some(long_ago))
                .await
                .unwrap()
        );
        let launches = Launches::default();
        let mut last = HashMap::new();
        let earliest = ops.start_due_schedules(&launches, &mut last).await.unwrap();
        let next = store.schedule("a").await.unwrap().next_due.unwrap();
        assert_eq!(earliest, Some(next));
        assert!(next > now_ms() && next <= now_ms() + 3_600_000);
        assert_eq!(store.schedule_launches(s.id, 10).await.unwrap().len(), 1);
        assert_eq!(last.len(), 1);
        // Nothing more is due.
        ops.start_due_schedules(&launches, &mut last).await.unwrap();
        assert_eq!(store.schedule_launches(s.id, 10).await.unwrap().len(), 1);
    }
}
