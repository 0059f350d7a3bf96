//! The one error type of `sigil-core`.

use std::path::PathBuf;

/// Everything that can go wrong while naming, resolving, storing or masking a secret.
///
/// No variant ever carries a secret value: messages name the secret, the file and position, the
/// field or the limit, never what was stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A secret name does not follow the grammar (see [`crate::SecretName`]).
    #[error("invalid secret name {name:?}: {reason}")]
    InvalidName {
        /// The name as given (names are not secret).
        name: String,
        /// What is wrong, with the offending character and its position.
        reason: String,
    },

    /// No source holds the secret. The chain tried every place listed in `searched`.
    #[error("secret {name:?} not found (searched: {})", searched.join("; "))]
    NotFound {
        /// The secret's name.
        name: String,
        /// Every place that was searched, in order.
        searched: Vec<String>,
    },

    /// A file could not be read, written, locked or created.
    #[error("{action} {}: {source}", display_path(path))]
    Io {
        /// What was being done ("cannot read", "cannot write", …).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// A config file is not valid TOML, or not valid UTF-8.
    #[error("failed to parse {} at {line}:{column}: {message}", display_path(path))]
    ConfigSyntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser expected.
        message: String,
    },

    /// A config file is valid TOML but a setting has the wrong shape or an unknown key.
    #[error(
        "invalid setting in {} at {line}:{column}: {message}",
        display_path(path)
    )]
    ConfigInvalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong, naming the key.
        message: String,
    },

    /// An environment variable override (`SIGIL__…` or `SIGIL_HOME`, …) is invalid.
    #[error("invalid environment variable {var}: {message}")]
    InvalidEnv {
        /// The variable's name.
        var: String,
        /// What is wrong (never the variable's value when it holds a secret).
        message: String,
    },

    /// A value is larger than the configured limit.
    #[error(
        "secret {name:?} is {size} bytes, over the limit of {limit} bytes (setting limits.max_value_bytes)"
    )]
    ValueTooLarge {
        /// The secret's name.
        name: String,
        /// The value's size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },

    /// A value is not what was asked for (`get_as::<T>()` failed, or invalid JSON was given).
    #[error("secret {name:?} cannot be read as {target}: {reason}")]
    Decode {
        /// The secret's name (or `"<value>"` when unknown).
        name: String,
        /// The type or format that was asked for.
        target: String,
        /// Why; never quotes the value.
        reason: String,
    },

    /// A source other than the local ones failed (a server unreachable, a key refused). The chain
    /// stops here: this is never treated as "not found".
    #[error("source {source_name} failed{}: {message}", for_secret(name))]
    Source {
        /// The source that failed.
        source_name: String,
        /// The secret's name.
        name: String,
        /// What happened.
        message: String,
    },
}

/// ` for secret "X"`, or nothing before any secret was asked for.
fn for_secret(name: &str) -> String {
    if name.is_empty() {
        String::new()
    } else {
        format!(" for secret {name:?}")
    }
}

impl Error {
    /// Names the secret a lookup was for in an error raised before it was known (the chain
    /// could not be built: `backend = "server"` without a key).
    #[must_use]
    pub fn for_secret(self, secret: &str) -> Self {
        match self {
            Error::Source {
                source_name,
                name,
                message,
            } if name.is_empty() => Error::Source {
                source_name,
                name: secret.to_owned(),
                message,
            },
            other => other,
        }
    }
}

/// A `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Is this a miss (the secret exists nowhere) rather than a failure?
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// Shows a path the way users type it: `~/.sigil/config.toml` when it lies under `$HOME`.
pub fn display_path(path: &std::path::Path) -> String {
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        let home = std::path::Path::new(&home);
        if home != std::path::Path::new("/")
            && let Ok(rest) = path.strip_prefix(home)
        {
            return format!("~/{}", rest.display());
        }
    }
    path.display().to_string()
}

#[cfg(test)]
mod source_error_tests {
    use super::*;

    #[test]
    fn a_source_error_names_the_secret_once_known() {
        let e = Error::Source {
            source_name: "server http://h team \"t\"".into(),
            name: String::new(),
            message: "no API key".into(),
        };
        assert_eq!(
            e.to_string(),
            "source server http://h team \"t\" failed: no API key"
        );
        assert_eq!(
            e.for_secret("DB").to_string(),
            "source server http://h team \"t\" failed for secret \"DB\": no API key"
        );
    }
}
