//! `sigil import --from prefect|dotenv PATH`: the files are read by `sigil_core::import`; this
//! command writes what they hold into the config file or the server.

use sigil_core::config::read_text;
use sigil_core::{Error, SecretName, import};

use crate::cli::{ImportArgs, ImportFormat};
use crate::loaded::load;
use crate::{EXIT_OK, out};

pub fn run(a: ImportArgs) -> crate::failure::Result<u8> {
    let text = read_text(&a.path)?.ok_or_else(|| Error::Io {
        action: "cannot read",
        path: a.path.clone(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
    })?;
    let entries = match a.from {
        ImportFormat::Prefect => import::prefect(&a.path, &text)?,
        ImportFormat::Dotenv => import::dotenv(&a.path, &text)?,
    };
    let loaded = load()?;
    for (name, value) in &entries {
        sigil_core::edit::check_size(name, value, loaded.settings.limits.max_value_bytes)?;
    }
    let on_server = loaded.on_server(a.target);
    let client = if on_server {
        Some(loaded.client()?)
    } else {
        None
    };
    let existing: std::collections::HashSet<String> = match &client {
        Some(c) => c
            .list_all_secrets("")?
            .into_iter()
            .map(|i| i.name)
            .collect(),
        None => loaded
            .file
            .secrets
            .iter()
            .map(|(n, _)| n.to_string())
            .collect(),
    };
    let action = |name: &SecretName| match (existing.contains(name.as_str()), a.overwrite) {
        (false, _) => "new",
        (true, true) => "replace",
        (true, false) => "keep",
    };
    if a.dry_run {
        if a.json {
            let doc: Vec<_> = entries
                .iter()
                .map(|(n, _)| serde_json::json!({"name": n.as_str(), "action": action(n)}))
                .collect();
            out::line(&serde_json::Value::Array(doc).to_string())?;
            return Ok(EXIT_OK);
        }
        let mut text = String::new();
        for (name, _) in &entries {
            let what = match action(name) {
                "keep" => "keep existing",
                other => other,
            };
            text.push_str(&format!("{name}\t{what}\n"));
        }
        out::write_stdout(text.as_bytes())?;
        return Ok(EXIT_OK);
    }
    let (written, skipped, into) = match &client {
        Some(c) => {
            // each secret is a write of its own on the server: one that fails stops the import
            // and says which went in before it
            let mut written = Vec::new();
            let mut skipped = Vec::new();
            for (name, value) in &entries {
                if action(name) == "keep" {
                    skipped.push(name.clone());
                    continue;
                }
                // a new name is created only if it is still new (check-and-set on version 0)
                let cas = (action(name) == "new").then_some(0);
                if let Err(e) = c.put_secret(name.as_str(), value.expose_json(), cas) {
                    let done: Vec<&str> = written.iter().map(SecretName::as_str).collect();
                    return Err(crate::failure::Failure::from(e).context(format!(
                        "importing secret {:?} into the server failed after {} secret(s) went in ({})",
                        name.as_str(),
                        done.len(),
                        done.join(", ")
                    )));
                }
                written.push(name.clone());
            }
            (
                written.len(),
                skipped,
                format!("{} team {:?}", c.url(), c.team()),
            )
        }
        None => {
            let editor = loaded.editor();
            let skipped = editor.set_secrets(&entries, a.overwrite)?;
            let into = format!(
                "{} [context.secrets]",
                sigil_core::error::display_path(editor.path())
            );
            (entries.len() - skipped.len(), skipped, into)
        }
    };
    tracing::info!(count = written, into = %into, "imported");
    eprintln!(
        "imported {written} secret(s) from {} into {into}",
        a.path.display(),
    );
    if !skipped.is_empty() {
        let names: Vec<&str> = skipped.iter().map(SecretName::as_str).collect();
        eprintln!(
            "kept {} existing secret(s) (use --overwrite to replace): {}",
            names.len(),
            names.join(", ")
        );
    }
    Ok(EXIT_OK)
}
