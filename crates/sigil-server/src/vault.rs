//! The Vault face (`/v1/…`): the system and token endpoints Vault's clients call before they
//! touch a secret — `sys/health` (GET and HEAD, with the status-code overrides), `sys/init`,
//! `sys/seal-status`, `sys/mounts`, `sys/internal/ui/mounts/…` and `sys/mounts-all/…` (the
//! `vault`/`bao` CLI's KV pre-flight), and `auth/token/lookup-self`, `renew-self` and
//! `revoke-self`. Protocol facts: `shared/VAULT-KV2.md`.
//!
//! A token is a Sigil API key (`X-Vault-Token` or `Authorization: Bearer`). The mount `secret` is
//! the key's own team, and so is a mount named after it. Answers use Vault's envelope
//! (`request_id`, `lease_id`, `renewable`, `lease_duration`, `data`, `wrap_info`, `warnings`,
//! `auth`) and errors `{"errors": [...]}`.
//!
//! KV v2 on a mount (`kv`): `data/<path>` (GET with `?version=`, POST/PUT with `options.cas`,
//! PATCH as a JSON merge patch), `subkeys/<path>`, `metadata/<path>` (GET; `LIST` or
//! `?list=true` for a folder, with OpenBao's `after`/`limit` pages). A KV path is a Sigil
//! secret's name; its `data` object is the secret's value (a value that is not an object reads as
//! `{"value": …}`). Per-version delete, undelete and destroy, `config` and the metadata writes
//! need per-version state in the store and are not served yet (404).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::auth::{Caller, ClientIp, Face};
use crate::service::{self, ServerError, TeamName};
use crate::state::AppState;

/// The name Sigil's servers give their "cluster".
const CLUSTER_NAME: &str = "sigil";

/// `{"errors": [message]}` with `status`.
fn errors(status: StatusCode, messages: &[&str]) -> Response {
    (status, axum::Json(json!({ "errors": messages }))).into_response()
}

/// Vault's answer envelope around `data`.
fn envelope(data: Value, auth: Value) -> Response {
    axum::Json(envelope_value(data, auth)).into_response()
}

/// [`envelope`]'s body.
fn envelope_value(data: Value, auth: Value) -> Value {
    json!({
        "request_id": uuid::Uuid::new_v4().to_string(),
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": data,
        "wrap_info": null,
        "warnings": null,
        "auth": auth,
    })
}

/// The "cluster id": a UUID that stays the same while the master key does (derived from the
/// key's id through a hash, so that an unauthenticated answer does not show even the id).
fn cluster_id(state: &AppState) -> String {
    stable_uuid(&format!("sigil cluster {}", state.master.id()))
}

fn version() -> String {
    format!("sigil-{}", env!("CARGO_PKG_VERSION"))
}

/// Seconds since the epoch.
fn now_s() -> i64 {
    crate::service::now_ms() / 1000
}

/// A status code override from `sys/health`'s query (`activecode=204`): any 1xx–5xx.
fn code(query: &HashMap<String, String>, name: &str, default: u16) -> Result<StatusCode, String> {
    match query.get(name) {
        None => Ok(StatusCode::from_u16(default).unwrap_or(StatusCode::OK)),
        Some(v) => v
            .parse::<u16>()
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
            .ok_or_else(|| format!("{name} must be an HTTP status code, not {v:?}")),
    }
}

/// `GET`/`HEAD /v1/sys/health`: always initialized and active; a database Sigil cannot reach is
/// reported as sealed (`sealedcode`, 503 by default), which is what Vault's clients take for
/// "not serving". Unauthenticated, as in Vault.
async fn health(state: &AppState, method: &Method, query: &HashMap<String, String>) -> Response {
    let ready = state.store.ping().await.is_ok();
    let status = if ready {
        code(query, "activecode", 200)
    } else {
        code(query, "sealedcode", 503)
    };
    let status = match status {
        Ok(s) => s,
        Err(m) => return errors(StatusCode::BAD_REQUEST, &[&m]),
    };
    if method == Method::HEAD {
        return status.into_response();
    }
    let body = json!({
        "initialized": true,
        "sealed": !ready,
        "standby": false,
        "performance_standby": false,
        "replication_performance_mode": "disabled",
        "replication_dr_mode": "disabled",
        "server_time_utc": now_s(),
        "version": version(),
        "cluster_name": CLUSTER_NAME,
        "cluster_id": cluster_id(state),
    });
    (status, axum::Json(body)).into_response()
}

