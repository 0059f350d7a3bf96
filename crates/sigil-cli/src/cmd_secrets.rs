//! `sigil secrets get|set|list|delete`.

use std::io::{IsTerminal, Read};

use anyhow::Context as _;
use serde_json::json;
use sigil_core::{Error, Redactor, Resolver, SecretName, SecretValue};
use zeroize::Zeroize as _;

use sigil_core::wire::{VersionStatus, VersionsChange};

use crate::cli::{DeleteArgs, GetArgs, ListArgs, SecretsCommand, SetArgs};
use crate::{EXIT_OK, UsageError, out};

pub fn run(cmd: SecretsCommand) -> crate::failure::Result<u8> {
    match cmd {
        SecretsCommand::Get(a) => get(a),
        SecretsCommand::Set(a) => set(a),
        SecretsCommand::List(a) => list(a),
        SecretsCommand::Delete(a) => delete(a),
        SecretsCommand::Restore(a) => crate::cmd_remote::restore(a),
        SecretsCommand::Undelete(a) => {
            crate::cmd_remote::change_versions(&a.name, VersionsChange::Undelete, &a.versions)
        }
        SecretsCommand::Destroy(a) => {
            crate::cmd_remote::change_versions(&a.name, VersionsChange::Destroy, &a.versions)
        }
        SecretsCommand::History(a) => crate::cmd_remote::history(a),
        SecretsCommand::Edit(a) => crate::cmd_edit::edit(a),
        SecretsCommand::Rollback(a) => crate::cmd_edit::rollback(a),
        SecretsCommand::Diff(a) => crate::cmd_promote::diff(a),
        SecretsCommand::Copy(a) => crate::cmd_promote::copy(a),
    }
}

use crate::loaded::{Loaded, load};

fn parse_name(name: &str) -> crate::failure::Result<SecretName> {
    Ok(SecretName::parse(name)?)
}

fn get(a: GetArgs) -> crate::failure::Result<u8> {
    let names: Vec<SecretName> = a
        .names
        .iter()
        .map(|n| parse_name(n))
        .collect::<crate::failure::Result<_>>()?;
    let loaded = load()?;
    if a.server || a.version.is_some() {
        let [name] = names.as_slice() else {
            if a.version.is_some() {
                return Err(UsageError("--version reads one secret at a time".into()).into());
            }
            return get_many_from_server(&loaded, &names, &a);
        };
        return get_from_server(&loaded, name, &a);
    }
    let resolver = loaded
        .resolver()
        .map_err(|e| e.for_secret(names[0].as_str()))?;
    // one request per source for every name: one batch from a server
    let resolved = match names.as_slice() {
        [one] => vec![resolver.resolve(one)?],
        many => resolver.resolve_many(many)?,
    };
    if a.explain {
        for (name, r) in names.iter().zip(&resolved) {
            tracing::debug!(secret = name.as_str(), source = %r.source, "resolved");
            out::line(&format!("{}: answered by {} ({})", name, r.source, r.place))?;
            out::line(&format!("searched: {}", r.searched.join("; ")))?;
        }
        return Ok(EXIT_OK);
    }
    if a.json {
        let docs: Vec<serde_json::Value> = names
            .iter()
            .zip(&resolved)
            .map(|(name, r)| {
                json!({
                    "name": name.as_str(),
                    "value": r.value.expose_json(),
                    "source": r.source,
                    "version": r.version,
                })
            })
            .collect();
        let doc = match <[serde_json::Value; 1]>::try_from(docs) {
            Ok([one]) => one,
            Err(many) => serde_json::Value::Array(many),
        };
        out::line(&doc.to_string())?;
        return Ok(EXIT_OK);
    }
    let mut text = String::new();
    for r in &resolved {
        text.push_str(&r.value.expose_text());
        text.push('\n');
    }
    out::write_stdout(text.as_bytes())?;
    text.zeroize();
    Ok(EXIT_OK)
}

/// `get --server A B`: one batch read.
fn get_many_from_server(
    loaded: &Loaded,
    names: &[SecretName],
    a: &GetArgs,
) -> crate::failure::Result<u8> {
    let client = loaded.client()?;
    let asked: Vec<String> = names.iter().map(ToString::to_string).collect();
    let read = client.batch_read(&asked)?;
    if let Some(missing) = read.missing.first() {
        return Err(Error::NotFound {
            name: missing.clone(),
            searched: vec![format!("server {} team {:?}", client.url(), client.team())],
        }
        .into());
    }
    let mut by_name: std::collections::HashMap<String, sigil_core::wire::SecretRead> = read
        .secrets
        .into_iter()
        .map(|r| (r.name.clone(), r))
        .collect();
    let mut docs = Vec::new();
    let mut text = String::new();
    for name in names {
        let Some(r) = by_name.remove(name.as_str()) else {
            continue; // a name asked twice is answered once
        };
        if a.explain {
            text.push_str(&format!(
                "{name}: answered by server ({} team {:?}) at version {}\n",
                client.url(),
                client.team(),
                r.version
            ));
        } else if a.json {
            docs.push(json!({"name": name.as_str(), "value": r.value, "source": "server", "version": r.version}));
        } else {
            text.push_str(&SecretValue::new(r.value).expose_text());
            text.push('\n');
        }
    }
    if a.json {
        text = serde_json::Value::Array(docs).to_string();
        text.push('\n');
    }
    out::write_stdout(text.as_bytes())?;
    text.zeroize();
    Ok(EXIT_OK)
}

