//! The three programs a data engineer writes on day one, from the README: an ETL flow with a
//! parameterised secret name, typed retrieval, and a test suite with overridden secrets that
//! does not depend on the machine it runs on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::Deserialize;
use sigil::flow::{Flow, RunOptions, SecretTask};
use sigil::{Secret, SecretValue, context};
use sigil_test_support::process::Bounded;

/// An ETL flow: the environment is a parameter, the secret's name is built from it, and the
/// insert task gets the credential as its argument. Each task runs once.
#[test]
fn etl_flow_with_a_parameterised_secret_name() {
    let inserts = Arc::new(AtomicU32::new(0));
    let mut flow = Flow::new("etl");
    let env = flow.parameter::<String>("env");
    let rows = flow.parameter_with_default("rows", 3u32);
    let secret_name = flow.task("secret_name", env, |_, env: String| {
        Ok(format!("{env}/warehouse/password"))
    });
    let password = flow.add(SecretTask::from_input(secret_name));
    let counter = inserts.clone();
    let inserted = flow.task(
        "insert_rows",
        (password, rows),
        move |ctx, (pw, rows): (SecretValue, u32)| {
            counter.fetch_add(1, Ordering::SeqCst);
            let pw = pw.expose_str().ok_or("the password is not a string")?;
            ctx.info(format!("connecting as etl:{pw}, inserting {rows} rows"));
            Ok(rows)
        },
    );
    let run = context::isolated([("prod/warehouse/password", "wh-pw-7f3a")], || {
        flow.run_with(RunOptions::new().parameter("env", "prod"))
    })
    .unwrap();
    assert!(run.is_success(), "{run}");
    assert_eq!(run.output(inserted), Some(3));
    assert_eq!(inserts.load(Ordering::SeqCst), 1);
    for task in ["secret_name", "secret_of_secret_name", "insert_rows"] {
        let report = run.tasks().iter().find(|t| t.name == task);
        assert_eq!(report.map(|t| t.attempts), Some(1), "{task}\n{run}");
    }
    assert_eq!(
        run.logs()[0].message,
        "connecting as etl:***, inserting 3 rows"
    );
}

#[derive(Deserialize, Debug, PartialEq)]
struct AwsCreds {
    access_key_id: String,
    secret_access_key: String,
    region: Option<String>,
}

/// Typed retrieval: a JSON document stored as a string (as Prefect users do) is decoded; a
/// string stays a string; a value of the wrong shape names the field.
#[test]
fn typed_retrieval() {
    context::isolated(
        [
            (
                "AWS_CREDENTIALS",
                SecretValue::from(r#"{"access_key_id": "AKIA1", "secret_access_key": "sk-9"}"#),
            ),
            ("PORT", SecretValue::from("5432")),
            ("ZIP", SecretValue::from("02134")),
            (
                "BROKEN",
                SecretValue::new(serde_json::json!({"access_key_id": 5})),
            ),
        ],
        || {
            let creds: AwsCreds = Secret::new("AWS_CREDENTIALS").get_as().unwrap();
            assert_eq!(
                creds,
                AwsCreds {
                    access_key_id: "AKIA1".into(),
                    secret_access_key: "sk-9".into(),
                    region: None,
                }
            );
            let port: u16 = Secret::new("PORT").get_as().unwrap();
            assert_eq!(port, 5432);
            let zip: String = Secret::new("ZIP").get_as().unwrap();
            assert_eq!(zip, "02134", "a string stays a string");
            let e = Secret::new("BROKEN")
                .get_as::<AwsCreds>()
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(
                    "\"BROKEN\" cannot be read as AwsCreds: at access_key_id: expected a string"
                ),
                "{e}"
            );
        },
    );
}

