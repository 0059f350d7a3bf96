//! The KV v2 routes of a mount that change versions and settings: `DELETE data/<path>`,
//! `delete/`, `undelete/` and `destroy/<path>`, `metadata/<path>` (GET, POST/PUT, PATCH,
//! DELETE) and `config` (GET, POST/PUT). Each is a call of the domain layer, audited there.

use std::collections::BTreeMap;

use serde_json::Map;
use sigil_store::{AuditAction, KvConfig, VersionChange};

use super::kv::{BadRequest, custom, kind_of, name, refused, time};
use super::*;
use crate::service::versions::{self, Settings};

/// A body as Vault reads one: a JSON object (an empty body is an empty object).
fn object(body: &[u8]) -> Result<Map<String, Value>, BadRequest> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(other) => Err(BadRequest(format!(
            "failed to parse JSON input: the body must be a JSON object, not {}",
            kind_of(&other)
        ))),
        Err(e) => Err(BadRequest(format!("failed to parse JSON input: {e}"))),
    }
}

/// Vault's refusal of a field that does not convert.
fn unconvertible(field: &str, why: impl std::fmt::Display) -> BadRequest {
    BadRequest(format!("error converting input for field {field:?}: {why}"))
}

/// An integer field, as Vault's weak decoding takes one: a number or its text.
fn int(field: &str, v: &Value) -> Result<i64, BadRequest> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| unconvertible(field, format!("expected an integer, got {}", kind_of(v))))
}

/// A boolean field: `true`/`false`, their text, or 1/0.
fn flag(field: &str, v: &Value) -> Result<bool, BadRequest> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        Value::Number(n) => match n.as_i64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        _ => None,
    }
    .ok_or_else(|| unconvertible(field, format!("expected a boolean, got {}", kind_of(v))))
}

/// A duration field in whole seconds, as Vault's `TypeDurationSecond` takes one: a number of
/// seconds, its text, `<N>d` for days, or a Go duration (`1h30m`, `90s`, `1.5h`).
fn seconds(field: &str, v: &Value) -> Result<i64, BadRequest> {
    // not the input itself: a field is no place for a value, but one pasted there is not echoed
    let bad = || {
        let why = format!(
            "{} is not a duration: give seconds, <N>d, or a Go duration such as 1h30m",
            kind_of(v)
        );
        unconvertible(field, why)
    };
    match v {
        Value::Null => Ok(0),
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .ok_or_else(bad),
        Value::String(s) => {
            let s = s.trim();
            if s.is_empty() {
                return Ok(0);
            }
            if let Ok(n) = s.parse::<i64>() {
                return Ok(n);
            }
            if let Some(days) = s.strip_suffix('d')
                && let Ok(d) = days.parse::<i64>()
            {
                return d.checked_mul(86_400).ok_or_else(bad);
            }
            go_duration(s).map(|ns| (ns / 1e9) as i64).ok_or_else(bad)
        }
        _ => Err(bad()),
    }
}

/// Go's `time.ParseDuration`: a sign, then numbers (with decimals) each with a unit (`ns`,
/// `us`, `µs`, `ms`, `s`, `m`, `h`); in nanoseconds.
fn go_duration(text: &str) -> Option<f64> {
    let (sign, mut rest) = match text.as_bytes().first()? {
        b'-' => (-1.0, &text[1..]),
        b'+' => (1.0, &text[1..]),
        _ => (1.0, text),
    };
    if rest == "0" {
        return Some(0.0);
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    Some(sign * total)
}

/// Whole seconds as Go writes a duration (`0s`, `45s`, `1m30s`, `3h25m19s`).
fn go_text(ms: i64) -> String {
    let s = ms / 1000;
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    match (h, m) {
        (0, 0) => format!("{sec}s"),
        (0, _) => format!("{m}m{sec}s"),
        _ => format!("{h}h{m}m{sec}s"),
    }
}

/// `custom_metadata` as Vault's weak decoding reads it: an object whose values become text.
fn custom_map(v: &Value) -> Result<BTreeMap<String, String>, BadRequest> {
    let field = "custom_metadata";
    let Value::Object(o) = v else {
        return Err(unconvertible(
            field,
            format!("expected a map, got {}", kind_of(v)),
        ));
    };
    o.iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => if *b { "1" } else { "0" }.to_owned(),
                Value::Null => String::new(),
                other => {
                    return Err(BadRequest(format!(
                        "custom_metadata validation failed: the value of {k:?} must be text, not {}",
                        kind_of(other)
                    )));
                }
            };
            Ok((k.clone(), text))
        })
        .collect()
}

