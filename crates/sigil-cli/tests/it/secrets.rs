//! get, set, list, delete, config show, completions.

use sigil_test_support::process::Bounded;

use crate::{Sandbox, assert_code, assert_exit, stderr, stdout};

use sigil_test_support::AWKWARD;

#[test]
fn values_come_back_byte_identical() {
    let sb = Sandbox::new();
    for (i, v) in AWKWARD.iter().enumerate() {
        let o = sb.run_stdin(
            &["secrets", "set", &format!("S{i}"), "--stdin"],
            v.as_bytes(),
        );
        assert_code(&o, 0);
        let o = sb.run(&["secrets", "get", &format!("S{i}")]);
        assert_code(&o, 0);
        assert_eq!(o.stdout, format!("{v}\n").into_bytes(), "value {v:?}");
        let o = sb.run(&["secrets", "get", &format!("S{i}"), "--json"]);
        let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            doc,
            serde_json::json!({"name": format!("S{i}"), "value": v, "source": "file", "version": null})
        );
    }
    // and through the environment, verbatim
    for (i, v) in AWKWARD.iter().enumerate() {
        let o = sb.run_env(
            &["secrets", "get", &format!("E{i}")],
            &[(&format!("SIGIL__CONTEXT__SECRETS__E{i}"), v)],
        );
        assert_code(&o, 0);
        assert_eq!(o.stdout, format!("{v}\n").into_bytes());
    }
    // positional value and --file give the same bytes
    let f = sb.file("value.txt", "from a file\n");
    assert_code(
        &sb.run(&["secrets", "set", "F", "--file", f.to_str().unwrap()]),
        0,
    );
    assert_eq!(sb.run(&["secrets", "get", "F"]).stdout, b"from a file\n\n");
    let o = sb.run(&["secrets", "set", "P", "positional $HOME"]);
    assert_code(&o, 0);
    assert!(stderr(&o).contains("visible in the process list"));
    assert_eq!(
        sb.run(&["secrets", "get", "P"]).stdout,
        b"positional $HOME\n"
    );
}

#[test]
fn json_values_are_validated_and_printed_compact() {
    let sb = Sandbox::new();
    assert_code(
        &sb.run_stdin(
            &["secrets", "set", "DB", "--stdin", "--json"],
            br#"{ "user": "etl", "port": 5432 }"#,
        ),
        0,
    );
    assert_eq!(
        stdout(&sb.run(&["secrets", "get", "DB"])),
        "{\"user\":\"etl\",\"port\":5432}\n"
    );
    let text = std::fs::read_to_string(sb.config()).unwrap();
    assert!(text.contains("DB = {"), "{text}");
    let before = std::fs::read(sb.config()).unwrap();
    let o = sb.run_stdin(
        &["secrets", "set", "BAD", "--stdin", "--json"],
        b"{\"user\": canary-json}",
    );
    assert_exit(
        &o,
        1,
        "secret \"BAD\" cannot be read as JSON: invalid JSON at line 1 column",
    );
    assert!(!stderr(&o).contains("canary"));
    assert_eq!(std::fs::read(sb.config()).unwrap(), before);
}

#[test]
fn env_beats_file_and_explain_names_the_places() {
    let sb = Sandbox::new();
    sb.write_config("[context.secrets]\nX = \"file\"\nY = \"file-y\"\n");
    let o = sb.run_env(
        &["secrets", "get", "X", "--explain"],
        &[("SIGIL__CONTEXT__SECRETS__X", "env-value")],
    );
    assert_code(&o, 0);
    let text = stdout(&o);
    assert!(
        text.starts_with("X: answered by env (env SIGIL__CONTEXT__SECRETS__X)\n"),
        "{text}"
    );
    assert!(
        !text.contains("env-value"),
        "--explain must not print the value"
    );
    let o = sb.run_env(
        &["secrets", "get", "X"],
        &[("SIGIL__CONTEXT__SECRETS__X", "env-value")],
    );
    assert_eq!(stdout(&o), "env-value\n");
    let o = sb.run(&["secrets", "get", "Y", "--explain"]);
    assert!(stdout(&o).contains("searched: context; env SIGIL__CONTEXT__SECRETS__Y; ~/.sigil/config.toml [context.secrets]"), "{}", stdout(&o));
}

