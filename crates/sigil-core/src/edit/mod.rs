//! Writing the config file's `[context.secrets]` table.
//!
//! Every edit keeps the file's comments, blank lines and order (toml_edit); a replaced value keeps
//! its trailing comment. An edit happens under an exclusive lock on `<file>.lock`, so concurrent
//! writers (several `sigil secrets set` at once) are serialised; the new text is written to a
//! temporary file in the same directory, synced and renamed over the old one, so a crash leaves
//! the old file or the new one, never half of either. The file is 0600 after every write (a wider
//! mode is narrowed, with a warning); a symlinked file is written where the link points and the
//! link kept; a file with CRLF line endings keeps them. A file that cannot be parsed is never
//! rewritten.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;
use toml_edit::{DocumentMut, Item, Table};

use crate::config::{ConfigFile, read_text};
use crate::error::{Error, Result};
use crate::name::SecretName;
use crate::value::SecretValue;

mod files;

pub use files::{create_private_dir, lock_path, resolve_symlinks, write_atomic};

/// An editor of one config file.
#[derive(Debug, Clone)]
pub struct ConfigEditor {
    path: PathBuf,
    create_dir: bool,
    max_value_bytes: usize,
}

impl ConfigEditor {
    /// Edits `path`. With `create_dir`, a missing parent directory is created (mode 0700), as
    /// for the default `$SIGIL_HOME`; without it, a missing directory is an error.
    pub fn new(path: impl Into<PathBuf>, create_dir: bool, max_value_bytes: usize) -> Self {
        ConfigEditor {
            path: path.into(),
            create_dir,
            max_value_bytes,
        }
    }

    /// The file edited.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sets one secret (see [`ConfigEditor::set_secrets`]).
    ///
    /// # Errors
    /// As [`ConfigEditor::set_secrets`].
    pub fn set_secret(&self, name: &SecretName, value: &SecretValue) -> Result<()> {
        self.set_secrets(&[(name.clone(), value.clone())], true)
            .map(|_| ())
    }

