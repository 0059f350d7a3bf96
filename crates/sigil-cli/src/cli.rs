//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Secrets for data workflows: resolved locally first, kept verbatim, never printed by accident.
#[derive(Parser, Debug)]
#[command(name = "sigil", version, max_term_width = 100)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace); SIGIL_LOG=LEVEL also works.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Read and write secrets.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Run a command with secrets as environment variables, masking them in its output.
    Run(RunArgs),
    /// Import secrets from a Prefect 1 config.toml or a .env file: into the local config file, or
    /// the server when backend = "server" (or --server).
    Import(ImportArgs),
    /// Print secrets for another tool: a .env file, JSON, or shell `export` lines (not to a
    /// terminal unless --force).
    Export(ExportArgs),
    /// Show the effective configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Check an API key against a server and save it in $SIGIL_HOME/credentials.toml (mode 0600).
    Login(LoginArgs),
    /// Manage the team's API keys (admin).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage teams (bootstrap administrator).
    Teams {
        #[command(subcommand)]
        command: TeamsCommand,
    },
    /// Read the team's audit log (admin).
    Audit(AuditArgs),
    /// Run the Sigil server (SQLite under $SIGIL_HOME/server by default; PostgreSQL with --database postgres://…).
    Server(Box<ServerArgs>),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

