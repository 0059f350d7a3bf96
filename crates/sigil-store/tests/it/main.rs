//! The same store tests on SQLite and on PostgreSQL.
//!
//! PostgreSQL tests read `SIGIL_TEST_POSTGRES_URL` (`.ci/run` sets it and fails when the
//! database is unreachable). They are `#[ignore]`d, so that `cargo test` without a database reports
//! them as not run; `--include-ignored` runs them, and then a missing or unreachable database fails
//! them. Each test gets its own schema.

mod suite;
mod versions;

use std::sync::Arc;

use sigil_store::Store;

pub(crate) struct Db {
    pub(crate) store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

pub(crate) async fn sqlite() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let store = sigil_store::open(dir.path().join("sigil.db").to_str().unwrap())
        .await
        .unwrap();
    Db {
        store,
        _dir: Some(dir),
    }
}

/// A fresh schema in the test database.
pub(crate) async fn postgres() -> Db {
    let base = sigil_store::test_support::postgres_url("PostgreSQL store test");
    let url = sigil_store::test_support::fresh_schema(&base, "sigil_test").await;
    Db {
        store: sigil_store::open(&url).await.unwrap(),
        _dir: None,
    }
}

/// Defines each test twice: on SQLite and on PostgreSQL.
macro_rules! both {
    ($module:ident: $($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = crate::sqlite().await;
                    crate::$module::$name(db.store.clone()).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs PostgreSQL: set SIGIL_TEST_POSTGRES_URL and pass --include-ignored"]
                async fn $name() {
                    let db = crate::postgres().await;
                    crate::$module::$name(db.store.clone()).await;
                }
            )*
        }
    };
}

both!(suite:
    teams_and_bootstrap,
    versions_cas_and_history,
    delete_and_restore,
    listing_with_prefix_and_cursor,
    keys_and_revocation,
    audit_is_kept_and_paged,
    concurrent_writers_get_distinct_versions,
    rewrap_data_keys,
    audited_reads,
    concurrent_audited_reads_get_their_own_answers,
    audit_of_interleaved_teams_pages_in_order,
    reads_see_every_change_at_once,
    reads_of_a_secret_with_many_versions,
);

/// Versions' state, settings, pruning and purges.
mod version_state {
    both!(versions:
        versions_are_deleted_undeleted_and_destroyed,
        settings_prune_and_require_check_and_set,
        delete_version_after_deletes_versions_in_time,
        a_purge_removes_every_version,
        the_audit_log_is_pruned_oldest_first,
    );
}

// one server per SQLite database: a second one is refused, naming the lock, until the first
// is gone
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_database_serves_one_server_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sigil.db");
    let url = path.to_str().unwrap();
    let first = sigil_store::open(url).await.unwrap();
    let err = sigil_store::open(url)
        .await
        .err()
        .expect("a second store on one file");
    let msg = err.to_string();
    assert!(
        msg.contains("in use by another process") && msg.contains("sigil.db.lock"),
        "{msg}"
    );
    drop(first);
    sigil_store::open(url).await.unwrap().ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("private/sigil.db");
    let store = sigil_store::open(path.to_str().unwrap()).await.unwrap();
    store
        .append_audit(vec![sigil_store::AuditRow::default()])
        .await
        .unwrap();
    for f in std::fs::read_dir(path.parent().unwrap()).unwrap() {
        let p = f.unwrap().path();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", p.display());
    }
    let dir_mode = std::fs::metadata(path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
}

/// A store on a fresh schema whose URL adds `params` and an `application_name` of its own, by
/// which PostgreSQL's `pg_stat_activity` tells its connections: the store, the server's URL, the
/// schema's URL and that name.
async fn pool_store(
    what: &str,
    schema: &str,
    params: &str,
) -> (Arc<dyn Store>, String, String, String) {
    let base = sigil_store::test_support::postgres_url(what);
    let url = sigil_store::test_support::fresh_schema(&base, schema).await;
    let app = format!("{schema}_{}", std::process::id());
    let store = sigil_store::open(&format!("{url}&{params}&application_name={app}"))
        .await
        .unwrap();
    (store, base, url, app)
}

/// A connection of the test's own to PostgreSQL at `url`.
async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// How many connections PostgreSQL has open with `application_name` `app`.
async fn connections_of(client: &tokio_postgres::Client, app: &str) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .await
        .unwrap()
        .get(0)
}

