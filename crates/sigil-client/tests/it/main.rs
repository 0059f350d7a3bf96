//! The client against a real server (SQLite, in this process, on loopback): what each refusal
//! becomes, attribution, paging, and the server source's cache and its setting.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use sigil_client::{Client, ClientError, ServerSource};
use sigil_core::config::{Environment, Paths, Settings};
use sigil_core::wire::{CreateKey, Role};
use sigil_core::{ConfigFile, SecretName, Source};

/// A server on an ephemeral loopback port, serving until the test process ends.
struct TestServer {
    url: String,
    admin: String,
    _dir: tempfile::TempDir,
}

fn server() -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sigil.db");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let store = sigil_store::open(db.to_str().unwrap()).await.unwrap();
            let master = sigil_server::crypto::MasterKey::generate().unwrap();
            let state = sigil_server::AppState::new(store, master, sigil_server::Limits::default());
            let admin = sigil_server::bootstrap(&state, None)
                .await
                .unwrap()
                .unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tx.send((format!("http://{addr}"), admin.to_string()))
                .unwrap();
            let app = sigil_server::app(state).into_make_service_with_connect_info::<SocketAddr>();
            axum::serve(listener, app).await.unwrap();
        });
    });
    let (url, admin) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server starts");
    TestServer {
        url,
        admin,
        _dir: dir,
    }
}

impl TestServer {
    fn client(&self, key: &str) -> Client {
        Client::new(&self.url, "default", key).unwrap()
    }

    fn key(&self, role: Role) -> String {
        let req = CreateKey {
            role,
            name: "client test".into(),
        };
        self.client(&self.admin).create_key(&req).unwrap().key
    }
}

