//! The PostgreSQL store: any number of stateless server replicas share one database.
//!
//! Each request runs in its own transaction on a pooled connection; PostgreSQL flushes the WAL of
//! concurrent commits together. Migrations take a transaction-scoped advisory lock, so replicas
//! that start together apply them once. Writes to one secret are serialised by an advisory lock
//! on (team, name), so versions never collide across replicas.

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolConfig, QueueMode, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use crate::model::{
    AuditOutcome, AuditRow, DataKeyRow, KeyRow, KvConfig, PutSecret, Role, SecretRow, SessionRow,
    SettingsChange, Team, VersionChange, VersionRow, Written,
};
use crate::rows::{self, SECRET_COLS};
use crate::{BackendError, Result, Store, StoreError};

mod batch;
mod store;
#[cfg(test)]
mod tests;
mod versions;

use batch::*;

const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_init.sql"),
    include_str!("../../migrations/postgres/0002_audit_target.sql"),
    include_str!("../../migrations/postgres/0003_web_sessions.sql"),
    include_str!("../../migrations/postgres/0004_audit_via.sql"),
    include_str!("../../migrations/postgres/0005_version_state.sql"),
    include_str!("../../migrations/postgres/0006_names_in_byte_order.sql"),
];
/// The advisory lock that serialises migrations ("sigilmig" in ASCII).
const MIGRATION_LOCK: i64 = 0x7369_6769_6c6d_6967;

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

/// How many connections one store keeps to PostgreSQL: Sigil's own parameters of the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PoolParams {
    /// `pool_size=N`: the most open at once ([`DEFAULT_POOL_SIZE`] when absent).
    size: usize,
    /// `pool_min=N`: how many are opened when the store connects, before any request needs
    /// them (none when absent; at most `size`). The pool otherwise opens a connection when
    /// every open one is busy and keeps it, so under bursts it grows to `size` and its
    /// descriptors and memory with it; `pool_min=size` opens them all at once.
    min: usize,
}

/// Takes Sigil's own `pool_size=N` and `pool_min=N` parameters out of a PostgreSQL URL
/// (PostgreSQL's client would refuse them as unknown) and returns the rest of the URL and
/// them.
fn pool_params(url: &str) -> Result<(String, PoolParams)> {
    let mut params = PoolParams {
        size: DEFAULT_POOL_SIZE,
        min: 0,
    };
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), params));
    };
    let number = |name: &str, n: &str, low: usize, high: usize| {
        n.parse()
            .ok()
            .filter(|n| (low..=high).contains(n))
            .ok_or_else(|| {
                StoreError::InvalidUrl(format!(
                    "{name} must be a number from {low} to {high}, not {n:?}"
                ))
            })
    };
    let mut rest = Vec::new();
    let mut min = None;
    for param in query.split('&') {
        if let Some(n) = param.strip_prefix("pool_size=") {
            params.size = number("pool_size", n, 1, MAX_POOL_SIZE)?;
        } else if let Some(n) = param.strip_prefix("pool_min=") {
            min = Some(n);
        } else {
            rest.push(param);
        }
    }
    // checked once the size is known, wherever in the query each one is
    if let Some(n) = min {
        params.min = number("pool_min", n, 0, params.size)?;
    }
    Ok(if rest.is_empty() {
        (base.to_owned(), params)
    } else {
        (format!("{base}?{}", rest.join("&")), params)
    })
}

/// The PostgreSQL store.
pub struct PgStore {
    pool: Pool,
    /// The connection the batches of audited reads run on, one batch at a time (one of
    /// `pool_size`; `None` with a `pool_size` of 1, when they share `pool`). Its session plans
    /// the batch's statement once (`plan_cache_mode = force_generic_plan`) and anew each
    /// [`REPLAN_EVERY`]: left to choose, PostgreSQL planned it for every batch once the tables
    /// were large (0.2–0.4 ms of a lone read), or kept a plan made while they were small.
    reads: Option<Pool>,
    audit: tokio::sync::mpsc::UnboundedSender<AuditJob>,
    read_jobs: tokio::sync::mpsc::UnboundedSender<ReadJob>,
    timings: std::sync::Arc<crate::StoreTimings>,
}

