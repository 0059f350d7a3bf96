//! Integration tests of the `sigil` library: values through the whole chain, exactly as stored.

use std::sync::Arc;

use serde::Deserialize;
use sigil::source::{ContextSource, EnvSource, FileSource};
use sigil::{ConfigFile, Environment, Resolver, Secret, SecretValue};

mod day_one;

use sigil_test_support::AWKWARD;

fn chain(dir: &std::path::Path, env: Vec<(String, String)>) -> Arc<Resolver> {
    let file = ConfigFile::load(&dir.join("config.toml")).unwrap();
    Arc::new(Resolver::new(vec![
        Arc::new(ContextSource),
        Arc::new(EnvSource::fixed(Environment::from_pairs(env))),
        Arc::new(FileSource::new(&file)),
    ]))
}

#[test]
fn values_come_back_byte_identical_from_file_env_and_context() {
    let dir = tempfile::tempdir().unwrap();
    let editor = sigil_core::ConfigEditor::new(dir.path().join("config.toml"), false, 65536);
    for (i, v) in AWKWARD.iter().enumerate() {
        editor
            .set_secret(
                &format!("FILE_{i}").parse().unwrap(),
                &SecretValue::from(*v),
            )
            .unwrap();
    }
    let env = AWKWARD
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("SIGIL__CONTEXT__SECRETS__ENV_{i}"), (*v).to_owned()))
        .collect();
    let r = chain(dir.path(), env);
    let ctx: Vec<(String, SecretValue)> = AWKWARD
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("CTX_{i}"), SecretValue::from(*v)))
        .collect();
    sigil::context::with_secrets(ctx, || {
        for (i, v) in AWKWARD.iter().enumerate() {
            for prefix in ["FILE", "ENV", "CTX"] {
                let got = Secret::new(format!("{prefix}_{i}"))
                    .with_resolver(r.clone())
                    .get()
                    .unwrap();
                assert_eq!(
                    got.expose_str().map(str::as_bytes),
                    Some(v.as_bytes()),
                    "{prefix}_{i}"
                );
                let as_string: String = Secret::new(format!("{prefix}_{i}"))
                    .with_resolver(r.clone())
                    .get_as()
                    .unwrap();
                assert_eq!(as_string, *v);
            }
        }
    });
}

#[derive(Deserialize, Debug, PartialEq)]
struct AwsCreds {
    access_key: String,
    secret_key: String,
}

#[test]
fn get_as_decodes_json_held_in_strings_and_tables() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        r#"[context.secrets]
AS_STRING = '{"access_key": "AK", "secret_key": "SK"}'
AS_TABLE = { access_key = "AK", secret_key = "SK" }
PORT = "5432"
"#,
    )
    .unwrap();
    let r = chain(dir.path(), vec![]);
    let want = AwsCreds {
        access_key: "AK".into(),
        secret_key: "SK".into(),
    };
    for name in ["AS_STRING", "AS_TABLE"] {
        let got: AwsCreds = Secret::new(name).with_resolver(r.clone()).get_as().unwrap();
        assert_eq!(got, want, "{name}");
    }
    assert_eq!(
        Secret::new("PORT")
            .with_resolver(r.clone())
            .get_as::<u16>()
            .unwrap(),
        5432
    );
    assert_eq!(
        Secret::new("PORT")
            .with_resolver(r.clone())
            .get()
            .unwrap()
            .expose_str(),
        Some("5432")
    );
    let err = Secret::new("PORT")
        .with_resolver(r)
        .get_as::<AwsCreds>()
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"PORT\"") && !err.contains("5432"), "{err}");
}

#[test]
fn misses_and_bad_names_are_errors_that_name_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let r = chain(dir.path(), vec![]);
    let err = Secret::new("MYSECRET")
        .with_resolver(r.clone())
        .get()
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("secret \"MYSECRET\" not found (searched: context; env SIGIL__CONTEXT__SECRETS__MYSECRET; "), "{err}");
    assert!(err.contains("config.toml [context.secrets])"), "{err}");
    assert!(
        !Secret::new("MYSECRET")
            .with_resolver(r.clone())
            .exists()
            .unwrap()
    );
    let err = Secret::new("bad name")
        .with_resolver(r)
        .get()
        .unwrap_err()
        .to_string();
    assert!(err.contains("U+0020 at position 4"), "{err}");
}

#[test]
fn default_chain_can_be_replaced() {
    let file = ConfigFile::parse(
        "inline.toml".as_ref(),
        "[context.secrets]\nREPLACED = \"yes\"\n",
    )
    .unwrap();
    sigil::set_default_resolver(Some(Resolver::local(&file)));
    assert_eq!(
        Secret::new("REPLACED").get().unwrap().expose_str(),
        Some("yes")
    );
    assert!(Secret::new("REPLACED").exists().unwrap());
    sigil::set_default_resolver(None);
}

#[test]
fn secret_get_inside_a_task_is_masked_in_the_run() {
    use sigil::flow::{Flow, RunOptions};
    let file = ConfigFile::parse(
        "t.toml".as_ref(),
        "[context.secrets]\nINNER = \"inner-canary-3141\"\n",
    )
    .unwrap();
    let chain = Arc::new(Resolver::local(&file));
    let mut flow = Flow::new("inner");
    let c = chain.clone();
    flow.task("uses_secret_get", (), move |ctx, ()| {
        let v = Secret::new("INNER").with_resolver(c.clone()).get()?;
        ctx.info(format!("token={}", v.expose_str().unwrap()));
        Ok(())
    });
    let run = flow.run_with(RunOptions::new().resolver(chain)).unwrap();
    assert!(run.is_success());
    assert_eq!(run.logs()[0].message, "token=***");
}
