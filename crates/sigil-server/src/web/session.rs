//! Signing in and out: the sign-in page, sessions made and ended (kept in the database).

#[allow(unused_imports)]
use super::*;

/// What a redirect to the sign-in page may ask it to say: (query key, kind, text), the first
/// key present wins.
const NOTICES: [(&str, &str, &str); 4] = [
    (
        "revoked",
        "error",
        "Your key was refused (revoked or unknown): sign in again.",
    ),
    ("expired", "error", "Your session expired: sign in again."),
    ("error", "error", "Something went wrong: sign in again."),
    ("signedout", "ok", "Signed out."),
];

pub(crate) async fn home(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    if let Some(id) = cookie_value(&headers)
        && matches!(state.store.session(&session_hash(&id)).await, Ok(Some(_)))
    {
        return redirect("/ui/secrets");
    }
    let flash = NOTICES
        .iter()
        .find(|(key, ..)| query.contains_key(*key))
        .map(|(_, kind, text)| (*kind, *text));
    signin_page(&state, StatusCode::OK, flash)
}

/// The sign-in page. Signing in changes state too (a forged sign-in would put a victim in the
/// attacker's team), so its form carries a token that must match a cookie set with the page
/// (double submit): another site can neither read the token nor set the cookie.
pub(super) fn signin_page(state: &AppState, status: StatusCode, flash: Flash) -> Response {
    let token = match random_token() {
        Ok(t) => t,
        Err(e) => {
            return html(
                e.status,
                page("Sign in", None, Some(("error", &e.message)), html! {}),
            );
        }
    };
    let body = html! {
        div.card.signin {
            h1 { "Sign in" }
            form method="post" action="/ui/signin" {
                (csrf_field(&token))
                label for="key" { "API key" }
                input id="key" name="key" type="password" autocomplete="off" placeholder="sgl_…" required;
                p.muted {
                    "Your team's administrator gives you a key (" code { "sigil keys create" }
                    "). It stays on the server for this session only."
                }
                button type="submit" { "Sign in" }
            }
        }
    };
    let mut r = html(status, page("Sign in", None, flash, body));
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
    // the form's own string is the one zeroed on drop: no copy of the key is left behind
    let key = Zeroizing::new(f.key);
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
    match authenticate(&state, key.trim(), ip).await {
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
                key_id: caller.key_id.to_string(),
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

pub(crate) async fn signout(
    State(state): State<Arc<AppState>>,
    v: Visitor,
    headers: HeaderMap,
    Form(f): Form<CsrfOnly>,
) -> Page {
    v.posted(&f.csrf)?;
    if let Some(id) = cookie_value(&headers)
        && let Err(e) = state.store.delete_session(&session_hash(&id)).await
    {
        // the session must not outlive a sign-out that seemed to work
        return Err(error_page(None, &ServerError::from(e).into()));
    }
    let mut r = redirect("/?signedout=1");
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("sigil_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(r)
}