#[test]
fn each_refusal_is_its_own_error_and_never_holds_the_value() {
    let srv = server();
    let admin = srv.client(&srv.admin);
    admin
        .put_secret("db", &json!("client-canary-3c1d"), None)
        .unwrap();
    // a value, a version, a missing secret
    let read = admin.get_secret("db", None).unwrap().unwrap();
    assert_eq!((read.value, read.version), (json!("client-canary-3c1d"), 1));
    assert_eq!(admin.get_secret("nope", None).unwrap(), None);
    assert_eq!(admin.get_secret("db", Some(9)).unwrap(), None);
    // 409: check-and-set
    let e = admin.put_secret("db", &json!("x"), Some(0)).unwrap_err();
    assert!(
        matches!(&e, ClientError::Conflict { message } if message.contains("version 1")),
        "{e:?}"
    );
    // 404 on a write-side call
    let e = admin.delete_secret("nope").unwrap_err();
    assert!(matches!(e, ClientError::NotFound { .. }), "{e:?}");
    // 403: a viewer reads no value
    let viewer = srv.client(&srv.key(Role::Viewer));
    let e = viewer.get_secret("db", None).unwrap_err();
    assert!(matches!(e, ClientError::Forbidden { .. }), "{e:?}");
    // 401: an unknown key
    let stranger = srv.client("sgl_unknownkey01_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let e = stranger.get_secret("db", None).unwrap_err();
    assert!(matches!(e, ClientError::Unauthorized { .. }), "{e:?}");
    // 413: over the server's limit, with the server's code
    let e = admin
        .put_secret("big", &json!("x".repeat(70_000)), None)
        .unwrap_err();
    assert!(
        matches!(&e, ClientError::Status { status: 413, code, .. } if code == "value_too_large"),
        "{e:?}"
    );
    // nothing that went wrong carries the value
    for e in [
        viewer.get_secret("db", None).unwrap_err(),
        admin
            .put_secret("db", &json!("client-canary-3c1d"), Some(0))
            .unwrap_err(),
    ] {
        assert!(!format!("{e} {e:?}").contains("client-canary"), "{e:?}");
    }
}

#[test]
fn an_unreachable_server_is_said_so() {
    // port 1 on loopback: nothing listens
    let c = Client::new("http://127.0.0.1:1", "default", "sgl_x").unwrap();
    let e = c.get_secret("db", None).unwrap_err();
    assert!(
        matches!(&e, ClientError::Unreachable { url, .. } if url == "http://127.0.0.1:1"),
        "{e:?}"
    );
    assert!(Client::new("not a url", "default", "k").is_err());
}

#[test]
fn attribution_reaches_the_audit_log_and_paths_are_encoded() {
    let srv = server();
    let admin = srv.client(&srv.admin);
    admin.put_secret("etl/db", &json!("v"), None).unwrap();
    let flow = srv
        .client(&srv.admin)
        .with_attribution(Some("run-17"), Some("load orders"));
    flow.get_secret("etl/db", None).unwrap().unwrap();
    let log = admin.audit(None, None, 1000).unwrap().entries;
    let read = log
        .iter()
        .find(|e| e.action == "secret.read")
        .expect("the read is audited");
    assert_eq!(
        (read.flow_run.as_deref(), read.task.as_deref()),
        (Some("run-17"), Some("load orders"))
    );
    // an id that looks like a path reaches the key endpoint, not another route
    let e = admin.revoke_key("../x").unwrap_err();
    assert!(!e.to_string().contains("no such endpoint"), "{e}");
}

#[test]
fn listing_pages_through_everything() {
    let srv = server();
    let admin = srv.client(&srv.admin);
    for i in 0..230 {
        admin
            .put_secret(&format!("p/s{i:03}"), &json!(i), None)
            .unwrap();
    }
    let all = admin.list_all_secrets("p/").unwrap();
    let names: Vec<String> = all.into_iter().map(|s| s.name).collect();
    assert_eq!(
        names,
        (0..230).map(|i| format!("p/s{i:03}")).collect::<Vec<_>>()
    );
}

/// The server source answers from memory for `server.cache_ttl` (read from the settings) and
/// asks the server again once it has passed; a miss is never cached.
#[test]
fn the_source_caches_for_the_ttl_its_setting_gives() {
    let srv = server();
    let admin = srv.client(&srv.admin);
    admin.put_secret("cached", &json!("v1"), None).unwrap();
    let reads = || {
        admin
            .audit(None, None, 1000)
            .unwrap()
            .entries
            .iter()
            .filter(|e| e.action == "secret.read" && e.name.as_deref() == Some("cached"))
            .count()
    };
    let home = tempfile::tempdir().unwrap();
    let env = Environment::from_pairs([
        ("HOME", home.path().to_str().unwrap()),
        ("SIGIL__SERVER__URL", srv.url.as_str()),
        ("SIGIL__SERVER__CACHE_TTL", "400ms"),
        ("SIGIL_API_KEY", srv.admin.as_str()),
    ]);
    let paths = Paths::from_env(&env).unwrap();
    let settings = Settings::resolve(&env, &paths, &ConfigFile::default()).unwrap();
    assert_eq!(settings.server.cache_ttl, Duration::from_millis(400));
    let source = ServerSource::from_settings_env(&settings, &env).unwrap();
    let name: SecretName = "cached".parse().unwrap();
    let value = || {
        source
            .fetch(&name)
            .unwrap()
            .unwrap()
            .expose_str()
            .map(str::to_owned)
    };
    assert_eq!(value().as_deref(), Some("v1"));
    admin.put_secret("cached", &json!("v2"), None).unwrap();
    assert_eq!(value().as_deref(), Some("v1"), "answered from memory");
    assert_eq!(reads(), 1);
    std::thread::sleep(Duration::from_millis(450));
    assert_eq!(
        value().as_deref(),
        Some("v2"),
        "asked again once the TTL passed"
    );
    assert_eq!(reads(), 2);
    let absent: SecretName = "absent".parse().unwrap();
    assert!(source.fetch(&absent).unwrap().is_none());
    admin.put_secret("absent", &json!("now"), None).unwrap();
    assert!(
        source.fetch(&absent).unwrap().is_some(),
        "a miss was cached"
    );
}
