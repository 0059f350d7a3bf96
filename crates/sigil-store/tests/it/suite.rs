//! The store test bodies, run on each backend.

use std::sync::Arc;

use sigil_store::{AuditRow, DataKeyRow, KeyRow, PutSecret, Store, StoreError};

pub(crate) fn audit(action: &str, team: &str) -> AuditRow {
    AuditRow {
        at: 1_000,
        key_id: "k1".into(),
        role: Some(sigil_store::Role::Admin),
        action: action.parse().unwrap(),
        team: team.into(),
        outcome: "ok".parse().unwrap(),
        client: "127.0.0.1".into(),
        ..Default::default()
    }
}

fn data_key(version: i32) -> DataKeyRow {
    DataKeyRow {
        team_id: 0,
        version,
        master_key_id: "m1".into(),
        wrapped: vec![1, 2, 3],
        created_at: 1,
    }
}

pub(crate) async fn team(store: &Arc<dyn Store>, name: &str) -> i64 {
    store
        .create_team(name, 1, data_key(1), None, audit("team.create", name))
        .await
        .unwrap()
        .id
}

pub(crate) fn put(team_id: i64, name: &str, value: &str, cas: Option<i64>) -> PutSecret {
    let value = value.to_owned();
    PutSecret {
        team_id,
        name: name.into(),
        cas,
        by: "k1".into(),
        at: 2_000,
        data_key_version: 1,
        // a stand-in for sealing that still depends on the version, as the real one does
        seal: Box::new(move |version| Ok(format!("{version}:{value}").into_bytes())),
    }
}

/// What spawned tasks returned, in the order they were spawned.
async fn results_of<T>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

pub(crate) async fn teams_and_bootstrap(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
    assert!(store.is_empty().await.unwrap());
    let key = KeyRow {
        id: "boot".into(),
        team_id: 0,
        team_name: String::new(),
        role: sigil_store::Role::Admin,
        hash: vec![9; 32],
        name: "bootstrap".into(),
        bootstrap: true,
        created_at: 1,
        created_by: "bootstrap".into(),
        revoked_at: None,
    };
    let t = store
        .create_team(
            "default",
            1,
            data_key(1),
            Some(key),
            audit("team.create", "default"),
        )
        .await
        .unwrap();
    assert!(!store.is_empty().await.unwrap());
    assert_eq!(store.team("default").await.unwrap().unwrap(), t);
    assert_eq!(store.team("nope").await.unwrap(), None);
    let e = store
        .create_team(
            "default",
            1,
            data_key(1),
            None,
            audit("team.create", "default"),
        )
        .await
        .unwrap_err();
    assert_eq!(e, StoreError::Exists("team \"default\"".into()));
    team(&store, "etl").await;
    let names: Vec<String> = store
        .list_teams()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["default", "etl"]);
    let k = store.key("boot").await.unwrap().unwrap();
    assert!(k.bootstrap && k.team_name == "default" && k.role == sigil_store::Role::Admin);
    assert_eq!(
        store.data_keys(t.id).await.unwrap()[0].wrapped,
        vec![1, 2, 3]
    );
}

