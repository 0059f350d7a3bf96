//! Sources of secrets and the resolution chain.
//!
//! A [`Source`] answers "what is the value of this name?" with a value, a miss (`Ok(None)`, the
//! `NotFound` of cargo-credential: the chain goes on to the next source), or an error (the chain
//! stops and the error reaches the user: an unreadable file or an unreachable server is never a
//! silent miss). The [`Resolver`] asks its sources in order; the first hit wins:
//!
//! 1. [`ContextSource`] — scoped secrets ([`crate::context`]);
//! 2. [`EnvSource`] — `SIGIL__CONTEXT__SECRETS__<NAME>`, value verbatim;
//! 3. [`FileSource`] — the config file's `[context.secrets]`;
//! 4. a server source, plugged in by `sigil-client` when `backend = "server"` (first, and alone,
//!    when `server.use_local_secrets = false`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use crate::config::{Backend, ConfigFile, ENV_SECRET_PREFIX, Environment, Settings};
use crate::context;
use crate::error::{Error, Result, display_path};
use crate::name::SecretName;
use crate::value::SecretValue;

mod local;

pub use local::{ContextSource, DEFAULT_RECHECK, EnvSource, FileSource};

/// A place secrets can be read from.
pub trait Source: Send + Sync {
    /// A short label for the source ("context", "env", "file", "server").
    fn kind(&self) -> &str;

    /// The place searched for `name`, as listed in a "not found" error.
    fn place(&self, name: &SecretName) -> String;

    /// Looks `name` up. `Ok(None)` is a miss and lets the chain go on.
    ///
    /// # Errors
    /// Anything but a miss: the chain stops and reports it.
    fn fetch(&self, name: &SecretName) -> Result<Option<SecretValue>>;

    /// As [`Source::fetch`], with the version that answered where the source keeps versions (a
    /// server). The default has none.
    ///
    /// # Errors
    /// As [`Source::fetch`].
    fn fetch_versioned(&self, name: &SecretName) -> Result<Option<Versioned>> {
        Ok(self.fetch(name)?.map(|v| (v, None)))
    }

    /// Looks many names up at once (a server answers them in one round trip); the answer has
    /// one entry per name, in order. The default asks [`Source::fetch`] for each.
    ///
    /// # Errors
    /// As [`Source::fetch`].
    fn fetch_many(&self, names: &[SecretName]) -> Result<Vec<Option<SecretValue>>> {
        names.iter().map(|n| self.fetch(n)).collect()
    }

    /// As [`Source::fetch_many`], with versions where the source keeps them.
    ///
    /// # Errors
    /// As [`Source::fetch`].
    fn fetch_many_versioned(&self, names: &[SecretName]) -> Result<Vec<Option<Versioned>>> {
        Ok(self
            .fetch_many(names)?
            .into_iter()
            .map(|found| found.map(|v| (v, None)))
            .collect())
    }

    /// The names this source holds, for listings (never values).
    ///
    /// # Errors
    /// When the source cannot be listed.
    fn names(&self) -> Result<Vec<SecretName>> {
        Ok(Vec::new())
    }
}

/// A value with the version that answered, where the source keeps versions.
pub type Versioned = (SecretValue, Option<i64>);

/// A value and where it came from.
pub struct Resolved {
    /// The value.
    pub value: SecretValue,
    /// The answering source's kind ("context", "env", "file", "server").
    pub source: String,
    /// The place that answered (`env SIGIL__CONTEXT__SECRETS__X`, a file, a server).
    pub place: String,
    /// Every place searched before it, in order (the answering place last).
    pub searched: Vec<String>,
    /// The version that answered, from a source that keeps versions (a server).
    pub version: Option<i64>,
}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolved")
            .field("value", &self.value)
            .field("source", &self.source)
            .field("place", &self.place)
            .field("version", &self.version)
            .finish()
    }
}

/// A name found in a listing: where it is served from, and which sources it is hidden in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The name.
    pub name: SecretName,
    /// The kind of the source that answers for it.
    pub source: String,
    /// Kinds of later sources that also hold it (shadowed).
    pub shadowed: Vec<String>,
}

