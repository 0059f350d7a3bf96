//! Scoped context: secrets set for the extent of a closure.
//!
//! A scope layers secrets on top of every other source for the code it runs; scopes nest, the
//! innermost wins, and a scope ends when its closure returns (or panics). Scopes belong to the
//! **thread** that entered them: a thread spawned inside a scope does not see it. To carry the
//! current scopes to another thread (a worker pool running a flow's tasks), take a
//! [`snapshot`] and [`Snapshot::enter`] it there.
//!
//! A scope may also carry attribution — the flow run and task on whose behalf secrets are read —
//! which sources that talk to a server pass along (see [`attribution`]).
//!
//! ```
//! use sigil_core::context;
//! use sigil_core::SecretValue;
//!
//! context::with_secrets([("DB", SecretValue::from("outer"))], || {
//!     context::with_secrets([("DB", SecretValue::from("inner"))], || {
//!         assert_eq!(context::lookup("DB").unwrap().expose_str(), Some("inner"));
//!     });
//!     assert_eq!(context::lookup("DB").unwrap().expose_str(), Some("outer"));
//! });
//! assert!(context::lookup("DB").is_none());
//! ```

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use crate::redact::Redactor;
use crate::value::SecretValue;

/// Who is reading: a flow run and the task within it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribution {
    /// The flow run's id.
    pub flow_run: String,
    /// The task's name, when a task is running.
    pub task: Option<String>,
    /// For a read of many secrets on behalf of many tasks (the batch a flow run makes when it
    /// starts): the task that asks for each name, by name.
    pub tasks_by_name: Option<Arc<HashMap<String, String>>>,
}

#[derive(Default)]
struct Layer {
    isolated: bool,
    secrets: HashMap<String, SecretValue>,
    attribution: Option<Attribution>,
    redactor: Option<Arc<Redactor>>,
}

thread_local! {
    static STACK: RefCell<Vec<Arc<Layer>>> = const { RefCell::new(Vec::new()) };
}

/// A scope being built: secrets and attribution, then [`Scope::run`].
#[derive(Default)]
#[must_use = "a scope does nothing until it is run"]
pub struct Scope {
    layer: Layer,
}

impl Scope {
    /// An empty scope.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a secret. Names are not validated here; invalid names are never looked up.
    pub fn secret(mut self, name: impl Into<String>, value: impl Into<SecretValue>) -> Self {
        self.layer.secrets.insert(name.into(), value.into());
        self
    }

    /// Makes the scope isolated: inside it every lookup asks the scoped context alone — no
    /// environment variable, no config file, no server — and the default chain is not even
    /// built (see [`isolated`]).
    pub fn isolated(mut self) -> Self {
        self.layer.isolated = true;
        self
    }

    /// Sets who is reading.
    pub fn attribution(mut self, attribution: Attribution) -> Self {
        self.layer.attribution = Some(attribution);
        self
    }

    /// Registers every value resolved inside this scope (by any [`crate::Resolver`]) with
    /// `redactor`, so that output masked by it hides them: a flow run masks its tasks' logs this way.
    pub fn redactor(mut self, redactor: Arc<Redactor>) -> Self {
        self.layer.redactor = Some(redactor);
        self
    }

    /// Runs `f` with this scope on top of the thread's scopes.
    pub fn run<R>(self, f: impl FnOnce() -> R) -> R {
        push_and_run(vec![Arc::new(self.layer)], f)
    }
}

/// Runs `f` with `secrets` layered on top of every source.
pub fn with_secrets<N: Into<String>, V: Into<SecretValue>, R>(
    secrets: impl IntoIterator<Item = (N, V)>,
    f: impl FnOnce() -> R,
) -> R {
    let mut scope = Scope::new();
    for (n, v) in secrets {
        scope = scope.secret(n, v);
    }
    scope.run(f)
}

/// Runs `f` with `secrets` as the only source of secrets: for tests.
///
/// Inside, [`crate::Resolver`]s — the default chain and any other — ask the scoped context alone:
/// no `SIGIL__CONTEXT__SECRETS__*` variable, config file or server is read, so a test passes or
/// fails on what it sets, whatever the machine's `config.toml` or environment hold (a syntax
/// error, a typo in a `SIGIL__…` variable, `SIGIL__BACKEND=server` without a key). A secret the
/// test did not set is not found. Scopes nested inside (with [`with_secrets`]) add to it; a
/// flow run inside it carries it to its tasks.
///
/// ```
/// use sigil_core::{context, SecretName};
/// context::isolated([("DB_PASSWORD", "test-pw")], || -> sigil_core::Result<()> {
///     let chain = sigil_core::global::default_resolver()?;
///     assert_eq!(chain.get(&"DB_PASSWORD".parse()?)?.expose_str(), Some("test-pw"));
///     let missing: SecretName = "HOME_TOKEN".parse()?;
///     assert!(chain.get(&missing).unwrap_err().is_not_found());
///     Ok(())
/// })?;
/// # Ok::<(), sigil_core::Error>(())
/// ```
pub fn isolated<N: Into<String>, V: Into<SecretValue>, R>(
    secrets: impl IntoIterator<Item = (N, V)>,
    f: impl FnOnce() -> R,
) -> R {
    let mut scope = Scope::new().isolated();
    for (n, v) in secrets {
        scope = scope.secret(n, v);
    }
    scope.run(f)
}

