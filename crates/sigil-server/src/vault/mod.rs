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

use axum::extract::{FromRequest, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::auth::{Caller, ClientIp, Face};
use crate::service::{self, ServerError, TeamName};
use crate::state::AppState;
use sigil_store::VersionChange;

/// The name Sigil's servers give their "cluster".
const CLUSTER_NAME: &str = "sigil";

/// `{"errors": [message]}` with `status`.
fn errors(status: StatusCode, messages: &[&str]) -> Response {
    (status, axum::Json(json!({ "errors": messages }))).into_response()
}

/// Vault's answer envelope around `data`, from a system (`system`) or token (`token`) path.
fn envelope(data: Value, auth: Value, mount_type: &str) -> Response {
    axum::Json(Envelope::new(data, auth, mount_type, &[])).into_response()
}

/// Vault's answer envelope (`mount_type` says which kind of mount answered: `kv`, `system`,
/// `token`; `warnings` what Vault would warn of, `null` for none), serialised as it stands:
/// `data` and `auth` are moved in and written once. (`json!` copies every value put in it
/// through `to_value`: a KV read's data was copied twice before it was written.)
#[derive(serde::Serialize)]
struct Envelope<'a> {
    request_id: String,
    lease_id: &'static str,
    renewable: bool,
    lease_duration: u64,
    data: Value,
    wrap_info: Option<()>,
    warnings: Option<&'a [String]>,
    auth: Value,
    mount_type: &'a str,
}

impl<'a> Envelope<'a> {
    fn new(data: Value, auth: Value, mount_type: &'a str, warnings: &'a [String]) -> Self {
        Envelope {
            request_id: request_id(),
            lease_id: "",
            renewable: false,
            lease_duration: 0,
            data,
            wrap_info: None,
            warnings: (!warnings.is_empty()).then_some(warnings),
            auth,
            mount_type,
        }
    }
}

