//! The Prefect 1 face: the part of Prefect Cloud's GraphQL API that Prefect 1.4.1's own client
//! (and the legacy UI) uses for secrets, at `POST /prefect/graphql`, so that `Secret(name).get()`
//! and `PrefectSecret(name)` read Sigil unchanged.
//!
//! Documents are parsed, validated against the schema and executed by `async-graphql`; every
//! field calls the domain layer, so roles, validation, sealing and audit are the REST API's. The
//! key in `Authorization: Bearer` decides the team; `X-PREFECT-TENANT-ID` is accepted and
//! ignored; `X-PREFECT-CORE-VERSION` is recorded as the client software. Protocol facts:
//! `shared/PREFECT1.md`.
//!
//! ```graphql
//! type Query { secret_value(name: String!): JSON  secret_names: [String!]! }
//! type Mutation {
//!   set_secret(input: set_secret_input!): success_payload
//!   delete_secret(input: delete_secret_input!): success_payload
//! }
//! ```

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{
    Context, EmptySubscription, ErrorExtensions, InputObject, Json, Object, Schema, SimpleObject,
    Variables,
};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sigil_store::AuditAction;

use crate::auth::{Caller, ClientIp, Face};
use crate::service::{self, ServerError};
use crate::state::AppState;

/// The schema, built once.
type PrefectSchema = Schema<Query, Mutation, EmptySubscription>;

fn schema() -> &'static PrefectSchema {
    static SCHEMA: OnceLock<PrefectSchema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        // no depth or complexity limits: the schema has no nesting a document could abuse
        Schema::build(Query, Mutation, EmptySubscription).finish()
    })
}

/// What every field needs: the state and who is asking.
struct Asker {
    state: Arc<AppState>,
    caller: Caller,
}

fn asker<'a>(ctx: &'a Context<'_>) -> &'a Asker {
    ctx.data_unchecked::<Asker>()
}

/// The text Prefect's client turns into `KeyError("The secret NAME was not found. …")`.
const NOT_FOUND: &str = "No value found for the requested key";

/// A refusal of the domain layer as a GraphQL error: its message (never a value) and a code.
fn graphql_error(e: ServerError) -> async_graphql::Error {
    let (code, message) = match &e {
        ServerError::NotFound(m) => ("NOT_FOUND", format!("{NOT_FOUND}: {m}")),
        ServerError::Forbidden(m) => ("FORBIDDEN", m.clone()),
        ServerError::Conflict(m) => ("CONFLICT", m.clone()),
        ServerError::Invalid(m) | ServerError::TooLarge(m) => ("BAD_USER_INPUT", m.clone()),
        ServerError::RateLimited { message, .. } => ("TOO_MANY_REQUESTS", message.clone()),
        ServerError::Unavailable(_) => ("SERVICE_UNAVAILABLE", "storage unavailable".to_owned()),
        ServerError::StorageFull(_) => ("INSUFFICIENT_STORAGE", e.to_string()),
        ServerError::Internal(_) => ("INTERNAL_SERVER_ERROR", "internal error".to_owned()),
    };
    async_graphql::Error::new(message).extend_with(|_, ext| ext.set("code", code))
}

/// The name a field was given, checked by the domain layer's grammar; a name that breaks it is
/// refused on record as the action it was for.
async fn secret_name(
    a: &Asker,
    action: AuditAction,
    raw: &str,
) -> async_graphql::Result<sigil_core::SecretName> {
    let team = &a.caller.team;
    service::parsed(
        &a.state,
        &a.caller,
        team,
        Some(action),
        raw,
        service::parse_name,
    )
    .await
    .map_err(graphql_error)
}

/// The queries.
pub(crate) struct Query;

