//! The PostgreSQL store: any number of stateless server replicas share one database.
//!
//! Each request runs in its own transaction on a pooled connection; PostgreSQL flushes the WAL of
//! concurrent commits together. Migrations take a transaction-scoped advisory lock, so replicas
//! that start together apply them once. Writes to one secret are serialised by an advisory lock
//! on (team, name), so versions never collide across replicas.

use deadpool_postgres::{Config, Pool, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use crate::model::{
    AuditRow, DataKeyRow, KeyRow, PutSecret, Role, SecretRow, SessionRow, Team, VersionRow,
};
use crate::{BackendError, Result, Store, StoreError};

const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/postgres/0001_init.sql"),
    include_str!("../migrations/postgres/0002_audit_target.sql"),
    include_str!("../migrations/postgres/0003_web_sessions.sql"),
];
/// The advisory lock that serialises migrations ("sigilmig" in ASCII).
const MIGRATION_LOCK: i64 = 0x7369_6769_6c6d_6967;

fn pg(e: tokio_postgres::Error) -> StoreError {
    e.into()
}

/// Why the pool has no connection to give, with the database's own reason when it refused one
/// ("sorry, too many clients already (53300)"; the pool's own message says only "db error").
fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    const CONTEXT: &str = "cannot get a database connection";
    let why = match e {
        deadpool_postgres::PoolError::Backend(e) => BackendError::postgres(e).context(CONTEXT),
        deadpool_postgres::PoolError::Timeout(_) | deadpool_postgres::PoolError::Closed => {
            return StoreError::Backend(BackendError::unreachable(e.to_string()).context(CONTEXT));
        }
        other => return StoreError::backend(format!("{CONTEXT}: {other}")),
    };
    StoreError::Backend(why)
}

/// Connections per server when the URL does not say: enough for many requests in flight
/// (PostgreSQL flushes the WAL of concurrent commits together, so concurrency is what makes
/// durable writes cheap). PostgreSQL's own default `max_connections` (100) leaves room for one
/// such server; with replicas, give each a `pool_size` and the database room for all of them.
const DEFAULT_POOL_SIZE: usize = 64;
/// The most a `pool_size` may ask for.
const MAX_POOL_SIZE: usize = 1000;

/// Takes Sigil's own `pool_size=N` parameter out of a PostgreSQL URL (PostgreSQL's client would
/// refuse it as unknown) and returns the rest of the URL and the pool size.
fn pool_size(url: &str) -> Result<(String, usize)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), DEFAULT_POOL_SIZE));
    };
    let mut size = DEFAULT_POOL_SIZE;
    let mut rest = Vec::new();
    for param in query.split('&') {
        match param.strip_prefix("pool_size=") {
            Some(n) => {
                size = n
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_POOL_SIZE).contains(n))
                    .ok_or_else(|| {
                        StoreError::InvalidUrl(format!(
                            "pool_size must be a number from 1 to {MAX_POOL_SIZE}, not {n:?}"
                        ))
                    })?;
            }
            None => rest.push(param),
        }
    }
    Ok(if rest.is_empty() {
        (base.to_owned(), size)
    } else {
        (format!("{base}?{}", rest.join("&")), size)
    })
}

/// Audit records waiting for the next group commit, each batch with its callers' replies.
type AuditJob = (Vec<AuditRow>, tokio::sync::oneshot::Sender<Result<()>>);

/// What a read of a value returns.
type Found = Option<(SecretRow, VersionRow)>;

/// A read of a value waiting for the next batch, with its audit record.
struct ReadJob {
    team_id: i64,
    name: String,
    version: Option<i64>,
    audit: AuditRow,
    reply: tokio::sync::oneshot::Sender<Result<Found>>,
}

type Queue<J> = std::sync::Arc<tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<J>>>;

/// The PostgreSQL store.
pub struct PgStore {
    pool: Pool,
    audit: tokio::sync::mpsc::UnboundedSender<AuditJob>,
    reads: tokio::sync::mpsc::UnboundedSender<ReadJob>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgStore")
    }
}

