//! The REST API under `/api/v1`.
//!
//! Secret names may contain `/`, so a name is always the last part of a path, after a fixed word
//! that says what is done with it: `secrets/{name}` (read, write, delete), `history/{name}`,
//! `restore/{name}`, `{delete,undelete,destroy}-versions/{name}`. No name can be mistaken for an
//! operation.

use sigil_store::{AuditAction, VersionChange};
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sigil_core::SecretName;
use sigil_core::wire::{
    AuditEntry, AuditPage, BatchRead, BatchReadResult, ChangeVersions, CreateKey, CreateTeam,
    CreatedKey, CreatedTeam, ErrorBody, History, KeyList, PutSecret, Role, SecretList,
    SecretListItem, SecretRead, SecretWritten, TeamList, VersionsChanged, WhoAmI, parse_rfc3339,
    rfc3339,
};
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::service::secrets::not_json;
use crate::service::{self, KeyId, ServerError, TeamName, refuse};
use crate::state::AppState;

type St = State<Arc<AppState>>;

/// A body that could not be parsed is refused like any other bad input of `action`, after the
/// caller's right to it is checked, and both are audited; the face's own error is given back.
async fn refuse_body(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    need: (Role, &str),
    action: AuditAction,
    name: Option<&str>,
    e: ApiError,
) -> ApiError {
    if let Err(denied) = service::authorize(state, c, team, need.0, need.1, action, name).await {
        return denied.into();
    }
    let audited = ServerError::Invalid(e.message.clone());
    match refuse(state, c, team.as_str(), action, name, audited).await {
        ServerError::Invalid(_) => e,
        audit_failed => audit_failed.into(),
    }
}

/// The team and the secret a path names, parsed; a refusal of either is on record as one of
/// `action`.
async fn target(
    state: &AppState,
    c: &Caller,
    team: &str,
    name: &str,
    action: AuditAction,
) -> Result<(TeamName, SecretName), ServerError> {
    let team = service::team(state, c, team, Some((action, Some(name)))).await?;
    let name = service::parsed(state, c, &team, Some(action), name, service::parse_name).await?;
    Ok((team, name))
}

/// A JSON body. Its rejection is the API's error: the limit, or the field or position that is
/// wrong, never a quote of the body (which may hold a value). A handler that takes
/// `Result<ApiJson<T>, ApiError>` puts the refusal on record.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        parse_body(Bytes::from_request(req, state).await).map(ApiJson)
    }
}

/// A path's parameters. A refusal (a parameter that is not UTF-8 once decoded) is the API's
/// error, `{"error": …}`, naming the parameter, never quoting it.
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(t)) => Ok(ApiPath(t)),
            Err(r) => Err(ApiError::invalid(format!(
                "invalid path: {}",
                r.body_text()
            ))),
        }
    }
}

/// Parses a JSON object with messages that never quote it.
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
    // serde reads a struct from an array as well (`[value, cas]`): every body here is an object
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::invalid("the request body must be a JSON object"));
    }
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

/// `/teams/{team}/…`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct TeamPath {
    /// The team
    #[param(schema_with = sigil_core::openapi::team_name, required = true)]
    team: String,
}

/// `/teams/{team}/…/{name}`: a secret.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct SecretPath {
    /// The team
    #[param(schema_with = sigil_core::openapi::team_name, required = true)]
    team: String,
    /// The secret's name; it may contain `/` (`prod/db/password`)
    #[param(schema_with = sigil_core::openapi::secret_name, required = true)]
    name: String,
}

/// `/teams/{team}/keys/{id}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct KeyPath {
    /// The team
    #[param(schema_with = sigil_core::openapi::team_name, required = true)]
    team: String,
    /// The key's id
    #[param(schema_with = crate::openapi::key_id, required = true)]
    id: String,
}

/// `?version=N`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct VersionQuery {
    /// A version; the latest by default
    #[param(minimum = 1)]
    version: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/teams/{team}/secrets/{name}", tag = "secrets", params(SecretPath, VersionQuery), responses((status = 200, description = "The value (reader role or higher). Audited.", body = SecretRead), (status = 404, description = "No such secret or version", body = ErrorBody), CommonErrors), security(("bearer" = [])))]