    /// Sets several secrets in one atomic write: either all are written or none. With
    /// `overwrite = false`, names that already exist are left alone and returned.
    ///
    /// # Errors
    /// [`Error::ValueTooLarge`] (nothing written), a value TOML cannot hold (`null`), and every
    /// error of reading, parsing, locking and writing the file.
    pub fn set_secrets(
        &self,
        entries: &[(SecretName, SecretValue)],
        overwrite: bool,
    ) -> Result<Vec<SecretName>> {
        for (name, value) in entries {
            check_size(name, value, self.max_value_bytes)?;
        }
        let converted = entries
            .iter()
            .map(|(n, v)| {
                json_to_toml(v.expose_json())
                    .map(|t| (n, t))
                    .map_err(|reason| Error::Decode {
                        name: n.to_string(),
                        target: "a TOML value".into(),
                        reason,
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        self.edit(|doc| {
            // entries of an inline table have no comments to keep; their spacing is redone below
            let inline = is_inline(doc);
            let secrets = secrets_table(doc);
            let mut skipped = Vec::new();
            for (name, mut new) in converted {
                match secrets.get_mut(name.as_str()) {
                    Some(old) if !overwrite => {
                        let _ = old;
                        skipped.push(name.clone());
                    }
                    Some(Item::Value(old)) => {
                        if !inline {
                            // keep the old value's surrounding whitespace and trailing comment
                            *new.decor_mut() = old.decor().clone();
                        }
                        *old = new;
                    }
                    Some(old) => *old = Item::Value(new),
                    None => {
                        secrets.insert(name.as_str(), Item::Value(new));
                    }
                }
            }
            if let Some(t) = inline_secrets(doc) {
                t.fmt();
            }
            Ok(skipped)
        })
    }

    /// Deletes one secret; `Ok(false)` when it was not in the file (the file is then untouched).
    ///
    /// # Errors
    /// Every error of reading, parsing, locking and writing the file.
    pub fn delete_secret(&self, name: &SecretName) -> Result<bool> {
        if !self.path.exists() {
            return Ok(false);
        }
        self.edit(|doc| {
            let Some(context) = doc.get_mut("context").and_then(Item::as_table_like_mut) else {
                return Ok(false);
            };
            let Some(secrets) = context.get_mut("secrets").and_then(Item::as_table_like_mut) else {
                return Ok(false);
            };
            let removed = secrets.remove(name.as_str()).is_some();
            if let Some(t) = inline_secrets(doc) {
                t.fmt();
            }
            Ok(removed)
        })
    }

    fn edit<R>(&self, change: impl FnOnce(&mut DocumentMut) -> Result<R>) -> Result<R> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            if self.create_dir && !dir.exists() {
                create_private_dir(&dir)
                    .map_err(|e| Error::io("cannot create directory", &dir, e))?;
            } else {
                return Err(Error::io(
                    "cannot write to directory",
                    &dir,
                    std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
                ));
            }
        }
        // a symlinked file (dotfile managers) is edited where it lives, and the link is kept
        let target = resolve_symlinks(&self.path)?;
        let lock_path = lock_path(&target);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| Error::io("cannot open lock file", &lock_path, e))?;
        lock.lock()
            .map_err(|e| Error::io("cannot lock", &lock_path, e))?;
        tracing::debug!(path = %self.path.display(), "config file locked for editing");

        let old_text = read_text(&target)?;
        let text = old_text.clone().unwrap_or_default();
        // never rewrite a file we could not understand
        ConfigFile::parse(&self.path, &text)?;
        let mut doc: DocumentMut = text.parse().map_err(|_| Error::ConfigInvalid {
            path: self.path.clone(),
            line: 1,
            column: 1,
            message: "cannot edit this file".into(),
        })?;
        let crlf = text.contains("\r\n");
        let result = change(&mut doc)?;
        if crlf {
            // a multi-line string would put bare `\n`s inside a value
            if let Some(secrets) = doc
                .get_mut("context")
                .and_then(Item::as_table_like_mut)
                .and_then(|c| c.get_mut("secrets"))
                .and_then(Item::as_table_like_mut)
            {
                for (_, item) in secrets.iter_mut() {
                    if let Some(v) = item.as_value_mut() {
                        new_strings_on_one_line(v);
                    }
                }
            }
        }
        let mut new_text = doc.to_string();
        if crlf {
            new_text = with_crlf(&self.path, &new_text)?;
        }
        if old_text.as_deref() == Some(new_text.as_str()) {
            return Ok(result);
        }
        // a bug here must not destroy the user's file: check what we are about to write
        ConfigFile::parse(&self.path, &new_text)?;
        write_atomic(&target, new_text.as_bytes())?;
        tracing::debug!(path = %self.path.display(), "config file written");
        drop(lock);
        Ok(result)
    }
}

/// `text` (as toml_edit writes it, with `\n`) with `\r\n` line endings, for a file that had
/// them. Newlines inside multi-line strings are part of their values and stay as they are.
fn with_crlf(path: &Path, text: &str) -> Result<String> {
    let doc = crate::config::parse_toml(path, text)?;
    let mut keep = Vec::new();
    multiline_string_spans(doc.as_item(), text, &mut keep);
    keep.sort_unstable_by_key(|r| r.start);
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    let mut spans = keep.iter().peekable();
    let bytes = text.as_bytes();
    let mut last = 0;
    for (i, b) in bytes.iter().enumerate() {
        while spans.peek().is_some_and(|r| r.end <= i) {
            spans.next();
        }
        let inside = spans.peek().is_some_and(|r| r.start <= i);
        if *b == b'\n' && !inside && (i == 0 || bytes[i - 1] != b'\r') {
            out.push_str(&text[last..i]);
            out.push_str("\r\n");
            last = i + 1;
        }
    }
    out.push_str(&text[last..]);
    // the values must be what they were before the line endings changed
    let before = ConfigFile::parse(path, text)?;
    let after = ConfigFile::parse(path, &out)?;
    if before.secrets != after.secrets {
        return Err(Error::ConfigInvalid {
            path: path.to_owned(),
            line: 1,
            column: 1,
            message: "cannot keep this file's CRLF line endings without changing a value".into(),
        });
    }
    Ok(out)
}

/// Rewrites strings set by this edit (they have no text yet) that hold a line break as one-line
/// basic strings with escapes.
fn new_strings_on_one_line(v: &mut toml_edit::Value) {
    match v {
        toml_edit::Value::String(f)
            if f.as_repr().is_none() && f.value().contains(['\n', '\r']) =>
        {
            // JSON's escapes are TOML's, but for DEL, which TOML wants escaped
            let escaped = serde_json::to_string(f.value())
                .expect("a str always serialises")
                .replace('\u{7f}', "\\u007f");
            if let Ok(mut one_line) = escaped.parse::<toml_edit::Value>() {
                *one_line.decor_mut() = f.decor().clone();
                *v = one_line;
            }
        }
        toml_edit::Value::Array(a) => a.iter_mut().for_each(new_strings_on_one_line),
        toml_edit::Value::InlineTable(t) => {
            t.iter_mut().for_each(|(_, x)| new_strings_on_one_line(x))
        }
        _ => {}
    }
}

fn multiline_string_spans(item: &Item, text: &str, out: &mut Vec<std::ops::Range<usize>>) {
    match item {
        Item::None => {}
        Item::Value(v) => multiline_value_spans(v, text, out),
        Item::Table(t) => t
            .iter()
            .for_each(|(_, i)| multiline_string_spans(i, text, out)),
        Item::ArrayOfTables(a) => a.iter().for_each(|t| {
            t.iter()
                .for_each(|(_, i)| multiline_string_spans(i, text, out))
        }),
    }
}

fn multiline_value_spans(v: &toml_edit::Value, text: &str, out: &mut Vec<std::ops::Range<usize>>) {
    match v {
        toml_edit::Value::String(f) => {
            if let Some(span) = f.span()
                && text
                    .get(span.clone())
                    .is_some_and(|raw| raw.starts_with("\"\"\"") || raw.starts_with("'''"))
            {
                out.push(span);
            }
        }
        toml_edit::Value::Array(a) => a.iter().for_each(|x| multiline_value_spans(x, text, out)),
        toml_edit::Value::InlineTable(t) => t
            .iter()
            .for_each(|(_, x)| multiline_value_spans(x, text, out)),
        _ => {}
    }
}

/// Checks a value against the size limit.
///
/// # Errors
/// [`Error::ValueTooLarge`] naming the secret, the size and the limit.
pub fn check_size(name: &SecretName, value: &SecretValue, limit: usize) -> Result<()> {
    let size = value.size();
    if size > limit {
        return Err(Error::ValueTooLarge {
            name: name.to_string(),
            size,
            limit,
        });
    }
    Ok(())
}

/// `context.secrets` when it is an inline table (`secrets = { A = "1" }`).
fn inline_secrets(doc: &mut DocumentMut) -> Option<&mut toml_edit::InlineTable> {
    doc.get_mut("context")?
        .as_table_like_mut()?
        .get_mut("secrets")?
        .as_inline_table_mut()
}

fn is_inline(doc: &mut DocumentMut) -> bool {
    inline_secrets(doc).is_some()
}

fn secrets_table(doc: &mut DocumentMut) -> &mut dyn toml_edit::TableLike {
    let root = doc.as_table_mut();
    if !root.contains_key("context") {
        let mut t = Table::new();
        t.set_implicit(true);
        root.insert("context", Item::Table(t));
    }
    let context = root["context"]
        .as_table_like_mut()
        .expect("validated: context is a table");
    if !context.contains_key("secrets") {
        context.insert("secrets", Item::Table(Table::new()));
    }
    context
        .get_mut("secrets")
        .and_then(Item::as_table_like_mut)
        .expect("validated: context.secrets is a table")
}

/// Converts a JSON value to a TOML value. TOML has no `null`.
fn json_to_toml(v: &Value) -> std::result::Result<toml_edit::Value, String> {
    Ok(match v {
        Value::Null => return Err("TOML cannot store null".into()),
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into()
            } else if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                f.into()
            } else {
                return Err("integers above 9223372036854775807 cannot be stored in TOML".into());
            }
        }
        Value::String(s) => s.as_str().into(),
        Value::Array(items) => {
            let mut a = toml_edit::Array::new();
            for item in items {
                a.push(json_to_toml(item)?);
            }
            toml_edit::Value::Array(a)
        }
        Value::Object(map) => {
            let mut t = toml_edit::InlineTable::new();
            for (k, item) in map {
                t.insert(k, json_to_toml(item)?);
            }
            toml_edit::Value::InlineTable(t)
        }
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn editor(dir: &Path) -> ConfigEditor {
        ConfigEditor::new(dir.join("config.toml"), false, 64 * 1024)
    }

