//! `tests/fixtures/import/<case>/` holds `in` — a `.env` file for the `dotenv-*` cases, a Prefect 1
//! `config.toml` for the `prefect-*` ones — and `out`: one `NAME<TAB>JSON` line per secret, in
//! the file's order, or `error: ` and the whole message. The file is read under the name `in`, so
//! that is the file the messages name. `SIGIL_BLESS=1` writes `out` from what the parser gives
//! (read the diff before committing it).

use std::path::Path;

use sigil_core::import;

fn render(case: &Path) -> String {
    let text = std::fs::read_to_string(case.join("in")).unwrap();
    let name = case.file_name().unwrap().to_str().unwrap();
    let at = Path::new("in");
    let got = if name.starts_with("dotenv-") {
        import::dotenv(at, &text).map_err(|e| e.to_string())
    } else if name.starts_with("prefect-") {
        import::prefect(at, &text).map_err(|e| e.to_string())
    } else {
        panic!("{name}: a case is dotenv-… or prefect-…");
    };
    match got {
        Ok(entries) => entries
            .iter()
            .map(|(n, v)| format!("{n}\t{}\n", serde_json::to_string(v.expose_json()).unwrap()))
            .collect(),
        Err(e) => format!("error: {e}\n"),
    }
}

#[test]
fn import_fixtures() {
    let bless = std::env::var_os("SIGIL_BLESS").is_some();
    for case in super::fixture_cases("import", 7) {
        let got = render(&case);
        if bless {
            std::fs::write(case.join("out"), &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(case.join("out")).unwrap();
        assert_eq!(got, want, "{}", case.display());
    }
}
