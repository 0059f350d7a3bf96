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

/// A sync that tells the test it started (and on which thread) and waits for the test's verdict.
fn probe() -> (
    SyncWal,
    mpsc::Receiver<String>,
    mpsc::Sender<std::io::Result<()>>,
) {
    let (started_tx, started) = mpsc::channel();
    let (verdict, verdict_rx) = mpsc::channel::<std::io::Result<()>>();
    let sync: SyncWal = Box::new(move || {
        let thread = std::thread::current().name().unwrap_or("").to_owned();
        let _ = started_tx.send(thread);
        verdict_rx.recv().unwrap_or(Ok(()))
    });
    (sync, started, verdict)
}

/// A store whose WAL syncs wait for the test's verdict.
async fn probed_store() -> (
    tempfile::TempDir,
    Arc<SqliteStore>,
    mpsc::Receiver<String>,
    mpsc::Sender<std::io::Result<()>>,
) {
    let dir = tempfile::tempdir().unwrap();
    let (sync, started, verdict) = probe();
    let store = SqliteStore::open_with(&dir.path().join("s.db"), Some(sync), true)
        .await
        .unwrap();
    (dir, Arc::new(store), started, verdict)
}

/// A spawned write's outcome, or a failure after 10 s: no test waits without a deadline.
async fn within<T>(task: tokio::task::JoinHandle<T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("no answer within 10 s")
        .unwrap()
}

/// Waits until `n` pieces of work wait in the inbox (watched, not guessed with a sleep), or fails
/// with `what` after 10 s.
async fn until_waiting(store: &SqliteStore, n: usize, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store.inbox.lock().work.len() < n {
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// An audited read of secret `s` of team 1, spawned.
fn spawn_read(
    store: &Arc<SqliteStore>,
) -> tokio::task::JoinHandle<Result<Option<(SecretRow, VersionRow)>>> {
    let s = store.clone();
    tokio::spawn(async move { s.get_secret_audited(1, "s", None, row("read")).await })
}

/// Waits until a sync starts; the name of the thread that runs it.
fn wait_started(started: &mpsc::Receiver<String>) -> String {
    started
        .recv_timeout(Duration::from_secs(10))
        .expect("the syncer was not asked to sync")
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
    within(write).await.unwrap();
    assert_eq!(within(listing).await.unwrap().len(), 1);
}

/// Team `t` (id 1) with a secret `s` at version 1, written through the probe (each write's
/// sync is let through).
async fn team_with_a_secret(
    store: &Arc<SqliteStore>,
    started: &mpsc::Receiver<String>,
    verdict: &mpsc::Sender<std::io::Result<()>>,
) {
    let s = store.clone();
    let team = tokio::spawn(async move {
        let key = crate::DataKeyRow {
            team_id: 0,
            version: 1,
            master_key_id: "m".into(),
            wrapped: vec![1],
            created_at: 1,
        };
        s.create_team("t", 1, key, None, row("team")).await
    });
    wait_started(started);
    verdict.send(Ok(())).unwrap();
    assert_eq!(within(team).await.unwrap().id, 1);
    let s = store.clone();
    let put = tokio::spawn(async move {
        let put = crate::PutSecret {
            team_id: 1,
            name: "s".into(),
            cas: None,
            by: "k".into(),
            at: 2,
            data_key_version: 1,
            seal: Box::new(|_| Ok(b"sealed".to_vec())),
        };
        s.put_secret(put, row("write")).await
    });
    wait_started(started);
    verdict.send(Ok(())).unwrap();
    within(put).await.unwrap();
}

/// A read is answered only once its own audit record is durable; when that record's sync
/// fails, the read fails and its value is not given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_is_answered_only_after_its_audit_record_is_synced() {
    let (_dir, store, started, verdict) = probed_store().await;
    team_with_a_secret(&store, &started, &verdict).await;
    let read = spawn_read(&store);
    wait_started(&started);
    // the record is committed (the WAL written) but not synced: the value waits
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !read.is_finished(),
        "a read answered before its audit record was durable"
    );
    verdict.send(Ok(())).unwrap();
    let (_, version) = within(read).await.unwrap().expect("the secret");
    assert_eq!(version.ciphertext, b"sealed");
    // the same read whose record cannot be made durable fails closed (alone, it syncs on its
    // own thread), and so does every later write and read, as after any failed sync
    let read = spawn_read(&store);
    let thread = wait_started(&started);
    assert!(!thread.starts_with("sigil-sqlite"), "{thread}");
    verdict
        .send(Err(std::io::Error::other("disk gone")))
        .unwrap();
    let err = within(read)
        .await
        .expect_err("a read whose record was lost");
    assert!(err.to_string().contains("cannot sync"), "{err}");
    let later = store.append_audit(vec![row("later")]).await;
    assert!(later.unwrap_err().to_string().contains("cannot sync"));
    let again = store.get_secret_audited(1, "s", None, row("read")).await;
    assert!(again.unwrap_err().to_string().contains("cannot sync"));
    assert!(
        store.audit("t", 0, 0, 10).await.is_err(),
        "metadata may be unsynced"
    );
}

