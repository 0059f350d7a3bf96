//! The KV v2 routes of a mount that read and write values: `data/<path>` (GET, POST/PUT,
//! PATCH, DELETE), `subkeys/<path>`, and the folder lists of `metadata/`.

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
        ServerError::Conflict(m) if m.starts_with("check-and-set required") => errors(
            StatusCode::BAD_REQUEST,
            &["check-and-set parameter required for this call"],
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
        e @ ServerError::StorageFull(_) => {
            errors(StatusCode::INSUFFICIENT_STORAGE, &[&e.to_string()])
        }
        ServerError::Internal(_) => errors(StatusCode::INTERNAL_SERVER_ERROR, &["internal error"]),
    }
}

/// A KV path as a Sigil secret's name; one outside the grammar is refused on record, naming
/// it.
pub(super) async fn name(
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

/// A time as Vault writes it (RFC 3339, UTC), or `""` for none.
pub(super) fn time(ms: Option<i64>) -> String {
    ms.map(sigil_core::wire::rfc3339).unwrap_or_default()
}

/// A secret's `custom_metadata` (stored as a JSON object's text) as Vault answers it: the object,
/// or `null` when it has none.
pub(super) fn custom(text: Option<&str>) -> Value {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}

/// A version's metadata as `data/` answers it.
fn version_metadata(
    version: i64,
    created_at: i64,
    deleted_at: Option<i64>,
    destroyed: bool,
    custom_metadata: Option<&str>,
) -> Value {
    object([
        ("created_time", time(Some(created_at)).into()),
        ("custom_metadata", custom(custom_metadata)),
        ("deletion_time", time(deleted_at).into()),
        ("destroyed", destroyed.into()),
        ("version", version.into()),
    ])
}

/// What a read of a version found: its data and metadata, or (deleted or destroyed) its
/// metadata only.
enum Found {
    Data(Value, Value),
    Gone(Value),
}

/// `GET <mount>/data/<path>[?version=N]` (reader role; audited). A version deleted or destroyed
/// is a 404 with its metadata, as Vault answers (hvac reads `deletion_time` from it).
pub(super) async fn read(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    raw: &str,
    query: &HashMap<String, String>,
) -> Response {
    match asked_data(state, c, team, raw, query).await {
        Ok(Found::Data(data, metadata)) => kv_answer(
            StatusCode::OK,
            object([("data", data), ("metadata", metadata)]),
        ),
        Ok(Found::Gone(metadata)) => kv_answer(
            StatusCode::NOT_FOUND,
            object([("data", Value::Null), ("metadata", metadata)]),
        ),
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
) -> Result<Found, Response> {
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
) -> Result<Found, Response> {
    let read = match service::secrets::read_or_unreadable(state, c, team, name, version)
        .await
        .map_err(refused)?
    {
        Ok(read) => read,
        Err(gone) => {
            return Ok(Found::Gone(version_metadata(
                gone.version,
                gone.created_at,
                gone.deleted_at,
                gone.destroyed,
                gone.custom_metadata.as_deref(),
            )));
        }
    };
    let value: Value = serde_json::from_slice(&read.plain)
        .map_err(|_| refused(service::secrets::not_json(name.as_str(), read.version)))?;
    let data = match value {
        Value::Object(o) => Value::Object(o),
        other => object([("value", other)]),
    };
    let metadata = version_metadata(
        read.version,
        read.created_at,
        read.deleted_at,
        false,
        read.custom_metadata.as_deref(),
    );
    Ok(Found::Data(data, metadata))
}

/// `?version=N`: none (or 0 or less, as Vault takes it) is the latest.
fn version_of(query: &HashMap<String, String>) -> Result<Option<i64>, BadRequest> {
    match query.get("version").map(|v| v.parse::<i64>()) {
        None => Ok(None),
        Some(Ok(v)) if v <= 0 => Ok(None),
        Some(Ok(v)) => Ok(Some(v)),
        Some(Err(_)) => Err(BadRequest("version must be a number".into())),
    }
}

/// A 400 with Vault's error body, kept small until it is answered.
#[derive(Debug)]
pub(super) struct BadRequest(pub(super) String);

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
        Ok(Found::Data(data, metadata)) => kv_answer(
            StatusCode::OK,
            object([("subkeys", shape(&data, depth, 0)), ("metadata", metadata)]),
        ),
        Ok(Found::Gone(metadata)) => kv_answer(
            StatusCode::NOT_FOUND,
            object([("subkeys", Value::Null), ("metadata", metadata)]),
        ),
        Err(r) => r,
    }
}

/// A PATCH must say its body is a JSON merge patch: Vault's 415 when it does not.
pub(super) fn not_merge_patch(headers: &HeaderMap) -> Option<Response> {
    let kind = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if kind.starts_with("application/merge-patch+json") {
        return None;
    }
    let message =
        format!("PATCH requires Content-Type of application/merge-patch+json, provided {kind}");
    Some(errors(StatusCode::UNSUPPORTED_MEDIA_TYPE, &[&message]))
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
    if let Some(refused) = not_merge_patch(headers) {
        return refused;
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
        Ok(Found::Data(data, metadata)) => (data, metadata),
        // the latest version deleted or destroyed: its metadata, as Vault answers
        Ok(Found::Gone(metadata)) => return kv_answer(StatusCode::NOT_FOUND, metadata),
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
    written(service::secrets::write_version(state, c, team, &name, &data, Some(current)).await)
}

/// A write's answer: the new version's metadata.
fn written(w: Result<sigil_store::Written, ServerError>) -> Response {
    match w {
        Ok(w) => kv_answer(
            StatusCode::OK,
            version_metadata(
                w.version,
                w.updated_at,
                w.deleted_at,
                false,
                w.settings.custom_metadata.as_deref(),
            ),
        ),
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
    written(service::secrets::write_version(state, c, team, &name, &data, cas).await)
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

/// What kind of JSON value `v` is, as a refusal says it ("a string", "an array").
pub(super) fn kind_of(v: &Value) -> &'static str {
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
    kv_answer(StatusCode::OK, json!({ "keys": keys }))
}
