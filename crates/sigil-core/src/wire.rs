//! The JSON shapes of the server's HTTP API, shared by the server and the client.
//!
//! Times are RFC 3339 strings in UTC with millisecond precision. Types that carry a secret's
//! value or an API key redact it in `Debug`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A key's role within its team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Names and metadata only.
    Viewer,
    /// Read values (flow runners).
    Reader,
    /// Set, delete, restore and read.
    Writer,
    /// Everything in the team, keys and audit included.
    Admin,
}

impl Role {
    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Admin => "admin",
        }
    }

    /// Parses a role name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "reader" => Some(Role::Reader),
            "writer" => Some(Role::Writer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// May this role read values?
    pub fn can_read_values(self) -> bool {
        self >= Role::Reader
    }

    /// May this role change secrets?
    pub fn can_write(self) -> bool {
        self >= Role::Writer
    }
}

/// `PUT /api/v1/teams/{team}/secrets/{name}`.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PutSecret {
    /// The value: any JSON.
    pub value: Value,
    /// Check-and-set: the version the secret must be at; `0` creates only.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "integral"
    )]
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub cas: Option<i64>,
}

/// A whole number as JSON counts one: `3`, or `3.0` as some encoders write it (never `3.5`).
fn whole(n: &serde_json::Number) -> Option<i64> {
    n.as_i64().or_else(|| {
        // in [-2^63, 2^63) a whole f64 is an i64 exactly
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && (i64::MIN as f64..i64::MAX as f64).contains(f))
            .map(|f| f as i64)
    })
}

/// An optional integer, [`whole`].
fn integral<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Option::<serde_json::Number>::deserialize(d)?
        .map(|n| whole(&n).ok_or_else(|| serde::de::Error::custom("expected an integer")))
        .transpose()
}

/// A list of integers, each [`whole`].
fn integers<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<i64>, D::Error> {
    Vec::<serde_json::Number>::deserialize(d)?
        .iter()
        .map(|n| whole(n).ok_or_else(|| serde::de::Error::custom("expected integers")))
        .collect()
}

impl std::fmt::Debug for PutSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PutSecret")
            .field("value", &"[REDACTED]")
            .field("cas", &self.cas)
            .finish()
    }
}

/// The answer to a write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecretWritten {
    /// The secret's name.
    pub name: String,
    /// The new version.
    pub version: i64,
    /// When the secret was first created.
    pub created_at: String,
    /// When this version was written.
    pub updated_at: String,
}

/// A secret's value at a version.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecretRead {
    /// The secret's name.
    pub name: String,
    /// The value, as stored.
    pub value: Value,
    /// The version read.
    pub version: i64,
    /// When that version was written.
    pub updated_at: String,
}

impl std::fmt::Debug for SecretRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretRead")
            .field("name", &self.name)
            .field("value", &"[REDACTED]")
            .field("version", &self.version)
            .finish()
    }
}

/// One row of a listing: never a value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecretListItem {
    /// The secret's name.
    pub name: String,
    /// Its latest version.
    pub version: i64,
    /// When that version was written.
    pub updated_at: String,
    /// The key that wrote it.
    pub updated_by: String,
}

/// `GET /api/v1/teams/{team}/secrets`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecretList {
    /// One page of secrets, by name.
    pub secrets: Vec<SecretListItem>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// One version in a secret's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionInfo {
    /// The version.
    pub version: i64,
    /// When it was written.
    pub created_at: String,
    /// The key that wrote it.
    pub created_by: String,
    /// Whether it can be read now: `live`, `deleted` (soft-deleted: undelete brings it back) or
    /// `destroyed` (its value wiped for good).
    #[serde(default)]
    pub state: VersionStatus,
    /// When it was soft-deleted, or when it will be (a secret's `delete_version_after`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
}

/// Whether a version can be read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum VersionStatus {
    /// Readable.
    #[default]
    Live,
    /// Soft-deleted: not read until undeleted.
    Deleted,
    /// Destroyed: its value is gone for good.
    Destroyed,
}

impl VersionStatus {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            VersionStatus::Live => "live",
            VersionStatus::Deleted => "deleted",
            VersionStatus::Destroyed => "destroyed",
        }
    }
}

/// Versions one change may name, at most.
pub const MAX_VERSIONS_PER_CHANGE: usize = 1000;

