//! `sigil secrets diff` and `sigil secrets copy`: compare and promote sets of secrets.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Value, json};
use sigil_core::{Error, Resolver, SecretName, SecretValue};
use zeroize::Zeroizing;

use crate::cli::{CopyArgs, DiffArgs};
use crate::loaded::{Loaded, load};
use crate::{EXIT_OK, UsageError, out};

/// How a name compares between two sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Same,
    Differs,
    OnlyLeft,
    OnlyRight,
}

impl State {
    fn label(self, left: &str, right: &str) -> String {
        match self {
            State::Same => "same".into(),
            State::Differs => "differs".into(),
            State::OnlyLeft => format!("{left} only"),
            State::OnlyRight => format!("{right} only"),
        }
    }
}

fn compare(left: Option<&Value>, right: Option<&Value>) -> Option<State> {
    match (left, right) {
        (Some(l), Some(r)) if l == r => Some(State::Same),
        (Some(_), Some(_)) => Some(State::Differs),
        (Some(_), None) => Some(State::OnlyLeft),
        (None, Some(_)) => Some(State::OnlyRight),
        (None, None) => None,
    }
}

/// The keys of two JSON objects that were added, removed and changed (empty for other values).
fn key_changes(from: &Value, to: &Value) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (Value::Object(a), Value::Object(b)) = (from, to) else {
        return Default::default();
    };
    let added = b.keys().filter(|k| !a.contains_key(*k)).cloned().collect();
    let removed = a.keys().filter(|k| !b.contains_key(*k)).cloned().collect();
    let changed = a
        .iter()
        .filter(|(k, v)| b.get(*k).is_some_and(|w| w != *v))
        .map(|(k, _)| k.clone())
        .collect();
    (added, removed, changed)
}

fn shown(v: Option<&Value>) -> String {
    match v {
        None => "-".into(),
        Some(v) => SecretValue::new(v.clone()).expose_text().into_owned(),
    }
}

