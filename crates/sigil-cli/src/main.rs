//! `sigil`: get, set, list and inject secrets.
//!
//! Exit codes: 0 success, 1 error, 2 usage error, 3 secret not found; `sigil run` passes on its
//! command's exit code (128 + N when the command was killed by signal N, 127 when it does not
//! exist, 126 when it cannot be executed).

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
mod loaded;
mod out;
mod select;

use std::process::ExitCode;

/// mimalloc: the server's hot path allocates across threads (the runtime's workers and the
/// SQLite writer), where glibc's arenas contend; see bench/README.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: any error not listed below.
pub const EXIT_ERROR: u8 = 1;
/// Exit code: the command line is wrong.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: a secret was not found.
pub const EXIT_NOT_FOUND: u8 = 3;

/// An error in how sigil was called (exit code 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A command's own exit code, passed on as it is (`sigil run`).
#[derive(Debug)]
pub struct PassExit(pub u8);

impl std::fmt::Display for PassExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}", self.0)
    }
}

impl std::error::Error for PassExit {}

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logging(cli.verbose);
    sigil_client::register();
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => report(&err),
    }
}

fn dispatch(cli: cli::Cli) -> anyhow::Result<u8> {
    use cli::Command;
    tracing::debug!(command = cli.command.label(), "starting");
    match cli.command {
        Command::Secrets { command } => cmd_secrets::run(command),
        Command::Run(args) => cmd_run::run(args),
        Command::Import(args) => cmd_import::run(args),
        Command::Export(args) => cmd_export::run(args),
        Command::Config { command } => cmd_config::run(command),
        Command::Server(args) => cmd_server::run(args),
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

fn report(err: &anyhow::Error) -> ExitCode {
    if let Some(PassExit(code)) = err.downcast_ref::<PassExit>() {
        return ExitCode::from(*code);
    }
    if out::is_broken_pipe(err) {
        return ExitCode::from(EXIT_OK);
    }
    eprintln!("error: {err:#}");
    let code = if err.downcast_ref::<UsageError>().is_some() {
        EXIT_USAGE
    } else if let Some(e) = err.downcast_ref::<sigil_core::Error>() {
        if e.is_not_found() {
            EXIT_NOT_FOUND
        } else {
            EXIT_ERROR
        }
    } else if let Some(sigil_client::ClientError::NotFound { .. }) =
        err.downcast_ref::<sigil_client::ClientError>()
    {
        EXIT_NOT_FOUND
    } else if let Some(c) = err.downcast_ref::<cmd_run::SpawnError>() {
        c.exit_code()
    } else {
        EXIT_ERROR
    };
    ExitCode::from(code)
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
