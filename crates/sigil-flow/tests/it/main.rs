//! Integration tests of the flow engine.

mod build;
mod engine;
mod secrets;

use std::sync::Arc;

use sigil_core::{ConfigFile, Resolver};

/// A chain holding the given secrets in a config file, and nothing from the environment.
pub(crate) fn chain_with(secrets: &[(&str, &str)]) -> Arc<Resolver> {
    let mut text = String::from("[context.secrets]\n");
    for (n, v) in secrets {
        text.push_str(&format!("{n} = {}\n", serde_json::to_string(v).unwrap()));
    }
    let file = ConfigFile::parse("flow-test.toml".as_ref(), &text).unwrap();
    Arc::new(Resolver::new(vec![
        Arc::new(sigil_core::ContextSource),
        Arc::new(sigil_core::FileSource::new(&file)),
    ]))
}
