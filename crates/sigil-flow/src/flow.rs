//! Building a flow: tasks, typed handles, parameters, options.

use std::any::Any;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::context::TaskContext;
use crate::error::{Error, TaskError};

/// A task's output, type-erased while it travels between tasks.
pub(crate) type Value = Arc<dyn Any + Send + Sync>;

/// A task's body, type-erased: inputs in, output out.
pub(crate) type Body =
    Arc<dyn Fn(&TaskContext, &[Value]) -> Result<Value, TaskError> + Send + Sync>;

static NEXT_FLOW_ID: AtomicU64 = AtomicU64::new(1);

/// The typed result of a task (or parameter) in a flow, to be passed to the tasks that need it.
///
/// A handle can only be used in the flow that made it, and only for tasks added after it, so a
/// flow wired through handles has no data cycles; a task whose function takes the wrong type does
/// not compile:
///
/// ```compile_fail
/// # mod sigil { pub use sigil_core::{context, SecretValue}; pub use sigil_flow as flow; }
/// use sigil::flow::Flow;
/// let mut flow = Flow::new("f");
/// let n = flow.task("n", (), |_, ()| Ok(42u32));
/// flow.task("greet", n, |_, name: String| Ok(name.len())); // u32 is not a String
/// ```
///
/// Two inputs arrive as a tuple of the two types, in order:
///
/// ```compile_fail
/// # mod sigil { pub use sigil_core::{context, SecretValue}; pub use sigil_flow as flow; }
/// use sigil::flow::Flow;
/// let mut flow = Flow::new("f");
/// let a = flow.task("a", (), |_, ()| Ok(1u8));
/// let b = flow.task("b", (), |_, ()| Ok(String::new()));
/// flow.task("c", (a, b), |_, (s, n): (String, u8)| Ok(())); // swapped
/// ```
///
/// A fan-in takes handles of one type:
///
/// ```compile_fail
/// # mod sigil { pub use sigil_core::{context, SecretValue}; pub use sigil_flow as flow; }
/// use sigil::flow::Flow;
/// let mut flow = Flow::new("f");
/// let a = flow.task("a", (), |_, ()| Ok(1u8));
/// let b = flow.task("b", (), |_, ()| Ok(2u16));
/// flow.task("all", vec![a, b], |_, v: Vec<u8>| Ok(v.len()));
/// ```
///
/// A secret task's output is a `SecretValue`, not a `String`:
///
/// ```compile_fail
/// # mod sigil { pub use sigil_core::{context, SecretValue}; pub use sigil_flow as flow; }
/// use sigil::flow::{Flow, SecretTask};
/// let mut flow = Flow::new("f");
/// let s = flow.add(SecretTask::new("X"));
/// flow.task("use", s, |_, v: String| Ok(v));
/// ```
pub struct Handle<T> {
    pub(crate) flow: u64,
    pub(crate) id: usize,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Handle<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Handle<T> {}

impl<T> std::fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Handle(#{})", self.id)
    }
}

impl<T> Handle<T> {
    fn new(flow: u64, id: usize) -> Self {
        Handle {
            flow,
            id,
            _t: PhantomData,
        }
    }
}

/// What a task takes as input: nothing (`()`), one handle, a tuple of handles (up to 8), or a
/// `Vec` of handles of one type (fan-in).
pub trait Inputs {
    /// The values the task's function receives.
    type Values: Send + 'static;
    /// The handles' flows and task ids, in order.
    fn ids(&self) -> Vec<(u64, usize)>;
    /// Builds the values from the upstream outputs, in the order of [`Inputs::ids`].
    fn extract(values: &[Value]) -> Self::Values;
}

fn get<T: Clone + 'static>(v: &Value) -> T {
    v.downcast_ref::<T>()
        .expect("handles are typed: the output has the handle's type")
        .clone()
}

impl Inputs for () {
    type Values = ();
    fn ids(&self) -> Vec<(u64, usize)> {
        Vec::new()
    }
    fn extract(_: &[Value]) {}
}

impl<T: Clone + Send + Sync + 'static> Inputs for Handle<T> {
    type Values = T;
    fn ids(&self) -> Vec<(u64, usize)> {
        vec![(self.flow, self.id)]
    }
    fn extract(values: &[Value]) -> T {
        get(&values[0])
    }
}

