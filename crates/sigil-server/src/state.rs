//! The server's shared state: the store, the master key, caches, limits, metrics.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use sigil_store::{KeyRow, Store};

use crate::crypto::{DataKey, MasterKey};
use crate::error::ApiError;
use crate::service::ServerError;

/// Limits and tunables.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body (413 above it).
    pub max_body_bytes: usize,
    /// Largest secret value, as compact JSON (413 above it).
    pub max_value_bytes: usize,
    /// How long a key lookup is trusted: a key revoked through another replica is refused
    /// after at most this long.
    pub key_cache_ttl: Duration,
    /// Failed authentications from one address within `auth_window` before it gets 429.
    pub auth_failures_allowed: u32,
    /// The window of `auth_failures_allowed`.
    pub auth_window: Duration,
    /// A request's deadline: past it the answer is 503.
    pub request_timeout: Duration,
    /// A web session unused this long ends.
    pub session_idle: Duration,
    /// A web session this old ends, used or not.
    pub session_max_age: Duration,
    /// Live web sessions per key; signing in once more ends the oldest.
    pub sessions_per_key: u32,
    /// Peers whose `X-Forwarded-For` header is believed (TLS-terminating proxies); the client's
    /// address is then the last address in the header that is not one of them.
    pub trusted_proxies: Vec<crate::net::Cidr>,
    /// Audit records older than this are removed in the background (none: kept for ever).
    pub audit_retention: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1 << 20,
            max_value_bytes: 64 * 1024,
            key_cache_ttl: Duration::from_millis(500),
            auth_failures_allowed: 20,
            auth_window: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            session_idle: Duration::from_secs(30 * 60),
            session_max_age: Duration::from_secs(12 * 3600),
            sessions_per_key: 20,
            trusted_proxies: Vec::new(),
            audit_retention: None,
        }
    }
}

/// Counters for `/metrics`.
#[derive(Default)]
pub struct Metrics {
    /// By route, then status.
    pub(crate) requests: RwLock<HashMap<String, HashMap<u16, AtomicU64>>>,
    pub(crate) secret_reads: AtomicU64,
    pub(crate) secret_writes: AtomicU64,
    pub(crate) audit_records: AtomicU64,
    pub(crate) auth_failures: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
    pub(crate) connections_refused: AtomicU64,
    pub(crate) requests_timed_out: AtomicU64,
    pub(crate) audit_pruned: AtomicU64,
    /// How long requests took, from routing to the response's headers.
    pub(crate) request_seconds: sigil_store::Histogram,
}

