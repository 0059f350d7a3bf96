//! The REST API under `/api/v1`.
//!
//! Secret names may contain `/`, so a name is always the last part of a path, after a fixed word
//! that says what is done with it: `secrets/{name}` (read, write, delete), `history/{name}`,
//! `restore/{name}`. No name can be mistaken for an operation.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sigil_core::SecretName;
use sigil_core::wire::{
    AuditEntry, AuditPage, BatchRead, BatchReadResult, CreateKey, CreateTeam, CreatedKey,
    CreatedTeam, ErrorBody, History, KeyInfo, KeyList, PutSecret, Role, SecretList, SecretListItem,
    SecretRead, SecretWritten, TeamInfo, TeamList, VersionInfo, WhoAmI, parse_rfc3339, rfc3339,
};
use sigil_store::{AuditRow, KeyRow, StoreError};
use zeroize::Zeroizing;

use crate::auth::Caller;
use crate::crypto::{DataKey, Place};
use crate::error::ApiError;
use crate::keys;
use crate::state::{AppState, Metrics};

type St = State<Arc<AppState>>;

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn audit_row(
    c: &Caller,
    team: &str,
    action: &str,
    name: Option<&str>,
    version: Option<i64>,
    outcome: &str,
) -> AuditRow {
    AuditRow {
        id: 0,
        at: now_ms(),
        key_id: c.key_id.clone(),
        role: Some(c.role.as_str().to_owned()),
        action: action.to_owned(),
        team: team.to_owned(),
        name: name.map(audit_name),
        version,
        outcome: outcome.to_owned(),
        client: c.client.clone(),
        flow_run: c.flow_run.clone(),
        task: c.task.clone(),
        target: None,
    }
}

/// As [`audit_row`] for a name already checked: kept as it is, not checked again (the hot path
/// of a read would otherwise parse its name twice).
fn secret_audit_row(
    c: &Caller,
    team: &str,
    action: &str,
    name: &SecretName,
    version: Option<i64>,
    outcome: &str,
) -> AuditRow {
    AuditRow {
        name: Some(name.as_str().to_owned()),
        ..audit_row(c, team, action, None, version, outcome)
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

/// Writes audit records durably; the request fails when they cannot be written.
async fn audit(state: &AppState, rows: Vec<AuditRow>) -> Result<(), ApiError> {
    let n = rows.len() as u64;
    state.store.append_audit(rows).await?;
    Metrics::inc(&state.metrics.audit_records, n);
    Ok(())
}

/// Audits a refusal, then returns it.
async fn refuse(
    state: &AppState,
    c: &Caller,
    team: &str,
    action: &str,
    name: Option<&str>,
    err: ApiError,
) -> ApiError {
    let outcome = match err.status {
        StatusCode::FORBIDDEN => "denied",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::CONFLICT => "conflict",
        s if s.is_client_error() => "invalid",
        _ => "error",
    };
    // a team's log holds what its own keys did: a request for another team is recorded in the
    // caller's team, with the team it asked for cut short in a field of its own (it was written,
    // unchecked and unbounded, into the other team's log)
    let mut row = audit_row(c, &c.team, action, name, None, outcome);
    if team != c.team {
        row.target = Some(bounded(team, 64));
    }
    match audit(state, vec![row]).await {
        Ok(()) => err,
        Err(audit_failed) => audit_failed,
    }
}

/// Text from a request for the audit log: escaped (no control characters) and cut to `max`
/// bytes.
fn bounded(text: &str, max: usize) -> String {
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

/// The caller may act on `team` only with a key of that team. A team name that cannot be one
/// is not echoed back.
fn same_team(c: &Caller, team: &str) -> Result<(), ApiError> {
    if c.team == team {
        Ok(())
    } else if check_team_name(team).is_err() {
        Err(ApiError::forbidden(format!(
            "this key belongs to team {:?}, not to the team in the path (not a valid team name)",
            c.team
        )))
    } else {
        Err(ApiError::forbidden(format!(
            "this key belongs to team {:?}, not to team {team:?}",
            c.team
        )))
    }
}

fn need(c: &Caller, role: Role, what: &str) -> Result<(), ApiError> {
    if c.role >= role {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "a {} key cannot {what}: it needs the {} role",
            c.role.as_str(),
            role.as_str()
        )))
    }
}

/// Checks team and role, auditing a refusal.
async fn authorize(
    state: &AppState,
    c: &Caller,
    team: &str,
    role: Role,
    what: &str,
    action: &str,
    name: Option<&str>,
) -> Result<(), ApiError> {
    if let Err(e) = same_team(c, team).and_then(|()| need(c, role, what)) {
        return Err(refuse(state, c, team, action, name, e).await);
    }
    Ok(())
}

