//! Sigil's storage: one async [`Store`] trait with two implementations — [`SqliteStore`]
//! (embedded, the default: one file, group commit of durable writes) and [`PgStore`]
//! (PostgreSQL: any number of stateless server replicas share one database).
//!
//! The store keeps ciphertexts, hashes and metadata only: values are sealed by the server before
//! they reach it. Every write that changes something takes its audit record and commits both in
//! one transaction; a write is acknowledged only once it is durable.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sigil_store::StoreError> {
//! let store = sigil_store::open("sqlite:///var/lib/sigil/sigil.db").await?;
//! store.ping().await?;
//! # Ok(()) }
//! ```

mod error;
mod model;
mod plan;
mod postgres;
mod rows;
mod sqlite;
#[doc(hidden)]
pub mod test_support;
mod timing;

use std::sync::Arc;

pub use error::{BackendError, BackendKind, StoreError};
pub use model::{
    AuditAction, AuditOutcome, AuditRow, DataKeyRow, KeyRow, KvConfig, PutSecret, Role, SecretRow,
    SecretSettings, SessionRow, SettingsChange, Team, VersionChange, VersionRow, VersionState,
    Written,
};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use timing::{BOUNDS as TIMING_BOUNDS, Histogram, StoreTimings};

/// A store's connections to its database server, at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connections {
    /// Open: idle or in use.
    pub open: usize,
    /// Open and waiting for work.
    pub idle: usize,
    /// The most the store opens (`pool_size`).
    pub max: usize,
}

impl Connections {
    /// Appends the connections as Prometheus gauges.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let Connections { open, idle, max } = self;
        let _ = write!(
            out,
            "# HELP sigil_store_connections Connections to the database server, by state.\n\
             # TYPE sigil_store_connections gauge\n\
             sigil_store_connections{{state=\"idle\"}} {idle}\n\
             sigil_store_connections{{state=\"in_use\"}} {}\n\
             # HELP sigil_store_connections_max The most connections the store opens (pool_size).\n\
             # TYPE sigil_store_connections_max gauge\n\
             sigil_store_connections_max {max}\n",
            open.saturating_sub(*idle)
        );
    }
}

