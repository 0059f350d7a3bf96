//! Teams: only the bootstrap administrator lists and creates them; a team is born with its data
//! key and its first admin key, audited in its own log.

use sigil_core::wire::{CreatedKey, Role, TeamInfo, rfc3339};
use sigil_store::{AuditAction, AuditOutcome};
use sigil_store::{AuditRow, KeyRow};
use zeroize::Zeroizing;

use super::keys::new_key;
use super::{Caller, ServerError, TeamName, audit_row, now_ms};
use crate::crypto::DataKey;
use crate::state::AppState;

/// Only the bootstrap administrator key may create teams.
pub(crate) fn may_create(c: &Caller) -> Result<(), ServerError> {
    if c.bootstrap {
        Ok(())
    } else {
        Err(ServerError::Forbidden(
            "only the bootstrap administrator key can create teams".into(),
        ))
    }
}

/// Every team: bootstrap administrator only.
pub(crate) async fn list(state: &AppState, c: &Caller) -> Result<Vec<TeamInfo>, ServerError> {
    if !c.bootstrap {
        return Err(ServerError::Forbidden(
            "only the bootstrap administrator key can list teams".into(),
        ));
    }
    Ok(state
        .store
        .list_teams()
        .await?
        .into_iter()
        .map(|t| TeamInfo {
            name: t.name,
            created_at: rfc3339(t.created_at),
        })
        .collect())
}

/// Creates a team and its first admin key (shown once): bootstrap administrator only.
pub(crate) async fn create(
    state: &AppState,
    c: &Caller,
    name: &TeamName,
) -> Result<(TeamInfo, CreatedKey), ServerError> {
    may_create(c)?;
    // the new team's log begins with its creation
    let template = AuditRow {
        team: name.to_string(),
        ..audit_row(c, AuditAction::TeamCreate, None, None, AuditOutcome::Ok)
    };
    create_with_admin(state, name, c.key_id.as_str(), false, template, None).await
}

/// Creates a team with its data key and first admin key (`admin_key` when the operator chose it,
/// as at bootstrap); `audit_template` says who did it.
pub(crate) async fn create_with_admin(
    state: &AppState,
    name: &TeamName,
    created_by: &str,
    bootstrap_admin: bool,
    audit_template: AuditRow,
    admin_key: Option<Zeroizing<String>>,
) -> Result<(TeamInfo, CreatedKey), ServerError> {
    let dk = DataKey::generate(1).map_err(ServerError::internal)?;
    let wrapped = state
        .master
        .wrap(&dk, name.as_str())
        .map_err(ServerError::internal)?;
    let at = now_ms();
    let label = if bootstrap_admin {
        "bootstrap administrator"
    } else {
        "first administrator"
    };
    let (row, key) = match admin_key {
        Some(key) => {
            let parsed = crate::keys::parse(&key).ok_or_else(|| {
                ServerError::Invalid("SIGIL_BOOTSTRAP_ADMIN_KEY is not a valid sgl_ key".into())
            })?;
            let row = KeyRow {
                id: parsed.id.to_owned(),
                team_id: 0,
                team_name: String::new(),
                role: Role::Admin,
                hash: crate::keys::hash(parsed.secret),
                name: label.into(),
                bootstrap: bootstrap_admin,
                created_at: at,
                created_by: created_by.to_owned(),
                revoked_at: None,
            };
            (row, key)
        }
        None => new_key(0, Role::Admin, label, created_by, bootstrap_admin)?,
    };
    let id = row.id.clone();
    let data_key = sigil_store::DataKeyRow {
        team_id: 0,
        version: 1,
        master_key_id: state.master.id().to_owned(),
        wrapped,
        created_at: at,
    };
    let audit = AuditRow {
        action: AuditAction::TeamCreate,
        team: name.to_string(),
        name: Some(id.clone()),
        ..audit_template
    };
    let team = state
        .store
        .create_team(name.as_str(), at, data_key, Some(row), audit)
        .await?;
    Ok((
        TeamInfo {
            name: team.name.clone(),
            created_at: rfc3339(team.created_at),
        },
        CreatedKey {
            id,
            key: key.to_string(),
            team: team.name,
            role: Role::Admin,
            name: label.into(),
        },
    ))
}