/// A pool of at most `size` connections that hands out the connection used last (a few hot
/// server processes at low concurrency rather than every one in turn: a lone read took 0.6
/// ms longer once 64 had been opened and were taken in turn, bench/README.md).
fn lifo_pool(pg: tokio_postgres::Config, size: usize) -> Result<Pool> {
    let manager = Manager::from_config(pg, NoTls, ManagerConfig::default());
    let mut config = PoolConfig::new(size);
    config.queue_mode = QueueMode::Lifo;
    Pool::builder(manager)
        .config(config)
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|e| StoreError::backend(format!("cannot make a connection pool: {e}")))
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
        let (url, params) = pool_params(url)?;
        let pg: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| {
            // the client's own message is only "invalid connection string"; its cause says
            // which part ("invalid value for option `port`")
            let why = std::error::Error::source(&e).map_or(String::new(), |c| format!(": {c}"));
            StoreError::InvalidUrl(format!("{e}{why}"))
        })?;
        // the reads' connection is one of pool_size, when there are two or more
        let reads = if params.size >= 2 {
            let mut pg = pg.clone();
            let options = match pg.get_options() {
                Some(o) => format!("{o} -c plan_cache_mode=force_generic_plan"),
                None => "-c plan_cache_mode=force_generic_plan".to_owned(),
            };
            pg.options(&options);
            Some(lifo_pool(pg, 1)?)
        } else {
            None
        };
        let pool = lifo_pool(pg, params.size - usize::from(reads.is_some()))?;
        let (audit, audit_rx) = tokio::sync::mpsc::unbounded_channel();
        let (read_jobs, reads_rx) = tokio::sync::mpsc::unbounded_channel();
        let store = PgStore {
            pool: pool.clone(),
            reads,
            audit,
            read_jobs,
            timings: Default::default(),
        };
        migrate(&mut store.client().await?).await?;
        match &store.reads {
            Some(reads) if params.min > 0 => {
                open_connections(reads, 1).await?;
                open_connections(&store.pool, params.min - 1).await?;
            }
            _ => open_connections(&store.pool, params.min).await?,
        }
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
                store.timings.clone(),
            ));
        }
        // the one committer of reads drops the reads' connection's plans once each REPLAN_EVERY
        let mut next_replan = std::time::Instant::now() + REPLAN_EVERY;
        tokio::spawn(committer(
            store.reads.clone().unwrap_or(pool),
            reads_rx,
            |_: &ReadJob| 1,
            move |pool, jobs| {
                let now = std::time::Instant::now();
                let replan = now >= next_replan;
                if replan {
                    next_replan = now + REPLAN_EVERY;
                }
                commit_reads(pool, jobs, replan)
            },
            store.timings.clone(),
        ));
        Ok(store)
    }

    /// The pools' connections now: open (idle or in use) and the most they may open.
    pub fn connections(&self) -> crate::Connections {
        let mut c = crate::Connections {
            open: 0,
            idle: 0,
            max: 0,
        };
        for pool in std::iter::once(&self.pool).chain(&self.reads) {
            let s = pool.status();
            c.open += s.size;
            c.idle += s.available;
            c.max += s.max_size;
        }
        c
    }

    async fn client(&self) -> Result<deadpool_postgres::Client> {
        self.pool.get().await.map_err(pool_error)
    }
}

/// Opens connections until `pool` holds `n` (all held at once, so that each `get` past the idle
/// ones opens a new one; concurrently, so that start waits for about one).
async fn open_connections(pool: &Pool, n: usize) -> Result<()> {
    let mut opening = tokio::task::JoinSet::new();
    for _ in 0..n {
        let pool = pool.clone();
        opening.spawn(async move { pool.get().await });
    }
    let mut held = Vec::with_capacity(n);
    while let Some(got) = opening.join_next().await {
        let got = got.map_err(|e| StoreError::backend(format!("opening a connection: {e}")))?;
        held.push(got.map_err(pool_error)?);
    }
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
    let st = c.prepare_cached(sql).await?;
    c.execute(&st, params).await.map_err(StoreError::from)
}

/// As [`execute_cached`], for a query.
async fn query_cached(
    c: &impl deadpool_postgres::GenericClient,
    sql: &str,
    params: &Params<'_>,
) -> Result<Vec<tokio_postgres::Row>> {
    let st = c.prepare_cached(sql).await?;
    c.query(&st, params).await.map_err(StoreError::from)
}

/// As [`execute_cached`], for a query of at most one row.
async fn query_opt_cached(
    c: &impl deadpool_postgres::GenericClient,
    sql: &str,
    params: &Params<'_>,
) -> Result<Option<tokio_postgres::Row>> {
    let st = c.prepare_cached(sql).await?;
    c.query_opt(&st, params).await.map_err(StoreError::from)
}

/// One secret's row by (team, name).
const SELECT_SECRET: &str = concat!(
    "SELECT ",
    rows::secret_cols!(),
    " FROM secrets WHERE team_id = $1 AND name = $2"
);

const AUDIT_INSERT: &str = "INSERT INTO audit (at, key_id, role, action, team, name, version, outcome, client, flow_run, task, target, via, agent)
                            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";

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
            &a.via,
            &a.agent,
        ],
    )
    .await?;
    Ok(())
}

#[cfg(any(test, feature = "test-support"))]
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
            concat!(
                "SELECT ",
                rows::found_cols!(),
                " FROM secrets s JOIN secret_versions v
                   ON v.team_id = s.team_id AND v.name = s.name AND v.version = COALESCE($3, s.version)
                 WHERE s.team_id = $1 AND s.name = $2 AND s.deleted_at IS NULL"
            ),
        )
        .await?;
    let row = c.query_opt(&st, &[&team_id, &name, &version]).await?;
    row.as_ref().map(rows::found).transpose()
}

/// One UPDATE of at most one row and, when it changed one, its audit record, in one
/// transaction. `false` when no row matched.
async fn update_audited(
    c: &mut deadpool_postgres::Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    audit: &AuditRow,
) -> Result<bool> {
    let tx = c.transaction().await?;
    let n = execute_cached(&tx, sql, params).await?;
    if n == 1 {
        insert_audit(&tx, audit).await?;
    }
    tx.commit().await?;
    Ok(n == 1)
}

/// Brings the schema up to date, once for replicas that start together.
async fn migrate(c: &mut deadpool_postgres::Client) -> Result<()> {
    let tx = c.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS sigil_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        .await?;
    let current: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM sigil_migrations",
            &[],
        )
        .await?
        .get(0);
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tracing::info!(version = i + 1, "applying PostgreSQL migration");
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO sigil_migrations (version) VALUES ($1)",
            &[&((i + 1) as i32)],
        )
        .await?;
    }
    tx.commit().await.map_err(StoreError::from)
}
