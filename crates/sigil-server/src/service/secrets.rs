//! Secrets: read, write, delete, restore, history — who may, what is checked, what is sealed
//! and what the audit log records.

use serde_json::Value;
use sigil_core::SecretName;
use sigil_core::wire::{
    BatchReadResult, History, MAX_BATCH_NAMES, Role, SecretRead, SecretSettingsInfo, SecretWritten,
    VersionInfo, VersionStatus, rfc3339,
};
use sigil_store::{AuditAction, AuditOutcome};
use sigil_store::{StoreError, VersionState};
use zeroize::Zeroizing;

use super::{
    Caller, ServerError, TeamName, audit, authorize, now_ms, refuse, same_team, secret_audit_row,
};
use crate::crypto::{DataKey, Place};
use crate::state::{AppState, Metrics};

/// Opens a sealed value: its JSON text, zeroed when dropped.
pub(crate) fn open_plaintext(
    dk: &DataKey,
    team: &str,
    name: &str,
    version: i64,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, ServerError> {
    dk.open(
        ciphertext,
        Place {
            team,
            name,
            version,
        },
    )
    .map_err(ServerError::internal)
}

pub(crate) fn not_json(name: &str, version: i64) -> ServerError {
    ServerError::internal(format!("secret {name:?} version {version} is not JSON"))
}

/// A version found by a read, opened with its team's data key.
pub(crate) async fn open_found(
    state: &AppState,
    c: &Caller,
    name: &str,
    ver: &sigil_store::VersionRow,
) -> Result<Zeroizing<Vec<u8>>, ServerError> {
    let dk = state
        .data_key(c.team_id, c.team.as_str(), ver.data_key_version)
        .await?;
    open_plaintext(&dk, c.team.as_str(), name, ver.version, &ver.ciphertext)
}

/// After reads recorded as `ok` whose values could not be opened (`e`): records `error` for
/// each, since no value went out, and gives back `e` — or the audit's own failure.
pub(crate) async fn unopened(
    state: &AppState,
    c: &Caller,
    reads: impl Iterator<Item = (&SecretName, i64)>,
    e: ServerError,
) -> ServerError {
    let rows = reads
        .map(|(name, version)| {
            secret_audit_row(
                c,
                AuditAction::SecretRead,
                name,
                Some(version),
                AuditOutcome::Error,
            )
        })
        .collect();
    match audit(state, rows).await {
        Ok(()) => e,
        Err(audit_failed) => audit_failed,
    }
}

/// A value read: its version, when that version was written, and the value's JSON text as it was
/// sealed (zeroed when dropped).
pub(crate) struct Read {
    pub(crate) version: i64,
    pub(crate) created_at: i64,
    /// When the version will be soft-deleted (a `delete_version_after` setting), if it will.
    pub(crate) deleted_at: Option<i64>,
    /// The secret's description (its settings' `custom_metadata`, JSON text).
    pub(crate) custom_metadata: Option<String>,
    pub(crate) plain: Zeroizing<Vec<u8>>,
}

/// A version that was found but cannot be read: soft-deleted or destroyed. Vault's clients are
/// told its metadata (with a 404).
#[derive(Debug)]
pub(crate) struct Unreadable {
    pub(crate) version: i64,
    pub(crate) created_at: i64,
    pub(crate) deleted_at: Option<i64>,
    pub(crate) destroyed: bool,
    pub(crate) custom_metadata: Option<String>,
}

impl Unreadable {
    /// The refusal every face but Vault's gives.
    fn refusal(&self, name: &SecretName, team: &TeamName) -> ServerError {
        let (n, t, v) = (name.as_str(), team.as_str(), self.version);
        ServerError::NotFound(if self.destroyed {
            format!("secret {n:?} version {v} in team {t:?} is destroyed: its value is gone")
        } else {
            format!("secret {n:?} version {v} in team {t:?} is deleted: undelete it to read it")
        })
    }
}

/// Never the value.
impl std::fmt::Debug for Read {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Read")
            .field("version", &self.version)
            .field("created_at", &self.created_at)
            .field("plain", &"<redacted>")
            .finish()
    }
}

/// The caller may read values of `team` (reader role); a refusal of reading `name` is on record.
async fn may_read_values(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    name: Option<&str>,
) -> Result<(), ServerError> {
    let (what, action) = ("read secret values", AuditAction::SecretRead);
    authorize(state, c, team, Role::Reader, what, action, name).await
}

