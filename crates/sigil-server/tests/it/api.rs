//! The API's behaviour, on each backend.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::Server;

pub(crate) async fn secrets_versions_history_delete_restore(s: &Server) {
    let a = &s.admin;
    let r = s.put(a, "prod/db/password", json!("pass-one-5c1e")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["name"], "prod/db/password");
    assert_eq!(r.json["version"], 1);
    assert!(r.json["created_at"].as_str().unwrap().ends_with('Z'));
    let r = s
        .put(
            a,
            "prod/db/password",
            json!({"user": "etl", "password": "pass-two-5c1e"}),
        )
        .await;
    assert_eq!(r.json["version"], 2);
    let r = s.get(a, "prod/db/password").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json["value"],
        json!({"user": "etl", "password": "pass-two-5c1e"})
    );
    assert_eq!(r.json["version"], 2);
    assert_eq!(r.headers["cache-control"], "no-store");
    let r = s.req(a, "GET secrets/prod/db/password?version=1").await;
    assert_eq!(r.json["value"], "pass-one-5c1e");
    let r = s.req(a, "GET secrets/prod/db/password?version=7").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json["error"]["code"], "not_found");
    let r = s.req(a, "GET history/prod/db/password").await;
    assert_eq!(r.json["deleted"], false);
    let versions: Vec<i64> = r.json["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [2, 1]);
    // (regression: short values such as "p1" could occur inside a random key id, failing at random)
    assert!(
        !r.text.contains("pass-one-5c1e") && !r.text.contains("pass-two-5c1e"),
        "history has no values: {}",
        r.text
    );
    // soft delete, then restore
    let r = s.req(a, "DELETE secrets/prod/db/password").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        s.get(a, "prod/db/password").await.status,
        StatusCode::NOT_FOUND
    );
    let r = s.req(a, "DELETE secrets/prod/db/password").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = s.req(a, "GET history/prod/db/password").await;
    assert_eq!(r.json["deleted"], true);
    let r = s.req(a, "POST restore/prod/db/password").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["version"], 2);
    assert_eq!(
        s.get(a, "prod/db/password").await.json["value"]["password"],
        "pass-two-5c1e"
    );
    let r = s.req(a, "POST restore/prod/db/password").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // names that look like operations are just names
    assert_eq!(s.put(a, "history", json!("h")).await.status, StatusCode::OK);
    assert_eq!(
        s.put(a, "restore/x", json!("r")).await.status,
        StatusCode::OK
    );
    assert_eq!(s.get(a, "restore/x").await.json["value"], "r");
}