#[test]
fn not_found_exits_3_and_lists_the_places() {
    let sb = Sandbox::new();
    let o = sb.run(&["secrets", "get", "MYSECRET"]);
    assert_code(&o, 3);
    assert_eq!(
        stderr(&o),
        "error: secret \"MYSECRET\" not found (searched: context; env SIGIL__CONTEXT__SECRETS__MYSECRET; ~/.sigil/config.toml [context.secrets])\n"
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn list_shows_names_and_sources_never_values() {
    let sb = Sandbox::new();
    sb.write_config("[context.secrets]\nA = \"canary-list-1\"\n\"prod/db\" = \"canary-list-2\"\n");
    let env = [
        ("SIGIL__CONTEXT__SECRETS__A", "canary-list-3"),
        ("SIGIL__CONTEXT__SECRETS__B", "canary-list-4"),
    ];
    let text = sb.ok_env(&["secrets", "list"], &env);
    assert_eq!(
        text,
        "NAME     SOURCE\nA        env (also in file)\nB        env\nprod/db  file\n"
    );
    let o = sb.run_env(
        &["secrets", "list", "--json"],
        &[("SIGIL__CONTEXT__SECRETS__B", "canary-list-4")],
    );
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        doc,
        serde_json::json!([
            {"name": "A", "source": "file", "shadowed": [], "version": null, "updated_at": null, "updated_by": null},
            {"name": "B", "source": "env", "shadowed": [], "version": null, "updated_at": null, "updated_by": null},
            {"name": "prod/db", "source": "file", "shadowed": [], "version": null, "updated_at": null, "updated_by": null},
        ])
    );
    assert!(!stdout(&o).contains("canary"));
    let o = sb.run(&["secrets", "list", "--prefix", "prod/"]);
    assert_eq!(stdout(&o), "NAME     SOURCE\nprod/db  file\n");
}

#[test]
fn delete_removes_only_that_secret_and_keeps_comments() {
    let sb = Sandbox::new();
    sb.write_config("# mine\n[context.secrets]\n# keep A\nA = \"1\" # note\n# drop B\nB = \"2\"\n");
    assert_code(&sb.run(&["secrets", "delete", "B"]), 0);
    assert_eq!(
        std::fs::read_to_string(sb.config()).unwrap(),
        "# mine\n[context.secrets]\n# keep A\nA = \"1\" # note\n"
    );
    let o = sb.run(&["secrets", "delete", "B"]);
    assert_exit(&o, 3, "secret \"B\" not found");
    let o = sb.run_env(
        &["secrets", "delete", "ONLY_ENV"],
        &[("SIGIL__CONTEXT__SECRETS__ONLY_ENV", "x")],
    );
    assert_exit(&o, 3, "set by env SIGIL__CONTEXT__SECRETS__ONLY_ENV");
}

#[test]
fn set_warns_about_values_too_short_to_mask() {
    let sb = Sandbox::new();
    let o = sb.run_stdin(&["secrets", "set", "PIN", "--stdin"], b"123");
    assert_exit(&o, 0, "shorter than 4 bytes (limits.min_mask_bytes)");
    let o = sb.run_stdin(&["secrets", "set", "LONG", "--stdin"], b"1234");
    assert!(!stderr(&o).contains("shorter"));
}

#[test]
fn set_without_a_value_off_a_terminal_is_a_usage_error() {
    let sb = Sandbox::new();
    let o = sb.run(&["secrets", "set", "X"]);
    assert_exit(&o, 2, "no value given for secret \"X\"");
    assert!(!sb.config().exists());
}

#[test]
fn config_show_redacts_values_and_names_origins() {
    let sb = Sandbox::new();
    sb.write_config("[server]\nteam = \"etl\"\n[context.secrets]\nA = \"canary-show\"\n");
    let url = ("SIGIL__SERVER__URL", "http://10.0.0.1:4300");
    let text = sb.ok_env(&["config", "show"], &[url, ("SIGIL_API_KEY", "canary-key")]);
    assert!(text.contains("server.team                = etl"), "{text}");
    assert!(text.contains("# env SIGIL__SERVER__URL"), "{text}");
    assert!(text.contains("A = \"***\""), "{text}");
    assert!(!text.contains("canary"), "{text}");
    let o = sb.run(&["config", "show", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        doc["settings"]["server.team"],
        serde_json::json!({"value": "etl", "origin": "file"})
    );
    assert_eq!(
        doc["secrets"][0],
        serde_json::json!({"name": "A", "source": "file"})
    );
    // values of their own types, not strings
    assert_eq!(
        doc["settings"]["server.use_local_secrets"],
        serde_json::json!({"value": true, "origin": "default"})
    );
    assert_eq!(doc["settings"]["limits.min_mask_bytes"]["value"], 4);
    assert_eq!(
        doc["api_key"],
        serde_json::json!({"set": false, "origin": "not set"})
    );
}

// After `sigil login`, `config show` said "api key not set" and the default URL, while the CLI
// used credentials.toml's key and URL.
#[test]
fn config_show_tells_what_login_set() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    let creds = sb.home().join(".sigil/credentials.toml");
    std::fs::create_dir_all(sb.home().join(".sigil")).unwrap();
    std::fs::write(
        &creds,
        "url = \"http://127.0.0.1:4999\"\nteam = \"etl\"\napi_key = \"canary-login-key\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = sb.run(&["config", "show"]);
    assert_code(&o, 0);
    let text = stdout(&o);
    let from = "# credentials ~/.sigil/credentials.toml";
    assert!(
        text.contains(&format!(
            "server.url                 = http://127.0.0.1:4999    {from}"
        )),
        "{text}"
    );
    assert!(text.contains("server.team                = etl"), "{text}");
    assert!(
        text.contains(&format!("api key      set (redacted)  {from}")),
        "{text}"
    );
    assert!(!text.contains("canary"), "{text}");
    let o = sb.run(&["config", "show", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        doc["settings"]["server.url"]["value"],
        "http://127.0.0.1:4999"
    );
    assert_eq!(
        doc["api_key"]["origin"],
        "credentials ~/.sigil/credentials.toml"
    );
    // an explicit setting still wins over credentials.toml, and says so
    let o = sb.run_env(
        &["config", "show"],
        &[
            ("SIGIL__SERVER__URL", "http://127.0.0.1:4300"),
            ("SIGIL_API_KEY", "canary-env-key"),
        ],
    );
    let text = stdout(&o);
    assert!(text.contains("# env SIGIL__SERVER__URL"), "{text}");
    assert!(
        text.contains("api key      set (redacted)  # env SIGIL_API_KEY"),
        "{text}"
    );
}

#[test]
fn completions_and_usage_errors() {
    let sb = Sandbox::new();
    let o = sb.run(&["completions", "bash"]);
    assert_code(&o, 0);
    assert!(
        stdout(&o).contains("_sigil()"),
        "bash completion defines _sigil"
    );
    assert_code(&sb.run(&["secrets", "frobnicate"]), 2);
    assert_code(&sb.run(&["completions", "tcsh"]), 2);
    assert_code(&sb.run(&["--help"]), 0);
}

#[test]
fn overrides_in_the_environment_are_checked() {
    let sb = Sandbox::new();
    let o = sb.run_env(&["secrets", "list"], &[("SIGIL__SERVR__URL", "x")]);
    assert_exit(
        &o,
        1,
        "invalid environment variable SIGIL__SERVR__URL: unknown setting",
    );
    let o = sb.run_env(
        &["secrets", "set", "X", "--stdin"],
        &[("SIGIL__BACKEND", "server")],
    );
    assert_exit(&o, 1, "no API key: set SIGIL_API_KEY or run `sigil login`");
    let o = crate::feed(
        sb.cmd(&["secrets", "set", "X", "--stdin", "--local"])
            .env("SIGIL__BACKEND", "server"),
        b"x-value",
    );
    assert_code(&o, 0);
}

#[test]
fn sigil_config_names_another_file() {
    let sb = Sandbox::new();
    let other = sb.home().join("elsewhere.toml");
    let o = crate::feed(
        sb.cmd(&["secrets", "set", "X", "--stdin"])
            .env("SIGIL_CONFIG", &other),
        b"x-value",
    );
    assert_code(&o, 0);
    assert!(
        std::fs::read_to_string(&other)
            .unwrap()
            .contains("X = \"x-value\"")
    );
    assert!(!sb.config().exists());
}

/// On a terminal, `set` without a value prompts and does not echo what is typed. Driven through a
/// real pseudo-terminal (tmux), waiting for the prompt before typing.
#[test]
fn set_prompts_without_echo_on_a_terminal() {
    let sb = Sandbox::new();
    let socket = format!("sigil-test-{}", std::process::id());
    let tmux = |args: &[&str]| {
        std::process::Command::new("tmux")
            .arg("-L")
            .arg(&socket)
            .args(args)
            .output()
            .expect("tmux is installed")
    };
    let shell = format!(
        "env -i PATH=\"$PATH\" HOME='{home}' '{bin}' secrets set EMPTY; echo EMPTY_EXIT=$?; \
         env -i PATH=\"$PATH\" HOME='{home}' '{bin}' secrets set PROMPTED; echo PROMPTED_EXIT=$?; sleep 60",
        home = sb.home().display(),
        bin = env!("CARGO_BIN_EXE_sigil")
    );
    assert!(
        tmux(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "120",
            "-y",
            "20",
            &shell
        ])
        .status
        .success()
    );
    let wait_for = |what: &str| -> String {
        for _ in 0..200 {
            let screen = String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", "t"]).stdout)
                .into_owned();
            if screen.contains(what) {
                return screen;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        tmux(&["kill-server"]);
        panic!("timed out waiting for {what:?}");
    };
    // an empty answer was stored as an empty secret; it is "no value given"
    wait_for("Value for EMPTY:");
    assert!(tmux(&["send-keys", "-t", "t", "Enter"]).status.success());
    let screen = wait_for("EMPTY_EXIT=");
    assert!(screen.contains("EMPTY_EXIT=2"), "{screen}");
    assert!(
        screen.contains("no value given for secret \"EMPTY\""),
        "{screen}"
    );
    wait_for("Value for PROMPTED:");
    assert!(
        tmux(&["send-keys", "-t", "t", "-l", "typed-canary-42"])
            .status
            .success()
    );
    assert!(tmux(&["send-keys", "-t", "t", "Enter"]).status.success());
    let screen = wait_for("PROMPTED_EXIT=");
    tmux(&["kill-server"]);
    assert!(screen.contains("PROMPTED_EXIT=0"), "{screen}");
    assert!(
        !screen.contains("typed-canary-42"),
        "the typed value was echoed:\n{screen}"
    );
    assert_eq!(
        stdout(&sb.run(&["secrets", "get", "PROMPTED"])),
        "typed-canary-42\n"
    );
    assert_code(&sb.run(&["secrets", "get", "EMPTY"]), 3);
}

// An empty value on stdin was stored.
#[test]
fn an_empty_value_on_stdin_is_no_value() {
    let sb = Sandbox::new();
    let o = sb.run_stdin(&["secrets", "set", "E", "--stdin"], b"");
    assert_exit(&o, 2, "no value given for secret \"E\": the value is empty");
    assert!(!sb.config().exists());
}

fn stat(path: &std::path::Path, format: &str) -> String {
    let o = std::process::Command::new("stat")
        .args(["-c", format])
        .arg(path)
        .bounded();
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o).trim_end().to_owned()
}

// A 0644 config.toml stayed 0644 after a secret was written into it, without a word; a symlinked
// one was replaced by a plain file.
#[test]
fn files_that_hold_secrets_stay_private_and_links_stay_links() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    sb.write_config("[context.secrets]\nA = \"aaaa-1\"\n");
    std::fs::set_permissions(sb.config(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = sb.run(&["secrets", "get", "A"]);
    assert_code(&o, 0);
    assert_eq!(
        stderr(&o)
            .matches("holds secrets and others can read it (mode 0644); run: chmod 600")
            .count(),
        1,
        "one warning: {}",
        stderr(&o)
    );
    let o = sb.run_stdin(&["secrets", "set", "B", "--stdin"], b"bbbb-2");
    assert_exit(&o, 0, "its mode was narrowed from 0644 to 0600");
    assert_eq!(stat(&sb.config(), "%a %F"), "600 regular file");
    let o = sb.run(&["secrets", "get", "A"]);
    assert_eq!(stderr(&o), "", "no warning once the file is private");

    // a dotfile manager's link: written through, kept
    let dotfiles = sb.home().join("dotfiles");
    std::fs::create_dir_all(&dotfiles).unwrap();
    std::fs::rename(sb.config(), dotfiles.join("sigil.toml")).unwrap();
    std::os::unix::fs::symlink("../dotfiles/sigil.toml", sb.config()).unwrap();
    let o = sb.run_stdin(&["secrets", "set", "C", "--stdin"], b"cccc-3");
    assert_code(&o, 0);
    assert_eq!(stat(&sb.config(), "%F"), "symbolic link");
    assert_eq!(
        stat(&dotfiles.join("sigil.toml"), "%a %F"),
        "600 regular file"
    );
    let o = sb.run(&["secrets", "get", "C"]);
    assert_eq!(stdout(&o), "cccc-3\n");
}

#[test]
fn get_reads_several_secrets_at_once() {
    let sb = Sandbox::new();
    sb.write_config("[context.secrets]\nA = \"a-value\"\nB = { user = \"u\" }\n");
    let o = sb.run_env(
        &["secrets", "get", "A", "B", "C"],
        &[("SIGIL__CONTEXT__SECRETS__C", "c-value")],
    );
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "a-value\n{\"user\":\"u\"}\nc-value\n");
    let o = sb.run_env(
        &["secrets", "get", "A", "C", "--json"],
        &[("SIGIL__CONTEXT__SECRETS__C", "c-value")],
    );
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        doc,
        serde_json::json!([
            {"name": "A", "value": "a-value", "source": "file", "version": null},
            {"name": "C", "value": "c-value", "source": "env", "version": null},
        ])
    );
    let o = sb.run(&["secrets", "get", "A", "NOPE"]);
    assert_code(&o, 3);
    assert_eq!(stdout(&o), "", "nothing is printed when one is missing");
    assert!(
        stderr(&o).contains("secret \"NOPE\" not found"),
        "{}",
        stderr(&o)
    );
}

// With backend = "server" and no API key, the error read `failed for secret ""`.
#[test]
fn a_chain_that_cannot_be_built_names_the_secret() {
    let sb = Sandbox::new();
    let o = sb.run_env(
        &["secrets", "get", "DB_PASSWORD"],
        &[("SIGIL__BACKEND", "server")],
    );
    assert_code(&o, 1);
    let e = stderr(&o);
    assert!(
        e.contains("failed for secret \"DB_PASSWORD\": no API key"),
        "{e}"
    );
    assert!(!e.contains("\"\""), "{e}");
}

// Output cut short by a reader that went away (`sigil … | head`) is not an error: exit 0 and
// nothing on stderr. The reader here is gone before sigil writes its first byte.
#[test]
fn a_closed_pipe_on_stdout_is_not_an_error() {
    let bin = env!("CARGO_BIN_EXE_sigil");
    let script = format!(
        "exec 3>&1; {{ sleep 0.3; '{bin}' completions bash 2>&4; echo \"code=$?\" >&3; }} 4>&2 | true"
    );
    let o = std::process::Command::new("bash")
        .args(["-c", &script])
        .bounded();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(out.trim(), "code=0", "stderr: {err}");
    assert!(err.is_empty(), "nothing said: {err}");
}
