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
#[ignore = "needs PostgreSQL: set SIGIL_TEST_POSTGRES_URL and pass --include-ignored"]
async fn a_refused_connection_names_the_databases_reason() {
    let base = crate::test_support::postgres_url("PostgreSQL connection-error test");
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
#[ignore = "needs PostgreSQL: set SIGIL_TEST_POSTGRES_URL and pass --include-ignored"]
async fn the_batched_read_finds_a_version_by_its_whole_key() {
    let base = crate::test_support::postgres_url("PostgreSQL plan test");
    let url = crate::test_support::fresh_schema(&base, "sigil_plan_test").await;
    let store = PgStore::connect(&url).await.unwrap();
    let c = store.client().await.unwrap();
    c.batch_execute(
        "INSERT INTO teams (name, created_at) VALUES ('t', 0);
         INSERT INTO secrets (team_id, name, version, created_at, updated_at, updated_by)
             SELECT id, 'hot', 2000, 0, 0, 'k' FROM teams;
         INSERT INTO secret_versions (team_id, name, version, data_key_version, ciphertext, created_at, created_by)
             SELECT t.id, 'hot', g, 1, '\\x00', 0, 'k' FROM teams t, generate_series(1, 2000) g;
         ANALYZE secrets, secret_versions",
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
                &AuditOutcome::NotFound.as_str(),
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