pub fn diff(a: DiffArgs) -> crate::failure::Result<u8> {
    let loaded = load()?;
    let client = loaded.client()?;
    let name = a.name.as_deref().map(SecretName::parse).transpose()?;
    if !a.versions.is_empty() {
        let (Some(name), [from, to]) = (&name, a.versions.as_slice()) else {
            return Err(UsageError("--versions takes two versions: --versions 3,5".into()).into());
        };
        return diff_versions(&client, name, *from, *to, &a);
    }
    let prefix = a.prefix.clone().unwrap_or_default();
    // the local side: context, environment and the config file, as a lookup sees them
    let local = Resolver::local(&loaded.file);
    let mut local_names: Vec<SecretName> = local
        .list()?
        .into_iter()
        .map(|l| l.name)
        .filter(|n| n.as_str().starts_with(&prefix))
        .collect();
    let mut server_names: Vec<SecretName> = client
        .list_all_secrets(&prefix)?
        .into_iter()
        .filter_map(|i| SecretName::parse(&i.name).ok())
        .collect();
    if let Some(n) = &name {
        local_names.retain(|x| x == n);
        server_names.retain(|x| x == n);
    }
    let local_values: HashMap<SecretName, Value> = local_names
        .iter()
        .cloned()
        .zip(local.get_many(&local_names)?)
        .map(|(n, v)| (n, v.expose_json().clone()))
        .collect();
    let server_values: HashMap<SecretName, Value> = if server_names.is_empty() {
        HashMap::new()
    } else {
        let asked: Vec<String> = server_names.iter().map(ToString::to_string).collect();
        client
            .batch_read(&asked)?
            .secrets
            .into_iter()
            .filter_map(|r| Some((SecretName::parse(&r.name).ok()?, r.value)))
            .collect()
    };
    let all: std::collections::BTreeSet<&SecretName> =
        local_values.keys().chain(server_values.keys()).collect();
    if all.is_empty()
        && let Some(n) = &name
    {
        return Err(Error::NotFound {
            name: n.to_string(),
            searched: vec![
                "the local sources".into(),
                format!("server {} team {:?}", client.url(), client.team()),
            ],
        }
        .into());
    }
    let rows: Vec<(&SecretName, State)> = all
        .into_iter()
        .filter_map(|n| Some((n, compare(local_values.get(n), server_values.get(n))?)))
        .collect();
    if a.json {
        let doc: Vec<Value> = rows
            .iter()
            .map(|(n, st)| {
                let mut d = json!({"name": n.as_str(), "state": st.label("local", "server")});
                if a.show && *st != State::Same {
                    d["local"] = local_values.get(*n).cloned().unwrap_or(Value::Null);
                    d["server"] = server_values.get(*n).cloned().unwrap_or(Value::Null);
                }
                d
            })
            .collect();
        out::line(&Value::Array(doc).to_string())?;
        return Ok(EXIT_OK);
    }
    let w = rows
        .iter()
        .map(|(n, _)| n.as_str().len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut text = format!("{:<w$}  LOCAL / SERVER\n", "NAME");
    for (n, st) in &rows {
        text.push_str(&format!(
            "{:<w$}  {}\n",
            n.as_str(),
            st.label("local", "server")
        ));
        if a.show && *st != State::Same {
            text.push_str(&format!("    local:  {}\n", shown(local_values.get(*n))));
            text.push_str(&format!("    server: {}\n", shown(server_values.get(*n))));
        }
    }
    out::write_stdout(text.as_bytes())?;
    Ok(EXIT_OK)
}

fn diff_versions(
    client: &sigil_client::Client,
    name: &SecretName,
    from: i64,
    to: i64,
    a: &DiffArgs,
) -> crate::failure::Result<u8> {
    let read = |v: i64| -> crate::failure::Result<Value> {
        client
            .get_secret(name.as_str(), Some(v))?
            .map(|r| r.value)
            .ok_or_else(|| {
                Error::NotFound {
                    name: name.to_string(),
                    searched: vec![format!(
                        "server {} team {:?} version {v}",
                        client.url(),
                        client.team()
                    )],
                }
                .into()
            })
    };
    let (old, new) = (read(from)?, read(to)?);
    let state = if old == new { "same" } else { "differs" };
    let (added, removed, changed) = key_changes(&old, &new);
    if a.json {
        let mut d = json!({
            "name": name.as_str(), "from": from, "to": to, "state": state,
            "added_keys": added, "removed_keys": removed, "changed_keys": changed,
        });
        if a.show && old != new {
            d["from_value"] = old;
            d["to_value"] = new;
        }
        out::line(&d.to_string())?;
        return Ok(EXIT_OK);
    }
    let mut text = format!("{name}: version {from} and version {to}: {state}\n");
    for (what, keys) in [
        ("added", &added),
        ("removed", &removed),
        ("changed", &changed),
    ] {
        if !keys.is_empty() {
            text.push_str(&format!("  keys {what}: {}\n", keys.join(", ")));
        }
    }
    if a.show && old != new {
        text.push_str(&format!("  version {from}: {}\n", shown(Some(&old))));
        text.push_str(&format!("  version {to}: {}\n", shown(Some(&new))));
    }
    out::write_stdout(text.as_bytes())?;
    Ok(EXIT_OK)
}

/// The pairs (source name, destination name) a copy means.
fn pairs(
    a: &CopyArgs,
    listed: &[SecretName],
) -> crate::failure::Result<Vec<(SecretName, SecretName)>> {
    if let (Some(from), Some(to)) = (&a.prefix, &a.to) {
        let out: Vec<(SecretName, SecretName)> = listed
            .iter()
            .filter_map(|n| n.as_str().strip_prefix(from.as_str()).map(|rest| (n, rest)))
            .map(|(n, rest)| Ok((n.clone(), SecretName::parse(&format!("{to}{rest}"))?)))
            .collect::<crate::failure::Result<_>>()?;
        if out.is_empty() {
            return Err(Error::NotFound {
                name: format!("{from}*"),
                searched: vec!["no secret's name starts with this prefix".into()],
            }
            .into());
        }
        return Ok(out);
    }
    let src = SecretName::parse(a.src.as_deref().expect("clap: src or --prefix"))?;
    let dst = match &a.dst {
        Some(d) => SecretName::parse(d)?,
        None => src.clone(),
    };
    if src == dst && a.to_team.is_none() {
        return Err(UsageError(format!(
            "copy {src} to what? give a new name, or --to-team TEAM"
        ))
        .into());
    }
    Ok(vec![(src, dst)])
}

pub fn copy(a: CopyArgs) -> crate::failure::Result<u8> {
    if a.to.is_some() && a.prefix.is_none() {
        return Err(UsageError("--to goes with --prefix: --prefix dev/ --to prod/".into()).into());
    }
    let loaded = load()?;
    if loaded.on_server_either(a.local, a.server) || a.to_team.is_some() {
        copy_on_server(&loaded, &a)
    } else {
        copy_locally(&loaded, &a)
    }
}

fn action(exists: bool, overwrite: bool) -> &'static str {
    match (exists, overwrite) {
        (false, _) => "new",
        (true, true) => "replace",
        (true, false) => "keep",
    }
}

