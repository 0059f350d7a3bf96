//! `sigil export --format dotenv|json|shell`: secrets as a file for another tool. The values are
//! what the user asked for, so nothing is masked — but they never go to a terminal unless
//! `--force`, where a screen, a scrollback or a screen share would keep them.

use std::io::IsTerminal;

use serde_json::{Map, Value};
use sigil_core::SecretName;
use zeroize::Zeroize as _;

use crate::cli::{ExportArgs, ExportFormat};
use crate::cmd_run::{check_vars, env_vars};
use crate::loaded::load;
use crate::select::Selection;
use crate::{EXIT_OK, UsageError, out};

pub fn run(a: ExportArgs) -> crate::failure::Result<u8> {
    if std::io::stdout().is_terminal() && !a.force {
        return Err(UsageError(
            "refusing to print secrets to a terminal: redirect or pipe the output \
             (`> .env`, `eval \"$(sigil export --format shell)\"`), or pass --force"
                .into(),
        )
        .into());
    }
    let prefix = a.prefix.as_deref().unwrap_or_default();
    crate::cmd_run::check_prefix(prefix)?;
    let loaded = load()?;
    let resolver = loaded.resolver()?;
    let selection = Selection::parse(&a.only)?;
    let names = selection.names(&resolver)?;
    let vars = env_vars(&names, prefix, a.upper)?;
    // `eval` of the shell form sets variables in the user's own shell: the same names are
    // refused as for `sigil run`, and a variable already set is not replaced unless --override
    let shell = a.format == ExportFormat::Shell;
    check_vars(&vars, selection.exact(), a.override_env || !shell, |v| {
        std::env::var_os(v).is_some()
    })?;
    let ordered: Vec<SecretName> = vars.values().cloned().collect();
    let values = resolver.get_many(&ordered)?;
    let mut text = String::new();
    match a.format {
        ExportFormat::Json => {
            let mut doc = Map::new();
            for ((var, _), value) in vars.iter().zip(&values) {
                doc.insert(var.clone(), value.expose_json().clone());
            }
            let mut doc = Value::Object(doc);
            text = serde_json::to_string_pretty(&doc)?;
            text.push('\n');
            wipe(&mut doc);
        }
        ExportFormat::Dotenv | ExportFormat::Shell => {
            for ((var, _), value) in vars.iter().zip(&values) {
                let mut v = value.expose_text().into_owned();
                if shell {
                    text.push_str(&format!("export {var}={}\n", shell_quote(&v)));
                } else {
                    text.push_str(&format!("{var}={}\n", dotenv_quote(&v)));
                }
                v.zeroize();
            }
        }
    }
    let written = out::write_stdout(text.as_bytes());
    text.zeroize();
    written?;
    eprintln!("exported {} secret(s)", vars.len());
    Ok(EXIT_OK)
}

/// A POSIX shell word that is `v` exactly: single quotes, each `'` as `'\''`.
fn shell_quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', r"'\''"))
}

/// A `.env` value that reads back as `v` (in `sigil import` and docker compose): single quotes,
/// literal, when `v` has no `'` and no line break; else double quotes with `\n`, `\r`, `\t`,
/// `\"`, `\\` and `\$` escapes.
fn dotenv_quote(v: &str) -> String {
    if !v.contains(['\'', '\n', '\r']) {
        return format!("'{v}'");
    }
    let mut out = String::with_capacity(v.len() + 8);
    out.push('"');
    for c in v.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '$' => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn wipe(v: &mut Value) {
    match v {
        Value::String(s) => s.zeroize(),
        Value::Array(a) => a.iter_mut().for_each(wipe),
        Value::Object(o) => o.values_mut().for_each(wipe),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_reads_back_exactly() {
        for v in [
            "plain",
            "it's",
            "$HOME `x` \"q\"",
            "two\nlines\r\n",
            "tab\there",
            "back\\slash",
        ] {
            let line = format!("X={}\n", dotenv_quote(v));
            let parsed = sigil_core::import::dotenv(std::path::Path::new(".env"), &line)
                .unwrap_or_else(|e| panic!("{line:?}: {e}"));
            assert_eq!(parsed[0].1.expose_str(), Some(v), "{line:?}");
        }
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
