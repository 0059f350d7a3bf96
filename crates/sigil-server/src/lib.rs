//! The Sigil server: team-scoped secrets encrypted at rest, API keys with roles, versions and
//! an audit log, over a REST API (`/api/v1`), on SQLite or PostgreSQL.
//!
//! [`app`] builds the axum router over an [`AppState`]; [`run`] opens the store, loads the
//! master key, bootstraps an empty database (team `default` and an administrator key), and
//! serves until SIGTERM or Ctrl-C, finishing requests in flight.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let config = sigil_server::ServerConfig::new("127.0.0.1:4300".parse()?, "sqlite:///tmp/sigil.db");
//! sigil_server::run(config).await
//! # }
//! ```

mod api;
mod auth;
mod conn;
pub mod crypto;
mod error;
pub mod keys;
mod master;
pub mod net;
pub mod openapi;
mod prefect;
mod retention;
mod service;
mod state;
mod vault;
mod web;

pub use master::{check_master_keys, load_master_key};

use sigil_store::{AuditAction, AuditOutcome};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post};
use zeroize::Zeroizing;

pub use auth::Caller;
pub use conn::default_max_connections;
pub use error::ApiError;
pub use service::{KeyId, ServerError, TeamName};
pub use state::{AppState, Limits, Metrics};

use crate::crypto::MasterKey;

/// The router of the whole server.
pub fn app(state: Arc<AppState>) -> Router {
    let body_limit = state.limits.max_body_bytes;
    Router::new()
        .route("/", get(web::home))
        .route("/ui/static/sigil.css", get(web::static_css))
        .route("/ui/static/sigil.js", get(web::static_js))
        .route("/ui/keys", get(web::keys_page).post(web::create_key))
        .route("/ui/keys/{id}/revoke", post(web::revoke_key))
        .route("/ui/audit", get(web::audit_page))
        .route("/ui/signin", post(web::signin))
        .route("/ui/signout", post(web::signout))
        .route("/ui/secrets", get(web::secrets).post(web::save))
        .route("/ui/secret/{*name}", get(web::detail))
        .route("/ui/delete/{*name}", post(web::delete))
        .route("/ui/restore/{*name}", post(web::restore))
        .route("/ui/{*rest}", get(web::not_found))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route(
            "/api/v1/openapi.json",
            get(|| async {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    openapi::document_json(),
                )
            }),
        )
        .route("/api/v1/whoami", get(api::whoami))
        .route("/api/v1/teams", get(api::list_teams).post(api::create_team))
        .route("/api/v1/teams/{team}/secrets", get(api::list_secrets))
        .route(
            "/api/v1/teams/{team}/secrets/{*name}",
            get(api::get_secret)
                .put(api::put_secret)
                .delete(api::delete_secret),
        )
        .route("/api/v1/teams/{team}/history/{*name}", get(api::history))
        .route(
            "/api/v1/teams/{team}/delete-versions/{*name}",
            post(api::delete_versions),
        )
        .route(
            "/api/v1/teams/{team}/undelete-versions/{*name}",
            post(api::undelete_versions),
        )
        .route(
            "/api/v1/teams/{team}/destroy-versions/{*name}",
            post(api::destroy_versions),
        )
        .route(
            "/api/v1/teams/{team}/restore/{*name}",
            post(api::restore_secret),
        )
        .route("/api/v1/teams/{team}/batch-read", post(api::batch_read))
        .route(
            "/api/v1/teams/{team}/keys",
            get(api::list_keys).post(api::create_key),
        )
        .route("/api/v1/teams/{team}/keys/{id}", delete(api::revoke_key))
        .route("/api/v1/teams/{team}/audit", get(api::audit_log))
        .route("/prefect/graphql", post(prefect::graphql))
        .route("/v1/{*path}", any(vault::dispatch))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this endpoint",
            )
        })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// Answers 503 past the request timeout, counts requests by route and status; no response is
