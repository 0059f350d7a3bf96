//! Secret tasks, env-var secrets, run context and masking.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sigil_core::{SecretName, SecretValue};
use sigil_flow::{EnvVarSecret, Flow, RunOptions, SecretTask, TaskState};
use sigil_test_support::process::Bounded;

use crate::chain_with;

#[test]
fn a_secret_task_feeds_the_task_that_needs_it() {
    let mut flow = Flow::new("example");
    let my_secret = flow.add(SecretTask::new("MYSECRET"));
    let used = flow.task("my_task", my_secret, |_, credentials: SecretValue| {
        Ok(credentials.expose_str().map(str::len))
    });
    let run = flow
        .run_with(RunOptions::new().resolver(chain_with(&[("MYSECRET", "MY SECRET VALUE")])))
        .unwrap();
    assert!(run.is_success(), "{run}");
    assert_eq!(run.output(used), Some(Some(15)));
    assert_eq!(
        run.output(my_secret).map(|v| v.size()),
        None,
        "a secret's value is not kept after the run"
    );
}

#[test]
fn a_secret_task_resolves_again_on_every_run() {
    // the value changes between runs: the second run must see the new value
    let dir = tempfile_dir();
    let path = dir.join("config.toml");
    std::fs::write(&path, "[context.secrets]\nROTATED = \"first-value\"\n").unwrap();
    let editor = sigil_core::ConfigEditor::new(&path, false, 65536);
    let file = sigil_core::ConfigFile::load(&path).unwrap();
    let chain = Arc::new(sigil_core::Resolver::new(vec![Arc::new(
        sigil_core::FileSource::with_recheck(&file, Duration::ZERO),
    )]));
    let mut flow = Flow::new("rerun");
    let s = flow.add(SecretTask::new("ROTATED"));
    let seen = flow.task("seen", s, |_, v: SecretValue| {
        Ok(v.expose_str().unwrap().to_owned())
    });
    let run = flow
        .run_with(RunOptions::new().resolver(chain.clone()))
        .unwrap();
    assert_eq!(run.output(seen).as_deref(), Some("first-value"));
    editor
        .set_secret(
            &"ROTATED".parse().unwrap(),
            &SecretValue::from("second-value, longer"),
        )
        .unwrap();
    let run = flow.run_with(RunOptions::new().resolver(chain)).unwrap();
    assert_eq!(run.output(seen).as_deref(), Some("second-value, longer"));
    std::fs::remove_dir_all(dir).ok();
}

fn tempfile_dir() -> std::path::PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "sigil-flow-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A source whose secret appears only from the third lookup on.
struct LateSource(AtomicU32);

impl sigil_core::Source for LateSource {
    fn kind(&self) -> &str {
        "late"
    }
    fn place(&self, _: &SecretName) -> String {
        "late source".into()
    }
    fn fetch(&self, name: &SecretName) -> sigil_core::Result<Option<SecretValue>> {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        Ok((n >= 2 && name.as_str() == "LATE").then(|| SecretValue::from("arrived-late")))
    }
}

#[test]
fn retries_apply_to_secret_tasks() {
    let chain = Arc::new(sigil_core::Resolver::new(vec![Arc::new(LateSource(
        AtomicU32::new(0),
    ))]));
    let mut flow = Flow::new("late");
    let s = flow.add(SecretTask::new("LATE"));
    flow.configure(s).max_retries(3);
    let len = flow.task("len", s, |_, v: SecretValue| Ok(v.size()));
    let run = flow.run_with(RunOptions::new().resolver(chain)).unwrap();
    assert_eq!(run.state(s), TaskState::Success, "{run}");
    // the run's read of its known names when it starts is the first lookup; then each attempt
    assert_eq!(run.task(s).attempts, 2);
    assert_eq!(run.output(len), Some(12));
}

/// A source that counts its single and batch lookups and the names each asked for; `LATE`
/// appears only from its fourth single lookup on.
#[derive(Default)]
struct Recording {
    single: std::sync::Mutex<Vec<String>>,
    batches: std::sync::Mutex<Vec<Vec<String>>>,
}

impl sigil_core::Source for Recording {
    fn kind(&self) -> &str {
        "counting"
    }
    fn place(&self, _: &SecretName) -> String {
        "counting source".into()
    }
    fn fetch(&self, name: &SecretName) -> sigil_core::Result<Option<SecretValue>> {
        let mut single = self.single.lock().unwrap();
        single.push(name.to_string());
        let late_seen = single.iter().filter(|n| *n == "LATE").count();
        Ok(match name.as_str() {
            "LATE" => (late_seen >= 2).then(|| SecretValue::from("late")),
            "MISSING" => None,
            other => Some(SecretValue::from(format!("value of {other}"))),
        })
    }
    fn fetch_many(&self, names: &[SecretName]) -> sigil_core::Result<Vec<Option<SecretValue>>> {
        self.batches
            .lock()
            .unwrap()
            .push(names.iter().map(|n| n.to_string()).collect());
        Ok(names
            .iter()
            .map(|n| match n.as_str() {
                "LATE" | "MISSING" => None,
                other => Some(SecretValue::from(format!("value of {other}"))),
            })
            .collect())
    }
}

