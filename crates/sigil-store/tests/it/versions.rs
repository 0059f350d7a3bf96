//! Versions' state (soft delete, undelete, destroy), a secret's and a team's settings
//! (`max_versions`, `cas_required`, `delete_version_after`, `custom_metadata`) and purges, on
//! each backend.

use std::sync::Arc;

use sigil_store::{
    AuditRow, KvConfig, SettingsChange, Store, StoreError, VersionChange, VersionState,
};

use crate::suite::{audit, put, team};

/// The store's versions of `name`, newest first: (version, deletion time, destroyed).
async fn states(store: &Arc<dyn Store>, t: i64, name: &str) -> Vec<(i64, Option<i64>, bool)> {
    let (_, versions) = store.history(t, name, None, 100).await.unwrap().unwrap();
    versions
        .iter()
        .map(|v| (v.version, v.deleted_at, v.destroyed))
        .collect()
}

/// An audited read at `at`: what it found, and the outcome and version its record says.
async fn read_at(
    store: &Arc<dyn Store>,
    t: i64,
    name: &str,
    version: Option<i64>,
    at: i64,
) -> (Option<VersionState>, String, Option<i64>) {
    let a = AuditRow {
        at,
        name: Some(name.into()),
        ..audit("secret.read", "t")
    };
    let found = store.get_secret_audited(t, name, version, a).await.unwrap();
    let last = store.audit_newest("t", None, 0, 1).await.unwrap().remove(0);
    (
        found.map(|(_, v)| v.state_at(at)),
        last.outcome.to_string(),
        last.version,
    )
}

async fn write(store: &Arc<dyn Store>, t: i64, name: &str, value: &str, cas: Option<i64>) -> i64 {
    store
        .put_secret(put(t, name, value, cas), audit("secret.write", "t"))
        .await
        .unwrap()
        .version
}