// the REST twin of Vault's delete/undelete/destroy: a leaked value can be wiped through Sigil's
// own API, each version changed is on record, and a reader cannot do it
pub(crate) async fn versions_are_deleted_undeleted_and_destroyed(s: &Server) {
    let a = &s.admin;
    for v in ["leak-one-77d1", "leak-two-77d1", "fine-three-77d1"] {
        assert_eq!(s.put(a, "app/token", json!(v)).await.status, StatusCode::OK);
    }
    let reader = s.key("reader").await;
    let body = |versions: Value| json!({ "versions": versions });
    // a reader may not; nothing changed
    let r = s
        .req_json(&reader, "POST destroy-versions/app/token", body(json!([1])))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(
        s.req(&reader, "GET secrets/app/token?version=1").await.json["value"],
        "leak-one-77d1"
    );
    // delete 1 and 2 (9 does not exist: left alone, not listed)
    let r = s
        .req_json(a, "POST delete-versions/app/token", body(json!([1, 2, 9])))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json, json!({"name": "app/token", "changed": [1, 2]}));
    let r = s.req(a, "GET secrets/app/token?version=2").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert!(r.text.contains("deleted"), "{}", r.text);
    assert_eq!(s.get(a, "app/token").await.json["value"], "fine-three-77d1");
    // undelete 2; destroy 1 (deleted: it may be destroyed) and 2
    let r = s
        .req_json(a, "POST undelete-versions/app/token", body(json!([2, 3])))
        .await;
    assert_eq!(r.json["changed"], json!([2]), "{}", r.text);
    assert_eq!(
        s.req(a, "GET secrets/app/token?version=2").await.json["value"],
        "leak-two-77d1"
    );
    let r = s
        .req_json(a, "POST destroy-versions/app/token", body(json!([1, 2])))
        .await;
    assert_eq!(r.json["changed"], json!([1, 2]), "{}", r.text);
    let r = s.req(a, "GET secrets/app/token?version=1").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.text.contains("destroyed"), "{}", r.text);
    // a destroyed version cannot come back
    let r = s
        .req_json(a, "POST undelete-versions/app/token", body(json!([1])))
        .await;
    assert_eq!(r.json["changed"], json!([]), "{}", r.text);
    let (states, _) = s.rest_history("app/token").await;
    assert_eq!(
        states,
        [
            (3, "live".into()),
            (2, "destroyed".into()),
            (1, "destroyed".into())
        ]
    );
    // bad input: refused, named, nothing changed
    for (line, versions, status, says) in [
        (
            "POST delete-versions/app/token",
            json!([]),
            StatusCode::BAD_REQUEST,
            "no version",
        ),
        (
            "POST delete-versions/app/token",
            json!([0]),
            StatusCode::BAD_REQUEST,
            "1 or more",
        ),
        (
            "POST delete-versions/app/token",
            json!(["3"]),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "POST delete-versions/app/token",
            json!((1..=1001).collect::<Vec<i64>>()),
            StatusCode::PAYLOAD_TOO_LARGE,
            "over the limit of 1000",
        ),
        (
            "POST delete-versions/nothing/here",
            json!([1]),
            StatusCode::NOT_FOUND,
            "not found",
        ),
        (
            "POST delete-versions/bad//name",
            json!([1]),
            StatusCode::BAD_REQUEST,
            "invalid secret name",
        ),
    ] {
        let r = s.req_json(a, line, body(versions)).await;
        assert_eq!(r.status, status, "{line}: {}", r.text);
        assert!(r.text.contains(says), "{line}: {}", r.text);
    }
    assert_eq!(s.get(a, "app/token").await.json["version"], 3);
    // one record per version changed, and the refusals on record too
    let log = s.audit_log().await.json;
    let count = |action: &str, outcome: &str| {
        log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                e["action"] == action && e["outcome"] == outcome && e["name"] == "app/token"
            })
            .count()
    };
    assert_eq!(count("version.delete", "ok"), 2);
    assert_eq!(count("version.undelete", "ok"), 1);
    assert_eq!(count("version.destroy", "ok"), 2);
    assert_eq!(count("version.destroy", "denied"), 1);
    assert!(count("version.delete", "invalid") >= 3, "{log}");
}

pub(crate) async fn check_and_set(s: &Server) {
    let a = &s.admin;
    let put = |cas: i64, v: &str| s.req_json(a, "PUT secrets/cas", json!({"value": v, "cas": cas}));
    assert_eq!(put(0, "one").await.status, StatusCode::OK);
    let r = put(0, "again").await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.json["error"]["code"], "conflict");
    assert_eq!(
        r.json["error"]["message"],
        "version conflict: the secret is at version 1"
    );
    assert_eq!(put(1, "two").await.json["version"], 2);
    assert_eq!(put(1, "stale").await.status, StatusCode::CONFLICT);
    assert_eq!(
        s.get(a, "cas").await.json["value"],
        "two",
        "a refused write changed nothing"
    );
}

