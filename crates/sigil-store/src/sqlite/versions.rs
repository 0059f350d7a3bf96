//! Versions and settings on SQLite: a new version (check-and-set, deletion time, pruning), the
//! state of versions, a secret's and a team's settings, a purge. Each runs in a writer job.

#[allow(unused_imports)]
use super::*;
use crate::model::{KvConfig, SettingsChange, VersionChange, Written};
use crate::plan;

/// The secret (absent: NULL columns) and its team's settings, in one row.
const BEFORE_WRITE: &str = concat!(
    "SELECT ",
    rows::before_write_cols!(),
    " FROM teams t LEFT JOIN secrets s ON s.team_id = t.id AND s.name = ?2 WHERE t.id = ?1"
);

/// The secret's row, if any, and its team's settings; a team that does not exist is an error.
pub(super) fn before_write(
    c: &Connection,
    team_id: i64,
    name: &str,
) -> Result<(Option<SecretRow>, KvConfig)> {
    c.prepare_cached(BEFORE_WRITE)?
        .query_row(params![team_id, name], |r| rows::before_write(r))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("team {team_id}")))
}

/// Writes a new version (see [`Store::put_secret`]).
pub(super) fn put_secret(c: &Connection, put: PutSecret, mut audit: AuditRow) -> Result<Written> {
    let (current, config) = before_write(c, put.team_id, &put.name)?;
    let new = plan::new_version(current.as_ref(), &config, put.cas, put.at)?;
    let ciphertext = (put.seal)(new.version).map_err(StoreError::backend)?;
    c.prepare_cached(
        "INSERT INTO secret_versions (team_id, name, version, data_key_version, ciphertext, created_at, created_by, deleted_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        put.team_id,
        put.name,
        new.version,
        put.data_key_version,
        ciphertext,
        put.at,
        put.by,
        new.deleted_at
    ])?;
    c.prepare_cached(
        "INSERT INTO secrets (team_id, name, version, created_at, updated_at, updated_by, deleted_at, oldest_version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7)
         ON CONFLICT (team_id, name) DO UPDATE SET version = excluded.version,
             updated_at = excluded.updated_at, updated_by = excluded.updated_by, deleted_at = NULL,
             oldest_version = excluded.oldest_version",
    )?
    .execute(params![
        put.team_id,
        put.name,
        new.version,
        new.created_at,
        put.at,
        put.by,
        new.oldest_version
    ])?;
    if let Some(below) = new.prune_below {
        c.prepare_cached(
            "DELETE FROM secret_versions WHERE team_id = ?1 AND name = ?2 AND version < ?3",
        )?
        .execute(params![put.team_id, put.name, below])?;
    }
    audit.version = Some(new.version);
    insert_audit(c, &audit)?;
    Ok(Written {
        secret: SecretRow {
            name: put.name,
            version: new.version,
            created_at: new.created_at,
            updated_at: put.at,
            updated_by: put.by,
            deleted_at: None,
            oldest_version: new.oldest_version,
            settings: new.settings,
        },
        deleted_at: new.deleted_at,
    })
}

/// Changes versions' state (see [`Store::change_versions`]).
pub(super) fn change_versions(
    c: &Connection,
    team_id: i64,
    name: &str,
    versions: &[i64],
    change: VersionChange,
    at: i64,
    audit: &AuditRow,
) -> Result<Option<Vec<i64>>> {
    let (Some(secret), config) = before_write(c, team_id, name)? else {
        return Ok(None);
    };
    if secret.deleted_at.is_some() {
        return Ok(None);
    }
    let mut read = c.prepare_cached(concat!(
        "SELECT ",
        rows::version_meta_cols!(),
        " FROM secret_versions WHERE team_id = ?1 AND name = ?2 AND version = ?3"
    ))?;
    let mut update = c.prepare_cached(
        "UPDATE secret_versions SET deleted_at = ?4, destroyed = ?5,
             ciphertext = CASE WHEN ?5 THEN x'' ELSE ciphertext END
         WHERE team_id = ?1 AND name = ?2 AND version = ?3",
    )?;
    let mut changed = Vec::new();
    let mut records = Vec::new();
    for &v in versions {
        let v = if v == 0 { secret.version } else { v };
        if changed.contains(&v) {
            continue;
        }
        let Some(row) = read
            .query_row(params![team_id, name, v], |r| rows::version_meta(r))
            .optional()?
        else {
            continue;
        };
        if let Some((deleted_at, destroyed)) =
            plan::changed_version(&row, change, at, &config, &secret.settings)
        {
            update.execute(params![team_id, name, v, deleted_at, destroyed])?;
            changed.push(v);
            records.push(AuditRow {
                version: Some(v),
                ..audit.clone()
            });
        }
    }
    insert_audit_rows(c, &records)?;
    Ok(Some(changed))
}