/// Whether an isolated scope ([`isolated`]) is active on this thread.
pub fn is_isolated() -> bool {
    STACK.with(|s| s.borrow().iter().any(|l| l.isolated))
}

struct PopGuard(usize);

impl Drop for PopGuard {
    fn drop(&mut self) {
        STACK.with(|s| {
            let mut s = s.borrow_mut();
            let keep = s.len().saturating_sub(self.0);
            s.truncate(keep);
        });
    }
}

fn push_and_run<R>(layers: Vec<Arc<Layer>>, f: impl FnOnce() -> R) -> R {
    let n = layers.len();
    STACK.with(|s| s.borrow_mut().extend(layers));
    let _guard = PopGuard(n);
    f()
}

/// The innermost value of `name` in this thread's scopes.
pub fn lookup(name: &str) -> Option<SecretValue> {
    STACK.with(|s| {
        let s = s.borrow();
        s.iter()
            .rev()
            .find_map(|layer| layer.secrets.get(name).cloned())
    })
}

/// Whether any scope is active on this thread.
pub fn is_active() -> bool {
    STACK.with(|s| !s.borrow().is_empty())
}

/// The innermost attribution of this thread's scopes.
pub fn attribution() -> Option<Attribution> {
    STACK.with(|s| s.borrow().iter().rev().find_map(|l| l.attribution.clone()))
}

/// Registers a resolved value with the innermost scope's Redactor, if a scope set one.
pub fn note_resolved(value: &SecretValue) {
    let redactor = STACK.with(|s| s.borrow().iter().rev().find_map(|l| l.redactor.clone()));
    if let Some(r) = redactor {
        r.register(value);
    }
}

/// The innermost scope's Redactor.
pub fn redactor() -> Option<Arc<Redactor>> {
    STACK.with(|s| s.borrow().iter().rev().find_map(|l| l.redactor.clone()))
}

/// The names visible in this thread's scopes.
pub fn names() -> Vec<String> {
    STACK.with(|s| {
        let mut v: Vec<String> = s
            .borrow()
            .iter()
            .flat_map(|l| l.secrets.keys().cloned())
            .collect();
        v.sort();
        v.dedup();
        v
    })
}

/// The current thread's scopes, to be entered on another thread.
#[derive(Clone)]
pub struct Snapshot(Vec<Arc<Layer>>);

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Snapshot({} layers)", self.0.len())
    }
}

/// Captures this thread's scopes (cheap: the layers are shared, not copied).
pub fn snapshot() -> Snapshot {
    STACK.with(|s| Snapshot(s.borrow().clone()))
}

impl Snapshot {
    /// Runs `f` with the captured scopes layered on top of this thread's own.
    pub fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        push_and_run(self.0.clone(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_and_panics_restore_the_stack() {
        with_secrets([("A", "1"), ("B", "2")], || {
            with_secrets([("A", "3")], || {
                assert_eq!(lookup("A").unwrap().expose_str(), Some("3"));
                assert_eq!(lookup("B").unwrap().expose_str(), Some("2"));
                assert_eq!(names(), ["A", "B"]);
            });
            let r = std::panic::catch_unwind(|| with_secrets([("A", "p")], || panic!("boom")));
            assert!(r.is_err());
            assert_eq!(lookup("A").unwrap().expose_str(), Some("1"));
        });
        assert!(!is_active());
    }

    #[test]
    fn threads_do_not_inherit_but_snapshots_carry() {
        with_secrets([("T", "v")], || {
            let seen = std::thread::spawn(|| lookup("T").is_some()).join().unwrap();
            assert!(!seen, "a new thread must not see the parent's scope");
            let snap = snapshot();
            let seen = std::thread::spawn(move || {
                snap.enter(|| lookup("T").map(|v| v.expose_str().unwrap().to_owned()))
            })
            .join()
            .unwrap();
            assert_eq!(seen.as_deref(), Some("v"));
        });
    }

    #[test]
    fn attribution_is_innermost() {
        let a = |t: &str| Attribution {
            tasks_by_name: None,
            flow_run: "run-1".into(),
            task: Some(t.into()),
        };
        Scope::new().attribution(a("outer")).run(|| {
            Scope::new()
                .attribution(a("inner"))
                .run(|| assert_eq!(attribution(), Some(a("inner"))));
            assert_eq!(attribution(), Some(a("outer")));
        });
        assert_eq!(attribution(), None);
    }
}

#[cfg(test)]
mod redactor_tests {
    use super::*;

    #[test]
    fn values_resolved_in_a_scope_are_registered() {
        let file = crate::ConfigFile::parse(
            "c.toml".as_ref(),
            "[context.secrets]\nDB = \"db-password-1\"\n",
        )
        .unwrap();
        let chain = crate::Resolver::local(&file);
        let r = Arc::new(Redactor::new());
        Scope::new().redactor(r.clone()).run(|| {
            chain.get(&"DB".parse().unwrap()).unwrap();
        });
        assert_eq!(
            r.redact("url=postgres://u:db-password-1@h"),
            "url=postgres://u:***@h"
        );
        // outside the scope nothing is registered
        let other = Arc::new(Redactor::new());
        chain.get(&"DB".parse().unwrap()).unwrap();
        assert_eq!(other.pattern_count(), 0);
    }
}