/// `GET /v1/sys/seal-status` (unauthenticated).
async fn seal_status(state: &AppState) -> Response {
    let sealed = state.store.ping().await.is_err();
    axum::Json(json!({
        "type": "shamir",
        "initialized": true,
        "sealed": sealed,
        "t": 1,
        "n": 1,
        "progress": 0,
        "nonce": "",
        "recovery_seal": false,
        "version": version(),
        "commit_date": "",
        "migration": false,
        "cluster_name": CLUSTER_NAME,
        "cluster_id": cluster_id(state),
        "storage_type": state.store.backend(),
    }))
    .into_response()
}

/// Who is asking: the key in `X-Vault-Token` or `Authorization: Bearer`. A missing or refused
/// key is Vault's `403 permission denied`.
async fn caller(state: &AppState, headers: &HeaderMap, ip: IpAddr) -> Result<Caller, Response> {
    let key = headers
        .get("x-vault-token")
        .and_then(|h| h.to_str().ok())
        .map(str::trim)
        .or_else(|| {
            headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|h| h.to_str().ok())
                .and_then(crate::auth::bearer_key)
        });
    let missing = "missing token: send X-Vault-Token";
    match crate::auth::authenticate_sent(state, key, ip, missing).await {
        Ok(mut c) => {
            c.via = Face::Vault;
            Ok(c)
        }
        Err(e) if e.status == StatusCode::TOO_MANY_REQUESTS => {
            Err(errors(StatusCode::TOO_MANY_REQUESTS, &[&e.message]))
        }
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            Err(errors(StatusCode::FORBIDDEN, &["permission denied"]))
        }
        Err(e) => Err(errors(e.status, &[&e.message])),
    }
}

/// Vault's own paths: never a team's mount.
const RESERVED: [&str; 4] = ["sys", "auth", "identity", "cubbyhole"];

/// The KV v2 mount a path starts with: `secret`, or the caller's own team's name.
fn mount_of<'a>(c: &Caller, path: &'a str) -> Option<&'a str> {
    let first = path.trim_start_matches('/').split('/').next()?;
    (first == "secret" || (first == c.team.as_str() && !RESERVED.contains(&first))).then_some(first)
}

/// A UUID that is the same for the same text (the first 16 bytes of its SHA-256, marked as a
/// version 8 UUID).
fn stable_uuid(text: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b).to_string()
}

/// A mount as `sys/mounts` and the CLI's pre-flight describe it.
fn mount(name: &str, team: &str) -> Value {
    json!({
        "accessor": format!("kv_sigil_{team}"),
        "config": {"default_lease_ttl": 0, "force_no_cache": false, "max_lease_ttl": 0},
        "deprecation_status": "supported",
        "description": format!("Sigil team {team:?}"),
        "external_entropy_access": false,
        "local": false,
        "options": {"version": "2"},
        "path": format!("{name}/"),
        "plugin_version": "",
        "running_plugin_version": version(),
        "running_sha256": "",
        "seal_wrap": false,
        "type": "kv",
        "uuid": stable_uuid(&format!("sigil mount {team} {name}")),
    })
}

