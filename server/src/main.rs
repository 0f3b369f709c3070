//! `otto-server`: drives a fleet of Otto agents over SSH (see `otto-server --help`).

use std::process::ExitCode;

use clap::Parser;
use otto_server::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(cli.log_filter()));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(cli.run()),
        Err(e) => {
            eprintln!("otto-server: cannot start: {e}");
            ExitCode::FAILURE
        }
    }
}