/// A read while the store has nothing else to do is done whole by the caller's thread (no
/// thread to wake), and still answers only once its record is durable; work arriving meanwhile
/// waits, and the writer takes it up when the read is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_alone_is_done_on_its_own_thread_and_work_arriving_meanwhile_follows() {
    let (_dir, store, started, verdict) = probed_store().await;
    team_with_a_secret(&store, &started, &verdict).await;
    let read = spawn_read(&store);
    let thread = wait_started(&started);
    assert!(
        !thread.starts_with("sigil-sqlite"),
        "a lone read was handed to {thread}"
    );
    // a write arriving now is not taken up while the read holds the writer
    let s = store.clone();
    let write = tokio::spawn(async move { s.append_audit(vec![row("meanwhile")]).await });
    until_waiting(&store, 1, "the write did not reach the inbox").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !read.is_finished(),
        "a read answered before its record was durable"
    );
    assert!(!write.is_finished());
    verdict.send(Ok(())).unwrap();
    let (_, version) = within(read).await.unwrap().expect("the secret");
    assert_eq!(version.ciphertext, b"sealed");
    // the writer was woken for the write: its group is synced by the syncer
    assert_eq!(wait_started(&started), "sigil-sqlite-sync");
    verdict.send(Ok(())).unwrap();
    within(write).await.unwrap();
    let names: Vec<_> = store
        .audit("t", 0, 0, 10)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| r.name)
        .collect();
    assert!(
        names.contains(&"read".to_owned()) && names.contains(&"meanwhile".to_owned()),
        "{names:?}"
    );
}