/// Reads a secret's value (the latest version, or `version`): reader role; the read and its
/// audit record are one trip to the store, and the answer waits for the record. A version
/// deleted or destroyed is not found.
pub(crate) async fn read(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    name: &SecretName,
    version: Option<i64>,
) -> Result<Read, ServerError> {
    read_or_unreadable(state, c, team, name, version)
        .await?
        .map_err(|u| u.refusal(name, team))
}

/// As [`read`], but a version deleted or destroyed is told as such (its read on record as
/// `not_found`).
pub(crate) async fn read_or_unreadable(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    name: &SecretName,
    version: Option<i64>,
) -> Result<Result<Read, Unreadable>, ServerError> {
    may_read_values(state, c, team, Some(name.as_str())).await?;
    if version.is_some_and(|v| v < 1) {
        let e = ServerError::Invalid("version must be 1 or more".into());
        let (action, asked) = (AuditAction::SecretRead, Some(name.as_str()));
        return Err(refuse(state, c, team.as_str(), action, asked, e).await);
    }
    // the read and its audit record in one trip: `ok` with the version read, or `not_found`
    let audit_ok = secret_audit_row(c, AuditAction::SecretRead, name, None, AuditOutcome::Ok);
    let audit_at = audit_ok.at;
    let found = state
        .store
        .get_secret_audited(c.team_id, name.as_str(), version, audit_ok)
        .await?;
    Metrics::inc(&state.metrics.audit_records, 1);
    let Some((row, ver)) = found else {
        let team = team.as_str();
        return Err(ServerError::NotFound(match version {
            Some(v) => format!(
                "secret {:?} has no version {v} in team {team:?}",
                name.as_str()
            ),
            None => format!("secret {:?} not found in team {team:?}", name.as_str()),
        }));
    };
    let custom_metadata = row.settings.custom_metadata;
    // judged at the time the store judged it by (the audit record's)
    if ver.state_at(audit_at) != VersionState::Live {
        return Ok(Err(Unreadable {
            version: ver.version,
            created_at: ver.created_at,
            deleted_at: ver.deleted_at,
            destroyed: ver.destroyed,
            custom_metadata,
        }));
    }
    match open_found(state, c, name.as_str(), &ver).await {
        Ok(plain) => {
            Metrics::inc(&state.metrics.secret_reads, 1);
            Ok(Ok(Read {
                version: ver.version,
                created_at: ver.created_at,
                deleted_at: ver.deleted_at,
                custom_metadata,
                plain,
            }))
        }
        Err(e) => Err(unopened(state, c, [(name, ver.version)].into_iter(), e).await),
    }
}

/// A task's name as the audit log takes it (as `X-Sigil-Task`): 1 to 128 printable ASCII
/// characters; empty is none.
pub(crate) fn task_name(task: &str) -> Result<Option<&str>, ServerError> {
    if task.is_empty() {
        return Ok(None);
    }
    if task.len() <= 128 && task.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        Ok(Some(task))
    } else {
        Err(ServerError::Invalid(
            "tasks must hold task names of 1 to 128 printable ASCII characters".into(),
        ))
    }
}

