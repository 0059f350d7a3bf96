//! Sigil: secrets for data workflows.
//!
//! Code asks for a secret by name, and the same code runs on a laptop and in deployment: secrets
//! resolve **locally first** — scoped context, then `SIGIL__CONTEXT__SECRETS__<NAME>` environment
//! variables, then the `[context.secrets]` table of `~/.sigil/config.toml` — and, with
//! `backend = "server"`, fall back to a Sigil server. Values come back exactly as stored: `"42"`
//! stays a string, `$HOME` is not expanded.
//!
//! ```
//! use sigil::Secret;
//! # sigil::context::with_secrets([("MYSECRET", "MY SECRET VALUE"), ("PORT", "5432")], || {
//! let value = Secret::new("MYSECRET").get()?;            // a SecretValue: Debug shows [REDACTED]
//! assert_eq!(value.expose_str(), Some("MY SECRET VALUE"));
//! let port: u16 = Secret::new("PORT").get_as()?;         // "5432" decoded as JSON for typed reads
//! assert_eq!(port, 5432);
//! assert!(!Secret::new("OPTIONAL").exists()?);
//! # Ok::<(), sigil::Error>(())
//! # }).unwrap();
//! ```
//!
//! This crate has no async runtime in its dependency tree.

use std::sync::Arc;

use serde::de::DeserializeOwned;

pub mod flow;

pub use sigil_core::config::{self, Backend, ConfigFile, Environment, Settings};
pub use sigil_core::context;
pub use sigil_core::redact::{self, RedactingWriter, Redactor};
pub use sigil_core::source::{self, Resolved, Resolver, Source};
pub use sigil_core::{Error, Result, SecretName, SecretValue};

pub use sigil_core::global::set_default_resolver;

/// The server client and the server source (used when `backend = "server"`).
pub use sigil_client as client;

/// The chain that [`Secret::get`] uses: built on first use from this process's settings
/// (environment and config file), with the server source when `backend = "server"`, and kept.
/// The config file's secrets are re-read within a second of a change; environment variables are
/// read at each lookup.
///
/// # Errors
/// A config file or environment override that cannot be read; a server backend without an API
/// key.
pub fn default_resolver() -> Result<Arc<Resolver>> {
    sigil_client::register();
    sigil_core::global::default_resolver()
}

/// A secret, by name. Nothing is read until [`Secret::get`].
#[derive(Clone)]
pub struct Secret {
    raw: String,
    name: Option<SecretName>,
    resolver: Option<Arc<Resolver>>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({:?})", self.raw)
    }
}

impl Secret {
    /// A secret named `name`. An invalid name is reported by `get`, `get_as` and `exists`.
    pub fn new(name: impl Into<String>) -> Self {
        let raw = name.into();
        Secret {
            name: SecretName::parse(&raw).ok(),
            raw,
            resolver: None,
        }
    }

    /// Resolves through `resolver` instead of the default chain.
    pub fn with_resolver(mut self, resolver: Arc<Resolver>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// The name as given.
    pub fn name(&self) -> &str {
        &self.raw
    }

    fn parts(&self) -> Result<(&SecretName, Arc<Resolver>)> {
        let name = match &self.name {
            Some(n) => n,
            None => {
                return Err(
                    SecretName::parse(&self.raw).expect_err("the name failed to parse before")
                );
            }
        };
        let resolver = match &self.resolver {
            Some(r) => r.clone(),
            // the chain is built at the first lookup: its failure names the secret asked for
            None => default_resolver().map_err(|e| e.for_secret(name.as_str()))?,
        };
        Ok((name, resolver))
    }

    /// The value, exactly as stored.
    ///
    /// # Errors
    /// [`Error::NotFound`] naming every place searched; [`Error::InvalidName`]; any source's
    /// failure (an unreadable config file, an unreachable server).
    pub fn get(&self) -> Result<SecretValue> {
        let (name, resolver) = self.parts()?;
        resolver.get(name)
    }

    /// The value deserialised into `T`; a string that holds JSON is decoded first when `T` does
    /// not take the string itself (see [`SecretValue::decode`]).
    ///
    /// # Errors
    /// As [`Secret::get`], and [`Error::Decode`] when the value does not fit `T`.
    pub fn get_as<T: DeserializeOwned>(&self) -> Result<T> {
        self.get()?.decode(&self.raw)
    }

    /// Whether the secret exists anywhere in the chain.
    ///
    /// # Errors
    /// A source's failure (never a miss).
    pub fn exists(&self) -> Result<bool> {
        let (name, resolver) = self.parts()?;
        resolver.exists(name)
    }
}