/// Changes a secret's settings (see [`Store::set_settings`]).
pub(super) fn set_settings(
    c: &Connection,
    team_id: i64,
    name: &str,
    change: &SettingsChange,
    at: i64,
    audit: &AuditRow,
) -> Result<SecretRow> {
    let (current, _) = before_write(c, team_id, name)?;
    let row = plan::settings_row(current, name, at, &audit.key_id)?;
    let s = change.applied_to(row.settings.clone())?;
    c.prepare_cached(
        "INSERT INTO secrets (team_id, name, version, created_at, updated_at, updated_by, deleted_at,
             oldest_version, max_versions, cas_required, delete_version_after, custom_metadata)
         VALUES (?1, ?2, 0, ?3, ?4, ?5, NULL, 0, ?6, ?7, ?8, ?9)
         ON CONFLICT (team_id, name) DO UPDATE SET updated_at = excluded.updated_at,
             updated_by = excluded.updated_by, max_versions = excluded.max_versions,
             cas_required = excluded.cas_required,
             delete_version_after = excluded.delete_version_after,
             custom_metadata = excluded.custom_metadata",
    )?
    .execute(params![
        team_id,
        name,
        row.created_at,
        at,
        audit.key_id,
        s.max_versions,
        s.cas_required,
        s.delete_version_after,
        s.custom_metadata
    ])?;
    insert_audit(c, audit)?;
    Ok(SecretRow {
        updated_at: at,
        updated_by: audit.key_id.clone(),
        settings: s,
        ..row
    })
}

/// Removes a live secret and its versions (see [`Store::purge_secret`]).
pub(super) fn purge_secret(
    c: &Connection,
    team_id: i64,
    name: &str,
    audit: &AuditRow,
) -> Result<bool> {
    let n = c
        .prepare_cached(
            "DELETE FROM secrets WHERE team_id = ?1 AND name = ?2 AND deleted_at IS NULL",
        )?
        .execute(params![team_id, name])?;
    if n == 0 {
        return Ok(false);
    }
    c.prepare_cached("DELETE FROM secret_versions WHERE team_id = ?1 AND name = ?2")?
        .execute(params![team_id, name])?;
    insert_audit(c, audit)?;
    Ok(true)
}

/// Replaces a team's settings (see [`Store::set_kv_config`]).
pub(super) fn set_kv_config(
    c: &Connection,
    team_id: i64,
    k: KvConfig,
    audit: &AuditRow,
) -> Result<()> {
    let n = c
        .prepare_cached(
            "UPDATE teams SET kv_max_versions = ?2, kv_cas_required = ?3, kv_delete_version_after = ?4
             WHERE id = ?1",
        )?
        .execute(params![team_id, k.max_versions, k.cas_required, k.delete_version_after])?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("team {team_id}")));
    }
    insert_audit(c, audit)
}

/// A team's settings.
pub(super) fn kv_config(c: &Connection, team_id: i64) -> Result<KvConfig> {
    c.prepare_cached(concat!(
        "SELECT ",
        rows::kv_config_cols!(),
        " FROM teams WHERE id = ?1"
    ))?
    .query_row([team_id], |r| rows::kv_config(r))
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("team {team_id}")))
}