pub(crate) async fn get_secret(
    State(state): St,
    c: Caller,
    ApiPath(SecretPath { team, name }): ApiPath<SecretPath>,
    q: Result<Query<VersionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let (team, name) = target(&state, &c, &team, &name, AuditAction::SecretRead).await?;
    let version = match q {
        Ok(Query(q)) => q.version,
        Err(_) => {
            let e = ServerError::Invalid("the query accepts only version=N".into());
            let (action, asked) = (AuditAction::SecretRead, Some(name.as_str()));
            return Err(refuse(&state, &c, team.as_str(), action, asked, e)
                .await
                .into());
        }
    };
    let read = service::secrets::read(&state, &c, &team, &name, version).await?;
    let body = secret_read_body(name.as_str(), read.version, read.created_at, &read.plain)?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

#[utoipa::path(put, path = "/api/v1/teams/{team}/secrets/{name}", tag = "secrets", params(SecretPath), request_body = PutSecret, responses((status = 200, description = "A new version (writer role or higher). Audited.", body = SecretWritten, links(("Read" = (operation_id = "get_secret", parameters(("team" = "$request.path.team"), ("name" = "$request.path.name"), ("version" = "$response.body#/version")))), ("History" = (operation_id = "history", parameters(("team" = "$request.path.team"), ("name" = "$request.path.name")))), ("Delete" = (operation_id = "delete_secret", parameters(("team" = "$request.path.team"), ("name" = "$request.path.name")))), ("DeleteVersions" = (operation_id = "delete_versions", parameters(("team" = "$request.path.team"), ("name" = "$request.path.name")))), ("UndeleteVersions" = (operation_id = "undelete_versions", parameters(("team" = "$request.path.team"), ("name" = "$request.path.name")))), ("DestroyVersions" = (operation_id = "destroy_versions", parameters(("team" = "$request.path.team"), ("name" = "$request.path.name")))))), (status = 409, description = "`cas` does not match", body = ErrorBody), (status = 413, description = "Body over 1 MiB, or value over the limit", body = ErrorBody), CommonErrors), security(("bearer" = [])))]
pub(crate) async fn put_secret(
    State(state): St,
    c: Caller,
    ApiPath(SecretPath { team, name }): ApiPath<SecretPath>,
    body: Result<ApiJson<PutSecret>, ApiError>,
) -> Result<Json<SecretWritten>, ApiError> {
    let action = AuditAction::SecretWrite;
    let (team, name) = target(&state, &c, &team, &name, action).await?;
    let req = match body {
        Ok(ApiJson(r)) => r,
        Err(e) => {
            let need = (Role::Writer, "write secrets");
            let asked = Some(name.as_str());
            return Err(refuse_body(&state, &c, &team, need, action, asked, e).await);
        }
    };
    Ok(Json(
        service::secrets::write(&state, &c, &team, &name, &req.value, req.cas).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/teams/{team}/secrets/{name}", tag = "secrets", params(SecretPath), responses((status = 204, description = "Deleted, restorable (writer role or higher). Audited.", links(("Restore" = (operation_id = "restore_secret", parameters(("team" = "$request.path.team"), ("name" = "$request.path.name")))))), (status = 404, description = "No such live secret", body = ErrorBody), CommonErrors), security(("bearer" = [])))]
pub(crate) async fn delete_secret(
    State(state): St,
    c: Caller,
    ApiPath(SecretPath { team, name }): ApiPath<SecretPath>,
) -> Result<StatusCode, ApiError> {
    let (team, name) = target(&state, &c, &team, &name, AuditAction::SecretDelete).await?;
    service::secrets::delete(&state, &c, &team, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/teams/{team}/restore/{name}", tag = "secrets", params(SecretPath), responses((status = 200, description = "Restored at its latest version (writer role or higher). Audited.", body = SecretWritten), (status = 404, description = "No deleted secret of that name", body = ErrorBody), CommonErrors), security(("bearer" = [])))]
pub(crate) async fn restore_secret(
    State(state): St,
    c: Caller,
    ApiPath(SecretPath { team, name }): ApiPath<SecretPath>,
) -> Result<Json<SecretWritten>, ApiError> {
    let (team, name) = target(&state, &c, &team, &name, AuditAction::SecretRestore).await?;
    Ok(Json(
        service::secrets::restore(&state, &c, &team, &name).await?,
    ))
}

/// A change of versions' state through REST: the service's, with the body's refusal on record
/// as one of the change.
async fn change_versions(
    state: &AppState,
    c: Caller,
    SecretPath { team, name }: SecretPath,
    body: Result<ApiJson<ChangeVersions>, ApiError>,
    change: VersionChange,
) -> Result<Json<VersionsChanged>, ApiError> {
    let action = change.action();
    let (team, name) = target(state, &c, &team, &name, action).await?;
    let req = match body {
        Ok(ApiJson(r)) => r,
        Err(e) => {
            let need = (Role::Writer, "change versions");
            let asked = Some(name.as_str());
            return Err(refuse_body(state, &c, &team, need, action, asked, e).await);
        }
    };
    let changed = service::versions::change(state, &c, &team, &name, &req.versions, change).await?;
    Ok(Json(VersionsChanged {
        name: name.as_str().to_owned(),
        changed,
    }))
}

#[utoipa::path(post, path = "/api/v1/teams/{team}/delete-versions/{name}", tag = "secrets", params(SecretPath), request_body = ChangeVersions, responses((status = 200, description = "Versions soft-deleted: not read until undeleted (writer role or higher). Each version changed is audited.", body = VersionsChanged), (status = 404, description = "No such secret", body = ErrorBody), (status = 413, description = "More than 1000 versions", body = ErrorBody), CommonErrors), security(("bearer" = [])))]
pub(crate) async fn delete_versions(
    State(state): St,
    c: Caller,
    ApiPath(path): ApiPath<SecretPath>,
    body: Result<ApiJson<ChangeVersions>, ApiError>,
) -> Result<Json<VersionsChanged>, ApiError> {
    change_versions(&state, c, path, body, VersionChange::Delete).await
}

#[utoipa::path(post, path = "/api/v1/teams/{team}/undelete-versions/{name}", tag = "secrets", params(SecretPath), request_body = ChangeVersions, responses((status = 200, description = "Soft-deleted versions readable again (writer role or higher). Each version changed is audited.", body = VersionsChanged), (status = 404, description = "No such secret", body = ErrorBody), (status = 413, description = "More than 1000 versions", body = ErrorBody), CommonErrors), security(("bearer" = [])))]
pub(crate) async fn undelete_versions(
    State(state): St,
    c: Caller,
    ApiPath(path): ApiPath<SecretPath>,
    body: Result<ApiJson<ChangeVersions>, ApiError>,
) -> Result<Json<VersionsChanged>, ApiError> {
    change_versions(&state, c, path, body, VersionChange::Undelete).await
}

#[utoipa::path(post, path = "/api/v1/teams/{team}/destroy-versions/{name}", tag = "secrets", params(SecretPath), request_body = ChangeVersions, responses((status = 200, description = "Versions' values wiped for good; the history keeps them as destroyed (writer role or higher). Each version changed is audited.", body = VersionsChanged), (status = 404, description = "No such secret", body = ErrorBody), (status = 413, description = "More than 1000 versions", body = ErrorBody), CommonErrors), security(("bearer" = [])))]
pub(crate) async fn destroy_versions(
    State(state): St,
    c: Caller,
    ApiPath(path): ApiPath<SecretPath>,
    body: Result<ApiJson<ChangeVersions>, ApiError>,
) -> Result<Json<VersionsChanged>, ApiError> {
    change_versions(&state, c, path, body, VersionChange::Destroy).await
}

#[utoipa::path(get, path = "/api/v1/teams/{team}/history/{name}", tag = "secrets", params(SecretPath, PageQuery), responses((status = 200, description = "A page of versions, newest first, metadata only (viewer role or higher)", body = History), (status = 404, description = "No such secret", body = ErrorBody), CommonErrors), security(("bearer" = [])))]
pub(crate) async fn history(
    State(state): St,
    c: Caller,
    ApiPath(SecretPath { team, name }): ApiPath<SecretPath>,
    q: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<History>, ApiError> {
    let team = service::team(&state, &c, &team, None).await?;
    let name = service::parse_name(&name)?;
    let Query(q) = q.map_err(|_| ApiError::invalid("the query accepts limit and cursor"))?;
    let before = number_cursor(q.cursor)?;
    let limit = page_limit(q.limit)?;
    Ok(Json(
        service::secrets::history(&state, &c, &team, &name, before, limit).await?,
    ))
}

/// The errors every authenticated endpoint may answer, declared once for the OpenAPI document.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // a description of answers, never built
pub(crate) enum CommonErrors {
    /// Bad input.
    #[response(status = 400, description = "Bad input")]
    BadInput(ErrorBody),
    /// Missing, unknown or revoked key.
    #[response(status = 401, description = "Missing, unknown or revoked key")]
    Unauthorized(ErrorBody),
    /// Another team, or a role too low.
    #[response(status = 403, description = "Another team, or a role too low")]
    Forbidden(ErrorBody),
    /// Too many failed authentications.
    #[response(status = 429, description = "Too many failed authentications")]
    RateLimited(ErrorBody),
    /// Storage unavailable.
    #[response(status = 503, description = "Storage unavailable")]
    Unavailable(ErrorBody),
    /// The database's disk is full.
    #[response(status = 507, description = "The database's disk is full")]
    StorageFull(ErrorBody),
}

/// A page's size: `limit`, 100 by default, 1 to 1000 (every paged answer of the API).
fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(100);
    if (1..=1000).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::invalid("limit must be from 1 to 1000"))
    }
}

/// A numeric cursor (a version or an audit id): the last item of the previous page.
fn number_cursor(cursor: Option<String>) -> Result<Option<i64>, ApiError> {
    cursor
        .map(|c| {
            let digits = (1..=18).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_digit());
            c.parse::<i64>()
                .ok()
                .filter(|_| digits)
                .ok_or_else(|| ApiError::invalid("invalid cursor: a cursor is a number"))
        })
        .transpose()
}

/// `?limit=&cursor=` of a paged answer.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageQuery {
    /// 1 to 1000, default 100
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page
    #[param(pattern = r"^[0-9]{1,18}$")]
    cursor: Option<String>,
}

/// `?prefix=&limit=&cursor=` of a listing.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// Only names starting with this
    #[serde(default)]
    #[param(schema_with = sigil_core::openapi::name_prefix, required = false)]
    prefix: String,
    /// 1 to 1000, default 100
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page: the last name it held (the names after it follow)
    #[param(schema_with = sigil_core::openapi::secret_name)]
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/teams/{team}/secrets", tag = "secrets", params(TeamPath, ListQuery), responses((status = 200, description = "Names and metadata, never values (viewer role or higher)", body = SecretList), CommonErrors), security(("bearer" = [])))]
pub(crate) async fn list_secrets(
    State(state): St,
    c: Caller,
    ApiPath(TeamPath { team }): ApiPath<TeamPath>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SecretList>, ApiError> {
    let team = service::team(&state, &c, &team, None).await?;
    service::same_team(&c, &team)?;
    let Query(q) =
        q.map_err(|_| ApiError::invalid("the query accepts prefix, limit and cursor"))?;
    let after = service::secrets::after_cursor(q.cursor.as_deref())?;
    let (page, more) = service::secrets::list(
        &state,
        &c,
        &team,
        service::secrets::Listing::Prefix(&q.prefix),
        after.as_deref(),
        page_limit(q.limit)?,
    )
    .await?;
    let next_cursor = if more {
        page.last().map(|r| service::secrets::name_cursor(&r.name))
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

#[utoipa::path(post, path = "/api/v1/teams/{team}/batch-read", tag = "secrets", params(TeamPath), request_body = BatchRead, responses((status = 200, description = "Many values in one round trip (reader role or higher). Each name is audited.", body = BatchReadResult), CommonErrors), security(("bearer" = [])))]
pub(crate) async fn batch_read(
    State(state): St,
    c: Caller,
    ApiPath(TeamPath { team }): ApiPath<TeamPath>,
    body: Result<ApiJson<BatchRead>, ApiError>,
) -> Result<Json<BatchReadResult>, ApiError> {
    let action = AuditAction::SecretRead;
    let team = service::team(&state, &c, &team, Some((action, None))).await?;
    let req = match body {
        Ok(ApiJson(r)) => r,
        Err(e) => {
            let need = (Role::Reader, "read secret values");
            return Err(refuse_body(&state, &c, &team, need, action, None, e).await);
        }
    };
    Ok(Json(
        service::secrets::read_many(&state, &c, &team, &req.names, &req.tasks).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/teams/{team}/keys", tag = "keys", params(TeamPath), responses((status = 200, description = "The team's keys (admin)", body = KeyList), CommonErrors), security(("bearer" = [])))]
pub(crate) async fn list_keys(
    State(state): St,
    c: Caller,
    ApiPath(TeamPath { team }): ApiPath<TeamPath>,
) -> Result<Json<KeyList>, ApiError> {
    let team = service::team(&state, &c, &team, None).await?;
    Ok(Json(KeyList {
        keys: service::keys::list(&state, &c, &team).await?,
    }))
}

#[utoipa::path(post, path = "/api/v1/teams/{team}/keys", tag = "keys", params(TeamPath), request_body = CreateKey, responses((status = 201, description = "The key, shown once (admin). Audited.", body = CreatedKey, links(("Revoke" = (operation_id = "revoke_key", parameters(("team" = "$request.path.team"), ("id" = "$response.body#/id")))))), CommonErrors), security(("bearer" = [])))]
pub(crate) async fn create_key(
    State(state): St,
    c: Caller,
    ApiPath(TeamPath { team }): ApiPath<TeamPath>,
    body: Result<ApiJson<CreateKey>, ApiError>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let action = AuditAction::KeyCreate;
    let team = service::team(&state, &c, &team, Some((action, None))).await?;
    let req = match body {
        Ok(ApiJson(r)) => r,
        Err(e) => {
            let need = (Role::Admin, "create keys");
            return Err(refuse_body(&state, &c, &team, need, action, None, e).await);
        }
    };
    let created = service::keys::create(&state, &c, &team, req.role, &req.name).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(delete, path = "/api/v1/teams/{team}/keys/{id}", tag = "keys", params(KeyPath), responses((status = 204, description = "Revoked (admin). Audited."), (status = 404, description = "No such live key", body = ErrorBody), CommonErrors), security(("bearer" = [])))]
pub(crate) async fn revoke_key(
    State(state): St,
    c: Caller,
    ApiPath(KeyPath { team, id }): ApiPath<KeyPath>,
) -> Result<StatusCode, ApiError> {
    let action = AuditAction::KeyRevoke;
    let team = service::team(&state, &c, &team, Some((action, Some(&id)))).await?;
    let id = service::parsed(&state, &c, &team, Some(action), &id, KeyId::parse).await?;
    service::keys::revoke(&state, &c, &team, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/teams", tag = "teams", responses((status = 200, description = "Every team (bootstrap administrator)", body = TeamList), CommonErrors), security(("bearer" = [])))]
pub(crate) async fn list_teams(State(state): St, c: Caller) -> Result<Json<TeamList>, ApiError> {
    Ok(Json(TeamList {
        teams: service::teams::list(&state, &c).await?,
    }))
}

#[utoipa::path(post, path = "/api/v1/teams", tag = "teams", request_body = CreateTeam, responses((status = 201, description = "The team and its first admin key, shown once (bootstrap administrator). Audited.", body = CreatedTeam), (status = 409, description = "The name is taken", body = ErrorBody), CommonErrors), security(("bearer" = [])))]
pub(crate) async fn create_team(
    State(state): St,
    c: Caller,
    body: Result<ApiJson<CreateTeam>, ApiError>,
) -> Result<(StatusCode, Json<CreatedTeam>), ApiError> {
    service::teams::may_create(&c)?;
    let ApiJson(req) = body?;
    let (team, key) = service::teams::create(&state, &c, &TeamName::parse(&req.name)?).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedTeam {
            team,
            admin_key: key,
        }),
    ))
}

/// `?since=&limit=&cursor=&order=` of the audit log.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    /// RFC 3339 time
    #[param(format = DateTime)]
    since: Option<String>,
    /// 1 to 1000, default 100
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page
    #[param(pattern = r"^[0-9]{1,18}$")]
    cursor: Option<String>,
    /// `oldest` (default: oldest first) or `newest` (newest first)
    #[param(schema_with = crate::openapi::order)]
    order: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/teams/{team}/audit", tag = "audit", params(TeamPath, AuditQuery), responses((status = 200, description = "Audit records in the order asked for (admin)", body = AuditPage), CommonErrors), security(("bearer" = [])))]
pub(crate) async fn audit_log(
    State(state): St,
    c: Caller,
    ApiPath(TeamPath { team }): ApiPath<TeamPath>,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    let team = service::team(&state, &c, &team, None).await?;
    service::audit::may_read(&c, &team)?;
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
    let cursor = number_cursor(q.cursor)?;
    let limit = page_limit(q.limit)?;
    let (rows, more) = service::audit::page(
        &state,
        &c,
        &team,
        service::audit::PageOf {
            since,
            cursor,
            limit,
            newest_first,
        },
    )
    .await?;
    let entries: Vec<AuditEntry> = rows.into_iter().map(service::audit::entry).collect();
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

#[utoipa::path(get, path = "/api/v1/whoami", tag = "keys", responses((status = 200, description = "The calling key", body = WhoAmI), CommonErrors), security(("bearer" = [])))]
pub(crate) async fn whoami(c: Caller) -> Json<WhoAmI> {
    Json(WhoAmI {
        key_id: c.key_id.to_string(),
        team: c.team.to_string(),
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
