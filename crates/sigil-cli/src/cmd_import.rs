//! `sigil import --from prefect|dotenv PATH`.

use std::path::Path;

use sigil_core::config::{item_to_json, line_col, parse_toml, read_text};
use sigil_core::{Error, SecretName, SecretValue};

use crate::cli::{ImportArgs, ImportFormat};
use crate::cmd_secrets::load;
use crate::{EXIT_OK, out};

pub fn run(a: ImportArgs) -> anyhow::Result<u8> {
    let text = read_text(&a.path)?.ok_or_else(|| Error::Io {
        action: "cannot read",
        path: a.path.clone(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
    })?;
    let entries = match a.from {
        ImportFormat::Prefect => parse_prefect(&a.path, &text)?,
        ImportFormat::Dotenv => parse_dotenv(&a.path, &text)?,
    };
    let loaded = load()?;
    for (name, value) in &entries {
        sigil_core::edit::check_size(name, value, loaded.settings.limits.max_value_bytes)?;
    }
    let on_server = loaded.on_server(a.local, a.server);
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
                    return Err(anyhow::Error::new(e).context(format!(
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

fn invalid(path: &Path, text: &str, at: usize, message: String) -> Error {
    let (line, column) = line_col(text.as_bytes(), at);
    Error::ConfigInvalid {
        path: path.to_owned(),
        line,
        column,
        message,
    }
}

/// The `[context.secrets]` table of a Prefect 1 `config.toml`, values verbatim (Prefect's `${…}`
/// interpolation and type casting are not applied).
pub fn parse_prefect(path: &Path, text: &str) -> Result<Vec<(SecretName, SecretValue)>, Error> {
    let doc = parse_toml(path, text)?;
    let none = || {
        invalid(
            path,
            text,
            0,
            "no [context.secrets] table in this Prefect config".into(),
        )
    };
    let context = doc
        .get("context")
        .and_then(|i| i.as_table_like())
        .ok_or_else(none)?;
    let (key, secrets) = context.get_key_value("secrets").ok_or_else(none)?;
    let at = key.span().map_or(0, |s| s.start);
    let secrets = secrets
        .as_table_like()
        .ok_or_else(|| invalid(path, text, at, "`context.secrets` must be a table".into()))?;
    let mut out = Vec::new();
    for (name, item) in secrets.iter() {
        let at = secrets
            .get_key_value(name)
            .and_then(|(k, _)| k.span())
            .map_or(0, |s| s.start);
        let parsed = SecretName::parse(name)
            .map_err(|e| invalid(path, text, at, format!("in [context.secrets]: {e}")))?;
        let value = item_to_json(item)
            .map_err(|m| invalid(path, text, at, format!("secret {name:?}: {m}")))?;
        out.push((parsed, SecretValue::new(value)));
    }
    Ok(out)
}

/// A `.env` file: `NAME=value` lines, optional `export`, `#` comments, single quotes (literal),
/// double quotes (`\n`, `\t`, `\r`, `\"`, `\\`, `\$` escapes; may span lines). No variable
/// expansion: `$HOME` stays `$HOME`.
///
/// # Errors
/// Every bad line at once, each naming the file, line and column (a quote left open ends the
/// search: what follows it cannot be read as lines).
pub fn parse_dotenv(
    path: &Path,
    text: &str,
) -> Result<Vec<(SecretName, SecretValue)>, DotenvErrors> {
    let bytes = text.as_bytes();
    let n = bytes.len();
    let mut out: Vec<(SecretName, SecretValue)> = Vec::new();
    let mut errors = Vec::new();
    let mut first_line: std::collections::HashMap<String, usize> = Default::default();
    let mut i = 0;
    while i < n {
        match dotenv_entry(path, text, &mut i) {
            Ok(None) => {}
            Ok(Some((key_start, key, name, value))) => {
                let (line, _) = line_col(bytes, key_start);
                if let Some(first) = first_line.insert(key.clone(), line) {
                    errors.push(invalid(
                        path,
                        text,
                        key_start,
                        format!("duplicate key {key:?} (first set at line {first})"),
                    ));
                } else {
                    out.push((name, SecretValue::from(value)));
                }
            }
            Err((e, fatal)) => {
                errors.push(e);
                if fatal {
                    break;
                }
                // go on at the next line
                while i < n && bytes[i] != b'\n' {
                    i += 1;
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(DotenvErrors(errors))
    }
}

/// Every error found in a `.env` file.
#[derive(Debug)]
pub struct DotenvErrors(pub Vec<Error>);

impl std::fmt::Display for DotenvErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            all => {
                write!(f, "{} errors:", all.len())?;
                for e in all {
                    write!(f, "\n  {e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for DotenvErrors {}

/// One line's entry from `*i` on: `None` for a blank or comment line. An error comes with
/// whether reading must stop (an open quote).
#[allow(clippy::type_complexity)]
fn dotenv_entry(
    path: &Path,
    text: &str,
    i: &mut usize,
) -> Result<Option<(usize, String, SecretName, String)>, (Error, bool)> {
    let bytes = text.as_bytes();
    let n = bytes.len();
    let skip_blank = |i: &mut usize| {
        while *i < n && (bytes[*i] == b' ' || bytes[*i] == b'\t') {
            *i += 1;
        }
    };
    let bad = |at: usize, message: String| (invalid(path, text, at, message), false);
    let fatal = |at: usize, message: String| (invalid(path, text, at, message), true);
    skip_blank(i);
    if *i >= n {
        return Ok(None);
    }
    if bytes[*i] == b'\n' || bytes[*i] == b'\r' {
        *i += 1;
        return Ok(None);
    }
    if bytes[*i] == b'#' {
        while *i < n && bytes[*i] != b'\n' {
            *i += 1;
        }
        return Ok(None);
    }
    if text[*i..].starts_with("export ") || text[*i..].starts_with("export\t") {
        *i += 6;
        skip_blank(i);
    }
    let key_start = *i;
    while *i < n && !matches!(bytes[*i], b'=' | b' ' | b'\t' | b'\n' | b'\r' | b'#') {
        *i += 1;
    }
    let key = &text[key_start..*i];
    if key.is_empty() {
        return Err(bad(key_start, "expected a variable name".into()));
    }
    let name = SecretName::parse(key).map_err(|e| bad(key_start, e.to_string()))?;
    skip_blank(i);
    if *i >= n || bytes[*i] != b'=' {
        return Err(bad(*i, format!("expected '=' after {key:?}")));
    }
    *i += 1;
    skip_blank(i);
    let value = match bytes.get(*i) {
        Some(b'\'') => {
            let open = *i;
            let close = text[*i + 1..].find('\'').ok_or_else(|| {
                fatal(
                    open,
                    format!("unterminated single quote in the value of {key:?}"),
                )
            })?;
            let v = text[*i + 1..*i + 1 + close].to_owned();
            *i = *i + 1 + close + 1;
            v
        }
        Some(b'"') => {
            let open = *i;
            let mut v = String::new();
            *i += 1;
            loop {
                let Some(c) = text[*i..].chars().next() else {
                    return Err(fatal(
                        open,
                        format!("unterminated double quote in the value of {key:?}"),
                    ));
                };
                *i += c.len_utf8();
                match c {
                    '"' => break,
                    '\\' => {
                        let Some(e) = text[*i..].chars().next() else {
                            continue;
                        };
                        *i += e.len_utf8();
                        match e {
                            'n' => v.push('\n'),
                            't' => v.push('\t'),
                            'r' => v.push('\r'),
                            '"' | '\\' | '$' => v.push(e),
                            other => {
                                v.push('\\');
                                v.push(other);
                            }
                        }
                    }
                    c => v.push(c),
                }
            }
            v
        }
        _ => {
            let start = *i;
            while *i < n && bytes[*i] != b'\n' && bytes[*i] != b'\r' {
                // " #" starts a comment in an unquoted value
                if bytes[*i] == b'#' && *i > start && matches!(bytes[*i - 1], b' ' | b'\t') {
                    break;
                }
                *i += 1;
            }
            text[start..*i].trim_end().to_owned()
        }
    };
    // only blanks or a comment may follow a value
    skip_blank(i);
    if *i < n && bytes[*i] == b'#' {
        while *i < n && bytes[*i] != b'\n' {
            *i += 1;
        }
    }
    if *i < n && !matches!(bytes[*i], b'\n' | b'\r') {
        return Err(bad(
            *i,
            format!("unexpected text after the value of {key:?}"),
        ));
    }
    Ok(Some((key_start, key.to_owned(), name, value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dotenv(text: &str) -> Result<Vec<(String, String)>, String> {
        parse_dotenv(Path::new(".env"), text)
            .map(|v| {
                v.into_iter()
                    .map(|(n, v)| (n.to_string(), v.expose_str().unwrap().to_owned()))
                    .collect()
            })
            .map_err(|e| e.to_string())
    }

    #[test]
    fn dotenv_values_are_verbatim() {
        let got = dotenv(
            "# comment\nexport A=$HOME\nB = '${a.b} #x'\nC=\"l1\\nl2 \\\"q\\\" \\$X\"\nD=plain value # comment\nE=\nF=\"multi\nline\"\n",
        )
        .unwrap();
        let want: Vec<(String, String)> = [
            ("A", "$HOME"),
            ("B", "${a.b} #x"),
            ("C", "l1\nl2 \"q\" $X"),
            ("D", "plain value"),
            ("E", ""),
            ("F", "multi\nline"),
        ]
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn dotenv_errors_name_line_and_column() {
        assert_eq!(
            dotenv("A=1\nB 2\n").unwrap_err(),
            "invalid setting in .env at 2:3: expected '=' after \"B\""
        );
        assert!(
            dotenv("A=1\nB=\"open\n")
                .unwrap_err()
                .contains("at 2:3: unterminated double quote")
        );
        assert!(
            dotenv("A=1\nA=2\n")
                .unwrap_err()
                .contains("at 2:1: duplicate key \"A\" (first set at line 1)")
        );
        assert!(
            dotenv("A='x' y\n")
                .unwrap_err()
                .contains("at 1:7: unexpected text")
        );
        assert!(dotenv("B@D=1\n").unwrap_err().contains("at 1:1"));
    }

    // A .env with several bad lines was reported one line per run.
    #[test]
    fn dotenv_reports_every_bad_line_at_once() {
        let e = dotenv("A=1\nB 2\nC=ok\nD@=3\nA=4\nE='x' y\nF=\"open\nG=never read\n").unwrap_err();
        assert!(e.starts_with("5 errors:\n"), "{e}");
        for at in [
            "at 2:3: expected '='",
            "at 4:1",
            "at 5:1: duplicate key \"A\"",
            "at 6:7: unexpected text",
            "at 7:3: unterminated double quote",
        ] {
            assert!(e.contains(at), "{at} missing in {e}");
        }
        assert!(!e.contains("at 8:"), "nothing after an open quote: {e}");
    }

    #[test]
    fn prefect_secrets_table() {
        let text = "[logging]\nlevel = \"INFO\"\n\n[context.secrets]\nMYSECRET = \"${HOME}\"\nNUM = \"42\"\nCREDS = { user = \"u\" }\n";
        let got = parse_prefect(Path::new("p.toml"), text).unwrap();
        assert_eq!(got[0].1.expose_str(), Some("${HOME}"));
        assert_eq!(got[1].1.expose_str(), Some("42"));
        assert_eq!(got[2].1.expose_json(), &serde_json::json!({"user": "u"}));
        let e = parse_prefect(Path::new("p.toml"), "[logging]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no [context.secrets] table"), "{e}");
    }
}
