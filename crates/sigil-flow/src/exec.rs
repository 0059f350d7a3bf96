//! Running a flow: dependency order, a bounded pool, retries, timeouts, triggers, the report.

use std::any::Any;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sigil_core::context::{self, Attribution, Scope};
use sigil_core::{Redactor, Resolver, SecretValue};

use crate::context::{LogLine, RunShared, TaskContext};
use crate::error::Error;
use crate::flow::{Flow, Handle, NodeKind, Trigger, Value};

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
    parameters: HashMap<String, (Value, &'static str, std::any::TypeId)>,
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

/// A finished run: its id, every task's final state, the masked logs, the outputs of tasks that
/// are not secrets.
pub struct FlowRun {
    id: String,
    flow: String,
    tasks: Vec<TaskReport>,
    logs: Vec<LogLine>,
    outputs: Vec<Option<Value>>,
    duration: Duration,
}

impl std::fmt::Debug for FlowRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowRun")
            .field("id", &self.id)
            .field("flow", &self.flow)
            .field("tasks", &self.tasks)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Serialize)]
struct JsonReport<'a> {
    run_id: &'a str,
    flow: &'a str,
    success: bool,
    duration_ms: f64,
    tasks: &'a [TaskReport],
    logs: &'a [LogLine],
}

impl FlowRun {
    /// The run's id (a UUID).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether every task succeeded.
    pub fn is_success(&self) -> bool {
        self.tasks.iter().all(|t| t.state == TaskState::Success)
    }

    /// Every task's report, in the order the tasks were added.
    pub fn tasks(&self) -> &[TaskReport] {
        &self.tasks
    }

    /// One task's report.
    pub fn task<T>(&self, h: Handle<T>) -> &TaskReport {
        &self.tasks[h.id]
    }

    /// One task's final state.
    pub fn state<T>(&self, h: Handle<T>) -> TaskState {
        self.tasks[h.id].state
    }

    /// The masked log lines of every task, in the order they were written.
    pub fn logs(&self) -> &[LogLine] {
        &self.logs
    }

    /// How long the run took.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// A task's output. `None` when it did not succeed, and always for secret tasks: a secret's
    /// value is never kept after the run.
    pub fn output<T: Clone + 'static>(&self, h: Handle<T>) -> Option<T> {
        self.outputs
            .get(h.id)?
            .as_ref()?
            .downcast_ref::<T>()
            .cloned()
    }

    /// The report as JSON (no values; errors and logs are masked).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(JsonReport {
            run_id: &self.id,
            flow: &self.flow,
            success: self.is_success(),
            duration_ms: self.duration.as_secs_f64() * 1000.0,
            tasks: &self.tasks,
            logs: &self.logs,
        })
        .expect("the report serialises")
    }
}

impl std::fmt::Display for FlowRun {
    /// A table: task, state, attempts, duration, error.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let w = self
            .tasks
            .iter()
            .map(|t| t.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        writeln!(
            f,
            "flow {:?} run {}: {}",
            self.flow,
            self.id,
            if self.is_success() {
                "Success"
            } else {
                "Failed"
            }
        )?;
        writeln!(
            f,
            "{:<w$}  {:<14}  {:>8}  {:>12}  ERROR",
            "TASK", "STATE", "ATTEMPTS", "DURATION"
        )?;
        for t in &self.tasks {
            let line = format!(
                "{:<w$}  {:<14}  {:>8}  {:>10.1}ms  {}",
                t.name,
                format!("{:?}", t.state),
                t.attempts,
                t.duration_ms,
                t.error.as_deref().unwrap_or("")
            );
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

struct Job {
    node: usize,
    attempt: u32,
    inputs: Vec<Value>,
    cancelled: Arc<AtomicBool>,
}

struct Done {
    node: usize,
    attempt: u32,
    result: Result<Value, String>,
}

struct Worker {
    jobs: Arc<Mutex<Receiver<Job>>>,
    done: Sender<Done>,
    flow: Arc<FlowBodies>,
    run: Arc<RunShared>,
    scope: context::Snapshot,
}

/// What workers need of the flow: bodies and names, shared without the builder.
struct FlowBodies {
    bodies: Vec<Option<crate::flow::Body>>,
    names: Vec<Arc<str>>,
}

/// Tasks may panic with a secret in the message (`panic!("bad password {pw}")`). The default
/// panic hook would print that message to stderr before the engine catches the panic, so a hook
/// is installed once per process: on a thread inside a scope that carries a Redactor (a task), it
/// prints the message masked; anywhere else it defers to the hook that was there before.
fn install_masking_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| match context::redactor() {
            Some(redactor) => {
                let message = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".to_owned());
                let thread = std::thread::current();
                let location = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                eprintln!(
                    "thread '{}' panicked{location}:\n{}",
                    thread.name().unwrap_or("<unnamed>"),
                    redactor.redact(&message)
                );
            }
            None => previous(info),
        }));
    });
}