/// `GET /v1/sys/internal/ui/mounts/<path>` and `sys/mounts-all/<path>`: the mount of `path`, so
/// that the `vault`/`bao` CLI picks KV v2. A path outside the caller's mounts is refused as
/// Vault refuses it.
fn preflight(c: &Caller, path: &str) -> Response {
    match mount_of(c, path) {
        Some(name) => envelope(mount(name, c.team.as_str()), Value::Null),
        None => {
            let message = format!(
                "preflight capability check returned 403, please ensure client's policies grant access to path {:?}",
                format!("{}/", path.trim_matches('/'))
            );
            errors(StatusCode::FORBIDDEN, &[&message])
        }
    }
}

/// `GET /v1/sys/mounts`: `secret/` and the team's own mount.
fn mounts(c: &Caller) -> Response {
    let team = c.team.as_str();
    let mut all = serde_json::Map::new();
    all.insert("secret/".into(), mount("secret", team));
    all.insert(format!("{team}/"), mount(team, team));
    // Vault puts the mounts at the top level too (its system-path injector)
    let mut body = envelope_value(Value::Object(all.clone()), Value::Null);
    if let Value::Object(b) = &mut body {
        b.extend(all);
    }
    axum::Json(body).into_response()
}

/// The token's description (`lookup-self`): a Sigil key that never expires, of type `service`
/// (External Secrets checks `type`, `ttl` and `expire_time`). Its `id` is the key's id, never
/// the key itself.
async fn token(state: &AppState, c: &Caller) -> Result<Value, Response> {
    let row = match state.key(c.key_id.as_str()).await {
        Ok(Some(row)) => row,
        _ => return Err(errors(StatusCode::FORBIDDEN, &["permission denied"])),
    };
    let created = row.created_at / 1000;
    Ok(json!({
        "accessor": c.key_id.as_str(),
        "creation_time": created,
        "creation_ttl": 0,
        "display_name": format!("sigil-{}", row.name),
        "entity_id": "",
        "expire_time": null,
        "explicit_max_ttl": 0,
        "id": c.key_id.as_str(),
        "issue_time": sigil_core::wire::rfc3339(row.created_at),
        "meta": {"team": c.team.as_str(), "role": c.role.as_str()},
        "num_uses": 0,
        "orphan": true,
        "path": "auth/token/create",
        "policies": ["default", c.role.as_str()],
        "renewable": false,
        "ttl": 0,
        "type": "service",
    }))
}

