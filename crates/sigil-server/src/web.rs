//! The "Team → Secrets" web page: server-rendered HTML whose forms work without JavaScript.
//!
//! A person signs in by pasting an API key; the server keeps the key in a session (an HttpOnly,
//! SameSite=Strict cookie names it; `Secure` under TLS) and checks it again at every request, so
//! a revoked key ends the session at once. Every action goes through the same functions as the
//! REST API — the same role checks, the same audit records — so the page is no way around a role.
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

const COOKIE: &str = "sigil_session";
const SIGNIN_COOKIE: &str = "sigil_signin";
const PAGE: u32 = 50;
const CSS: &str = include_str!("../assets/sigil.css");
const JS: &str = include_str!("../assets/sigil.js");

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

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Query-string encoding of names and search terms.
fn q(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The headers every page carries.
pub(crate) fn security_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

fn page(
    title: &str,
    who: Option<(&Caller, &str)>,
    flash: Option<(&str, &str)>,
    body: &str,
) -> String {
    let tab = |href: &str, label: &str| {
        let active = if title == label {
            " class=\"active\""
        } else {
            ""
        };
        format!(r#"<a{active} href="{href}">{label}</a>"#)
    };
    let nav = match who {
        Some((c, csrf)) => format!(
            r#"<nav>{}{}<span class="muted">team <b>{}</b> · {}</span>
<form class="inline" method="post" action="/ui/signout"><input type="hidden" name="csrf" value="{}"><button class="secondary" type="submit">Sign out</button></form></nav>"#,
            tab("/ui/secrets", "Secrets"),
            if c.role == Role::Admin {
                format!("{}{}", tab("/ui/keys", "Keys"), tab("/ui/audit", "Audit"))
            } else {
                String::new()
            },
            esc(&c.team),
            c.role.as_str(),
            esc(csrf)
        ),
        None => String::new(),
    };
    let flash = match flash {
        Some((kind, msg)) => format!(
            r#"<div class="flash {kind}" role="status">{}</div>"#,
            esc(msg)
        ),
        None => String::new(),
    };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{} · Sigil</title><link rel="stylesheet" href="/ui/static/sigil.css"><script src="/ui/static/sigil.js" defer></script></head>
<body><header><span class="brand">Sigil</span>{nav}</header><main>{flash}{body}</main></body></html>"#,
        esc(title)
    )
}

fn html(status: StatusCode, body: String) -> Response {
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    security_headers(&mut r);
    r
}

fn redirect(to: &str) -> Response {
    let mut r = Redirect::to(to).into_response();
    security_headers(&mut r);
    r
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

fn error_page(v: Option<&Visitor>, e: &ApiError) -> Response {
    let body = r#"<p><a href="/ui/secrets">Back to the secrets</a></p>"#;
    let who = v.map(|v| (&v.caller, v.csrf.as_str()));
    html(
        e.status,
        page("Error", who, Some(("error", &e.message)), body),
    )
}

/// An unknown page under `/ui/`: an HTML page, not the API's JSON error.
pub(crate) async fn not_found() -> Response {
    html(
        StatusCode::NOT_FOUND,
        page(
            "Not found",
            None,
            Some(("error", "There is no such page.")),
            r#"<p><a href="/ui/secrets">Go to the secrets</a></p>"#,
        ),
    )
}

pub(crate) async fn static_js() -> Response {
    let mut r = (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        JS,
    )
        .into_response();
    security_headers(&mut r);
    r
}

pub(crate) async fn static_css() -> Response {
    let mut r = ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response();
    security_headers(&mut r);
    r
}

#[derive(Deserialize, Default)]
pub(crate) struct SignInNotice {
    revoked: Option<String>,
    expired: Option<String>,
    error: Option<String>,
    signedout: Option<String>,
}

pub(crate) async fn home(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(n): Query<SignInNotice>,
) -> Response {
    if let Some(id) = cookie_value(&headers)
        && matches!(state.store.session(&session_hash(&id)).await, Ok(Some(_)))
    {
        return redirect("/ui/secrets");
    }
    let flash = if n.revoked.is_some() {
        Some((
            "error",
            "Your key was refused (revoked or unknown): sign in again.",
        ))
    } else if n.expired.is_some() {
        Some(("error", "Your session expired: sign in again."))
    } else if n.error.is_some() {
        Some(("error", "Something went wrong: sign in again."))
    } else if n.signedout.is_some() {
        Some(("ok", "Signed out."))
    } else {
        None
    };
    signin_page(&state, StatusCode::OK, flash)
}

/// The sign-in page. Signing in changes state too (a forged sign-in would put a victim in the
/// attacker's team), so its form carries a token that must match a cookie set with the page
/// (double submit): another site can neither read the token nor set the cookie.
fn signin_page(state: &AppState, status: StatusCode, flash: Option<(&str, &str)>) -> Response {
    let token = match random_token() {
        Ok(t) => t,
        Err(e) => {
            return html(
                e.status,
                page("Sign in", None, Some(("error", &e.message)), ""),
            );
        }
    };
    let body = format!(
        r#"<div class="card signin"><h1>Sign in</h1>
<form method="post" action="/ui/signin"><input type="hidden" name="csrf" value="{token}"><label for="key">API key</label>
<input id="key" name="key" type="password" autocomplete="off" placeholder="sgl_…" required>
<p class="muted">Your team's administrator gives you a key (<code>sigil keys create</code>). It stays on the server for this session only.</p>
<button type="submit">Sign in</button></form></div>"#
    );
    let mut r = html(status, page("Sign in", None, flash, &body));
    let secure = if state.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{SIGNIN_COOKIE}={token}; Path=/ui/signin; HttpOnly; SameSite=Strict{secure}"
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[derive(Deserialize)]
pub(crate) struct SignIn {
    #[serde(default)]
    key: String,
    #[serde(default)]
    csrf: String,
}

pub(crate) async fn signin(
    State(state): State<Arc<AppState>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(f): Form<SignIn>,
) -> Response {
    let key = Zeroizing::new(f.key.trim().to_owned());
    if let Err(e) = check_origin(&headers) {
        return signin_page(&state, e.status, Some(("error", &e.message)));
    }
    let expected = cookie_named(&headers, SIGNIN_COOKIE).unwrap_or_default();
    let matches = !expected.is_empty()
        && crate::keys::constant_time_eq(expected.as_bytes(), f.csrf.as_bytes());
    if !matches {
        return signin_page(
            &state,
            StatusCode::FORBIDDEN,
            Some((
                "error",
                "The sign-in form is stale or forged (CSRF token missing or wrong): try again.",
            )),
        );
    }
    match authenticate(&state, &key, ip).await {
        Ok(caller) => {
            let id = match random_token() {
                Ok(i) => i,
                Err(e) => return signin_page(&state, e.status, Some(("error", &e.message))),
            };
            let now = service::now_ms();
            let limits = &state.limits;
            // sessions that ended meanwhile go now; past the cap, the key's oldest end
            let _ = state
                .store
                .prune_sessions(
                    now - limits.session_idle.as_millis() as i64,
                    now - limits.session_max_age.as_millis() as i64,
                )
                .await;
            let row = sigil_store::SessionRow {
                id_hash: session_hash(&id),
                key_id: caller.key_id.clone(),
                created_at: now,
                last_seen: now,
            };
            if let Err(e) = state
                .store
                .create_session(row, limits.sessions_per_key)
                .await
            {
                let e: ApiError = ServerError::from(e).into();
                return signin_page(&state, e.status, Some(("error", &e.message)));
            }
            let secure = if state.secure_cookies() {
                "; Secure"
            } else {
                ""
            };
            let mut r = redirect("/ui/secrets");
            let cookie = format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict{secure}");
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => signin_page(
            &state,
            e.status,
            Some(("error", &format!("Sign-in refused: {}", e.message))),
        ),
    }
}

#[derive(Deserialize)]
pub(crate) struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

pub(crate) async fn signout(
    State(state): State<Arc<AppState>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(f): Form<CsrfOnly>,
) -> Response {
    if let Err(r) = form_visitor(&state, &headers, ip, &f.csrf).await {
        return r;
    }
    if let Some(id) = cookie_value(&headers)
        && let Err(e) = state.store.delete_session(&session_hash(&id)).await
    {
        // the session must not outlive a sign-out that seemed to work
        return error_page(None, &ServerError::from(e).into());
    }
    let mut r = redirect("/?signedout=1");
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("sigil_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

#[derive(Deserialize, Default)]
pub(crate) struct ListParams {
    #[serde(default)]
    q: String,
    #[serde(default)]
    folder: String,
    cursor: Option<String>,
}

pub(crate) async fn secrets(
    State(state): State<Arc<AppState>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Query(p): Query<ListParams>,
) -> Response {
    let v = match visitor(&state, &headers, ip).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let c = &v.caller;
    let bad = |m: &str| error_page(Some(&v), &ApiError::invalid(m.to_owned()));
    if p.q.len() > 256
        || p.folder.len() > 256
        || !p
            .folder
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-/".contains(&b))
    {
        return bad("the search or folder is not a valid part of a name");
    }
    let after = match &p.cursor {
        None => None,
        Some(cur) => match URL_SAFE_NO_PAD
            .decode(cur.as_bytes())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
        {
            Some(n) => Some(n),
            None => return bad("invalid page cursor"),
        },
    };
    let listing = if p.q.is_empty() {
        service::secrets::Listing::Prefix(&p.folder)
    } else {
        service::secrets::Listing::Search(&p.q)
    };
    let (rows, more) =
        match service::secrets::list(&state, c, &c.team, listing, after.as_deref(), PAGE).await {
            Ok(r) => r,
            Err(e) => return error_page(Some(&v), &e.into()),
        };
    let writer = c.role >= Role::Writer;
    let names = key_names(&state, c.team_id).await;
    let mut body = String::new();
    body.push_str(&format!(
        r#"<h1>Secrets{}</h1><div class="card"><form method="get" action="/ui/secrets" class="row" role="search">
<div><label for="q">Search names</label><input id="q" name="q" type="search" value="{}" placeholder="part of a name"></div><button type="submit" class="secondary">Search</button></form></div>"#,
        if p.folder.is_empty() { String::new() } else { format!(" <span class=\"muted\">in {}</span>", esc(&p.folder)) },
        esc(&p.q)
    ));
    body.push_str(r#"<div class="card"><table><thead><tr><th>Name</th><th>Version</th><th class="opt">Updated at</th><th class="opt">Updated by</th><th></th></tr></thead><tbody>"#);
    if !p.folder.is_empty() {
        let parent = p
            .folder
            .trim_end_matches('/')
            .rsplit_once('/')
            .map_or(String::new(), |(a, _)| format!("{a}/"));
        body.push_str(&format!(r#"<tr><td class="name"><a href="/ui/secrets?folder={}">../</a></td><td></td><td class="opt"></td><td class="opt"></td><td></td></tr>"#, q(&parent)));
    }
    let mut folders = BTreeSet::new();
    for r in &rows {
        let rest = &r.name[p.folder.len().min(r.name.len())..];
        if p.q.is_empty()
            && let Some((dir, _)) = rest.split_once('/')
        {
            if folders.insert(dir.to_owned()) {
                body.push_str(&format!(
                    r#"<tr><td class="name"><a href="/ui/secrets?folder={}">{}/</a></td><td class="muted">folder</td><td class="opt"></td><td class="opt"></td><td></td></tr>"#,
                    q(&format!("{}{dir}/", p.folder)),
                    esc(dir)
                ));
            }
            continue;
        }
        body.push_str(&format!(
            r#"<tr><td class="name"><a href="/ui/secret/{}">{}</a></td><td>{}</td><td class="opt">{}</td><td class="opt">{}</td><td><a href="/ui/secret/{}">{}</a></td></tr>"#,
            q(&r.name),
            esc(&r.name),
            r.version,
            esc(&rfc3339(r.updated_at)),
            who(&names, &r.updated_by),
            q(&r.name),
            if writer { "Update" } else { "Details" }
        ));
    }
    if rows.is_empty() {
        body.push_str(r#"<tr><td colspan="5" class="muted">No secrets here.</td></tr>"#);
    }
    body.push_str("</tbody></table>");
    if more && let Some(last) = rows.last() {
        body.push_str(&format!(
            r#"<div class="pager"><span></span><a class="button secondary" href="/ui/secrets?q={}&amp;folder={}&amp;cursor={}">Next page</a></div>"#,
            q(&p.q),
            q(&p.folder),
            URL_SAFE_NO_PAD.encode(last.name.as_bytes())
        ));
    }
    body.push_str("</div>");
    if writer {
        body.push_str(&format!(
            r#"<div class="card"><h2>New secret</h2><form method="post" action="/ui/secrets"><input type="hidden" name="csrf" value="{}">
<label for="name">Name</label><input id="name" name="name" type="text" required placeholder="prod/db/password" value="{}">
<label for="value">Value</label><textarea id="value" name="value" required autocomplete="off"></textarea>
<div class="row"><div><label for="format">The value is</label><select id="format" name="format"><option value="text">text</option><option value="json">JSON</option></select></div>
<button type="submit">Create</button></div></form></div>"#,
            esc(&v.csrf),
            esc(&p.folder)
        ));
    }
    // no notice comes from the URL: a crafted link must not put its words on the page
    html(
        StatusCode::OK,
        page("Secrets", Some((c, &v.csrf)), None, &body),
    )
}

#[derive(Deserialize)]
pub(crate) struct SaveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    format: String,
}

pub(crate) async fn save(
    State(state): State<Arc<AppState>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(f): Form<SaveForm>,
) -> Response {
    let v = match form_visitor(&state, &headers, ip, &f.csrf).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let value = Zeroizing::new(f.value);
    let json = if f.format == "json" {
        match serde_json::from_str::<serde_json::Value>(&value) {
            Ok(j) => j,
            Err(e) => {
                let err = ApiError::invalid(format!(
                    "the value is not valid JSON (line {}, column {})",
                    e.line(),
                    e.column()
                ));
                return error_page(Some(&v), &err);
            }
        }
    } else {
        serde_json::Value::String(value.to_string())
    };
    let name = f.name.trim().to_owned();
    let r = service::secrets::write(&state, &v.caller, &v.caller.team, &name, &json, None)
        .await
        .map(|_| ());
    after_change(&v, r, &format!("/ui/secret/{}?saved=1", q(&name)))
}

#[derive(Deserialize, Default)]
pub(crate) struct DetailParams {
    saved: Option<String>,
    restored: Option<String>,
    confirm: Option<String>,
}

pub(crate) async fn detail(
    State(state): State<Arc<AppState>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(p): Query<DetailParams>,
) -> Response {
    let v = match visitor(&state, &headers, ip).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let c = &v.caller;
    let h = match service::secrets::history(&state, c, &c.team, &name, None, 1000).await {
        Ok(h) => h,
        Err(e) => return error_page(Some(&v), &e.into()),
    };
    let writer = c.role >= Role::Writer;
    let mut body = format!(
        r#"<p><a href="/ui/secrets">← Secrets</a></p><h1><code>{}</code>{}</h1>"#,
        esc(&h.name),
        if h.deleted {
            " <span class=\"muted\">(deleted)</span>"
        } else {
            ""
        }
    );
    if writer && h.deleted {
        body.push_str(&format!(
            r#"<div class="card"><p>This secret is deleted; its versions are kept.</p><form method="post" action="/ui/restore/{}"><input type="hidden" name="csrf" value="{}"><button type="submit">Restore</button></form></div>"#,
            q(&h.name),
            esc(&v.csrf)
        ));
    }
    if writer && !h.deleted {
        body.push_str(&format!(
            r#"<div class="card"><h2>Update</h2><p class="muted">Values are write-only: the current value is never shown. A new value makes a new version.</p>
<form method="post" action="/ui/secrets"><input type="hidden" name="csrf" value="{}"><input type="hidden" name="name" value="{}">
<label for="value">New value</label><textarea id="value" name="value" required autocomplete="off"></textarea>
<div class="row"><div><label for="format">The value is</label><select id="format" name="format"><option value="text">text</option><option value="json">JSON</option></select></div>
<button type="submit">Save new version</button></div></form></div>"#,
            esc(&v.csrf),
            esc(&h.name)
        ));
        if p.confirm.is_some() {
            body.push_str(&format!(
                r#"<div class="card"><h2>Delete {}?</h2><p>It can be restored later.</p><form method="post" action="/ui/delete/{}"><input type="hidden" name="csrf" value="{}"><button class="danger" type="submit">Yes, delete it</button> <a class="button secondary" href="/ui/secret/{}">Cancel</a></form></div>"#,
                esc(&h.name),
                q(&h.name),
                esc(&v.csrf),
                q(&h.name)
            ));
        } else {
            body.push_str(&format!(
                r#"<div class="card"><a class="button secondary" href="/ui/secret/{}?confirm=1">Delete…</a></div>"#,
                q(&h.name)
            ));
        }
    }
    let names = key_names(&state, c.team_id).await;
    body.push_str(r#"<div class="card"><h2>History</h2><table><thead><tr><th>Version</th><th>Written at</th><th>By</th></tr></thead><tbody>"#);
    for ver in &h.versions {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ver.version,
            esc(&ver.created_at),
            who(&names, &ver.created_by)
        ));
    }
    body.push_str("</tbody></table></div>");
    let flash = if p.saved.is_some() {
        Some(("ok", "Saved a new version."))
    } else if p.restored.is_some() {
        Some(("ok", "Restored."))
    } else {
        None
    };
    html(
        StatusCode::OK,
        page(&h.name, Some((c, &v.csrf)), flash, &body),
    )
}

pub(crate) async fn delete(
    State(state): State<Arc<AppState>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    let v = match form_visitor(&state, &headers, ip, &f.csrf).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let done = service::secrets::delete(&state, &v.caller, &v.caller.team, &name).await;
    after_change(&v, done, &format!("/ui/secret/{}", q(&name)))
}

pub(crate) async fn restore(
    State(state): State<Arc<AppState>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    let v = match form_visitor(&state, &headers, ip, &f.csrf).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let done = service::secrets::restore(&state, &v.caller, &v.caller.team, &name)
        .await
        .map(|_| ());
    after_change(&v, done, &format!("/ui/secret/{}?restored=1", q(&name)))
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

fn keys_body(
    v: &Visitor,
    keys: &[sigil_core::wire::KeyInfo],
    created: Option<&sigil_core::wire::CreatedKey>,
) -> String {
    let mut body = String::from("<h1>Keys</h1>");
    if let Some(k) = created {
        body.push_str(&format!(
            r#"<div class="card"><h2>New {} key {}</h2><p>Copy it now: it is shown once and cannot be shown again.</p>
<div class="row"><div><input id="new-key" type="text" readonly value="{}"></div><button type="button" class="secondary" data-copy="new-key" hidden>Copy</button></div></div>"#,
            k.role.as_str(),
            esc(&k.id),
            esc(&k.key)
        ));
    }
    body.push_str(r#"<div class="card"><table><thead><tr><th>Id</th><th>Role</th><th>Name</th><th class="opt">Created</th><th>Revoked</th><th></th></tr></thead><tbody>"#);
    for k in keys {
        let action = if k.revoked_at.is_none() {
            format!(
                r#"<form class="inline" method="post" action="/ui/keys/{}/revoke"><input type="hidden" name="csrf" value="{}"><button class="danger" type="submit">Revoke</button></form>"#,
                esc(&k.id),
                esc(&v.csrf)
            )
        } else {
            String::new()
        };
        body.push_str(&format!(
            r#"<tr><td class="name">{}</td><td>{}</td><td>{}</td><td class="opt">{}</td><td>{}</td><td>{action}</td></tr>"#,
            esc(&k.id),
            k.role.as_str(),
            esc(&k.name),
            esc(&k.created_at),
            esc(k.revoked_at.as_deref().unwrap_or("—"))
        ));
    }
    body.push_str("</tbody></table></div>");
    body.push_str(&format!(
        r#"<div class="card"><h2>New key</h2><form method="post" action="/ui/keys" class="row"><input type="hidden" name="csrf" value="{}">
<div><label for="role">Role</label><select id="role" name="role"><option value="viewer">viewer: names and metadata</option><option value="reader">reader: read values</option><option value="writer">writer: set, delete, restore</option><option value="admin">admin: also keys and audit</option></select></div>
<div><label for="keyname">Name</label><input id="keyname" name="name" type="text" placeholder="etl runner"></div><button type="submit">Create key</button></form></div>"#,
        esc(&v.csrf)
    ));
    body
}

pub(crate) async fn keys_page(
    State(state): State<Arc<AppState>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Response {
    let v = match visitor(&state, &headers, ip).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Err(e) = need_admin(&v) {
        return error_page(Some(&v), &e);
    }
    match service::keys::list(&state, &v.caller, &v.caller.team).await {
        Ok(keys) => html(
            StatusCode::OK,
            page(
                "Keys",
                Some((&v.caller, &v.csrf)),
                None,
                &keys_body(&v, &keys, None),
            ),
        ),
        Err(e) => error_page(Some(&v), &e.into()),
    }
}

#[derive(Deserialize)]
pub(crate) struct KeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    name: String,
}

pub(crate) async fn create_key(
    State(state): State<Arc<AppState>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(f): Form<KeyForm>,
) -> Response {
    let v = match form_visitor(&state, &headers, ip, &f.csrf).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Err(e) = need_admin(&v) {
        return error_page(Some(&v), &e);
    }
    let Some(role) = Role::parse(&f.role) else {
        let e = ApiError::invalid("the role must be viewer, reader, writer or admin");
        return error_page(Some(&v), &e);
    };
    let created =
        match service::keys::create(&state, &v.caller, &v.caller.team, role, &f.name).await {
            Ok(k) => k,
            Err(e) => return error_page(Some(&v), &e.into()),
        };
    match service::keys::list(&state, &v.caller, &v.caller.team).await {
        Ok(keys) => html(
            StatusCode::OK,
            page(
                "Keys",
                Some((&v.caller, &v.csrf)),
                Some(("ok", "Key created.")),
                &keys_body(&v, &keys, Some(&created)),
            ),
        ),
        Err(e) => error_page(Some(&v), &e.into()),
    }
}

pub(crate) async fn revoke_key(
    State(state): State<Arc<AppState>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    let v = match form_visitor(&state, &headers, ip, &f.csrf).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Err(e) = need_admin(&v) {
        return error_page(Some(&v), &e);
    }
    let done = service::keys::revoke(&state, &v.caller, &v.caller.team, &id).await;
    after_change(&v, done, "/ui/keys")
}

#[derive(Deserialize, Default)]
pub(crate) struct AuditParams {
    #[serde(default)]
    name: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    key: String,
    cursor: Option<i64>,
}

/// How many records one page of the audit view looks through for its filters.
const AUDIT_SCAN: u32 = service::audit::MAX_PAGE;

pub(crate) async fn audit_page(
    State(state): State<Arc<AppState>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Query(p): Query<AuditParams>,
) -> Response {
    let v = match visitor(&state, &headers, ip).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Err(e) = need_admin(&v) {
        return error_page(Some(&v), &e);
    }
    // newest first, as people look for the latest; the cursor pages back
    let page_of = service::audit::PageOf {
        since: 0,
        cursor: p.cursor,
        limit: AUDIT_SCAN,
        newest_first: true,
    };
    let rows = match service::audit::page(&state, &v.caller, &v.caller.team, page_of).await {
        Ok((rows, _)) => rows,
        Err(e) => return error_page(Some(&v), &e.into()),
    };
    let names = key_names(&state, v.caller.team_id).await;
    let full_scan = rows.len() == AUDIT_SCAN as usize;
    let mut shown: Vec<&sigil_store::AuditRow> = Vec::new();
    let mut next = None;
    for r in &rows {
        let keep = (p.name.is_empty() || r.name.as_deref().is_some_and(|n| n.contains(&p.name)))
            && (p.action.is_empty() || r.action.as_str() == p.action)
            && (p.key.is_empty() || r.key_id == p.key);
        if keep {
            if shown.len() == PAGE as usize {
                next = shown.last().map(|x| x.id);
                break;
            }
            shown.push(r);
        }
    }
    if next.is_none() && full_scan {
        next = rows.last().map(|r| r.id);
    }
    let opt = |value: &str, label: &str| {
        let sel = if p.action == value { " selected" } else { "" };
        format!(r#"<option value="{value}"{sel}>{label}</option>"#)
    };
    let options: String = [
        ("", "any"),
        ("secret.read", "read"),
        ("secret.write", "write"),
        ("secret.delete", "delete"),
        ("secret.restore", "restore"),
        ("key.create", "key created"),
        ("key.revoke", "key revoked"),
        ("team.create", "team created"),
    ]
    .iter()
    .map(|(v, l)| opt(v, l))
    .collect();
    let mut body = format!(
        r#"<h1>Audit</h1><div class="card"><form method="get" action="/ui/audit" class="row">
<div><label for="fname">Name contains</label><input id="fname" name="name" type="search" value="{}"></div>
<div><label for="faction">Action</label><select id="faction" name="action">{options}</select></div>
<div><label for="fkey">Key id</label><input id="fkey" name="key" type="text" value="{}"></div><button type="submit" class="secondary">Filter</button></form></div>"#,
        esc(&p.name),
        esc(&p.key)
    );
    body.push_str(r#"<div class="card"><table><thead><tr><th>When</th><th>Key</th><th>Action</th><th>Name</th><th>Version</th><th>Outcome</th><th class="opt">From</th><th class="opt">Flow run / task</th></tr></thead><tbody>"#);
    for r in &shown {
        let run = match (&r.flow_run, &r.task) {
            (Some(a), Some(b)) => format!("{} / {}", esc(a), esc(b)),
            (Some(a), None) => esc(a),
            _ => String::new(),
        };
        body.push_str(&format!(
            r#"<tr><td>{}</td><td class="name">{}</td><td>{}</td><td class="name">{}</td><td>{}</td><td>{}</td><td class="opt">{}</td><td class="opt">{run}</td></tr>"#,
            esc(&rfc3339(r.at)),
            who(&names, &r.key_id),
            esc(r.action.as_str()),
            esc(r.name.as_deref().unwrap_or("")),
            r.version.map_or(String::new(), |x| x.to_string()),
            esc(r.outcome.as_str()),
            esc(&r.client)
        ));
    }
    if shown.is_empty() {
        body.push_str(r#"<tr><td colspan="8" class="muted">No records.</td></tr>"#);
    }
    body.push_str("</tbody></table>");
    if let Some(n) = next {
        body.push_str(&format!(
            r#"<div class="pager"><span></span><a class="button secondary" href="/ui/audit?name={}&amp;action={}&amp;key={}&amp;cursor={n}">Older records</a></div>"#,
            q(&p.name),
            q(&p.action),
            q(&p.key)
        ));
    }
    body.push_str("</div>");
    html(
        StatusCode::OK,
        page("Audit", Some((&v.caller, &v.csrf)), None, &body),
    )
}
