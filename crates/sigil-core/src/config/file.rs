//! The config file: reading it (UTF-8, positions for every error), its settings (through the
//! table of settings) and its `[context.secrets]`, kept verbatim.

use std::path::{Path, PathBuf};

use serde_json::Value;
use toml_edit::{Document, Item, TableLike};

use super::table::{self, SettingValue};
use crate::error::{Error, Result};
use crate::name::SecretName;
use crate::value::SecretValue;

/// What a config file says: its settings (each with its position) and its `[context.secrets]`.
#[derive(Clone, Default)]
pub struct ConfigFile {
    /// The file (for messages).
    pub path: PathBuf,
    /// The settings it sets, by dotted key, in file order.
    values: Vec<(&'static str, SettingValue)>,
    /// `[context.secrets]`, in file order.
    pub secrets: Vec<(SecretName, SecretValue)>,
}

impl std::fmt::Debug for ConfigFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigFile")
            .field("path", &self.path)
            .field(
                "secrets",
                &self
                    .secrets
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Reads a file as UTF-8, telling a missing file (`Ok(None)`) from an unreadable one.
///
/// # Errors
/// [`Error::Io`] when the file exists but cannot be read; [`Error::ConfigSyntax`] naming the line
/// and column of the first byte that is not UTF-8.
pub fn read_text(path: &Path) -> Result<Option<String>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("cannot read", path, e)),
    };
    match String::from_utf8(bytes) {
        Ok(s) => Ok(Some(s)),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let (line, column) = line_col(&e.as_bytes()[..at], at);
            Err(Error::ConfigSyntax {
                path: path.to_owned(),
                line,
                column,
                message: format!("invalid UTF-8 (byte 0x{:02x})", e.as_bytes()[at]),
            })
        }
    }
}

/// Warns (once per file and process) when a file that holds secrets can be read by its group or
/// by others: `chmod 600` is the cure, and sigil narrows the mode itself on its next write.
pub fn warn_if_others_can_read(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    static WARNED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return;
    }
    let mut warned = WARNED.lock().unwrap_or_else(|p| p.into_inner());
    if warned.iter().any(|p| p == path) {
        return;
    }
    warned.push(path.to_owned());
    tracing::warn!(
        "{} holds secrets and others can read it (mode {mode:04o}); run: chmod 600 {}",
        path.display(),
        path.display()
    );
}

/// 1-based line and column (in characters) of byte offset `at` in `text`.
pub fn line_col(text: &[u8], at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = &text[..at];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

/// Parses TOML text, mapping errors to file:line:column.
///
/// # Errors
/// [`Error::ConfigSyntax`].
pub fn parse_toml(path: &Path, text: &str) -> Result<Document<String>> {
    Document::parse(text.to_owned()).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        let (line, column) = line_col(text.as_bytes(), at);
        Error::ConfigSyntax {
            path: path.to_owned(),
            line,
            column,
            message: e.message().trim().to_owned(),
        }
    })
}

struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn invalid(&self, span: Option<std::ops::Range<usize>>, message: String) -> Error {
        let (line, column) = line_col(self.text.as_bytes(), span.map_or(0, |s| s.start));
        Error::ConfigInvalid {
            path: self.path.to_owned(),
            line,
            column,
            message,
        }
    }
}

fn key_span(table: &dyn TableLike, key: &str) -> Option<std::ops::Range<usize>> {
    table.get_key_value(key).and_then(|(k, _)| k.span())
}

impl ConfigFile {
    /// Reads and checks a config file. A missing file is an empty config.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::ConfigSyntax`] or [`Error::ConfigInvalid`], each naming the file
    /// (and line:column where there is one).
    ///
    /// A file that holds secrets and that group or others can read gets a warning, once per
    /// process (as ssh warns of a private key others can read).
    pub fn load(path: &Path) -> Result<Self> {
        match read_text(path)? {
            None => Ok(ConfigFile {
                path: path.to_owned(),
                ..Default::default()
            }),
            Some(text) => {
                let file = Self::parse(path, &text)?;
                if !file.secrets.is_empty() {
                    warn_if_others_can_read(path);
                }
                Ok(file)
            }
        }
    }

