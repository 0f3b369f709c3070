//! `database …`: where the fleet's state is kept, and moving it from SQLite to PostgreSQL.

use std::path::PathBuf;

use clap::Subcommand;

use crate::fleet::{Fleet, FleetOptions};
use crate::print::Printer;
use crate::store::copy::copy_sqlite_to_postgres;
use crate::store::secrets::KEY_FILE;

use super::CliError;

#[derive(Subcommand)]
pub enum DatabaseCommand {
    /// Copy the fleet of an SQLite data directory into the PostgreSQL database that --database
    /// (or OTTO_DATABASE_URL, or server.toml's `database`) names, which must be empty: hosts,
    /// their trust and server keys, groups, scripts with their attachments, environment
    /// variables, the history, launches, events, users, API keys, sessions, schedules and
    /// enrollment. Says what it copied. The data directory's secrets.key is the key every
    /// server on the database must be given (copy it into each one's data directory, mode 0600).
    Copy {
        /// The SQLite data directory (with otto.db and secrets.key) to copy from.
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
    },
}

/// Runs a `database` command against `database`, the PostgreSQL URL given (if any).
pub async fn execute(
    command: DatabaseCommand,
    database: Option<&str>,
    out: &Printer,
) -> Result<(), CliError> {
    match command {
        DatabaseCommand::Copy { from } => {
            let Some(url) = database else {
                return Err(CliError::Usage(
                    "name the PostgreSQL database to copy into: --database URL (or OTTO_DATABASE_URL)"
                        .into(),
                ));
            };
            let db = from.join("otto.db");
            if !db.is_file() {
                return Err(CliError::File(
                    db,
                    std::io::Error::new(std::io::ErrorKind::NotFound, "no fleet database here"),
                ));
            }
            // Opened as a fleet first: brought to this version's schema.
            drop(
                Fleet::open(&from, FleetOptions::default())
                    .await
                    .map_err(CliError::DataDir)?,
            );
            let report = copy_sqlite_to_postgres(&db, url, from.join(KEY_FILE)).await?;
            out.copied(&report, &crate::store::postgres::redact(url));
            Ok(())
        }
    }
}
