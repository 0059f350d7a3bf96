//! The server as a source of the resolution chain.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sigil_core::config::{Environment, Origin, Settings};
use sigil_core::source::Versioned;
use sigil_core::{Error, SecretName, SecretValue, Source, context};

use crate::{Client, ClientError, credentials_path, read_credentials};

/// A cached answer: when it was read, the value, its version.
type Cached = (Instant, SecretValue, Option<i64>);

/// Reads secrets from a Sigil server, with an optional client-side cache (`server.cache_ttl`).
/// Each request carries the current flow run and task (from the scoped context) as
/// `X-Sigil-Flow-Run` and `X-Sigil-Task`.
pub struct ServerSource {
    client: Client,
    ttl: Duration,
    cache: Mutex<HashMap<String, Cached>>,
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

    /// The client, with the current flow run and task (if any) as request headers.
    fn attributed_client(&self) -> Client {
        match context::attribution() {
            Some(a) => self
                .client
                .clone()
                .with_attribution(Some(&a.flow_run), a.task.as_deref()),
            None => self.client.clone(),
        }
    }

    fn source_error(&self, name: &SecretName, e: &ClientError) -> Error {
        Error::Source {
            source_name: format!("server {} team {:?}", self.client.url(), self.client.team()),
            name: name.to_string(),
            message: e.to_string(),
        }
    }
}

/// What the client connects with, and where each part came from: `[server]` settings (file or
/// `SIGIL__SERVER__…`), else `credentials.toml` (written by `sigil login`), else the defaults; the
/// key from `SIGIL_API_KEY`, else `credentials.toml`.
#[derive(Clone)]
pub struct Connection {
    /// The server's URL.
    pub url: String,
    /// Where the URL came from (`default`, `file`, `env SIGIL__SERVER__URL`, `credentials <path>`).
    pub url_origin: String,
    /// The team.
    pub team: String,
    /// Where the team came from.
    pub team_origin: String,
    /// The API key, when there is one.
    pub api_key: Option<zeroize::Zeroizing<String>>,
    /// Where the key came from (`env SIGIL_API_KEY`, `credentials <path>`), or `not set`.
    pub api_key_origin: String,
    /// The credentials file looked at.
    pub credentials_path: std::path::PathBuf,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("url", &self.url)
            .field("team", &self.team)
            .field("api_key", &self.api_key.as_ref().map(|_| "[REDACTED]"))
            .finish_non_exhaustive()
    }
}

/// The connection the settings, the environment and `credentials.toml` give.
///
/// # Errors
/// An unreadable credentials file; no home directory.
pub fn connection(settings: &Settings, env: &Environment) -> sigil_core::Result<Connection> {
    let path = credentials_path(env)?;
    let creds = read_credentials(&path)?;
    let from_creds = format!("credentials {}", sigil_core::error::display_path(&path));
    let origin = |key: &str| {
        settings
            .origins
            .get(key)
            .map_or_else(|| "default".to_owned(), ToString::to_string)
    };
    let from_default = |key: &str| settings.origins.get(key) == Some(&Origin::Default);
    let (url, url_origin) = match (&creds.url, from_default("server.url")) {
        (Some(u), true) => (u.clone(), from_creds.clone()),
        _ => (settings.server.url.clone(), origin("server.url")),
    };
    let (team, team_origin) = match (&creds.team, from_default("server.team")) {
        (Some(t), true) => (t.clone(), from_creds.clone()),
        _ => (settings.server.team.clone(), origin("server.team")),
    };
    let (api_key, api_key_origin) = match env.var_str("SIGIL_API_KEY")? {
        Some(k) => (
            Some(zeroize::Zeroizing::new(k.to_owned())),
            "env SIGIL_API_KEY".to_owned(),
        ),
        None => match &creds.api_key {
            Some(k) => (Some(k.clone()), from_creds),
            None => (None, "not set".to_owned()),
        },
    };
    Ok(Connection {
        url,
        url_origin,
        team,
        team_origin,
        api_key,
        api_key_origin,
        credentials_path: path,
    })
}