pub(crate) async fn versions_cas_and_history(store: Arc<dyn Store>) {
    let t = team(&store, "t").await;
    let a = store
        .put_secret(
            put(t, "db/password", "one", Some(0)),
            audit("secret.write", "t"),
        )
        .await
        .unwrap();
    assert_eq!(a.version, 1);
    let e = store
        .put_secret(
            put(t, "db/password", "x", Some(0)),
            audit("secret.write", "t"),
        )
        .await
        .unwrap_err();
    assert_eq!(e, StoreError::Conflict { current: 1 });
    let e = store
        .put_secret(
            put(t, "db/password", "x", Some(5)),
            audit("secret.write", "t"),
        )
        .await
        .unwrap_err();
    assert_eq!(e, StoreError::Conflict { current: 1 });
    let b = store
        .put_secret(
            put(t, "db/password", "two", Some(1)),
            audit("secret.write", "t"),
        )
        .await
        .unwrap();
    assert_eq!(b.version, 2);
    let c = store
        .put_secret(
            put(t, "db/password", "three", None),
            audit("secret.write", "t"),
        )
        .await
        .unwrap();
    assert_eq!(c.version, 3);
    let (row, v) = store
        .get_secret(t, "db/password", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((row.version, v.ciphertext), (3, b"3:three".to_vec()));
    let (_, v) = store
        .get_secret(t, "db/password", Some(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.ciphertext, b"1:one".to_vec());
    assert_eq!(
        store.get_secret(t, "db/password", Some(9)).await.unwrap(),
        None
    );
    assert_eq!(store.get_secret(t, "other", None).await.unwrap(), None);
    let (row, versions) = store
        .history(t, "db/password", None, 1000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.deleted_at, None);
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [3, 2, 1]
    );
    assert!(
        versions.iter().all(|v| v.ciphertext.is_empty()),
        "histories carry no values"
    );
    // every write left its audit record, with the version it made
    let log = store.audit("t", 0, 0, 100).await.unwrap();
    let writes: Vec<Option<i64>> = log
        .iter()
        .filter(|a| a.action.as_str() == "secret.write")
        .map(|a| a.version)
        .collect();
    assert_eq!(writes, [Some(1), Some(2), Some(3)]);
    // another team does not see it
    let other = team(&store, "other").await;
    assert_eq!(
        store.get_secret(other, "db/password", None).await.unwrap(),
        None
    );
}

pub(crate) async fn delete_and_restore(store: Arc<dyn Store>) {
    let t = team(&store, "t").await;
    store
        .put_secret(put(t, "s", "v1", None), audit("secret.write", "t"))
        .await
        .unwrap();
    assert!(
        store
            .delete_secret(t, "s", 3_000, audit("secret.delete", "t"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_secret(t, "s", 3_000, audit("secret.delete", "t"))
            .await
            .unwrap()
    );
    assert_eq!(store.get_secret(t, "s", None).await.unwrap(), None);
    assert!(
        store
            .list_secrets(t, "", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let (row, _) = store.history(t, "s", None, 1000).await.unwrap().unwrap();
    assert_eq!(row.deleted_at, Some(3_000));
    let restored = store
        .restore_secret(t, "s", 4_000, audit("secret.restore", "t"))
        .await
        .unwrap()
        .expect("a deleted secret is restored");
    assert_eq!(
        (
            restored.name.as_str(),
            restored.version,
            restored.deleted_at
        ),
        ("s", 1, None)
    );
    assert_eq!(restored.updated_at, 4_000);
    assert!(
        store
            .restore_secret(t, "s", 4_000, audit("secret.restore", "t"))
            .await
            .unwrap()
            .is_none()
    );
    let (row, v) = store.get_secret(t, "s", None).await.unwrap().unwrap();
    assert_eq!((row.version, v.ciphertext), (1, b"1:v1".to_vec()));
    store
        .delete_secret(t, "s", 5_000, audit("secret.delete", "t"))
        .await
        .unwrap();
    // cas 0 means "no live secret": a deleted one may be written over, at the next version
    let again = store
        .put_secret(put(t, "s", "v2", Some(0)), audit("secret.write", "t"))
        .await
        .unwrap();
    assert_eq!(again.version, 2);
    assert!(
        store
            .restore_secret(t, "never", 1, audit("secret.restore", "t"))
            .await
            .unwrap()
            .is_none()
    );
    let actions: Vec<String> = store
        .audit("t", 0, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.action.as_str().to_owned())
        .collect();
    assert_eq!(
        actions,
        [
            "team.create",
            "secret.write",
            "secret.delete",
            "secret.restore",
            "secret.delete",
            "secret.write"
        ]
    );
}

pub(crate) async fn listing_with_prefix_and_cursor(store: Arc<dyn Store>) {
    let t = team(&store, "t").await;
    for n in [
        "prod/db/user",
        "prod/db/password",
        "prod/api",
        "dev/db",
        "prodx",
        "Z",
    ] {
        store
            .put_secret(put(t, n, "v", None), audit("secret.write", "t"))
            .await
            .unwrap();
    }
    let names =
        |rows: Vec<sigil_store::SecretRow>| rows.into_iter().map(|r| r.name).collect::<Vec<_>>();
    assert_eq!(
        names(store.list_secrets(t, "", None, 100).await.unwrap()),
        [
            "Z",
            "dev/db",
            "prod/api",
            "prod/db/password",
            "prod/db/user",
            "prodx"
        ]
    );
    assert_eq!(
        names(store.list_secrets(t, "prod/", None, 100).await.unwrap()),
        ["prod/api", "prod/db/password", "prod/db/user"]
    );
    let page1 = names(store.list_secrets(t, "prod", None, 2).await.unwrap());
    assert_eq!(page1, ["prod/api", "prod/db/password"]);
    let page2 = names(
        store
            .list_secrets(t, "prod", Some(&page1[1]), 2)
            .await
            .unwrap(),
    );
    assert_eq!(page2, ["prod/db/user", "prodx"]);
    assert!(
        store
            .list_secrets(t, "prod", Some("prodx"), 2)
            .await
            .unwrap()
            .is_empty()
    );
    // substring search, paged the same way
    assert_eq!(
        names(store.search_secrets(t, "db", None, 100).await.unwrap()),
        ["dev/db", "prod/db/password", "prod/db/user"]
    );
    assert_eq!(
        names(
            store
                .search_secrets(t, "db", Some("dev/db"), 1)
                .await
                .unwrap()
        ),
        ["prod/db/password"]
    );
    assert!(
        store
            .search_secrets(t, "nothing", None, 100)
            .await
            .unwrap()
            .is_empty()
    );
}

pub(crate) async fn keys_and_revocation(store: Arc<dyn Store>) {
    let t = team(&store, "t").await;
    for (id, role) in [("r1", "reader"), ("w1", "writer")] {
        let k = KeyRow {
            id: id.into(),
            team_id: t,
            team_name: String::new(),
            role: sigil_store::Role::parse(role).unwrap(),
            hash: vec![7; 32],
            name: format!("{role} key"),
            bootstrap: false,
            created_at: 5,
            created_by: "k1".into(),
            revoked_at: None,
        };
        store.create_key(k, audit("key.create", "t")).await.unwrap();
    }
    let keys = store.list_keys(t).await.unwrap();
    assert_eq!(
        keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
        ["r1", "w1"]
    );
    assert_eq!(keys[0].team_name, "t");
    let other = team(&store, "other").await;
    assert!(
        !store
            .revoke_key(other, "r1", 9, audit("key.revoke", "other"))
            .await
            .unwrap(),
        "not that team's key"
    );
    assert!(
        store
            .revoke_key(t, "r1", 9, audit("key.revoke", "t"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_key(t, "r1", 9, audit("key.revoke", "t"))
            .await
            .unwrap()
    );
    assert_eq!(store.key("r1").await.unwrap().unwrap().revoked_at, Some(9));
    assert_eq!(store.key("w1").await.unwrap().unwrap().revoked_at, None);
    assert_eq!(store.key("zz").await.unwrap(), None);
}

pub(crate) async fn audit_is_kept_and_paged(store: Arc<dyn Store>) {
    team(&store, "t").await;
    let rows: Vec<AuditRow> = (0..25)
        .map(|i| AuditRow {
            at: 10_000 + i,
            name: Some(format!("s{i}")),
            flow_run: Some("run-1".into()),
            task: Some("load".into()),
            outcome: if i % 2 == 0 {
                sigil_store::AuditOutcome::Ok
            } else {
                sigil_store::AuditOutcome::NotFound
            },
            ..audit("secret.read", "t")
        })
        .collect();
    store.append_audit(rows).await.unwrap();
    store
        .append_audit(vec![audit("secret.read", "elsewhere")])
        .await
        .unwrap();
    let first = store.audit("t", 0, 10_000, 10).await.unwrap();
    assert_eq!(first.len(), 10);
    assert_eq!(first[0].name.as_deref(), Some("s0"));
    assert_eq!(first[0].flow_run.as_deref(), Some("run-1"));
    let next = store.audit("t", first[9].id, 10_000, 100).await.unwrap();
    assert_eq!(next.len(), 15);
    assert_eq!(next.last().unwrap().name.as_deref(), Some("s24"));
    assert!(next.iter().all(|a| a.team == "t"));
    let since = store.audit("t", 0, 10_020, 100).await.unwrap();
    assert_eq!(since.len(), 5);
}

pub(crate) async fn concurrent_writers_get_distinct_versions(store: Arc<dyn Store>) {
    let t = team(&store, "t").await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.put_secret(
                put(t, "hot", &format!("w{i}"), None),
                audit("secret.write", "t"),
            )
            .await
            .unwrap()
            .version
        }));
    }
    let mut versions = results_of(tasks).await;
    versions.sort_unstable();
    assert_eq!(versions, (1..=40).collect::<Vec<i64>>());
    let (_, versions) = store.history(t, "hot", None, 1000).await.unwrap().unwrap();
    assert_eq!(versions.len(), 40);
}

pub(crate) async fn rewrap_data_keys(store: Arc<dyn Store>) {
    let t = team(&store, "t").await;
    let mut keys = store.all_data_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    keys[0].master_key_id = "m2".into();
    keys[0].wrapped = vec![4, 5, 6];
    store.rewrap_data_keys(keys).await.unwrap();
    let after = store.data_keys(t).await.unwrap();
    assert_eq!(
        (after[0].master_key_id.as_str(), after[0].wrapped.clone()),
        ("m2", vec![4, 5, 6])
    );
    let bad = vec![DataKeyRow {
        team_id: t,
        ..data_key(7)
    }];
    assert!(matches!(
        store.rewrap_data_keys(bad).await,
        Err(StoreError::NotFound(_))
    ));
}

pub(crate) async fn audited_reads(store: Arc<dyn Store>) {
    let t = team(&store, "t").await;
    for v in ["one", "two"] {
        store
            .put_secret(put(t, "db/pw", v, None), audit("secret.write", "t"))
            .await
            .unwrap();
    }
    store
        .put_secret(put(t, "gone", "x", None), audit("secret.write", "t"))
        .await
        .unwrap();
    store
        .delete_secret(t, "gone", 3, audit("secret.delete", "t"))
        .await
        .unwrap();
    let read = |name: &str, version: Option<i64>| {
        let (store, name) = (store.clone(), name.to_owned());
        async move {
            let a = AuditRow {
                name: Some(name.clone()),
                flow_run: Some("run-7".into()),
                task: Some("extract".into()),
                via: Some("prefect".into()),
                agent: Some("prefect 1.4.1".into()),
                ..audit("secret.read", "t")
            };
            store
                .get_secret_audited(t, &name, version, a)
                .await
                .unwrap()
        }
    };
    let (s, v) = read("db/pw", None).await.unwrap();
    assert_eq!((s.name.as_str(), v.version), ("db/pw", 2));
    assert_eq!(v.ciphertext, b"2:two".to_vec());
    let (_, v) = read("db/pw", Some(1)).await.unwrap();
    assert_eq!(v.ciphertext, b"1:one".to_vec());
    assert!(read("db/pw", Some(3)).await.is_none());
    assert!(
        read("gone", None).await.is_none(),
        "a deleted secret is not read"
    );
    assert!(read("missing", None).await.is_none());
    // one record per read, with the version read and the outcome, after the writes' records
    let log = store.audit("t", 0, 0, 100).await.unwrap();
    let reads: Vec<(Option<&str>, Option<i64>, &str)> = log
        .iter()
        .filter(|a| a.action.as_str() == "secret.read")
        .map(|a| (a.name.as_deref(), a.version, a.outcome.as_str()))
        .collect();
    assert_eq!(
        reads,
        [
            (Some("db/pw"), Some(2), "ok"),
            (Some("db/pw"), Some(1), "ok"),
            (Some("db/pw"), None, "not_found"),
            (Some("gone"), None, "not_found"),
            (Some("missing"), None, "not_found"),
        ]
    );
    let first = log
        .iter()
        .find(|a| a.action.as_str() == "secret.read")
        .unwrap();
    assert_eq!(
        (first.flow_run.as_deref(), first.task.as_deref()),
        (Some("run-7"), Some("extract"))
    );
    // the face and the client software are kept with the record (a read's and a write's)
    assert_eq!(
        (first.via.as_deref(), first.agent.as_deref()),
        (Some("prefect"), Some("prefect 1.4.1"))
    );
    let w = AuditRow {
        via: Some("api".into()),
        agent: Some("curl".into()),
        ..audit("secret.write", "t")
    };
    store
        .put_secret(put(t, "faced", "x", None), w)
        .await
        .unwrap();
    let log = store.audit("t", 0, 0, 100).await.unwrap();
    let last = log.last().unwrap();
    assert_eq!(
        (last.via.as_deref(), last.agent.as_deref()),
        (Some("api"), Some("curl"))
    );
}

// concurrent reads share batches (one statement on PostgreSQL, one commit on SQLite): every
// caller must get its own secret back, and every read its own audit record
pub(crate) async fn concurrent_audited_reads_get_their_own_answers(store: Arc<dyn Store>) {
    let t = team(&store, "t").await;
    for i in 0..20 {
        store
            .put_secret(
                put(t, &format!("s{i}"), &format!("v{i}"), None),
                audit("secret.write", "t"),
            )
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for round in 0..10 {
        for i in 0..25 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                let name = format!("s{i}");
                let a = AuditRow {
                    name: Some(name.clone()),
                    task: Some(format!("r{round}-{i}")),
                    ..audit("secret.read", "t")
                };
                let got = s.get_secret_audited(t, &name, None, a).await.unwrap();
                (i, got.map(|(_, v)| v.ciphertext))
            }));
        }
    }
    for (i, got) in results_of(tasks).await {
        if i < 20 {
            assert_eq!(got, Some(format!("1:v{i}").into_bytes()), "s{i}");
        } else {
            assert_eq!(got, None, "s{i} does not exist");
        }
    }
    let log = store.audit("t", 0, 0, 1000).await.unwrap();
    let reads: Vec<_> = log
        .iter()
        .filter(|a| a.action.as_str() == "secret.read")
        .collect();
    assert_eq!(reads.len(), 250);
    for a in reads {
        let task = a.task.as_deref().unwrap();
        let i: usize = task.rsplit('-').next().unwrap().parse().unwrap();
        assert_eq!(a.name.as_deref(), Some(format!("s{i}").as_str()), "{task}");
        let expected = if i < 20 {
            (Some(1), "ok")
        } else {
            (None, "not_found")
        };
        assert_eq!((a.version, a.outcome.as_str()), expected, "{task}");
    }
}