/// `/v1/{*path}`, every method (Vault's `LIST` verb included).
pub(crate) async fn dispatch(
    State(state): State<Arc<AppState>>,
    ClientIp(ip): ClientIp,
    method: Method,
    Path(path): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let path = path.trim_end_matches('/');
    let read = method == Method::GET;
    // unauthenticated, as in Vault
    match (method.as_str(), path) {
        ("GET" | "HEAD", "sys/health") => return health(&state, &method, &query).await,
        ("GET", "sys/init") => return axum::Json(json!({"initialized": true})).into_response(),
        ("GET", "sys/seal-status") => return seal_status(&state).await,
        _ => {}
    }
    let c = match caller(&state, &headers, ip).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    if read
        && let Some(rest) = path
            .strip_prefix("sys/internal/ui/mounts/")
            .or_else(|| path.strip_prefix("sys/mounts-all/"))
    {
        return preflight(&c, rest);
    }
    let mount = path.split('/').next().unwrap_or("");
    let rest = &path[mount.len()..];
    let route = rest
        .strip_prefix('/')
        .and_then(|r| r.split_once('/'))
        .or_else(|| rest.strip_prefix('/').map(|r| (r, "")));
    let kv_route = matches!(route, Some(("data" | "metadata" | "subkeys", _)));
    if kv_route && !RESERVED.contains(&mount) {
        // `secret` is the key's own team; any other mount names a team, and the service refuses
        // one that is not the key's (on record, as REST does)
        let team = if mount == "secret" {
            c.team.clone()
        } else {
            match service::team(&state, &c, mount, None).await {
                Ok(t) => t,
                Err(e) => return kv::refused(e),
            }
        };
        let t = &team;
        let list =
            method.as_str() == "LIST" || (read && query.get("list").is_some_and(|v| v == "true"));
        return match (method.as_str(), route) {
            (_, Some(("metadata", folder))) if list => {
                kv::list(&state, &c, t, folder, &query).await
            }
            ("GET", Some(("subkeys", name))) => kv::subkeys(&state, &c, t, name, &query).await,
            ("PATCH", Some(("data", name))) => {
                kv::patch(&state, &c, t, name, &headers, &body).await
            }
            ("GET", Some(("data", name))) => kv::read(&state, &c, t, name, &query).await,
            ("POST" | "PUT", Some(("data", name))) => kv::write(&state, &c, t, name, &body).await,
            ("GET", Some(("metadata", name))) => kv::metadata(&state, &c, t, name).await,
            _ => errors(
                StatusCode::NOT_FOUND,
                &[&format!("no handler for route {path:?}")],
            ),
        };
    }
    match (method.as_str(), path) {
        ("GET", "sys/mounts") => mounts(&c),
        ("GET", "auth/token/lookup-self") | ("POST" | "PUT", "auth/token/lookup-self") => {
            match token(&state, &c).await {
                Ok(data) => envelope(data, Value::Null),
                Err(refused) => refused,
            }
        }
        ("POST" | "PUT", "auth/token/renew-self") => {
            // nothing to renew: a key lives until it is revoked; the answer is Vault's, whose
            // `client_token` is the token the caller sent (a client may take it as its token)
            let sent = headers
                .get("x-vault-token")
                .or_else(|| headers.get(axum::http::header::AUTHORIZATION))
                .and_then(|h| h.to_str().ok())
                .map(|v| crate::auth::bearer_key(v).unwrap_or(v.trim()).to_owned())
                .unwrap_or_default();
            match token(&state, &c).await {
                Ok(t) => envelope(
                    Value::Null,
                    json!({
                        "client_token": sent,
                        "accessor": t["accessor"],
                        "policies": t["policies"],
                        "token_policies": t["policies"],
                        "metadata": t["meta"],
                        "lease_duration": 0,
                        "renewable": false,
                        "entity_id": "",
                        "token_type": "service",
                        "orphan": true,
                    }),
                ),
                Err(refused) => refused,
            }
        }
        ("POST" | "PUT", "auth/token/revoke-self") => errors(
            StatusCode::FORBIDDEN,
            &["a Sigil key cannot revoke itself: an admin revokes it (sigil keys revoke ID)"],
        ),
        _ => errors(
            StatusCode::NOT_FOUND,
            &[&format!("no handler for route {:?}", path)],
        ),
    }
}

/// The KV v2 routes of a mount.
mod kv {
    use super::*;

    /// A refusal of the domain layer in Vault's terms: a missing secret or version is Vault's
    /// bare 404, a check-and-set mismatch its 400 text, a role or team refusal its 403.
    pub(super) fn refused(e: ServerError) -> Response {
        match e {
            ServerError::NotFound(_) => errors(StatusCode::NOT_FOUND, &[]),
            ServerError::Conflict(m) if m.starts_with("version conflict") => errors(
                StatusCode::BAD_REQUEST,
                &["check-and-set parameter did not match the current version"],
            ),
            ServerError::Forbidden(m) => {
                errors(StatusCode::FORBIDDEN, &[&format!("permission denied: {m}")])
            }
            ServerError::Invalid(m) | ServerError::TooLarge(m) | ServerError::Conflict(m) => {
                errors(StatusCode::BAD_REQUEST, &[&m])
            }
            ServerError::RateLimited { message, .. } => {
                errors(StatusCode::TOO_MANY_REQUESTS, &[&message])
            }
            ServerError::Unavailable(_) => {
                errors(StatusCode::SERVICE_UNAVAILABLE, &["storage unavailable"])
            }
            ServerError::Internal(_) => {
                errors(StatusCode::INTERNAL_SERVER_ERROR, &["internal error"])
            }
        }
    }

