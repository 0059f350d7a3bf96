//! Commands that talk to the server: login, restore, history, keys, teams, audit.

use std::io::{IsTerminal, Read};

use anyhow::Context as _;
use serde_json::json;
use sigil_core::config::Environment;
use sigil_core::wire::{CreateKey, Role, VersionsChange};
use zeroize::Zeroizing;

use crate::cli::{AuditArgs, HistoryArgs, KeysCommand, LoginArgs, NameArgs, Output, TeamsCommand};
use crate::loaded::{Loaded, load};
use crate::{EXIT_OK, UsageError, out};

pub fn login(a: LoginArgs) -> crate::failure::Result<u8> {
    let env = Environment::from_process();
    let key = if a.key_stdin {
        let mut buf = String::new();
        std::io::stdin()
            .take(4096)
            .read_to_string(&mut buf)
            .context("cannot read the key from stdin")?;
        Zeroizing::new(buf.trim().to_owned())
    } else if let Some(k) = env.var_str("SIGIL_API_KEY")? {
        Zeroizing::new(k.to_owned())
    } else if std::io::stdin().is_terminal() {
        Zeroizing::new(
            rpassword::prompt_password("API key: ")
                .context("cannot read the key")?
                .trim()
                .to_owned(),
        )
    } else {
        return Err(UsageError(
            "no key given: pass --key-stdin, set SIGIL_API_KEY, or run on a terminal".into(),
        )
        .into());
    };
    if key.is_empty() {
        return Err(UsageError("the key is empty".into()).into());
    }
    // check the key before saving it
    let probe = sigil_client::Client::new(&a.url, a.team.as_deref().unwrap_or("default"), &key)?;
    let me = probe.whoami()?;
    let team = a.team.unwrap_or_else(|| me.team.clone());
    let path = sigil_client::credentials_path(&env)?;
    sigil_client::write_credentials(&path, probe.url(), &team, &key)?;
    eprintln!(
        "logged in to {} as key {} ({} of team {:?}); saved to {} (mode 0600)",
        probe.url(),
        me.key_id,
        me.role.as_str(),
        me.team,
        sigil_core::error::display_path(&path)
    );
    Ok(EXIT_OK)
}

pub fn restore(a: NameArgs) -> crate::failure::Result<u8> {
    let name = sigil_core::SecretName::parse(&a.name)?;
    let client = load()?.client()?;
    let w = client.restore_secret(name.as_str())?;
    eprintln!(
        "restored {name} at version {} on {} team {:?}",
        w.version,
        client.url(),
        client.team()
    );
    Ok(EXIT_OK)
}

/// `secrets delete --versions`, `secrets undelete`, `secrets destroy`: says which versions
/// changed, and which of those asked did not (absent, or in that state already).
pub fn change_versions(
    name: &str,
    change: VersionsChange,
    versions: &[i64],
) -> crate::failure::Result<u8> {
    let name = sigil_core::SecretName::parse(name)?;
    if let Some(bad) = versions.iter().find(|&&v| v < 1) {
        return Err(UsageError(format!("--versions: a version is 1 or more, not {bad}")).into());
    }
    let client = load()?.client()?;
    let changed = client.change_versions(name.as_str(), change, versions)?;
    let done = match change {
        VersionsChange::Delete => "deleted (restorable: sigil secrets undelete)",
        VersionsChange::Undelete => "undeleted",
        VersionsChange::Destroy => "destroyed",
    };
    let list = |v: &[i64]| v.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
    let unchanged: Vec<i64> = versions
        .iter()
        .copied()
        .filter(|v| !changed.contains(v))
        .collect();
    if !changed.is_empty() {
        eprintln!(
            "{name}: version(s) {} {done} on {} team {:?}",
            list(&changed),
            client.url(),
            client.team()
        );
    }
    if !unchanged.is_empty() {
        eprintln!(
            "{name}: version(s) {} left as they were (no such version, or {} already)",
            list(&unchanged),
            match change {
                VersionsChange::Delete => "deleted or destroyed",
                VersionsChange::Undelete => "live or destroyed",
                VersionsChange::Destroy => "destroyed",
            }
        );
    }
    Ok(EXIT_OK)
}