/// The chain of an isolated scope: the scoped context alone.
fn isolated_chain() -> &'static [Arc<dyn Source>] {
    static CHAIN: std::sync::OnceLock<Vec<Arc<dyn Source>>> = std::sync::OnceLock::new();
    CHAIN.get_or_init(|| vec![Arc::new(ContextSource)])
}

/// A resolver of the scoped context alone (what every resolver is inside
/// [`context::isolated`]).
pub fn isolated_resolver() -> Arc<Resolver> {
    static RESOLVER: std::sync::OnceLock<Arc<Resolver>> = std::sync::OnceLock::new();
    RESOLVER
        .get_or_init(|| Arc::new(Resolver::new(isolated_chain().to_vec())))
        .clone()
}

/// The resolution chain: sources asked in order, the first hit wins.
#[derive(Clone)]
pub struct Resolver {
    sources: Vec<Arc<dyn Source>>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.sources.iter().map(|s| s.kind().to_owned()))
            .finish()
    }
}

impl Resolver {
    /// A chain of the given sources, in order.
    pub fn new(sources: Vec<Arc<dyn Source>>) -> Self {
        Resolver { sources }
    }

    /// The local chain: context, process environment, the config file.
    pub fn local(file: &ConfigFile) -> Self {
        Resolver::new(vec![
            Arc::new(ContextSource),
            Arc::new(EnvSource::process()),
            Arc::new(FileSource::new(file)),
        ])
    }

    /// The chain that `settings` ask for. With `backend = "server"`, `server` is added after the
    /// local sources, or alone when `server.use_local_secrets = false`.
    ///
    /// # Errors
    /// [`Error::Source`] when the settings ask for a server and none is given.
    pub fn from_settings(
        settings: &Settings,
        file: &ConfigFile,
        server: Option<Arc<dyn Source>>,
    ) -> Result<Self> {
        match (settings.backend, server) {
            (Backend::Local, _) => Ok(Resolver::local(file)),
            (Backend::Server, None) => Err(Error::Source {
                source_name: format!("server {}", settings.server.url),
                name: String::new(),
                message: "backend = \"server\" is set, but this program has no server client (the `sigil` \
                          crate plugs it in, or call `sigil_client::register()`)"
                    .into(),
            }),
            (Backend::Server, Some(server)) if settings.server.use_local_secrets => {
                let mut r = Resolver::local(file);
                r.sources.push(server);
                Ok(r)
            }
            (Backend::Server, Some(server)) => Ok(Resolver::new(vec![server])),
        }
    }

    /// The sources, in order.
    pub fn sources(&self) -> &[Arc<dyn Source>] {
        &self.sources
    }

    /// The sources a lookup asks now: inside [`context::isolated`], the scoped context alone.
    fn chain(&self) -> &[Arc<dyn Source>] {
        if context::is_isolated() {
            isolated_chain()
        } else {
            &self.sources
        }
    }

    /// The value of `name`.
    ///
    /// # Errors
    /// [`Error::NotFound`] naming every place searched, or the first source's failure.
    pub fn get(&self, name: &SecretName) -> Result<SecretValue> {
        for source in self.chain() {
            if let Some(v) = source.fetch(name)? {
                tracing::trace!(
                    secret = name.as_str(),
                    source = source.kind(),
                    "secret resolved"
                );
                if context::is_active() {
                    context::note_resolved(&v);
                }
                return Ok(v);
            }
        }
        Err(self.not_found(name))
    }

    /// The values of many names, in order: each source is asked once for all the names the
    /// sources before it did not hold (a server source answers them in one batch).
    ///
    /// # Errors
    /// [`Error::NotFound`] for the first name no source holds, or the first source's failure.
    pub fn get_many(&self, names: &[SecretName]) -> Result<Vec<SecretValue>> {
        Ok(self
            .fetch_all(names)?
            .into_iter()
            .map(|(_, value, _)| value)
            .collect())
    }

    /// The value of `name` with where it came from.
    ///
    /// # Errors
    /// As [`Resolver::get`].
    pub fn resolve(&self, name: &SecretName) -> Result<Resolved> {
        let mut searched = Vec::new();
        for source in self.chain() {
            let place = source.place(name);
            searched.push(place.clone());
            if let Some((value, version)) = source.fetch_versioned(name)? {
                if context::is_active() {
                    context::note_resolved(&value);
                }
                return Ok(Resolved {
                    value,
                    source: source.kind().to_owned(),
                    place,
                    searched,
                    version,
                });
            }
        }
        Err(self.not_found(name))
    }

