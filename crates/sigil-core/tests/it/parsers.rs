//! The parsers under generated input: the name grammar, the config file reader, the dotenv and
//! Prefect importers. None panics, and every error names what it was given (the file, or the
//! name itself). `PROPTEST_CASES` runs more cases (a long run: `PROPTEST_CASES=100000`); CI runs
//! the default below.

use std::path::Path;

use proptest::prelude::*;
use sigil_core::name::{MAX_NAME_BYTES, NAME_PATTERN};
use sigil_core::{ConfigFile, SecretName};

/// Text that looks like what each parser reads, with anything mixed in: TOML-ish and dotenv-ish
/// lines, quotes, escapes, control characters, long runs, non-ASCII.
fn texty() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("[context.secrets]\n".to_owned()),
        Just("[context]\n".to_owned()),
        Just("secrets = { A = \"1\" }\n".to_owned()),
        Just("KEY = \"value\"\n".to_owned()),
        Just("KEY='single'\n".to_owned()),
        Just("export KEY=\"a\\\"b\"\n".to_owned()),
        Just("\"\"\"\n".to_owned()),
        Just("\\u{0}\\x\\".to_owned()),
        Just("= = =\n".to_owned()),
        Just("#comment\n".to_owned()),
        Just("[[x]]\n".to_owned()),
        "[ -~]{0,40}",
        "\\PC{0,20}",
        any::<char>().prop_map(|c| c.to_string()),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(256)
    ))]

    #[test]
    fn a_name_parses_or_is_refused_naming_itself(raw in prop_oneof!["\\PC{0,300}", "[A-Za-z0-9_./-]{0,300}"]) {
        match SecretName::parse(&raw) {
            Ok(name) => prop_assert_eq!(name.as_str(), raw.as_str()),
            Err(e) => {
                let text = e.to_string();
                prop_assert!(!text.is_empty());
                // the name is said, quoted and escaped as Rust's Debug does (or, when too long,
                // its length)
                let head: String = format!("{raw:?}").chars().take(8).collect();
                prop_assert!(text.contains(&head) || text.contains("bytes"), "{}", text);
            }
        }
    }

    #[test]
    fn the_config_reader_never_panics_and_names_the_file(text in texty()) {
        let path = Path::new("/nowhere/config.toml");
        if let Err(e) = ConfigFile::parse(path, &text) {
            prop_assert!(e.to_string().contains("config.toml"), "{}", e);
        }
    }

    #[test]
    fn the_dotenv_importer_never_panics_and_names_the_file(text in texty()) {
        let path = Path::new("/nowhere/app.env");
        if let Err(e) = sigil_core::import::dotenv(path, &text) {
            prop_assert!(e.to_string().contains("app.env"), "{}", e);
        }
    }

    #[test]
    fn the_prefect_importer_never_panics_and_names_the_file(text in texty()) {
        let path = Path::new("/nowhere/prefect.toml");
        if let Err(e) = sigil_core::import::prefect(path, &text) {
            prop_assert!(e.to_string().contains("prefect.toml"), "{}", e);
        }
    }

    // the OpenAPI document describes names with NAME_PATTERN, and fuzzers (Schemathesis) take
    // it at its word: a name it matches must parse, and a name that parses must match it
    #[test]
    fn the_name_pattern_is_the_grammar(raw in prop_oneof![
        "[a./-]{0,12}",
        "[A-Za-z0-9_./-]{0,40}",
        "\\PC{0,8}",
    ]) {
        let pattern = regex::Regex::new(NAME_PATTERN).unwrap();
        prop_assert_eq!(pattern.is_match(&raw), SecretName::parse(&raw).is_ok(), "{:?}", raw);
    }

    #[test]
    fn every_name_the_pattern_generates_parses(
        raw in proptest::string::string_regex(&NAME_PATTERN[1..NAME_PATTERN.len() - 1]).unwrap()
    ) {
        prop_assume!(raw.len() <= MAX_NAME_BYTES);
        prop_assert!(SecretName::parse(&raw).is_ok(), "{:?}", raw);
    }
}
