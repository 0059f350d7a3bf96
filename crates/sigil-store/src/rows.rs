//! What both backends read back: the column lists of each kind of row, and one mapper per kind,
//! written once over [`Cells`] (a row of either backend, read by column index). A query selects
//! a list from here and hands its rows to the mapper of the same name. Each list is also a macro,
//! so that a fixed statement is one `concat!` at compile time, not a `format!` per query.

use crate::StoreError;
use crate::model::{
    AuditRow, DataKeyRow, KeyRow, KvConfig, Role, SecretRow, SecretSettings, SessionRow, Team,
    VersionRow,
};

/// A team: [`team`].
macro_rules! team_cols {
    () => {
        "id, name, created_at"
    };
}
pub(crate) use team_cols;
/// A data key: [`data_key`].
macro_rules! data_key_cols {
    () => {
        "team_id, version, master_key_id, wrapped, created_at"
    };
}
pub(crate) use data_key_cols;
pub(crate) const DATA_KEY_COLS: &str = data_key_cols!();
/// A secret (table `secrets`, unaliased): [`secret`].
macro_rules! secret_cols {
    () => {
        "name, version, created_at, updated_at, updated_by, deleted_at, oldest_version, \
         max_versions, cas_required, delete_version_after, custom_metadata"
    };
}
pub(crate) use secret_cols;
pub(crate) const SECRET_COLS: &str = secret_cols!();
/// A secret `s` and one of its versions `v`: [`found`].
macro_rules! found_cols {
    () => {
        "s.name, s.version, s.created_at, s.updated_at, s.updated_by, s.deleted_at, \
         s.oldest_version, s.max_versions, s.cas_required, s.delete_version_after, \
         s.custom_metadata, v.version, v.data_key_version, v.ciphertext, v.created_at, \
         v.created_by, v.deleted_at, v.destroyed"
    };
}
pub(crate) use found_cols;
/// A secret `s` about to be written (absent: its columns NULL) and its team `t`'s settings:
/// [`before_write`], from `teams t LEFT JOIN secrets s`.
macro_rules! before_write_cols {
    () => {
        "s.name, s.version, s.created_at, s.updated_at, s.updated_by, s.deleted_at, \
         s.oldest_version, s.max_versions, s.cas_required, s.delete_version_after, \
         s.custom_metadata, t.kv_max_versions, t.kv_cas_required, t.kv_delete_version_after"
    };
}
pub(crate) use before_write_cols;
/// A team's settings for its secrets: [`kv_config`].
macro_rules! kv_config_cols {
    () => {
        "kv_max_versions, kv_cas_required, kv_delete_version_after"
    };
}
pub(crate) use kv_config_cols;
/// A version without its ciphertext (a history): [`version_meta`].
macro_rules! version_meta_cols {
    () => {
        "version, data_key_version, created_at, created_by, deleted_at, destroyed"
    };
}
pub(crate) use version_meta_cols;
/// Keys with their team's name: [`key`]; a `WHERE` on `k.` follows.
macro_rules! key_select {
    () => {
        "SELECT k.id, k.team_id, t.name, k.role, k.hash, k.name, \
     k.bootstrap, k.created_at, k.created_by, k.revoked_at FROM api_keys k JOIN teams t ON t.id = k.team_id"
    };
}
pub(crate) use key_select;
pub(crate) const KEY_SELECT: &str = key_select!();
/// The revocation of a live key (1: the time, 2: the team, 3: the key), unless it is its team's
/// last live admin key: no revocation, however they interleave, leaves a team without an admin.
/// In SQLite's parameters (`?N`); [`REVOKE_KEY_PG`] is the same in PostgreSQL's.
pub(crate) const REVOKE_KEY: &str = "UPDATE api_keys SET revoked_at = ?1 \
     WHERE team_id = ?2 AND id = ?3 AND revoked_at IS NULL \
       AND (role <> 'admin' OR EXISTS (SELECT 1 FROM api_keys o WHERE o.team_id = ?2 \
            AND o.id <> ?3 AND o.role = 'admin' AND o.revoked_at IS NULL))";
/// [`REVOKE_KEY`] in PostgreSQL's parameters (`$N`).
pub(crate) const REVOKE_KEY_PG: &str = "UPDATE api_keys SET revoked_at = $1 \
     WHERE team_id = $2 AND id = $3 AND revoked_at IS NULL \
       AND (role <> 'admin' OR EXISTS (SELECT 1 FROM api_keys o WHERE o.team_id = $2 \
            AND o.id <> $3 AND o.role = 'admin' AND o.revoked_at IS NULL))";
