//! `secrets edit`, `rollback`, `diff` and `copy`.

use sigil_test_support::process::Bounded;

use crate::server::{ADMIN, RunningServer, run_env, server_env};
use crate::{Sandbox, assert_code, assert_exit, stderr, stdout};

/// An editor that records the file's mode and path, then writes `$NEW_VALUE` (or appends a
/// newline to show what an editor does at the end of a file).
fn editor(sb: &Sandbox) -> String {
    let path = sb.file(
        "editor.sh",
        "#!/bin/sh\nstat -c %a \"$1\" > \"$HOME/edit-mode\"\necho \"$1\" > \"$HOME/edit-path\"\n\
         cp \"$1\" \"$HOME/edit-before\"\nprintf '%s\\n' \"$NEW_VALUE\" > \"$1\"\n",
    );
    std::process::Command::new("chmod")
        .args(["+x", path.to_str().unwrap()])
        .status()
        .unwrap();
    path.display().to_string()
}

#[test]
fn edit_a_local_secret_in_a_private_file() {
    let sb = Sandbox::new();
    sb.write_config("[context.secrets]\nTOKEN = \"old-token\"\nCFG = { port = 1 }\n");
    let ed = editor(&sb);
    let o = sb.run_env(
        &["secrets", "edit", "TOKEN"],
        &[("EDITOR", &ed), ("NEW_VALUE", "new-token")],
    );
    assert_code(&o, 0);
    let home = sb.home();
    assert_eq!(
        std::fs::read_to_string(home.join("edit-mode")).unwrap(),
        "600\n"
    );
    assert_eq!(
        std::fs::read_to_string(home.join("edit-before")).unwrap(),
        "old-token"
    );
    let edited = std::fs::read_to_string(home.join("edit-path")).unwrap();
    assert!(
        !std::path::Path::new(edited.trim_end()).exists(),
        "the file is removed"
    );
    // the editor's final newline is not part of a value that had none
    assert_eq!(stdout(&sb.run(&["secrets", "get", "TOKEN"])), "new-token\n");
    // JSON is edited as JSON, and checked
    let o = sb.run_env(
        &["secrets", "edit", "CFG"],
        &[("EDITOR", &ed), ("NEW_VALUE", "{\"port\": 2")],
    );
    assert_code(&o, 1);
    assert!(stderr(&o).contains("invalid JSON") && stderr(&o).contains("nothing was changed"));
    assert_eq!(
        stdout(&sb.run(&["secrets", "get", "CFG"])),
        "{\"port\":1}\n"
    );
    let o = sb.run_env(
        &["secrets", "edit", "CFG"],
        &[("EDITOR", &ed), ("NEW_VALUE", "{\"port\": 2}")],
    );
    assert_code(&o, 0);
    assert_eq!(
        stdout(&sb.run(&["secrets", "get", "CFG"])),
        "{\"port\":2}\n"
    );
    // an editor that fails changes nothing
    let o = sb.run_env(&["secrets", "edit", "TOKEN"], &[("EDITOR", "false")]);
    assert_exit(&o, 1, "nothing was changed");
    assert_eq!(stdout(&sb.run(&["secrets", "get", "TOKEN"])), "new-token\n");
    let leftovers: Vec<_> = std::fs::read_dir(home.join(".sigil"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".sigil-edit-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn edit_rollback_diff_and_copy_on_the_server() {
    let sb = Sandbox::new();
    let srv = RunningServer::start(&sb, &[], &[]);
    let env = server_env(&srv, &[]);
    let c = srv.client(ADMIN);
    c.put_secret(
        "dev/db",
        &serde_json::json!({"user": "u", "password": "p1"}),
        None,
    )
    .unwrap();
    c.put_secret("dev/api", &serde_json::json!("api-1"), None)
        .unwrap();
    let ed = editor(&sb);
    let mut cmd = sb.cmd(&["secrets", "edit", "dev/api"]);
    for (k, v) in &env {
        cmd.env(k, v);
    }
    let o = cmd.env("EDITOR", &ed).env("NEW_VALUE", "api-2").bounded();
    assert_code(&o, 0);
    let read = c.get_secret("dev/api", None).unwrap().unwrap();
    assert_eq!((read.version, read.value), (2, serde_json::json!("api-2")));

    // rollback: a new version equal to an old one
    let o = run_env(&sb, &["secrets", "rollback", "dev/api", "--to", "1"], &env);
    assert_exit(&o, 0, "rolled back to version 1 as version 3");
    let read = c.get_secret("dev/api", None).unwrap().unwrap();
    assert_eq!((read.version, read.value), (3, serde_json::json!("api-1")));
    assert_code(
        &run_env(&sb, &["secrets", "rollback", "dev/api", "--to", "9"], &env),
        3,
    );

    // two versions: which keys changed, never the values unless --show
    c.put_secret(
        "dev/db",
        &serde_json::json!({"user": "u", "password": "p2", "port": 5}),
        None,
    )
    .unwrap();
    let o = run_env(
        &sb,
        &["secrets", "diff", "dev/db", "--versions", "1,2"],
        &env,
    );
    assert_code(&o, 0);
    assert_eq!(
        stdout(&o),
        "dev/db: version 1 and version 2: differs\n  keys added: port\n  keys changed: password\n"
    );
    let o = run_env(
        &sb,
        &["secrets", "diff", "dev/db", "--versions", "1,2", "--show"],
        &env,
    );
    assert!(stdout(&o).contains("\"password\":\"p2\""), "{}", stdout(&o));

    // copy a prefix to another: dry run, then for real; existing names are kept
    c.put_secret("prod/api", &serde_json::json!("prod-api"), None)
        .unwrap();
    let o = run_env(
        &sb,
        &[
            "secrets",
            "copy",
            "--prefix",
            "dev/",
            "--to",
            "prod/",
            "--dry-run",
        ],
        &env,
    );
    assert_code(&o, 0);
    assert_eq!(
        stdout(&o),
        "dev/api -> prod/api\tkeep\ndev/db -> prod/db\tnew\n"
    );
    assert!(
        c.get_secret("prod/db", None).unwrap().is_none(),
        "a dry run changes nothing"
    );
    let o = run_env(
        &sb,
        &["secrets", "copy", "--prefix", "dev/", "--to", "prod/"],
        &env,
    );
    assert_exit(&o, 0, "copied 1 secret(s)");
    assert_eq!(
        c.get_secret("prod/db", None).unwrap().unwrap().value["password"],
        "p2"
    );
    assert_eq!(
        c.get_secret("prod/api", None).unwrap().unwrap().value,
        "prod-api"
    );
    // one secret to another team (the bootstrap admin may write there)
    let o = run_env(&sb, &["teams", "create", "staging"], &env);
    assert_code(&o, 0);
    let staging_key = stdout(&o).trim().to_owned();
    let mut cmd = sb.cmd(&["secrets", "copy", "dev/api", "--to-team", "staging"]);
    for (k, v) in &env {
        cmd.env(k, v);
    }
    let o = cmd.env("SIGIL_TO_API_KEY", &staging_key).bounded();
    assert_code(&o, 0);
    let staging = sigil_client::Client::new(&srv.url, "staging", &staging_key).unwrap();
    assert_eq!(
        staging.get_secret("dev/api", None).unwrap().unwrap().value,
        "api-1"
    );

    // local against server: names and states only
    sb.write_config("[context.secrets]\n\"dev/api\" = \"api-1\"\n\"dev/db\" = \"other\"\n\"dev/local\" = \"l-1\"\n");
    let o = run_env(&sb, &["secrets", "diff", "--prefix", "dev/"], &env);
    assert_code(&o, 0);
    assert_eq!(
        stdout(&o),
        "NAME       LOCAL / SERVER\ndev/api    same\ndev/db     differs\ndev/local  local only\n"
    );
    assert!(!stdout(&o).contains("p2") && !stdout(&o).contains("other"));
    let o = run_env(
        &sb,
        &["secrets", "diff", "--prefix", "dev/", "--json", "--show"],
        &env,
    );
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(doc[1]["state"], "differs");
    assert_eq!(doc[1]["local"], "other");
    assert_eq!(doc[2]["server"], serde_json::Value::Null);
}

#[test]
fn copy_within_the_local_file() {
    let sb = Sandbox::new();
    sb.write_config(
        "[context.secrets]\n\"dev/a\" = \"a-1\"\n\"dev/b\" = \"b-1\"\n\"prod/b\" = \"keep-me\"\n",
    );
    let o = sb.run(&["secrets", "copy", "--prefix", "dev/", "--to", "prod/"]);
    assert_code(&o, 0);
    assert_eq!(stdout(&sb.run(&["secrets", "get", "prod/a"])), "a-1\n");
    assert_eq!(stdout(&sb.run(&["secrets", "get", "prod/b"])), "keep-me\n");
    let o = sb.run(&["secrets", "copy", "dev/a", "stage/a"]);
    assert_code(&o, 0);
    assert_eq!(stdout(&sb.run(&["secrets", "get", "stage/a"])), "a-1\n");
    let o = sb.run(&["secrets", "copy", "dev/a"]);
    assert_code(&o, 2);
}
