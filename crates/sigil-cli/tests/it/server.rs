//! End to end with a real server process on loopback: the chain's server slot, login and keys,
//! unreachable servers, `kill -9` durability, master-key rotation, replicas on PostgreSQL, logs.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sigil_test_support::process::Bounded;

use crate::{Sandbox, assert_code, assert_exit, stderr, stdout};

pub(crate) const ADMIN: &str = "sgl_testadmin001_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

pub(crate) struct RunningServer {
    pub(crate) child: Child,
    pub(crate) url: String,
    pub(crate) log: Arc<Mutex<String>>,
}

impl RunningServer {
    pub(crate) fn start(sb: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> RunningServer {
        let mut all = vec!["server", "--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let mut cmd = sb.cmd(&all);
        cmd.env("SIGIL_BOOTSTRAP_ADMIN_KEY", ADMIN)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = BufReader::new(child.stderr.take().unwrap());
        let l = log.clone();
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let _ = tx.send(
                        rest.split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_owned(),
                    );
                }
                let mut log = l.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("the server did not start:\n{}", log.lock().unwrap()));
        RunningServer { child, url, log }
    }

    pub(crate) fn kill9(&mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }

    pub(crate) fn client(&self, key: &str) -> sigil_client::Client {
        sigil_client::Client::new(&self.url, "default", key).unwrap()
    }

    /// Writes a secret of team `default` as the bootstrap admin; returns the admin's client.
    pub(crate) fn put(&self, name: &str, value: serde_json::Value) -> sigil_client::Client {
        let c = self.client(ADMIN);
        c.put_secret(name, &value, None).unwrap();
        c
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return; // already gone (killed by the test)
        }
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn server_env<'a>(
    srv: &'a RunningServer,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut v = vec![
        ("SIGIL__BACKEND", "server"),
        ("SIGIL__SERVER__URL", srv.url.as_str()),
        ("SIGIL_API_KEY", ADMIN),
    ];
    v.extend_from_slice(extra);
    v
}

pub(crate) fn run_env(sb: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = sb.cmd(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.bounded()
}

#[test]
fn local_first_then_server_and_server_first_when_asked() {
    let sb = Sandbox::new();
    let srv = RunningServer::start(&sb, &[], &[]);
    let env = server_env(&srv, &[]);
    // the bootstrap wrote credentials for the local CLI
    let creds = std::fs::read_to_string(sb.home().join(".sigil/credentials.toml")).unwrap();
    assert!(creds.contains(&srv.url) && creds.contains(ADMIN), "{creds}");
    let o = run_env(
        &sb,
        &["secrets", "set", "BOTH"],
        &[env.clone(), vec![("SIGIL_API_KEY", ADMIN)]].concat(),
    );
    assert_code(&o, 2); // no value given
    let mut set = sb.cmd(&["secrets", "set", "BOTH", "server-value"]);
    set.envs(env.iter().copied());
    assert_code(&set.bounded(), 0);
    let mut set = sb.cmd(&["secrets", "set", "ONLY_SERVER", "only-on-server"]);
    set.envs(env.iter().copied());
    assert_code(&set.bounded(), 0);
    assert_code(
        &run_env(
            &sb,
            &["secrets", "set", "BOTH", "local-value", "--local"],
            &env,
        ),
        0,
    );

    // local first
    let o = run_env(&sb, &["secrets", "get", "BOTH"], &env);
    assert_eq!(stdout(&o), "local-value\n");
    let o = run_env(&sb, &["secrets", "get", "ONLY_SERVER", "--explain"], &env);
    assert!(stdout(&o).contains("answered by server"), "{}", stdout(&o));
    assert_eq!(
        stdout(&run_env(&sb, &["secrets", "get", "ONLY_SERVER"], &env)),
        "only-on-server\n"
    );
    // the server first (and only) when use_local_secrets = false
    let first = server_env(&srv, &[("SIGIL__SERVER__USE_LOCAL_SECRETS", "false")]);
    assert_eq!(
        stdout(&run_env(&sb, &["secrets", "get", "BOTH"], &first)),
        "server-value\n"
    );
    // versions and history through the CLI
    assert_code(
        &run_env(
            &sb,
            &[
                "secrets", "set", "BOTH", "server-2", "--server", "--cas", "1",
            ],
            &env,
        ),
        0,
    );
    let o = run_env(
        &sb,
        &["secrets", "set", "BOTH", "stale", "--server", "--cas", "1"],
        &env,
    );
    assert_exit(&o, 1, "version conflict");
    assert_eq!(
        stdout(&run_env(
            &sb,
            &["secrets", "get", "BOTH", "--version", "1"],
            &env
        )),
        "server-value\n"
    );
    let o = run_env(&sb, &["secrets", "history", "BOTH", "--json"], &env);
    let h: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(h["versions"].as_array().unwrap().len(), 2);
    assert_code(
        &run_env(&sb, &["secrets", "delete", "ONLY_SERVER"], &env),
        0,
    );
    assert_code(
        &run_env(&sb, &["secrets", "get", "ONLY_SERVER", "--server"], &env),
        3,
    );
    assert_code(
        &run_env(&sb, &["secrets", "restore", "ONLY_SERVER"], &env),
        0,
    );
    assert_eq!(
        stdout(&run_env(
            &sb,
            &["secrets", "get", "ONLY_SERVER", "--server"],
            &env
        )),
        "only-on-server\n"
    );
    let o = run_env(&sb, &["secrets", "list", "--server"], &env);
    assert!(
        stdout(&o).contains("ONLY_SERVER") && !stdout(&o).contains("only-on-server"),
        "{}",
        stdout(&o)
    );
    // a miss everywhere names the server too
    let o = run_env(&sb, &["secrets", "get", "NOWHERE"], &env);
    assert_exit(&o, 3, &format!("server {} team \"default\"", srv.url));
}

// a leaked value is wiped from the server's history with the CLI: versions deleted, undeleted and
// destroyed, each named in what the command says
#[test]
fn versions_are_deleted_undeleted_and_destroyed_with_the_cli() {
    let sb = Sandbox::new();
    let srv = RunningServer::start(&sb, &[], &[]);
    for v in ["leaked-9f31", "also-leaked-9f31", "fine-9f31"] {
        srv.put("api/token", serde_json::json!(v));
    }
    let env = server_env(&srv, &[]);
    let get = |version: &str| {
        run_env(
            &sb,
            &["secrets", "get", "api/token", "--version", version],
            &env,
        )
    };
    let o = run_env(
        &sb,
        &["secrets", "delete", "api/token", "--versions", "1,2,7"],
        &env,
    );
    assert_exit(&o, 0, "version(s) 1, 2 deleted");
    assert!(
        stderr(&o).contains("version(s) 7 left as they were"),
        "{}",
        stderr(&o)
    );
    assert_exit(&get("1"), 3, "deleted");
    assert_eq!(
        stdout(&run_env(&sb, &["secrets", "get", "api/token"], &env)),
        "fine-9f31\n"
    );
    let o = run_env(
        &sb,
        &["secrets", "undelete", "api/token", "--versions", "2"],
        &env,
    );
    assert_exit(&o, 0, "version(s) 2 undeleted");
    assert_eq!(stdout(&get("2")), "also-leaked-9f31\n");
    let o = run_env(
        &sb,
        &["secrets", "destroy", "api/token", "--versions", "1,2"],
        &env,
    );
    assert_exit(&o, 0, "version(s) 1, 2 destroyed");
    assert_exit(&get("2"), 3, "destroyed");
    let o = run_env(&sb, &["secrets", "history", "api/token"], &env);
    let text = stdout(&o);
    let states: Vec<&str> = text
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().nth(2).unwrap_or_default())
        .collect();
    assert_eq!(states, ["live", "destroyed", "destroyed"], "{text}");
    // bad input names what is wrong and changes nothing
    let o = run_env(
        &sb,
        &["secrets", "destroy", "api/token", "--versions", "0"],
        &env,
    );
    assert_exit(&o, 2, "a version is 1 or more");
    let o = run_env(
        &sb,
        &["secrets", "destroy", "nothing/here", "--versions", "1"],
        &env,
    );
    assert_exit(&o, 3, "nothing/here");
    let o = run_env(&sb, &["secrets", "destroy", "api/token"], &env);
    assert_exit(&o, 2, "--versions");
    assert_eq!(stdout(&get("3")), "fine-9f31\n");
}