/// Reads many secrets in one request (reader role): each distinct name once, in the order asked;
/// each read and its audit record (`ok` with the version read, or `not_found`) in one trip to
/// the store, concurrently, so that they share one commit. `tasks`, when given, holds the task
/// that asks for each name, which its record keeps (a flow run reads for all its tasks at once).
pub(crate) async fn read_many(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    asked: &[String],
    tasks: &[String],
) -> Result<BatchReadResult, ServerError> {
    may_read_values(state, c, team, None).await?;
    let checked = (|| {
        if asked.is_empty() || asked.len() > MAX_BATCH_NAMES {
            return Err(ServerError::Invalid(format!(
                "names must hold 1 to {MAX_BATCH_NAMES} names"
            )));
        }
        if !tasks.is_empty() && tasks.len() != asked.len() {
            return Err(ServerError::Invalid(format!(
                "tasks must hold one task per name: {} names, {} tasks",
                asked.len(),
                tasks.len()
            )));
        }
        let mut seen = std::collections::HashSet::with_capacity(asked.len());
        let mut names = Vec::with_capacity(asked.len());
        for (i, n) in asked.iter().enumerate() {
            let name = super::parse_name(n)?;
            let task = match tasks.get(i) {
                Some(t) => task_name(t)?,
                None => None,
            };
            if seen.insert(n.as_str()) {
                names.push((name, task));
            }
        }
        Ok(names)
    })();
    let names = match checked {
        Ok(n) => n,
        Err(e) => {
            return Err(refuse(state, c, team.as_str(), AuditAction::SecretRead, None, e).await);
        }
    };
    let found = futures_util::future::try_join_all(names.iter().map(|(name, task)| {
        let mut audit_ok =
            secret_audit_row(c, AuditAction::SecretRead, name, None, AuditOutcome::Ok);
        if let Some(t) = task {
            audit_ok.task = Some((*t).to_owned());
        }
        let at = audit_ok.at;
        async move {
            let found = state
                .store
                .get_secret_audited(c.team_id, name.as_str(), None, audit_ok)
                .await?;
            // a latest version deleted or destroyed by then is missing (on record as such)
            Ok::<_, StoreError>(found.filter(|(_, v)| v.state_at(at) == VersionState::Live))
        }
    }))
    .await?;
    Metrics::inc(&state.metrics.audit_records, names.len() as u64);
    let mut secrets = Vec::with_capacity(names.len());
    let mut missing = Vec::new();
    let mut opened = Ok(());
    for ((name, _), found) in names.iter().zip(&found) {
        let Some((_, ver)) = found else {
            missing.push(name.as_str().to_owned());
            continue;
        };
        let value = open_found(state, c, name.as_str(), ver)
            .await
            .and_then(|plain| {
                serde_json::from_slice(&plain).map_err(|_| not_json(name.as_str(), ver.version))
            });
        match value {
            Ok(value) => secrets.push(SecretRead {
                name: name.as_str().to_owned(),
                value,
                version: ver.version,
                updated_at: rfc3339(ver.created_at),
            }),
            Err(e) => {
                opened = Err(e);
                break;
            }
        }
    }
    if let Err(e) = opened {
        let read = names
            .iter()
            .zip(&found)
            .filter_map(|((name, _), found)| found.as_ref().map(|(_, ver)| (name, ver.version)));
        return Err(unopened(state, c, read, e).await);
    }
    Metrics::inc(&state.metrics.secret_reads, secrets.len() as u64);
    Ok(BatchReadResult { secrets, missing })
}

/// Writes a new version of a secret: writer role; the value is checked against the size limit,
/// sealed with the team's current data key and bound to its team, name and version; `cas` is a
/// check-and-set on the current version (0: create only).
pub(crate) async fn write(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    name: &SecretName,
    value: &Value,
    cas: Option<i64>,
) -> Result<SecretWritten, ServerError> {
    write_version(state, c, team, name, value, cas)
        .await
        .map(|w| written(w.secret))
}

/// As [`write`], answering with the secret's row and the new version's deletion time.
pub(crate) async fn write_version(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    name: &SecretName,
    value: &Value,
    cas: Option<i64>,
) -> Result<sigil_store::Written, ServerError> {
    authorize(
        state,
        c,
        team,
        Role::Writer,
        "write secrets",
        AuditAction::SecretWrite,
        Some(name.as_str()),
    )
    .await?;
    let checked = (|| {
        if cas.is_some_and(|v| v < 0) {
            return Err(ServerError::Invalid(
                "cas must be 0 (create only) or a version".into(),
            ));
        }
        let plain = Zeroizing::new(serde_json::to_vec(value).map_err(ServerError::internal)?);
        if plain.len() > state.limits.max_value_bytes {
            return Err(ServerError::TooLarge(format!(
                "secret {:?} is {} bytes, over the limit of {} bytes",
                name.as_str(),
                plain.len(),
                state.limits.max_value_bytes
            )));
        }
        Ok(plain)
    })();
    let plain = match checked {
        Ok(p) => p,
        Err(e) => {
            let (action, asked) = (AuditAction::SecretWrite, Some(name.as_str()));
            return Err(refuse(state, c, team.as_str(), action, asked, e).await);
        }
    };
    let dk = state.current_data_key(c.team_id, c.team.as_str()).await?;
    let (seal_team, seal_name, seal_dk) = (c.team.to_string(), name.to_string(), dk.clone());
    let put = sigil_store::PutSecret {
        team_id: c.team_id,
        name: name.to_string(),
        cas,
        by: c.key_id.to_string(),
        at: now_ms(),
        data_key_version: dk.version() as i32,
        seal: Box::new(move |version| {
            seal_dk
                .seal(
                    &plain,
                    Place {
                        team: &seal_team,
                        name: &seal_name,
                        version,
                    },
                )
                .map_err(|e| e.to_string())
        }),
    };
    match state
        .store
        .put_secret(
            put,
            secret_audit_row(c, AuditAction::SecretWrite, name, None, AuditOutcome::Ok),
        )
        .await
    {
        Ok(row) => {
            Metrics::inc(&state.metrics.secret_writes, 1);
            Metrics::inc(&state.metrics.audit_records, 1);
            Ok(row)
        }
        Err(e @ (StoreError::Conflict { .. } | StoreError::CasRequired)) => Err(refuse(
            state,
            c,
            team.as_str(),
            AuditAction::SecretWrite,
            Some(name.as_str()),
            e.into(),
        )
        .await),
        Err(e) => Err(e.into()),
    }
}