#[Object(rename_fields = "snake_case", rename_args = "snake_case")]
impl Query {
    /// A secret's latest value, any JSON, exactly as it was written (reader role; audited).
    async fn secret_value(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> async_graphql::Result<Option<Json<Value>>> {
        let a = asker(ctx);
        let name = secret_name(a, AuditAction::SecretRead, &name).await?;
        let read = service::secrets::read(&a.state, &a.caller, &a.caller.team, &name, None)
            .await
            .map_err(graphql_error)?;
        let value: Value = serde_json::from_slice(&read.plain)
            .map_err(|_| graphql_error(service::secrets::not_json(name.as_str(), read.version)))?;
        Ok(Some(Json(value)))
    }

    /// The names of the team's secrets (viewer role).
    async fn secret_names(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<String>> {
        let a = asker(ctx);
        service::secrets::all_names(&a.state, &a.caller, &a.caller.team, "")
            .await
            .map_err(graphql_error)
    }
}

/// `set_secret`'s input.
#[derive(InputObject)]
#[graphql(name = "set_secret_input", rename_fields = "snake_case")]
struct SetSecretInput {
    /// The secret's name.
    name: String,
    /// Its new value: any JSON, kept as it is.
    value: Json<Value>,
}

/// `delete_secret`'s input.
#[derive(InputObject)]
#[graphql(name = "delete_secret_input", rename_fields = "snake_case")]
struct DeleteSecretInput {
    /// The secret's name.
    name: String,
}

/// What a mutation answers.
#[derive(SimpleObject)]
#[graphql(name = "success_payload", rename_fields = "snake_case")]
struct SuccessPayload {
    /// Done.
    success: bool,
    /// Why not (never set: a failure is a GraphQL error).
    error: Option<String>,
}

const DONE: SuccessPayload = SuccessPayload {
    success: true,
    error: None,
};

/// The mutations.
pub(crate) struct Mutation;

#[Object(rename_fields = "snake_case", rename_args = "snake_case")]
impl Mutation {
    /// Writes a new version (writer role; audited).
    async fn set_secret(
        &self,
        ctx: &Context<'_>,
        input: SetSecretInput,
    ) -> async_graphql::Result<Option<SuccessPayload>> {
        let a = asker(ctx);
        let name = secret_name(a, AuditAction::SecretWrite, &input.name).await?;
        service::secrets::write(
            &a.state,
            &a.caller,
            &a.caller.team,
            &name,
            &input.value.0,
            None,
        )
        .await
        .map_err(graphql_error)?;
        Ok(Some(DONE))
    }

    /// Deletes a secret, restorably (writer role; audited).
    async fn delete_secret(
        &self,
        ctx: &Context<'_>,
        input: DeleteSecretInput,
    ) -> async_graphql::Result<Option<SuccessPayload>> {
        let a = asker(ctx);
        let name = secret_name(a, AuditAction::SecretDelete, &input.name).await?;
        service::secrets::delete(&a.state, &a.caller, &a.caller.team, &name)
            .await
            .map_err(graphql_error)?;
        Ok(Some(DONE))
    }
}

/// An answer that is only errors: `{"errors": [{"message", "extensions": {"code"}}]}`.
fn errors(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"errors": [{"message": message, "extensions": {"code": code}}]});
    (status, axum::Json(body)).into_response()
}

/// The documents parsed so far, by their text: a client sends the same few documents again and
/// again, and parsing is a third of a request's cost. Every request is still validated against
/// the schema and executed; a document that does not parse is not kept (its request fails with
/// the parser's error). At most [`PARSED_DOCUMENTS`] are kept.
fn parsed(query: &str) -> Option<ExecutableDocument> {
    static DOCS: OnceLock<Mutex<HashMap<String, ExecutableDocument>>> = OnceLock::new();
    let docs = DOCS.get_or_init(Mutex::default);
    if let Some(doc) = docs.lock().unwrap_or_else(|p| p.into_inner()).get(query) {
        return Some(doc.clone());
    }
    let doc = async_graphql::parser::parse_query(query).ok()?;
    let mut docs = docs.lock().unwrap_or_else(|p| p.into_inner());
    if docs.len() >= PARSED_DOCUMENTS {
        docs.clear();
    }
    docs.insert(query.to_owned(), doc.clone());
    Some(doc)
}