#[test]
fn an_unreachable_server_is_an_error_not_a_miss() {
    let sb = Sandbox::new();
    // a port nothing listens on
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    let env = [
        ("SIGIL__BACKEND", "server"),
        ("SIGIL__SERVER__URL", url.as_str()),
        ("SIGIL_API_KEY", ADMIN),
    ];
    let o = run_env(&sb, &["secrets", "get", "ANY"], &env);
    assert_exit(&o, 1, "unreachable");
    assert!(!stderr(&o).contains("not found"), "{}", stderr(&o));
    // a local hit still answers without asking the server
    sb.write_config("[context.secrets]\nLOCAL = \"here\"\n");
    assert_eq!(
        stdout(&run_env(&sb, &["secrets", "get", "LOCAL"], &env)),
        "here\n"
    );
}

#[test]
fn login_keys_roles_and_revocation() {
    let sb = Sandbox::new();
    let srv = RunningServer::start(&sb, &[], &[]);
    std::fs::remove_file(sb.home().join(".sigil/credentials.toml")).unwrap();
    let o = sb_stdin(&sb, &["login", "--url", &srv.url, "--key-stdin"], ADMIN);
    assert_exit(&o, 0, "admin of team \"default\"");
    let creds = sb.home().join(".sigil/credentials.toml");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let o = sb_stdin(
        &sb,
        &["login", "--url", &srv.url, "--key-stdin"],
        "sgl_wrongwrong12_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB",
    );
    assert_exit(&o, 1, "refused the API key");
    // from now on the credentials file is enough
    let env = [("SIGIL__BACKEND", "server")];
    assert_code(
        &run_env(&sb, &["secrets", "set", "DB", "db-pass-1"], &env),
        0,
    );
    let o = run_env(&sb, &["keys", "create", "--role", "reader", "--json"], &env);
    assert_code(&o, 0);
    let created: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let reader = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    let as_reader = [
        ("SIGIL__BACKEND", "server"),
        ("SIGIL_API_KEY", reader.as_str()),
    ];
    assert_eq!(
        stdout(&run_env(&sb, &["secrets", "get", "DB"], &as_reader)),
        "db-pass-1\n"
    );
    let o = run_env(&sb, &["secrets", "set", "DB", "nope"], &as_reader);
    assert_exit(&o, 1, "needs the writer role");
    let o = run_env(&sb, &["keys", "list"], &env);
    assert!(
        stdout(&o).contains(&id) && !stdout(&o).contains(&reader),
        "{}",
        stdout(&o)
    );
    assert_code(&run_env(&sb, &["keys", "revoke", &id], &env), 0);
    let o = run_env(&sb, &["secrets", "get", "DB"], &as_reader);
    assert_exit(&o, 1, "revoked");
    // teams and audit
    let o = run_env(&sb, &["teams", "create", "etl"], &env);
    assert_code(&o, 0);
    assert!(
        stdout(&o).starts_with("sgl_"),
        "the new team's admin key is printed once"
    );
    let o = run_env(&sb, &["teams", "list"], &env);
    assert!(stdout(&o).contains("etl") && stdout(&o).contains("default"));
    let o = run_env(&sb, &["audit", "--json"], &env);
    let page: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let actions: Vec<&str> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"key.revoke") && actions.contains(&"secret.read"),
        "{actions:?}"
    );
    assert!(!stdout(&o).contains("db-pass-1"));
}

