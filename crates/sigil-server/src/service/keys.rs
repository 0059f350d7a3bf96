//! API keys: list, create, revoke — admin only, every change audited, and no revocation that
//! would lock people out.

use sigil_core::wire::{CreatedKey, KeyInfo, Role, rfc3339};
use sigil_store::KeyRow;
use sigil_store::{AuditAction, AuditOutcome};
use zeroize::Zeroizing;

use super::{
    Caller, KeyId, ServerError, TeamName, audit_row, authorize, need, now_ms, refuse, same_team,
};
use crate::keys;
use crate::state::{AppState, Metrics};

/// A key as listings show it (never the key itself).
pub(crate) fn key_info(k: KeyRow) -> Result<KeyInfo, ServerError> {
    Ok(KeyInfo {
        role: k.role,
        id: k.id,
        name: k.name,
        created_at: rfc3339(k.created_at),
        created_by: k.created_by,
        revoked_at: k.revoked_at.map(rfc3339),
    })
}

/// The team's keys: admin role.
pub(crate) async fn list(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
) -> Result<Vec<KeyInfo>, ServerError> {
    same_team(c, team)?;
    need(c, Role::Admin, "list keys")?;
    state
        .store
        .list_keys(c.team_id)
        .await?
        .into_iter()
        .map(key_info)
        .collect()
}

/// A key's label: at most 128 characters, no control characters.
pub(crate) fn check_label(name: &str) -> Result<(), ServerError> {
    if name.chars().count() > 128 || name.chars().any(char::is_control) {
        return Err(ServerError::Invalid(
            "a key's name is at most 128 characters, without control characters".into(),
        ));
    }
    Ok(())
}

/// A new random key and its stored form.
pub(crate) fn new_key(
    team_id: i64,
    role: Role,
    name: &str,
    created_by: &str,
    bootstrap: bool,
) -> Result<(KeyRow, Zeroizing<String>), ServerError> {
    let (id, key) = keys::generate().map_err(ServerError::internal)?;
    let secret = keys::parse(&key)
        .expect("generated keys parse")
        .secret
        .to_owned();
    Ok((
        KeyRow {
            id,
            team_id,
            team_name: String::new(),
            role,
            hash: keys::hash(&secret),
            name: name.to_owned(),
            bootstrap,
            created_at: now_ms(),
            created_by: created_by.to_owned(),
            revoked_at: None,
        },
        key,
    ))
}

/// Creates a key of the team: admin role. The key is in the answer, once.
pub(crate) async fn create(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    role: Role,
    label: &str,
) -> Result<CreatedKey, ServerError> {
    authorize(
        state,
        c,
        team,
        Role::Admin,
        "create keys",
        AuditAction::KeyCreate,
        None,
    )
    .await?;
    if let Err(e) = check_label(label) {
        return Err(refuse(state, c, team.as_str(), AuditAction::KeyCreate, None, e).await);
    }
    let (row, key) = new_key(c.team_id, role, label, c.key_id.as_str(), false)?;
    let id = row.id.clone();
    state
        .store
        .create_key(
            row,
            audit_row(c, AuditAction::KeyCreate, Some(&id), None, AuditOutcome::Ok),
        )
        .await?;
    Metrics::inc(&state.metrics.audit_records, 1);
    Ok(CreatedKey {
        id,
        key: key.to_string(),
        team: c.team.to_string(),
        role,
        name: label.to_owned(),
    })
}

/// Refuses the revocations that would lock people out: the caller's own key, the bootstrap
/// administrator key (nobody could create teams again; `sigil server reset-bootstrap-key`
/// replaces it), and the team's last live admin key (nobody could manage the team's keys).
async fn revocable(state: &AppState, c: &Caller, id: &KeyId) -> Result<(), ServerError> {
    if *id == c.key_id {
        return Err(ServerError::Conflict(
            "a key cannot revoke itself: revoke it with another admin key".into(),
        ));
    }
    let keys = state.store.list_keys(c.team_id).await?;
    let Some(target) = keys.iter().find(|k| *id == *k.id && k.revoked_at.is_none()) else {
        return Ok(()); // not a live key of the team: the revocation says so
    };
    if target.bootstrap {
        return Err(ServerError::Conflict(
            "the bootstrap administrator key cannot be revoked through the API (nobody could \
             create teams again): `sigil server reset-bootstrap-key` replaces it"
                .into(),
        ));
    }
    let live_admins = keys
        .iter()
        .filter(|k| k.revoked_at.is_none() && k.role == Role::Admin)
        .count();
    if target.role == Role::Admin && live_admins <= 1 {
        return Err(ServerError::Conflict(format!(
            "key {:?} is the last admin key of team {:?}: create another admin key first",
            id.as_str(),
            c.team.as_str()
        )));
    }
    Ok(())
}

/// Revokes a key of the team: admin role. Every replica refuses it within the key cache's TTL.
pub(crate) async fn revoke(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    id: &KeyId,
) -> Result<(), ServerError> {
    let (action, asked) = (AuditAction::KeyRevoke, Some(id.as_str()));
    authorize(state, c, team, Role::Admin, "revoke keys", action, asked).await?;
    if let Err(e) = revocable(state, c, id).await {
        return Err(refuse(state, c, team.as_str(), action, asked, e).await);
    }
    let audit_ok = audit_row(c, action, asked, None, AuditOutcome::Ok);
    if state
        .store
        .revoke_key(c.team_id, id.as_str(), now_ms(), audit_ok)
        .await?
    {
        state.forget_key(id.as_str());
        Metrics::inc(&state.metrics.audit_records, 1);
        Ok(())
    } else {
        // no such live key, or it became the team's last admin key since `revocable` looked
        // (another admin revoked meanwhile): the store refuses that, and this says which
        let e = match revocable(state, c, id).await {
            Err(e) => e,
            Ok(()) => ServerError::NotFound(format!(
                "no live key {:?} in team {:?}",
                id.as_str(),
                team.as_str()
            )),
        };
        Err(refuse(state, c, team.as_str(), action, asked, e).await)
    }
}
