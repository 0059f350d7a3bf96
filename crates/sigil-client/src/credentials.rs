//! `$SIGIL_HOME/credentials.toml`: the server's URL, the team and the API key (mode 0600,
//! written by `sigil login` or by `sigil server` at bootstrap). `SIGIL_API_KEY` wins over it.

use std::path::{Path, PathBuf};

use sigil_core::config::{Environment, Paths};
use zeroize::Zeroizing;

/// What the credentials file holds.
#[derive(Clone, Default)]
pub struct Credentials {
    /// The server.
    pub url: Option<String>,
    /// The team.
    pub team: Option<String>,
    /// The key.
    pub api_key: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("url", &self.url)
            .field("team", &self.team)
            .field("api_key", &self.api_key.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// `$SIGIL_HOME/credentials.toml`.
///
/// # Errors
/// Neither `SIGIL_HOME` nor `HOME` is set.
pub fn credentials_path(env: &Environment) -> sigil_core::Result<PathBuf> {
    Ok(Paths::from_env(env)?.home.join("credentials.toml"))
}

/// Reads the credentials file; a missing file is empty credentials.
///
/// # Errors
/// An unreadable or malformed file, named with its position.
pub fn read_credentials(path: &Path) -> sigil_core::Result<Credentials> {
    let Some(text) = sigil_core::config::read_text(path)? else {
        return Ok(Credentials::default());
    };
    let text = Zeroizing::new(text);
    sigil_core::config::warn_if_others_can_read(path);
    let doc = sigil_core::config::parse_toml(path, &text)?;
    let mut c = Credentials::default();
    for (k, item) in doc.as_table().iter() {
        let span = doc
            .as_table()
            .get_key_value(k)
            .and_then(|(key, _)| key.span())
            .map_or(0, |s| s.start);
        let invalid = |message: String| {
            let (line, column) = sigil_core::config::line_col(text.as_bytes(), span);
            sigil_core::Error::ConfigInvalid {
                path: path.to_owned(),
                line,
                column,
                message,
            }
        };
        let v = item
            .as_str()
            .ok_or_else(|| invalid(format!("`{k}` must be a string")))?;
        match k {
            "url" => c.url = Some(v.to_owned()),
            "team" => c.team = Some(v.to_owned()),
            "api_key" => c.api_key = Some(Zeroizing::new(v.to_owned())),
            other => {
                return Err(invalid(format!(
                    "unknown key `{other}` (known: url, team, api_key)"
                )));
            }
        }
    }
    Ok(c)
}

/// Writes the credentials file atomically with mode 0600 (through a symlink to its target).
///
/// # Errors
/// The file cannot be written.
pub fn write_credentials(
    path: &Path,
    url: &str,
    team: &str,
    api_key: &str,
) -> sigil_core::Result<()> {
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        sigil_core::edit::create_private_dir(dir).map_err(|e| sigil_core::Error::Io {
            action: "cannot create directory",
            path: dir.to_owned(),
            source: e,
        })?;
    }
    let q = |s: &str| toml_edit::Value::from(s).to_string();
    let text = Zeroizing::new(format!(
        "# written by sigil (`sigil login`, or `sigil server` at bootstrap)\nurl = {}\nteam = {}\napi_key = {}\n",
        q(url),
        q(team),
        q(api_key)
    ));
    // created 0600 before any byte is written; an old file's wider mode is not kept
    sigil_core::edit::write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    // An old credentials.toml was renamed into place with its old mode, then narrowed.
    #[test]
    fn credentials_are_0600_and_a_link_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.toml");
        std::fs::write(&path, "url = \"http://old\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_credentials(&path, "http://127.0.0.1:4300", "default", "sk-test-1").unwrap();
        assert_eq!(mode(&path), 0o600);
        let c = read_credentials(&path).unwrap();
        assert_eq!(c.api_key.as_deref().map(String::as_str), Some("sk-test-1"));

        let target = dir.path().join("kept.toml");
        let link = dir.path().join("linked.toml");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_credentials(&link, "http://h", "t", "sk-test-2").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(mode(&target), 0o600);
        assert_eq!(read_credentials(&link).unwrap().team.as_deref(), Some("t"));
    }
}
