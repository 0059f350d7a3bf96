//! The writer and syncer threads: the inbox where writes wait, the group commit, the pipelined
//! sync of the WAL, and the writer's cache of the latest versions.

#[allow(unused_imports)]
use super::*;

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
    /// The pages in the WAL after the last commit on this thread's connection (the writer's).
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

    pub(super) fn push(&self, work: Work) {
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
    pub(super) inbox: Arc<Inbox>,
    /// Set after a failed sync: every later write fails with it.
    pub(super) broken: Option<StoreError>,
    pub(super) to_syncer: mpsc::Sender<ToSync>,
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

    /// Commits the open transaction (the WAL is written, not yet synced) and hands its callers
    /// to the syncer.
    pub(super) fn commit(&mut self) {
        self.in_tx = false;
        let callers = std::mem::take(&mut self.callers);
        // counted before the commit: a read that sees this commit also sees the count
        let mut seq = 0;
        self.progress.send_modify(|p| {
            p.committed += 1;
            seq = p.committed;
        });
        let committed = self.timings.commit.time(|| Self::run(&self.conn, "COMMIT"));
        let callers = match committed {
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
/// flight lets the next ones gather.
pub(super) fn writer_loop(mut w: Writer) {
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
                            // a version deleted or destroyed by then is found, not read
                            let readable = found.as_ref().is_some_and(|(_, v)| {
                                v.state_at(audit.at) == crate::VersionState::Live
                            });
                            if !readable {
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
pub(super) fn syncer_loop(
    mut sync: SyncWal,
    wal: PathBuf,
    rx: mpsc::Receiver<ToSync>,
    inbox: Arc<Inbox>,
    progress: Arc<watch::Sender<Progress>>,
    timings: Arc<crate::StoreTimings>,
) {
    while let Ok((seq, callers)) = rx.recv() {
        let synced = timings.sync.time(&mut sync).map_err(|e| {
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