fn sb_stdin(sb: &Sandbox, args: &[&str], input: &str) -> std::process::Output {
    sb.run_stdin(args, input.as_bytes())
}

// two servers on one SQLite file would each keep the latest versions they read as if they
// alone wrote them: the second one is refused at start, naming the lock
#[test]
fn a_second_server_on_one_sqlite_database_is_refused() {
    let sb = Sandbox::new();
    let _first = RunningServer::start(&sb, &[], &[]);
    let out = sb.cmd(&["server", "--listen", "127.0.0.1:0"]).bounded();
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("in use by another process") && err.contains("sigil.db.lock"),
        "{err}"
    );
}

#[test]
fn master_key_rotation_then_restart_with_only_the_new_key() {
    let sb = Sandbox::new();
    let old_key = sb.home().join("old.key");
    let new_key = sb.home().join("new.key");
    let o = old_key.to_str().unwrap();
    let n = new_key.to_str().unwrap();
    let rotate = |from: &str, to: &str| {
        let args = [
            "server",
            "rotate-master-key",
            "--master-key-file",
            from,
            "--new-key-file",
            to,
        ];
        sb.cmd(&args).bounded()
    };
    {
        let srv = RunningServer::start(&sb, &["--master-key-file", o], &[]);
        let c = srv.client(ADMIN);
        for i in 0..20 {
            c.put_secret(&format!("s{i}"), &serde_json::json!({"n": i}), None)
                .unwrap();
        }
        let (_, team_admin) = c.create_team("second").unwrap();
        let second = sigil_client::Client::new(&srv.url, "second", &team_admin.key).unwrap();
        second
            .put_secret("x", &serde_json::json!("in second"), None)
            .unwrap();
        std::fs::write(sb.home().join("second.key"), team_admin.key).unwrap();
    }
    let out = rotate(o, n);
    assert_exit(&out, 0, "re-wrapped 2 data key(s)");
    std::fs::remove_file(&old_key).unwrap();
    let srv = RunningServer::start(&sb, &["--master-key-file", n], &[]);
    let c = srv.client(ADMIN);
    for i in 0..20 {
        assert_eq!(
            c.get_secret(&format!("s{i}"), None).unwrap().unwrap().value,
            serde_json::json!({"n": i})
        );
    }
    let second_key = std::fs::read_to_string(sb.home().join("second.key")).unwrap();
    let second = sigil_client::Client::new(&srv.url, "second", &second_key).unwrap();
    assert_eq!(
        second.get_secret("x", None).unwrap().unwrap().value,
        "in second"
    );
    // running it again changes nothing
    let out = rotate(n, n);
    assert_exit(&out, 0, "re-wrapped 0 data key(s)");
}

const CANARY: &str = "canary-e2e-77b0c3f1";

#[test]
fn trace_logs_of_the_server_and_the_cli_hold_no_value() {
    let sb = Sandbox::new();
    let srv = RunningServer::start(&sb, &["-vvv"], &[("SIGIL_LOG", "trace")]);
    let env = server_env(&srv, &[("SIGIL_LOG", "trace")]);
    let o = run_env(&sb, &["secrets", "set", "CANARY", CANARY, "--server"], &env);
    assert_code(&o, 0);
    assert!(!stderr(&o).contains(CANARY), "{}", stderr(&o));
    let o = run_env(&sb, &["secrets", "get", "CANARY"], &env);
    assert_eq!(stdout(&o), format!("{CANARY}\n"));
    assert!(!stderr(&o).contains(CANARY), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("TRACE") || stderr(&o).contains("DEBUG"),
        "{}",
        stderr(&o)
    );
    for args in [
        vec!["audit"],
        vec!["secrets", "history", "CANARY"],
        vec!["secrets", "list", "--server"],
    ] {
        let o = run_env(&sb, &args, &env);
        assert_code(&o, 0);
        assert!(
            !stdout(&o).contains(CANARY) && !stderr(&o).contains(CANARY),
            "{args:?}"
        );
    }
    drop(srv); // SIGTERM: graceful shutdown, logs flushed
    let log = std::fs::read_dir(sb.home().join(".sigil/server")).unwrap();
    for f in log {
        let p = f.unwrap().path();
        let bytes = std::fs::read(&p).unwrap();
        assert!(
            !bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()),
            "{} holds the canary",
            p.display()
        );
    }
}

#[test]
fn server_logs_hold_no_value() {
    let sb = Sandbox::new();
    let srv = RunningServer::start(&sb, &["-vvv"], &[("SIGIL_LOG", "trace")]);
    let c = srv.client(ADMIN);
    c.put_secret("c", &serde_json::json!(CANARY), None).unwrap();
    assert_eq!(c.get_secret("c", None).unwrap().unwrap().value, CANARY);
    let log = srv.log.lock().unwrap().clone();
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "trace logging was on:\n{log}"
    );
    assert!(!log.contains(CANARY), "{log}");
}

#[test]
fn a_flow_run_is_attributed_in_the_audit_log() {
    use sigil::flow::{Flow, RunOptions, SecretTask};
    let sb = Sandbox::new();
    let srv = RunningServer::start(&sb, &[], &[]);
    let c = srv.put("FLOW_SECRET", serde_json::json!("flow-value"));
    let source = sigil_client::ServerSource::new(c.clone(), Duration::ZERO);
    let chain = Arc::new(sigil::Resolver::new(vec![Arc::new(source)]));
    let mut flow = Flow::new("attributed");
    let s = flow.add(SecretTask::new("FLOW_SECRET"));
    flow.task("use_it", s, |ctx, v: sigil::SecretValue| {
        ctx.info(format!("got {}", v.expose_str().unwrap()));
        Ok(())
    });
    let run = flow.run_with(RunOptions::new().resolver(chain)).unwrap();
    assert!(run.is_success(), "{run}");
    assert_eq!(run.logs()[0].message, "got ***");
    let page = c.audit(None, None, 1000).unwrap();
    let read = page
        .entries
        .iter()
        .find(|e| e.action == "secret.read" && e.flow_run.is_some())
        .expect("a read attributed to the flow run");
    assert_eq!(read.flow_run.as_deref(), Some(run.id()));
    assert_eq!(read.task.as_deref(), Some("FLOW_SECRET"));
}

