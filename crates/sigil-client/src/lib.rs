//! The blocking client of the Sigil server, and the server [`Source`] of the resolution chain.
//!
//! No async runtime: requests are plain blocking HTTP (ureq) over one connection pool shared by
//! the whole process, with timeouts. Errors tell "not found" from "unauthorised" from "server
//! unreachable": only a 404 is a miss; everything else stops the chain.
//!
//! ```no_run
//! let client = sigil_client::Client::new("http://127.0.0.1:4300", "default", "sgl_…")?;
//! if let Some(secret) = client.get_secret("prod/db/password", None)? {
//!     println!("version {}", secret.version);
//! }
//! # Ok::<(), sigil_client::ClientError>(())
//! ```

mod credentials;
mod source;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sigil_core::wire::{
    AuditPage, BatchRead, BatchReadResult, ChangeVersions, CreateKey, CreateTeam, CreatedKey,
    CreatedTeam, ErrorBody, History, KeyInfo, KeyList, PutSecret, SecretList, SecretRead,
    SecretWritten, TeamInfo, TeamList, VersionsChange, VersionsChanged, WhoAmI,
};
use zeroize::Zeroizing;

pub use credentials::{Credentials, credentials_path, read_credentials, write_credentials};
pub use source::{Connection, ServerSource, client_from_settings, connection, register};

/// What can go wrong talking to the server. Never carries a value or a key.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientError {
    /// The server could not be reached (connection refused, DNS, timeout, TLS).
    #[error("server {url} unreachable: {cause}")]
    Unreachable {
        /// The server.
        url: String,
        /// What happened.
        cause: String,
    },
    /// The key is missing, unknown or revoked (401).
    #[error("server {url} refused the API key: {message}")]
    Unauthorized {
        /// The server.
        url: String,
        /// The server's message.
        message: String,
    },
    /// The key may not do this (403).
    #[error("server {url} refused: {message}")]
    Forbidden {
        /// The server.
        url: String,
        /// The server's message.
        message: String,
    },
    /// Not found (404).
    #[error("{message}")]
    NotFound {
        /// The server's message.
        message: String,
    },
    /// Check-and-set failed (409).
    #[error("{message}")]
    Conflict {
        /// The server's message.
        message: String,
    },
    /// Any other refusal or failure, with the status and the server's code.
    #[error("server {url} answered {status} {code}: {message}")]
    Status {
        /// The server.
        url: String,
        /// HTTP status.
        status: u16,
        /// The error code.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The answer was not what the API promises.
    #[error("server {url} answered something unexpected: {message}")]
    Protocol {
        /// The server.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// Client-side setup (no key, a bad URL).
    #[error("{0}")]
    Config(String),
}

/// A `Result` with [`ClientError`].
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// The process's one agent: one connection pool, shared.
///
/// `SIGIL_CA_CERT` names a PEM file of extra root certificates (a private CA, a self-signed
/// server); without it the Mozilla roots are trusted.
fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(path) = std::env::var_os("SIGIL_CA_CERT") {
            match std::fs::read(&path) {
                Ok(pem) => {
                    let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
                        .filter_map(|item| match item {
                            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                            _ => None,
                        })
                        .collect();
                    if certs.is_empty() {
                        tracing::warn!(path = %std::path::Path::new(&path).display(), "SIGIL_CA_CERT holds no certificate");
                    }
                    tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
                }
                Err(e) => tracing::warn!(path = %std::path::Path::new(&path).display(), error = %e, "cannot read SIGIL_CA_CERT"),
            }
        }
        let config = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_global(Some(Duration::from_secs(30)))
            .max_idle_connections_per_host(16)
            .user_agent(concat!("sigil/", env!("CARGO_PKG_VERSION")))
            .build();
        ureq::Agent::new_with_config(config)
    })
}

/// A client of one server, one team, one key.
#[derive(Clone)]
pub struct Client {
    /// The server's URL now in use: the first of `bases` that answered last.
    base: String,
    /// Every server's URL, in the order given (replicas of one database).
    bases: Arc<Vec<String>>,
    /// Which of `bases` answered last, shared by this client's clones.
    current: Arc<std::sync::atomic::AtomicUsize>,
    team: String,
    key: Zeroizing<String>,
    headers: Vec<(String, String)>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.base)
            .field("team", &self.team)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy)]
