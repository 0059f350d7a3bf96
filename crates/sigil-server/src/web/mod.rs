//! The "Team → Secrets" web page: server-rendered HTML whose forms work without JavaScript.
//!
//! A person signs in by pasting an API key; the session (in the database, so every replica serves
//! it; its id kept only as a hash; an HttpOnly, SameSite=Strict cookie names it, `Secure` under TLS
//! or `--secure-cookies`) holds the key's id, and the key is checked again at every request, so a
//! revoked key ends the session at once. Every action goes through the domain layer (`service`)
//! — the same role checks, the same audit records as the REST API — so the page is no way around a
//! role. One module per page: `session` (sign in and out), `secrets`, `keys`, `audit`, and `html`
//! (the page frame, headers). Pages are `maud` templates, which escape every value they insert.
//! Values are write-only: no page ever sends a value to the browser. Every form that changes
//! state carries a per-session CSRF token, and requests from another origin are refused.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Form, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use sigil_core::wire::{Role, rfc3339};
use sigil_store::AuditAction;
use zeroize::Zeroizing;

use crate::api::ApiPath;
use crate::auth::{Caller, ClientIp, authenticate, client_addr};
use crate::error::ApiError;
use crate::service::{self, KeyId, ServerError};
use crate::state::AppState;

mod audit;
mod html;
mod keys;
mod secrets;
mod session;

pub(crate) use audit::audit_page;
use html::{Flash, csrf_field, error_page, html, page, q, redirect};
pub(crate) use html::{not_found, static_css, static_js};
pub(crate) use keys::{create_key, keys_page, revoke_key};
pub(crate) use secrets::{delete, detail, restore, save, secrets};
pub(crate) use session::{home, signin, signout};

/// A page's path parameter: the API's ([`ApiPath`]), whose refusal of a path axum cannot decode
/// (not UTF-8: `/ui/secret/%FF`) becomes an HTML error page, as every other refusal of the web
/// page is.
pub(crate) struct WebPath<T>(pub(crate) T);

impl<T: serde::de::DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for WebPath<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match ApiPath::<T>::from_request_parts(parts, state).await {
            Ok(ApiPath(t)) => Ok(WebPath(t)),
            Err(e) => Err(error_page(None, &e)),
        }
    }
}

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

/// What a page handler answers: the page, or (`Err`) the redirect or error page instead.
type Page = Result<Response, Response>;

/// A signed-in person: the caller their key stands for, the session's CSRF token, and whether
/// the request came from this server's own pages. As an extractor it checks the session against
/// the store; its rejection is the response to send instead (the sign-in page, with a reason).
pub(crate) struct Visitor {
    caller: Caller,
    csrf: String,
    /// Why the request is refused as a form post from another site, if it is.
    foreign: Option<ApiError>,
}

impl FromRequestParts<Arc<AppState>> for Visitor {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Response> {
        let ip = client_addr(parts, state);
        visitor(state, &parts.headers, ip).await
    }
}

// the `Err` of these is the page to answer instead: built and moved once per request
#[allow(clippy::result_large_err)]
impl Visitor {
    /// Allows a form post only with the session's token and from this server's pages.
    fn posted(&self, token: &str) -> Result<(), Response> {
        let same = crate::keys::constant_time_eq(token.as_bytes(), self.csrf.as_bytes());
        let refused = if !same {
            Some(ApiError::forbidden(
                "the form is stale or forged (CSRF token missing or wrong): reload the page",
            ))
        } else {
            self.foreign.clone()
        };
        match refused {
            Some(e) => Err(self.error(e)),
            None => Ok(()),
        }
    }

    /// Allows only an admin's key (the keys and audit pages).
    fn admin(&self) -> Result<(), Response> {
        if self.caller.role == Role::Admin {
            return Ok(());
        }
        Err(self.error(ApiError::forbidden(format!(
            "a {} key cannot manage keys or read the audit log: it needs the admin role",
            self.caller.role.as_str()
        ))))
    }

    /// Input of this visitor's request, parsed for `action`; a refusal is on record as the
    /// REST API's is, and answered with the error page.
    async fn parsed<T>(
        &self,
        state: &AppState,
        action: Option<AuditAction>,
        raw: &str,
        parse: impl FnOnce(&str) -> Result<T, ServerError>,
    ) -> Result<T, Response> {
        let (c, team) = (&self.caller, &self.caller.team);
        service::parsed(state, c, team, action, raw, parse)
            .await
            .map_err(|e| self.error(e))
    }

    /// The error page for this visitor.
    fn error(&self, e: impl Into<ApiError>) -> Response {
        error_page(Some(self), &e.into())
    }

    /// A page of this visitor's, with the header that names them.
    fn page(&self, title: &str, flash: Flash, body: Markup) -> Response {
        html(
            StatusCode::OK,
            page(title, Some((&self.caller, &self.csrf)), flash, body),
        )
    }

    /// After an action: to `next` when it succeeded, the error page (with the API's message)
    /// when not.
    fn after(&self, done: Result<(), ServerError>, next: &str) -> Page {
        done.map_err(|e| self.error(e))?;
        Ok(redirect(next))
    }
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
                foreign: check_origin(headers).err(),
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

/// Refuses a request another site made (a form posted from elsewhere).
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

/// The team's key names by id, so that pages show who a key is, not only its id.
async fn key_names(state: &AppState, team_id: i64) -> std::collections::HashMap<String, String> {
    match state.store.list_keys(team_id).await {
        Ok(keys) => keys.into_iter().map(|k| (k.id, k.name)).collect(),
        Err(_) => Default::default(), // ids alone, then: the page still works
    }
}

/// `name (id)`; the id alone for a key without a name or of another team.
fn who(names: &std::collections::HashMap<String, String>, id: &str) -> Markup {
    html! {
        @match names.get(id).filter(|n| !n.is_empty()) {
            Some(n) => { (n) " " span.muted { "(" (id) ")" } }
            None => { (id) }
        }
    }
}