/// cached anywhere.
async fn track(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    // the matched path is shared (an Arc): no allocation per request
    let route = req.extensions().get::<MatchedPath>().cloned();
    let limit = state.limits.request_timeout;
    let start = std::time::Instant::now();
    let mut resp = match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            Metrics::inc(&state.metrics.requests_timed_out, 1);
            tracing::warn!(route = ?route.as_ref().map(MatchedPath::as_str), "request timed out");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!("the request took longer than {} s", limit.as_secs_f32()),
            )
            .into_response()
        }
    };
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    state.metrics.count_request(
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        resp.status().as_u16(),
    );
    state.metrics.request_seconds.record(start.elapsed());
    resp
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready: the database answers, and this server's master keys open every data key in it (a
/// replica whose key was rotated away by another is not ready).
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    match state.store.all_data_keys().await {
        Ok(rows) => match rows.iter().find(|r| state.master_key(&r.master_key_id).is_none()) {
            None => "ready\n".into_response(),
            Some(r) => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "not ready: data key {} of team {} is wrapped by master key {}, which this server does not have\n",
                    r.version, r.team_id, r.master_key_id
                ),
            )
                .into_response(),
        },
        Err(e) => ApiError::unavailable(e).into_response(),
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], {
        let mut out = state.metrics.render();
        state.store.timings().render(&mut out);
        if let Some(c) = state.store.connections() {
            c.render(&mut out);
        }
        out
    })
        .into_response()
}

/// Where the master key comes from. `Debug` never shows the key.
#[derive(Clone)]
pub enum MasterKeySource {
    /// Base64 text (from `SIGIL_MASTER_KEY`).
    Env(Zeroizing<String>),
    /// A key file, created (0600) with a warning when absent.
    File(PathBuf),
}

impl std::fmt::Debug for MasterKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MasterKeySource::Env(_) => f.write_str("Env([REDACTED])"),
            MasterKeySource::File(p) => f.debug_tuple("File").field(p).finish(),
        }
    }
}

/// A database URL with its password replaced by `***` (`postgres://etl:***@db/sigil`).
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let hidden = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_owned()
            };
            format!("{scheme}://{hidden}@{host}{}", &rest[authority_end..])
        }
        None => url.to_owned(),
    }
}

/// What [`ServerConfig::on_bootstrap`] is called with: the server's URL and the new key.
pub type BootstrapHook = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// How to run the server. `Debug` never shows a key or a database password.
#[derive(Clone)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// `sqlite://PATH`, a path, or `postgres://…`.
    pub database: String,
    /// The master key.
    pub master_key: MasterKeySource,
    /// Master keys that may still wrap some data keys (during a rotation).
    pub previous_master_keys: Vec<MasterKeySource>,
    /// The bootstrap administrator key to use on an empty database (`SIGIL_BOOTSTRAP_ADMIN_KEY`).
    pub bootstrap_key: Option<Zeroizing<String>>,
    /// Called with the server's URL and the bootstrap key when this start bootstrapped an empty
    /// database (the CLI saves them for itself; the server knows nothing of the CLI's files).
    pub on_bootstrap: Option<BootstrapHook>,
    /// TLS: a PEM certificate chain and its PEM private key. Without them the server speaks
    /// plain HTTP (put it behind a TLS proxy, or on loopback only).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Limits.
    pub limits: Limits,
    /// Mark session cookies `Secure` without TLS here (a TLS-terminating proxy in front); with
    /// `tls` they always are.
    pub secure_cookies: bool,
    /// Connections open at once; past it a new connection is closed at once.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers.
    pub header_read_timeout: Duration,
    /// How long a connection may see no traffic either way before it is closed.
    pub idle_timeout: Duration,
    /// How long a graceful shutdown waits for requests in flight before it closes them.
    pub shutdown_timeout: Duration,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field("database", &redact_url(&self.database))
            .field("master_key", &self.master_key)
            .field("previous_master_keys", &self.previous_master_keys)
            .field(
                "bootstrap_key",
                &self.bootstrap_key.as_ref().map(|_| "[REDACTED]"),
            )
            .field("on_bootstrap", &self.on_bootstrap.is_some())
            .field("tls", &self.tls)
            .field("limits", &self.limits)
            .field("secure_cookies", &self.secure_cookies)
            .field("max_connections", &self.max_connections)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish()
    }
}

