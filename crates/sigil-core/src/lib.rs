//! The core of Sigil: secret names and values, the config file, the environment, scoped
//! context, the resolution chain and the Redactor.
//!
//! Use this crate to build tools on Sigil's resolution rules; applications normally depend on the
//! `sigil` crate, which re-exports what they need. Nothing here knows about HTTP: a server source
//! plugs into the chain through the [`Source`] trait.
//!
//! ```
//! use std::sync::Arc;
//! use sigil_core::{context, ConfigFile, Resolver, SecretName};
//!
//! let file = ConfigFile::parse("config.toml".as_ref(), "[context.secrets]\nDB = \"from file\"\n")?;
//! let chain = Resolver::local(&file);
//! let name: SecretName = "DB".parse()?;
//! assert_eq!(chain.get(&name)?.expose_str(), Some("from file"));
//! context::with_secrets([("DB", "from context")], || {
//!     assert_eq!(chain.get(&name).unwrap().expose_str(), Some("from context"));
//! });
//! # Ok::<(), sigil_core::Error>(())
//! ```

pub mod config;
pub mod context;
pub mod edit;
pub mod error;
pub mod global;
pub mod import;
pub mod name;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod redact;
pub mod source;
pub mod value;
pub mod wire;

pub use config::{Backend, ConfigFile, Environment, Settings};
pub use edit::ConfigEditor;
pub use error::{Error, Result};
pub use name::SecretName;
pub use redact::{RedactingWriter, Redactor};
pub use source::{ContextSource, EnvSource, FileSource, Resolved, Resolver, Source};
pub use value::SecretValue;
