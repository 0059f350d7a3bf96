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
            s.send(Method::GET, path, bad).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // the right id with a wrong secret
    let id = s.admin.split('_').nth(1).unwrap();
    let forged = format!("sgl_{id}_{}", "A".repeat(43));
    assert_eq!(
        s.send(Method::GET, path, &forged).await.status,
        StatusCode::UNAUTHORIZED
    );
}

// The limit was checked before the key: 20 requests without a key from one address locked every
// valid key out of that address (behind a proxy, every client) for a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_throttled_and_a_valid_key_never_is() {
    let limits = sigil_server::Limits {
        auth_failures_allowed: 5,
        ..Default::default()
    };
    let s = sqlite_server(limits).await;
    for _ in 0..5 {
        assert_eq!(
            s.call(Method::GET, "/api/v1/whoami", None, None)
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
    }
    // the address is over the limit: its next failure gets 429 …
    let r = s
        .call(Method::GET, "/api/v1/whoami", Some("bad"), None)
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(r.json["error"]["code"], "rate_limited");
    // … and a valid key from the same address is served all the same
    let r = s.send(Method::GET, "/api/v1/whoami", &s.admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // wrong secrets for one key id are counted for that id, from any address
    let id = s.admin.split('_').nth(1).unwrap();
    let forged = format!("sgl_{id}_{}", "B".repeat(43));
    let mut elsewhere = s.clone();
    for i in 0..6u8 {
        elsewhere.client = std::net::SocketAddr::from(([192, 0, 2, i + 1], 5000));
        let r = elsewhere.send(Method::GET, "/api/v1/whoami", &forged).await;
        let want = if i < 5 {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(r.status, want, "attempt {i}: {}", r.text);
    }
    // the key's holder still gets in
    elsewhere.client = std::net::SocketAddr::from(([192, 0, 2, 99], 5000));
    let r = elsewhere
        .send(Method::GET, "/api/v1/whoami", &s.admin)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

// `Authorization: bearer …` (lower case) was refused and counted as a failed login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_scheme_is_case_insensitive() {
    let s = sqlite_server(sigil_server::Limits::default()).await;
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let r = s
            .call_with(
                Method::GET,
                "/api/v1/whoami",
                None,
                None,
                &[("authorization", &format!("{scheme} {}", s.admin))],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{scheme}: {}", r.text);
    }
}

// Behind a TLS proxy every client shared the proxy's address; X-Forwarded-For is believed from
// trusted proxies only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_counts_only_from_trusted_proxies() {
    let limits = sigil_server::Limits {
        auth_failures_allowed: 2,
        trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
        ..Default::default()
    };
    let s = sqlite_server(limits).await; // its peer address is in 10.0.0.0/8
    let fail = |who: &'static str| {
        let s = s.clone();
        async move {
            s.call_with(
                Method::GET,
                "/api/v1/whoami",
                Some("bad"),
                None,
                &[("x-forwarded-for", who)],
            )
            .await
            .status
        }
    };
    for _ in 0..2 {
        assert_eq!(fail("198.51.100.1").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(fail("198.51.100.1").await, StatusCode::TOO_MANY_REQUESTS);
    // another client behind the same proxy is another address
    assert_eq!(fail("198.51.100.2").await, StatusCode::UNAUTHORIZED);
    // and the audit log names the forwarded client
    let r = s
        .call_with(
            Method::GET,
            "/api/v1/teams/default/secrets/nothing",
            Some(&s.admin),
            None,
            &[("x-forwarded-for", "198.51.100.3")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let log = s.audit_log().await;
    let last = log.json["entries"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["client"], "198.51.100.3", "{last}");
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

/// What no stored byte may hold: the canary in each of its forms, and the master key as its
/// base64 text and as its 32 bytes (raw in a SQLite file, hex in PostgreSQL's text of a bytea).
fn forbidden(s: &Server) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = sigil_test_support::leaked_forms(CANARY)
        .into_iter()
        .map(|f| (format!("the canary as {f}"), f.into_bytes()))
        .collect();
    let key = sigil_test_support::base64_decode(&s.master).expect("the master key is base64");
    assert_eq!(key.len(), 32);
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    out.push(("the master key's text".into(), s.master.as_bytes().to_vec()));
    out.push(("the master key's bytes".into(), key));
    out.push(("the master key's bytes as hex".into(), hex.into_bytes()));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neither_the_canary_nor_the_master_key_is_in_the_sqlite_files() {
    let s = sqlite_server(sigil_server::Limits::default()).await;
    plant(&s).await;
    let forbidden = forbidden(&s);
    let mut checked = 0;
    for entry in std::fs::read_dir(s.dir.path()).unwrap() {
        let p = entry.unwrap().path();
        let bytes = std::fs::read(&p).unwrap();
        checked += 1;
        for (what, needle) in &forbidden {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_slice()),
                "{} holds {what}",
                p.display()
            );
        }
    }
    assert!(checked >= 2, "the database and its WAL were read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set SIGIL_TEST_POSTGRES_URL and pass --include-ignored"]
async fn neither_the_canary_nor_the_master_key_is_in_a_postgres_dump() {
    let s = crate::postgres_server(sigil_server::Limits::default()).await;
    plant(&s).await;
    let forbidden = forbidden(&s);
    // every row of every table of the test's schema, as text (a bytea shows as hex: the hex forms
    // are searched too)
    let base = std::env::var("SIGIL_TEST_POSTGRES_URL").unwrap();
    let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let schemas = client
        .query("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'sigil_srv_test_%'", &[])
        .await
        .unwrap();
    let mut rows_seen = 0;
    for schema in schemas.iter().map(|r| r.get::<_, String>(0)) {
        let tables = client
            .query(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
                &[&schema],
            )
            .await
            .unwrap();
        for table in tables.iter().map(|r| r.get::<_, String>(0)) {
            let rows = client
                .query(&format!("SELECT t::text FROM {schema}.{table} t"), &[])
                .await
                .unwrap_or_default();
            for r in rows {
                let text: String = r.get(0);
                rows_seen += 1;
                for (what, needle) in &forbidden {
                    assert!(
                        !text
                            .as_bytes()
                            .windows(needle.len())
                            .any(|w| w == needle.as_slice()),
                        "{schema}.{table} holds {what}"
                    );
                }
            }
        }
    }
    assert!(rows_seen > 5);
}

/// A replica whose master key was rotated away by another is not ready: `/readyz` never says
/// ready with a master key that cannot open the current data keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_not_ready_when_the_master_key_no_longer_opens_the_data_keys() {
    use sigil_server::crypto::MasterKey;
    let s = sqlite_server(sigil_server::Limits::default()).await;
    s.put(&s.admin, "kept", json!("v")).await;
    let r = s.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // another process rotates the database's data keys to a key this server does not have
    let old = MasterKey::from_base64(&s.master, "test").unwrap();
    let new = MasterKey::generate().unwrap();
    let n = sigil_server::rotate_master_key(&*s.store, &old, &new)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let r = s.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert!(
        r.text
            .contains(&format!("wrapped by master key {}", new.id())),
        "{}",
        r.text
    );
}
