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
