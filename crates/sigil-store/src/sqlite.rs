//! The embedded store: one SQLite file in WAL mode, served by one process (a lock file keeps a
//! second server off it).
//!
//! Writes go to one writer thread through an inbox. The writer takes every write waiting,
//! applies each inside one transaction — a change in a savepoint of its own; audit records, the
//! hottest write, with multi-row inserts that need none; a read of a value (with its audit
//! record) on the writer's own connection, through its cache of the latest versions — and
//! commits. Durability is pipelined: a commit only writes the WAL (`synchronous = NORMAL` on the
//! writer's connection); a syncer thread then `fdatasync`s the WAL file and only then answers the
//! group's callers. While that sync is in flight, new writes gather in the inbox without waking
//! the writer; when it is done, the writer takes them all, so every fsync covers everything
//! that arrived during the previous one. (Checkpoints keep their own syncs: with `NORMAL`,
//! SQLite syncs the WAL before a checkpoint and the database file after it.)
//!
//! Other reads run on a small pool of reader connections. Reads of metadata (lists, histories,
//! keys, the audit log) wait, when a commit they may have seen is still being synced, until it is
//! durable, so no read shows what a crash could take back; a batch read of values is followed by
//! its audit records, whose sync covers the versions read.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{oneshot, watch};

use crate::model::{
    AuditOutcome, AuditRow, DataKeyRow, KeyRow, PutSecret, Role, SecretRow, SessionRow, Team,
    VersionRow,
};
use crate::{Result, Store, StoreError};

const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/0001_init.sql"),
    include_str!("../migrations/sqlite/0002_audit_blocks.sql"),
    include_str!("../migrations/sqlite/0003_audit_target.sql"),
    include_str!("../migrations/sqlite/0004_web_sessions.sql"),
];
/// The columns of an audit record, in the order [`audit_row`] reads them.
const AUDIT_COLS: &str =
    "id, at, key_id, role, action, team, name, version, outcome, client, flow_run, task, target";

/// Ends a key's sessions past the newest N (?2).
const SESSIONS_OVER_CAP: &str = "DELETE FROM web_sessions WHERE key_id = ?1 AND id_hash NOT IN \
     (SELECT id_hash FROM web_sessions WHERE key_id = ?1 ORDER BY created_at DESC, id_hash LIMIT ?2)";

/// A page of a team's audit records after `cursor` (oldest first) or before it (`newest`): the
/// team's blocks of ids from the cursor on, walked as needed, then each block's records — a scan
/// of at most 1024 rows per block the team has records in, and only the blocks the page is in.
fn audit_page(
    c: &Connection,
    team: &str,
    cursor: i64,
    since: i64,
    limit: u32,
    newest: bool,
) -> Result<Vec<AuditRow>> {
    let (blocks_sql, order, first_block) = if newest {
        (
            "SELECT block FROM audit_blocks WHERE team = ?1 AND block <= ?2 ORDER BY block DESC",
            "DESC",
            cursor.saturating_sub(1).max(0) >> AUDIT_BLOCK_BITS,
        )
    } else {
        (
            "SELECT block FROM audit_blocks WHERE team = ?1 AND block >= ?2 ORDER BY block",
            "",
            cursor.max(0) >> AUDIT_BLOCK_BITS,
        )
    };
    let mut blocks = c.prepare_cached(blocks_sql).map_err(backend)?;
    let mut records = c
        .prepare_cached(&format!(
            "SELECT {AUDIT_COLS} FROM audit WHERE id >= ?1 AND id < ?2 AND team = ?3 AND at >= ?4 \
             ORDER BY id {order} LIMIT ?5"
        ))
        .map_err(backend)?;
    let blocks = blocks
        .query_map(params![team, first_block], |r| r.get::<_, i64>(0))
        .map_err(backend)?;
    let mut out = Vec::new();
    for block in blocks {
        let block = block.map_err(backend)?;
        let left = u64::from(limit).saturating_sub(out.len() as u64);
        if left == 0 {
            break;
        }
        let (lo, hi) = (block << AUDIT_BLOCK_BITS, (block + 1) << AUDIT_BLOCK_BITS);
        let (from, to) = if newest {
            (lo, hi.min(cursor))
        } else {
            (lo.max(cursor.saturating_add(1)), hi)
        };
        let rows = records
            .query_map(params![from, to, team, since, left], audit_row)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(backend)?;
        out.extend(rows);
    }
    Ok(out)
}