fn spawn_worker(w: Arc<Worker>) {
    std::thread::Builder::new()
        .name("sigil-flow".into())
        .spawn(move || worker_loop(&w))
        .expect("the system can start a thread");
}

fn worker_loop(w: &Worker) {
    loop {
        let job = match w.jobs.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(j) => j,
            Err(_) => return, // the run is over
        };
        let cancelled = job.cancelled.clone();
        let result = run_job(w, job.node, job.attempt, &job.inputs, &job.cancelled);
        let _ = w.done.send(Done {
            node: job.node,
            attempt: job.attempt,
            result,
        });
        if cancelled.load(Ordering::Relaxed) {
            // this attempt timed out and a replacement worker took this one's place
            return;
        }
    }
}

fn panic_message(p: &Box<dyn Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

fn run_job(
    w: &Worker,
    node: usize,
    attempt: u32,
    inputs: &[Value],
    cancelled: &Arc<AtomicBool>,
) -> Result<Value, String> {
    let body = w.flow.bodies[node]
        .as_ref()
        .expect("only tasks are sent to workers");
    let ctx = TaskContext {
        run: w.run.clone(),
        task: w.flow.names[node].clone(),
        attempt,
        cancelled: cancelled.clone(),
    };
    let attribution = Attribution {
        flow_run: w.run.run_id.clone(),
        task: Some(ctx.task.to_string()),
    };
    let outcome = w.scope.enter(|| {
        Scope::new()
            .attribution(attribution)
            .redactor(w.run.redactor.clone())
            .run(|| std::panic::catch_unwind(AssertUnwindSafe(|| body(&ctx, inputs))))
    });
    // messages are masked here, after the attempt: values resolved during it are registered
    match outcome {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(w.run.redactor.redact(&e.to_string()).into_owned()),
        Err(p) => Err(format!(
            "task panicked: {}",
            w.run.redactor.redact(&panic_message(&p))
        )),
    }
}

#[derive(PartialEq, Eq)]
struct Wake(Instant, usize);

impl Ord for Wake {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.0.cmp(&self.0).then(other.1.cmp(&self.1)) // min-heap by time
    }
}

impl PartialOrd for Wake {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

struct Running {
    attempt: u32,
    deadline: Option<Instant>,
    cancelled: Arc<AtomicBool>,
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
        install_masking_panic_hook();
        // secret tasks may read from the server when the settings say so
        sigil_client::register();
        let started = Instant::now();
        let n = self.nodes.len();

