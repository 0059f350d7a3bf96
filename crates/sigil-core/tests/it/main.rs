//! Integration tests of `sigil-core` against fixture files.
//!
//! `tests/fixtures/edit/<case>/` holds `in.toml`, `ops` (one `set NAME JSON` or `delete NAME` per
//! line) and `out.toml`, the exact bytes expected after the edits: comments, blank lines and order
//! are part of the expectation.

use std::path::Path;

mod import;
mod parsers;
mod zeroed;

use sigil_core::{ConfigEditor, ConfigFile, SecretName, SecretValue};

fn run_case(case: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::copy(case.join("in.toml"), &path).unwrap();
    let editor = ConfigEditor::new(&path, false, 64 * 1024);
    let ops = std::fs::read_to_string(case.join("ops")).unwrap();
    let mut expected: Vec<(SecretName, Option<serde_json::Value>)> = Vec::new();
    for line in ops.lines().filter(|l| !l.trim().is_empty()) {
        let mut parts = line.splitn(3, ' ');
        let (op, name) = (parts.next().unwrap(), parts.next().unwrap());
        let name: SecretName = name.parse().unwrap();
        match op {
            "set" => {
                let json: serde_json::Value = serde_json::from_str(parts.next().unwrap()).unwrap();
                editor
                    .set_secret(&name, &SecretValue::new(json.clone()))
                    .unwrap();
                expected.push((name, Some(json)));
            }
            "delete" => {
                assert!(
                    editor.delete_secret(&name).unwrap(),
                    "{}: {name} was not there",
                    case.display()
                );
                expected.push((name, None));
            }
            other => panic!("unknown op {other}"),
        }
    }
    let got = std::fs::read_to_string(&path).unwrap();
    let want = std::fs::read_to_string(case.join("out.toml")).unwrap();
    assert_eq!(got, want, "{}: file differs", case.display());
    // and the values read back are the values written
    let file = ConfigFile::load(&path).unwrap();
    for (name, value) in expected {
        assert_eq!(
            file.secret(name.as_str()).map(|v| v.expose_json().clone()),
            value,
            "{}: {name}",
            case.display()
        );
    }
}

/// The case folders under `tests/fixtures/<kind>`, in name order; at least `min` of them.
fn fixture_cases(kind: &str, min: usize) -> Vec<std::path::PathBuf> {
    sigil_test_support::fixture_cases(env!("CARGO_MANIFEST_DIR"), kind, min)
}

#[test]
fn edit_fixtures() {
    for case in fixture_cases("edit", 7) {
        run_case(&case);
    }
}
