//! `secrets …`: the key-encryption key, `secrets.key` in the data directory, which seals the
//! secret variables and the hosts' server keys in the store: making a new one, rotating to it,
//! and sealing again what a server still on the old key sealed. Local only: the key files are
//! the server machine's, each server sharing a database has its own copy.

use std::path::Path;

use clap::Subcommand;

use crate::fleet::FleetError;
use crate::print::Printer;
use crate::store::secrets::{self, KEY_FILE, Keyring, SecretError};
use crate::store::{Reseal, Resealed, Store, StoreError};

use super::CliError;

/// What `secrets` does.
#[derive(Subcommand)]
pub enum SecretsCommand {
    /// Write a new random key as secrets.key.next (mode 0600; refused if there is one): copy
    /// it into the data directory of every server sharing the database, then `rotate-key`.
    NewKey,
    /// Seal every secret variable and server key again with secrets.key.next, in one
    /// transaction, then make it the key: secrets.key becomes secrets.key.old and
    /// secrets.key.next becomes secrets.key. On each other server sharing the database, run
    /// it with --files-only (the same two renames), then `reseal` once on any server.
    RotateKey {
        /// Only the two renames, nothing sealed again: for the other servers sharing the
        /// database, once one has run `rotate-key`.
        #[arg(long)]
        files_only: bool,
    },
    /// Seal again with secrets.key what is sealed with another key (values sealed by a server
    /// that had not switched to the new key yet); afterwards secrets.key.old may be deleted.
    Reseal,
}

/// Whether `command` needs the store (else it only touches the key files).
pub(super) fn needs_store(command: &SecretsCommand) -> bool {
    !matches!(
        command,
        SecretsCommand::NewKey | SecretsCommand::RotateKey { files_only: true }
    )
}

/// Runs `command`, which works on the key files of `data_dir` and, when it needs one
/// ([`needs_store`]), on `store`.
pub(super) async fn execute(
    data_dir: &Path,
    store: Option<&Store>,
    out: &Printer,
    command: SecretsCommand,
) -> Result<(), CliError> {
    let keys = Keyring::new(data_dir.join(KEY_FILE));
    let next = keys.next_path();
    match command {
        SecretsCommand::NewKey => {
            secrets::new_key_file(&next).map_err(secret)?;
            out.say(&format!(
                "new key written as {} (mode 0600). Copy it, keeping mode 0600, into the data \
                 directory of every server sharing this database, then run `otto-server \
                 secrets rotate-key` on one of them.",
                next.display()
            ));
            Ok(())
        }
        SecretsCommand::RotateKey { files_only } => {
            if !next.exists() {
                return Err(CliError::Usage(format!(
                    "there is no {}: make one with `otto-server secrets new-key` (or copy the one \
                     made on another server sharing this database)",
                    next.display()
                )));
            }
            old_is_free(&keys)?;
            let resealed = match (files_only, store) {
                (false, Some(store)) => Some(
                    store
                        .reseal(&Reseal::AllWith(next.clone()))
                        .await
                        .map_err(stored)?,
                ),
                _ => None,
            };
            switch(&keys)?;
            let switched = format!(
                "{} is now the new key and {} the one before.",
                keys.path().display(),
                keys.old_path().display()
            );
            out.say(&match resealed {
                Some(done) => format!(
                    "{} sealed again with the new key. {switched} On every other server \
                     sharing this database, run `otto-server secrets rotate-key --files-only` \
                     (the same two renames; until then it opens values with its \
                     secrets.key.next); once all have, run `otto-server secrets reseal` on one of \
                     them.",
                    counted(done)
                ),
                None => format!(
                    "{switched} Once every server sharing the database has switched, run \
                     `otto-server secrets reseal` on one of them."
                ),
            });
            Ok(())
        }
        SecretsCommand::Reseal => {
            if next.exists() {
                return Err(CliError::Usage(format!(
                    "{} is here: this server has not switched to the new key yet (run \
                     `otto-server secrets rotate-key`, or with --files-only if another server \
                     did); sealing now would seal with the key being replaced",
                    next.display()
                )));
            }
            let Some(store) = store else {
                return Ok(());
            };
            let done = store.reseal(&Reseal::Stale).await.map_err(stored)?;
            let old = keys.old_path();
            let after = if old.exists() {
                format!(
                    " Every value is sealed with {} now: once every server sharing this \
                     database runs with the new key, {} may be deleted (on each of them).",
                    keys.path().display(),
                    old.display()
                )
            } else {
                String::new()
            };
            out.say(&format!("{} sealed again.{after}", counted(done)));
            Ok(())
        }
    }
}

/// `N secret variables and M server keys`, and `K webhook secrets` if there are any.
fn counted(done: Resealed) -> String {
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let variables = plural(done.variables, "secret variable", "secret variables");
    let keys = plural(done.server_keys, "server key", "server keys");
    match done.webhooks {
        0 => format!("{variables} and {keys}"),
        n => format!(
            "{variables}, {keys} and {}",
            plural(n, "webhook secret", "webhook secrets")
        ),
    }
}

/// Makes the next key the key: `secrets.key` is linked as `secrets.key.old` (refused if an
/// older one is there), then `secrets.key.next` is renamed over `secrets.key`, so a key file
/// is there at every moment. Run again after an interruption, it finishes.
fn switch(keys: &Keyring) -> Result<(), CliError> {
    let (key, next, old) = (keys.path(), keys.next_path(), keys.old_path());
    old_is_free(keys)?;
    if key.exists() {
        match std::fs::hard_link(key, &old) {
            Ok(()) => {}
            // The same key (checked above): a switch interrupted after its link.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(CliError::File(old, e)),
        }
    }
    std::fs::rename(&next, key).map_err(|e| CliError::File(key.to_path_buf(), e))?;
    if let Some(dir) = key.parent() {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// Refuses when `secrets.key.old` holds another key than `secrets.key` (one of an earlier
/// rotation, which values may still be sealed with).
fn old_is_free(keys: &Keyring) -> Result<(), CliError> {
    let (key, old) = (keys.path(), keys.old_path());
    if old.exists() && std::fs::read(key).ok() != std::fs::read(&old).ok() {
        return Err(CliError::Usage(format!(
            "{} is there from an earlier rotation: run `otto-server secrets reseal`, then \
             delete it (on every server), before rotating again",
            old.display()
        )));
    }
    Ok(())
}

/// A key file's error, as the data directory's.
fn secret(e: SecretError) -> CliError {
    stored(StoreError::Secret(e))
}

/// A store's error, as the data directory's.
fn stored(e: StoreError) -> CliError {
    CliError::DataDir(FleetError::Store(e))
}