impl<T: Clone + Send + Sync + 'static> Inputs for Vec<Handle<T>> {
    type Values = Vec<T>;
    fn ids(&self) -> Vec<(u64, usize)> {
        self.iter().map(|h| (h.flow, h.id)).collect()
    }
    fn extract(values: &[Value]) -> Vec<T> {
        values.iter().map(get).collect()
    }
}

macro_rules! tuple_inputs {
    ($($t:ident $i:tt),+) => {
        impl<$($t: Clone + Send + Sync + 'static),+> Inputs for ($(Handle<$t>,)+) {
            type Values = ($($t,)+);
            fn ids(&self) -> Vec<(u64, usize)> {
                vec![$((self.$i.flow, self.$i.id)),+]
            }
            fn extract(values: &[Value]) -> Self::Values {
                ($(get::<$t>(&values[$i]),)+)
            }
        }
    };
}

tuple_inputs!(A 0);
tuple_inputs!(A 0, B 1);
tuple_inputs!(A 0, B 1, C 2);
tuple_inputs!(A 0, B 1, C 2, D 3);
tuple_inputs!(A 0, B 1, C 2, D 3, E 4);
tuple_inputs!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple_inputs!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_inputs!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

/// When a task runs, given how its upstream tasks ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// Run when every upstream task succeeded (the default); otherwise end as `UpstreamFailed`.
    #[default]
    AllSuccessful,
    /// Run once every upstream task has finished, whatever its state: clean-up tasks. A task's
    /// function needs its inputs, so a failed *data* input still ends it as `UpstreamFailed`;
    /// ordering-only upstreams (`after`) may have failed.
    AlwaysRun,
}

/// Per-task options.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskOptions {
    /// How many times a failed (or timed-out) attempt is tried again.
    pub max_retries: u32,
    /// How long to wait before each retry.
    pub retry_delay: Duration,
    /// An attempt running longer than this ends as timed out (the thread running it is
    /// abandoned and its result discarded; [`TaskContext::is_cancelled`] tells the task).
    pub timeout: Option<Duration>,
    /// When the task runs.
    pub trigger: Trigger,
}

impl Default for TaskOptions {
    fn default() -> Self {
        TaskOptions {
            max_retries: 0,
            retry_delay: Duration::ZERO,
            timeout: None,
            trigger: Trigger::AllSuccessful,
        }
    }
}

pub(crate) enum NodeKind {
    Task(Body),
    Parameter {
        default: Option<Value>,
        type_id: std::any::TypeId,
        type_name: &'static str,
    },
}

pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) inputs: Vec<usize>,
    pub(crate) after: Vec<usize>,
    pub(crate) kind: NodeKind,
    pub(crate) options: TaskOptions,
    /// The output is a secret: never kept after the run.
    pub(crate) secret: bool,
    /// A secret task's name known when the flow is built: read with the others when the run
    /// starts, in one request to a server.
    pub(crate) prefetch: Option<String>,
}

/// A flow: tasks wired by their inputs, run as many times as you like.
///
/// ```
/// # mod sigil { pub use sigil_core::{context, SecretValue}; pub use sigil_flow as flow; }
/// use sigil::flow::{Flow, SecretTask};
/// use sigil::{context, SecretValue};
///
/// let mut flow = Flow::new("example");
/// let my_secret = flow.add(SecretTask::new("MYSECRET"));
/// let connected = flow.task("my_task", my_secret, |ctx, credentials: SecretValue| {
///     let password = credentials.expose_str().ok_or("MYSECRET is not a string")?;
///     ctx.info(format!("connecting with {password}"));
///     Ok(credentials.size())
/// });
/// let run = context::with_secrets([("MYSECRET", "hunter22")], || flow.run())?;
/// assert!(run.is_success());
/// assert_eq!(run.output(connected), Some(8));
/// assert_eq!(run.logs()[0].message, "connecting with ***");
/// # Ok::<(), sigil::flow::Error>(())
/// ```
pub struct Flow {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) nodes: Vec<Node>,
    names: HashMap<String, usize>,
    pub(crate) build_errors: Vec<Error>,
}

