//! `history` and `events`: what was run, and what happened.

use crate::model::EventKind;
use crate::ops::Ops;
use crate::print::Printer;

use super::CliError;

/// `history`: past runs, or one run in full.
pub async fn runs(
    ops: &Ops,
    out: &Printer,
    host: Option<&str>,
    run: Option<i64>,
    limit: u32,
) -> Result<(), CliError> {
    match run {
        Some(id) => out.run_detail(&ops.past_run(id).await?),
        None => out.history(&ops.history(host, limit).await?),
    }
    Ok(())
}

/// `events`: the event log.
pub async fn events(
    ops: &Ops,
    out: &Printer,
    host: Option<&str>,
    kind: Option<EventKind>,
    limit: u32,
) -> Result<(), CliError> {
    out.events(&ops.events(host, kind, limit).await?);
    Ok(())
}