/// A writer's change to one secret: team, role and name checked, every refusal audited.
async fn authorized_name(
    state: &AppState,
    c: &Caller,
    team: &str,
    name: &str,
    what: &str,
    action: &str,
) -> Result<SecretName, ApiError> {
    authorize(state, c, team, Role::Writer, what, action, Some(name)).await?;
    match parse_name(name) {
        Ok(n) => Ok(n),
        Err(e) => Err(refuse(state, c, team, action, Some(name), e).await),
    }
}

fn parse_name(name: &str) -> Result<SecretName, ApiError> {
    SecretName::parse(name).map_err(|e| ApiError::invalid(e.to_string()))
}

/// Parses a JSON body with messages that never quote it.
fn parse_body<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let bytes = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "the request body is larger than the limit",
            )
        } else {
            ApiError::invalid("cannot read the request body")
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        let msg = e.to_string();
        if msg.starts_with("unknown field") || msg.starts_with("missing field") {
            ApiError::invalid(format!(
                "invalid request body: {}",
                msg.split(" at line").next().unwrap_or(&msg)
            ))
        } else {
            ApiError::invalid(format!(
                "invalid JSON body at line {} column {}",
                e.line(),
                e.column()
            ))
        }
    })
}

/// Opens a sealed value: its JSON text, zeroed when dropped.
fn open_plaintext(
    dk: &DataKey,
    team: &str,
    name: &str,
    version: i64,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, ApiError> {
    dk.open(
        ciphertext,
        Place {
            team,
            name,
            version,
        },
    )
    .map_err(ApiError::internal)
}

fn not_json(name: &str, version: i64) -> ApiError {
    ApiError::internal(format!("secret {name:?} version {version} is not JSON"))
}

/// A version found by a read, opened with its team's data key.
async fn open_found(
    state: &AppState,
    c: &Caller,
    team: &str,
    name: &str,
    ver: &sigil_store::VersionRow,
) -> Result<Zeroizing<Vec<u8>>, ApiError> {
    let dk = state
        .data_key(c.team_id, team, ver.data_key_version)
        .await?;
    open_plaintext(&dk, team, name, ver.version, &ver.ciphertext)
}

/// After reads recorded as `ok` whose values could not be opened (`e`): records `error` for
/// each, since no value went out, and gives back `e` — or the audit's own failure.
async fn unopened(
    state: &AppState,
    c: &Caller,
    team: &str,
    reads: impl Iterator<Item = (&SecretName, i64)>,
    e: ApiError,
) -> ApiError {
    let rows = reads
        .map(|(name, version)| {
            secret_audit_row(c, team, "secret.read", name, Some(version), "error")
        })
        .collect();
    match audit(state, rows).await {
        Ok(()) => e,
        Err(audit_failed) => audit_failed,
    }
}

/// The body of a read, as [`SecretRead`] serialises it, with the value's JSON text copied in as
/// it was sealed (checked to be JSON, not parsed into a tree and written out again).
fn secret_read_body(
    name: &str,
    version: i64,
    created_at: i64,
    plain: &[u8],
) -> Result<Vec<u8>, ApiError> {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        name: &'a str,
        value: &'a serde_json::value::RawValue,
        version: i64,
        updated_at: String,
    }
    let value = std::str::from_utf8(plain)
        .ok()
        .and_then(|text| serde_json::from_str::<&serde_json::value::RawValue>(text).ok())
        .ok_or_else(|| not_json(name, version))?;
    let mut out = Vec::with_capacity(96 + name.len() + plain.len());
    serde_json::to_writer(
        &mut out,
        &Body {
            name,
            value,
            version,
            updated_at: rfc3339(created_at),
        },
    )
    .map_err(|_| not_json(name, version))?;
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VersionQuery {
    version: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/teams/{team}/secrets/{name}", tag = "secrets", params(("team" = String, Path, description = "The team"), ("name" = String, Path, description = "The secret's name; it may contain `/` (`prod/db/password`)"), ("version" = Option<i64>, Query, description = "A version; the latest by default")), responses((status = 200, description = "The value (reader role or higher). Audited.", body = SecretRead), (status = 404, description = "No such secret or version", body = ErrorBody), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody), (status = 403, description = "Another team, or a role too low", body = ErrorBody), (status = 429, description = "Too many failed authentications", body = ErrorBody), (status = 503, description = "Storage unavailable", body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn get_secret(
    State(state): St,
    c: Caller,
    Path((team, name)): Path<(String, String)>,
    q: Result<Query<VersionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    authorize(
        &state,
        &c,
        &team,
        Role::Reader,
        "read secret values",
        "secret.read",
        Some(&name),
    )
    .await?;
    let parsed = (|| {
        let name = parse_name(&name)?;
        let Query(q) = q.map_err(|_| ApiError::invalid("the query accepts only version=N"))?;
        if q.version.is_some_and(|v| v < 1) {
            return Err(ApiError::invalid("version must be 1 or more"));
        }
        Ok((name, q.version))
    })();
    let (name, version) = match parsed {
        Ok(p) => p,
        Err(e) => return Err(refuse(&state, &c, &team, "secret.read", Some(&name), e).await),
    };
    // the read and its audit record in one trip: `ok` with the version read, or `not_found`
    let audit_ok = secret_audit_row(&c, &team, "secret.read", &name, None, "ok");
    let found = state
        .store
        .get_secret_audited(c.team_id, name.as_str(), version, audit_ok)
        .await?;
    Metrics::inc(&state.metrics.audit_records, 1);
    let Some((_, ver)) = found else {
        return Err(ApiError::not_found(match version {
            Some(v) => format!(
                "secret {:?} has no version {v} in team {team:?}",
                name.as_str()
            ),
            None => format!("secret {:?} not found in team {team:?}", name.as_str()),
        }));
    };
    let opened = open_found(&state, &c, &team, name.as_str(), &ver)
        .await
        .and_then(|plain| secret_read_body(name.as_str(), ver.version, ver.created_at, &plain));
    let body = match opened {
        Ok(b) => b,
        Err(e) => {
            return Err(unopened(&state, &c, &team, [(&name, ver.version)].into_iter(), e).await);
        }
    };
    Metrics::inc(&state.metrics.secret_reads, 1);
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

#[utoipa::path(put, path = "/api/v1/teams/{team}/secrets/{name}", tag = "secrets", params(("team" = String, Path, description = "The team"), ("name" = String, Path, description = "The secret's name; it may contain `/` (`prod/db/password`)")), request_body = PutSecret, responses((status = 200, description = "A new version (writer role or higher). Audited.", body = SecretWritten), (status = 409, description = "`cas` does not match", body = ErrorBody), (status = 413, description = "Body over 1 MiB, or value over the limit", body = ErrorBody), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody), (status = 403, description = "Another team, or a role too low", body = ErrorBody), (status = 429, description = "Too many failed authentications", body = ErrorBody), (status = 503, description = "Storage unavailable", body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn put_secret(
    State(state): St,
    c: Caller,
    Path((team, name)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<SecretWritten>, ApiError> {
    authorize(
        &state,
        &c,
        &team,
        Role::Writer,
        "write secrets",
        "secret.write",
        Some(&name),
    )
    .await?;
    let checked = (|| {
        let name = parse_name(&name)?;
        let req: PutSecret = parse_body(body)?;
        if req.cas.is_some_and(|v| v < 0) {
            return Err(ApiError::invalid(
                "cas must be 0 (create only) or a version",
            ));
        }
        let plain = Zeroizing::new(serde_json::to_vec(&req.value).map_err(ApiError::internal)?);
        if plain.len() > state.limits.max_value_bytes {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "value_too_large",
                format!(
                    "secret {:?} is {} bytes, over the limit of {} bytes",
                    name.as_str(),
                    plain.len(),
                    state.limits.max_value_bytes
                ),
            ));
        }
        Ok((name, req.cas, plain))
    })();
    let (name, cas, plain) = match checked {
        Ok(c) => c,
        Err(e) => return Err(refuse(&state, &c, &team, "secret.write", Some(&name), e).await),
    };
    let dk = state.current_data_key(c.team_id, &team).await?;
    let (seal_team, seal_name, seal_dk) = (team.clone(), name.to_string(), dk.clone());
    let put = sigil_store::PutSecret {
        team_id: c.team_id,
        name: name.to_string(),
        cas,
        by: c.key_id.clone(),
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
            secret_audit_row(&c, &team, "secret.write", &name, None, "ok"),
        )
        .await
    {
        Ok(row) => {
            Metrics::inc(&state.metrics.secret_writes, 1);
            Metrics::inc(&state.metrics.audit_records, 1);
            Ok(Json(SecretWritten {
                name: row.name,
                version: row.version,
                created_at: rfc3339(row.created_at),
                updated_at: rfc3339(row.updated_at),
            }))
        }
        Err(e @ StoreError::Conflict { .. }) => Err(refuse(
            &state,
            &c,
            &team,
            "secret.write",
            Some(name.as_str()),
            e.into(),
        )
        .await),
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(delete, path = "/api/v1/teams/{team}/secrets/{name}", tag = "secrets", params(("team" = String, Path, description = "The team"), ("name" = String, Path, description = "The secret's name; it may contain `/` (`prod/db/password`)")), responses((status = 204, description = "Deleted, restorable (writer role or higher). Audited."), (status = 404, description = "No such live secret", body = ErrorBody), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody), (status = 403, description = "Another team, or a role too low", body = ErrorBody), (status = 429, description = "Too many failed authentications", body = ErrorBody), (status = 503, description = "Storage unavailable", body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn delete_secret(
    State(state): St,
    c: Caller,
    Path((team, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let name = authorized_name(&state, &c, &team, &name, "delete secrets", "secret.delete").await?;
    let audit_ok = secret_audit_row(&c, &team, "secret.delete", &name, None, "ok");
    if !state
        .store
        .delete_secret(c.team_id, name.as_str(), now_ms(), audit_ok)
        .await?
    {
        let e = ApiError::not_found(format!(
            "secret {:?} not found in team {team:?}",
            name.as_str()
        ));
        return Err(refuse(&state, &c, &team, "secret.delete", Some(name.as_str()), e).await);
    }
    Metrics::inc(&state.metrics.audit_records, 1);
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/teams/{team}/restore/{name}", tag = "secrets", params(("team" = String, Path, description = "The team"), ("name" = String, Path, description = "The secret's name; it may contain `/` (`prod/db/password`)")), responses((status = 200, description = "Restored at its latest version (writer role or higher). Audited.", body = SecretWritten), (status = 404, description = "No deleted secret of that name", body = ErrorBody), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody), (status = 403, description = "Another team, or a role too low", body = ErrorBody), (status = 429, description = "Too many failed authentications", body = ErrorBody), (status = 503, description = "Storage unavailable", body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn restore_secret(
    State(state): St,
    c: Caller,
    Path((team, name)): Path<(String, String)>,
) -> Result<Json<SecretWritten>, ApiError> {
    let name = authorized_name(
        &state,
        &c,
        &team,
        &name,
        "restore secrets",
        "secret.restore",
    )
    .await?;
    let audit_ok = secret_audit_row(&c, &team, "secret.restore", &name, None, "ok");
    let Some(row) = state
        .store
        .restore_secret(c.team_id, name.as_str(), now_ms(), audit_ok)
        .await?
    else {
        let e = ApiError::not_found(format!(
            "no deleted secret {:?} in team {team:?}",
            name.as_str()
        ));
        return Err(refuse(&state, &c, &team, "secret.restore", Some(name.as_str()), e).await);
    };
    Metrics::inc(&state.metrics.audit_records, 1);
    Ok(Json(SecretWritten {
        name: row.name,
        version: row.version,
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
    }))
}

#[utoipa::path(get, path = "/api/v1/teams/{team}/history/{name}", tag = "secrets", params(("team" = String, Path, description = "The team"), ("name" = String, Path, description = "The secret's name; it may contain `/` (`prod/db/password`)"), ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"), ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")), responses((status = 200, description = "A page of versions, newest first, metadata only (viewer role or higher)", body = History), (status = 404, description = "No such secret", body = ErrorBody), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody), (status = 403, description = "Another team, or a role too low", body = ErrorBody), (status = 429, description = "Too many failed authentications", body = ErrorBody), (status = 503, description = "Storage unavailable", body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn history(
    State(state): St,
    c: Caller,
    Path((team, name)): Path<(String, String)>,
    q: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<History>, ApiError> {
    let Query(q) = q.map_err(|_| ApiError::invalid("the query accepts limit and cursor"))?;
    let before = match q.cursor {
        None => None,
        Some(c) => Some(
            c.parse::<i64>()
                .map_err(|_| ApiError::invalid("invalid cursor"))?,
        ),
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be from 1 to 1000"));
    }
    history_page(&state, &c, &team, &name, before, limit)
        .await
        .map(Json)
}

/// A page of a secret's versions, newest first: those below `before`, at most `limit`; the
/// page's `next_cursor` continues it.
pub(crate) async fn history_page(
    state: &AppState,
    c: &Caller,
    team: &str,
    name: &str,
    before: Option<i64>,
    limit: u32,
) -> Result<History, ApiError> {
    same_team(c, team)?;
    let name = parse_name(name)?;
    let (row, mut versions) = state
        .store
        .history(c.team_id, name.as_str(), before, limit + 1)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "secret {:?} not found in team {team:?}",
                name.as_str()
            ))
        })?;
    let more = versions.len() > limit as usize;
    versions.truncate(limit as usize);
    let next_cursor = more
        .then(|| versions.last().map(|v| v.version.to_string()))
        .flatten();
    Ok(History {
        name: row.name,
        deleted: row.deleted_at.is_some(),
        versions: versions
            .into_iter()
            .map(|v| VersionInfo {
                version: v.version,
                created_at: rfc3339(v.created_at),
                created_by: v.created_by,
            })
            .collect(),
        next_cursor,
    })
}

/// `?limit=&cursor=` of a paged answer.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    #[serde(default)]
    prefix: String,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/teams/{team}/secrets", tag = "secrets", params(("team" = String, Path, description = "The team"), ("prefix" = Option<String>, Query, description = "Only names starting with this"), ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"), ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")), responses((status = 200, description = "Names and metadata, never values (viewer role or higher)", body = SecretList), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody), (status = 403, description = "Another team, or a role too low", body = ErrorBody), (status = 429, description = "Too many failed authentications", body = ErrorBody), (status = 503, description = "Storage unavailable", body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn list_secrets(
    State(state): St,
    c: Caller,
    Path(team): Path<String>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SecretList>, ApiError> {
    same_team(&c, &team)?;
    let Query(q) =
        q.map_err(|_| ApiError::invalid("the query accepts prefix, limit and cursor"))?;
    if q.prefix.len() > sigil_core::name::MAX_NAME_BYTES
        || !q
            .prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-/".contains(&b))
    {
        return Err(ApiError::invalid(
            "prefix must be at most 256 bytes of A-Z a-z 0-9 _ . - /",
        ));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be from 1 to 1000"));
    }
    let after = match q.cursor {
        None => None,
        Some(cur) => Some(
            URL_SAFE_NO_PAD
                .decode(cur.as_bytes())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .filter(|n| SecretName::parse(n).is_ok())
                .ok_or_else(|| ApiError::invalid("invalid cursor"))?,
        ),
    };
    let rows = state
        .store
        .list_secrets(c.team_id, &q.prefix, after.as_deref(), limit + 1)
        .await?;
    let more = rows.len() > limit as usize;
    let page: Vec<_> = rows.into_iter().take(limit as usize).collect();
    let next_cursor = if more {
        page.last()
            .map(|r| URL_SAFE_NO_PAD.encode(r.name.as_bytes()))
    } else {
        None
    };
    Ok(Json(SecretList {
        secrets: page
            .into_iter()
            .map(|r| SecretListItem {
                name: r.name,
                version: r.version,
                updated_at: rfc3339(r.updated_at),
                updated_by: r.updated_by,
            })
            .collect(),
        next_cursor,
    }))
}

#[utoipa::path(post, path = "/api/v1/teams/{team}/batch-read", tag = "secrets", params(("team" = String, Path, description = "The team")), request_body = BatchRead, responses((status = 200, description = "Many values in one round trip (reader role or higher). Each name is audited.", body = BatchReadResult), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody), (status = 403, description = "Another team, or a role too low", body = ErrorBody), (status = 429, description = "Too many failed authentications", body = ErrorBody), (status = 503, description = "Storage unavailable", body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn batch_read(
    State(state): St,
    c: Caller,
    Path(team): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<BatchReadResult>, ApiError> {
    authorize(
        &state,
        &c,
        &team,
        Role::Reader,
        "read secret values",
        "secret.read",
        None,
    )
    .await?;
    let checked = (|| {
        let req: BatchRead = parse_body(body)?;
        if req.names.is_empty() || req.names.len() > 1000 {
            return Err(ApiError::invalid("names must hold 1 to 1000 names"));
        }
        // each name once, in the order of the request
        let mut seen = std::collections::HashSet::with_capacity(req.names.len());
        let mut names = Vec::with_capacity(req.names.len());
        for n in &req.names {
            let name = parse_name(n)?;
            if seen.insert(n.as_str()) {
                names.push(name);
            }
        }
        Ok(names)
    })();
    let names = match checked {
        Ok(n) => n,
        Err(e) => return Err(refuse(&state, &c, &team, "secret.read", None, e).await),
    };
    // each read and its audit record (`ok` with the version read, or `not_found`) in one trip,
    // as a single read; concurrent, so that they share one commit
    let found = futures_util::future::try_join_all(names.iter().map(|name| {
        let audit_ok = secret_audit_row(&c, &team, "secret.read", name, None, "ok");
        state
            .store
            .get_secret_audited(c.team_id, name.as_str(), None, audit_ok)
    }))
    .await?;
    Metrics::inc(&state.metrics.audit_records, names.len() as u64);
    let mut secrets = Vec::with_capacity(names.len());
    let mut missing = Vec::new();
    let mut opened = Ok(());
    for (name, found) in names.iter().zip(&found) {
        let Some((_, ver)) = found else {
            missing.push(name.as_str().to_owned());
            continue;
        };
        let value = open_found(&state, &c, &team, name.as_str(), ver)
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
            .filter_map(|(name, found)| found.as_ref().map(|(_, ver)| (name, ver.version)));
        return Err(unopened(&state, &c, &team, read, e).await);
    }
    Metrics::inc(&state.metrics.secret_reads, secrets.len() as u64);
    Ok(Json(BatchReadResult { secrets, missing }))
}

fn key_info(k: KeyRow) -> Result<KeyInfo, ApiError> {
    Ok(KeyInfo {
        role: Role::parse(&k.role)
            .ok_or_else(|| ApiError::internal(format!("key {} has role {:?}", k.id, k.role)))?,
        id: k.id,
        name: k.name,
        created_at: rfc3339(k.created_at),
        created_by: k.created_by,
        revoked_at: k.revoked_at.map(rfc3339),
    })
}

#[utoipa::path(get, path = "/api/v1/teams/{team}/keys", tag = "keys", params(("team" = String, Path, description = "The team")), responses((status = 200, description = "The team's keys (admin)", body = KeyList), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody), (status = 403, description = "Another team, or a role too low", body = ErrorBody), (status = 429, description = "Too many failed authentications", body = ErrorBody), (status = 503, description = "Storage unavailable", body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn list_keys(
    State(state): St,
    c: Caller,
    Path(team): Path<String>,
) -> Result<Json<KeyList>, ApiError> {
    same_team(&c, &team)?;
    need(&c, Role::Admin, "list keys")?;
    let keys = state
        .store
        .list_keys(c.team_id)
        .await?
        .into_iter()
        .map(key_info)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(KeyList { keys }))
}