/// A key's role column.
fn role_column(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Role> {
    let text: String = r.get(i)?;
    crate::model::parse_role(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// A column of an enum stored as text; an unknown text is a conversion error naming it.
fn text_column<T: std::str::FromStr<Err = StoreError>>(
    r: &rusqlite::Row<'_>,
    i: usize,
) -> rusqlite::Result<T> {
    r.get::<_, String>(i)?.parse().map_err(|e: StoreError| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// The values of one audit record in an INSERT.
const AUDIT_PARAMS: usize = 12;

/// An audit record of a row of [`AUDIT_COLS`].
fn audit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok(AuditRow {
        id: r.get(0)?,
        at: r.get(1)?,
        key_id: r.get(2)?,
        role: r
            .get::<_, Option<String>>(3)?
            .map(|t| {
                crate::model::parse_role(&t).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        3,
                        rusqlite::types::Type::Text,
                        Box::new(e),
                    )
                })
            })
            .transpose()?,
        action: text_column(r, 4)?,
        team: r.get(5)?,
        name: r.get(6)?,
        version: r.get(7)?,
        outcome: text_column(r, 8)?,
        client: r.get(9)?,
        flow_run: r.get(10)?,
        task: r.get(11)?,
        target: r.get(12)?,
    })
}

/// Audit ids per block of the block-range index `audit_blocks` is `1 << AUDIT_BLOCK_BITS`.
const AUDIT_BLOCK_BITS: u32 = 10;
const MAX_BATCH: usize = 512;
const READERS: usize = 8;

type Deliver = Box<dyn FnOnce(Result<()>) + Send>;
type Job = Box<dyn FnOnce(Option<&Connection>) -> Deliver + Send>;
/// Makes the WAL durable (`fdatasync` of the WAL file; tests put a probe around it).
type SyncWal = Box<dyn FnMut() -> std::io::Result<()> + Send>;
/// A commit handed to the syncer: its number and its callers.
type ToSync = (u64, Vec<Deliver>);

/// What the writer thread is handed.
enum Work {
    /// A change, run in a savepoint of its own.
    Job(Job),
    /// Audit records to append (the hottest write: one per secret read), and who waits for
    /// them. They need no closure and no savepoint: the records of a whole group go in with a
    /// few multi-row statements, each atomic by itself.
    Audit(Vec<AuditRow>, oneshot::Sender<Result<()>>),
    /// A read of a value and its audit record (the hottest request): the writer's connection
    /// reads it inside the open transaction, so the read needs no transaction of its own and
    /// always finds its pages cached, and the audit record goes in with the group's.
    Read(Box<AuditedRead>),
}

/// Where writes wait for the writer thread. While a commit is being synced the writer is not
/// woken for each new write: it takes all of them at once when the sync is done — one wake-up
/// per group, not one per request.
#[derive(Default)]
struct Inbox {
    state: Mutex<InboxState>,
    wake: std::sync::Condvar,
}

#[derive(Default)]
struct InboxState {
    work: Vec<Work>,
    /// A commit is being synced. One at a time: with two or three in flight, groups are smaller
    /// and the flushes contend in the device (audited reads at 64 connections measured 41 % and
    /// 39 % of `/healthz`, against 53 % with one; bench/README.md).
    syncing: bool,
    /// The outcome of the last sync, until the writer has seen it.
    synced: Option<Result<()>>,
    /// The store was dropped: commit what is open, wait for its sync, stop.
    stop: bool,
    /// The writer is waiting.
    waiting: bool,
    /// The writer thread is gone: new work is dropped at once (its caller hears of it).
    closed: bool,
}

impl Inbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, InboxState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, work: Work) {
        let mut s = self.lock();
        if s.closed {
            return;
        }
        s.work.push(work);
        let wake = s.waiting && !s.syncing;
        drop(s);
        if wake {
            self.wake.notify_one();
        }
    }

    /// From the syncer: the commit handed to it is durable, or the sync failed.
    fn synced(&self, outcome: Result<()>) {
        let mut s = self.lock();
        s.syncing = false;
        s.synced = Some(outcome);
        drop(s);
        self.wake.notify_one();
    }

    fn stop(&self) {
        self.lock().stop = true;
        self.wake.notify_one();
    }

    /// Waits until there is something to do and no sync is in flight; takes it.
    fn take(&self, batch: &mut Vec<Work>) -> (Option<Result<()>>, bool) {
        let mut s = self.lock();
        while s.syncing || (s.work.is_empty() && s.synced.is_none() && !s.stop) {
            s.waiting = true;
            s = self.wake.wait(s).unwrap_or_else(|p| p.into_inner());
            s.waiting = false;
        }
        let take = s.work.len().min(MAX_BATCH);
        batch.extend(s.work.drain(..take));
        (s.synced.take(), s.stop)
    }

    fn begin_sync(&self) {
        self.lock().syncing = true;
    }
}

/// Closes the inbox when the writer thread ends, however it ends: work still waiting is
/// dropped, so that no caller waits for an answer that will never come.
struct CloseOnExit(Arc<Inbox>);

impl Drop for CloseOnExit {
    fn drop(&mut self) {
        let work = {
            let mut s = self.0.lock();
            s.closed = true;
            std::mem::take(&mut s.work)
        };
        drop(work);
    }
}

/// What [`Work::Read`] carries.
struct AuditedRead {
    team_id: i64,
    name: String,
    version: Option<i64>,
    audit: AuditRow,
    reply: oneshot::Sender<Result<Option<(SecretRow, VersionRow)>>>,
}

/// How far commits have got: `committed` counts the commits begun, `durable` the last one
/// synced (all before it are durable too: commits are synced in order). `broken` after a
/// failed sync: nothing is written any more.
#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    committed: u64,
    durable: u64,
    broken: bool,
}

fn backend(e: rusqlite::Error) -> StoreError {
    e.into()
}

/// The SQLite store.
pub struct SqliteStore {
    path: PathBuf,
    /// Held (an exclusive `flock` of `<database>.lock`) for as long as the store is open
    /// (unlocked for maintenance).
    _lock: std::fs::File,
    inbox: Arc<Inbox>,
    readers: Mutex<Vec<Connection>>,
    progress: Arc<watch::Sender<Progress>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SqliteStore({})", self.path.display())
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.inbox.stop();
    }
}

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
    )?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tracing::info!(version = i + 1, "applying SQLite migration");
        tx.execute_batch(sql)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
    }
    tx.commit()
}

/// The writer thread's state.
struct Writer {
    conn: Connection,
    /// A transaction is open; `callers` wait for it.
    in_tx: bool,
    callers: Vec<Deliver>,
    inbox: Arc<Inbox>,
    /// Set after a failed sync: every later write fails with it.
    broken: Option<StoreError>,
    to_syncer: mpsc::Sender<ToSync>,
    progress: Arc<watch::Sender<Progress>>,
    latest: LatestVersions,
}

/// The latest version of each secret read lately (its ciphertext, as the database holds it),
/// by team and name, kept by the writer thread. The writer is the only one to change the
/// database (the lock file keeps any other server out), so this is never stale: every change
/// empties it, and so does a transaction that does not commit (reads inside it saw its rows).
#[derive(Default)]
struct LatestVersions {
    by_team:
        std::collections::HashMap<i64, std::collections::HashMap<String, (SecretRow, VersionRow)>>,
    len: usize,
}

impl LatestVersions {
    /// Enough for every secret a team's flows read; past it the cache starts again.
    const MAX: usize = 10_000;

    fn get(&self, team_id: i64, name: &str) -> Option<&(SecretRow, VersionRow)> {
        self.by_team.get(&team_id)?.get(name)
    }

    fn put(&mut self, team_id: i64, found: &(SecretRow, VersionRow)) {
        if self.len >= Self::MAX {
            self.clear();
        }
        let old = self
            .by_team
            .entry(team_id)
            .or_default()
            .insert(found.0.name.clone(), found.clone());
        if old.is_none() {
            self.len += 1;
        }
    }