    /// As [`Resolver::resolve`] for many names, with [`Resolver::get_many`]'s one request per
    /// source (a server answers them in one batch).
    ///
    /// # Errors
    /// As [`Resolver::get_many`].
    pub fn resolve_many(&self, names: &[SecretName]) -> Result<Vec<Resolved>> {
        let chain = self.chain();
        Ok(self
            .fetch_all(names)?
            .into_iter()
            .zip(names)
            .map(|((k, value, version), name)| {
                // the places are only spelled out for what is shown: `get_many` needs none
                let searched: Vec<String> = chain[..=k].iter().map(|s| s.place(name)).collect();
                Resolved {
                    value,
                    source: chain[k].kind().to_owned(),
                    place: searched[k].clone(),
                    searched,
                    version,
                }
            })
            .collect())
    }

    /// The values of the names the chain holds (`None` for the others), each source asked once
    /// for all the names the sources before it did not hold: what a flow run reads when it
    /// starts, one request to a server for every secret its tasks name.
    ///
    /// # Errors
    /// A source's failure (never a miss).
    pub fn get_found(&self, names: &[SecretName]) -> Result<Vec<Option<SecretValue>>> {
        Ok(self
            .fetch_found(names)?
            .into_iter()
            .map(|found| found.map(|(_, value, _)| value))
            .collect())
    }

    /// Each name's value, version and the index in the chain of the source that answered: each
    /// source asked once for all the names the sources before it did not hold.
    fn fetch_all(&self, names: &[SecretName]) -> Result<Vec<(usize, SecretValue, Option<i64>)>> {
        let found = self.fetch_found(names)?;
        if let Some(i) = found.iter().position(Option::is_none) {
            return Err(self.not_found(&names[i]));
        }
        Ok(found
            .into_iter()
            .map(|r| r.expect("every name was found"))
            .collect())
    }

    /// As [`Resolver::fetch_all`], a name no source holds left `None`.
    #[allow(clippy::type_complexity)]
    fn fetch_found(
        &self,
        names: &[SecretName],
    ) -> Result<Vec<Option<(usize, SecretValue, Option<i64>)>>> {
        let mut found: Vec<Option<(usize, SecretValue, Option<i64>)>> = vec![None; names.len()];
        let mut pending: Vec<usize> = (0..names.len()).collect();
        for (k, source) in self.chain().iter().enumerate() {
            if pending.is_empty() {
                break;
            }
            let asked: Vec<SecretName> = pending.iter().map(|&i| names[i].clone()).collect();
            let answers = source.fetch_many_versioned(&asked)?;
            let mut still = Vec::new();
            for (&i, answer) in pending.iter().zip(answers) {
                match answer {
                    Some((value, version)) => {
                        if context::is_active() {
                            context::note_resolved(&value);
                        }
                        found[i] = Some((k, value, version));
                    }
                    None => still.push(i),
                }
            }
            pending = still;
        }
        Ok(found)
    }

