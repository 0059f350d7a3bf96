//! The domain layer's rules, tested through the service itself on a real SQLite file: no HTTP,
//! no face. Each test states one rule and checks what the store holds afterwards, the audit log
//! included.

use std::sync::Arc;

use serde_json::json;
use sigil_core::SecretName;
use sigil_core::wire::Role;
use sigil_store::{AuditAction, AuditOutcome, AuditRow};

use super::audit::PageOf;
use super::{Caller, KeyId, ServerError, TeamName, keys, secrets, teams};
use crate::crypto::MasterKey;
use crate::state::{AppState, Limits};

struct World {
    _dir: tempfile::TempDir,
    state: Arc<AppState>,
    /// The bootstrap administrator of team `default`.
    root: Caller,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = sigil_store::open(dir.path().join("sigil.db").to_str().unwrap())
        .await
        .unwrap();
    let state = AppState::new(store, MasterKey::generate().unwrap(), Limits::default());
    let key = crate::bootstrap(&state, None).await.unwrap().unwrap();
    let root = crate::auth::authenticate(&state, &key, [127, 0, 0, 1].into())
        .await
        .unwrap();
    World {
        _dir: dir,
        state,
        root,
    }
}

impl World {
    /// A new key of `c`'s team with `role`, as the caller it stands for.
    async fn key(&self, c: &Caller, role: Role) -> Caller {
        let k = keys::create(&self.state, c, &c.team, role, "t")
            .await
            .unwrap();
        crate::auth::authenticate(&self.state, &k.key, [127, 0, 0, 1].into())
            .await
            .unwrap()
    }

    /// The admin of a new team.
    async fn team(&self, name: &str) -> Caller {
        let (_, k) = teams::create(&self.state, &self.root, &team(name))
            .await
            .unwrap();
        crate::auth::authenticate(&self.state, &k.key, [127, 0, 0, 1].into())
            .await
            .unwrap()
    }

    /// A team's log, oldest first.
    async fn log(&self, team: &str) -> Vec<AuditRow> {
        self.state.store.audit(team, 0, 0, 1000).await.unwrap()
    }
}

fn team(t: &str) -> TeamName {
    TeamName::parse(t).unwrap()
}

fn name(n: &str) -> SecretName {
    SecretName::parse(n).unwrap()
}

#[tokio::test]
async fn a_write_is_sealed_versioned_and_audited_and_a_read_opens_it() {
    let w = world().await;
    let c = &w.root;
    let db = name("db/password");
    let v1 = secrets::write(&w.state, c, &c.team, &db, &json!("s3cr3t"), None)
        .await
        .unwrap();
    let v2 = secrets::write(&w.state, c, &c.team, &db, &json!({"a": 1}), Some(1))
        .await
        .unwrap();
    assert_eq!((v1.version, v2.version), (1, 2));
    let read = secrets::read(&w.state, c, &c.team, &db, Some(1))
        .await
        .unwrap();
    assert_eq!(&read.plain[..], b"\"s3cr3t\"");
    let h = secrets::history(&w.state, c, &c.team, &db, None, 10)
        .await
        .unwrap();
    assert_eq!(
        h.versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [2, 1]
    );
    // the stored ciphertext does not hold the value
    let (_, ver) = w
        .state
        .store
        .get_secret(c.team_id, "db/password", Some(1))
        .await
        .unwrap()
        .unwrap();
    assert!(!ver.ciphertext.windows(6).any(|x| x == b"s3cr3t"));
    let log = w.log("default").await;
    let kinds: Vec<_> = log
        .iter()
        .filter(|r| r.name.as_deref() == Some("db/password"))
        .map(|r| (r.action, r.outcome, r.version))
        .collect();
    assert_eq!(
        kinds,
        [
            (AuditAction::SecretWrite, AuditOutcome::Ok, Some(1)),
            (AuditAction::SecretWrite, AuditOutcome::Ok, Some(2)),
            (AuditAction::SecretRead, AuditOutcome::Ok, Some(1)),
        ]
    );
}

#[tokio::test]
async fn a_stale_cas_is_a_conflict_on_record_and_changes_nothing() {
    let w = world().await;
    let c = &w.root;
    let n = name("x");
    secrets::write(&w.state, c, &c.team, &n, &json!("1"), None)
        .await
        .unwrap();
    let e = secrets::write(&w.state, c, &c.team, &n, &json!("2"), Some(0))
        .await
        .unwrap_err();
    assert!(matches!(e, ServerError::Conflict(_)), "{e:?}");
    let read = secrets::read(&w.state, c, &c.team, &n, None).await.unwrap();
    assert_eq!((read.version, &read.plain[..]), (1, &b"\"1\""[..]));
    let last_write = w
        .log("default")
        .await
        .into_iter()
        .rfind(|r| r.action == AuditAction::SecretWrite)
        .unwrap();
    assert_eq!(last_write.outcome, AuditOutcome::Conflict);
}

