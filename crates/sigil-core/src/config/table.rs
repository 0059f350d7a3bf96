//! Every setting, declared once: its dotted key (which also names its environment override —
//! `server.url` is `SIGIL__SERVER__URL`), its kind, its default, the field of [`Settings`] it
//! fills, and one line of doc. The config file's parser, the environment's overrides,
//! [`Settings::resolve`], [`Settings::rows`] and the list of known settings in an error all read
//! [`SETTINGS`]: a new setting is one line here (and its field).

use std::time::Duration;

use toml_edit::Item;

use super::{
    Backend, DEFAULT_MAX_VALUE_BYTES, DEFAULT_MIN_MASK_BYTES, DEFAULT_SERVER_URL, Settings,
};

/// A setting's value, of its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SettingValue {
    /// `local` or `server`.
    Backend(Backend),
    /// Text.
    Text(String),
    /// A flag.
    Bool(bool),
    /// A duration (`"30s"`, `"250ms"`).
    Duration(Duration),
    /// A positive count.
    Count(usize),
}

impl std::fmt::Display for SettingValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SettingValue::Backend(b) => f.write_str(b.as_str()),
            SettingValue::Text(t) => f.write_str(t),
            SettingValue::Bool(b) => write!(f, "{b}"),
            SettingValue::Duration(d) => f.write_str(&format_duration(*d)),
            SettingValue::Count(n) => write!(f, "{n}"),
        }
    }
}

impl SettingValue {
    /// As JSON of its own type: flags and counts are not strings.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            SettingValue::Bool(b) => serde_json::Value::Bool(*b),
            SettingValue::Count(n) => serde_json::Value::from(*n),
            other => serde_json::Value::String(other.to_string()),
        }
    }
}

/// How a setting is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Backend,
    Text,
    Bool,
    Duration,
    Count,
}

/// One setting.
pub(crate) struct Setting {
    /// The dotted key: `backend`, `server.url`.
    pub(crate) key: &'static str,
    pub(crate) kind: Kind,
    /// One line for people.
    #[allow(dead_code)] // read by the tests, which check every setting has one
    pub(crate) doc: &'static str,
    pub(crate) default: fn() -> SettingValue,
    pub(crate) get: fn(&Settings) -> SettingValue,
    pub(crate) set: fn(&mut Settings, SettingValue),
}

macro_rules! settings {
    ($( $key:literal : $kind:ident = $default:expr => $($field:ident).+ , $doc:literal ; )*) => {
        /// Every setting, in the order `sigil config show` lists them.
        pub(crate) const SETTINGS: &[Setting] = &[$(
            Setting {
                key: $key,
                kind: Kind::$kind,
                doc: $doc,
                default: || SettingValue::$kind($default),
                get: |s| SettingValue::$kind(s.$($field).+.clone()),
                set: |s, v| {
                    if let SettingValue::$kind(v) = v {
                        s.$($field).+ = v;
                    }
                },
            },
        )*];
    };
}

settings! {
    "backend": Backend = Backend::Local => backend,
        "where secrets come from when the local sources miss: local or server";
    "server.url": Text = DEFAULT_SERVER_URL.to_owned() => server.url,
        "the server's base URL";
    "server.team": Text = "default".to_owned() => server.team,
        "the team whose secrets are read";
    "server.use_local_secrets": Bool = true => server.use_local_secrets,
        "false: skip the local sources and ask the server only";
    "server.cache_ttl": Duration = Duration::ZERO => server.cache_ttl,
        "how long the client keeps a value read from the server (0s: not at all)";
    "limits.max_value_bytes": Count = DEFAULT_MAX_VALUE_BYTES => limits.max_value_bytes,
        "the largest value set and import accept, in bytes";
    "limits.min_mask_bytes": Count = DEFAULT_MIN_MASK_BYTES => limits.min_mask_bytes,
        "values shorter than this are not masked in output (too many false hits)";
}

/// The setting of a dotted key.
pub(crate) fn setting(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key)
}

/// The environment variable that overrides `key`: `SIGIL__SERVER__URL` for `server.url`.
pub(crate) fn env_var(key: &str) -> String {
    format!("SIGIL__{}", key.replace('.', "__").to_ascii_uppercase())
}