/// Requests the server answered for `route`, counted by the server itself (`/metrics`).
fn served(srv: &RunningServer, route: &str) -> u64 {
    http_get_raw(&srv.url, "/metrics")
        .lines()
        .filter(|l| l.starts_with(&format!("sigil_http_requests_total{{route=\"{route}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// A flow run of 100 secret tasks whose names are known when the flow is built, one whose name
/// a parameter gives and one read twice: one batch request when the run starts, one single read
/// for the name decided at run time; each read on record with the run and the task that asked.
#[test]
fn a_flow_run_of_a_hundred_secret_tasks_asks_the_server_once() {
    use sigil::flow::{Flow, RunOptions, SecretTask};
    let sb = Sandbox::new();
    let srv = RunningServer::start(&sb, &[], &[]);
    let c = srv.client(ADMIN);
    for i in 0..101 {
        c.put_secret(
            &format!("flow/s{i:03}"),
            &serde_json::json!(format!("v{i}")),
            None,
        )
        .unwrap();
    }
    let source = sigil_client::ServerSource::new(c.clone(), Duration::ZERO);
    let chain = Arc::new(sigil::Resolver::new(vec![Arc::new(source)]));
    let mut flow = Flow::new("hundred");
    let known: Vec<_> = (0..100)
        .map(|i| flow.add(SecretTask::new(format!("flow/s{i:03}")).named(format!("t{i:03}"))))
        .collect();
    let which = flow.parameter_with_default("which", String::from("flow/s100"));
    let runtime = flow.add(SecretTask::from_input(which));
    let sizes = flow.task("sizes", known, |_, v: Vec<sigil::SecretValue>| {
        Ok(v.iter().map(|v| v.size()).sum::<usize>())
    });
    let (batch, single) = (
        "/api/v1/teams/{team}/batch-read",
        "/api/v1/teams/{team}/secrets/{*name}",
    );
    let before = (served(&srv, batch), served(&srv, single));
    let run = flow.run_with(RunOptions::new().resolver(chain)).unwrap();
    assert!(run.is_success(), "{run}");
    assert!(run.output(sizes).is_some());
    assert_eq!(
        (
            served(&srv, batch) - before.0,
            served(&srv, single) - before.1
        ),
        (1, 1),
        "one batch for the hundred names known at build time, one read for the one decided at run time"
    );
    let reads: Vec<_> = c
        .audit(None, None, 1000)
        .unwrap()
        .entries
        .into_iter()
        .filter(|e| e.action == "secret.read" && e.flow_run.as_deref() == Some(run.id()))
        .collect();
    assert_eq!(reads.len(), 101, "one record per secret read");
    for i in [0, 42, 99] {
        let name = format!("flow/s{i:03}");
        let r = reads
            .iter()
            .find(|e| e.name.as_deref() == Some(name.as_str()))
            .unwrap_or_else(|| panic!("no read of {name}"));
        assert_eq!(
            r.task.as_deref(),
            Some(format!("t{i:03}").as_str()),
            "{name}"
        );
    }
    let r = reads
        .iter()
        .find(|e| e.name.as_deref() == Some("flow/s100"))
        .unwrap();
    assert_eq!(r.task.as_deref(), Some(run.task(runtime).name.as_str()));
}

pub(crate) fn http_get_status(url: &str, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let addr = url.strip_prefix("http://")?;
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split_whitespace().nth(1)?.parse().ok()
}

/// Two servers on a fresh schema of the test PostgreSQL database, with one master key, started
/// at once on the empty database (`SIGIL_TEST_POSTGRES_URL`).
/// A master key the servers of one PostgreSQL database share in the tests, as `SIGIL_MASTER_KEY`.
pub(crate) const SHARED_MASTER_KEY: (&str, &str) = (
    "SIGIL_MASTER_KEY",
    "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
);

/// The URL of a fresh schema of the test database (`SIGIL_TEST_POSTGRES_URL`), for `what`.
pub(crate) fn postgres_schema(what: &str, schema: &str) -> String {
    let base = sigil_store::test_support::postgres_url(what);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(sigil_store::test_support::fresh_schema(&base, schema))
}

pub(crate) fn two_replicas_on_postgres(
    what: &str,
    schema: &str,
) -> (Sandbox, Sandbox, RunningServer, RunningServer) {
    let url = postgres_schema(what, schema);
    let master = [SHARED_MASTER_KEY];
    let (sa, sb) = (Sandbox::new(), Sandbox::new());
    let (a, b) = std::thread::scope(|s| {
        let ha = s.spawn(|| RunningServer::start(&sa, &["--database", &url], &master));
        let hb = s.spawn(|| RunningServer::start(&sb, &["--database", &url], &master));
        (ha.join().unwrap(), hb.join().unwrap())
    });
    (sa, sb, a, b)
}

/// Two replicas on one PostgreSQL database: both start at once on an empty database and come
/// up healthy; a write through one is read through the other; a key revoked through one is
/// refused by the other.
#[test]
#[ignore = "needs PostgreSQL: set SIGIL_TEST_POSTGRES_URL and pass --include-ignored"]
fn two_replicas_share_one_postgres_database() {
    let (_sa, _sb2, a, b) = two_replicas_on_postgres("replica test", "sigil_replicas");
    assert_eq!(http_get_status(&a.url, "/readyz"), Some(200));
    assert_eq!(http_get_status(&b.url, "/readyz"), Some(200));
    let (ca, cb) = (a.client(ADMIN), b.client(ADMIN));
    ca.put_secret("shared", &serde_json::json!("written via a"), None)
        .unwrap();
    assert_eq!(
        cb.get_secret("shared", None).unwrap().unwrap().value,
        "written via a"
    );
    cb.put_secret("shared", &serde_json::json!("then via b"), Some(1))
        .unwrap();
    assert_eq!(
        ca.get_secret("shared", None).unwrap().unwrap().value,
        "then via b"
    );
    // revoke through a; b refuses the key within the second the README promises (its key
    // cache trusts a lookup for 500 ms), whatever it cached before
    let reader = ca
        .create_key(&sigil_core::wire::CreateKey {
            role: sigil_core::wire::Role::Reader,
            name: "replica test".into(),
        })
        .unwrap();
    let rb = b.client(&reader.key);
    assert!(
        rb.get_secret("shared", None).unwrap().is_some(),
        "b knows the new key"
    );
    ca.revoke_key(&reader.id).unwrap();
    let revoked_at = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    match rb.get_secret("shared", None) {
        Err(sigil_client::ClientError::Unauthorized { .. }) => {}
        other => panic!(
            "replica b still accepts a key revoked through replica a {:?} ago: {other:?}",
            revoked_at.elapsed()
        ),
    }
}

#[test]
fn tls_with_rustls() {
    let sb = Sandbox::new();
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let (cert, key) = (sb.home().join("cert.pem"), sb.home().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
    let srv = RunningServer::start(
        &sb,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
    );
    assert!(srv.url.starts_with("https://127.0.0.1:"), "{}", srv.url);
    let env = [
        ("SIGIL__BACKEND", "server"),
        ("SIGIL__SERVER__URL", srv.url.as_str()),
        ("SIGIL_API_KEY", ADMIN),
        ("SIGIL_CA_CERT", cert.to_str().unwrap()),
    ];
    assert_code(
        &run_env(&sb, &["secrets", "set", "T", "over-tls", "--server"], &env),
        0,
    );
    assert_eq!(
        stdout(&run_env(&sb, &["secrets", "get", "T"], &env)),
        "over-tls\n"
    );
    // the web page's cookies are Secure under TLS: the sign-in form's, then the session's
    let pem = std::fs::read(&cert).unwrap();
    let roots: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::new_with_certs(&roots))
        .build();
    let browser: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let cookies = |r: &ureq::http::Response<ureq::Body>| -> Vec<String> {
        r.headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    };
    let mut home = browser.get(&format!("{}/", srv.url)).call().unwrap();
    let signin_cookie = cookies(&home)
        .pop()
        .expect("the sign-in page sets a cookie");
    assert!(signin_cookie.contains("; Secure"), "{signin_cookie}");
    let page = home.body_mut().read_to_string().unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the form's token")
        .to_owned();
    let signed_in = browser
        .post(&format!("{}/ui/signin", srv.url))
        .header("cookie", signin_cookie.split(';').next().unwrap())
        .header("origin", srv.url.as_str())
        .send_form([("key", ADMIN), ("csrf", csrf.as_str())])
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let session = cookies(&signed_in)
        .into_iter()
        .find(|c| c.starts_with("sigil_session="))
        .expect("a session cookie");
    assert!(
        session.contains("; Secure") && session.contains("HttpOnly"),
        "{session}"
    );
    // without trusting the certificate the client refuses to talk
    let o = run_env(&sb, &["secrets", "get", "T"], &env[..3]);
    assert_exit(&o, 1, "unreachable");
    // plain HTTP to the TLS port gets no HTTP answer
    assert_eq!(
        http_get_status(&srv.url.replace("https://", "http://"), "/healthz"),
        None
    );
    // a bad key file is named
    let bad = sb.file("bad.pem", "not a key");
    let (cert, bad) = (cert.to_str().unwrap(), bad.to_str().unwrap());
    let args = [
        "server",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert,
        "--tls-key",
        bad,
    ];
    let o = sb.cmd(&args).bounded();
    assert_exit(&o, 1, "bad.pem");
    let fresh = Sandbox::new();
    let o = fresh.cmd(&args).bounded();
    assert_code(&o, 1);
    assert!(
        !fresh.home().join(".sigil").exists(),
        "a refused start created nothing"
    );
}

#[test]
fn sigterm_stops_the_server_gracefully() {
    let sb = Sandbox::new();
    let mut srv = RunningServer::start(&sb, &[], &[]);
    srv.put("before", serde_json::json!("v"));
    let status = std::process::Command::new("kill")
        .args(["-TERM", &srv.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(s) = srv.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        exit.success(),
        "exit status {exit:?}:\n{}",
        srv.log.lock().unwrap()
    );
}

/// With `cache_ttl`, a second lookup within the TTL is answered from memory: the audit log shows
/// one read.
#[test]
fn the_client_cache_honours_its_ttl() {
    let sb = Sandbox::new();
    let srv = RunningServer::start(&sb, &[], &[]);
    let c = srv.put("cached", serde_json::json!("v1"));
    let reads = |c: &sigil_client::Client| {
        c.audit(None, None, 1000)
            .unwrap()
            .entries
            .iter()
            .filter(|e| e.action == "secret.read" && e.name.as_deref() == Some("cached"))
            .count()
    };
    let name: sigil::SecretName = "cached".parse().unwrap();
    let cached = sigil_client::ServerSource::new(c.clone(), Duration::from_secs(60));
    use sigil::Source as _;
    for _ in 0..3 {
        assert_eq!(
            cached.fetch(&name).unwrap().unwrap().expose_str(),
            Some("v1")
        );
    }
    assert_eq!(reads(&c), 1);
    let uncached = sigil_client::ServerSource::new(c.clone(), Duration::ZERO);
    for _ in 0..3 {
        uncached.fetch(&name).unwrap();
    }
    assert_eq!(reads(&c), 4);
    // a miss is not cached and not an error
    assert!(cached.fetch(&"absent".parse().unwrap()).unwrap().is_none());
}

/// `sigil run` reads what the local sources lack from the server in one batch read.
#[test]
fn run_reads_server_secrets_in_one_round_trip() {
    let sb = Sandbox::new();
    let srv = RunningServer::start(&sb, &[], &[]);
    let c = srv.client(ADMIN);
    for i in 0..5 {
        c.put_secret(
            &format!("S{i}"),
            &serde_json::json!(format!("server-value-{i}")),
            None,
        )
        .unwrap();
    }
    sb.write_config("[context.secrets]\nS0 = \"local-zero\"\n");
    let env = server_env(&srv, &[]);
    // requests by route, counted by the server itself
    let served = |route: &str| served(&srv, route);
    let (batch, single) = (
        "/api/v1/teams/{team}/batch-read",
        "/api/v1/teams/{team}/secrets/{*name}",
    );
    let before = (served(batch), served(single));
    let o = run_env(
        &sb,
        &["run", "--no-mask", "--", "sh", "-c", "echo $S0 $S1 $S4"],
        &env,
    );
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "local-zero server-value-1 server-value-4\n");
    assert_eq!(
        (served(batch) - before.0, served(single) - before.1),
        (1, 0),
        "one batch request and no single read for the four server secrets"
    );
    let reads: Vec<_> = c
        .audit(None, None, 1000)
        .unwrap()
        .entries
        .into_iter()
        .filter(|e| e.action == "secret.read")
        .collect();
    let names: Vec<&str> = reads.iter().filter_map(|e| e.name.as_deref()).collect();
    assert_eq!(
        names.len(),
        4,
        "S1..S4 once each, S0 answered locally: {names:?}"
    );
    assert!(!names.contains(&"S0"));
    let masked = run_env(&sb, &["run", "--", "sh", "-c", "echo $S2"], &env);
    assert_eq!(stdout(&masked), "***\n");
}

// `keys revoke ../x` answered "no such endpoint" (the id went into the path unencoded); an
// offset in `--since` was refused, and a `+` in the query would have reached the server as a space.
#[test]
fn the_client_encodes_paths_and_queries_and_reads_offsets() {
    let sb = Sandbox::new();
    let srv = RunningServer::start(&sb, &[], &[]);
    let env = server_env(&srv, &[]);
    let o = run_env(&sb, &["keys", "revoke", "../x"], &env);
    assert!(
        !stderr(&o).contains("no such endpoint") && stderr(&o).contains("../x"),
        "{}",
        stderr(&o)
    );
    assert_code(
        &run_env(&sb, &["secrets", "set", "a/b.c", "dots-1"], &env),
        0,
    );
    let count = |since: &str| {
        let o = run_env(&sb, &["audit", "--json", "--since", since], &env);
        assert_code(&o, 0);
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        v["entries"].as_array().unwrap().len()
    };
    assert!(count("2000-01-01T01:00:00+01:00") >= 2);
    assert!(count("2000-01-01") >= 2);
    assert_eq!(count("2999-01-01T00:00:00-05:00"), 0);
    let o = run_env(&sb, &["audit", "--since", "2026-13-01"], &env);
    assert_code(&o, 2);
    // the client itself encodes the `+` of an offset
    let c = srv.client(ADMIN);
    assert!(
        c.audit(Some("2000-01-01T01:00:00+01:00"), None, 1000)
            .unwrap()
            .entries
            .len()
            >= 2
    );
}

// `sigil audit` showed the oldest 100 records and hid the rest, with no hint and no way to page.
#[test]
fn audit_shows_the_newest_first_and_pages() {
    let sb = Sandbox::new();
    let srv = RunningServer::start(&sb, &[], &[]);
    let env = server_env(&srv, &[]);
    let c = srv.client(ADMIN);
    for i in 0..5 {
        c.put_secret(&format!("S{i}"), &serde_json::json!("v-1234"), None)
            .unwrap();
    }
    let names = |o: &std::process::Output| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(&stdout(o)).unwrap();
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["name"].as_str().map(str::to_owned))
            .filter(|n| n.starts_with('S'))
            .collect()
    };
    let o = run_env(&sb, &["audit", "--json", "--limit", "3"], &env);
    assert_code(&o, 0);
    assert_eq!(names(&o), ["S4", "S3", "S2"], "newest first");
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let cursor = v["next_cursor"].as_str().unwrap().to_owned();
    let o = run_env(
        &sb,
        &["audit", "--json", "--limit", "3", "--cursor", &cursor],
        &env,
    );
    assert_eq!(names(&o), ["S1", "S0"], "the next page goes on backwards");
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    // the last page reaches the bootstrap's record: made by no key, `key_id: null`
    let entries = v["entries"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["key_id"].is_null()), "{v}");
    assert!(entries.iter().all(|e| e["key_id"] != "-"), "{v}");
    assert!(v["next_cursor"].is_null());
    let o = run_env(&sb, &["audit", "--json", "--oldest-first"], &env);
    let all = names(&o);
    assert_eq!(&all[all.len() - 5..], ["S0", "S1", "S2", "S3", "S4"]);
    // the table says there is more, and how to get it
    let o = run_env(&sb, &["audit", "--limit", "2"], &env);
    assert_code(&o, 0);
    let table = stdout(&o);
    assert!(
        table.find("S4").unwrap() < table.find("S3").unwrap(),
        "{table}"
    );
    assert!(
        stderr(&o).starts_with("more: sigil audit --cursor ") && stderr(&o).contains("--limit 2"),
        "{}",
        stderr(&o)
    );
}

// `import` could not target the server.
#[test]
fn import_into_the_server() {
    let sb = Sandbox::new();
    let srv = RunningServer::start(&sb, &[], &[]);
    let env = [
        ("SIGIL__SERVER__URL", srv.url.as_str()),
        ("SIGIL_API_KEY", ADMIN),
    ];
    let c = srv.put("KEPT", serde_json::json!("old-value"));
    let dotenv = sb.file("team.env", "KEPT=new-value\nFRESH=$NOT_EXPANDED\n");
    let import = |more: &[&str]| {
        let mut args = vec![
            "import",
            "--server",
            "--from",
            "dotenv",
            dotenv.to_str().unwrap(),
        ];
        args.extend(more);
        run_env(&sb, &args, &env)
    };
    let o = import(&["--dry-run", "--json"]);
    assert_code(&o, 0);
    assert_eq!(
        stdout(&o),
        "[{\"name\":\"KEPT\",\"action\":\"keep\"},{\"name\":\"FRESH\",\"action\":\"new\"}]\n"
    );
    let o = import(&[]);
    assert_exit(&o, 0, "imported 1 secret(s)");
    assert!(stderr(&o).contains("kept 1 existing"), "{}", stderr(&o));
    let value = |n: &str| c.get_secret(n, None).unwrap().unwrap().value;
    assert_eq!(value("FRESH"), serde_json::json!("$NOT_EXPANDED"));
    assert_eq!(value("KEPT"), serde_json::json!("old-value"));
    assert_code(&import(&["--overwrite"]), 0);
    assert_eq!(value("KEPT"), serde_json::json!("new-value"));
    assert!(!sb.config().exists(), "nothing was written locally");
}

// `secrets list --json` had two shapes (local and --server); `secrets get --json` lacked the
// version when the server answered through the chain.
#[test]
fn one_json_shape_for_lists_and_reads() {
    let sb = Sandbox::new();
    let srv = RunningServer::start(&sb, &[], &[]);
    let env = server_env(&srv, &[]);
    let c = srv.client(ADMIN);
    c.put_secret("prod/db", &serde_json::json!("v1-value"), None)
        .unwrap();
    c.put_secret("prod/db", &serde_json::json!("v2-value"), None)
        .unwrap();
    c.put_secret("dev/db", &serde_json::json!("dev-value"), None)
        .unwrap();
    let o = run_env(&sb, &["secrets", "get", "prod/db", "--json"], &env);
    assert_code(&o, 0);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        doc,
        serde_json::json!({"name": "prod/db", "value": "v2-value", "source": "server", "version": 2})
    );
    // several names: one batch read, through the chain and with --server
    let before = c.audit(None, None, 1000).unwrap().entries.len();
    for extra in [&[][..], &["--server"][..]] {
        let mut args = vec!["secrets", "get", "prod/db", "dev/db", "--json"];
        args.extend_from_slice(extra);
        let o = run_env(&sb, &args, &env);
        assert_code(&o, 0);
        let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(doc[0]["version"], 2, "{doc}");
        assert_eq!(doc[1]["value"], "dev-value", "{doc}");
    }
    let reads: Vec<_> = c
        .audit(None, None, 1000)
        .unwrap()
        .entries
        .into_iter()
        .skip(before)
        .filter(|e| e.action.starts_with("secret.read"))
        .collect();
    assert_eq!(
        reads.len(),
        4,
        "one record per name of each batch: {reads:?}"
    );
    let o = run_env(
        &sb,
        &["secrets", "list", "--server", "--json", "--prefix", "prod/"],
        &env,
    );
    assert_code(&o, 0);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let items = doc.as_array().unwrap();
    assert_eq!(items.len(), 1, "{doc}");
    const SHAPE: [&str; 6] = [
        "name",
        "source",
        "shadowed",
        "version",
        "updated_at",
        "updated_by",
    ];
    let keys = |item: &serde_json::Value| -> Vec<String> {
        item.as_object().unwrap().keys().cloned().collect()
    };
    assert_eq!(keys(&items[0]), SHAPE);
    assert_eq!(items[0]["version"], 2);
    assert_eq!(items[0]["source"], "server");
    let o = run_env(&sb, &["secrets", "list", "--json"], &env);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(keys(&doc[0]), SHAPE, "the same shape without --server");
}

