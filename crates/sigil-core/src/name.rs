//! Secret names.

use std::fmt;

use crate::error::{Error, Result};

/// The longest name accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// One segment of a name as a regular expression: `[A-Za-z0-9_.-]+` other than `.` and `..`.
macro_rules! segment {
    () => {
        r"(?:[A-Za-z0-9_-][A-Za-z0-9_.-]*|\.[A-Za-z0-9_-][A-Za-z0-9_.-]*|\.\.[A-Za-z0-9_.-]+)"
    };
}

/// The grammar of [`SecretName`] as a regular expression (ECMA 262, Python and Rust alike), for
/// the OpenAPI document; the length ([`MAX_NAME_BYTES`]) is a limit of its own. A test holds it
/// to [`SecretName::parse`].
pub const NAME_PATTERN: &str = concat!("^", segment!(), "(?:/", segment!(), ")*$");

/// The grammar of a team's name (which the server checks): 1 to 64 of `A-Z a-z 0-9 _ . -`.
pub const TEAM_PATTERN: &str = r"^[A-Za-z0-9_.-]{1,64}$";

/// A validated secret name: one or more segments of `[A-Za-z0-9_.-]` joined by `/`
/// (`prod/db/password`), at most 256 bytes, case-sensitive.
///
/// ```
/// use sigil_core::SecretName;
/// let name: SecretName = "prod/db/password".parse()?;
/// assert_eq!(name.as_str(), "prod/db/password");
/// assert!("prod//db".parse::<SecretName>().is_err());
/// # Ok::<(), sigil_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretName(String);

impl SecretName {
    /// Checks `name` against the grammar.
    ///
    /// # Errors
    /// [`Error::InvalidName`], naming the offending character and its 1-based position.
    pub fn parse(name: &str) -> Result<Self> {
        validate(name)?;
        Ok(SecretName(name.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the name can be set through the environment (`SIGIL__CONTEXT__SECRETS__<NAME>`):
    /// it must be a valid environment variable name (`[A-Za-z_][A-Za-z0-9_]*`).
    pub fn is_env_compatible(&self) -> bool {
        let b = self.0.as_bytes();
        !b[0].is_ascii_digit() && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
    }

    /// The environment variable that `sigil run` exports this secret as: `/`, `.` and `-` become `_`.
    pub fn to_env_var(&self) -> String {
        self.0
            .chars()
            .map(|c| if matches!(c, '/' | '.' | '-') { '_' } else { c })
            .collect()
    }
}

fn validate(name: &str) -> Result<()> {
    let invalid = |reason: String| Error::InvalidName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("a name cannot be empty".into()));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(invalid(format!(
            "a name is at most {MAX_NAME_BYTES} bytes, this one is {}",
            name.len()
        )));
    }
    let mut segment_start = true;
    for (i, c) in name.chars().enumerate() {
        let pos = i + 1;
        match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '_' | '.' | '-' => segment_start = false,
            '/' if segment_start => {
                return Err(invalid(format!(
                    "empty segment: '/' at position {pos} {}",
                    if pos == 1 {
                        "starts the name"
                    } else {
                        "follows another '/'"
                    }
                )));
            }
            '/' => segment_start = true,
            c => {
                return Err(invalid(format!(
                    "character {} at position {pos} is not allowed (allowed: A-Z a-z 0-9 _ . - and / between segments)",
                    describe_char(c)
                )));
            }
        }
    }
    if segment_start {
        return Err(invalid("empty segment: the name ends with '/'".into()));
    }
    for seg in name.split('/') {
        if seg == "." || seg == ".." {
            return Err(invalid(format!("segment {seg:?} is not allowed")));
        }
    }
    Ok(())
}

fn describe_char(c: char) -> String {
    if c.is_control() || c.is_whitespace() {
        format!("U+{:04X}", c as u32)
    } else {
        format!("'{c}'")
    }
}

impl std::str::FromStr for SecretName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        SecretName::parse(s)
    }
}

impl TryFrom<&str> for SecretName {
    type Error = Error;
    fn try_from(s: &str) -> Result<Self> {
        SecretName::parse(s)
    }
}

impl TryFrom<String> for SecretName {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        validate(&s)?;
        Ok(SecretName(s))
    }
}

impl AsRef<str> for SecretName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretName({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_grammar() {
        for ok in [
            "A",
            "MYSECRET",
            "prod/db/password",
            "a.b-c_d",
            "x/y",
            "0",
            "a..b",
        ] {
            SecretName::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        SecretName::parse(&"a".repeat(256)).unwrap();
    }

    #[test]
    fn rejects_and_names_the_offending_character() {
        let cases = [
            ("", "empty"),
            ("a b", "U+0020 at position 2"),
            ("a/", "ends with '/'"),
            ("/a", "starts the name"),
            ("a//b", "position 3"),
            ("sé", "'é' at position 2"),
            ("a\0b", "U+0000 at position 2"),
            ("a/../b", "\"..\""),
            ("a%2Fb", "'%' at position 2"),
            ("x;DROP TABLE", "';' at position 2"),
        ];
        for (bad, want) in cases {
            let err = SecretName::parse(bad).unwrap_err().to_string();
            assert!(err.contains(want), "{bad:?}: {err}");
        }
        let err = SecretName::parse(&"a".repeat(257)).unwrap_err().to_string();
        assert!(err.contains("at most 256 bytes, this one is 257"), "{err}");
    }

    #[test]
    fn env_compatibility_and_mapping() {
        let n = |s| SecretName::parse(s).unwrap();
        assert!(n("MY_SECRET").is_env_compatible());
        assert!(n("mixedCase").is_env_compatible());
        assert!(!n("9LIVES").is_env_compatible());
        assert!(!n("a.b").is_env_compatible());
        assert_eq!(
            n("prod/db-main.password").to_env_var(),
            "prod_db_main_password"
        );
    }
}
