//! Every face's request bodies under generated input, through the router: REST, Prefect's
//! GraphQL and Vault's KV v2. Whatever arrives, the answer is a 2xx or a 4xx with the face's own
//! error shape — never a 5xx, never a panic. `PROPTEST_CASES` runs more (a long run); CI runs
//! the default below.

use axum::http::{Method, StatusCode};
use proptest::prelude::*;

use crate::sqlite_server;

/// Bodies: JSON of any shape with the fields each route reads, broken JSON, and bytes.
fn bodies() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        "\\PC{0,24}".prop_map(serde_json::Value::String),
    ];
    let json = leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("value".to_owned()),
                        Just("cas".to_owned()),
                        Just("names".to_owned()),
                        Just("tasks".to_owned()),
                        Just("data".to_owned()),
                        Just("options".to_owned()),
                        Just("versions".to_owned()),
                        Just("max_versions".to_owned()),
                        Just("cas_required".to_owned()),
                        Just("delete_version_after".to_owned()),
                        Just("custom_metadata".to_owned()),
                        Just("query".to_owned()),
                        Just("variables".to_owned()),
                        "[a-z_]{1,8}",
                    ],
                    inner,
                ),
                0..6
            )
            .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
        ]
    });
    prop_oneof![
        4 => json.prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => "\\PC{0,64}".prop_map(String::into_bytes),
        1 => Just(br#"{"query": "query($name: String!) { secret_value(name: $name) }", "variables": "{\"name\": 1}"}"#.to_vec()),
        1 => Just(br#"{"query": "{ secret_names }"}"#.to_vec()),
    ]
}

/// The routes that read a body: (method, path, content type).
const ROUTES: [(&str, &str, &str); 13] = [
    (
        "PUT",
        "/api/v1/teams/default/secrets/fuzz/x",
        "application/json",
    ),
    (
        "POST",
        "/api/v1/teams/default/batch-read",
        "application/json",
    ),
    ("POST", "/api/v1/teams/default/keys", "application/json"),
    (
        "POST",
        "/api/v1/teams/default/destroy-versions/fuzz/x",
        "application/json",
    ),
    (
        "POST",
        "/api/v1/teams/default/undelete-versions/fuzz/x",
        "application/json",
    ),
    ("POST", "/prefect/graphql", "application/json"),
    ("POST", "/v1/secret/data/fuzz/x", "application/json"),
    (
        "PATCH",
        "/v1/secret/data/fuzz/x",
        "application/merge-patch+json",
    ),
    ("POST", "/v1/secret/metadata/fuzz/x", "application/json"),
    (
        "PATCH",
        "/v1/secret/metadata/fuzz/x",
        "application/merge-patch+json",
    ),
    ("POST", "/v1/secret/delete/fuzz/x", "application/json"),
    ("POST", "/v1/secret/destroy/fuzz/x", "application/json"),
    ("POST", "/v1/secret/config", "application/json"),
];

#[test]
fn no_body_makes_any_face_fail_or_panic() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s = rt.block_on(sqlite_server(sigil_server::Limits::default()));
    rt.block_on(s.put(&s.admin, "fuzz/x", serde_json::json!({"a": 1})));
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(48);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(cases));
    runner
        .run(&(0..ROUTES.len(), bodies()), |(route, body)| {
            let (method, path, kind) = ROUTES[route];
            let headers = [("content-type", kind), ("x-vault-token", s.admin.as_str())];
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let r = rt.block_on(s.call_with(
                method,
                path,
                Some(&s.admin),
                Some(body.clone()),
                &headers,
            ));
            prop_assert!(
                r.status.is_success() || r.status.is_client_error(),
                "{path} answered {} to {:?}: {}",
                r.status,
                String::from_utf8_lossy(&body),
                r.text
            );
            if r.status.is_client_error() && path.starts_with("/v1/") {
                prop_assert!(r.json["errors"].is_array(), "{path}: {}", r.text);
            }
            if r.status.is_client_error() && path.starts_with("/api/") {
                prop_assert!(r.json["error"]["message"].is_string(), "{path}: {}", r.text);
            }
            Ok(())
        })
        .unwrap();
    // still serving, and the secret the bodies aimed at reads as a value or not at all
    let r = rt.block_on(s.call(Method::GET, "/readyz", None, None));
    assert_eq!(r.status, StatusCode::OK);
}