/// A change of versions' state, which the REST API names in the path:
/// `POST /api/v1/teams/{team}/{delete,undelete,destroy}-versions/{name}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionsChange {
    /// Soft-delete: not read until undeleted.
    Delete,
    /// Make soft-deleted versions readable again.
    Undelete,
    /// Wipe the values for good (the versions stay in the history as destroyed).
    Destroy,
}

impl VersionsChange {
    /// The word of its route: `delete-versions`, `undelete-versions`, `destroy-versions`.
    pub fn route(self) -> &'static str {
        match self {
            VersionsChange::Delete => "delete-versions",
            VersionsChange::Undelete => "undelete-versions",
            VersionsChange::Destroy => "destroy-versions",
        }
    }
}

/// The body of a change of versions' state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChangeVersions {
    /// The versions to change: 1 to 1000 version numbers.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::version_numbers))]
    #[serde(deserialize_with = "integers")]
    pub versions: Vec<i64>,
}

/// What a change of versions' state changed: the versions it applied to (one that does not
/// exist, or is in that state already, is left alone and not listed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionsChanged {
    /// The secret.
    pub name: String,
    /// The versions changed.
    pub changed: Vec<i64>,
}

/// How a secret's versions are kept (Vault KV v2's metadata; all zero or empty by default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecretSettingsInfo {
    /// Versions kept (0: the team's setting; 0 there too: all); older ones are removed for good.
    #[serde(default)]
    pub max_versions: i64,
    /// Every write must name the version it replaces.
    #[serde(default)]
    pub cas_required: bool,
    /// Seconds after which each new version is soft-deleted (0: never).
    #[serde(default)]
    pub delete_version_after_s: i64,
    /// The secret's description: keys and values, never secret.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub custom_metadata: std::collections::BTreeMap<String, String>,
}

/// `GET /api/v1/teams/{team}/history/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct History {
    /// The secret's name.
    pub name: String,
    /// Whether it is deleted (restorable).
    pub deleted: bool,
    /// Its settings.
    #[serde(default)]
    pub settings: SecretSettingsInfo,
    /// A page of versions, newest first.
    pub versions: Vec<VersionInfo>,
    /// Pass as `cursor` for the older versions; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Names in one batch read, at most.
pub const MAX_BATCH_NAMES: usize = 1000;

/// `POST /api/v1/teams/{team}/batch-read`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BatchRead {
    /// The names to read.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::secret_names))]
    pub names: Vec<String>,
    /// The task that asks for each name, one per name, for the audit log (a flow run reads the
    /// secrets of all its tasks in one request); none: the request's `X-Sigil-Task`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::task_names))]
    pub tasks: Vec<String>,
}

/// The answer to a batch read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchReadResult {
    /// The secrets found.
    pub secrets: Vec<SecretRead>,
    /// The names not found.
    pub missing: Vec<String>,
}

/// `POST /api/v1/teams/{team}/keys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// The new key's role.
    pub role: Role,
    /// A label ("etl runner").
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::key_label))]
    pub name: String,
}

/// A key just created: the only time the key itself is shown.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedKey {
    /// The key's public id.
    pub id: String,
    /// The key (`sgl_…`): store it now, it cannot be shown again.
    pub key: String,
    /// Its team.
    pub team: String,
    /// Its role.
    pub role: Role,
    /// Its label.
    pub name: String,
}

impl std::fmt::Debug for CreatedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedKey")
            .field("id", &self.id)
            .field("key", &"[REDACTED]")
            .field("team", &self.team)
            .field("role", &self.role)
            .finish()
    }
}

/// A key, as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyInfo {
    /// The key's public id.
    pub id: String,
    /// Its role.
    pub role: Role,
    /// Its label.
    pub name: String,
    /// When it was created.
    pub created_at: String,
    /// The key that created it.
    pub created_by: String,
    /// When it was revoked.
    pub revoked_at: Option<String>,
}

/// `POST /api/v1/teams`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateTeam {
    /// The team's name.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::team_name))]
    pub name: String,
}

/// A team.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TeamInfo {
    /// Its name.
    pub name: String,
    /// When it was created.
    pub created_at: String,
}

/// `GET /api/v1/teams/{team}/keys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyList {
    /// The team's keys, oldest first (never the keys themselves).
    pub keys: Vec<KeyInfo>,
}

/// `GET /api/v1/teams`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TeamList {
    /// Every team, by name.
    pub teams: Vec<TeamInfo>,
}

