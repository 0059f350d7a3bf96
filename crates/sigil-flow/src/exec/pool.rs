//! The worker pool: threads that take a task's attempt, run it inside the caller's scopes plus
//! the run's secrets (with the run id and task name as attribution and the run's Redactor), catch
//! its panic, mask its error, and send the outcome back.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};

use sigil_core::context::{self, Attribution, Scope};

use crate::context::{RunShared, TaskContext};
use crate::flow::Value;

pub(super) struct Job {
    pub(super) node: usize,
    pub(super) attempt: u32,
    pub(super) inputs: Vec<Value>,
    pub(super) cancelled: Arc<AtomicBool>,
}

pub(super) struct Done {
    pub(super) node: usize,
    pub(super) attempt: u32,
    pub(super) result: Result<Value, String>,
}

pub(super) struct Worker {
    pub(super) jobs: Arc<Mutex<Receiver<Job>>>,
    pub(super) done: Sender<Done>,
    pub(super) flow: Arc<FlowBodies>,
    pub(super) run: Arc<RunShared>,
    pub(super) scope: context::Snapshot,
}

/// What workers need of the flow: bodies and names, shared without the builder.
pub(super) struct FlowBodies {
    pub(super) bodies: Vec<Option<crate::flow::Body>>,
    pub(super) names: Vec<Arc<str>>,
}

/// Tasks may panic with a secret in the message (`panic!("bad password {pw}")`). The default
/// panic hook would print that message to stderr before the engine catches the panic, so a hook
/// is installed once per process: on a thread inside a scope that carries a Redactor (a task), it
/// prints the message masked; anywhere else it defers to the hook that was there before.
pub(super) fn install_masking_panic_hook() {
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

pub(super) fn spawn_worker(w: Arc<Worker>) {
    std::thread::Builder::new()
        .name("sigil-flow".into())
        .spawn(move || worker_loop(&w))
        .expect("the system can start a thread");
}

pub(super) fn worker_loop(w: &Worker) {
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

pub(super) fn panic_message(p: &Box<dyn Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

pub(super) fn run_job(
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
        tasks_by_name: None,
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
