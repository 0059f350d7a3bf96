//! The Prefect 1 face through the router, on each backend: the documents Prefect 1.4.1's client
//! and the legacy UI send, roles, audit, and bad input (an error with a message, nothing stored).

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{Reply, Server};

const READ: &str = "query($name: String!) {\n        secret_value(name: $name)\n}";
const SET: &str = "mutation($input: set_secret_input!) {\n    set_secret(input: $input) {\n        success\n    }\n}";
const DELETE: &str =
    "mutation DeleteSecret($name: String!) { delete_secret(input: { name: $name }) { success } }";

/// A GraphQL request as Prefect's client sends it: `variables` a JSON text (`"null"` for none).
async fn graphql(s: &Server, key: Option<&str>, query: &str, variables: Value) -> Reply {
    let body = json!({"query": query, "variables": variables.to_string()});
    let headers = [
        ("x-prefect-core-version", "1.4.1"),
        (
            "x-prefect-tenant-id",
            "00000000-0000-0000-0000-000000000000",
        ),
    ];
    s.call_with(
        Method::POST,
        "/prefect/graphql",
        key,
        Some(body.to_string().into_bytes()),
        &headers,
    )
    .await
}

fn message(r: &Reply) -> String {
    r.json["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

pub(crate) async fn prefects_documents_read_write_list_and_delete(s: &Server) {
    let a = Some(s.admin.as_str());
    // any JSON in, the same JSON out
    for (name, value) in [
        ("MYSECRET", json!("MY SECRET VALUE $HOME")),
        ("NUMBER_STRING", json!("42")),
        ("DOC", json!("{\"a\": 1}")),
        (
            "OBJ",
            json!({"user": "etl", "port": 5432, "nested": [1.5, true, null]}),
        ),
    ] {
        let r = graphql(s, a, SET, json!({"input": {"name": name, "value": value}})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json, json!({"data": {"set_secret": {"success": true}}}));
        let r = graphql(s, a, READ, json!({"name": name})).await;
        assert_eq!(r.json, json!({"data": {"secret_value": value}}), "{name}");
        // the REST API sees the same version
        assert_eq!(s.get(&s.admin, name).await.json["value"], value);
    }
    let r = graphql(s, a, "query{secret_names}", Value::Null).await;
    assert_eq!(
        r.json["data"]["secret_names"],
        json!(["DOC", "MYSECRET", "NUMBER_STRING", "OBJ"])
    );
    // inline arguments, as the docs show; variables as an object, as other clients send them
    let inline =
        r#"mutation { set_secret(input: { name: "INLINE", value: "VALUE" }) { success } }"#;
    assert_eq!(
        graphql(s, a, inline, Value::Null).await.json["data"]["set_secret"]["success"],
        true
    );
    let body = json!({"query": READ, "variables": {"name": "INLINE"}}).to_string();
    let r = s
        .call_with(
            Method::POST,
            "/prefect/graphql",
            a,
            Some(body.into_bytes()),
            &[("x-prefect-core-version", "1.4.1")],
        )
        .await;
    assert_eq!(r.json["data"]["secret_value"], "VALUE");
    // the UI's delete: a soft delete the REST API can restore
    let r = graphql(s, a, DELETE, json!({"name": "INLINE"})).await;
    assert_eq!(
        r.json,
        json!({"data": {"delete_secret": {"success": true}}})
    );
    assert_eq!(
        s.get(&s.admin, "INLINE").await.status,
        StatusCode::NOT_FOUND
    );
    let r = s.req(&s.admin, "POST restore/INLINE").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // a missing secret: the text Prefect's client turns into KeyError
    let r = graphql(s, a, READ, json!({"name": "NOPE"})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        message(&r).contains("No value found for the requested key"),
        "{}",
        r.text
    );
    assert_eq!(r.json["data"]["secret_value"], Value::Null);
    // every call is on record, through the Prefect API, with the client's version
    let log = s.audit_log().await;
    let prefect: Vec<&Value> = log.json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["via"] == "prefect")
        .collect();
    let count = |action: &str, outcome: &str| {
        prefect
            .iter()
            .filter(|e| e["action"] == action && e["outcome"] == outcome)
            .count()
    };
    assert_eq!(count("secret.write", "ok"), 5);
    assert_eq!(count("secret.read", "ok"), 5);
    assert_eq!(count("secret.read", "not_found"), 1);
    assert_eq!(count("secret.delete", "ok"), 1);
    assert!(prefect.iter().all(|e| e["agent"] == "prefect 1.4.1"));
    let rest: Vec<&Value> = log.json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "secret.restore")
        .collect();
    assert_eq!(rest[0]["via"], "api");
}

