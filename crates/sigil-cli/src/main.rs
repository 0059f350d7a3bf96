//! `sigil`: get, set, list and inject secrets. Exit codes: see [`failure`].

#![allow(clippy::print_stdout)] // this is the binary: stdout is its output

mod cli;
mod cmd_config;
mod cmd_edit;
mod cmd_export;
mod cmd_import;
mod cmd_promote;
mod cmd_remote;
mod cmd_run;
mod cmd_secrets;
mod cmd_server;
mod failure;
mod loaded;
mod out;
mod select;

use std::process::ExitCode;

/// mimalloc: the server's hot path allocates across threads (the runtime's workers and the
/// SQLite writer), where glibc's arenas contend; see bench/README.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

pub use failure::{EXIT_ERROR, EXIT_OK, UsageError};

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                failure::EXIT_USAGE
            } else {
                EXIT_OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logging(cli.verbose);
    sigil_client::register();
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => failure.report(),
    }
}

fn dispatch(cli: cli::Cli) -> failure::Result<u8> {
    use cli::Command;
    tracing::debug!(command = cli.command.label(), "starting");
    match cli.command {
        Command::Secrets { command } => cmd_secrets::run(command),
        Command::Run(args) => cmd_run::run(args),
        Command::Import(args) => cmd_import::run(args),
        Command::Export(args) => cmd_export::run(args),
        Command::Config { command } => cmd_config::run(command),
        Command::Server(args) => cmd_server::run(*args),
        Command::Login(args) => cmd_remote::login(args),
        Command::Keys { command } => cmd_remote::keys(command),
        Command::Teams { command } => cmd_remote::teams(command),
        Command::Audit(args) => cmd_remote::audit(args),
        Command::Completions { shell } => {
            let mut cmd = <cli::Cli as clap::CommandFactory>::command();
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, "sigil", &mut buf);
            out::write_stdout(&buf)?;
            Ok(EXIT_OK)
        }
    }
}

/// Logs go to stderr. `SIGIL_LOG` sets the level (`error`, `warn`, `info`, `debug`, `trace`);
/// each `-v` raises it by one from `warn`.
fn init_logging(verbose: u8) {
    use tracing::level_filters::LevelFilter;
    let from_env = std::env::var("SIGIL_LOG")
        .ok()
        .and_then(|v| v.parse::<LevelFilter>().ok());
    let level = from_env.unwrap_or(match verbose {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    });
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
}