/// The settings a metadata write names (`max_versions`, `cas_required`,
/// `delete_version_after`, `custom_metadata`); unknown fields are ignored, as Vault ignores
/// them.
fn settings(body: &Map<String, Value>) -> Result<Settings, BadRequest> {
    Ok(Settings {
        max_versions: body
            .get("max_versions")
            .map(|v| int("max_versions", v))
            .transpose()?,
        cas_required: body
            .get("cas_required")
            .map(|v| flag("cas_required", v))
            .transpose()?,
        delete_version_after_ms: body
            .get("delete_version_after")
            .map(|v| seconds("delete_version_after", v).map(|s| s.saturating_mul(1000)))
            .transpose()?,
        custom_metadata: body.get("custom_metadata").map(custom_map).transpose()?,
        custom_metadata_was: None,
    })
}

/// `204 No Content`, or `200` with Vault's warnings.
fn done(warnings: &[String]) -> Response {
    if warnings.is_empty() {
        StatusCode::NO_CONTENT.into_response()
    } else {
        axum::Json(Envelope::new(Value::Null, Value::Null, "kv", warnings)).into_response()
    }
}

/// What a change the store found nothing to apply to answers: Vault's silent `204` (the refusal
/// is on record); anything else as [`refused`].
fn done_or_nothing(r: Result<(), ServerError>) -> Response {
    match r {
        Ok(()) | Err(ServerError::NotFound(_)) => done(&[]),
        Err(e) => refused(e),
    }
}

/// `GET <mount>/metadata/<path>` (viewer role): the secret's settings and each version's state.
/// A secret deleted through Sigil (all its versions hidden) is not found.
pub(super) async fn read(state: &AppState, c: &Caller, team: &TeamName, raw: &str) -> Response {
    let Ok(name) = service::parse_name(raw) else {
        return refused(ServerError::Invalid(format!("invalid secret name {raw:?}")));
    };
    let (row, versions) = match versions::all_versions(state, c, team, &name).await {
        Ok(Some(found)) if found.0.deleted_at.is_none() => found,
        Ok(_) => return errors(StatusCode::NOT_FOUND, &[]),
        Err(e) => return refused(e),
    };
    // keys in Go's order for a map: sorted as text
    let by_version: BTreeMap<String, Value> = versions
        .iter()
        .map(|v| {
            (
                v.version.to_string(),
                json!({
                    "created_time": time(Some(v.created_at)),
                    "deletion_time": time(v.deleted_at),
                    "destroyed": v.destroyed,
                }),
            )
        })
        .collect();
    let s = &row.settings;
    kv_answer(
        StatusCode::OK,
        json!({
            "cas_required": s.cas_required,
            "created_time": time(Some(row.created_at)),
            "current_metadata_version": 0,
            "current_version": row.version,
            "custom_metadata": custom(s.custom_metadata.as_deref()),
            "delete_version_after": go_text(s.delete_version_after),
            "max_versions": s.max_versions,
            "metadata_cas_required": false,
            "oldest_version": row.oldest_version,
            "updated_time": time(Some(row.updated_at)),
            "versions": by_version,
        }),
    )
}

/// The warning Vault gives when a secret's `cas_required` is set false under a team that
/// requires check-and-set anyway.
async fn cas_warning(state: &AppState, c: &Caller, team: &TeamName, s: &Settings) -> Vec<String> {
    if s.cas_required != Some(false) {
        return Vec::new();
    }
    match versions::team_settings(state, c, team).await {
        Ok(k) if k.cas_required => vec![
            "\"cas_required\" set to false, but is mandated by backend config. This value will be ignored."
                .into(),
        ],
        _ => Vec::new(),
    }
}

/// `POST`/`PUT <mount>/metadata/<path>` (writer role): sets the fields given (creating the
/// secret without versions when it does not exist); a body naming none changes nothing.
pub(super) async fn write(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    raw: &str,
    body: &[u8],
) -> Response {
    let name = match name(state, c, team, AuditAction::SecretSettings, raw).await {
        Ok(n) => n,
        Err(r) => return r,
    };
    let s = match object(body).and_then(|b| settings(&b)) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let named = s.max_versions.is_some()
        || s.cas_required.is_some()
        || s.delete_version_after_ms.is_some()
        || s.custom_metadata.is_some();
    if !named {
        return done(&[]);
    }
    let warnings = cas_warning(state, c, team, &s).await;
    match versions::set(state, c, team, &name, s).await {
        Ok(_) => done(&warnings),
        Err(e) => refused(e),
    }
}

