//! Why a command stopped, and the exit code that says so. Commands return [`Result`]; each kind
//! of failure becomes a variant where it arises (a typed error's `From`), so the exit code is a
//! `match` on the variant, not a search through an error's causes.
//!
//! Exit codes: 0 success, 1 error, 2 usage error, 3 secret not found; `sigil run` passes on its
//! command's exit code (128 + N when the command was killed by signal N, 127 when it does not
//! exist, 126 when it cannot be executed).

use std::process::ExitCode;

use crate::cmd_run::SpawnError;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: any error not listed below.
pub const EXIT_ERROR: u8 = 1;
/// Exit code: the command line is wrong.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: a secret was not found.
pub const EXIT_NOT_FOUND: u8 = 3;

/// A command's outcome: its exit code, or why it failed.
pub type Result<T, E = Failure> = std::result::Result<T, E>;

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    /// The command line is wrong (exit 2).
    Usage(String),
    /// A secret (or a version of it) does not exist (exit 3).
    NotFound(anyhow::Error),
    /// `sigil run`'s command ended with this code: passed on, nothing printed.
    Passed(u8),
    /// `sigil run`'s command could not start (127 or 126).
    Spawn(SpawnError),
    /// Standard output was closed under us (`sigil … | head`): not an error (exit 0).
    BrokenPipe,
    /// Anything else (exit 1).
    Error(anyhow::Error),
}

/// An error in how sigil was called (exit code 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

impl Failure {
    /// The exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => EXIT_USAGE,
            Failure::NotFound(_) => EXIT_NOT_FOUND,
            Failure::Passed(code) => *code,
            Failure::Spawn(e) => e.exit_code(),
            Failure::BrokenPipe => EXIT_OK,
            Failure::Error(_) => EXIT_ERROR,
        }
    }

    /// Says why on stderr (when there is something to say) and gives the exit code.
    pub fn report(self) -> ExitCode {
        let code = self.exit_code();
        match &self {
            Failure::Usage(m) => eprintln!("error: {m}"),
            Failure::NotFound(e) | Failure::Error(e) => eprintln!("error: {e:#}"),
            Failure::Spawn(e) => eprintln!("error: {e}"),
            Failure::Passed(_) | Failure::BrokenPipe => {}
        }
        ExitCode::from(code)
    }

    /// The same failure with `context` in front of its message (a usage error or a passed exit
    /// code stays as it is).
    pub fn context(self, context: impl std::fmt::Display + Send + Sync + 'static) -> Failure {
        match self {
            Failure::NotFound(e) => Failure::NotFound(e.context(context)),
            Failure::Error(e) => Failure::Error(e.context(context)),
            other => other,
        }
    }
}

impl From<UsageError> for Failure {
    fn from(e: UsageError) -> Self {
        Failure::Usage(e.0)
    }
}

impl From<SpawnError> for Failure {
    fn from(e: SpawnError) -> Self {
        Failure::Spawn(e)
    }
}

impl From<sigil_core::Error> for Failure {
    fn from(e: sigil_core::Error) -> Self {
        if e.is_not_found() {
            Failure::NotFound(e.into())
        } else {
            Failure::Error(e.into())
        }
    }
}

impl From<sigil_client::ClientError> for Failure {
    fn from(e: sigil_client::ClientError) -> Self {
        match e {
            sigil_client::ClientError::NotFound { .. } => Failure::NotFound(e.into()),
            other => Failure::Error(other.into()),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Failure::BrokenPipe
        } else {
            Failure::Error(e.into())
        }
    }
}

/// Errors of other kinds (with their context) are plain errors: exit 1.
impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Error(e)
    }
}

macro_rules! plain_errors {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for Failure {
            fn from(e: $t) -> Self {
                Failure::Error(e.into())
            }
        }
    )*};
}

plain_errors!(
    serde_json::Error,
    sigil_server::ServerError,
    sigil_store::StoreError,
    std::fmt::Error,
    sigil_core::import::DotenvErrors,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_its_exit_code() {
        let not_found = sigil_core::Error::NotFound {
            name: "X".into(),
            searched: vec![],
        };
        assert_eq!(Failure::from(not_found).exit_code(), EXIT_NOT_FOUND);
        assert_eq!(
            Failure::from(UsageError("u".into())).exit_code(),
            EXIT_USAGE
        );
        assert_eq!(Failure::Passed(42).exit_code(), 42);
        let pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert_eq!(Failure::from(pipe).exit_code(), EXIT_OK);
        let other = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert_eq!(Failure::from(other).exit_code(), EXIT_ERROR);
        // context keeps the kind
        let nf = Failure::NotFound(anyhow::anyhow!("missing")).context("reading X");
        assert_eq!(nf.exit_code(), EXIT_NOT_FOUND);
    }
}