enum Method {
    Get,
    Put,
    Post,
    Delete,
}

impl Client {
    /// A client of the server at `url` (`http://` or `https://`), for `team`, with `key`. `url`
    /// may name several replicas of one database, separated by commas: a request that cannot
    /// reach one, or that one answers with a 5xx, goes to the next (never after a 4xx, which
    /// every replica would answer alike), and the one that answered is asked first from then
    /// on.
    ///
    /// # Errors
    /// [`ClientError::Config`] for a URL that is not http(s), or no URL.
    pub fn new(url: &str, team: &str, key: &str) -> Result<Self> {
        let bases: Vec<String> = url
            .split(',')
            .map(|u| u.trim().trim_end_matches('/').to_owned())
            .filter(|u| !u.is_empty())
            .collect();
        if bases.is_empty() {
            return Err(ClientError::Config("no server URL given".into()));
        }
        for base in &bases {
            if !(base.starts_with("http://") || base.starts_with("https://")) {
                return Err(ClientError::Config(format!(
                    "server URL {base:?} must start with http:// or https://"
                )));
            }
        }
        Ok(Client {
            base: bases[0].clone(),
            bases: Arc::new(bases),
            current: Arc::default(),
            team: team.to_owned(),
            key: Zeroizing::new(key.to_owned()),
            headers: Vec::new(),
        })
    }

    /// The server's URL (the first given; with several, the one this client started with).
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Every server URL given.
    pub fn urls(&self) -> &[String] {
        &self.bases
    }

    /// The team.
    pub fn team(&self) -> &str {
        &self.team
    }

    /// Sends `X-Sigil-Flow-Run` and `X-Sigil-Task` with every request of this client.
    pub fn with_attribution(mut self, flow_run: Option<&str>, task: Option<&str>) -> Self {
        self.headers
            .retain(|(h, _)| h != "x-sigil-flow-run" && h != "x-sigil-task");
        if let Some(r) = flow_run {
            self.headers.push(("x-sigil-flow-run".into(), r.to_owned()));
        }
        if let Some(t) = task {
            self.headers.push(("x-sigil-task".into(), t.to_owned()));
        }
        self
    }

