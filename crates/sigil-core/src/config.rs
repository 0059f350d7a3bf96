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

use serde_json::Value;
use toml_edit::{Document, Item, TableLike};

use crate::error::{Error, Result};
use crate::name::SecretName;
use crate::value::SecretValue;

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

/// What a config file says: its settings (each with its position) and its `[context.secrets]`.
#[derive(Clone, Default)]
pub struct ConfigFile {
    /// The file (for messages).
    pub path: PathBuf,
    backend: Option<Backend>,
    server_url: Option<String>,
    server_team: Option<String>,
    use_local_secrets: Option<bool>,
    cache_ttl: Option<Duration>,
    max_value_bytes: Option<usize>,
    min_mask_bytes: Option<usize>,
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
            match key {
                "backend" => {
                    out.backend = Some(match item.as_str() {
                        Some("local") => Backend::Local,
                        Some("server") => Backend::Server,
                        _ => {
                            return Err(cx.invalid(
                                span,
                                "`backend` must be \"local\" or \"server\"".into(),
                            ));
                        }
                    })
                }
                "server" => {
                    let t = section(&cx, item, "server", span)?;
                    for (k, v) in t.iter() {
                        let span = key_span(t, k);
                        let want = |what: &str| {
                            cx.invalid(span.clone(), format!("`server.{k}` must be {what}"))
                        };
                        match k {
                            "url" => {
                                out.server_url =
                                    Some(v.as_str().ok_or_else(|| want("a string"))?.to_owned())
                            }
                            "team" => {
                                out.server_team =
                                    Some(v.as_str().ok_or_else(|| want("a string"))?.to_owned())
                            }
                            "use_local_secrets" => {
                                out.use_local_secrets =
                                    Some(v.as_bool().ok_or_else(|| want("true or false"))?)
                            }
                            "cache_ttl" => {
                                let s = v
                                    .as_str()
                                    .ok_or_else(|| want("a duration string such as \"30s\""))?;
                                out.cache_ttl = Some(parse_duration(s).map_err(|m| {
                                    cx.invalid(span.clone(), format!("`server.cache_ttl`: {m}"))
                                })?);
                            }
                            other => {
                                return Err(
                                    cx.invalid(span, format!("unknown key `server.{other}`"))
                                );
                            }
                        }
                    }
                }
                "limits" => {
                    let t = section(&cx, item, "limits", span)?;
                    for (k, v) in t.iter() {
                        let span = key_span(t, k);
                        let n = v.as_integer().filter(|n| *n > 0).ok_or_else(|| {
                            cx.invalid(
                                span.clone(),
                                format!("`limits.{k}` must be a positive integer"),
                            )
                        })? as usize;
                        match k {
                            "max_value_bytes" => out.max_value_bytes = Some(n),
                            "min_mask_bytes" => out.min_mask_bytes = Some(n),
                            other => {
                                return Err(
                                    cx.invalid(span, format!("unknown key `limits.{other}`"))
                                );
                            }
                        }
                    }
                }
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
pub fn item_to_json(item: &Item) -> std::result::Result<Value, String> {
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

/// Parses `"0s"`, `"250ms"`, `"30s"`, `"5m"`, `"1h"`, `"1d"`.
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        format!("{s:?} is not a duration (use e.g. \"0s\", \"250ms\", \"30s\", \"5m\", \"1h\")")
    })?;
    let secs = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => {
            return Err(format!(
                "{s:?}: unknown unit {unit:?} (use ms, s, m, h or d)"
            ));
        }
    };
    n.checked_mul(secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is too long"))
}

