//! Opening the file: the lock that keeps a second server off it, the connections, the
//! migrations, and the threads.

#[allow(unused_imports)]
use super::*;

pub(super) const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_init.sql"),
    include_str!("../../migrations/sqlite/0002_audit_blocks.sql"),
    include_str!("../../migrations/sqlite/0003_audit_target.sql"),
    include_str!("../../migrations/sqlite/0004_web_sessions.sql"),
    include_str!("../../migrations/sqlite/0005_audit_via.sql"),
    include_str!("../../migrations/sqlite/0006_version_state.sql"),
];
/// Opens a connection. `secure_delete`: what a change frees (a destroyed version's ciphertext, a
/// pruned or purged version, on its page or on overflow pages) is overwritten with zeros, not
/// left in free space; rows are rarely deleted, so it costs next to nothing.
pub(super) fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
         PRAGMA secure_delete = ON;",
    )?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

pub(super) fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tracing::info!(version = i + 1, "applying SQLite migration");
        tx.execute_batch(sql)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
    }
    tx.commit()
}

/// A file beside the database: its name with `suffix` (`-wal`, `.lock`).
pub(super) fn beside(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

impl SqliteStore {
    /// As [`SqliteStore::open`]; `sync` replaces the `fdatasync` of the WAL (tests).
    pub(super) async fn open_with(
        path: &Path,
        sync: Option<SyncWal>,
        exclusive: bool,
    ) -> Result<Self> {
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
            // the writer checkpoints by itself, between commits (`Writer::checkpoint_if_due`)
            w.wal_hook(Some(note_wal_pages));
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
        let timings = Arc::new(crate::StoreTimings::default());
        let wal = Arc::new(WalSync {
            sync: Mutex::new(sync),
            wal: wal_path,
            progress: progress.clone(),
            timings: timings.clone(),
        });
        let (to_syncer, from_writer) = mpsc::channel();
        let writer = Arc::new(Mutex::new(Writer {
            conn,
            in_tx: false,
            callers: Vec::new(),
            rows: Vec::new(),
            inbox: inbox.clone(),
            broken: None,
            to_syncer,
            wal: wal.clone(),
            progress: progress.clone(),
            latest: LatestVersions::default(),
            timings: timings.clone(),
            checkpoint_failing: false,
        }));
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
        let to_writer = inbox.clone();
        spawn(
            "sigil-sqlite-sync",
            Box::new(move || syncer_loop(wal, from_writer, to_writer)),
        )?;
        let (w, i) = (writer.clone(), inbox.clone());
        spawn("sigil-sqlite-writer", Box::new(move || writer_loop(w, i)))?;
        Ok(SqliteStore {
            path,
            _lock: lock,
            inbox,
            writer,
            readers: Mutex::new(readers),
            progress,
            timings,
        })
    }
}