pub(crate) async fn versions_are_deleted_undeleted_and_destroyed(store: Arc<dyn Store>) {
    let t = team(&store, "t").await;
    for v in ["one", "two", "three"] {
        write(&store, t, "db/pw", v, None).await;
    }
    let change = |versions: Vec<i64>, c: VersionChange, at: i64| {
        let store = store.clone();
        async move {
            let a = AuditRow {
                name: Some("db/pw".into()),
                ..audit(c.action().as_str(), "t")
            };
            store
                .change_versions(t, "db/pw", &versions, c, at, a)
                .await
                .unwrap()
        }
    };
    // versions that do not exist are left out; one record per version changed
    assert_eq!(
        change(vec![1, 2, 99, 2], VersionChange::Delete, 5_000).await,
        Some(vec![1, 2])
    );
    let log = store.audit_newest("t", None, 0, 2).await.unwrap();
    let recorded: Vec<(&str, Option<i64>)> =
        log.iter().map(|a| (a.action.as_str(), a.version)).collect();
    assert_eq!(
        recorded,
        [("version.delete", Some(2)), ("version.delete", Some(1))]
    );
    assert_eq!(
        states(&store, t, "db/pw").await,
        [
            (3, None, false),
            (2, Some(5_000), false),
            (1, Some(5_000), false)
        ]
    );
    // a deleted version is found (its metadata is answered) but not read: the record says so
    assert_eq!(
        read_at(&store, t, "db/pw", Some(2), 6_000).await,
        (Some(VersionState::Deleted), "not_found".into(), Some(2))
    );
    assert_eq!(
        read_at(&store, t, "db/pw", None, 6_000).await,
        (Some(VersionState::Live), "ok".into(), Some(3))
    );
    // deleted again: nothing changes
    assert_eq!(
        change(vec![1], VersionChange::Delete, 7_000).await,
        Some(vec![])
    );
    assert_eq!(
        change(vec![1, 3], VersionChange::Undelete, 8_000).await,
        Some(vec![1])
    );
    assert_eq!(
        read_at(&store, t, "db/pw", Some(1), 9_000).await,
        (Some(VersionState::Live), "ok".into(), Some(1))
    );
    // destroyed: the ciphertext is wiped, the row stays, undelete cannot bring it back
    assert_eq!(
        change(vec![2, 3], VersionChange::Destroy, 10_000).await,
        Some(vec![2, 3])
    );
    let (_, v) = store
        .get_secret(t, "db/pw", Some(3))
        .await
        .unwrap()
        .unwrap();
    assert!(v.destroyed && v.ciphertext.is_empty(), "{v:?}");
    let (_, v) = store
        .get_secret(t, "db/pw", Some(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        v.ciphertext,
        b"1:one".to_vec(),
        "other versions keep theirs"
    );
    assert_eq!(
        read_at(&store, t, "db/pw", None, 11_000).await,
        (Some(VersionState::Destroyed), "not_found".into(), Some(3))
    );
    assert_eq!(
        change(vec![2, 3], VersionChange::Undelete, 12_000).await,
        Some(vec![])
    );
    assert_eq!(
        states(&store, t, "db/pw").await,
        [(3, None, true), (2, Some(5_000), true), (1, None, false)]
    );
    // the next write goes on counting, live; version 0 is the current one
    assert_eq!(write(&store, t, "db/pw", "four", Some(3)).await, 4);
    assert_eq!(
        change(vec![0], VersionChange::Delete, 12_500).await,
        Some(vec![4])
    );
    assert_eq!(
        change(vec![4], VersionChange::Undelete, 12_600).await,
        Some(vec![4])
    );
    // no secret, or one deleted through Sigil: nothing to change
    assert_eq!(
        store
            .change_versions(
                t,
                "nope",
                &[1],
                VersionChange::Delete,
                1,
                audit("version.delete", "t")
            )
            .await
            .unwrap(),
        None
    );
    store
        .delete_secret(t, "db/pw", 13_000, audit("secret.delete", "t"))
        .await
        .unwrap();
    assert_eq!(change(vec![4], VersionChange::Destroy, 14_000).await, None);
    store
        .restore_secret(t, "db/pw", 15_000, audit("secret.restore", "t"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        states(&store, t, "db/pw").await,
        [
            (4, None, false),
            (3, None, true),
            (2, Some(5_000), true),
            (1, None, false)
        ],
        "Sigil's delete and restore leave the versions' own state alone"
    );
}

pub(crate) async fn settings_prune_and_require_check_and_set(store: Arc<dyn Store>) {
    let t = team(&store, "t").await;
    let set = |name: &str, change: SettingsChange| {
        let (store, name) = (store.clone(), name.to_owned());
        async move {
            let a = AuditRow {
                name: Some(name.clone()),
                ..audit("secret.settings", "t")
            };
            store.set_settings(t, &name, change, 3_000, a).await
        }
    };
    // settings of a secret that does not exist yet: it exists from then on, at version 0
    let row = set(
        "app/db",
        SettingsChange {
            max_versions: Some(2),
            custom_metadata: Some(Some(r#"{"owner":"data"}"#.into())),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (row.version, row.created_at, row.settings.max_versions),
        (0, 3_000, 2)
    );
    let listed = store.list_secrets(t, "app/", None, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].settings.custom_metadata.as_deref(),
        Some(r#"{"owner":"data"}"#)
    );
    // two versions kept: the third write removes the first for good
    for v in ["a", "b", "c"] {
        write(&store, t, "app/db", v, None).await;
    }
    assert_eq!(
        states(&store, t, "app/db").await,
        [(3, None, false), (2, None, false)]
    );
    let (row, _) = store.get_secret(t, "app/db", None).await.unwrap().unwrap();
    assert_eq!((row.oldest_version, row.created_at), (2, 3_000));
    assert_eq!(
        row.settings.custom_metadata.as_deref(),
        Some(r#"{"owner":"data"}"#),
        "writes keep the settings"
    );
    assert_eq!(store.get_secret(t, "app/db", Some(1)).await.unwrap(), None);
    // lowered to one: the next write leaves only itself
    set(
        "app/db",
        SettingsChange {
            max_versions: Some(1),
            cas_required: Some(true),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let refused = store
        .put_secret(put(t, "app/db", "d", None), audit("secret.write", "t"))
        .await;
    assert!(
        matches!(refused, Err(StoreError::CasRequired)),
        "{refused:?}"
    );
    assert_eq!(write(&store, t, "app/db", "d", Some(3)).await, 4);
    assert_eq!(states(&store, t, "app/db").await, [(4, None, false)]);
    // only the fields named change
    let row = set(
        "app/db",
        SettingsChange {
            custom_metadata: Some(None),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (
            row.settings.max_versions,
            row.settings.cas_required,
            row.settings.custom_metadata
        ),
        (1, true, None)
    );
    // the team's settings: check-and-set for every secret
    assert_eq!(store.kv_config(t).await.unwrap(), KvConfig::default());
    let strict = KvConfig {
        cas_required: true,
        max_versions: 3,
        delete_version_after: 0,
    };
    store
        .set_kv_config(t, strict, audit("team.settings", "t"))
        .await
        .unwrap();
    assert_eq!(store.kv_config(t).await.unwrap(), strict);
    let refused = store
        .put_secret(put(t, "other", "x", None), audit("secret.write", "t"))
        .await;
    assert!(
        matches!(refused, Err(StoreError::CasRequired)),
        "{refused:?}"
    );
    assert_eq!(write(&store, t, "other", "x", Some(0)).await, 1);
    // the larger of the secret's and the team's max_versions: 3 now for app/db
    for cas in [4, 5] {
        write(&store, t, "app/db", "e", Some(cas)).await;
    }
    assert_eq!(
        states(&store, t, "app/db").await.len(),
        3,
        "the team's three versions, not the secret's one"
    );
    // a secret deleted through Sigil keeps its settings but is not changed until restored
    store
        .delete_secret(t, "other", 4_000, audit("secret.delete", "t"))
        .await
        .unwrap();
    let deleted = set("other", SettingsChange::default()).await;
    assert!(
        matches!(deleted, Err(StoreError::Deleted(_))),
        "{deleted:?}"
    );
    let log = store.audit("t", 0, 0, 100).await.unwrap();
    assert_eq!(
        log.iter()
            .filter(|a| a.action.as_str() == "secret.settings")
            .count(),
        3,
        "each change of settings on record, the refused one not"
    );
}

pub(crate) async fn delete_version_after_deletes_versions_in_time(store: Arc<dyn Store>) {
    let t = team(&store, "t").await;
    let a = audit("secret.settings", "t");
    let ten_s = SettingsChange {
        delete_version_after: Some(10_000),
        ..Default::default()
    };
    store.set_settings(t, "tmp", ten_s, 1_000, a).await.unwrap();
    // written at 2000 (put's time): deleted from 12000 on
    write(&store, t, "tmp", "x", None).await;
    assert_eq!(states(&store, t, "tmp").await, [(1, Some(12_000), false)]);
    assert_eq!(
        read_at(&store, t, "tmp", None, 11_999).await,
        (Some(VersionState::Live), "ok".into(), Some(1))
    );
    assert_eq!(
        read_at(&store, t, "tmp", None, 12_000).await,
        (Some(VersionState::Deleted), "not_found".into(), Some(1))
    );
    // undeleted at 20000: deleted again ten seconds later
    let undelete = AuditRow {
        name: Some("tmp".into()),
        ..audit("version.undelete", "t")
    };
    let changed = store
        .change_versions(t, "tmp", &[1], VersionChange::Undelete, 20_000, undelete)
        .await
        .unwrap();
    assert_eq!(changed, Some(vec![1]));
    assert_eq!(states(&store, t, "tmp").await, [(1, Some(30_000), false)]);
    // a shorter period of the team's wins
    let team_wide = KvConfig {
        delete_version_after: 500,
        ..Default::default()
    };
    store
        .set_kv_config(t, team_wide, audit("team.settings", "t"))
        .await
        .unwrap();
    write(&store, t, "tmp", "y", None).await;
    assert_eq!(states(&store, t, "tmp").await[0], (2, Some(2_500), false));
}

pub(crate) async fn a_purge_removes_every_version(store: Arc<dyn Store>) {
    let t = team(&store, "t").await;
    for v in ["a", "b"] {
        write(&store, t, "gone", v, None).await;
    }
    let a = || AuditRow {
        name: Some("gone".into()),
        ..audit("secret.purge", "t")
    };
    assert!(store.purge_secret(t, "gone", a()).await.unwrap());
    assert!(store.history(t, "gone", None, 10).await.unwrap().is_none());
    assert!(!store.purge_secret(t, "gone", a()).await.unwrap());
    // a new secret of that name starts again at 1, with default settings
    assert_eq!(write(&store, t, "gone", "c", Some(0)).await, 1);
    // one deleted through Sigil is not purged (it is not there to a Vault client)
    store
        .delete_secret(t, "gone", 5_000, audit("secret.delete", "t"))
        .await
        .unwrap();
    assert!(!store.purge_secret(t, "gone", a()).await.unwrap());
    assert!(store.history(t, "gone", None, 10).await.unwrap().is_some());
    let purges = store
        .audit("t", 0, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.action.as_str() == "secret.purge")
        .count();
    assert_eq!(
        purges, 1,
        "only the purge that removed something is on record"
    );
}

pub(crate) async fn the_audit_log_is_pruned_oldest_first(store: Arc<dyn Store>) {
    let rows = |team: &str, ats: &[i64]| -> Vec<AuditRow> {
        ats.iter()
            .map(|&at| AuditRow {
                at,
                ..audit("secret.read", team)
            })
            .collect()
    };
    store
        .append_audit(rows("t", &[1_000, 2_000, 3_000, 4_000]))
        .await
        .unwrap();
    store.append_audit(rows("u", &[4_500])).await.unwrap();
    store
        .append_audit(rows("t", &[5_000, 6_000, 7_000]))
        .await
        .unwrap();
    let ats = |team: &'static str| {
        let store = store.clone();
        async move {
            let page = store.audit(team, 0, 0, 100).await.unwrap();
            page.iter().map(|r| r.at).collect::<Vec<_>>()
        }
    };
    // chunk by chunk, oldest first, every team's
    assert_eq!(store.prune_audit(5_500, 3).await.unwrap(), 3);
    assert_eq!(ats("t").await, [4_000, 5_000, 6_000, 7_000]);
    assert_eq!(store.prune_audit(5_500, 3).await.unwrap(), 3);
    assert_eq!(store.prune_audit(5_500, 3).await.unwrap(), 0);
    assert_eq!(ats("t").await, [6_000, 7_000]);
    assert_eq!(ats("u").await, Vec::<i64>::new());
    // the newest page still pages back through what is left
    let newest = store.audit_newest("t", None, 0, 1).await.unwrap();
    let older = store
        .audit_newest("t", Some(newest[0].id), 0, 10)
        .await
        .unwrap();
    assert_eq!((newest[0].at, older.len(), older[0].at), (7_000, 1, 6_000));
    // everything old: all but the newest record go, and new ids continue after it
    while store.prune_audit(i64::MAX, 2).await.unwrap() > 0 {}
    assert_eq!(ats("t").await, [7_000]);
    store.append_audit(rows("t", &[8_000])).await.unwrap();
    let page = store.audit("t", 0, 0, 100).await.unwrap();
    assert_eq!(
        page.iter().map(|r| r.at).collect::<Vec<_>>(),
        [7_000, 8_000]
    );
    assert!(page[1].id > page[0].id, "ids are not handed out again");
    // a page after a cursor from before the prune still answers what is after it
    let after = store.audit("t", newest[0].id, 0, 100).await.unwrap();
    assert_eq!(after.iter().map(|r| r.at).collect::<Vec<_>>(), [8_000]);
}