    fn clear(&mut self) {
        self.by_team.clear();
        self.len = 0;
    }

    /// A latest-version read through the cache.
    fn read(
        &mut self,
        conn: &Connection,
        team_id: i64,
        name: &str,
    ) -> Result<Option<(SecretRow, VersionRow)>> {
        if let Some(hit) = self.get(team_id, name) {
            return Ok(Some(hit.clone()));
        }
        let found = read_secret(conn, team_id, name, None)?;
        if let Some(f) = &found {
            self.put(team_id, f);
        }
        Ok(found)
    }
}

impl Writer {
    fn run(sql: &Connection, statement: &str) -> Result<()> {
        sql.prepare_cached(statement)
            .and_then(|mut st| st.execute([]))
            .map(|_| ())
            .map_err(backend)
    }

    /// Opens the transaction if none is.
    fn begin(&mut self) -> Result<()> {
        if let Some(e) = &self.broken {
            return Err(e.clone());
        }
        if !self.in_tx {
            Self::run(&self.conn, "BEGIN IMMEDIATE")?;
            self.in_tx = true;
        }
        Ok(())
    }

    /// SQLite rolls a whole transaction back by itself on some errors (a full disk, an I/O
    /// error): then the callers of the open transaction must hear of it, not of a commit.
    fn check_still_open(&mut self) {
        if self.in_tx && self.conn.is_autocommit() {
            self.in_tx = false;
            self.latest.clear();
            let err = StoreError::backend("the transaction was rolled back by SQLite");
            for c in self.callers.drain(..) {
                c(Err(err.clone()));
            }
        }
    }

    /// Commits the open transaction (the WAL is written, not yet synced) and hands its callers
    /// to the syncer.
    fn commit(&mut self) {
        self.in_tx = false;
        let callers = std::mem::take(&mut self.callers);
        // counted before the commit: a read that sees this commit also sees the count
        let mut seq = 0;
        self.progress.send_modify(|p| {
            p.committed += 1;
            seq = p.committed;
        });
        let callers = match Self::run(&self.conn, "COMMIT") {
            Ok(()) => {
                tracing::trace!(writes = callers.len(), "group commit");
                callers
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                self.latest.clear();
                for c in callers {
                    c(Err(e.clone()));
                }
                // nothing of it became visible, but readers may wait for its number: a sync
                // with no callers moves the durable mark past it
                Vec::new()
            }
        };
        self.inbox.begin_sync();
        if let Err(mpsc::SendError((_, callers))) = self.to_syncer.send((seq, callers)) {
            let err = StoreError::backend("the syncer thread stopped");
            for c in callers {
                c(Err(err.clone()));
            }
            self.broken = Some(err.clone());
            self.inbox.synced(Err(err));
        }
    }
}

/// The writer thread: applies the writes waiting, commits them, and while their sync is in
/// flight lets the next ones gather.
fn writer_loop(mut w: Writer) {
    let _close = CloseOnExit(w.inbox.clone());
    let mut batch = Vec::new();
    let mut rows = Vec::new();
    let mut waiters = Vec::new();
    loop {
        let inbox = w.inbox.clone();
        let (synced, stop) = inbox.take(&mut batch);
        if let Some(Err(e)) = synced
            && w.broken.is_none()
        {
            tracing::error!(error = %e, "the SQLite WAL could not be synced: refusing every write from now on");
            w.broken = Some(e);
        }
        if stop && batch.is_empty() && !w.in_tx {
            return;
        }
        for work in batch.drain(..) {
            match work {
                Work::Job(job) => match w.begin() {
                    Ok(()) => {
                        // a change: any secret may be another version now, or gone
                        w.latest.clear();
                        let deliver = job(Some(&w.conn));
                        w.callers.push(deliver);
                        w.check_still_open();
                    }
                    Err(e) => job(None)(Err(e)),
                },
                Work::Audit(r, tx) => match w.begin() {
                    Ok(()) => {
                        rows.extend(r);
                        waiters.push(Box::new(move |r: Result<()>| {
                            let _ = tx.send(r);
                        }) as Deliver);
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                },
                Work::Read(read) => {
                    let AuditedRead {
                        team_id,
                        name,
                        version,
                        mut audit,
                        reply,
                    } = *read;
                    let found = w.begin().and_then(|()| match version {
                        None => w.latest.read(&w.conn, team_id, &name),
                        Some(_) => read_secret(&w.conn, team_id, &name, version),
                    });
                    match found {
                        Ok(found) => {
                            audit.version = found.as_ref().map(|(_, v)| v.version);
                            if found.is_none() {
                                audit.outcome = AuditOutcome::NotFound;
                            }
                            rows.push(audit);
                            waiters.push(Box::new(move |r: Result<()>| {
                                let _ = reply.send(r.map(|()| found));
                            }));
                        }
                        Err(e) => {
                            let _ = reply.send(Err(e));
                        }
                    }
                }
            }
        }
        if !rows.is_empty() {
            // all of the group's records or none: their callers are told one outcome
            match in_savepoint(&w.conn, |c| insert_audit_rows(c, &rows)) {
                Ok(()) => w.callers.append(&mut waiters),
                Err(e) => {
                    for waiter in waiters.drain(..) {
                        waiter(Err(e.clone()));
                    }
                }
            }
            rows.clear();
            w.check_still_open();
        }
        if w.in_tx {
            w.commit();
        }
    }
}

/// The syncer thread: makes each commit durable, answers its callers, then lets the writer
/// commit the next group.
fn syncer_loop(
    mut sync: SyncWal,
    wal: PathBuf,
    rx: mpsc::Receiver<ToSync>,
    inbox: Arc<Inbox>,
    progress: Arc<watch::Sender<Progress>>,
) {
    while let Ok((seq, callers)) = rx.recv() {
        let synced = sync().map_err(|e| {
            let why =
                crate::BackendError::io(&e).context(format_args!("cannot sync {}", wal.display()));
            StoreError::Backend(why)
        });
        // a sync covers every commit made before it began: commit `seq` and all before it
        progress.send_modify(|p| match synced {
            Ok(()) => p.durable = p.durable.max(seq),
            Err(_) => p.broken = true,
        });
        for c in callers {
            c(synced.clone());
        }
        inbox.synced(synced);
    }
}

/// Audit records go in up to this many rows per statement.
const AUDIT_CHUNK: usize = 32;

/// `INSERT INTO audit … VALUES (…), (…)` for 1 to [`AUDIT_CHUNK`] rows, built once; the writer
/// connection's statement cache keeps them prepared.
fn audit_insert_sql(rows: usize) -> &'static str {
    static SQL: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let all = SQL.get_or_init(|| {
        (1..=AUDIT_CHUNK)
            .map(|n| {
                let tuples: Vec<String> = (0..n)
                    .map(|r| {
                        let p: Vec<String> = (1..=AUDIT_PARAMS)
                            .map(|c| format!("?{}", r * AUDIT_PARAMS + c))
                            .collect();
                        format!("({})", p.join(","))
                    })
                    .collect();
                format!(
                    "INSERT INTO audit (at, key_id, role, action, team, name, version, outcome, client, flow_run, task, target) VALUES {}",
                    tuples.join(",")
                )
            })
            .collect()
    });
    &all[rows - 1]
}

