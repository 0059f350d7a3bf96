//! Server tests through `app(state).oneshot(request)`, on SQLite and on PostgreSQL.

mod api;
mod bodies;
mod openapi;
mod prefect;
mod security;
mod vault;
mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use sigil_server::crypto::MasterKey;
use sigil_server::{AppState, Limits};
use tower::ServiceExt;

/// A server under test; clones share its state, store and directory.
#[derive(Clone)]
pub(crate) struct Server {
    pub(crate) state: Arc<AppState>,
    /// The master key, as base64 (replicas share it).
    pub(crate) master: Arc<zeroize::Zeroizing<String>>,
    pub(crate) store: Arc<dyn sigil_store::Store>,
    pub(crate) admin: String,
    pub(crate) dir: Arc<tempfile::TempDir>,
    pub(crate) client: SocketAddr,
}

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) json: Value,
    pub(crate) text: String,
    pub(crate) headers: axum::http::HeaderMap,
}

impl Server {
    /// A batch read of team `default`: `names` is a JSON array.
    pub(crate) async fn batch_read(&self, key: &str, names: Value) -> Reply {
        let path = "/api/v1/teams/default/batch-read";
        self.call(
            Method::POST,
            path,
            Some(key),
            Some(serde_json::json!({ "names": names })),
        )
        .await
    }

    /// A request without a body, with `key`.
    pub(crate) async fn send(&self, method: Method, path: &str, key: &str) -> Reply {
        self.call(method, path, Some(key), None).await
    }

    /// A request written as its request line, `"GET secrets/x?version=1"`, with `key` and no
    /// body: a path without a leading `/` is under team `default`'s API.
    pub(crate) async fn req(&self, key: &str, line: &str) -> Reply {
        let (method, path) = request_line(line);
        self.call(method, &path, Some(key), None).await
    }

    /// As [`Server::req`], with a JSON body.
    pub(crate) async fn req_json(&self, key: &str, line: &str, body: Value) -> Reply {
        let (method, path) = request_line(line);
        self.call(method, &path, Some(key), Some(body)).await
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.call_with(
            method,
            path,
            key,
            body.map(|b| b.to_string().into_bytes()),
            &[],
        )
        .await
    }