impl Command {
    pub fn label(&self) -> &'static str {
        match self {
            Command::Secrets { command } => match command {
                SecretsCommand::Get(_) => "secrets get",
                SecretsCommand::Set(_) => "secrets set",
                SecretsCommand::List(_) => "secrets list",
                SecretsCommand::Delete(_) => "secrets delete",
                SecretsCommand::Restore(_) => "secrets restore",
                SecretsCommand::Undelete(_) => "secrets undelete",
                SecretsCommand::Destroy(_) => "secrets destroy",
                SecretsCommand::History(_) => "secrets history",
                SecretsCommand::Edit(_) => "secrets edit",
                SecretsCommand::Diff(_) => "secrets diff",
                SecretsCommand::Rollback(_) => "secrets rollback",
                SecretsCommand::Copy(_) => "secrets copy",
            },
            Command::Run(_) => "run",
            Command::Import(_) => "import",
            Command::Export(_) => "export",
            Command::Config { .. } => "config",
            Command::Server(_) => "server",
            Command::Login(_) => "login",
            Command::Keys { .. } => "keys",
            Command::Teams { .. } => "teams",
            Command::Audit(_) => "audit",
            Command::Completions { .. } => "completions",
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum SecretsCommand {
    /// Print secrets' values (a string as it is, other JSON compact), each followed by a newline.
    Get(GetArgs),
    /// Set a secret: in the local config file, or on the server when backend = "server" (or
    /// --server).
    Set(SetArgs),
    /// List secret names and where each comes from (never values).
    List(ListArgs),
    /// Delete a secret (the server keeps it restorable).
    Delete(DeleteArgs),
    /// Restore a deleted secret on the server.
    Restore(NameArgs),
    /// Make soft-deleted versions of a secret readable again (server).
    Undelete(VersionsArgs),
    /// Wipe versions of a secret for good, e.g. a leaked value (server); the history keeps them
    /// as destroyed.
    Destroy(VersionsArgs),
    /// A secret's versions on the server (metadata only).
    History(HistoryArgs),
    /// Edit a secret in $VISUAL or $EDITOR (a 0600 temporary file, removed afterwards); saving a
    /// change writes a new version.
    Edit(EditArgs),
    /// Which secrets differ: the local sources against the server, or two versions of one
    /// secret on the server. Names only, never values unless --show.
    Diff(DiffArgs),
    /// Make a secret's old version current again: a new version equal to version N (server).
    Rollback(RollbackArgs),
    /// Copy a secret, or every secret under a prefix to another prefix or team (promote dev/ to
    /// prod/).
    Copy(CopyArgs),
}

/// Where a command that changes secrets works: the local config file or the server.
#[derive(Args, Debug, Clone, Copy)]
pub struct Target {
    /// Work on the local config file (the default unless backend = "server").
    #[arg(long, conflicts_with = "server")]
    pub local: bool,
    /// Work on the server (the default when backend = "server").
    #[arg(long)]
    pub server: bool,
}

#[derive(Args, Debug)]
pub struct EditArgs {
    /// The secret's name (a new one is created when it does not exist).
    pub name: String,
    #[command(flatten)]
    pub target: Target,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// One secret (default: every secret, or those under --prefix).
    pub name: Option<String>,
    /// Compare two versions of NAME on the server, e.g. `--versions 3,5`.
    #[arg(
        long,
        value_delimiter = ',',
        num_args = 1,
        value_name = "A,B",
        requires = "name"
    )]
    pub versions: Vec<i64>,
    /// Only names that start with PREFIX.
    #[arg(long, value_name = "PREFIX", conflicts_with = "name")]
    pub prefix: Option<String>,
    /// Print the values of what differs too.
    #[arg(long)]
    pub show: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RollbackArgs {
    /// The secret's name.
    pub name: String,
    /// The version to make current again.
    #[arg(long)]
    pub to: i64,
}

#[derive(Args, Debug)]
pub struct CopyArgs {
    /// The secret to copy (or nothing, with --prefix).
    #[arg(required_unless_present = "prefix", conflicts_with = "prefix")]
    pub src: Option<String>,
    /// Its new name (default: the same name, with --to-team).
    pub dst: Option<String>,
    /// Copy every secret whose name starts with PREFIX …
    #[arg(long, value_name = "PREFIX", requires = "to")]
    pub prefix: Option<String>,
    /// … to the same name with this prefix instead (`--prefix dev/ --to prod/`).
    #[arg(long, value_name = "PREFIX")]
    pub to: Option<String>,
    /// Into another team on the same server (the key in SIGIL_TO_API_KEY, or the same key).
    #[arg(long, value_name = "TEAM")]
    pub to_team: Option<String>,
    /// Replace secrets that already exist at the destination (otherwise they are kept and
    /// reported).
    #[arg(long)]
    pub overwrite: bool,
    /// Show what would be copied (names only) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Copy within the local config file (the default unless backend = "server").
    #[arg(long, conflicts_with_all = ["server", "to_team"])]
    pub local: bool,
    /// Copy on the server (the default when backend = "server").
    #[arg(long)]
    pub server: bool,
}

#[derive(Args, Debug)]
pub struct NameArgs {
    /// The secret's name.
    pub name: String,
}

#[derive(Args, Debug)]
pub struct VersionsArgs {
    /// The secret's name.
    pub name: String,
    /// The versions, comma-separated (`--versions 3,4`).
    #[arg(long, value_delimiter = ',', value_name = "N,M", required = true)]
    pub versions: Vec<i64>,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// The secret's name.
    pub name: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// The server, e.g. http://127.0.0.1:4300.
    #[arg(long)]
    pub url: String,
    /// The team (default: the key's own team).
    #[arg(long)]
    pub team: Option<String>,
    /// Read the key from standard input (otherwise SIGIL_API_KEY, or a no-echo prompt).
    #[arg(long)]
    pub key_stdin: bool,
}

/// How a command prints what it lists or creates.
#[derive(Args, Debug, Clone, Copy)]
pub struct Output {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a key; it is shown once.
    Create {
        /// viewer, reader, writer or admin.
        #[arg(long)]
        role: String,
        /// A label.
        #[arg(long, default_value = "")]
        name: String,
        #[command(flatten)]
        output: Output,
    },
    /// List the team's keys (never the keys themselves).
    List(Output),
    /// Revoke a key by id.
    Revoke {
        /// The key's id (the part after sgl_).
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TeamsCommand {
    /// Create a team and its first admin key (shown once).
    Create {
        /// The team's name.
        name: String,
        #[command(flatten)]
        output: Output,
    },
    /// List teams.
    List(Output),
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: Option<AuditCommand>,
    /// Only records at or after this time: RFC 3339 (2026-11-29T00:00:00Z, 2026-11-29T01:00:00+01:00)
    /// or a date (2026-11-29, midnight UTC).
    #[arg(long)]
    pub since: Option<String>,
    /// At most this many records (1 to 1000).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Oldest records first (for exports); by default the newest come first.
    #[arg(long)]
    pub oldest_first: bool,
    /// Continue after the previous page: its `next_cursor` (printed as "more: …" on stderr).
    #[arg(long)]
    pub cursor: Option<String>,
    /// Print JSON: `{"entries": [...], "next_cursor": "…" | null}`.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Write the team's audit records, oldest first, to stdout, every page of them: to ship them
    /// elsewhere (before the server's retention removes them).
    Export(AuditExportArgs),
}

#[derive(Args, Debug)]
pub struct AuditExportArgs {
    /// Only records at or after this time: RFC 3339 or a date (midnight UTC). Default: all.
    #[arg(long)]
    pub since: Option<String>,
    /// `jsonl`: one JSON object per line, the shape of `sigil audit --json`'s entries.
    #[arg(long, default_value = "jsonl")]
    pub format: String,
}

#[derive(Args, Debug)]
pub struct GetArgs {
    /// The secrets' names: several are read in one request per source (one batch from a server).
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
    /// Print {"name", "value", "source", "version"} as JSON (an array of them for several names).
    #[arg(long, conflicts_with = "explain")]
    pub json: bool,
    /// Say which source answered and what was searched, without the value.
    #[arg(long)]
    pub explain: bool,
    /// A version kept by the server (implies --server).
    #[arg(long)]
    pub version: Option<i64>,
    /// Ask the server only.
    #[arg(long)]
    pub server: bool,
}

#[derive(Args)]
pub struct SetArgs {
    /// The secret's name.
    pub name: String,
    /// The value. Prefer --stdin, --file or the prompt: a value on the command line is visible
    /// to other users in the process list and stays in your shell history.
    #[arg(conflicts_with_all = ["stdin", "file"])]
    pub value: Option<String>,
    /// Read the value from standard input, byte for byte (a trailing newline is kept).
    #[arg(long, conflicts_with = "file")]
    pub stdin: bool,
    /// Read the value from a file, byte for byte.
    #[arg(long, value_name = "F")]
    pub file: Option<PathBuf>,
    /// The value is JSON (validated): stored as an object, array, number or string.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub target: Target,
    /// Check-and-set on the server: the version the secret must be at (0: create only).
    #[arg(long)]
    pub cas: Option<i64>,
}

/// The value given on the command line never shows in `Debug`.
impl std::fmt::Debug for SetArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetArgs")
            .field("name", &self.name)
            .field("value", &self.value.as_ref().map(|_| "[REDACTED]"))
            .field("stdin", &self.stdin)
            .field("file", &self.file)
            .field("json", &self.json)
            .field("target", &self.target)
            .field("cas", &self.cas)
            .finish()
    }
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Print a JSON array of {"name", "source", "shadowed", "version", "updated_at", "updated_by"}
    /// (the last three null where no server answered).
    #[arg(long)]
    pub json: bool,
    /// Only names that start with PREFIX (`prod/`).
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Only the local sources.
    #[arg(long, conflicts_with = "server")]
    pub local: bool,
    /// Only the server.
    #[arg(long)]
    pub server: bool,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// The secret's name.
    pub name: String,
    /// Only these versions, comma-separated: soft-deleted on the server, not read until
    /// `sigil secrets undelete`.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "N,M",
        conflicts_with = "local"
    )]
    pub versions: Vec<i64>,
    #[command(flatten)]
    pub target: Target,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Only these secrets, comma-separated: names, globs (`prod/*`, `*_PASSWORD`) or prefixes
    /// (`prod/`); by default every secret the chain lists. A secret named here exactly may set a
    /// variable that is otherwise refused (`PATH`, `LD_PRELOAD`, …).
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub only: Vec<String>,
    /// Upper-case the variables' names (`prod/db.password` becomes `PROD_DB_PASSWORD`).
    #[arg(long)]
    pub upper: bool,
    /// Do not mask secrets in the command's output.
    #[arg(long)]
    pub no_mask: bool,
    /// Put PREFIX before every variable's name (`--prefix APP_`: `PATH` becomes `APP_PATH`).
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Let a secret replace a variable that is already set in sigil's environment.
    #[arg(long = "override")]
    pub override_env: bool,
    /// Also set PREFECT__CONTEXT__SECRETS__<NAME> for each secret, so that a Prefect 1 flow run
    /// here sees them as local secrets (names Prefect cannot read from a variable are listed).
    #[arg(long)]
    pub prefect: bool,
    /// Set only the PREFECT__CONTEXT__SECRETS__<NAME> variables.
    #[arg(long, conflicts_with_all = ["prefect", "prefix", "upper"])]
    pub prefect_only: bool,
    /// Pass sigil's own variables (SIGIL_API_KEY, SIGIL_HOME, SIGIL__…) on to the command; their
    /// credentials are masked in its output.
    #[arg(long)]
    pub keep_sigil_env: bool,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// `NAME='value'` lines (docker compose, `sigil import --from dotenv`).
    Dotenv,
    /// One JSON object, variable names to values (JSON values stay JSON).
    Json,
    /// `export NAME='value'` lines, for `eval "$(sigil export --format shell)"`.
    Shell,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The output's format.
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Only these secrets: names, globs (`prod/*`) or prefixes (`prod/`), comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub only: Vec<String>,
    /// Put PREFIX before every variable's name.
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Upper-case the variables' names.
    #[arg(long)]
    pub upper: bool,
    /// With --format shell: let a secret replace a variable already set in this environment.
    #[arg(long = "override")]
    pub override_env: bool,
    /// Print to a terminal all the same.
    #[arg(long)]
    pub force: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportFormat {
    /// A Prefect 1 config.toml: its [context.secrets] table, values verbatim.
    Prefect,
    /// A .env file: NAME=value lines, no variable expansion.
    Dotenv,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The format of the file.
    #[arg(long, value_enum)]
    pub from: ImportFormat,
    /// The file to import.
    pub path: PathBuf,
    /// Replace secrets that already exist (otherwise they are kept and reported).
    #[arg(long)]
    pub overwrite: bool,
    /// Show what would be imported (names only) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: print `[{"name", "action": "new" | "replace" | "keep"}]`.
    #[arg(long, requires = "dry_run")]
    pub json: bool,
    #[command(flatten)]
    pub target: Target,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print the effective settings, where each comes from, and the secret names (values redacted).
    Show {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct ServerArgs {
    #[command(subcommand)]
    pub command: Option<ServerCommand>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:4300", global = true)]
    pub listen: std::net::SocketAddr,
    /// `sqlite://PATH`, a path, or `postgres://USER@HOST/DB` (default: $SIGIL_HOME/server/sigil.db).
    /// A URL with a password belongs in SIGIL_DATABASE_URL, out of the process list.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "SIGIL_DATABASE_URL",
        hide_env_values = true
    )]
    pub database: Option<String>,
    /// The master key file (base64 of 32 bytes; created 0600 when absent). SIGIL_MASTER_KEY wins
    /// over it. Default: $SIGIL_HOME/server/master.key.
    #[arg(long, global = true, value_name = "F")]
    pub master_key_file: Option<PathBuf>,
    /// A master key that may still wrap some data keys, during a rotation (also
    /// SIGIL_PREVIOUS_MASTER_KEY).
    #[arg(long, global = true, value_name = "F")]
    pub previous_master_key_file: Vec<PathBuf>,
    /// Largest secret value in bytes.
    #[arg(long, default_value_t = 65536)]
    pub max_value_bytes: usize,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, value_name = "F", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "F", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// A proxy (address or CIDR range, repeatable or comma-separated) whose X-Forwarded-For
    /// header names the client; also SIGIL_TRUSTED_PROXIES.
    #[arg(
        long = "trusted-proxy",
        value_name = "CIDR",
        env = "SIGIL_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<String>,
    /// Mark the web page's cookies Secure (behind a TLS-terminating proxy; with --tls-cert they
    /// always are); also SIGIL_SECURE_COOKIES=true.
    #[arg(long, env = "SIGIL_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// Connections open at once; past it a new one is closed at once (default: `ulimit -n`
    /// less 64, at most 10,000).
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// How long a client may take to send a request's headers.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = duration)]
    pub header_read_timeout: std::time::Duration,
    /// How long a connection may be idle (no bytes either way) before it is closed.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration)]
    pub idle_timeout: std::time::Duration,
    /// How long a request may take before it is answered 503.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration)]
    pub request_timeout: std::time::Duration,
    /// A web session unused this long ends.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = duration)]
    pub session_idle: std::time::Duration,
    /// A web session this old ends, used or not.
    #[arg(long, value_name = "DURATION", default_value = "12h", value_parser = duration)]
    pub session_max_age: std::time::Duration,
    /// Live web sessions per key; signing in once more ends the oldest.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub sessions_per_key: u32,
    /// Failed authentications one address (or one key id) may make within --auth-window before
    /// it is answered 429.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub auth_failures_allowed: u32,
    /// The window of --auth-failures-allowed.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration)]
    pub auth_window: std::time::Duration,
    /// How long SIGTERM waits for requests in flight before it closes their connections.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration)]
    pub shutdown_timeout: std::time::Duration,
    /// The audit log's retention (`audit.retention`): records older than this (`400d`) are
    /// removed in the background, in small chunks. Default: kept for ever. Ship them elsewhere
    /// first with `sigil audit export`.
    #[arg(long, value_name = "DURATION", env = "SIGIL_AUDIT_RETENTION", value_parser = duration)]
    pub audit_retention: Option<std::time::Duration>,
}