/// Runs `op` in a savepoint of the open transaction: when it fails, nothing it did stays (the
/// transaction's other writes are unaffected).
fn in_savepoint<R>(conn: &Connection, op: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
    let run = |sql: &str| {
        conn.prepare_cached(sql)
            .and_then(|mut st| st.execute([]))
            .map_err(backend)
    };
    run("SAVEPOINT op")?;
    let r = op(conn);
    if r.is_err() {
        run("ROLLBACK TO op")?;
    }
    run("RELEASE op")?;
    r
}

/// Appends audit records (and notes their blocks in `audit_blocks`), a statement per
/// [`AUDIT_CHUNK`] records: run it in a savepoint ([`in_savepoint`]) to keep none of them when
/// one statement fails.
fn insert_audit_rows(conn: &Connection, rows: &[AuditRow]) -> Result<()> {
    for chunk in rows.chunks(AUDIT_CHUNK) {
        let mut st = conn
            .prepare_cached(audit_insert_sql(chunk.len()))
            .map_err(backend)?;
        for (r, a) in chunk.iter().enumerate() {
            let b = r * AUDIT_PARAMS;
            let bind = |st: &mut rusqlite::CachedStatement<'_>| -> rusqlite::Result<()> {
                st.raw_bind_parameter(b + 1, a.at)?;
                st.raw_bind_parameter(b + 2, &a.key_id)?;
                st.raw_bind_parameter(b + 3, a.role.map(Role::as_str))?;
                st.raw_bind_parameter(b + 4, a.action.as_str())?;
                st.raw_bind_parameter(b + 5, &a.team)?;
                st.raw_bind_parameter(b + 6, &a.name)?;
                st.raw_bind_parameter(b + 7, a.version)?;
                st.raw_bind_parameter(b + 8, a.outcome.as_str())?;
                st.raw_bind_parameter(b + 9, &a.client)?;
                st.raw_bind_parameter(b + 10, &a.flow_run)?;
                st.raw_bind_parameter(b + 11, &a.task)?;
                st.raw_bind_parameter(b + 12, &a.target)
            };
            bind(&mut st).map_err(backend)?;
        }
        st.raw_execute().map_err(backend)?;
        // the only writer: a statement's rows get consecutive rowids, the last one's known
        let last = conn.last_insert_rowid();
        let first = last - chunk.len() as i64 + 1;
        note_audit_blocks(
            conn,
            chunk
                .iter()
                .zip(first..)
                .map(|(a, id)| (a.team.as_str(), id)),
        )?;
    }
    Ok(())
}

/// Records in `audit_blocks` which teams have records in which blocks of ids.
fn note_audit_blocks<'a>(
    conn: &Connection,
    records: impl Iterator<Item = (&'a str, i64)>,
) -> Result<()> {
    let mut seen: Vec<(&str, i64)> = Vec::new();
    for (team, id) in records {
        let block = (team, id >> AUDIT_BLOCK_BITS);
        if !seen.contains(&block) {
            seen.push(block);
        }
    }
    let mut st = conn
        .prepare_cached("INSERT OR IGNORE INTO audit_blocks (team, block) VALUES (?1, ?2)")
        .map_err(backend)?;
    for (team, block) in seen {
        st.execute(params![team, block]).map_err(backend)?;
    }
    Ok(())
}

