//! The audit log, as a team's admins read it.

use sigil_core::wire::{AuditEntry, Role, rfc3339};
use sigil_store::AuditRow;

use super::{Caller, ServerError, TeamName, need, same_team};
use crate::state::AppState;

/// Only a team's admins read its log.
pub(crate) fn may_read(c: &Caller, team: &TeamName) -> Result<(), ServerError> {
    same_team(c, team)?;
    need(c, Role::Admin, "read the audit log")
}

/// The most records one page reads (the web page scans this many to filter them).
pub(crate) const MAX_PAGE: u32 = 5000;

/// Which page of a log.
pub(crate) struct PageOf {
    /// Records at or after this time (Unix ms).
    pub(crate) since: i64,
    /// The last id of the previous page: records after it (oldest first) or before it.
    pub(crate) cursor: Option<i64>,
    /// 1 to [`MAX_PAGE`].
    pub(crate) limit: u32,
    /// Newest first.
    pub(crate) newest_first: bool,
}

/// A page of the team's log, and whether there is more.
pub(crate) async fn page(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    p: PageOf,
) -> Result<(Vec<AuditRow>, bool), ServerError> {
    may_read(c, team)?;
    if !(1..=MAX_PAGE).contains(&p.limit) {
        return Err(ServerError::Invalid(format!(
            "limit must be from 1 to {MAX_PAGE}"
        )));
    }
    let mut rows = if p.newest_first {
        state
            .store
            .audit_newest(c.team.as_str(), p.cursor, p.since, p.limit + 1)
            .await?
    } else {
        state
            .store
            .audit(c.team.as_str(), p.cursor.unwrap_or(0), p.since, p.limit + 1)
            .await?
    };
    let more = rows.len() > p.limit as usize;
    rows.truncate(p.limit as usize);
    Ok((rows, more))
}

/// A record as the API shows it.
pub(crate) fn entry(a: AuditRow) -> AuditEntry {
    AuditEntry {
        id: a.id,
        at: rfc3339(a.at),
        key_id: a.key_id,
        role: a.role,
        action: a.action.as_str().to_owned(),
        team: a.team,
        name: a.name,
        version: a.version,
        outcome: a.outcome.as_str().to_owned(),
        client: a.client,
        flow_run: a.flow_run,
        task: a.task,
        target: a.target,
        via: a.via,
        agent: a.agent,
    }
}
