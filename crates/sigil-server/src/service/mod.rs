//! The domain layer: the server's rules, once, under every face.
//!
//! Each function takes the authenticated caller ([`Caller`]: key id, team, role, client address,
//! flow-run attribution) and typed input, does the authorization, validation, store access,
//! sealing and auditing, and returns a typed result or a [`ServerError`]. The error decides the
//! audit outcome of a refusal. No HTTP type appears here: the REST API and the web page (and the
//! faces to come) parse their input, call this layer and render its answer in their own dialect.

pub(crate) mod audit;
pub(crate) mod keys;
mod names;
pub(crate) mod secrets;
pub(crate) mod teams;
pub(crate) mod versions;

pub use names::{KeyId, TeamName};
pub(crate) use names::{parse_name, parsed, team};

use sigil_core::SecretName;
use sigil_core::wire::Role;
use sigil_store::{AuditAction, AuditOutcome, AuditRow, StoreError};

pub(crate) use crate::auth::Caller;
use crate::state::{AppState, Metrics};

/// Why the domain layer refused or failed. Messages name the thing (the secret, the team, the
/// field, the limit) and never a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// What was asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The caller may not do this (another team, a role too low).
    #[error("{0}")]
    Forbidden(String),
    /// It conflicts with the current state (a check-and-set on another version, a name taken,
    /// a revocation that would lock people out).
    #[error("{0}")]
    Conflict(String),
    /// Bad input; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// Over a size limit; the message names the limit.
    #[error("{0}")]
    TooLarge(String),
    /// Too many failed authentications: try again after `retry_after` seconds.
    #[error("{message}")]
    RateLimited {
        /// What happened.
        message: String,
        /// Seconds to wait.
        retry_after: u64,
    },
    /// The storage is unreachable or failing (the cause is logged, not shown).
    #[error("storage unavailable")]
    Unavailable(String),
    /// The database's disk (or quota) is full: writes, and reads whose audit record cannot be
    /// written, are refused until space is freed.
    #[error(
        "the database's disk is full: writes and audited reads are refused until space is freed"
    )]
    StorageFull(String),
    /// A bug or a broken invariant (the cause is logged, not shown).
    #[error("internal error")]
    Internal(String),
}

impl ServerError {
    /// An internal error; its cause goes to the log, never to the client.
    pub(crate) fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        ServerError::Internal(cause.to_string())
    }

    /// The outcome an audit record of this refusal carries.
    pub(crate) fn outcome(&self) -> AuditOutcome {
        match self {
            ServerError::Forbidden(_) => AuditOutcome::Denied,
            ServerError::NotFound(_) => AuditOutcome::NotFound,
            ServerError::Conflict(_) => AuditOutcome::Conflict,
            ServerError::Invalid(_)
            | ServerError::TooLarge(_)
            | ServerError::RateLimited { .. } => AuditOutcome::Invalid,
            ServerError::Unavailable(_)
            | ServerError::StorageFull(_)
            | ServerError::Internal(_) => AuditOutcome::Error,
        }
    }
}

impl From<StoreError> for ServerError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { current } => ServerError::Conflict(format!(
                "version conflict: the secret is at version {current}"
            )),
            StoreError::Exists(what) => ServerError::Conflict(format!("{what} already exists")),
            e @ StoreError::Changed(_) => ServerError::Conflict(e.to_string()),
            e @ (StoreError::CasRequired | StoreError::Deleted(_)) => {
                ServerError::Conflict(e.to_string())
            }
            StoreError::NotFound(what) => ServerError::NotFound(format!("{what} not found")),
            StoreError::Backend(b) if b.kind() == sigil_store::BackendKind::Full => {
                tracing::error!(cause = %b, code = b.code(), "the database's disk is full");
                ServerError::StorageFull(b.to_string())
            }
            StoreError::Backend(b) => {
                tracing::error!(cause = %b, kind = ?b.kind(), code = b.code(), "storage unavailable");
                ServerError::Unavailable(b.to_string())
            }
            other => {
                tracing::error!(cause = %other, "storage unavailable");
                ServerError::Unavailable(other.to_string())
            }
        }
    }
}

/// Now, in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// An audit record of what `c` did in its own team.
pub(crate) fn audit_row(
    c: &Caller,
    action: AuditAction,
    name: Option<&str>,
    version: Option<i64>,
    outcome: AuditOutcome,
) -> AuditRow {
    AuditRow {
        id: 0,
        at: now_ms(),
        key_id: c.key_id.to_string(),
        role: Some(c.role),
        action,
        team: c.team.to_string(),
        name: name.map(audit_name),
        version,
        outcome,
        client: c.client.clone(),
        flow_run: c.flow_run.clone(),
        task: c.task.clone(),
        target: None,
        via: Some(c.via.as_str().to_owned()),
        agent: c.agent.clone(),
    }
}

/// As [`audit_row`] for a name already checked: kept as it is, not checked again (the hot path
/// of a read would otherwise parse its name twice).
pub(crate) fn secret_audit_row(
    c: &Caller,
    action: AuditAction,
    name: &SecretName,
    version: Option<i64>,
    outcome: AuditOutcome,
) -> AuditRow {
    AuditRow {
        name: Some(name.as_str().to_owned()),
        ..audit_row(c, action, None, version, outcome)
    }
}