/// The setting an override names (`SERVER__URL`, any case, after `SIGIL__`).
pub(crate) fn setting_of_env(rest: &str) -> Option<&'static Setting> {
    let key = rest.to_ascii_lowercase().replace("__", ".");
    setting(&key)
}

/// The known overrides, for an error about an unknown one.
pub(crate) fn known_env_vars() -> String {
    let mut vars: Vec<String> = SETTINGS.iter().map(|s| env_var(s.key)).collect();
    vars.push("SIGIL__CONTEXT__SECRETS__<NAME>".into());
    vars.join(", ")
}

/// The sections of the file that hold settings (`server`, `limits`).
pub(crate) fn is_section(name: &str) -> bool {
    SETTINGS.iter().any(|s| {
        s.key
            .split_once('.')
            .is_some_and(|(section, _)| section == name)
    })
}

impl Setting {
    /// Its value as the config file writes it; `Err` is the message, naming the key.
    pub(crate) fn read_toml(&self, item: &Item) -> Result<SettingValue, String> {
        let key = self.key;
        let want = |what: &str| format!("`{key}` must be {what}");
        Ok(match self.kind {
            Kind::Backend => SettingValue::Backend(match item.as_str() {
                Some("local") => Backend::Local,
                Some("server") => Backend::Server,
                _ => return Err(want("\"local\" or \"server\"")),
            }),
            Kind::Text => {
                SettingValue::Text(item.as_str().ok_or_else(|| want("a string"))?.to_owned())
            }
            Kind::Bool => SettingValue::Bool(item.as_bool().ok_or_else(|| want("true or false"))?),
            Kind::Duration => {
                let s = item
                    .as_str()
                    .ok_or_else(|| want("a duration string such as \"30s\""))?;
                SettingValue::Duration(parse_duration(s).map_err(|m| format!("`{key}`: {m}"))?)
            }
            Kind::Count => SettingValue::Count(
                item.as_integer()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| want("a positive integer"))? as usize,
            ),
        })
    }

    /// Its value as an environment variable writes it; `Err` is the message.
    pub(crate) fn read_env(&self, value: &str) -> Result<SettingValue, String> {
        Ok(match self.kind {
            Kind::Backend => SettingValue::Backend(match value {
                "local" => Backend::Local,
                "server" => Backend::Server,
                _ => return Err("must be \"local\" or \"server\"".into()),
            }),
            Kind::Text => SettingValue::Text(value.to_owned()),
            Kind::Bool => SettingValue::Bool(parse_bool(value).ok_or("must be true or false")?),
            Kind::Duration => SettingValue::Duration(parse_duration(value)?),
            Kind::Count => SettingValue::Count(
                value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or("must be a positive integer")?,
            ),
        })
    }
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

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_is_reachable_from_file_and_environment_and_has_a_line_of_doc() {
        for s in SETTINGS {
            assert!(!s.doc.is_empty(), "{}", s.key);
            assert_eq!(
                setting_of_env(&env_var(s.key)["SIGIL__".len()..]).map(|x| x.key),
                Some(s.key)
            );
            assert!(known_env_vars().contains(&env_var(s.key)));
            // a default round-trips through the settings it fills
            let mut settings = super::super::tests::empty_settings();
            (s.set)(&mut settings, (s.default)());
            assert_eq!((s.get)(&settings), (s.default)(), "{}", s.key);
        }
        assert_eq!(
            env_var("server.use_local_secrets"),
            "SIGIL__SERVER__USE_LOCAL_SECRETS"
        );
        assert!(is_section("server") && is_section("limits") && !is_section("context"));
    }

    #[test]
    fn values_show_as_they_are_written() {
        assert_eq!(
            SettingValue::Duration(Duration::from_millis(250)).to_string(),
            "250ms"
        );
        assert_eq!(
            SettingValue::Duration(Duration::from_secs(30)).to_string(),
            "30s"
        );
        assert_eq!(SettingValue::Count(7).to_json(), serde_json::json!(7));
        assert_eq!(
            SettingValue::Bool(false).to_json(),
            serde_json::json!(false)
        );
        assert_eq!(
            SettingValue::Backend(Backend::Server).to_json(),
            serde_json::json!("server")
        );
    }
}