/// A `Result` with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Where secrets, keys and the audit log are kept.
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// How long the store's own steps took (commits, syncs, checkpoints), for `/metrics`.
    fn timings(&self) -> &StoreTimings;

    /// The connections to the database server, where there is one (PostgreSQL's pool), for
    /// `/metrics`; `None` for an embedded database.
    fn connections(&self) -> Option<Connections> {
        None
    }

    /// Checks that the database answers (for `/readyz`).
    async fn ping(&self) -> Result<()>;

    /// Whether no team exists yet (bootstrap).
    async fn is_empty(&self) -> Result<bool>;

    /// Creates a team with its first data key and, optionally, its first key; with the audit
    /// record, in one transaction.
    async fn create_team(
        &self,
        name: &str,
        at: i64,
        data_key: DataKeyRow,
        first_key: Option<KeyRow>,
        audit: AuditRow,
    ) -> Result<Team>;

    /// A team by name.
    async fn team(&self, name: &str) -> Result<Option<Team>>;

    /// Every team.
    async fn list_teams(&self) -> Result<Vec<Team>>;

    /// A team's data keys.
    async fn data_keys(&self, team_id: i64) -> Result<Vec<DataKeyRow>>;

    /// Every data key (for master-key rotation).
    async fn all_data_keys(&self) -> Result<Vec<DataKeyRow>>;

    /// Replaces wrapped data keys (after a master-key rotation), all in one transaction.
    async fn rewrap_data_keys(&self, rows: Vec<DataKeyRow>) -> Result<()>;

    /// Writes a new version; the audit record gets the version and is committed with it.
    async fn put_secret(&self, put: PutSecret, audit: AuditRow) -> Result<Written>;

    /// A secret's value at its latest (or a given) version; `None` when it does not exist or
    /// is deleted. Unaudited, so the server never reads a value this way: tests look at what
    /// the store holds through it (feature `test-support`).
    #[cfg(any(test, feature = "test-support"))]
    async fn get_secret(
        &self,
        team_id: i64,
        name: &str,
        version: Option<i64>,
    ) -> Result<Option<(SecretRow, VersionRow)>>;

    /// A secret's value at its latest (or a given) version, and appends `audit` for the read — with the version read and
    /// outcome `ok`, or outcome `not_found` and no version — durably before answering: the
    /// hottest request in one trip to the database (on PostgreSQL, concurrent reads share one
    /// statement and one commit).
    async fn get_secret_audited(
        &self,
        team_id: i64,
        name: &str,
        version: Option<i64>,
        audit: AuditRow,
    ) -> Result<Option<(SecretRow, VersionRow)>>;

    /// Live secrets whose name starts with `prefix`, by name, after `after`, at most `limit`.
    async fn list_secrets(
        &self,
        team_id: i64,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<SecretRow>>;

    /// Live secrets whose name contains `needle`, by name, after `after`, at most `limit`
    /// (the web page's search).
    async fn search_secrets(
        &self,
        team_id: i64,
        needle: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<SecretRow>>;

    /// A secret (deleted or not) and a page of its versions, newest first, without ciphertexts:
    /// versions below `before` (all when `None`), at most `limit`.
    async fn history(
        &self,
        team_id: i64,
        name: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Option<(SecretRow, Vec<VersionRow>)>>;

    /// Soft-deletes a live secret; `false` when there is none.
    async fn delete_secret(
        &self,
        team_id: i64,
        name: &str,
        at: i64,
        audit: AuditRow,
    ) -> Result<bool>;

    /// Restores a deleted secret and returns it; `None` when there is no deleted secret of that
    /// name.
    async fn restore_secret(
        &self,
        team_id: i64,
        name: &str,
        at: i64,
        audit: AuditRow,
    ) -> Result<Option<SecretRow>>;

    /// Changes the state of versions of a live secret (one audit record per version changed:
    /// `audit` with that version); versions that do not exist, or that the change does not
    /// apply to, are left as they are. `None` when there is no live secret; else the versions
    /// changed. Undeleted versions are deleted again when the settings say so, counted from `at`.
    /// Version 0 is the secret's current version (read in the same transaction).
    async fn change_versions(
        &self,
        team_id: i64,
        name: &str,
        versions: &[i64],
        change: VersionChange,
        at: i64,
        audit: AuditRow,
    ) -> Result<Option<Vec<i64>>>;

    /// Changes a secret's settings (no new version), and returns it; a secret that does not
    /// exist is created without versions (version 0), as Vault's metadata write does. A secret
    /// deleted through Sigil is refused ([`StoreError::Deleted`]).
    async fn set_settings(
        &self,
        team_id: i64,
        name: &str,
        change: SettingsChange,
        at: i64,
        audit: AuditRow,
    ) -> Result<SecretRow>;

    /// Removes a live secret and all its versions for good (the audit log keeps its records);
    /// `false` when there is no live secret of that name.
    async fn purge_secret(&self, team_id: i64, name: &str, audit: AuditRow) -> Result<bool>;

    /// A team's settings for its secrets.
    async fn kv_config(&self, team_id: i64) -> Result<KvConfig>;

    /// Replaces a team's settings for its secrets.
    async fn set_kv_config(&self, team_id: i64, config: KvConfig, audit: AuditRow) -> Result<()>;

    /// Adds a key.
    async fn create_key(&self, key: KeyRow, audit: AuditRow) -> Result<()>;

    /// A key by id, with its team's name.
    async fn key(&self, id: &str) -> Result<Option<KeyRow>>;

    /// A team's keys.
    async fn list_keys(&self, team_id: i64) -> Result<Vec<KeyRow>>;

    /// Revokes a key of the team, unless it is the team's last live admin key (revocations of a
    /// team's keys are serialised, so two admins revoking each other leave one); `false` when
    /// there is no such live key, or it is the last admin key.
    async fn revoke_key(&self, team_id: i64, id: &str, at: i64, audit: AuditRow) -> Result<bool>;

    /// Appends audit records durably.
    async fn append_audit(&self, rows: Vec<AuditRow>) -> Result<()>;

    /// A team's audit records with id greater than `after_id` and time at or after `since`,
    /// oldest first, at most `limit`.
    async fn audit(
        &self,
        team: &str,
        after_id: i64,
        since: i64,
        limit: u32,
    ) -> Result<Vec<AuditRow>>;

    /// Removes, among the `limit` oldest audit records (by id), those written before `before`
    /// (Unix ms); returns how many. Called again until it removes none, it prunes the log
    /// chunk by chunk, each a short transaction of its own, so reads are not held up. The newest
    /// record always stays (its id is where the next ones continue from).
    async fn prune_audit(&self, before: i64, limit: u32) -> Result<u64>;

    /// Writes a consistent copy of the whole database to `to` (a new file, mode 0600, synced and
    /// renamed into place) while the store serves; returns its size in bytes. SQLite only: a
    /// PostgreSQL database is backed up with PostgreSQL's own tools.
    async fn backup(&self, to: &std::path::Path) -> Result<u64>;

    /// Starts a web session; past `max_per_key` live sessions of its key, the oldest end.
    async fn create_session(&self, session: SessionRow, max_per_key: u32) -> Result<()>;

    /// A web session by the SHA-256 of its id.
    async fn session(&self, id_hash: &[u8]) -> Result<Option<SessionRow>>;

    /// Notes that a session was used at `at`.
    async fn touch_session(&self, id_hash: &[u8], at: i64) -> Result<()>;

    /// Ends a session (signing out; a session whose key was refused).
    async fn delete_session(&self, id_hash: &[u8]) -> Result<()>;

    /// Ends the sessions idle since before `idle_before` or begun before `created_before`;
    /// returns how many.
    async fn prune_sessions(&self, idle_before: i64, created_before: i64) -> Result<u64>;

    /// A team's audit records with id less than `before_id` (all when `None`) and time at or
    /// after `since`, newest first, at most `limit`: the page a person reads first.
    async fn audit_newest(
        &self,
        team: &str,
        before_id: Option<i64>,
        since: i64,
        limit: u32,
    ) -> Result<Vec<AuditRow>>;
}

/// Opens a store from a URL: `sqlite://PATH` (or a plain path) or `postgres://…`, and brings its
/// schema up to date. A SQLite database serves one server at a time: a second store on the same
/// file is refused.
///
/// # Errors
/// An unusable URL, an unreachable database, a failed migration, a SQLite database in use.
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    open_as(url, true).await
}

/// As [`open`], but on SQLite without the one-server lock, so that a maintenance command can run
/// while the server does: master-key rotation, which changes data keys only. Never serve secrets
/// from it — the server keeps the latest versions it has read, relying on being the only one to
/// change them.
///
/// # Errors
/// As [`open`].
pub async fn open_for_maintenance(url: &str) -> Result<Arc<dyn Store>> {
    open_as(url, false).await
}

async fn open_as(url: &str, exclusive: bool) -> Result<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect(url).await?))
    } else {
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        if path.is_empty() {
            return Err(StoreError::InvalidUrl("an empty SQLite path".into()));
        }
        let path = std::path::Path::new(path);
        let store = if exclusive {
            SqliteStore::open(path).await?
        } else {
            SqliteStore::open_for_maintenance(path).await?
        };
        Ok(Arc::new(store))
    }
}
