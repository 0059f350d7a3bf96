//! Secret values.

use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;
use zeroize::Zeroize;

use crate::error::{Error, Result};

/// A secret's value, exactly as stored: a JSON value (most often a string).
///
/// Nothing is interpreted: the string `"42"` stays a string, `$HOME` is not expanded. `Debug` and
/// `Display` print `[REDACTED]`; the value is reached only through the `expose_…` methods, so a
/// leak is visible in review. On drop, the memory of every string in the value (and every object
/// key) is overwritten with zeros.
///
/// ```
/// use sigil_core::SecretValue;
/// let v = SecretValue::from("42");
/// assert_eq!(v.expose_str(), Some("42"));
/// assert_eq!(format!("{v:?} {v}"), "SecretValue([REDACTED]) [REDACTED]");
/// let n: u32 = v.decode("PORT")?;   // a string holding JSON is decoded for get_as
/// assert_eq!(n, 42);
/// # Ok::<(), sigil_core::Error>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct SecretValue(Value);

impl SecretValue {
    /// Wraps a JSON value.
    pub fn new(value: Value) -> Self {
        SecretValue(value)
    }

    /// The value if it is a string.
    pub fn expose_str(&self) -> Option<&str> {
        self.0.as_str()
    }

    /// The value as stored.
    pub fn expose_json(&self) -> &Value {
        &self.0
    }

    /// The value as text: a string as it is, any other JSON value in compact form. This is what
    /// `sigil secrets get` prints and `sigil run` exports.
    pub fn expose_text(&self) -> std::borrow::Cow<'_, str> {
        match &self.0 {
            Value::String(s) => std::borrow::Cow::Borrowed(s),
            other => std::borrow::Cow::Owned(other.to_string()),
        }
    }

    /// Size in bytes, as counted against `limits.max_value_bytes`: the length of a string, the
    /// length of the compact JSON of anything else.
    pub fn size(&self) -> usize {
        match &self.0 {
            Value::String(s) => s.len(),
            other => other.to_string().len(),
        }
    }

    /// Deserialises the value into `T`. When the stored value is a string that holds JSON and `T`
    /// does not accept the string itself, the decoded JSON is used (Prefect users store JSON
    /// documents as strings): `"{\"x\": 42}"` becomes a struct with `x = 42`, `"42"` becomes `42u32`,
    /// and `"42"` read as a `String` stays `"42"`.
    ///
    /// # Errors
    /// [`Error::Decode`] naming the secret and the type; the message never quotes the value.
    pub fn decode<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        let first = match serde_path_to_error::deserialize::<_, T>(&self.0) {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if let Value::String(s) = &self.0 {
            match serde_json::from_str::<Value>(s) {
                Ok(inner) => {
                    let inner = SecretValue(inner);
                    return serde_path_to_error::deserialize(&inner.0)
                        .map_err(|e| decode_error::<T>(name, &e));
                }
                Err(syntax) => {
                    return Err(Error::Decode {
                        name: name.to_owned(),
                        target: user_type_name(std::any::type_name::<T>()),
                        // serde_json's syntax errors give a position, never the text
                        reason: format!("the value is a string that is not valid JSON ({syntax})"),
                    });
                }
            }
        }
        Err(decode_error::<T>(name, &first))
    }
}

/// A type's name as a user writes it: `Option<String>`, not
/// `core::option::Option<alloc::string::String>`.
pub fn user_type_name(full: &str) -> String {
    let mut out = String::with_capacity(full.len());
    let mut word = String::new();
    let mut chars = full.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
        } else if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            word.clear(); // a path segment: only the last one is kept
        } else {
            out.push_str(&word);
            word.clear();
            out.push(c);
        }
    }
    out.push_str(&word);
    out
}

/// Names where decoding failed (`db.port`, `hosts[1]`) and why. Serde's messages quote the
/// offending value ("invalid type: string \"hunter2\", expected u16"): only the parts that
/// cannot carry a value are kept — a missing or duplicate field, and what was expected.
fn decode_error<T>(name: &str, err: &serde_path_to_error::Error<serde_json::Error>) -> Error {
    let msg = err.inner().to_string();
    let why = if msg.starts_with("missing field") || msg.starts_with("duplicate field") {
        msg
    } else {
        match msg.rsplit_once(", expected ") {
            Some((_, expected)) => format!("expected {expected}"),
            None => "the value does not have the expected shape".to_owned(),
        }
    };
    let path = err.path().to_string();
    let reason = if path == "." {
        why
    } else {
        format!("at {path}: {why}")
    };
    Error::Decode {
        name: name.to_owned(),
        target: user_type_name(std::any::type_name::<T>()),
        reason,
    }
}

