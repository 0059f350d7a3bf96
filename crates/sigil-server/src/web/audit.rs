//! The audit page (admins): newest first, filtered by name, action and key, paged back.

#[allow(unused_imports)]
use super::*;

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
pub(super) const AUDIT_SCAN: u32 = service::audit::MAX_PAGE;

/// The actions the filter offers, with the label shown ("any" is no filter).
const ACTIONS: [(Option<AuditAction>, &str); 8] = [
    (None, "any"),
    (Some(AuditAction::SecretRead), "read"),
    (Some(AuditAction::SecretWrite), "write"),
    (Some(AuditAction::SecretDelete), "delete"),
    (Some(AuditAction::SecretRestore), "restore"),
    (Some(AuditAction::KeyCreate), "key created"),
    (Some(AuditAction::KeyRevoke), "key revoked"),
    (Some(AuditAction::TeamCreate), "team created"),
];

pub(crate) async fn audit_page(
    State(state): State<Arc<AppState>>,
    v: Visitor,
    Query(p): Query<AuditParams>,
) -> Page {
    v.admin()?;
    // newest first, as people look for the latest; the cursor pages back
    let page_of = service::audit::PageOf {
        since: 0,
        cursor: p.cursor,
        limit: AUDIT_SCAN,
        newest_first: true,
    };
    let (rows, _) = service::audit::page(&state, &v.caller, &v.caller.team, page_of)
        .await
        .map_err(|e| v.error(e))?;
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
    let body = html! {
        h1 { "Audit" }
        div.card {
            form.row method="get" action="/ui/audit" {
                div {
                    label for="fname" { "Name contains" }
                    input id="fname" name="name" type="search" value=(p.name);
                }
                div {
                    label for="faction" { "Action" }
                    select id="faction" name="action" {
                        @for (action, label) in ACTIONS {
                            @let value = action.map_or("", AuditAction::as_str);
                            option value=(value) selected[p.action == value] { (label) }
                        }
                    }
                }
                div {
                    label for="fkey" { "Key id" }
                    input id="fkey" name="key" type="text" value=(p.key);
                }
                button.secondary type="submit" { "Filter" }
            }
        }
        div.card {
            table {
                thead { tr {
                    th { "When" } th { "Key" } th { "Action" } th { "Name" } th { "Version" }
                    th { "Outcome" } th.opt { "From" } th.opt { "Flow run / task" }
                } }
                tbody {
                    @for r in &shown {
                        tr {
                            td { (rfc3339(r.at)) }
                            td.name { (who(&names, &r.key_id)) }
                            td { (r.action.as_str()) }
                            td.name { (r.name.as_deref().unwrap_or("")) }
                            td { @if let Some(x) = r.version { (x) } }
                            td { (r.outcome.as_str()) }
                            td.opt {
                                (r.client)
                                // the face, when it is not the REST API: "via prefect 1.4.1"
                                @match (r.via.as_deref(), r.agent.as_deref()) {
                                    (None | Some("api"), _) => {}
                                    (Some(via), Some(agent)) => { br; span.muted { "via " (via) " (" (agent) ")" } }
                                    (Some(via), None) => { br; span.muted { "via " (via) } }
                                }
                            }
                            td.opt {
                                @if let Some(run) = &r.flow_run {
                                    (run)
                                    @if let Some(task) = &r.task { " / " (task) }
                                }
                            }
                        }
                    }
                    @if shown.is_empty() {
                        tr { td.muted colspan="8" { "No records." } }
                    }
                }
            }
            @if let Some(n) = next {
                div.pager {
                    span {}
                    a.button.secondary href={
                        "/ui/audit?name=" (q(&p.name)) "&action=" (q(&p.action)) "&key=" (q(&p.key)) "&cursor=" (n)
                    } { "Older records" }
                }
            }
        }
    };
    Ok(v.page("Audit", None, body))
}
