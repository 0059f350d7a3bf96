//! Sigil flows: tasks wired by typed handles, with secrets passed as task arguments.
//!
//! The pattern Prefect 1 users were told to prefer — a secret task whose result is passed to the
//! task that needs it — in Rust: a [`SecretTask`] resolves its secret through Sigil's chain when
//! it runs (never when the flow is built, and again on every run and retry), its value flows into
//! the tasks that take its handle, it is never kept after the run, and every log line, error and
//! report of the run masks it as `***`.
//!
//! Independent tasks run in parallel on a bounded pool; each task may have retries, a retry
//! delay, a timeout and a trigger. A run returns a [`FlowRun`] report — each task's final state,
//! attempts, duration and masked error — printable as a table and serialisable as JSON.
//!
//! ```
//! # mod sigil { pub use sigil_core::{context, SecretValue}; pub use sigil_flow as flow; }
//! use sigil::SecretValue;
//! use sigil::flow::{Flow, RunOptions, SecretTask};
//!
//! let mut flow = Flow::new("example");
//! let my_secret = flow.add(SecretTask::new("MYSECRET"));
//! let table = flow.parameter_with_default("table", String::from("orders"));
//! let rows = flow.task("load", (my_secret, table), |ctx, (credentials, table): (SecretValue, String)| {
//!     let password = credentials.expose_str().ok_or("MYSECRET is not a string")?;
//!     ctx.info(format!("loading {table} as {password}"));
//!     Ok(1834u64)
//! });
//! let run = flow.run_with(RunOptions::new().secret("MYSECRET", "s3cr3t-pw").workers(2))?;
//! assert!(run.is_success());
//! assert_eq!(run.output(rows), Some(1834));
//! assert_eq!(run.logs()[0].message, "loading orders as ***");
//! println!("{run}"); // the report as a table
//! # Ok::<(), sigil::flow::Error>(())
//! ```
//!
//! Tasks run on the pool's threads, inside the caller's scoped context (see
//! `sigil::context`) with the run's secrets on top, and with the run id and task name as
//! attribution for sources that report who read a secret.

mod context;
mod error;
mod exec;
mod flow;
mod secret;

pub use context::{Level, LogLine, TaskContext};
pub use error::{Error, TaskError};
pub use exec::{FlowRun, RunOptions, TaskReport, TaskState};
pub use flow::{Configure, Flow, Handle, Inputs, TaskOptions, TaskSpec, Trigger};
pub use secret::{EnvVarSecret, SecretTask};