fn check_label(name: &str) -> Result<(), ApiError> {
    if name.len() > 128 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "a key's name is at most 128 characters, without control characters",
        ));
    }
    Ok(())
}

pub(crate) fn new_key(
    team_id: i64,
    role: Role,
    name: &str,
    created_by: &str,
    bootstrap: bool,
) -> Result<(KeyRow, Zeroizing<String>), ApiError> {
    let (id, key) = keys::generate().map_err(ApiError::internal)?;
    let secret = keys::parse(&key)
        .expect("generated keys parse")
        .secret
        .to_owned();
    Ok((
        KeyRow {
            id,
            team_id,
            team_name: String::new(),
            role: role.as_str().to_owned(),
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

#[utoipa::path(post, path = "/api/v1/teams/{team}/keys", tag = "keys", params(("team" = String, Path, description = "The team")), request_body = CreateKey, responses((status = 201, description = "The key, shown once (admin). Audited.", body = CreatedKey), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody), (status = 403, description = "Another team, or a role too low", body = ErrorBody), (status = 429, description = "Too many failed authentications", body = ErrorBody), (status = 503, description = "Storage unavailable", body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn create_key(
    State(state): St,
    c: Caller,
    Path(team): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    authorize(
        &state,
        &c,
        &team,
        Role::Admin,
        "create keys",
        "key.create",
        None,
    )
    .await?;
    let req: CreateKey =
        match parse_body(body).and_then(|r: CreateKey| check_label(&r.name).map(|()| r)) {
            Ok(r) => r,
            Err(e) => return Err(refuse(&state, &c, &team, "key.create", None, e).await),
        };
    let (row, key) = new_key(c.team_id, req.role, &req.name, &c.key_id, false)?;
    let id = row.id.clone();
    state
        .store
        .create_key(
            row,
            audit_row(&c, &team, "key.create", Some(&id), None, "ok"),
        )
        .await?;
    Metrics::inc(&state.metrics.audit_records, 1);
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            id,
            key: key.to_string(),
            team,
            role: req.role,
            name: req.name,
        }),
    ))
}

