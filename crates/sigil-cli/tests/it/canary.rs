//! A canary secret: every command runs with trace logging and the canary appears nowhere in
//! stderr, the logs or any file but the config file — except where the user asked for the value.

use crate::{Sandbox, stderr, stdout};

const CANARY: &str = "canary-7f3e9b2d41";

#[test]
fn the_canary_never_leaks() {
    let sb = Sandbox::new();
    sb.write_config(format!(
        "[context.secrets]\nFILE_CANARY = \"{CANARY}\"\nOTHER = \"other-value\"\n"
    ));
    let prefect = sb.file(
        "prefect.toml",
        format!("[context.secrets]\nPREFECT_CANARY = \"{CANARY}\"\n"),
    );
    let dotenv = sb.file("x.env", format!("DOTENV_CANARY={CANARY}\n"));
    let p = prefect.to_str().unwrap();
    let d = dotenv.to_str().unwrap();
    let big = format!("{CANARY}{}", "x".repeat(70_000));

    // (args, stdin, may stdout show the canary?)
    let cases: Vec<(Vec<&str>, Vec<u8>, bool)> = vec![
        (vec!["secrets", "get", "FILE_CANARY"], vec![], true),
        (vec!["secrets", "get", "ENV_CANARY", "--json"], vec![], true),
        (
            vec!["secrets", "get", "FILE_CANARY", "--explain"],
            vec![],
            false,
        ),
        (vec!["secrets", "get", "MISSING"], vec![], false),
        (
            vec!["secrets", "set", "SET_CANARY", "--stdin"],
            CANARY.as_bytes().to_vec(),
            false,
        ),
        (vec!["secrets", "set", "ARGV_CANARY", CANARY], vec![], false),
        (
            vec!["secrets", "set", "JSON_CANARY", "--stdin", "--json"],
            format!("{{\"k\": \"{CANARY}\"}}").into_bytes(),
            false,
        ),
        (
            vec!["secrets", "set", "BAD_JSON", "--stdin", "--json"],
            format!("{{\"k\": {CANARY}}}").into_bytes(),
            false,
        ),
        (
            vec!["secrets", "set", "TOO_BIG", "--stdin"],
            big.clone().into_bytes(),
            false,
        ),
        (vec!["secrets", "list"], vec![], false),
        (vec!["secrets", "list", "--json"], vec![], false),
        (
            vec![
                "run",
                "--",
                "sh",
                "-c",
                "echo $FILE_CANARY; echo $ENV_CANARY >&2",
            ],
            vec![],
            false,
        ),
        (
            vec!["run", "--no-mask", "--", "sh", "-c", "echo $FILE_CANARY"],
            vec![],
            true,
        ),
        (vec!["import", "--from", "prefect", p], vec![], false),
        (vec!["import", "--from", "dotenv", d], vec![], false),
        (
            vec!["import", "--from", "dotenv", d, "--dry-run"],
            vec![],
            false,
        ),
        (vec!["config", "show"], vec![], false),
        (vec!["config", "show", "--json"], vec![], false),
        (vec!["completions", "zsh"], vec![], false),
        (vec!["secrets", "delete", "SET_CANARY"], vec![], false),
    ];
    for (args, input, stdout_may_show) in cases {
        let mut cmd = sb.cmd(&args);
        cmd.env("SIGIL_LOG", "trace")
            .env("SIGIL__CONTEXT__SECRETS__ENV_CANARY", CANARY);
        let o = crate::feed(&mut cmd, &input);
        let (out, err) = (stdout(&o), stderr(&o));
        assert!(
            !err.contains(CANARY),
            "{args:?} leaked the canary on stderr:\n{err}"
        );
        assert!(
            !err.contains("canary-7f3e"),
            "{args:?} leaked part of the canary on stderr:\n{err}"
        );
        if stdout_may_show {
            assert!(
                out.contains(CANARY),
                "{args:?} should print the value: {out}"
            );
        } else {
            assert!(
                !out.contains(CANARY),
                "{args:?} leaked the canary on stdout:\n{out}"
            );
        }
        if args[0] != "completions" && !args.contains(&"MISSING") {
            assert!(
                err.contains("DEBUG") || err.contains("TRACE"),
                "{args:?}: trace logging was on: {err}"
            );
        }
    }
    // no file but the config file (and the inputs we wrote) holds the canary
    for entry in std::fs::read_dir(sb.home().join(".sigil")).unwrap() {
        let p = entry.unwrap().path();
        if p != sb.config() {
            let bytes = std::fs::read(&p).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(CANARY),
                "{} holds the canary",
                p.display()
            );
        }
    }
}
