//! The "Team → Secrets" page, through the router: sign-in, sessions, CSRF, roles, write-only values.

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::{Server, sqlite_server};

struct Page {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get("location")
            .map_or("", |v| v.to_str().unwrap())
    }
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a form with a CSRF token")
            + 19;
        self.body[at..].split('"').next().unwrap().to_owned()
    }
}

fn form_encode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            let enc: String = v
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            format!("{k}={enc}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A page, signed in with `cookie`.
async fn get(s: &Server, cookie: &str, path: &str) -> Page {
    request(s, Method::GET, path, Some(cookie), None, &[]).await
}

/// A page asked for without a session.
async fn anonymous(s: &Server, path: &str) -> Page {
    request(s, Method::GET, path, None, None, &[]).await
}

/// A form that carries only its CSRF token (delete, restore, revoke, sign out).
async fn post(s: &Server, cookie: &str, path: &str, csrf: &str) -> Page {
    submit(s, Some(cookie), path, &[("csrf", csrf)]).await
}

/// A form posted with `cookie` (none: without a session or sign-in cookie).
async fn submit(s: &Server, cookie: Option<&str>, path: &str, form: &[(&str, &str)]) -> Page {
    request(s, Method::POST, path, cookie, Some(form), &[]).await
}

/// Posts the save form of the secrets page: `name`, `value`, `format` (`text` or `json`).
async fn save(s: &Server, cookie: &str, csrf: &str, name: &str, value: &str, format: &str) -> Page {
    let form = [
        ("csrf", csrf),
        ("name", name),
        ("value", value),
        ("format", format),
    ];
    submit(s, Some(cookie), "/ui/secrets", &form).await
}

async fn request(
    s: &Server,
    method: Method,
    path: &str,
    cookie: Option<&str>,
    form: Option<&[(&str, &str)]>,
    extra: &[(&str, &str)],
) -> Page {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "sigil.test");
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    for (h, v) in extra {
        req = req.header(*h, *v);
    }
    let body = match form {
        Some(f) => {
            req = req.header("content-type", "application/x-www-form-urlencoded");
            Body::from(form_encode(f))
        }
        None => Body::empty(),
    };
    let app = sigil_server::app(s.state.clone()).layer(MockConnectInfo(s.client));
    let resp = app.oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    Page {
        status,
        headers,
        body,
    }
}

/// Signs in with `key`; returns the session cookie.
/// The sign-in form's token and the cookie it must match.
async fn signin_form(s: &Server) -> (String, String) {
    let home = anonymous(s, "/").await;
    let set = home
        .headers
        .get("set-cookie")
        .expect("the sign-in page sets its cookie")
        .to_str()
        .unwrap();
    assert!(
        set.starts_with("sigil_signin=")
            && set.contains("HttpOnly")
            && set.contains("SameSite=Strict"),
        "{set}"
    );
    (home.csrf(), set.split(';').next().unwrap().to_owned())
}

