//! For the PostgreSQL tests of Sigil's crates, not for use elsewhere: each test gets a schema
//! of its own in the database that `SIGIL_TEST_POSTGRES_URL` names.

use std::sync::atomic::{AtomicU32, Ordering};

/// The attribute every PostgreSQL test carries, so that `cargo test` without a database reports
/// it as ignored (not as passed); `.ci/run` passes `--include-ignored` with the variable set.
pub const IGNORED_WITHOUT_POSTGRES: &str =
    "needs PostgreSQL: set SIGIL_TEST_POSTGRES_URL and pass --include-ignored";

/// `SIGIL_TEST_POSTGRES_URL`.
///
/// # Panics
/// When it is not set: a PostgreSQL test runs only when asked for (it is `#[ignore]`d
/// otherwise), and then a missing database is a failure, not a reason to pass.
#[must_use]
pub fn postgres_url(what: &str) -> String {
    std::env::var("SIGIL_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!("{what}: SIGIL_TEST_POSTGRES_URL is not set ({IGNORED_WITHOUT_POSTGRES})")
    })
}

/// Drops and creates a schema named `prefix`, the process id and a counter, and returns `base`
/// with its connections' `search_path` set to it.
///
/// # Panics
/// When the database cannot be reached or the schema cannot be made: with
/// `SIGIL_TEST_POSTGRES_URL` set, that is a failure, not a reason to skip.
pub async fn fresh_schema(base: &str, prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let schema = format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    let (client, conn) = tokio_postgres::connect(base, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!("SIGIL_TEST_POSTGRES_URL is set but the database is unreachable: {e}")
        });
    tokio::spawn(conn);
    drop_schemas_of_finished_runs(&client, prefix).await;
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))
        .await
        .unwrap_or_else(|e| panic!("cannot create schema {schema}: {e}"));
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-csearch_path%3D{schema}")
}

/// Drops the schemas `prefix` left by test processes that are gone, so that a database used for
/// many runs does not fill up (a test that analyses or locks every table then runs out of locks).
/// A schema whose process still runs (or whose id was taken by another process) is kept.
async fn drop_schemas_of_finished_runs(client: &tokio_postgres::Client, prefix: &str) {
    let Ok(rows) = client
        .query(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)",
            &[&format!("{prefix}_")],
        )
        .await
    else {
        return;
    };
    for row in rows {
        let name: String = row.get(0);
        let pid = name[prefix.len() + 1..].split('_').next().unwrap_or("");
        let gone = pid.parse::<u32>().is_ok_and(|p| {
            p != std::process::id() && !std::path::Path::new(&format!("/proc/{p}")).exists()
        });
        if gone {
            // another test process may be dropping it too: either one is enough
            let _ = client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .await;
        }
    }
}