/// A client for the settings' server, team and key (see [`connection`]).
///
/// # Errors
/// No API key; an unreadable credentials file; a bad URL.
pub fn client_from_settings(settings: &Settings, env: &Environment) -> sigil_core::Result<Client> {
    let c = connection(settings, env)?;
    let Some(key) = &c.api_key else {
        return Err(Error::Source {
            source_name: format!("server {} team {:?}", c.url, c.team),
            name: String::new(),
            message: format!(
                "no API key: set SIGIL_API_KEY or run `sigil login` (which writes {})",
                sigil_core::error::display_path(&c.credentials_path)
            ),
        });
    };
    Client::new(&c.url, &c.team, key).map_err(|e| Error::Source {
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
        Ok(self.fetch_versioned(name)?.map(|(v, _)| v))
    }

    fn fetch_versioned(&self, name: &SecretName) -> sigil_core::Result<Option<Versioned>> {
        if !self.ttl.is_zero()
            && let Some((at, v, version)) = self
                .cache
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(name.as_str())
            && at.elapsed() < self.ttl
        {
            return Ok(Some((v.clone(), *version)));
        }
        let client = self.attributed_client();
        tracing::debug!(
            secret = name.as_str(),
            server = client.url(),
            "reading from the server"
        );
        match client.get_secret(name.as_str(), None) {
            Ok(Some(read)) => {
                let v = SecretValue::new(read.value);
                if !self.ttl.is_zero() {
                    self.cache.lock().unwrap_or_else(|p| p.into_inner()).insert(
                        name.to_string(),
                        (Instant::now(), v.clone(), Some(read.version)),
                    );
                }
                Ok(Some((v, Some(read.version))))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(self.source_error(name, &e)),
        }
    }

    fn fetch_many(&self, names: &[SecretName]) -> sigil_core::Result<Vec<Option<SecretValue>>> {
        Ok(self
            .fetch_many_versioned(names)?
            .into_iter()
            .map(|found| found.map(|(v, _)| v))
            .collect())
    }

    /// One batch read (per 1,000 names) for every name the cache does not hold.
    fn fetch_many_versioned(
        &self,
        names: &[SecretName],
    ) -> sigil_core::Result<Vec<Option<Versioned>>> {
        let mut out: Vec<Option<Versioned>> = vec![None; names.len()];
        let mut wanted: Vec<usize> = Vec::new();
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            for (i, n) in names.iter().enumerate() {
                match cache.get(n.as_str()) {
                    Some((at, v, version)) if !self.ttl.is_zero() && at.elapsed() < self.ttl => {
                        out[i] = Some((v.clone(), *version))
                    }
                    _ => wanted.push(i),
                }
            }
        }
        let client = self.attributed_client();
        let tasks_by_name = context::attribution().and_then(|a| a.tasks_by_name);
        for chunk in wanted.chunks(1000) {
            let asked: Vec<String> = chunk.iter().map(|&i| names[i].to_string()).collect();
            // on behalf of many tasks: each name's on record with the task that asks for it
            let tasks: Vec<String> = match &tasks_by_name {
                Some(by) => asked
                    .iter()
                    .map(|n| by.get(n).cloned().unwrap_or_default())
                    .collect(),
                None => Vec::new(),
            };
            let read = client
                .batch_read_for(&asked, &tasks)
                .map_err(|e| self.source_error(&names[chunk[0]], &e))?;
            let mut by_name: HashMap<String, (SecretValue, i64)> = read
                .secrets
                .into_iter()
                .map(|r| (r.name, (SecretValue::new(r.value), r.version)))
                .collect();
            for &i in chunk {
                out[i] = by_name
                    .remove(names[i].as_str())
                    .map(|(v, version)| (v, Some(version)));
            }
        }
        if !self.ttl.is_zero() {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            for &i in &wanted {
                if let Some((v, version)) = &out[i] {
                    cache.insert(names[i].to_string(), (Instant::now(), v.clone(), *version));
                }
            }
        }
        tracing::debug!(
            names = wanted.len(),
            server = client.url(),
            "batch read from the server"
        );
        Ok(out)
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