/// A random (version 4) UUID for an answer's `request_id`, which only has to be unique: drawn
/// from a generator (SplitMix64) seeded from the OS once per thread, not from the OS for each
/// answer (a system call per request, ~2 % of a KV read's CPU).
fn request_id() -> String {
    thread_local! {
        static NEXT: std::cell::Cell<u64> =
            std::cell::Cell::new(uuid::Uuid::new_v4().as_u64_pair().0);
    }
    let draw = || {
        let x = NEXT.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        NEXT.set(x);
        let x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    };
    let bytes = (u128::from(draw()) << 64 | u128::from(draw())).to_be_bytes();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// An object of `fields`, in their order, the values moved in (not copied, as `json!` does).
fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// A KV mount's answer: `data` in the envelope, with `status`.
fn kv_answer(status: StatusCode, data: Value) -> Response {
    (
        status,
        axum::Json(Envelope::new(data, Value::Null, "kv", &[])),
    )
        .into_response()
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
        Some(name) => envelope(mount(name, c.team.as_str()), Value::Null, "system"),
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
    let body = Envelope::new(Value::Object(all.clone()), Value::Null, "system", &[]);
    #[derive(serde::Serialize)]
    struct WithMounts<'a> {
        #[serde(flatten)]
        envelope: Envelope<'a>,
        #[serde(flatten)]
        mounts: serde_json::Map<String, Value>,
    }
    axum::Json(WithMounts {
        envelope: body,
        mounts: all,
    })
    .into_response()
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
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    Query(query): Query<HashMap<String, String>>,
    mut request: axum::extract::Request,
) -> Response {
    // the headers taken out of the request rather than copied (axum's `HeaderMap` extractor
    // clones every header of every request), the body read as the `Bytes` extractor reads it
    let headers = std::mem::take(request.headers_mut());
    let body = match axum::body::Bytes::from_request(request, &state).await {
        Ok(body) => body,
        Err(refused) => return refused.into_response(),
    };
    // a path that is not UTF-8 once decoded: Vault's error shape, not axum's text
    let Ok(Path(path)) = path else {
        return errors(
            StatusCode::BAD_REQUEST,
            &["invalid request: the path must be UTF-8"],
        );
    };
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
    let kv_route = matches!(
        route,
        Some((
            "data" | "metadata" | "subkeys" | "delete" | "undelete" | "destroy" | "config",
            _
        ))
    );
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
        let Some((route, name)) = route else {
            return errors(
                StatusCode::NOT_FOUND,
                &[&format!("no handler for route {path:?}")],
            );
        };
        return match (method.as_str(), route) {
            (_, "metadata") if list => kv::list(&state, &c, t, name, &query).await,
            ("GET", "subkeys") => kv::subkeys(&state, &c, t, name, &query).await,
            ("GET", "data") => kv::read(&state, &c, t, name, &query).await,
            ("POST" | "PUT", "data") => kv::write(&state, &c, t, name, &body).await,
            ("PATCH", "data") => kv::patch(&state, &c, t, name, &headers, &body).await,
            ("DELETE", "data") => meta::delete_current(&state, &c, t, name).await,
            ("POST" | "PUT", "delete") => {
                meta::change(&state, &c, t, name, &body, VersionChange::Delete).await
            }
            ("POST" | "PUT", "undelete") => {
                meta::change(&state, &c, t, name, &body, VersionChange::Undelete).await
            }
            ("POST" | "PUT", "destroy") => {
                meta::change(&state, &c, t, name, &body, VersionChange::Destroy).await
            }
            ("GET", "metadata") => meta::read(&state, &c, t, name).await,
            ("POST" | "PUT", "metadata") => meta::write(&state, &c, t, name, &body).await,
            ("PATCH", "metadata") => meta::patch(&state, &c, t, name, &headers, &body).await,
            ("DELETE", "metadata") => meta::purge(&state, &c, t, name).await,
            ("GET", "config") if name.is_empty() => meta::config(&state, &c, t).await,
            ("POST" | "PUT", "config") if name.is_empty() => {
                meta::set_config(&state, &c, t, &body).await
            }
            (_, "config") if !name.is_empty() => errors(
                StatusCode::NOT_FOUND,
                &[&format!("no handler for route {path:?}")],
            ),
            // a route Vault has, with a method it does not take there
            _ => errors(StatusCode::METHOD_NOT_ALLOWED, &["unsupported operation"]),
        };
    }
    match (method.as_str(), path) {
        ("GET", "sys/mounts") => mounts(&c),
        ("GET", "auth/token/lookup-self") | ("POST" | "PUT", "auth/token/lookup-self") => {
            match token(&state, &c).await {
                Ok(data) => envelope(data, Value::Null, "token"),
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
                    "token",
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

mod kv;
mod meta;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_version_4_uuids_and_differ_across_threads() {
        let draw = || (0..5_000).map(|_| request_id()).collect::<Vec<_>>();
        let other = std::thread::spawn(draw);
        let mut all = draw();
        all.extend(other.join().expect("the other thread draws"));
        for id in &all {
            let u = uuid::Uuid::parse_str(id).expect("a UUID");
            assert_eq!(u.get_version_num(), 4, "{id}");
            assert_eq!(u.get_variant(), uuid::Variant::RFC4122, "{id}");
            assert_eq!(*id, u.hyphenated().to_string(), "lower-case and hyphenated");
        }
        let distinct: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), all.len());
    }

    #[test]
    fn the_envelope_has_vaults_fields_in_vaults_order_with_data_moved_in() {
        let data = object([("data", object([("password", "p".into())]))]);
        let body = serde_json::to_string(&Envelope::new(data, Value::Null, "kv", &[]))
            .expect("serialised");
        let v: Value = serde_json::from_str(&body).expect("JSON");
        let keys: Vec<&str> = v
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "request_id",
                "lease_id",
                "renewable",
                "lease_duration",
                "data",
                "wrap_info",
                "warnings",
                "auth",
                "mount_type"
            ]
        );
        assert_eq!(v["data"]["data"]["password"], "p");
        assert_eq!(v["warnings"], Value::Null);
        assert_eq!(v["wrap_info"], Value::Null);
        assert_eq!(v["lease_duration"], 0);
        let warned = ["careful".to_owned()];
        let body = serde_json::to_value(Envelope::new(Value::Null, Value::Null, "kv", &warned))
            .expect("serialised");
        assert_eq!(body["warnings"], json!(["careful"]));
    }
}
