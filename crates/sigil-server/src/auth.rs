//! Who is calling: the `Authorization: Bearer` key, checked against the store.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use sigil_core::wire::Role;

use crate::error::ApiError;
use crate::keys;
use crate::state::AppState;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key's id.
    pub key_id: String,
    /// The key's team.
    pub team_id: i64,
    /// The team's name.
    pub team: String,
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
}

/// The client's address (from the connection; forwarded-for headers are not trusted).
pub fn client_addr(parts: &Parts) -> IpAddr {
    if let Some(c) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
        return c.0.ip();
    }
    // tests serve the router without a socket
    parts
        .extensions
        .get::<axum::extract::connect_info::MockConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
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

/// A refused authentication: counted towards the address's rate limit.
fn refuse(state: &AppState, ip: IpAddr, msg: &str) -> ApiError {
    state.note_auth_failure(ip);
    tracing::info!(client = %ip, reason = msg, "authentication refused");
    ApiError::unauthorized(msg.to_owned())
}

/// Checks a key (from a header or a web session) and returns the caller it stands for. A
/// failure counts towards the address's rate limit.
pub(crate) async fn authenticate(
    state: &AppState,
    key: &str,
    ip: IpAddr,
) -> Result<Caller, ApiError> {
    state.check_rate(ip)?;
    verify_key(state, key, ip).await
}

/// [`authenticate`] after the rate check.
async fn verify_key(state: &AppState, key: &str, ip: IpAddr) -> Result<Caller, ApiError> {
    let Some(parsed) = keys::parse(key) else {
        return Err(refuse(state, ip, "invalid API key"));
    };
    let Some(row) = state.key(parsed.id).await? else {
        return Err(refuse(state, ip, "invalid API key"));
    };
    if !keys::constant_time_eq(&row.hash, &keys::hash(parsed.secret)) {
        return Err(refuse(state, ip, "invalid API key"));
    }
    if row.revoked_at.is_some() {
        return Err(refuse(state, ip, "the API key was revoked"));
    }
    let role = Role::parse(&row.role)
        .ok_or_else(|| ApiError::internal(format!("key {} has role {:?}", row.id, row.role)))?;
    Ok(Caller {
        key_id: row.id.clone(),
        team_id: row.team_id,
        team: row.team_name.clone(),
        role,
        bootstrap: row.bootstrap,
        client: ip.to_string(),
        flow_run: None,
        task: None,
    })
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        let ip = client_addr(parts);
        state.check_rate(ip)?;
        let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
            return Err(refuse(
                state,
                ip,
                "missing API key: send Authorization: Bearer <key>",
            ));
        };
        let Some(key) = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
        else {
            return Err(refuse(
                state,
                ip,
                "the Authorization header must be Bearer <key>",
            ));
        };
        let mut caller = verify_key(state, key, ip).await?;
        caller.flow_run = attribution_header(parts, "x-sigil-flow-run")?;
        caller.task = attribution_header(parts, "x-sigil-task")?;
        Ok(caller)
    }
}

/// The client's address, as an extractor.
pub(crate) struct ClientIp(pub(crate) IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_addr(parts)))
    }
}
