//! Secrets from the files people already keep: a Prefect 1 `config.toml` (its
//! `[context.secrets]`) and a `.env` file. Values are read verbatim — no `$`/`${…}` expansion, no
//! type casting — and every error names the file, line and column.

use std::path::Path;

use crate::config::{item_to_json, line_col, parse_toml};
use crate::{Error, SecretName, SecretValue};

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
pub fn prefect(path: &Path, text: &str) -> Result<Vec<(SecretName, SecretValue)>, Error> {
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
pub fn dotenv(path: &Path, text: &str) -> Result<Vec<(SecretName, SecretValue)>, DotenvErrors> {
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

    fn env_file(text: &str) -> Result<Vec<(String, String)>, String> {
        dotenv(Path::new(".env"), text)
            .map(|v| {
                v.into_iter()
                    .map(|(n, v)| (n.to_string(), v.expose_str().unwrap().to_owned()))
                    .collect()
            })
            .map_err(|e| e.to_string())
    }

    #[test]
    fn dotenv_values_are_verbatim() {
        let got = env_file(
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
            env_file("A=1\nB 2\n").unwrap_err(),
            "invalid setting in .env at 2:3: expected '=' after \"B\""
        );
        assert!(
            env_file("A=1\nB=\"open\n")
                .unwrap_err()
                .contains("at 2:3: unterminated double quote")
        );
        assert!(
            env_file("A=1\nA=2\n")
                .unwrap_err()
                .contains("at 2:1: duplicate key \"A\" (first set at line 1)")
        );
        assert!(
            env_file("A='x' y\n")
                .unwrap_err()
                .contains("at 1:7: unexpected text")
        );
        assert!(env_file("B@D=1\n").unwrap_err().contains("at 1:1"));
    }

    // A .env with several bad lines was reported one line per run.
    #[test]
    fn dotenv_reports_every_bad_line_at_once() {
        let e =
            env_file("A=1\nB 2\nC=ok\nD@=3\nA=4\nE='x' y\nF=\"open\nG=never read\n").unwrap_err();
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
        let got = prefect(Path::new("p.toml"), text).unwrap();
        assert_eq!(got[0].1.expose_str(), Some("${HOME}"));
        assert_eq!(got[1].1.expose_str(), Some("42"));
        assert_eq!(got[2].1.expose_json(), &serde_json::json!({"user": "u"}));
        let e = prefect(Path::new("p.toml"), "[logging]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no [context.secrets] table"), "{e}");
    }
}