/// A name as the audit log keeps it: valid names as they are; anything else (a refused name may
/// hold NUL or control characters, which PostgreSQL text cannot) escaped and cut to 300 bytes.
fn audit_name(name: &str) -> String {
    if SecretName::parse(name).is_ok() {
        return name.to_owned();
    }
    bounded(name, 300)
}

/// Text from a request for the audit log: escaped (no control characters) and cut to `max`
/// bytes.
pub(crate) fn bounded(text: &str, max: usize) -> String {
    let mut escaped: String = text.escape_debug().collect();
    if escaped.len() > max {
        let mut cut = max;
        while !escaped.is_char_boundary(cut) {
            cut -= 1;
        }
        escaped.truncate(cut);
        escaped.push('…');
    }
    escaped
}

/// Writes audit records durably; the request fails when they cannot be written.
pub(crate) async fn audit(state: &AppState, rows: Vec<AuditRow>) -> Result<(), ServerError> {
    let n = rows.len() as u64;
    state.store.append_audit(rows).await?;
    Metrics::inc(&state.metrics.audit_records, n);
    Ok(())
}

/// Audits a refusal of what `c` asked of `team`, then returns it. A team's log holds what its own
/// keys did: a request for another team is recorded in the caller's team, with the team it asked
/// for cut short in a field of its own.
pub(crate) async fn refuse(
    state: &AppState,
    c: &Caller,
    team: &str,
    action: AuditAction,
    name: Option<&str>,
    err: ServerError,
) -> ServerError {
    let mut row = audit_row(c, action, name, None, err.outcome());
    if c.team != *team {
        row.target = Some(bounded(team, 64));
    }
    match audit(state, vec![row]).await {
        Ok(()) => err,
        Err(audit_failed) => audit_failed,
    }
}

/// The caller may act on `team` only with a key of that team.
pub(crate) fn same_team(c: &Caller, team: &TeamName) -> Result<(), ServerError> {
    if c.team == *team {
        Ok(())
    } else {
        Err(ServerError::Forbidden(format!(
            "this key belongs to team {:?}, not to team {:?}",
            c.team.as_str(),
            team.as_str()
        )))
    }
}

/// The caller's role must be at least `role` to do `what`.
pub(crate) fn need(c: &Caller, role: Role, what: &str) -> Result<(), ServerError> {
    if c.role >= role {
        Ok(())
    } else {
        Err(ServerError::Forbidden(format!(
            "a {} key cannot {what}: it needs the {} role",
            c.role.as_str(),
            role.as_str()
        )))
    }
}

/// Checks team and role, auditing a refusal.
pub(crate) async fn authorize(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    role: Role,
    what: &str,
    action: AuditAction,
    name: Option<&str>,
) -> Result<(), ServerError> {
    if let Err(e) = same_team(c, team).and_then(|()| need(c, role, what)) {
        return Err(refuse(state, c, team.as_str(), action, name, e).await);
    }
    Ok(())
}

#[cfg(test)]
mod rules;

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(team: &str, role: Role) -> Caller {
        Caller::for_tests(team, role)
    }

    #[test]
    fn roles_and_teams() {
        let reader = caller("etl", Role::Reader);
        assert!(need(&reader, Role::Reader, "read").is_ok());
        let e = need(&reader, Role::Writer, "write secrets").unwrap_err();
        assert_eq!(
            e.to_string(),
            "a reader key cannot write secrets: it needs the writer role"
        );
        assert_eq!(e.outcome(), AuditOutcome::Denied);
        let team = |t: &str| TeamName::parse(t).unwrap();
        assert!(same_team(&reader, &team("etl")).is_ok());
        assert!(
            same_team(&reader, &team("other"))
                .unwrap_err()
                .to_string()
                .contains("\"other\"")
        );
    }

    #[test]
    fn audited_text_is_escaped_and_bounded() {
        assert_eq!(bounded("a\u{0}b", 64), "a\\0b");
        let cut = bounded(&"é".repeat(100), 65);
        assert!(cut.len() <= 68 && cut.ends_with('…'), "{cut}");
        assert_eq!(audit_name("prod/db"), "prod/db");
    }

    #[test]
    fn errors_decide_the_audit_outcome() {
        assert_eq!(
            ServerError::NotFound("x".into()).outcome(),
            AuditOutcome::NotFound
        );
        assert_eq!(
            ServerError::Conflict("x".into()).outcome(),
            AuditOutcome::Conflict
        );
        assert_eq!(
            ServerError::Invalid("x".into()).outcome(),
            AuditOutcome::Invalid
        );
        assert_eq!(
            ServerError::Unavailable("x".into()).outcome(),
            AuditOutcome::Error
        );
        let e: ServerError = StoreError::Conflict { current: 3 }.into();
        assert_eq!(
            e.to_string(),
            "version conflict: the secret is at version 3"
        );
        let e: ServerError = StoreError::backend("disk full").into();
        assert_eq!(
            e.to_string(),
            "storage unavailable",
            "the cause is not shown"
        );
    }
}
