//! Secret tasks: Prefect's `PrefectSecret` and `EnvVarSecret`.

use std::sync::Arc;

use sigil_core::{SecretName, SecretValue};

use crate::context::TaskContext;
use crate::error::TaskError;
use crate::flow::{Body, Flow, Handle, NodeKind, TaskSpec, Value};

enum NameFrom {
    Fixed(String),
    Input(Handle<String>),
    OptionalInput(Handle<Option<String>>),
}

/// A task whose result is a secret's value, resolved through the chain **when the task runs**
/// (never when the flow is built), on every run and every retry. Its value is registered with the
/// run's Redactor, passed to the tasks that take it, and never kept after the run.
///
/// ```
/// # mod sigil { pub use sigil_core::{context, SecretValue}; pub use sigil_flow as flow; }
/// use sigil::flow::{Flow, SecretTask};
/// let mut flow = Flow::new("f");
/// let table = flow.parameter_with_default("secret_name", String::from("DB_PASSWORD"));
/// let fixed = flow.add(SecretTask::new("API_TOKEN"));            // name given at build time
/// let by_param = flow.add(SecretTask::from_input(table));        // name given at run time
/// ```
pub struct SecretTask {
    name: NameFrom,
    task_name: Option<String>,
}

impl SecretTask {
    /// Resolves the secret `name`. The task is named after the secret unless [`SecretTask::named`].
    pub fn new(name: impl Into<String>) -> Self {
        SecretTask {
            name: NameFrom::Fixed(name.into()),
            task_name: None,
        }
    }

    /// Resolves the secret whose name a parameter or an upstream task gives at run time. The
    /// task is named `secret_of_<input>` unless [`SecretTask::named`].
    pub fn from_input(name: Handle<String>) -> Self {
        SecretTask {
            name: NameFrom::Input(name),
            task_name: None,
        }
    }

    /// As [`SecretTask::from_input`], from an optional name; `None` fails the task with a clear
    /// error.
    pub fn from_optional_input(name: Handle<Option<String>>) -> Self {
        SecretTask {
            name: NameFrom::OptionalInput(name),
            task_name: None,
        }
    }

    /// Names the task (two secret tasks for one secret need different names).
    pub fn named(mut self, task_name: impl Into<String>) -> Self {
        self.task_name = Some(task_name.into());
        self
    }
}

fn resolve(ctx: &TaskContext, name: Option<&str>) -> Result<SecretValue, TaskError> {
    let name = match name {
        Some(n) if !n.is_empty() => n,
        _ => {
            return Err(format!(
                "secret task {:?}: no secret name was given",
                ctx.task_name()
            )
            .into());
        }
    };
    let name = SecretName::parse(name)?;
    let value = ctx
        .resolver()
        .map_err(|e| e.for_secret(name.as_str()))?
        .get(&name)?;
    ctx.register_secret(&value);
    Ok(value)
}

/// `secret_of_<input>`: two secret tasks named by different inputs get different names (both
/// were `secret`, and the second was refused as a duplicate).
fn default_task_name(flow: &Flow, flow_id: u64, node: usize) -> String {
    match flow.nodes.get(node) {
        Some(input) if flow.id == flow_id => format!("secret_of_{}", input.name),
        // a handle of another flow: `own_ids` reports it
        _ => "secret".into(),
    }
}

impl TaskSpec for SecretTask {
    type Output = SecretValue;

