//! Versions and settings: a version's soft delete, undelete and destroy, a secret's settings
//! (`max_versions`, `cas_required`, `delete_version_after`, `custom_metadata`), its purge, and the
//! team's settings for all its secrets — who may, what is checked, what the audit log records.
//!
//! A writer changes a secret's versions and settings, and may purge it (a writer may as well
//! lower `max_versions` to one, which removes old versions for good too); an admin changes the
//! team's settings; any key of the team reads them.

use std::collections::BTreeMap;

use sigil_core::SecretName;
use sigil_core::wire::Role;
use sigil_store::{
    AuditAction, AuditOutcome, KvConfig, SecretRow, SettingsChange, VersionChange, VersionRow,
};

use super::{
    Caller, ServerError, TeamName, authorize, now_ms, refuse, same_team, secret_audit_row,
};
use crate::state::{AppState, Metrics};
use sigil_core::wire::MAX_VERSIONS_PER_CHANGE;

/// The most keys `custom_metadata` may hold, and their and their values' lengths (Vault's).
const MAX_CUSTOM_KEYS: usize = 64;
const MAX_CUSTOM_KEY_BYTES: usize = 128;
const MAX_CUSTOM_VALUE_BYTES: usize = 512;
/// What custom_metadata's refusals start with (Vault's words).
const CUSTOM_REFUSED: &str = "custom_metadata validation failed";

/// A change of a secret's settings, as the faces parse it: each field given is changed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Settings {
    /// Versions kept (0: the team's setting; 0 there too: all).
    pub(crate) max_versions: Option<i64>,
    /// Every write needs a check-and-set.
    pub(crate) cas_required: Option<bool>,
    /// Versions are soft-deleted this many ms after they are written (0: never).
    pub(crate) delete_version_after_ms: Option<i64>,
    /// The secret's description (`Some(empty)` clears it).
    pub(crate) custom_metadata: Option<BTreeMap<String, String>>,
    /// Set by a merge: the change applies only while the stored `custom_metadata` is still
    /// this text (see [`merge_custom_metadata`]).
    pub(crate) custom_metadata_was: Option<Option<String>>,
}

/// `custom_metadata` as Vault checks it: at most 64 keys, each key 1 to 128 bytes, each value 1
/// to 512, all printable. The refusal names the key.
fn check_custom(custom: &BTreeMap<String, String>) -> Result<(), ServerError> {
    let invalid = |m: String| Err(ServerError::Invalid(format!("{CUSTOM_REFUSED}: {m}")));
    if custom.len() > MAX_CUSTOM_KEYS {
        return invalid(format!(
            "payload must contain at most {MAX_CUSTOM_KEYS} keys, provided {}",
            custom.len()
        ));
    }
    let printable = |s: &str| !s.chars().any(char::is_control);
    for (k, v) in custom {
        let key = super::bounded(k, 140);
        if k.is_empty() || k.len() > MAX_CUSTOM_KEY_BYTES {
            return invalid(format!(
                "length of key {key:?} is {} but must be 0 < len(key) <= {MAX_CUSTOM_KEY_BYTES}",
                k.len()
            ));
        }
        if v.is_empty() || v.len() > MAX_CUSTOM_VALUE_BYTES {
            return invalid(format!(
                "length of value for key {key:?} is {} but must be 0 < len(value) <= {MAX_CUSTOM_VALUE_BYTES}",
                v.len()
            ));
        }
        if !printable(k) {
            return invalid(format!("key {key:?} contains unprintable characters"));
        }
        if !printable(v) {
            return invalid(format!(
                "value for key {key:?} contains unprintable characters"
            ));
        }
    }
    Ok(())
}

/// `max_versions` and `delete_version_after` within their bounds (a secret's or a team's).
fn check_bounds(
    max_versions: Option<i64>,
    delete_after_ms: Option<i64>,
) -> Result<(), ServerError> {
    if let Some(m) = max_versions
        && !(0..=i64::from(u32::MAX)).contains(&m)
    {
        return Err(ServerError::Invalid(format!(
            "max_versions must be from 0 to {}, not {m}",
            u32::MAX
        )));
    }
    if delete_after_ms.is_some_and(|d| d < 0) {
        return Err(ServerError::Invalid(
            "delete_version_after cannot be negative".into(),
        ));
    }
    Ok(())
}