#[test]
fn a_run_reads_the_names_it_knows_in_one_batch_and_the_others_one_by_one() {
    let source = Arc::new(Recording::default());
    let chain = Arc::new(sigil_core::Resolver::new(vec![source.clone()]));
    let mut flow = Flow::new("batched");
    let mut known = Vec::new();
    for i in 0..100 {
        known.push(flow.add(SecretTask::new(format!("S{i:03}"))));
    }
    // one name twice, under two task names: asked for once
    let again = flow.add(SecretTask::new("S000").named("s000_again"));
    let total = flow.task("total", known.clone(), |_, values: Vec<SecretValue>| {
        Ok(values.iter().map(SecretValue::size).sum::<usize>())
    });
    let same = flow.task(
        "same",
        (known[0], again),
        |_, (a, b): (SecretValue, SecretValue)| Ok(a.expose_str() == b.expose_str()),
    );
    // decided at run time: read on its own
    let which = flow.parameter_with_default("which", String::from("RUNTIME"));
    let runtime = flow.add(SecretTask::from_input(which));
    // not there when the run starts: the task reads it, and its retry reads again
    let late = flow.add(SecretTask::new("LATE"));
    flow.configure(late).max_retries(2);
    let run = flow
        .run_with(RunOptions::new().resolver(chain.clone()))
        .unwrap();
    assert!(run.is_success(), "{run}");
    assert_eq!(run.output(total), Some(100 * "value of S000".len()));
    assert_eq!(run.output(same), Some(true));
    assert_eq!(run.state(runtime), TaskState::Success);
    assert_eq!(run.task(late).attempts, 2);
    let batches = source.batches.lock().unwrap().clone();
    assert_eq!(batches.len(), 1, "one batch: {batches:?}");
    assert_eq!(
        batches[0].len(),
        101,
        "each known name once, LATE with them"
    );
    let mut single = source.single.lock().unwrap().clone();
    single.sort();
    assert_eq!(
        single,
        ["LATE", "LATE", "RUNTIME"],
        "single lookups: the name decided at run time, and LATE's two attempts"
    );
    // a second run reads again
    flow.run_with(RunOptions::new().resolver(chain)).unwrap();
    assert_eq!(source.batches.lock().unwrap().len(), 2);
}

#[test]
fn names_at_run_time_and_no_name() {
    let chain = chain_with(&[("DB_PASSWORD", "pw-db-1"), ("API", "api-key-2")]);
    let mut flow = Flow::new("by-param");
    let which = flow.parameter_with_default("which", String::from("DB_PASSWORD"));
    let s = flow.add(SecretTask::from_input(which));
    let out = flow.task("use", s, |_, v: SecretValue| Ok(v.size()));
    let run = flow
        .run_with(RunOptions::new().resolver(chain.clone()))
        .unwrap();
    assert_eq!(run.output(out), Some(7));
    let run = flow
        .run_with(
            RunOptions::new()
                .resolver(chain.clone())
                .parameter("which", String::from("API")),
        )
        .unwrap();
    assert_eq!(run.output(out), Some(9));

    let mut flow = Flow::new("no-name");
    let none = flow.task("pick", (), |_, ()| Ok(None::<String>));
    let s = flow.add(SecretTask::from_optional_input(none).named("secret_of_pick"));
    let run = flow.run_with(RunOptions::new().resolver(chain)).unwrap();
    assert_eq!(run.state(s), TaskState::Failed);
    assert_eq!(
        run.task(s).error.as_deref(),
        Some("secret task \"secret_of_pick\": no secret name was given")
    );
}

#[test]
fn a_missing_secret_fails_the_task_naming_the_places() {
    let mut flow = Flow::new("missing");
    let s = flow.add(SecretTask::new("NOPE"));
    let run = flow
        .run_with(RunOptions::new().resolver(chain_with(&[])))
        .unwrap();
    assert_eq!(run.state(s), TaskState::Failed);
    let e = run.task(s).error.clone().unwrap();
    assert!(
        e.starts_with(
            "secret \"NOPE\" not found (searched: context; flow-test.toml [context.secrets])"
        ),
        "{e}"
    );
}

