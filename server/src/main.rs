//! `otto-server`: drives a fleet of Otto agents over SSH (see `otto-server --help`).

use std::io::IsTerminal;
use std::process::ExitCode;

use otto_server::cli::Cli;
use tokio::signal::unix::{SignalKind, signal};

/// The allocator: jemalloc, whose freed pages go back to the system whichever thread freed
/// them, where glibc's arenas kept a heartbeat round's garbage for good (`docs/api-bench.md`,
/// "The allocator").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read before `main`: two arenas (tokio's workers and its blocking
/// threads share them; each thread keeps its own small cache), and freed pages returned to the
/// system within a second (`dirty_decay_ms`) rather than kept as "muzzy" pages. The environment
/// variable `_RJEM_MALLOC_CONF` overrides them.
#[unsafe(export_name = "_rjem_malloc_conf")]
static ALLOCATOR_SETTINGS: Option<&'static std::ffi::c_char> =
    // SAFETY: a pointer to the first byte of a static C string, valid for the whole program.
    Some(unsafe { &*c"narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0".as_ptr() });

/// The most threads for blocking work at once.
const BLOCKING_THREADS: usize = 16;

fn main() -> ExitCode {
    // The shell asking for completions (`COMPLETE=bash otto-server -- …`): answered, then exit.
    clap_complete::CompleteEnv::with_factory(otto_server::cli::complete::command)
        .var(otto_server::cli::complete::VAR)
        .complete();
    let cli = match Cli::parse_with_config() {
        Ok(cli) => cli,
        Err(e) => {
            // A configuration file that cannot be used is bad usage, as a bad flag is.
            eprintln!("otto-server: {e}");
            return ExitCode::from(2);
        }
    };
    if !cli.is_daemon() {
        // Like every Unix tool, end quietly when the reader of our output goes away
        // (`otto-server history | head`) instead of failing on the next write.
        // SAFETY: restoring the default disposition of a signal at start-up, before any thread.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(cli.log_filter()));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogWriter)
        .with_ansi(colours(
            std::env::var_os("NO_COLOR").as_deref(),
            std::io::stderr().is_terminal(),
        ))
        .init();
    // One worker per core; blocking work (SQLite reads, which take one connection in turn, and
    // file I/O) on a few threads, however many hosts are at work: a pool of the default 512
    // grew a thread per host in flight.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("otto-server: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let interruptible = cli.is_interruptible();
        if !cli.is_daemon() && !interruptible {
            // Every other command keeps the default SIGTERM and SIGINT: they end the process.
            return cli.run(std::future::pending()).await;
        }
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                let shutdown = async move {
                    tokio::select! {
                        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                        _ = int.recv() => tracing::info!("SIGINT: stopping"),
                    }
                    if interruptible {
                        // `run` and `upload` are cancelling their work on the hosts; a second
                        // signal ends the process at once.
                        tokio::spawn(async move {
                            tokio::select! {
                                _ = term.recv() => {}
                                _ = int.recv() => {}
                            }
                            eprintln!(
                                "otto-server: interrupted again: exiting now; \
                                 runs on the hosts may stay unfinished"
                            );
                            std::process::exit(130);
                        });
                    }
                };
                cli.run(shutdown).await
            }
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("otto-server: cannot handle signals: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Whether to colour what goes to a stream: only a terminal, and not when `NO_COLOR` (its value
/// given) is set to anything but the empty string (<https://no-color.org>).
fn colours(no_color: Option<&std::ffi::OsStr>, terminal: bool) -> bool {
    terminal && no_color.is_none_or(|value| value.is_empty())
}

/// Standard error for logs, ignoring write errors: a daemon whose log reader went away (a closed
/// pipe) keeps working instead of failing on its next log line.
struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::colours;

    #[test]
    fn colours_only_on_a_terminal_and_never_with_no_color() {
        let set = Some(std::ffi::OsStr::new("1"));
        let empty = Some(std::ffi::OsStr::new(""));
        assert!(colours(None, true));
        assert!(colours(empty, true));
        assert!(!colours(set, true));
        assert!(!colours(None, false));
        assert!(!colours(empty, false));
    }
}