#[utoipa::path(delete, path = "/api/v1/teams/{team}/keys/{id}", tag = "keys", params(("team" = String, Path, description = "The team"), ("id" = String, Path, description = "The key's id")), responses((status = 204, description = "Revoked (admin). Audited."), (status = 404, description = "No such live key", body = ErrorBody), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody), (status = 403, description = "Another team, or a role too low", body = ErrorBody), (status = 429, description = "Too many failed authentications", body = ErrorBody), (status = 503, description = "Storage unavailable", body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn revoke_key(
    State(state): St,
    c: Caller,
    Path((team, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    authorize(
        &state,
        &c,
        &team,
        Role::Admin,
        "revoke keys",
        "key.revoke",
        Some(&id),
    )
    .await?;
    if let Err(e) = revocable(&state, &c, &id).await {
        return Err(refuse(&state, &c, &team, "key.revoke", Some(&id), e).await);
    }
    let audit_ok = audit_row(&c, &team, "key.revoke", Some(&id), None, "ok");
    if state
        .store
        .revoke_key(c.team_id, &id, now_ms(), audit_ok)
        .await?
    {
        state.forget_key(&id);
        Metrics::inc(&state.metrics.audit_records, 1);
        Ok(StatusCode::NO_CONTENT)
    } else {
        let e = ApiError::not_found(format!("no live key {id:?} in team {team:?}"));
        Err(refuse(&state, &c, &team, "key.revoke", Some(&id), e).await)
    }
}

/// Refuses the revocations that would lock people out: the caller's own key, the bootstrap
/// administrator key (nobody could create teams again; `sigil server reset-bootstrap-key`
/// replaces it), and the team's last live admin key (nobody could manage the team's keys).
async fn revocable(state: &AppState, c: &Caller, id: &str) -> Result<(), ApiError> {
    if id == c.key_id {
        return Err(ApiError::conflict(
            "a key cannot revoke itself: revoke it with another admin key",
        ));
    }
    let keys = state.store.list_keys(c.team_id).await?;
    let Some(target) = keys.iter().find(|k| k.id == id && k.revoked_at.is_none()) else {
        return Ok(()); // not a live key of the team: the revocation says so
    };
    if target.bootstrap {
        return Err(ApiError::conflict(
            "the bootstrap administrator key cannot be revoked through the API (nobody could \
             create teams again): `sigil server reset-bootstrap-key` replaces it",
        ));
    }
    let live_admins = keys
        .iter()
        .filter(|k| k.revoked_at.is_none() && k.role == Role::Admin.as_str())
        .count();
    if target.role == Role::Admin.as_str() && live_admins <= 1 {
        return Err(ApiError::conflict(format!(
            "key {id:?} is the last admin key of team {:?}: create another admin key first",
            c.team
        )));
    }
    Ok(())
}

#[utoipa::path(get, path = "/api/v1/teams", tag = "teams", responses((status = 200, description = "Every team (bootstrap administrator)", body = TeamList), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody), (status = 403, description = "Another team, or a role too low", body = ErrorBody), (status = 429, description = "Too many failed authentications", body = ErrorBody), (status = 503, description = "Storage unavailable", body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn list_teams(State(state): St, c: Caller) -> Result<Json<TeamList>, ApiError> {
    if !c.bootstrap {
        return Err(ApiError::forbidden(
            "only the bootstrap administrator key can list teams",
        ));
    }
    let teams: Vec<TeamInfo> = state
        .store
        .list_teams()
        .await?
        .into_iter()
        .map(|t| TeamInfo {
            name: t.name,
            created_at: rfc3339(t.created_at),
        })
        .collect();
    Ok(Json(TeamList { teams }))
}

