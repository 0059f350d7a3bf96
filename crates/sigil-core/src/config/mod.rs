//! Settings: where the config file is, what it says, and what the environment overrides.
//!
//! The file is `$SIGIL_HOME/config.toml` (`SIGIL_HOME` defaults to `~/.sigil`; `SIGIL_CONFIG` names
//! another file). Every setting can be overridden as `SIGIL__<SECTION>__<KEY>`
//! (`SIGIL__BACKEND=server`, `SIGIL__SERVER__URL=…`). The `[context.secrets]` table is read
//! verbatim: no `$`/`~` expansion, no `${…}` references, no type casting. TOML strings stay
//! strings; tables and arrays become JSON objects and arrays.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

mod file;
mod table;

pub(crate) use file::item_to_json;
pub use file::{ConfigFile, line_col, parse_toml, read_text, warn_if_others_can_read};
use table::SETTINGS;
pub use table::{SettingValue, parse_duration};

/// Prefix of the environment variables that hold secrets.
pub const ENV_SECRET_PREFIX: &str = "SIGIL__CONTEXT__SECRETS__";
/// Default server address.
pub const DEFAULT_SERVER_URL: &str = "http://127.0.0.1:4300";
/// Default limit on a value's size in bytes (64 KiB).
pub const DEFAULT_MAX_VALUE_BYTES: usize = 64 * 1024;
/// Default shortest value the Redactor masks, in bytes.
pub const DEFAULT_MIN_MASK_BYTES: usize = 4;

/// Where secrets come from when the local sources miss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Local sources only (context, environment, config file).
    Local,
    /// Fall back to (or, with `use_local_secrets = false`, ask first) a Sigil server.
    Server,
}

impl Backend {
    /// The name used in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Local => "local",
            Backend::Server => "server",
        }
    }
}

/// The `[server]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSettings {
    /// Base URL of the server.
    pub url: String,
    /// Team whose secrets are read.
    pub team: String,
    /// `false`: skip the local sources and ask the server only.
    pub use_local_secrets: bool,
    /// Client-side cache of server values; zero turns it off.
    pub cache_ttl: Duration,
}

/// The `[limits]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest value accepted by `set` and `import`, in bytes.
    pub max_value_bytes: usize,
    /// Values shorter than this are not masked by the Redactor (too many false hits).
    pub min_mask_bytes: usize,
}

/// Where a setting's effective value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Built-in default.
    Default,
    /// The config file.
    File,
    /// An environment variable, by name.
    Env(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File => f.write_str("file"),
            Origin::Env(v) => write!(f, "env {v}"),
        }
    }
}

/// A snapshot of the process environment, so that loading is testable and consistent.
#[derive(Clone, Default)]
pub struct Environment {
    vars: BTreeMap<OsString, OsString>,
}

impl Environment {
    /// The current process environment.
    pub fn from_process() -> Self {
        Environment {
            vars: std::env::vars_os().collect(),
        }
    }

    /// An environment made of the given pairs (for tests and embedding).
    pub fn from_pairs<K: Into<OsString>, V: Into<OsString>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Environment {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// One variable.
    pub fn var(&self, key: &str) -> Option<&OsString> {
        self.vars.get(std::ffi::OsStr::new(key))
    }

    /// A variable that must be UTF-8.
    ///
    /// # Errors
    /// [`Error::InvalidEnv`] when the variable is set but not UTF-8.
    pub fn var_str(&self, key: &str) -> Result<Option<&str>> {
        match self.var(key) {
            None => Ok(None),
            Some(v) => v.to_str().map(Some).ok_or_else(|| Error::InvalidEnv {
                var: key.to_owned(),
                message: "not valid UTF-8".into(),
            }),
        }
    }

    /// All variables whose name starts with `prefix`, with the prefix removed.
    pub fn with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a OsString)> + 'a {
        self.vars
            .iter()
            .filter_map(move |(k, v)| k.to_str()?.strip_prefix(prefix).map(|rest| (rest, v)))
    }
}

/// The effective settings: defaults, then the config file, then `SIGIL__…` overrides.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `$SIGIL_HOME`.
    pub home: PathBuf,
    /// The config file in force (it may not exist).
    pub config_path: PathBuf,
    /// `backend`.
    pub backend: Backend,
    /// `[server]`.
    pub server: ServerSettings,
    /// `[limits]`.
    pub limits: Limits,
    /// Where each setting came from, by dotted key (`server.url`).
    pub origins: BTreeMap<&'static str, Origin>,
}

/// The paths in force, before anything is read.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `$SIGIL_HOME`.
    pub home: PathBuf,
    /// The config file.
    pub config: PathBuf,
    /// Whether `SIGIL_CONFIG` named the file (its directory is then not created for the user).
    pub config_is_explicit: bool,
}