#[tokio::test]
async fn roles_bound_what_a_key_does_and_a_refusal_is_on_record() {
    let w = world().await;
    let viewer = w.key(&w.root, Role::Viewer).await;
    let reader = w.key(&w.root, Role::Reader).await;
    let n = name("app/token");
    secrets::write(&w.state, &w.root, &w.root.team, &n, &json!("v"), None)
        .await
        .unwrap();
    let e = secrets::read(&w.state, &viewer, &viewer.team, &n, None)
        .await
        .unwrap_err();
    assert!(matches!(e, ServerError::Forbidden(_)), "{e:?}");
    assert!(
        secrets::read(&w.state, &reader, &reader.team, &n, None)
            .await
            .is_ok()
    );
    let e = secrets::write(&w.state, &reader, &reader.team, &n, &json!("w"), None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("needs the writer role"), "{e}");
    let e = keys::list(&w.state, &reader, &reader.team)
        .await
        .unwrap_err();
    assert!(matches!(e, ServerError::Forbidden(_)));
    let e = super::audit::page(&w.state, &reader, &reader.team, oldest(10))
        .await
        .unwrap_err();
    assert!(matches!(e, ServerError::Forbidden(_)));
    // any role lists and sees history: names and metadata, never values
    assert!(
        secrets::history(&w.state, &viewer, &viewer.team, &n, None, 10)
            .await
            .is_ok()
    );
    let log = w.log("default").await;
    let denied: Vec<_> = log
        .iter()
        .filter(|r| r.outcome == AuditOutcome::Denied)
        .map(|r| (r.key_id.as_str(), r.action))
        .collect();
    assert_eq!(
        denied,
        [
            (viewer.key_id.as_str(), AuditAction::SecretRead),
            (reader.key_id.as_str(), AuditAction::SecretWrite),
        ]
    );
    // the value was not read by the viewer: the store still says version 1, read once by reader
    assert!(
        log.iter()
            .all(|r| r.outcome != AuditOutcome::Ok || r.key_id != viewer.key_id.as_str())
    );
}

fn oldest(limit: u32) -> PageOf {
    PageOf {
        since: 0,
        cursor: None,
        limit,
        newest_first: false,
    }
}

#[tokio::test]
async fn another_teams_secrets_are_out_of_reach_and_the_attempt_is_in_the_callers_own_log() {
    let w = world().await;
    let etl = w.team("etl").await;
    let n = name("shared");
    secrets::write(&w.state, &w.root, &w.root.team, &n, &json!("v"), None)
        .await
        .unwrap();
    let e = secrets::read(&w.state, &etl, &team("default"), &n, None)
        .await
        .unwrap_err();
    assert!(matches!(e, ServerError::Forbidden(_)), "{e:?}");
    assert!(
        w.log("default")
            .await
            .iter()
            .all(|r| r.key_id != etl.key_id.as_str()),
        "nothing planted in the other team's log"
    );
    let mine = w.log("etl").await;
    let refused = mine.last().unwrap();
    assert_eq!(
        (refused.action, refused.outcome, refused.target.as_deref()),
        (
            AuditAction::SecretRead,
            AuditOutcome::Denied,
            Some("default")
        )
    );
    // a string that cannot be a team: refused as another team, cut short on record
    let long = "y".repeat(60_000);
    let e = super::team(
        &w.state,
        &etl,
        &long,
        Some((AuditAction::SecretWrite, Some("n"))),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().len() < 200, "not echoed: {e}");
    let refused = w.log("etl").await.pop().unwrap();
    assert!(refused.target.unwrap().len() <= 70);
}

#[tokio::test]
async fn input_that_does_not_parse_is_refused_on_record() {
    let w = world().await;
    let c = &w.root;
    let e = super::parsed(
        &w.state,
        c,
        &c.team,
        Some(AuditAction::SecretWrite),
        "bad name\u{0}",
        super::parse_name,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ServerError::Invalid(_)), "{e:?}");
    let r = w.log("default").await.pop().unwrap();
    assert_eq!(
        (r.action, r.outcome),
        (AuditAction::SecretWrite, AuditOutcome::Invalid)
    );
    assert_eq!(
        r.name.as_deref(),
        Some("bad name\\0"),
        "escaped for the log"
    );
}