        // parameters: checked before anything runs
        let mut outputs: Vec<Option<Value>> = vec![None; n];
        let mut declared = std::collections::HashSet::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if let NodeKind::Parameter {
                default,
                type_id,
                type_name,
            } = &node.kind
            {
                declared.insert(node.name.as_str());
                outputs[i] = match opts.parameters.get(&node.name) {
                    Some((v, _, id)) if id == type_id => Some(v.clone()),
                    // `.parameter("env", "prod")` for a String parameter: what a user writes
                    Some((v, _, _))
                        if *type_id == std::any::TypeId::of::<String>()
                            && v.downcast_ref::<&'static str>().is_some() =>
                    {
                        let s: &str = v.downcast_ref::<&'static str>().expect("checked");
                        Some(Arc::new(s.to_owned()))
                    }
                    Some((_, given_name, _)) => {
                        return Err(Error::BadParameter {
                            flow: self.name.clone(),
                            name: node.name.clone(),
                            message: format!(
                                "expects {}, was given {}",
                                sigil_core::value::user_type_name(type_name),
                                sigil_core::value::user_type_name(given_name)
                            ),
                        });
                    }
                    None => match default {
                        Some(d) => Some(d.clone()),
                        None => {
                            return Err(Error::MissingParameter {
                                flow: self.name.clone(),
                                name: node.name.clone(),
                            });
                        }
                    },
                };
            }
        }
        if let Some(unknown) = opts
            .parameters
            .keys()
            .find(|k| !declared.contains(k.as_str()))
        {
            return Err(Error::BadParameter {
                flow: self.name.clone(),
                name: unknown.clone(),
                message: "the flow has no such parameter".into(),
            });
        }

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
        });
        // the caller's scopes, with the run's secrets on top, go with every task to its thread
        let mut scope = Scope::new();
        for (name, v) in opts.secrets {
            scope = scope.secret(name, v);
        }
        let snapshot = scope.run(context::snapshot);

        let workers = opts
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let bodies = Arc::new(FlowBodies {
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
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        let worker = Arc::new(Worker {
            jobs: Arc::new(Mutex::new(job_rx)),
            done: done_tx,
            flow: bodies,
            run: run.clone(),
            scope: snapshot,
        });
        tracing::debug!(flow = %self.name, run = %run_id, tasks = n, workers, "flow run starting");

        let mut sched = Scheduler::new(self, outputs, opts.on_state);
        let mut spawned = 0;
        let mut running: HashMap<usize, Running> = HashMap::new();
        let mut ready: VecDeque<usize> = VecDeque::new();
        let mut waits: BinaryHeap<Wake> = BinaryHeap::new();
        sched.start(&mut ready);

        while sched.finished < n {
            // start as many ready tasks as there are free workers
            while running.len() < workers
                && let Some(i) = ready.pop_front()
            {
                if spawned < workers {
                    spawn_worker(worker.clone());
                    spawned += 1;
                }
                let attempt = sched.attempts[i] + 1;
                sched.attempts[i] = attempt;
                if sched.first_start[i].is_none() {
                    sched.first_start[i] = Some(Instant::now());
                }
                sched.set_state(i, TaskState::Running);
                let cancelled = Arc::new(AtomicBool::new(false));
                let inputs = self.nodes[i]
                    .inputs
                    .iter()
                    .map(|&u| {
                        sched.outputs[u]
                            .clone()
                            .expect("inputs of a started task succeeded")
                    })
                    .collect();
                running.insert(
                    i,
                    Running {
                        attempt,
                        deadline: self.nodes[i].options.timeout.map(|t| Instant::now() + t),
                        cancelled: cancelled.clone(),
                    },
                );
                job_tx
                    .send(Job {
                        node: i,
                        attempt,
                        inputs,
                        cancelled,
                    })
                    .expect("workers live as long as the run");
            }
            if sched.finished == n {
                break;
            }
            let next_wake = running
                .values()
                .filter_map(|r| r.deadline)
                .chain(waits.peek().map(|w| w.0))
                .min();
            let msg = match next_wake {
                Some(at) => {
                    match done_rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                        Ok(m) => Some(m),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => {
                            unreachable!("the scheduler holds a worker")
                        }
                    }
                }
                None => Some(
                    done_rx
                        .recv()
                        .expect("a task is running, so a worker will answer"),
                ),
            };
            match msg {
                Some(done) => {
                    let current = running
                        .get(&done.node)
                        .is_some_and(|r| r.attempt == done.attempt);
                    if !current {
                        continue; // a timed-out attempt finishing late: its result is discarded
                    }
                    running.remove(&done.node);
                    match done.result {
                        Ok(v) => sched.succeed(done.node, v, &mut ready),
                        Err(e) => sched.fail(done.node, e, false, &mut ready, &mut waits),
                    }
                }
                None => {
                    let now = Instant::now();
                    let expired: Vec<usize> = running
                        .iter()
                        .filter(|(_, r)| r.deadline.is_some_and(|d| d <= now))
                        .map(|(i, _)| *i)
                        .collect();
                    for i in expired {
                        let r = running.remove(&i).expect("listed above");
                        r.cancelled.store(true, Ordering::Relaxed);
                        // the abandoned thread leaves the pool when its attempt returns; a new
                        // one keeps the pool at its size
                        spawn_worker(worker.clone());
                        let t = self.nodes[i].options.timeout.unwrap_or_default();
                        sched.fail(
                            i,
                            format!("timed out after {t:?}"),
                            true,
                            &mut ready,
                            &mut waits,
                        );
                    }
                    while waits.peek().is_some_and(|w| w.0 <= now) {
                        let w = waits.pop().expect("peeked");
                        ready.push_back(w.1);
                    }
                }
            }
        }
        drop(job_tx); // idle workers see the channel close and exit

        let logs = std::mem::take(&mut *run.logs.lock().unwrap_or_else(|p| p.into_inner()));
        let mut outputs = sched.outputs;
        for (i, node) in self.nodes.iter().enumerate() {
            if node.secret {
                outputs[i] = None; // a secret's value is never kept after the run
            }
        }
        let tasks = (0..n)
            .map(|i| TaskReport {
                name: self.nodes[i].name.clone(),
                state: sched.states[i],
                attempts: sched.attempts[i],
                duration_ms: match (sched.first_start[i], sched.ended[i]) {
                    (Some(s), Some(e)) => e.duration_since(s).as_secs_f64() * 1000.0,
                    _ => 0.0,
                },
                error: sched.errors[i].take(),
            })
            .collect();
        let run = FlowRun {
            id: run_id,
            flow: self.name.clone(),
            tasks,
            logs,
            outputs,
            duration: started.elapsed(),
        };
        tracing::debug!(flow = %self.name, run = %run.id, success = run.is_success(), "flow run finished");
        Ok(run)
    }
}

