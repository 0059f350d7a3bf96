//! The secrets pages: the list (folders, search, paging), a secret's page and history, and
//! saving, deleting and restoring through the domain layer.

#[allow(unused_imports)]
use super::*;
use sigil_core::wire::{SecretSettingsInfo, VersionInfo, VersionStatus};

#[derive(Deserialize, Default)]
pub(crate) struct ListParams {
    #[serde(default)]
    q: String,
    #[serde(default)]
    folder: String,
    cursor: Option<String>,
}

/// One row of the list: a folder (names under it are folded) or a secret.
enum Row<'a> {
    Folder(&'a str),
    Secret(&'a sigil_store::SecretRow),
}

pub(crate) async fn secrets(
    State(state): State<Arc<AppState>>,
    v: Visitor,
    Query(p): Query<ListParams>,
) -> Page {
    let c = &v.caller;
    // the search and the folder are checked by the service, as for the REST API
    let after = service::secrets::after_cursor(p.cursor.as_deref()).map_err(|e| v.error(e))?;
    let listing = if p.q.is_empty() {
        service::secrets::Listing::Prefix(&p.folder)
    } else {
        service::secrets::Listing::Search(&p.q)
    };
    let (rows, more) = service::secrets::list(&state, c, &c.team, listing, after.as_deref(), PAGE)
        .await
        .map_err(|e| v.error(e))?;
    let writer = c.role >= Role::Writer;
    let names = key_names(&state, c.team_id).await;
    let mut folders = BTreeSet::new();
    let mut shown = Vec::new();
    for r in &rows {
        let rest = &r.name[p.folder.len().min(r.name.len())..];
        match rest.split_once('/') {
            Some((dir, _)) if p.q.is_empty() => {
                if folders.insert(dir) {
                    shown.push(Row::Folder(dir));
                }
            }
            _ => shown.push(Row::Secret(r)),
        }
    }
    let parent = p
        .folder
        .trim_end_matches('/')
        .rsplit_once('/')
        .map_or(String::new(), |(a, _)| format!("{a}/"));
    let next = match rows.last() {
        Some(last) if more => Some(format!(
            "/ui/secrets?q={}&folder={}&cursor={}",
            q(&p.q),
            q(&p.folder),
            q(&service::secrets::name_cursor(&last.name))
        )),
        _ => None,
    };
    let body = html! {
        h1 {
            "Secrets"
            @if !p.folder.is_empty() { " " span.muted { "in " (p.folder) } }
        }
        div.card {
            form.row method="get" action="/ui/secrets" role="search" {
                div {
                    label for="q" { "Search names" }
                    input id="q" name="q" type="search" value=(p.q) placeholder="part of a name";
                }
                button.secondary type="submit" { "Search" }
            }
        }
        div.card {
            table {
                thead { tr {
                    th { "Name" } th { "Version" } th.opt { "Updated at" } th.opt { "Updated by" } th {}
                } }
                tbody {
                    @if !p.folder.is_empty() {
                        tr {
                            td.name { a href={ "/ui/secrets?folder=" (q(&parent)) } { "../" } }
                            td {} td.opt {} td.opt {} td {}
                        }
                    }
                    @for row in &shown {
                        @match row {
                            Row::Folder(dir) => tr {
                                td.name {
                                    a href={ "/ui/secrets?folder=" (q(&p.folder)) (q(dir)) "/" } { (dir) "/" }
                                }
                                td.muted { "folder" } td.opt {} td.opt {} td {}
                            },
                            Row::Secret(r) => tr {
                                td.name { a href={ "/ui/secret/" (q(&r.name)) } { (r.name) } }
                                td { (r.version) }
                                td.opt { (rfc3339(r.updated_at)) }
                                td.opt { (who(&names, &r.updated_by)) }
                                td {
                                    a href={ "/ui/secret/" (q(&r.name)) } {
                                        @if writer { "Update" } @else { "Details" }
                                    }
                                }
                            },
                        }
                    }
                    @if rows.is_empty() {
                        tr { td.muted colspan="5" { "No secrets here." } }
                    }
                }
            }
            @if let Some(next) = next {
                div.pager { span {} a.button.secondary href=(next) { "Next page" } }
            }
        }
        @if writer {
            div.card {
                h2 { "New secret" }
                form method="post" action="/ui/secrets" {
                    (csrf_field(&v.csrf))
                    label for="name" { "Name" }
                    input id="name" name="name" type="text" required placeholder="prod/db/password" value=(p.folder);
                    (value_fields("Value", "Create"))
                }
            }
        }
    };
    // no notice comes from the URL: a crafted link must not put its words on the page
    Ok(v.page("Secrets", None, body))
}

/// A value's text area, its format and the submit button of a form that saves one.
fn value_fields(label: &str, submit: &str) -> Markup {
    html! {
        label for="value" { (label) }
        textarea id="value" name="value" required autocomplete="off" {}
        div.row {
            div {
                label for="format" { "The value is" }
                select id="format" name="format" {
                    option value="text" { "text" }
                    option value="json" { "JSON" }
                }
            }
            button type="submit" { (submit) }
        }
    }
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
    v: Visitor,
    Form(f): Form<SaveForm>,
) -> Page {
    let value = Zeroizing::new(f.value);
    v.posted(&f.csrf)?;
    let json = if f.format == "json" {
        serde_json::from_str::<serde_json::Value>(&value).map_err(|e| {
            v.error(ApiError::invalid(format!(
                "the value is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            )))
        })?
    } else {
        serde_json::Value::String(value.to_string())
    };
    let action = Some(AuditAction::SecretWrite);
    let name = v
        .parsed(&state, action, f.name.trim(), service::parse_name)
        .await?;
    let r = service::secrets::write(&state, &v.caller, &v.caller.team, &name, &json, None)
        .await
        .map(|_| ());
    v.after(r, &format!("/ui/secret/{}?saved=1", q(name.as_str())))
}

#[derive(Deserialize, Default)]
pub(crate) struct DetailParams {
    saved: Option<String>,
    restored: Option<String>,
    confirm: Option<String>,
}

pub(crate) async fn detail(
    State(state): State<Arc<AppState>>,
    v: Visitor,
    WebPath(name): WebPath<String>,
    Query(p): Query<DetailParams>,
) -> Page {
    let c = &v.caller;
    let name = v.parsed(&state, None, &name, service::parse_name).await?;
    let h = service::secrets::history(&state, c, &c.team, &name, None, 1000)
        .await
        .map_err(|e| v.error(e))?;
    let writer = c.role >= Role::Writer;
    let names = key_names(&state, c.team_id).await;
    let at = q(&h.name);
    let body = html! {
        p { a href="/ui/secrets" { "← Secrets" } }
        h1 {
            code { (h.name) }
            @if h.deleted { " " span.muted { "(deleted)" } }
        }
        @if writer && h.deleted {
            div.card {
                p { "This secret is deleted; its versions are kept." }
                form method="post" action={ "/ui/restore/" (at) } {
                    (csrf_field(&v.csrf))
                    button type="submit" { "Restore" }
                }
            }
        }
        @if writer && !h.deleted {
            div.card {
                h2 { "Update" }
                p.muted { "Values are write-only: the current value is never shown. A new value makes a new version." }
                form method="post" action="/ui/secrets" {
                    (csrf_field(&v.csrf))
                    input type="hidden" name="name" value=(h.name);
                    (value_fields("New value", "Save new version"))
                }
            }
            @if p.confirm.is_some() {
                div.card {
                    h2 { "Delete " (h.name) "?" }
                    p { "It can be restored later." }
                    form method="post" action={ "/ui/delete/" (at) } {
                        (csrf_field(&v.csrf))
                        button.danger type="submit" { "Yes, delete it" }
                        " "
                        a.button.secondary href={ "/ui/secret/" (at) } { "Cancel" }
                    }
                }
            } @else {
                div.card { a.button.secondary href={ "/ui/secret/" (at) "?confirm=1" } { "Delete…" } }
            }
        }
        @if h.settings != SecretSettingsInfo::default() {
            div.card {
                h2 { "Settings" }
                p.muted { "How its versions are kept (set through the Vault API's metadata)." }
                table {
                    tbody {
                        tr { th { "Versions kept" } td { @if h.settings.max_versions == 0 { "all" } @else { (h.settings.max_versions) } } }
                        tr { th { "Check-and-set required" } td { @if h.settings.cas_required { "yes" } @else { "no" } } }
                        tr { th { "Versions deleted after" } td { @if h.settings.delete_version_after_s == 0 { "never" } @else { (h.settings.delete_version_after_s) " s" } } }
                        @for (k, val) in &h.settings.custom_metadata {
                            tr { th { code { (k) } } td { (val) } }
                        }
                    }
                }
            }
        }
        div.card {
            h2 { "History" }
            table {
                thead { tr { th { "Version" } th { "Written at" } th { "By" } th { "State" } } }
                tbody {
                    @for ver in &h.versions {
                        tr {
                            td { (ver.version) }
                            td { (ver.created_at) }
                            td { (who(&names, &ver.created_by)) }
                            td.{ "state-" (ver.state.as_str()) } {
                                (version_state(ver))
                            }
                        }
                    }
                }
            }
        }
    };
    let flash = if p.saved.is_some() {
        Some(("ok", "Saved a new version."))
    } else if p.restored.is_some() {
        Some(("ok", "Restored."))
    } else {
        None
    };
    Ok(v.page(&h.name, flash, body))
}

/// A version's state as the history table says it.
fn version_state(v: &VersionInfo) -> String {
    match (v.state, &v.deleted_at) {
        (VersionStatus::Live, None) => "live".into(),
        (VersionStatus::Live, Some(at)) => format!("live, to be deleted at {at}"),
        (VersionStatus::Deleted, Some(at)) => format!("deleted at {at}"),
        (VersionStatus::Deleted, None) => "deleted".into(),
        (VersionStatus::Destroyed, _) => "destroyed".into(),
    }
}

pub(crate) async fn delete(
    State(state): State<Arc<AppState>>,
    v: Visitor,
    WebPath(name): WebPath<String>,
    Form(f): Form<CsrfOnly>,
) -> Page {
    let name = changed(&state, &v, &f, &name, AuditAction::SecretDelete).await?;
    let done = service::secrets::delete(&state, &v.caller, &v.caller.team, &name).await;
    v.after(done, &format!("/ui/secret/{}", q(name.as_str())))
}

pub(crate) async fn restore(
    State(state): State<Arc<AppState>>,
    v: Visitor,
    WebPath(name): WebPath<String>,
    Form(f): Form<CsrfOnly>,
) -> Page {
    let name = changed(&state, &v, &f, &name, AuditAction::SecretRestore).await?;
    let done = service::secrets::restore(&state, &v.caller, &v.caller.team, &name)
        .await
        .map(|_| ());
    v.after(done, &format!("/ui/secret/{}?restored=1", q(name.as_str())))
}

/// The secret a delete or restore form names, once its token and origin check out.
#[allow(clippy::result_large_err)] // the `Err` is the page to answer instead
async fn changed(
    state: &AppState,
    v: &Visitor,
    form: &CsrfOnly,
    name: &str,
    action: AuditAction,
) -> Result<sigil_core::SecretName, Response> {
    v.posted(&form.csrf)?;
    v.parsed(state, Some(action), name, service::parse_name)
        .await
}