// thousands of records of several teams, interleaved: each team's pages hold its records
// only, in order, none lost at the boundaries of pages (or, on SQLite, of id blocks)
pub(crate) async fn audit_of_interleaved_teams_pages_in_order(store: Arc<dyn Store>) {
    for t in ["a", "b", "c"] {
        team(&store, t).await;
    }
    let mut tasks = Vec::new();
    for batch in 0..30 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            let rows: Vec<AuditRow> = (0..100)
                .map(|i| {
                    let n = batch * 100 + i;
                    // team c has one record in every 250
                    let t = if n % 250 == 0 {
                        "c"
                    } else if n % 2 == 0 {
                        "a"
                    } else {
                        "b"
                    };
                    AuditRow {
                        at: 50_000 + n,
                        name: Some(format!("n{n}")),
                        ..audit("secret.read", t)
                    }
                })
                .collect();
            s.append_audit(rows).await.unwrap();
        }));
    }
    results_of(tasks).await;
    for (t, expected) in [("a", 1488), ("b", 1500), ("c", 12)] {
        let (mut after, mut seen) = (0, Vec::new());
        loop {
            let page = store.audit(t, after, 0, 333).await.unwrap();
            assert!(page.iter().all(|r| r.team == t));
            assert!(page.windows(2).all(|w| w[0].id < w[1].id));
            match page.last() {
                Some(last) => after = last.id,
                None => break,
            }
            seen.extend(
                page.into_iter()
                    .filter(|r| r.action.as_str() == "secret.read")
                    .map(|r| r.name.unwrap()),
            );
        }
        assert_eq!(seen.len(), expected, "team {t}");
        let distinct: std::collections::HashSet<_> = seen.iter().collect();
        assert_eq!(distinct.len(), expected, "team {t}: a record twice");
        // newest first, paged backwards: the same records in the reverse order
        let (mut before, mut newest) = (None, Vec::new());
        loop {
            let page = store.audit_newest(t, before, 0, 333).await.unwrap();
            assert!(page.iter().all(|r| r.team == t));
            assert!(page.windows(2).all(|w| w[0].id > w[1].id));
            match page.last() {
                Some(last) => before = Some(last.id),
                None => break,
            }
            newest.extend(
                page.into_iter()
                    .filter(|r| r.action.as_str() == "secret.read")
                    .map(|r| r.name.unwrap()),
            );
        }
        newest.reverse();
        assert_eq!(
            newest, seen,
            "team {t}: newest first is oldest first reversed"
        );
    }
    // cursors at the ends of the id range answer empty pages (one before the first id
    // overflowed computing its block)
    for before in [i64::MIN, 0, 1] {
        assert!(
            store
                .audit_newest("a", Some(before), 0, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }
    assert!(store.audit("a", i64::MAX, 0, 10).await.unwrap().is_empty());
    let newest = store.audit_newest("c", None, 52_000, 2).await.unwrap();
    assert_eq!(newest.len(), 2);
    assert!(newest.iter().all(|r| r.at >= 52_000));
    // since: the records at or after a time
    // (the batches were concurrent: ids follow commits, not times)
    let mut late: Vec<i64> = store
        .audit("c", 0, 52_000, 100)
        .await
        .unwrap()
        .iter()
        .map(|r| r.at)
        .collect();
    late.sort_unstable();
    assert_eq!(late, [52_000, 52_250, 52_500, 52_750]);
}

// a read after every kind of change sees the change (SQLite's writer keeps the latest versions
// it has read; every change must reach them)
pub(crate) async fn reads_see_every_change_at_once(store: Arc<dyn Store>) {
    let t = team(&store, "t").await;
    let other = team(&store, "u").await;
    let read = |team_id: i64| {
        let store = store.clone();
        async move {
            store
                .get_secret_audited(team_id, "k", None, audit("secret.read", "t"))
                .await
                .unwrap()
                .map(|(_, v)| v.ciphertext)
        }
    };
    assert_eq!(read(t).await, None);
    store
        .put_secret(put(t, "k", "a", None), audit("secret.write", "t"))
        .await
        .unwrap();
    assert_eq!(read(t).await, Some(b"1:a".to_vec()));
    assert_eq!(read(t).await, Some(b"1:a".to_vec()));
    assert_eq!(
        read(other).await,
        None,
        "another team's secret of the same name"
    );
    store
        .put_secret(put(t, "k", "b", None), audit("secret.write", "t"))
        .await
        .unwrap();
    assert_eq!(read(t).await, Some(b"2:b".to_vec()));
    let conflict = store
        .put_secret(put(t, "k", "c", Some(1)), audit("secret.write", "t"))
        .await;
    assert!(matches!(conflict, Err(StoreError::Conflict { current: 2 })));
    assert_eq!(
        read(t).await,
        Some(b"2:b".to_vec()),
        "a refused write changes nothing"
    );
    store
        .delete_secret(t, "k", 5, audit("secret.delete", "t"))
        .await
        .unwrap();
    assert_eq!(read(t).await, None);
    store
        .restore_secret(t, "k", 6, audit("secret.restore", "t"))
        .await
        .unwrap();
    assert_eq!(read(t).await, Some(b"2:b".to_vec()));
    store
        .put_secret(put(other, "k", "z", None), audit("secret.write", "u"))
        .await
        .unwrap();
    assert_eq!(read(other).await, Some(b"1:z".to_vec()));
    assert_eq!(read(t).await, Some(b"2:b".to_vec()));
}

// many versions of one secret, read in one batch: the latest, old ones, one past the end (how
// PostgreSQL finds them — by the whole key, not by walking every version — is checked on its
// plan in postgres.rs)
pub(crate) async fn reads_of_a_secret_with_many_versions(store: Arc<dyn Store>) {
    let t = team(&store, "t").await;
    for i in 0..300 {
        store
            .put_secret(
                put(t, "hot", &format!("v{i}"), None),
                audit("secret.write", "t"),
            )
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for version in [None, Some(1), Some(150), Some(300), Some(301)] {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.get_secret_audited(t, "hot", version, audit("secret.read", "t"))
                .await
                .unwrap()
                .map(|(_, v)| (v.version, v.ciphertext))
        }));
    }
    let got = results_of(tasks).await;
    assert_eq!(
        got,
        [
            Some((300, b"300:v299".to_vec())),
            Some((1, b"1:v0".to_vec())),
            Some((150, b"150:v149".to_vec())),
            Some((300, b"300:v299".to_vec())),
            None,
        ]
    );
}
