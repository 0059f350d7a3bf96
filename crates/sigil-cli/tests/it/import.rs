//! `sigil import --from prefect|dotenv`.

use crate::{Sandbox, assert_code, assert_exit, stderr, stdout};

#[test]
fn prefect_config_is_imported_verbatim() {
    let sb = Sandbox::new();
    let prefect = sb.file(
        "prefect-config.toml",
        r#"debug = false
[logging]
level = "INFO"

[context.secrets]
MYSECRET = "MY SECRET VALUE"
INTERPOLATED = "${context.other}"
HOME_REF = "$HOME/x"
NUMBER_STRING = "42"
AWS_CREDENTIALS = { ACCESS_KEY = "AK", SECRET_ACCESS_KEY = "SAK" }
"#,
    );
    let import = |more: &[&str]| {
        let mut args = vec!["import", "--from", "prefect", prefect.to_str().unwrap()];
        args.extend(more);
        sb.run(&args)
    };
    let o = import(&[]);
    assert_exit(&o, 0, "imported 5 secret(s)");
    let get = |n: &str| stdout(&sb.run(&["secrets", "get", n]));
    assert_eq!(get("MYSECRET"), "MY SECRET VALUE\n");
    assert_eq!(get("INTERPOLATED"), "${context.other}\n");
    assert_eq!(get("HOME_REF"), "$HOME/x\n");
    assert_eq!(get("NUMBER_STRING"), "42\n");
    assert_eq!(
        get("AWS_CREDENTIALS"),
        "{\"ACCESS_KEY\":\"AK\",\"SECRET_ACCESS_KEY\":\"SAK\"}\n"
    );

    // a second import keeps what exists unless asked to overwrite
    std::fs::write(
        &prefect,
        "[context.secrets]\nMYSECRET = \"changed\"\nNEW = \"n\"\n",
    )
    .unwrap();
    let o = import(&["--dry-run"]);
    assert_eq!(stdout(&o), "MYSECRET\tkeep existing\nNEW\tnew\n");
    // `import --dry-run` had no --json
    let o = import(&["--dry-run", "--json"]);
    assert_code(&o, 0);
    assert_eq!(
        stdout(&o),
        "[{\"name\":\"MYSECRET\",\"action\":\"keep\"},{\"name\":\"NEW\",\"action\":\"new\"}]\n"
    );
    let o = import(&[]);
    assert!(
        stderr(&o).contains("kept 1 existing secret(s) (use --overwrite to replace): MYSECRET"),
        "{}",
        stderr(&o)
    );
    assert_eq!(get("MYSECRET"), "MY SECRET VALUE\n");
    assert_eq!(get("NEW"), "n\n");
    assert_code(&import(&["--overwrite"]), 0);
    assert_eq!(get("MYSECRET"), "changed\n");
}

#[test]
fn dotenv_is_imported_without_expansion() {
    let sb = Sandbox::new();
    let env = sb.file(
        ".env",
        "# db\nexport DB_URL=postgres://u:$PASS@h/db\nQUOTED=\"a\\nb\"\nLITERAL='${x}'\n",
    );
    assert_code(
        &sb.run(&["import", "--from", "dotenv", env.to_str().unwrap()]),
        0,
    );
    assert_eq!(
        stdout(&sb.run(&["secrets", "get", "DB_URL"])),
        "postgres://u:$PASS@h/db\n"
    );
    assert_eq!(stdout(&sb.run(&["secrets", "get", "QUOTED"])), "a\nb\n");
    assert_eq!(stdout(&sb.run(&["secrets", "get", "LITERAL"])), "${x}\n");
}

#[test]
fn bad_import_files_change_nothing() {
    let sb = Sandbox::new();
    sb.write_config("[context.secrets]\nA = \"1\"\n");
    let before = std::fs::read(sb.config()).unwrap();
    let env = sb.file("bad.env", "GOOD=1\nBAD LINE\nWORSE\n");
    let o = sb.run(&["import", "--from", "dotenv", env.to_str().unwrap()]);
    assert_code(&o, 1);
    // every bad line at once
    assert!(
        stderr(&o).contains("2 errors:")
            && stderr(&o).contains("bad.env at 2:5: expected '=' after \"BAD\"")
            && stderr(&o).contains("bad.env at 3:6: expected '=' after \"WORSE\""),
        "{}",
        stderr(&o)
    );
    let prefect = sb.file("p.toml", "[logging]\nlevel = 1\n");
    let o = sb.run(&["import", "--from", "prefect", prefect.to_str().unwrap()]);
    assert_exit(&o, 1, "no [context.secrets] table");
    let o = sb.run(&["import", "--from", "prefect", "/no/such.toml"]);
    assert_exit(&o, 1, "cannot read /no/such.toml");
    assert_eq!(std::fs::read(sb.config()).unwrap(), before);
}