impl Settings {
    /// The store's change, once every field is within its bounds.
    fn checked(self) -> Result<SettingsChange, ServerError> {
        check_bounds(self.max_versions, self.delete_version_after_ms)?;
        let custom_metadata = match self.custom_metadata {
            None => None,
            Some(m) if m.is_empty() => Some(None),
            Some(m) => {
                check_custom(&m)?;
                Some(Some(
                    serde_json::to_string(&m).map_err(ServerError::internal)?,
                ))
            }
        };
        Ok(SettingsChange {
            max_versions: self.max_versions,
            cas_required: self.cas_required,
            delete_version_after: self.delete_version_after_ms,
            custom_metadata,
            custom_metadata_was: self.custom_metadata_was,
        })
    }
}

/// A secret's `custom_metadata` as a map (none when it has none, or when what is stored cannot
/// be read as one, which only a hand-edited database holds).
pub(crate) fn custom_metadata(row: &SecretRow) -> Option<BTreeMap<String, String>> {
    row.settings
        .custom_metadata
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
}

/// Soft-deletes, undeletes or destroys versions of a secret (writer role): each version changed
/// is on record; the versions changed are returned (those that do not exist, or that the change
/// does not apply to, are left alone). A secret that does not exist is a refusal on record.
pub(crate) async fn change(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    name: &SecretName,
    versions: &[i64],
    change: VersionChange,
) -> Result<Vec<i64>, ServerError> {
    let action = change.action();
    let what = match change {
        VersionChange::Delete => "delete versions",
        VersionChange::Undelete => "undelete versions",
        VersionChange::Destroy => "destroy versions",
    };
    let asked = Some(name.as_str());
    authorize(state, c, team, Role::Writer, what, action, asked).await?;
    let checked = if versions.is_empty() {
        Err(ServerError::Invalid("no version number provided".into()))
    } else if versions.len() > MAX_VERSIONS_PER_CHANGE {
        Err(ServerError::TooLarge(format!(
            "versions holds {} numbers, over the limit of {MAX_VERSIONS_PER_CHANGE}",
            versions.len()
        )))
    } else if let Some(bad) = versions.iter().find(|&&v| v < 1) {
        Err(ServerError::Invalid(format!(
            "versions must be 1 or more, not {bad}"
        )))
    } else {
        Ok(())
    };
    if let Err(e) = checked {
        return Err(refuse(state, c, team.as_str(), action, asked, e).await);
    }
    apply(state, c, team, name, versions, change).await
}

/// Soft-deletes a secret's current version (writer role): which one it is is settled in the
/// same transaction, so a version written meanwhile is not the one deleted by mistake.
pub(crate) async fn delete_current(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    name: &SecretName,
) -> Result<Vec<i64>, ServerError> {
    let (action, asked) = (AuditAction::VersionDelete, Some(name.as_str()));
    authorize(
        state,
        c,
        team,
        Role::Writer,
        "delete versions",
        action,
        asked,
    )
    .await?;
    apply(state, c, team, name, &[0], VersionChange::Delete).await
}

/// The change, once allowed and checked (version 0: the current one).
async fn apply(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    name: &SecretName,
    versions: &[i64],
    change: VersionChange,
) -> Result<Vec<i64>, ServerError> {
    let (action, asked) = (change.action(), Some(name.as_str()));
    let audit_ok = secret_audit_row(c, action, name, None, AuditOutcome::Ok);
    let at = now_ms();
    match state
        .store
        .change_versions(c.team_id, name.as_str(), versions, change, at, audit_ok)
        .await?
    {
        Some(changed) => {
            Metrics::inc(&state.metrics.audit_records, changed.len() as u64);
            Ok(changed)
        }
        None => Err(refuse(
            state,
            c,
            team.as_str(),
            action,
            asked,
            not_found(name, team),
        )
        .await),
    }
}

