//! Completion of names in the shell: clap_complete's dynamic completion (the shell runs
//! `COMPLETE=bash otto-server -- WORDS…` as the user types; `completions SHELL` prints the
//! script that registers it). Host, group, script and schedule names are completed after the
//! options and arguments that take them, read from where the command line being completed
//! would work, as its global options typed so far, the environment and the configuration file
//! say: through `--server`, the API's lists (with the key and certificate `--server` commands
//! use); with PostgreSQL (`--database`), the database's tables over one connection; else the
//! data directory's SQLite database (read-only, never created). A server or database that does
//! not answer within 1.5 s, or any failure, completes nothing: the shell never hangs, and no
//! error is printed among the candidates. `--where` completes the names of the facts.

use std::ffi::OsStr;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Command, CommandFactory};
use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};

use super::api::{GroupsApi, HostsApi, SchedulesApi, ScriptsApi};
use super::remote::Remote;
use super::{Cli, CliError, default_data_dir, is_root};
use crate::config;

/// The longest a completion waits for a server or a PostgreSQL database (connecting included)
/// before completing nothing.
const WAIT: Duration = Duration::from_millis(1500);

/// The environment variable that asks for completions (`COMPLETE=bash`).
pub const VAR: &str = "COMPLETE";

/// What an argument names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Names {
    Hosts,
    Groups,
    Scripts,
    Schedules,
    Facts,
}

impl Names {
    /// What the argument `id` of the command at `path` (its parents' names, then its own)
    /// names, if any of these.
    fn of(id: &str, path: &[&str]) -> Option<Names> {
        let under = path.first().copied().unwrap_or_default();
        Some(match id {
            "hosts" | "host" | "exclude" => Names::Hosts,
            "groups" | "group" | "exclude_group" => Names::Groups,
            "script" => Names::Scripts,
            "selectors" => Names::Facts,
            "name" | "names" => match under {
                "host" => Names::Hosts,
                "group" => Names::Groups,
                "script" | "attachment" => Names::Scripts,
                "schedule" => Names::Schedules,
                _ => return None,
            },
            _ => return None,
        })
    }

    /// The names there are now, sorted; none when they cannot be read.
    fn known(self) -> Vec<String> {
        let table = match self {
            Names::Hosts => "hosts",
            Names::Groups => "groups",
            Names::Scripts => "scripts",
            Names::Schedules => "schedules",
            Names::Facts => {
                return crate::selectors::fact_names().map(str::to_owned).collect();
            }
        };
        let mut names = match Source::of_line() {
            None => Vec::new(),
            Some(Source::Sqlite(file)) => stored(&file, table),
            Some(Source::Postgres(url)) => waited(async move {
                crate::store::postgres::names(&url, table, WAIT)
                    .await
                    .unwrap_or_default()
            }),
            Some(Source::Server {
                url,
                key_file,
                ca_cert,
            }) => waited(async move {
                let Ok(remote) = Remote::new(&url, key_file.as_deref(), ca_cert.as_deref(), WAIT)
                else {
                    return Vec::new();
                };
                self.served(&remote).await.unwrap_or_default()
            }),
        };
        names.sort();
        names
    }

    /// The names the server behind `remote` lists.
    async fn served(self, remote: &Remote) -> Result<Vec<String>, CliError> {
        Ok(match self {
            Names::Hosts => HostsApi::hosts(remote, &[])
                .await?
                .hosts
                .into_iter()
                .map(|entry| entry.host.name)
                .collect(),
            Names::Groups => remote.groups().await?.into_iter().map(|g| g.name).collect(),
            Names::Scripts => remote
                .scripts()
                .await?
                .into_iter()
                .map(|s| s.name)
                .collect(),
            Names::Schedules => remote
                .schedules()
                .await?
                .into_iter()
                .map(|s| s.name)
                .collect(),
            // The facts' names are this program's own: `known` gives them.
            Names::Facts => Vec::new(),
        })
    }

    /// The candidates for `current`, the word typed so far: a comma list's last item is
    /// completed after the items before it.
    fn complete(self, current: &OsStr) -> Vec<CompletionCandidate> {
        let current = current.to_string_lossy();
        let (before, last) = match current.rsplit_once(',') {
            Some((before, last)) if self != Names::Facts => (format!("{before},"), last),
            _ => (String::new(), current.as_ref()),
        };
        self.known()
            .into_iter()
            .filter(|name| name.starts_with(last))
            .map(|name| CompletionCandidate::new(format!("{before}{name}")))
            .collect()
    }
}

/// The command line's definition with the completers of names added: what the shell's
/// completion asks of (see [`VAR`]).
pub fn command() -> Command {
    with_completers(Cli::command(), &[])
}

/// `cmd` (at `path` below the program) and its subcommands, each argument that names hosts,
/// groups, scripts, schedules or facts completing them.
fn with_completers(mut cmd: Command, path: &[&str]) -> Command {
    let named: Vec<(String, Names)> = cmd
        .get_arguments()
        .filter_map(|arg| {
            let id = arg.get_id().as_str();
            Names::of(id, path).map(|names| (id.to_owned(), names))
        })
        .collect();
    for (id, names) in named {
        let completer = ArgValueCompleter::new(move |current: &OsStr| names.complete(current));
        cmd = cmd.mut_arg(id, |arg| arg.add(completer));
    }
    let subcommands: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    for name in subcommands {
        let mut below = path.to_vec();
        below.push(&name);
        cmd = cmd.mut_subcommand(&name, |sub| with_completers(sub, &below));
    }
    cmd
}

