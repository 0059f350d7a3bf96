//! The process-wide default chain, shared by `Secret::get` and flow runs.
//!
//! Built on first use from this process's settings (environment and config file) and kept. The
//! config file is parsed once; changes to its secrets are seen within a second
//! ([`crate::source::FileSource`]); its other settings are read once per process. Environment
//! variables are read at each lookup.
//!
//! The server source is a plug-in: the crate that provides it registers a factory with
//! [`set_server_factory`] before the first lookup. Without one, `backend = "server"` is an error
//! that says so.

use std::sync::{Arc, OnceLock, RwLock};

use crate::config::{ConfigFile, Settings};
use crate::error::Result;
use crate::source::{Resolver, Source};

/// Builds the server source for the given settings.
pub type ServerFactory = fn(&Settings) -> Result<Arc<dyn Source>>;

static DEFAULT: RwLock<Option<Arc<Resolver>>> = RwLock::new(None);
static SERVER_FACTORY: OnceLock<ServerFactory> = OnceLock::new();

/// Registers the server source factory (once per process; later calls are ignored).
pub fn set_server_factory(factory: ServerFactory) {
    let _ = SERVER_FACTORY.set(factory);
}

/// Builds the chain that `settings` ask for, with the registered server source when
/// `backend = "server"`.
///
/// # Errors
/// The server factory's error, or [`crate::Error::Source`] when the settings ask for a server
/// and no factory is registered.
pub fn resolver_for(settings: &Settings, file: &ConfigFile) -> Result<Resolver> {
    let server = match (settings.backend, SERVER_FACTORY.get()) {
        (crate::Backend::Server, Some(factory)) => Some(factory(settings)?),
        _ => None,
    };
    Resolver::from_settings(settings, file, server)
}

/// The default chain, built on first use.
///
/// # Errors
/// A config file or environment override that cannot be read; a server backend without a
/// server source. A failed build is not kept: the next call tries again.
///
/// Inside [`crate::context::isolated`] nothing is loaded: the answer is the scoped context alone,
/// so a broken config file or environment on the machine cannot fail an isolated test.
pub fn default_resolver() -> Result<Arc<Resolver>> {
    if crate::context::is_isolated() {
        return Ok(crate::source::isolated_resolver());
    }
    if let Some(r) = DEFAULT.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
        return Ok(r.clone());
    }
    let mut slot = DEFAULT.write().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = slot.as_ref() {
        return Ok(r.clone());
    }
    let (settings, file) = Settings::load()?;
    let resolver = Arc::new(resolver_for(&settings, &file)?);
    tracing::debug!(chain = ?resolver, "default chain built");
    *slot = Some(resolver.clone());
    Ok(resolver)
}

/// Replaces the default chain (for embedding and tests); `None` makes the next lookup load the
/// settings again.
pub fn set_default_resolver(resolver: Option<Resolver>) {
    *DEFAULT.write().unwrap_or_else(|p| p.into_inner()) = resolver.map(Arc::new);
}