/// Team names: 1 to 64 of `[A-Za-z0-9_.-]`.
pub(crate) fn check_team_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "a team name is 1 to 64 characters of A-Z a-z 0-9 _ . -",
        ))
    }
}

/// Creates a team with its data key and first admin key.
pub(crate) async fn create_team_with_admin(
    state: &AppState,
    name: &str,
    created_by: &str,
    bootstrap_admin: bool,
    audit_template: AuditRow,
    admin_key: Option<Zeroizing<String>>,
) -> Result<(TeamInfo, CreatedKey), ApiError> {
    check_team_name(name)?;
    let dk = DataKey::generate(1).map_err(ApiError::internal)?;
    let wrapped = state.master.wrap(&dk, name).map_err(ApiError::internal)?;
    let at = now_ms();
    let (row, key) = match admin_key {
        Some(key) => {
            let parsed = keys::parse(&key).ok_or_else(|| {
                ApiError::invalid("SIGIL_BOOTSTRAP_ADMIN_KEY is not a valid sgl_ key")
            })?;
            let row = KeyRow {
                id: parsed.id.to_owned(),
                team_id: 0,
                team_name: String::new(),
                role: Role::Admin.as_str().to_owned(),
                hash: keys::hash(parsed.secret),
                name: "bootstrap administrator".into(),
                bootstrap: bootstrap_admin,
                created_at: at,
                created_by: created_by.to_owned(),
                revoked_at: None,
            };
            (row, key)
        }
        None => new_key(
            0,
            Role::Admin,
            if bootstrap_admin {
                "bootstrap administrator"
            } else {
                "first administrator"
            },
            created_by,
            bootstrap_admin,
        )?,
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
        action: "team.create".into(),
        team: name.to_owned(),
        name: Some(id.clone()),
        ..audit_template
    };
    let team = state
        .store
        .create_team(name, at, data_key, Some(row), audit)
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
            name: if bootstrap_admin {
                "bootstrap administrator".into()
            } else {
                "first administrator".into()
            },
        },
    ))
}