/// Reads at most `limit` bytes into memory; past that the rest is only counted, so that an
/// endless input cannot exhaust memory and the error still tells the real size.
fn read_bounded(
    mut from: impl Read,
    name: &SecretName,
    limit: usize,
    io: impl Fn(std::io::Error) -> crate::failure::Failure,
) -> crate::failure::Result<Vec<u8>> {
    let mut buf = Vec::new();
    (&mut from)
        .take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(&io)?;
    if buf.len() > limit {
        let rest = std::io::copy(&mut from, &mut std::io::sink()).map_err(&io)?;
        return Err(Error::ValueTooLarge {
            name: name.to_string(),
            size: buf.len() + rest as usize,
            limit,
        }
        .into());
    }
    Ok(buf)
}

fn get_from_server(loaded: &Loaded, name: &SecretName, a: &GetArgs) -> crate::failure::Result<u8> {
    let client = loaded.client()?;
    let Some(read) = client.get_secret(name.as_str(), a.version)? else {
        let place = match a.version {
            Some(v) => {
                // a version that is kept but not readable: say so, and how to get it back
                let state = client
                    .history(name.as_str())
                    .ok()
                    .and_then(|h| h.versions.iter().find(|x| x.version == v).map(|x| x.state));
                let why = match state {
                    Some(VersionStatus::Deleted) => {
                        format!(", which is deleted (sigil secrets undelete {name} --versions {v})")
                    }
                    Some(VersionStatus::Destroyed) => ", which is destroyed".to_owned(),
                    _ => String::new(),
                };
                format!(
                    "server {} team {:?} version {v}{why}",
                    client.url(),
                    client.team()
                )
            }
            None => format!("server {} team {:?}", client.url(), client.team()),
        };
        return Err(Error::NotFound {
            name: name.to_string(),
            searched: vec![place],
        }
        .into());
    };
    if a.explain {
        out::line(&format!(
            "{name}: answered by server ({} team {:?}) at version {}",
            client.url(),
            client.team(),
            read.version
        ))?;
    } else if a.json {
        let doc = json!({"name": name.as_str(), "value": read.value, "source": "server", "version": read.version});
        out::line(&doc.to_string())?;
    } else {
        out::line(&SecretValue::new(read.value).expose_text())?;
    }
    Ok(EXIT_OK)
}

fn read_value(a: &SetArgs, name: &SecretName, limit: usize) -> crate::failure::Result<String> {
    let bytes = if let Some(v) = &a.value {
        eprintln!(
            "warning: a value given on the command line is visible in the process list and shell history; prefer --stdin, --file or the prompt"
        );
        v.clone().into_bytes()
    } else if a.stdin {
        let stdin = |e| anyhow::Error::new(e).context("cannot read the value from stdin");
        read_bounded(std::io::stdin().lock(), name, limit, |e| stdin(e).into())?
    } else if let Some(path) = &a.file {
        let io = |e| Error::Io {
            action: "cannot read",
            path: path.clone(),
            source: e,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        read_bounded(file, name, limit, |e| io(e).into())?
    } else if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("Value for {name}: "))
            .context("cannot read the value from the terminal")?
            .into_bytes()
    } else {
        return Err(UsageError(format!(
            "no value given for secret {:?}: pass VALUE, --stdin or --file",
            name.as_str()
        ))
        .into());
    };
    if bytes.is_empty() {
        // an empty prompt answer or an empty pipe is a mistake far more often than a value
        return Err(UsageError(format!(
            "no value given for secret {:?}: the value is empty",
            name.as_str()
        ))
        .into());
    }
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "the value of secret {:?} is not valid UTF-8 (byte {} is not): secrets are text or JSON",
            name.as_str(),
            e.utf8_error().valid_up_to()
        )
        .into()
    })
}

