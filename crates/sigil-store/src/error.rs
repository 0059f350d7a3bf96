//! The store's errors. A database failure keeps the error it came from, for code that asks what
//! kind of failure it was; its text is the store's own, which never quotes a row.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// What can go wrong in the store. Messages never carry values (the store has none).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// Check-and-set failed: the secret is at `current` (0: it does not exist).
    #[error("version conflict: the secret is at version {current}")]
    Conflict {
        /// The secret's current version.
        current: i64,
    },
    /// A write without check-and-set to a secret (or a team) whose settings require one.
    #[error("check-and-set required: every write of this secret must name the version it replaces")]
    CasRequired,
    /// What was referred to is deleted (restorable): restore it before changing it.
    #[error("{0} is deleted: restore it first")]
    Deleted(String),
    /// What a change was made for changed meanwhile (read again and retry).
    #[error("{0} changed meanwhile")]
    Changed(String),
    /// A unique name is taken.
    #[error("{0} already exists")]
    Exists(String),
    /// What was referred to does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The database failed or is unreachable.
    #[error("database error: {0}")]
    Backend(BackendError),
    /// A database URL that cannot be used.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
}

impl StoreError {
    /// A failure of the store's own making (a stopped thread, data it cannot read), without an
    /// error underneath.
    pub fn backend(message: impl Into<String>) -> Self {
        StoreError::Backend(BackendError {
            message: message.into(),
            kind: BackendKind::Other,
            code: None,
            cause: None,
        })
    }

    /// The kind of a database failure; `None` for the other errors.
    pub fn backend_kind(&self) -> Option<BackendKind> {
        match self {
            StoreError::Backend(b) => Some(b.kind),
            _ => None,
        }
    }
}

/// What kind of database failure: what a caller may do about it differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendKind {
    /// The database cannot be reached, or went away (a connection refused or lost, a server
    /// shutting down, a file that cannot be opened).
    Unreachable,
    /// The disk or the database is full.
    Full,
    /// The database is busy (locked, out of connections): trying later may work.
    Busy,
    /// A constraint of the schema refused the change.
    Constraint,
    /// The database holds what it should not (corrupt, or a value this version cannot read).
    Corrupt,
    /// Anything else.
    Other,
}

/// A database failure: what failed, in the store's words and with the database's own reason
/// and code (never PostgreSQL's DETAIL, which can quote a row, nor bound parameters), and the
/// error it came from.
#[derive(Clone)]
pub struct BackendError {
    message: String,
    kind: BackendKind,
    code: Option<String>,
    cause: Option<Arc<dyn StdError + Send + Sync>>,
}

impl BackendError {
    /// Its kind.
    pub fn kind(&self) -> BackendKind {
        self.kind
    }

    /// The database's error code: PostgreSQL's SQLSTATE (`53100`), SQLite's extended result code
    /// (`SQLITE_FULL`), the OS error (`ENOSPC`).
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The error this came from. Its own text may hold more than the store's message (a
    /// PostgreSQL DETAIL quoting a row): inspect it, do not show it.
    pub fn cause(&self) -> Option<&(dyn StdError + Send + Sync + 'static)> {
        self.cause.as_deref()
    }

    /// The database cannot be reached (a pool that timed out waiting, or closed).
    pub(crate) fn unreachable(message: String) -> Self {
        BackendError {
            message,
            kind: BackendKind::Unreachable,
            code: None,
            cause: None,
        }
    }

    /// The same failure, with what the store was doing in front: `context: message`.
    pub(crate) fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// A SQLite failure.
    pub(crate) fn sqlite(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode as C;
        // an I/O error the store itself wrapped (opening, locking, syncing files)
        if let rusqlite::Error::ToSqlConversionFailure(inner) = &e
            && let Some(io) = inner.downcast_ref::<std::io::Error>()
        {
            let b = Self::io(io);
            return BackendError {
                cause: Some(Arc::new(e)),
                ..b
            };
        }
        let (kind, code) = match e.sqlite_error() {
            Some(s) => {
                let kind = match s.code {
                    C::DiskFull => BackendKind::Full,
                    C::DatabaseBusy | C::DatabaseLocked => BackendKind::Busy,
                    C::CannotOpen | C::PermissionDenied | C::ReadOnly => BackendKind::Unreachable,
                    C::DatabaseCorrupt | C::NotADatabase => BackendKind::Corrupt,
                    C::ConstraintViolation => BackendKind::Constraint,
                    _ => BackendKind::Other,
                };
                (kind, Some(format!("{:?}", s.code)))
            }
            None => (BackendKind::Other, None),
        };
        BackendError {
            message: e.to_string(),
            kind,
            code,
            cause: Some(Arc::new(e)),
        }
    }