fn report(
    plan: &[(SecretName, SecretName, &'static str)],
    dry_run: bool,
    into: &str,
) -> crate::failure::Result<()> {
    if dry_run {
        let mut text = String::new();
        for (s, d, what) in plan {
            text.push_str(&format!("{s} -> {d}\t{what}\n"));
        }
        out::write_stdout(text.as_bytes())?;
        return Ok(());
    }
    let copied = plan.iter().filter(|p| p.2 != "keep").count();
    eprintln!("copied {copied} secret(s) into {into}");
    let kept: Vec<&str> = plan
        .iter()
        .filter(|p| p.2 == "keep")
        .map(|p| p.1.as_str())
        .collect();
    if !kept.is_empty() {
        eprintln!(
            "kept {} existing secret(s) (use --overwrite to replace): {}",
            kept.len(),
            kept.join(", ")
        );
    }
    Ok(())
}

fn copy_on_server(loaded: &Loaded, a: &CopyArgs) -> crate::failure::Result<u8> {
    let src = loaded.client()?;
    let dst = match &a.to_team {
        None => src.clone(),
        Some(team) => {
            let key = std::env::var("SIGIL_TO_API_KEY").ok();
            let conn = sigil_client::connection(&loaded.settings, &loaded.env)?;
            let key = key.map(Zeroizing::new).or(conn.api_key).ok_or_else(|| {
                anyhow::anyhow!("no API key for team {team:?}: set SIGIL_TO_API_KEY")
            })?;
            sigil_client::Client::new(src.url(), team, &key)?
        }
    };
    let listed: Vec<SecretName> = match &a.prefix {
        Some(p) => src
            .list_all_secrets(p)?
            .into_iter()
            .filter_map(|i| SecretName::parse(&i.name).ok())
            .collect(),
        None => Vec::new(),
    };
    let pairs = pairs(a, &listed)?;
    let existing: HashSet<String> = dst
        .list_all_secrets("")?
        .into_iter()
        .map(|i| i.name)
        .collect();
    let plan: Vec<(SecretName, SecretName, &'static str)> = pairs
        .into_iter()
        .map(|(s, d)| {
            let what = action(existing.contains(d.as_str()), a.overwrite);
            (s, d, what)
        })
        .collect();
    let into = format!("{} team {:?}", dst.url(), dst.team());
    if !a.dry_run {
        let asked: Vec<String> = plan
            .iter()
            .filter(|p| p.2 != "keep")
            .map(|p| p.0.to_string())
            .collect();
        let read = src.batch_read(&asked)?;
        if let Some(m) = read.missing.first() {
            return Err(Error::NotFound {
                name: m.clone(),
                searched: vec![format!("server {} team {:?}", src.url(), src.team())],
            }
            .into());
        }
        let values: BTreeMap<String, Value> = read
            .secrets
            .into_iter()
            .map(|r| (r.name, r.value))
            .collect();
        let mut done = Vec::new();
        for (s, d, what) in plan.iter().filter(|p| p.2 != "keep") {
            let cas = (*what == "new").then_some(0);
            // every name asked was answered (a missing one is an error above); should the server
            // leave one out all the same, it is a miss, not a panic
            let Some(value) = values.get(s.as_str()) else {
                return Err(Error::NotFound {
                    name: s.to_string(),
                    searched: vec![format!("server {} team {:?}", src.url(), src.team())],
                }
                .into());
            };
            if let Err(e) = dst.put_secret(d.as_str(), value, cas) {
                return Err(crate::failure::Failure::from(e).context(format!(
                    "copying {s} to {d} failed after {} secret(s) were copied ({})",
                    done.len(),
                    done.join(", ")
                )));
            }
            done.push(d.to_string());
        }
    }
    report(&plan, a.dry_run, &into)?;
    Ok(EXIT_OK)
}

fn copy_locally(loaded: &Loaded, a: &CopyArgs) -> crate::failure::Result<u8> {
    let listed: Vec<SecretName> = loaded.file.secrets.iter().map(|(n, _)| n.clone()).collect();
    let pairs = pairs(a, &listed)?;
    let mut entries = Vec::new();
    let mut plan = Vec::new();
    for (s, d) in pairs {
        let value = loaded
            .file
            .secret(s.as_str())
            .ok_or_else(|| Error::NotFound {
                name: s.to_string(),
                searched: vec![format!(
                    "{} [context.secrets]",
                    sigil_core::error::display_path(&loaded.paths.config)
                )],
            })?;
        let what = action(loaded.file.secret(d.as_str()).is_some(), a.overwrite);
        entries.push((d.clone(), value.clone()));
        plan.push((s, d, what));
    }
    let editor = loaded.editor();
    if !a.dry_run {
        // one atomic write of the file
        editor.set_secrets(&entries, a.overwrite)?;
    }
    let into = format!(
        "{} [context.secrets]",
        sigil_core::error::display_path(editor.path())
    );
    report(&plan, a.dry_run, &into)?;
    Ok(EXIT_OK)
}