/// A file beside the database: its name with `suffix` (`-wal`, `.lock`).
fn beside(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date. Only one
    /// store at a time can be open on a database (an exclusive lock of `<database>.lock`): it is
    /// the only one to change secrets.
    ///
    /// # Errors
    /// The file cannot be opened or migrated; another store holds the lock.
    pub async fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, None, true).await
    }

    /// As [`SqliteStore::open`] without the lock, for a command that changes data keys only
    /// (master-key rotation) while a server runs; see [`crate::open_for_maintenance`].
    ///
    /// # Errors
    /// As [`SqliteStore::open`].
    pub async fn open_for_maintenance(path: &Path) -> Result<Self> {
        Self::open_with(path, None, false).await
    }

    /// As [`SqliteStore::open`]; `sync` replaces the `fdatasync` of the WAL (tests).
    async fn open_with(path: &Path, sync: Option<SyncWal>, exclusive: bool) -> Result<Self> {
        let path = path.to_owned();
        let p = path.clone();
        let opened = tokio::task::spawn_blocking(move || -> rusqlite::Result<_> {
            let io = |e: std::io::Error| rusqlite::Error::ToSqlConversionFailure(Box::new(e));
            if let Some(dir) = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty() && !d.exists())
            {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(io)?;
            }
            if !p.exists() {
                // SQLite gives the -wal and -shm files the mode of the database file
                use std::os::unix::fs::OpenOptionsExt;
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&p)
                    .map_err(io)?;
            }
            // one server per database: the writer's cache of latest versions relies on being
            // the only writer, and two servers would each take the other's commits for theirs
            let lock_path = beside(&p, ".lock");
            let lock = {
                use std::os::unix::fs::OpenOptionsExt;
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .mode(0o600)
                    .open(&lock_path)
                    .map_err(|e| {
                        io(std::io::Error::new(
                            e.kind(),
                            format!("{}: {e}", lock_path.display()),
                        ))
                    })?
            };
            match if exclusive { lock.try_lock() } else { Ok(()) } {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(io(std::io::Error::other(format!(
                        "the database is in use by another process (it holds {})",
                        lock_path.display()
                    ))));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
            }
            let mut w = connect(&p)?;
            migrate(&mut w)?;
            // the writer's commits write the WAL; the syncer makes it durable
            w.execute_batch("PRAGMA synchronous = NORMAL")?;
            let wal_path = beside(&p, "-wal");
            // the WAL exists from the first transaction on and lives as long as a connection
            // is open: the writer's stays open for the store's whole life
            let wal = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&wal_path)
                .map_err(io)?;
            wal.sync_data().map_err(io)?;
            let readers = (0..2)
                .map(|_| connect(&p))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((w, readers, wal, wal_path, lock))
        })
        .await
        .map_err(|e| StoreError::backend(format!("the opening thread failed: {e}")))?
        .map_err(|e| StoreError::Backend(crate::BackendError::sqlite(e).context(path.display())))?;
        let (conn, readers, wal, wal_path, lock) = opened;
        let sync = sync.unwrap_or_else(|| Box::new(move || wal.sync_data()));
        let progress = Arc::new(watch::Sender::new(Progress::default()));
        let inbox = Arc::new(Inbox::default());
        let (to_syncer, from_writer) = mpsc::channel();
        let writer = Writer {
            conn,
            in_tx: false,
            callers: Vec::new(),
            inbox: inbox.clone(),
            broken: None,
            to_syncer,
            progress: progress.clone(),
            latest: LatestVersions::default(),
        };
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map(|_| ())
                .map_err(|e| {
                    StoreError::Backend(
                        crate::BackendError::io(&e).context("cannot start a thread"),
                    )
                })
        };
        let (to_writer, p) = (inbox.clone(), progress.clone());
        spawn(
            "sigil-sqlite-sync",
            Box::new(move || syncer_loop(sync, wal_path, from_writer, to_writer, p)),
        )?;
        spawn("sigil-sqlite-writer", Box::new(move || writer_loop(writer)))?;
        Ok(SqliteStore {
            path,
            _lock: lock,
            inbox,
            readers: Mutex::new(readers),
            progress,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `op` in the next group commit, in a savepoint of its own (so that a failing job
    /// leaves no half of itself); answers once the group is durable.
    async fn write<R: Send + 'static>(
        &self,
        op: impl FnOnce(&Connection) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let (tx, rx) = oneshot::channel::<Result<R>>();
        let job: Job = Box::new(move |conn| -> Deliver {
            let Some(conn) = conn else {
                return Box::new(move |r: Result<()>| {
                    let _ = tx.send(r.and(Err(StoreError::backend("transaction did not start"))));
                });
            };
            let outcome = in_savepoint(conn, op);
            Box::new(move |committed: Result<()>| {
                let _ = tx.send(committed.and(outcome));
            })
        });
        self.inbox.push(Work::Job(job));
        Self::answer(rx).await
    }

    async fn answer<R>(rx: oneshot::Receiver<Result<R>>) -> Result<R> {
        rx.await
            .map_err(|_| StoreError::backend("the writer thread stopped"))?
    }

    /// Runs `op` on a reader connection, on the calling thread: a read in WAL mode takes
    /// microseconds and never waits for the writer, so handing it to another thread would cost
    /// more than it saves. At most one connection per thread reading at once is opened.
    async fn read<R: Send + 'static>(
        &self,
        op: impl FnOnce(&Connection) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let conn = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match conn {
            Some(c) => c,
            None => connect(&self.path).map_err(backend)?,
        };
        let r = op(&conn);
        let mut pool = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < READERS {
            pool.push(conn);
        }
        r
    }

    /// As [`SqliteStore::read`], answering only once everything the read may have seen is
    /// durable (a commit can be visible while its sync is still in flight). For reads that no
    /// audit record follows: a read of a value is covered by the sync of its audit record.
    async fn read_settled<R: Send + 'static>(
        &self,
        op: impl FnOnce(&Connection) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let r = self.read(op).await?;
        // loaded after the read: every commit it saw was counted before it became visible
        let seen = self.progress.borrow().committed;
        let settled = |p: &Progress| p.durable >= seen || p.broken;
        let mut p = *self.progress.borrow();
        if !settled(&p) {
            let mut rx = self.progress.subscribe();
            p = *rx
                .wait_for(settled)
                .await
                .map_err(|_| StoreError::backend("the writer thread stopped"))?;
        }
        if p.durable < seen {
            return Err(StoreError::backend(
                "the SQLite WAL could not be synced; restart the server",
            ));
        }
        Ok(r)
    }
}

fn insert_audit(conn: &Connection, a: &AuditRow) -> Result<()> {
    insert_audit_rows(conn, std::slice::from_ref(a))
}

/// One UPDATE of at most one row and, when it changed one, its audit record: both in the same
/// job of the group commit. `false` when no row matched.
fn update_audited(
    c: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
    audit: &AuditRow,
) -> Result<bool> {
    let n = c
        .prepare_cached(sql)
        .and_then(|mut st| st.execute(p))
        .map_err(backend)?;
    if n == 1 {
        insert_audit(c, audit)?;
    }
    Ok(n == 1)
}

fn secret_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SecretRow> {
    Ok(SecretRow {
        name: r.get(0)?,
        version: r.get(1)?,
        created_at: r.get(2)?,
        updated_at: r.get(3)?,
        updated_by: r.get(4)?,
        deleted_at: r.get(5)?,
    })
}

fn key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyRow> {
    Ok(KeyRow {
        id: r.get(0)?,
        team_id: r.get(1)?,
        team_name: r.get(2)?,
        role: role_column(r, 3)?,
        hash: r.get(4)?,
        name: r.get(5)?,
        bootstrap: r.get::<_, i64>(6)? != 0,
        created_at: r.get(7)?,
        created_by: r.get(8)?,
        revoked_at: r.get(9)?,
    })
}