/// A writer's change to one secret (`what`, audited as `action`): the caller's right to it, then
/// the audit record the change will carry when it is made.
async fn writer_change(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    name: &SecretName,
    what: &str,
    action: AuditAction,
) -> Result<sigil_store::AuditRow, ServerError> {
    let asked = Some(name.as_str());
    authorize(state, c, team, Role::Writer, what, action, asked).await?;
    Ok(secret_audit_row(c, action, name, None, AuditOutcome::Ok))
}

/// A delete that found no live secret, or a restore no deleted one: refused on record.
async fn nothing_to_change(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    name: &SecretName,
    action: AuditAction,
) -> ServerError {
    let (n, t) = (name.as_str(), team.as_str());
    let e = ServerError::NotFound(match action {
        AuditAction::SecretRestore => format!("no deleted secret {n:?} in team {t:?}"),
        _ => format!("secret {n:?} not found in team {t:?}"),
    });
    refuse(state, c, t, action, Some(n), e).await
}

/// Deletes a secret, restorably: writer role.
pub(crate) async fn delete(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    name: &SecretName,
) -> Result<(), ServerError> {
    let action = AuditAction::SecretDelete;
    let audit_ok = writer_change(state, c, team, name, "delete secrets", action).await?;
    let at = now_ms();
    if !state
        .store
        .delete_secret(c.team_id, name.as_str(), at, audit_ok)
        .await?
    {
        return Err(nothing_to_change(state, c, team, name, action).await);
    }
    Metrics::inc(&state.metrics.audit_records, 1);
    Ok(())
}

/// Restores a deleted secret at its latest version: writer role.
pub(crate) async fn restore(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    name: &SecretName,
) -> Result<SecretWritten, ServerError> {
    let action = AuditAction::SecretRestore;
    let audit_ok = writer_change(state, c, team, name, "restore secrets", action).await?;
    let at = now_ms();
    let Some(row) = state
        .store
        .restore_secret(c.team_id, name.as_str(), at, audit_ok)
        .await?
    else {
        return Err(nothing_to_change(state, c, team, name, action).await);
    };
    Metrics::inc(&state.metrics.audit_records, 1);
    Ok(written(row))
}

/// A write's or a restore's answer.
fn written(row: sigil_store::SecretRow) -> SecretWritten {
    SecretWritten {
        name: row.name,
        version: row.version,
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
    }
}

