//! Running a flow: `Flow::run_with` checks the flow, binds the parameters (`params`), starts the
//! worker pool (`pool`), drives every task to a final state (`schedule`: dependency order,
//! retries, timeouts, triggers) and builds the report (`report`).

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sigil_core::context::{self, Attribution, Scope};
use sigil_core::{Redactor, Resolver, SecretName, SecretValue};

use crate::context::RunShared;
use crate::error::Error;
use crate::flow::{Flow, NodeKind};

mod params;
mod pool;
mod report;
mod schedule;

pub use report::FlowRun;

/// Called at every change of a task's state.
type StateHook = Arc<dyn Fn(&str, TaskState) + Send + Sync>;

/// A task's state. Pending, Running and Retrying are passing states; the others are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum TaskState {
    /// Waiting for its upstream tasks.
    Pending,
    /// An attempt is running.
    Running,
    /// An attempt failed; waiting to try again.
    Retrying,
    /// Finished with an output.
    Success,
    /// Every attempt failed.
    Failed,
    /// The last attempt ran past the timeout.
    TimedOut,
    /// Not run: an upstream task did not succeed.
    UpstreamFailed,
}

impl TaskState {
    /// Whether the state is final.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            TaskState::Pending | TaskState::Running | TaskState::Retrying
        )
    }
}

/// How one task of a run ended. Never holds a value; the error is masked.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TaskReport {
    /// The task's name.
    pub name: String,
    /// Its final state.
    pub state: TaskState,
    /// How many attempts ran (0 when it never ran).
    pub attempts: u32,
    /// Time from its first attempt's start to its end, in milliseconds.
    pub duration_ms: f64,
    /// The last error, with secrets masked.
    pub error: Option<String>,
}

/// Run-time input: parameters, secrets, the pool size, the chain.
#[derive(Default)]
pub struct RunOptions {
    parameters: params::Given,
    secrets: Vec<(String, SecretValue)>,
    workers: Option<usize>,
    resolver: Option<Arc<Resolver>>,
    min_mask_bytes: Option<usize>,
    on_state: Option<StateHook>,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("parameters", &self.parameters.keys().collect::<Vec<_>>())
            .field(
                "secrets",
                &self.secrets.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

impl RunOptions {
    /// Default options: parameters at their defaults, a pool as large as the machine's cores.
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives a parameter its value for this run. The value's type must be the parameter's; a
    /// `&str` is taken for a `String` parameter.
    pub fn parameter<T: Clone + Send + Sync + 'static>(
        mut self,
        name: impl Into<String>,
        value: T,
    ) -> Self {
        self.parameters.insert(
            name.into(),
            (
                Arc::new(value),
                std::any::type_name::<T>(),
                std::any::TypeId::of::<T>(),
            ),
        );
        self
    }

    /// A secret for this run only, layered over every source (scoped context).
    pub fn secret(mut self, name: impl Into<String>, value: impl Into<SecretValue>) -> Self {
        self.secrets.push((name.into(), value.into()));
        self
    }

    /// How many tasks may run at once (default: the number of cores).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n.max(1));
        self
    }

    /// The chain secret tasks resolve through (default: the process's default chain).
    pub fn resolver(mut self, resolver: Arc<Resolver>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// Secrets shorter than this are not masked (default 4 bytes).
    pub fn min_mask_bytes(mut self, n: usize) -> Self {
        self.min_mask_bytes = Some(n);
        self
    }

    /// Called on the scheduler's thread at every change of a task's state.
    pub fn on_state(mut self, f: impl Fn(&str, TaskState) + Send + Sync + 'static) -> Self {
        self.on_state = Some(Arc::new(f));
        self
    }
}

impl Flow {
    /// Runs the flow with parameters at their defaults and no run-time secrets.
    ///
    /// # Errors
    /// A flow that cannot run (see [`Flow::validate`]) or a required parameter. A task's failure
    /// is not an error: it is in the returned report.
    pub fn run(&self) -> Result<FlowRun, Error> {
        self.run_with(RunOptions::new())
    }