pub(crate) async fn listing_and_batch_read(s: &Server) {
    let a = &s.admin;
    for i in 0..25 {
        s.put(a, &format!("app/s{i:02}"), json!(format!("value-{i}")))
            .await;
    }
    s.put(a, "other", json!("o")).await;
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/teams/default/secrets?prefix=app/&limit=10&cursor={c}"),
            None => "/api/v1/teams/default/secrets?prefix=app/&limit=10".to_owned(),
        };
        let r = s.send(Method::GET, &path, a).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(!r.text.contains("value-"), "listings never carry values");
        for item in r.json["secrets"].as_array().unwrap() {
            assert_eq!(item["version"], 1);
            names.push(item["name"].as_str().unwrap().to_owned());
        }
        match r.json["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        names,
        (0..25).map(|i| format!("app/s{i:02}")).collect::<Vec<_>>()
    );
    let r = s.batch_read(a, json!(["app/s03", "nope", "other"])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let got: Vec<(&str, &str)> = r.json["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["name"].as_str().unwrap(), x["value"].as_str().unwrap()))
        .collect();
    assert_eq!(got, [("app/s03", "value-3"), ("other", "o")]);
    assert_eq!(r.json["missing"], json!(["nope"]));
    // a name asked for twice is read and recorded once; a deleted secret is missing
    let r = s.req(a, "DELETE secrets/app/s04").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = s
        .batch_read(a, json!(["app/s05", "app/s04", "app/s05"]))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["secrets"].as_array().unwrap().len(), 1);
    assert_eq!(r.json["secrets"][0]["value"], "value-5");
    assert_eq!(r.json["missing"], json!(["app/s04"]));
    let log = s.audit_log().await;
    let reads = |name: &str| reads_of(&log, name);
    assert_eq!(reads("app/s05"), [("ok".to_owned(), Some(1))]);
    assert_eq!(reads("app/s04"), [("not_found".to_owned(), None)]);
    assert_eq!(reads("nope"), [("not_found".to_owned(), None)]);
    // the task that asks for each name (a flow run reading for all its tasks): on record
    let tasked = |names: Value, tasks: Value| {
        s.req_json(
            a,
            "POST batch-read",
            json!({"names": names, "tasks": tasks}),
        )
    };
    let r = tasked(json!(["app/s06", "app/s07"]), json!(["extract", "load"])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let log = s.audit_log().await;
    let task_of = |name: &str| {
        log.json["entries"]
            .as_array()
            .unwrap()
            .iter()
            .rfind(|e| e["name"] == name)
            .map(|e| e["task"].clone())
    };
    assert_eq!(task_of("app/s06"), Some(json!("extract")));
    assert_eq!(task_of("app/s07"), Some(json!("load")));
    for (tasks, says) in [
        (json!(["one"]), "one task per name"),
        (json!(["ok", "bad\ntask"]), "printable ASCII"),
        (json!(["ok", "x".repeat(129)]), "printable ASCII"),
    ] {
        let r = tasked(json!(["app/s06", "app/s07"]), tasks).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert!(r.text.contains(says), "{says}: {}", r.text);
    }
}

/// Each role against each endpoint.
pub(crate) async fn role_matrix(s: &Server) {
    s.put(&s.admin, "m", json!("v")).await;
    s.req(&s.admin, "DELETE secrets/gone").await;
    s.put(&s.admin, "gone", json!("g")).await;
    let roles = ["viewer", "reader", "writer", "admin"];
    let mut keys = Vec::new();
    for role in roles {
        keys.push((role, s.key(role).await));
    }
    // (request, body, lowest role allowed, status when allowed)
    let cases: [(&str, Option<Value>, usize, StatusCode); 9] = [
        ("GET secrets", None, 0, StatusCode::OK),
        ("GET history/m", None, 0, StatusCode::OK),
        ("GET secrets/m", None, 1, StatusCode::OK),
        (
            "POST batch-read",
            Some(json!({"names": ["m"]})),
            1,
            StatusCode::OK,
        ),
        (
            "PUT secrets/m",
            Some(json!({"value": "w"})),
            2,
            StatusCode::OK,
        ),
        ("GET keys", None, 3, StatusCode::OK),
        ("GET audit", None, 3, StatusCode::OK),
        (
            "POST keys",
            Some(json!({"role": "viewer"})),
            3,
            StatusCode::CREATED,
        ),
        ("GET /api/v1/whoami", None, 0, StatusCode::OK),
    ];
    for (line, body, lowest, ok) in &cases {
        for (rank, (role, key)) in keys.iter().enumerate() {
            let r = match body {
                Some(body) => s.req_json(key, line, body.clone()).await,
                None => s.req(key, line).await,
            };
            let want = if rank >= *lowest {
                *ok
            } else {
                StatusCode::FORBIDDEN
            };
            assert_eq!(r.status, want, "{role} {line}: {}", r.text);
            if want == StatusCode::FORBIDDEN {
                assert_eq!(r.json["error"]["code"], "forbidden");
            }
        }
    }
    // delete and restore: writer and admin only
    for (rank, (role, key)) in keys.iter().enumerate() {
        let del = s.req(key, "DELETE secrets/gone").await;
        let res = s.req(key, "POST restore/gone").await;
        if rank >= 2 {
            assert_eq!(
                (del.status, res.status),
                (StatusCode::NO_CONTENT, StatusCode::OK),
                "{role}"
            );
        } else {
            assert_eq!(
                (del.status, res.status),
                (StatusCode::FORBIDDEN, StatusCode::FORBIDDEN),
                "{role}"
            );
        }
    }
    // teams: the bootstrap administrator only
    let admin_key = &keys[3].1;
    let r = s
        .req_json(admin_key, "POST /api/v1/teams", json!({"name": "x"}))
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "a team admin is not the bootstrap admin"
    );
    let r = s.req(&s.admin, "GET /api/v1/teams").await;
    assert_eq!(r.json["teams"][0]["name"], "default");
}

