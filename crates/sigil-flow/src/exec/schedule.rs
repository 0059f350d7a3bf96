//! Scheduling a run on the caller's thread: which tasks are ready (their upstreams final), retries
//! after their delay, timeouts (an abandoned attempt's result is discarded and a new worker takes
//! its place), triggers, and every task's final state.

use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Instant;

use super::pool::{self, Done, Job, Worker};
use super::{StateHook, TaskState};
use crate::flow::{Flow, NodeKind, Trigger, Value};

#[derive(PartialEq, Eq)]
pub(super) struct Wake(Instant, usize);

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

pub(super) struct Running {
    attempt: u32,
    deadline: Option<Instant>,
    cancelled: Arc<AtomicBool>,
}

/// Runs every task of `flow` to a final state on at most `workers` threads of the pool: attempts
/// go out on `jobs`, their outcomes come back on `done`.
pub(super) fn drive<'f>(
    flow: &'f Flow,
    outputs: Vec<Option<Value>>,
    on_state: Option<StateHook>,
    workers: usize,
    worker: &Arc<Worker>,
    job_tx: Sender<Job>,
    done_rx: Receiver<Done>,
) -> Scheduler<'f> {
    let n = flow.nodes.len();
    let mut sched = Scheduler::new(flow, outputs, on_state);
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
                pool::spawn_worker(worker.clone());
                spawned += 1;
            }
            let attempt = sched.attempts[i] + 1;
            sched.attempts[i] = attempt;
            if sched.first_start[i].is_none() {
                sched.first_start[i] = Some(Instant::now());
            }
            sched.set_state(i, TaskState::Running);
            let cancelled = Arc::new(AtomicBool::new(false));
            let inputs = flow.nodes[i]
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
                    deadline: flow.nodes[i].options.timeout.map(|t| Instant::now() + t),
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
            Some(at) => match done_rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => {
                    unreachable!("the scheduler holds a worker")
                }
            },
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
                    pool::spawn_worker(worker.clone());
                    let t = flow.nodes[i].options.timeout.unwrap_or_default();
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
    sched
}

/// The bookkeeping of one run, on the caller's thread.
pub(super) struct Scheduler<'f> {
    pub(super) flow: &'f Flow,
    pub(super) states: Vec<TaskState>,
    pub(super) attempts: Vec<u32>,
    pub(super) errors: Vec<Option<String>>,
    pub(super) outputs: Vec<Option<Value>>,
    pub(super) first_start: Vec<Option<Instant>>,
    pub(super) ended: Vec<Option<Instant>>,
    pub(super) waiting_on: Vec<usize>,
    pub(super) dependents: Vec<Vec<usize>>,
    pub(super) finished: usize,
    pub(super) on_state: Option<StateHook>,
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