impl Paths {
    /// Works out `SIGIL_HOME` and the config file from the environment.
    ///
    /// # Errors
    /// [`Error::InvalidEnv`] when neither `SIGIL_HOME` nor `HOME` is usable.
    pub fn from_env(env: &Environment) -> Result<Self> {
        let explicit_config = env
            .var("SIGIL_CONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        let home = match env.var("SIGIL_HOME").filter(|v| !v.is_empty()) {
            Some(h) => PathBuf::from(h),
            None => {
                match env.var("HOME").filter(|v| !v.is_empty()) {
                    Some(h) => Path::new(h).join(".sigil"),
                    // without a home directory, an explicit config file's directory serves as home
                    None if explicit_config.is_some() => explicit_config
                        .as_deref()
                        .and_then(Path::parent)
                        .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
                    None => {
                        return Err(Error::InvalidEnv {
                        var: "HOME".into(),
                        message: "not set, and SIGIL_HOME is not set either: cannot find the config file".into(),
                    });
                    }
                }
            }
        };
        let (config, config_is_explicit) = match explicit_config {
            Some(c) => (c, true),
            None => (home.join("config.toml"), false),
        };
        Ok(Paths {
            home,
            config,
            config_is_explicit,
        })
    }
}

impl Settings {
    /// Loads the settings of this process: environment, then the config file it names.
    ///
    /// # Errors
    /// As [`Settings::load_from`].
    pub fn load() -> Result<(Settings, ConfigFile)> {
        Self::load_from(&Environment::from_process())
    }

    /// Loads settings from the given environment and the config file it points to.
    ///
    /// # Errors
    /// Any error of [`Paths::from_env`] or [`ConfigFile::load`], or [`Error::InvalidEnv`] naming a
    /// `SIGIL__…` override that is unknown or malformed.
    pub fn load_from(env: &Environment) -> Result<(Settings, ConfigFile)> {
        let paths = Paths::from_env(env)?;
        let file = ConfigFile::load(&paths.config)?;
        let settings = Self::resolve(env, &paths, &file)?;
        Ok((settings, file))
    }

    /// Combines defaults, a parsed file and the environment's overrides.
    ///
    /// # Errors
    /// [`Error::InvalidEnv`] naming a bad override.
    pub fn resolve(env: &Environment, paths: &Paths, file: &ConfigFile) -> Result<Settings> {
        let mut s = Settings {
            home: paths.home.clone(),
            config_path: paths.config.clone(),
            backend: Backend::Local,
            server: ServerSettings {
                url: String::new(),
                team: String::new(),
                use_local_secrets: true,
                cache_ttl: Duration::ZERO,
            },
            limits: Limits {
                max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
                min_mask_bytes: DEFAULT_MIN_MASK_BYTES,
            },
            origins: BTreeMap::new(),
        };
        // every setting: the file's value, or its default
        for setting in SETTINGS {
            let (value, origin) = match file.value(setting.key) {
                Some(v) => (v.clone(), Origin::File),
                None => ((setting.default)(), Origin::Default),
            };
            (setting.set)(&mut s, value);
            s.origins.insert(setting.key, origin);
        }
        // then the environment's overrides
        for (rest, raw) in env.with_prefix("SIGIL__") {
            if rest.starts_with("CONTEXT__SECRETS__") {
                continue; // secrets, read by the environment source
            }
            let var = format!("SIGIL__{rest}");
            let bad = |message: String| Error::InvalidEnv {
                var: var.clone(),
                message,
            };
            let value = raw.to_str().ok_or_else(|| bad("not valid UTF-8".into()))?;
            let Some(setting) = table::setting_of_env(rest) else {
                return Err(bad(format!(
                    "unknown setting (known: {})",
                    table::known_env_vars()
                )));
            };
            (setting.set)(&mut s, setting.read_env(value).map_err(bad)?);
            s.origins.insert(setting.key, Origin::Env(var.clone()));
        }
        Ok(s)
    }