    pub(crate) async fn call_with(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        for (h, v) in headers {
            req = req.header(*h, *v);
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req.body(body.map_or_else(Body::empty, Body::from)).unwrap();
        let app = sigil_server::app(self.state.clone()).layer(MockConnectInfo(self.client));
        let resp = app.oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Reply {
            status,
            json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text,
            headers,
        }
    }

    /// Creates a key of `role` in team `default` and returns it.
    pub(crate) async fn key(&self, role: &str) -> String {
        let r = self
            .call(
                Method::POST,
                "/api/v1/teams/default/keys",
                Some(&self.admin),
                Some(serde_json::json!({"role": role, "name": role})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.json["key"].as_str().unwrap().to_owned()
    }

    /// A second server on the same store and client address, with another master key: it can
    /// authenticate keys (they are stored as hashes) but cannot unwrap the data keys.
    pub(crate) fn with_other_master_key(&self) -> Server {
        Server {
            master: self.master.clone(),
            state: AppState::new(
                self.store.clone(),
                MasterKey::generate().unwrap(),
                Limits::default(),
            ),
            store: self.store.clone(),
            admin: self.admin.clone(),
            dir: self.dir.clone(),
            client: self.client,
        }
    }

    /// Another replica: its own state (caches, limits) over the same database and master key.
    pub(crate) fn replica(&self, limits: Limits) -> Server {
        Server {
            state: AppState::new(
                self.store.clone(),
                MasterKey::from_base64(&self.master, "test").unwrap(),
                limits,
            ),
            ..self.clone()
        }
    }

    /// Team `default`'s audit log (its first 1000 records, oldest first), read by the admin.
    pub(crate) async fn audit_log(&self) -> Reply {
        let r = self
            .send(
                Method::GET,
                "/api/v1/teams/default/audit?limit=1000",
                &self.admin,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r
    }

    /// The REST API's history of `name`: (version, state) newest first, and the settings.
    pub(crate) async fn rest_history(&self, name: &str) -> (Vec<(i64, String)>, Value) {
        let r = self
            .req(
                &self.admin,
                &format!("GET /api/v1/teams/default/history/{name}"),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let versions = r.json["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    v["version"].as_i64().unwrap(),
                    v["state"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        (versions, r.json["settings"].clone())
    }

    pub(crate) async fn put(&self, key: &str, name: &str, value: Value) -> Reply {
        self.call(
            Method::PUT,
            &format!("/api/v1/teams/default/secrets/{name}"),
            Some(key),
            Some(serde_json::json!({"value": value})),
        )
        .await
    }

    pub(crate) async fn get(&self, key: &str, name: &str) -> Reply {
        self.send(
            Method::GET,
            &format!("/api/v1/teams/default/secrets/{name}"),
            key,
        )
        .await
    }
}

/// `"GET secrets/x"` as its method and path (see [`Server::req`]).
pub(crate) fn request_line(line: &str) -> (Method, String) {
    let (method, path) = line.split_once(' ').expect("METHOD path");
    let method = Method::from_bytes(method.as_bytes()).expect("a method");
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/api/v1/teams/default/{path}")
    };
    (method, path)
}

pub(crate) async fn start(
    store: Arc<dyn sigil_store::Store>,
    dir: tempfile::TempDir,
    limits: Limits,
) -> Server {
    let master = MasterKey::generate().unwrap();
    let master_b64 = Arc::new(master.to_base64());
    let state = AppState::new(store.clone(), master, limits);
    let admin = sigil_server::bootstrap(&state, None)
        .await
        .unwrap()
        .expect("an empty store is bootstrapped");
    static N: AtomicU32 = AtomicU32::new(1);
    let n = N.fetch_add(1, Ordering::SeqCst);
    Server {
        state,
        master: master_b64,
        store,
        admin: admin.to_string(),
        dir: Arc::new(dir),
        client: SocketAddr::from(([10, 0, (n / 250) as u8, (n % 250) as u8], 40000)),
    }
}

pub(crate) async fn sqlite_server(limits: Limits) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store = sigil_store::open(dir.path().join("sigil.db").to_str().unwrap())
        .await
        .unwrap();
    start(store, dir, limits).await
}

/// A server on a fresh schema of the test database (`SIGIL_TEST_POSTGRES_URL`).
pub(crate) async fn postgres_server(limits: Limits) -> Server {
    let base = sigil_store::test_support::postgres_url("PostgreSQL server test");
    let url = sigil_store::test_support::fresh_schema(&base, "sigil_srv_test").await;
    let store = sigil_store::open(&url).await.unwrap();
    start(store, tempfile::tempdir().unwrap(), limits).await
}

/// Defines each test on SQLite and on PostgreSQL: `module: test, test; module: test`.
macro_rules! both {
    ($($module:ident: $($name:ident),* $(,)?);* $(;)?) => {
        mod on_sqlite {
            $($(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let s = crate::sqlite_server(sigil_server::Limits::default()).await;
                    crate::$module::$name(&s).await;
                }
            )*)*
        }
        mod on_postgres {
            $($(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs PostgreSQL: set SIGIL_TEST_POSTGRES_URL and pass --include-ignored"]
                async fn $name() {
                    let s = crate::postgres_server(sigil_server::Limits::default()).await;
                    crate::$module::$name(&s).await;
                }
            )*)*
        }
    };
}

both!(api:
    secrets_versions_history_delete_restore,
    versions_are_deleted_undeleted_and_destroyed,
    check_and_set,
    listing_and_batch_read,
    role_matrix,
    team_isolation,
    keys_are_revoked_and_refused,
    a_key_revoked_through_one_replica_is_refused_by_another,
    revocations_that_lock_people_out_are_refused,
    two_admins_revoking_each_other_leave_one,
    history_is_paged,
    audit_records_reads_writes_and_refusals,
    an_unopenable_value_is_an_audited_error,
    bad_input_is_refused_and_changes_nothing,
    health_ready_metrics,
;
vault:
    concurrent_metadata_patches_all_land,
;
prefect:
    prefects_documents_read_write_list_and_delete,
    prefect_keys_and_roles_are_the_rest_apis,
    bad_prefect_input_is_an_error_and_stores_nothing,
);
