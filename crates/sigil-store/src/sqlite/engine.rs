//! The writer and syncer threads: the inbox where writes wait, the group commit, the pipelined
//! sync of the WAL, the writer's cache of the latest versions, and a caller's thread doing the
//! writer's work itself while the store is idle.

#[allow(unused_imports)]
use super::*;
use std::sync::MutexGuard;

pub(super) const AUDIT_BLOCK_BITS: u32 = 10;
pub(super) const MAX_BATCH: usize = 512;
pub(super) const READERS: usize = 8;

pub(super) type Deliver = Box<dyn FnOnce(Result<()>) + Send>;
pub(super) type Job = Box<dyn FnOnce(Option<&Connection>) -> Deliver + Send>;
/// Makes the WAL durable (`fdatasync` of the WAL file; tests put a probe around it).
pub(super) type SyncWal = Box<dyn FnMut() -> std::io::Result<()> + Send>;
/// A commit handed to the syncer: its number and its callers.
pub(super) type ToSync = (u64, Vec<Deliver>);

/// The WAL is checkpointed once it holds this many pages (SQLite's own default).
pub(super) const CHECKPOINT_PAGES: i32 = 1000;

thread_local! {
    /// The pages in the WAL after the last commit of the writer's connection made on this thread
    /// (the writer thread's, or a caller's doing its own work): set by the hook during `COMMIT`
    /// and read right after it, on the same thread.
    static WAL_PAGES: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
}

/// The writer's WAL hook, in place of SQLite's automatic checkpoint inside `COMMIT`: it notes
/// how large the WAL has grown, and the writer checkpoints once the commit is handed to the
/// syncer (so that the checkpoint runs while the sync is in flight, and is timed by itself).
pub(super) fn note_wal_pages(
    _: &rusqlite::hooks::Wal,
    pages: std::ffi::c_int,
) -> rusqlite::Result<()> {
    WAL_PAGES.set(pages);
    Ok(())
}

/// What the writer thread is handed.
pub(super) enum Work {
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
pub(super) struct Inbox {
    pub(super) state: Mutex<InboxState>,
    pub(super) wake: std::sync::Condvar,
    /// Callers waiting for an answer: work pushed and not yet answered, and a claim.
    pub(super) pending: std::sync::atomic::AtomicUsize,
}

/// Counts a caller as waiting until it has its answer (or gives up waiting).
pub(super) struct Pending<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[derive(Default)]
pub(super) struct InboxState {
    pub(super) work: Vec<Work>,
    /// A commit is being synced. One at a time: with two or three in flight, groups are smaller
    /// and the flushes contend in the device (audited reads at 64 connections measured 41 % and
    /// 39 % of `/healthz`, against 53 % with one; bench/README.md).
    pub(super) syncing: bool,
    /// The outcome of the last sync, until the writer has seen it.
    pub(super) synced: Option<Result<()>>,
    /// The store was dropped: commit what is open, wait for its sync, stop.
    pub(super) stop: bool,
    /// The writer is waiting.
    pub(super) waiting: bool,
    /// The writer thread is gone: new work is dropped at once (its caller hears of it).
    pub(super) closed: bool,
}

impl Inbox {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, InboxState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands `work` to the writer; the caller counts as waiting until the guard is dropped.
    pub(super) fn push(&self, work: Work) -> Pending<'_> {
        self.pending
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let pending = Pending(&self.pending);
        let mut s = self.lock();
        if s.closed {
            return pending;
        }
        s.work.push(work);
        let wake = s.waiting && !s.syncing;
        drop(s);
        if wake {
            self.wake.notify_one();
        }
        pending
    }

    /// From the syncer: the commit handed to it is durable, or the sync failed.
    pub(super) fn synced(&self, outcome: Result<()>) {
        let mut s = self.lock();
        s.syncing = false;
        s.synced = Some(outcome);
        drop(s);
        self.wake.notify_one();
    }

    pub(super) fn stop(&self) {
        self.lock().stop = true;
        self.wake.notify_one();
    }

