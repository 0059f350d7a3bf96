//! Bad input: a clear error naming the thing, a non-zero exit, and every file byte-identical.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::{Sandbox, assert_code, stderr};

fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                out.insert(p.clone(), b"<dir>".to_vec());
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Runs `args` (stdin `input`), expects `code` and a stderr containing every one of `wants`, and
/// checks that no file in the sandbox changed.
#[track_caller]
fn refused(
    sb: &Sandbox,
    args: &[&str],
    input: &[u8],
    env: &[(&str, &str)],
    code: i32,
    wants: &[&str],
) {
    let before = snapshot(sb.home());
    let mut cmd = sb.cmd(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = crate::feed(&mut cmd, input);
    assert_code(&o, code);
    let err = stderr(&o);
    for want in wants {
        assert!(
            err.contains(want),
            "{args:?}: stderr lacks {want:?}:\n{err}"
        );
    }
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(snapshot(sb.home()), before, "{args:?} changed a file");
}

const GOOD: &str = "# keep me\n[context.secrets]\nA = \"1\" # and me\n";

#[test]
fn invalid_names() {
    let sb = Sandbox::new();
    sb.write_config(GOOD);
    let long = "a".repeat(257);
    let cases: [(&str, &str); 6] = [
        ("bad name", "U+0020 at position 4"),
        ("a//b", "'/' at position 3"),
        ("x;DROP TABLE secrets", "';' at position 2"),
        ("a/../b", "segment \"..\" is not allowed"),
        ("a%2Fb", "'%' at position 2"),
        (&long, "at most 256 bytes, this one is 257"),
    ];
    for (name, want) in cases {
        for args in [
            vec!["secrets", "get", name],
            vec!["secrets", "set", name, "--stdin"],
            vec!["secrets", "delete", name],
        ] {
            refused(&sb, &args, b"v", &[], 1, &["invalid secret name", want]);
        }
    }
    refused(
        &sb,
        &["run", "--only", "ok,no good", "--", "true"],
        b"",
        &[],
        1,
        &["\"no good\""],
    );
}

#[test]
fn broken_config_files_are_reported_and_never_rewritten() {
    let cases: [(&[u8], &[&str]); 5] = [
        (
            b"[context.secrets]\nA = \"1\"\nB = = 2\n",
            &["failed to parse ~/.sigil/config.toml at 3:5"],
        ),
        (
            b"[context.secrets]\nA = \"1\"\nA = \"2\"\n",
            &["~/.sigil/config.toml at 3:1", "duplicate key"],
        ),
        (
            b"[context]\nsecrets = [\"x\"]\n",
            &[
                "invalid setting in ~/.sigil/config.toml at 2:1: `context.secrets` must be a table, not array",
            ],
        ),
        (
            b"[context.secrets]\nA = \"caf\xe9\"\n",
            &["~/.sigil/config.toml at 2:9: invalid UTF-8 (byte 0xe9)"],
        ),
        (
            b"backend = \"cloud\"\n",
            &["~/.sigil/config.toml at 1:1: `backend` must be \"local\" or \"server\""],
        ),
    ];
    for (text, wants) in cases {
        let sb = Sandbox::new();
        sb.write_config(text);
        for args in [
            vec!["secrets", "set", "NEW", "--stdin"],
            vec!["secrets", "get", "A"],
            vec!["secrets", "delete", "A"],
            vec!["secrets", "list"],
            vec!["run", "--", "true"],
            vec!["config", "show"],
        ] {
            refused(&sb, &args, b"value", &[], 1, wants);
        }
    }
}

#[test]
fn unreadable_file_and_missing_directory() {
    let sb = Sandbox::new();
    // a directory where the file should be cannot be read (root reads any file, so this is
    // the unreadable case that holds for every user)
    std::fs::create_dir_all(sb.config()).unwrap();
    refused(
        &sb,
        &["secrets", "get", "A"],
        b"",
        &[],
        1,
        &["cannot read ~/.sigil/config.toml"],
    );
    refused(
        &sb,
        &["secrets", "set", "A", "--stdin"],
        b"v",
        &[],
        1,
        &["cannot read ~/.sigil/config.toml"],
    );

    let sb = Sandbox::new();
    let missing = sb.home().join("no/such/dir/config.toml");
    refused(
        &sb,
        &["secrets", "set", "A", "--stdin"],
        b"v",
        &[("SIGIL_CONFIG", missing.to_str().unwrap())],
        1,
        &[
            "cannot write to directory ~/no/such/dir",
            "no such directory",
        ],
    );
    assert!(!sb.home().join("no").exists());
    refused(
        &sb,
        &["secrets", "set", "A", "--file", "/no/such/file"],
        b"",
        &[],
        1,
        &["cannot read /no/such/file"],
    );
}

#[test]
fn values_over_the_limit() {
    let sb = Sandbox::new();
    sb.write_config(GOOD);
    let big = vec![b'x'; 64 * 1024 + 1];
    refused(
        &sb,
        &["secrets", "set", "BIG", "--stdin"],
        &big,
        &[],
        1,
        &[
            "secret \"BIG\" is 65537 bytes, over the limit of 65536 bytes (setting limits.max_value_bytes)",
        ],
    );
    // the size is told exactly, also when the input goes on far past the limit
    let huge = sb.file("huge.bin", vec![b'y'; 3_000_000]);
    refused(
        &sb,
        &["secrets", "set", "HUGE", "--file", huge.to_str().unwrap()],
        b"",
        &[],
        1,
        &["secret \"HUGE\" is 3000000 bytes, over the limit of 65536 bytes"],
    );
    refused(
        &sb,
        &["secrets", "set", "HUGE", "--stdin"],
        &vec![b'z'; 2_500_000],
        &[],
        1,
        &["secret \"HUGE\" is 2500000 bytes, over the limit of 65536 bytes"],
    );
    let exact = vec![b'x'; 64 * 1024];
    let o = sb.run_stdin(&["secrets", "set", "EXACT", "--stdin"], &exact);
    assert_code(&o, 0);
    // the limit is configurable, in the environment and in the file
    refused(
        &sb,
        &["secrets", "set", "SMALL", "--stdin"],
        b"12345678901",
        &[("SIGIL__LIMITS__MAX_VALUE_BYTES", "10")],
        1,
        &["is 11 bytes, over the limit of 10 bytes"],
    );
    let sb = Sandbox::new();
    sb.write_config("[limits]\nmax_value_bytes = 5\n");
    refused(
        &sb,
        &["secrets", "set", "S", "--stdin"],
        b"123456",
        &[],
        1,
        &["is 6 bytes, over the limit of 5 bytes"],
    );
    let dotenv = sb.file("big.env", "OK=1\nTOO_BIG=123456\n");
    refused(
        &sb,
        &["import", "--from", "dotenv", dotenv.to_str().unwrap()],
        b"",
        &[],
        1,
        &["\"TOO_BIG\" is 6 bytes"],
    );
}

#[test]
fn run_of_a_missing_command() {
    let sb = Sandbox::new();
    sb.write_config(GOOD);
    refused(
        &sb,
        &["run", "--", "no-such-command-x"],
        b"",
        &[],
        127,
        &["command not found: no-such-command-x"],
    );
    refused(&sb, &["run"], b"", &[], 2, &["CMD"]);
}

#[test]
fn non_utf8_values_are_refused() {
    let sb = Sandbox::new();
    sb.write_config(GOOD);
    refused(
        &sb,
        &["secrets", "set", "BIN", "--stdin"],
        b"ab\xffcd",
        &[],
        1,
        &["value of secret \"BIN\" is not valid UTF-8"],
    );
}