    /// Whether any source holds `name`.
    ///
    /// # Errors
    /// A source's failure (never a miss).
    pub fn exists(&self, name: &SecretName) -> Result<bool> {
        match self.get(name) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every name the sources hold, each with the source that answers for it.
    ///
    /// # Errors
    /// A source's failure.
    pub fn list(&self) -> Result<Vec<Listed>> {
        let mut out: Vec<Listed> = Vec::new();
        let mut index: HashMap<SecretName, usize> = HashMap::new();
        for source in self.chain() {
            for name in source.names()? {
                match index.get(&name) {
                    Some(&i) => out[i].shadowed.push(source.kind().to_owned()),
                    None => {
                        index.insert(name.clone(), out.len());
                        out.push(Listed {
                            name,
                            source: source.kind().to_owned(),
                            shadowed: Vec::new(),
                        });
                    }
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The places that would be searched for `name`, in order.
    pub fn places(&self, name: &SecretName) -> Vec<String> {
        self.chain().iter().map(|s| s.place(name)).collect()
    }

    fn not_found(&self, name: &SecretName) -> Error {
        Error::NotFound {
            name: name.to_string(),
            searched: self.places(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn file(text: &str) -> ConfigFile {
        ConfigFile::parse(Path::new("/etc/sigil/config.toml"), text).unwrap()
    }

    fn chain(env: &[(&str, &str)], text: &str) -> Resolver {
        Resolver::new(vec![
            Arc::new(ContextSource),
            Arc::new(EnvSource::fixed(Environment::from_pairs(
                env.iter().copied(),
            ))),
            Arc::new(FileSource::new(&file(text))),
        ])
    }

    fn n(s: &str) -> SecretName {
        s.parse().unwrap()
    }

    #[test]
    fn context_beats_env_beats_file() {
        let r = chain(
            &[
                ("SIGIL__CONTEXT__SECRETS__S", "env"),
                ("SIGIL__CONTEXT__SECRETS__E", "env"),
            ],
            "[context.secrets]\nS = \"file\"\nE = \"file\"\nF = \"file\"\n",
        );
        context::with_secrets([("S", "ctx")], || {
            assert_eq!(r.get(&n("S")).unwrap().expose_str(), Some("ctx"));
            assert_eq!(r.get(&n("E")).unwrap().expose_str(), Some("env"));
            assert_eq!(r.get(&n("F")).unwrap().expose_str(), Some("file"));
            let res = r.resolve(&n("E")).unwrap();
            assert_eq!(res.source, "env");
            assert_eq!(res.place, "env SIGIL__CONTEXT__SECRETS__E");
        });
        assert_eq!(r.get(&n("S")).unwrap().expose_str(), Some("env"));
    }

    #[test]
    fn get_many_asks_each_source_once_for_what_is_left() {
        struct Counting(std::sync::atomic::AtomicUsize);
        impl Source for Counting {
            fn kind(&self) -> &str {
                "server"
            }
            fn place(&self, _: &SecretName) -> String {
                "counting".into()
            }
            fn fetch(&self, n: &SecretName) -> Result<Option<SecretValue>> {
                Ok((n.as_str() != "NOWHERE").then(|| SecretValue::from("from-server")))
            }
            fn fetch_many(&self, names: &[SecretName]) -> Result<Vec<Option<SecretValue>>> {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                names.iter().map(|n| self.fetch(n)).collect()
            }
        }
        let counting = Arc::new(Counting(Default::default()));
        let r = Resolver::new(vec![
            Arc::new(FileSource::new(&file("[context.secrets]\nA = \"local\"\n"))),
            counting.clone(),
        ]);
        let got = r.get_many(&[n("B"), n("A"), n("C")]).unwrap();
        let texts: Vec<_> = got.iter().map(|v| v.expose_str().unwrap()).collect();
        assert_eq!(texts, ["from-server", "local", "from-server"]);
        assert_eq!(
            counting.0.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "one batch for B and C"
        );
        let e = r.get_many(&[n("A"), n("NOWHERE")]).unwrap_err().to_string();
        assert!(e.starts_with("secret \"NOWHERE\" not found"), "{e}");
    }

    #[test]
    fn case_is_kept() {
        let r = chain(
            &[("SIGIL__CONTEXT__SECRETS__mySecret", "lower")],
            "[context.secrets]\nMYSECRET = \"upper\"\n",
        );
        assert_eq!(r.get(&n("mySecret")).unwrap().expose_str(), Some("lower"));
        assert_eq!(r.get(&n("MYSECRET")).unwrap().expose_str(), Some("upper"));
        assert!(r.get(&n("mysecret")).unwrap_err().is_not_found());
    }

    #[test]
    fn not_found_lists_every_place() {
        let r = chain(&[], "");
        let e = r.get(&n("MYSECRET")).unwrap_err().to_string();
        assert_eq!(
            e,
            "secret \"MYSECRET\" not found (searched: context; env SIGIL__CONTEXT__SECRETS__MYSECRET; /etc/sigil/config.toml [context.secrets])"
        );
        let e = r.get(&n("prod/db")).unwrap_err().to_string();
        assert!(
            e.contains("env (not searched: the name is not a valid variable name)"),
            "{e}"
        );
    }

    struct Failing;
    impl Source for Failing {
        fn kind(&self) -> &str {
            "server"
        }
        fn place(&self, _: &SecretName) -> String {
            "server http://127.0.0.1:1 team \"default\"".into()
        }
        fn fetch(&self, name: &SecretName) -> Result<Option<SecretValue>> {
            Err(Error::Source {
                source_name: "server".into(),
                name: name.to_string(),
                message: "connection refused".into(),
            })
        }
    }

    #[test]
    fn a_failure_stops_the_chain_and_is_not_a_miss() {
        let r = Resolver::new(vec![
            Arc::new(Failing),
            Arc::new(FileSource::new(&file("[context.secrets]\nX = \"1\"\n"))),
        ]);
        let e = r.get(&n("X")).unwrap_err();
        assert!(!e.is_not_found());
        assert!(r.exists(&n("X")).is_err());
    }

    #[test]
    fn server_slot_follows_the_settings() {
        let env = Environment::from_pairs([("HOME", "/h"), ("SIGIL__BACKEND", "server")]);
        let paths = crate::config::Paths::from_env(&env).unwrap();
        let f = file("");
        let mut s = Settings::resolve(&env, &paths, &f).unwrap();
        assert!(Resolver::from_settings(&s, &f, None).is_err());
        let r = Resolver::from_settings(&s, &f, Some(Arc::new(Failing))).unwrap();
        assert_eq!(format!("{r:?}"), r#"["context", "env", "file", "server"]"#);
        s.server.use_local_secrets = false;
        let r = Resolver::from_settings(&s, &f, Some(Arc::new(Failing))).unwrap();
        assert_eq!(format!("{r:?}"), r#"["server"]"#);
    }

    #[test]
    fn file_changes_are_seen_after_recheck() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[context.secrets]\nX = \"one\"\n").unwrap();
        let src = FileSource::with_recheck(&ConfigFile::load(&path).unwrap(), Duration::ZERO);
        assert_eq!(
            src.fetch(&n("X")).unwrap().unwrap().expose_str(),
            Some("one")
        );
        std::fs::write(&path, "[context.secrets]\nX = \"two, longer\"\n").unwrap();
        assert_eq!(
            src.fetch(&n("X")).unwrap().unwrap().expose_str(),
            Some("two, longer")
        );
        std::fs::write(&path, "[context.secrets\n").unwrap();
        assert!(matches!(
            src.fetch(&n("X")),
            Err(Error::ConfigSyntax { .. })
        ));
    }

    /// With a recheck interval the file is not looked at on every lookup (a lookup within the
    /// interval answers from memory), and an edit is seen once the interval has passed: with the
    /// default interval, within the second the README promises.
    #[test]
    fn file_changes_are_seen_once_the_recheck_interval_has_passed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[context.secrets]\nX = \"one\"\n").unwrap();
        let file = ConfigFile::load(&path).unwrap();
        let (slow, default) = (
            FileSource::with_recheck(&file, Duration::from_secs(30)),
            FileSource::new(&file),
        );
        assert_eq!(DEFAULT_RECHECK, Duration::from_secs(1));
        let x = |src: &FileSource| {
            src.fetch(&n("X"))
                .unwrap()
                .unwrap()
                .expose_str()
                .map(str::to_owned)
        };
        std::fs::write(&path, "[context.secrets]\nX = \"two, longer\"\n").unwrap();
        assert_eq!(
            x(&slow).as_deref(),
            Some("one"),
            "looked at the file before its interval"
        );
        std::thread::sleep(DEFAULT_RECHECK + Duration::from_millis(50));
        assert_eq!(
            x(&default).as_deref(),
            Some("two, longer"),
            "an edit unseen after a second"
        );
        assert_eq!(x(&slow).as_deref(), Some("one"));
    }

    #[test]
    fn listing_shows_the_winner_and_shadowed() {
        let r = chain(
            &[("SIGIL__CONTEXT__SECRETS__A", "x")],
            "[context.secrets]\nA = \"1\"\nB = \"2\"\n",
        );
        let l = r.list().unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(
            (
                l[0].name.as_str(),
                l[0].source.as_str(),
                l[0].shadowed.clone()
            ),
            ("A", "env", vec!["file".to_owned()])
        );
        assert_eq!((l[1].name.as_str(), l[1].source.as_str()), ("B", "file"));
    }
}
