//! HTML helpers of the web page: the page frame, security headers, static files, redirects and
//! error pages. Pages are `maud` templates: every value they insert is escaped by construction,
//! so no page builds HTML from strings.

#[allow(unused_imports)]
use super::*;

pub(super) const CSS: &str = include_str!("../../assets/sigil.css");
pub(super) const JS: &str = include_str!("../../assets/sigil.js");

/// Query-string encoding of names and search terms (the template escapes the result again for
/// the attribute it goes in).
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

/// A notice at the top of a page: `ok` or `error`, and its words.
pub(super) type Flash<'a> = Option<(&'a str, &'a str)>;

/// The hidden field every state-changing form carries.
pub(super) fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

/// The whole page around `body`: the header (the tabs, the team, sign out) and the notice.
pub(super) fn page(
    title: &str,
    who: Option<(&Caller, &str)>,
    flash: Flash,
    body: Markup,
) -> Markup {
    let tab = |href: &str, label: &str| {
        html! { a.active[title == label] href=(href) { (label) } }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Sigil" }
                link rel="stylesheet" href="/ui/static/sigil.css";
                script src="/ui/static/sigil.js" defer {}
            }
            body {
                header {
                    span.brand { "Sigil" }
                    @if let Some((c, csrf)) = who {
                        nav {
                            (tab("/ui/secrets", "Secrets"))
                            @if c.role == Role::Admin {
                                (tab("/ui/keys", "Keys"))
                                (tab("/ui/audit", "Audit"))
                            }
                            span.muted { "team " b { (c.team) } " · " (c.role.as_str()) }
                            form.inline method="post" action="/ui/signout" {
                                (csrf_field(csrf))
                                button.secondary type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main {
                    @if let Some((kind, msg)) = flash {
                        div class={ "flash " (kind) } role="status" { (msg) }
                    }
                    (body)
                }
            }
        }
    }
}

pub(super) fn html(status: StatusCode, body: Markup) -> Response {
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body.into_string(),
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
    let body = html! { p { a href="/ui/secrets" { "Back to the secrets" } } };
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
            html! { p { a href="/ui/secrets" { "Go to the secrets" } } },
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

#[cfg(test)]
mod tests {
    use super::*;

    // what a template inserts is escaped: text, attributes and the notice alike
    #[test]
    fn the_frame_escapes_what_it_inserts() {
        let caller = Caller::for_tests("<team>", Role::Admin);
        let out = page(
            "<t>",
            Some((&caller, "\"><script>")),
            Some(("error", "<b>x</b>&")),
            html! { p { ("<i>") } },
        )
        .into_string();
        for raw in ["<t>", "<team>", "\"><script>", "<b>x</b>", "<i>"] {
            assert!(!out.contains(raw), "{raw} went out unescaped: {out}");
        }
        assert!(out.contains("&lt;team&gt;") && out.contains("&lt;b&gt;x&lt;/b&gt;&amp;"));
        assert!(out.contains("value=\"&quot;&gt;&lt;script&gt;\""));
        assert!(out.starts_with("<!DOCTYPE html>"));
    }

    #[test]
    fn query_encoding_keeps_only_safe_bytes() {
        assert_eq!(q("a b/c&d"), "a%20b/c%26d");
        assert_eq!(q("ü\""), "%C3%BC%22");
    }
}