    /// A KV path as a Sigil secret's name; one outside the grammar is refused on record, naming
    /// it.
    async fn name(
        state: &AppState,
        c: &Caller,
        team: &TeamName,
        action: sigil_store::AuditAction,
        raw: &str,
    ) -> Result<sigil_core::SecretName, Response> {
        service::parsed(state, c, team, Some(action), raw, service::parse_name)
            .await
            .map_err(refused)
    }

    /// A version's metadata as `data/` answers it.
    fn version_metadata(created_at: &str, version: i64) -> Value {
        json!({
            "created_time": created_at,
            "custom_metadata": null,
            "deletion_time": "",
            "destroyed": false,
            "version": version,
        })
    }

    /// `GET <mount>/data/<path>[?version=N]` (reader role; audited).
    pub(super) async fn read(
        state: &AppState,
        c: &Caller,
        team: &TeamName,
        raw: &str,
        query: &HashMap<String, String>,
    ) -> Response {
        match asked_data(state, c, team, raw, query).await {
            Ok((data, metadata)) => {
                envelope(json!({"data": data, "metadata": metadata}), Value::Null)
            }
            Err(r) => r,
        }
    }

    /// The data and metadata a read asks for: `raw` as a name and `?version=` checked first.
    async fn asked_data(
        state: &AppState,
        c: &Caller,
        team: &TeamName,
        raw: &str,
        query: &HashMap<String, String>,
    ) -> Result<(Value, Value), Response> {
        let name = name(state, c, team, sigil_store::AuditAction::SecretRead, raw).await?;
        let version = version_of(query).map_err(IntoResponse::into_response)?;
        data_at(state, c, team, &name, version).await
    }

    /// The `data` object of a secret at a version (the latest when `None`; audited as a read)
    /// and that version's metadata.
    async fn data_at(
        state: &AppState,
        c: &Caller,
        team: &TeamName,
        name: &sigil_core::SecretName,
        version: Option<i64>,
    ) -> Result<(Value, Value), Response> {
        let read = service::secrets::read(state, c, team, name, version)
            .await
            .map_err(refused)?;
        let value: Value = serde_json::from_slice(&read.plain)
            .map_err(|_| refused(service::secrets::not_json(name.as_str(), read.version)))?;
        let data = match value {
            Value::Object(o) => Value::Object(o),
            other => json!({ "value": other }),
        };
        let created = sigil_core::wire::rfc3339(read.created_at);
        Ok((data, version_metadata(&created, read.version)))
    }

    /// `?version=N`: none (or 0) is the latest.
    fn version_of(query: &HashMap<String, String>) -> Result<Option<i64>, BadRequest> {
        match query.get("version").map(|v| v.parse::<i64>()) {
            None | Some(Ok(0)) => Ok(None),
            Some(Ok(v)) => Ok(Some(v)),
            Some(Err(_)) => Err(BadRequest("version must be a number".into())),
        }
    }

    /// A 400 with Vault's error body, kept small until it is answered.
    pub(super) struct BadRequest(String);

    impl IntoResponse for BadRequest {
        fn into_response(self) -> Response {
            errors(StatusCode::BAD_REQUEST, &[&self.0])
        }
    }

    /// The keys of `value` to `depth` levels (0: all), every leaf and every level past `depth`
    /// `null`: a secret's shape without its values.
    fn shape(value: &Value, depth: usize, level: usize) -> Value {
        match value {
            Value::Object(o) if depth == 0 || level < depth => Value::Object(
                o.iter()
                    .map(|(k, v)| (k.clone(), shape(v, depth, level + 1)))
                    .collect(),
            ),
            _ => Value::Null,
        }
    }