impl Metrics {
    /// Counts one request: a shared lock and an atomic add, except the first time a
    /// (route, status) pair is seen.
    pub(crate) fn count_request(&self, route: &str, status: u16) {
        {
            let map = self.requests.read().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = map.get(route).and_then(|by_status| by_status.get(&status)) {
                c.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        self.requests
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(route.to_owned())
            .or_default()
            .entry(status)
            .or_insert_with(|| AtomicU64::new(0))
            .fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn inc(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP sigil_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE sigil_http_requests_total counter\n");
        let mut rows: Vec<((String, u16), u64)> = self
            .requests
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .flat_map(|(route, by_status)| {
                by_status
                    .iter()
                    .map(move |(status, n)| ((route.clone(), *status), n.load(Ordering::Relaxed)))
            })
            .collect();
        rows.sort();
        for ((route, status), n) in rows {
            out.push_str(&format!(
                "sigil_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}\n"
            ));
        }
        for (name, help, c) in [
            (
                "sigil_secret_reads_total",
                "Secret values read.",
                &self.secret_reads,
            ),
            (
                "sigil_secret_writes_total",
                "Secret versions written.",
                &self.secret_writes,
            ),
            (
                "sigil_audit_records_total",
                "Audit records written.",
                &self.audit_records,
            ),
            (
                "sigil_auth_failures_total",
                "Requests refused for a missing, unknown or revoked key.",
                &self.auth_failures,
            ),
            (
                "sigil_rate_limited_total",
                "Requests refused with 429 after repeated failed authentication.",
                &self.rate_limited,
            ),
            (
                "sigil_connections_refused_total",
                "Connections closed at once because the connection cap was reached.",
                &self.connections_refused,
            ),
            (
                "sigil_requests_timed_out_total",
                "Requests answered 503 after the request timeout.",
                &self.requests_timed_out,
            ),
            (
                "sigil_audit_pruned_total",
                "Audit records removed for being older than the retention.",
                &self.audit_pruned,
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                c.load(Ordering::Relaxed)
            ));
        }
        self.request_seconds.render(
            "sigil_http_request_duration_seconds",
            "Time from a request's routing to its response's headers.",
            &mut out,
        );
        out
    }
}

/// What failed authentications are counted by: the client's address, and the key id a wrong
/// secret was sent for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum FailureSource {
    Addr(IpAddr),
    KeyId(String),
}

/// Key lookups by id, with when they were made (`None`: no such key).
type KeyCache = RwLock<HashMap<String, (Instant, Option<Arc<KeyRow>>)>>;

/// Shared by every request.
pub struct AppState {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) master: Arc<MasterKey>,
    previous: Vec<MasterKey>,
    pub(crate) limits: Limits,
    pub(crate) metrics: Metrics,
    data_keys: RwLock<HashMap<(i64, i32), Arc<DataKey>>>,
    secure_cookies: std::sync::atomic::AtomicBool,
    key_cache: KeyCache,
    auth_failures: Mutex<HashMap<FailureSource, (Instant, u32)>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store.backend())
            .field("master", &self.master)
            .finish()
    }
}

impl AppState {
    /// State over a store and a master key.
    pub fn new(store: Arc<dyn Store>, master: MasterKey, limits: Limits) -> Arc<Self> {
        Self::with_previous_keys(store, master, Vec::new(), limits)
    }

    /// This server's master key (current or previous) with this id.
    pub(crate) fn master_key(&self, id: &str) -> Option<&MasterKey> {
        std::iter::once(&*self.master)
            .chain(&self.previous)
            .find(|m| m.id() == id)
    }

    /// State whose data keys may still be wrapped by `previous` master keys (during a rotation:
    /// new data keys are wrapped by `master`, old ones are read with whichever key wrapped them).
    pub fn with_previous_keys(
        store: Arc<dyn Store>,
        master: MasterKey,
        previous: Vec<MasterKey>,
        limits: Limits,
    ) -> Arc<Self> {
        Arc::new(AppState {
            store,
            master: Arc::new(master),
            previous,
            limits,
            metrics: Metrics::default(),
            data_keys: RwLock::new(HashMap::new()),
            secure_cookies: std::sync::atomic::AtomicBool::new(false),
            key_cache: RwLock::new(HashMap::new()),
            auth_failures: Mutex::new(HashMap::new()),
        })
    }

    /// Marks session cookies `Secure` (the server speaks TLS).
    pub fn set_secure_cookies(&self, yes: bool) {
        self.secure_cookies.store(yes, Ordering::Relaxed);
    }

    pub(crate) fn secure_cookies(&self) -> bool {
        self.secure_cookies.load(Ordering::Relaxed)
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// A team's data key of a version, unwrapped with the master key (cached).
    pub(crate) async fn data_key(
        &self,
        team_id: i64,
        team: &str,
        version: i32,
    ) -> Result<Arc<DataKey>, ServerError> {
        if let Some(k) = self
            .data_keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(team_id, version))
        {
            return Ok(k.clone());
        }
        let rows = self.store.data_keys(team_id).await?;
        let row = rows.iter().find(|r| r.version == version).ok_or_else(|| {
            ServerError::internal(format!("data key {version} of team {team:?} is missing"))
        })?;
        let master = self.master_key(&row.master_key_id).ok_or_else(|| {
                ServerError::internal(format!(
                    "data key {version} of team {team:?} is wrapped by master key {}, which this server does not have (it has {})",
                    row.master_key_id,
                    self.master.id()
                ))
            })?;
        let key = Arc::new(
            master
                .unwrap(&row.wrapped, team, row.version as u32)
                .map_err(ServerError::internal)?,
        );
        self.data_keys
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert((team_id, version), key.clone());
        Ok(key)
    }