impl PgStore {
    /// Connects and brings the schema up to date.
    ///
    /// # Errors
    /// An invalid URL, an unreachable database, a failed migration.
    pub async fn connect(url: &str) -> Result<Self> {
        let (url, pool_size) = pool_size(url)?;
        let mut cfg = Config::new();
        cfg.url = Some(url);
        cfg.pool = Some(deadpool_postgres::PoolConfig::new(pool_size));
        let pool = cfg
            .create_pool(Some(Runtime::Tokio1), NoTls)
            .map_err(|e| StoreError::InvalidUrl(e.to_string()))?;
        let (audit, audit_rx) = tokio::sync::mpsc::unbounded_channel();
        let (reads, reads_rx) = tokio::sync::mpsc::unbounded_channel();
        let store = PgStore {
            pool: pool.clone(),
            audit,
            reads,
        };
        store.migrate().await?;
        // every read appends an audit record that must be durable before the answer: rather
        // than a transaction each, concurrent reads share one statement (which reads them all
        // and inserts their records) and one commit; other audit records are committed in
        // groups the same way (one multi-row insert per batch)
        let audit_rx: Queue<AuditJob> = std::sync::Arc::new(tokio::sync::Mutex::new(audit_rx));
        let reads_rx: Queue<ReadJob> = std::sync::Arc::new(tokio::sync::Mutex::new(reads_rx));
        for _ in 0..AUDIT_COMMITTERS {
            tokio::spawn(committer(
                pool.clone(),
                audit_rx.clone(),
                |j: &AuditJob| j.0.len(),
                commit_audit,
            ));
        }
        tokio::spawn(committer(
            pool.clone(),
            reads_rx,
            |_: &ReadJob| 1,
            commit_reads,
        ));
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Client> {
        self.pool.get().await.map_err(pool_error)
    }

    /// One UPDATE of at most one row and, when it changed one, its audit record, in one
    /// transaction. `false` when no row matched.
    async fn update_audited(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        audit: &AuditRow,
    ) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let n = execute_cached(&tx, sql, params).await?;
        if n == 1 {
            insert_audit(&tx, audit).await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(n == 1)
    }

    async fn migrate(&self) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg)?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS sigil_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            .await
            .map_err(pg)?;
        let current: i32 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM sigil_migrations",
                &[],
            )
            .await
            .map_err(pg)?
            .get(0);
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            tracing::info!(version = i + 1, "applying PostgreSQL migration");
            tx.batch_execute(sql).await.map_err(pg)?;
            tx.execute(
                "INSERT INTO sigil_migrations (version) VALUES ($1)",
                &[&((i + 1) as i32)],
            )
            .await
            .map_err(pg)?;
        }
        tx.commit().await.map_err(pg)
    }
}

/// Audit batches in flight at once. Reads have one batch in flight at a time: each takes every
/// read waiting, and one large batch costs PostgreSQL much less per read than several small
/// ones (measured: 38,700 reads/s with one, 31,800 with two, 24,500 with eight, at 64
/// connections on 2 cores).
const AUDIT_COMMITTERS: usize = 2;
/// The most records (or reads) one batch holds.
const BATCH: usize = 1024;

/// Takes every job waiting (up to [`BATCH`] of `size`) and runs them as one batch; jobs that
/// arrive meanwhile wait for the next batch (of another committer, or of this one).
async fn committer<J, F, Fut>(pool: Pool, rx: Queue<J>, size: fn(&J) -> usize, run: F)
where
    J: Send + 'static,
    F: Fn(Pool, Vec<J>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    loop {
        let mut jobs = Vec::new();
        {
            let mut rx = rx.lock().await;
            match rx.recv().await {
                Some(j) => jobs.push(j),
                None => return, // the store was dropped
            }
            let mut n = size(&jobs[0]);
            while n < BATCH {
                match rx.try_recv() {
                    Ok(j) => {
                        n += size(&j);
                        jobs.push(j);
                    }
                    Err(_) => break,
                }
            }
        }
        run(pool.clone(), jobs).await;
    }
}

async fn commit_audit(pool: Pool, jobs: Vec<AuditJob>) {
    let rows: Vec<&AuditRow> = jobs.iter().flat_map(|(r, _)| r.iter()).collect();
    let result = insert_audit_batch(&pool, &rows).await;
    tracing::trace!(records = rows.len(), "audit group commit");
    for (_, reply) in jobs {
        let _ = reply.send(result.clone());
    }
}

/// Reads every value of the batch and inserts their audit records — the version read and
/// `ok`, or `not_found` — in one statement, committed (durably) before anyone is answered.
async fn commit_reads(pool: Pool, jobs: Vec<ReadJob>) {
    match read_batch(&pool, &jobs).await {
        Ok(mut found) => {
            tracing::trace!(reads = jobs.len(), "audited read batch");
            for (job, f) in jobs.into_iter().zip(found.drain(..)) {
                let _ = job.reply.send(Ok(f));
            }
        }
        Err(e) => {
            for job in jobs {
                let _ = job.reply.send(Err(e.clone()));
            }
        }
    }
}

