//! The server as a source of the resolution chain.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sigil_core::config::{Environment, Origin, Settings};
use sigil_core::{Error, SecretName, SecretValue, Source, context};

use crate::{Client, ClientError, credentials_path, read_credentials};

/// Reads secrets from a Sigil server, with an optional client-side cache (`server.cache_ttl`).
/// Each request carries the current flow run and task (from the scoped context) as
/// `X-Sigil-Flow-Run` and `X-Sigil-Task`.
pub struct ServerSource {
    client: Client,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, SecretValue)>>,
}

impl std::fmt::Debug for ServerSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerSource")
            .field("client", &self.client)
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl ServerSource {
    /// A source over a client; `ttl` zero turns the cache off.
    pub fn new(client: Client, ttl: Duration) -> Self {
        ServerSource {
            client,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Builds the source from settings: the URL and team of `[server]` (or of the credentials
    /// file when the settings leave them at their defaults), the key of `SIGIL_API_KEY` or of
    /// the credentials file.
    ///
    /// # Errors
    /// No API key anywhere; an unreadable credentials file; a bad URL.
    pub fn from_settings(settings: &Settings) -> sigil_core::Result<Self> {
        let env = Environment::from_process();
        Self::from_settings_env(settings, &env)
    }

    /// As [`ServerSource::from_settings`], with an explicit environment.
    ///
    /// # Errors
    /// As [`ServerSource::from_settings`].
    pub fn from_settings_env(settings: &Settings, env: &Environment) -> sigil_core::Result<Self> {
        let client = client_from_settings(settings, env)?;
        Ok(Self::new(client, settings.server.cache_ttl))
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn source_error(&self, name: &SecretName, e: &ClientError) -> Error {
        Error::Source {
            source_name: format!("server {} team {:?}", self.client.url(), self.client.team()),
            name: name.to_string(),
            message: e.to_string(),
        }
    }
}

/// A client for the settings' server, team and key.
///
/// # Errors
/// No API key; an unreadable credentials file; a bad URL.
pub fn client_from_settings(settings: &Settings, env: &Environment) -> sigil_core::Result<Client> {
    let path = credentials_path(env)?;
    let creds = read_credentials(&path)?;
    let from_default = |key: &str| settings.origins.get(key) == Some(&Origin::Default);
    let url = match (&creds.url, from_default("server.url")) {
        (Some(u), true) => u.clone(),
        _ => settings.server.url.clone(),
    };
    let team = match (&creds.team, from_default("server.team")) {
        (Some(t), true) => t.clone(),
        _ => settings.server.team.clone(),
    };
    let key = match env.var_str("SIGIL_API_KEY")? {
        Some(k) => zeroize::Zeroizing::new(k.to_owned()),
        None => creds.api_key.clone().ok_or_else(|| Error::Source {
            source_name: format!("server {url} team {team:?}"),
            name: String::new(),
            message: format!(
                "no API key: set SIGIL_API_KEY or run `sigil login` (which writes {})",
                sigil_core::error::display_path(&path)
            ),
        })?,
    };
    Client::new(&url, &team, &key).map_err(|e| Error::Source {
        source_name: "server".into(),
        name: String::new(),
        message: e.to_string(),
    })
}

impl Source for ServerSource {
    fn kind(&self) -> &str {
        "server"
    }

    fn place(&self, _: &SecretName) -> String {
        format!("server {} team {:?}", self.client.url(), self.client.team())
    }

    fn fetch(&self, name: &SecretName) -> sigil_core::Result<Option<SecretValue>> {
        if !self.ttl.is_zero()
            && let Some((at, v)) = self
                .cache
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(name.as_str())
            && at.elapsed() < self.ttl
        {
            return Ok(Some(v.clone()));
        }
        let client = match context::attribution() {
            Some(a) => self
                .client
                .clone()
                .with_attribution(Some(&a.flow_run), a.task.as_deref()),
            None => self.client.clone(),
        };
        tracing::debug!(
            secret = name.as_str(),
            server = client.url(),
            "reading from the server"
        );
        match client.get_secret(name.as_str(), None) {
            Ok(Some(read)) => {
                let v = SecretValue::new(read.value);
                if !self.ttl.is_zero() {
                    self.cache
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(name.to_string(), (Instant::now(), v.clone()));
                }
                Ok(Some(v))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(self.source_error(name, &e)),
        }
    }

    fn names(&self) -> sigil_core::Result<Vec<SecretName>> {
        let items = self
            .client
            .list_all_secrets("")
            .map_err(|e| Error::Source {
                source_name: format!("server {} team {:?}", self.client.url(), self.client.team()),
                name: String::new(),
                message: e.to_string(),
            })?;
        Ok(items
            .into_iter()
            .filter_map(|i| SecretName::parse(&i.name).ok())
            .collect())
    }
}

fn factory(settings: &Settings) -> sigil_core::Result<Arc<dyn Source>> {
    Ok(Arc::new(ServerSource::from_settings(settings)?))
}

/// Plugs the server source into the process's default chain (`sigil_core::global`). Call it
/// before the first lookup; calling it again does nothing.
pub fn register() {
    sigil_core::global::set_server_factory(factory);
}
