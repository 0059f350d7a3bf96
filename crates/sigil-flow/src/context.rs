//! What a running task can see: its run, its name, its attempt, a masked logger.

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sigil_core::{Redactor, Resolver, SecretValue};

/// A log line's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Detail.
    Debug,
    /// Progress.
    Info,
    /// Something odd.
    Warn,
    /// A failure.
    Error,
}

/// One line of a task's log, already masked.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LogLine {
    /// The task that logged it.
    pub task: String,
    /// Its level.
    pub level: Level,
    /// The message, with every secret of the run masked as `***`.
    pub message: String,
    /// Milliseconds since the run started.
    pub at_ms: u64,
}

pub(crate) struct RunShared {
    pub(crate) run_id: String,
    pub(crate) flow: String,
    pub(crate) redactor: Arc<Redactor>,
    pub(crate) logs: Mutex<Vec<LogLine>>,
    pub(crate) resolver: Option<Arc<Resolver>>,
    pub(crate) started: Instant,
    /// What the run read when it started, by the task that asked for it; a task's first attempt
    /// takes its own.
    pub(crate) prefetched: Mutex<HashMap<Arc<str>, SecretValue>>,
}

/// Handed to every task: who it is, which attempt, and a logger whose lines are masked.
pub struct TaskContext {
    pub(crate) run: Arc<RunShared>,
    pub(crate) task: Arc<str>,
    pub(crate) attempt: u32,
    pub(crate) cancelled: Arc<AtomicBool>,
}

impl std::fmt::Debug for TaskContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskContext")
            .field("run_id", &self.run.run_id)
            .field("task", &self.task)
            .field("attempt", &self.attempt)
            .finish()
    }
}

impl TaskContext {
    /// The run's id (a UUID).
    pub fn run_id(&self) -> &str {
        &self.run.run_id
    }

    /// The flow's name.
    pub fn flow_name(&self) -> &str {
        &self.run.flow
    }

    /// The task's name.
    pub fn task_name(&self) -> &str {
        &self.task
    }

    /// The attempt, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Whether the run gave up on this attempt (it timed out): a long task may check this and
    /// stop early, since its result will be discarded.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// The run's Redactor: every secret the run resolved is registered with it.
    pub fn redactor(&self) -> &Arc<Redactor> {
        &self.run.redactor
    }

    /// Registers a value to be masked in this run's logs, errors and report (secret tasks and
    /// lookups inside tasks do this themselves).
    pub fn register_secret(&self, value: &SecretValue) {
        self.run.redactor.register(value);
    }

    /// The value the run read for this task when it started, on the task's first attempt only
    /// (a retry reads again).
    pub(crate) fn take_prefetched(&self) -> Option<SecretValue> {
        if self.attempt != 1 {
            return None;
        }
        let value = self
            .run
            .prefetched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.task)?;
        self.register_secret(&value);
        Some(value)
    }

    /// The chain secret tasks resolve through: the run's own, or the process's default.
    ///
    /// # Errors
    /// The default chain cannot be built (an unreadable config file, …).
    pub fn resolver(&self) -> sigil_core::Result<Arc<Resolver>> {
        match &self.run.resolver {
            Some(r) => Ok(r.clone()),
            None => sigil_core::global::default_resolver(),
        }
    }

    /// Logs a line; every secret of the run in it is masked.
    pub fn log(&self, level: Level, message: impl Display) {
        let text = message.to_string();
        let masked = self.run.redactor.redact(&text).into_owned();
        match level {
            Level::Debug => tracing::debug!(run = %self.run.run_id, task = %self.task, "{masked}"),
            Level::Info => tracing::info!(run = %self.run.run_id, task = %self.task, "{masked}"),
            Level::Warn => tracing::warn!(run = %self.run.run_id, task = %self.task, "{masked}"),
            Level::Error => tracing::error!(run = %self.run.run_id, task = %self.task, "{masked}"),
        }
        let line = LogLine {
            task: self.task.to_string(),
            level,
            message: masked,
            at_ms: self.run.started.elapsed().as_millis() as u64,
        };
        self.run
            .logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line);
    }

    /// Logs at debug level.
    pub fn debug(&self, message: impl Display) {
        self.log(Level::Debug, message);
    }

    /// Logs at info level.
    pub fn info(&self, message: impl Display) {
        self.log(Level::Info, message);
    }

    /// Logs at warn level.
    pub fn warn(&self, message: impl Display) {
        self.log(Level::Warn, message);
    }

    /// Logs at error level.
    pub fn error(&self, message: impl Display) {
        self.log(Level::Error, message);
    }
}