const READ_BATCH: &str = "
WITH req AS (
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[]) WITH ORDINALITY AS r(team_id, name, version, i)
), want AS MATERIALIZED (
    -- the version each read wants, settled before secret_versions is joined: otherwise the
    -- planner may look the version up by (team, name) alone and filter every version of it
    SELECT r.i, s.team_id, s.name, s.version AS sv, s.created_at AS sc, s.updated_at, s.updated_by,
           s.deleted_at, COALESCE(r.version, s.version) AS wv
    FROM req r
    JOIN secrets s ON s.team_id = r.team_id AND s.name = r.name AND s.deleted_at IS NULL
), found AS (
    SELECT w.i, w.name, w.sv, w.sc, w.updated_at, w.updated_by, w.deleted_at,
           v.version AS vv, v.data_key_version, v.ciphertext, v.created_at AS vc, v.created_by
    FROM want w
    JOIN secret_versions v ON v.team_id = w.team_id AND v.name = w.name AND v.version = w.wv
), logged AS (
    INSERT INTO audit (at, key_id, role, action, team, name, version, outcome, client, flow_run, task)
    SELECT a.at, a.key_id, a.role, a.action, a.team, a.name, f.vv,
           CASE WHEN f.i IS NULL THEN 'not_found' ELSE a.outcome END, a.client, a.flow_run, a.task
    FROM unnest($4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                $11::text[], $12::text[], $13::text[])
         WITH ORDINALITY AS a(at, key_id, role, action, team, name, outcome, client, flow_run, task, i)
    LEFT JOIN found f ON f.i = a.i
    ORDER BY a.i
)
SELECT name, sv, sc, updated_at, updated_by, deleted_at, vv, data_key_version, ciphertext, vc, created_by, i
FROM found";

async fn read_batch(pool: &Pool, jobs: &[ReadJob]) -> Result<Vec<Found>> {
    let c = pool.get().await.map_err(pool_error)?;
    let team_id: Vec<i64> = jobs.iter().map(|j| j.team_id).collect();
    let name: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
    let version: Vec<Option<i64>> = jobs.iter().map(|j| j.version).collect();
    let at: Vec<i64> = jobs.iter().map(|j| j.audit.at).collect();
    let text =
        |f: fn(&AuditRow) -> Option<&str>| jobs.iter().map(|j| f(&j.audit)).collect::<Vec<_>>();
    let key_id = text(|a| Some(&a.key_id));
    let role = text(|a| a.role.map(Role::as_str));
    let action = text(|a| Some(a.action.as_str()));
    let team = text(|a| Some(&a.team));
    let audit_name = text(|a| a.name.as_deref());
    let outcome = text(|a| Some(a.outcome.as_str()));
    let client = text(|a| Some(&a.client));
    let flow_run = text(|a| a.flow_run.as_deref());
    let task = text(|a| a.task.as_deref());
    let st = c.prepare_cached(READ_BATCH).await.map_err(pg)?;
    let rows = c
        .query(
            &st,
            &[
                &team_id,
                &name,
                &version,
                &at,
                &key_id,
                &role,
                &action,
                &team,
                &audit_name,
                &outcome,
                &client,
                &flow_run,
                &task,
            ],
        )
        .await
        .map_err(pg)?;
    let mut found: Vec<Found> = (0..jobs.len()).map(|_| None).collect();
    for r in rows {
        let i: i64 = r.get(11);
        let slot = usize::try_from(i - 1)
            .ok()
            .and_then(|i| found.get_mut(i))
            .ok_or_else(|| StoreError::backend(format!("batch read returned row {i}")))?;
        *slot = Some(found_row(&r));
    }
    Ok(found)
}

/// One statement for any number of records: arrays unnested into rows.
async fn insert_audit_batch(pool: &Pool, rows: &[&AuditRow]) -> Result<()> {
    let c = pool.get().await.map_err(pool_error)?;
    let col = |f: &dyn Fn(&AuditRow) -> Option<String>| {
        rows.iter().map(|r| f(r)).collect::<Vec<Option<String>>>()
    };
    let at: Vec<i64> = rows.iter().map(|r| r.at).collect();
    let version: Vec<Option<i64>> = rows.iter().map(|r| r.version).collect();
    let key_id = col(&|r| Some(r.key_id.clone()));
    let role = col(&|r| r.role.map(|x| x.as_str().to_owned()));
    let action = col(&|r| Some(r.action.as_str().to_owned()));
    let team = col(&|r| Some(r.team.clone()));
    let name = col(&|r| r.name.clone());
    let outcome = col(&|r| Some(r.outcome.as_str().to_owned()));
    let client = col(&|r| Some(r.client.clone()));
    let flow_run = col(&|r| r.flow_run.clone());
    let task = col(&|r| r.task.clone());
    let target = col(&|r| r.target.clone());
    let st = c
        .prepare_cached(
            "INSERT INTO audit (at, key_id, role, action, team, name, version, outcome, client, flow_run, task, target)
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                                  $7::bigint[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])",
        )
        .await
        .map_err(pg)?;
    c.execute(
        &st,
        &[
            &at, &key_id, &role, &action, &team, &name, &version, &outcome, &client, &flow_run,
            &task, &target,
        ],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

type Param<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);
type Params<'a> = [Param<'a>];