/// A write while the store is idle is done on the caller's thread too; a read that arrives
/// while another caller waits for its answer goes to the writer (and into its next group), not
/// onto its own thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_while_others_wait_joins_the_writers_next_group() {
    let (_dir, store, started, verdict) = probed_store().await;
    team_with_a_secret(&store, &started, &verdict).await;
    let s = store.clone();
    let write = tokio::spawn(async move { s.append_audit(vec![row("first")]).await });
    let thread = wait_started(&started);
    assert!(!thread.starts_with("sigil-sqlite"), "{thread}");
    let read = spawn_read(&store);
    until_waiting(&store, 1, "the read did not reach the inbox").await;
    verdict.send(Ok(())).unwrap();
    within(write).await.unwrap();
    assert_eq!(wait_started(&started), "sigil-sqlite-sync");
    verdict.send(Ok(())).unwrap();
    assert!(within(read).await.unwrap().is_some());
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
    // every later write is waiting in the inbox before the first sync returns: watched, not
    // guessed with a sleep (a write late on a loaded machine formed a third group, whose sync
    // nobody answered, and the test waited for ever)
    until_waiting(&store, 50, "the 50 writes did not reach the inbox").await;
    verdict.send(Ok(())).unwrap();
    within(first).await.unwrap();
    // all 50 went into one commit: exactly one more sync answers all of them
    wait_started(&started);
    verdict.send(Ok(())).unwrap();
    for w in later {
        within(w).await.unwrap();
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
    let err = within(write).await.unwrap_err().to_string();
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

/// The page-cache gap a `kill -9` cannot show: the WAL's sync fails after some groups were made
/// durable. Every write is either acknowledged or refused; none is acknowledged whose group's sync
/// failed; and reopening the file finds every acknowledged write. (A missing sync would leave a
/// write acknowledged that the failing sync should have refused.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_sync_never_acknowledges_what_it_did_not_make_durable() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    // the first 20 syncs are real; every later one fails
    let syncs = Arc::new(AtomicUsize::new(0));
    let counted = syncs.clone();
    let wal = dir.path().join("s.db-wal");
    let sync: SyncWal = Box::new(move || {
        if counted.fetch_add(1, Ordering::SeqCst) >= 20 {
            return Err(std::io::Error::other("the disk went away"));
        }
        std::fs::File::open(&wal)?.sync_data()
    });
    let store = Arc::new(
        SqliteStore::open_with(&path, Some(sync), true)
            .await
            .unwrap(),
    );
    let mut writers = Vec::new();
    for w in 0..4 {
        let s = store.clone();
        writers.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for i in 0..60 {
                let label = format!("w{w}-{i}");
                let r = s.append_audit(vec![row(&label)]).await;
                outcomes.push((label, r.is_ok()));
            }
            outcomes
        }));
    }
    let mut acked = Vec::new();
    let mut refused = 0;
    for w in writers {
        let outcomes = within(w).await;
        // once refused, never acknowledged again: nothing after the failed sync is
        let first_refusal = outcomes
            .iter()
            .position(|(_, ok)| !ok)
            .unwrap_or(outcomes.len());
        assert!(
            outcomes[first_refusal..].iter().all(|(_, ok)| !ok),
            "a write was acknowledged after a sync had failed"
        );
        for (label, ok) in outcomes {
            if ok {
                acked.push(label);
            } else {
                refused += 1;
            }
        }
    }
    assert!(
        syncs.load(Ordering::SeqCst) > 20,
        "the failing sync was reached"
    );
    assert!(
        !acked.is_empty() && refused > 0,
        "{} acked, {refused} refused",
        acked.len()
    );
    assert_eq!(acked.len() + refused, 240);
    drop(store);
    let reopened = SqliteStore::open(&path).await.unwrap();
    let kept: std::collections::HashSet<String> = reopened
        .audit("t", 0, 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| r.name)
        .collect();
    for label in &acked {
        assert!(kept.contains(label), "{label} was acknowledged and is lost");
    }
}

/// The writer checkpoints the WAL itself, between group commits (SQLite's automatic checkpoint
/// inside `COMMIT` is off): a WAL past 1,000 pages is copied into the database file, the WAL
/// starts again from its beginning instead of growing, each checkpoint is timed, and nothing
/// written is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_checkpoints_the_wal_so_that_it_does_not_grow() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sigil.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let wide = "c".repeat(2000);
    // ~12 MB of records, three times what one WAL of 1,000 pages holds
    for i in 0..60 {
        let rows = (0..100)
            .map(|j| AuditRow {
                client: format!("{i}-{j}-{wide}"),
                ..row("secret.read")
            })
            .collect();
        store.append_audit(rows).await.unwrap();
    }
    let t = store.timings();
    assert!(
        t.checkpoint.count() >= 2,
        "{} checkpoints",
        t.checkpoint.count()
    );
    assert!(t.commit.count() >= 60 && t.sync.count() >= 60);
    let wal = std::fs::metadata(beside(&path, "-wal")).unwrap().len();
    assert!(wal < 8 << 20, "the WAL grew to {wal} bytes");
    let check = Connection::open(&path).unwrap();
    let n: i64 = check
        .query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 6000);
    let ok: String = check
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}

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
