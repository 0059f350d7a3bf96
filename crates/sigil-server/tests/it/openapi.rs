//! The OpenAPI document describes every route the router serves, and nothing else.

use axum::http::{Method, StatusCode};

use crate::sqlite_server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_matches_the_routes() {
    let s = sqlite_server(sigil_server::Limits::default()).await;
    let r = s
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = r.json;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for schema in [
        "PutSecret",
        "SecretRead",
        "SecretWritten",
        "ErrorBody",
        "AuditPage",
        "CreatedKey",
        "Role",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "schema {schema} missing"
        );
    }
    let expected = [
        ("get", "/api/v1/whoami"),
        ("get", "/api/v1/teams"),
        ("post", "/api/v1/teams"),
        ("get", "/api/v1/teams/{team}/secrets"),
        ("get", "/api/v1/teams/{team}/secrets/{name}"),
        ("put", "/api/v1/teams/{team}/secrets/{name}"),
        ("delete", "/api/v1/teams/{team}/secrets/{name}"),
        ("get", "/api/v1/teams/{team}/history/{name}"),
        ("post", "/api/v1/teams/{team}/restore/{name}"),
        ("post", "/api/v1/teams/{team}/delete-versions/{name}"),
        ("post", "/api/v1/teams/{team}/undelete-versions/{name}"),
        ("post", "/api/v1/teams/{team}/destroy-versions/{name}"),
        ("post", "/api/v1/teams/{team}/batch-read"),
        ("get", "/api/v1/teams/{team}/keys"),
        ("post", "/api/v1/teams/{team}/keys"),
        ("delete", "/api/v1/teams/{team}/keys/{id}"),
        ("get", "/api/v1/teams/{team}/audit"),
    ];
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    documented.sort();
    // the common errors, declared once, are on every operation, each with the error body
    for (method, path) in &documented {
        let responses = &doc["paths"][path][method]["responses"];
        for status in ["400", "401", "403", "429", "503", "507"] {
            let schema = &responses[status]["content"]["application/json"]["schema"]["$ref"];
            assert_eq!(
                schema, "#/components/schemas/ErrorBody",
                "{method} {path} {status}: {responses}"
            );
        }
    }
    let mut want: Vec<(String, String)> = expected
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    want.sort();
    assert_eq!(documented, want);
    // and every documented operation is served (an unknown route answers "no such endpoint")
    for (method, path) in &want {
        let concrete = path
            .replace("{team}", "default")
            .replace("{name}", "some/name")
            .replace("{id}", "nosuchkeyid0");
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let body = matches!(m, Method::POST | Method::PUT).then(|| serde_json::json!({}));
        let r = s.call(m.clone(), &concrete, Some(&s.admin), body).await;
        assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_ne!(
            r.json["error"]["message"], "no such endpoint",
            "{method} {path}"
        );
    }
}
