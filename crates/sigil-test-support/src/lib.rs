//! What the tests of every Sigil crate share (a dev-dependency only; it depends on nothing of
//! Sigil's, so any crate may use it): the values that break naive secret handling, and the
//! listing of a crate's fixture cases, and an allocator that sees whether freed memory still
//! holds a secret (`watch`).

use std::path::{Path, PathBuf};

pub mod watch;

/// Values that must come back byte for byte. Prefect 1 mangled the first ones on load (`$` and
/// `~` expansion, `${…}` references, `"42"` and `"true"` cast to a number and a boolean); the rest
/// break naive quoting: newlines, tabs, quotes of both kinds, backslashes, and text beyond ASCII.
pub const AWKWARD: &[&str] = &[
    "$HOME",
    "~/x",
    "${a.b}",
    "42",
    "true",
    "None",
    "P@$$w0rd",
    "line one\nline two\n",
    "line one\nline two\n\ttabbed",
    "ünïcødé ☃ 日本語",
    "'single' \"double\" \\back\ttab",
];

/// The case folders under `<crate>/tests/fixtures/<kind>` (`crate_dir` is the crate's
/// `CARGO_MANIFEST_DIR`), in name order; panics when there are fewer than `min`, so that a
/// fixture folder that went missing fails the test instead of passing it empty.
pub fn fixture_cases(crate_dir: &str, kind: &str, min: usize) -> Vec<PathBuf> {
    let root = Path::new(crate_dir).join("tests/fixtures").join(kind);
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.expect("a readable fixture folder").path())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= min,
        "fixtures missing under {}",
        root.display()
    );
    cases
}
