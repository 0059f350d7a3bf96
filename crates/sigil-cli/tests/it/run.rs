//! `sigil run`: secrets in the environment, masked output, exit codes, signals.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use sigil_test_support::process::{Bounded, COMMAND_LIMIT, Watchdog, wait_within};

use crate::{Sandbox, assert_code, assert_exit, stderr, stdout};

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
    assert_exit(&o, 3, "secret \"MISSING\" not found");
}

#[test]
fn environment_secrets_are_exported_too() {
    let sb = sandbox();
    let o = sb.run_env(
        &["run", "--", "sh", "-c", "echo \"$FROM_ENV\""],
        &[("SIGIL__CONTEXT__SECRETS__FROM_ENV", "env-9e1b")],
    );
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "***\n");
}

#[test]
fn names_that_collide_are_refused() {
    let sb = Sandbox::new();
    sb.write_config("[context.secrets]\n\"db/password\" = \"one1\"\n\"db.password\" = \"two2\"\n");
    let o = sb.run(&["run", "--", "true"]);
    assert_exit(
        &o,
        2,
        "secrets \"db.password\" and \"db/password\" both map to the environment variable db_password",
    );
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
    // a child that never answers is killed: its pipe closes and the reads below fail
    let _dog = Watchdog::new(child.id(), COMMAND_LIMIT);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let status = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(lines.next().unwrap().unwrap(), format!("caught {trap}"));
    let status = wait_within(&mut child, COMMAND_LIMIT).expect("sigil run ends with its command");
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
fn sighup_is_forwarded() {
    signal_is_forwarded("-HUP", "HUP");
}

#[test]
fn sigquit_is_forwarded() {
    signal_is_forwarded("-QUIT", "QUIT");
}

#[test]
fn death_by_signal_is_128_plus_n() {
    let sb = sandbox();
    let o = sb.run(&["run", "--", "sh", "-c", "kill -KILL $$"]);
    assert_code(&o, 128 + 9);
}

// A writer could store a secret named BASH_ENV: bash expands and sources it before the command.
#[test]
fn bash_env_payload_is_refused_and_nothing_runs() {
    let sb = Sandbox::new();
    let pwned = sb.home().join("pwned");
    sb.write_config(format!(
        "[context.secrets]\nBASH_ENV = \"$(touch {})\"\nDB = \"db-pw-1234\"\n",
        pwned.display()
    ));
    let o = sb.run(&["run", "--", "bash", "-c", "echo hi"]);
    assert_code(&o, 2);
    assert_eq!(stdout(&o), "", "the command must not run");
    assert!(!pwned.exists(), "the payload ran");
    let e = stderr(&o);
    assert!(
        e.contains("secret \"BASH_ENV\" would set BASH_ENV") && e.contains("--only"),
        "{e}"
    );
    // every other way a name takes over the child is refused the same way
    for name in [
        "LD_PRELOAD",
        "PYTHONSTARTUP",
        "SIGIL_API_KEY",
        "GIT_SSH_COMMAND",
        "PATH",
    ] {
        sb.write_config(format!("[context.secrets]\n{name} = \"x-1234\"\n"));
        let o = sb.run(&["run", "--", "true"]);
        assert_exit(&o, 2, &format!("secret \"{name}\" would set {name}"));
    }
}

#[test]
fn a_protected_name_passes_when_only_names_it_or_under_a_prefix() {
    let sb = Sandbox::new();
    sb.write_config("[context.secrets]\nGIT_AUTHOR_NAME = \"etl-bot\"\nPATH = \"pp-4711\"\n");
    let o = sb.run(&[
        "run",
        "--no-mask",
        "--only",
        "GIT_AUTHOR_NAME",
        "--",
        "sh",
        "-c",
        "echo \"$GIT_AUTHOR_NAME\"",
    ]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "etl-bot\n");
    let o = sb.run(&[
        "run",
        "--no-mask",
        "--prefix",
        "APP_",
        "--",
        "sh",
        "-c",
        "echo \"$APP_PATH $APP_GIT_AUTHOR_NAME\"",
    ]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "pp-4711 etl-bot\n");
    let o = sb.run(&["run", "--prefix", "1-", "--", "true"]);
    assert_exit(&o, 2, "--prefix \"1-\"");
}

#[test]
fn a_secret_does_not_silently_replace_a_variable() {
    let sb = Sandbox::new();
    sb.write_config("[context.secrets]\nTZ = \"Mars/Olympus\"\n");
    let o = sb.run_env(&["run", "--", "sh", "-c", "echo \"$TZ\""], &[("TZ", "UTC")]);
    assert_exit(
        &o,
        2,
        "secret \"TZ\" would replace TZ, which is already set",
    );
    assert_eq!(stdout(&o), "");
    let o = sb.run_env(
        &[
            "run",
            "--override",
            "--no-mask",
            "--",
            "sh",
            "-c",
            "echo \"$TZ\"",
        ],
        &[("TZ", "UTC")],
    );
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "Mars/Olympus\n");
}