/// The answer to `POST /api/v1/teams`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedTeam {
    /// The new team.
    pub team: TeamInfo,
    /// Its first administrator key, shown once.
    pub admin_key: CreatedKey,
}

/// One audit record: who did what, when, from where, with what outcome — never a value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// Sequence number.
    pub id: i64,
    /// When.
    pub at: String,
    /// The key's id (`-` when no key was accepted).
    pub key_id: String,
    /// The key's role.
    pub role: Option<Role>,
    /// What was done (`secret.read`, `secret.write`, `key.create`, …).
    pub action: String,
    /// The team.
    pub team: String,
    /// The secret or key concerned.
    pub name: Option<String>,
    /// The secret's version.
    pub version: Option<i64>,
    /// `ok`, `not_found`, `denied`, `conflict`, `invalid`, `error`.
    pub outcome: String,
    /// The client's address.
    pub client: String,
    /// The flow run, when the client said (`X-Sigil-Flow-Run`).
    pub flow_run: Option<String>,
    /// The task, when the client said (`X-Sigil-Task`).
    pub task: Option<String>,
    /// A request refused for asking for another team: the team it asked for (cut short).
    #[serde(default)]
    pub target: Option<String>,
    /// The face the request came through: `api`, `web`, `prefect` or `vault`.
    #[serde(default)]
    pub via: Option<String>,
    /// The client software, when it said (`prefect 1.4.1`).
    #[serde(default)]
    pub agent: Option<String>,
}