fn format_duration(d: Duration) -> String {
    if d.subsec_millis() != 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs())
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
        let mut origins = BTreeMap::new();
        macro_rules! pick {
            ($key:literal, $file:expr, $default:expr) => {{
                match $file {
                    Some(v) => {
                        origins.insert($key, Origin::File);
                        v
                    }
                    None => {
                        origins.insert($key, Origin::Default);
                        $default
                    }
                }
            }};
        }
        let mut s = Settings {
            home: paths.home.clone(),
            config_path: paths.config.clone(),
            backend: pick!("backend", file.backend, Backend::Local),
            server: ServerSettings {
                url: pick!(
                    "server.url",
                    file.server_url.clone(),
                    DEFAULT_SERVER_URL.to_owned()
                ),
                team: pick!(
                    "server.team",
                    file.server_team.clone(),
                    "default".to_owned()
                ),
                use_local_secrets: pick!("server.use_local_secrets", file.use_local_secrets, true),
                cache_ttl: pick!("server.cache_ttl", file.cache_ttl, Duration::ZERO),
            },
            limits: Limits {
                max_value_bytes: pick!(
                    "limits.max_value_bytes",
                    file.max_value_bytes,
                    DEFAULT_MAX_VALUE_BYTES
                ),
                min_mask_bytes: pick!(
                    "limits.min_mask_bytes",
                    file.min_mask_bytes,
                    DEFAULT_MIN_MASK_BYTES
                ),
            },
            origins,
        };
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
            let key: &'static str = match rest.to_ascii_lowercase().as_str() {
                "backend" => {
                    s.backend = match value {
                        "local" => Backend::Local,
                        "server" => Backend::Server,
                        _ => return Err(bad("must be \"local\" or \"server\"".into())),
                    };
                    "backend"
                }
                "server__url" => {
                    s.server.url = value.to_owned();
                    "server.url"
                }
                "server__team" => {
                    s.server.team = value.to_owned();
                    "server.team"
                }
                "server__use_local_secrets" => {
                    s.server.use_local_secrets =
                        parse_bool(value).ok_or_else(|| bad("must be true or false".into()))?;
                    "server.use_local_secrets"
                }
                "server__cache_ttl" => {
                    s.server.cache_ttl = parse_duration(value).map_err(bad)?;
                    "server.cache_ttl"
                }
                "limits__max_value_bytes" => {
                    s.limits.max_value_bytes = parse_positive(value)
                        .ok_or_else(|| bad("must be a positive integer".into()))?;
                    "limits.max_value_bytes"
                }
                "limits__min_mask_bytes" => {
                    s.limits.min_mask_bytes = parse_positive(value)
                        .ok_or_else(|| bad("must be a positive integer".into()))?;
                    "limits.min_mask_bytes"
                }
                _ => {
                    return Err(bad(
                        "unknown setting (known: SIGIL__BACKEND, SIGIL__SERVER__{URL,TEAM,USE_LOCAL_SECRETS,CACHE_TTL}, \
                         SIGIL__LIMITS__{MAX_VALUE_BYTES,MIN_MASK_BYTES}, SIGIL__CONTEXT__SECRETS__<NAME>)"
                            .into(),
                    ));
                }
            };
            s.origins.insert(key, Origin::Env(var.clone()));
        }
        Ok(s)
    }

    /// The effective settings as `(dotted key, value, origin)` rows, for `sigil config show`.
    pub fn rows(&self) -> Vec<(&'static str, String, &Origin)> {
        let o = |k: &'static str| &self.origins[k];
        vec![
            ("backend", self.backend.as_str().to_owned(), o("backend")),
            ("server.url", self.server.url.clone(), o("server.url")),
            ("server.team", self.server.team.clone(), o("server.team")),
            (
                "server.use_local_secrets",
                self.server.use_local_secrets.to_string(),
                o("server.use_local_secrets"),
            ),
            (
                "server.cache_ttl",
                format_duration(self.server.cache_ttl),
                o("server.cache_ttl"),
            ),
            (
                "limits.max_value_bytes",
                self.limits.max_value_bytes.to_string(),
                o("limits.max_value_bytes"),
            ),
            (
                "limits.min_mask_bytes",
                self.limits.min_mask_bytes.to_string(),
                o("limits.min_mask_bytes"),
            ),
        ]
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

fn parse_positive(s: &str) -> Option<usize> {
    s.parse::<usize>().ok().filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

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