// The runner's own key went to the child in clear.
#[test]
fn sigils_own_credentials_do_not_reach_the_child() {
    let sb = sandbox();
    let script = "echo \"key=${SIGIL_API_KEY:-unset} home=${SIGIL_HOME:-unset} \
                  env=${SIGIL__CONTEXT__SECRETS__EXTRA:-unset}\"";
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--only", "API_TOKEN"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "sh", "-c", script]);
        sb.cmd(&args)
            .env("SIGIL_API_KEY", "sk-admin-3b9f2e")
            .env("SIGIL_HOME", sb.home().join(".sigil"))
            .env("SIGIL__CONTEXT__SECRETS__EXTRA", "extra-77c1")
            .bounded()
    };
    let o = run(&[]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "key=unset home=unset env=unset\n");
    let o = run(&["--keep-sigil-env"]);
    assert_code(&o, 0);
    let home = sb.home().join(".sigil");
    assert_eq!(
        stdout(&o),
        format!("key=*** home={} env=***\n", home.display())
    );
}

/// What Python prints a value as: each encoding is masked in a real child's output.
#[test]
fn encodings_programs_print_are_masked() {
    let sb = Sandbox::new();
    sb.write_config("[context.secrets]\nPW = \"p@ss wörd/€+<&>\"\n");
    let script = r#"
import json, os, urllib.parse
v = os.environ["PW"]
print(json.dumps(v))
print(json.dumps(v, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))
print(urllib.parse.quote_plus(v))
print(urllib.parse.quote(v))
print(urllib.parse.quote(v, safe=":/?#[]@!$&'()*+,;="))
print(urllib.parse.urlencode({"pw": v}))
print(v.encode().hex())
print(v.encode().hex().upper())
"#;
    let o = sb.run(&["run", "--", "python3", "-c", script]);
    assert_code(&o, 0);
    assert_eq!(
        stdout(&o),
        "\"***\"\n\"***\"\n***\n***\n***\npw=***\n***\n***\n"
    );
}

#[test]
fn only_takes_globs_and_prefixes_and_upper_upper_cases() {
    let sb = Sandbox::new();
    sb.write_config(
        "[context.secrets]\n\"prod/db.password\" = \"prod-pw-1\"\n\"prod/api\" = \"prod-api-2\"\n\"dev/db.password\" = \"dev-pw-3\"\n",
    );
    let o = sb.run(&[
        "run",
        "--no-mask",
        "--only",
        "prod/*",
        "--upper",
        "--",
        "sh",
        "-c",
        "echo \"$PROD_DB_PASSWORD $PROD_API ${DEV_DB_PASSWORD:-unset} ${prod_api:-lower-unset}\"",
    ]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "prod-pw-1 prod-api-2 unset lower-unset\n");
    let o = sb.run(&[
        "run",
        "--no-mask",
        "--only",
        "dev/",
        "--",
        "sh",
        "-c",
        "echo \"$dev_db_password ${prod_api:-unset}\"",
    ]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "dev-pw-3 unset\n");
    // a pattern that matches nothing is a miss, not a run without secrets
    let o = sb.run(&["run", "--only", "staging/*", "--", "true"]);
    assert_exit(&o, 3, "staging/*");
}

/// As shells do: 127 when the command does not exist, 126 when it exists but cannot be run; the
/// message names the command.
#[test]
fn a_missing_command_exits_127_and_one_that_cannot_run_126() {
    let sb = sandbox();
    let missing = sb.home().join("no-such-command");
    let o = sb.run(&["run", "--", missing.to_str().unwrap()]);
    assert_exit(&o, 127, "no-such-command");
    let not_executable = sb.file("not-executable.sh", "#!/bin/sh\necho ran\n");
    let o = sb.run(&["run", "--", not_executable.to_str().unwrap()]);
    assert_exit(&o, 126, "not-executable.sh");
    assert!(o.stdout.is_empty(), "nothing ran");
}