pub(crate) async fn team_isolation(s: &Server) {
    s.put(&s.admin, "shared-name", json!("default's value"))
        .await;
    let r = s
        .req_json(&s.admin, "POST /api/v1/teams", json!({"name": "etl"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let etl_admin = r.json["admin_key"]["key"].as_str().unwrap().to_owned();
    assert_eq!(r.json["admin_key"]["role"], "admin");
    let r = s
        .req_json(&s.admin, "POST /api/v1/teams", json!({"name": "etl"}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    // each team sees only its own
    let r = s.req(&etl_admin, "GET secrets/shared-name").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!r.text.contains("default's value"));
    let r = s
        .req_json(
            &etl_admin,
            "PUT /api/v1/teams/etl/secrets/shared-name",
            json!({"value": "etl's value"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        s.get(&s.admin, "shared-name").await.json["value"],
        "default's value"
    );
    let r = s
        .req(&s.admin, "GET /api/v1/teams/etl/secrets/shared-name")
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "the bootstrap admin does not read other teams' secrets"
    );
    let r = s.req(&s.admin, "GET /api/v1/teams/etl/keys").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = s
        .req(&etl_admin, "GET /api/v1/teams/nosuchteam/secrets/x")
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "an unknown team is refused like another team"
    );

    // Another team's admin could plant records in default's log through refused requests (the
    // URL's team string was written there unchecked; 60,000 bytes were stored and echoed back).
    let before = s.audit_log().await.json["entries"]
        .as_array()
        .unwrap()
        .len();
    let huge = "x".repeat(60_000);
    for team in ["default", huge.as_str()] {
        let r = s
            .call_with(
                Method::GET,
                &format!("/api/v1/teams/{team}/secrets/planted-name"),
                Some(&etl_admin),
                None,
                &[("x-sigil-flow-run", "planted-run")],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(
            r.text.len() < 1000,
            "the answer does not echo it: {}",
            r.text.len()
        );
    }
    let after = s.audit_log().await.json["entries"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(after, before, "nothing lands in default's log");
    let r = s
        .req(
            &etl_admin,
            "GET /api/v1/teams/etl/audit?order=newest&limit=2",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let mine = r.json["entries"].as_array().unwrap();
    assert_eq!(mine[1]["team"], "etl");
    assert_eq!(mine[1]["target"], "default");
    assert_eq!(mine[1]["outcome"], "denied");
    assert_eq!(mine[1]["name"], "planted-name");
    let cut = mine[0]["target"].as_str().unwrap();
    assert!(cut.len() <= 70 && cut.ends_with('…'), "{cut}");
}

// A team admin could revoke the bootstrap key (nobody could create teams again) or its own key.
// two admins of a team revoking each other at once: the check that one admin remains and the
// revocation were two steps, and both revocations went through (the team had no admin left)
pub(crate) async fn two_admins_revoking_each_other_leave_one(s: &Server) {
    let id_of = |key: &str| key.split('_').nth(1).unwrap().to_owned();
    let mut raced = 0;
    for round in 0..12 {
        let team = format!("race{round}");
        let r = s
            .req_json(&s.admin, "POST /api/v1/teams", json!({ "name": team }))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let first = r.json["admin_key"]["key"].as_str().unwrap().to_owned();
        let r = s
            .req_json(
                &first,
                &format!("POST /api/v1/teams/{team}/keys"),
                json!({"role": "admin", "name": "second"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let second = r.json["key"].as_str().unwrap().to_owned();
        let (a, b) = (
            format!("DELETE /api/v1/teams/{team}/keys/{}", id_of(&second)),
            format!("DELETE /api/v1/teams/{team}/keys/{}", id_of(&first)),
        );
        let (ra, rb) = tokio::join!(s.req(&first, &a), s.req(&second, &b));
        // one revocation lands; the other is refused: as the last admin key's (both got past
        // the first check), or because its own key was revoked first
        let mut statuses = [ra.status, rb.status];
        statuses.sort();
        assert!(
            statuses == [StatusCode::NO_CONTENT, StatusCode::CONFLICT]
                || statuses == [StatusCode::NO_CONTENT, StatusCode::UNAUTHORIZED],
            "round {round}: {} {} / {} {}",
            ra.status,
            ra.text,
            rb.status,
            rb.text
        );
        raced += usize::from(statuses.contains(&StatusCode::CONFLICT));
        // and the one left still manages the team
        let left = if ra.status == StatusCode::NO_CONTENT {
            &first
        } else {
            &second
        };
        let r = s.req(left, &format!("GET /api/v1/teams/{team}/keys")).await;
        assert_eq!(r.status, StatusCode::OK, "round {round}: {}", r.text);
    }
    eprintln!("{raced} of 12 rounds raced past the first check");
}

pub(crate) async fn revocations_that_lock_people_out_are_refused(s: &Server) {
    let second = s.key("admin").await;
    let bootstrap_id = s.admin.split('_').nth(1).unwrap().to_owned();
    let second_id = second.split('_').nth(1).unwrap().to_owned();
    let revoke =
        |by: String, id: String| async move { s.req(&by, &format!("DELETE keys/{id}")).await };
    let r = revoke(second.clone(), bootstrap_id.clone()).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("reset-bootstrap-key")
    );
    let r = revoke(second.clone(), second_id.clone()).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot revoke itself")
    );
    // both keys still work; the bootstrap key may still revoke the other admin
    assert_eq!(
        s.req(&s.admin, "GET /api/v1/teams").await.status,
        StatusCode::OK
    );
    assert_eq!(
        revoke(s.admin.clone(), second_id).await.status,
        StatusCode::NO_CONTENT
    );
    let log = s.audit_log().await;
    let refused = log.json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "key.revoke" && e["outcome"] == "conflict")
        .count();
    assert_eq!(refused, 2, "both refusals are audited");
}

// `history` returned every version of a secret in one response.
pub(crate) async fn history_is_paged(s: &Server) {
    for i in 0..5 {
        s.put(&s.admin, "paged", json!(format!("v{i}"))).await;
    }
    let page = |q: &str| {
        let q = q.to_owned();
        async move { s.req(&s.admin, &format!("GET history/paged{q}")).await }
    };
    let r = page("?limit=2").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let versions = |r: &crate::Reply| -> Vec<i64> {
        r.json["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(versions(&r), [5, 4]);
    assert_eq!(r.json["next_cursor"], "4");
    let r = page("?limit=2&cursor=4").await;
    assert_eq!(versions(&r), [3, 2]);
    let r = page("?limit=2&cursor=2").await;
    assert_eq!(versions(&r), [1]);
    assert!(r.json.get("next_cursor").is_none(), "{}", r.text);
    assert_eq!(versions(&page("").await), [5, 4, 3, 2, 1]);
    assert_eq!(page("?limit=0").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(page("?cursor=x").await.status, StatusCode::BAD_REQUEST);
}

pub(crate) async fn keys_are_revoked_and_refused(s: &Server) {
    let reader = s.key("reader").await;
    s.put(&s.admin, "k", json!("v")).await;
    assert_eq!(s.get(&reader, "k").await.status, StatusCode::OK);
    let r = s.req(&s.admin, "GET keys").await;
    let listed = r.json["keys"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        !r.text.contains(&reader),
        "keys are shown once, never listed"
    );
    let id = reader.split('_').nth(1).unwrap();
    let r = s.req(&s.admin, &format!("DELETE keys/{id}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = s.get(&reader, "k").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json["error"]["message"], "the API key was revoked");
    let r = s.req(&s.admin, &format!("DELETE keys/{id}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

pub(crate) async fn audit_records_reads_writes_and_refusals(s: &Server) {
    let viewer = s.key("viewer").await;
    s.put(&s.admin, "audited", json!("audit-canary-91")).await;
    let r = s
        .call_with(
            Method::GET,
            "/api/v1/teams/default/secrets/audited",
            Some(&s.admin),
            None,
            &[
                ("x-sigil-flow-run", "run-42"),
                ("x-sigil-task", "load_orders"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        s.get(&viewer, "audited").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.get(&s.admin, "missing").await.status,
        StatusCode::NOT_FOUND
    );
    let r = s.audit_log().await;
    assert!(
        !r.text.contains("audit-canary-91"),
        "the audit log never holds a value"
    );
    let entries = r.json["entries"].as_array().unwrap();
    let find = |action: &str, outcome: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action && e["outcome"] == outcome)
            .unwrap_or_else(|| panic!("no {action}/{outcome} in {entries:?}"))
            .clone()
    };
    let write = find("secret.write", "ok");
    assert_eq!(
        (write["name"].as_str(), write["version"].as_i64()),
        (Some("audited"), Some(1))
    );
    let read = find("secret.read", "ok");
    assert_eq!(read["flow_run"], "run-42");
    assert_eq!(read["task"], "load_orders");
    assert_eq!(read["role"], "admin");
    assert_eq!(read["client"], s.client.ip().to_string());
    let denied = find("secret.read", "denied");
    assert_eq!(denied["role"], "viewer");
    find("secret.read", "not_found");
    find("key.create", "ok");
    find("team.create", "ok");
    // paging and since
    let r = s.req(&s.admin, "GET audit?limit=2").await;
    assert_eq!(r.json["entries"].as_array().unwrap().len(), 2);
    let cursor = r.json["next_cursor"].as_str().unwrap().to_owned();
    let r2 = s
        .call(
            Method::GET,
            &format!("/api/v1/teams/default/audit?limit=2&cursor={cursor}"),
            Some(&s.admin),
            None,
        )
        .await;
    assert!(r2.json["entries"][0]["id"].as_i64() > r.json["entries"][1]["id"].as_i64());
    let r = s
        .req(&s.admin, "GET audit?since=2999-01-01T00:00:00Z")
        .await;
    assert_eq!(r.json["entries"], json!([]));
}

pub(crate) async fn bad_input_is_refused_and_changes_nothing(s: &Server) {
    let a = &s.admin;
    s.put(a, "keep", json!("kept")).await;
    let before = s.req(a, "GET secrets").await.json;
    let raw = |path: &'static str, body: &[u8]| {
        s.call_with(Method::PUT, path, Some(a), Some(body.to_vec()), &[])
    };
    // malformed JSON, unknown fields, wrong shapes
    for (body, want) in [
        (&b"{\"value\": "[..], "invalid JSON body"),
        (b"not json", "must be a JSON object"),
        (b"{\"value\": 1, \"extra\": 2}", "unknown field `extra`"),
        (b"{\"cas\": 1}", "missing field `value`"),
        (b"{\"value\": 1, \"cas\": -1}", "cas must be"),
    ] {
        let r = raw("/api/v1/teams/default/secrets/newone", body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body:?}: {}", r.text);
        assert_eq!(r.json["error"]["code"], "invalid");
        assert!(
            r.json["error"]["message"].as_str().unwrap().contains(want),
            "{body:?}: {}",
            r.text
        );
    }
    // bodies over 1 MiB, values over 64 KiB
    let big_body = format!("{{\"value\": \"{}\"}}", "x".repeat((1 << 20) + 10));
    let r = raw("/api/v1/teams/default/secrets/newone", big_body.as_bytes()).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    assert_eq!(r.json["error"]["code"], "too_large");
    let r = s.put(a, "newone", json!("y".repeat(64 * 1024))).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.json["error"]["code"], "value_too_large");
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("over the limit of 65536 bytes")
    );
    // names: .., NUL, SQL, percent-encoded oddities, empty segments
    // (regression: a refused name holding NUL made the audit insert fail on PostgreSQL: a 503)
    for bad in [
        "a/../b",
        "..",
        "a%00b",
        "x%3BDROP%20TABLE%20secrets",
        "a%27%20OR%201%3D1",
        "a//b",
        "a%25b",
        "%2E%2E",
    ] {
        let r = s.put(a, bad, json!("v")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text);
        assert!(
            r.json["error"]["message"]
                .as_str()
                .unwrap()
                .contains("invalid secret name"),
            "{bad}: {}",
            r.text
        );
        let r = s.get(a, bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    // %2F decodes to '/', an ordinary separator: it is the same secret as the plain path
    assert_eq!(
        s.put(a, "dir%2Fname", json!("slash")).await.status,
        StatusCode::OK
    );
    assert_eq!(s.get(a, "dir/name").await.json["value"], "slash");
    s.req(a, "DELETE secrets/dir/name").await;
    // queries, unknown routes and methods, a team name that cannot be one:
    // (request, status, error code)
    let cases = [
        (
            "GET secrets/keep?version=abc",
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "GET secrets/keep?version=0",
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        ("GET secrets?limit=0", StatusCode::BAD_REQUEST, "invalid"),
        ("GET secrets?cursor=!!", StatusCode::BAD_REQUEST, "invalid"),
        ("GET audit?cursor=-1", StatusCode::BAD_REQUEST, "invalid"),
        // a name that is not UTF-8 once decoded: the API's JSON error, not axum's text
        ("GET secrets/%FF", StatusCode::BAD_REQUEST, "invalid"),
        (
            "GET history/keep?cursor=+2",
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "GET audit?order=sideways",
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        ("GET /api/v1/nothing", StatusCode::NOT_FOUND, "not_found"),
        ("PATCH secrets/keep", StatusCode::METHOD_NOT_ALLOWED, ""),
    ];
    for (line, status, code) in cases {
        let r = s.req(a, line).await;
        assert_eq!(r.status, status, "{line}: {}", r.text);
        if !code.is_empty() {
            assert_eq!(r.json["error"]["code"], code, "{line}");
        }
    }
    // serde would read a struct from an array: [value, cas] is not a body (found by Schemathesis)
    for body in [
        json!(["overwritten", null]),
        json!("overwritten"),
        json!(null),
    ] {
        let r = s.req_json(a, "PUT secrets/keep", body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert!(r.text.contains("must be a JSON object"), "{}", r.text);
    }
    let r = s
        .req_json(a, "POST /api/v1/teams", json!({"name": "bad name"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.json["error"]["code"], "invalid");
    let r = s
        .call_with(
            Method::GET,
            "/api/v1/teams/default/secrets/keep",
            Some(a),
            None,
            &[("x-sigil-task", &"t".repeat(200))],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // nothing changed
    let after = s.req(a, "GET secrets").await.json;
    assert_eq!(before, after);
    assert_eq!(s.get(a, "keep").await.json["version"], 1);
}

pub(crate) async fn health_ready_metrics(s: &Server) {
    assert_eq!(
        s.call(Method::GET, "/healthz", None, None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        s.call(Method::GET, "/readyz", None, None).await.text,
        "ready\n"
    );
    s.put(&s.admin, "m", json!("v")).await;
    s.get(&s.admin, "m").await;
    let r = s.call(Method::GET, "/metrics", None, None).await;
    assert!(r.text.contains("sigil_secret_reads_total 1"), "{}", r.text);
    assert!(r.text.contains("sigil_secret_writes_total 1"), "{}", r.text);
    assert!(
        r.text.contains("sigil_http_requests_total{route=\"/api/v1/teams/{team}/secrets/{*name}\",status=\"200\"} 2"),
        "{}",
        r.text
    );
    // latencies, as Prometheus histograms: the requests before this one (at least the four
    // above), and the store's own group commits (on SQLite, each with a sync of the WAL)
    // the value of the line `{series} value`
    let value = |series: &str| -> u64 {
        r.text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{series} ")))
            .unwrap_or_else(|| panic!("no {series} in {}", r.text))
            .parse()
            .unwrap()
    };
    let count = |name: &str| value(&format!("{name}_count"));
    assert!(
        count("sigil_http_request_duration_seconds") >= 4,
        "{}",
        r.text
    );
    assert!(
        r.text
            .contains("# TYPE sigil_http_request_duration_seconds histogram\n"),
        "{}",
        r.text
    );
    // on PostgreSQL a put is a transaction of its own; the read's batch is a group commit
    assert!(count("sigil_store_commit_seconds") >= 1, "{}", r.text);
    if s.store.backend() == "sqlite" {
        assert!(count("sigil_store_commit_seconds") >= 2, "{}", r.text);
        assert!(count("sigil_store_sync_seconds") >= 2, "{}", r.text);
        // no pool: the embedded database has no server to connect to
        assert!(!r.text.contains("sigil_store_connections"), "{}", r.text);
    } else {
        // the pool's connections: at least the one the read's batch used, at most the
        // default pool_size
        assert_eq!(value("sigil_store_connections_max"), 64, "{}", r.text);
        let open = value("sigil_store_connections{state=\"idle\"}")
            + value("sigil_store_connections{state=\"in_use\"}");
        assert!((1..=64).contains(&open), "{}", r.text);
        assert!(
            r.text.contains("# TYPE sigil_store_connections gauge\n"),
            "{}",
            r.text
        );
    }
    // buckets are cumulative and end with every request
    let buckets: Vec<u64> = r
        .text
        .lines()
        .filter_map(|l| l.strip_prefix("sigil_http_request_duration_seconds_bucket{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(buckets.len(), sigil_store::TIMING_BOUNDS.len() + 1);
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert_eq!(
        *buckets.last().unwrap(),
        count("sigil_http_request_duration_seconds")
    );
}

/// A value that cannot be opened (here: its data key is wrapped by a master key the server does
/// not have) is a 500 that holds no value, and the audit log says what happened: a read, alone
/// or in a batch, records the version it read (`ok`) and then `error`; a name a batch did not
/// find, `not_found`.
pub(crate) async fn an_unopenable_value_is_an_audited_error(s: &Server) {
    assert_eq!(
        s.put(&s.admin, "sealed/one", json!("unopenable-canary-17"))
            .await
            .status,
        StatusCode::OK
    );
    let other = s.with_other_master_key();
    let r = other.get(&s.admin, "sealed/one").await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.text);
    assert_eq!(r.json["error"]["code"], "internal");
    assert!(!r.text.contains("unopenable-canary-17"));
    let r = other
        .batch_read(&s.admin, json!(["sealed/one", "sealed/missing"]))
        .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.text);
    assert_eq!(r.json["error"]["code"], "internal");
    assert!(!r.text.contains("unopenable-canary-17"));
    // the server with the right key still reads it
    assert_eq!(
        s.get(&s.admin, "sealed/one").await.json["value"],
        "unopenable-canary-17"
    );
    let r = s.audit_log().await;
    let reads = |name: &str| reads_of(&r, name);
    let at = |outcome: &str, version: Option<i64>| (outcome.to_owned(), version);
    assert_eq!(
        reads("sealed/one"),
        [
            at("ok", Some(1)),
            at("error", Some(1)),
            at("ok", Some(1)),
            at("error", Some(1)),
            at("ok", Some(1))
        ]
    );
    assert_eq!(reads("sealed/missing"), [at("not_found", None)]);
}

/// The outcome and version of each `secret.read` record of `name` in an audit log, oldest first.
fn reads_of(log: &crate::Reply, name: &str) -> Vec<(String, Option<i64>)> {
    log.json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "secret.read" && e["name"] == name)
        .map(|e| {
            (
                e["outcome"].as_str().unwrap().to_owned(),
                e["version"].as_i64(),
            )
        })
        .collect()
}

/// Two replicas on one store: a key revoked through A is refused by B once B's key cache can no
/// longer hold it — no later than `key_cache_ttl` (at most the second the README promises)
/// after the revocation, whatever B cached before it.
pub(crate) async fn a_key_revoked_through_one_replica_is_refused_by_another(s: &Server) {
    let limits = sigil_server::Limits::default();
    assert!(limits.key_cache_ttl <= std::time::Duration::from_secs(1));
    let b = s.replica(limits.clone());
    s.put(&s.admin, "r", json!("v")).await;
    let reader = s.key("reader").await;
    // B has just looked the key up: a cached, trusted lookup
    assert_eq!(b.get(&reader, "r").await.status, StatusCode::OK);
    let id = reader.split('_').nth(1).unwrap();
    let r = s.req(&s.admin, &format!("DELETE keys/{id}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let revoked = tokio::time::Instant::now();
    // A refuses at once; B at the latest when its lookup expires
    assert_eq!(s.get(&reader, "r").await.status, StatusCode::UNAUTHORIZED);
    tokio::time::sleep_until(revoked + limits.key_cache_ttl).await;
    let r = b.get(&reader, "r").await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "B still accepts a key revoked through A {:?} ago: {}",
        revoked.elapsed(),
        r.text
    );
    assert_eq!(r.json["error"]["message"], "the API key was revoked");
    assert!(r.json.get("value").is_none());
}
