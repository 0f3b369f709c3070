//! `history` and `events`: what was run, and what happened.

use crate::fleet::Fleet;
use crate::print::Printer;

use super::CliError;

/// `history`: past runs, or one run in full.
pub async fn runs(
    fleet: &Fleet,
    out: &Printer,
    host: Option<&str>,
    run: Option<i64>,
    limit: u32,
) -> Result<(), CliError> {
    let store = fleet.store();
    match run {
        Some(id) => out.run_detail(&store.run(id).await?),
        None => out.history(&store.runs(host, limit).await?),
    }
    Ok(())
}

/// `events`: the event log.
pub async fn events(
    fleet: &Fleet,
    out: &Printer,
    host: Option<&str>,
    limit: u32,
) -> Result<(), CliError> {
    out.events(&fleet.store().events(host, limit).await?);
    Ok(())
}