    #[test]
    fn set_keeps_comments_order_and_trailing_comment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let before = "# top comment\nbackend = \"local\"\n\n[context.secrets]\n# about A\nA = \"old\" # trailing\nB = \"b\"\n\n# tail\n";
        std::fs::write(&path, before).unwrap();
        let ed = editor(dir.path());
        ed.set_secret(&"A".parse().unwrap(), &"new $HOME".into())
            .unwrap();
        ed.set_secret(
            &"prod/db".parse().unwrap(),
            &SecretValue::new(serde_json::json!({"user": "u"})),
        )
        .unwrap();
        let after = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            after,
            "# top comment\nbackend = \"local\"\n\n[context.secrets]\n# about A\nA = \"new $HOME\" # trailing\nB = \"b\"\n\"prod/db\" = { user = \"u\" }\n\n# tail\n"
        );
        let f = ConfigFile::load(&path).unwrap();
        assert_eq!(f.secret("A").unwrap().expose_str(), Some("new $HOME"));
    }

    #[test]
    fn new_file_is_0600_and_roundtrips_awkward_values() {
        let dir = tempfile::tempdir().unwrap();
        let ed = editor(dir.path());
        let values = sigil_test_support::AWKWARD;
        for (i, v) in values.iter().enumerate() {
            ed.set_secret(&format!("S{i}").parse().unwrap(), &(*v).into())
                .unwrap();
        }
        let path = dir.path().join("config.toml");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let f = ConfigFile::load(&path).unwrap();
        for (i, v) in values.iter().enumerate() {
            assert_eq!(f.secret(&format!("S{i}")).unwrap().expose_str(), Some(*v));
        }
    }

    #[test]
    fn delete_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[context.secrets]\n# a\nA = \"1\"\n# b\nB = \"2\"\n").unwrap();
        let ed = editor(dir.path());
        assert!(ed.delete_secret(&"A".parse().unwrap()).unwrap());
        assert!(!ed.delete_secret(&"A".parse().unwrap()).unwrap());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "[context.secrets]\n# b\nB = \"2\"\n"
        );
    }

    #[test]
    fn refuses_to_touch_bad_files_and_big_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let bad = "[context.secrets\nA = \"1\"\n";
        std::fs::write(&path, bad).unwrap();
        let ed = editor(dir.path());
        let e = ed
            .set_secret(&"B".parse().unwrap(), &"x".into())
            .unwrap_err();
        assert!(matches!(e, Error::ConfigSyntax { line: 1, .. }), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), bad);

        let ed = ConfigEditor::new(dir.path().join("other.toml"), false, 8);
        let e = ed
            .set_secret(&"BIG".parse().unwrap(), &"123456789".into())
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "secret \"BIG\" is 9 bytes, over the limit of 8 bytes (setting limits.max_value_bytes)"
        );
        assert!(!dir.path().join("other.toml").exists());

        let ed = ConfigEditor::new(dir.path().join("missing/config.toml"), false, 8);
        let e = ed
            .set_secret(&"A".parse().unwrap(), &"x".into())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("missing") && e.contains("no such directory"),
            "{e}"
        );
        assert!(!dir.path().join("missing").exists());
    }

    #[test]
    fn set_many_is_all_or_nothing_and_can_skip_existing() {
        let dir = tempfile::tempdir().unwrap();
        let ed = ConfigEditor::new(dir.path().join("config.toml"), false, 4);
        let entries = vec![
            ("A".parse().unwrap(), "1".into()),
            ("B".parse().unwrap(), "too long".into()),
        ];
        assert!(ed.set_secrets(&entries, true).is_err());
        assert!(!dir.path().join("config.toml").exists());
        ed.set_secret(&"A".parse().unwrap(), &"1".into()).unwrap();
        let skipped = ed
            .set_secrets(
                &[
                    ("A".parse().unwrap(), "2".into()),
                    ("C".parse().unwrap(), "3".into()),
                ],
                false,
            )
            .unwrap();
        assert_eq!(skipped, vec!["A".parse::<SecretName>().unwrap()]);
        let f = ConfigFile::load(&dir.path().join("config.toml")).unwrap();
        assert_eq!(f.secret("A").unwrap().expose_str(), Some("1"));
        assert_eq!(f.secret("C").unwrap().expose_str(), Some("3"));
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    // A config.toml the user made 0644 stayed 0644 after a secret was written into it.
    #[test]
    fn a_wider_mode_is_narrowed_to_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "backend = \"local\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        editor(dir.path())
            .set_secret(&"A".parse().unwrap(), &"v".into())
            .unwrap();
        assert_eq!(mode(&path), 0o600);
        // and a file written for the first time is 0600 too, whatever the umask lets through
        write_atomic(&dir.path().join("new.toml"), b"x = 1\n").unwrap();
        assert_eq!(mode(&dir.path().join("new.toml")), 0o600);
    }

    // A symlinked config.toml (dotfile managers) was replaced by a plain file.
    #[test]
    fn a_symlink_is_written_through_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("dotfiles")).unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        let target = dir.path().join("dotfiles/sigil.toml");
        std::fs::write(&target, "backend = \"local\" # mine\n").unwrap();
        let link = dir.path().join("home/config.toml");
        std::os::unix::fs::symlink("../dotfiles/sigil.toml", &link).unwrap();
        let ed = ConfigEditor::new(&link, false, 1024);
        ed.set_secret(&"A".parse().unwrap(), &"v".into()).unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            Path::new("../dotfiles/sigil.toml")
        );
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "backend = \"local\" # mine\n\n[context.secrets]\nA = \"v\"\n"
        );
        assert_eq!(mode(&target), 0o600);
        assert!(ed.delete_secret(&"A".parse().unwrap()).unwrap());
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        // a link to a file not yet there: the file is made where the link points
        let dangling = dir.path().join("home/other.toml");
        std::os::unix::fs::symlink(dir.path().join("dotfiles/other.toml"), &dangling).unwrap();
        ConfigEditor::new(&dangling, false, 1024)
            .set_secret(&"B".parse().unwrap(), &"w".into())
            .unwrap();
        assert!(
            std::fs::symlink_metadata(&dangling)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(mode(&dir.path().join("dotfiles/other.toml")), 0o600);
        // a loop is an error naming the file, not a hang
        let a = dir.path().join("loop_a");
        std::os::unix::fs::symlink(dir.path().join("loop_b"), &a).unwrap();
        std::os::unix::fs::symlink(&a, dir.path().join("loop_b")).unwrap();
        let e = ConfigEditor::new(&a, false, 1024)
            .set_secret(&"C".parse().unwrap(), &"x".into())
            .unwrap_err()
            .to_string();
        assert!(e.contains("loop_a") && e.contains("40 links"), "{e}");
    }

    // A config.toml with CRLF line endings came back with LF after a write.
    #[test]
    fn crlf_line_endings_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let before = "# top\r\n[context.secrets]\r\nA = \"1\" # note\r\nM = '''\r\nx\r\ny'''\r\nL = \"\"\"\nlf inside\"\"\"\r\n";
        std::fs::write(&path, before).unwrap();
        let ed = editor(dir.path());
        ed.set_secret(&"A".parse().unwrap(), &"2".into()).unwrap();
        ed.set_secret(&"B".parse().unwrap(), &"two\nlines\r\n".into())
            .unwrap();
        let after = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            after,
            "# top\r\n[context.secrets]\r\nA = \"2\" # note\r\nM = '''\r\nx\r\ny'''\r\nL = \"\"\"\nlf inside\"\"\"\r\nB = \"two\\nlines\\r\\n\"\r\n"
        );
        let f = ConfigFile::load(&path).unwrap();
        assert_eq!(f.secret("M").unwrap().expose_str(), Some("x\r\ny"));
        assert_eq!(f.secret("L").unwrap().expose_str(), Some("lf inside"));
        assert_eq!(f.secret("B").unwrap().expose_str(), Some("two\nlines\r\n"));
        assert!(ed.delete_secret(&"B".parse().unwrap()).unwrap());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            after.replace("B = \"two\\nlines\\r\\n\"\r\n", "")
        );
    }

    #[test]
    fn null_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let e = editor(dir.path())
            .set_secret(&"N".parse().unwrap(), &SecretValue::new(Value::Null))
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"N\"") && e.contains("null"), "{e}");
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever string is set comes back byte for byte, and the other lines of the file
        /// (comments included) are untouched.
        #[test]
        fn set_then_read_round_trips(values in proptest::collection::vec(any::<String>(), 1..6)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("config.toml");
            let header = "# header comment\n[context.secrets]\nKEEP = \"kept\" # kept comment\n";
            std::fs::write(&path, header).unwrap();
            let ed = ConfigEditor::new(&path, false, usize::MAX);
            for (i, v) in values.iter().enumerate() {
                ed.set_secret(&format!("V{i}").parse().unwrap(), &SecretValue::from(v.as_str())).unwrap();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            prop_assert!(text.starts_with(header));
            let f = ConfigFile::load(&path).unwrap();
            for (i, v) in values.iter().enumerate() {
                prop_assert_eq!(f.secret(&format!("V{i}")).unwrap().expose_str(), Some(v.as_str()));
            }
        }
    }
}