/// Runs `sql` as a statement prepared once per connection (a plain `execute` of a string
/// prepares it again each time: a second round trip and a second parse).
async fn execute_cached(
    c: &impl deadpool_postgres::GenericClient,
    sql: &str,
    params: &Params<'_>,
) -> Result<u64> {
    let st = c.prepare_cached(sql).await.map_err(pg)?;
    c.execute(&st, params).await.map_err(pg)
}

/// As [`execute_cached`], for a query.
async fn query_cached(
    c: &impl deadpool_postgres::GenericClient,
    sql: &str,
    params: &Params<'_>,
) -> Result<Vec<tokio_postgres::Row>> {
    let st = c.prepare_cached(sql).await.map_err(pg)?;
    c.query(&st, params).await.map_err(pg)
}

/// As [`execute_cached`], for a query of at most one row.
async fn query_opt_cached(
    c: &impl deadpool_postgres::GenericClient,
    sql: &str,
    params: &Params<'_>,
) -> Result<Option<tokio_postgres::Row>> {
    let st = c.prepare_cached(sql).await.map_err(pg)?;
    c.query_opt(&st, params).await.map_err(pg)
}

const AUDIT_INSERT: &str = "INSERT INTO audit (at, key_id, role, action, team, name, version, outcome, client, flow_run, task, target)
                            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

async fn insert_audit(c: &impl deadpool_postgres::GenericClient, a: &AuditRow) -> Result<()> {
    execute_cached(
        c,
        AUDIT_INSERT,
        &[
            &a.at,
            &a.key_id,
            &a.role.map(Role::as_str),
            &a.action.as_str(),
            &a.team,
            &a.name,
            &a.version,
            &a.outcome.as_str(),
            &a.client,
            &a.flow_run,
            &a.task,
            &a.target,
        ],
    )
    .await?;
    Ok(())
}

const SECRET_COLS: &str = "name, version, created_at, updated_at, updated_by, deleted_at";
/// One secret's row by (team, name), [`SECRET_COLS`] spelled out (a `const` cannot `format!`).
const SELECT_SECRET: &str = "SELECT name, version, created_at, updated_at, updated_by, deleted_at FROM secrets WHERE team_id = $1 AND name = $2";
const KEY_SELECT: &str = "SELECT k.id, k.team_id, t.name, k.role, k.hash, k.name, k.bootstrap, k.created_at, k.created_by, k.revoked_at
                          FROM api_keys k JOIN teams t ON t.id = k.team_id";

fn secret_row(r: &tokio_postgres::Row) -> SecretRow {
    SecretRow {
        name: r.get(0),
        version: r.get(1),
        created_at: r.get(2),
        updated_at: r.get(3),
        updated_by: r.get(4),
        deleted_at: r.get(5),
    }
}

/// A secret and one of its versions: the secret's columns, then `version, data_key_version,
/// ciphertext, created_at, created_by` of the version.
fn found_row(r: &tokio_postgres::Row) -> (SecretRow, VersionRow) {
    (
        secret_row(r),
        VersionRow {
            version: r.get(6),
            data_key_version: r.get(7),
            ciphertext: r.get(8),
            created_at: r.get(9),
            created_by: r.get(10),
        },
    )
}

fn key_row(r: &tokio_postgres::Row) -> Result<KeyRow> {
    Ok(KeyRow {
        id: r.get(0),
        team_id: r.get(1),
        team_name: r.get(2),
        role: crate::model::parse_role(r.get::<_, &str>(3))?,
        hash: r.get(4),
        name: r.get(5),
        bootstrap: r.get(6),
        created_at: r.get(7),
        created_by: r.get(8),
        revoked_at: r.get(9),
    })
}

fn data_key_row(r: &tokio_postgres::Row) -> DataKeyRow {
    DataKeyRow {
        team_id: r.get(0),
        version: r.get(1),
        master_key_id: r.get(2),
        wrapped: r.get(3),
        created_at: r.get(4),
    }
}

