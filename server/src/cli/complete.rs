//! Completion of names in the shell: clap_complete's dynamic completion (the shell runs
//! `COMPLETE=bash otto-server -- WORDS…` as the user types; `completions SHELL` prints the
//! script that registers it). Host, group, script and schedule names are completed after the
//! options and arguments that take them, read from the data directory's database (read-only,
//! never created); with PostgreSQL (`--database`) or through `--server` there is no local list,
//! and names are not completed. `--where` completes the names of the facts.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Command, CommandFactory};
use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};

use super::{Cli, default_data_dir, is_root};
use crate::config;

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

    /// The names there are now.
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
        stored(table)
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

/// The names in `table` of the data directory's database, sorted; none when there is no such
/// database here (not made yet, PostgreSQL, or through a server), or it cannot be read.
fn stored(table: &str) -> Vec<String> {
    let Some(file) = database_file() else {
        return Vec::new();
    };
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

/// The SQLite database the command line being completed would use, as its global options
/// typed so far, the environment and the configuration file say: none if it uses PostgreSQL
/// or a server, or the file is not there.
fn database_file() -> Option<PathBuf> {
    let set = |flag: &str, name: &str| {
        typed(flag).or_else(|| std::env::var_os(name).filter(|v| !v.is_empty()))
    };
    if set("database", "OTTO_DATABASE_URL").is_some() || set("server", "OTTO_SERVER").is_some() {
        return None;
    }
    let file = set("config", "OTTO_CONFIG")
        .map(PathBuf::from)
        .or_else(|| config::default_path(is_root()))
        .filter(|path| path.exists())
        .and_then(|path| config::load(&path).ok());
    if file
        .as_ref()
        .is_some_and(|f| f.database.is_some() || f.server.is_some())
    {
        return None;
    }
    let dir = set("data-dir", "OTTO_DATA_DIR")
        .map(PathBuf::from)
        .or_else(|| file.and_then(|f| f.data_dir))
        .unwrap_or_else(default_data_dir);
    Some(dir.join("otto.db")).filter(|db| db.exists())
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