async fn sign_in(s: &Server, key: &str) -> String {
    let (token, cookie) = signin_form(s).await;
    let p = submit(
        s,
        Some(&cookie),
        "/ui/signin",
        &[("key", key), ("csrf", &token)],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let cookie = p
        .headers
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    cookie.split(';').next().unwrap().to_owned()
}

const CANARY: &str = "canary-web-58d1e0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_create_list_update_delete_restore_sign_out() {
    let s = sqlite_server(sigil_server::Limits::default()).await;
    let home = anonymous(&s, "/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("type=\"password\""));
    let (token, signin_cookie) = signin_form(&s).await;
    // (sign-in cookie, key, token, status): a wrong key; no cookie and no token (a forged
    // sign-in from another site); a wrong token. None of them starts a session.
    let sc = Some(signin_cookie.as_str());
    let refusals = [
        (
            sc,
            "sgl_nope",
            Some(token.as_str()),
            StatusCode::UNAUTHORIZED,
        ),
        (None, &s.admin, None, StatusCode::FORBIDDEN),
        (sc, &s.admin, Some("other"), StatusCode::FORBIDDEN),
    ];
    for (cookie, key, token, status) in refusals {
        let mut form = vec![("key", key)];
        form.extend(token.map(|t| ("csrf", t)));
        let p = submit(&s, cookie, "/ui/signin", &form).await;
        assert_eq!(p.status, status, "{cookie:?} {token:?}: {}", p.body);
        if status == StatusCode::UNAUTHORIZED {
            assert!(p.body.contains("Sign-in refused"));
        }
        assert!(
            p.headers
                .get_all("set-cookie")
                .iter()
                .all(|v| !v.to_str().unwrap().starts_with("sigil_session="))
        );
    }
    let cookie = sign_in(&s, &s.admin).await;
    let list = get(&s, &cookie, "/ui/secrets").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("team <b>default</b>"));
    let csrf = list.csrf();
    // create
    let p = save(&s, &cookie, &csrf, "web/db/password", CANARY, "text").await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    // listed, inside its folder
    let root = get(&s, &cookie, "/ui/secrets").await;
    assert!(root.body.contains(">web/</a>"), "folders for names with /");
    let folder = get(&s, &cookie, "/ui/secrets?folder=web/db/").await;
    assert!(
        folder.body.contains(">web/db/password</a>"),
        "{}",
        folder.body
    );
    let found = get(&s, &cookie, "/ui/secrets?q=pass").await;
    assert!(found.body.contains(">web/db/password</a>"));
    // update: a new version; the old value is never shown
    let detail = get(&s, &cookie, "/ui/secret/web/db/password").await;
    assert!(detail.body.contains("Save new version"));
    let p = save(
        &s,
        &cookie,
        &csrf,
        "web/db/password",
        "{\"user\": \"u\"}",
        "json",
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let detail = get(&s, &cookie, "/ui/secret/web/db/password?saved=1").await;
    assert!(
        detail.body.contains("<td>2</td>") && detail.body.contains("<td>1</td>"),
        "history shows both versions"
    );
    assert_eq!(
        s.get(&s.admin, "web/db/password").await.json["value"]["user"],
        "u"
    );
    // invalid JSON is refused with a message and changes nothing
    let p = save(&s, &cookie, &csrf, "web/db/password", "{nope", "json").await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    assert!(p.body.contains("not valid JSON"));
    // delete, with a confirmation
    let confirm = get(&s, &cookie, "/ui/secret/web/db/password?confirm=1").await;
    assert!(confirm.body.contains("Yes, delete it"));
    let p = post(&s, &cookie, "/ui/delete/web/db/password", &csrf).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let gone = get(&s, &cookie, "/ui/secrets").await;
    assert!(!gone.body.contains("web/"));
    let deleted = get(&s, &cookie, "/ui/secret/web/db/password").await;
    assert!(deleted.body.contains("(deleted)") && deleted.body.contains(">Restore</button>"));
    // restore
    let p = post(&s, &cookie, "/ui/restore/web/db/password", &csrf).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(s.get(&s.admin, "web/db/password").await.json["version"], 2);
    // every page after the save: no canary in any body or header
    for path in [
        "/ui/secrets",
        "/ui/secrets?q=web",
        "/ui/secret/web/db/password",
        "/ui/secrets?folder=web/db/",
        "/",
    ] {
        let p = get(&s, &cookie, path).await;
        assert!(!p.body.contains(CANARY), "{path} sent the value");
        assert!(!format!("{:?}", p.headers).contains(CANARY));
    }
    // sign out ends the session
    let p = post(&s, &cookie, "/ui/signout", &csrf).await;
    assert_eq!(
        (p.status, p.location()),
        (StatusCode::SEE_OTHER, "/?signedout=1")
    );
    assert!(
        p.headers
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = get(&s, &cookie, "/ui/secrets").await;
    assert_eq!(
        (after.status, after.location()),
        (StatusCode::SEE_OTHER, "/")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csrf_and_other_origins_are_refused_and_change_nothing() {
    let s = sqlite_server(sigil_server::Limits::default()).await;
    let cookie = sign_in(&s, &s.admin).await;
    let csrf = get(&s, &cookie, "/ui/secrets").await.csrf();
    let form = |token, name| {
        [
            ("csrf", token),
            ("name", name),
            ("value", "x"),
            ("format", "text"),
        ]
    };
    let none: &[(&str, &str)] = &[];
    // (token, name, extra headers): no token, a wrong one, a good token from another site
    // (refused by the origin, then by the fetch metadata)
    let refused = [
        ("", "forged", none),
        ("wrong-token", "forged", none),
        (&csrf, "forged", &[("origin", "https://evil.example")]),
        (&csrf, "forged", &[("sec-fetch-site", "cross-site")]),
    ];
    for (token, name, headers) in refused {
        let p = request(
            &s,
            Method::POST,
            "/ui/secrets",
            Some(&cookie),
            Some(&form(token, name)),
            headers,
        )
        .await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{token:?} {headers:?}");
        if token.is_empty() {
            assert!(p.body.contains("CSRF"));
        }
    }
    let p = request(&s, Method::POST, "/ui/secrets", Some(&cookie), None, &[]).await;
    assert!(p.status.is_client_error());
    assert_eq!(
        s.get(&s.admin, "forged").await.status,
        StatusCode::NOT_FOUND,
        "nothing was written"
    );
    // browsers send `Origin: null` with our own forms (we ask for no referrer): the token decides
    // (regression: such posts were refused as "from another origin" in Chromium); the same form
    // from the same origin works
    let accepted = [
        (
            "from-null",
            &[("origin", "null"), ("sec-fetch-site", "same-origin")][..],
        ),
        ("forged", &[("origin", "http://sigil.test")]),
    ];
    for (name, headers) in accepted {
        let p = request(
            &s,
            Method::POST,
            "/ui/secrets",
            Some(&cookie),
            Some(&form(&csrf, name)),
            headers,
        )
        .await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{headers:?}: {}", p.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_no_changing_buttons_and_cannot_forge_a_post() {
    let s = sqlite_server(sigil_server::Limits::default()).await;
    s.put(&s.admin, "seen", serde_json::json!("viewer-canary-1"))
        .await;
    let viewer = s.key("viewer").await;
    let cookie = sign_in(&s, &viewer).await;
    let list = get(&s, &cookie, "/ui/secrets").await;
    assert!(list.body.contains(">seen</a>"));
    assert!(!list.body.contains("New secret") && !list.body.contains(">Create<"));
    let detail = get(&s, &cookie, "/ui/secret/seen").await;
    assert!(!detail.body.contains("Save new version") && !detail.body.contains("Delete"));
    assert!(!detail.body.contains("viewer-canary-1"));
    // a forged post with the viewer's own valid token is refused by the role check
    let csrf = list.csrf(); // the sign-out form carries it
    let p = save(&s, &cookie, &csrf, "seen", "overwritten", "text").await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let p = post(&s, &cookie, "/ui/delete/seen", &csrf).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let r = s.get(&s.admin, "seen").await;
    assert_eq!(
        (r.json["version"].as_i64(), r.json["value"].as_str()),
        (Some(1), Some("viewer-canary-1"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_ends_the_session_and_pages_carry_security_headers() {
    let s = sqlite_server(sigil_server::Limits::default()).await;
    let writer = s.key("writer").await;
    let cookie = sign_in(&s, &writer).await;
    let p = get(&s, &cookie, "/ui/secrets").await;
    let csp = p
        .headers
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(!p.body.contains("<script>"), "no inline script");
    assert!(
        csp.contains("default-src 'none'")
            && !csp.contains("unsafe-inline")
            && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert_eq!(p.headers["x-frame-options"], "DENY");
    assert_eq!(p.headers["cache-control"], "no-store");
    assert_eq!(p.headers["referrer-policy"], "no-referrer");
    let css = anonymous(&s, "/ui/static/sigil.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(
        css.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    let id = writer.split('_').nth(1).unwrap();
    s.send(
        Method::DELETE,
        &format!("/api/v1/teams/default/keys/{id}"),
        &s.admin,
    )
    .await;
    let p = get(&s, &cookie, "/ui/secrets").await;
    assert_eq!(
        (p.status, p.location()),
        (StatusCode::SEE_OTHER, "/?revoked=1")
    );
    let p = get(&s, &cookie, "/ui/secrets").await;
    assert_eq!(p.location(), "/", "the session is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_manage_keys_and_read_the_audit_on_the_page() {
    let s = sqlite_server(sigil_server::Limits::default()).await;
    let cookie = sign_in(&s, &s.admin).await;
    let list = get(&s, &cookie, "/ui/secrets").await;
    assert!(list.body.contains("href=\"/ui/keys\"") && list.body.contains("href=\"/ui/audit\""));
    let csrf = list.csrf();
    let form = [
        ("csrf", csrf.as_str()),
        ("role", "reader"),
        ("name", "etl runner"),
    ];
    let p = submit(&s, Some(&cookie), "/ui/keys", &form).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    let at = p
        .body
        .find("value=\"sgl_")
        .expect("the new key is shown once")
        + 7;
    let key = p.body[at..].split('"').next().unwrap().to_owned();
    assert!(p.body.contains("data-copy=\"new-key\""), "a copy button");
    s.put(&s.admin, "audited-secret", serde_json::json!("v"))
        .await;
    assert_eq!(
        s.get(&key, "audited-secret").await.status,
        StatusCode::OK,
        "the key works"
    );
    let keys = get(&s, &cookie, "/ui/keys").await;
    assert!(
        keys.body.contains("etl runner") && !keys.body.contains(&key),
        "listed, never shown again"
    );
    let id = key.split('_').nth(1).unwrap();
    let p = post(&s, &cookie, &format!("/ui/keys/{id}/revoke"), &csrf).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(
        s.get(&key, "audited-secret").await.status,
        StatusCode::UNAUTHORIZED
    );
    // the audit page, filtered
    let audit = get(&s, &cookie, "/ui/audit?action=key.revoke").await;
    assert_eq!(audit.status, StatusCode::OK);
    assert!(
        audit.body.contains(id) && !audit.body.contains("<td>secret.write</td>"),
        "{}",
        audit.body
    );
    let audit = get(&s, &cookie, "/ui/audit?name=audited-secret").await;
    assert!(
        audit.body.contains("<td>secret.write</td>") && !audit.body.contains("<td>key.revoke</td>"),
        "{}",
        audit.body
    );
    // a record's face, when it is not the REST API: a read through Prefect 1's GraphQL API
    let body = serde_json::json!({
        "query": "query($name: String!) { secret_value(name: $name) }",
        "variables": "{\"name\": \"audited-secret\"}",
    });
    let r = s
        .call_with(
            Method::POST,
            "/prefect/graphql",
            Some(&s.admin),
            Some(body.to_string().into_bytes()),
            &[("x-prefect-core-version", "1.4.1")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let audit = get(
        &s,
        &cookie,
        "/ui/audit?name=audited-secret&action=secret.read",
    )
    .await;
    assert!(
        audit.body.contains("via prefect (prefect 1.4.1)"),
        "{}",
        audit.body
    );
    // a writer has neither page, and cannot post to them
    let writer = s.key("writer").await;
    let wc = sign_in(&s, &writer).await;
    let wl = get(&s, &wc, "/ui/secrets").await;
    assert!(!wl.body.contains("href=\"/ui/keys\""));
    assert_eq!(get(&s, &wc, "/ui/keys").await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        get(&s, &wc, "/ui/audit").await.status,
        StatusCode::FORBIDDEN
    );
    let wcsrf = wl.csrf();
    let form = [
        ("csrf", wcsrf.as_str()),
        ("role", "admin"),
        ("name", "escalate"),
    ];
    let p = submit(&s, Some(&wc), "/ui/keys", &form).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
}

/// Ten thousand secrets: the page shows 50 at a time and pages through them in order; search
/// finds by part of a name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_secrets_page_in_order() {
    let s = sqlite_server(sigil_server::Limits::default()).await;
    let writes: Vec<_> = (0..10_000)
        .map(|i| {
            let srv = s.clone();
            tokio::spawn(async move {
                let r = srv
                    .put(&srv.admin, &format!("bulk/{i:05}"), serde_json::json!("v"))
                    .await;
                assert_eq!(r.status, StatusCode::OK);
            })
        })
        .collect();
    for w in writes {
        w.await.unwrap();
    }
    let cookie = sign_in(&s, &s.admin).await;
    let mut path = "/ui/secrets?folder=bulk/".to_owned();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let p = get(&s, &cookie, &path).await;
        assert_eq!(p.status, StatusCode::OK);
        let names: Vec<String> = p
            .body
            .split("<td class=\"name\"><a href=\"/ui/secret/")
            .skip(1)
            .map(|chunk| chunk.split('"').next().unwrap().to_owned())
            .collect();
        assert_eq!(names.len(), 50, "a page holds 50 rows");
        seen.extend(names);
        let at = p
            .body
            .find("href=\"/ui/secrets?q=")
            .expect("a next page link");
        path = p.body[at + 6..]
            .split('"')
            .next()
            .unwrap()
            .replace("&amp;", "&");
    }
    let want: Vec<String> = (0..150).map(|i| format!("bulk/{i:05}")).collect();
    assert_eq!(seen, want);
    let p = get(&s, &cookie, "/ui/secrets?q=0999").await;
    assert_eq!(
        p.body
            .matches("<td class=\"name\"><a href=\"/ui/secret/bulk/0999")
            .count(),
        10
    );
}

// Others' failed authentications from the same address (everyone behind one proxy) gave a 429
// that also destroyed a signed-in web session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn others_failures_do_not_end_a_session() {
    let limits = sigil_server::Limits {
        auth_failures_allowed: 3,
        ..Default::default()
    };
    let s = sqlite_server(limits).await;
    let writer = s.key("writer").await;
    let cookie = sign_in(&s, &writer).await;
    for _ in 0..10 {
        s.call(Method::GET, "/api/v1/whoami", Some("nonsense"), None)
            .await;
    }
    let p = get(&s, &cookie, "/ui/secrets").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    let p = get(&s, &cookie, "/ui/secrets").await;
    assert_eq!(p.status, StatusCode::OK, "the session is still there");
}

// The page showed text from the URL (`/ui/secrets?done=<anything>`) as a notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_notice_comes_from_the_url() {
    let s = sqlite_server(sigil_server::Limits::default()).await;
    let cookie = sign_in(&s, &s.admin.clone()).await;
    for q in ["done", "deleted"] {
        let p = get(
            &s,
            &cookie,
            &format!("/ui/secrets?{q}=Your%20key%20expired%3A%20paste%20it%20at%20evil.example"),
        )
        .await;
        assert_eq!(p.status, StatusCode::OK);
        assert!(!p.body.contains("evil.example"), "{}", p.body);
    }
}

// A page's path that is not UTF-8 was answered with axum's plain text, not an HTML page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_that_is_not_utf8_is_an_html_error_page() {
    let s = sqlite_server(sigil_server::Limits::default()).await;
    let cookie = sign_in(&s, &s.admin.clone()).await;
    let p = get(&s, &cookie, "/ui/secret/%FF").await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST, "{}", p.body);
    assert_eq!(
        p.headers.get("content-type").unwrap(),
        "text/html; charset=utf-8"
    );
    assert!(p.body.contains("invalid path"), "{}", p.body);
    assert!(p.headers.get("content-security-policy").is_some());
    let csrf = get(&s, &cookie, "/ui/secrets").await.csrf();
    for path in ["/ui/delete/%FF", "/ui/restore/%FF", "/ui/keys/%FF/revoke"] {
        let p = post(&s, &cookie, path, &csrf).await;
        assert_eq!(p.status, StatusCode::BAD_REQUEST, "{path}: {}", p.body);
        assert!(p.body.contains("invalid path"), "{path}: {}", p.body);
    }
}

// An unknown page under /ui/ answered with the API's JSON error; the audit page listed the oldest
// records first; "updated by" and the audit's key column showed a bare key id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_as_a_new_user_sees_it() {
    let s = sqlite_server(sigil_server::Limits::default()).await;
    let cookie = sign_in(&s, &s.admin.clone()).await;
    let p = get(&s, &cookie, "/ui/nope").await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    assert!(
        p.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
            && p.body.contains("There is no such page."),
        "{}",
        p.body
    );
    for i in 0..3 {
        s.put(&s.admin, &format!("n{i}"), serde_json::json!("v-1234"))
            .await;
    }
    let p = get(&s, &cookie, "/ui/audit").await;
    assert_eq!(p.status, StatusCode::OK);
    let (a, b) = (p.body.find(">n2<").unwrap(), p.body.find(">n0<").unwrap());
    assert!(a < b, "newest first");
    let id = s.admin.split('_').nth(1).unwrap();
    assert!(
        p.body.contains(&format!(
            "bootstrap administrator <span class=\"muted\">({id})</span>"
        )),
        "the key's name is shown: {}",
        p.body
    );
    let p = get(&s, &cookie, "/ui/secrets").await;
    assert!(p.body.contains("bootstrap administrator"), "{}", p.body);
}

/// Web sessions live in the database: one replica signs in, another serves, a third signs out;
/// a revoked key ends its sessions everywhere; idle sessions end; a key has at most so many.
async fn sessions_are_shared_by_replicas(s: &Server) {
    let a = s.clone();
    let b = s.replica(sigil_server::Limits::default());
    let writer = a.key("writer").await;
    let cookie = sign_in(&a, &writer).await;
    // through B: list, then save with the token B's page gives
    let list = get(&b, &cookie, "/ui/secrets").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let saved = save(
        &b,
        &cookie,
        &list.csrf(),
        "via-b",
        "saved-through-b",
        "text",
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let detail = get(&a, &cookie, "/ui/secret/via-b").await;
    assert_eq!(detail.status, StatusCode::OK, "A sees what B saved");
    // signing out through B ends the session on A
    let out = post(&b, &cookie, "/ui/signout", &list.csrf()).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER, "{}", out.body);
    let p = get(&a, &cookie, "/ui/secrets").await;
    assert_eq!(p.location(), "/", "signed out everywhere");

    // revoking the key through A ends its sessions on B within a second
    let cookie = sign_in(&a, &writer).await;
    assert_eq!(get(&b, &cookie, "/ui/secrets").await.status, StatusCode::OK);
    let id = writer.split('_').nth(1).unwrap();
    let r = a
        .send(
            Method::DELETE,
            &format!("/api/v1/teams/default/keys/{id}"),
            &a.admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let revoked = std::time::Instant::now();
    loop {
        let p = get(&b, &cookie, "/ui/secrets").await;
        if p.location() == "/?revoked=1" {
            break;
        }
        assert!(
            revoked.elapsed() < std::time::Duration::from_secs(1),
            "B still serves a revoked key's session after {:?}",
            revoked.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_shared_by_replicas_on_sqlite() {
    let s = sqlite_server(sigil_server::Limits::default()).await;
    sessions_are_shared_by_replicas(&s).await;
    // the session id is kept only as a hash: the cookie's value is nowhere in the database
    let cookie = sign_in(&s, &s.admin.clone()).await;
    let value = cookie.split('=').nth(1).unwrap().to_owned();
    for f in std::fs::read_dir(s.dir.path()).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(value.len()).any(|w| w == value.as_bytes()),
            "a session id is stored in the clear"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set SIGIL_TEST_POSTGRES_URL and pass --include-ignored"]
async fn sessions_are_shared_by_replicas_on_postgres() {
    let s = crate::postgres_server(sigil_server::Limits::default()).await;
    sessions_are_shared_by_replicas(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_end_and_a_key_has_at_most_so_many() {
    let limits = sigil_server::Limits {
        session_idle: std::time::Duration::from_millis(700),
        sessions_per_key: 2,
        ..Default::default()
    };
    let s = sqlite_server(limits).await;
    let admin = s.admin.clone();
    let idle = sign_in(&s, &admin).await;
    tokio::time::sleep(std::time::Duration::from_millis(900)).await;
    let p = get(&s, &idle, "/ui/secrets").await;
    assert_eq!(p.location(), "/?expired=1");
    let first = sign_in(&s, &admin).await;
    let second = sign_in(&s, &admin).await;
    let third = sign_in(&s, &admin).await;
    let status = |c: String| {
        let s = s.clone();
        async move { get(&s, &c, "/ui/secrets").await.status }
    };
    assert_eq!(
        status(first).await,
        StatusCode::SEE_OTHER,
        "the oldest ended"
    );
    assert_eq!(status(second).await, StatusCode::OK);
    assert_eq!(status(third).await, StatusCode::OK);
}

/// A secret's page shows each version's state and the secret's settings, set through the
/// Vault API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secrets_page_shows_each_versions_state_and_its_settings() {
    let s = sqlite_server(sigil_server::Limits::default()).await;
    for v in ["one", "two", "three"] {
        s.put(&s.admin, "states", serde_json::json!(v)).await;
    }
    let vault = |method: Method, path: &str, body: serde_json::Value| {
        let (s, path) = (s.clone(), path.to_owned());
        async move {
            let headers = [("x-vault-token", s.admin.as_str())];
            let body = Some(body.to_string().into_bytes());
            let r = s.call_with(method, &path, None, body, &headers).await;
            assert_eq!(r.status, StatusCode::NO_CONTENT, "{path}: {}", r.text);
        }
    };
    vault(
        Method::POST,
        "/v1/secret/delete/states",
        serde_json::json!({"versions": [2]}),
    )
    .await;
    vault(
        Method::POST,
        "/v1/secret/destroy/states",
        serde_json::json!({"versions": [1]}),
    )
    .await;
    let settings =
        serde_json::json!({"max_versions": 5, "custom_metadata": {"owner": "<data team>"}});
    vault(Method::POST, "/v1/secret/metadata/states", settings).await;
    let viewer = s.key("viewer").await;
    let cookie = sign_in(&s, &viewer).await;
    let page = get(&s, &cookie, "/ui/secret/states").await;
    let row = |v: &str| {
        page.body
            .split("<tr>")
            .find(|r| r.starts_with(&format!("<td>{v}</td>")))
            .unwrap_or_else(|| panic!("no row for version {v}: {}", page.body))
            .to_owned()
    };
    assert!(row("3").contains(">live<"), "{}", row("3"));
    assert!(row("2").contains(">deleted at 20"), "{}", row("2"));
    assert!(row("1").contains(">destroyed<"), "{}", row("1"));
    assert!(page.body.contains("Versions kept"), "the settings card");
    assert!(
        page.body.contains("&lt;data team&gt;"),
        "escaped: {}",
        page.body
    );
    assert!(!page.body.contains("<data team>"));
}
