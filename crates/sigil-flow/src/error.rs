//! Errors of building and starting a flow. A task's own failure is not an error of the run: it is
//! a state in the run's report.

/// What a task returns on failure: any error. Its message is masked before anyone sees it.
pub type TaskError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A flow that cannot run as built, or a run that cannot start.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Two tasks (or parameters) share a name.
    #[error("flow {flow:?}: duplicate task name {name:?}")]
    DuplicateName {
        /// The flow.
        flow: String,
        /// The name used twice.
        name: String,
    },
    /// The `after` edges make a cycle.
    #[error("flow {flow:?}: the tasks {} depend on each other in a cycle", .tasks.join(" -> "))]
    Cycle {
        /// The flow.
        flow: String,
        /// The tasks on the cycle, in order.
        tasks: Vec<String>,
    },
    /// A handle from another flow was used.
    #[error("flow {flow:?}: task {task:?} uses a handle that belongs to another flow")]
    ForeignHandle {
        /// The flow.
        flow: String,
        /// The task that used it.
        task: String,
    },
    /// A parameter without a default was not given to `run_with`.
    #[error("flow {flow:?}: parameter {name:?} is required and was not given")]
    MissingParameter {
        /// The flow.
        flow: String,
        /// The parameter.
        name: String,
    },
    /// A parameter was given a value of the wrong type, or a name the flow does not have.
    #[error("flow {flow:?}: parameter {name:?}: {message}")]
    BadParameter {
        /// The flow.
        flow: String,
        /// The parameter.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The default chain could not be built (an unreadable config file, …).
    #[error("flow {flow:?}: cannot set up secret resolution: {message}")]
    Resolver {
        /// The flow.
        flow: String,
        /// The cause.
        message: String,
    },
}