/// `PATCH <mount>/metadata/<path>` (merge patch; writer role): the fields given replace the
/// secret's, `custom_metadata` merged key by key (`null` removes one). A secret that does not
/// exist is a 404.
pub(super) async fn patch(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    raw: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    if let Some(refused) = super::kv::not_merge_patch(headers) {
        return refused;
    }
    let name = match name(state, c, team, AuditAction::SecretSettings, raw).await {
        Ok(n) => n,
        Err(r) => return r,
    };
    let mut body = match object(body) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let custom_patch = body.remove("custom_metadata");
    let s = match settings(&body) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let warnings = cas_warning(state, c, team, &s).await;
    let Some(patch) = custom_patch else {
        return match versions::all_versions(state, c, team, &name).await {
            Ok(Some((row, _))) if row.deleted_at.is_none() => {
                match versions::set(state, c, team, &name, s).await {
                    Ok(_) => done(&warnings),
                    Err(e) => refused(e),
                }
            }
            Ok(_) => errors(StatusCode::NOT_FOUND, &[]),
            Err(e) => refused(e),
        };
    };
    let Value::Object(patch) = patch else {
        return unconvertible("custom_metadata", "expected a map").into_response();
    };
    let mut merge = BTreeMap::new();
    for (k, v) in patch {
        if v.is_null() {
            merge.insert(k, None);
        } else {
            match custom_map(&json!({ k.clone(): v })) {
                Ok(one) => merge.extend(one.into_iter().map(|(k, v)| (k, Some(v)))),
                Err(r) => return r.into_response(),
            }
        }
    }
    match versions::merge_custom_metadata(state, c, team, &name, s, &merge).await {
        Ok(Some(_)) => done(&warnings),
        Ok(None) => errors(StatusCode::NOT_FOUND, &[]),
        Err(e) => refused(e),
    }
}

/// `DELETE <mount>/metadata/<path>` (writer role): the secret and all its versions removed for
/// good; `204` whether or not there was one, as Vault answers.
pub(super) async fn purge(state: &AppState, c: &Caller, team: &TeamName, raw: &str) -> Response {
    let name = match name(state, c, team, AuditAction::SecretPurge, raw).await {
        Ok(n) => n,
        Err(r) => return r,
    };
    done_or_nothing(versions::purge(state, c, team, &name).await)
}

/// `DELETE <mount>/data/<path>` (writer role): the current version soft-deleted.
pub(super) async fn delete_current(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    raw: &str,
) -> Response {
    let name = match name(state, c, team, AuditAction::VersionDelete, raw).await {
        Ok(n) => n,
        Err(r) => return r,
    };
    let r = versions::delete_current(state, c, team, &name).await;
    done_or_nothing(r.map(|_| ()))
}

/// The version numbers of a `delete`/`undelete`/`destroy` body, as Vault's comma-int-slice
/// takes them: a list of numbers (or their text), one number, or `"1,2,3"`.
fn version_list(body: &Map<String, Value>) -> Result<Vec<i64>, BadRequest> {
    let field = "versions";
    let one = |v: &Value| int(field, v);
    match body.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => {
            if items.len() > sigil_core::wire::MAX_VERSIONS_PER_CHANGE {
                return Err(BadRequest(format!(
                    "versions holds {} numbers, over the limit of {}",
                    items.len(),
                    sigil_core::wire::MAX_VERSIONS_PER_CHANGE
                )));
            }
            items.iter().map(one).collect()
        }
        Some(Value::String(s)) => s
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .take(sigil_core::wire::MAX_VERSIONS_PER_CHANGE + 1)
            .map(|p| one(&Value::String(p.to_owned())))
            .collect(),
        Some(v) => one(v).map(|n| vec![n]),
    }
}

/// `POST`/`PUT <mount>/{delete,undelete,destroy}/<path>` `{"versions": [...]}` (writer role):
/// `204`; versions that do not exist, and a secret that does not, are passed over as Vault
/// passes them.
pub(super) async fn change(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    raw: &str,
    body: &[u8],
    change: VersionChange,
) -> Response {
    let name = match name(state, c, team, change.action(), raw).await {
        Ok(n) => n,
        Err(r) => return r,
    };
    let list = match object(body).and_then(|b| version_list(&b)) {
        Ok(l) => l,
        Err(r) => return r.into_response(),
    };
    if list.is_empty() {
        // Vault's own words differ by route
        let m = match change {
            VersionChange::Destroy => "no version number provided",
            _ => "No version number provided",
        };
        return errors(StatusCode::BAD_REQUEST, &[m]);
    }
    let r = versions::change(state, c, team, &name, &list, change).await;
    done_or_nothing(r.map(|_| ()))
}

