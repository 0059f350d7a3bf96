//! `sigil config show`.

use serde_json::json;

use crate::cli::ConfigCommand;
use crate::cmd_secrets::load;
use crate::{EXIT_OK, out};

pub fn run(cmd: ConfigCommand) -> anyhow::Result<u8> {
    let ConfigCommand::Show { json } = cmd;
    let loaded = load()?;
    let s = &loaded.settings;
    let listed = sigil_core::Resolver::local(&loaded.file).list()?;
    let api_key = if loaded.env.var("SIGIL_API_KEY").is_some() {
        "set in SIGIL_API_KEY (redacted)"
    } else {
        "not set"
    };
    if json {
        let settings: serde_json::Map<String, serde_json::Value> = s
            .rows()
            .into_iter()
            .map(|(k, v, origin)| {
                (
                    k.to_owned(),
                    json!({"value": v, "origin": origin.to_string()}),
                )
            })
            .collect();
        let secrets: Vec<_> = listed
            .iter()
            .map(|l| json!({"name": l.name.as_str(), "source": l.source, "value": "***"}))
            .collect();
        let doc = json!({
            "home": s.home.display().to_string(),
            "config_file": s.config_path.display().to_string(),
            "config_file_exists": s.config_path.exists(),
            "settings": settings,
            "api_key": api_key,
            "secrets": secrets,
        });
        out::line(&doc.to_string())?;
        return Ok(EXIT_OK);
    }
    let mut text = String::new();
    text.push_str(&format!("home         {}\n", s.home.display()));
    text.push_str(&format!(
        "config file  {}{}\n",
        s.config_path.display(),
        if s.config_path.exists() {
            ""
        } else {
            " (does not exist)"
        }
    ));
    text.push_str(&format!("api key      {api_key}\n\n"));
    for (k, v, origin) in s.rows() {
        text.push_str(&format!("{k:<26} = {v:<24} # {origin}\n"));
    }
    text.push_str("\n[context.secrets]\n");
    for l in &listed {
        let key = if l.name.is_env_compatible() {
            l.name.to_string()
        } else {
            format!("{:?}", l.name.as_str())
        };
        text.push_str(&format!("{key} = \"***\"  # {}\n", l.source));
    }
    out::write_stdout(text.as_bytes())?;
    Ok(EXIT_OK)
}