fn not_found(name: &SecretName, team: &TeamName) -> ServerError {
    ServerError::NotFound(format!(
        "secret {:?} not found in team {:?}",
        name.as_str(),
        team.as_str()
    ))
}

/// Changes a secret's settings (writer role), creating it without versions when it does not
/// exist; returns it. Bad input is a refusal on record, naming the field.
pub(crate) async fn set(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    name: &SecretName,
    settings: Settings,
) -> Result<SecretRow, ServerError> {
    let action = AuditAction::SecretSettings;
    let asked = Some(name.as_str());
    authorize(
        state,
        c,
        team,
        Role::Writer,
        "change secret settings",
        action,
        asked,
    )
    .await?;
    let change = match settings.checked() {
        Ok(change) => change,
        Err(e) => return Err(refuse(state, c, team.as_str(), action, asked, e).await),
    };
    let audit_ok = secret_audit_row(c, action, name, None, AuditOutcome::Ok);
    match state
        .store
        .set_settings(c.team_id, name.as_str(), change, now_ms(), audit_ok)
        .await
    {
        Ok(row) => {
            Metrics::inc(&state.metrics.audit_records, 1);
            Ok(row)
        }
        Err(e @ sigil_store::StoreError::Deleted(_)) => {
            Err(refuse(state, c, team.as_str(), action, asked, e.into()).await)
        }
        Err(e) => Err(e.into()),
    }
}

/// How many times a merge into `custom_metadata` reads again after losing a race.
const MERGE_ATTEMPTS: u32 = 32;

