//! `completions` and `man`: shell completions and man pages made from the clap definitions, of
//! this server and of the agent. The agent has no clap (it must stay small), so its command
//! line is described here as a clap [`Command`] too, kept true to `otto-agent --help` by a test.

use std::io::Write;
use std::path::PathBuf;

use clap::{Arg, Args, Command, CommandFactory};
use clap_complete::Shell;

use super::{Cli, CliError};

/// `completions`' arguments.
#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    shell: Shell,
    /// Those of otto-agent instead.
    #[arg(long)]
    agent: bool,
}

/// `man`'s arguments.
#[derive(Args)]
pub struct ManArgs {
    /// Write every page (one per command, e.g. otto-server-host-add.1) into this directory
    /// instead of printing the main one.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The page of otto-agent instead.
    #[arg(long)]
    agent: bool,
}

/// The command line of the program asked for: this server's, or the agent's.
fn program(agent: bool) -> Command {
    if agent {
        agent_command()
    } else {
        Cli::command()
    }
}

/// `completions`: the completion script for a shell, to standard output. The server's
/// registers its dynamic completion (the shell asks `otto-server` itself, found on the PATH,
/// which completes host, group, script and schedule names too: see [`super::complete`]); the
/// agent's is generated whole (it has no clap to ask).
pub fn completions(args: &CompletionsArgs) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    if args.agent {
        let mut cmd = agent_command();
        let name = cmd.get_name().to_owned();
        clap_complete::generate(args.shell, &mut cmd, name, &mut out);
        return Ok(());
    }
    let shell = args.shell.to_string();
    let registered = clap_complete::env::Shells::builtins()
        .completer(&shell)
        .map(|shell| {
            let name = "otto-server";
            shell.write_registration(super::complete::VAR, name, name, name, &mut out)
        });
    match registered {
        Some(written) => written
            .and_then(|()| out.flush())
            .map_err(|e| CliError::File("standard output".into(), e)),
        // Every shell clap_complete generates for can register the dynamic completion.
        None => {
            let mut cmd = Cli::command();
            clap_complete::generate(args.shell, &mut cmd, "otto-server", &mut out);
            Ok(())
        }
    }
}

/// `man`: the program's man page (roff) to standard output, or every page into a directory.
pub fn man(args: &ManArgs) -> Result<(), CliError> {
    // Every command has its own page; a `help` command would only repeat them.
    let cmd = program(args.agent).disable_help_subcommand(true);
    match &args.dir {
        Some(dir) => clap_mangen::generate_to(cmd, dir).map_err(|e| CliError::File(dir.clone(), e)),
        None => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .and_then(|()| out.flush())
                .map_err(|e| CliError::File("standard output".into(), e))
        }
    }
}

/// What follows the agent's options in its man page.
const AGENT_NOTES: &str = "\
The configuration is `key = value` lines (listen, key, server_key, allow_from, path, \
script_timeout, log_level, …); see docs/agent.md of Otto.

Signals: SIGHUP reloads the configuration; SIGTERM and SIGINT stop the agent.

Exit codes: 0 stopped by a signal; 1 a runtime failure; 64 bad usage; 75 the server asked it to \
exit (the service manager restarts it); 78 the configuration or key is unusable.";

/// The agent's command line (`otto-agent --help`), as a clap command.
pub fn agent_command() -> Command {
    Command::new("otto-agent")
        .version(env!("CARGO_PKG_VERSION"))
        .about(
            "The Otto agent: the SSH server on a router that runs what its one trusted server asks",
        )
        .subcommand_required(true)
        .disable_help_subcommand(true)
        .arg(
            Arg::new("config")
                .long("config")
                .value_name("FILE")
                .global(true)
                .help("the configuration file (default /etc/otto/agent.conf)"),
        )
        .subcommand(Command::new("run").about("serve the Otto protocol (the service)"))
        .subcommand(
            Command::new("pubkey")
                .about("print this agent's public key, making the key on first use"),
        )
        .subcommand(
            Command::new("trust")
                .about("trust this server public key, replacing any other")
                .arg(
                    Arg::new("key")
                        .required(true)
                        .value_name("KEY")
                        .help("the server's public key, 'ssh-ed25519 AAAA…'"),
                ),
        )
        .subcommand(
            Command::new("enroll")
                .about(
                    "join a server's fleet and trust the key it answers with: --server \
                     ADDR[:PORT] --fingerprint SHA256:… --token TOKEN (or --token-file FILE, or \
                     OTTO_ENROLL_TOKEN) [--name NAME]",
                )
                .arg(
                    Arg::new("server")
                        .long("server")
                        .required(true)
                        .value_name("ADDR[:PORT]")
                        .help("the server's call-home address (port 12445 unless given)"),
                )
                .arg(
                    Arg::new("fingerprint")
                        .long("fingerprint")
                        .required(true)
                        .value_name("SHA256:…")
                        .help("the fingerprint of the server's enrollment key"),
                )
                .arg(
                    Arg::new("token")
                        .long("token")
                        .value_name("TOKEN")
                        .help("the enrollment token (or OTTO_ENROLL_TOKEN, kept out of ps)"),
                )
                .arg(
                    Arg::new("token-file")
                        .long("token-file")
                        .value_name("FILE")
                        .conflicts_with("token")
                        .help("read the token from the first line of FILE"),
                )
                .arg(
                    Arg::new("name")
                        .long("name")
                        .value_name("NAME")
                        .help("the host name to ask for (the server chooses otherwise)"),
                ),
        )
        .after_help(AGENT_NOTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_command_lines_are_consistent() {
        Cli::command().debug_assert();
        agent_command().debug_assert();
    }
}