/// A web session: [`session`].
macro_rules! session_cols {
    () => {
        "id_hash, key_id, created_at, last_seen"
    };
}
pub(crate) use session_cols;
/// An audit record: [`audit`].
macro_rules! audit_cols {
    () => {
        "id, at, key_id, role, action, team, name, version, outcome, client, flow_run, task, target, via, agent"
    };
}
pub(crate) use audit_cols;
pub(crate) const AUDIT_COLS: &str = audit_cols!();

/// A row of either backend, read by column index. Each backend reads its own types (SQLite keeps
/// a flag as an integer, PostgreSQL as a boolean); the mappers below are the same for both.
pub(crate) trait Cells {
    /// The backend's error.
    type Error;
    /// A 64-bit integer.
    fn int(&self, i: usize) -> Result<i64, Self::Error>;
    /// A 32-bit integer.
    fn int32(&self, i: usize) -> Result<i32, Self::Error>;
    /// An integer or NULL.
    fn opt_int(&self, i: usize) -> Result<Option<i64>, Self::Error>;
    /// Text.
    fn text(&self, i: usize) -> Result<String, Self::Error>;
    /// Text or NULL.
    fn opt_text(&self, i: usize) -> Result<Option<String>, Self::Error>;
    /// Bytes.
    fn blob(&self, i: usize) -> Result<Vec<u8>, Self::Error>;
    /// A flag.
    fn flag(&self, i: usize) -> Result<bool, Self::Error>;
    /// Column `i` held what this version cannot read (`e` says what).
    fn invalid(&self, i: usize, e: StoreError) -> Self::Error;

    /// An enum stored as text.
    fn parsed<T: std::str::FromStr<Err = StoreError>>(&self, i: usize) -> Result<T, Self::Error> {
        self.text(i)?.parse().map_err(|e| self.invalid(i, e))
    }

    /// A role stored as text.
    fn role(&self, i: usize) -> Result<Role, Self::Error> {
        crate::model::parse_role(&self.text(i)?).map_err(|e| self.invalid(i, e))
    }

    /// A role stored as text, or NULL.
    fn opt_role(&self, i: usize) -> Result<Option<Role>, Self::Error> {
        self.opt_text(i)?
            .map(|t| crate::model::parse_role(&t).map_err(|e| self.invalid(i, e)))
            .transpose()
    }
}

/// A row of `team_cols!()`.
pub(crate) fn team<R: Cells>(r: &R) -> Result<Team, R::Error> {
    Ok(Team {
        id: r.int(0)?,
        name: r.text(1)?,
        created_at: r.int(2)?,
    })
}

/// A row of [`DATA_KEY_COLS`].
pub(crate) fn data_key<R: Cells>(r: &R) -> Result<DataKeyRow, R::Error> {
    Ok(DataKeyRow {
        team_id: r.int(0)?,
        version: r.int32(1)?,
        master_key_id: r.text(2)?,
        wrapped: r.blob(3)?,
        created_at: r.int(4)?,
    })
}

/// A row of [`SECRET_COLS`].
pub(crate) fn secret<R: Cells>(r: &R) -> Result<SecretRow, R::Error> {
    Ok(SecretRow {
        name: r.text(0)?,
        version: r.int(1)?,
        created_at: r.int(2)?,
        updated_at: r.int(3)?,
        updated_by: r.text(4)?,
        deleted_at: r.opt_int(5)?,
        oldest_version: r.int(6)?,
        settings: SecretSettings {
            max_versions: r.int(7)?,
            cas_required: r.flag(8)?,
            delete_version_after: r.int(9)?,
            custom_metadata: r.opt_text(10)?,
        },
    })
}

/// The columns of [`SECRET_COLS`].
const SECRET_WIDTH: usize = 11;

/// A row of `found_cols!()`.
pub(crate) fn found<R: Cells>(r: &R) -> Result<(SecretRow, VersionRow), R::Error> {
    let v = SECRET_WIDTH;
    Ok((
        secret(r)?,
        VersionRow {
            version: r.int(v)?,
            data_key_version: r.int32(v + 1)?,
            ciphertext: r.blob(v + 2)?,
            created_at: r.int(v + 3)?,
            created_by: r.text(v + 4)?,
            deleted_at: r.opt_int(v + 5)?,
            destroyed: r.flag(v + 6)?,
        },
    ))
}

/// A row of `before_write_cols!()`: the secret, if there is one, and its team's settings.
pub(crate) fn before_write<R: Cells>(r: &R) -> Result<(Option<SecretRow>, KvConfig), R::Error> {
    let secret = match r.opt_text(0)? {
        Some(_) => Some(secret(r)?),
        None => None,
    };
    Ok((secret, kv_config_at(r, SECRET_WIDTH)?))
}