pub fn history(a: HistoryArgs) -> crate::failure::Result<u8> {
    let name = sigil_core::SecretName::parse(&a.name)?;
    let client = load()?.client()?;
    let h = client.history(name.as_str())?;
    if a.json {
        out::line(&serde_json::to_string(&h)?)?;
        return Ok(EXIT_OK);
    }
    let mut text = format!(
        "{}{}\nVERSION  CREATED AT                STATE      BY\n",
        h.name,
        if h.deleted { " (deleted)" } else { "" }
    );
    for v in &h.versions {
        text.push_str(&format!(
            "{:>7}  {:<24}  {:<9}  {}\n",
            v.version,
            v.created_at,
            v.state.as_str(),
            v.created_by
        ));
    }
    out::write_stdout(text.as_bytes())?;
    Ok(EXIT_OK)
}

pub fn list_server(loaded: &Loaded, prefix: &str, json_out: bool) -> crate::failure::Result<u8> {
    let items = loaded.client()?.list_all_secrets(prefix)?;
    if json_out {
        // the shape of every `secrets list --json`
        let doc: Vec<_> = items
            .iter()
            .map(|i| {
                json!({
                    "name": i.name,
                    "source": "server",
                    "shadowed": [],
                    "version": i.version,
                    "updated_at": i.updated_at,
                    "updated_by": i.updated_by,
                })
            })
            .collect();
        out::line(&serde_json::Value::Array(doc).to_string())?;
        return Ok(EXIT_OK);
    }
    let w = items.iter().map(|i| i.name.len()).max().unwrap_or(4).max(4);
    let mut text = format!("{:<w$}  VERSION  UPDATED AT                BY\n", "NAME");
    for i in &items {
        text.push_str(&format!(
            "{:<w$}  {:>7}  {:<24}  {}\n",
            i.name, i.version, i.updated_at, i.updated_by
        ));
    }
    out::write_stdout(text.as_bytes())?;
    Ok(EXIT_OK)
}

pub fn keys(cmd: KeysCommand) -> crate::failure::Result<u8> {
    let client = load()?.client()?;
    match cmd {
        KeysCommand::Create {
            role,
            name,
            output: Output { json },
        } => {
            let role = Role::parse(&role).ok_or_else(|| {
                UsageError(format!(
                    "unknown role {role:?}: viewer, reader, writer or admin"
                ))
            })?;
            let k = client.create_key(&CreateKey { role, name })?;
            if json {
                out::line(&json!({"id": k.id, "key": k.key, "team": k.team, "role": k.role, "name": k.name}).to_string())?;
            } else {
                eprintln!(
                    "created {} key {} in team {:?}; the key is shown once:",
                    k.role.as_str(),
                    k.id,
                    k.team
                );
                out::line(&k.key)?;
            }
        }
        KeysCommand::List(Output { json }) => {
            let keys = client.list_keys()?;
            if json {
                out::line(&serde_json::to_string(&keys)?)?;
            } else {
                let mut text = String::from(
                    "ID            ROLE    CREATED AT                REVOKED AT                NAME\n",
                );
                for k in &keys {
                    text.push_str(&format!(
                        "{:<12}  {:<6}  {:<24}  {:<24}  {}\n",
                        k.id,
                        k.role.as_str(),
                        k.created_at,
                        k.revoked_at.as_deref().unwrap_or("-"),
                        k.name
                    ));
                }
                out::write_stdout(text.as_bytes())?;
            }
        }
        KeysCommand::Revoke { id } => {
            client.revoke_key(&id)?;
            eprintln!("revoked key {id} of team {:?}", client.team());
        }
    }
    Ok(EXIT_OK)
}

pub fn teams(cmd: TeamsCommand) -> crate::failure::Result<u8> {
    let client = load()?.client()?;
    match cmd {
        TeamsCommand::Create {
            name,
            output: Output { json },
        } => {
            let (team, key) = client.create_team(&name)?;
            if json {
                out::line(&json!({"team": team, "admin_key": {"id": key.id, "key": key.key, "role": key.role}}).to_string())?;
            } else {
                eprintln!(
                    "created team {:?}; its first admin key ({}) is shown once:",
                    team.name, key.id
                );
                out::line(&key.key)?;
            }
        }
        TeamsCommand::List(Output { json }) => {
            let teams = client.list_teams()?;
            if json {
                out::line(&serde_json::to_string(&teams)?)?;
            } else {
                let mut text = String::from("TEAM                              CREATED AT\n");
                for t in &teams {
                    text.push_str(&format!("{:<32}  {}\n", t.name, t.created_at));
                }
                out::write_stdout(text.as_bytes())?;
            }
        }
    }
    Ok(EXIT_OK)
}

