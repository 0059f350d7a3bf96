//! `sigil secrets edit NAME` and `sigil secrets rollback NAME --to N`.

use std::io::{Read, Seek, Write};
use std::os::unix::fs::PermissionsExt;

use anyhow::Context as _;
use sigil_core::{Error, SecretName, SecretValue};
use zeroize::Zeroizing;

use crate::cli::{EditArgs, RollbackArgs};
use crate::loaded::load;
use crate::{EXIT_OK, UsageError};

/// Opens the secret in the user's editor. The value goes into a 0600 file in `$SIGIL_HOME`
/// (0700), which is overwritten and removed however the editing ends. A string is edited as
/// text; any other JSON value as pretty JSON, checked on save. A change is written with
/// check-and-set, so a change made meanwhile by someone else is not lost.
pub fn edit(a: EditArgs) -> crate::failure::Result<u8> {
    let name = SecretName::parse(&a.name)?;
    let loaded = load()?;
    let client = if loaded.on_server(a.target) {
        Some(loaded.client()?)
    } else {
        None
    };
    let (current, version) = match &client {
        Some(c) => match c.get_secret(name.as_str(), None)? {
            Some(r) => (Some(SecretValue::new(r.value)), Some(r.version)),
            None => (None, None),
        },
        None => (loaded.file.secret(name.as_str()).cloned(), None),
    };
    let as_json = current
        .as_ref()
        .is_some_and(|v| !v.expose_json().is_string());
    let before: Zeroizing<String> = Zeroizing::new(match &current {
        None => String::new(),
        Some(v) if as_json => serde_json::to_string_pretty(v.expose_json())? + "\n",
        Some(v) => v.expose_text().into_owned(),
    });

    sigil_core::edit::create_private_dir(&loaded.paths.home)
        .with_context(|| format!("cannot create {}", loaded.paths.home.display()))?;
    let mut file = tempfile::Builder::new()
        .prefix(".sigil-edit-")
        .suffix(if as_json { ".json" } else { ".txt" })
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(&loaded.paths.home)
        .context("cannot create the file to edit")?;
    file.write_all(before.as_bytes())?;
    file.flush()?;
    let editor = std::env::var("VISUAL")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .or_else(|| {
            std::env::var("EDITOR")
                .ok()
                .filter(|e| !e.trim().is_empty())
        })
        .unwrap_or_else(|| "vi".into());
    // as git does: the editor is a shell command (`code --wait`), the file its last argument
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(file.path())
        .status();
    let mut after = Zeroizing::new(String::new());
    let read = std::fs::File::open(file.path()).and_then(|mut f| f.read_to_string(&mut after));
    // the value does not stay on disk: overwrite, then remove (on drop)
    let len = std::fs::metadata(file.path()).map_or(0, |m| m.len());
    let _ = file.as_file_mut().rewind();
    let _ = file.as_file_mut().write_all(&vec![0; len as usize]);
    let _ = file.as_file_mut().sync_all();
    drop(file);
    let status = status.with_context(|| format!("cannot start the editor {editor:?}"))?;
    if !status.success() {
        return Err(anyhow::anyhow!(
            "the editor {editor:?} failed ({status}); nothing was changed"
        )
        .into());
    }
    read.context("cannot read the edited file back")?;
    // editors end the last line with a newline: a value that had none gets none
    if !as_json && !before.ends_with('\n') && after.ends_with('\n') {
        after.pop();
        if !before.ends_with('\r') && after.ends_with('\r') {
            after.pop();
        }
    }
    if *after == *before {
        eprintln!("{name}: no change");
        return Ok(EXIT_OK);
    }
    if after.is_empty() {
        return Err(UsageError(format!(
            "no value given for secret {:?}: the edited value is empty; nothing was changed",
            name.as_str()
        ))
        .into());
    }
    let value = if as_json {
        match serde_json::from_str::<serde_json::Value>(&after) {
            Ok(v) => SecretValue::new(v),
            Err(e) => {
                return Err(Error::Decode {
                    name: name.to_string(),
                    target: "JSON".into(),
                    reason: format!(
                        "invalid JSON at line {} column {}; nothing was changed",
                        e.line(),
                        e.column()
                    ),
                }
                .into());
            }
        }
    } else {
        SecretValue::from(after.as_str())
    };
    sigil_core::edit::check_size(&name, &value, loaded.settings.limits.max_value_bytes)?;
    match &client {
        Some(c) => {
            let written = c
                .put_secret(
                    name.as_str(),
                    value.expose_json(),
                    Some(version.unwrap_or(0)),
                )
                .map_err(|e| match e {
                    sigil_client::ClientError::Conflict { .. } => anyhow::anyhow!(
                        "secret {:?} was changed on the server while you edited it; nothing \
                         was written (edit it again to start from the new version)",
                        name.as_str()
                    ),
                    e => e.into(),
                })?;
            eprintln!(
                "{name}: version {} on {} team {:?}",
                written.version,
                c.url(),
                c.team()
            );
        }
        None => {
            let editor = loaded.editor();
            editor.set_secret(&name, &value)?;
            eprintln!(
                "{name}: written to {} [context.secrets]",
                sigil_core::error::display_path(editor.path())
            );
        }
    }
    Ok(EXIT_OK)
}

/// A new version equal to an old one, written with check-and-set on the current version.
pub fn rollback(a: RollbackArgs) -> crate::failure::Result<u8> {
    let name = SecretName::parse(&a.name)?;
    let client = load()?.client()?;
    let place = format!("server {} team {:?}", client.url(), client.team());
    let Some(old) = client.get_secret(name.as_str(), Some(a.to))? else {
        return Err(Error::NotFound {
            name: name.to_string(),
            searched: vec![format!("{place} version {}", a.to)],
        }
        .into());
    };
    let Some(current) = client.get_secret(name.as_str(), None)? else {
        return Err(anyhow::anyhow!(
            "secret {:?} is deleted on {place}: `sigil secrets restore {name}` first",
            name.as_str()
        )
        .into());
    };
    if current.value == old.value {
        eprintln!(
            "{name}: version {} already equals version {}; nothing was written",
            current.version, a.to
        );
        return Ok(EXIT_OK);
    }
    let written = client.put_secret(name.as_str(), &old.value, Some(current.version))?;
    eprintln!(
        "{name}: rolled back to version {} as version {} on {place}",
        a.to, written.version
    );
    Ok(EXIT_OK)
}