/// A page of a secret's versions, newest first, metadata only (any role): those below
/// `before`, at most `limit` (1 to 1000); the page's `next_cursor` continues it.
pub(crate) async fn history(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    name: &SecretName,
    before: Option<i64>,
    limit: u32,
) -> Result<History, ServerError> {
    same_team(c, team)?;
    if !(1..=1000).contains(&limit) {
        return Err(ServerError::Invalid("limit must be from 1 to 1000".into()));
    }
    let (row, mut versions) = state
        .store
        .history(c.team_id, name.as_str(), before, limit + 1)
        .await?
        .ok_or_else(|| {
            ServerError::NotFound(format!(
                "secret {:?} not found in team {:?}",
                name.as_str(),
                team.as_str()
            ))
        })?;
    let more = versions.len() > limit as usize;
    versions.truncate(limit as usize);
    let next_cursor = more
        .then(|| versions.last().map(|v| v.version.to_string()))
        .flatten();
    let now = now_ms();
    Ok(History {
        deleted: row.deleted_at.is_some(),
        settings: SecretSettingsInfo {
            max_versions: row.settings.max_versions,
            cas_required: row.settings.cas_required,
            delete_version_after_s: row.settings.delete_version_after / 1000,
            custom_metadata: super::versions::custom_metadata(&row).unwrap_or_default(),
        },
        name: row.name,
        versions: versions
            .into_iter()
            .map(|v| VersionInfo {
                version: v.version,
                state: status(&v, now),
                created_at: rfc3339(v.created_at),
                deleted_at: v.deleted_at.map(rfc3339),
                created_by: v.created_by,
            })
            .collect(),
        next_cursor,
    })
}

/// A version's state at `now`, as the API says it.
pub(crate) fn status(v: &sigil_store::VersionRow, now: i64) -> VersionStatus {
    match v.state_at(now) {
        VersionState::Live => VersionStatus::Live,
        VersionState::Deleted => VersionStatus::Deleted,
        VersionState::Destroyed => VersionStatus::Destroyed,
    }
}

/// The cursor that continues a listing after `name`: the name itself, so that any name is a
/// cursor (the names after it, in byte order).
pub(crate) fn name_cursor(name: &str) -> String {
    name.to_owned()
}

/// The name a listing's cursor continues after, or a refusal.
pub(crate) fn after_cursor(cursor: Option<&str>) -> Result<Option<String>, ServerError> {
    cursor
        .map(|c| {
            SecretName::parse(c)
                .map(|n| n.as_str().to_owned())
                .map_err(|_| ServerError::Invalid("invalid page cursor: a cursor is a name".into()))
        })
        .transpose()
}

/// Which names a listing asks for.
pub(crate) enum Listing<'a> {
    /// Names that start with this.
    Prefix(&'a str),
    /// Names that hold this.
    Search(&'a str),
}

/// Every live secret name of the team under `prefix`, in name order (any role), read page by
/// page: for the faces whose clients ask for the whole list at once (Prefect's `secret_names`,
/// a KV v2 folder).
pub(crate) async fn all_names(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    prefix: &str,
) -> Result<Vec<String>, ServerError> {
    let mut names = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let (rows, more) = list(
            state,
            c,
            team,
            Listing::Prefix(prefix),
            after.as_deref(),
            1000,
        )
        .await?;
        after = rows.last().map(|r| r.name.clone());
        names.extend(rows.into_iter().map(|r| r.name));
        if !more {
            return Ok(names);
        }
    }
}

/// A part of names a listing looks for (`what`): at most 256 bytes of name characters and `/`.
pub(crate) fn name_part(what: &str, part: &str) -> Result<(), ServerError> {
    if part.len() > sigil_core::name::MAX_NAME_BYTES
        || !part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-/".contains(&b))
    {
        return Err(ServerError::Invalid(format!(
            "{what} must be at most 256 bytes of A-Z a-z 0-9 _ . - /"
        )));
    }
    Ok(())
}

/// A page of the team's live secrets by name, never values (any role): those after `after`, at
/// most `limit` (1 to 1000); and whether there are more.
pub(crate) async fn list(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    listing: Listing<'_>,
    after: Option<&str>,
    limit: u32,
) -> Result<(Vec<sigil_store::SecretRow>, bool), ServerError> {
    same_team(c, team)?;
    match listing {
        Listing::Prefix(p) => name_part("prefix", p)?,
        Listing::Search(q) => name_part("search", q)?,
    }
    if !(1..=1000).contains(&limit) {
        return Err(ServerError::Invalid("limit must be from 1 to 1000".into()));
    }
    let mut rows = match listing {
        Listing::Prefix(p) => {
            state
                .store
                .list_secrets(c.team_id, p, after, limit + 1)
                .await?
        }
        Listing::Search(q) => {
            state
                .store
                .search_secrets(c.team_id, q, after, limit + 1)
                .await?
        }
    };
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    Ok((rows, more))
}
