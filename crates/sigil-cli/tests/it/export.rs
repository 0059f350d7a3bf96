//! `sigil export --format dotenv|json|shell`.

use sigil_test_support::process::Bounded;

use crate::{Sandbox, assert_code, stderr, stdout};

fn sandbox() -> Sandbox {
    let sb = Sandbox::new();
    sb.write_config(
        "[context.secrets]\n\"prod/db.password\" = \"it's $HOME \\\"q\\\"\\nline 2\"\n\"prod/api\" = \"api-77\"\n\"dev/x\" = \"dev-1\"\nCFG = { port = 5432 }\n",
    );
    sb
}

#[test]
fn dotenv_reads_back_exactly() {
    let sb = sandbox();
    let o = sb.run(&["export", "--format", "dotenv", "--only", "prod/", "--upper"]);
    assert_code(&o, 0);
    assert_eq!(
        stdout(&o),
        "PROD_API='api-77'\nPROD_DB_PASSWORD=\"it's \\$HOME \\\"q\\\"\\nline 2\"\n"
    );
    assert!(
        stderr(&o).contains("exported 2 secret(s)"),
        "{}",
        stderr(&o)
    );
    // what export wrote, import reads back byte for byte
    let other = Sandbox::new();
    let file = other.file("exported.env", &o.stdout);
    assert_code(
        &other.run(&["import", "--from", "dotenv", file.to_str().unwrap()]),
        0,
    );
    assert_eq!(
        stdout(&other.run(&["secrets", "get", "PROD_DB_PASSWORD"])),
        "it's $HOME \"q\"\nline 2\n"
    );
}

#[test]
fn shell_lines_eval_to_the_values() {
    let sb = sandbox();
    let bin = env!("CARGO_BIN_EXE_sigil");
    let o = sb.run(&[
        "run",
        "--only",
        "CFG",
        "--no-mask",
        "--",
        "sh",
        "-c",
        &format!(
            "eval \"$('{bin}' export --format shell --only 'prod/*' --prefix APP_)\" && \
             printf '%s|%s' \"$APP_prod_db_password\" \"$APP_prod_api\""
        ),
    ]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "it's $HOME \"q\"\nline 2|api-77");
}

#[test]
fn json_keeps_json_values() {
    let sb = sandbox();
    let o = sb.run(&["export", "--format", "json", "--only", "CFG,dev/x"]);
    assert_code(&o, 0);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        doc,
        serde_json::json!({"CFG": {"port": 5432}, "dev_x": "dev-1"})
    );
}

#[test]
fn a_terminal_gets_nothing_without_force() {
    let sb = sandbox();
    let bin = env!("CARGO_BIN_EXE_sigil");
    // `script` gives the command a pseudo-terminal as its stdout
    let run_on_tty = |extra: &str| {
        std::process::Command::new("script")
            .args([
                "-qec",
                &format!(
                    "env -i PATH=\"$PATH\" HOME='{}' '{bin}' export --format dotenv --only prod/api {extra}",
                    sb.home().display()
                ),
                "/dev/null",
            ])
            .stdin(std::process::Stdio::null())
            .bounded()
    };
    let o = run_on_tty("");
    assert_code(&o, 2);
    let screen = String::from_utf8_lossy(&o.stdout);
    assert!(
        screen.contains("refusing to print secrets to a terminal"),
        "{screen}"
    );
    assert!(!screen.contains("api-77"), "{screen}");
    let o = run_on_tty("--force");
    assert_code(&o, 0);
    assert!(String::from_utf8_lossy(&o.stdout).contains("prod_api='api-77'"));
}

#[test]
fn names_that_take_over_a_shell_are_refused() {
    let sb = Sandbox::new();
    sb.write_config("[context.secrets]\nBASH_ENV = \"$(touch x)\"\nOK = \"fine-1\"\n");
    let o = sb.run(&["export", "--format", "shell"]);
    assert_code(&o, 2);
    assert_eq!(stdout(&o), "");
    assert!(
        stderr(&o).contains("secret \"BASH_ENV\" would set BASH_ENV"),
        "{}",
        stderr(&o)
    );
}