/// The body of an isolated test: it reads only what it set, and a secret it did not set is not
/// found, whatever the machine holds.
fn isolated_test_body() {
    context::isolated([("DB_PASSWORD", "test-pw-1")], || {
        assert_eq!(
            Secret::new("DB_PASSWORD").get().unwrap().expose_str(),
            Some("test-pw-1")
        );
        let e = Secret::new("FROM_MACHINE").get().unwrap_err();
        assert!(e.is_not_found(), "{e}");
        assert!(e.to_string().contains("searched: context (isolated"), "{e}");
        assert!(!Secret::new("FROM_MACHINE").exists().unwrap());
        // a flow run inside the scope is isolated too
        let mut flow = Flow::new("isolated");
        let s = flow.add(SecretTask::new("DB_PASSWORD"));
        let len = flow.task("len", s, |_, v: SecretValue| Ok(v.size()));
        let run = flow.run().unwrap();
        assert_eq!(run.output(len), Some(9), "{run}");
    });
}

/// A test that sets every secret it reads failed when the developer's config.toml had a syntax
/// error, a `SIGIL__…` variable a typo, or `SIGIL__BACKEND=server` no key; and a real
/// `SIGIL__CONTEXT__SECRETS__*` variable leaked into a test of a missing secret. The test runs
/// itself again in a child process whose machine is broken in all these ways at once.
#[test]
fn an_isolated_test_does_not_see_the_machine() {
    match std::env::var("SIGIL_DAY_ONE_CHILD").as_deref() {
        Ok("isolated") => return isolated_test_body(),
        Ok("plain") => return plain_scope_body(),
        _ => {}
    }
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".sigil")).unwrap();
    std::fs::write(
        home.path().join(".sigil/config.toml"),
        "[context.secrets\nBROKEN = \n",
    )
    .unwrap();
    for hostile in [
        vec![("SIGIL_HOME", home.path().join(".sigil").into_os_string())],
        vec![("SIGIL__BAKEND", "server".into())],
        vec![("SIGIL__BACKEND", "server".into())],
        vec![(
            "SIGIL__CONTEXT__SECRETS__FROM_MACHINE",
            "machine-value".into(),
        )],
    ] {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        child
            .args([
                "--exact",
                "day_one::an_isolated_test_does_not_see_the_machine",
                "--nocapture",
            ])
            .env("SIGIL_DAY_ONE_CHILD", "isolated")
            .env("HOME", home.path())
            .env_remove("SIGIL_API_KEY");
        for (k, v) in &hostile {
            child.env(k, v);
        }
        let o = child.bounded();
        assert!(
            o.status.success(),
            "{hostile:?}\n{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("1 passed"),
            "the child ran the test"
        );
    }
    // and without isolation the same machine does fail a lookup: the hostility is real
    let o = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "day_one::an_isolated_test_does_not_see_the_machine",
        ])
        .env("SIGIL_DAY_ONE_CHILD", "plain")
        .env("SIGIL_HOME", home.path().join(".sigil"))
        .bounded();
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("1 passed"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// With a broken config file, a plain scope still builds the default chain, which fails.
fn plain_scope_body() {
    context::with_secrets([("DB_PASSWORD", "test-pw-1")], || {
        let e = Secret::new("DB_PASSWORD").get().unwrap_err().to_string();
        assert!(e.contains("config.toml"), "{e}");
    });
}

// A flow made through `sigil` plugs the server source into the process-wide chain: the chain
// that settings with `backend = "server"` ask for is built with it (here it stops at the missing
// API key, or succeeds where `sigil login` left credentials) instead of lacking a server client.
#[test]
fn a_flow_made_through_sigil_has_the_server_client() {
    let _flow = sigil::flow::Flow::new("plugged");
    let dir = tempfile::tempdir().unwrap();
    let env = sigil::Environment::from_pairs([
        ("SIGIL_HOME", dir.path().as_os_str().to_owned()),
        ("SIGIL__BACKEND", "server".into()),
    ]);
    let (settings, file) = sigil::Settings::load_from(&env).unwrap();
    match sigil_core::global::resolver_for(&settings, &file) {
        Ok(chain) => assert!(
            chain.sources().len() > 3,
            "a server source after the local ones"
        ),
        Err(e) => {
            let e = e.to_string();
            assert!(
                !e.contains("no server client") && e.contains("API key"),
                "{e}"
            );
        }
    }
}