    fn add_to(self, flow: &mut Flow) -> Handle<SecretValue> {
        let (task_name, inputs, body): (String, Vec<(u64, usize)>, Body) = match self.name {
            NameFrom::Fixed(name) => {
                let task_name = self.task_name.unwrap_or_else(|| name.clone());
                let fixed = name.clone();
                let body: Body = Arc::new(move |ctx, _| {
                    // read with the run's other known names when it started, or now
                    let value = match ctx.take_prefetched() {
                        Some(v) => v,
                        None => resolve(ctx, Some(&fixed))?,
                    };
                    Ok(Arc::new(value) as Value)
                });
                let handle = flow.push(task_name, vec![], NodeKind::Task(body), true);
                flow.nodes[handle.id].prefetch = Some(name);
                return handle;
            }
            NameFrom::Input(h) => {
                let body: Body = Arc::new(|ctx, values| {
                    let name = values[0].downcast_ref::<String>().expect("typed handle");
                    resolve(ctx, Some(name)).map(|v| Arc::new(v) as Value)
                });
                (
                    self.task_name
                        .unwrap_or_else(|| default_task_name(flow, h.flow, h.id)),
                    vec![(h.flow, h.id)],
                    body,
                )
            }
            NameFrom::OptionalInput(h) => {
                let body: Body = Arc::new(|ctx, values| {
                    let name = values[0]
                        .downcast_ref::<Option<String>>()
                        .expect("typed handle");
                    resolve(ctx, name.as_deref()).map(|v| Arc::new(v) as Value)
                });
                (
                    self.task_name
                        .unwrap_or_else(|| default_task_name(flow, h.flow, h.id)),
                    vec![(h.flow, h.id)],
                    body,
                )
            }
        };
        let inputs = flow.own_ids(&task_name, inputs);
        flow.push(task_name, inputs, NodeKind::Task(body), true)
    }
}

/// Reads an environment variable by its literal name when the task runs (Prefect's
/// `EnvVarSecret`). A missing variable yields `None`, or fails the task with
/// "environment variable not set: NAME" under [`EnvVarSecret::raise_if_missing`]. The value is
/// registered with the run's Redactor.
///
/// ```
/// # mod sigil { pub use sigil_core::{context, SecretValue}; pub use sigil_flow as flow; }
/// use sigil::flow::{EnvVarSecret, Flow};
/// let mut flow = Flow::new("f");
/// let port = flow.add(EnvVarSecret::new("PGPORT").cast(|s| s.parse::<u16>()));
/// let token = flow.add(EnvVarSecret::new("API_TOKEN").raise_if_missing(true));
/// ```
pub struct EnvVarSecret<T = String> {
    var: String,
    raise_if_missing: bool,
    task_name: Option<String>,
    cast: Arc<dyn Fn(String) -> Result<T, TaskError> + Send + Sync>,
}

impl EnvVarSecret<String> {
    /// Reads the variable `var`.
    pub fn new(var: impl Into<String>) -> Self {
        EnvVarSecret {
            var: var.into(),
            raise_if_missing: false,
            task_name: None,
            cast: Arc::new(Ok),
        }
    }
}

impl<T: Send + Sync + 'static> EnvVarSecret<T> {
    /// Fails the task when the variable is not set, instead of yielding `None`.
    pub fn raise_if_missing(mut self, yes: bool) -> Self {
        self.raise_if_missing = yes;
        self
    }

    /// Names the task (default: the variable's name).
    pub fn named(mut self, task_name: impl Into<String>) -> Self {
        self.task_name = Some(task_name.into());
        self
    }

    /// Converts the value; a failed conversion fails the task (without quoting the value).
    pub fn cast<U, E, F>(self, f: F) -> EnvVarSecret<U>
    where
        F: Fn(&str) -> Result<U, E> + Send + Sync + 'static,
        E: std::fmt::Display,
    {
        let var = self.var.clone();
        EnvVarSecret {
            var: self.var,
            raise_if_missing: self.raise_if_missing,
            task_name: self.task_name,
            cast: Arc::new(move |s: String| {
                f(&s).map_err(|e| {
                    // the message may quote the value: it is masked like every task error
                    format!("environment variable {var}: cannot convert the value: {e}").into()
                })
            }),
        }
    }
}

impl<T: Send + Sync + 'static> TaskSpec for EnvVarSecret<T> {
    type Output = Option<T>;

    fn add_to(self, flow: &mut Flow) -> Handle<Option<T>> {
        let task_name = self.task_name.unwrap_or_else(|| self.var.clone());
        let (var, raise, cast) = (self.var, self.raise_if_missing, self.cast);
        let body: Body = Arc::new(move |ctx, _| {
            let out: Option<T> = match std::env::var_os(&var) {
                None if raise => return Err(format!("environment variable not set: {var}").into()),
                None => None,
                Some(raw) => {
                    let s = raw
                        .into_string()
                        .map_err(|_| format!("environment variable {var} is not valid UTF-8"))?;
                    ctx.register_secret(&SecretValue::from(s.as_str()));
                    Some(cast(s)?)
                }
            };
            Ok(Arc::new(out) as Value)
        });
        flow.push(task_name, Vec::new(), NodeKind::Task(body), true)
    }
}