impl std::fmt::Debug for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flow")
            .field("name", &self.name)
            .field("tasks", &self.nodes.len())
            .finish()
    }
}

/// Something that can be added to a flow with [`Flow::add`]: a secret task, an env-var secret.
pub trait TaskSpec {
    /// The task's output.
    type Output: Send + Sync + 'static;
    /// Adds the task to `flow`.
    fn add_to(self, flow: &mut Flow) -> Handle<Self::Output>;
}

impl Flow {
    /// An empty flow.
    pub fn new(name: impl Into<String>) -> Self {
        Flow {
            id: NEXT_FLOW_ID.fetch_add(1, Ordering::Relaxed),
            name: name.into(),
            nodes: Vec::new(),
            names: HashMap::new(),
            build_errors: Vec::new(),
        }
    }

    /// The flow's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many tasks and parameters the flow has.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the flow has no task.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Adds a task whose function receives the outputs of `inputs` (`()`, a handle, a tuple of
    /// handles or a `Vec` of handles). The function may run more than once (retries) and on any
    /// thread of the run's pool.
    pub fn task<I, O, F>(&mut self, name: impl Into<String>, inputs: I, f: F) -> Handle<O>
    where
        I: Inputs,
        O: Send + Sync + 'static,
        F: Fn(&TaskContext, I::Values) -> Result<O, TaskError> + Send + Sync + 'static,
    {
        let body: Body = Arc::new(move |ctx, values| {
            let v = f(ctx, I::extract(values))?;
            Ok(Arc::new(v) as Value)
        });
        let name = name.into();
        let inputs = self.own_ids(&name, inputs.ids());
        self.push(name, inputs, NodeKind::Task(body), false)
    }

    /// Adds a built-in task (a [`crate::SecretTask`], an [`crate::EnvVarSecret`]).
    pub fn add<S: TaskSpec>(&mut self, spec: S) -> Handle<S::Output> {
        spec.add_to(self)
    }

