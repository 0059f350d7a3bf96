//! What every command loads first: the environment, the paths, the settings and the config file,
//! and what follows from them (the resolution chain, the config file's editor, the server client).

use sigil_core::config::{Paths, Settings};
use sigil_core::{Backend, ConfigEditor, ConfigFile, Environment, Resolver};

/// Everything a command needs to know about this process's configuration.
pub struct Loaded {
    pub env: Environment,
    pub paths: Paths,
    pub settings: Settings,
    pub file: ConfigFile,
}

/// Loads the environment, the settings and the config file.
///
/// # Errors
/// Any error reading them, naming the file or variable.
pub fn load() -> crate::failure::Result<Loaded> {
    let env = Environment::from_process();
    let paths = Paths::from_env(&env)?;
    tracing::debug!(config = %paths.config.display(), "loading settings");
    let file = ConfigFile::load(&paths.config)?;
    let settings = Settings::resolve(&env, &paths, &file)?;
    Ok(Loaded {
        env,
        paths,
        settings,
        file,
    })
}

impl Loaded {
    /// The resolution chain the settings ask for.
    pub fn resolver(&self) -> sigil_core::Result<Resolver> {
        sigil_core::global::resolver_for(&self.settings, &self.file)
    }

    /// The editor of the local config file.
    pub fn editor(&self) -> ConfigEditor {
        ConfigEditor::new(
            &self.paths.config,
            !self.paths.config_is_explicit,
            self.settings.limits.max_value_bytes,
        )
    }

    /// Whether a command goes to the server: `--server`, or `backend = "server"` without `--local`.
    pub fn on_server(&self, target: crate::cli::Target) -> bool {
        self.on_server_either(target.local, target.server)
    }

    /// As [`Loaded::on_server`], for a command with its own `--local`/`--server` flags.
    pub fn on_server_either(&self, local: bool, server: bool) -> bool {
        server || (self.settings.backend == Backend::Server && !local)
    }

    /// A client for the settings' server.
    pub fn client(&self) -> crate::failure::Result<sigil_client::Client> {
        Ok(sigil_client::client_from_settings(
            &self.settings,
            &self.env,
        )?)
    }
}