    /// The effective settings as `(dotted key, value, origin)` rows, for `sigil config show`.
    pub fn rows(&self) -> Vec<(&'static str, SettingValue, &Origin)> {
        SETTINGS
            .iter()
            .map(|s| {
                // settings built by hand may lack an origin: it is then the default's
                static DEFAULT: Origin = Origin::Default;
                let origin = self.origins.get(s.key).unwrap_or(&DEFAULT);
                (s.key, (s.get)(self), origin)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::Value;

    /// Settings before anything is read into them.
    pub(super) fn empty_settings() -> Settings {
        let env = Environment::from_pairs([("SIGIL_HOME", "/nowhere")]);
        let paths = Paths::from_env(&env).unwrap();
        Settings::resolve(&env, &paths, &ConfigFile::default()).unwrap()
    }

    fn parse(text: &str) -> Result<ConfigFile> {
        ConfigFile::parse(Path::new("/cfg/config.toml"), text)
    }

    #[test]
    fn secrets_are_verbatim() {
        let f = parse(
            r#"
[context.secrets]
HOME_REF = "$HOME"
TILDE = '~/x'
INTERP = "${a.b}"
NUM = "42"
REAL_NUM = 42
DB = { user = "etl", password = "p" }
LIST = ["a", 1]
"#,
        )
        .unwrap();
        let get = |n| f.secret(n).unwrap().expose_json().clone();
        assert_eq!(get("HOME_REF"), Value::String("$HOME".into()));
        assert_eq!(get("TILDE"), Value::String("~/x".into()));
        assert_eq!(get("INTERP"), Value::String("${a.b}".into()));
        assert_eq!(get("NUM"), Value::String("42".into()));
        assert_eq!(get("REAL_NUM"), serde_json::json!(42));
        assert_eq!(
            get("DB"),
            serde_json::json!({"user": "etl", "password": "p"})
        );
        assert_eq!(get("LIST"), serde_json::json!(["a", 1]));
        let names: Vec<_> = f.secrets.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "HOME_REF", "TILDE", "INTERP", "NUM", "REAL_NUM", "DB", "LIST"
            ]
        );
    }

    #[test]
    fn dotted_and_inline_secrets_tables() {
        let f = parse("context.secrets.A = \"1\"\n").unwrap();
        assert_eq!(f.secret("A").unwrap().expose_str(), Some("1"));
        let f = parse("[context]\nsecrets = { \"prod/db\" = \"x\" }\n").unwrap();
        assert_eq!(f.secret("prod/db").unwrap().expose_str(), Some("x"));
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let e = parse("backend = \"local\"\n[server\nurl = 1\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("failed to parse /cfg/config.toml at 2:"),
            "{e}"
        );
        let e = parse("[context.secrets]\nA = \"1\"\nA = \"2\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("at 3:1") && e.contains("duplicate"), "{e}");
        let e = parse("[context]\nsecrets = \"nope\"\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "invalid setting in /cfg/config.toml at 2:1: `context.secrets` must be a table, not string"
        );
        let e = parse("bakend = \"local\"\n").unwrap_err().to_string();
        assert!(e.contains("at 1:1: unknown key `bakend`"), "{e}");
        let e = parse("[context.secrets]\n\"bad name\" = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("at 2:1") && e.contains("U+0020 at position 4"),
            "{e}"
        );
        let e = parse("[server]\ncache_ttl = \"5 parsecs\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("at 2:1") && e.contains("server.cache_ttl"),
            "{e}"
        );
    }

    #[test]
    fn utf8_error_position() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, b"[context.secrets]\nA = \"ab\xffc\"\n").unwrap();
        let e = ConfigFile::load(&p).unwrap_err().to_string();
        assert!(e.contains("at 2:8: invalid UTF-8 (byte 0xff)"), "{e}");
    }

    #[test]
    fn overrides_and_origins() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.toml");
        std::fs::write(&cfg, "[server]\nurl = \"http://file:1\"\nteam = \"t\"\n").unwrap();
        let env = Environment::from_pairs([
            ("SIGIL_CONFIG", cfg.as_os_str().to_owned()),
            ("SIGIL__SERVER__URL", "http://env:2".into()),
            ("SIGIL__BACKEND", "server".into()),
            ("SIGIL__CONTEXT__SECRETS__X", "ignored here".into()),
        ]);
        let (s, _) = Settings::load_from(&env).unwrap();
        assert_eq!(s.server.url, "http://env:2");
        assert_eq!(s.server.team, "t");
        assert_eq!(s.backend, Backend::Server);
        assert_eq!(
            s.origins["server.url"],
            Origin::Env("SIGIL__SERVER__URL".into())
        );
        assert_eq!(s.origins["server.team"], Origin::File);
        assert_eq!(s.origins["server.use_local_secrets"], Origin::Default);

        let env = Environment::from_pairs([
            ("SIGIL_HOME", dir.path().as_os_str().to_owned()),
            ("SIGIL__SERVR__URL", "x".into()),
        ]);
        let e = Settings::load_from(&env).unwrap_err().to_string();
        assert!(
            e.starts_with("invalid environment variable SIGIL__SERVR__URL: unknown setting"),
            "{e}"
        );
    }

    // settings built by hand (their fields are public) without origins made rows() panic
    #[test]
    fn rows_of_settings_without_origins_say_default() {
        let mut s = empty_settings();
        s.origins.clear();
        let rows = s.rows();
        assert_eq!(rows.len(), SETTINGS.len());
        assert!(rows.iter().all(|(_, _, o)| **o == Origin::Default));
    }

    #[test]
    fn paths() {
        let p = Paths::from_env(&Environment::from_pairs([("HOME", "/h")])).unwrap();
        assert_eq!(p.config, Path::new("/h/.sigil/config.toml"));
        let p = Paths::from_env(&Environment::from_pairs([
            ("HOME", "/h"),
            ("SIGIL_HOME", "/s"),
        ]))
        .unwrap();
        assert_eq!(p.config, Path::new("/s/config.toml"));
        assert!(Paths::from_env(&Environment::default()).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("").is_err());
    }
}
