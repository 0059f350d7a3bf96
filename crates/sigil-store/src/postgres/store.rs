//! The [`Store`] trait on PostgreSQL: each operation one transaction (or one statement) on a
//! pooled connection, its statements prepared once per connection.

#[allow(unused_imports)]
use super::*;

/// A page of a team's live secrets whose names start with a prefix ($2 up to $3), after $4, in
/// byte order: through the index in that order (`secrets_team_name_bytes`, migration 6).
pub(super) const LIST_SECRETS: &str = concat!(
    "SELECT ",
    rows::secret_cols!(),
    " FROM secrets
     WHERE team_id = $1 AND deleted_at IS NULL AND name COLLATE \"C\" >= $2 AND name COLLATE \"C\" < $3
       AND name COLLATE \"C\" > $4
     ORDER BY name COLLATE \"C\" LIMIT $5"
);

#[async_trait::async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn timings(&self) -> &crate::StoreTimings {
        &self.timings
    }

    fn connections(&self) -> Option<crate::Connections> {
        Some(PgStore::connections(self))
    }

    async fn ping(&self) -> Result<()> {
        self.client().await?.execute("SELECT 1", &[]).await?;
        Ok(())
    }

    async fn is_empty(&self) -> Result<bool> {
        let c = self.client().await?;
        Ok(c.query_one("SELECT NOT EXISTS (SELECT 1 FROM teams)", &[])
            .await?
            .get(0))
    }

    async fn create_team(
        &self,
        name: &str,
        at: i64,
        data_key: DataKeyRow,
        first_key: Option<KeyRow>,
        audit: AuditRow,
    ) -> Result<Team> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let inserted = tx
            .query_opt(
                "INSERT INTO teams (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING id",
                &[&name, &at],
            )
            .await?;
        let Some(row) = inserted else {
            return Err(StoreError::Exists(format!("team {name:?}")));
        };
        let id: i64 = row.get(0);
        tx.execute(
            "INSERT INTO data_keys (team_id, version, master_key_id, wrapped, created_at) VALUES ($1, $2, $3, $4, $5)",
            &[&id, &data_key.version, &data_key.master_key_id, &data_key.wrapped, &data_key.created_at],
        )
        .await?;
        if let Some(k) = first_key {
            tx.execute(
                "INSERT INTO api_keys (id, team_id, role, hash, name, bootstrap, created_at, created_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[&k.id, &id, &k.role.as_str(), &k.hash, &k.name, &k.bootstrap, &k.created_at, &k.created_by],
            )
            .await?;
        }
        insert_audit(&tx, &audit).await?;
        tx.commit().await?;
        Ok(Team {
            id,
            name: name.to_owned(),
            created_at: at,
        })
    }

    async fn team(&self, name: &str) -> Result<Option<Team>> {
        let c = self.client().await?;
        let sql = concat!("SELECT ", rows::team_cols!(), " FROM teams WHERE name = $1");
        c.query_opt(sql, &[&name])
            .await?
            .as_ref()
            .map(rows::team)
            .transpose()
    }

    async fn list_teams(&self) -> Result<Vec<Team>> {
        let c = self.client().await?;
        let sql = concat!("SELECT ", rows::team_cols!(), " FROM teams ORDER BY name");
        c.query(sql, &[]).await?.iter().map(rows::team).collect()
    }

    async fn data_keys(&self, team_id: i64) -> Result<Vec<DataKeyRow>> {
        let c = self.client().await?;
        let sql = concat!(
            "SELECT ",
            rows::data_key_cols!(),
            " FROM data_keys WHERE team_id = $1 ORDER BY version"
        );
        c.query(sql, &[&team_id])
            .await?
            .iter()
            .map(rows::data_key)
            .collect()
    }

    async fn all_data_keys(&self) -> Result<Vec<DataKeyRow>> {
        let c = self.client().await?;
        let sql = concat!(
            "SELECT ",
            rows::data_key_cols!(),
            " FROM data_keys ORDER BY team_id, version"
        );
        c.query(sql, &[])
            .await?
            .iter()
            .map(rows::data_key)
            .collect()
    }

    async fn rewrap_data_keys(&self, rows: Vec<DataKeyRow>) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        for r in rows {
            let n = tx
                .execute(
                    "UPDATE data_keys SET master_key_id = $1, wrapped = $2 WHERE team_id = $3 AND version = $4",
                    &[&r.master_key_id, &r.wrapped, &r.team_id, &r.version],
                )
                .await?;
            if n != 1 {
                return Err(StoreError::NotFound(format!(
                    "data key {} of team {}",
                    r.version, r.team_id
                )));
            }
        }
        tx.commit().await.map_err(StoreError::from)
    }

    async fn put_secret(&self, put: PutSecret, audit: AuditRow) -> Result<Written> {
        versions::put_secret(self, put, audit).await
    }

    #[cfg(any(test, feature = "test-support"))]
    async fn get_secret(
        &self,
        team_id: i64,
        name: &str,
        version: Option<i64>,
    ) -> Result<Option<(SecretRow, VersionRow)>> {
        let c = self.client().await?;
        read_secret(&c, team_id, name, version).await
    }

    async fn get_secret_audited(
        &self,
        team_id: i64,
        name: &str,
        version: Option<i64>,
        audit: AuditRow,
    ) -> Result<Option<(SecretRow, VersionRow)>> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.read_jobs
            .send(ReadJob {
                team_id,
                name: name.to_owned(),
                version,
                audit,
                reply,
            })
            .map_err(|_| StoreError::backend("the read committer stopped"))?;
        rx.await
            .map_err(|_| StoreError::backend("the read committer stopped"))?
    }

    async fn list_secrets(
        &self,
        team_id: i64,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<SecretRow>> {
        let c = self.client().await?;
        let upper = format!("{prefix}\u{10FFFF}");
        let after = after.unwrap_or("");
        query_cached(
            &c,
            LIST_SECRETS,
            &[&team_id, &prefix, &upper, &after, &(limit as i64)],
        )
        .await?
        .iter()
        .map(rows::secret)
        .collect()
    }

    async fn search_secrets(
        &self,
        team_id: i64,
        needle: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<SecretRow>> {
        let c = self.client().await?;
        let after = after.unwrap_or("");
        query_cached(
            &c,
            &format!(
                "SELECT {SECRET_COLS} FROM secrets
                 WHERE team_id = $1 AND deleted_at IS NULL AND strpos(name, $2) > 0 AND name COLLATE \"C\" > $3
                 ORDER BY name COLLATE \"C\" LIMIT $4"
            ),
            &[&team_id, &needle, &after, &(limit as i64)],
        )
        .await?
        .iter()
        .map(rows::secret)
        .collect()
    }

    async fn history(
        &self,
        team_id: i64,
        name: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Option<(SecretRow, Vec<VersionRow>)>> {
        let c = self.client().await?;
        let Some(row) = query_opt_cached(&c, SELECT_SECRET, &[&team_id, &name])
            .await?
            .as_ref()
            .map(rows::secret)
            .transpose()?
        else {
            return Ok(None);
        };
        let versions = query_cached(
            &c,
            concat!(
                "SELECT ",
                rows::version_meta_cols!(),
                " FROM secret_versions
                 WHERE team_id = $1 AND name = $2 AND version < $3 ORDER BY version DESC LIMIT $4"
            ),
            &[
                &team_id,
                &name,
                &before.unwrap_or(i64::MAX),
                &i64::from(limit),
            ],
        )
        .await?
        .iter()
        .map(rows::version_meta)
        .collect::<Result<_>>()?;
        Ok(Some((row, versions)))
    }

    async fn delete_secret(
        &self,
        team_id: i64,
        name: &str,
        at: i64,
        audit: AuditRow,
    ) -> Result<bool> {
        let sql = "UPDATE secrets SET deleted_at = $1, updated_at = $1, updated_by = $2
                   WHERE team_id = $3 AND name = $4 AND deleted_at IS NULL";
        update_audited(
            &mut self.client().await?,
            sql,
            &[&at, &audit.key_id, &team_id, &name],
            &audit,
        )
        .await
    }

    async fn restore_secret(
        &self,
        team_id: i64,
        name: &str,
        at: i64,
        audit: AuditRow,
    ) -> Result<Option<SecretRow>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let row = query_opt_cached(
            &tx,
            &format!(
                "UPDATE secrets SET deleted_at = NULL, updated_at = $1, updated_by = $2
                 WHERE team_id = $3 AND name = $4 AND deleted_at IS NOT NULL RETURNING {SECRET_COLS}"
            ),
            &[&at, &audit.key_id, &team_id, &name],
        )
        .await?
        .as_ref()
        .map(rows::secret)
        .transpose()?;
        if row.is_some() {
            insert_audit(&tx, &audit).await?;
        }
        tx.commit().await?;
        Ok(row)
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
        versions::change_versions(self, team_id, name, versions, change, at, audit).await
    }

    async fn set_settings(
        &self,
        team_id: i64,
        name: &str,
        change: SettingsChange,
        at: i64,
        audit: AuditRow,
    ) -> Result<SecretRow> {
        versions::set_settings(self, team_id, name, change, at, audit).await
    }

    async fn purge_secret(&self, team_id: i64, name: &str, audit: AuditRow) -> Result<bool> {
        versions::purge_secret(self, team_id, name, audit).await
    }

    async fn kv_config(&self, team_id: i64) -> Result<KvConfig> {
        versions::kv_config(self, team_id).await
    }

    async fn set_kv_config(&self, team_id: i64, config: KvConfig, audit: AuditRow) -> Result<()> {
        versions::set_kv_config(self, team_id, config, audit).await
    }

    async fn create_key(&self, key: KeyRow, audit: AuditRow) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute(
            "INSERT INTO api_keys (id, team_id, role, hash, name, bootstrap, created_at, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[&key.id, &key.team_id, &key.role.as_str(), &key.hash, &key.name, &key.bootstrap, &key.created_at, &key.created_by],
        )
        .await
        .map_err(|e| {
            if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
                StoreError::Exists(format!("key {:?}", key.id))
            } else {
                e.into()
            }
        })?;
        insert_audit(&tx, &audit).await?;
        tx.commit().await.map_err(StoreError::from)
    }

    async fn create_session(&self, session: SessionRow, max_per_key: u32) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute(
            "INSERT INTO web_sessions (id_hash, key_id, created_at, last_seen) VALUES ($1, $2, $3, $4)",
            &[&session.id_hash, &session.key_id, &session.created_at, &session.last_seen],
        )
        .await?;
        tx.execute(
            "DELETE FROM web_sessions WHERE key_id = $1 AND id_hash NOT IN \
             (SELECT id_hash FROM web_sessions WHERE key_id = $1 ORDER BY created_at DESC, id_hash LIMIT $2)",
            &[&session.key_id, &i64::from(max_per_key)],
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)
    }

    async fn session(&self, id_hash: &[u8]) -> Result<Option<SessionRow>> {
        let c = self.client().await?;
        let sql = concat!(
            "SELECT ",
            rows::session_cols!(),
            " FROM web_sessions WHERE id_hash = $1"
        );
        query_opt_cached(&c, sql, &[&id_hash])
            .await?
            .as_ref()
            .map(rows::session)
            .transpose()
    }

    async fn touch_session(&self, id_hash: &[u8], at: i64) -> Result<()> {
        let c = self.client().await?;
        execute_cached(
            &c,
            "UPDATE web_sessions SET last_seen = $2 WHERE id_hash = $1",
            &[&id_hash, &at],
        )
        .await?;
        Ok(())
    }

    async fn delete_session(&self, id_hash: &[u8]) -> Result<()> {
        let c = self.client().await?;
        execute_cached(
            &c,
            "DELETE FROM web_sessions WHERE id_hash = $1",
            &[&id_hash],
        )
        .await?;
        Ok(())
    }

    async fn prune_sessions(&self, idle_before: i64, created_before: i64) -> Result<u64> {
        let c = self.client().await?;
        execute_cached(
            &c,
            "DELETE FROM web_sessions WHERE last_seen < $1 OR created_at < $2",
            &[&idle_before, &created_before],
        )
        .await
    }

    async fn key(&self, id: &str) -> Result<Option<KeyRow>> {
        let c = self.client().await?;
        Ok(
            query_opt_cached(&c, concat!(rows::key_select!(), " WHERE k.id = $1"), &[&id])
                .await?
                .map(|r| rows::key(&r))
                .transpose()?,
        )
    }

    async fn list_keys(&self, team_id: i64) -> Result<Vec<KeyRow>> {
        let c = self.client().await?;
        Ok(query_cached(
            &c,
            concat!(
                rows::key_select!(),
                " WHERE k.team_id = $1 ORDER BY k.created_at, k.id"
            ),
            &[&team_id],
        )
        .await?
        .iter()
        .map(rows::key)
        .collect::<Result<_>>()?)
    }

    async fn revoke_key(&self, team_id: i64, id: &str, at: i64, audit: AuditRow) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // revocations of one team's keys one at a time: the update's check of the other admins
        // then sees every revocation committed before it (READ COMMITTED takes a snapshot per
        // statement)
        execute_cached(
            &tx,
            "SELECT 1 FROM teams WHERE id = $1 FOR UPDATE",
            &[&team_id],
        )
        .await?;
        let n = execute_cached(&tx, crate::rows::REVOKE_KEY_PG, &[&at, &team_id, &id]).await?;
        if n == 1 {
            insert_audit(&tx, &audit).await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }

    async fn append_audit(&self, rows: Vec<AuditRow>) -> Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.audit
            .send((rows, tx))
            .map_err(|_| StoreError::backend("the audit committer stopped"))?;
        rx.await
            .map_err(|_| StoreError::backend("the audit committer stopped"))?
    }

    async fn backup(&self, _to: &std::path::Path) -> Result<u64> {
        Err(StoreError::backend(
            "a PostgreSQL database is backed up with PostgreSQL's own tools (pg_dump, or a base \
             backup with WAL archiving), not by sigil",
        ))
    }

    async fn prune_audit(&self, before: i64, limit: u32) -> Result<u64> {
        let c = self.client().await?;
        execute_cached(
            &c,
            "DELETE FROM audit WHERE id IN (SELECT id FROM audit ORDER BY id LIMIT $2) AND at < $1
             AND id < (SELECT MAX(id) FROM audit)",
            &[&before, &i64::from(limit)],
        )
        .await
    }

    async fn audit(
        &self,
        team: &str,
        after_id: i64,
        since: i64,
        limit: u32,
    ) -> Result<Vec<AuditRow>> {
        let c = self.client().await?;
        Ok(query_cached(
            &c,
            concat!(
                "SELECT ",
                rows::audit_cols!(),
                " FROM audit WHERE team = $1 AND id > $2 AND at >= $3 ORDER BY id LIMIT $4"
            ),
            &[&team, &after_id, &since, &(limit as i64)],
        )
        .await?
        .iter()
        .map(rows::audit)
        .collect::<Result<_>>()?)
    }

    async fn audit_newest(
        &self,
        team: &str,
        before_id: Option<i64>,
        since: i64,
        limit: u32,
    ) -> Result<Vec<AuditRow>> {
        let c = self.client().await?;
        let before = before_id.unwrap_or(i64::MAX);
        Ok(query_cached(
            &c,
            concat!(
                "SELECT ",
                rows::audit_cols!(),
                " FROM audit WHERE team = $1 AND id < $2 AND at >= $3 ORDER BY id DESC LIMIT $4"
            ),
            &[&team, &before, &since, &(limit as i64)],
        )
        .await?
        .iter()
        .map(rows::audit)
        .collect::<Result<_>>()?)
    }
}
