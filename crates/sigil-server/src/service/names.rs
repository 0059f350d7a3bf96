//! Typed input. A face parses what a request names — a team, a secret, a key — into these before
//! it asks the service for anything; input that does not parse is refused here and, when the
//! request was for an audited action, on record like any other refusal.

use std::fmt;

use sigil_core::SecretName;
use sigil_store::AuditAction;

use super::{Caller, ServerError, bounded, refuse};
use crate::state::AppState;

/// A team's name: 1 to 64 characters of `A-Z a-z 0-9 _ . -`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TeamName(String);

impl TeamName {
    /// Checks `name` against the grammar.
    ///
    /// # Errors
    /// [`ServerError::Invalid`] giving the grammar (the input is not echoed: it may be long).
    pub fn parse(name: &str) -> Result<TeamName, ServerError> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if ok {
            Ok(TeamName(name.to_owned()))
        } else {
            Err(ServerError::Invalid(
                "a team name is 1 to 64 characters of A-Z a-z 0-9 _ . -".into(),
            ))
        }
    }

    /// A name the store gave back: it was checked before it was stored.
    pub(crate) fn stored(name: String) -> TeamName {
        TeamName(name)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TeamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for TeamName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

/// A key's public id: the lower-case letters and digits between `sgl_` and the key's secret.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyId(String);

impl KeyId {
    /// Checks `id` against the form of a key's id.
    ///
    /// # Errors
    /// [`ServerError::Invalid`] giving the form (the input is not echoed).
    pub fn parse(id: &str) -> Result<KeyId, ServerError> {
        if crate::keys::is_key_id(id) {
            Ok(KeyId(id.to_owned()))
        } else {
            Err(ServerError::NotFound(format!(
                "no key {:?}: a key's id is {} characters of a-z 0-9",
                bounded(id, 32),
                crate::keys::ID_LEN
            )))
        }
    }

    /// An id the store gave back, or a key that parsed.
    pub(crate) fn stored(id: String) -> KeyId {
        KeyId(id)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for KeyId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

/// A secret's name, or the refusal naming the input.
pub(crate) fn parse_name(name: &str) -> Result<SecretName, ServerError> {
    SecretName::parse(name).map_err(|e| ServerError::Invalid(e.to_string()))
}

/// The team a request names. Only the caller's own team is ever served, so a string that cannot
/// be a team is refused as another team is (the key is not of it), without echoing it; with an
/// `action`, the refusal is on record in the caller's team, the string cut short in a field of
/// its own.
pub(crate) async fn team(
    state: &AppState,
    c: &Caller,
    asked: &str,
    action: Option<(AuditAction, Option<&str>)>,
) -> Result<TeamName, ServerError> {
    if let Ok(t) = TeamName::parse(asked) {
        return Ok(t);
    }
    let e = ServerError::Forbidden(format!(
        "this key belongs to team {:?}, not to the team in the path (not a valid team name)",
        c.team.as_str()
    ));
    match action {
        Some((action, name)) => Err(refuse(state, c, asked, action, name, e).await),
        None => Err(e),
    }
}

/// Input a face parsed for `action` in `team` (`raw` as it came): the typed value, or the
/// refusal, on record like any refusal of an audited action.
pub(crate) async fn parsed<T>(
    state: &AppState,
    c: &Caller,
    team: &TeamName,
    action: Option<AuditAction>,
    raw: &str,
    parse: impl FnOnce(&str) -> Result<T, ServerError>,
) -> Result<T, ServerError> {
    match (parse(raw), action) {
        (Ok(t), _) => Ok(t),
        (Err(e), Some(action)) => Err(refuse(state, c, team.as_str(), action, Some(raw), e).await),
        (Err(e), None) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn team_names_and_key_ids_parse_or_say_the_grammar() {
        assert_eq!(
            TeamName::parse("etl-prod.2").unwrap().as_str(),
            "etl-prod.2"
        );
        for bad in ["", "a b", "x/y", "é", &"t".repeat(65)] {
            let e = TeamName::parse(bad).unwrap_err();
            assert!(matches!(e, ServerError::Invalid(_)), "{bad:?}");
            assert!(e.to_string().contains("1 to 64"));
        }
        let id = "a".repeat(crate::keys::ID_LEN);
        assert_eq!(KeyId::parse(&id).unwrap().as_str(), id);
        for bad in ["", "ABC", &"a".repeat(crate::keys::ID_LEN + 1), "../x"] {
            let e = KeyId::parse(bad).unwrap_err();
            assert!(matches!(e, ServerError::NotFound(_)), "{bad:?}");
        }
        let long = KeyId::parse(&"x".repeat(10_000)).unwrap_err().to_string();
        assert!(long.len() < 120, "a long id is cut short: {long}");
    }
}
