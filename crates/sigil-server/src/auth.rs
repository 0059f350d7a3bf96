//! Who is calling: the `Authorization: Bearer` key, checked against the store.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use sigil_core::wire::Role;

use crate::error::ApiError;
use crate::keys;
use crate::service::{KeyId, TeamName};
use crate::state::{AppState, FailureSource};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key's id.
    pub key_id: KeyId,
    /// The key's team.
    pub team_id: i64,
    /// The team's name.
    pub team: TeamName,
    /// The key's role.
    pub role: Role,
    /// The bootstrap administrator.
    pub bootstrap: bool,
    /// The client's address.
    pub client: String,
    /// `X-Sigil-Flow-Run`.
    pub flow_run: Option<String>,
    /// `X-Sigil-Task`.
    pub task: Option<String>,
    /// The face the request came through.
    pub via: Face,
    /// The client software, when it says (`prefect 1.4.1`).
    pub agent: Option<String>,
}

/// The faces a request can come through, as the audit log names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    /// The REST API (`/api/v1`).
    Api,
    /// The web page.
    Web,
    /// Prefect 1's GraphQL API (`/prefect/graphql`).
    Prefect,
    /// Vault's HTTP API (`/v1/…`).
    Vault,
}

impl Face {
    /// The name the audit log keeps.
    pub fn as_str(self) -> &'static str {
        match self {
            Face::Api => "api",
            Face::Web => "web",
            Face::Prefect => "prefect",
            Face::Vault => "vault",
        }
    }
}

#[cfg(test)]
impl Caller {
    /// A caller of `team` with `role`, for unit tests.
    pub(crate) fn for_tests(team: &str, role: Role) -> Caller {
        Caller {
            key_id: KeyId::stored("k1".into()),
            team_id: 1,
            team: TeamName::stored(team.into()),
            role,
            bootstrap: false,
            client: "127.0.0.1".into(),
            flow_run: None,
            task: None,
            via: Face::Api,
            agent: None,
        }
    }
}

/// The client's address: the connection's peer, or behind a trusted proxy
/// (`Limits::trusted_proxies`) the address it forwarded.
pub fn client_addr(parts: &Parts, state: &AppState) -> IpAddr {
    let peer = if let Some(c) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
        c.0.ip()
    } else {
        // tests serve the router without a socket
        parts
            .extensions
            .get::<axum::extract::connect_info::MockConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
    };
    let trusted = &state.limits.trusted_proxies;
    if trusted.is_empty() {
        return peer;
    }
    crate::net::client_address(
        peer,
        parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok()),
        trusted,
    )
}

/// The key of an `Authorization` header: the scheme is case-insensitive (RFC 9110 §11.1).
pub(crate) fn bearer_key(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|k| !k.is_empty())
}

fn attribution_header(parts: &Parts, name: &str) -> Result<Option<String>, ApiError> {
    let Some(v) = parts.headers.get(name) else {
        return Ok(None);
    };
    let s = v
        .to_str()
        .ok()
        .filter(|s| {
            !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        })
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "header {name} must be 1 to 128 printable ASCII characters"
            ))
        })?;
    Ok(Some(s.to_owned()))
}

/// Checks a key (from a header or a web session) and returns the caller it stands for. The key
/// is checked first: a valid key is never refused for anyone's failures. A failure is counted
/// for the address, and for the key id when the key exists (a wrong secret, a revoked key);
/// past the limit the answer is 429 rather than 401.
pub(crate) async fn authenticate(
    state: &AppState,
    key: &str,
    ip: IpAddr,
) -> Result<Caller, ApiError> {
    let by_addr = FailureSource::Addr(ip);
    let refuse = |sources: &[FailureSource], msg: &str| {
        tracing::info!(client = %ip, reason = msg, "authentication refused");
        state.refuse_auth(sources, msg)
    };
    let Some(parsed) = keys::parse(key) else {
        return Err(refuse(&[by_addr], "invalid API key"));
    };
    let Some(row) = state.key(parsed.id).await? else {
        return Err(refuse(&[by_addr], "invalid API key"));
    };
    // the key id is counted only on a failure: a valid key's request allocates nothing for it
    let by_key = || FailureSource::KeyId(row.id.clone());
    if !keys::constant_time_eq(&row.hash, &keys::hash(parsed.secret)) {
        return Err(refuse(&[by_addr, by_key()], "invalid API key"));
    }
    if row.revoked_at.is_some() {
        return Err(refuse(&[by_addr, by_key()], "the API key was revoked"));
    }
    Ok(caller_of(&row, ip))
}

/// The caller a request's key stands for, or the refusal: a request without a key (`missing`
/// says how to send one) is refused and counted like a wrong key. Every face reads its key its own
/// way (a header) and comes here.
pub(crate) async fn authenticate_sent(
    state: &AppState,
    key: Option<&str>,
    ip: IpAddr,
    missing: &str,
) -> Result<Caller, ApiError> {
    match key {
        Some(key) => authenticate(state, key, ip).await,
        None => {
            tracing::info!(client = %ip, reason = missing, "authentication refused");
            Err(state.refuse_auth(&[FailureSource::Addr(ip)], missing))
        }
    }
}

fn caller_of(row: &sigil_store::KeyRow, ip: IpAddr) -> Caller {
    Caller {
        key_id: KeyId::stored(row.id.clone()),
        team_id: row.team_id,
        team: TeamName::stored(row.team_name.clone()),
        role: row.role,
        bootstrap: row.bootstrap,
        client: ip.to_string(),
        flow_run: None,
        task: None,
        via: Face::Api,
        agent: None,
    }
}

/// The caller a web session stands for: its key, checked again at every request (a revoked key
/// is refused on every replica within the key cache's TTL). The key's secret was proven at sign
/// in; the session holds only the key's id.
pub(crate) async fn session_caller(
    state: &AppState,
    key_id: &str,
    ip: IpAddr,
) -> Result<Caller, ApiError> {
    match state.key(key_id).await? {
        Some(row) if row.revoked_at.is_none() => Ok(Caller {
            via: Face::Web,
            ..caller_of(&row, ip)
        }),
        _ => Err(ApiError::unauthorized("the API key was revoked")),
    }
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        let ip = client_addr(parts, state);
        let header = parts.headers.get(axum::http::header::AUTHORIZATION);
        let missing = match header {
            None => "missing API key: send Authorization: Bearer <key>",
            Some(_) => "the Authorization header must be Bearer <key>",
        };
        let key = header.and_then(|h| h.to_str().ok()).and_then(bearer_key);
        let mut caller = authenticate_sent(state, key, ip, missing).await?;
        caller.flow_run = attribution_header(parts, "x-sigil-flow-run")?;
        caller.task = attribution_header(parts, "x-sigil-task")?;
        Ok(caller)
    }
}

/// The client's address, as an extractor.
pub(crate) struct ClientIp(pub(crate) IpAddr);

impl FromRequestParts<Arc<AppState>> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_addr(parts, state)))
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_key;

    // `Authorization: bearer …` was refused and counted as a failed login.
    #[test]
    fn the_scheme_is_case_insensitive() {
        assert_eq!(bearer_key("Bearer k1"), Some("k1"));
        assert_eq!(bearer_key("bearer k1"), Some("k1"));
        assert_eq!(bearer_key("BEARER   k1 "), Some("k1"));
        assert_eq!(bearer_key("Basic k1"), None);
        assert_eq!(bearer_key("Bearer "), None);
        assert_eq!(bearer_key("Bearerk1"), None);
    }
}