#[tokio::test]
async fn no_revocation_locks_people_out() {
    let w = world().await;
    let root = &w.root;
    // the bootstrap key cannot be revoked, not even by another admin
    let admin = w.key(root, Role::Admin).await;
    let e = keys::revoke(&w.state, &admin, &admin.team, &root.key_id)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("reset-bootstrap-key"), "{e}");
    // nor a key by itself
    let e = keys::revoke(&w.state, &admin, &admin.team, &admin.key_id)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("cannot revoke itself"), "{e}");
    // nor a team's last admin key
    let etl = w.team("etl").await;
    let writer = w.key(&etl, Role::Writer).await;
    let second = w.key(&etl, Role::Admin).await;
    keys::revoke(&w.state, &etl, &etl.team, &writer.key_id)
        .await
        .unwrap();
    keys::revoke(&w.state, &etl, &etl.team, &second.key_id)
        .await
        .unwrap();
    let other = w.key(&etl, Role::Admin).await;
    keys::revoke(&w.state, &other, &other.team, &etl.key_id)
        .await
        .unwrap();
    let e = keys::revoke(&w.state, &root.clone(), &root.team, &other.key_id)
        .await
        .unwrap_err();
    assert!(
        matches!(e, ServerError::NotFound(_)),
        "not a key of team default: {e:?}"
    );
    let live: Vec<_> = w
        .state
        .store
        .list_keys(other.team_id)
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.revoked_at.is_none())
        .map(|k| k.id)
        .collect();
    assert_eq!(live, [other.key_id.to_string()], "the last admin is left");
    let unknown = KeyId::parse("zzzzzzzzzzzz").unwrap();
    let e = keys::revoke(&w.state, &other, &other.team, &unknown)
        .await
        .unwrap_err();
    assert!(matches!(e, ServerError::NotFound(_)));
}

#[tokio::test]
async fn only_the_bootstrap_administrator_makes_teams() {
    let w = world().await;
    let etl = w.team("etl").await;
    let e = teams::create(&w.state, &etl, &team("mine"))
        .await
        .unwrap_err();
    assert!(matches!(e, ServerError::Forbidden(_)));
    let e = teams::create(&w.state, &w.root, &team("etl"))
        .await
        .unwrap_err();
    assert!(matches!(e, ServerError::Conflict(_)), "{e:?}");
    let listed = teams::list(&w.state, &w.root).await.unwrap();
    let names: Vec<&str> = listed.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["default", "etl"]);
    // the new team's log begins with its creation
    let first = w.log("etl").await.remove(0);
    assert_eq!(
        (first.action, first.key_id),
        (AuditAction::TeamCreate, w.root.key_id.to_string())
    );
}

#[tokio::test]
async fn delete_and_restore_keep_the_versions() {
    let w = world().await;
    let c = &w.root;
    let n = name("gone");
    secrets::write(&w.state, c, &c.team, &n, &json!("v"), None)
        .await
        .unwrap();
    secrets::delete(&w.state, c, &c.team, &n).await.unwrap();
    let e = secrets::read(&w.state, c, &c.team, &n, None)
        .await
        .unwrap_err();
    assert!(matches!(e, ServerError::NotFound(_)));
    let e = secrets::delete(&w.state, c, &c.team, &n).await.unwrap_err();
    assert!(matches!(e, ServerError::NotFound(_)));
    let back = secrets::restore(&w.state, c, &c.team, &n).await.unwrap();
    assert_eq!(back.version, 1);
    let read = secrets::read(&w.state, c, &c.team, &n, None).await.unwrap();
    assert_eq!(&read.plain[..], b"\"v\"");
    let outcomes: Vec<_> = w
        .log("default")
        .await
        .into_iter()
        .filter(|r| r.name.as_deref() == Some("gone"))
        .map(|r| (r.action, r.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            (AuditAction::SecretWrite, AuditOutcome::Ok),
            (AuditAction::SecretDelete, AuditOutcome::Ok),
            (AuditAction::SecretRead, AuditOutcome::NotFound),
            (AuditAction::SecretDelete, AuditOutcome::NotFound),
            (AuditAction::SecretRestore, AuditOutcome::Ok),
            (AuditAction::SecretRead, AuditOutcome::Ok),
        ]
    );
}

