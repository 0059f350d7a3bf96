//! `sigil config show`: the settings in effect, where each came from, and the secrets' names.

use serde_json::{Value, json};
use sigil_core::config::SettingValue;

use crate::cli::ConfigCommand;
use crate::loaded::load;
use crate::{EXIT_OK, out};

pub fn run(cmd: ConfigCommand) -> crate::failure::Result<u8> {
    let ConfigCommand::Show { json } = cmd;
    let loaded = load()?;
    let s = &loaded.settings;
    let listed = sigil_core::Resolver::local(&loaded.file).list()?;
    // what the client really uses: `sigil login`'s credentials.toml counts
    let conn = sigil_client::connection(s, &loaded.env)?;
    let rows: Vec<(&str, SettingValue, String)> = s
        .rows()
        .into_iter()
        .map(|(k, v, origin)| match k {
            "server.url" => (
                k,
                SettingValue::Text(conn.url.clone()),
                conn.url_origin.clone(),
            ),
            "server.team" => (
                k,
                SettingValue::Text(conn.team.clone()),
                conn.team_origin.clone(),
            ),
            _ => (k, v, origin.to_string()),
        })
        .collect();
    let key_set = conn.api_key.is_some();
    if json {
        let settings: serde_json::Map<String, Value> = rows
            .iter()
            .map(|(k, v, origin)| {
                (
                    (*k).to_owned(),
                    json!({"value": v.to_json(), "origin": origin}),
                )
            })
            .collect();
        let secrets: Vec<_> = listed
            .iter()
            .map(|l| json!({"name": l.name.as_str(), "source": l.source}))
            .collect();
        let doc = json!({
            "home": s.home.display().to_string(),
            "config_file": s.config_path.display().to_string(),
            "config_file_exists": s.config_path.exists(),
            "credentials_file": conn.credentials_path.display().to_string(),
            "settings": settings,
            "api_key": {"set": key_set, "origin": conn.api_key_origin},
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
    let key = if key_set {
        format!("set (redacted)  # {}", conn.api_key_origin)
    } else {
        "not set (SIGIL_API_KEY, or `sigil login`)".to_owned()
    };
    text.push_str(&format!("api key      {key}\n\n"));
    for (k, v, origin) in &rows {
        let v = v.to_string();
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
