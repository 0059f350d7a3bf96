//! A canary secret: every command runs with trace logging, each ends with the exit code it
//! should, and the canary — as itself or in any encoded form — appears nowhere in stderr, the
//! server's log or any file under `$SIGIL_HOME` (walked to every depth) but the config file that
//! holds it, except on stdout where the user asked for the value. The server's database holds
//! neither the canary nor the master key, in any form.

use std::path::PathBuf;
use std::process::Output;

use sigil_test_support::{base64_decode, files_holding, leaked_forms};

use crate::server::{ADMIN, RunningServer, server_env};
use crate::{Sandbox, assert_code, stderr, stdout};

const CANARY: &str = "canary-7f3e9b2d41";

/// Runs one command with trace logging and the canary in the environment; checks its exit code,
/// that stderr holds no form of the canary (nor, with a server, of the admin key), and that
/// stdout shows the canary exactly when `shows`.
fn check(
    sb: &Sandbox,
    env: &[(&str, &str)],
    args: &[&str],
    input: &[u8],
    code: i32,
    shows: bool,
) -> Output {
    let mut cmd = sb.cmd(args);
    cmd.env("SIGIL_LOG", "trace")
        .env("SIGIL__CONTEXT__SECRETS__ENV_CANARY", CANARY);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = crate::feed(&mut cmd, input);
    assert_code(&o, code);
    let (out, err) = (stdout(&o), stderr(&o));
    for form in leaked_forms(CANARY) {
        assert!(
            !err.contains(&form),
            "{args:?} leaked {form:?} on stderr:\n{err}"
        );
        if !shows {
            assert!(
                !out.contains(&form),
                "{args:?} leaked {form:?} on stdout:\n{out}"
            );
        }
    }
    assert!(
        !err.contains(ADMIN),
        "{args:?} printed the API key on stderr:\n{err}"
    );
    if shows {
        assert!(
            out.contains(CANARY),
            "{args:?} should print the value: {out}"
        );
    }
    if args[0] != "completions" {
        assert!(
            err.contains("DEBUG") || err.contains("TRACE"),
            "{args:?}: trace logging was on: {err}"
        );
    }
    o
}

#[test]
fn the_canary_never_leaks_locally() {
    let sb = Sandbox::new();
    sb.write_config(format!(
        "[context.secrets]\nFILE_CANARY = \"{CANARY}\"\nOTHER = \"other-value\"\n"
    ));
    let prefect = sb.file(
        "prefect.toml",
        format!("[context.secrets]\nPREFECT_CANARY = \"{CANARY}\"\n"),
    );
    let dotenv = sb.file("x.env", format!("DOTENV_CANARY={CANARY}\n"));
    let (p, d) = (prefect.to_str().unwrap(), dotenv.to_str().unwrap());
    let big = format!("{CANARY}{}", "x".repeat(70_000));
    let json = format!("{{\"k\": \"{CANARY}\"}}");
    let bad_json = format!("{{\"k\": {CANARY}}}");
    let none = b"".as_slice();
    let echo = "echo $FILE_CANARY; echo $ENV_CANARY >&2";
    // (args, stdin, exit code, may stdout show the canary?)
    let cases: [(&[&str], &[u8], i32, bool); 23] = [
        (&["secrets", "get", "FILE_CANARY"], none, 0, true),
        (&["secrets", "get", "ENV_CANARY", "--json"], none, 0, true),
        (
            &["secrets", "get", "FILE_CANARY", "--explain"],
            none,
            0,
            false,
        ),
        (&["secrets", "get", "MISSING"], none, 3, false),
        (
            &["secrets", "set", "SET_CANARY", "--stdin"],
            CANARY.as_bytes(),
            0,
            false,
        ),
        (&["secrets", "set", "ARGV_CANARY", CANARY], none, 0, false),
        (
            &["secrets", "set", "JSON_CANARY", "--stdin", "--json"],
            json.as_bytes(),
            0,
            false,
        ),
        (
            &["secrets", "set", "BAD_JSON", "--stdin", "--json"],
            bad_json.as_bytes(),
            1,
            false,
        ),
        (
            &["secrets", "set", "TOO_BIG", "--stdin"],
            big.as_bytes(),
            1,
            false,
        ),
        (
            &["secrets", "copy", "FILE_CANARY", "COPIED_CANARY"],
            none,
            0,
            false,
        ),
        (&["secrets", "list"], none, 0, false),
        (&["secrets", "list", "--json"], none, 0, false),
        (&["run", "--", "sh", "-c", echo], none, 0, false),
        (
            &["run", "--no-mask", "--", "sh", "-c", "echo $FILE_CANARY"],
            none,
            0,
            true,
        ),
        (&["export", "--format", "dotenv"], none, 0, true),
        (&["import", "--from", "prefect", p], none, 0, false),
        (&["import", "--from", "dotenv", d], none, 0, false),
        (
            &["import", "--from", "dotenv", d, "--dry-run"],
            none,
            0,
            false,
        ),
        (&["config", "show"], none, 0, false),
        (&["config", "show", "--json"], none, 0, false),
        (&["completions", "zsh"], none, 0, false),
        (&["secrets", "delete", "SET_CANARY"], none, 0, false),
        (&["secrets", "delete", "MISSING"], none, 3, false),
    ];
    for (args, input, code, shows) in cases {
        check(&sb, &[], args, input, code, shows);
    }
    // no file but the config file (and the inputs the test wrote) holds the canary, to any depth
    let skip = [sb.config(), prefect.clone(), dotenv.clone()];
    let found = files_holding(sb.home(), &leaked_forms(CANARY), &skip);
    assert!(found.is_empty(), "files holding the canary: {found:#?}");
}

