//! `sigil run`: secrets in the environment, masked output, exit codes, signals.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::{Sandbox, assert_code, stderr, stdout};

fn sandbox() -> Sandbox {
    let sb = Sandbox::new();
    sb.write_config("[context.secrets]\nAPI_TOKEN = \"tok-5f2a9c\"\n\"prod/db-main.pw\" = \"pw-77d1e0\"\nSHORT = \"ab\"\n");
    sb
}

#[test]
fn secrets_become_variables_and_output_is_masked() {
    let sb = sandbox();
    let script = "echo \"token=$API_TOKEN db=$prod_db_main_pw short=$SHORT\"; \
                  printf %s \"$API_TOKEN\" | base64; \
                  echo \"to stderr $prod_db_main_pw\" >&2; exit 7";
    let o = sb.run(&["run", "--", "sh", "-c", script]);
    assert_code(&o, 7);
    assert_eq!(stdout(&o), "token=*** db=*** short=ab\n***\n");
    assert_eq!(stderr(&o), "to stderr ***\n");
}

#[test]
fn no_mask_and_only() {
    let sb = sandbox();
    let o = sb.run(&[
        "run",
        "--no-mask",
        "--only",
        "API_TOKEN",
        "--",
        "sh",
        "-c",
        "echo \"$API_TOKEN|${prod_db_main_pw:-unset}\"",
    ]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "tok-5f2a9c|unset\n");
    let o = sb.run(&["run", "--only", "MISSING", "--", "true"]);
    assert_code(&o, 3);
    assert!(
        stderr(&o).contains("secret \"MISSING\" not found"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn environment_secrets_are_exported_too() {
    let sb = sandbox();
    let o = sb
        .cmd(&["run", "--", "sh", "-c", "echo \"$FROM_ENV\""])
        .env("SIGIL__CONTEXT__SECRETS__FROM_ENV", "env-9e1b")
        .output()
        .unwrap();
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "***\n");
}

#[test]
fn names_that_collide_are_refused() {
    let sb = Sandbox::new();
    sb.write_config("[context.secrets]\n\"db/password\" = \"one1\"\n\"db.password\" = \"two2\"\n");
    let o = sb.run(&["run", "--", "true"]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("secrets \"db.password\" and \"db/password\" both map to the environment variable db_password"), "{}", stderr(&o));
}

#[test]
fn a_secret_split_across_writes_is_still_masked() {
    let sb = sandbox();
    let o = sb.run(&[
        "run",
        "--",
        "sh",
        "-c",
        "printf 'x tok-5f'; sleep 0.3; printf '2a9c y\\n'",
    ]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "x *** y\n");
}

fn signal_is_forwarded(signal: &str, trap: &str) {
    let sb = sandbox();
    let script = format!(
        "trap 'echo caught {trap}; exit 42' {trap}; echo ready; while :; do sleep 0.05; done"
    );
    let mut child = sb
        .cmd(&["run", "--", "sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let status = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(lines.next().unwrap().unwrap(), format!("caught {trap}"));
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(42),
        "sigil passes on the command's exit code"
    );
}

#[test]
fn sigterm_is_forwarded() {
    signal_is_forwarded("-TERM", "TERM");
}

#[test]
fn sigint_is_forwarded() {
    signal_is_forwarded("-INT", "INT");
}

#[test]
fn death_by_signal_is_128_plus_n() {
    let sb = sandbox();
    let o = sb.run(&["run", "--", "sh", "-c", "kill -KILL $$"]);
    assert_code(&o, 128 + 9);
}