#[tokio::test]
async fn versions_and_settings_follow_the_roles_and_a_deleted_version_is_not_read() {
    use super::versions::{self, Settings};
    use sigil_store::{KvConfig, VersionChange};
    let w = world().await;
    let (reader, writer) = (
        w.key(&w.root, Role::Reader).await,
        w.key(&w.root, Role::Writer).await,
    );
    let etl = w.team("etl").await;
    let n = name("app/db");
    for v in ["one", "two"] {
        secrets::write(&w.state, &writer, &writer.team, &n, &json!(v), None)
            .await
            .unwrap();
    }
    let delete = VersionChange::Delete;
    let e = versions::change(&w.state, &reader, &reader.team, &n, &[2], delete)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("needs the writer role"), "{e}");
    let e = versions::change(&w.state, &etl, &team("default"), &n, &[2], delete)
        .await
        .unwrap_err();
    assert!(matches!(e, ServerError::Forbidden(_)), "{e:?}");
    let changed = versions::change(&w.state, &writer, &writer.team, &n, &[2, 7], delete)
        .await
        .unwrap();
    assert_eq!(changed, [2]);
    // the latest is deleted: every face's read says so, the batch read counts it missing
    let e = secrets::read(&w.state, &reader, &reader.team, &n, None)
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("version 2 in team \"default\" is deleted"),
        "{e}"
    );
    let batch = secrets::read_many(&w.state, &reader, &reader.team, &["app/db".into()], &[])
        .await
        .unwrap();
    assert_eq!(batch.missing, ["app/db"]);
    let v1 = secrets::read(&w.state, &reader, &reader.team, &n, Some(1))
        .await
        .unwrap();
    assert_eq!(&v1.plain[..], br#""one""#);
    // Sigil's own delete and restore leave the versions' state as it was
    secrets::delete(&w.state, &writer, &writer.team, &n)
        .await
        .unwrap();
    secrets::restore(&w.state, &writer, &writer.team, &n)
        .await
        .unwrap();
    let h = secrets::history(&w.state, &reader, &reader.team, &n, None, 10)
        .await
        .unwrap();
    let states: Vec<&str> = h.versions.iter().map(|v| v.state.as_str()).collect();
    assert_eq!(states, ["deleted", "live"]);
    // destroyed: gone for good
    versions::change(
        &w.state,
        &writer,
        &writer.team,
        &n,
        &[1],
        VersionChange::Destroy,
    )
    .await
    .unwrap();
    let e = secrets::read(&w.state, &reader, &reader.team, &n, Some(1))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("is destroyed"), "{e}");
    // settings: a writer's for a secret, an admin's for the team
    let s = Settings {
        max_versions: Some(3),
        ..Default::default()
    };
    let e = versions::set(&w.state, &reader, &reader.team, &n, s.clone())
        .await
        .unwrap_err();
    assert!(matches!(e, ServerError::Forbidden(_)), "{e:?}");
    versions::set(&w.state, &writer, &writer.team, &n, s)
        .await
        .unwrap();
    let strict = KvConfig {
        cas_required: true,
        ..Default::default()
    };
    let e = versions::set_team_settings(&w.state, &writer, &writer.team, strict)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("needs the admin role"), "{e}");
    versions::set_team_settings(&w.state, &w.root, &w.root.team, strict)
        .await
        .unwrap();
    let e = secrets::write(&w.state, &writer, &writer.team, &n, &json!("x"), None)
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("check-and-set required"), "{e}");
    // and a purge: the secret gone, its records kept
    versions::purge(&w.state, &writer, &writer.team, &n)
        .await
        .unwrap();
    let e = secrets::history(&w.state, &reader, &reader.team, &n, None, 10)
        .await
        .unwrap_err();
    assert!(matches!(e, ServerError::NotFound(_)), "{e:?}");
    let log = w.log("default").await;
    let of = |a: AuditAction, o: AuditOutcome| {
        log.iter()
            .filter(|r| r.action == a && r.outcome == o)
            .count()
    };
    assert_eq!(of(AuditAction::VersionDelete, AuditOutcome::Ok), 1);
    assert_eq!(of(AuditAction::VersionDelete, AuditOutcome::Denied), 1);
    assert_eq!(of(AuditAction::VersionDestroy, AuditOutcome::Ok), 1);
    assert_eq!(of(AuditAction::SecretSettings, AuditOutcome::Denied), 1);
    assert_eq!(of(AuditAction::TeamSettings, AuditOutcome::Denied), 1);
    assert_eq!(of(AuditAction::TeamSettings, AuditOutcome::Ok), 1);
    assert_eq!(of(AuditAction::SecretWrite, AuditOutcome::Conflict), 1);
    assert_eq!(of(AuditAction::SecretPurge, AuditOutcome::Ok), 1);
    assert_eq!(
        of(AuditAction::SecretRead, AuditOutcome::NotFound),
        3,
        "the reads of deleted and destroyed versions, on record"
    );
}