pub(crate) fn http_get_raw(url: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let addr = url.strip_prefix("http://").unwrap();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    buf
}

// Behind a TLS-terminating proxy the session cookie never got `Secure`.
#[test]
fn cookies_are_secure_when_asked_and_proxies_are_checked() {
    let sb = Sandbox::new();
    let plain = RunningServer::start(&sb, &[], &[]);
    let page = http_get_raw(&plain.url, "/");
    assert!(
        page.contains("set-cookie: sigil_signin=") && !page.contains("Secure"),
        "{page}"
    );
    drop(plain);
    let sb = Sandbox::new();
    let secure = RunningServer::start(
        &sb,
        &["--trusted-proxy", "127.0.0.1"],
        &[("SIGIL_SECURE_COOKIES", "true")],
    );
    let page = http_get_raw(&secure.url, "/");
    assert!(page.contains("SameSite=Strict; Secure"), "{page}");
    let o = sb.run(&[
        "server",
        "--trusted-proxy",
        "10.0.0.0/33",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_exit(&o, 2, "10.0.0.0/33");
}

// A bootstrap key chosen through SIGIL_BOOTSTRAP_ADMIN_KEY was printed to stderr (container
// logs); once revoked, nobody could create teams again.
#[test]
fn a_chosen_bootstrap_key_is_not_logged_and_can_be_reset_offline() {
    let sb = Sandbox::new();
    let srv = RunningServer::start(&sb, &[], &[]);
    let id = ADMIN.split('_').nth(1).unwrap();
    let secret_part = ADMIN.rsplit('_').next().unwrap();
    {
        let log = srv.log.lock().unwrap();
        assert!(log.contains(id), "{log}");
        assert!(
            !log.contains(secret_part),
            "the chosen key is in the log:\n{log}"
        );
    }
    // offline only: the running server holds the SQLite database
    let o = sb.run(&["server", "reset-bootstrap-key"]);
    assert_exit(&o, 1, "lock");
    drop(srv);
    let o = sb.run(&["server", "reset-bootstrap-key"]);
    assert_code(&o, 0);
    let new_key = stdout(&o).trim().to_owned();
    assert!(new_key.starts_with("sgl_") && new_key != ADMIN, "{new_key}");
    let srv = RunningServer::start(&sb, &[], &[]);
    let old = srv.client(ADMIN);
    assert!(
        old.list_teams().is_err(),
        "the old bootstrap key is revoked"
    );
    let new = srv.client(&new_key);
    let (team, _) = new.create_team("after-reset").unwrap();
    assert_eq!(team.name, "after-reset");
}

/// Reads until the server closes the connection or `within` passes; how long it took, or `None`
/// when the connection was still open at the deadline.
fn closed_within(s: &mut std::net::TcpStream, within: Duration) -> Option<Duration> {
    use std::io::Read;
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        let left = within.saturating_sub(start.elapsed());
        if left.is_zero() {
            return None;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => continue, // a 408 answer, then the close
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue, // EINTR: again
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None;
            }
            Err(_) => return Some(start.elapsed()), // reset: closed
        }
    }
}

