//! The [`Store`] trait on SQLite: each operation a job for the writer thread or a read on the
//! reader pool.

#[allow(unused_imports)]
use super::*;

/// Ends a key's sessions past the newest N (?2).
pub(super) const SESSIONS_OVER_CAP: &str = "DELETE FROM web_sessions WHERE key_id = ?1 AND id_hash NOT IN \
     (SELECT id_hash FROM web_sessions WHERE key_id = ?1 ORDER BY created_at DESC, id_hash LIMIT ?2)";

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn timings(&self) -> &crate::StoreTimings {
        &self.timings
    }

    async fn ping(&self) -> Result<()> {
        self.read(|c| {
            c.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(StoreError::from)
        })
        .await
    }

    async fn is_empty(&self) -> Result<bool> {
        self.read_settled(|c| {
            c.query_row("SELECT NOT EXISTS (SELECT 1 FROM teams)", [], |r| {
                r.get::<_, bool>(0)
            })
            .map_err(StoreError::from)
        })
        .await
    }

    async fn create_team(
        &self,
        name: &str,
        at: i64,
        data_key: DataKeyRow,
        first_key: Option<KeyRow>,
        audit: AuditRow,
    ) -> Result<Team> {
        let name = name.to_owned();
        self.write(move |c| {
            let exists: bool = c
                .query_row("SELECT EXISTS (SELECT 1 FROM teams WHERE name = ?1)", [&name], |r| r.get(0))
                ?;
            if exists {
                return Err(StoreError::Exists(format!("team {name:?}")));
            }
            c.execute("INSERT INTO teams (name, created_at) VALUES (?1, ?2)", params![name, at])
                ?;
            let id = c.last_insert_rowid();
            c.execute(
                "INSERT INTO data_keys (team_id, version, master_key_id, wrapped, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, data_key.version, data_key.master_key_id, data_key.wrapped, data_key.created_at],
            )
            ?;
            if let Some(k) = first_key {
                c.execute(
                    "INSERT INTO api_keys (id, team_id, role, hash, name, bootstrap, created_at, created_by)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![k.id, id, k.role.as_str(), k.hash, k.name, k.bootstrap as i64, k.created_at, k.created_by],
                )
                ?;
            }
            insert_audit(c, &audit)?;
            Ok(Team { id, name, created_at: at })
        })
        .await
    }

    async fn team(&self, name: &str) -> Result<Option<Team>> {
        let name = name.to_owned();
        self.read_settled(move |c| {
            let sql = concat!("SELECT ", rows::team_cols!(), " FROM teams WHERE name = ?1");
            let mut st = c.prepare_cached(sql)?;
            Ok(st.query_row([&name], |r| rows::team(r)).optional()?)
        })
        .await
    }

    async fn list_teams(&self) -> Result<Vec<Team>> {
        self.read_settled(|c| {
            let sql = concat!("SELECT ", rows::team_cols!(), " FROM teams ORDER BY name");
            let mut st = c.prepare_cached(sql)?;
            Ok(st
                .query_map([], |r| rows::team(r))?
                .collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn data_keys(&self, team_id: i64) -> Result<Vec<DataKeyRow>> {
        self.read_settled(move |c| data_keys_where(c, "WHERE team_id = ?1", params![team_id]))
            .await
    }

    async fn all_data_keys(&self) -> Result<Vec<DataKeyRow>> {
        self.read_settled(|c| data_keys_where(c, "", params![]))
            .await
    }

    async fn rewrap_data_keys(&self, rows: Vec<DataKeyRow>) -> Result<()> {
        self.write(move |c| {
            for r in rows {
                let n = c
                    .execute(
                        "UPDATE data_keys SET master_key_id = ?1, wrapped = ?2 WHERE team_id = ?3 AND version = ?4",
                        params![r.master_key_id, r.wrapped, r.team_id, r.version],
                    )
                    ?;
                if n != 1 {
                    return Err(StoreError::NotFound(format!("data key {} of team {}", r.version, r.team_id)));
                }
            }
            Ok(())
        })
        .await
    }

    async fn put_secret(&self, put: PutSecret, audit: AuditRow) -> Result<Written> {
        self.write(move |c| versions::put_secret(c, put, audit))
            .await
    }

    #[cfg(any(test, feature = "test-support"))]
    async fn get_secret(
        &self,
        team_id: i64,
        name: &str,
        version: Option<i64>,
    ) -> Result<Option<(SecretRow, VersionRow)>> {
        let name = name.to_owned();
        self.read(move |c| read_secret(c, team_id, &name, version))
            .await
    }

    async fn get_secret_audited(
        &self,
        team_id: i64,
        name: &str,
        version: Option<i64>,
        audit: AuditRow,
    ) -> Result<Option<(SecretRow, VersionRow)>> {
        let (reply, rx) = oneshot::channel();
        let _pending = self.submit(Work::Read(Box::new(AuditedRead {
            team_id,
            name: name.to_owned(),
            version,
            audit,
            reply,
        })));
        Self::answer(rx).await
    }

    async fn list_secrets(
        &self,
        team_id: i64,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<SecretRow>> {
        let (prefix, after) = (prefix.to_owned(), after.unwrap_or("").to_owned());
        self.read_settled(move |c| {
            // names are [A-Za-z0-9_./-]: a prefix range needs no LIKE escaping
            let upper = format!("{prefix}\u{10FFFF}");
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {SECRET_COLS} FROM secrets
                     WHERE team_id = ?1 AND deleted_at IS NULL AND name >= ?2 AND name < ?3 AND name > ?4
                     ORDER BY name LIMIT ?5"
                ))
                ?;
            st.query_map(params![team_id, prefix, upper, after, limit], |r| rows::secret(r))
                .and_then(|rows| rows.collect())
                .map_err(StoreError::from)
        })
        .await
    }

    async fn search_secrets(
        &self,
        team_id: i64,
        needle: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<SecretRow>> {
        let (needle, after) = (needle.to_owned(), after.unwrap_or("").to_owned());
        self.read_settled(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {SECRET_COLS} FROM secrets
                     WHERE team_id = ?1 AND deleted_at IS NULL AND instr(name, ?2) > 0 AND name > ?3
                     ORDER BY name LIMIT ?4"
            ))?;
            st.query_map(params![team_id, needle, after, limit], |r| rows::secret(r))
                .and_then(|rows| rows.collect())
                .map_err(StoreError::from)
        })
        .await
    }

    async fn history(
        &self,
        team_id: i64,
        name: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Option<(SecretRow, Vec<VersionRow>)>> {
        let name = name.to_owned();
        let before = before.unwrap_or(i64::MAX);
        self.read_settled(move |c| {
            let row = c
                .prepare_cached(&format!(
                    "SELECT {SECRET_COLS} FROM secrets WHERE team_id = ?1 AND name = ?2"
                ))
                .and_then(|mut st| st.query_row(params![team_id, name], |r| rows::secret(r)).optional())
                ?;
            let Some(row) = row else { return Ok(None) };
            let mut st = c
                .prepare_cached(concat!(
                    "SELECT ",
                    rows::version_meta_cols!(),
                    " FROM secret_versions
                     WHERE team_id = ?1 AND name = ?2 AND version < ?3 ORDER BY version DESC LIMIT ?4"
                ))?;
            let versions = st
                .query_map(params![team_id, name, before, limit], |r| rows::version_meta(r))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Some((row, versions)))
        })
        .await
    }

    async fn delete_secret(
        &self,
        team_id: i64,
        name: &str,
        at: i64,
        audit: AuditRow,
    ) -> Result<bool> {
        let name = name.to_owned();
        self.write(move |c| {
            let sql = "UPDATE secrets SET deleted_at = ?1, updated_at = ?1, updated_by = ?2
                       WHERE team_id = ?3 AND name = ?4 AND deleted_at IS NULL";
            update_audited(c, sql, params![at, audit.key_id, team_id, name], &audit)
        })
        .await
    }

    async fn restore_secret(
        &self,
        team_id: i64,
        name: &str,
        at: i64,
        audit: AuditRow,
    ) -> Result<Option<SecretRow>> {
        let name = name.to_owned();
        self.write(move |c| {
            let row = c
                .prepare_cached(&format!(
                    "UPDATE secrets SET deleted_at = NULL, updated_at = ?1, updated_by = ?2
                     WHERE team_id = ?3 AND name = ?4 AND deleted_at IS NOT NULL RETURNING {SECRET_COLS}"
                ))
                .and_then(|mut st| st.query_row(params![at, audit.key_id, team_id, name], |r| rows::secret(r)).optional())
                ?;
            if row.is_some() {
                insert_audit(c, &audit)?;
            }
            Ok(row)
        })
        .await
    }

    async fn change_versions(
        &self,
        team_id: i64,
        name: &str,
        versions: &[i64],
        change: VersionChange,
        at: i64,
        audit: AuditRow,
    ) -> Result<Option<Vec<i64>>> {
        let (name, versions) = (name.to_owned(), versions.to_vec());
        self.write(move |c| {
            versions::change_versions(c, team_id, &name, &versions, change, at, &audit)
        })
        .await
    }

    async fn set_settings(
        &self,
        team_id: i64,
        name: &str,
        change: SettingsChange,
        at: i64,
        audit: AuditRow,
    ) -> Result<SecretRow> {
        let name = name.to_owned();
        self.write(move |c| versions::set_settings(c, team_id, &name, &change, at, &audit))
            .await
    }

    async fn purge_secret(&self, team_id: i64, name: &str, audit: AuditRow) -> Result<bool> {
        let name = name.to_owned();
        self.write(move |c| versions::purge_secret(c, team_id, &name, &audit))
            .await
    }

    async fn kv_config(&self, team_id: i64) -> Result<KvConfig> {
        self.read_settled(move |c| versions::kv_config(c, team_id))
            .await
    }

    async fn set_kv_config(&self, team_id: i64, config: KvConfig, audit: AuditRow) -> Result<()> {
        self.write(move |c| versions::set_kv_config(c, team_id, config, &audit))
            .await
    }

    async fn create_key(&self, key: KeyRow, audit: AuditRow) -> Result<()> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO api_keys (id, team_id, role, hash, name, bootstrap, created_at, created_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![key.id, key.team_id, key.role.as_str(), key.hash, key.name, key.bootstrap as i64, key.created_at, key.created_by],
            )
            ?;
            insert_audit(c, &audit)
        })
        .await
    }

    async fn create_session(&self, session: SessionRow, max_per_key: u32) -> Result<()> {
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO web_sessions (id_hash, key_id, created_at, last_seen) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    session.id_hash,
                    session.key_id,
                    session.created_at,
                    session.last_seen
                ])
            })
            ?;
            c.prepare_cached(SESSIONS_OVER_CAP)
                .and_then(|mut st| st.execute(params![session.key_id, max_per_key]))
                ?;
            Ok(())
        })
        .await
    }

    async fn session(&self, id_hash: &[u8]) -> Result<Option<SessionRow>> {
        let id_hash = id_hash.to_vec();
        self.read_settled(move |c| {
            let sql = concat!(
                "SELECT ",
                rows::session_cols!(),
                " FROM web_sessions WHERE id_hash = ?1"
            );
            let mut st = c.prepare_cached(sql)?;
            Ok(st.query_row([&id_hash], |r| rows::session(r)).optional()?)
        })
        .await
    }

    async fn touch_session(&self, id_hash: &[u8], at: i64) -> Result<()> {
        let id_hash = id_hash.to_vec();
        self.write(move |c| {
            c.prepare_cached("UPDATE web_sessions SET last_seen = ?2 WHERE id_hash = ?1")
                .and_then(|mut st| st.execute(params![id_hash, at]))?;
            Ok(())
        })
        .await
    }

    async fn delete_session(&self, id_hash: &[u8]) -> Result<()> {
        let id_hash = id_hash.to_vec();
        self.write(move |c| {
            c.prepare_cached("DELETE FROM web_sessions WHERE id_hash = ?1")
                .and_then(|mut st| st.execute([id_hash]))?;
            Ok(())
        })
        .await
    }

    async fn prune_sessions(&self, idle_before: i64, created_before: i64) -> Result<u64> {
        self.write(move |c| {
            c.prepare_cached("DELETE FROM web_sessions WHERE last_seen < ?1 OR created_at < ?2")
                .and_then(|mut st| st.execute(params![idle_before, created_before]))
                .map(|n| n as u64)
                .map_err(StoreError::from)
        })
        .await
    }

    async fn key(&self, id: &str) -> Result<Option<KeyRow>> {
        let id = id.to_owned();
        self.read(move |c| {
            c.prepare_cached(&format!("{KEY_SELECT} WHERE k.id = ?1"))
                .and_then(|mut st| st.query_row([&id], |r| rows::key(r)).optional())
                .map_err(StoreError::from)
        })
        .await
    }

    async fn list_keys(&self, team_id: i64) -> Result<Vec<KeyRow>> {
        self.read_settled(move |c| {
            let mut st = c.prepare_cached(&format!(
                "{KEY_SELECT} WHERE k.team_id = ?1 ORDER BY k.created_at, k.id"
            ))?;
            st.query_map([team_id], |r| rows::key(r))
                .and_then(|rows| rows.collect())
                .map_err(StoreError::from)
        })
        .await
    }

    async fn revoke_key(&self, team_id: i64, id: &str, at: i64, audit: AuditRow) -> Result<bool> {
        let id = id.to_owned();
        self.write(move |c| {
            // one writer: the check of the other admins and the update are one step
            update_audited(c, crate::rows::REVOKE_KEY, params![at, team_id, id], &audit)
        })
        .await
    }

    async fn append_audit(&self, rows: Vec<AuditRow>) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        let _pending = self.submit(Work::Audit(rows, tx));
        Self::answer(rx).await
    }

    async fn backup(&self, to: &std::path::Path) -> Result<u64> {
        let (from, to) = (self.path.clone(), to.to_path_buf());
        tokio::task::spawn_blocking(move || super::backup::vacuum_into(&from, &to))
            .await
            .map_err(|e| StoreError::backend(format!("the backup thread failed: {e}")))?
    }

    async fn prune_audit(&self, before: i64, limit: u32) -> Result<u64> {
        self.write(move |c| {
            // the newest record always stays: ids are rowids, which an empty table would hand
            // out again from 1, under the cursors and blocks that name the old ones
            let n = c
                .prepare_cached(
                    "DELETE FROM audit WHERE id IN (SELECT id FROM audit ORDER BY id LIMIT ?2) AND at < ?1
                     AND id < (SELECT MAX(id) FROM audit)",
                )?
                .execute(params![before, limit])?;
            if n > 0 {
                // the blocks wholly before the oldest record left hold none any more
                c.prepare_cached(
                    "DELETE FROM audit_blocks WHERE block < (SELECT COALESCE(MIN(id), 0) FROM audit) >> ?1",
                )?
                .execute([AUDIT_BLOCK_BITS])?;
            }
            Ok(n as u64)
        })
        .await
    }

    async fn audit(
        &self,
        team: &str,
        after_id: i64,
        since: i64,
        limit: u32,
    ) -> Result<Vec<AuditRow>> {
        let team = team.to_owned();
        self.read_settled(move |c| audit_page(c, &team, after_id, since, limit, false))
            .await
    }

    async fn audit_newest(
        &self,
        team: &str,
        before_id: Option<i64>,
        since: i64,
        limit: u32,
    ) -> Result<Vec<AuditRow>> {
        let team = team.to_owned();
        let before = before_id.unwrap_or(i64::MAX);
        self.read_settled(move |c| audit_page(c, &team, before, since, limit, true))
            .await
    }
}
