//! The keys page (admins): list, create (shown once), revoke, through the domain layer.

#[allow(unused_imports)]
use super::*;

pub(super) fn keys_body(
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
