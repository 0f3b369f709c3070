//! `schedule …`: runs that `serve` starts at the times of a cron pattern.

use clap::{Args, Subcommand};

use crate::ops::{AddSchedule, NewRun};
use crate::print::Printer;

use super::CliError;
use super::api::SchedulesApi;
use super::parse::parse_timeout_secs;
use super::targets::{RolloutArgs, TargetArgs};

#[derive(Subcommand)]
pub enum ScheduleCommand {
    /// Add a schedule: a stored script or a command, on hosts as `run` takes them, started by
    /// `serve` at the times of a cron pattern.
    Add(Box<AddArgs>),
    /// List schedules with their next time (in UTC and on their zone's clock) and last launch.
    List,
    /// Show a schedule with its next times and its last launches.
    Show {
        /// The schedule.
        name: String,
    },
    /// Enable a schedule: `serve` starts it from its next time on.
    Enable {
        /// The schedule.
        name: String,
    },
    /// Disable a schedule: `serve` no longer starts it (a launch going on goes on).
    Disable {
        /// The schedule.
        name: String,
    },
    /// Remove a schedule (its launches stay in the history).
    Remove {
        /// The schedule.
        name: String,
    },
}

#[derive(Args)]
pub struct AddArgs {
    /// A unique name: 1 to 63 letters, digits, `.`, `_` and `-`, not starting with `.` or `-`.
    pub name: String,
    /// When: 5 fields (minute hour day-of-month month day-of-week, e.g. '30 2 * * 1-5'), a
    /// leading 6th for seconds ('*/10 * * * * *'), or @hourly, @daily, @weekly, @monthly,
    /// @yearly.
    #[arg(long, value_name = "PATTERN")]
    pub cron: String,
    /// The time zone of the pattern's times, an IANA name (Europe/Berlin).
    #[arg(long, value_name = "ZONE", default_value = "UTC")]
    pub tz: String,
    /// The stored script to run.
    #[arg(long, required_unless_present = "command", conflicts_with = "command")]
    pub script: Option<String>,
    /// An ad-hoc shell command instead of a stored script.
    #[arg(short, long)]
    pub command: Option<String>,
    /// Timeout of each run, as `run --timeout` takes it.
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout_secs)]
    pub timeout: Option<u32>,
    #[command(flatten)]
    pub targets: TargetArgs,
    #[command(flatten)]
    pub rollout: RolloutArgs,
    /// Add it disabled (`schedule enable` starts it).
    #[arg(long)]
    pub disabled: bool,
}

/// Runs `schedule …` over `api`.
pub async fn execute(
    api: &impl SchedulesApi,
    out: &Printer,
    command: ScheduleCommand,
) -> Result<(), CliError> {
    match command {
        ScheduleCommand::Add(args) => {
            let add = AddSchedule {
                name: args.name,
                cron: args.cron,
                time_zone: Some(args.tz),
                disabled: args.disabled,
                run: NewRun {
                    script: args.script,
                    command: args.command,
                    timeout_secs: args.timeout,
                    targets: args.targets.targets(),
                    rollout: args.rollout.options(),
                    output_cap: None,
                },
            };
            let entry = api.add_schedule(add).await?;
            out.schedule_detail(&entry);
        }
        ScheduleCommand::List => out.schedules(&api.schedules().await?),
        ScheduleCommand::Show { name } => out.schedule_detail(&api.schedule(&name).await?),
        ScheduleCommand::Enable { name } => {
            api.set_schedule_enabled(&name, true).await?;
            out.say(&format!("schedule {name} enabled"));
        }
        ScheduleCommand::Disable { name } => {
            api.set_schedule_enabled(&name, false).await?;
            out.say(&format!("schedule {name} disabled"));
        }
        ScheduleCommand::Remove { name } => {
            api.remove_schedule(&name).await?;
            out.say(&format!("schedule {name} removed"));
        }
    }
    Ok(())
}
