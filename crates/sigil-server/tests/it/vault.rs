//! The Vault face's system and token endpoints through the router: what Vault's clients call
//! before they touch a secret.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::{Reply, Server, sqlite_server};

async fn vault(s: &Server, method: Method, path: &str, token: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = token
        .map(|t| vec![("x-vault-token", t), ("x-vault-request", "true")])
        .unwrap_or_default();
    s.call_with(method, path, None, None, &headers).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_init_and_seal_status_answer_without_a_token() {
    let s = sqlite_server(sigil_server::Limits::default()).await;
    let r = vault(&s, Method::GET, "/v1/sys/health", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for (k, v) in [
        ("initialized", json!(true)),
        ("sealed", json!(false)),
        ("standby", json!(false)),
    ] {
        assert_eq!(r.json[k], v, "{k}: {}", r.text);
    }
    assert!(r.json["version"].as_str().unwrap().starts_with("sigil-"));
    assert!(r.json["server_time_utc"].as_i64().unwrap() > 1_700_000_000);
    let r = vault(&s, Method::HEAD, "/v1/sys/health", None).await;
    assert_eq!((r.status, r.text.as_str()), (StatusCode::OK, ""));
    let r = vault(
        &s,
        Method::GET,
        "/v1/sys/health?activecode=204&standbyok=true",
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = vault(&s, Method::GET, "/v1/sys/health?activecode=abc", None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json["errors"][0].as_str().unwrap().contains("activecode"));
    let r = vault(&s, Method::GET, "/v1/sys/init", None).await;
    assert_eq!(r.json, json!({"initialized": true}));
    let r = vault(&s, Method::GET, "/v1/sys/seal-status", None).await;
    assert_eq!(
        (r.json["sealed"].clone(), r.json["type"].clone()),
        (json!(false), json!("shamir"))
    );
    assert_eq!(r.json["storage_type"], "sqlite");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_a_key_and_lookup_self_describes_it_without_the_key() {
    let s = sqlite_server(sigil_server::Limits::default()).await;
    let reader = s.key("reader").await;
    let id = reader.split('_').nth(1).unwrap();
    for token in [&reader] {
        let r = vault(&s, Method::GET, "/v1/auth/token/lookup-self", Some(token)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let d = &r.json["data"];
        assert_eq!(
            (
                d["type"].clone(),
                d["ttl"].clone(),
                d["expire_time"].clone()
            ),
            (json!("service"), json!(0), json!(null))
        );
        assert_eq!(d["id"], id);
        assert_eq!(d["policies"], json!(["default", "reader"]));
        assert!(
            !r.text.contains(reader.as_str()),
            "the key itself is never answered"
        );
        for k in [
            "request_id",
            "lease_id",
            "renewable",
            "lease_duration",
            "wrap_info",
            "warnings",
            "auth",
        ] {
            assert!(r.json.get(k).is_some(), "envelope lacks {k}: {}", r.text);
        }
    }
    // Authorization: Bearer works too
    let r = s
        .call_with(
            Method::GET,
            "/v1/auth/token/lookup-self",
            Some(&reader),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // no token, a wrong token: Vault's 403
    for token in [
        None,
        Some("sgl_wrongwrong12_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"),
    ] {
        let r = vault(&s, Method::GET, "/v1/auth/token/lookup-self", token).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(r.json, json!({"errors": ["permission denied"]}));
    }
    // renew-self answers Vault's auth block; revoke-self is refused, the key keeps working
    let r = vault(&s, Method::POST, "/v1/auth/token/renew-self", Some(&reader)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["auth"]["client_token"], reader.as_str());
    assert_eq!(r.json["auth"]["renewable"], false);
    let r = vault(
        &s,
        Method::POST,
        "/v1/auth/token/revoke-self",
        Some(&reader),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        r.json["errors"][0]
            .as_str()
            .unwrap()
            .contains("cannot revoke itself")
    );
    let r = vault(&s, Method::GET, "/v1/auth/token/lookup-self", Some(&reader)).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_preflight_finds_kv_v2_at_secret_and_at_the_teams_name() {
    let s = sqlite_server(sigil_server::Limits::default()).await;
    let a = Some(s.admin.as_str());
    for (path, mount) in [
        ("/v1/sys/internal/ui/mounts/secret/app/db", "secret/"),
        ("/v1/sys/mounts-all/secret/app/db", "secret/"),
        ("/v1/sys/internal/ui/mounts/default/app/db", "default/"),
    ] {
        let r = vault(&s, Method::GET, path, a).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        assert_eq!(r.json["data"]["path"], mount);
        assert_eq!(r.json["data"]["type"], "kv");
        assert_eq!(r.json["data"]["options"]["version"], "2");
    }
    // another team's mount, or none: refused as Vault refuses it
    let r = vault(&s, Method::GET, "/v1/sys/internal/ui/mounts/etl/x", a).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        r.json["errors"][0]
            .as_str()
            .unwrap()
            .starts_with("preflight capability check returned 403")
    );
    let r = vault(&s, Method::GET, "/v1/sys/mounts", a).await;
    assert_eq!(r.json["data"]["secret/"]["options"]["version"], "2");
    assert_eq!(
        r.json["secret/"]["type"], "kv",
        "system paths repeat data at the top level"
    );
    // a path the face does not serve (yet): Vault's 404, whatever the method (LIST included)
    for method in [Method::GET, Method::from_bytes(b"LIST").unwrap()] {
        let r = vault(&s, method.clone(), "/v1/sys/policies/acl", a).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method}: {}", r.text);
        assert!(r.json["errors"].is_array());
    }
    // a path that is not UTF-8 once decoded: Vault's error shape (it was axum's text)
    let r = vault(&s, Method::GET, "/v1/secret/data/%FF", a).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let says = r.json["errors"][0].as_str().unwrap_or_default();
    assert!(says.contains("UTF-8"), "{}", r.text);
}

/// KV v2 over Sigil's secrets: roles as on REST (a refusal is a 403 on record), a value that is
/// not an object reads as `{"value": …}`, the team's name is a mount too, a path outside the
/// name grammar is a 400 naming it, and every call is audited through the Vault API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_v2_maps_onto_sigils_secrets_roles_and_audit() {
    let s = sqlite_server(sigil_server::Limits::default()).await;
    s.put(&s.admin, "plain", json!("a plain string")).await;
    let (viewer, reader) = (s.key("viewer").await, s.key("reader").await);
    let write = |token: String, path: &'static str, body: serde_json::Value| {
        let s = s.clone();
        async move {
            let headers = [("x-vault-token", token.as_str())];
            s.call_with(
                Method::POST,
                path,
                None,
                Some(body.to_string().into_bytes()),
                &headers,
            )
            .await
        }
    };
    let r = vault(&s, Method::GET, "/v1/secret/data/plain", Some(&reader)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["data"]["data"], json!({"value": "a plain string"}));
    // the team's own name is the same mount
    let r = vault(&s, Method::GET, "/v1/default/data/plain", Some(&reader)).await;
    assert_eq!(r.json["data"]["metadata"]["version"], 1);
    // a viewer lists and reads metadata, but no value; a reader does not write
    let r = vault(
        &s,
        Method::GET,
        "/v1/secret/metadata/?list=true",
        Some(&viewer),
    )
    .await;
    assert_eq!(r.json["data"]["keys"], json!(["plain"]));
    let r = vault(&s, Method::GET, "/v1/secret/data/plain", Some(&viewer)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(!r.text.contains("a plain string"));
    let r = write(
        reader.clone(),
        "/v1/secret/data/plain",
        json!({"data": {"x": 1}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    // a path outside Sigil's names
    let r = write(
        s.admin.clone(),
        "/v1/secret/data/a/../b",
        json!({"data": {"x": 1}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("invalid secret name"), "{}", r.text);
    // a write is a version the REST API reads, the data object as the value
    let r = write(
        s.admin.clone(),
        "/v1/secret/data/app/db",
        json!({"data": {"user": "etl"}}),
    )
    .await;
    assert_eq!(
        (r.status, r.json["data"]["version"].clone()),
        (StatusCode::OK, json!(1)),
        "{}",
        r.text
    );
    assert_eq!(
        s.get(&s.admin, "app/db").await.json["value"],
        json!({"user": "etl"})
    );
    // a merge patch must say so
    let headers = [
        ("x-vault-token", s.admin.as_str()),
        ("content-type", "application/json"),
    ];
    let body = json!({"data": {"user": "other"}}).to_string().into_bytes();
    let r = s
        .call_with(
            Method::PATCH,
            "/v1/secret/data/app/db",
            None,
            Some(body),
            &headers,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.text);
    assert!(
        r.text.contains("application/merge-patch+json"),
        "{}",
        r.text
    );
    // on record, through the Vault API, the refusals too
    let log = s.audit_log().await;
    let vault: Vec<&serde_json::Value> = log.json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["via"] == "vault")
        .collect();
    let count = |action: &str, outcome: &str| {
        vault
            .iter()
            .filter(|e| e["action"] == action && e["outcome"] == outcome)
            .count()
    };
    assert_eq!(count("secret.read", "ok"), 2);
    assert_eq!(count("secret.read", "denied"), 1);
    assert_eq!(count("secret.write", "denied"), 1);
    assert_eq!(count("secret.write", "invalid"), 1);
    assert_eq!(count("secret.write", "ok"), 1);
}

/// Another team's key through KV v2, as through REST: its own team's mount only; asking for
/// `default`'s mount is refused (403) and never answers data, and its `secret/` is its own team.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_teams_key_never_reads_this_teams_secrets() {
    let s = sqlite_server(sigil_server::Limits::default()).await;
    s.put(&s.admin, "shared", json!({"owner": "default-canary-9f"}))
        .await;
    let r = s
        .req_json(&s.admin, "POST /api/v1/teams", json!({"name": "etl"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let etl = r.json["admin_key"]["key"].as_str().unwrap().to_owned();
    for path in [
        "/v1/default/data/shared",
        "/v1/default/metadata/shared",
        "/v1/default/subkeys/shared",
        "/v1/sys/internal/ui/mounts/default/shared",
    ] {
        let r = vault(&s, Method::GET, path, Some(&etl)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.text);
        assert!(!r.text.contains("default-canary-9f"), "{path}");
    }
    let list = Method::from_bytes(b"LIST").unwrap();
    let r = vault(&s, list.clone(), "/v1/default/metadata", Some(&etl)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    // its `secret/` is its own, empty team: the name does not exist there
    let r = vault(&s, Method::GET, "/v1/secret/data/shared", Some(&etl)).await;
    assert_eq!(
        (r.status, r.json.clone()),
        (StatusCode::NOT_FOUND, json!({"errors": []}))
    );
    let r = vault(&s, list, "/v1/secret/metadata", Some(&etl)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // the refused read is on record in the caller's own team, naming the team it asked for
    let r = s.req(&etl, "GET /api/v1/teams/etl/audit?limit=1000").await;
    let refused = r.json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "secret.read" && e["outcome"] == "denied")
        .cloned()
        .unwrap_or_else(|| panic!("no refused read in etl's log: {}", r.text));
    assert_eq!(
        (
            refused["via"].clone(),
            refused["target"].clone(),
            refused["name"].clone()
        ),
        (json!("vault"), json!("default"), json!("shared"))
    );
}

/// A KV v2 call with a token and, for writes, a JSON body (`content-type` a merge patch for
/// PATCH).
async fn kv(
    s: &Server,
    method: &str,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> Reply {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let mut headers = vec![("x-vault-token", token)];
    if method == Method::PATCH {
        headers.push(("content-type", "application/merge-patch+json"));
    }
    let body = body.map(|b| b.to_string().into_bytes());
    s.call_with(method, path, None, body, &headers).await
}

/// Per-version state and settings through KV v2: soft delete, undelete, destroy, the 404 that
/// carries a deleted version's metadata, `max_versions`, `cas_required`, `custom_metadata`, the
/// team's `config` and a purge — each seen through the REST API too, and each on record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_are_deleted_undeleted_destroyed_and_pruned() {
    let s = sqlite_server(sigil_server::Limits::default()).await;
    let admin = s.admin.clone();
    for v in ["one", "two", "three"] {
        let r = kv(
            &s,
            "POST",
            "/v1/secret/data/app/db",
            &admin,
            Some(json!({"data": {"v": v}})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let r = kv(
        &s,
        "POST",
        "/v1/secret/delete/app/db",
        &admin,
        Some(json!({"versions": [1]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    // a deleted version: 404 with its metadata, no data
    let r = kv(&s, "GET", "/v1/secret/data/app/db?version=1", &admin, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert_eq!(r.json["data"]["data"], json!(null));
    assert_eq!(r.json["data"]["metadata"]["version"], 1);
    assert_eq!(r.json["data"]["metadata"]["destroyed"], false);
    assert_ne!(
        r.json["data"]["metadata"]["deletion_time"], "",
        "{}",
        r.text
    );
    assert!(!r.text.contains("one"), "no value: {}", r.text);
    assert_eq!(
        s.rest_history("app/db").await.0,
        [
            (3, "live".into()),
            (2, "live".into()),
            (1, "deleted".into())
        ]
    );
    // the REST API does not read it either, and says why
    let r = s
        .req(&admin, "GET /api/v1/teams/default/secrets/app/db?version=1")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert!(r.text.contains("is deleted"), "{}", r.text);
    let r = kv(
        &s,
        "POST",
        "/v1/secret/undelete/app/db",
        &admin,
        Some(json!({"versions": [1]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = kv(&s, "GET", "/v1/secret/data/app/db?version=1", &admin, None).await;
    assert_eq!(r.json["data"]["data"], json!({"v": "one"}), "{}", r.text);
    // destroyed: gone for good, undelete cannot bring it back
    let r = kv(
        &s,
        "POST",
        "/v1/secret/destroy/app/db",
        &admin,
        Some(json!({"versions": [2]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    kv(
        &s,
        "POST",
        "/v1/secret/undelete/app/db",
        &admin,
        Some(json!({"versions": [2]})),
    )
    .await;
    let r = kv(&s, "GET", "/v1/secret/data/app/db?version=2", &admin, None).await;
    assert_eq!(
        (r.status, r.json["data"]["metadata"]["destroyed"].clone()),
        (StatusCode::NOT_FOUND, json!(true)),
        "{}",
        r.text
    );
    // DELETE data: the current version
    let r = kv(&s, "DELETE", "/v1/secret/data/app/db", &admin, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = kv(&s, "GET", "/v1/secret/data/app/db", &admin, None).await;
    assert_eq!(
        (r.status, r.json["data"]["metadata"]["version"].clone()),
        (StatusCode::NOT_FOUND, json!(3))
    );
    let r = kv(&s, "GET", "/v1/secret/subkeys/app/db", &admin, None).await;
    assert_eq!(
        (r.status, r.json["data"]["subkeys"].clone()),
        (StatusCode::NOT_FOUND, json!(null))
    );
    // the metadata: each version's state
    let r = kv(&s, "GET", "/v1/secret/metadata/app/db", &admin, None).await;
    let m = &r.json["data"];
    assert_eq!(m["current_version"], 3);
    assert_eq!(m["versions"]["1"]["deletion_time"], "");
    assert_eq!(m["versions"]["2"]["destroyed"], true);
    assert_ne!(m["versions"]["3"]["deletion_time"], "");
    // settings: two versions kept, a description; a write prunes the oldest for good
    let r = kv(
        &s,
        "POST",
        "/v1/secret/metadata/app/db",
        &admin,
        Some(json!({"max_versions": 2, "custom_metadata": {"owner": "data", "tier": "1"}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = kv(
        &s,
        "POST",
        "/v1/secret/data/app/db",
        &admin,
        Some(json!({"data": {"v": "four"}})),
    )
    .await;
    assert_eq!(
        r.json["data"]["custom_metadata"],
        json!({"owner": "data", "tier": "1"})
    );
    let r = kv(&s, "GET", "/v1/secret/metadata/app/db", &admin, None).await;
    let m = &r.json["data"];
    let kept: Vec<&String> = m["versions"].as_object().unwrap().keys().collect();
    assert_eq!(kept, ["3", "4"]);
    assert_eq!(
        (m["max_versions"].clone(), m["oldest_version"].clone()),
        (json!(2), json!(3))
    );
    let (history, settings) = s.rest_history("app/db").await;
    assert_eq!(history, [(4, "live".into()), (3, "deleted".into())]);
    assert_eq!(settings["max_versions"], 2);
    assert_eq!(
        settings["custom_metadata"],
        json!({"owner": "data", "tier": "1"})
    );
    // a merge patch of the description: one key changed, one removed
    let r = kv(
        &s,
        "PATCH",
        "/v1/secret/metadata/app/db",
        &admin,
        Some(json!({"custom_metadata": {"tier": null, "team": "etl"}, "cas_required": true})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = kv(&s, "GET", "/v1/secret/metadata/app/db", &admin, None).await;
    assert_eq!(
        r.json["data"]["custom_metadata"],
        json!({"owner": "data", "team": "etl"})
    );
    // check-and-set required: Vault's words, and the REST API refused as well
    let r = kv(
        &s,
        "POST",
        "/v1/secret/data/app/db",
        &admin,
        Some(json!({"data": {"v": 5}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(
        r.json["errors"],
        json!(["check-and-set parameter required for this call"])
    );
    assert_eq!(
        s.put(&admin, "app/db", json!("x")).await.status,
        StatusCode::CONFLICT
    );
    let body = json!({"options": {"cas": 4}, "data": {"v": "five"}});
    let r = kv(&s, "POST", "/v1/secret/data/app/db", &admin, Some(body)).await;
    assert_eq!(r.json["data"]["version"], 5, "{}", r.text);
    // the team's config: an admin's
    let writer = s.key("writer").await;
    let r = kv(
        &s,
        "POST",
        "/v1/secret/config",
        &writer,
        Some(json!({"max_versions": 3})),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = kv(
        &s,
        "POST",
        "/v1/secret/config",
        &admin,
        Some(json!({"max_versions": 3, "delete_version_after": "1h"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = kv(&s, "GET", "/v1/secret/config", &writer, None).await;
    assert_eq!(
        r.json["data"],
        json!({"cas_required": false, "delete_version_after": "1h0m0s", "max_versions": 3, "metadata_cas_required": false})
    );
    // purge: every version gone, the name free, the REST API finds nothing
    let r = kv(&s, "DELETE", "/v1/secret/metadata/app/db", &writer, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = kv(&s, "GET", "/v1/secret/metadata/app/db", &admin, None).await;
    assert_eq!(
        (r.status, r.json.clone()),
        (StatusCode::NOT_FOUND, json!({"errors": []}))
    );
    let r = s
        .req(&admin, "GET /api/v1/teams/default/history/app/db")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // a missing secret: Vault's silent 204 for every change
    for (method, path) in [
        ("DELETE", "/v1/secret/data/nope"),
        ("POST", "/v1/secret/destroy/nope"),
        ("DELETE", "/v1/secret/metadata/nope"),
    ] {
        let r = kv(&s, method, path, &admin, Some(json!({"versions": [1]}))).await;
        assert_eq!(
            r.status,
            StatusCode::NO_CONTENT,
            "{method} {path}: {}",
            r.text
        );
    }
    // every change on record, through the Vault API
    let log = s.audit_log().await;
    let count = |action: &str| {
        log.json["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == action && e["outcome"] == "ok" && e["via"] == "vault")
            .count()
    };
    assert_eq!(
        [
            count("version.delete"),
            count("version.undelete"),
            count("version.destroy"),
            count("secret.settings"),
            count("team.settings"),
            count("secret.purge"),
        ],
        [2, 1, 1, 2, 1, 1]
    );
}

/// Who may change versions and settings, and bad input: a `{"errors": [...]}` 4xx that
/// changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_changes_need_a_writer_and_bad_input_changes_nothing() {
    let s = sqlite_server(sigil_server::Limits::default()).await;
    let admin = s.admin.clone();
    for v in [1, 2] {
        kv(
            &s,
            "POST",
            "/v1/secret/data/k",
            &admin,
            Some(json!({"data": {"v": v}})),
        )
        .await;
    }
    let before = kv(&s, "GET", "/v1/secret/metadata/k", &admin, None)
        .await
        .json["data"]
        .clone();
    let reader = s.key("reader").await;
    for (method, path, body) in [
        ("POST", "/v1/secret/delete/k", json!({"versions": [1]})),
        ("POST", "/v1/secret/undelete/k", json!({"versions": [1]})),
        ("POST", "/v1/secret/destroy/k", json!({"versions": [1]})),
        ("DELETE", "/v1/secret/data/k", json!(null)),
        ("POST", "/v1/secret/metadata/k", json!({"max_versions": 1})),
        ("DELETE", "/v1/secret/metadata/k", json!(null)),
    ] {
        let r = kv(&s, method, path, &reader, Some(body)).await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {}",
            r.text
        );
    }
    let huge: Vec<i64> = (1..=5000).collect();
    for (method, path, body, says) in [
        (
            "POST",
            "/v1/secret/delete/k",
            json!({"versions": []}),
            "No version number provided",
        ),
        (
            "POST",
            "/v1/secret/destroy/k",
            json!({}),
            "no version number provided",
        ),
        (
            "POST",
            "/v1/secret/delete/k",
            json!({"versions": ["one"]}),
            "\"versions\"",
        ),
        (
            "POST",
            "/v1/secret/delete/k",
            json!({"versions": [0]}),
            "1 or more",
        ),
        (
            "POST",
            "/v1/secret/destroy/k",
            json!({ "versions": huge }),
            "over the limit of 1000",
        ),
        ("POST", "/v1/secret/delete/k", json!([1]), "JSON object"),
        (
            "POST",
            "/v1/secret/metadata/k",
            json!({"max_versions": "many"}),
            "\"max_versions\"",
        ),
        (
            "POST",
            "/v1/secret/metadata/k",
            json!({"max_versions": -1}),
            "max_versions",
        ),
        (
            "POST",
            "/v1/secret/metadata/k",
            json!({"custom_metadata": {"": "x"}}),
            "custom_metadata validation failed",
        ),
        (
            "POST",
            "/v1/secret/metadata/k",
            json!({"custom_metadata": "x"}),
            "\"custom_metadata\"",
        ),
        (
            "POST",
            "/v1/secret/metadata/k",
            json!({"delete_version_after": "soon"}),
            "\"delete_version_after\"",
        ),
        (
            "POST",
            "/v1/secret/delete/a/../b",
            json!({"versions": [1]}),
            "invalid secret name",
        ),
        (
            "POST",
            "/v1/secret/metadata/a//b",
            json!({"max_versions": 1}),
            "invalid secret name",
        ),
    ] {
        let r = kv(&s, method, path, &admin, Some(body)).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{path} {says}: {}",
            r.text
        );
        let said = r.json["errors"][0].as_str().unwrap_or_default();
        assert!(said.contains(says), "{path}: {said:?} should say {says:?}");
    }
    // unknown verbs and routes
    let r = kv(&s, "FROB", "/v1/secret/data/k", &admin, None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{}", r.text);
    assert!(r.json["errors"].is_array());
    let r = kv(&s, "GET", "/v1/secret/destroy/k", &admin, None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{}", r.text);
    let r = kv(&s, "GET", "/v1/secret/config/extra", &admin, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let after = kv(&s, "GET", "/v1/secret/metadata/k", &admin, None)
        .await
        .json["data"]
        .clone();
    assert_eq!(before, after, "nothing changed");
}

// Vault's metadata PATCH merges custom_metadata key by key: sixteen patches at once, each adding
// its own key, must all land (the merge was a read, then a write of the whole map: concurrent
// patches lost each other's keys)
pub(crate) async fn concurrent_metadata_patches_all_land(s: &Server) {
    let admin = s.admin.clone();
    let r = kv(
        s,
        "POST",
        "/v1/secret/data/app/shared",
        &admin,
        Some(json!({"data": {"v": "1"}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let patches = (0..16).map(|i| {
        let admin = admin.clone();
        async move {
            let body = json!({"custom_metadata": {format!("k{i:02}"): format!("v{i}")}});
            kv(
                s,
                "PATCH",
                "/v1/secret/metadata/app/shared",
                &admin,
                Some(body),
            )
            .await
        }
    });
    for r in futures_util::future::join_all(patches).await {
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    }
    let r = kv(s, "GET", "/v1/secret/metadata/app/shared", &admin, None).await;
    let keys: Vec<&String> = r.json["data"]["custom_metadata"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(keys.len(), 16, "{}", r.text);
    // and a key removed by one patch while others add theirs stays removed
    let remove = json!({"custom_metadata": {"k00": null}});
    let add = json!({"custom_metadata": {"k99": "v99"}});
    let (a, b) = tokio::join!(
        kv(
            s,
            "PATCH",
            "/v1/secret/metadata/app/shared",
            &admin,
            Some(remove)
        ),
        kv(
            s,
            "PATCH",
            "/v1/secret/metadata/app/shared",
            &admin,
            Some(add)
        ),
    );
    assert_eq!(
        (a.status, b.status),
        (StatusCode::NO_CONTENT, StatusCode::NO_CONTENT)
    );
    let r = kv(s, "GET", "/v1/secret/metadata/app/shared", &admin, None).await;
    let custom = &r.json["data"]["custom_metadata"];
    assert!(
        custom.get("k00").is_none() && custom["k99"] == "v99",
        "{custom}"
    );
    assert_eq!(custom.as_object().unwrap().len(), 16, "{custom}");
}

/// A body over the server's limit is refused before anything is read or written, on the Vault
/// face as on REST; the headers of an accepted one still reach the route (PATCH's content type).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_refused_and_changes_nothing() {
    let s = sqlite_server(sigil_server::Limits::default()).await;
    let admin = s.admin.clone();
    let big = json!({"data": {"blob": "x".repeat((1 << 20) + 10)}});
    let r = kv(&s, "POST", "/v1/secret/data/big", &admin, Some(big)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    let r = kv(&s, "GET", "/v1/secret/data/big", &admin, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let r = kv(
        &s,
        "POST",
        "/v1/secret/data/small",
        &admin,
        Some(json!({"data": {"a": "1"}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = kv(
        &s,
        "PATCH",
        "/v1/secret/data/small",
        &admin,
        Some(json!({"data": {"b": "2"}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = kv(&s, "GET", "/v1/secret/data/small", &admin, None).await;
    assert_eq!(
        r.json["data"]["data"],
        json!({"a": "1", "b": "2"}),
        "{}",
        r.text
    );
}
