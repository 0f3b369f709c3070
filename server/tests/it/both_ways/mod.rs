//! Commands both ways: each table runs its commands on two identical fleets, one on its data
//! directory and one through `--server` against a real `serve`, row by row (so that changes are
//! compared too), and asserts the same exit code (the one the row expects) and the same output,
//! with what differs between two fleets by nature masked by the table's [`Masks`].
//!
//! - [`hosts`]: `host …` and `group …`;
//! - [`scripts`]: `script …`, `attachment …`, `env …`, `user …`, `apikey …` and `check`;
//! - [`runs`]: the commands on hosts (`ping`, `run`, `cancel`, `upload`, the control commands,
//!   `history`, `events`);
//! - [`schedules`]: `schedule …`.
//! - [`enrollment`]: `enrollment …`.

mod enrollment;
mod hosts;
mod runs;
mod schedules;
mod scripts;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::harness::{BOUND, Server, text};
use crate::http::{Daemon, key_of};
use crate::remote::client;
use crate::users::add_user;

/// One command of a table: its arguments, what it reads on standard input, its exit code.
pub struct Row {
    args: Vec<String>,
    input: Option<&'static str>,
    code: i32,
}

/// `args`, to exit with `code`.
pub fn row(args: &[&str], code: i32) -> Row {
    Row {
        args: args.iter().map(|a| a.to_string()).collect(),
        input: None,
        code,
    }
}

/// `args` with `input` on standard input, to exit with `code`.
pub fn fed(args: &[&str], input: &'static str, code: i32) -> Row {
    Row {
        input: Some(input),
        ..row(args, code)
    }
}

/// What a table compares of a row's two runs, with what differs between two fleets by nature
/// masked.
pub trait Masks {
    /// Standard output `out` of `args`, as compared.
    fn stdout(args: &[&str], out: &[u8]) -> Value;

    /// Asserts that what `args` said on standard error through the server (`there`) is what it
    /// said locally (`here`); by default standard error is not compared.
    fn stderr(_args: &[&str], _here: &[u8], _there: &[u8]) {}
}

/// Runs `cmd` with `input` (if any) on standard input, to its end within the harness's bound
/// (a hang guard, not a timing).
async fn output(mut cmd: Command, input: Option<&'static str>) -> Output {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let run = tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = input {
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(input.as_bytes()).unwrap();
        }
        child.wait_with_output().unwrap()
    });
    tokio::time::timeout(BOUND, run).await.unwrap().unwrap()
}

/// Two fleets made alike, each with an administrator `root` and a reader `rita` (the same ids in
/// both): `local`, driven on its data directory, and `remote`, served by a real `serve`.
pub struct Both {
    /// The fleet driven on its data directory.
    pub local: Server,
    /// The fleet driven through `serve`.
    pub remote: Server,
    /// `serve` of `remote`.
    pub daemon: Daemon,
    /// The client's own data directory, which it must leave empty.
    pub elsewhere: tempfile::TempDir,
    /// The API key of `root` on `remote`.
    pub root: String,
    /// The API key of `rita` on `remote`.
    pub rita: String,
}

impl Both {
    /// `local` and `remote`, made alike by the caller, given their users; `remote` served.
    pub fn new(local: Server, remote: Server) -> Both {
        for server in [&local, &remote] {
            add_user(server, "root", &["--admin"]);
            add_user(server, "rita", &[]);
        }
        let (root, rita) = (key_of(&remote, "root"), key_of(&remote, "rita"));
        key_of(&local, "root");
        key_of(&local, "rita");
        let daemon = Daemon::start(&remote, &[]);
        Both {
            local,
            remote,
            daemon,
            elsewhere: tempfile::tempdir().unwrap(),
            root,
            rita,
        }
    }

    /// Two fleets, each made by `make`, as [`Both::new`] takes them.
    pub fn alike(make: impl Fn(&Server)) -> Both {
        let (local, remote) = (Server::new(), Server::new());
        make(&local);
        make(&remote);
        Both::new(local, remote)
    }

    /// `args` (with `input`) on the local fleet's data directory.
    pub async fn here(&self, args: &[&str], input: Option<&'static str>) -> Output {
        output(self.local.command(args), input).await
    }

    /// `args` (with `input`) through the server, with API key `key`.
    pub async fn there(&self, key: &str, args: &[&str], input: Option<&'static str>) -> Output {
        let cmd = client(
            self.elsewhere.path(),
            &self.remote,
            self.daemon.base(),
            Some(key),
            args,
        );
        output(cmd, input).await
    }

    /// Runs `row` both ways (through the server as `root`) and asserts the same exit code, the
    /// row's, and the same output as `M` compares it; returns both outputs, local first.
    pub async fn check<M: Masks>(&self, row: &Row) -> (Output, Output) {
        let args: Vec<&str> = row.args.iter().map(String::as_str).collect();
        let here = self.here(&args, row.input).await;
        let there = self.there(&self.root, &args, row.input).await;
        assert_eq!(
            here.status.code(),
            Some(row.code),
            "{args:?} locally: {}",
            text(&here)
        );
        assert_eq!(
            there.status.code(),
            Some(row.code),
            "{args:?} through the server: {}",
            text(&there)
        );
        assert_eq!(
            M::stdout(&args, &here.stdout),
            M::stdout(&args, &there.stdout),
            "{args:?}: locally\n{}\nthrough the server\n{}",
            text(&here),
            text(&there)
        );
        M::stderr(&args, &here.stderr, &there.stderr);
        (here, there)
    }
}
