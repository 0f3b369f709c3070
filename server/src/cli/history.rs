//! `history` and `events`: what was run (runs and launches), and what happened; written once
//! over [`RunsApi`].

use crate::model::{EventKind, LaunchFilter, RunFilter};
use crate::print::Printer;

use super::CliError;
use super::api::RunsApi;

/// `history`: the past runs `filter` finds, or one run in full.
pub async fn runs(
    api: &impl RunsApi,
    out: &Printer,
    filter: RunFilter,
    run: Option<i64>,
) -> Result<(), CliError> {
    match run {
        Some(id) => out.run_detail(&api.past_run(id).await?),
        None => out.history(&api.history(filter).await?),
    }
    Ok(())
}

/// `history --launches`: the past launches `filter` finds.
pub async fn launches(
    api: &impl RunsApi,
    out: &Printer,
    filter: LaunchFilter,
) -> Result<(), CliError> {
    out.launches(&api.launches(filter).await?);
    Ok(())
}

/// `events`: the event log.
pub async fn events(
    api: &impl RunsApi,
    out: &Printer,
    host: Option<String>,
    kind: Option<EventKind>,
    limit: u32,
) -> Result<(), CliError> {
    out.events(&api.events(host, kind, limit).await?);
    Ok(())
}