/// How many parsed documents are kept (a client that sends more only parses them again).
const PARSED_DOCUMENTS: usize = 256;

/// A request's JSON body as it comes: each member still JSON text, read below with its own
/// message.
#[derive(serde::Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    query: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    variables: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, rename = "operationName")]
    operation_name: Option<&'a serde_json::value::RawValue>,
}

/// A request's JSON body: the document, its variables (an object, a JSON text, or `"null"`, as
/// Prefect's client sends them) and the operation's name.
fn request_of(body: &[u8]) -> Result<async_graphql::Request, String> {
    let body: Body<'_> = match serde_json::from_slice(body) {
        Ok(b) => b,
        // why not, said in the terms of the request
        Err(e) => {
            return Err(
                match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                    Err(e) => format!("the body is not JSON: {e}"),
                    Ok(_) if !body.trim_ascii_start().starts_with(b"{") => {
                        "the body must be a JSON object with a query".into()
                    }
                    Ok(_) => format!("the body is not a GraphQL request: {e}"),
                },
            );
        }
    };
    let string = |raw: Option<&serde_json::value::RawValue>| -> Option<Option<String>> {
        match raw.map(|r| r.get()) {
            None | Some("null") => Some(None),
            Some(r) => serde_json::from_str::<String>(r).ok().map(Some),
        }
    };
    let Some(Some(query)) = string(body.query) else {
        return Err("the body has no query (a string)".into());
    };
    let Some(operation_name) = string(body.operation_name) else {
        return Err("operationName must be a string".into());
    };
    let raw = body.variables.map(|v| v.get().trim_start());
    let variables: Option<Variables> = match raw {
        None => None,
        Some(v) if v.starts_with('"') => {
            // a JSON text inside a string, as Prefect's client sends it
            let text: std::borrow::Cow<'_, str> =
                serde_json::from_str(v).map_err(|e| format!("variables is not JSON: {e}"))?;
            if text.trim() == "null" {
                None
            } else if text.trim_start().starts_with('{') {
                Some(
                    serde_json::from_str(&text)
                        .map_err(|e| format!("variables is not JSON: {e}"))?,
                )
            } else if serde_json::from_str::<Value>(&text).is_ok() {
                return Err("variables must be a JSON object".into());
            } else {
                return Err("variables is not JSON: not a JSON text".into());
            }
        }
        Some("null") => None,
        Some(v) if v.starts_with('{') => {
            Some(serde_json::from_str(v).map_err(|e| format!("variables: {e}"))?)
        }
        Some(_) => return Err("variables must be an object, a JSON text or null".into()),
    };
    let document = parsed(&query);
    let mut request = async_graphql::Request::new(query);
    if let Some(document) = document {
        request.set_parsed_query(document);
    }
    if let Some(v) = variables {
        request = request.variables(v);
    }
    if let Some(op) = operation_name {
        request = request.operation_name(op);
    }
    Ok(request)
}

/// `X-PREFECT-CORE-VERSION` as the audit log's client software: `prefect 1.4.1`.
fn agent(headers: &HeaderMap) -> Option<String> {
    let v = headers.get("x-prefect-core-version")?.to_str().ok()?;
    let ok = !v.is_empty() && v.len() <= 32 && v.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| format!("prefect {v}"))
}