async fn read_secret(
    c: &impl deadpool_postgres::GenericClient,
    team_id: i64,
    name: &str,
    version: Option<i64>,
) -> Result<Option<(SecretRow, VersionRow)>> {
    // one round trip: the live secret joined with the version asked for (its latest by default)
    // a statement prepared once per connection: one round trip per read, not two
    let st = c
        .prepare_cached(
            "SELECT s.name, s.version, s.created_at, s.updated_at, s.updated_by, s.deleted_at,
                    v.version, v.data_key_version, v.ciphertext, v.created_at, v.created_by
             FROM secrets s JOIN secret_versions v
               ON v.team_id = s.team_id AND v.name = s.name AND v.version = COALESCE($3, s.version)
             WHERE s.team_id = $1 AND s.name = $2 AND s.deleted_at IS NULL",
        )
        .await
        .map_err(pg)?;
    let row = c
        .query_opt(&st, &[&team_id, &name, &version])
        .await
        .map_err(pg)?;
    Ok(row.as_ref().map(found_row))
}

#[async_trait::async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<()> {
        self.client()
            .await?
            .execute("SELECT 1", &[])
            .await
            .map_err(pg)?;
        Ok(())
    }

    async fn is_empty(&self) -> Result<bool> {
        let c = self.client().await?;
        Ok(c.query_one("SELECT NOT EXISTS (SELECT 1 FROM teams)", &[])
            .await
            .map_err(pg)?
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
        let tx = c.transaction().await.map_err(pg)?;
        let inserted = tx
            .query_opt(
                "INSERT INTO teams (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING id",
                &[&name, &at],
            )
            .await
            .map_err(pg)?;
        let Some(row) = inserted else {
            return Err(StoreError::Exists(format!("team {name:?}")));
        };
        let id: i64 = row.get(0);
        tx.execute(
            "INSERT INTO data_keys (team_id, version, master_key_id, wrapped, created_at) VALUES ($1, $2, $3, $4, $5)",
            &[&id, &data_key.version, &data_key.master_key_id, &data_key.wrapped, &data_key.created_at],
        )
        .await
        .map_err(pg)?;
        if let Some(k) = first_key {
            tx.execute(
                "INSERT INTO api_keys (id, team_id, role, hash, name, bootstrap, created_at, created_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[&k.id, &id, &k.role.as_str(), &k.hash, &k.name, &k.bootstrap, &k.created_at, &k.created_by],
            )
            .await
            .map_err(pg)?;
        }
        insert_audit(&tx, &audit).await?;
        tx.commit().await.map_err(pg)?;
        Ok(Team {
            id,
            name: name.to_owned(),
            created_at: at,
        })
    }

    async fn team(&self, name: &str) -> Result<Option<Team>> {
        let c = self.client().await?;
        Ok(c.query_opt(
            "SELECT id, name, created_at FROM teams WHERE name = $1",
            &[&name],
        )
        .await
        .map_err(pg)?
        .map(|r| Team {
            id: r.get(0),
            name: r.get(1),
            created_at: r.get(2),
        }))
    }

    async fn list_teams(&self) -> Result<Vec<Team>> {
        let c = self.client().await?;
        Ok(
            c.query("SELECT id, name, created_at FROM teams ORDER BY name", &[])
                .await
                .map_err(pg)?
                .iter()
                .map(|r| Team {
                    id: r.get(0),
                    name: r.get(1),
                    created_at: r.get(2),
                })
                .collect(),
        )
    }

    async fn data_keys(&self, team_id: i64) -> Result<Vec<DataKeyRow>> {
        let c = self.client().await?;
        Ok(c.query(
            "SELECT team_id, version, master_key_id, wrapped, created_at FROM data_keys WHERE team_id = $1 ORDER BY version",
            &[&team_id],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(data_key_row)
        .collect())
    }

    async fn all_data_keys(&self) -> Result<Vec<DataKeyRow>> {
        let c = self.client().await?;
        Ok(c.query(
            "SELECT team_id, version, master_key_id, wrapped, created_at FROM data_keys ORDER BY team_id, version",
            &[],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(data_key_row)
        .collect())
    }

    async fn rewrap_data_keys(&self, rows: Vec<DataKeyRow>) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        for r in rows {
            let n = tx
                .execute(
                    "UPDATE data_keys SET master_key_id = $1, wrapped = $2 WHERE team_id = $3 AND version = $4",
                    &[&r.master_key_id, &r.wrapped, &r.team_id, &r.version],
                )
                .await
                .map_err(pg)?;
            if n != 1 {
                return Err(StoreError::NotFound(format!(
                    "data key {} of team {}",
                    r.version, r.team_id
                )));
            }
        }
        tx.commit().await.map_err(pg)
    }

    async fn put_secret(&self, put: PutSecret, mut audit: AuditRow) -> Result<SecretRow> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        // One writer per (team, name) across every replica. The lock and the read go out
        // together (pipelined) and PostgreSQL runs them in the order sent, so the read's
        // snapshot is taken once the lock is held. The order is made sure of: both statements
        // are prepared beforehand, so a future's first poll sends its statement, and `biased`
        // polls the lock's first (by default try_join! rotates which goes first, and the read,
        // overtaking the lock, saw versions another writer was replacing: the concurrent
        // writers test failed on a duplicate version)
        let team32 = put.team_id as i32;
        let lock: [Param<'_>; 2] = [&team32, &put.name];
        let key: [Param<'_>; 2] = [&put.team_id, &put.name];
        let lock_st = tx
            .prepare_cached("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .await
            .map_err(pg)?;
        let read_st = tx.prepare_cached(SELECT_SECRET).await.map_err(pg)?;
        let (_, current) = tokio::try_join!(
            biased;
            tx.execute(&lock_st, &lock),
            tx.query_opt(&read_st, &key),
        )
        .map_err(pg)?;
        let current = current.map(|r| secret_row(&r));
        let live_version = current
            .as_ref()
            .filter(|r| r.deleted_at.is_none())
            .map_or(0, |r| r.version);
        if let Some(cas) = put.cas
            && cas != live_version
        {
            return Err(StoreError::Conflict {
                current: live_version,
            });
        }
        let version = current.as_ref().map_or(0, |r| r.version) + 1;
        let created_at = current.as_ref().map_or(put.at, |r| r.created_at);
        let ciphertext = (put.seal)(version).map_err(StoreError::backend)?;
        audit.version = Some(version);
        // the version, the secret's row and the audit record, pipelined too: when one fails, the
        // transaction is aborted, the ones after it fail with it and nothing is committed
        let version_row: [Param<'_>; 7] = [
            &put.team_id,
            &put.name,
            &version,
            &put.data_key_version,
            &ciphertext,
            &put.at,
            &put.by,
        ];
        let secret_row_params: [Param<'_>; 6] = [
            &put.team_id,
            &put.name,
            &version,
            &created_at,
            &put.at,
            &put.by,
        ];
        tokio::try_join!(
            execute_cached(
                &tx,
                "INSERT INTO secret_versions (team_id, name, version, data_key_version, ciphertext, created_at, created_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &version_row,
            ),
            execute_cached(
                &tx,
                "INSERT INTO secrets (team_id, name, version, created_at, updated_at, updated_by, deleted_at)
                 VALUES ($1, $2, $3, $4, $5, $6, NULL)
                 ON CONFLICT (team_id, name) DO UPDATE SET version = excluded.version,
                     updated_at = excluded.updated_at, updated_by = excluded.updated_by, deleted_at = NULL",
                &secret_row_params,
            ),
            insert_audit(&tx, &audit),
        )?;
        tx.commit().await.map_err(pg)?;
        Ok(SecretRow {
            name: put.name,
            version,
            created_at,
            updated_at: put.at,
            updated_by: put.by,
            deleted_at: None,
        })
    }

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
        self.reads
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
        Ok(query_cached(
            &c,
            &format!(
                "SELECT {SECRET_COLS} FROM secrets
                 WHERE team_id = $1 AND deleted_at IS NULL AND name COLLATE \"C\" >= $2 AND name COLLATE \"C\" < $3
                   AND name COLLATE \"C\" > $4
                 ORDER BY name COLLATE \"C\" LIMIT $5"
            ),
            &[&team_id, &prefix, &upper, &after, &(limit as i64)],
        )
        .await?
        .iter()
        .map(secret_row)
        .collect())
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
        Ok(query_cached(
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
        .map(secret_row)
        .collect())
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
            .map(|r| secret_row(&r))
        else {
            return Ok(None);
        };
        let versions = query_cached(
            &c,
            "SELECT version, data_key_version, created_at, created_by FROM secret_versions
                 WHERE team_id = $1 AND name = $2 AND version < $3 ORDER BY version DESC LIMIT $4",
            &[
                &team_id,
                &name,
                &before.unwrap_or(i64::MAX),
                &i64::from(limit),
            ],
        )
        .await?
        .iter()
        .map(|r| VersionRow {
            version: r.get(0),
            data_key_version: r.get(1),
            ciphertext: Vec::new(),
            created_at: r.get(2),
            created_by: r.get(3),
        })
        .collect();
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
        self.update_audited(sql, &[&at, &audit.key_id, &team_id, &name], &audit)
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
        let tx = c.transaction().await.map_err(pg)?;
        let row = query_opt_cached(
            &tx,
            &format!(
                "UPDATE secrets SET deleted_at = NULL, updated_at = $1, updated_by = $2
                 WHERE team_id = $3 AND name = $4 AND deleted_at IS NOT NULL RETURNING {SECRET_COLS}"
            ),
            &[&at, &audit.key_id, &team_id, &name],
        )
        .await?
        .map(|r| secret_row(&r));
        if row.is_some() {
            insert_audit(&tx, &audit).await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(row)
    }

    async fn create_key(&self, key: KeyRow, audit: AuditRow) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
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
                pg(e)
            }
        })?;
        insert_audit(&tx, &audit).await?;
        tx.commit().await.map_err(pg)
    }

    async fn create_session(&self, session: SessionRow, max_per_key: u32) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        tx.execute(
            "INSERT INTO web_sessions (id_hash, key_id, created_at, last_seen) VALUES ($1, $2, $3, $4)",
            &[&session.id_hash, &session.key_id, &session.created_at, &session.last_seen],
        )
        .await
        .map_err(pg)?;
        tx.execute(
            "DELETE FROM web_sessions WHERE key_id = $1 AND id_hash NOT IN \
             (SELECT id_hash FROM web_sessions WHERE key_id = $1 ORDER BY created_at DESC, id_hash LIMIT $2)",
            &[&session.key_id, &i64::from(max_per_key)],
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)
    }

    async fn session(&self, id_hash: &[u8]) -> Result<Option<SessionRow>> {
        let c = self.client().await?;
        Ok(query_opt_cached(
            &c,
            "SELECT id_hash, key_id, created_at, last_seen FROM web_sessions WHERE id_hash = $1",
            &[&id_hash],
        )
        .await?
        .map(|r| SessionRow {
            id_hash: r.get(0),
            key_id: r.get(1),
            created_at: r.get(2),
            last_seen: r.get(3),
        }))
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
            query_opt_cached(&c, &format!("{KEY_SELECT} WHERE k.id = $1"), &[&id])
                .await?
                .map(|r| key_row(&r))
                .transpose()?,
        )
    }

    async fn list_keys(&self, team_id: i64) -> Result<Vec<KeyRow>> {
        let c = self.client().await?;
        Ok(query_cached(
            &c,
            &format!("{KEY_SELECT} WHERE k.team_id = $1 ORDER BY k.created_at, k.id"),
            &[&team_id],
        )
        .await?
        .iter()
        .map(key_row)
        .collect::<Result<_>>()?)
    }

    async fn revoke_key(&self, team_id: i64, id: &str, at: i64, audit: AuditRow) -> Result<bool> {
        let sql = "UPDATE api_keys SET revoked_at = $1 WHERE team_id = $2 AND id = $3 AND revoked_at IS NULL";
        self.update_audited(sql, &[&at, &team_id, &id], &audit)
            .await
    }

    async fn append_audit(&self, rows: Vec<AuditRow>) -> Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.audit
            .send((rows, tx))
            .map_err(|_| StoreError::backend("the audit committer stopped"))?;
        rx.await
            .map_err(|_| StoreError::backend("the audit committer stopped"))?
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
            "SELECT id, at, key_id, role, action, team, name, version, outcome, client, flow_run, task, target
             FROM audit WHERE team = $1 AND id > $2 AND at >= $3 ORDER BY id LIMIT $4",
            &[&team, &after_id, &since, &(limit as i64)],
        )
        .await?
        .iter()
        .map(audit_row)
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
            "SELECT id, at, key_id, role, action, team, name, version, outcome, client, flow_run, task, target
             FROM audit WHERE team = $1 AND id < $2 AND at >= $3 ORDER BY id DESC LIMIT $4",
            &[&team, &before, &since, &(limit as i64)],
        )
        .await?
        .iter()
        .map(audit_row)
        .collect::<Result<_>>()?)
    }
}