/// Changes a secret's settings with `patch` merged into its `custom_metadata` key by key (`None`
/// removes a key), as Vault's metadata PATCH does. The merge reads the stored map and the store
/// applies the result only while that map is still there, so two merges at once both land; one
/// that lost the race reads again. A secret that does not exist (or is deleted) is `Ok(None)`.
pub(crate) async fn merge_custom_metadata(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    name: &SecretName,
    mut settings: Settings,
    patch: &BTreeMap<String, Option<String>>,
) -> Result<Option<SecretRow>, ServerError> {
    for attempt in 0..MERGE_ATTEMPTS {
        let row = match all_versions(state, c, team, name).await? {
            Some((row, _)) if row.deleted_at.is_none() => row,
            _ => return Ok(None),
        };
        let mut merged = custom_metadata(&row).unwrap_or_default();
        for (k, v) in patch {
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        settings.custom_metadata = Some(merged);
        settings.custom_metadata_was = Some(row.settings.custom_metadata.clone());
        match set(state, c, team, name, settings.clone()).await {
            Err(ServerError::Conflict(_)) => {
                // merged meanwhile: read it again after a wait that grows and differs between
                // the merges that collided, so that they stop colliding
                let spread = 1 + u64::from(attempt) * 500;
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
                let jitter = u64::from(now.unwrap_or_default().subsec_nanos()) % spread;
                tokio::time::sleep(std::time::Duration::from_micros(jitter)).await;
            }
            done => return done.map(Some),
        }
    }
    Err(ServerError::Conflict(format!(
        "the custom_metadata of secret {:?} changed {MERGE_ATTEMPTS} times while a patch was \
         merged into it: try again",
        name.as_str()
    )))
}

/// Removes a secret and all its versions for good (writer role); the audit log keeps its
/// records. A secret that does not exist (or is deleted through Sigil, restorable) is a refusal
/// on record.
pub(crate) async fn purge(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    name: &SecretName,
) -> Result<(), ServerError> {
    let action = AuditAction::SecretPurge;
    let asked = Some(name.as_str());
    authorize(state, c, team, Role::Writer, "purge secrets", action, asked).await?;
    let audit_ok = secret_audit_row(c, action, name, None, AuditOutcome::Ok);
    if state
        .store
        .purge_secret(c.team_id, name.as_str(), audit_ok)
        .await?
    {
        Metrics::inc(&state.metrics.audit_records, 1);
        Ok(())
    } else {
        Err(refuse(
            state,
            c,
            team.as_str(),
            action,
            asked,
            not_found(name, team),
        )
        .await)
    }
}

/// A secret and every one of its versions, newest first, without values (any role of the
/// team); `None` when there is no such secret.
pub(crate) async fn all_versions(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    name: &SecretName,
) -> Result<Option<(SecretRow, Vec<VersionRow>)>, ServerError> {
    same_team(c, team)?;
    let mut all: Option<(SecretRow, Vec<VersionRow>)> = None;
    let mut before = None;
    loop {
        let page = 1000;
        let Some((row, versions)) = state
            .store
            .history(c.team_id, name.as_str(), before, page)
            .await?
        else {
            return Ok(all);
        };
        let full = versions.len() == page as usize;
        before = versions.last().map(|v| v.version);
        match &mut all {
            Some((_, kept)) => kept.extend(versions),
            None => all = Some((row, versions)),
        }
        if !full {
            return Ok(all);
        }
    }
}

/// The team's settings for its secrets (any role of the team).
pub(crate) async fn team_settings(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
) -> Result<KvConfig, ServerError> {
    same_team(c, team)?;
    Ok(state.store.kv_config(c.team_id).await?)
}

/// Replaces the team's settings for its secrets (admin role); on record.
pub(crate) async fn set_team_settings(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    config: KvConfig,
) -> Result<(), ServerError> {
    let action = AuditAction::TeamSettings;
    let what = "change the team's secret settings";
    authorize(state, c, team, Role::Admin, what, action, None).await?;
    let checked = check_bounds(Some(config.max_versions), Some(config.delete_version_after));
    if let Err(e) = checked {
        return Err(refuse(state, c, team.as_str(), action, None, e).await);
    }
    let audit_ok = super::audit_row(c, action, None, None, AuditOutcome::Ok);
    state
        .store
        .set_kv_config(c.team_id, config, audit_ok)
        .await?;
    Metrics::inc(&state.metrics.audit_records, 1);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn custom(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn custom_metadata_is_checked_as_vault_checks_it() {
        assert!(check_custom(&custom(&[("owner", "data team")])).is_ok());
        let refused = |m: BTreeMap<String, String>| check_custom(&m).unwrap_err().to_string();
        let many: BTreeMap<String, String> = (0..65)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect();
        assert_eq!(
            refused(many),
            "custom_metadata validation failed: payload must contain at most 64 keys, provided 65"
        );
        assert!(refused(custom(&[("", "v")])).contains("length of key \"\" is 0"));
        let long = "k".repeat(129);
        assert!(
            refused(custom(&[(&long, "v")])).contains("is 129 but must be 0 < len(key) <= 128")
        );
        assert!(refused(custom(&[("k", "")])).contains("length of value for key \"k\" is 0"));
        assert!(
            refused(custom(&[("k", &"v".repeat(513))]))
                .contains("is 513 but must be 0 < len(value) <= 512")
        );
        assert!(refused(custom(&[("k\n", "v")])).contains("unprintable"));
        assert!(refused(custom(&[("k", "a\u{7}b")])).contains("value for key \"k\""));
    }

    #[test]
    fn settings_are_bounded() {
        let bad = |s: Settings| s.checked().unwrap_err().to_string();
        assert!(
            bad(Settings {
                max_versions: Some(-1),
                ..Default::default()
            })
            .contains("max_versions must be from 0")
        );
        assert!(
            bad(Settings {
                delete_version_after_ms: Some(-5),
                ..Default::default()
            })
            .contains("delete_version_after cannot be negative")
        );
        let cleared = Settings {
            custom_metadata: Some(BTreeMap::new()),
            ..Default::default()
        };
        assert_eq!(cleared.checked().unwrap().custom_metadata, Some(None));
        let kept = Settings {
            custom_metadata: Some(custom(&[("b", "2"), ("a", "1")])),
            ..Default::default()
        };
        assert_eq!(
            kept.checked().unwrap().custom_metadata,
            Some(Some(r#"{"a":"1","b":"2"}"#.into()))
        );
    }
}