// `pool_size` in the URL bounds the connections one store opens; forty writers still all get
// their own versions through two
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set SIGIL_TEST_POSTGRES_URL and pass --include-ignored"]
async fn a_postgres_pool_size_bounds_the_connections() {
    let (store, base, url, app) = pool_store(
        "PostgreSQL pool-size test",
        "sigil_pool_test",
        "pool_size=2",
    )
    .await;
    suite::concurrent_writers_get_distinct_versions(store.clone()).await;
    let open = connections_of(&connect(&base).await, &app).await;
    assert!((1..=2).contains(&open), "{open} connections open");
    drop(store);
    let err = sigil_store::open(&format!("{url}&pool_size=0"))
        .await
        .err()
        .expect("a pool of no connections is refused");
    assert!(
        err.to_string()
            .contains("pool_size must be a number from 1 to 1000, not \"0\""),
        "{err}"
    );
}

// `pool_min` opens that many connections when the store connects, before any request; the
// pool's own count says the same as PostgreSQL's, and a burst opens the rest up to `pool_size`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set SIGIL_TEST_POSTGRES_URL and pass --include-ignored"]
async fn a_postgres_pool_min_opens_connections_at_start() {
    let (store, base, url, app) = pool_store(
        "PostgreSQL pool-min test",
        "sigil_pool_min_test",
        "pool_size=6&pool_min=5",
    )
    .await;
    let client = connect(&base).await;
    let open = || connections_of(&client, &app);
    assert_eq!(open().await, 5);
    assert_eq!(
        store.connections(),
        Some(sigil_store::Connections {
            open: 5,
            idle: 5,
            max: 6
        })
    );
    suite::concurrent_writers_get_distinct_versions(store.clone()).await;
    let after = store.connections().unwrap();
    assert_eq!(after.open as i64, open().await);
    assert!((5..=6).contains(&after.open), "{after:?}");
    assert_eq!(after.idle, after.open, "{after:?}");
    drop(store);
    let err = sigil_store::open(&format!("{url}&pool_size=2&pool_min=3"))
        .await
        .err()
        .expect("a minimum over the size is refused");
    assert!(
        err.to_string()
            .contains("pool_min must be a number from 0 to 2, not \"3\""),
        "{err}"
    );
}

// the pool hands out the connection used last: one request at a time keeps one server process
// busy, not each of the open ones in turn (regression: a lone read took 0.6 ms longer once 64
// connections were open and were taken in turn)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set SIGIL_TEST_POSTGRES_URL and pass --include-ignored"]
async fn a_postgres_pool_reuses_the_connection_used_last() {
    let (store, base, _, app) = pool_store(
        "PostgreSQL pool-order test",
        "sigil_pool_lifo_test",
        "pool_size=9&pool_min=9",
    )
    .await;
    let client = connect(&base).await;
    let since: std::time::SystemTime = client
        .query_one("SELECT clock_timestamp()", &[])
        .await
        .unwrap()
        .get(0);
    for _ in 0..24 {
        store.ping().await.unwrap();
    }
    let used: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state_change > $2",
            &[&app, &since],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        used, 1,
        "24 requests one after another went to {used} connections"
    );
}

// a destroyed version's sealed bytes are gone from the file, not only marked (the test seal
// keeps the value readable in its bytes, so a search finds any copy left behind)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destroyed_version_leaves_no_bytes_in_the_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sigil.db");
    let store = sigil_store::open(path.to_str().unwrap()).await.unwrap();
    let t = suite::team(&store, "t").await;
    let canary = "destroyed-canary-0x5eed";
    // neighbours on the same page, written before and after it; and a value large enough for
    // overflow pages, which SQLite frees to its free list
    let large = format!("{canary}{}", "x".repeat(20_000));
    for (name, v) in [
        ("c", "before"),
        ("d", canary),
        ("d", "kept"),
        ("e", "after"),
        ("f", large.as_str()),
        ("f", "kept"),
    ] {
        store
            .put_secret(
                suite::put(t, name, v, None),
                suite::audit("secret.write", "t"),
            )
            .await
            .unwrap();
    }
    let on_disk = |path: &std::path::Path| {
        let c = rusqlite::Connection::open(path).unwrap();
        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        let mut all = Vec::new();
        for f in std::fs::read_dir(path.parent().unwrap()).unwrap() {
            all.extend(std::fs::read(f.unwrap().path()).unwrap_or_default());
        }
        all
    };
    let found = |bytes: &[u8]| bytes.windows(canary.len()).any(|w| w == canary.as_bytes());
    assert!(
        found(&on_disk(&path)),
        "the search finds the version before"
    );
    let a = suite::audit("version.destroy", "t");
    for name in ["d", "f"] {
        let changed = store
            .change_versions(
                t,
                name,
                &[1],
                sigil_store::VersionChange::Destroy,
                5,
                a.clone(),
            )
            .await
            .unwrap();
        assert_eq!(changed, Some(vec![1]));
    }
    assert!(
        !found(&on_disk(&path)),
        "the destroyed bytes are overwritten"
    );
}