/// `GET <mount>/config` (any role of the team): the team's settings for its secrets.
pub(super) async fn config(state: &AppState, c: &Caller, team: &TeamName) -> Response {
    match versions::team_settings(state, c, team).await {
        Ok(k) => kv_answer(
            StatusCode::OK,
            json!({
                "cas_required": k.cas_required,
                "delete_version_after": go_text(k.delete_version_after),
                "max_versions": k.max_versions,
                "metadata_cas_required": false,
            }),
        ),
        Err(e) => refused(e),
    }
}

/// `POST`/`PUT <mount>/config` (admin role): the fields given replace the team's.
pub(super) async fn set_config(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    body: &[u8],
) -> Response {
    let s = match object(body).and_then(|b| settings(&b)) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    if s.max_versions.is_none() && s.cas_required.is_none() && s.delete_version_after_ms.is_none() {
        return done(&[]);
    }
    let current = match versions::team_settings(state, c, team).await {
        Ok(k) => k,
        Err(e) => return refused(e),
    };
    let config = KvConfig {
        max_versions: s.max_versions.unwrap_or(current.max_versions),
        cas_required: s.cas_required.unwrap_or(current.cas_required),
        delete_version_after: s
            .delete_version_after_ms
            .unwrap_or(current.delete_version_after),
    };
    match versions::set_team_settings(state, c, team, config).await {
        Ok(()) => done(&[]),
        Err(e) => refused(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_and_written_as_vault_does() {
        let secs = |v: Value| seconds("d", &v).map_err(|e| e.0);
        assert_eq!(secs(json!(90)), Ok(90));
        assert_eq!(secs(json!("90")), Ok(90));
        assert_eq!(secs(json!("2d")), Ok(172_800));
        assert_eq!(secs(json!("1h30m")), Ok(5_400));
        assert_eq!(secs(json!("1.5h")), Ok(5_400));
        assert_eq!(secs(json!("3h25m19s")), Ok(12_319));
        assert_eq!(secs(json!("1500ms")), Ok(1));
        assert_eq!(secs(json!("")), Ok(0));
        assert!(secs(json!("ten minutes")).unwrap_err().contains("\"d\""));
        assert!(secs(json!([1])).is_err());
        assert_eq!(go_text(0), "0s");
        assert_eq!(go_text(45_000), "45s");
        assert_eq!(go_text(90_000), "1m30s");
        assert_eq!(go_text(12_319_000), "3h25m19s");
        assert_eq!(go_text(172_800_000), "48h0m0s");
    }

    #[test]
    fn version_lists_as_vault_reads_them() {
        let list = |v: Value| version_list(v.as_object().unwrap()).map_err(|e| e.0);
        assert_eq!(list(json!({"versions": [1, 2]})), Ok(vec![1, 2]));
        assert_eq!(list(json!({"versions": ["3", 4]})), Ok(vec![3, 4]));
        assert_eq!(list(json!({"versions": "1,2, 5"})), Ok(vec![1, 2, 5]));
        assert_eq!(list(json!({"versions": 7})), Ok(vec![7]));
        assert_eq!(list(json!({})), Ok(vec![]));
        assert!(
            list(json!({"versions": ["x"]}))
                .unwrap_err()
                .contains("\"versions\"")
        );
        let huge: Vec<i64> = (1..=1001).collect();
        assert!(
            list(json!({ "versions": huge }))
                .unwrap_err()
                .contains("over the limit of 1000")
        );
    }

    #[test]
    fn fields_convert_weakly_and_refuse_by_name() {
        let body = json!({
            "max_versions": "5",
            "cas_required": "true",
            "delete_version_after": "1m",
            "custom_metadata": {"owner": "data", "tier": 1, "pii": false},
            "unknown": 1,
        });
        let s = settings(body.as_object().unwrap()).unwrap();
        assert_eq!(s.max_versions, Some(5));
        assert_eq!(s.cas_required, Some(true));
        assert_eq!(s.delete_version_after_ms, Some(60_000));
        let custom = s.custom_metadata.unwrap();
        assert_eq!(custom["tier"], "1");
        assert_eq!(custom["pii"], "0");
        let bad = json!({"max_versions": [1]});
        let e = settings(bad.as_object().unwrap()).unwrap_err().0;
        assert!(e.contains("\"max_versions\""), "{e}");
        assert!(object(b"[1]").unwrap_err().0.contains("JSON object"));
        assert!(
            object(b"{")
                .unwrap_err()
                .0
                .starts_with("failed to parse JSON input")
        );
        assert!(object(b"").unwrap().is_empty());
    }
}