/// The commands that talk to a server, against a real one with trace logging: the canary is
/// written, read, listed, versioned, deleted and restored, copied, rolled back, exported and run
/// with; keys and teams are made and listed, the audit log read, and the master key rotated.
#[test]
fn the_canary_never_leaks_through_a_server() {
    let sb = Sandbox::new();
    let srv = RunningServer::start(&sb, &[], &[("SIGIL_LOG", "trace")]);
    let env = server_env(&srv, &[]);
    let url = srv.url.as_str();
    let none = b"".as_slice();
    let c = CANARY.as_bytes();
    let second = format!("{CANARY}-2");
    let cases: [(&[&str], &[u8], i32, bool); 22] = [
        (
            &["login", "--url", url, "--key-stdin"],
            ADMIN.as_bytes(),
            0,
            false,
        ),
        (&["secrets", "set", "SRV_CANARY", "--stdin"], c, 0, false),
        (
            &["secrets", "set", "SRV_CANARY", "--stdin", "--cas", "1"],
            second.as_bytes(),
            0,
            false,
        ),
        (&["secrets", "get", "SRV_CANARY"], none, 0, true),
        (
            &["secrets", "get", "SRV_CANARY", "--version", "1", "--json"],
            none,
            0,
            true,
        ),
        (
            &["secrets", "get", "SRV_CANARY", "--explain"],
            none,
            0,
            false,
        ),
        (&["secrets", "history", "SRV_CANARY"], none, 0, false),
        (
            &["secrets", "diff", "SRV_CANARY", "--versions", "1,2"],
            none,
            0,
            false,
        ),
        (
            &["secrets", "rollback", "SRV_CANARY", "--to", "1"],
            none,
            0,
            false,
        ),
        (
            &["secrets", "copy", "SRV_CANARY", "SRV_COPY"],
            none,
            0,
            false,
        ),
        (&["secrets", "list", "--server", "--json"], none, 0, false),
        (&["secrets", "delete", "SRV_CANARY"], none, 0, false),
        (
            &["secrets", "get", "SRV_CANARY", "--server"],
            none,
            3,
            false,
        ),
        (&["secrets", "restore", "SRV_CANARY"], none, 0, false),
        (&["export", "--format", "json"], none, 0, true),
        (
            &["run", "--", "sh", "-c", "echo $SRV_CANARY"],
            none,
            0,
            false,
        ),
        (&["keys", "list", "--json"], none, 0, false),
        (&["teams", "list"], none, 0, false),
        (&["teams", "create", "second"], none, 0, false),
        (&["audit", "--json"], none, 0, false),
        (&["audit"], none, 0, false),
        (
            &["secrets", "set", "TOO_BIG", "--stdin"],
            &[b'x'; 70_000],
            1,
            false,
        ),
    ];
    for (args, input, code, shows) in cases {
        check(&sb, &env, args, input, code, shows);
    }
    // a key made and revoked: shown once on stdout (not the canary), never on stderr
    let o = check(
        &sb,
        &env,
        &["keys", "create", "--role", "reader", "--json"],
        none,
        0,
        false,
    );
    let made: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let id = made["id"].as_str().unwrap();
    check(&sb, &env, &["keys", "revoke", id], none, 0, false);
    // the same value through the Vault API: written, read, patched, deleted, undeleted,
    // destroyed; refusals of bodies that carry it never echo it
    let kv = |method: &str, path: &str, body: &str| -> (u16, String) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{url}{path}"))
            .header("X-Vault-Token", ADMIN)
            .header(
                "Content-Type",
                if method == "PATCH" {
                    "application/merge-patch+json"
                } else {
                    "application/json"
                },
            )
            .body(body.to_owned())
            .unwrap();
        let mut r = agent.run(req).unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    };
    let data = format!(r#"{{"data": {{"password": "{CANARY}"}}}}"#);
    let kv_steps: [(&str, &str, String, u16, bool); 13] = [
        (
            "POST",
            "/v1/secret/data/kv/canary",
            data.clone(),
            200,
            false,
        ),
        ("GET", "/v1/secret/data/kv/canary", String::new(), 200, true),
        (
            "PATCH",
            "/v1/secret/data/kv/canary",
            data.clone(),
            200,
            false,
        ),
        (
            "GET",
            "/v1/secret/subkeys/kv/canary",
            String::new(),
            200,
            false,
        ),
        (
            "GET",
            "/v1/secret/metadata/kv/canary",
            String::new(),
            200,
            false,
        ),
        (
            "POST",
            "/v1/secret/delete/kv/canary",
            r#"{"versions": [1]}"#.into(),
            204,
            false,
        ),
        (
            "GET",
            "/v1/secret/data/kv/canary?version=1",
            String::new(),
            404,
            false,
        ),
        (
            "POST",
            "/v1/secret/undelete/kv/canary",
            r#"{"versions": [1]}"#.into(),
            204,
            false,
        ),
        (
            "POST",
            "/v1/secret/destroy/kv/canary",
            r#"{"versions": [1]}"#.into(),
            204,
            false,
        ),
        (
            "POST",
            "/v1/secret/data/kv/canary",
            format!(r#"{{"data": "{CANARY}"}}"#),
            400,
            false,
        ),
        (
            "POST",
            "/v1/secret/delete/kv/canary",
            format!(r#"{{"versions": ["{CANARY}"]}}"#),
            400,
            false,
        ),
        (
            "POST",
            "/v1/secret/metadata/kv/canary",
            format!(r#"{{"delete_version_after": "{CANARY}"}}"#),
            400,
            false,
        ),
        (
            "POST",
            "/v1/secret/data/kv/canary",
            format!(r#"{{"data": {{"{CANARY}": 1"#),
            400,
            false,
        ),
    ];
    for (method, path, body, status, shows) in kv_steps {
        let (got, text) = kv(method, path, &body);
        assert_eq!(got, status, "{method} {path}: {text}");
        let leaked: Vec<String> = leaked_forms(CANARY)
            .into_iter()
            .filter(|f| text.contains(f.as_str()))
            .collect();
        assert_eq!(leaked.is_empty(), !shows, "{method} {path}: {text}");
    }
    let mut log = srv.log.lock().unwrap().clone();
    drop(srv);
    let log_holds = |srv_log: &str| {
        leaked_forms(CANARY)
            .into_iter()
            .filter(|f| srv_log.contains(f.as_str()))
            .collect::<Vec<_>>()
    };
    // the master key rotated offline; then the server starts on the new key
    let server_dir = sb.home().join(".sigil/server");
    let old_key = server_dir.join("master.key");
    let new_key = sb.file("new-master.key", "");
    std::fs::remove_file(&new_key).unwrap();
    let (o, n) = (old_key.to_str().unwrap(), new_key.to_str().unwrap());
    let rotate = [
        "server",
        "rotate-master-key",
        "--master-key-file",
        o,
        "--new-key-file",
        n,
    ];
    let keys: Vec<String> = [&old_key, &new_key]
        .iter()
        .map(|k| {
            std::fs::read_to_string(k)
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .collect();
    check(&sb, &[], &rotate, none, 0, false);
    let keys: Vec<String> = keys
        .into_iter()
        .chain([std::fs::read_to_string(&new_key).unwrap().trim().to_owned()])
        .filter(|k| !k.is_empty())
        .collect();
    assert_eq!(keys.len(), 2, "the old key and the new one");
    let srv = RunningServer::start(&sb, &["--master-key-file", n], &[("SIGIL_LOG", "trace")]);
    check(
        &sb,
        &server_env(&srv, &[]),
        &["secrets", "get", "SRV_CANARY"],
        none,
        0,
        true,
    );
    log.push_str(&srv.log.lock().unwrap());
    drop(srv);
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "the servers logged at trace"
    );
    assert_eq!(
        log_holds(&log),
        Vec::<String>::new(),
        "the servers' logs:\n{log}"
    );
    assert!(!log.contains(ADMIN), "a server logged the API key");
    // no file holds the canary; the database (and its WAL) holds neither master key, as its
    // text or its 32 bytes
    let skip: Vec<PathBuf> = vec![old_key.clone(), new_key.clone()];
    let found = files_holding(sb.home(), &leaked_forms(CANARY), &skip);
    assert!(found.is_empty(), "files holding the canary: {found:#?}");
    for key in &keys {
        let raw = base64_decode(key).expect("a master key is base64");
        assert_eq!(raw.len(), 32);
        let mut needles: Vec<Vec<u8>> = leaked_forms(key)
            .into_iter()
            .map(String::into_bytes)
            .collect();
        needles.push(raw);
        let found = files_holding(&server_dir, &needles, &skip);
        assert!(found.is_empty(), "files holding a master key: {found:#?}");
    }
    assert!(
        std::fs::read_dir(&server_dir)
            .unwrap()
            .any(|e| e.unwrap().file_name() == "sigil.db"),
        "the database was searched"
    );
}
