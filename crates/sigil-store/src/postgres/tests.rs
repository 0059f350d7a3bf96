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

// a URL PostgreSQL's client cannot read is refused before any connection, and the refusal does
// not quote the password
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_url_is_refused_without_its_password() {
    let err = PgStore::connect("postgres://u:canary-pw-7731@127.0.0.1:notaport/db")
        .await
        .expect_err("the port is not a number");
    let StoreError::InvalidUrl(why) = &err else {
        panic!("{err:?}");
    };
    assert!(why.contains("port"), "{why}");
    assert!(
        !format!("{err} {err:?}").contains("canary-pw-7731"),
        "{err:?}"
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
fn pool_size_and_pool_min_are_taken_out_of_the_url() {
    let base = "postgres://u@h:5432/db";
    let params = |size, min| PoolParams { size, min };
    assert_eq!(
        pool_params(base).unwrap(),
        (base.to_owned(), params(DEFAULT_POOL_SIZE, 0))
    );
    assert_eq!(
        pool_params(&format!("{base}?pool_size=8")).unwrap(),
        (base.to_owned(), params(8, 0))
    );
    assert_eq!(
        pool_params(&format!(
            "{base}?sslmode=disable&pool_size=1000&options=-cx%3Dy"
        ))
        .unwrap(),
        (
            format!("{base}?sslmode=disable&options=-cx%3Dy"),
            params(1000, 0)
        )
    );
    // the minimum is checked against the size wherever each one is in the query
    assert_eq!(
        pool_params(&format!("{base}?pool_min=8&sslmode=disable&pool_size=8")).unwrap(),
        (format!("{base}?sslmode=disable"), params(8, 8))
    );
    assert_eq!(
        pool_params(&format!("{base}?pool_min=64")).unwrap(),
        (base.to_owned(), params(DEFAULT_POOL_SIZE, 64))
    );
    for bad in ["0", "1001", "", "eight", "-1"] {
        let err = pool_params(&format!("{base}?pool_size={bad}")).unwrap_err();
        assert_eq!(
            err,
            StoreError::InvalidUrl(format!(
                "pool_size must be a number from 1 to 1000, not {bad:?}"
            ))
        );
    }
    for bad in ["9", "", "all", "-1"] {
        let err = pool_params(&format!("{base}?pool_size=8&pool_min={bad}")).unwrap_err();
        assert_eq!(
            err,
            StoreError::InvalidUrl(format!(
                "pool_min must be a number from 0 to 8, not {bad:?}"
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
    let (store, c) = fresh_store("PostgreSQL plan test", "sigil_plan_test").await;
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
    // on the reads' own connection, whose session plans the statement as the server runs it
    // (a generic plan)
    let c = store.reads.as_ref().unwrap().get().await.unwrap();
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
                &text,
                &none,
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

/// A read is answered only once the transaction holding its audit record has committed, and a
/// commit that fails fails the read without its value. A deferred constraint trigger on `audit`
/// (it runs at COMMIT) first waits for an advisory lock the test holds, then raises when the
/// test asks it to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set SIGIL_TEST_POSTGRES_URL and pass --include-ignored"]
async fn a_read_is_answered_only_after_its_audit_record_commits() {
    use std::time::{Duration, Instant};
    let base = crate::test_support::postgres_url("PostgreSQL audited-read commit test");
    let url = crate::test_support::fresh_schema(&base, "sigil_commit_test").await;
    let store = std::sync::Arc::new(PgStore::connect(&url).await.unwrap());
    let (test, conn) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(conn);
    test.batch_execute(
        "INSERT INTO teams (name, created_at) VALUES ('t', 0);
         INSERT INTO secrets (team_id, name, version, created_at, updated_at, updated_by)
             SELECT id, 's', 1, 0, 0, 'k' FROM teams;
         INSERT INTO secret_versions (team_id, name, version, data_key_version, ciphertext, created_at, created_by)
             SELECT id, 's', 1, 1, '\\x5345414c4544', 0, 'k' FROM teams;
         CREATE TABLE commit_fails (fail boolean NOT NULL);
         INSERT INTO commit_fails VALUES (false);
         CREATE FUNCTION hold_commit() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             PERFORM pg_advisory_xact_lock_shared(7317);
             IF (SELECT fail FROM commit_fails) THEN
                 RAISE EXCEPTION 'commit refused by the test';
             END IF;
             RETURN NULL;
         END $$;
         CREATE CONSTRAINT TRIGGER hold_commit AFTER INSERT ON audit
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION hold_commit();",
    )
    .await
    .unwrap();
    let team_id: i64 = test
        .query_one("SELECT id FROM teams", &[])
        .await
        .unwrap()
        .get(0);
    let records = || async {
        let n: i64 = test
            .query_one("SELECT count(*) FROM audit", &[])
            .await
            .unwrap()
            .get(0);
        n
    };
    // the test holds the lock: the read's transaction reaches COMMIT and waits there
    test.execute("SELECT pg_advisory_lock(7317)", &[])
        .await
        .unwrap();
    let s = store.clone();
    let a = read_audit();
    let read = tokio::spawn(async move { s.get_secret_audited(team_id, "s", None, a).await });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = test
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if waiting > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the read never reached its commit"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !read.is_finished(),
        "a read answered before its audit record committed"
    );
    assert_eq!(
        records().await,
        0,
        "the record is not visible before its commit"
    );
    test.execute("SELECT pg_advisory_unlock(7317)", &[])
        .await
        .unwrap();
    let (_, version) = tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("an answer within 10 s of the commit")
        .unwrap()
        .unwrap()
        .expect("the secret");
    assert_eq!(version.ciphertext, b"SEALED");
    assert_eq!(records().await, 1);
    // the batch's commit is counted before its callers are answered: a caller that asks
    // `/metrics` next sees its own read there (regression: counted after the answers, so a
    // server test reading `/metrics` after one read found no commit at all, now and then)
    let commits = store.timings().commit.count();
    assert_eq!(commits, 1);
    for i in 1..=200 {
        store
            .get_secret_audited(team_id, "s", None, read_audit())
            .await
            .unwrap()
            .expect("the secret");
        assert_eq!(store.timings().commit.count(), commits + i);
    }
    // a commit that fails: the read fails closed and nothing is recorded
    test.execute("UPDATE commit_fails SET fail = true", &[])
        .await
        .unwrap();
    let read = store.get_secret_audited(team_id, "s", None, read_audit());
    let err = tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("an answer within 10 s")
        .expect_err("a read whose audit record did not commit");
    assert!(
        err.to_string().contains("commit refused by the test"),
        "{err}"
    );
    assert_eq!(records().await, 201);
}

/// A store on a fresh schema (`what` names the test when PostgreSQL is not configured), and a
/// connection of its pool.
async fn fresh_store(what: &str, schema: &str) -> (PgStore, deadpool_postgres::Client) {
    let base = crate::test_support::postgres_url(what);
    let url = crate::test_support::fresh_schema(&base, schema).await;
    let store = PgStore::connect(&url).await.unwrap();
    let c = store.client().await.unwrap();
    (store, c)
}

/// A store on a fresh schema holding team `t` with secret `s` (one version, sealed bytes
/// `SEALED`), as the batch-read tests want them; a connection of its pool and the team's id.
async fn one_secret(what: &str, schema: &str) -> (PgStore, deadpool_postgres::Client, i64) {
    let (store, c) = fresh_store(what, schema).await;
    c.batch_execute(
        "INSERT INTO teams (name, created_at) VALUES ('t', 0);
         INSERT INTO secrets (team_id, name, version, created_at, updated_at, updated_by)
             SELECT id, 's', 1, 0, 0, 'k' FROM teams;
         INSERT INTO secret_versions (team_id, name, version, data_key_version, ciphertext, created_at, created_by)
             SELECT id, 's', 1, 1, '\\x5345414c4544', 0, 'k' FROM teams;",
    )
    .await
    .unwrap();
    let team_id = c
        .query_one("SELECT id FROM teams", &[])
        .await
        .unwrap()
        .get(0);
    (store, c, team_id)
}

/// The audit record of a read of secret `s` of team `t` by key `k`.
fn read_audit() -> AuditRow {
    AuditRow {
        key_id: "k".into(),
        action: crate::AuditAction::SecretRead,
        name: Some("s".into()),
        team: "t".into(),
        client: "c".into(),
        ..Default::default()
    }
}

/// An audited read of [`one_secret`]'s secret, which must be found.
async fn read_s(store: &PgStore, team_id: i64) {
    let found = store
        .get_secret_audited(team_id, "s", None, read_audit())
        .await;
    assert_eq!(found.unwrap().expect("the secret").1.ciphertext, b"SEALED");
}

// regression: PostgreSQL planned the batch of audited reads anew for every batch (a custom plan
// looked cheaper: it knows the arrays' lengths), 0.2–0.4 ms of a lone read's ~1 ms once the
// tables held tens of thousands of secrets; the reads' own connection plans it once
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set SIGIL_TEST_POSTGRES_URL and pass --include-ignored"]
async fn batches_of_reads_are_planned_once_on_their_own_connection() {
    let (store, c, team_id) = one_secret("PostgreSQL read-plan test", "sigil_read_plan").await;
    for _ in 0..12 {
        read_s(&store, team_id).await;
    }
    // the reads' pool holds one connection: this is the one that ran the twelve batches
    let reads = store
        .reads
        .as_ref()
        .expect("a connection of its own")
        .get()
        .await
        .unwrap();
    let plans = reads
        .query_one(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1",
            &[&READ_BATCH],
        )
        .await
        .expect("the batch's statement is prepared on the reads' connection");
    let (generic, custom): (i64, i64) = (plans.get(0), plans.get(1));
    assert_eq!((generic, custom), (12, 0));
    // every other statement is left to PostgreSQL's choice
    let mode = |c: &tokio_postgres::Row| c.get::<_, String>(0);
    assert_eq!(
        mode(&reads.query_one("SHOW plan_cache_mode", &[]).await.unwrap()),
        "force_generic_plan"
    );
    assert_eq!(
        mode(&c.query_one("SHOW plan_cache_mode", &[]).await.unwrap()),
        "auto"
    );
    assert_eq!(store.connections().max, DEFAULT_POOL_SIZE);
}

// regression: the reads' connection kept a plan of the batch made while `secrets` held one row
// (a sequential scan of the table) as the table grew: 300 reads/s at one connection after 45,000
// writes, against 2,400 on a new plan. It now plans anew each REPLAN_EVERY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set SIGIL_TEST_POSTGRES_URL and pass --include-ignored"]
async fn the_reads_plan_follows_the_tables_growth() {
    let (store, c, team_id) = one_secret("PostgreSQL read-replan test", "sigil_read_replan").await;
    let read = || read_s(&store, team_id);
    // the plan the reads' connection holds for the batch, as EXPLAIN shows it
    let plan = || async {
        let reads = store.reads.as_ref().unwrap().get().await.unwrap();
        let name: String = reads
            .query_one(
                "SELECT name FROM pg_prepared_statements WHERE statement = $1",
                &[&READ_BATCH],
            )
            .await
            .unwrap()
            .get(0);
        let rows = reads
            .simple_query(&format!(
                "EXPLAIN (COSTS OFF) EXECUTE {name}(ARRAY[{team_id}]::bigint[], ARRAY['s'], \
                 ARRAY[NULL]::bigint[], ARRAY[0]::bigint[], ARRAY['k'], ARRAY[NULL]::text[], \
                 ARRAY['secret.read'], ARRAY['t'], ARRAY['s'], ARRAY['ok'], ARRAY['c'], \
                 ARRAY[NULL]::text[], ARRAY[NULL]::text[], 'not_found', ARRAY[NULL]::text[], \
                 ARRAY[NULL]::text[])"
            ))
            .await
            .unwrap();
        rows.iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    read().await;
    let small = plan().await;
    assert!(small.contains("Seq Scan on secrets"), "{small}");
    // the table grows (autovacuum has not analysed it); the plan made before is kept until the
    // next replanning, and that one looks each secret up by its key
    c.batch_execute(
        "INSERT INTO secrets (team_id, name, version, created_at, updated_at, updated_by)
             SELECT t.id, 'many/' || g, 1, 0, 0, 'k' FROM teams t, generate_series(1, 20000) g",
    )
    .await
    .unwrap();
    read().await;
    assert!(plan().await.contains("Seq Scan on secrets"));
    tokio::time::sleep(REPLAN_EVERY + std::time::Duration::from_millis(100)).await;
    read().await;
    let grown = plan().await;
    assert!(
        grown.contains("Index Scan using secrets_pkey on secrets"),
        "{grown}"
    );
}

// regression: a page of names was read in byte order (`COLLATE "C"`) off the primary key, which
// is in the database's collation: under any other the whole team was scanned and sorted (280 ms
// for a page of 100 among a million secrets, bench/scale.sh)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set SIGIL_TEST_POSTGRES_URL and pass --include-ignored"]
async fn a_page_of_names_is_read_through_an_index_in_byte_order() {
    let (store, c) = fresh_store("PostgreSQL plan test", "sigil_list_plan").await;
    c.batch_execute(
        "INSERT INTO teams (name, created_at) VALUES ('t', 0);
         INSERT INTO secrets (team_id, name, version, created_at, updated_at, updated_by)
             SELECT t.id, format('app%s/s%s', g / 100, g), 1, 0, 0, 'k'
             FROM teams t, generate_series(1, 20000) g;
         ANALYZE secrets",
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
            "EXPLAIN (COSTS OFF) {}",
            super::store::LIST_SECRETS
        ))
        .await
        .unwrap();
    for prefix in ["", "app42/"] {
        let upper = format!("{prefix}\u{10FFFF}");
        let plan: Vec<String> = c
            .query(&st, &[&team_id, &prefix, &upper, &"", &101i64])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let plan = plan.join("\n");
        assert!(plan.contains("secrets_team_name_bytes"), "{plan}");
        assert!(!plan.contains("Sort"), "{plan}");
    }
    // and the page is in byte order
    let rows = store.list_secrets(team_id, "app1", None, 5).await.unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "app1/s100",
            "app1/s101",
            "app1/s102",
            "app1/s103",
            "app1/s104"
        ]
    );
}