    /// Waits until there is something to do and no sync is in flight; takes it.
    pub(super) fn take(&self, batch: &mut Vec<Work>) -> (Option<Result<()>>, bool) {
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

    pub(super) fn begin_sync(&self) {
        self.lock().syncing = true;
    }

    /// Claims the writer for the calling thread when the store has nothing else to do: no
    /// commit is being synced, no work waits, no other caller waits for an answer, and the
    /// writer thread is not working (it holds the writer only while it applies, commits and
    /// checkpoints: taken here without waiting, under the inbox's lock, so a batch whose callers
    /// were all answered early is never overtaken). When requests overlap they are left to the
    /// writer: a caller's thread that syncs would hold one of the runtime's threads while the
    /// others' work gathers. The outcome of the last sync, if the writer thread has not seen it
    /// yet, goes to the claimer.
    pub(super) fn claim_idle<'a>(
        &'a self,
        writer: &'a Mutex<Writer>,
    ) -> Option<(Claim<'a>, MutexGuard<'a, Writer>, Option<Result<()>>)> {
        // under load someone nearly always waits: told without taking the lock
        if self.pending.load(std::sync::atomic::Ordering::SeqCst) != 0 {
            return None;
        }
        let mut s = self.lock();
        let idle = self.pending.load(std::sync::atomic::Ordering::SeqCst) == 0
            && !s.syncing
            && s.work.is_empty()
            && !s.stop
            && !s.closed;
        if !idle {
            return None;
        }
        let w = match writer.try_lock() {
            Ok(w) => w,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        s.syncing = true;
        self.pending
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Some((Claim(self), w, s.synced.take()))
    }

    /// Ends a claim: what gathered meanwhile goes to the writer thread.
    pub(super) fn release(&self) {
        let mut s = self.lock();
        s.syncing = false;
        self.pending
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        let wake = s.waiting && (!s.work.is_empty() || s.stop);
        drop(s);
        if wake {
            self.wake.notify_one();
        }
    }
}

/// The writer taken by a caller's thread ([`Inbox::claim_idle`]), given back when dropped
/// (a panic included).
///
/// The caller's thread waits for the WAL's sync: on the server, one of the runtime's worker
/// threads, which is held for as long as the sync takes (a disk that stalls holds it for the
/// stall). At most one is ever held (the claim is exclusive) and only while the store has
/// nothing else to do; the other worker threads take its other tasks meanwhile. Handing the
/// thread's other tasks over first (`tokio::task::block_in_place`, which wakes a thread for them
/// on every call) measured slower at one connection than not (bench/README.md).
pub(super) struct Claim<'a>(&'a Inbox);

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// Closes the inbox when the writer thread ends, however it ends: work still waiting is
/// dropped, so that no caller waits for an answer that will never come.
pub(super) struct CloseOnExit(pub(super) Arc<Inbox>);

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
pub(super) struct AuditedRead {
    pub(super) team_id: i64,
    pub(super) name: String,
    pub(super) version: Option<i64>,
    pub(super) audit: AuditRow,
    pub(super) reply: oneshot::Sender<Result<Option<(SecretRow, VersionRow)>>>,
}

/// How far commits have got: `committed` counts the commits begun, `durable` the last one
/// synced (all before it are durable too: commits are synced in order). `broken` after a
/// failed sync: nothing is written any more.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Progress {
    pub(super) committed: u64,
    pub(super) durable: u64,
    pub(super) broken: bool,
}

/// The writer thread's state.
pub(super) struct Writer {
    pub(super) conn: Connection,
    /// A transaction is open; `callers` wait for it.
    pub(super) in_tx: bool,
    pub(super) callers: Vec<Deliver>,
    /// The audit records of the work being applied (kept for its capacity).
    pub(super) rows: Vec<AuditRow>,
    pub(super) inbox: Arc<Inbox>,
    /// Set after a failed sync: every later write fails with it.
    pub(super) broken: Option<StoreError>,
    pub(super) to_syncer: mpsc::Sender<ToSync>,
    /// The WAL's sync, which the syncer thread runs for the writer's commits and a caller's
    /// thread for its own.
    pub(super) wal: Arc<WalSync>,
    pub(super) progress: Arc<watch::Sender<Progress>>,
    pub(super) latest: LatestVersions,
    pub(super) timings: Arc<crate::StoreTimings>,
    /// The last checkpoint failed (told once in the log, and once when they work again).
    pub(super) checkpoint_failing: bool,
}

/// The latest version of each secret read lately (its ciphertext, as the database holds it),
/// by team and name, kept by the writer thread. The writer is the only one to change the
/// database (the lock file keeps any other server out), so this is never stale: every change
/// empties it, and so does a transaction that does not commit (reads inside it saw its rows).
#[derive(Default)]
pub(super) struct LatestVersions {
    by_team:
        std::collections::HashMap<i64, std::collections::HashMap<String, (SecretRow, VersionRow)>>,
    pub(super) len: usize,
}

impl LatestVersions {
    /// Enough for every secret a team's flows read; past it the cache starts again.
    const MAX: usize = 10_000;

    pub(super) fn get(&self, team_id: i64, name: &str) -> Option<&(SecretRow, VersionRow)> {
        self.by_team.get(&team_id)?.get(name)
    }