    /// `GET <mount>/subkeys/<path>[?version=N&depth=D]` (reader role; audited as a read): the
    /// secret's keys with `null` for every value.
    pub(super) async fn subkeys(
        state: &AppState,
        c: &Caller,
        team: &TeamName,
        raw: &str,
        query: &HashMap<String, String>,
    ) -> Response {
        let depth = match query.get("depth").map(|d| d.parse::<usize>()) {
            None => 0,
            Some(Ok(d)) => d,
            Some(Err(_)) => return errors(StatusCode::BAD_REQUEST, &["depth must be a number"]),
        };
        match asked_data(state, c, team, raw, query).await {
            Ok((data, metadata)) => envelope(
                json!({"subkeys": shape(&data, depth, 0), "metadata": metadata}),
                Value::Null,
            ),
            Err(r) => r,
        }
    }

    /// RFC 7396: `patch` merged into `target` (`null` removes a member).
    fn merge(target: &mut Value, patch: &Value) {
        let Value::Object(p) = patch else {
            *target = patch.clone();
            return;
        };
        if !target.is_object() {
            *target = json!({});
        }
        let Value::Object(t) = target else { return };
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }

    /// `PATCH <mount>/data/<path>` (`Content-Type: application/merge-patch+json`,
    /// `{"options": {"cas": N}, "data": {…}}`; reader and writer roles): the latest version's
    /// data with `data` merged into it (RFC 7396) becomes a new version. The server reads the
    /// value to merge it (on record as a read), and writes it only if no version came meanwhile.
    pub(super) async fn patch(
        state: &AppState,
        c: &Caller,
        team: &TeamName,
        raw: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Response {
        let kind = headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !kind.starts_with("application/merge-patch+json") {
            let message = format!(
                "PATCH requires Content-Type of application/merge-patch+json, provided {kind}"
            );
            return errors(StatusCode::UNSUPPORTED_MEDIA_TYPE, &[&message]);
        }
        let name = match name(state, c, team, sigil_store::AuditAction::SecretWrite, raw).await {
            Ok(n) => n,
            Err(r) => return r,
        };
        let (patch, cas) = match write_body(body) {
            Ok(b) => b,
            Err(r) => return r.into_response(),
        };
        let (mut data, metadata) = match data_at(state, c, team, &name, None).await {
            Ok(d) => d,
            Err(r) => return r,
        };
        let current = metadata["version"].as_i64().unwrap_or_default();
        if cas.is_some_and(|v| v != current) {
            return errors(
                StatusCode::BAD_REQUEST,
                &["check-and-set parameter did not match the current version"],
            );
        }
        merge(&mut data, &patch);
        match service::secrets::write(state, c, team, &name, &data, Some(current)).await {
            Ok(w) => envelope(version_metadata(&w.updated_at, w.version), Value::Null),
            Err(e) => refused(e),
        }
    }

    /// `POST`/`PUT <mount>/data/<path>` `{"options": {"cas": N}, "data": {…}}` (writer role;
    /// audited): a new version whose value is the `data` object.
    pub(super) async fn write(
        state: &AppState,
        c: &Caller,
        team: &TeamName,
        raw: &str,
        body: &[u8],
    ) -> Response {
        let action = sigil_store::AuditAction::SecretWrite;
        let name = match name(state, c, team, action, raw).await {
            Ok(n) => n,
            Err(r) => return r,
        };
        let (data, cas) = match write_body(body) {
            Ok(b) => b,
            Err(r) => return r.into_response(),
        };
        match service::secrets::write(state, c, team, &name, &data, cas).await {
            Ok(w) => envelope(version_metadata(&w.updated_at, w.version), Value::Null),
            Err(e) => refused(e),
        }
    }

    /// A write's body: its `data` object and its `options.cas`, or Vault's refusal.
    fn write_body(body: &[u8]) -> Result<(Value, Option<i64>), BadRequest> {
        let no_data = || BadRequest("no data provided".into());
        let mut body = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(o)) => o,
            Ok(_) => return Err(no_data()),
            Err(e) => return Err(BadRequest(format!("failed to decode JSON input: {e}"))),
        };
        let data = match body.remove("data") {
            Some(Value::Object(o)) => Value::Object(o),
            None | Some(Value::Null) => return Err(no_data()),
            Some(other) => {
                return Err(BadRequest(format!(
                    "error converting input for field \"data\": expected a JSON object, got {}",
                    kind_of(&other)
                )));
            }
        };
        let cas = match body.get("options").and_then(|o| o.get("cas")) {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_i64() {
                Some(n) if n >= 0 => Some(n),
                _ => {
                    let message = "check-and-set parameter must be a version (0: create only)";
                    return Err(BadRequest(message.into()));
                }
            },
        };
        Ok((data, cas))
    }

    fn kind_of(v: &Value) -> &'static str {
        match v {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }

    /// `LIST <mount>/metadata/<folder>` (or `GET …?list=true`; viewer role): the folder's keys,
    /// folders ending in `/`, in order; an empty folder is Vault's bare 404. OpenBao's pages too:
    /// `after` (the keys after it) and `limit`.
    pub(super) async fn list(
        state: &AppState,
        c: &Caller,
        team: &TeamName,
        folder: &str,
        query: &HashMap<String, String>,
    ) -> Response {
        let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
            None => usize::MAX,
            Some(Ok(l)) if l > 0 => l,
            Some(_) => {
                return errors(
                    StatusCode::BAD_REQUEST,
                    &["limit must be a positive number"],
                );
            }
        };
        let after = query.get("after").map(String::as_str).unwrap_or("");
        let folder = folder.trim_matches('/');
        let prefix = if folder.is_empty() {
            String::new()
        } else {
            format!("{folder}/")
        };
        let names = match service::secrets::all_names(state, c, team, &prefix).await {
            Ok(n) => n,
            Err(e) => return refused(e),
        };
        let keys: std::collections::BTreeSet<String> = names
            .iter()
            .map(|n| match n[prefix.len()..].split_once('/') {
                Some((dir, _)) => format!("{dir}/"),
                None => n[prefix.len()..].to_owned(),
            })
            .collect();
        let keys: Vec<&String> = keys
            .iter()
            .filter(|k| after.is_empty() || k.as_str() > after)
            .take(limit)
            .collect();
        if keys.is_empty() {
            return errors(StatusCode::NOT_FOUND, &[]);
        }
        envelope(json!({ "keys": keys }), Value::Null)
    }

    /// `GET <mount>/metadata/<path>` (viewer role): the secret's versions and settings. A secret
    /// deleted through Sigil (all its versions hidden) is not found.
    pub(super) async fn metadata(
        state: &AppState,
        c: &Caller,
        team: &TeamName,
        raw: &str,
    ) -> Response {
        let Ok(name) = service::parse_name(raw) else {
            return refused(ServerError::Invalid(format!("invalid secret name {raw:?}")));
        };
        let mut versions = Vec::new();
        let mut before = None;
        loop {
            match service::secrets::history(state, c, team, &name, before, 1000).await {
                Ok(h) if h.deleted => return errors(StatusCode::NOT_FOUND, &[]),
                Ok(h) => {
                    before = h.next_cursor.as_deref().and_then(|n| n.parse().ok());
                    versions.extend(h.versions);
                    if before.is_none() {
                        break;
                    }
                }
                Err(e) => return refused(e),
            }
        }
        let (Some(newest), Some(oldest)) = (versions.first(), versions.last()) else {
            return errors(StatusCode::NOT_FOUND, &[]);
        };
        let mut by_version = serde_json::Map::new();
        for v in &versions {
            by_version.insert(
                v.version.to_string(),
                json!({"created_time": v.created_at, "deletion_time": "", "destroyed": false}),
            );
        }
        envelope(
            json!({
                "cas_required": false,
                "created_time": oldest.created_at,
                "current_metadata_version": 0,
                "current_version": newest.version,
                "custom_metadata": null,
                "delete_version_after": "0s",
                "max_versions": 0,
                "metadata_cas_required": false,
                "oldest_version": 0,
                "updated_time": newest.created_at,
                "versions": by_version,
            }),
            Value::Null,
        )
    }
}