/// Where the command line being completed would read the fleet's names.
enum Source {
    /// The data directory's SQLite database, which is there.
    Sqlite(PathBuf),
    /// A PostgreSQL database, by its URL.
    Postgres(String),
    /// A running `serve`, with what `--server` commands reach it with.
    Server {
        /// Its URL.
        url: String,
        /// The file holding the API key (else the environment's).
        key_file: Option<PathBuf>,
        /// The certificate to trust (else the system's roots).
        ca_cert: Option<PathBuf>,
    },
}

impl Source {
    /// Where the command line being completed works, as its global options typed so far, the
    /// environment and the configuration file say (in that order, as when it runs): a server
    /// before PostgreSQL before the data directory; none when that directory has no database.
    fn of_line() -> Option<Source> {
        let file = set("config", "OTTO_CONFIG")
            .map(PathBuf::from)
            .or_else(|| config::default_path(is_root()))
            .filter(|path| path.exists())
            .and_then(|path| config::load(&path).ok())
            .unwrap_or_default();
        let text = |value: std::ffi::OsString| value.to_string_lossy().into_owned();
        if let Some(url) = set("server", "OTTO_SERVER").map(text).or(file.server) {
            return Some(Source::Server {
                url,
                key_file: set("api-key-file", "OTTO_API_KEY_FILE")
                    .map(PathBuf::from)
                    .or(file.api_key_file),
                ca_cert: set("ca-cert", "OTTO_CA_CERT")
                    .map(PathBuf::from)
                    .or(file.ca_cert),
            });
        }
        if let Some(url) = set("database", "OTTO_DATABASE_URL")
            .map(text)
            .or(file.database)
        {
            return Some(Source::Postgres(url));
        }
        let dir = set("data-dir", "OTTO_DATA_DIR")
            .map(PathBuf::from)
            .or(file.data_dir)
            .unwrap_or_else(default_data_dir);
        let db = dir.join("otto.db");
        db.exists().then_some(Source::Sqlite(db))
    }
}

/// What `future` gives within [`WAIT`] on a runtime of its own, else nothing. The runtime is
/// left behind at once, with whatever is still blocked (a name being resolved).
fn waited(future: impl Future<Output = Vec<String>>) -> Vec<String> {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Vec::new();
    };
    let names =
        runtime.block_on(async { tokio::time::timeout(WAIT, future).await.unwrap_or_default() });
    runtime.shutdown_background();
    names
}

/// The names in `table` of the SQLite database `file`, sorted; none when it cannot be read.
fn stored(file: &std::path::Path, table: &str) -> Vec<String> {
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let Ok(db) = rusqlite::Connection::open_with_flags(file, flags) else {
        return Vec::new();
    };
    // A completion waits little for a writer.
    let _ = db.busy_timeout(Duration::from_millis(200));
    let sql = format!("SELECT name FROM {table} ORDER BY name");
    let Ok(mut select) = db.prepare(&sql) else {
        return Vec::new();
    };
    select
        .query_map([], |row| row.get::<_, String>(0))
        .map(|rows| rows.flatten().collect())
        .unwrap_or_default()
}

/// The value of the global option `--flag` typed on the line, else the environment variable
/// `name`'s (one set to nothing counts as unset, as when the command runs).
fn set(flag: &str, name: &str) -> Option<std::ffi::OsString> {
    typed(flag).or_else(|| std::env::var_os(name).filter(|v| !v.is_empty()))
}

/// The value of the global option `--flag` as typed on the line being completed (which the
/// shell passes after `--`), if it is there.
fn typed(flag: &str) -> Option<std::ffi::OsString> {
    let words: Vec<std::ffi::OsString> = std::env::args_os().skip_while(|w| w != "--").collect();
    let long = format!("--{flag}");
    let joined = format!("--{flag}=");
    let mut words = words.iter();
    while let Some(word) = words.next() {
        let text = word.to_string_lossy();
        if text == long {
            return words.next().cloned();
        }
        if let Some(value) = text.strip_prefix(&joined) {
            return Some(value.into());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arguments_that_name_things_are_known_by_their_place() {
        assert_eq!(Names::of("hosts", &["run"]), Some(Names::Hosts));
        assert_eq!(Names::of("exclude_group", &["ping"]), Some(Names::Groups));
        assert_eq!(Names::of("name", &["host", "show"]), Some(Names::Hosts));
        assert_eq!(Names::of("name", &["script", "show"]), Some(Names::Scripts));
        assert_eq!(Names::of("name", &["user", "show"]), None);
        assert_eq!(Names::of("selectors", &["run"]), Some(Names::Facts));
        assert_eq!(Names::of("data_dir", &[]), None);
    }

    #[test]
    fn facts_complete_from_what_is_typed() {
        let got: Vec<String> = Names::Facts
            .complete(OsStr::new("fla"))
            .iter()
            .map(|c| c.get_value().to_string_lossy().into_owned())
            .collect();
        assert_eq!(got, ["flash_total", "flash_free"]);
    }

    #[test]
    fn the_command_line_with_completers_is_still_valid() {
        command().debug_assert();
    }
}