impl ServerConfig {
    /// Defaults: a master key file next to a SQLite database, no credentials file.
    pub fn new(listen: SocketAddr, database: impl Into<String>) -> Self {
        let database = database.into();
        let key_file = PathBuf::from(database.strip_prefix("sqlite://").unwrap_or("."))
            .parent()
            .map_or_else(|| PathBuf::from("master.key"), |d| d.join("master.key"));
        ServerConfig {
            listen,
            database,
            master_key: MasterKeySource::File(key_file),
            previous_master_keys: Vec::new(),
            bootstrap_key: None,
            on_bootstrap: None,
            tls: None,
            limits: Limits::default(),
            secure_cookies: false,
            max_connections: default_max_connections(),
            header_read_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Creates team `default` and the bootstrap administrator key when the database is empty.
/// Returns the key when this call created it.
///
/// # Errors
/// The store fails, or `SIGIL_BOOTSTRAP_ADMIN_KEY` is not a valid key.
pub async fn bootstrap(
    state: &AppState,
    chosen: Option<Zeroizing<String>>,
) -> Result<Option<Zeroizing<String>>, ServerError> {
    if !state.store.is_empty().await? {
        return Ok(None);
    }
    let template = sigil_store::AuditRow {
        at: service::now_ms(),
        key_id: "-".into(),
        role: None,
        outcome: AuditOutcome::Ok,
        client: "local".into(),
        ..Default::default()
    };
    let default = TeamName::parse("default")?;
    match service::teams::create_with_admin(state, &default, "bootstrap", true, template, chosen)
        .await
    {
        Ok((_, key)) => Ok(Some(Zeroizing::new(key.key))),
        // another replica bootstrapped the same empty database first
        Err(ServerError::Conflict(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replaces the bootstrap administrator key, offline (on the database, with no server running
/// on a SQLite file): a new one is made and every other live bootstrap key of team `default`
/// is revoked, both audited. Returns the new key, to be shown once.
///
/// # Errors
/// No team `default` (the database was never bootstrapped); the store fails.
pub async fn reset_bootstrap_key(
    store: &dyn sigil_store::Store,
) -> Result<Zeroizing<String>, BoxError> {
    let team = store.team("default").await?.ok_or(
        "no team \"default\": this database was never bootstrapped (start the server once)",
    )?;
    let record = |action: AuditAction, name: &str| sigil_store::AuditRow {
        at: service::now_ms(),
        key_id: "-".into(),
        action,
        team: team.name.clone(),
        name: Some(name.into()),
        outcome: AuditOutcome::Ok,
        client: "local (sigil server reset-bootstrap-key)".into(),
        ..Default::default()
    };
    // the new key first: the store never revokes a team's last admin key, and the old bootstrap
    // key may be the only one
    let (row, key) = service::keys::new_key(
        team.id,
        sigil_core::wire::Role::Admin,
        "bootstrap administrator",
        "reset-bootstrap-key",
        true,
    )
    .map_err(|e| e.to_string())?;
    let new_id = row.id.clone();
    let audit = record(AuditAction::KeyCreate, &row.id);
    store.create_key(row, audit).await?;
    for old in store.list_keys(team.id).await? {
        if old.bootstrap && old.revoked_at.is_none() && old.id != new_id {
            let audit = record(AuditAction::KeyRevoke, &old.id);
            if !store
                .revoke_key(team.id, &old.id, service::now_ms(), audit)
                .await?
            {
                return Err(
                    format!("the old bootstrap key {} could not be revoked", old.id).into(),
                );
            }
        }
    }
    Ok(key)
}

/// Re-wraps every data key with `new`: afterwards only `new` is needed. Keys already wrapped by
/// `new` are left alone, so an interrupted rotation can be run again. Values are not touched.
/// Returns how many data keys were re-wrapped.
///
/// # Errors
/// A data key wrapped by a master key that is neither `old` nor `new`; the store fails.
pub async fn rotate_master_key(
    store: &dyn sigil_store::Store,
    old: &MasterKey,
    new: &MasterKey,
) -> Result<usize, BoxError> {
    let teams: std::collections::HashMap<i64, String> = store
        .list_teams()
        .await?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect();
    let mut rewrapped = Vec::new();
    for mut row in store.all_data_keys().await? {
        if row.master_key_id == new.id() {
            continue;
        }
        if row.master_key_id != old.id() {
            return Err(format!(
                "data key {} of team {} is wrapped by master key {}, which is neither the old key ({}) nor the new one ({})",
                row.version,
                row.team_id,
                row.master_key_id,
                old.id(),
                new.id()
            )
            .into());
        }
        let team = teams
            .get(&row.team_id)
            .ok_or_else(|| format!("data key of unknown team {}", row.team_id))?;
        let dk = old.unwrap(&row.wrapped, team, row.version as u32)?;
        row.wrapped = new.wrap(&dk, team)?;
        row.master_key_id = new.id().to_owned();
        rewrapped.push(row);
    }
    let n = rewrapped.len();
    store.rewrap_data_keys(rewrapped).await?;
    Ok(n)
}

/// A rustls server configuration (TLS 1.2 and 1.3, ring) from PEM files.
///
/// # Errors
/// Files that cannot be read or hold no certificate or key, named by path.
pub fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<rustls::ServerConfig, BoxError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read the TLS certificate {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("no certificate in {}", cert.display()).into());
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read the TLS key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| {
            format!(
                "the TLS certificate {} and key {} do not fit: {e}",
                cert.display(),
                key.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Runs the server until SIGTERM or Ctrl-C.
///
/// # Errors
/// The store, the master key, the bootstrap or the listener fails.
pub async fn run(config: ServerConfig) -> Result<(), BoxError> {
    let started = std::time::Instant::now();
    // bad TLS files stop the server before it touches anything
    let tls = match &config.tls {
        Some((cert, key)) => Some(tls_config(cert, key)?),
        None => None,
    };
    // the database first: a master key file is created only for a database without data keys
    let store = sigil_store::open(&config.database).await?;
    let fresh = store.all_data_keys().await?.is_empty();
    let master = load_master_key(&config.master_key, fresh)?;
    let previous = config
        .previous_master_keys
        .iter()
        .map(|s| Ok((load_master_key(s, false)?, s.clone())))
        .collect::<Result<Vec<_>, BoxError>>()?;
    check_master_keys(&*store, &master, &config.master_key, &previous).await?;
    let previous = previous.into_iter().map(|(k, _)| k).collect();
    let state = AppState::with_previous_keys(store, master, previous, config.limits.clone());
    state.set_secure_cookies(tls.is_some() || config.secure_cookies);
    retention::spawn(state.clone());
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let local = listener.local_addr()?;
    if let Some(key) = bootstrap(&state, config.bootstrap_key.clone())
        .await
        .map_err(|e| e.to_string())?
    {
        if config.bootstrap_key.is_some() {
            // the operator chose it: it must not land in the server's logs
            let id = keys::parse(&key).map_or("?", |k| k.id);
            eprintln!(
                "bootstrap: created team \"default\" and its administrator key {id} (the key of SIGIL_BOOTSTRAP_ADMIN_KEY)"
            );
        } else {
            eprintln!(
                "bootstrap: created team \"default\" and its administrator key (shown once):\n  {}",
                &*key
            );
        }
        if let Some(hook) = &config.on_bootstrap {
            let host = if local.ip().is_unspecified() {
                std::net::IpAddr::from([127, 0, 0, 1])
            } else {
                local.ip()
            };
            let scheme = if tls.is_some() { "https" } else { "http" };
            hook(
                &format!("{scheme}://{}", SocketAddr::new(host, local.port())),
                &key,
            );
        }
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(addr = %local, backend = state.store.backend(), scheme, "listening");
    eprintln!(
        "sigil server listening on {scheme}://{local} ({} store, ready in {} ms)",
        state.store.backend(),
        started.elapsed().as_millis()
    );
    let capped = conn::Capped::new(config.max_connections, config.idle_timeout, state.clone());
    let service = app(state).into_make_service_with_connect_info::<SocketAddr>();
    // plain HTTP and TLS are served alike: a header-read timeout, an idle timeout and a cap on
    // connections (conn.rs), and a graceful shutdown with a deadline
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    let grace = config.shutdown_timeout;
    tokio::spawn(async move {
        shutdown_signal().await;
        h.graceful_shutdown(Some(grace));
    });
    let http =
        |builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>| {
            builder
                .http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(config.header_read_timeout);
        };
    match tls {
        None => {
            let mut server = axum_server::from_tcp(listener.into_std()?).acceptor(capped);
            http(server.http_builder());
            server.handle(handle).serve(service).await?;
        }
        Some(tls) => {
            let tls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls));
            let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(tls).acceptor(capped);
            let mut server = axum_server::from_tcp(listener.into_std()?).acceptor(acceptor);
            http(server.http_builder());
            server.handle(handle).serve(service).await?;
        }
    }
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_debug_hides_keys_and_database_passwords() {
        let mut c = ServerConfig::new(
            "127.0.0.1:1".parse().unwrap(),
            "postgres://etl:canary-pw@db:5432/sigil?x=1",
        );
        c.master_key = MasterKeySource::Env(Zeroizing::new("canary-master".into()));
        c.previous_master_keys = vec![MasterKeySource::Env(Zeroizing::new("canary-old".into()))];
        c.bootstrap_key = Some(Zeroizing::new("canary-boot".into()));
        let shown = format!("{c:?}");
        assert!(!shown.contains("canary"), "{shown}");
        assert!(
            shown.contains("postgres://etl:***@db:5432/sigil?x=1"),
            "{shown}"
        );
        assert_eq!(
            redact_url("sqlite:///var/lib/sigil.db"),
            "sqlite:///var/lib/sigil.db"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
    }
}