/// An audit record of the audit queries' column list.
fn audit_row(r: &tokio_postgres::Row) -> Result<AuditRow> {
    Ok(AuditRow {
        id: r.get(0),
        at: r.get(1),
        key_id: r.get(2),
        role: r
            .get::<_, Option<&str>>(3)
            .map(crate::model::parse_role)
            .transpose()?,
        action: r.get::<_, &str>(4).parse()?,
        team: r.get(5),
        name: r.get(6),
        version: r.get(7),
        outcome: r.get::<_, &str>(8).parse()?,
        client: r.get(9),
        flow_run: r.get(10),
        task: r.get(11),
        target: r.get(12),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_database_nobody_answers_for_is_unreachable() {
        // port 1 on loopback: nothing listens, the connection is refused at once
        let err = PgStore::connect("postgres://postgres@127.0.0.1:1/test")
            .await
            .expect_err("nothing listens on port 1");
        assert_eq!(
            err.backend_kind(),
            Some(crate::BackendKind::Unreachable),
            "{err:?}"
        );
        let StoreError::Backend(b) = &err else {
            unreachable!()
        };
        assert!(b.cause().is_some(), "the client's error is kept");
        assert!(
            err.to_string().contains("cannot get a database connection"),
            "{err}"
        );
    }

    // regression: the pool's error said only "Error occurred while creating a new object: db
    // error", whatever the database's reason
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_connection_names_the_databases_reason() {
        let Some(base) = crate::test_support::postgres_url("PostgreSQL connection-error test")
        else {
            return;
        };
        let server = base.split('?').next().unwrap_or(&base);
        let (server, _) = server.rsplit_once('/').expect("the URL names a database");
        let err = PgStore::connect(&format!("{server}/sigil_no_such_database"))
            .await
            .expect_err("the database does not exist");
        let StoreError::Backend(b) = err else {
            panic!("{err:?}");
        };
        assert_eq!(b.code(), Some("3D000"));
        let message = b.to_string();
        assert!(
            message.starts_with("cannot get a database connection: ")
                && message.contains("\"sigil_no_such_database\" does not exist (3D000)"),
            "{message}"
        );
    }

    #[test]
    fn pool_size_is_taken_out_of_the_url() {
        let base = "postgres://u@h:5432/db";
        assert_eq!(
            pool_size(base).unwrap(),
            (base.to_owned(), DEFAULT_POOL_SIZE)
        );
        assert_eq!(
            pool_size(&format!("{base}?pool_size=8")).unwrap(),
            (base.to_owned(), 8)
        );
        assert_eq!(
            pool_size(&format!(
                "{base}?sslmode=disable&pool_size=1000&options=-cx%3Dy"
            ))
            .unwrap(),
            (format!("{base}?sslmode=disable&options=-cx%3Dy"), 1000)
        );
        for bad in ["0", "1001", "", "eight", "-1"] {
            let err = pool_size(&format!("{base}?pool_size={bad}")).unwrap_err();
            assert_eq!(
                err,
                StoreError::InvalidUrl(format!(
                    "pool_size must be a number from 1 to 1000, not {bad:?}"
                ))
            );
        }
    }

    #[test]
    fn select_secret_reads_the_secret_columns() {
        assert_eq!(
            SELECT_SECRET,
            format!("SELECT {SECRET_COLS} FROM secrets WHERE team_id = $1 AND name = $2")
        );
    }

    // regression: the batched read looked versions up by (team, name) and filtered every
    // version of the secret; with the wanted version settled first it is one index probe
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_batched_read_finds_a_version_by_its_whole_key() {
        let Some(base) = crate::test_support::postgres_url("PostgreSQL plan test") else {
            return;
        };
        let url = crate::test_support::fresh_schema(&base, "sigil_plan_test").await;
        let store = PgStore::connect(&url).await.unwrap();
        let c = store.client().await.unwrap();
        c.batch_execute(
            "INSERT INTO teams (name, created_at) VALUES ('t', 0);
             INSERT INTO secrets (team_id, name, version, created_at, updated_at, updated_by)
                 SELECT id, 'hot', 2000, 0, 0, 'k' FROM teams;
             INSERT INTO secret_versions (team_id, name, version, data_key_version, ciphertext, created_at, created_by)
                 SELECT t.id, 'hot', g, 1, '\\x00', 0, 'k' FROM teams t, generate_series(1, 2000) g;
             ANALYZE",
        )
        .await
        .unwrap();
        let team_id: i64 = c
            .query_one("SELECT id FROM teams", &[])
            .await
            .unwrap()
            .get(0);
        let st = c
            .prepare(&format!(
                "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {READ_BATCH}"
            ))
            .await
            .unwrap();
        let text: Vec<Option<&str>> = vec![Some("x")];
        let none: Vec<Option<&str>> = vec![None];
        let plan: Vec<String> = c
            .query(
                &st,
                &[
                    &vec![team_id],
                    &vec!["hot"],
                    &vec![None::<i64>],
                    &vec![0i64],
                    &text,
                    &none,
                    &text,
                    &text,
                    &none,
                    &text,
                    &text,
                    &none,
                    &none,
                ],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let plan = plan.join("\n");
        assert!(plan.contains("version = w.wv"), "{plan}");
        assert!(!plan.contains("Rows Removed by Join Filter"), "{plan}");
    }
}