    /// The newest data key of a team.
    pub(crate) async fn current_data_key(
        &self,
        team_id: i64,
        team: &str,
    ) -> Result<Arc<DataKey>, ServerError> {
        let newest = {
            let cache = self.data_keys.read().unwrap_or_else(|p| p.into_inner());
            cache
                .keys()
                .filter(|(t, _)| *t == team_id)
                .map(|(_, v)| *v)
                .max()
        };
        match newest {
            Some(v) => self.data_key(team_id, team, v).await,
            None => {
                let rows = self.store.data_keys(team_id).await?;
                let v = rows.iter().map(|r| r.version).max().ok_or_else(|| {
                    ServerError::internal(format!("team {team:?} has no data key"))
                })?;
                self.data_key(team_id, team, v).await
            }
        }
    }

    /// A key by id, trusted for `key_cache_ttl`.
    pub(crate) async fn key(&self, id: &str) -> Result<Option<Arc<KeyRow>>, ServerError> {
        let ttl = self.limits.key_cache_ttl;
        if let Some((at, row)) = self
            .key_cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            && at.elapsed() < ttl
        {
            return Ok(row.clone());
        }
        let row = self.store.key(id).await?.map(Arc::new);
        let mut cache = self.key_cache.write().unwrap_or_else(|p| p.into_inner());
        if cache.len() > 10_000 {
            cache.retain(|_, (at, _)| at.elapsed() < ttl);
        }
        cache.insert(id.to_owned(), (Instant::now(), row.clone()));
        Ok(row)
    }

    /// Forgets a cached key (after a revocation through this replica).
    pub(crate) fn forget_key(&self, id: &str) {
        self.key_cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// A refused authentication: counted for the address (and for the key id a wrong secret was
    /// sent for); the answer is 401, or 429 once a count passes the limit within the window. Only
    /// failures are ever throttled: a valid key is checked first and never refused for them.
    pub(crate) fn refuse_auth(&self, sources: &[FailureSource], message: &str) -> ApiError {
        Metrics::inc(&self.metrics.auth_failures, 1);
        let window = self.limits.auth_window;
        let mut wait: Option<u64> = None;
        {
            let mut map = self.auth_failures.lock().unwrap_or_else(|p| p.into_inner());
            if map.len() > 100_000 {
                map.retain(|_, (since, _)| since.elapsed() < window);
            }
            for source in sources {
                let entry = map.entry(source.clone()).or_insert((Instant::now(), 0));
                if entry.0.elapsed() >= window {
                    *entry = (Instant::now(), 0);
                }
                entry.1 += 1;
                if entry.1 > self.limits.auth_failures_allowed {
                    let w = window.saturating_sub(entry.0.elapsed()).as_secs().max(1);
                    wait = Some(wait.map_or(w, |x| x.max(w)));
                }
            }
        }
        match wait {
            None => ApiError::unauthorized(message.to_owned()),
            Some(wait) => {
                Metrics::inc(&self.metrics.rate_limited, 1);
                let mut e = ApiError::new(
                    axum::http::StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!("{message}; too many failed authentications, try again later"),
                );
                e.retry_after = Some(wait);
                e
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_revoked_key_is_refused_everywhere_within_a_second() {
        // each replica trusts a key lookup for at most this long
        assert!(super::Limits::default().key_cache_ttl <= std::time::Duration::from_secs(1));
    }
}