    /// A PostgreSQL failure: the server's message and SQLSTATE, or the client's own error.
    pub(crate) fn postgres(e: tokio_postgres::Error) -> Self {
        let (message, kind, code) = match e.as_db_error() {
            Some(db) => {
                let code = db.code().code();
                let kind = match code {
                    "53100" => BackendKind::Full,
                    c if c.starts_with("08") || c.starts_with("57P") => BackendKind::Unreachable,
                    c if c.starts_with("53") || c.starts_with("40") || c == "55P03" => {
                        BackendKind::Busy
                    }
                    c if c.starts_with("23") => BackendKind::Constraint,
                    c if c.starts_with("XX") => BackendKind::Corrupt,
                    _ => BackendKind::Other,
                };
                (
                    format!("{} ({code})", db.message()),
                    kind,
                    Some(code.to_owned()),
                )
            }
            None => {
                let kind = if e.is_closed()
                    || e.source()
                        .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some())
                {
                    BackendKind::Unreachable
                } else {
                    BackendKind::Other
                };
                (e.to_string(), kind, None)
            }
        };
        BackendError {
            message,
            kind,
            code,
            cause: Some(Arc::new(e)),
        }
    }

    /// A file-system failure.
    pub(crate) fn io(e: &std::io::Error) -> Self {
        let errno = e.raw_os_error();
        let kind = match errno {
            Some(28 | 122) => BackendKind::Full, // ENOSPC, EDQUOT
            _ if e.kind() == std::io::ErrorKind::PermissionDenied => BackendKind::Unreachable,
            _ if e.kind() == std::io::ErrorKind::NotFound => BackendKind::Unreachable,
            _ => BackendKind::Other,
        };
        let code = match errno {
            Some(28) => Some("ENOSPC".to_owned()),
            Some(122) => Some("EDQUOT".to_owned()),
            Some(n) => Some(format!("errno {n}")),
            None => None,
        };
        BackendError {
            message: e.to_string(),
            kind,
            code,
            cause: Some(Arc::new(std::io::Error::new(e.kind(), e.to_string()))),
        }
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The store's message, kind and code; not the cause, whose text may quote a row.
impl fmt::Debug for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendError")
            .field("message", &self.message)
            .field("kind", &self.kind)
            .field("code", &self.code)
            .finish_non_exhaustive()
    }
}

/// Two failures are the same when they say the same (the causes are not compared).
impl PartialEq for BackendError {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message && self.kind == other.kind && self.code == other.code
    }
}

impl Eq for BackendError {}

/// The chain ends here: [`BackendError::cause`] gives the error underneath to code that asks,
/// and no error report walks into text that may quote a row.
impl StdError for BackendError {}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(BackendError::sqlite(e))
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Backend(BackendError::postgres(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_said_and_kept() {
        let e = std::io::Error::from_raw_os_error(28);
        let b = BackendError::io(&e).context("cannot sync /x/sigil.db-wal");
        assert_eq!(b.kind(), BackendKind::Full);
        assert_eq!(b.code(), Some("ENOSPC"));
        assert!(
            b.to_string().starts_with("cannot sync /x/sigil.db-wal: "),
            "{b}"
        );
        let cause = b.cause().unwrap().downcast_ref::<std::io::Error>().unwrap();
        assert_eq!(cause.kind(), e.kind());
        assert!(
            StdError::source(&b).is_none(),
            "no report walks past the store's text"
        );
    }

    #[test]
    fn sqlite_codes_become_kinds() {
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            Some("database is locked".into()),
        );
        let StoreError::Backend(b) = StoreError::from(busy) else {
            unreachable!()
        };
        assert_eq!(
            (b.kind(), b.code()),
            (BackendKind::Busy, Some("DatabaseBusy"))
        );
        assert!(
            b.cause()
                .unwrap()
                .downcast_ref::<rusqlite::Error>()
                .is_some()
        );
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        assert_eq!(
            StoreError::from(full).backend_kind(),
            Some(BackendKind::Full)
        );
        assert_eq!(
            StoreError::backend("x").backend_kind(),
            Some(BackendKind::Other)
        );
        assert_eq!(StoreError::NotFound("x".into()).backend_kind(), None);
    }
}
