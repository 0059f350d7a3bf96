//! The local sources: scoped context, `SIGIL__CONTEXT__SECRETS__<NAME>` variables, and the config
//! file's `[context.secrets]` (re-read within a second of a change).

#[allow(unused_imports)]
use super::*;

/// Scoped secrets of the current thread ([`crate::context`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct ContextSource;

impl Source for ContextSource {
    fn kind(&self) -> &str {
        "context"
    }
    fn place(&self, _: &SecretName) -> String {
        if context::is_isolated() {
            "context (isolated: no other source is asked)".into()
        } else {
            "context".into()
        }
    }
    fn fetch(&self, name: &SecretName) -> Result<Option<SecretValue>> {
        if !context::is_active() {
            return Ok(None);
        }
        Ok(context::lookup(name.as_str()))
    }
    fn names(&self) -> Result<Vec<SecretName>> {
        Ok(context::names()
            .iter()
            .filter_map(|n| SecretName::parse(n).ok())
            .collect())
    }
}

/// `SIGIL__CONTEXT__SECRETS__<NAME>` variables; the name's case is kept and the value is taken
/// verbatim (no expansion, no casting).
#[derive(Clone, Default)]
pub struct EnvSource {
    fixed: Option<Environment>,
}

impl EnvSource {
    /// Reads the live process environment at each lookup.
    pub fn process() -> Self {
        EnvSource { fixed: None }
    }

    /// Reads a fixed environment (tests, embedding).
    pub fn fixed(env: Environment) -> Self {
        EnvSource { fixed: Some(env) }
    }

    /// The variable for `name`, when the name can be one.
    pub fn var_name(name: &SecretName) -> Option<String> {
        name.is_env_compatible()
            .then(|| format!("{ENV_SECRET_PREFIX}{}", name.as_str()))
    }
}

impl Source for EnvSource {
    fn kind(&self) -> &str {
        "env"
    }
    fn place(&self, name: &SecretName) -> String {
        match Self::var_name(name) {
            Some(var) => format!("env {var}"),
            None => "env (not searched: the name is not a valid variable name)".into(),
        }
    }
    fn fetch(&self, name: &SecretName) -> Result<Option<SecretValue>> {
        if !name.is_env_compatible() {
            return Ok(None);
        }
        // the variable's name is built on the stack: this is the hot path of every lookup
        let mut buf = [0u8; ENV_SECRET_PREFIX.len() + crate::name::MAX_NAME_BYTES];
        let len = ENV_SECRET_PREFIX.len() + name.as_str().len();
        buf[..ENV_SECRET_PREFIX.len()].copy_from_slice(ENV_SECRET_PREFIX.as_bytes());
        buf[ENV_SECRET_PREFIX.len()..len].copy_from_slice(name.as_str().as_bytes());
        let var = std::str::from_utf8(&buf[..len]).expect("prefix and name are ASCII");
        let raw = match &self.fixed {
            Some(env) => env.var(var).cloned(),
            None => std::env::var_os(var),
        };
        match raw {
            None => Ok(None),
            Some(raw) => match raw.into_string() {
                Ok(s) => Ok(Some(SecretValue::from(s))),
                Err(_) => Err(Error::InvalidEnv {
                    var: var.to_owned(),
                    message: "the value is not valid UTF-8".into(),
                }),
            },
        }
    }
    fn names(&self) -> Result<Vec<SecretName>> {
        let env = match &self.fixed {
            Some(e) => e.clone(),
            None => Environment::from_process(),
        };
        let mut v: Vec<SecretName> = env
            .with_prefix(ENV_SECRET_PREFIX)
            .filter_map(|(n, _)| SecretName::parse(n).ok())
            .filter(SecretName::is_env_compatible)
            .collect();
        v.sort();
        Ok(v)
    }
}

/// How long a [`FileSource`] trusts what it read before it looks at the file again.
pub const DEFAULT_RECHECK: Duration = Duration::from_secs(1);

#[derive(PartialEq, Clone, Copy)]
struct Fingerprint {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn fingerprint(path: &std::path::Path) -> Option<Fingerprint> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(Fingerprint {
        modified: m.modified().ok(),
        len: m.len(),
        inode: m.ino(),
    })
}

struct FileState {
    secrets: HashMap<String, SecretValue>,
    names: Vec<SecretName>,
    fingerprint: Option<Fingerprint>,
}

/// Milliseconds of the coarse monotonic clock: a few nanoseconds to read, unlike
/// `Instant::now()`, and precise enough to decide "has a second passed?".
fn coarse_now_ms() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
    (t.tv_sec as u64)
        .saturating_mul(1000)
        .saturating_add(t.tv_nsec as u64 / 1_000_000)
}

/// The `[context.secrets]` table of a config file.
///
/// The file is parsed once and kept in memory; a lookup looks at the file's metadata again when
/// more than `recheck` (default one second) has passed since the last look, and re-reads it when
/// it changed. A change to the file is therefore seen by a running process within a second.
pub struct FileSource {
    path: PathBuf,
    recheck_ms: u64,
    checked_at_ms: AtomicU64,
    state: RwLock<FileState>,
}

impl FileSource {
    /// Serves the secrets of an already parsed file.
    pub fn new(file: &ConfigFile) -> Self {
        Self::with_recheck(file, DEFAULT_RECHECK)
    }

    /// As [`FileSource::new`], looking at the file again after `recheck` (zero: at every lookup).
    pub fn with_recheck(file: &ConfigFile, recheck: Duration) -> Self {
        FileSource {
            path: file.path.clone(),
            recheck_ms: recheck.as_millis() as u64,
            checked_at_ms: AtomicU64::new(coarse_now_ms()),
            state: RwLock::new(Self::state_of(file, fingerprint(&file.path))),
        }
    }

    fn state_of(file: &ConfigFile, fingerprint: Option<Fingerprint>) -> FileState {
        FileState {
            secrets: file
                .secrets
                .iter()
                .map(|(n, v)| (n.to_string(), v.clone()))
                .collect(),
            names: file.secrets.iter().map(|(n, _)| n.clone()).collect(),
            fingerprint,
        }
    }

    /// Re-reads the file when it is time to look and it changed.
    fn refresh(&self) -> Result<()> {
        let now = coarse_now_ms();
        let last = self.checked_at_ms.load(Ordering::Relaxed);
        if self.recheck_ms > 0 && now.saturating_sub(last) < self.recheck_ms {
            return Ok(());
        }
        let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
        let current = fingerprint(&self.path);
        if current != st.fingerprint {
            tracing::debug!(path = %self.path.display(), "config file changed; reading it again");
            let file = ConfigFile::load(&self.path)?;
            *st = Self::state_of(&file, current);
        }
        self.checked_at_ms.store(now, Ordering::Relaxed);
        Ok(())
    }
}

impl Source for FileSource {
    fn kind(&self) -> &str {
        "file"
    }
    fn place(&self, _: &SecretName) -> String {
        format!("{} [context.secrets]", display_path(&self.path))
    }
    fn fetch(&self, name: &SecretName) -> Result<Option<SecretValue>> {
        self.refresh()?;
        let st = self.state.read().unwrap_or_else(|p| p.into_inner());
        Ok(st.secrets.get(name.as_str()).cloned())
    }
    fn names(&self) -> Result<Vec<SecretName>> {
        self.refresh()?;
        Ok(self
            .state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .names
            .clone())
    }
}