/// Who is asking, from `Authorization: Bearer`; a refusal is a GraphQL error Prefect's client
/// turns into `AuthorizationError` (its text holds `UNAUTHENTICATED`), with HTTP 200 as Prefect
/// Cloud answered. Too many failures are said, not answered 429: the client would sleep three
/// minutes on a 429.
async fn caller(state: &AppState, headers: &HeaderMap, ip: IpAddr) -> Result<Caller, Response> {
    let key = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(crate::auth::bearer_key);
    let refused = |message: &str| {
        errors(
            StatusCode::OK,
            "UNAUTHENTICATED",
            &format!("UNAUTHENTICATED: {message}"),
        )
    };
    let missing = "missing API key: send Authorization: Bearer <key>";
    match crate::auth::authenticate_sent(state, key, ip, missing).await {
        Ok(c) => Ok(c),
        Err(e) if e.status == StatusCode::TOO_MANY_REQUESTS => {
            Err(errors(StatusCode::OK, "TOO_MANY_REQUESTS", &e.message))
        }
        Err(e) if e.status == StatusCode::UNAUTHORIZED => Err(refused(&e.message)),
        Err(e) => Err(errors(e.status, e.code, &e.message)),
    }
}

/// `POST /prefect/graphql`.
pub(crate) async fn graphql(
    State(state): State<Arc<AppState>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = match request_of(&body) {
        Ok(r) => r,
        Err(message) => return errors(StatusCode::BAD_REQUEST, "BAD_REQUEST", &message),
    };
    let mut caller = match caller(&state, &headers, ip).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    caller.via = Face::Prefect;
    caller.agent = agent(&headers);
    let response = schema()
        .execute(request.data(Asker { state, caller }))
        .await;
    // the storage away is a 503, which Prefect's client retries; anything else is a GraphQL
    // answer (errors included) with 200
    let unavailable = response.errors.iter().any(|e| {
        e.extensions
            .as_ref()
            .and_then(|x| x.get("code"))
            .is_some_and(|c| *c == async_graphql::Value::from("SERVICE_UNAVAILABLE"))
    });
    let status = if unavailable {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, axum::Json(response)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_is_prefect_clouds_subset() {
        let sdl = schema().sdl();
        for want in [
            "secret_value(name: String!): JSON",
            "secret_names: [String!]!",
            "set_secret(input: set_secret_input!): success_payload",
            "delete_secret(input: delete_secret_input!): success_payload",
            "input set_secret_input",
            "value: JSON!",
        ] {
            assert!(sdl.contains(want), "{want} in:\n{sdl}");
        }
    }

    #[test]
    fn variables_come_as_objects_json_texts_or_null() {
        for body in [
            r#"{"query": "query{secret_names}", "variables": "null"}"#,
            r#"{"query": "query{secret_names}", "variables": null}"#,
            r#"{"query": "query{secret_names}"}"#,
            r#"{"query": "query($name: String!) { secret_value(name: $name) }", "variables": "{\"name\": \"X\"}"}"#,
            r#"{"query": "query($name: String!) { secret_value(name: $name) }", "variables": {"name": "X"}}"#,
        ] {
            assert!(request_of(body.as_bytes()).is_ok(), "{body}");
        }
        for (body, says) in [
            ("not json", "the body is not JSON"),
            ("[1]", "a JSON object with a query"),
            (r#"{"variables": "null"}"#, "no query"),
            (
                r#"{"query": "q", "variables": "{oops"}"#,
                "variables is not JSON",
            ),
            (
                r#"{"query": "q", "variables": "[1]"}"#,
                "must be a JSON object",
            ),
            (
                r#"{"query": "q", "variables": 7}"#,
                "an object, a JSON text or null",
            ),
            (r#"{"query": "q", "operationName": 7}"#, "operationName"),
        ] {
            let e = request_of(body.as_bytes()).unwrap_err();
            assert!(e.contains(says), "{body}: {e}");
        }
    }

    #[test]
    fn the_client_version_is_kept_when_it_is_plain() {
        let mut h = HeaderMap::new();
        assert_eq!(agent(&h), None);
        h.insert("x-prefect-core-version", "1.4.1".parse().unwrap());
        assert_eq!(agent(&h).as_deref(), Some("prefect 1.4.1"));
        h.insert("x-prefect-core-version", "a b".parse().unwrap());
        assert_eq!(agent(&h), None);
    }
}
