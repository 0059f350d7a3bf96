//! Versions and settings on PostgreSQL: a new version (check-and-set, deletion time, pruning), the
//! state of versions, a secret's and a team's settings, a purge. Each is one transaction that
//! holds the (team, name) advisory lock every change of a secret takes.

#[allow(unused_imports)]
use super::*;
use crate::model::{KvConfig, SettingsChange, VersionChange, Written};
use crate::plan;

/// The secret (absent: NULL columns) and its team's settings, in one row.
const BEFORE_WRITE: &str = concat!(
    "SELECT ",
    rows::before_write_cols!(),
    " FROM teams t LEFT JOIN secrets s ON s.team_id = t.id AND s.name = $2 WHERE t.id = $1"
);

/// Takes the secret's lock and reads its row and its team's settings. One writer per (team,
/// name) across every replica. The lock and the read go out together (pipelined) and PostgreSQL
/// runs them in the order sent, so the read's snapshot is taken once the lock is held. The order
/// is made sure of: both statements are prepared beforehand, so a future's first poll sends its
/// statement, and `biased` polls the lock's first (by default try_join! rotates which goes
/// first, and the read, overtaking the lock, saw versions another writer was replacing: the
/// concurrent writers test failed on a duplicate version).
async fn locked(
    tx: &deadpool_postgres::Transaction<'_>,
    team_id: i64,
    name: &str,
) -> Result<(Option<SecretRow>, KvConfig)> {
    let team32 = team_id as i32;
    let lock: [Param<'_>; 2] = [&team32, &name];
    let key: [Param<'_>; 2] = [&team_id, &name];
    let lock_st = tx
        .prepare_cached("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .await?;
    let read_st = tx.prepare_cached(BEFORE_WRITE).await?;
    let (_, row) = tokio::try_join!(
        biased;
        tx.execute(&lock_st, &lock),
        tx.query_opt(&read_st, &key),
    )?;
    let row = row.ok_or_else(|| StoreError::NotFound(format!("team {team_id}")))?;
    rows::before_write(&row)
}

/// Writes a new version (see [`Store::put_secret`]).
pub(super) async fn put_secret(
    store: &PgStore,
    put: PutSecret,
    mut audit: AuditRow,
) -> Result<Written> {
    let mut c = store.client().await?;
    let tx = c.transaction().await?;
    let (current, config) = locked(&tx, put.team_id, &put.name).await?;
    let new = plan::new_version(current.as_ref(), &config, put.cas, put.at)?;
    let ciphertext = (put.seal)(new.version).map_err(StoreError::backend)?;
    audit.version = Some(new.version);
    // the version, the secret's row, the versions pruned and the audit record, pipelined too:
    // when one fails, the transaction is aborted, the ones after it fail with it and nothing is
    // committed
    let version_row: [Param<'_>; 8] = [
        &put.team_id,
        &put.name,
        &new.version,
        &put.data_key_version,
        &ciphertext,
        &put.at,
        &put.by,
        &new.deleted_at,
    ];
    let secret_row: [Param<'_>; 7] = [
        &put.team_id,
        &put.name,
        &new.version,
        &new.created_at,
        &put.at,
        &put.by,
        &new.oldest_version,
    ];
    let prune =
        async {
            match new.prune_below {
                Some(below) => execute_cached(
                    &tx,
                    "DELETE FROM secret_versions WHERE team_id = $1 AND name = $2 AND version < $3",
                    &[&put.team_id, &put.name, &below],
                )
                .await,
                None => Ok(0),
            }
        };
    tokio::try_join!(
        execute_cached(
            &tx,
            "INSERT INTO secret_versions (team_id, name, version, data_key_version, ciphertext, created_at, created_by, deleted_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &version_row,
        ),
        execute_cached(
            &tx,
            "INSERT INTO secrets (team_id, name, version, created_at, updated_at, updated_by, deleted_at, oldest_version)
             VALUES ($1, $2, $3, $4, $5, $6, NULL, $7)
             ON CONFLICT (team_id, name) DO UPDATE SET version = excluded.version,
                 updated_at = excluded.updated_at, updated_by = excluded.updated_by, deleted_at = NULL,
                 oldest_version = excluded.oldest_version",
            &secret_row,
        ),
        prune,
        insert_audit(&tx, &audit),
    )?;
    tx.commit().await?;
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
pub(super) async fn change_versions(
    store: &PgStore,
    team_id: i64,
    name: &str,
    versions: &[i64],
    change: VersionChange,
    at: i64,
    audit: AuditRow,
) -> Result<Option<Vec<i64>>> {
    let mut c = store.client().await?;
    let tx = c.transaction().await?;
    let (Some(secret), config) = locked(&tx, team_id, name).await? else {
        return Ok(None);
    };
    if secret.deleted_at.is_some() {
        return Ok(None);
    }
    let versions: Vec<i64> = versions
        .iter()
        .map(|&v| if v == 0 { secret.version } else { v })
        .collect();
    let rows = query_cached(
        &tx,
        concat!(
            "SELECT ",
            rows::version_meta_cols!(),
            " FROM secret_versions WHERE team_id = $1 AND name = $2 AND version = ANY($3) ORDER BY version"
        ),
        &[&team_id, &name, &versions],
    )
    .await?;
    let mut changed = Vec::new();
    let (mut deleted_at, mut destroyed) = (Vec::new(), Vec::new());
    for r in &rows {
        let row = rows::version_meta(r)?;
        if let Some((d, x)) = plan::changed_version(&row, change, at, &config, &secret.settings) {
            changed.push(row.version);
            deleted_at.push(d);
            destroyed.push(x);
        }
    }
    if !changed.is_empty() {
        execute_cached(
            &tx,
            "UPDATE secret_versions v SET deleted_at = c.deleted_at, destroyed = c.destroyed,
                 ciphertext = CASE WHEN c.destroyed THEN ''::bytea ELSE v.ciphertext END
             FROM unnest($3::bigint[], $4::bigint[], $5::boolean[]) AS c(version, deleted_at, destroyed)
             WHERE v.team_id = $1 AND v.name = $2 AND v.version = c.version",
            &[&team_id, &name, &changed, &deleted_at, &destroyed],
        )
        .await?;
        let records: Vec<AuditRow> = changed
            .iter()
            .map(|&v| AuditRow {
                version: Some(v),
                ..audit.clone()
            })
            .collect();
        for r in &records {
            insert_audit(&tx, r).await?;
        }
    }
    tx.commit().await?;
    Ok(Some(changed))
}

/// Changes a secret's settings (see [`Store::set_settings`]).
pub(super) async fn set_settings(
    store: &PgStore,
    team_id: i64,
    name: &str,
    change: SettingsChange,
    at: i64,
    audit: AuditRow,
) -> Result<SecretRow> {
    let mut c = store.client().await?;
    let tx = c.transaction().await?;
    let (current, _) = locked(&tx, team_id, name).await?;
    let row = plan::settings_row(current, name, at, &audit.key_id)?;
    let s = change.applied_to(row.settings.clone())?;
    execute_cached(
        &tx,
        "INSERT INTO secrets (team_id, name, version, created_at, updated_at, updated_by, deleted_at,
             oldest_version, max_versions, cas_required, delete_version_after, custom_metadata)
         VALUES ($1, $2, 0, $3, $4, $5, NULL, 0, $6, $7, $8, $9)
         ON CONFLICT (team_id, name) DO UPDATE SET updated_at = excluded.updated_at,
             updated_by = excluded.updated_by, max_versions = excluded.max_versions,
             cas_required = excluded.cas_required,
             delete_version_after = excluded.delete_version_after,
             custom_metadata = excluded.custom_metadata",
        &[
            &team_id,
            &name,
            &row.created_at,
            &at,
            &audit.key_id,
            &s.max_versions,
            &s.cas_required,
            &s.delete_version_after,
            &s.custom_metadata,
        ],
    )
    .await?;
    insert_audit(&tx, &audit).await?;
    tx.commit().await?;
    Ok(SecretRow {
        updated_at: at,
        updated_by: audit.key_id.clone(),
        settings: s,
        ..row
    })
}

/// Removes a live secret and its versions (see [`Store::purge_secret`]).
pub(super) async fn purge_secret(
    store: &PgStore,
    team_id: i64,
    name: &str,
    audit: AuditRow,
) -> Result<bool> {
    let mut c = store.client().await?;
    let tx = c.transaction().await?;
    let (Some(secret), _) = locked(&tx, team_id, name).await? else {
        return Ok(false);
    };
    if secret.deleted_at.is_some() {
        return Ok(false);
    }
    let key: [Param<'_>; 2] = [&team_id, &name];
    tokio::try_join!(
        execute_cached(
            &tx,
            "DELETE FROM secrets WHERE team_id = $1 AND name = $2",
            &key
        ),
        execute_cached(
            &tx,
            "DELETE FROM secret_versions WHERE team_id = $1 AND name = $2",
            &key
        ),
        insert_audit(&tx, &audit),
    )?;
    tx.commit().await?;
    Ok(true)
}

/// Replaces a team's settings (see [`Store::set_kv_config`]).
pub(super) async fn set_kv_config(
    store: &PgStore,
    team_id: i64,
    k: KvConfig,
    audit: AuditRow,
) -> Result<()> {
    let mut c = store.client().await?;
    let tx = c.transaction().await?;
    let n = execute_cached(
        &tx,
        "UPDATE teams SET kv_max_versions = $2, kv_cas_required = $3, kv_delete_version_after = $4
         WHERE id = $1",
        &[
            &team_id,
            &k.max_versions,
            &k.cas_required,
            &k.delete_version_after,
        ],
    )
    .await?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("team {team_id}")));
    }
    insert_audit(&tx, &audit).await?;
    tx.commit().await?;
    Ok(())
}

/// A team's settings.
pub(super) async fn kv_config(store: &PgStore, team_id: i64) -> Result<KvConfig> {
    let c = store.client().await?;
    let sql = concat!(
        "SELECT ",
        rows::kv_config_cols!(),
        " FROM teams WHERE id = $1"
    );
    let row = query_opt_cached(&c, sql, &[&team_id])
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("team {team_id}")))?;
    rows::kv_config(&row)
}