#[test]
fn run_time_secrets_layer_over_the_chain() {
    let mut flow = Flow::new("runtime");
    let s = flow.add(SecretTask::new("TOKEN"));
    let out = flow.task("read", s, |_, v: SecretValue| {
        Ok(v.expose_str().unwrap().to_owned())
    });
    let chain = chain_with(&[("TOKEN", "from-file")]);
    let run = flow
        .run_with(RunOptions::new().resolver(chain.clone()))
        .unwrap();
    assert_eq!(run.output(out).as_deref(), Some("from-file"));
    let run = flow
        .run_with(
            RunOptions::new()
                .resolver(chain)
                .secret("TOKEN", "from-run"),
        )
        .unwrap();
    assert_eq!(run.output(out).as_deref(), Some("from-run"));
}

#[test]
fn tasks_see_run_id_and_their_name_as_attribution() {
    let mut flow = Flow::new("attr");
    let t = flow.task("who", (), |ctx, ()| {
        let a = sigil_core::context::attribution().expect("a task runs with attribution");
        assert_eq!(a.flow_run, ctx.run_id());
        Ok(a.task)
    });
    let run = flow.run().unwrap();
    assert_eq!(run.output(t), Some(Some("who".to_owned())));
}

#[test]
fn env_var_secrets() {
    // PATH is set in every test environment; a variable with this name is not
    let mut flow = Flow::new("env");
    let path = flow.add(EnvVarSecret::new("PATH"));
    let missing = flow.add(EnvVarSecret::new("SIGIL_TEST_SURELY_UNSET_VAR"));
    let raising = flow.add(
        EnvVarSecret::new("SIGIL_TEST_SURELY_UNSET_VAR")
            .raise_if_missing(true)
            .named("raising"),
    );
    let cast = flow.add(
        EnvVarSecret::new("PATH")
            .cast(|s| s.parse::<u16>())
            .named("cast"),
    );
    let run = flow.run().unwrap();
    assert_eq!(run.state(path), TaskState::Success);
    assert_eq!(run.state(missing), TaskState::Success);
    assert_eq!(run.state(raising), TaskState::Failed);
    assert_eq!(
        run.task(raising).error.as_deref(),
        Some("environment variable not set: SIGIL_TEST_SURELY_UNSET_VAR")
    );
    assert_eq!(run.state(cast), TaskState::Failed);
    let e = run.task(cast).error.clone().unwrap();
    assert!(
        e.starts_with("environment variable PATH: cannot convert the value"),
        "{e}"
    );
    assert_eq!(
        run.output(missing),
        None,
        "env-var secrets are secrets: not kept"
    );
}

const CANARY: &str = "canary-flow-5e8d21";

#[test]
fn the_canary_is_masked_in_logs_errors_and_the_report() {
    let mut flow = Flow::new("canary");
    let s = flow.add(SecretTask::new("CANARY_SECRET"));
    let logs = flow.task("logs_it", s, |ctx, v: SecretValue| {
        let url = format!("postgres://etl:{}@db:5432/x", v.expose_str().unwrap());
        ctx.info(format!("connecting to {url}"));
        ctx.warn(format!("raw {}", v.expose_str().unwrap()));
        Ok(())
    });
    let errs = flow.task("errors_with_it", s, |_, v: SecretValue| -> Result<(), _> {
        Err(format!("login failed for password {}", v.expose_str().unwrap()).into())
    });
    let panics = flow.task("panics_with_it", s, |_, v: SecretValue| -> Result<(), _> {
        panic!("bad password {}", v.expose_str().unwrap())
    });
    let returns = flow.task("returns_it", s, |_, v: SecretValue| {
        Ok(v.expose_str().unwrap().to_owned())
    });
    // a value read with a plain lookup inside a task is masked too
    let looked_up = flow.task("looks_up", (), |ctx, ()| {
        let v = ctx.resolver()?.get(&"OTHER_SECRET".parse()?)?;
        ctx.info(format!("other is {}", v.expose_str().unwrap()));
        Ok(())
    });
    let run = flow
        .run_with(RunOptions::new().resolver(chain_with(&[
            ("CANARY_SECRET", CANARY),
            ("OTHER_SECRET", "other-canary-77"),
        ])))
        .unwrap();
    assert_eq!(run.state(logs), TaskState::Success);
    assert_eq!(run.state(errs), TaskState::Failed);
    assert_eq!(run.state(panics), TaskState::Failed);
    assert_eq!(run.state(returns), TaskState::Success);
    assert_eq!(run.state(looked_up), TaskState::Success);
    let messages: Vec<&str> = run.logs().iter().map(|l| l.message.as_str()).collect();
    assert!(
        messages.contains(&"connecting to postgres://etl:***@db:5432/x"),
        "{messages:?}"
    );
    assert!(messages.contains(&"raw ***"));
    assert!(messages.contains(&"other is ***"));
    assert_eq!(
        run.task(errs).error.as_deref(),
        Some("login failed for password ***")
    );
    assert_eq!(
        run.task(panics).error.as_deref(),
        Some("task panicked: bad password ***")
    );
    let everything = format!("{run}\n{}\n{run:?}\n{messages:?}", run.to_json());
    assert!(!everything.contains(CANARY), "{everything}");
    assert!(!everything.contains("other-canary-77"), "{everything}");
}