/// `GET /api/v1/teams/{team}/audit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPage {
    /// Records, oldest first.
    pub entries: Vec<AuditEntry>,
    /// Pass as `cursor` for the next page.
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/whoami`: the key's identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WhoAmI {
    /// The key's id.
    pub key_id: String,
    /// Its team.
    pub team: String,
    /// Its role.
    pub role: Role,
    /// Whether it is the bootstrap administrator (may create teams).
    pub bootstrap: bool,
}

/// Every error response: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The error's code and message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// A stable code: `not_found`, `unauthorized`, `forbidden`, `conflict`, `invalid`, …
    pub code: String,
    /// A message for people; never a value.
    pub message: String,
}

/// Formats Unix milliseconds as RFC 3339 (`2026-11-29T19:32:40.123Z`). A time outside jiff's
/// range (the years -9999 to 9999, less a day at either end) is shown as the nearest end of it.
pub fn rfc3339(ms: i64) -> String {
    let ts = jiff::Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    });
    let t = jiff::tz::Offset::UTC.to_datetime(ts);
    let y = i64::from(t.year());
    if !(0..=9999).contains(&y) {
        return format!("{ts:.3}");
    }
    // every response carries a time: the calendar is jiff's, the digits are written directly
    // (the formatter would be several times slower on the hottest path)
    let mut out = *b"0000-00-00T00:00:00.000Z";
    for (at, width, mut n) in [
        (0, 4, y),
        (5, 2, i64::from(t.month())),
        (8, 2, i64::from(t.day())),
        (11, 2, i64::from(t.hour())),
        (14, 2, i64::from(t.minute())),
        (17, 2, i64::from(t.second())),
        (20, 3, i64::from(t.millisecond())),
    ] {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    }
    out.iter().map(|&b| char::from(b)).collect()
}

/// Parses an RFC 3339 time into Unix milliseconds: `2026-11-29T19:32:40Z`, with or without a
/// fraction (digits past milliseconds are dropped), with `Z` or a numeric offset (`+01:00`,
/// `-05:30`), `T` and `Z` in either case. `None` for anything else, for a day the month does not
/// have, and for an offset beyond ±23:59. The grammar is checked here (RFC 3339's, stricter than
/// ISO 8601: no space for `T`, no `+01` or `+0100`); the calendar is jiff's.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| digits_of(s.get(r)?);
    let (y, m, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hh, mm, ss) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    // byte 19 may sit inside a multi-byte character of bad input: no slicing that could panic
    let rest = s.get(19..)?;
    let (millis, tz) = match rest.strip_prefix('.') {
        Some(r) => {
            let n = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            if n == 0 {
                return None;
            }
            let frac = &r[..n];
            let mut ms: i64 = frac[..3.min(n)].parse().ok()?;
            for _ in n.min(3)..3 {
                ms *= 10;
            }
            (ms, &r[n..])
        }
        None => (0, rest),
    };
    let offset_seconds = match tz.as_bytes() {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (oh, om) = (digits_of(&tz[1..3])?, digits_of(&tz[4..6])?);
            if oh > 23 || om > 59 {
                return None;
            }
            let seconds = (oh * 60 + om) * 60;
            if *sign == b'-' { -seconds } else { seconds }
        }
        _ => return None,
    };
    // a leap second is read as the second before it, as jiff's own parser does
    let ss = if ss == 60 { 59 } else { ss };
    let at = jiff::civil::DateTime::new(
        i16::try_from(y).ok()?,
        i8::try_from(m).ok()?,
        i8::try_from(d).ok()?,
        i8::try_from(hh).ok()?,
        i8::try_from(mm).ok()?,
        i8::try_from(ss).ok()?,
        0,
    )
    .ok()?;
    let offset = jiff::tz::Offset::from_seconds(i32::try_from(offset_seconds).ok()?).ok()?;
    let ts = offset.to_timestamp(at).ok()?;
    Some(ts.as_millisecond() + millis)
}

/// Parses a calendar date (`2026-12-02`) as its first millisecond in UTC.
pub fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (
        digits_of(&s[0..4])?,
        digits_of(&s[5..7])?,
        digits_of(&s[8..10])?,
    );
    let date = jiff::civil::Date::new(
        i16::try_from(y).ok()?,
        i8::try_from(m).ok()?,
        i8::try_from(d).ok()?,
    )
    .ok()?;
    let ts = jiff::tz::Offset::UTC.to_timestamp(date.to_datetime(jiff::civil::Time::midnight()));
    Some(ts.ok()?.as_millisecond())
}

fn digits_of(part: &str) -> Option<i64> {
    if !part.is_empty() && part.bytes().all(|c| c.is_ascii_digit()) {
        part.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // JSON Schema's integer is a number without a fraction: `7.0` is one (Schemathesis sends it)
    #[test]
    fn cas_is_an_integer_written_either_way() {
        let cas = |body: &str| serde_json::from_str::<PutSecret>(body).map(|p| p.cas);
        assert_eq!(cas(r#"{"value": 1}"#).unwrap(), None);
        assert_eq!(cas(r#"{"value": 1, "cas": null}"#).unwrap(), None);
        assert_eq!(cas(r#"{"value": 1, "cas": 7}"#).unwrap(), Some(7));
        assert_eq!(cas(r#"{"value": 1, "cas": 7.0}"#).unwrap(), Some(7));
        assert_eq!(cas(r#"{"value": 1, "cas": -2e0}"#).unwrap(), Some(-2));
        for bad in ["7.5", "1e300", "\"7\"", "true", "9223372036854775808"] {
            let e = cas(&format!(r#"{{"value": 1, "cas": {bad}}}"#)).unwrap_err();
            let e = e.to_string();
            assert!(e.contains("integer") || e.contains("number"), "{bad}: {e}");
        }
    }

    // serde_json's default float parsing is best effort: 1934306433746311.0 came out as
    // 1934306433746311.3 — a value's number changed on its way in (float_roundtrip fixes it)
    #[test]
    fn numbers_in_a_value_come_back_as_they_went_in() {
        for n in [
            "1934306433746311.0",
            "0.30000000000000004",
            "1e-7",
            "5e-324",
            "1.7976931348623157e308",
        ] {
            let put: PutSecret = serde_json::from_str(&format!(r#"{{"value": [{n}]}}"#)).unwrap();
            let back = serde_json::to_string(&put.value).unwrap();
            let again: Value = serde_json::from_str(&back).unwrap();
            assert_eq!(again, put.value, "{n}");
            let exact: f64 = n.parse().unwrap();
            assert_eq!(put.value[0].as_f64(), Some(exact), "{n} read as {back}");
        }
    }

    #[test]
    fn versions_are_integers_written_either_way() {
        let versions =
            |body: &str| serde_json::from_str::<ChangeVersions>(body).map(|c| c.versions);
        assert_eq!(versions(r#"{"versions": [1, 2.0, 3]}"#).unwrap(), [1, 2, 3]);
        let big = r#"{"versions": [9295.0, 2706910781.0, 132537.0, 1934306433746311.0, 4415, 1164774.0, 57.0, 16155463, 139784727482.0, 76176487.0, 9283226516678, 3938, 67678, 14956023681.0]}"#;
        assert_eq!(versions(big).unwrap().len(), 14);
        for bad in ["[1.5]", "[\"1\"]", "1", "[null]"] {
            assert!(
                versions(&format!(r#"{{"versions": {bad}}}"#)).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_894_360_123), "2026-11-28T19:32:40.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(4_102_444_800_000), "2100-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(253_402_207_200_999), "9999-12-30T22:00:00.999Z");
        // past jiff's range: its end, not a panic
        assert_eq!(rfc3339(253_402_300_799_999), "9999-12-30T22:00:00.999Z");
        assert_eq!(rfc3339(i64::MAX), "9999-12-30T22:00:00.999Z");
        assert!(
            rfc3339(i64::MIN).starts_with("-009999-01-0"),
            "{}",
            rfc3339(i64::MIN)
        );
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
        // the digits written directly are those jiff's formatter writes
        let mut ms: i64 = 1;
        for _ in 0..20_000 {
            ms = ms.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1) % 253_402_207_200_000;
            let ms = ms.abs();
            let ts = jiff::Timestamp::from_millisecond(ms).unwrap();
            assert_eq!(rfc3339(ms), format!("{ts:.3}"));
        }
        for ms in [0, 1, 951_782_400_000, 1_795_894_360_123, 4_102_444_800_999] {
            assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms));
        }
        assert_eq!(
            parse_rfc3339("2026-11-29T19:32:40Z"),
            Some(1_795_980_760_000)
        );
        assert_eq!(parse_rfc3339("2026-13-29T19:32:40Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
        // regression: a multi-byte character at byte 19 panicked the slicing
        assert_eq!(parse_rfc3339("2026-11-29T19:32:4é0Z"), None);
        assert_eq!(parse_rfc3339("2026-11-29T19:32:40é"), None);
    }

    // `--since 2026-01-01T00:00:00+01:00` was refused as "not an RFC 3339 time".
    #[test]
    fn offsets_and_every_rfc3339_spelling() {
        let z = parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        assert_eq!(
            parse_rfc3339("2026-01-01T00:00:00+01:00"),
            Some(z - 3_600_000)
        );
        assert_eq!(parse_rfc3339("2025-12-31T18:30:00-05:30"), Some(z));
        assert_eq!(parse_rfc3339("2026-01-01t00:00:00z"), Some(z));
        assert_eq!(parse_rfc3339("2026-01-01T00:00:00-00:00"), Some(z));
        assert_eq!(parse_rfc3339("2026-01-01T00:00:00.5+00:00"), Some(z + 500));
        assert_eq!(
            parse_rfc3339("2026-01-01T00:00:00.123456789Z"),
            Some(z + 123)
        );
        for bad in [
            "2026-01-01T00:00:00+24:00",
            "2026-01-01T00:00:00+01",
            "2026-01-01T00:00:00+0100",
            "2026-01-01T00:00:00.Z",
            "2026-02-30T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2026-+1-01T00:00:00Z",
            "2026-01-01 00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        assert!(parse_rfc3339("2024-02-29T00:00:00Z").is_some());
        assert_eq!(parse_date("2026-01-01"), Some(z));
        assert_eq!(parse_date("2026-02-30"), None);
        assert_eq!(parse_date("2026-1-01"), None);
    }

    #[test]
    fn values_and_keys_are_redacted_in_debug() {
        let r = SecretRead {
            name: "n".into(),
            value: Value::String("canary-wire".into()),
            version: 1,
            updated_at: rfc3339(0),
        };
        let p = PutSecret {
            value: Value::String("canary-wire".into()),
            cas: None,
        };
        let k = CreatedKey {
            id: "i".into(),
            key: "sgl_canary-wire".into(),
            team: "t".into(),
            role: Role::Admin,
            name: String::new(),
        };
        let shown = format!("{r:?}{p:?}{k:?}");
        assert!(!shown.contains("canary-wire"), "{shown}");
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<PutSecret>(r#"{"value": 1, "extra": 2}"#).is_err());
        let p: PutSecret = serde_json::from_str(r#"{"value": {"a": 1}, "cas": 0}"#).unwrap();
        assert_eq!(p.cas, Some(0));
        assert!(
            Role::Admin > Role::Writer
                && Role::Writer > Role::Reader
                && Role::Reader > Role::Viewer
        );
    }
}