fn wipe(value: &mut Value) {
    match value {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => {
            for item in items.iter_mut() {
                wipe(item);
            }
        }
        Value::Object(map) => {
            for (mut key, mut item) in std::mem::take(map) {
                key.zeroize();
                wipe(&mut item);
            }
        }
        Value::Number(_) | Value::Bool(_) | Value::Null => {}
    }
    *value = Value::Null;
}

impl Drop for SecretValue {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

impl From<Value> for SecretValue {
    fn from(v: Value) -> Self {
        SecretValue(v)
    }
}

impl From<String> for SecretValue {
    fn from(s: String) -> Self {
        SecretValue(Value::String(s))
    }
}

impl From<&str> for SecretValue {
    fn from(s: &str) -> Self {
        SecretValue(Value::String(s.to_owned()))
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue([REDACTED])")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, PartialEq, Debug)]
    struct X {
        x: u32,
    }

    #[test]
    fn strings_stay_strings() {
        for s in [
            "42",
            "true",
            "None",
            "$HOME",
            "~/x",
            "${a.b}",
            "P@$$w0rd",
            "a\nb",
            "ünïcødé",
        ] {
            let v = SecretValue::from(s);
            assert_eq!(v.expose_str(), Some(s));
            assert_eq!(v.decode::<String>("N").unwrap(), s);
        }
    }

    #[test]
    fn json_in_a_string_is_decoded_for_typed_reads() {
        let v = SecretValue::from("{\"x\": 42}");
        assert_eq!(v.decode::<X>("N").unwrap(), X { x: 42 });
        assert_eq!(SecretValue::from("42").decode::<u32>("N").unwrap(), 42);
        assert!(SecretValue::from("true").decode::<bool>("N").unwrap());
        let obj = SecretValue::new(serde_json::json!({"x": 7}));
        assert_eq!(obj.decode::<X>("N").unwrap(), X { x: 7 });
    }

    #[test]
    fn decode_errors_never_quote_the_value() {
        let v = SecretValue::from("canary-8d1f3b");
        let err = v.decode::<u32>("PORT").unwrap_err().to_string();
        assert!(!err.contains("canary-8d1f3b"), "{err}");
        assert!(err.contains("\"PORT\"") && err.contains("u32"), "{err}");
        let v = SecretValue::from("{\"y\": \"canary-8d1f3b\"}");
        let err = v.decode::<X>("CFG").unwrap_err().to_string();
        assert!(
            err.contains("missing field `x`") && !err.contains("canary"),
            "{err}"
        );
    }

    // Decode errors said only "does not have the expected shape".
    #[test]
    fn decode_errors_name_the_field_path_and_say_not_json() {
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct Db {
            port: u16,
            hosts: Vec<String>,
        }
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct Cfg {
            db: Db,
        }
        let v = SecretValue::new(serde_json::json!({"db": {"port": "canary-1", "hosts": []}}));
        let err = v.decode::<Cfg>("CFG").unwrap_err().to_string();
        assert!(err.contains("at db.port: expected u16"), "{err}");
        assert!(!err.contains("canary"), "{err}");
        let v = SecretValue::new(serde_json::json!({"db": {"port": 1, "hosts": ["a", 7]}}));
        let err = v.decode::<Cfg>("CFG").unwrap_err().to_string();
        assert!(err.contains("at db.hosts[1]: expected a string"), "{err}");
        let err = SecretValue::from("{canary-2")
            .decode::<Cfg>("CFG")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not valid JSON") && !err.contains("canary"),
            "{err}"
        );
        assert!(
            err.contains("as Cfg"),
            "the type is named as written: {err}"
        );
        assert_eq!(
            user_type_name("core::option::Option<alloc::vec::Vec<alloc::string::String>>"),
            "Option<Vec<String>>"
        );
        assert_eq!(user_type_name("&str"), "&str");
    }

    #[test]
    fn debug_and_display_hide_the_value() {
        let v = SecretValue::new(serde_json::json!({"password": "canary-8d1f3b"}));
        let shown = format!("{v:?} {v} {:?}", Some(&v));
        assert!(!shown.contains("canary"), "{shown}");
        assert!(shown.contains("[REDACTED]"));
    }

    #[test]
    fn text_form_and_size() {
        let v = SecretValue::new(serde_json::json!({"a": [1, "b"]}));
        assert_eq!(v.expose_text(), r#"{"a":[1,"b"]}"#);
        assert_eq!(v.size(), 13);
        assert_eq!(SecretValue::from("héllo").size(), 6);
    }
}