// A connection that sent half its headers was held for over a minute and then served; many of
// them starved the server of file descriptors; SIGTERM waited for them without end.
#[test]
fn slow_and_idle_connections_are_cut_and_capped() {
    use std::io::Write;
    let sb = Sandbox::new();
    let srv = RunningServer::start(
        &sb,
        &[
            "--header-read-timeout",
            "1s",
            "--idle-timeout",
            "2s",
            "--max-connections",
            "3",
            "--shutdown-timeout",
            "1s",
        ],
        &[],
    );
    let addr = srv.url.strip_prefix("http://").unwrap().to_owned();
    let connect = || std::net::TcpStream::connect(&addr).unwrap();
    // half the headers, then nothing
    let mut slow = connect();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let took = closed_within(&mut slow, Duration::from_secs(10))
        .expect("a connection with half its headers is still open after 10 s");
    assert!(took < Duration::from_secs(5), "{took:?}");
    // nothing at all
    let mut silent = connect();
    let took = closed_within(&mut silent, Duration::from_secs(10))
        .expect("a silent connection is still open after 10 s");
    assert!(took < Duration::from_secs(5), "{took:?}");

    // three idle connections fill the cap: a fourth is closed at once
    let held: Vec<_> = (0..3).map(|_| connect()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut fourth = connect();
    let took = closed_within(&mut fourth, Duration::from_secs(5)).expect("over the cap, yet open");
    assert!(took < Duration::from_millis(900), "{took:?}");
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    while http_get_status(&srv.url, "/healthz") != Some(200) {
        assert!(
            Instant::now() < deadline,
            "the server did not take connections again"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // SIGTERM with a request stuck in its headers: the server is gone within the grace period
    let mut stuck = connect();
    stuck.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
    let mut srv = srv;
    let start = Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &srv.child.id().to_string()])
        .status()
        .unwrap();
    loop {
        if let Some(status) = srv.child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "SIGTERM waited for a stuck connection"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let metrics_seen = srv.log.lock().unwrap().contains("connection limit reached");
    assert!(metrics_seen, "the refusal is logged");
}

#[test]
fn a_request_past_its_deadline_is_answered_503() {
    use std::io::{Read, Write};
    let sb = Sandbox::new();
    let srv = RunningServer::start(
        &sb,
        &["--request-timeout", "1s", "--idle-timeout", "10s"],
        &[],
    );
    let addr = srv.url.strip_prefix("http://").unwrap();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    // the headers, then a body that never finishes
    write!(
        s,
        "PUT /api/v1/teams/default/secrets/slow HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"value\":"
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 2048];
    // a read interrupted by a signal (EINTR) is tried again, as std's read_to_end does
    let n = loop {
        match s.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => break other.expect("an answer before the idle timeout"),
        }
    };
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("\"timeout\""), "{answer}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(
        srv.client(ADMIN)
            .get_secret("slow", None)
            .unwrap()
            .is_none()
    );
}

