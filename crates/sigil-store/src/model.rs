//! The rows the store keeps. Values are ciphertexts: the store never sees a plaintext.

/// A team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    /// Internal id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Creation time (Unix ms).
    pub created_at: i64,
}

/// A team's data key, wrapped by a master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataKeyRow {
    /// The team.
    pub team_id: i64,
    /// Version within the team.
    pub version: i32,
    /// Which master key wrapped it.
    pub master_key_id: String,
    /// The wrapped key.
    pub wrapped: Vec<u8>,
    /// Creation time.
    pub created_at: i64,
}

/// A secret's current state (no value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRow {
    /// The name.
    pub name: String,
    /// Latest version.
    pub version: i64,
    /// First creation.
    pub created_at: i64,
    /// Latest change.
    pub updated_at: i64,
    /// The key that made the latest change.
    pub updated_by: String,
    /// Set when soft-deleted.
    pub deleted_at: Option<i64>,
}

/// One version of a secret: its sealed value.
#[derive(Clone, PartialEq, Eq)]
pub struct VersionRow {
    /// The version.
    pub version: i64,
    /// The data key version that sealed it.
    pub data_key_version: i32,
    /// The sealed value (empty in histories, which carry no values).
    pub ciphertext: Vec<u8>,
    /// When it was written.
    pub created_at: i64,
    /// The key that wrote it.
    pub created_by: String,
}

impl std::fmt::Debug for VersionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VersionRow")
            .field("version", &self.version)
            .field("ciphertext_len", &self.ciphertext.len())
            .field("created_by", &self.created_by)
            .finish()
    }
}

/// An API key: only a hash of its secret part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    /// Public id (the part of the key before its secret).
    pub id: String,
    /// The team.
    pub team_id: i64,
    /// The team's name (filled on reads).
    pub team_name: String,
    /// The key's role (stored as its name: `viewer`, `reader`, `writer` or `admin`).
    pub role: Role,
    /// SHA-256 of the secret part.
    pub hash: Vec<u8>,
    /// A label.
    pub name: String,
    /// The bootstrap administrator (may create teams).
    pub bootstrap: bool,
    /// Creation time.
    pub created_at: i64,
    /// The key that created it (`bootstrap` for the first).
    pub created_by: String,
    /// Set when revoked.
    pub revoked_at: Option<i64>,
}

pub use sigil_core::wire::Role;

/// A role read back from the database.
pub(crate) fn parse_role(text: &str) -> Result<Role, crate::StoreError> {
    Role::parse(text)
        .ok_or_else(|| crate::StoreError::backend(format!("unknown role {text:?} in the database")))
}

/// Declares an enum stored as text: `as_str`, `FromStr` (an unknown text is an error naming it),
/// `Display` and `Default` (for `..Default::default()` of a record), one table of variants and
/// their texts.
macro_rules! stored_as_text {
    ($(#[$doc:meta])* $name:ident (default $default:ident) {
        $($(#[$vdoc:meta])* $variant:ident = $text:literal,)+
    }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl Default for $name {
            fn default() -> Self {
                $name::$default
            }
        }

        impl $name {
            /// The text stored for it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = crate::StoreError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(crate::StoreError::backend(format!(
                        concat!("unknown ", stringify!($name), " {:?} in the database"),
                        other
                    ))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

stored_as_text! {
    /// What an audit record says was done (stored as its text, as before the type).
    AuditAction (default SecretRead) {
        /// A secret's value was read.
        SecretRead = "secret.read",
        /// A secret was written.
        SecretWrite = "secret.write",
        /// A secret was deleted.
        SecretDelete = "secret.delete",
        /// A deleted secret was restored.
        SecretRestore = "secret.restore",
        /// A key was created.
        KeyCreate = "key.create",
        /// A key was revoked.
        KeyRevoke = "key.revoke",
        /// A team was created.
        TeamCreate = "team.create",
    }
}

stored_as_text! {
    /// How what an audit record says ended (stored as its text, as before the type).
    AuditOutcome (default Ok) {
        /// Done.
        Ok = "ok",
        /// Refused: another team, or a role too low.
        Denied = "denied",
        /// What was asked for does not exist.
        NotFound = "not_found",
        /// A check-and-set or a rule refused it.
        Conflict = "conflict",
        /// Bad input.
        Invalid = "invalid",
        /// It failed (a value that could not be opened, the storage).
        Error = "error",
    }
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditRow {
    /// Sequence number (set by the store).
    pub id: i64,
    /// When (Unix ms).
    pub at: i64,
    /// The key's id, or `-`.
    pub key_id: String,
    /// The key's role (none for what the server did itself).
    pub role: Option<Role>,
    /// What was done.
    pub action: AuditAction,
    /// The team.
    pub team: String,
    /// The secret or key concerned.
    pub name: Option<String>,
    /// The secret's version (set by the store for writes).
    pub version: Option<i64>,
    /// How it ended.
    pub outcome: AuditOutcome,
    /// The client's address.
    pub client: String,
    /// The flow run.
    pub flow_run: Option<String>,
    /// The task.
    pub task: Option<String>,
    /// For a refused request for another team: the team it asked for (cut short). The record
    /// itself is in the caller's own team's log.
    pub target: Option<String>,
    /// Which face the request came through: `api`, `web`, `prefect` or `vault` (none for what the
    /// server did itself, and for records older than the column).
    pub via: Option<String>,
    /// The client software, when it says which (the Prefect client's `X-PREFECT-CORE-VERSION`,
    /// as `prefect 1.4.1`).
    pub agent: Option<String>,
}

/// A write of a new version.
pub struct PutSecret {
    /// The team.
    pub team_id: i64,
    /// The name.
    pub name: String,
    /// Check-and-set: the version the secret must be at (`0`: must not exist).
    pub cas: Option<i64>,
    /// The writer's key id.
    pub by: String,
    /// The time.
    pub at: i64,
    /// The data key version used by `seal`.
    pub data_key_version: i32,
    /// Seals the value for the version the store assigns (the version is part of the
    /// ciphertext's associated data, so sealing happens inside the transaction).
    pub seal: Box<dyn FnOnce(i64) -> Result<Vec<u8>, String> + Send>,
}

impl std::fmt::Debug for PutSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PutSecret")
            .field("team_id", &self.team_id)
            .field("name", &self.name)
            .finish()
    }
}

/// A web session. Its id is kept only as a SHA-256; it stands for a key, by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// SHA-256 of the session id (the cookie's value).
    pub id_hash: Vec<u8>,
    /// The key signed in with.
    pub key_id: String,
    /// When it began (Unix ms).
    pub created_at: i64,
    /// When it was last used (Unix ms).
    pub last_seen: i64,
}