/// The bookkeeping of one run, on the caller's thread.
struct Scheduler<'f> {
    flow: &'f Flow,
    states: Vec<TaskState>,
    attempts: Vec<u32>,
    errors: Vec<Option<String>>,
    outputs: Vec<Option<Value>>,
    first_start: Vec<Option<Instant>>,
    ended: Vec<Option<Instant>>,
    waiting_on: Vec<usize>,
    dependents: Vec<Vec<usize>>,
    finished: usize,
    on_state: Option<StateHook>,
}

impl<'f> Scheduler<'f> {
    fn new(flow: &'f Flow, outputs: Vec<Option<Value>>, on_state: Option<StateHook>) -> Self {
        let n = flow.nodes.len();
        let mut waiting_on = vec![0; n];
        let mut dependents = vec![Vec::new(); n];
        for (i, node) in flow.nodes.iter().enumerate() {
            for &u in node.inputs.iter().chain(&node.after) {
                waiting_on[i] += 1;
                dependents[u].push(i);
            }
        }
        Scheduler {
            flow,
            states: vec![TaskState::Pending; n],
            attempts: vec![0; n],
            errors: vec![None; n],
            outputs,
            first_start: vec![None; n],
            ended: vec![None; n],
            waiting_on,
            dependents,
            finished: 0,
            on_state,
        }
    }

    fn set_state(&mut self, i: usize, s: TaskState) {
        self.states[i] = s;
        if let Some(f) = &self.on_state {
            f(&self.flow.nodes[i].name, s);
        }
    }

    /// Queues every task: those without upstreams now, the others as their upstreams finish.
    /// Parameters hold their value from the start, so they finish here and release their
    /// dependents. Each task is queued exactly once (a task fed only by parameters was queued by
    /// its parameters and again as a root, and ran twice).
    fn start(&mut self, ready: &mut VecDeque<usize>) {
        let n = self.flow.nodes.len();
        let is_parameter = |i: usize| matches!(self.flow.nodes[i].kind, NodeKind::Parameter { .. });
        for i in 0..n {
            if self.waiting_on[i] == 0 && !is_parameter(i) {
                ready.push_back(i);
            }
        }
        for i in 0..n {
            if is_parameter(i) {
                self.finish(i, TaskState::Success, ready);
            }
        }
    }

    fn succeed(&mut self, i: usize, v: Value, ready: &mut VecDeque<usize>) {
        self.outputs[i] = Some(v);
        self.errors[i] = None;
        self.finish(i, TaskState::Success, ready);
    }

    fn fail(
        &mut self,
        i: usize,
        error: String,
        timed_out: bool,
        ready: &mut VecDeque<usize>,
        waits: &mut BinaryHeap<Wake>,
    ) {
        let o = &self.flow.nodes[i].options;
        if self.attempts[i] <= o.max_retries {
            tracing::debug!(task = %self.flow.nodes[i].name, attempt = self.attempts[i], "retrying");
            self.errors[i] = Some(error);
            self.set_state(i, TaskState::Retrying);
            if o.retry_delay.is_zero() {
                ready.push_back(i);
            } else {
                waits.push(Wake(Instant::now() + o.retry_delay, i));
            }
            return;
        }
        self.errors[i] = Some(error);
        let state = if timed_out {
            TaskState::TimedOut
        } else {
            TaskState::Failed
        };
        self.finish(i, state, ready);
    }

    /// Records a final state and releases the dependents whose upstreams are all final.
    fn finish(&mut self, i: usize, state: TaskState, ready: &mut VecDeque<usize>) {
        let mut stack = vec![(i, state)];
        while let Some((i, state)) = stack.pop() {
            self.set_state(i, state);
            self.ended[i] = Some(Instant::now());
            self.finished += 1;
            for k in 0..self.dependents[i].len() {
                let d = self.dependents[i][k];
                self.waiting_on[d] -= 1;
                if self.waiting_on[d] > 0 {
                    continue;
                }
                let node = &self.flow.nodes[d];
                let data_ok = node
                    .inputs
                    .iter()
                    .all(|&u| self.states[u] == TaskState::Success);
                let order_ok = node
                    .after
                    .iter()
                    .all(|&u| self.states[u] == TaskState::Success);
                let runs = match node.options.trigger {
                    Trigger::AllSuccessful => data_ok && order_ok,
                    Trigger::AlwaysRun => data_ok,
                };
                if runs {
                    ready.push_back(d);
                } else {
                    let failed: Vec<&str> = node
                        .inputs
                        .iter()
                        .chain(&node.after)
                        .filter(|&&u| self.states[u] != TaskState::Success)
                        .map(|&u| self.flow.nodes[u].name.as_str())
                        .collect();
                    self.errors[d] = Some(format!(
                        "upstream task(s) did not succeed: {}",
                        failed.join(", ")
                    ));
                    stack.push((d, TaskState::UpstreamFailed));
                }
            }
        }
    }
}
