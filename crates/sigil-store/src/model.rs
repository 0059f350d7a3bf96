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

/// How a secret's versions are kept (Vault KV v2's metadata; a team has the same settings for
/// all its secrets, [`KvConfig`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecretSettings {
    /// Versions kept (0: the team's setting; 0 there too: all); past it the oldest are removed
    /// for good.
    pub max_versions: i64,
    /// Every write must name the version it replaces (check-and-set).
    pub cas_required: bool,
    /// Each version is soft-deleted this many ms after it is written (0: the team's setting; 0
    /// there too: never).
    pub delete_version_after: i64,
    /// A JSON object of strings describing the secret (never a value).
    pub custom_metadata: Option<String>,
}

/// A team's settings for all its secrets (Vault's mount `config`): the same fields as a
/// secret's, without its description.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KvConfig {
    /// Versions kept per secret (0: all). A secret's own setting, when larger, wins.
    pub max_versions: i64,
    /// Every write of every secret must name the version it replaces.
    pub cas_required: bool,
    /// Versions are soft-deleted this many ms after they are written (0: never). A secret's own
    /// setting, when shorter, wins.
    pub delete_version_after: i64,
}

impl KvConfig {
    /// The versions a secret with `own` settings keeps (0: all): the larger of the two when
    /// both are set (as OpenBao).
    pub fn max_versions(&self, own: &SecretSettings) -> i64 {
        own.max_versions.max(self.max_versions)
    }

    /// When a version of a secret with `own` settings written (or undeleted) at `at` is
    /// soft-deleted: the shorter of the two periods that are set.
    pub fn deletion_time(&self, own: &SecretSettings, at: i64) -> Option<i64> {
        let period = match (own.delete_version_after, self.delete_version_after) {
            (0, 0) => return None,
            (0, p) | (p, 0) => p,
            (a, b) => a.min(b),
        };
        Some(at.saturating_add(period))
    }

    /// Whether writes of a secret with `own` settings must carry a check-and-set.
    pub fn cas_required(&self, own: &SecretSettings) -> bool {
        own.cas_required || self.cas_required
    }
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
    /// The oldest version kept once `max_versions` removed older ones (0 until then).
    pub oldest_version: i64,
    /// How its versions are kept.
    pub settings: SecretSettings,
}

/// What a write of a new version returns: the secret as it is now, and when the new version
/// will be soft-deleted (its settings' `delete_version_after`), if it will. Derefs to the
/// secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The secret.
    pub secret: SecretRow,
    /// The new version's deletion time.
    pub deleted_at: Option<i64>,
}

impl std::ops::Deref for Written {
    type Target = SecretRow;

    fn deref(&self) -> &SecretRow {
        &self.secret
    }
}

/// What can be read of a version at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionState {
    /// Readable.
    Live,
    /// Soft-deleted: not read until undeleted.
    Deleted,
    /// Destroyed: its ciphertext is gone for good.
    Destroyed,
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
    /// When it is (or will be: `delete_version_after`) soft-deleted.
    pub deleted_at: Option<i64>,
    /// Destroyed: the ciphertext is wiped, the row kept as a tombstone.
    pub destroyed: bool,
}

impl VersionRow {
    /// Its state at `now` (Unix ms): a deletion time in the future has not come yet.
    pub fn state_at(&self, now: i64) -> VersionState {
        if self.destroyed {
            VersionState::Destroyed
        } else if self.deleted_at.is_some_and(|d| d <= now) {
            VersionState::Deleted
        } else {
            VersionState::Live
        }
    }
}

impl std::fmt::Debug for VersionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VersionRow")
            .field("version", &self.version)
            .field("ciphertext_len", &self.ciphertext.len())
            .field("created_by", &self.created_by)
            .field("deleted_at", &self.deleted_at)
            .field("destroyed", &self.destroyed)
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
        /// Versions of a secret were soft-deleted (one record per version).
        VersionDelete = "version.delete",
        /// Soft-deleted versions were undeleted (one record per version).
        VersionUndelete = "version.undelete",
        /// Versions were destroyed: their values wiped for good (one record per version).
        VersionDestroy = "version.destroy",
        /// A secret's settings were changed.
        SecretSettings = "secret.settings",
        /// A secret and all its versions were removed for good.
        SecretPurge = "secret.purge",
        /// A team's settings for its secrets were changed.
        TeamSettings = "team.settings",
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

/// What a change of versions' state does ([`Store::change_versions`](crate::Store::change_versions)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionChange {
    /// Soft-delete: versions neither deleted nor destroyed are deleted now.
    Delete,
    /// Undelete: deleted versions that are not destroyed are live again (until the deletion
    /// the settings give from now, if any).
    Undelete,
    /// Destroy: the ciphertexts are wiped; the rows stay as tombstones.
    Destroy,
}

impl VersionChange {
    /// The audit action it is recorded as.
    pub fn action(self) -> AuditAction {
        match self {
            VersionChange::Delete => AuditAction::VersionDelete,
            VersionChange::Undelete => AuditAction::VersionUndelete,
            VersionChange::Destroy => AuditAction::VersionDestroy,
        }
    }
}

/// A change of a secret's settings: each field set is changed, the others kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsChange {
    /// New `max_versions`.
    pub max_versions: Option<i64>,
    /// New `cas_required`.
    pub cas_required: Option<bool>,
    /// New `delete_version_after` (ms).
    pub delete_version_after: Option<i64>,
    /// New `custom_metadata` (JSON object text; `Some(None)` removes it).
    pub custom_metadata: Option<Option<String>>,
    /// When set, the change applies only while the secret's `custom_metadata` is still this —
    /// what a merge into it read — and is refused with [`StoreError::Changed`] otherwise, so
    /// that two merges at once cannot lose one's keys.
    pub custom_metadata_was: Option<Option<String>>,
}

impl SettingsChange {
    /// `settings` with this change applied.
    ///
    /// # Errors
    /// [`crate::StoreError::Changed`] when `custom_metadata_was` is not what `settings` hold.
    pub fn applied_to(
        &self,
        mut settings: SecretSettings,
    ) -> Result<SecretSettings, crate::StoreError> {
        if let Some(was) = &self.custom_metadata_was
            && *was != settings.custom_metadata
        {
            return Err(crate::StoreError::Changed(
                "the secret's custom_metadata".into(),
            ));
        }
        if let Some(m) = self.max_versions {
            settings.max_versions = m;
        }
        if let Some(c) = self.cas_required {
            settings.cas_required = c;
        }
        if let Some(d) = self.delete_version_after {
            settings.delete_version_after = d;
        }
        if let Some(m) = &self.custom_metadata {
            settings.custom_metadata = m.clone();
        }
        Ok(settings)
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