/// The panic hook prints a task's panic message masked. Checked in a child process (this test
/// binary again, running only `panicking_task_child`), whose stderr is the hook's output.
#[test]
fn a_panic_message_reaches_stderr_masked() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "secrets::panicking_task_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SIGIL_FLOW_PANIC_CHILD", "1")
        .bounded();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 passed"),
        "the child ran the test: {stdout}"
    );
    assert!(
        stderr.contains("panicked at") && stderr.contains("bad password ***"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(CANARY) && !stdout.contains(CANARY),
        "{stderr}"
    );
}

#[test]
fn panicking_task_child() {
    if std::env::var_os("SIGIL_FLOW_PANIC_CHILD").is_none() {
        return; // only meaningful as the child of the test above
    }
    let mut flow = Flow::new("panic-child");
    let s = flow.add(SecretTask::new("CANARY_SECRET"));
    let p = flow.task("panics", s, |_, v: SecretValue| -> Result<(), _> {
        panic!("bad password {}", v.expose_str().unwrap())
    });
    let run = flow
        .run_with(RunOptions::new().resolver(chain_with(&[("CANARY_SECRET", CANARY)])))
        .unwrap();
    assert_eq!(run.state(p), TaskState::Failed);
}

/// A source that counts its lookups.
struct Counting(AtomicU32);

impl sigil_core::Source for Counting {
    fn kind(&self) -> &str {
        "counting"
    }
    fn place(&self, _: &SecretName) -> String {
        "counting".into()
    }
    fn fetch(&self, name: &SecretName) -> sigil_core::Result<Option<SecretValue>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(Some(SecretValue::from(format!("value-of-{name}"))))
    }
}

// `SecretTask::from_input(param)` resolved (and, against a server, audited) its secret twice
// on every run: a task fed only by parameters was queued twice.
#[test]
fn a_secret_named_by_a_parameter_is_resolved_once_per_run() {
    let source = Arc::new(Counting(AtomicU32::new(0)));
    let chain = Arc::new(sigil_core::Resolver::new(vec![source.clone()]));
    let mut flow = Flow::new("by-param-once");
    let which = flow.parameter_with_default("which", String::from("DB_PASSWORD"));
    let s = flow.add(SecretTask::from_input(which));
    flow.task("use", s, |_, v: SecretValue| Ok(v.size()));
    for runs in 1..=3 {
        let run = flow
            .run_with(RunOptions::new().resolver(chain.clone()).workers(4))
            .unwrap();
        assert!(run.is_success(), "{run}");
        assert_eq!(run.task(s).attempts, 1, "{run}");
        assert_eq!(source.0.load(Ordering::SeqCst), runs);
    }
}

// Two `from_input` secret tasks both defaulted to the name `secret`, and the second was refused.
#[test]
fn two_secret_tasks_from_inputs_get_their_own_names() {
    let chain = chain_with(&[("A_PW", "a-pw-1"), ("B_PW", "b-pw-22")]);
    let mut flow = Flow::new("two-inputs");
    let a = flow.parameter_with_default("a", String::from("A_PW"));
    let b = flow.parameter_with_default("b", String::from("B_PW"));
    let sa = flow.add(SecretTask::from_input(a));
    let sb = flow.add(SecretTask::from_input(b));
    let both = flow.task("both", (sa, sb), |_, (x, y): (SecretValue, SecretValue)| {
        Ok(x.size() + y.size())
    });
    let run = flow.run_with(RunOptions::new().resolver(chain)).unwrap();
    assert_eq!(run.output(both), Some(13), "{run}");
    assert_eq!(run.task(sa).name, "secret_of_a");
    assert_eq!(run.task(sb).name, "secret_of_b");
}

/// Settings that ask for a server, read from a fixed environment.
pub(crate) fn server_settings(
    home: &std::path::Path,
) -> (sigil_core::Settings, sigil_core::ConfigFile) {
    let env = sigil_core::Environment::from_pairs([
        ("SIGIL_HOME", home.as_os_str().to_owned()),
        ("SIGIL__BACKEND", "server".into()),
    ]);
    sigil_core::Settings::load_from(&env).unwrap()
}

// sigil-flow knows nothing of servers: with no server client in the program, a chain that the
// settings want with a server is refused, and the error says where the client comes from.
#[test]
fn the_engine_alone_has_no_server_client() {
    let dir = tempfile::tempdir().unwrap();
    let (settings, file) = server_settings(dir.path());
    let e = sigil_core::global::resolver_for(&settings, &file)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no server client") && e.contains("`sigil` crate"),
        "{e}"
    );
}
