//! HTML helpers of the web page: escaping, the page frame, security headers, static files,
//! redirects and error pages.

#[allow(unused_imports)]
use super::*;

pub(super) const CSS: &str = include_str!("../../assets/sigil.css");
pub(super) const JS: &str = include_str!("../../assets/sigil.js");

pub(super) fn esc(s: &str) -> String {
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
pub(super) fn q(s: &str) -> String {
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

pub(super) fn page(
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

pub(super) fn html(status: StatusCode, body: String) -> Response {
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    security_headers(&mut r);
    r
}

pub(super) fn redirect(to: &str) -> Response {
    let mut r = Redirect::to(to).into_response();
    security_headers(&mut r);
    r
}

pub(super) fn error_page(v: Option<&Visitor>, e: &ApiError) -> Response {
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