    /// A request to the server in use; with several servers, on to the next while one cannot be
    /// reached or answers with a 5xx, the first to answer otherwise kept for the next requests.
    fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
        extra: &[(&str, &str)],
    ) -> Result<Option<T>> {
        use std::sync::atomic::Ordering;
        let n = self.bases.len();
        let first = self.current.load(Ordering::Relaxed) % n;
        let mut k = 0;
        loop {
            let i = (first + k) % n;
            let answer = self.request_to(&self.bases[i], method, path, body, extra);
            let fails_over = match &answer {
                Err(ClientError::Unreachable { .. }) => true,
                Err(ClientError::Status { status, .. }) => *status >= 500,
                _ => false,
            };
            if !fails_over || k + 1 == n {
                if k > 0 && !fails_over {
                    self.current.store(i, Ordering::Relaxed);
                }
                return answer;
            }
            if let Err(e) = &answer {
                tracing::warn!(server = %self.bases[i], error = %e, "trying the next server");
            }
            k += 1;
        }
    }

    fn request_to<T: DeserializeOwned>(
        &self,
        base: &str,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
        extra: &[(&str, &str)],
    ) -> Result<Option<T>> {
        let url = format!("{base}{path}");
        let auth = Zeroizing::new(format!("Bearer {}", &*self.key));
        let unreachable = |e: ureq::Error| ClientError::Unreachable {
            url: base.to_owned(),
            cause: e.to_string(),
        };
        macro_rules! with_headers {
            ($req:expr) => {{
                let mut r = $req
                    .header("authorization", auth.as_str())
                    .header("accept", "application/json");
                for (h, v) in self
                    .headers
                    .iter()
                    .map(|(h, v)| (h.as_str(), v.as_str()))
                    .chain(extra.iter().copied())
                {
                    r = r.header(h, v);
                }
                r
            }};
        }
        let resp = match method {
            Method::Get => with_headers!(agent().get(&url)).call(),
            Method::Delete => with_headers!(agent().delete(&url)).call(),
            Method::Put => {
                with_headers!(agent().put(&url)).send_json(body.expect("PUT has a body"))
            }
            Method::Post => match body {
                Some(b) => with_headers!(agent().post(&url)).send_json(b),
                None => with_headers!(agent().post(&url)).send_empty(),
            },
        }
        .map_err(unreachable)?;
        let status = resp.status().as_u16();
        let text = resp
            .into_body()
            .with_config()
            .limit(16 << 20)
            .read_to_string()
            .map_err(unreachable)?;
        if (200..300).contains(&status) {
            if status == 204 || text.is_empty() {
                return Ok(None);
            }
            return serde_json::from_str(&text)
                .map(Some)
                .map_err(|_| ClientError::Protocol {
                    url: base.to_owned(),
                    message: format!("the {status} answer to {path} is not the expected JSON"),
                });
        }
        let (code, message) = match serde_json::from_str::<ErrorBody>(&text) {
            Ok(b) => (b.error.code, b.error.message),
            Err(_) => ("unknown".to_owned(), format!("HTTP {status}")),
        };
        Err(match status {
            401 => ClientError::Unauthorized {
                url: base.to_owned(),
                message,
            },
            403 => ClientError::Forbidden {
                url: base.to_owned(),
                message,
            },
            404 => ClientError::NotFound { message },
            409 => ClientError::Conflict { message },
            _ => ClientError::Status {
                url: base.to_owned(),
                status,
                code,
                message,
            },
        })
    }

    fn expect<T>(&self, v: Option<T>, what: &str) -> Result<T> {
        v.ok_or_else(|| ClientError::Protocol {
            url: self.base.clone(),
            message: format!("empty answer to {what}"),
        })
    }

    fn team_path(&self, rest: &str) -> String {
        format!("/api/v1/teams/{}/{rest}", segment(&self.team))
    }

    /// A secret's value; `None` when it does not exist (or is deleted).
    ///
    /// # Errors
    /// Anything but a 404.
    pub fn get_secret(&self, name: &str, version: Option<i64>) -> Result<Option<SecretRead>> {
        let mut path = self.team_path(&format!("secrets/{}", name_path(name)));
        if let Some(v) = version {
            path.push_str(&format!("?version={v}"));
        }
        match self.request::<SecretRead>(Method::Get, &path, None::<&()>, &[]) {
            Ok(r) => Ok(Some(self.expect(r, "a read")?)),
            Err(ClientError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes a new version; `cas` is the version the secret must be at (`0`: create only).
    ///
    /// # Errors
    /// [`ClientError::Conflict`] when `cas` does not match, and every other failure.
    pub fn put_secret(&self, name: &str, value: &Value, cas: Option<i64>) -> Result<SecretWritten> {
        let body = PutSecret {
            value: value.clone(),
            cas,
        };
        let r = self.request(
            Method::Put,
            &self.team_path(&format!("secrets/{}", name_path(name))),
            Some(&body),
            &[],
        )?;
        self.expect(r, "a write")
    }

    /// Soft-deletes a secret.
    ///
    /// # Errors
    /// [`ClientError::NotFound`] and every other failure.
    pub fn delete_secret(&self, name: &str) -> Result<()> {
        self.request::<Value>(
            Method::Delete,
            &self.team_path(&format!("secrets/{}", name_path(name))),
            None::<&()>,
            &[],
        )?;
        Ok(())
    }

    /// Restores a deleted secret.
    ///
    /// # Errors
    /// [`ClientError::NotFound`] and every other failure.
    pub fn restore_secret(&self, name: &str) -> Result<SecretWritten> {
        let r = self.request(
            Method::Post,
            &self.team_path(&format!("restore/{}", name_path(name))),
            None::<&()>,
            &[],
        )?;
        self.expect(r, "a restore")
    }

    /// Soft-deletes, undeletes or destroys versions of a secret; returns the versions changed
    /// (one that does not exist, or is in that state already, is left alone).
    ///
    /// # Errors
    /// [`ClientError::NotFound`] when there is no such secret, and every other failure.
    pub fn change_versions(
        &self,
        name: &str,
        change: VersionsChange,
        versions: &[i64],
    ) -> Result<Vec<i64>> {
        let body = ChangeVersions {
            versions: versions.to_vec(),
        };
        let r: Option<VersionsChanged> = self.request(
            Method::Post,
            &self.team_path(&format!("{}/{}", change.route(), name_path(name))),
            Some(&body),
            &[],
        )?;
        Ok(self.expect(r, "a change of versions")?.changed)
    }

    /// A secret's versions (metadata only).
    ///
    /// # Errors
    /// [`ClientError::NotFound`] and every other failure.
    pub fn history(&self, name: &str) -> Result<History> {
        let mut cursor: Option<String> = None;
        let mut all: Option<History> = None;
        loop {
            let mut path = self.team_path(&format!("history/{}?limit=1000", name_path(name)));
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={}", query(c)));
            }
            let r: Option<History> = self.request(Method::Get, &path, None::<&()>, &[])?;
            let page = self.expect(r, "a history")?;
            cursor = page.next_cursor.clone();
            match &mut all {
                None => all = Some(page),
                Some(h) => h.versions.extend(page.versions),
            }
            if cursor.is_none() {
                let mut h = all.expect("one page was read");
                h.next_cursor = None;
                return Ok(h);
            }
        }
    }

    /// One page of names.
    ///
    /// # Errors
    /// Every failure.
    pub fn list_secrets(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<SecretList> {
        let mut path = self.team_path(&format!("secrets?prefix={}&limit={limit}", query(prefix)));
        if let Some(c) = cursor {
            path.push_str(&format!("&cursor={}", query(c)));
        }
        let r = self.request(Method::Get, &path, None::<&()>, &[])?;
        self.expect(r, "a listing")
    }

    /// Every name, following the cursor.
    ///
    /// # Errors
    /// Every failure.
    pub fn list_all_secrets(&self, prefix: &str) -> Result<Vec<sigil_core::wire::SecretListItem>> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self.list_secrets(prefix, cursor.as_deref(), 1000)?;
            out.extend(page.secrets);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
    }

    /// Many secrets in one round trip.
    ///
    /// # Errors
    /// Every failure.
    pub fn batch_read(&self, names: &[String]) -> Result<BatchReadResult> {
        self.batch_read_for(names, &[])
    }

    /// As [`Client::batch_read`], saying which task asks for each name (`tasks` holds one per
    /// name, or none).
    ///
    /// # Errors
    /// Every failure.
    pub fn batch_read_for(&self, names: &[String], tasks: &[String]) -> Result<BatchReadResult> {
        let body = BatchRead {
            names: names.to_vec(),
            tasks: tasks.to_vec(),
        };
        let r = self.request(
            Method::Post,
            &self.team_path("batch-read"),
            Some(&body),
            &[],
        )?;
        self.expect(r, "a batch read")
    }

    /// Who the key is.
    ///
    /// # Errors
    /// Every failure.
    pub fn whoami(&self) -> Result<WhoAmI> {
        let r = self.request(Method::Get, "/api/v1/whoami", None::<&()>, &[])?;
        self.expect(r, "whoami")
    }

    /// Creates a key (shown once).
    ///
    /// # Errors
    /// Every failure.
    pub fn create_key(&self, req: &CreateKey) -> Result<CreatedKey> {
        let r = self.request(Method::Post, &self.team_path("keys"), Some(req), &[])?;
        self.expect(r, "a key creation")
    }

    /// The team's keys.
    ///
    /// # Errors
    /// Every failure.
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        let r: Option<KeyList> =
            self.request(Method::Get, &self.team_path("keys"), None::<&()>, &[])?;
        Ok(self.expect(r, "a key listing")?.keys)
    }

    /// Revokes a key.
    ///
    /// # Errors
    /// Every failure.
    pub fn revoke_key(&self, id: &str) -> Result<()> {
        self.request::<Value>(
            Method::Delete,
            &self.team_path(&format!("keys/{}", segment(id))),
            None::<&()>,
            &[],
        )?;
        Ok(())
    }

    /// Creates a team (bootstrap administrator): the team and its first admin key.
    ///
    /// # Errors
    /// Every failure.
    pub fn create_team(&self, name: &str) -> Result<(TeamInfo, CreatedKey)> {
        let body = CreateTeam {
            name: name.to_owned(),
        };
        let r: Option<CreatedTeam> =
            self.request(Method::Post, "/api/v1/teams", Some(&body), &[])?;
        let c = self.expect(r, "a team creation")?;
        Ok((c.team, c.admin_key))
    }

    /// Every team (bootstrap administrator).
    ///
    /// # Errors
    /// Every failure.
    pub fn list_teams(&self) -> Result<Vec<TeamInfo>> {
        let r: Option<TeamList> = self.request(Method::Get, "/api/v1/teams", None::<&()>, &[])?;
        Ok(self.expect(r, "a team listing")?.teams)
    }

    /// A page of the team's audit log, oldest first; `cursor` is the previous page's
    /// `next_cursor`.
    ///
    /// # Errors
    /// Every failure.
    pub fn audit(
        &self,
        since: Option<&str>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<AuditPage> {
        self.audit_page(since, cursor, limit, false)
    }

    /// A page of the team's audit log, newest first; `cursor` is the previous page's
    /// `next_cursor` (older records follow).
    ///
    /// # Errors
    /// Every failure.
    pub fn audit_newest(
        &self,
        since: Option<&str>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<AuditPage> {
        self.audit_page(since, cursor, limit, true)
    }

    fn audit_page(
        &self,
        since: Option<&str>,
        cursor: Option<&str>,
        limit: u32,
        newest_first: bool,
    ) -> Result<AuditPage> {
        let order = if newest_first { "newest" } else { "oldest" };
        let mut path = self.team_path(&format!("audit?limit={limit}&order={order}"));
        if let Some(s) = since {
            path.push_str(&format!("&since={}", query(s)));
        }
        if let Some(c) = cursor {
            path.push_str(&format!("&cursor={}", query(c)));
        }
        let r = self.request(Method::Get, &path, None::<&()>, &[])?;
        self.expect(r, "an audit page")
    }
}

/// Everything but RFC 3986's unreserved characters is percent-encoded in a path segment or a
/// query value (a `+` in a query is a space to many servers, a `/` or `?` in a segment would
/// change the route).
const ENCODED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One path segment, percent-encoded; `.` and `..` too, which clients and proxies would
/// otherwise resolve away.
fn segment(s: &str) -> String {
    if s == "." || s == ".." {
        return s.replace('.', "%2E");
    }
    percent_encoding::utf8_percent_encode(s, ENCODED).to_string()
}

/// A secret's name in a path: each segment encoded, the `/`s kept (the server routes them).
fn name_path(name: &str) -> String {
    name.split('/').map(segment).collect::<Vec<_>>().join("/")
}

/// A query value, percent-encoded.
fn query(v: &str) -> String {
    percent_encoding::utf8_percent_encode(v, ENCODED).to_string()
}

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn segments_and_query_values_are_encoded() {
        assert_eq!(segment("../x"), "..%2Fx");
        assert_eq!(segment(".."), "%2E%2E");
        assert_eq!(segment("key id?#"), "key%20id%3F%23");
        assert_eq!(name_path("prod/../db.pw"), "prod/%2E%2E/db.pw");
        assert_eq!(name_path("a-b_c~d"), "a-b_c~d");
        assert_eq!(
            query("2026-01-01T00:00:00+01:00"),
            "2026-01-01T00%3A00%3A00%2B01%3A00"
        );
        assert_eq!(query("a&b=c"), "a%26b%3Dc");
    }
}
