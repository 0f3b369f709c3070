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