const SECRET_COLS: &str = "name, version, created_at, updated_at, updated_by, deleted_at";
const KEY_SELECT: &str = "SELECT k.id, k.team_id, t.name, k.role, k.hash, k.name, k.bootstrap, k.created_at, k.created_by, k.revoked_at
                          FROM api_keys k JOIN teams t ON t.id = k.team_id";

fn read_secret(
    conn: &Connection,
    team_id: i64,
    name: &str,
    version: Option<i64>,
) -> Result<Option<(SecretRow, VersionRow)>> {
    // one statement: the live secret joined with the version asked for (its latest by default)
    conn.prepare_cached(
        "SELECT s.name, s.version, s.created_at, s.updated_at, s.updated_by, s.deleted_at,
                v.version, v.data_key_version, v.ciphertext, v.created_at, v.created_by
         FROM secrets s JOIN secret_versions v
           ON v.team_id = s.team_id AND v.name = s.name AND v.version = COALESCE(?3, s.version)
         WHERE s.team_id = ?1 AND s.name = ?2 AND s.deleted_at IS NULL",
    )
    .and_then(|mut st| {
        st.query_row(params![team_id, name, version], |r| {
            Ok((
                secret_row(r)?,
                VersionRow {
                    version: r.get(6)?,
                    data_key_version: r.get(7)?,
                    ciphertext: r.get(8)?,
                    created_at: r.get(9)?,
                    created_by: r.get(10)?,
                },
            ))
        })
        .optional()
    })
    .map_err(backend)
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<()> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(backend))
            .await
    }

    async fn is_empty(&self) -> Result<bool> {
        self.read_settled(|c| {
            c.query_row("SELECT NOT EXISTS (SELECT 1 FROM teams)", [], |r| {
                r.get::<_, bool>(0)
            })
            .map_err(backend)
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
                .map_err(backend)?;
            if exists {
                return Err(StoreError::Exists(format!("team {name:?}")));
            }
            c.execute("INSERT INTO teams (name, created_at) VALUES (?1, ?2)", params![name, at])
                .map_err(backend)?;
            let id = c.last_insert_rowid();
            c.execute(
                "INSERT INTO data_keys (team_id, version, master_key_id, wrapped, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, data_key.version, data_key.master_key_id, data_key.wrapped, data_key.created_at],
            )
            .map_err(backend)?;
            if let Some(k) = first_key {
                c.execute(
                    "INSERT INTO api_keys (id, team_id, role, hash, name, bootstrap, created_at, created_by)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![k.id, id, k.role.as_str(), k.hash, k.name, k.bootstrap as i64, k.created_at, k.created_by],
                )
                .map_err(backend)?;
            }
            insert_audit(c, &audit)?;
            Ok(Team { id, name, created_at: at })
        })
        .await
    }

    async fn team(&self, name: &str) -> Result<Option<Team>> {
        let name = name.to_owned();
        self.read_settled(move |c| {
            c.prepare_cached("SELECT id, name, created_at FROM teams WHERE name = ?1")
                .and_then(|mut st| {
                    st.query_row([&name], |r| {
                        Ok(Team {
                            id: r.get(0)?,
                            name: r.get(1)?,
                            created_at: r.get(2)?,
                        })
                    })
                    .optional()
                })
                .map_err(backend)
        })
        .await
    }

    async fn list_teams(&self) -> Result<Vec<Team>> {
        self.read_settled(|c| {
            let mut st = c
                .prepare_cached("SELECT id, name, created_at FROM teams ORDER BY name")
                .map_err(backend)?;
            st.query_map([], |r| {
                Ok(Team {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    created_at: r.get(2)?,
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(backend)
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
                    .map_err(backend)?;
                if n != 1 {
                    return Err(StoreError::NotFound(format!("data key {} of team {}", r.version, r.team_id)));
                }
            }
            Ok(())
        })
        .await
    }

    async fn put_secret(&self, put: PutSecret, mut audit: AuditRow) -> Result<SecretRow> {
        self.write(move |c| {
            let current = c
                .prepare_cached(&format!("SELECT {SECRET_COLS} FROM secrets WHERE team_id = ?1 AND name = ?2"))
                .and_then(|mut st| st.query_row(params![put.team_id, put.name], secret_row).optional())
                .map_err(backend)?;
            let live_version = current.as_ref().filter(|r| r.deleted_at.is_none()).map_or(0, |r| r.version);
            if let Some(cas) = put.cas
                && cas != live_version
            {
                return Err(StoreError::Conflict { current: live_version });
            }
            let version = current.as_ref().map_or(0, |r| r.version) + 1;
            let created_at = current.as_ref().map_or(put.at, |r| r.created_at);
            let ciphertext = (put.seal)(version).map_err(StoreError::backend)?;
            c.prepare_cached(
                "INSERT INTO secret_versions (team_id, name, version, data_key_version, ciphertext, created_at, created_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut st| {
                st.execute(params![put.team_id, put.name, version, put.data_key_version, ciphertext, put.at, put.by])
            })
            .map_err(backend)?;
            c.prepare_cached(
                "INSERT INTO secrets (team_id, name, version, created_at, updated_at, updated_by, deleted_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL)
                 ON CONFLICT (team_id, name) DO UPDATE SET version = excluded.version,
                     updated_at = excluded.updated_at, updated_by = excluded.updated_by, deleted_at = NULL",
            )
            .and_then(|mut st| st.execute(params![put.team_id, put.name, version, created_at, put.at, put.by]))
            .map_err(backend)?;
            audit.version = Some(version);
            insert_audit(c, &audit)?;
            Ok(SecretRow {
                name: put.name,
                version,
                created_at,
                updated_at: put.at,
                updated_by: put.by,
                deleted_at: None,
            })
        })
        .await
    }

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
        self.inbox.push(Work::Read(Box::new(AuditedRead {
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
                .map_err(backend)?;
            st.query_map(params![team_id, prefix, upper, after, limit], secret_row)
                .and_then(|rows| rows.collect())
                .map_err(backend)
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
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {SECRET_COLS} FROM secrets
                     WHERE team_id = ?1 AND deleted_at IS NULL AND instr(name, ?2) > 0 AND name > ?3
                     ORDER BY name LIMIT ?4"
                ))
                .map_err(backend)?;
            st.query_map(params![team_id, needle, after, limit], secret_row)
                .and_then(|rows| rows.collect())
                .map_err(backend)
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
                .and_then(|mut st| st.query_row(params![team_id, name], secret_row).optional())
                .map_err(backend)?;
            let Some(row) = row else { return Ok(None) };
            let mut st = c
                .prepare_cached(
                    "SELECT version, data_key_version, created_at, created_by FROM secret_versions
                     WHERE team_id = ?1 AND name = ?2 AND version < ?3 ORDER BY version DESC LIMIT ?4",
                )
                .map_err(backend)?;
            let versions = st
                .query_map(params![team_id, name, before, limit], |r| {
                    Ok(VersionRow {
                        version: r.get(0)?,
                        data_key_version: r.get(1)?,
                        ciphertext: Vec::new(),
                        created_at: r.get(2)?,
                        created_by: r.get(3)?,
                    })
                })
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(backend)?;
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
                .and_then(|mut st| st.query_row(params![at, audit.key_id, team_id, name], secret_row).optional())
                .map_err(backend)?;
            if row.is_some() {
                insert_audit(c, &audit)?;
            }
            Ok(row)
        })
        .await
    }

    async fn create_key(&self, key: KeyRow, audit: AuditRow) -> Result<()> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO api_keys (id, team_id, role, hash, name, bootstrap, created_at, created_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![key.id, key.team_id, key.role.as_str(), key.hash, key.name, key.bootstrap as i64, key.created_at, key.created_by],
            )
            .map_err(backend)?;
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
            .map_err(backend)?;
            c.prepare_cached(SESSIONS_OVER_CAP)
                .and_then(|mut st| st.execute(params![session.key_id, max_per_key]))
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn session(&self, id_hash: &[u8]) -> Result<Option<SessionRow>> {
        let id_hash = id_hash.to_vec();
        self.read_settled(move |c| {
            c.prepare_cached(
                "SELECT id_hash, key_id, created_at, last_seen FROM web_sessions WHERE id_hash = ?1",
            )
            .and_then(|mut st| {
                st.query_row([&id_hash], |r| {
                    Ok(SessionRow {
                        id_hash: r.get(0)?,
                        key_id: r.get(1)?,
                        created_at: r.get(2)?,
                        last_seen: r.get(3)?,
                    })
                })
                .optional()
            })
            .map_err(backend)
        })
        .await
    }

    async fn touch_session(&self, id_hash: &[u8], at: i64) -> Result<()> {
        let id_hash = id_hash.to_vec();
        self.write(move |c| {
            c.prepare_cached("UPDATE web_sessions SET last_seen = ?2 WHERE id_hash = ?1")
                .and_then(|mut st| st.execute(params![id_hash, at]))
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn delete_session(&self, id_hash: &[u8]) -> Result<()> {
        let id_hash = id_hash.to_vec();
        self.write(move |c| {
            c.prepare_cached("DELETE FROM web_sessions WHERE id_hash = ?1")
                .and_then(|mut st| st.execute([id_hash]))
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn prune_sessions(&self, idle_before: i64, created_before: i64) -> Result<u64> {
        self.write(move |c| {
            c.prepare_cached("DELETE FROM web_sessions WHERE last_seen < ?1 OR created_at < ?2")
                .and_then(|mut st| st.execute(params![idle_before, created_before]))
                .map(|n| n as u64)
                .map_err(backend)
        })
        .await
    }

    async fn key(&self, id: &str) -> Result<Option<KeyRow>> {
        let id = id.to_owned();
        self.read(move |c| {
            c.prepare_cached(&format!("{KEY_SELECT} WHERE k.id = ?1"))
                .and_then(|mut st| st.query_row([&id], key_row).optional())
                .map_err(backend)
        })
        .await
    }

    async fn list_keys(&self, team_id: i64) -> Result<Vec<KeyRow>> {
        self.read_settled(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "{KEY_SELECT} WHERE k.team_id = ?1 ORDER BY k.created_at, k.id"
                ))
                .map_err(backend)?;
            st.query_map([team_id], key_row)
                .and_then(|rows| rows.collect())
                .map_err(backend)
        })
        .await
    }

    async fn revoke_key(&self, team_id: i64, id: &str, at: i64, audit: AuditRow) -> Result<bool> {
        let id = id.to_owned();
        self.write(move |c| {
            let sql = "UPDATE api_keys SET revoked_at = ?1 WHERE team_id = ?2 AND id = ?3 AND revoked_at IS NULL";
            update_audited(c, sql, params![at, team_id, id], &audit)
        })
        .await
    }

    async fn append_audit(&self, rows: Vec<AuditRow>) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.inbox.push(Work::Audit(rows, tx));
        Self::answer(rx).await
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

fn data_keys_where(
    c: &Connection,
    filter: &str,
    p: impl rusqlite::Params,
) -> Result<Vec<DataKeyRow>> {
    let mut st = c
        .prepare_cached(&format!(
            "SELECT team_id, version, master_key_id, wrapped, created_at FROM data_keys {filter} ORDER BY team_id, version"
        ))
        .map_err(backend)?;
    st.query_map(p, |r| {
        Ok(DataKeyRow {
            team_id: r.get(0)?,
            version: r.get(1)?,
            master_key_id: r.get(2)?,
            wrapped: r.get(3)?,
            created_at: r.get(4)?,
        })
    })
    .and_then(|rows| rows.collect())
    .map_err(backend)
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;
    use crate::model::AuditAction;

    /// A record; `label` (its name) tells records apart.
    fn row(label: &str) -> AuditRow {
        AuditRow {
            key_id: "k".into(),
            action: AuditAction::SecretRead,
            name: Some(label.into()),
            team: "t".into(),
            outcome: AuditOutcome::Ok,
            client: "c".into(),
            ..Default::default()
        }
    }

    // regression: a group's records went in a statement per AUDIT_CHUNK, and when a later
    // statement failed the earlier ones' records stayed, although every caller was told the
    // records were not written
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_of_audit_records_is_written_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sigil.db");
        let store = SqliteStore::open(&path).await.unwrap();
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER refuse BEFORE INSERT ON audit WHEN NEW.key_id = 'refused'
                 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
            )
            .unwrap();
        let mut rows: Vec<AuditRow> = (0..AUDIT_CHUNK).map(|_| row("secret.read")).collect();
        rows.push(AuditRow {
            key_id: "refused".into(),
            ..row("secret.read")
        });
        let err = store.append_audit(rows).await.unwrap_err();
        assert!(err.to_string().contains("refused by the test"), "{err}");
        assert_eq!(store.audit("t", 0, 0, 1000).await.unwrap(), []);
        // the next records go in as usual
        store.append_audit(vec![row("secret.read")]).await.unwrap();
        assert_eq!(store.audit("t", 0, 0, 1000).await.unwrap().len(), 1);
    }

    /// A sync that tells the test it started and waits for the test's verdict.
    fn probe() -> (
        SyncWal,
        mpsc::Receiver<()>,
        mpsc::Sender<std::io::Result<()>>,
    ) {
        let (started_tx, started) = mpsc::channel();
        let (verdict, verdict_rx) = mpsc::channel::<std::io::Result<()>>();
        let sync: SyncWal = Box::new(move || {
            let _ = started_tx.send(());
            verdict_rx.recv().unwrap_or(Ok(()))
        });
        (sync, started, verdict)
    }

    /// A store whose WAL syncs wait for the test's verdict.
    async fn probed_store() -> (
        tempfile::TempDir,
        Arc<SqliteStore>,
        mpsc::Receiver<()>,
        mpsc::Sender<std::io::Result<()>>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (sync, started, verdict) = probe();
        let store = SqliteStore::open_with(&dir.path().join("s.db"), Some(sync), true)
            .await
            .unwrap();
        (dir, Arc::new(store), started, verdict)
    }

    fn wait_started(started: &mpsc::Receiver<()>) {
        started
            .recv_timeout(Duration::from_secs(10))
            .expect("the syncer was not asked to sync");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_is_answered_only_after_its_wal_sync_returns() {
        let (_dir, store, started, verdict) = probed_store().await;
        let s = store.clone();
        let write = tokio::spawn(async move { s.append_audit(vec![row("secret.read")]).await });
        wait_started(&started);
        // the commit is written (a reader could see it) but not durable: no answer yet
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!write.is_finished(), "answered before the sync returned");
        // a read of metadata that could see it waits too
        let s = store.clone();
        let listing = tokio::spawn(async move { s.audit("t", 0, 0, 10).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !listing.is_finished(),
            "a metadata read showed an unsynced commit"
        );
        verdict.send(Ok(())).unwrap();
        write.await.unwrap().unwrap();
        assert_eq!(listing.await.unwrap().unwrap().len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_arriving_during_a_sync_share_the_next_one() {
        let (_dir, store, started, verdict) = probed_store().await;
        let s = store.clone();
        let first = tokio::spawn(async move { s.append_audit(vec![row("first")]).await });
        wait_started(&started);
        let mut later = Vec::new();
        for _ in 0..50 {
            let s = store.clone();
            later.push(tokio::spawn(async move {
                s.append_audit(vec![row("later")]).await
            }));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        verdict.send(Ok(())).unwrap();
        first.await.unwrap().unwrap();
        // all 50 went into one commit: exactly one more sync answers all of them
        wait_started(&started);
        verdict.send(Ok(())).unwrap();
        for w in later {
            w.await.unwrap().unwrap();
        }
        assert!(
            started.recv_timeout(Duration::from_millis(200)).is_err(),
            "a third sync for writes that had all arrived during the first"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_sync_fails_its_writes_and_every_later_one() {
        let (_dir, store, started, verdict) = probed_store().await;
        let s = store.clone();
        let write = tokio::spawn(async move { s.append_audit(vec![row("secret.read")]).await });
        wait_started(&started);
        verdict
            .send(Err(std::io::Error::other("disk gone")))
            .unwrap();
        let err = write.await.unwrap().unwrap_err().to_string();
        assert!(
            err.contains("cannot sync") && err.contains("s.db-wal"),
            "{err}"
        );
        let later = store.append_audit(vec![row("secret.read")]).await;
        assert!(later.unwrap_err().to_string().contains("cannot sync"));
        let read = store
            .get_secret_audited(1, "x", None, row("secret.read"))
            .await;
        assert!(read.is_err(), "an audited read cannot be audited any more");
        assert!(
            store.audit("t", 0, 0, 10).await.is_err(),
            "metadata may be unsynced"
        );
    }
}

#[cfg(test)]
mod migration_tests {
    use super::*;

    // a database of schema version 1 (AUTOINCREMENT ids, a per-row team index) keeps every
    // audit record, and its ids, through version 2; new records follow on
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn version_1_audit_logs_are_carried_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch("PRAGMA journal_mode = WAL").unwrap();
            c.execute_batch(MIGRATIONS[0]).unwrap();
            c.execute_batch("PRAGMA user_version = 1").unwrap();
            for i in 0..1500 {
                let team = if i % 3 == 0 { "x" } else { "y" };
                c.execute(
                    "INSERT INTO audit (at, key_id, action, team, outcome, client) VALUES (?1, 'k', 'secret.read', ?2, 'ok', 'c')",
                    params![i, team],
                )
                .unwrap();
            }
        }
        let store = SqliteStore::open(&path).await.unwrap();
        let x = store.audit("x", 0, 0, 1000).await.unwrap();
        assert_eq!(x.len(), 500);
        assert_eq!(x.first().map(|r| (r.id, r.at)), Some((1, 0)));
        assert_eq!(x.last().map(|r| (r.id, r.at)), Some((1498, 1497)));
        let next = AuditRow {
            at: 9_999,
            key_id: "k".into(),
            action: "secret.read".parse().unwrap(),
            team: "x".into(),
            outcome: "ok".parse().unwrap(),
            client: "c".into(),
            ..Default::default()
        };
        store.append_audit(vec![next]).await.unwrap();
        let after = store.audit("x", 1498, 0, 10).await.unwrap();
        assert_eq!(
            after.iter().map(|r| (r.id, r.at)).collect::<Vec<_>>(),
            [(1501, 9_999)]
        );
    }
}
