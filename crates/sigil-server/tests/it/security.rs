//! Authentication failures, rate limiting, and the canary: no value in the database files, the
//! audit log or the logs.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::{Server, sqlite_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_malformed_and_unknown_keys_are_401() {
    let s = sqlite_server(sigil_server::Limits::default()).await;
    let path = "/api/v1/teams/default/secrets/x";
    let r = s.call(Method::GET, path, None, None).await;
    assert_eq!(
        (r.status, r.json["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    for bad in [
        "nonsense",
        "sgl_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    ] {
        assert_eq!(
            s.call(Method::GET, path, Some(bad), None).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // the right id with a wrong secret
    let id = s.admin.split('_').nth(1).unwrap();
    let forged = format!("sgl_{id}_{}", "A".repeat(43));
    assert_eq!(
        s.call(Method::GET, path, Some(&forged), None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_from_one_address_get_429() {
    let limits = sigil_server::Limits {
        auth_failures_allowed: 5,
        ..Default::default()
    };
    let s = sqlite_server(limits).await;
    for _ in 0..5 {
        assert_eq!(
            s.call(Method::GET, "/api/v1/whoami", Some("bad"), None)
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
    }
    let r = s
        .call(Method::GET, "/api/v1/whoami", Some(&s.admin), None)
        .await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even a good key waits: {}",
        r.text
    );
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(r.json["error"]["code"], "rate_limited");
}

const CANARY: &str = "canary-server-4f9e1c77";

async fn plant(s: &Server) {
    let r = s.put(&s.admin, "canary", json!(CANARY)).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = s
        .put(&s.admin, "canary-json", json!({"password": CANARY}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(s.get(&s.admin, "canary").await.json["value"], CANARY);
    let r = s
        .call(
            Method::PUT,
            "/api/v1/teams/default/secrets/canary",
            Some(&s.admin),
            Some(json!({"value": CANARY, "cas": 0})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(!r.text.contains(CANARY));
    let audit = s.audit_log().await;
    assert!(!audit.text.contains(CANARY), "audit log holds the canary");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canary_is_not_in_the_sqlite_files() {
    let s = sqlite_server(sigil_server::Limits::default()).await;
    plant(&s).await;
    let mut checked = 0;
    for entry in std::fs::read_dir(s.dir.path()).unwrap() {
        let p = entry.unwrap().path();
        let bytes = std::fs::read(&p).unwrap();
        checked += 1;
        assert!(
            !bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()),
            "{} holds the canary in plaintext",
            p.display()
        );
    }
    assert!(checked >= 2, "the database and its WAL were read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canary_is_not_in_a_postgres_dump() {
    let Some(s) = crate::postgres_server(sigil_server::Limits::default()).await else {
        return;
    };
    plant(&s).await;
    // every row of every table of the test's schema, as text (bytea shows as hex; the plaintext
    // would show as its hex too, so both forms are searched)
    let base = std::env::var("SIGIL_TEST_POSTGRES_URL").unwrap();
    let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let schemas = client
        .query("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'sigil_srv_test_%'", &[])
        .await
        .unwrap();
    let hex: String = CANARY.bytes().map(|b| format!("{b:02x}")).collect();
    let mut rows_seen = 0;
    for schema in schemas.iter().map(|r| r.get::<_, String>(0)) {
        for table in [
            "teams",
            "data_keys",
            "secrets",
            "secret_versions",
            "api_keys",
            "audit",
        ] {
            let rows = client
                .query(&format!("SELECT t::text FROM {schema}.{table} t"), &[])
                .await
                .unwrap_or_default();
            for r in rows {
                let text: String = r.get(0);
                rows_seen += 1;
                assert!(
                    !text.contains(CANARY) && !text.contains(&hex),
                    "{schema}.{table} holds the canary"
                );
            }
        }
    }
    assert!(rows_seen > 5);
}