#[utoipa::path(post, path = "/api/v1/teams", tag = "teams", request_body = CreateTeam, responses((status = 201, description = "The team and its first admin key, shown once (bootstrap administrator). Audited.", body = CreatedTeam), (status = 409, description = "The name is taken", body = ErrorBody), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody), (status = 403, description = "Another team, or a role too low", body = ErrorBody), (status = 429, description = "Too many failed authentications", body = ErrorBody), (status = 503, description = "Storage unavailable", body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn create_team(
    State(state): St,
    c: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<CreatedTeam>), ApiError> {
    if !c.bootstrap {
        return Err(ApiError::forbidden(
            "only the bootstrap administrator key can create teams",
        ));
    }
    let req: CreateTeam = parse_body(body)?;
    let template = audit_row(&c, &req.name, "team.create", None, None, "ok");
    let (team, key) =
        create_team_with_admin(&state, &req.name, &c.key_id, false, template, None).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedTeam {
            team,
            admin_key: key,
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    since: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
    order: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/teams/{team}/audit", tag = "audit", params(("team" = String, Path, description = "The team"), ("since" = Option<String>, Query, description = "RFC 3339 time"), ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"), ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"), ("order" = Option<String>, Query, description = "`oldest` (default: oldest first) or `newest` (newest first)")), responses((status = 200, description = "Audit records in the order asked for (admin)", body = AuditPage), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody), (status = 403, description = "Another team, or a role too low", body = ErrorBody), (status = 429, description = "Too many failed authentications", body = ErrorBody), (status = 503, description = "Storage unavailable", body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn audit_log(
    State(state): St,
    c: Caller,
    Path(team): Path<String>,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    same_team(&c, &team)?;
    need(&c, Role::Admin, "read the audit log")?;
    let Query(q) =
        q.map_err(|_| ApiError::invalid("the query accepts since, limit, cursor and order"))?;
    let newest_first = match q.order.as_deref() {
        None | Some("oldest") => false,
        Some("newest") => true,
        Some(_) => return Err(ApiError::invalid("order must be oldest or newest")),
    };
    let since = match q.since {
        None => 0,
        Some(s) => parse_rfc3339(&s).ok_or_else(|| {
            ApiError::invalid("since must be an RFC 3339 time such as 2026-11-29T00:00:00Z")
        })?,
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be from 1 to 1000"));
    }
    let cursor = match q.cursor {
        None => None,
        Some(c) => Some(
            c.parse::<i64>()
                .map_err(|_| ApiError::invalid("invalid cursor"))?,
        ),
    };
    // the cursor is the last id of the previous page: records after it, or before it
    let rows = if newest_first {
        state
            .store
            .audit_newest(&team, cursor, since, limit + 1)
            .await?
    } else {
        state
            .store
            .audit(&team, cursor.unwrap_or(0), since, limit + 1)
            .await?
    };
    let more = rows.len() > limit as usize;
    let entries: Vec<AuditEntry> = rows
        .into_iter()
        .take(limit as usize)
        .map(|a| AuditEntry {
            id: a.id,
            at: rfc3339(a.at),
            key_id: a.key_id,
            role: a.role.as_deref().and_then(Role::parse),
            action: a.action,
            team: a.team,
            name: a.name,
            version: a.version,
            outcome: a.outcome,
            client: a.client,
            flow_run: a.flow_run,
            task: a.task,
            target: a.target,
        })
        .collect();
    let next_cursor = if more {
        entries.last().map(|e| e.id.to_string())
    } else {
        None
    };
    Ok(Json(AuditPage {
        entries,
        next_cursor,
    }))
}