    /// A parameter without a default: `run_with` must give it.
    pub fn parameter<T: Clone + Send + Sync + 'static>(
        &mut self,
        name: impl Into<String>,
    ) -> Handle<T> {
        self.push_parameter::<T>(name.into(), None)
    }

    /// A parameter with a default.
    pub fn parameter_with_default<T: Clone + Send + Sync + 'static>(
        &mut self,
        name: impl Into<String>,
        default: T,
    ) -> Handle<T> {
        self.push_parameter::<T>(name.into(), Some(Arc::new(default)))
    }

    fn push_parameter<T: Send + Sync + 'static>(
        &mut self,
        name: String,
        default: Option<Value>,
    ) -> Handle<T> {
        let kind = NodeKind::Parameter {
            default,
            type_id: std::any::TypeId::of::<T>(),
            type_name: std::any::type_name::<T>(),
        };
        self.push(name, Vec::new(), kind, false)
    }

    /// Options of a task: retries, timeout, trigger, ordering.
    pub fn configure<T>(&mut self, task: Handle<T>) -> Configure<'_> {
        Configure {
            id: self.check_own(task.flow, task.id, "configure"),
            flow: self,
        }
    }

    /// Makes `task` wait for `upstream` to finish without taking its output. Such edges can
    /// form a cycle, which `run` reports.
    pub fn after<T, U>(&mut self, task: Handle<T>, upstream: Handle<U>) {
        self.configure(task).after(upstream);
    }

    pub(crate) fn push<O>(
        &mut self,
        name: String,
        inputs: Vec<usize>,
        kind: NodeKind,
        secret: bool,
    ) -> Handle<O> {
        let id = self.nodes.len();
        if self.names.insert(name.clone(), id).is_some() {
            self.build_errors.push(Error::DuplicateName {
                flow: self.name.clone(),
                name: name.clone(),
            });
        }
        self.nodes.push(Node {
            name,
            inputs,
            after: Vec::new(),
            kind,
            options: TaskOptions::default(),
            secret,
            prefetch: None,
        });
        Handle::new(self.id, id)
    }

    pub(crate) fn own_ids(&mut self, task: &str, ids: Vec<(u64, usize)>) -> Vec<usize> {
        ids.into_iter()
            .filter_map(|(flow, id)| {
                if flow == self.id {
                    Some(id)
                } else {
                    self.build_errors.push(Error::ForeignHandle {
                        flow: self.name.clone(),
                        task: task.to_owned(),
                    });
                    None
                }
            })
            .collect()
    }

    fn check_own(&mut self, flow: u64, id: usize, what: &str) -> Option<usize> {
        if flow == self.id {
            Some(id)
        } else {
            self.build_errors.push(Error::ForeignHandle {
                flow: self.name.clone(),
                task: format!("<{what}>"),
            });
            None
        }
    }

    /// Checks the flow: duplicate names, foreign handles, cycles. `run` checks too.
    ///
    /// # Errors
    /// The first problem found, naming the tasks.
    pub fn validate(&self) -> Result<(), Error> {
        if let Some(e) = self.build_errors.first() {
            return Err(e.clone());
        }
        self.topological_order().map(|_| ())
    }

    /// Kahn's algorithm over data and ordering edges.
    pub(crate) fn topological_order(&self) -> Result<Vec<usize>, Error> {
        let n = self.nodes.len();
        let mut indegree = vec![0usize; n];
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, node) in self.nodes.iter().enumerate() {
            for &u in node.inputs.iter().chain(&node.after) {
                indegree[i] += 1;
                dependents[u].push(i);
            }
        }
        let mut order = Vec::with_capacity(n);
        let mut ready: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
        while let Some(i) = ready.pop() {
            order.push(i);
            for &d in &dependents[i] {
                indegree[d] -= 1;
                if indegree[d] == 0 {
                    ready.push(d);
                }
            }
        }
        if order.len() == n {
            return Ok(order);
        }
        // walk upstream from a node left over until a node repeats: that is the cycle
        let stuck: Vec<bool> = indegree.iter().map(|d| *d > 0).collect();
        let mut at = (0..n)
            .find(|&i| stuck[i])
            .expect("some node is on or behind a cycle");
        let mut seen = vec![usize::MAX; n];
        let mut path = Vec::new();
        while seen[at] == usize::MAX {
            seen[at] = path.len();
            path.push(at);
            let node = &self.nodes[at];
            at = *node
                .inputs
                .iter()
                .chain(&node.after)
                .find(|&&u| stuck[u])
                .expect("a stuck node has a stuck upstream");
        }
        let mut tasks: Vec<String> = path[seen[at]..]
            .iter()
            .rev()
            .map(|&i| self.nodes[i].name.clone())
            .collect();
        tasks.push(tasks[0].clone());
        Err(Error::Cycle {
            flow: self.name.clone(),
            tasks,
        })
    }
}

/// Sets a task's options; see [`Flow::configure`].
pub struct Configure<'a> {
    flow: &'a mut Flow,
    id: Option<usize>,
}

impl Configure<'_> {
    fn options(&mut self) -> Option<&mut TaskOptions> {
        let id = self.id?;
        Some(&mut self.flow.nodes[id].options)
    }

    /// Retries after a failure or a timeout.
    pub fn max_retries(&mut self, n: u32) -> &mut Self {
        if let Some(o) = self.options() {
            o.max_retries = n;
        }
        self
    }

    /// The wait before each retry.
    pub fn retry_delay(&mut self, d: Duration) -> &mut Self {
        if let Some(o) = self.options() {
            o.retry_delay = d;
        }
        self
    }

    /// The longest an attempt may run.
    pub fn timeout(&mut self, d: Duration) -> &mut Self {
        if let Some(o) = self.options() {
            o.timeout = Some(d);
        }
        self
    }

    /// When the task runs.
    pub fn trigger(&mut self, t: Trigger) -> &mut Self {
        if let Some(o) = self.options() {
            o.trigger = t;
        }
        self
    }

    /// Waits for `upstream` to finish, without taking its output.
    pub fn after<U>(&mut self, upstream: Handle<U>) -> &mut Self {
        let Some(id) = self.id else { return self };
        if upstream.flow != self.flow.id {
            let name = self.flow.nodes[id].name.clone();
            self.flow.build_errors.push(Error::ForeignHandle {
                flow: self.flow.name.clone(),
                task: name,
            });
            return self;
        }
        self.flow.nodes[id].after.push(upstream.id);
        self
    }
}