fn set(a: SetArgs) -> crate::failure::Result<u8> {
    let name = parse_name(&a.name)?;
    let loaded = load()?;
    let on_server = loaded.on_server(a.target);
    if a.cas.is_some() && !on_server {
        return Err(
            UsageError("--cas needs the server: the local file keeps no versions".into()).into(),
        );
    }
    // a server that cannot be reached with these settings is said before the value is asked for
    let client = if on_server {
        Some(loaded.client()?)
    } else {
        None
    };
    let text = read_value(&a, &name, loaded.settings.limits.max_value_bytes)?;
    let value = if a.json {
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v) => SecretValue::new(v),
            // serde_json's syntax messages name a position, not the text
            Err(e) => {
                return Err(Error::Decode {
                    name: name.to_string(),
                    target: "JSON".into(),
                    reason: format!("invalid JSON at line {} column {}", e.line(), e.column()),
                }
                .into());
            }
        }
    } else {
        SecretValue::from(text)
    };
    let redactor = Redactor::with_min_len(loaded.settings.limits.min_mask_bytes);
    let short = redactor.register(&value);
    if short > 0 {
        eprintln!(
            "warning: secret {:?} has {short} value(s) shorter than {} bytes (limits.min_mask_bytes): they will not be masked in output",
            name.as_str(),
            redactor.min_len()
        );
    }
    if let Some(client) = client {
        let written = client.put_secret(name.as_str(), value.expose_json(), a.cas)?;
        tracing::info!(
            secret = name.as_str(),
            version = written.version,
            "secret set on the server"
        );
        eprintln!(
            "set {name} version {} on {} team {:?}",
            written.version,
            client.url(),
            client.team()
        );
        return Ok(EXIT_OK);
    }
    let editor = loaded.editor();
    editor.set_secret(&name, &value)?;
    tracing::info!(secret = name.as_str(), file = %editor.path().display(), "secret set");
    eprintln!(
        "set {} in {} [context.secrets]",
        name,
        sigil_core::error::display_path(editor.path())
    );
    Ok(EXIT_OK)
}

fn list(a: ListArgs) -> crate::failure::Result<u8> {
    let loaded = load()?;
    let prefix = a.prefix.as_deref().unwrap_or_default();
    if a.server {
        return crate::cmd_remote::list_server(&loaded, prefix, a.json);
    }
    let resolver = if a.local {
        Resolver::local(&loaded.file)
    } else {
        loaded.resolver()?
    };
    let mut listed = resolver.list()?;
    listed.retain(|l| l.name.as_str().starts_with(prefix));
    if a.json {
        // one shape for every listing: a server's metadata is null where no server answered
        let doc: Vec<_> = listed
            .iter()
            .map(|l| {
                json!({
                    "name": l.name.as_str(),
                    "source": l.source,
                    "shadowed": l.shadowed,
                    "version": null,
                    "updated_at": null,
                    "updated_by": null,
                })
            })
            .collect();
        out::line(&serde_json::Value::Array(doc).to_string())?;
        return Ok(EXIT_OK);
    }
    let width = listed
        .iter()
        .map(|l| l.name.as_str().len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut text = format!("{:<width$}  SOURCE\n", "NAME");
    for l in &listed {
        let shadow = if l.shadowed.is_empty() {
            String::new()
        } else {
            format!(" (also in {})", l.shadowed.join(", "))
        };
        text.push_str(&format!(
            "{:<width$}  {}{shadow}\n",
            l.name.as_str(),
            l.source
        ));
    }
    out::write_stdout(text.as_bytes())?;
    Ok(EXIT_OK)
}

fn delete(a: DeleteArgs) -> crate::failure::Result<u8> {
    if !a.versions.is_empty() {
        // versions live on the server only
        return crate::cmd_remote::change_versions(&a.name, VersionsChange::Delete, &a.versions);
    }
    let name = parse_name(&a.name)?;
    let loaded = load()?;
    if loaded.on_server(a.target) {
        let client = loaded.client()?;
        client.delete_secret(name.as_str())?;
        eprintln!(
            "deleted {name} on {} team {:?} (restorable: sigil secrets restore {name})",
            client.url(),
            client.team()
        );
        return Ok(EXIT_OK);
    }
    let editor = loaded.editor();
    if editor.delete_secret(&name)? {
        eprintln!(
            "deleted {} from {} [context.secrets]",
            name,
            sigil_core::error::display_path(editor.path())
        );
        return Ok(EXIT_OK);
    }
    let mut searched = vec![format!(
        "{} [context.secrets]",
        sigil_core::error::display_path(editor.path())
    )];
    if let Some(var) = sigil_core::EnvSource::var_name(&name)
        && loaded.env.var(&var).is_some()
    {
        searched.push(format!("it is set by env {var}, which sigil cannot delete"));
    }
    Err(Error::NotFound {
        name: name.to_string(),
        searched,
    }
    .into())
}