#[utoipa::path(get, path = "/api/v1/whoami", tag = "keys", responses((status = 200, description = "The calling key", body = WhoAmI), (status = 400, description = "Bad input", body = ErrorBody), (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody), (status = 403, description = "Another team, or a role too low", body = ErrorBody), (status = 429, description = "Too many failed authentications", body = ErrorBody), (status = 503, description = "Storage unavailable", body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn whoami(c: Caller) -> Json<WhoAmI> {
    Json(WhoAmI {
        key_id: c.key_id,
        team: c.team,
        role: c.role,
        bootstrap: c.bootstrap,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // a read's body is written without parsing the value; it must be byte for byte what
    // serialising SecretRead would give for the value as stored (compact JSON)
    #[test]
    fn a_read_body_is_the_serialised_secret_read() {
        let values = [
            serde_json::json!("MY SECRET VALUE"),
            serde_json::json!("42"),
            serde_json::json!(42),
            serde_json::json!("$HOME ${a.b} \"quoted\" \\ \n\t\u{1} ünï ✓"),
            serde_json::json!({"user": "etl", "password": "p", "nested": {"z": [1, 2.5, null, true]}, "a": {}}),
            serde_json::json!([]),
            serde_json::json!(null),
        ];
        for v in values {
            let plain = serde_json::to_vec(&v).unwrap();
            let body = secret_read_body("prod/db.pw", 7, 1_795_894_360_123, &plain).unwrap();
            let expected = serde_json::to_vec(&SecretRead {
                name: "prod/db.pw".into(),
                value: v,
                version: 7,
                updated_at: rfc3339(1_795_894_360_123),
            })
            .unwrap();
            assert_eq!(
                String::from_utf8(body).unwrap(),
                String::from_utf8(expected).unwrap()
            );
        }
        let err = secret_read_body("x", 1, 0, b"{not json").unwrap_err();
        assert_eq!(err.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
