//! The "Team → Secrets" web page: server-rendered HTML whose forms work without JavaScript.
//!
//! A person signs in by pasting an API key; the session (in the database, so every replica serves
//! it; its id kept only as a hash; an HttpOnly, SameSite=Strict cookie names it, `Secure` under TLS
//! or `--secure-cookies`) holds the key's id, and the key is checked again at every request, so a
//! revoked key ends the session at once. Every action goes through the domain layer (`service`)
//! — the same role checks, the same audit records as the REST API — so the page is no way around a
//! role. One module per page: `session` (sign in and out), `secrets`, `keys`, `audit`, and `html`
//! (escaping, the page frame, headers).
//! Values are write-only: no page ever sends a value to the browser. Every form that changes
//! state carries a per-session CSRF token, and requests from another origin are refused.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use sigil_core::wire::{Role, rfc3339};
use zeroize::Zeroizing;

use crate::auth::{Caller, ClientIp, authenticate};
use crate::error::ApiError;
use crate::service::{self, ServerError};
use crate::state::AppState;

mod audit;
mod html;
mod keys;
mod secrets;
mod session;

pub(crate) use audit::audit_page;
use html::{error_page, esc, html, page, q, redirect};
pub(crate) use html::{not_found, static_css, static_js};
pub(crate) use keys::{create_key, keys_page, revoke_key};
pub(crate) use secrets::{delete, detail, restore, save, secrets};
pub(crate) use session::{home, signin, signout};

const COOKIE: &str = "sigil_session";
const SIGNIN_COOKIE: &str = "sigil_signin";
const PAGE: u32 = 50;
/// A session's last use is written at most this often (a page view is not a database write).
const TOUCH_EVERY_MS: i64 = 60_000;

/// The stored form of a session id: only its SHA-256 is kept.
fn session_hash(id: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::new()
        .chain_update(b"sigil:web-session:v1")
        .chain_update(id.as_bytes())
        .finalize()
        .to_vec()
}

/// A session's CSRF token, derived from its id (so no replica needs to store it).
fn session_csrf(id: &str) -> String {
    use sha2::Digest;
    URL_SAFE_NO_PAD.encode(
        sha2::Sha256::new()
            .chain_update(b"sigil:web-csrf:v1")
            .chain_update(id.as_bytes())
            .finalize(),
    )
}

fn random_token() -> Result<String, ApiError> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(ApiError::internal)?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    cookie_named(headers, COOKIE)
}

fn cookie_named(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A signed-in person: the caller their key stands for, and the session's CSRF token.
pub(crate) struct Visitor {
    caller: Caller,
    csrf: String,
}

/// The session of a request, checked again against the store; `Err` is the response to send
/// (the sign-in page, with a reason).
async fn visitor(state: &AppState, headers: &HeaderMap, ip: IpAddr) -> Result<Visitor, Response> {
    let Some(id) = cookie_value(headers) else {
        return Err(redirect("/"));
    };
    let hash = session_hash(&id);
    let session = match state.store.session(&hash).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(redirect("/")),
        Err(e) => return Err(error_page(None, &e.into())),
    };
    let now = service::now_ms();
    let limits = &state.limits;
    if now - session.last_seen > limits.session_idle.as_millis() as i64
        || now - session.created_at > limits.session_max_age.as_millis() as i64
    {
        let _ = state.store.delete_session(&hash).await;
        return Err(redirect("/?expired=1"));
    }
    match crate::auth::session_caller(state, &session.key_id, ip).await {
        Ok(caller) => {
            if now - session.last_seen > TOUCH_EVERY_MS {
                let _ = state.store.touch_session(&hash, now).await;
            }
            Ok(Visitor {
                caller,
                csrf: session_csrf(&id),
            })
        }
        // only a refused key ends the session: a busy store or others' failures do not
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            let _ = state.store.delete_session(&hash).await;
            Err(redirect("/?revoked=1"))
        }
        Err(e) => Err(error_page(None, &e)),
    }
}

/// The visitor of a form post whose token and origin check out; `Err` is the page to answer.
async fn form_visitor(
    state: &AppState,
    headers: &HeaderMap,
    ip: IpAddr,
    token: &str,
) -> Result<Visitor, Response> {
    let v = visitor(state, headers, ip).await?;
    match check_form(&v, headers, token) {
        Ok(()) => Ok(v),
        Err(e) => Err(error_page(Some(&v), &e)),
    }
}

/// Refuses a state-changing request without the session's token or from another origin.
fn check_form(v: &Visitor, headers: &HeaderMap, token: &str) -> Result<(), ApiError> {
    let same = crate::keys::constant_time_eq(token.as_bytes(), v.csrf.as_bytes());
    if !same {
        return Err(ApiError::forbidden(
            "the form is stale or forged (CSRF token missing or wrong): reload the page",
        ));
    }
    check_origin(headers)
}

fn check_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && site != "same-origin"
        && site != "none"
    {
        return Err(ApiError::forbidden(
            "requests from another site are refused",
        ));
    }
    // under `Referrer-Policy: no-referrer` browsers send `Origin: null` with our own forms, so a
    // null origin proves nothing either way; any other origin must be this server's
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
        && origin != "null"
    {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let origin_host = origin.split_once("://").map_or("", |(_, h)| h);
        if origin_host != host {
            return Err(ApiError::forbidden(
                "requests from another origin are refused",
            ));
        }
    }
    Ok(())
}

#[derive(Deserialize)]
pub(crate) struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// After an action: to `next` when it succeeded, the error page (with the API's message) when not.
fn after_change(v: &Visitor, done: Result<(), ServerError>, next: &str) -> Response {
    match done {
        Ok(()) => redirect(next),
        Err(e) => error_page(Some(v), &e.into()),
    }
}

/// The team's key names by id, so that pages show who a key is, not only its id.
async fn key_names(state: &AppState, team_id: i64) -> std::collections::HashMap<String, String> {
    match state.store.list_keys(team_id).await {
        Ok(keys) => keys.into_iter().map(|k| (k.id, k.name)).collect(),
        Err(_) => Default::default(), // ids alone, then: the page still works
    }
}

/// `name (id)`, escaped; the id alone for a key without a name or of another team.
fn who(names: &std::collections::HashMap<String, String>, id: &str) -> String {
    match names.get(id).filter(|n| !n.is_empty()) {
        Some(n) => format!("{} <span class=\"muted\">({})</span>", esc(n), esc(id)),
        None => esc(id),
    }
}

fn need_admin(v: &Visitor) -> Result<(), ApiError> {
    if v.caller.role == Role::Admin {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "a {} key cannot manage keys or read the audit log: it needs the admin role",
            v.caller.role.as_str()
        )))
    }
}
