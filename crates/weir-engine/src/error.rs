use std::path::PathBuf;

use weir_types::{RunId, RunState};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] weir_store::Error),

    #[error("run {0} does not exist")]
    RunNotFound(RunId),

    #[error("run {run} is being executed by `{owner}`")]
    RunBusy { run: RunId, owner: String },

    #[error("run {run} already {state}; nothing to resume")]
    AlreadySucceeded { run: RunId, state: RunState },

    #[error("run {run} has an unreadable plan snapshot")]
    PlanSnapshot {
        run: RunId,
        #[source]
        source: serde_json::Error,
    },

    #[error("cannot create `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("environment `{name}`: {message}")]
    Environment { name: String, message: String },

    /// A broken invariant: a bug in weir, not in the user's project.
    #[error("internal error (this is a bug in weir): {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