    /// Runs the flow with run-time parameters, secrets and options.
    ///
    /// # Errors
    /// As [`Flow::run`], and a parameter given with the wrong type or not declared.
    pub fn run_with(&self, opts: RunOptions) -> Result<FlowRun, Error> {
        self.validate()?;
        pool::install_masking_panic_hook();
        let started = Instant::now();
        let n = self.nodes.len();

        let outputs = params::bind(self, &opts.parameters)?;

        let run_id = uuid::Uuid::new_v4().to_string();
        let redactor = Arc::new(match opts.min_mask_bytes {
            Some(m) => Redactor::with_min_len(m),
            None => Redactor::new(),
        });
        for (_, v) in &opts.secrets {
            redactor.register(v);
        }
        let run = Arc::new(RunShared {
            run_id: run_id.clone(),
            flow: self.name.clone(),
            redactor: redactor.clone(),
            logs: Mutex::new(Vec::new()),
            resolver: opts.resolver.clone(),
            started,
            prefetched: Mutex::new(HashMap::new()),
        });
        // the caller's scopes, with the run's secrets on top, go with every task to its thread
        let mut scope = Scope::new();
        for (name, v) in opts.secrets {
            scope = scope.secret(name, v);
        }
        let snapshot = scope.run(context::snapshot);
        prefetch(self, &run, &snapshot);

        let workers = opts
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let bodies = Arc::new(pool::FlowBodies {
            bodies: self
                .nodes
                .iter()
                .map(|node| match &node.kind {
                    NodeKind::Task(b) => Some(b.clone()),
                    NodeKind::Parameter { .. } => None,
                })
                .collect(),
            names: self
                .nodes
                .iter()
                .map(|node| Arc::<str>::from(node.name.as_str()))
                .collect(),
        });
        let (job_tx, job_rx) = mpsc::channel::<pool::Job>();
        let (done_tx, done_rx) = mpsc::channel::<pool::Done>();
        let worker = Arc::new(pool::Worker {
            jobs: Arc::new(Mutex::new(job_rx)),
            done: done_tx,
            flow: bodies,
            run: run.clone(),
            scope: snapshot,
        });
        tracing::debug!(flow = %self.name, run = %run_id, tasks = n, workers, "flow run starting");

        let sched = schedule::drive(
            self,
            outputs,
            opts.on_state,
            workers,
            &worker,
            job_tx,
            done_rx,
        );
        let run = report::build(self, run_id, &run, sched, started);
        Ok(run)
    }
}

/// Reads, when the run starts, every secret whose name its secret tasks know from the flow's
/// build: the chain asks each source once for all of them — one request to a server, each
/// read on record with the task that asks for it. A task's first attempt takes its value; a
/// name the chain does not hold, or a chain that fails, is left to the task, which reads (and
/// fails) on its own, as a retry does.
fn prefetch(flow: &Flow, run: &Arc<RunShared>, scope: &context::Snapshot) {
    let wanted: Vec<(&str, SecretName)> = flow
        .nodes
        .iter()
        .filter_map(|n| {
            let name = SecretName::parse(n.prefetch.as_deref()?).ok()?;
            Some((n.name.as_str(), name))
        })
        .collect();
    if wanted.is_empty() {
        return;
    }
    let resolver = match &run.resolver {
        Some(r) => r.clone(),
        None => match sigil_core::global::default_resolver() {
            Ok(r) => r,
            Err(_) => return, // each task reports it
        },
    };
    let mut names: Vec<SecretName> = Vec::new();
    let mut tasks_by_name: HashMap<String, String> = HashMap::new();
    for (task, name) in &wanted {
        if !tasks_by_name.contains_key(name.as_str()) {
            tasks_by_name.insert(name.to_string(), (*task).to_owned());
            names.push(name.clone());
        }
    }
    let attribution = Attribution {
        flow_run: run.run_id.clone(),
        task: None,
        tasks_by_name: Some(Arc::new(tasks_by_name)),
    };
    let found = scope.enter(|| {
        Scope::new()
            .attribution(attribution)
            .redactor(run.redactor.clone())
            .run(|| resolver.get_found(&names))
    });
    let values = match found {
        Ok(values) => values,
        Err(e) => {
            let why = run.redactor.redact(&e.to_string()).into_owned();
            tracing::debug!(run = %run.run_id, error = %why, "reading the run's secrets at its start failed; each task reads its own");
            return;
        }
    };
    let by_name: HashMap<&str, SecretValue> = names
        .iter()
        .zip(values)
        .filter_map(|(n, v)| Some((n.as_str(), v?)))
        .collect();
    let mut prefetched = run.prefetched.lock().unwrap_or_else(|p| p.into_inner());
    for (task, name) in wanted {
        if let Some(v) = by_name.get(name.as_str()) {
            prefetched.insert(Arc::from(task), v.clone());
        }
    }
}