/// A row of `kv_config_cols!()`.
pub(crate) fn kv_config<R: Cells>(r: &R) -> Result<KvConfig, R::Error> {
    kv_config_at(r, 0)
}

fn kv_config_at<R: Cells>(r: &R, i: usize) -> Result<KvConfig, R::Error> {
    Ok(KvConfig {
        max_versions: r.int(i)?,
        cas_required: r.flag(i + 1)?,
        delete_version_after: r.int(i + 2)?,
    })
}

/// A row of `version_meta_cols!()` (the ciphertext left empty).
pub(crate) fn version_meta<R: Cells>(r: &R) -> Result<VersionRow, R::Error> {
    Ok(VersionRow {
        version: r.int(0)?,
        data_key_version: r.int32(1)?,
        ciphertext: Vec::new(),
        created_at: r.int(2)?,
        created_by: r.text(3)?,
        deleted_at: r.opt_int(4)?,
        destroyed: r.flag(5)?,
    })
}

/// A row of [`KEY_SELECT`].
pub(crate) fn key<R: Cells>(r: &R) -> Result<KeyRow, R::Error> {
    Ok(KeyRow {
        id: r.text(0)?,
        team_id: r.int(1)?,
        team_name: r.text(2)?,
        role: r.role(3)?,
        hash: r.blob(4)?,
        name: r.text(5)?,
        bootstrap: r.flag(6)?,
        created_at: r.int(7)?,
        created_by: r.text(8)?,
        revoked_at: r.opt_int(9)?,
    })
}

/// A row of `session_cols!()`.
pub(crate) fn session<R: Cells>(r: &R) -> Result<SessionRow, R::Error> {
    Ok(SessionRow {
        id_hash: r.blob(0)?,
        key_id: r.text(1)?,
        created_at: r.int(2)?,
        last_seen: r.int(3)?,
    })
}

/// A row of [`AUDIT_COLS`].
pub(crate) fn audit<R: Cells>(r: &R) -> Result<AuditRow, R::Error> {
    Ok(AuditRow {
        id: r.int(0)?,
        at: r.int(1)?,
        key_id: r.text(2)?,
        role: r.opt_role(3)?,
        action: r.parsed(4)?,
        team: r.text(5)?,
        name: r.opt_text(6)?,
        version: r.opt_int(7)?,
        outcome: r.parsed(8)?,
        client: r.text(9)?,
        flow_run: r.opt_text(10)?,
        task: r.opt_text(11)?,
        target: r.opt_text(12)?,
        via: r.opt_text(13)?,
        agent: r.opt_text(14)?,
    })
}

/// SQLite's rows: a flag is an integer; an unreadable enum is a conversion error naming it.
impl Cells for rusqlite::Row<'_> {
    type Error = rusqlite::Error;

    fn int(&self, i: usize) -> rusqlite::Result<i64> {
        self.get(i)
    }
    fn int32(&self, i: usize) -> rusqlite::Result<i32> {
        self.get(i)
    }
    fn opt_int(&self, i: usize) -> rusqlite::Result<Option<i64>> {
        self.get(i)
    }
    fn text(&self, i: usize) -> rusqlite::Result<String> {
        self.get(i)
    }
    fn opt_text(&self, i: usize) -> rusqlite::Result<Option<String>> {
        self.get(i)
    }
    fn blob(&self, i: usize) -> rusqlite::Result<Vec<u8>> {
        self.get(i)
    }
    fn flag(&self, i: usize) -> rusqlite::Result<bool> {
        Ok(self.get::<_, i64>(i)? != 0)
    }
    fn invalid(&self, i: usize, e: StoreError) -> rusqlite::Error {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    }
}

/// PostgreSQL's rows: a column of the wrong type is an error, not a panic.
impl Cells for tokio_postgres::Row {
    type Error = StoreError;

    fn int(&self, i: usize) -> Result<i64, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn int32(&self, i: usize) -> Result<i32, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn text(&self, i: usize) -> Result<String, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn blob(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn flag(&self, i: usize) -> Result<bool, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn invalid(&self, _: usize, e: StoreError) -> StoreError {
        e
    }
}

#[cfg(test)]
mod tests {
    // one statement, in each backend's parameters
    #[test]
    fn the_revocation_is_the_same_on_both_backends() {
        assert_eq!(super::REVOKE_KEY.replace('?', "$"), super::REVOKE_KEY_PG);
    }
}
