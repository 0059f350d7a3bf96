//! A run's report: every task's final state, attempts, duration and error, the masked logs, and
//! the outputs of tasks that are not secrets; as text and as JSON.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::schedule::Scheduler;
use super::{TaskReport, TaskState};
use crate::context::{LogLine, RunShared};
use crate::flow::{Flow, Handle, Value};

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

/// The report of a run that `sched` drove to the end.
pub(super) fn build(
    flow: &Flow,
    run_id: String,
    run: &Arc<RunShared>,
    mut sched: Scheduler<'_>,
    started: Instant,
) -> FlowRun {
    let n = flow.nodes.len();
    let logs = std::mem::take(&mut *run.logs.lock().unwrap_or_else(|p| p.into_inner()));
    let mut outputs = sched.outputs;
    for (i, node) in flow.nodes.iter().enumerate() {
        if node.secret {
            outputs[i] = None; // a secret's value is never kept after the run
        }
    }
    let tasks = (0..n)
        .map(|i| TaskReport {
            name: flow.nodes[i].name.clone(),
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
        flow: flow.name.clone(),
        tasks,
        logs,
        outputs,
        duration: started.elapsed(),
    };
    tracing::debug!(flow = %flow.name, run = %run.id, success = run.is_success(), "flow run finished");
    run
}