pub(crate) async fn prefect_keys_and_roles_are_the_rest_apis(s: &Server) {
    s.put(&s.admin, "R", json!("role-canary-77")).await;
    // no key, a wrong key: UNAUTHENTICATED with HTTP 200, which the client turns into
    // AuthorizationError; no value in the answer
    for key in [
        None,
        Some("sgl_wrongwrong12_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"),
    ] {
        let r = graphql(s, key, READ, json!({"name": "R"})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(message(&r).starts_with("UNAUTHENTICATED"), "{}", r.text);
        assert_eq!(r.json["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
        assert!(!r.text.contains("role-canary-77"));
    }
    let (viewer, reader) = (s.key("viewer").await, s.key("reader").await);
    // names: viewer; values: reader; writes: writer
    let r = graphql(s, Some(&viewer), "query{secret_names}", Value::Null).await;
    assert_eq!(r.json["data"]["secret_names"], json!(["R"]));
    let r = graphql(s, Some(&viewer), READ, json!({"name": "R"})).await;
    assert!(message(&r).contains("needs the reader role"), "{}", r.text);
    assert!(!r.text.contains("role-canary-77"));
    let r = graphql(s, Some(&reader), READ, json!({"name": "R"})).await;
    assert_eq!(r.json["data"]["secret_value"], "role-canary-77");
    let input = json!({"input": {"name": "R", "value": "overwritten"}});
    let r = graphql(s, Some(&reader), SET, input).await;
    assert!(message(&r).contains("needs the writer role"), "{}", r.text);
    let r = graphql(s, Some(&reader), DELETE, json!({"name": "R"})).await;
    assert!(message(&r).contains("needs the writer role"), "{}", r.text);
    assert_eq!(s.get(&s.admin, "R").await.json["version"], 1);
    let denied = s.audit_log().await.json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["via"] == "prefect" && e["outcome"] == "denied")
        .count();
    assert_eq!(denied, 3, "each refusal is on record");
}

pub(crate) async fn bad_prefect_input_is_an_error_and_stores_nothing(s: &Server) {
    let a = Some(s.admin.as_str());
    s.put(&s.admin, "KEEP", json!("kept")).await;
    let raw = |body: &'static str| {
        s.call_with(
            Method::POST,
            "/prefect/graphql",
            a,
            Some(body.as_bytes().to_vec()),
            &[],
        )
    };
    // not JSON, no query, variables that are not JSON: HTTP 400 with a message
    for (body, says) in [
        ("not json", "the body is not JSON"),
        (r#"{"variables": "null"}"#, "no query"),
        (
            r#"{"query": "query{secret_names}", "variables": "{oops"}"#,
            "variables is not JSON",
        ),
    ] {
        let r = raw(body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text);
        assert!(message(&r).contains(says), "{body}: {}", r.text);
    }
    // a malformed document, an unknown field, a wrong type, a missing variable, a name that
    // breaks the grammar, a value over the limit: GraphQL errors with a message
    let big = "x".repeat(70_000);
    for (query, variables, says) in [
        ("query{secret_names", Value::Null, "expected"),
        (
            "query{secret_list}",
            Value::Null,
            "Unknown field \"secret_list\"",
        ),
        (READ, json!({"name": 7}), "Invalid value for argument"),
        (READ, Value::Null, "Variable name is not defined"),
        (
            SET,
            json!({"input": {"name": "a/../b", "value": "v"}}),
            "invalid secret name",
        ),
        (
            SET,
            json!({"input": {"name": "KEEP", "value": "v", "extra": 1}}),
            "extra",
        ),
        (
            SET,
            json!({"input": {"name": "BIG", "value": big}}),
            "over the limit",
        ),
    ] {
        let r = graphql(s, a, query, variables).await;
        assert!(
            r.status == StatusCode::OK || r.status == StatusCode::BAD_REQUEST,
            "{}",
            r.text
        );
        let m = message(&r);
        assert!(m.contains(says), "{query}: wanted {says:?}: {}", r.text);
    }
    // nothing changed
    let names = graphql(s, a, "query{secret_names}", Value::Null).await;
    assert_eq!(names.json["data"]["secret_names"], json!(["KEEP"]));
    assert_eq!(s.get(&s.admin, "KEEP").await.json["version"], 1);
}
