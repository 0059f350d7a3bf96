//! The secrets pages: the list (folders, search, paging), a secret's page and history, and
//! saving, deleting and restoring through the domain layer.

#[allow(unused_imports)]
use super::*;

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
    // the search and the folder are checked by the service, as for the REST API
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
