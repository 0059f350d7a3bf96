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
//! that arrived during the previous one. When the store has nothing else to do — no commit in
//! flight, no work waiting, no other caller waiting for an answer — the caller's thread takes the
//! writer and does all of it itself (apply, commit, sync, answer): at one connection the
//! threads to wake were about a fifth of a read's time (bench/README.md). The writer also
//! checkpoints, once the WAL holds 1,000 pages, right after handing a commit to the syncer
//! (SQLite's automatic checkpoint inside `COMMIT` is off), so a checkpoint overlaps a sync and
//! is timed by itself; checkpoints keep their own syncs: with `NORMAL`, SQLite syncs the WAL
//! before a checkpoint and the database file after it.
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
    AuditOutcome, AuditRow, DataKeyRow, KeyRow, KvConfig, PutSecret, Role, SecretRow, SessionRow,
    SettingsChange, Team, VersionChange, VersionRow, Written,
};
use crate::rows::{self, AUDIT_COLS, DATA_KEY_COLS, KEY_SELECT, SECRET_COLS};
use crate::{Result, Store, StoreError};

mod audit;
mod backup;
mod engine;
mod open;
mod store;
#[cfg(test)]
mod tests;
mod versions;

use audit::*;
use engine::*;
use open::*;

/// The SQLite store.
pub struct SqliteStore {
    path: PathBuf,
    /// Held (an exclusive `flock` of `<database>.lock`) for as long as the store is open
    /// (unlocked for maintenance).
    _lock: std::fs::File,
    inbox: Arc<Inbox>,
    /// The writer thread's state, which a caller's thread takes when the writer is idle.
    writer: Arc<Mutex<Writer>>,
    readers: Mutex<Vec<Connection>>,
    progress: Arc<watch::Sender<Progress>>,
    timings: Arc<crate::StoreTimings>,
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
        let _pending = self.submit(Work::Job(job));
        Self::answer(rx).await
    }

    /// Hands `work` to the writer thread, or, when the store has nothing else to do, does it
    /// whole on this thread ([`Writer::apply_and_sync`]): either way its answer comes through
    /// its channel. The caller counts as waiting for as long as the guard lives.
    fn submit(&self, work: Work) -> Option<Pending<'_>> {
        let Some((claim, mut w, synced)) = self.inbox.claim_idle(&self.writer) else {
            return Some(self.inbox.push(work));
        };
        w.apply_and_sync(synced, work);
        drop((w, claim));
        None
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
            None => connect(&self.path)?,
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
    let n = c.prepare_cached(sql).and_then(|mut st| st.execute(p))?;
    if n == 1 {
        insert_audit(c, audit)?;
    }
    Ok(n == 1)
}

fn read_secret(
    conn: &Connection,
    team_id: i64,
    name: &str,
    version: Option<i64>,
) -> Result<Option<(SecretRow, VersionRow)>> {
    // one statement: the live secret joined with the version asked for (its latest by default)
    const SQL: &str = concat!(
        "SELECT ",
        rows::found_cols!(),
        " FROM secrets s JOIN secret_versions v
           ON v.team_id = s.team_id AND v.name = s.name AND v.version = COALESCE(?3, s.version)
         WHERE s.team_id = ?1 AND s.name = ?2 AND s.deleted_at IS NULL"
    );
    let mut st = conn.prepare_cached(SQL)?;
    Ok(st
        .query_row(params![team_id, name, version], |r| rows::found(r))
        .optional()?)
}

fn data_keys_where(
    c: &Connection,
    filter: &str,
    p: impl rusqlite::Params,
) -> Result<Vec<DataKeyRow>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {DATA_KEY_COLS} FROM data_keys {filter} ORDER BY team_id, version"
    ))?;
    Ok(st
        .query_map(p, |r| rows::data_key(r))?
        .collect::<rusqlite::Result<_>>()?)
}