    /// Parses config text that was read from `path`.
    ///
    /// # Errors
    /// As [`ConfigFile::load`].
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let doc = parse_toml(path, text)?;
        let cx = Ctx { path, text };
        let mut out = ConfigFile {
            path: path.to_owned(),
            ..Default::default()
        };
        let root = doc.as_table();
        for (key, item) in root.iter() {
            let span = key_span(root, key);
            if let Some(setting) = table::setting(key) {
                let value = setting.read_toml(item).map_err(|m| cx.invalid(span, m))?;
                out.values.push((setting.key, value));
                continue;
            }
            if table::is_section(key) {
                let t = section(&cx, item, key, span)?;
                for (k, v) in t.iter() {
                    let span = key_span(t, k);
                    let dotted = format!("{key}.{k}");
                    let Some(setting) = table::setting(&dotted) else {
                        return Err(cx.invalid(span, format!("unknown key `{dotted}`")));
                    };
                    let value = setting.read_toml(v).map_err(|m| cx.invalid(span, m))?;
                    out.values.push((setting.key, value));
                }
                continue;
            }
            match key {
                "context" => {
                    let t = section(&cx, item, "context", span)?;
                    for (k, v) in t.iter() {
                        let span = key_span(t, k);
                        if k != "secrets" {
                            return Err(cx.invalid(span, format!("unknown key `context.{k}`")));
                        }
                        let secrets = v.as_table_like().ok_or_else(|| {
                            cx.invalid(
                                span.clone(),
                                format!("`context.secrets` must be a table, not {}", v.type_name()),
                            )
                        })?;
                        for (name, value) in secrets.iter() {
                            let span = key_span(secrets, name);
                            let name = SecretName::parse(name).map_err(|e| {
                                cx.invalid(span.clone(), format!("in [context.secrets]: {e}"))
                            })?;
                            let json = item_to_json(value).map_err(|m| {
                                cx.invalid(span, format!("secret {:?}: {m}", name.as_str()))
                            })?;
                            out.secrets.push((name, SecretValue::new(json)));
                        }
                    }
                }
                other => return Err(cx.invalid(span, format!("unknown key `{other}`"))),
            }
        }
        Ok(out)
    }

    /// The value this file gives a setting (by dotted key), if it gives one.
    pub(crate) fn value(&self, key: &str) -> Option<&SettingValue> {
        self.values.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The value of one secret in this file.
    pub fn secret(&self, name: &str) -> Option<&SecretValue> {
        self.secrets
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, v)| v)
    }
}

fn section<'a>(
    cx: &Ctx<'_>,
    item: &'a Item,
    name: &str,
    span: Option<std::ops::Range<usize>>,
) -> Result<&'a dyn TableLike> {
    item.as_table_like().ok_or_else(|| {
        cx.invalid(
            span,
            format!("`{name}` must be a table, not {}", item.type_name()),
        )
    })
}

/// Converts a TOML item to JSON: strings stay strings, tables become objects.
///
/// # Errors
/// A message for values JSON cannot hold (nan, inf).
pub(crate) fn item_to_json(item: &Item) -> std::result::Result<Value, String> {
    match item {
        Item::None => Ok(Value::Null),
        Item::Value(v) => value_to_json(v),
        Item::Table(t) => table_to_json(t),
        Item::ArrayOfTables(a) => a
            .iter()
            .map(|t| table_to_json(t))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map(Value::Array),
    }
}

fn table_to_json(t: &dyn TableLike) -> std::result::Result<Value, String> {
    let mut map = serde_json::Map::new();
    for (k, v) in t.iter() {
        map.insert(k.to_owned(), item_to_json(v)?);
    }
    Ok(Value::Object(map))
}

fn value_to_json(v: &toml_edit::Value) -> std::result::Result<Value, String> {
    use toml_edit::Value as T;
    Ok(match v {
        T::String(s) => Value::String(s.value().clone()),
        T::Integer(i) => Value::from(*i.value()),
        T::Float(f) => serde_json::Number::from_f64(*f.value())
            .map(Value::Number)
            .ok_or_else(|| "nan and inf cannot be stored (JSON has no such numbers)".to_owned())?,
        T::Boolean(b) => Value::Bool(*b.value()),
        T::Datetime(d) => Value::String(d.value().to_string()),
        T::Array(a) => Value::Array(
            a.iter()
                .map(value_to_json)
                .collect::<std::result::Result<_, _>>()?,
        ),
        T::InlineTable(t) => table_to_json(t)?,
    })
}