    pub(super) fn put(&mut self, team_id: i64, found: &(SecretRow, VersionRow)) {
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

    pub(super) fn clear(&mut self) {
        self.by_team.clear();
        self.len = 0;
    }

    /// A latest-version read through the cache.
    pub(super) fn read(
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
    pub(super) fn run(sql: &Connection, statement: &str) -> Result<()> {
        sql.prepare_cached(statement)
            .and_then(|mut st| st.execute([]))
            .map(|_| ())
            .map_err(StoreError::from)
    }

    /// Opens the transaction if none is.
    pub(super) fn begin(&mut self) -> Result<()> {
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
    pub(super) fn check_still_open(&mut self) {
        if self.in_tx && self.conn.is_autocommit() {
            self.in_tx = false;
            self.latest.clear();
            let err = StoreError::backend("the transaction was rolled back by SQLite");
            for c in self.callers.drain(..) {
                c(Err(err.clone()));
            }
        }
    }

    /// Reads a value inside the transaction (opened if none is) and makes its audit record
    /// say what was found: the version, or `NotFound` when there is none readable.
    pub(super) fn audited_read(
        &mut self,
        team_id: i64,
        name: &str,
        version: Option<i64>,
        audit: &mut AuditRow,
    ) -> Result<Option<(SecretRow, VersionRow)>> {
        self.begin()?;
        let found = match version {
            None => self.latest.read(&self.conn, team_id, name)?,
            Some(_) => read_secret(&self.conn, team_id, name, version)?,
        };
        audit.version = found.as_ref().map(|(_, v)| v.version);
        // a version deleted or destroyed by then is found, not read
        let readable = found
            .as_ref()
            .is_some_and(|(_, v)| v.state_at(audit.at) == crate::VersionState::Live);
        if !readable {
            audit.outcome = AuditOutcome::NotFound;
        }
        Ok(found)
    }

    /// A sync failed: every later write fails with its error.
    pub(super) fn sync_failed(&mut self, e: StoreError) {
        if self.broken.is_none() {
            tracing::error!(error = %e, "the SQLite WAL could not be synced: refusing every write from now on");
            self.broken = Some(e);
        }
    }

    /// Commits the open transaction: the WAL is written, not yet synced. Its number, and what
    /// the commit failed with (then nothing of it became visible).
    fn commit_wal(&mut self) -> (u64, Result<()>) {
        self.in_tx = false;
        // counted before the commit: a read that sees this commit also sees the count
        let mut seq = 0;
        self.progress.send_modify(|p| {
            p.committed += 1;
            seq = p.committed;
        });
        let committed = self.timings.commit.time(|| Self::run(&self.conn, "COMMIT"));
        if committed.is_err() {
            let _ = self.conn.execute_batch("ROLLBACK");
            self.latest.clear();
        }
        (seq, committed)
    }

    /// Commits the open transaction (the WAL is written, not yet synced) and hands its callers
    /// to the syncer.
    pub(super) fn commit(&mut self) {
        let callers = std::mem::take(&mut self.callers);
        let (seq, committed) = self.commit_wal();
        let callers = match committed {
            Ok(()) => {
                tracing::trace!(writes = callers.len(), "group commit");
                callers
            }
            Err(e) => {
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
        self.checkpoint_if_due();
    }

    /// Copies the WAL into the database file once it holds [`CHECKPOINT_PAGES`] (a passive
    /// checkpoint, as SQLite's automatic one: it never waits for a reader, and copies what no
    /// reader still needs; the WAL starts again from its beginning once all of it was copied).
    /// A failure (a full disk) leaves the WAL as it is, growing until a checkpoint works.
    fn checkpoint_if_due(&mut self) {
        if WAL_PAGES.get() < CHECKPOINT_PAGES {
            return;
        }
        WAL_PAGES.set(0);
        let done = self.timings.checkpoint.time(|| {
            self.conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        });
        match done {
            Ok(()) if self.checkpoint_failing => {
                self.checkpoint_failing = false;
                tracing::info!("checkpoints of the SQLite WAL work again");
            }
            Ok(()) => {}
            Err(e) if !self.checkpoint_failing => {
                self.checkpoint_failing = true;
                tracing::warn!(error = %e, "a checkpoint of the SQLite WAL failed: the WAL grows until one works");
            }
            Err(_) => {}
        }
    }
}

/// The writer thread: applies the writes waiting, commits them, and while their sync is in
/// flight lets the next ones gather. It holds the writer only while it works, never while it
/// waits, so that a caller's thread can take it when the store is idle ([`Inbox::claim_idle`]).
pub(super) fn writer_loop(shared: Arc<Mutex<Writer>>, inbox: Arc<Inbox>) {
    let _close = CloseOnExit(inbox.clone());
    let mut batch = Vec::new();
    loop {
        let (synced, stop) = inbox.take(&mut batch);
        let mut w = shared.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(Err(e)) = synced {
            w.sync_failed(e);
        }
        if stop && batch.is_empty() && !w.in_tx {
            return;
        }
        w.apply(batch.drain(..));
        if w.in_tx {
            w.commit();
        }
    }
}

impl Writer {
    /// Applies the work taken, in the open transaction (opened if none is): a change in a
    /// savepoint of its own, audit records (of appends and of reads) together at the end. The
    /// callers of what went in wait in `callers` for the commit; the others are answered.
    pub(super) fn apply(&mut self, batch: impl IntoIterator<Item = Work>) {
        let mut rows = std::mem::take(&mut self.rows);
        let mut waiters: Vec<Deliver> = Vec::new();
        for work in batch {
            match work {
                Work::Job(job) => match self.begin() {
                    Ok(()) => {
                        // a change: any secret may be another version now, or gone
                        self.latest.clear();
                        let deliver = job(Some(&self.conn));
                        self.callers.push(deliver);
                        self.check_still_open();
                    }
                    Err(e) => job(None)(Err(e)),
                },
                Work::Audit(r, tx) => match self.begin() {
                    Ok(()) => {
                        rows.extend(r);
                        waiters.push(Box::new(move |r: Result<()>| {
                            let _ = tx.send(r);
                        }));
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
                    match self.audited_read(team_id, &name, version, &mut audit) {
                        Ok(found) => {
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
            match in_savepoint(&self.conn, |c| insert_audit_rows(c, &rows)) {
                Ok(()) => self.callers.append(&mut waiters),
                Err(e) => {
                    for waiter in waiters.drain(..) {
                        waiter(Err(e.clone()));
                    }
                }
            }
            rows.clear();
            self.check_still_open();
        }
        self.rows = rows;
    }

    /// Work done whole by the calling thread while the store is idle: applied, committed,
    /// synced and answered — no thread to wake and none to wait for (at one connection those
    /// hand-offs were about a fifth of a read's time: bench/README.md). The caller holds the
    /// inbox's claim ([`Inbox::claim_idle`]), so no other commit or sync is in flight; `synced`
    /// is the outcome of a sync the writer thread had not seen.
    pub(super) fn apply_and_sync(&mut self, synced: Option<Result<()>>, work: Work) {
        if let Some(Err(e)) = synced {
            self.sync_failed(e);
        }
        self.apply([work]);
        if !self.in_tx {
            return;
        }
        let callers = std::mem::take(&mut self.callers);
        let (seq, committed) = self.commit_wal();
        // after a failed commit too: readers may wait for its number
        let synced = self.wal.sync(seq);
        if let Err(e) = &synced {
            self.sync_failed(e.clone());
        }
        let outcome = committed.and(synced);
        for c in callers {
            c(outcome.clone());
        }
        self.checkpoint_if_due();
    }
}

/// What makes a commit durable, for the syncer thread and for a caller's thread that commits
/// its own work ([`Writer::apply_and_sync`]): one sync at a time (the inbox's `syncing`).
pub(super) struct WalSync {
    pub(super) sync: Mutex<SyncWal>,
    pub(super) wal: PathBuf,
    pub(super) progress: Arc<watch::Sender<Progress>>,
    pub(super) timings: Arc<crate::StoreTimings>,
}

impl WalSync {
    /// Syncs the WAL: commit `seq` and every one before it are durable once this returns `Ok`
    /// (a sync covers every commit made before it began).
    pub(super) fn sync(&self, seq: u64) -> Result<()> {
        let synced = {
            let mut sync = self.sync.lock().unwrap_or_else(|p| p.into_inner());
            self.timings.sync.time(&mut *sync)
        };
        let synced = synced.map_err(|e| {
            let why = crate::BackendError::io(&e)
                .context(format_args!("cannot sync {}", self.wal.display()));
            StoreError::Backend(why)
        });
        self.progress.send_modify(|p| match synced {
            Ok(()) => p.durable = p.durable.max(seq),
            Err(_) => p.broken = true,
        });
        synced
    }
}

/// The syncer thread: makes each commit durable, answers its callers, then lets the writer
/// commit the next group.
pub(super) fn syncer_loop(wal: Arc<WalSync>, rx: mpsc::Receiver<ToSync>, inbox: Arc<Inbox>) {
    while let Ok((seq, callers)) = rx.recv() {
        let synced = wal.sync(seq);
        for c in callers {
            c(synced.clone());
        }
        inbox.synced(synced);
    }
}