/// A rolling restart onto a new master key: a server given the new key and, as the previous
/// one, the old key reads what the old key wrapped and makes new teams under the new key; after
/// `rotate-master-key`, the new key alone reads everything.
#[test]
fn a_previous_master_key_serves_during_a_rolling_restart() {
    let sb = Sandbox::new();
    let old_key = sb.home().join("old.key");
    let new_key = sb.home().join("new.key");
    let (o, n) = (old_key.to_str().unwrap(), new_key.to_str().unwrap());
    let made = std::process::Command::new("sh")
        .args(["-c", &format!("head -c 32 /dev/urandom | base64 > '{n}'")])
        .status()
        .unwrap();
    assert!(made.success());
    {
        let srv = RunningServer::start(&sb, &["--master-key-file", o], &[]);
        srv.put("before", serde_json::json!("wrapped by the old key"));
    }
    let second_key = {
        let args = ["--master-key-file", n, "--previous-master-key-file", o];
        let srv = RunningServer::start(&sb, &args, &[]);
        let c = srv.client(ADMIN);
        assert_eq!(
            c.get_secret("before", None).unwrap().unwrap().value,
            "wrapped by the old key"
        );
        let (_, admin) = c.create_team("second").unwrap();
        let second = sigil_client::Client::new(&srv.url, "second", &admin.key).unwrap();
        second
            .put_secret("x", &serde_json::json!("wrapped by the new key"), None)
            .unwrap();
        admin.key
    };
    let rotate = [
        "server",
        "rotate-master-key",
        "--master-key-file",
        o,
        "--new-key-file",
        n,
    ];
    assert_exit(&sb.cmd(&rotate).bounded(), 0, "re-wrapped 1 data key(s)");
    let srv = RunningServer::start(&sb, &["--master-key-file", n], &[]);
    assert_eq!(
        srv.client(ADMIN)
            .get_secret("before", None)
            .unwrap()
            .unwrap()
            .value,
        "wrapped by the old key"
    );
    let second = sigil_client::Client::new(&srv.url, "second", &second_key).unwrap();
    assert_eq!(
        second.get_secret("x", None).unwrap().unwrap().value,
        "wrapped by the new key"
    );
}
