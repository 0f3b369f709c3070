//! `otto-server`: drives Otto agents over SSH.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The Otto server.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a real otto-agent on this machine and drive it: keys, heartbeat, script, upload,
    /// cancel, key rotation, history.
    Demo {
        /// The otto-agent binary (default: beside this executable).
        #[arg(long)]
        agent_bin: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("otto-server: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Demo { agent_bin } => {
            let agent_bin = agent_bin.unwrap_or_else(|| {
                std::env::current_exe()
                    .ok()
                    .and_then(|exe| exe.parent().map(|dir| dir.join("otto-agent")))
                    .unwrap_or_else(|| PathBuf::from("otto-agent"))
            });
            runtime.block_on(otto_server::demo::run(&agent_bin))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("otto-server: {e}");
            ExitCode::FAILURE
        }
    }
}
