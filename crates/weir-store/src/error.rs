use std::path::PathBuf;

use weir_types::{RunId, TaskId, TaskState};

/// Everything that can go wrong in weir's persistence.
///
/// Messages never contain SQL text or connection URLs (which may carry a
/// password); the driver's error stays reachable through `source()`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database refused or failed an operation.
    #[error("the {backend} metadata store failed during `{op}`")]
    Database {
        /// `sqlite` or `postgres`.
        backend: &'static str,
        /// The store operation, e.g. `create_run`.
        op: &'static str,
        #[source]
        source: sqlx::Error,
    },

    /// Migrating the schema failed (or the database was migrated by a newer weir).
    #[error(
        "cannot migrate the {backend} metadata store\nhint: a database written by a newer weir cannot be opened by an older one"
    )]
    Migrate {
        backend: &'static str,
        #[source]
        source: sqlx::migrate::MigrateError,
    },

    /// A guarded task update found the task in another state; the whole
    /// transition was rolled back.
    #[error("task {task} is no longer `{expected}` (found {})", found_text(*.found))]
    Conflict {
        task: TaskId,
        expected: TaskState,
        /// `None` when the task does not exist.
        found: Option<TaskState>,
    },

    /// A run update named a run that does not exist; the whole transition
    /// was rolled back.
    #[error("run {run} does not exist")]
    RunNotFound { run: RunId },

    /// A task update carried an output (a dataset version) without entering
    /// `succeeded`; nothing of the transition was stored.
    #[error(
        "task {task} has an output but does not succeed\nhint: only a task entering `succeeded` records a dataset version"
    )]
    OutputWithoutSuccess { task: TaskId },

    /// An output's row count or byte size exceeds what the store holds
    /// (2^63 - 1); nothing of the transition was stored.
    #[error("the output of task {task} has {field} = {value}, more than the store can record")]
    OutputOutOfRange {
        task: TaskId,
        /// `rows` or `bytes`.
        field: &'static str,
        value: u64,
    },

    /// Stored data that this version of weir cannot read.
    #[error(
        "corrupt metadata: {what}\nhint: this is a bug in weir or the database was edited by hand"
    )]
    Corrupt { what: String },

    /// A store URL this build cannot open.
    #[error("cannot open store `{url}`: {reason}")]
    InvalidUrl { url: String, reason: &'static str },

    /// A step name that is not safe as a path component of a log key.
    #[error(
        "step name `{step}` cannot name a log file\nhint: step names are letters, digits, `_` and `-`"
    )]
    InvalidStep { step: String },

    /// The blob store failed for one key.
    #[error("blob store failed for `{key}`")]
    Blob {
        key: String,
        #[source]
        source: object_store::Error,
    },

    /// A local file (database file, log spool) could not be used.
    #[error("cannot use `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn found_text(found: Option<TaskState>) -> String {
    match found {
        Some(state) => format!("`{state}`"),
        None => "no such task".to_owned(),
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an `fs_err` error, whose message already names the path.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>) -> Error {
        Error::Corrupt { what: what.into() }
    }
}

/// `map_err` adapter: `.map_err(db("sqlite", "create_run"))`.
pub(crate) fn db(backend: &'static str, op: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
    move |source| Error::Database {
        backend,
        op,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_message_names_task_and_states() {
        let err = Error::Conflict {
            task: TaskId(7),
            expected: TaskState::Running,
            found: Some(TaskState::Succeeded),
        };
        assert_eq!(
            err.to_string(),
            "task 7 is no longer `running` (found `succeeded`)"
        );
        let err = Error::Conflict {
            task: TaskId(8),
            expected: TaskState::Queued,
            found: None,
        };
        assert_eq!(
            err.to_string(),
            "task 8 is no longer `queued` (found no such task)"
        );
    }

    #[test]
    fn database_message_does_not_leak_driver_text() {
        let err = Error::Database {
            backend: "sqlite",
            op: "apply",
            source: sqlx::Error::Protocol("SELECT secret FROM t".into()),
        };
        assert_eq!(
            err.to_string(),
            "the sqlite metadata store failed during `apply`"
        );
        assert!(std::error::Error::source(&err).is_some());
    }
}
