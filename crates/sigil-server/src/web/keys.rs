//! The keys page (admins): list, create (shown once), revoke, through the domain layer.

#[allow(unused_imports)]
use super::*;

fn keys_body(
    v: &Visitor,
    keys: &[sigil_core::wire::KeyInfo],
    created: Option<&sigil_core::wire::CreatedKey>,
) -> Markup {
    html! {
        h1 { "Keys" }
        @if let Some(k) = created {
            div.card {
                h2 { "New " (k.role.as_str()) " key " (k.id) }
                p { "Copy it now: it is shown once and cannot be shown again." }
                div.row {
                    div { input id="new-key" type="text" readonly value=(k.key.as_str()); }
                    button.secondary type="button" data-copy="new-key" hidden { "Copy" }
                }
            }
        }
        div.card {
            table {
                thead { tr {
                    th { "Id" } th { "Role" } th { "Name" } th.opt { "Created" } th { "Revoked" } th {}
                } }
                tbody {
                    @for k in keys {
                        tr {
                            td.name { (k.id) }
                            td { (k.role.as_str()) }
                            td { (k.name) }
                            td.opt { (k.created_at) }
                            td { (k.revoked_at.as_deref().unwrap_or("—")) }
                            td {
                                @if k.revoked_at.is_none() {
                                    form.inline method="post" action={ "/ui/keys/" (q(&k.id)) "/revoke" } {
                                        (csrf_field(&v.csrf))
                                        button.danger type="submit" { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        div.card {
            h2 { "New key" }
            form.row method="post" action="/ui/keys" {
                (csrf_field(&v.csrf))
                div {
                    label for="role" { "Role" }
                    select id="role" name="role" {
                        option value="viewer" { "viewer: names and metadata" }
                        option value="reader" { "reader: read values" }
                        option value="writer" { "writer: set, delete, restore" }
                        option value="admin" { "admin: also keys and audit" }
                    }
                }
                div {
                    label for="keyname" { "Name" }
                    input id="keyname" name="name" type="text" placeholder="etl runner";
                }
                button type="submit" { "Create key" }
            }
        }
    }
}

pub(crate) async fn keys_page(State(state): State<Arc<AppState>>, v: Visitor) -> Page {
    v.admin()?;
    let keys = service::keys::list(&state, &v.caller, &v.caller.team)
        .await
        .map_err(|e| v.error(e))?;
    Ok(v.page("Keys", None, keys_body(&v, &keys, None)))
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
    v: Visitor,
    Form(f): Form<KeyForm>,
) -> Page {
    v.posted(&f.csrf)?;
    v.admin()?;
    let role = Role::parse(&f.role).ok_or_else(|| {
        v.error(ApiError::invalid(
            "the role must be viewer, reader, writer or admin",
        ))
    })?;
    let created = service::keys::create(&state, &v.caller, &v.caller.team, role, &f.name)
        .await
        .map_err(|e| v.error(e))?;
    let keys = service::keys::list(&state, &v.caller, &v.caller.team)
        .await
        .map_err(|e| v.error(e))?;
    let body = keys_body(&v, &keys, Some(&created));
    Ok(v.page("Keys", Some(("ok", "Key created.")), body))
}

pub(crate) async fn revoke_key(
    State(state): State<Arc<AppState>>,
    v: Visitor,
    WebPath(id): WebPath<String>,
    Form(f): Form<CsrfOnly>,
) -> Page {
    v.posted(&f.csrf)?;
    v.admin()?;
    let action = Some(AuditAction::KeyRevoke);
    let id = v.parsed(&state, action, &id, KeyId::parse).await?;
    let done = service::keys::revoke(&state, &v.caller, &v.caller.team, &id).await;
    v.after(done, "/ui/keys")
}