/// A duration such as `15s`, `500ms` or `2m`, at least one millisecond.
fn duration(s: &str) -> Result<std::time::Duration, String> {
    sigil_core::config::parse_duration(s).and_then(|d| {
        if d.is_zero() {
            Err("must be more than zero".into())
        } else {
            Ok(d)
        }
    })
}

#[derive(Subcommand, Debug)]
pub enum ServerCommand {
    /// Re-wrap every team's data key with a new master key; afterwards the old key is not needed.
    RotateMasterKey {
        /// The new master key file (created with a new random key when absent).
        #[arg(long, value_name = "F")]
        new_key_file: PathBuf,
    },
    /// Revoke the bootstrap administrator key and print a new one (shown once). Offline: on the
    /// database, while no server runs on a SQLite file.
    ResetBootstrapKey,
    /// Copy the SQLite database to a new file while the server serves (one consistent state,
    /// written to a temporary file, synced and renamed; mode 0600). The master key is not in it:
    /// back it up on its own. PostgreSQL: use pg_dump.
    Backup {
        /// The new file (it must not exist).
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    /// Clap checks the definition (unique names, valid defaults) only when asked: a clash such as
    /// `secrets get --version` against the version flag made every command panic.
    #[test]
    fn the_command_line_definition_is_valid() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn debug_of_the_parsed_command_line_hides_a_value() {
        let cli = <super::Cli as clap::Parser>::parse_from([
            "sigil",
            "secrets",
            "set",
            "X",
            "canary-argv-value",
        ]);
        let shown = format!("{cli:?}");
        assert!(
            !shown.contains("canary-argv-value") && shown.contains("[REDACTED]"),
            "{shown}"
        );
    }
}