/// `--since` as UTC, which every server version reads.
fn since_utc(since: Option<&str>) -> crate::failure::Result<Option<String>> {
    let Some(s) = since else {
        return Ok(None);
    };
    let utc = sigil_core::wire::parse_rfc3339(s)
        .or_else(|| sigil_core::wire::parse_date(s))
        .map(sigil_core::wire::rfc3339)
        .ok_or_else(|| {
            UsageError(format!(
                "--since {s:?} is neither an RFC 3339 time (2026-11-29T00:00:00Z, \
                 2026-11-29T01:00:00+01:00) nor a date (2026-11-29)"
            ))
        })?;
    Ok(Some(utc))
}

/// An audit entry as `--json` and the export print it: a record made by no key (the server's
/// bootstrap) has `key_id: null`.
fn entry_json(e: &sigil_core::wire::AuditEntry) -> serde_json::Result<serde_json::Value> {
    let mut v = serde_json::to_value(e)?;
    if e.key_id == "-" {
        v["key_id"] = serde_json::Value::Null;
    }
    Ok(v)
}

/// `sigil audit export`: every page, oldest first, one JSON object per line as it arrives.
fn audit_export(a: &crate::cli::AuditExportArgs) -> crate::failure::Result<u8> {
    if a.format != "jsonl" {
        return Err(UsageError(format!(
            "--format {:?}: the export writes jsonl (one JSON object per line)",
            a.format
        ))
        .into());
    }
    let since = since_utc(a.since.as_deref())?;
    let client = load()?.client()?;
    let mut cursor: Option<String> = None;
    loop {
        let page = client.audit(since.as_deref(), cursor.as_deref(), 1000)?;
        let mut text = String::new();
        for e in &page.entries {
            text.push_str(&entry_json(e)?.to_string());
            text.push('\n');
        }
        out::write_stdout(text.as_bytes())?;
        match page.next_cursor {
            Some(c) if !page.entries.is_empty() => cursor = Some(c),
            _ => return Ok(EXIT_OK),
        }
    }
}

pub fn audit(a: AuditArgs) -> crate::failure::Result<u8> {
    if let Some(crate::cli::AuditCommand::Export(e)) = &a.command {
        return audit_export(e);
    }
    let since = since_utc(a.since.as_deref())?;
    let client = load()?.client()?;
    let limit = a.limit.clamp(1, 1000);
    let page = if a.oldest_first {
        client.audit(since.as_deref(), a.cursor.as_deref(), limit)?
    } else {
        client.audit_newest(since.as_deref(), a.cursor.as_deref(), limit)?
    };
    if a.json {
        // one shape: a record made by no key (the server's bootstrap) has `key_id: null`
        let entries: Vec<serde_json::Value> = page
            .entries
            .iter()
            .map(entry_json)
            .collect::<serde_json::Result<_>>()?;
        let doc = serde_json::json!({"entries": entries, "next_cursor": page.next_cursor});
        out::line(&doc.to_string())?;
        return Ok(EXIT_OK);
    }
    let mut text = String::from(
        "AT                        KEY           ACTION          OUTCOME    VERSION  NAME  (RUN/TASK)\n",
    );
    for e in &page.entries {
        let attribution = match (&e.flow_run, &e.task) {
            (Some(r), Some(t)) => format!("  ({r}/{t})"),
            (Some(r), None) => format!("  ({r})"),
            _ => String::new(),
        };
        // the face, when it is not the REST API: `[via prefect 1.4.1]`, `[via web]`
        let via = match (e.via.as_deref(), e.agent.as_deref()) {
            (None | Some("api"), _) => String::new(),
            (Some(v), Some(agent)) => format!("  [via {v}: {agent}]"),
            (Some(v), None) => format!("  [via {v}]"),
        };
        text.push_str(&format!(
            "{:<24}  {:<12}  {:<14}  {:<9}  {:>7}  {}{attribution}{via}\n",
            e.at,
            e.key_id,
            e.action,
            e.outcome,
            e.version.map_or("-".to_owned(), |v| v.to_string()),
            match &e.target {
                Some(t) => format!("{} (in team {t})", e.name.as_deref().unwrap_or("-")),
                None => e.name.as_deref().unwrap_or("-").to_owned(),
            }
        ));
    }
    out::write_stdout(text.as_bytes())?;
    if let Some(next) = &page.next_cursor {
        let mut more = format!("more: sigil audit --cursor {next}");
        if a.oldest_first {
            more.push_str(" --oldest-first");
        }
        if let Some(s) = &a.since {
            more.push_str(&format!(" --since {s}"));
        }
        if a.limit != 100 {
            more.push_str(&format!(" --limit {limit}"));
        }
        eprintln!("{more}");
    }
    Ok(EXIT_OK)
}
